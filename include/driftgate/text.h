/*
 * Small text helpers shared by the line-oriented parsers in common/ (baselines,
 * workloads, container records, rootfs manifests, ascii logs): hex digits,
 * names, and the "keyword argument" lines of directive files.
 *
 * They only classify and split bytes: every message that names what is wrong
 * stays with the module that parses the format. Nothing here allocates, and
 * no function reads past the length it is given (none needs a NUL
 * terminator, and a NUL byte is an ordinary byte unless a function says
 * otherwise). Hex digits are decoded by table lookup (see text.c for why).
 */
#ifndef DRIFTGATE_TEXT_H
#define DRIFTGATE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Blank inside a line: space, '\t', '\r', '\v', '\f' ('\n' ends the line and is not blank). */
static inline bool
dg_text_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* The value (0 to 15) of hex digit c, or -1 if c is not one: '0'-'9', 'a'-'f', and 'A'-'F'
 * unless lowercase_only (for the formats driftgate writes, which have one spelling). */
int dg_text_hex_digit(char c, bool lowercase_only);

/* Writes the 2 * len lowercase hex digits of data[0..len) and a NUL to out, which has room for
 * 2 * len + 1 bytes. len may be 0 (out becomes ""). */
void dg_text_hex_encode(const uint8_t *data, size_t len, char *out);

/* Decodes exactly hex_len hex digits (dg_text_hex_digit, with lowercase_only) into the
 * hex_len / 2 bytes of out. Returns DG_OK, or DG_ERR_FORMAT for an odd hex_len (nothing
 * written) or a byte that is not a digit (out then partly written). hex_len 0 is DG_OK. */
int dg_text_hex_decode(const char *hex, size_t hex_len, uint8_t *out, bool lowercase_only);

/* Whether s[0..len) is a name: 1 to max bytes, each of [A-Za-z0-9._-] (ASCII only, whatever
 * the locale). Callers add their own further rules (a reserved spelling, no leading dot). */
bool dg_text_name_valid(const char *s, size_t len, size_t max);

/* A decimal number from min to max: digits only, no sign, no leading zero.
 * DG_ERR_FORMAT otherwise (*out untouched). */
int dg_text_uint(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);

/* One line of a directive file ("keyword argument..."), pointing into the line. */
struct dg_text_directive {
	const char *keyword; /* the first run of non-blanks */
	size_t keyword_len;  /* 0: a blank or comment line, to be skipped */
	const char *arg;     /* the rest, without the blanks around it (may hold blanks) */
	size_t arg_len;      /* 0: no argument */
};

/* Splits line[0..len) (without its '\n') into d. Leading and trailing blanks
 * (dg_text_is_blank) are ignored; a line that is then empty or starts with '#' is a blank or
 * comment line: DG_OK with d->keyword_len 0 (a comment may hold any byte, NUL included).
 * Otherwise DG_ERR_FORMAT if the line holds a NUL byte, else DG_OK with the keyword (never
 * empty) and the argument (after the blanks that follow the keyword). */
int dg_text_directive_split(const char *line, size_t len, struct dg_text_directive *d);

/* Whether d's keyword is exactly word (a NUL-terminated string). */
bool dg_text_directive_is(const struct dg_text_directive *d, const char *word);

/* Where a directive stands with respect to the header line "<keyword> <version>" that must
 * open a directive file, exactly once (the caller words each message). */
enum dg_text_header {
	DG_TEXT_HEADER_BODY,     /* the header came before: d is an ordinary directive */
	DG_TEXT_HEADER_OK,       /* d is the header, due and of the version: now seen */
	DG_TEXT_HEADER_MISSING,  /* the first directive is not the header keyword */
	DG_TEXT_HEADER_VERSION,  /* the first directive is the header keyword with another
	                          * argument (d->arg, which may be long or empty) */
	DG_TEXT_HEADER_REPEATED, /* the header keyword again, whatever its argument */
};

/* Classifies directive d (keyword_len > 0) given *have_header, whether the header was seen
 * already; sets *have_header for DG_TEXT_HEADER_OK. */
enum dg_text_header dg_text_directive_header(const struct dg_text_directive *d,
                                             const char *keyword, const char *version,
                                             bool *have_header);

#endif
