/* dg_file_read: the one bounded reader behind every loader. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftgate/err.h"
#include "driftgate/file.h"
#include "testutil.h"

START_TEST(reads_bounds_and_refusals)
{
	char *dir = tu_tmpdir(), path[256], link[256], *buf = NULL;
	size_t len = 0;
	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(link, sizeof link, "%s/l", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("hello\n", f);
	fclose(f);

	ck_assert_int_eq(dg_file_read(AT_FDCWD, path, 6, &buf, &len), DG_OK);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(buf, "hello\n"); /* NUL-terminated */
	free(buf);
	/* relative to a directory fd */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(dg_file_read(dfd, "f", 64, &buf, &len), DG_OK);
	free(buf);
	close(dfd);

	buf = NULL;
	ck_assert_int_eq(dg_file_read(AT_FDCWD, path, 5, &buf, &len), DG_ERR_TOOBIG);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_eq(dg_file_read(AT_FDCWD, link, 64, &buf, &len), DG_ERR_IO);
	ck_assert_int_eq(dg_file_read(AT_FDCWD, dir, 64, &buf, &len), DG_ERR_IO);
	snprintf(path, sizeof path, "%s/missing", dir);
	ck_assert_int_eq(dg_file_read(AT_FDCWD, path, 64, &buf, &len), DG_ERR_IO);
	ck_assert_ptr_null(buf);
	tu_sh("rm -rf '%s'", dir);
	free(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("file");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, reads_bounds_and_refusals);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
