/*
 * Measurement log: the Linux IMA templates ima-ng, ima-sig and ima-buf, in the
 * kernel's binary_runtime_measurements format and its ascii format.
 *
 * Pure logic: no I/O. Readers walk a caller-provided buffer; entries returned
 * by a reader point into that buffer (binary) or into the reader's scratch
 * (ascii) and stay valid until the next call on the same reader.
 *
 * Template data of every supported template is
 *     u32 len | "<alg>:\0" <digest>      (field d-ng)
 *     u32 len | path "\0"                (field n-ng)
 *     [u32 len | bytes]                  (ima-sig: sig, ima-buf: buf)
 * and the template hash for a bank is that bank's hash over the template data.
 * A violation entry logs an all-zero sha1 template hash and extends all-0xff.
 */
#ifndef DRIFTGATE_LOG_H
#define DRIFTGATE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DG_LOG_MAX_PCR 24
#define DG_SHA1_LEN 20
#define DG_SHA256_LEN 32
#define DG_LOG_MAX_DIGEST 64          /* largest file digest accepted (sha512) */
#define DG_LOG_MAX_PATH 4096          /* PATH_MAX, including nothing else */
#define DG_LOG_MAX_EXTRA (64 * 1024)  /* bound for the sig / buf field */
#define DG_LOG_MAX_TEMPLATE_DATA (DG_LOG_MAX_PATH + DG_LOG_MAX_EXTRA + 256)

enum dg_log_template {
	DG_TEMPLATE_IMA_NG = 0,
	DG_TEMPLATE_IMA_SIG,
	DG_TEMPLATE_IMA_BUF,
};

enum dg_log_format {
	DG_LOG_FORMAT_BINARY = 0, /* binary_runtime_measurements, little endian */
	DG_LOG_FORMAT_ASCII,      /* ascii_runtime_measurements */
};

struct dg_log_entry {
	uint32_t pcr;
	enum dg_log_template template_id;
	uint8_t template_hash[DG_SHA1_LEN]; /* as logged (sha1 bank) */
	bool violation;                     /* logged template hash is all zero */
	/* The template data exactly as hashed. */
	const uint8_t *template_data;
	size_t template_data_len;
	/* Views into template_data. */
	const char *hash_alg; /* e.g. "sha256", NUL-terminated */
	const uint8_t *digest;
	size_t digest_len;
	const char *path; /* NUL-terminated; path_len excludes the NUL */
	size_t path_len;
	const uint8_t *extra; /* ima-sig signature or ima-buf buffer, may be NULL */
	size_t extra_len;
};

/* Reader over a whole log held in memory. */
struct dg_log_reader {
	const uint8_t *buf;
	size_t len;
	size_t off;              /* byte offset of the next entry */
	uint64_t index;          /* 0-based index of the next entry */
	enum dg_log_format format;
	uint8_t *scratch;        /* ascii only: rebuilt template data, owned */
	size_t scratch_cap;
	bool ready;              /* set by dg_log_reader_init */
};

/* Guess the format from the first bytes: ascii if it starts with a decimal
 * PCR number and a space, else binary. */
enum dg_log_format dg_log_detect_format(const uint8_t *buf, size_t len);

int dg_log_reader_init(struct dg_log_reader *r, const uint8_t *buf, size_t len,
                       enum dg_log_format format);
void dg_log_reader_fini(struct dg_log_reader *r);

/*
 * Read the next entry. Returns DG_OK with *e filled, DG_ERR_NOTFOUND at a clean
 * end of input, or an error (DG_ERR_TRUNCATED, DG_ERR_FORMAT, DG_ERR_TOOBIG,
 * DG_ERR_UNSUPPORTED) with r->index and r->off naming the bad entry. Checks
 * that a non-violation entry's logged sha1 template hash matches its data
 * (DG_ERR_FORMAT otherwise).
 */
int dg_log_next(struct dg_log_reader *r, struct dg_log_entry *e);

/*
 * Build one entry in the kernel binary format into out[0..cap).
 * extra may be NULL (ima-ng; for ima-sig an empty signature is written).
 * *out_len receives the encoded size; DG_ERR_TOOBIG if cap is too small.
 */
int dg_log_encode(uint32_t pcr, enum dg_log_template template_id,
                  const char *hash_alg, const uint8_t *digest, size_t digest_len,
                  const char *path, const uint8_t *extra, size_t extra_len,
                  uint8_t *out, size_t cap, size_t *out_len);

/* Encode a parsed entry as one ascii line (with '\n'), as the kernel prints it. */
int dg_log_format_ascii(const struct dg_log_entry *e, char *out, size_t cap,
                        size_t *out_len);

/* Template name as the kernel spells it ("ima-ng", ...). */
const char *dg_log_template_name(enum dg_log_template t);

/*
 * Replay: fold entries into PCR values for the sha1 and sha256 banks.
 * Start from all-zero PCRs (dg_replay_init) or a saved state (incremental).
 */
struct dg_replay {
	uint8_t sha1[DG_LOG_MAX_PCR][DG_SHA1_LEN];
	uint8_t sha256[DG_LOG_MAX_PCR][DG_SHA256_LEN];
	uint32_t used; /* bit i set when PCR i was extended */
	uint64_t entries;
};

void dg_replay_init(struct dg_replay *s);
void dg_replay_fini(struct dg_replay *s);
/* Copy the PCR values and counters of src into dst (not its hash context). */
void dg_replay_copy(struct dg_replay *dst, const struct dg_replay *src);
/* Extend one entry's template hashes into its PCR. DG_ERR_FORMAT if pcr >= 24. */
int dg_replay_extend(struct dg_replay *s, const struct dg_log_entry *e);

#endif
