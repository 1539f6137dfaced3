/* Config files and option values (common/conf.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/conf.h"
#include "driftgate/err.h"

struct seen {
	char keys[8][64], values[8][64];
	int n;
};

static int
record(const char *key, const char *value, void *arg)
{
	struct seen *s = arg;
	if (strcmp(key, "refuse") == 0)
		return DG_ERR_INVAL;
	snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
	snprintf(s->values[s->n], sizeof s->values[0], "%s", value);
	s->n++;
	return DG_OK;
}

START_TEST(parse_settings_and_comments)
{
	const char text[] = "# comment\n\n  pcr = 13  \nverifier=tcp://h:1 # trailing comment\n"
	                    "empty =\nlast = x";
	struct seen s = {0};
	char err[128] = "";
	ck_assert_int_eq(dg_conf_parse(text, strlen(text), record, &s, err, sizeof err), DG_OK);
	ck_assert_int_eq(s.n, 4);
	ck_assert_str_eq(s.keys[0], "pcr");
	ck_assert_str_eq(s.values[0], "13");
	ck_assert_str_eq(s.values[1], "tcp://h:1");
	ck_assert_str_eq(s.keys[2], "empty");
	ck_assert_str_eq(s.values[2], "");
	ck_assert_str_eq(s.values[3], "x");
}
END_TEST

START_TEST(parse_errors_name_the_line)
{
	struct seen s = {0};
	char err[128];
	ck_assert_int_eq(dg_conf_parse("a = 1\nno equals\n", 16, record, &s, err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_str_eq(err, "line 2: expected 'key = value'");
	ck_assert_int_eq(dg_conf_parse(" = 1\n", 5, record, &s, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_str_eq(err, "line 1: empty key");
	ck_assert_int_eq(dg_conf_parse("a = \0b\n", 7, record, &s, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_str_eq(err, "line 1: NUL byte");
	/* the setter's refusal stops parsing and names key and line */
	ck_assert_int_eq(dg_conf_parse("x=1\nrefuse = y\n", 15, record, &s, err, sizeof err),
	                 DG_ERR_INVAL);
	ck_assert_str_eq(err, "line 2: refuse: invalid argument");
	char *big = malloc(DG_CONF_MAX_BYTES + 1);
	memset(big, '#', DG_CONF_MAX_BYTES + 1);
	ck_assert_int_eq(dg_conf_parse(big, DG_CONF_MAX_BYTES + 1, record, &s, err, sizeof err),
	                 DG_ERR_TOOBIG);
	free(big);
}
END_TEST

START_TEST(values)
{
	char buf[4];
	unsigned long v = 99;
	bool b = false;
	ck_assert_int_eq(dg_conf_str(buf, sizeof buf, "abc"), DG_OK);
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(dg_conf_str(buf, sizeof buf, "abcd"), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_str(buf, sizeof buf, ""), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_uint("13", 8, 15, &v), DG_OK);
	ck_assert_uint_eq(v, 13);
	ck_assert_int_eq(dg_conf_uint("0x81010001", 0x81000000, 0x81ffffff, &v), DG_OK);
	ck_assert_uint_eq(v, 0x81010001);
	ck_assert_int_eq(dg_conf_uint("7", 8, 15, &v), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_uint("16", 8, 15, &v), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_uint("-1", 0, 15, &v), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_uint("12x", 0, 15, &v), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_uint("", 0, 15, &v), DG_ERR_INVAL);
	ck_assert_int_eq(dg_conf_uint("99999999999999999999999", 0, 15, &v), DG_ERR_INVAL);
	ck_assert_uint_eq(v, 0x81010001); /* untouched by failures */
	ck_assert_int_eq(dg_conf_bool("yes", &b), DG_OK);
	ck_assert(b);
	ck_assert_int_eq(dg_conf_bool("0", &b), DG_OK);
	ck_assert(!b);
	ck_assert_int_eq(dg_conf_bool("maybe", &b), DG_ERR_INVAL);
	ck_assert(!b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, parse_settings_and_comments);
	tcase_add_test(tc, parse_errors_name_the_line);
	tcase_add_test(tc, values);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
