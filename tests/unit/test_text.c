/*
 * Text helpers: hex digits of each class (and every other byte), encoding,
 * decoding of odd lengths and bad digits, uppercase refused when lowercase
 * only; name bounds 0/1/64/65 and every byte outside [A-Za-z0-9._-];
 * directive lines that are blank, comments, hold a NUL, are a keyword alone or
 * a keyword with arguments; and the header classification.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/text.h"
#include "testutil.h"

/* Split line[0..len) and check the outcome: rc, and for DG_OK the keyword and argument
 * (NULL keyword: a skipped line, keyword_len 0 and arg_len 0). */
static void
check_split(const char *line, size_t len, int rc, const char *kw, const char *arg)
{
	struct dg_text_directive d;

	ck_assert_int_eq(dg_text_directive_split(line, len, &d), rc);
	if (rc != DG_OK)
		return;
	if (kw == NULL) {
		ck_assert_uint_eq(d.keyword_len, 0);
		ck_assert_uint_eq(d.arg_len, 0);
		return;
	}
	ck_assert_uint_eq(d.keyword_len, strlen(kw));
	ck_assert_int_eq(memcmp(d.keyword, kw, d.keyword_len), 0);
	ck_assert(dg_text_directive_is(&d, kw));
	ck_assert_uint_eq(d.arg_len, strlen(arg));
	ck_assert_int_eq(memcmp(d.arg, arg, d.arg_len), 0);
	/* Both point into the line. */
	ck_assert(d.keyword >= line && d.keyword + d.keyword_len <= line + len);
	ck_assert(d.arg >= line && d.arg + d.arg_len <= line + len);
}

/* A string literal, its embedded NULs included. */
#define SPLIT(lit, rc, kw, arg) check_split((lit), sizeof(lit) - 1, (rc), (kw), (arg))

START_TEST(test_hex_digit_classes)
{
	for (int c = 0; c < 256; c++) {
		int want;
		bool upper = false;
		if (c >= '0' && c <= '9')
			want = c - '0';
		else if (c >= 'a' && c <= 'f')
			want = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') {
			want = c - 'A' + 10;
			upper = true;
		} else
			want = -1;
		ck_assert_int_eq(dg_text_hex_digit((char)c, false), want);
		ck_assert_int_eq(dg_text_hex_digit((char)c, true), upper ? -1 : want);
	}
	/* The neighbours of each range. */
	ck_assert_int_eq(dg_text_hex_digit('/', false), -1);
	ck_assert_int_eq(dg_text_hex_digit(':', false), -1);
	ck_assert_int_eq(dg_text_hex_digit('`', false), -1);
	ck_assert_int_eq(dg_text_hex_digit('g', false), -1);
	ck_assert_int_eq(dg_text_hex_digit('@', false), -1);
	ck_assert_int_eq(dg_text_hex_digit('G', false), -1);
	ck_assert_int_eq(dg_text_hex_digit('\0', false), -1);
	ck_assert_int_eq(dg_text_hex_digit((char)0xb0, false), -1); /* '0' | 0x80 */
	ck_assert_int_eq(dg_text_hex_digit((char)0xe1, false), -1); /* 'a' | 0x80 */
}
END_TEST

START_TEST(test_hex_encode)
{
	const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
	char out[2 * sizeof bytes + 2];

	memset(out, 'X', sizeof out);
	dg_text_hex_encode(bytes, sizeof bytes, out);
	ck_assert_str_eq(out, "00017f80abcdefff");
	ck_assert_int_eq(out[2 * sizeof bytes + 1], 'X'); /* nothing past the NUL */

	memset(out, 'X', sizeof out);
	dg_text_hex_encode(bytes, 0, out);
	ck_assert_int_eq(out[0], '\0');
	ck_assert_int_eq(out[1], 'X');

	/* Every byte value round-trips through both decoders. */
	uint8_t all[256], back[256];
	char hex[2 * sizeof all + 1];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	dg_text_hex_encode(all, sizeof all, hex);
	ck_assert_uint_eq(strlen(hex), 2 * sizeof all);
	ck_assert_int_eq(dg_text_hex_decode(hex, strlen(hex), back, true), DG_OK);
	ck_assert_mem_eq(back, all, sizeof all);
	memset(back, 0, sizeof back);
	ck_assert_int_eq(dg_text_hex_decode(hex, strlen(hex), back, false), DG_OK);
	ck_assert_mem_eq(back, all, sizeof all);
}
END_TEST

START_TEST(test_hex_decode)
{
	uint8_t out[4];

	memset(out, 0xee, sizeof out);
	ck_assert_int_eq(dg_text_hex_decode("09af", 4, out, true), DG_OK);
	ck_assert_uint_eq(out[0], 0x09);
	ck_assert_uint_eq(out[1], 0xaf);
	ck_assert_uint_eq(out[2], 0xee); /* only hex_len / 2 bytes written */

	/* Uppercase: accepted unless lowercase only. */
	ck_assert_int_eq(dg_text_hex_decode("09AF", 4, out, false), DG_OK);
	ck_assert_uint_eq(out[1], 0xaf);
	ck_assert_int_eq(dg_text_hex_decode("09AF", 4, out, true), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("0A", 2, out, true), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("A0", 2, out, true), DG_ERR_FORMAT);

	/* Odd lengths are refused before anything is written. */
	memset(out, 0xee, sizeof out);
	ck_assert_int_eq(dg_text_hex_decode("0", 1, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("abc", 3, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("abcd", 3, out, true), DG_ERR_FORMAT);
	ck_assert_uint_eq(out[0], 0xee);

	/* Zero digits: nothing to do. */
	ck_assert_int_eq(dg_text_hex_decode("", 0, out, true), DG_OK);
	ck_assert_uint_eq(out[0], 0xee);

	/* A bad digit in either half of any byte, a NUL, a blank, a sign. */
	ck_assert_int_eq(dg_text_hex_decode("g0", 2, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("0g", 2, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("000g", 4, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("0\0", 2, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode(" 0", 2, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("-1", 2, out, false), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_text_hex_decode("0x", 2, out, false), DG_ERR_FORMAT);

	/* Only hex_len digits are read: what follows does not matter. */
	ck_assert_int_eq(dg_text_hex_decode("ffzz", 2, out, true), DG_OK);
	ck_assert_uint_eq(out[0], 0xff);
}
END_TEST

START_TEST(test_name_bounds)
{
	char name[66];

	memset(name, 'a', sizeof name);
	ck_assert(!dg_text_name_valid(name, 0, 64));
	ck_assert(!dg_text_name_valid("", 0, 64));
	ck_assert(dg_text_name_valid(name, 1, 64));
	ck_assert(dg_text_name_valid(name, 63, 64));
	ck_assert(dg_text_name_valid(name, 64, 64));
	ck_assert(!dg_text_name_valid(name, 65, 64));
	ck_assert(!dg_text_name_valid(name, 66, 64));
	/* The bound is the caller's. */
	ck_assert(dg_text_name_valid(name, 3, 3));
	ck_assert(!dg_text_name_valid(name, 4, 3));
	ck_assert(!dg_text_name_valid(name, 1, 0));
	/* Only len bytes are read: a longer buffer or no NUL does not matter. */
	ck_assert(dg_text_name_valid("ab cd", 2, 64));
	ck_assert(!dg_text_name_valid("ab cd", 3, 64));
}
END_TEST

START_TEST(test_name_chars)
{
	/* Each allowed class, alone and together; '.' and '-' may lead. */
	ck_assert(dg_text_name_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26, 64));
	ck_assert(dg_text_name_valid("abcdefghijklmnopqrstuvwxyz", 26, 64));
	ck_assert(dg_text_name_valid("0123456789", 10, 64));
	ck_assert(dg_text_name_valid("._-", 3, 64));
	ck_assert(dg_text_name_valid(".", 1, 64));
	ck_assert(dg_text_name_valid("-", 1, 64));
	ck_assert(dg_text_name_valid("db-password_2.v1", 16, 64));

	/* Every other byte, at the start, in the middle and at the end. */
	for (int c = 0; c < 256; c++) {
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		          c == '.' || c == '_' || c == '-';
		char s[3] = {'a', 'a', 'a'};
		for (int pos = 0; pos < 3; pos++) {
			s[0] = s[1] = s[2] = 'a';
			s[pos] = (char)c;
			ck_assert_msg(dg_text_name_valid(s, 3, 64) == ok, "byte 0x%02x at %d", c, pos);
		}
	}
	/* Named ones: blanks, separators, controls, NUL, non-ASCII (Latin-1 and UTF-8 letters). */
	ck_assert(!dg_text_name_valid("a b", 3, 64));
	ck_assert(!dg_text_name_valid("a/b", 3, 64));
	ck_assert(!dg_text_name_valid("a\\b", 3, 64));
	ck_assert(!dg_text_name_valid("a+b", 3, 64));
	ck_assert(!dg_text_name_valid("a:b", 3, 64));
	ck_assert(!dg_text_name_valid("a\tb", 3, 64));
	ck_assert(!dg_text_name_valid("a\nb", 3, 64));
	ck_assert(!dg_text_name_valid("a\0b", 3, 64));
	ck_assert(!dg_text_name_valid("a\x7f" "b", 3, 64));
	ck_assert(!dg_text_name_valid("\xe9t\xe9", 3, 64));
	ck_assert(!dg_text_name_valid("\xc3\xa9", 2, 64));
}
END_TEST

START_TEST(test_directive_skipped)
{
	SPLIT("", DG_OK, NULL, NULL);
	SPLIT(" \t\r\v\f", DG_OK, NULL, NULL);
	SPLIT("#", DG_OK, NULL, NULL);
	SPLIT("# a comment", DG_OK, NULL, NULL);
	SPLIT("  \t# indented comment", DG_OK, NULL, NULL);
	/* A comment may hold a NUL. */
	SPLIT("# a\0b", DG_OK, NULL, NULL);
	SPLIT(" #\0", DG_OK, NULL, NULL);
	/* Only len bytes are read: a NUL or keyword past them is not seen. */
	check_split("  \0name x", 2, DG_OK, NULL, NULL);
}
END_TEST

START_TEST(test_directive_nul)
{
	SPLIT("\0", DG_ERR_FORMAT, NULL, NULL);
	SPLIT(" \0 ", DG_ERR_FORMAT, NULL, NULL);
	SPLIT("name\0", DG_ERR_FORMAT, NULL, NULL);
	SPLIT("na\0me x", DG_ERR_FORMAT, NULL, NULL);
	SPLIT("name x\0y", DG_ERR_FORMAT, NULL, NULL);
	SPLIT("name x \0", DG_ERR_FORMAT, NULL, NULL);
	SPLIT("\0# not a comment", DG_ERR_FORMAT, NULL, NULL);
}
END_TEST

START_TEST(test_directive_split)
{
	struct dg_text_directive d;
	const char *line = " \tname \r";

	/* Keyword alone, with and without blanks around it. */
	SPLIT("name", DG_OK, "name", "");
	SPLIT(" \tname \r", DG_OK, "name", "");
	ck_assert_int_eq(dg_text_directive_split(line, strlen(line), &d), DG_OK);
	ck_assert_ptr_eq(d.keyword, line + 2);
	ck_assert(!dg_text_directive_is(&d, "nam"));
	ck_assert(!dg_text_directive_is(&d, "names"));
	ck_assert(!dg_text_directive_is(&d, "NAME"));
	ck_assert(!dg_text_directive_is(&d, ""));

	/* Keyword and one argument; blanks between them, of every kind, are dropped. */
	SPLIT("\vname \t\f web\r", DG_OK, "name", "web");
	/* Several arguments: inner blanks stay, outer ones go. */
	SPLIT("  allow sha256:00 /a b\t/c  ", DG_OK, "allow", "sha256:00 /a b\t/c");
	/* '#' after the keyword is an argument, not a comment; a newline is not blank. */
	SPLIT("agent #x", DG_OK, "agent", "#x");
	SPLIT("agent\nx", DG_OK, "agent\nx", "");
	/* A one-byte keyword; a control byte other than a blank is part of a word. */
	SPLIT("x", DG_OK, "x", "");
	SPLIT("a\x01 b", DG_OK, "a\x01", "b");
}
END_TEST

START_TEST(test_directive_header)
{
	/* One file, line by line: before the header anything else is missing it and the keyword
	 * needs exactly the version; after it, ordinary directives, and the keyword again is
	 * repeated whatever follows. */
	static const struct {
		const char *line;
		enum dg_text_header want;
		bool have_after;
	} steps[] = {
		{"name web", DG_TEXT_HEADER_MISSING, false},
		{"driftgate-testx 1", DG_TEXT_HEADER_MISSING, false},
		{"driftgate-tes 1", DG_TEXT_HEADER_MISSING, false},
		{"driftgate-test", DG_TEXT_HEADER_VERSION, false},
		{"driftgate-test 2", DG_TEXT_HEADER_VERSION, false},
		{"driftgate-test 1 1", DG_TEXT_HEADER_VERSION, false},
		{"driftgate-test 10", DG_TEXT_HEADER_VERSION, false},
		{"  driftgate-test \t 1 ", DG_TEXT_HEADER_OK, true},
		{"name web", DG_TEXT_HEADER_BODY, true},
		{"driftgate-test 1", DG_TEXT_HEADER_REPEATED, true},
		{"driftgate-test 2", DG_TEXT_HEADER_REPEATED, true},
		{"driftgate-test", DG_TEXT_HEADER_REPEATED, true},
	};
	bool have = false;

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct dg_text_directive d;
		ck_assert_int_eq(dg_text_directive_split(steps[i].line, strlen(steps[i].line), &d),
		                 DG_OK);
		ck_assert_msg(dg_text_directive_header(&d, "driftgate-test", "1", &have) ==
		                  steps[i].want,
		              "step %zu", i);
		ck_assert_msg(have == steps[i].have_after, "step %zu", i);
	}
}
END_TEST

START_TEST(test_is_blank)
{
	for (int c = 0; c < 256; c++) {
		bool want = c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
		ck_assert_msg(dg_text_is_blank((char)c) == want, "byte 0x%02x", c);
	}
}
END_TEST

static Suite *
text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_hex_digit_classes);
	tcase_add_test(tc, test_hex_encode);
	tcase_add_test(tc, test_hex_decode);
	tcase_add_test(tc, test_name_bounds);
	tcase_add_test(tc, test_name_chars);
	tcase_add_test(tc, test_directive_skipped);
	tcase_add_test(tc, test_directive_nul);
	tcase_add_test(tc, test_directive_split);
	tcase_add_test(tc, test_directive_header);
	tcase_add_test(tc, test_is_blank);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(text_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
