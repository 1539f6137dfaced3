/*
 * Parallel tree hashing (dg_fsdigest_tree): digests checked against coreutils
 * sha256sum on a generated tree, reports in dg_fswalk's order whatever the
 * thread count, and the single error path (unreadable file, missing root,
 * callback failure) stopping at the first failure in walk order.
 */
#include "driftgate/err.h"
#include "driftgate/fsdigest.h"
#include "driftgate/fswalk.h"
#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FILES 1024

struct listing {
	size_t n;
	char *path[MAX_FILES];
	uint8_t digest[MAX_FILES][32];
	size_t stop_at; /* tree_cb fails with DG_ERR_DENIED at this index */
};

static void
listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->path[i]);
	l->n = 0;
}

static int
walk_cb(const char *path, void *arg)
{
	struct listing *l = arg;
	ck_assert_uint_lt(l->n, MAX_FILES);
	l->path[l->n++] = strdup(path);
	return DG_OK;
}

static int
tree_cb(const char *path, const uint8_t digest[32], void *arg)
{
	struct listing *l = arg;
	if (l->n == l->stop_at)
		return DG_ERR_DENIED;
	ck_assert_uint_lt(l->n, MAX_FILES);
	l->path[l->n] = strdup(path);
	memcpy(l->digest[l->n], digest, 32);
	l->n++;
	return DG_OK;
}

/* A tree with empty files, files around the 256 KiB read chunk, a few MiB,
 * hundreds of small files, nested directories, a symlink and a FIFO (both
 * skipped), names that sort differently per directory and as whole paths. */
static char *
make_tree(void)
{
	char *root = tu_tmpdir();
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(
	    tu_sh("set -e; cd %s; chmod 755 .; mkdir -p a/b/c a.d z 'sp ace';"
	          ": > empty; head -c 1 /dev/urandom > one;"
	          "head -c 262144 /dev/urandom > a/chunk; head -c 262145 /dev/urandom > a/chunk1;"
	          "head -c 262143 /dev/urandom > a/b/chunkm1; head -c 3000000 /dev/urandom > a/b/c/big;"
	          "head -c 100 /dev/urandom > a.txt; echo x > 'sp ace/f g';"
	          "for i in $(seq 1 400); do head -c $((i * 13)) /dev/urandom > z/s$i; done;"
	          "ln -s ../one a.d/link; mkfifo a.d/fifo; echo y > a.d/real",
	          root),
	    0);
	return root;
}

/* sha256sum's digest for path, by running it (one process for the tree). */
static void
sha256sum_table(const char *root, struct listing *out)
{
	char cmd[PATH_MAX + 128], line[PATH_MAX + 80];
	snprintf(cmd, sizeof cmd, "find '%s' -type f -print0 | xargs -0 sha256sum", root);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	out->n = 0;
	while (fgets(line, sizeof line, p) != NULL) {
		ck_assert_uint_lt(out->n, MAX_FILES);
		line[strcspn(line, "\n")] = '\0';
		ck_assert_uint_gt(strlen(line), 66);
		ck_assert(line[64] == ' ' && line[65] == ' ');
		line[64] = '\0';
		ck_assert_int_eq(tu_hex(line, out->digest[out->n], 32), 32);
		out->path[out->n++] = strdup(line + 66);
	}
	ck_assert_int_eq(pclose(p), 0);
}

static struct listing walked, hashed, expected;

START_TEST(test_tree_matches_sha256sum)
{
	char *root = make_tree();
	char failed[PATH_MAX];

	sha256sum_table(root, &expected);
	ck_assert_int_eq(dg_fswalk(root, walk_cb, &walked), DG_OK);
	ck_assert_uint_eq(walked.n, expected.n); /* find -type f skips the link and FIFO too */
	ck_assert_uint_eq(walked.n, 409);

	static const unsigned thread_counts[] = {0, 1, 2, 3, 8, 1000};
	for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
		hashed.stop_at = SIZE_MAX;
		strcpy(failed, "junk");
		ck_assert_int_eq(dg_fsdigest_tree(root, thread_counts[t], tree_cb, &hashed, failed,
		                                  sizeof failed),
		                 DG_OK);
		ck_assert_str_eq(failed, "");
		/* Same files, in the walk's order. */
		ck_assert_uint_eq(hashed.n, walked.n);
		for (size_t i = 0; i < walked.n; i++) {
			ck_assert_str_eq(hashed.path[i], walked.path[i]);
			size_t j = 0;
			while (j < expected.n && strcmp(expected.path[j], hashed.path[i]) != 0)
				j++;
			ck_assert_msg(j < expected.n, "%s not hashed by sha256sum", hashed.path[i]);
			ck_assert_mem_eq(hashed.digest[i], expected.digest[j], 32);
			uint8_t one[32];
			ck_assert_int_eq(dg_fsdigest_path(hashed.path[i], one), DG_OK);
			ck_assert_mem_eq(hashed.digest[i], one, 32);
		}
		listing_free(&hashed);
	}

	/* A regular file as root is hashed once. */
	char file[PATH_MAX];
	snprintf(file, sizeof file, "%s/a/b/c/big", root);
	hashed.stop_at = SIZE_MAX;
	ck_assert_int_eq(dg_fsdigest_tree(file, 2, tree_cb, &hashed, NULL, 0), DG_OK);
	ck_assert_uint_eq(hashed.n, 1);
	ck_assert_str_eq(hashed.path[0], file);
	listing_free(&hashed);

	listing_free(&walked);
	listing_free(&expected);
	tu_sh("rm -rf %s", root);
	free(root);
}
END_TEST

START_TEST(test_tree_missing_root)
{
	char failed[64] = "junk";
	hashed.stop_at = SIZE_MAX;
	ck_assert_int_eq(dg_fsdigest_tree("/nonexistent/driftgate/tree", 0, tree_cb, &hashed, failed,
	                                  sizeof failed),
	                 DG_ERR_IO);
	ck_assert_str_eq(failed, "");
	ck_assert_uint_eq(hashed.n, 0);
	ck_assert_int_eq(dg_fsdigest_tree(NULL, 0, tree_cb, &hashed, NULL, 0), DG_ERR_INVAL);
}
END_TEST

/* The callback's error stops the tree at that file and is returned as is. */
START_TEST(test_tree_callback_error)
{
	char *root = make_tree();
	char failed[PATH_MAX];

	for (unsigned threads = 1; threads <= 4; threads++) {
		hashed.stop_at = 200;
		ck_assert_int_eq(dg_fsdigest_tree(root, threads, tree_cb, &hashed, failed, sizeof failed),
		                 DG_ERR_DENIED);
		ck_assert_str_eq(failed, "");
		ck_assert_uint_eq(hashed.n, 200);
		listing_free(&hashed);
	}
	tu_sh("rm -rf %s", root);
	free(root);
}
END_TEST

/*
 * An unreadable file: the files before it are reported, nothing after it, and
 * its path comes back in failed. Root reads everything, so the check runs in a
 * child that drops to nobody (the tree is world-readable but for that file).
 */
START_TEST(test_tree_unreadable_file)
{
	char *root = make_tree();
	char bad[PATH_MAX];

	snprintf(bad, sizeof bad, "%s/a/b/chunkm1", root);
	ck_assert_int_eq(tu_sh("chmod -R a+rX %s && chmod 000 %s", root, bad), 0);
	ck_assert_int_eq(dg_fswalk(root, walk_cb, &walked), DG_OK);
	size_t bad_at = 0;
	while (bad_at < walked.n && strcmp(walked.path[bad_at], bad) != 0)
		bad_at++;
	ck_assert_uint_lt(bad_at, walked.n);
	ck_assert_uint_gt(bad_at, 0);

	for (unsigned threads = 1; threads <= 3; threads++) {
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			char failed[PATH_MAX];
			if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
				_exit(10);
			hashed.stop_at = SIZE_MAX;
			int rc = dg_fsdigest_tree(root, threads, tree_cb, &hashed, failed, sizeof failed);
			if (rc != DG_ERR_IO)
				_exit(11);
			if (strcmp(failed, bad) != 0)
				_exit(12);
			if (hashed.n != bad_at)
				_exit(13);
			for (size_t i = 0; i < hashed.n; i++)
				if (strcmp(hashed.path[i], walked.path[i]) != 0)
					_exit(14);
			_exit(0);
		}
		int st;
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFEXITED(st));
		ck_assert_int_eq(WEXITSTATUS(st), 0);
	}
	listing_free(&walked);
	tu_sh("rm -rf %s", root);
	free(root);
}
END_TEST

/* nested levels of directory "d" under a fresh root, with one file "f" at the bottom */
static char *
make_deep(unsigned levels)
{
	char *root = tu_tmpdir();
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(tu_sh("cd %s && p=$(printf 'd/%%.0s' $(seq %u)) && mkdir -p \"$p\" && "
	                       ": > \"$p/f\"", root, levels), 0);
	return root;
}

/* The walk recurses once per level: the depth is bounded, not the stack's luck
 * (2000 levels of one-letter names fit in PATH_MAX and used to need 8 MiB). */
START_TEST(test_walk_depth_is_bounded)
{
	static const struct {
		unsigned levels;
		int rc;
		size_t files;
	} cases[] = {
		{ DG_FSWALK_MAX_DEPTH, DG_OK, 1 },
		{ DG_FSWALK_MAX_DEPTH + 1, DG_ERR_TOOBIG, 0 },
		{ 2000, DG_ERR_TOOBIG, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *root = make_deep(cases[i].levels);
		ck_assert_int_eq(dg_fswalk(root, walk_cb, &walked), cases[i].rc);
		ck_assert_uint_eq(walked.n, cases[i].files);
		listing_free(&walked);
		hashed.stop_at = SIZE_MAX;
		ck_assert_int_eq(dg_fsdigest_tree(root, 2, tree_cb, &hashed, NULL, 0), cases[i].rc);
		listing_free(&hashed);
		tu_sh("rm -rf %s", root);
		free(root);
	}
}
END_TEST

static Suite *
fsdigest_suite(void)
{
	Suite *s = suite_create("fsdigest");
	TCase *tc = tcase_create("fsdigest");

	tcase_add_test(tc, test_tree_matches_sha256sum);
	tcase_add_test(tc, test_tree_missing_root);
	tcase_add_test(tc, test_tree_callback_error);
	tcase_add_test(tc, test_tree_unreadable_file);
	tcase_add_test(tc, test_walk_depth_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fsdigest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
