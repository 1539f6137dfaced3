/*
 * Rootfs manifests: the built text equals one computed by python3 (os.walk,
 * os.lstat, hashlib) over the same tree; strict parse rejections; lookups,
 * including the log's spaces-as-'_' form; file-level differences; timings on a
 * busybox rootfs and a 10,000-file tree.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftgate/err.h"
#include "driftgate/manifest.h"
#include "testutil.h"

/* Hand-made digests: 32 bytes of 0x11, 0x22, 0x33. */
#define HEX11 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX22 "2222222222222222222222222222222222222222222222222222222222222222"
#define HEX33 "3333333333333333333333333333333333333333333333333333333333333333"

/*
 * The manifest as specified, computed independently: python's os.walk does
 * not follow symlinks by default; entries on another device are skipped;
 * lines are sorted by the raw path bytes and escaped per manifest.h.
 */
static const char expected_py[] =
	"import hashlib, os, stat, sys\n"
	"root = os.fsencode(sys.argv[1])\n"
	"dev = os.lstat(root).st_dev\n"
	"rows = []\n"
	"for d, dirs, files in os.walk(root):\n"
	"    for name in dirs + files:\n"
	"        p = os.path.join(d, name)\n"
	"        st = os.lstat(p)\n"
	"        if st.st_dev != dev:\n"
	"            continue\n"
	"        if stat.S_ISREG(st.st_mode):\n"
	"            with open(p, 'rb') as f:\n"
	"                h = hashlib.sha256(f.read()).hexdigest()\n"
	"        elif stat.S_ISLNK(st.st_mode):\n"
	"            h = hashlib.sha256(os.readlink(p)).hexdigest()\n"
	"        else:\n"
	"            continue\n"
	"        rows.append((p[len(root):], h, st.st_mode))\n"
	"rows.sort()\n"
	"def esc(b):\n"
	"    return ''.join('\\\\\\\\' if c == 0x5c else\n"
	"                   '\\\\x%02x' % c if c <= 0x20 or c >= 0x7f else chr(c) for c in b)\n"
	"sys.stdout.write(''.join('%s %06o %s\\n' % (h, m, esc(p)) for p, h, m in rows))\n";

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Run expected_py over root; returns its output (malloc'd). */
static char *
python_manifest(const char *dir, const char *root, size_t *len)
{
	char script[512], out[512];
	FILE *f;

	snprintf(script, sizeof script, "%s/expected.py", dir);
	snprintf(out, sizeof out, "%s/expected.txt", dir);
	f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(expected_py, 1, strlen(expected_py), f), strlen(expected_py));
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(tu_sh("python3 '%s' '%s' > '%s'", script, root, out), 0);
	char *text = (char *)tu_read_file(out, len);
	ck_assert_ptr_nonnull(text);
	return text;
}

static struct dg_manifest *
must_parse(const char *text)
{
	struct dg_manifest *m = NULL;
	ck_assert_int_eq(dg_manifest_parse(text, strlen(text), &m), DG_OK);
	return m;
}

static void
expect_reject(const char *text, size_t len, int want)
{
	struct dg_manifest *sentinel = (struct dg_manifest *)&sentinel, *m = sentinel;
	int rc = dg_manifest_parse(text, len, &m);
	ck_assert_msg(rc == want, "got %d, want %d for: %.*s", rc, want, (int)len, text);
	ck_assert_ptr_eq(m, sentinel); /* *out untouched */
}

static void
fill(uint8_t d[32], uint8_t v)
{
	memset(d, v, 32);
}

/* A tree with every kind of entry the walk must handle. */
START_TEST(test_build_matches_python)
{
	char *dir = tu_tmpdir(), root[256];
	char *text = NULL, *want;
	size_t len = 0, want_len = 0;
	struct dg_manifest *m = NULL;

	ck_assert_ptr_nonnull(dir);
	snprintf(root, sizeof root, "%s/rootfs", dir);
	ck_assert_int_eq(
		tu_sh("set -e; cd '%s'; mkdir -p rootfs/bin rootfs/etc/sub rootfs/a rootfs/empty; "
		      "cd rootfs; printf 'hello\\n' > etc/hostname; : > etc/empty-file; "
		      "printf '#!/bin/sh\\necho hi\\n' > bin/tool; chmod 755 bin/tool; "
		      "chmod 640 etc/hostname; ln -s tool bin/alias; ln -s /etc/sub bin/dirlink; "
		      "printf 'x' > etc/sub/inner; mkfifo etc/fifo; "
		      /* byte order across levels: "/a-c" sorts before "/a/b" */
		      "printf b > a/b; printf c > a-c; "
		      "printf sp > 'etc/with space'; printf nl > \"$(printf 'etc/new\\nline')\"; "
		      "printf bs > 'etc/back\\slash'; "
		      "printf u > \"$(printf 'etc/caf\\303\\251')\"; "
		      "ln -s 'target with space' etc/spacelink",
		      dir),
		0);
	ck_assert_int_eq(dg_manifest_build(root, &text, &len), DG_OK);
	want = python_manifest(dir, root, &want_len);
	ck_assert_uint_eq(len, want_len);
	ck_assert_mem_eq(text, want, len);
	ck_assert_int_eq(text[len], '\0');
	/* Spot checks that the comparison above covers what it should. */
	ck_assert_ptr_nonnull(strstr(text, " 100755 /bin/tool\n"));
	ck_assert_ptr_nonnull(strstr(text, " 120777 /bin/dirlink\n"));
	ck_assert_ptr_nonnull(strstr(text, " /etc/with\\x20space\n"));
	ck_assert_ptr_nonnull(strstr(text, " /etc/new\\x0aline\n"));
	ck_assert_ptr_nonnull(strstr(text, " /etc/back\\\\slash\n"));
	ck_assert_ptr_nonnull(strstr(text, " /etc/caf\\xc3\\xa9\n"));
	ck_assert_ptr_null(strstr(text, "fifo"));
	ck_assert_ptr_null(strstr(text, "/bin/dirlink/")); /* not followed */
	const char *a_dash = strstr(text, " /a-c\n"), *a_slash = strstr(text, " /a/b\n");
	ck_assert(a_dash != NULL && a_slash != NULL && a_dash < a_slash);
	/* The built text parses back to the same number of entries. */
	ck_assert_int_eq(dg_manifest_parse(text, len, &m), DG_OK);
	ck_assert_uint_eq(dg_manifest_count(m), 13);
	dg_manifest_free(m);
	free(want);
	free(text);
	tu_sh("rm -rf '%s'", dir);
	free(dir);
}
END_TEST

START_TEST(test_build_errors)
{
	char *dir = tu_tmpdir(), path[256];
	char *text = NULL;
	size_t len = 0;

	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/missing", dir);
	ck_assert_int_eq(dg_manifest_build(path, &text, &len), DG_ERR_IO);
	/* The root itself is not followed either. */
	ck_assert_int_eq(tu_sh("mkdir '%s/real' && ln -s real '%s/link'", dir, dir), 0);
	snprintf(path, sizeof path, "%s/link", dir);
	ck_assert_int_eq(dg_manifest_build(path, &text, &len), DG_ERR_IO);
	ck_assert_ptr_null(text);
	/* An empty root is an empty manifest. */
	snprintf(path, sizeof path, "%s/real", dir);
	ck_assert_int_eq(dg_manifest_build(path, &text, &len), DG_OK);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(text, "");
	free(text);
	tu_sh("rm -rf '%s'", dir);
	free(dir);
}
END_TEST

/* Every line below breaks exactly one rule. */
START_TEST(test_parse_rejects)
{
	static const char *bad[] = {
		HEX11 " 100644 /a",                          /* no final newline */
		HEX11 " 100644 /a\n\n",                      /* empty line */
		HEX11 " 100644 /a\r\n",                      /* CR is a byte to escape */
		"1111111111111111111111111111111111111111111111111111111111111111A 100644 /a\n",
		"111111111111111111111111111111111111111111111111111111111111111 100644 /a\n",
		"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB 100644 /a\n",
		HEX11 "  100644 /a\n",                       /* two blanks */
		HEX11 " 040755 /a\n",                        /* a directory */
		HEX11 " 060644 /a\n",                        /* a block device */
		HEX11 " 10644 /a\n",                         /* five digits */
		HEX11 " 1000644 /a\n",                       /* seven digits */
		HEX11 " 100648 /a\n",                        /* not octal */
		HEX11 " 100644 a\n",                         /* relative */
		HEX11 " 100644 /\n",                         /* the root itself */
		HEX11 " 100644 //a\n",                       /* empty component */
		HEX11 " 100644 /a/\n",                       /* trailing slash */
		HEX11 " 100644 /./a\n",
		HEX11 " 100644 /a/..\n",
		HEX11 " 100644 /a b\n",                      /* unescaped space */
		HEX11 " 100644 /a\tb\n",                     /* unescaped tab */
		HEX11 " 100644 /a\\x41\n",                   /* 'A' needs no escape */
		HEX11 " 100644 /a\\x0A\n",                   /* uppercase escape */
		HEX11 " 100644 /a\\x00\n",                   /* NUL */
		HEX11 " 100644 /a\\x5c\n",                   /* backslash is "\\\\" */
		HEX11 " 100644 /a\\q\n",                     /* unknown escape */
		HEX11 " 100644 /a\\x2\n",                    /* truncated escape */
		HEX11 " 100644 /a\\\n",                      /* lone backslash */
		HEX11 " 100644 /a\xc3\xa9\n",                /* raw non-ASCII */
		HEX11 " 100644 /b\n" HEX11 " 100644 /a\n",   /* unsorted */
		HEX11 " 100644 /a\n" HEX22 " 120777 /a\n",   /* repeated */
		HEX11 " 100644 /a/b\n" HEX11 " 100644 /a-c\n", /* byte order: '-' < '/' */
		HEX11 " 100644\n",
		HEX11 "\n",
		"\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_reject(bad[i], strlen(bad[i]), DG_ERR_FORMAT);
	/* A NUL byte inside the text. */
	expect_reject(HEX11 " 100644 /a\0b\n", strlen(HEX11) + 13, DG_ERR_FORMAT);

	/* A path of 4097 bytes is too long; 4096 is accepted. */
	size_t cap = 8192;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	for (size_t path_len = 4096; path_len <= 4097; path_len++) {
		int n = snprintf(text, cap, HEX11 " 100644 /");
		memset(text + n, 'p', path_len - 1);
		text[n + path_len - 1] = '\n';
		size_t len = (size_t)n + path_len;
		if (path_len == 4097) {
			expect_reject(text, len, DG_ERR_TOOBIG);
		} else {
			struct dg_manifest *m = NULL;
			ck_assert_int_eq(dg_manifest_parse(text, len, &m), DG_OK);
			dg_manifest_free(m);
		}
	}
	free(text);
	/* The text bound is checked before anything is read. */
	expect_reject("", (size_t)DG_MANIFEST_MAX_TEXT + 1, DG_ERR_TOOBIG);
}
END_TEST

START_TEST(test_parse_accepts)
{
	struct dg_manifest *m = must_parse(
		HEX22 " 120777 /bin/sh\n"
		HEX11 " 104755 /bin/su\n"                 /* setuid */
		HEX33 " 100644 /etc/a\\x20b\\\\c\\x7f\n"
		HEX11 " 100600 /etc/ab\n");
	ck_assert_uint_eq(dg_manifest_count(m), 4);
	dg_manifest_free(m);
	m = must_parse("");
	ck_assert_uint_eq(dg_manifest_count(m), 0);
	dg_manifest_free(m);
}
END_TEST

START_TEST(test_lookups)
{
	uint8_t d11[32], d22[32], d33[32], d44[32];
	struct dg_manifest *m = must_parse(
		HEX22 " 120777 /bin/sh\n"
		HEX11 " 100755 /bin/tool\n"
		HEX11 " 100755 /bin/tool2\n"
		HEX33 " 100644 /opt/my\\x20app\n"
		HEX22 " 100644 /opt/my_app\n"
		HEX11 " 100755 /usr/bin/a\n");

	fill(d11, 0x11);
	fill(d22, 0x22);
	fill(d33, 0x33);
	fill(d44, 0x44);
	ck_assert(dg_manifest_has(m, "/bin/tool", d11));
	ck_assert(!dg_manifest_has(m, "/bin/tool", d22));
	ck_assert(!dg_manifest_has(m, "/bin/too", d11));
	ck_assert(!dg_manifest_has(m, "/bin/sh", d22)); /* a symlink is not an executable file */
	/* The log turns spaces into '_': both real paths answer to "/opt/my_app". */
	ck_assert(dg_manifest_has(m, "/opt/my_app", d33));
	ck_assert(dg_manifest_has(m, "/opt/my_app", d22));
	ck_assert(dg_manifest_has(m, "/opt/my app", d33));
	ck_assert(!dg_manifest_has(m, "/opt/my_app", d11));
	/* First in path order among files with the digest; symlinks never. */
	ck_assert_str_eq(dg_manifest_path_of(m, d11), "/bin/tool");
	ck_assert_str_eq(dg_manifest_path_of(m, d22), "/opt/my_app");
	ck_assert_str_eq(dg_manifest_path_of(m, d33), "/opt/my app");
	ck_assert_ptr_null(dg_manifest_path_of(m, d44));
	dg_manifest_free(m);
}
END_TEST

START_TEST(test_diff)
{
	struct dg_manifest *a = must_parse(
		HEX11 " 100755 /bin/app\n"
		HEX22 " 120777 /bin/sh\n"
		HEX11 " 100644 /etc/conf\n"
		HEX33 " 100644 /etc/gone\n"
		HEX11 " 100644 /etc/mode\n"
		HEX11 " 100644 /etc/same\n");
	struct dg_manifest *b = must_parse(
		HEX22 " 100755 /bin/app\n"
		HEX33 " 120777 /bin/sh\n"
		HEX11 " 100755 /bin/zz\\x0a\n"
		HEX22 " 100755 /etc/conf\n"
		HEX11 " 104644 /etc/mode\n"
		HEX11 " 100644 /etc/same\n");
	struct dg_reason r[8];
	size_t n = 99;

	ck_assert_int_eq(dg_manifest_diff(a, b, r, 8, &n), DG_OK);
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(r[0].code, "file-changed");
	ck_assert_str_eq(r[0].detail, "/bin/app: sha256:111111111111.. -> sha256:222222222222..");
	ck_assert_str_eq(r[1].code, "file-changed");
	ck_assert_str_eq(r[1].detail, "/bin/sh: sha256:222222222222.. -> sha256:333333333333..");
	ck_assert_str_eq(r[2].code, "file-added");
	ck_assert_str_eq(r[2].detail, "/bin/zz? (sha256:111111111111.., mode 100755)");
	ck_assert_str_eq(r[3].code, "file-changed");
	ck_assert_str_eq(r[3].detail, "/etc/conf: sha256:111111111111.. -> sha256:222222222222.., "
	                              "mode 100644 -> 100755");
	ck_assert_str_eq(r[4].code, "file-removed");
	ck_assert_str_eq(r[4].detail, "/etc/gone (sha256:333333333333..)");
	ck_assert_str_eq(r[5].code, "file-changed");
	ck_assert_str_eq(r[5].detail, "/etc/mode: mode 100644 -> 104644");

	/* Bounded: the first max differences in path order. */
	ck_assert_int_eq(dg_manifest_diff(a, b, r, 2, &n), DG_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(r[1].detail, "/bin/sh: sha256:222222222222.. -> sha256:333333333333..");
	ck_assert_int_eq(dg_manifest_diff(a, b, r, 0, &n), DG_OK);
	ck_assert_uint_eq(n, 0);
	/* Identical, and the other direction. */
	ck_assert_int_eq(dg_manifest_diff(a, a, r, 8, &n), DG_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dg_manifest_diff(b, a, r, 8, &n), DG_OK);
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(r[2].code, "file-removed");
	ck_assert_str_eq(r[4].code, "file-added");
	dg_manifest_free(a);
	dg_manifest_free(b);
}
END_TEST

/* Best of a few runs, so a busy machine shows the warm cost. */
static double
time_build(const char *root, char **text, size_t *len)
{
	double best = 1e9;
	for (int run = 0; run < 5; run++) {
		free(*text);
		*text = NULL;
		double t0 = now_ms();
		ck_assert_int_eq(dg_manifest_build(root, text, len), DG_OK);
		double t = now_ms() - t0;
		best = t < best ? t : best;
	}
	return best;
}

START_TEST(test_timing)
{
	char *dir = tu_tmpdir(), root[256], count_path[512];
	char *text = NULL, *want, *applets;
	size_t len = 0, want_len = 0, count_len = 0;
	struct dg_manifest *m = NULL;

	ck_assert_ptr_nonnull(dir);
	snprintf(root, sizeof root, "%s/busybox", dir);
	snprintf(count_path, sizeof count_path, "%s/applets", dir);
	ck_assert_int_eq(tu_sh("set -e; mkdir -p '%s/bin'; cp /bin/busybox '%s/bin/'; "
	                       "cd '%s/bin'; for a in $(./busybox --list); do "
	                       "[ \"$a\" = busybox ] || ln -s busybox \"$a\"; done; "
	                       "ls -A | wc -l > '%s'",
	                       root, root, root, count_path),
	                 0);
	double busybox_ms = time_build(root, &text, &len);
	applets = (char *)tu_read_file(count_path, &count_len);
	ck_assert_ptr_nonnull(applets);
	ck_assert_int_eq(dg_manifest_parse(text, len, &m), DG_OK);
	unsigned long busybox_entries = strtoul(applets, NULL, 10);
	ck_assert_uint_eq(dg_manifest_count(m), busybox_entries);
	dg_manifest_free(m);
	want = python_manifest(dir, root, &want_len);
	ck_assert_uint_eq(len, want_len);
	ck_assert_mem_eq(text, want, len);
	free(want);
	free(applets);

	/* 10,000 small files in 100 directories. */
	snprintf(root, sizeof root, "%s/tree", dir);
	ck_assert_int_eq(tu_sh("python3 -c 'import os, sys\n"
	                       "for d in range(100):\n"
	                       "    p = os.path.join(sys.argv[1], \"d%%02d\" %% d)\n"
	                       "    os.makedirs(p)\n"
	                       "    for n in range(100):\n"
	                       "        with open(os.path.join(p, \"f%%03d\" %% n), \"w\") as f:\n"
	                       "            f.write(p * n)\n"
	                       "' '%s'",
	                       root),
	                 0);
	double tree_ms = time_build(root, &text, &len);
	ck_assert_int_eq(dg_manifest_parse(text, len, &m), DG_OK);
	ck_assert_uint_eq(dg_manifest_count(m), 10000);
	double t0 = now_ms();
	dg_manifest_free(m);
	ck_assert_int_eq(dg_manifest_parse(text, len, &m), DG_OK);
	double parse_ms = now_ms() - t0;
	dg_manifest_free(m);
	fprintf(stderr, "manifest: busybox rootfs (%lu entries) %.2f ms; 10,000 files %.1f ms, "
	                "parse %.1f ms\n",
	        busybox_entries, busybox_ms, tree_ms, parse_ms);
	/* Loose enough for sanitizer builds; the plain build is measured in the report. */
	ck_assert_msg(busybox_ms < 100, "busybox rootfs took %.1f ms", busybox_ms);
	ck_assert_msg(tree_ms < 2000, "10,000 files took %.1f ms", tree_ms);
	free(text);
	tu_sh("rm -rf '%s'", dir);
	free(dir);
}
END_TEST

static Suite *
manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_build_matches_python);
	tcase_add_test(tc, test_build_errors);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_accepts);
	tcase_add_test(tc, test_lookups);
	tcase_add_test(tc, test_diff);
	tcase_add_test(tc, test_timing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(manifest_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
