/* Baselines: parser errors with line numbers, appraisal, escapes, scale. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftgate/err.h"
#include "driftgate/policy.h"
#include "testutil.h"

#define HEAD "driftgate-baseline 1\nname web\nagent node-*\n"
/* 32 bytes 0x11 and 0x22 as hex */
#define HEX11 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX22 "2222222222222222222222222222222222222222222222222222222222222222"

static uint8_t d11[32], d22[32], d33[32];

static void
setup(void)
{
	memset(d11, 0x11, 32);
	memset(d22, 0x22, 32);
	memset(d33, 0x33, 32);
}

static int
parse(const char *text, struct dg_policy **p, char *err, size_t cap)
{
	return dg_policy_parse(text, strlen(text), p, err, cap);
}

/* Parse text expecting failure with exactly the message want. */
static void
expect_error(const char *text, const char *want)
{
	struct dg_policy *sentinel = (struct dg_policy *)&sentinel, *p = sentinel;
	char err[256];
	ck_assert_int_eq(parse(text, &p, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_ptr_eq(p, sentinel); /* *out untouched */
	ck_assert_str_eq(err, want);
}

static struct dg_policy *
must_parse(const char *text)
{
	struct dg_policy *p = NULL;
	char err[256] = "";
	int rc = parse(text, &p, err, sizeof err);
	ck_assert_msg(rc == DG_OK, "parse failed: %s", err);
	return p;
}

static struct dg_log_entry
entry(const char *path, const char *alg, const uint8_t *digest, size_t digest_len)
{
	struct dg_log_entry e;
	memset(&e, 0, sizeof e);
	e.pcr = 10;
	e.hash_alg = alg;
	e.digest = digest;
	e.digest_len = digest_len;
	e.path = path;
	e.path_len = strlen(path);
	return e;
}

static int
appraise(const struct dg_policy *p, const char *path, const uint8_t *digest,
         struct dg_reason *why)
{
	struct dg_log_entry e = entry(path, "sha256", digest, 32);
	return dg_policy_appraise(p, &e, why);
}

START_TEST(test_minimal_and_accessors)
{
	struct dg_policy *p = must_parse(
		"# a comment\n"
		"\n"
		"  driftgate-baseline 1  \r\n"
		"\t# indented comment\n"
		"name   web.front_end-2\n"
		"agent node-*\n"
		"agent edge-[ab]?\n"
		"agent node-*\n"
		"secret db-password\n"
		"secret tls.key\n");
	ck_assert_str_eq(dg_policy_name(p), "web.front_end-2");
	ck_assert(dg_policy_applies(p, "node-1"));
	ck_assert(dg_policy_applies(p, "edge-a7"));
	ck_assert(!dg_policy_applies(p, "edge-c7"));
	ck_assert(!dg_policy_applies(p, "xnode-1"));
	ck_assert_uint_eq(dg_policy_secret_count(p), 2);
	ck_assert_str_eq(dg_policy_secret(p, 0), "db-password");
	ck_assert_str_eq(dg_policy_secret(p, 1), "tls.key");
	ck_assert_ptr_null(dg_policy_secret(p, 2));
	ck_assert(dg_policy_allows_secret(p, "tls.key"));
	ck_assert(!dg_policy_allows_secret(p, "tls"));
	ck_assert(!dg_policy_allows_secret(p, "db-password2"));
	ck_assert_uint_eq(dg_policy_allow_count(p), 0);
	dg_policy_free(p);
}
END_TEST

/* lease: default 60 s, 1..86400 in decimal without a leading zero, once. */
START_TEST(test_lease)
{
	struct dg_policy *p = must_parse(HEAD);
	ck_assert_uint_eq(dg_policy_lease_s(p), 60);
	dg_policy_free(p);
	p = must_parse(HEAD "lease 30\n");
	ck_assert_uint_eq(dg_policy_lease_s(p), 30);
	dg_policy_free(p);
	p = must_parse(HEAD "lease 86400\n");
	ck_assert_uint_eq(dg_policy_lease_s(p), 86400);
	dg_policy_free(p);
	expect_error(HEAD "lease 0\n", "line 4: bad lease (want seconds, 1..86400)");
	expect_error(HEAD "lease 86401\n", "line 4: bad lease (want seconds, 1..86400)");
	expect_error(HEAD "lease 030\n", "line 4: bad lease (want seconds, 1..86400)");
	expect_error(HEAD "lease 3s\n", "line 4: bad lease (want seconds, 1..86400)");
	expect_error(HEAD "lease 99999999999999999999999\n",
	             "line 4: bad lease (want seconds, 1..86400)");
	expect_error(HEAD "lease 30\nlease 30\n", "line 5: duplicate lease");
}
END_TEST

START_TEST(test_errors)
{
	expect_error("", "line 0: missing 'driftgate-baseline 1' header");
	expect_error("# only\n\n", "line 2: missing 'driftgate-baseline 1' header");
	expect_error("# c\nname web\n", "line 2: missing 'driftgate-baseline 1' header");
	expect_error("driftgate-baseline 2\n", "line 1: unsupported baseline version '2'");
	expect_error("driftgate-baseline\n", "line 1: unsupported baseline version ''");
	expect_error("driftgate-baseline 1\nagent a\n", "line 2: missing 'name'");
	expect_error("driftgate-baseline 1\nname a\n# end\n", "line 3: missing 'agent'");
	expect_error(HEAD "frob x\n", "line 4: unknown directive 'frob'");
	expect_error(HEAD "Allow x\n", "line 4: unknown directive 'Allow'");
	expect_error(HEAD "driftgate-baseline 1\n", "line 4: repeated header");
	expect_error(HEAD "name other\n", "line 4: duplicate name");
	expect_error("driftgate-baseline 1\nname a/b\n",
	             "line 2: bad name (want [A-Za-z0-9._-]{1,64})");
	expect_error("driftgate-baseline 1\nname "
	             /* 65 characters */
	             "a1234567890123456789012345678901234567890123456789012345678901234\n",
	             "line 2: bad name (want [A-Za-z0-9._-]{1,64})");
	expect_error("driftgate-baseline 1\nname\n", "line 2: 'name' needs an argument");
	expect_error(HEAD "agent\n", "line 4: 'agent' needs an argument");
	expect_error(HEAD "agent a b\n", "line 4: agent pattern has blanks or control characters");
	expect_error(HEAD "secret a b\n", "line 4: bad secret name (want [A-Za-z0-9._-]{1,64})");
	expect_error(HEAD "exclude\n", "line 4: 'exclude' needs an argument");
	expect_error(HEAD "allow\n", "line 4: allow needs 'sha256:<64 hex digits> <path>'");
	expect_error(HEAD "allow md5:" HEX11 " /x\n",
	             "line 4: allow needs 'sha256:<64 hex digits> <path>'");
	expect_error(HEAD "allow sha256:" HEX11 "\n", "line 4: allow has no path");
	expect_error(HEAD "allow sha256:123 /x\n", "line 4: bad sha256 hex digest");
	expect_error(HEAD "allow sha256:" HEX11 "1 /x\n", "line 4: bad sha256 hex digest");
	expect_error(HEAD "allow sha256:g" HEX11 " /x\n", "line 4: bad sha256 hex digest");
	expect_error(HEAD "allow sha256:" HEX11 " x/y\n", "line 4: path is not absolute");
	expect_error(HEAD "allow sha256:" HEX11 " \\x2\n", "line 4: bad escape at path offset 0");
	expect_error(HEAD "allow sha256:" HEX11 " /a\\q\n", "line 4: bad escape at path offset 2");
	expect_error(HEAD "allow sha256:" HEX11 " /a\\\n", "line 4: bad escape at path offset 2");
	expect_error(HEAD "allow sha256:" HEX11 " /a\\xg1\n", "line 4: bad escape at path offset 2");
	expect_error(HEAD "allow sha256:" HEX11 " /a\\x00\n", "line 4: NUL byte escaped in path");
	expect_error(HEAD "exclude (\n", "line 4: bad exclude regex: unmatched '('");
	expect_error(HEAD "exclude a)|(b\n", "line 4: bad exclude regex: unmatched ')'");
	expect_error(HEAD "exclude /[a\n", "line 4: bad exclude regex: unclosed '['");
	expect_error(HEAD "exclude *a\n", "line 4: bad exclude regex: Invalid preceding regular expression");
	/* glibc accepts a stray ')' as a literal: wrapped blindly, this one would
	 * turn into "^(/)|(.*))$" and exclude every path */
	expect_error(HEAD "exclude /)|(.*)\n", "line 4: bad exclude regex: unmatched ')'");
	expect_error(HEAD "exclude /x)\n", "line 4: bad exclude regex: unmatched ')'");
	/* shapes that make glibc's compiled regex explode (found by fuzzing) */
	expect_error(HEAD "exclude /a+++++++++++++++++++++++++++++++++++++\n",
	             "line 4: bad exclude regex: repetition of a repetition");
	expect_error(HEAD "exclude /a*+\n", "line 4: bad exclude regex: repetition of a repetition");
	expect_error(HEAD "exclude /a{1,200}\n",
	             "line 4: bad exclude regex: interval expressions are not supported");
	expect_error(HEAD "exclude /(((((((((a+)+)+)+)+)+)+)+)+)\n",
	             "line 4: bad exclude regex: groups nested too deeply");
	/* an unknown directive with control characters is quoted safely */
	expect_error(HEAD "\x1b[2J x\n", "line 4: unknown directive '?[2J'");

	/* a raw NUL byte in the text */
	static const char nul_text[] = HEAD "name\0x\n";
	struct dg_policy *p = NULL;
	char err[128];
	ck_assert_int_eq(dg_policy_parse(nul_text, sizeof nul_text - 1, &p, err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_str_eq(err, "line 4: NUL byte");
	ck_assert_ptr_null(p);

	/* path longer than PATH_MAX */
	size_t n = strlen(HEAD "allow sha256:" HEX11 " ") + DG_LOG_MAX_PATH + 3;
	char *long_text = malloc(n);
	ck_assert_ptr_nonnull(long_text);
	int k = snprintf(long_text, n, HEAD "allow sha256:" HEX11 " /");
	memset(long_text + k, 'a', n - (size_t)k - 1);
	long_text[n - 1] = '\0';
	expect_error(long_text, "line 4: path longer than 4096 bytes");
	free(long_text);

	/* a tiny error buffer is still terminated */
	char tiny[8];
	ck_assert_int_eq(parse(HEAD "frob\n", &p, tiny, sizeof tiny), DG_ERR_FORMAT);
	ck_assert_str_eq(tiny, "line 4:");
}
END_TEST

START_TEST(test_too_big)
{
	char *big = calloc(1, (size_t)DG_POLICY_MAX_TEXT + 1);
	struct dg_policy *p = NULL;
	char err[128];

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(dg_policy_parse(big, (size_t)DG_POLICY_MAX_TEXT + 1, &p, err, sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_ptr_null(p);
	ck_assert(strncmp(err, "line 0: ", 8) == 0);
	free(big);
}
END_TEST

START_TEST(test_exclude_anchoring)
{
	struct dg_policy *p = must_parse(HEAD
		"exclude /tmp/.*\n"
		"exclude /var/log\n"
		"exclude /proc/[0-9]+/.*\n");
	struct dg_reason why;

	ck_assert_int_eq(appraise(p, "/tmp/x", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/tmp/", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/var/log", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/proc/12/exe", d11, &why), DG_OK);
	/* anchored at the end */
	ck_assert_int_eq(appraise(p, "/var/log/x", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unknown-file");
	/* anchored at the start */
	ck_assert_int_eq(appraise(p, "/x/var/log", d11, &why), DG_ERR_POLICY);
	ck_assert_int_eq(appraise(p, "/x/tmp/y", d11, &why), DG_ERR_POLICY);
	ck_assert_int_eq(appraise(p, "/tmpX/a", d11, &why), DG_ERR_POLICY);
	ck_assert_int_eq(appraise(p, "/proc/self/exe", d11, &why), DG_ERR_POLICY);
	dg_policy_free(p);

	/* parentheses inside brackets and escaped ones are literals, not groups */
	p = must_parse(HEAD "exclude /a[)]\nexclude /b\\)\nexclude /c([[:alpha:]])\nexclude /d[{+]+\\{\n");
	ck_assert_int_eq(appraise(p, "/a)", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/b)", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/cz", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/d{+{{", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/a)x", d11, &why), DG_ERR_POLICY);
	ck_assert_int_eq(appraise(p, "/other", d11, &why), DG_ERR_POLICY);
	dg_policy_free(p);

	/* exclude /tmp alone does not cover /tmpX/a or /tmp/a */
	p = must_parse(HEAD "exclude /tmp\n");
	ck_assert_int_eq(appraise(p, "/tmp", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/tmpX/a", d11, &why), DG_ERR_POLICY);
	ck_assert_int_eq(appraise(p, "/tmp/a", d11, &why), DG_ERR_POLICY);
	/* an embedded NUL cannot shorten a path into an excluded one */
	struct dg_log_entry e = entry("/tmp\0/usr/bin/evil", "sha256", d11, 32);
	e.path_len = 18;
	ck_assert_int_eq(dg_policy_appraise(p, &e, &why), DG_ERR_POLICY);
	dg_policy_free(p);
}
END_TEST

START_TEST(test_appraise_reasons)
{
	struct dg_policy *p = must_parse(HEAD
		"allow sha256:" HEX11 " /usr/bin/app\n"
		"allow sha256:" HEX22 " /usr/bin/app\n"
		"allow sha256:" HEX11 " /usr/bin/app\n" /* exact repeat folds */
		"allow sha256:" HEX22 " /usr/lib/libc.so\n"
		"exclude /tmp/.*\n");
	struct dg_reason why;
	struct dg_log_entry e;

	ck_assert_uint_eq(dg_policy_allow_count(p), 3);
	/* several approved versions of one path */
	ck_assert_int_eq(appraise(p, "/usr/bin/app", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/usr/bin/app", d22, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/usr/lib/libc.so", d22, &why), DG_OK);

	ck_assert_int_eq(appraise(p, "/usr/bin/app", d33, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "hash-mismatch");
	ck_assert_ptr_nonnull(strstr(why.detail, "/usr/bin/app"));
	ck_assert_ptr_nonnull(strstr(why.detail, "sha256:3333333333333333"));
	ck_assert_int_eq(appraise(p, "/usr/lib/libc.so", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "hash-mismatch");

	ck_assert_int_eq(appraise(p, "/usr/bin/other", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unknown-file");
	ck_assert_ptr_nonnull(strstr(why.detail, "/usr/bin/other"));
	ck_assert_ptr_nonnull(strstr(why.detail, HEX11));
	/* a prefix of an allowed path is not allowed */
	ck_assert_int_eq(appraise(p, "/usr/bin/ap", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unknown-file");

	e = entry("/usr/bin/app", "sha1", d11, 20);
	ck_assert_int_eq(dg_policy_appraise(p, &e, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unsupported-hash");
	ck_assert_ptr_nonnull(strstr(why.detail, "sha1:1111"));
	/* right name, wrong length */
	e = entry("/usr/bin/app", "sha256", d11, 20);
	ck_assert_int_eq(dg_policy_appraise(p, &e, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unsupported-hash");

	e = entry("/usr/bin/app", "sha256", d11, 32);
	e.violation = true;
	ck_assert_int_eq(dg_policy_appraise(p, &e, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "violation");
	ck_assert_ptr_nonnull(strstr(why.detail, "/usr/bin/app"));
	/* excluded paths pass whatever their digest, violation or algorithm */
	e = entry("/tmp/scratch", "md5", d11, 16);
	e.violation = true;
	ck_assert_int_eq(dg_policy_appraise(p, &e, &why), DG_OK);

	/* control characters in a path do not reach the detail */
	ck_assert_int_eq(appraise(p, "/x\n\x1b[31mred", d11, &why), DG_ERR_POLICY);
	ck_assert_ptr_null(strchr(why.detail, '\n'));
	ck_assert_ptr_null(strchr(why.detail, '\x1b'));
	dg_policy_free(p);

	/* a baseline without allow lines knows no file */
	p = must_parse(HEAD);
	ck_assert_int_eq(appraise(p, "/bin/sh", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unknown-file");
	dg_policy_free(p);
}
END_TEST

START_TEST(test_escapes)
{
	struct dg_policy *p = must_parse(HEAD
		"allow sha256:" HEX11 " /a b/c\\\\d\\x09e\\x20\n"
		"allow sha256:" HEX11 "   /sp  ace  \n" /* trailing blanks trimmed */
		"allow sha256:" HEX22 " /caf\\xC3\\xa9\n");
	struct dg_reason why;

	/* spaces are matched in the form the kernel logs them: as '_' */
	ck_assert_int_eq(appraise(p, "/a_b/c\\d\te_", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/a b/c\\d\te ", d11, &why), DG_ERR_POLICY);
	ck_assert_int_eq(appraise(p, "/sp__ace", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/caf\xc3\xa9", d22, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/a_b/c\\d\te", d11, &why), DG_ERR_POLICY);
	dg_policy_free(p);
}
END_TEST

START_TEST(test_format_allow)
{
	char out[64 + 4 * DG_LOG_MAX_PATH];
	size_t len;

	/* Expected text written out by hand from the escaping rules. */
	ck_assert_int_eq(dg_policy_format_allow("/a b\\c\x01\x7f\xff ", d11, out, sizeof out, &len),
	                 DG_OK);
	ck_assert_str_eq(out, "allow sha256:" HEX11 " /a b\\\\c\\x01\\x7f\\xff\\x20\n");
	ck_assert_uint_eq(len, strlen(out));

	ck_assert_int_eq(dg_policy_format_allow("rel", d11, out, sizeof out, &len), DG_ERR_INVAL);
	ck_assert_int_eq(dg_policy_format_allow("", d11, out, sizeof out, &len), DG_ERR_INVAL);
	/* exact fit needs the line, its newline and a terminator */
	size_t need = strlen("allow sha256:" HEX11 " /x\n") + 1;
	ck_assert_int_eq(dg_policy_format_allow("/x", d11, out, need - 1, &len), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_policy_format_allow("/x", d11, out, need, &len), DG_OK);
	ck_assert_int_eq(dg_policy_format_allow("/x", d11, out, 10, &len), DG_ERR_TOOBIG);

	char *longp = malloc(DG_LOG_MAX_PATH + 2);
	ck_assert_ptr_nonnull(longp);
	memset(longp, 'a', DG_LOG_MAX_PATH + 1);
	longp[0] = '/';
	longp[DG_LOG_MAX_PATH + 1] = '\0';
	ck_assert_int_eq(dg_policy_format_allow(longp, d11, out, sizeof out, &len), DG_ERR_TOOBIG);
	free(longp);
}
END_TEST

/* format -> parse reproduces any byte-string path exactly. */
START_TEST(test_format_parse_round_trip)
{
	uint64_t s = 0x243f6a8885a308d3ull;
	char path[DG_LOG_MAX_PATH + 1], line[64 + 4 * DG_LOG_MAX_PATH];
	char *text = malloc(sizeof line + 64);
	struct dg_reason why;

	ck_assert_ptr_nonnull(text);
	for (int iter = 0; iter < 500; iter++) {
		size_t n;
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		n = 1 + (size_t)(s % (iter < 490 ? 64 : DG_LOG_MAX_PATH));
		path[0] = '/';
		for (size_t i = 1; i < n; i++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			/* bias towards the bytes that need care */
			static const char tricky[] = " \t\r\n\\x#\x7f\x80\xff";
			path[i] = (s & 1) ? tricky[(s >> 8) % (sizeof tricky - 1)] : (char)(1 + (s >> 16) % 255);
		}
		path[n] = '\0';
		size_t len;
		ck_assert_int_eq(dg_policy_format_allow(path, d22, line, sizeof line, &len), DG_OK);
		ck_assert_ptr_null(memchr(line, '\n', len - 1)); /* one line */
		snprintf(text, sizeof line + 64, HEAD "%s", line);
		struct dg_policy *p = must_parse(text);
		ck_assert_uint_eq(dg_policy_allow_count(p), 1);
		for (size_t i = 0; i < n; i++) /* the logged form of the path */
			if (path[i] == ' ')
				path[i] = '_';
		ck_assert_int_eq(appraise(p, path, d22, &why), DG_OK);
		ck_assert_int_eq(appraise(p, path, d11, &why), DG_ERR_POLICY);
		ck_assert_str_eq(why.code, "hash-mismatch");
		dg_policy_free(p);
	}
	free(text);
}
END_TEST

/* The shipped example must stay valid. */
START_TEST(test_example_baseline)
{
	char path[1024];
	const char *root = getenv("DG_SOURCE_ROOT");
	size_t len;
	struct dg_reason why;

	snprintf(path, sizeof path, "%s/policies/example.baseline", root ? root : ".");
	char *text = (char *)tu_read_file(path, &len);
	ck_assert_ptr_nonnull(text);
	struct dg_policy *p = NULL;
	char err[256] = "";
	ck_assert_msg(dg_policy_parse(text, len, &p, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_str_eq(dg_policy_name(p), "web-frontend");
	ck_assert_uint_eq(dg_policy_allow_count(p), 5);
	ck_assert_uint_eq(dg_policy_secret_count(p), 2);
	ck_assert(dg_policy_applies(p, "node-web-3"));
	ck_assert(dg_policy_applies(p, "edge-42"));
	ck_assert(!dg_policy_applies(p, "edge-4"));
	ck_assert_int_eq(appraise(p, "/tmp/x", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/var/cache/app/a.py", d11, &why), DG_OK);
	ck_assert_int_eq(appraise(p, "/var/cache/app/a/b.py", d11, &why), DG_ERR_POLICY);
	/* the escaped path decodes to a tab and a trailing space */
	ck_assert_int_eq(appraise(p, "/opt/app/run\tme_", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "hash-mismatch");
	ck_assert_int_eq(appraise(p, "/opt/app/run\tme", d11, &why), DG_ERR_POLICY);
	ck_assert_str_eq(why.code, "unknown-file");
	dg_policy_free(p);
	free(text);
}
END_TEST

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 100,000 allow lines: parse and appraise every path, timed. */
START_TEST(test_scale)
{
	const size_t n = 100000;
	size_t cap = n * 140 + 256, len;
	char *text = malloc(cap);
	struct dg_reason why;
	uint8_t digest[32];

	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, HEAD);
	for (size_t i = 0; i < n; i++) {
		memset(digest, 0, sizeof digest);
		memcpy(digest, &i, sizeof i);
		char line[200];
		size_t l;
		char path[64];
		snprintf(path, sizeof path, "/usr/lib/pkg%zu/file%zu.so", i % 997, i);
		ck_assert_int_eq(dg_policy_format_allow(path, digest, line, sizeof line, &l), DG_OK);
		memcpy(text + len, line, l);
		len += l;
	}
	struct dg_policy *p = NULL;
	char err[128];
	double t0 = now_ms();
	ck_assert_int_eq(dg_policy_parse(text, len, &p, err, sizeof err), DG_OK);
	double t1 = now_ms();
	ck_assert_uint_eq(dg_policy_allow_count(p), n);
	/* Failures are counted, not asserted, so Check's per-assert bookkeeping
	 * stays out of the timing. */
	size_t failures = 0;
	for (size_t i = 0; i < n; i++) {
		char path[64];
		memset(digest, 0, sizeof digest);
		memcpy(digest, &i, sizeof i);
		snprintf(path, sizeof path, "/usr/lib/pkg%zu/file%zu.so", i % 997, i);
		failures += appraise(p, path, digest, &why) != DG_OK;
	}
	double t2 = now_ms();
	fprintf(stderr, "policy scale: parse %zu lines in %.1f ms, %zu appraisals in %.1f ms\n",
	        n, t1 - t0, n, t2 - t1);
	/* Loose enough for sanitizer builds; the plain build is measured in the report. */
	ck_assert_uint_eq(failures, 0);
	ck_assert_msg(t1 - t0 < 2000, "parse took %.1f ms", t1 - t0);
	dg_policy_free(p);
	free(text);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_minimal_and_accessors);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_lease);
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_exclude_anchoring);
	tcase_add_test(tc, test_appraise_reasons);
	tcase_add_test(tc, test_escapes);
	tcase_add_test(tc, test_format_allow);
	tcase_add_test(tc, test_format_parse_round_trip);
	tcase_add_test(tc, test_example_baseline);
	tcase_add_test(tc, test_scale);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
