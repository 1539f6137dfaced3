/*
 * Replay of IMA logs into sha1 / sha256 PCR banks, checked against values
 * computed independently: a python3 hashlib replay, pasted hashlib answers,
 * and evmctl ima_measurement (ima-evm-utils) on the same log.
 */
#include "driftgate/err.h"
#include "driftgate/log.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_CAP (1024 * 1024)
#define ENTRY_COUNT 300
#define VIOLATION_AT 150

/*
 * A few hundred entries over PCR 10 and 11: ima-ng (sha256 and sha1 file
 * digests), ima-sig with and without a signature, ima-buf, one violation.
 */
static size_t
build_log(uint8_t *buf, size_t cap)
{
	size_t len = 0, n;

	for (int i = 0; i < ENTRY_COUNT; i++) {
		uint8_t digest[32], extra[40];
		char path[64];
		uint32_t pcr = i % 5 == 4 ? 11 : 10;
		enum dg_log_template t = DG_TEMPLATE_IMA_NG;
		const char *alg = i % 13 == 0 ? "sha1" : "sha256";
		size_t extra_len = 0;

		for (size_t j = 0; j < sizeof digest; j++)
			digest[j] = (uint8_t)(i * 31 + j);
		snprintf(path, sizeof path, "/usr/bin/prog%03d", i);
		if (i % 7 == 3) {
			t = DG_TEMPLATE_IMA_SIG;
			extra_len = i % 2 ? sizeof extra : 0; /* odd: signed */
		} else if (i % 11 == 5) {
			t = DG_TEMPLATE_IMA_BUF;
			snprintf(path, sizeof path, "kexec-cmdline");
			extra_len = (size_t)snprintf((char *)extra, sizeof extra, "root=/dev/vda%d", i);
		}
		if (t == DG_TEMPLATE_IMA_SIG)
			for (size_t j = 0; j < sizeof extra; j++)
				extra[j] = (uint8_t)(j == 0 ? 3 : i + j);
		ck_assert_int_eq(dg_log_encode(pcr, t, alg, digest, strcmp(alg, "sha1") ? 32 : 20,
		                               path, extra_len ? extra : NULL, extra_len, buf + len,
		                               cap - len, &n),
		                 DG_OK);
		if (i == VIOLATION_AT)
			memset(buf + len + 4, 0, DG_SHA1_LEN);
		len += n;
	}
	return len;
}

static void
replay_all(const uint8_t *log, size_t len, struct dg_replay *s)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rc;

	ck_assert_int_eq(dg_log_reader_init(&r, log, len, dg_log_detect_format(log, len)), DG_OK);
	while ((rc = dg_log_next(&r, &e)) == DG_OK)
		ck_assert_int_eq(dg_replay_extend(s, &e), DG_OK);
	ck_assert_int_eq(rc, DG_ERR_NOTFOUND);
	dg_log_reader_fini(&r);
}

static void
hex_of(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

static void
write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "wb"));
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* PCR values in evmctl's --pcrs file format: "PCR-NN: <hex>" for all 24.
 * flip_pcr >= 0 flips one bit of that PCR's value. */
static void
write_pcrs(const char *dir, const char *name, const struct dg_replay *s, int sha1, int flip_pcr)
{
	char path[512], hex[2 * DG_SHA256_LEN + 1];
	uint8_t value[DG_SHA256_LEN];
	size_t len = sha1 ? DG_SHA1_LEN : DG_SHA256_LEN;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	for (int i = 0; i < DG_LOG_MAX_PCR; i++) {
		memcpy(value, sha1 ? s->sha1[i] : s->sha256[i], len);
		if (i == flip_pcr)
			value[0] ^= 1;
		hex_of(value, len, hex);
		fprintf(f, "PCR-%02d: %s\n", i, hex);
	}
	fclose(f);
}

/* An independent replay: python3 parses the binary log with struct and
 * extends with hashlib, printing "bank pcr hex" for every PCR. */
static const char python_replay[] =
	"import hashlib, struct, sys\n"
	"log = open(sys.argv[1], 'rb').read()\n"
	"p1, p256, off = [bytes(20)] * 24, [bytes(32)] * 24, 0\n"
	"while off < len(log):\n"
	"    pcr, = struct.unpack_from('<I', log, off)\n"
	"    th = log[off + 4:off + 24]\n"
	"    nl, = struct.unpack_from('<I', log, off + 24)\n"
	"    dl, = struct.unpack_from('<I', log, off + 28 + nl)\n"
	"    data = log[off + 32 + nl:off + 32 + nl + dl]\n"
	"    off += 32 + nl + dl\n"
	"    if th == bytes(20):\n"
	"        e1, e256 = b'\\xff' * 20, b'\\xff' * 32\n"
	"    else:\n"
	"        assert hashlib.sha1(data).digest() == th\n"
	"        e1, e256 = th, hashlib.sha256(data).digest()\n"
	"    p1[pcr] = hashlib.sha1(p1[pcr] + e1).digest()\n"
	"    p256[pcr] = hashlib.sha256(p256[pcr] + e256).digest()\n"
	"for i in range(24):\n"
	"    print('sha1 %d %s' % (i, p1[i].hex()))\n"
	"    print('sha256 %d %s' % (i, p256[i].hex()))\n";

START_TEST(test_replay_matches_python)
{
	static uint8_t log[LOG_CAP];
	size_t len = build_log(log, sizeof log);
	char *dir = tu_tmpdir(), path[512], bank[16], hex[65], mine[65];
	struct dg_replay s;
	unsigned pcr;
	int lines = 0;
	FILE *f;

	dg_replay_init(&s);
	replay_all(log, len, &s);
	ck_assert_uint_eq(s.entries, ENTRY_COUNT);
	ck_assert_uint_eq(s.used, (1u << 10) | (1u << 11));

	write_file(dir, "log.bin", log, len);
	write_file(dir, "replay.py", python_replay, strlen(python_replay));
	ck_assert_int_eq(tu_sh("cd %s && python3 replay.py log.bin > expected", dir), 0);
	snprintf(path, sizeof path, "%s/expected", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fscanf(f, "%15s %u %64s", bank, &pcr, hex) == 3) {
		ck_assert_uint_lt(pcr, DG_LOG_MAX_PCR);
		if (strcmp(bank, "sha1") == 0)
			hex_of(s.sha1[pcr], DG_SHA1_LEN, mine);
		else
			hex_of(s.sha256[pcr], DG_SHA256_LEN, mine);
		ck_assert_str_eq(mine, hex);
		lines++;
	}
	fclose(f);
	ck_assert_int_eq(lines, 2 * DG_LOG_MAX_PCR);
	dg_replay_fini(&s);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

/*
 * The cross-check with evmctl 1.4 (ima-evm-utils). What it does, found by
 * trying it here:
 *  - exit 0 and "Matched per TPM bank calculated digest(s)." when every PCR
 *    the log extends matches the file; exit 1 otherwise. No -v needed.
 *  - PCRs the log does not touch are not compared (a wrong PCR-05 passes).
 *  - violations: by default evmctl extends the logged all-zero hash, so a log
 *    with a violation only matches kernel-style PCRs (0xff extends, as
 *    dg_replay does) with --ignore-violations; without it, it exits 1.
 *  - ima-buf entries are replayed like any other template.
 *  - ima-sig entries with a signature make it print "Failed to stat" for the
 *    (absent) file; that does not change the result.
 *  - a changed template data byte fails with "Failed to verify template data
 *    digest." (exit 1).
 */
START_TEST(test_replay_agrees_with_evmctl)
{
	static uint8_t log[LOG_CAP];
	size_t len = build_log(log, sizeof log), digest_off;
	char *dir = tu_tmpdir();
	struct dg_replay s;

	dg_replay_init(&s);
	replay_all(log, len, &s);
	write_file(dir, "log.bin", log, len);
	write_pcrs(dir, "sha256.pcrs", &s, 0, -1);
	write_pcrs(dir, "sha1.pcrs", &s, 1, -1);
	write_pcrs(dir, "sha256-bad10.pcrs", &s, 0, 10);
	write_pcrs(dir, "sha256-bad11.pcrs", &s, 0, 11);
	write_pcrs(dir, "sha1-bad10.pcrs", &s, 1, 10);

#define EVMCTL(args) \
	tu_sh("cd %s && evmctl ima_measurement " args " >> evmctl.out 2>&1", dir)
	ck_assert_int_eq(EVMCTL("--ignore-violations --pcrs sha256,sha256.pcrs log.bin"), 0);
	ck_assert_int_eq(EVMCTL("--ignore-violations --pcrs sha1,sha1.pcrs log.bin"), 0);
	ck_assert_int_eq(EVMCTL("--ignore-violations --pcrs sha256,sha256.pcrs "
	                        "--pcrs sha1,sha1.pcrs log.bin"), 0);
	/* It can fail: wrong PCR values, violations counted, a changed log. */
	ck_assert_int_eq(EVMCTL("--ignore-violations --pcrs sha256,sha256-bad10.pcrs log.bin"), 1);
	ck_assert_int_eq(EVMCTL("--ignore-violations --pcrs sha256,sha256-bad11.pcrs log.bin"), 1);
	ck_assert_int_eq(EVMCTL("--ignore-violations --pcrs sha1,sha1-bad10.pcrs log.bin"), 1);
	ck_assert_int_eq(EVMCTL("--pcrs sha256,sha256.pcrs log.bin"), 1);
	/* Entry 0 is ima-ng with a sha1 file digest, which starts after pcr,
	 * template hash, name length, "ima-ng", data length, field length and
	 * "sha1:\0". */
	digest_off = 4 + DG_SHA1_LEN + 4 + 6 + 4 + 4 + 6;
	log[digest_off] ^= 1;
	write_file(dir, "tampered.bin", log, len);
	ck_assert_int_ne(EVMCTL("--ignore-violations --pcrs sha256,sha256.pcrs tampered.bin"), 0);
#undef EVMCTL
	dg_replay_fini(&s);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

/*
 * Violation: extends all-0xff of the bank size. Answers from python3:
 *   hashlib.sha1(bytes(20) + b'\xff' * 20).hexdigest()
 *   hashlib.sha256(bytes(32) + b'\xff' * 32).hexdigest()
 * and each once more over the result for the second violation.
 */
START_TEST(test_violation_known_answer)
{
	static const char *const sha1_once = "bac37b84f007d0238af95af707cac8d61254870e";
	static const char *const sha256_once =
		"bba91ca85dc914b2ec3efb9e16e7267bf9193b14350d20fba8a8b406730ae30a";
	static const char *const sha1_twice = "96fd28ac05d44e13d328c418ccc3ab39a93ab49d";
	static const char *const sha256_twice =
		"106cc965795d5701de940438f5080f532768bc98b59b67f967a4281dc2835aef";
	struct dg_log_entry e;
	struct dg_replay s;
	char hex[65];

	memset(&e, 0, sizeof e);
	e.pcr = 10;
	e.violation = true;
	dg_replay_init(&s);
	ck_assert_int_eq(dg_replay_extend(&s, &e), DG_OK);
	hex_of(s.sha1[10], DG_SHA1_LEN, hex);
	ck_assert_str_eq(hex, sha1_once);
	hex_of(s.sha256[10], DG_SHA256_LEN, hex);
	ck_assert_str_eq(hex, sha256_once);
	ck_assert_int_eq(dg_replay_extend(&s, &e), DG_OK);
	hex_of(s.sha1[10], DG_SHA1_LEN, hex);
	ck_assert_str_eq(hex, sha1_twice);
	hex_of(s.sha256[10], DG_SHA256_LEN, hex);
	ck_assert_str_eq(hex, sha256_twice);
	ck_assert_uint_eq(s.entries, 2);
	ck_assert_uint_eq(s.used, 1u << 10);
	dg_replay_fini(&s);
}
END_TEST

START_TEST(test_bad_entries_change_nothing)
{
	static uint8_t log[LOG_CAP];
	size_t len = build_log(log, sizeof log);
	struct dg_replay s, before;
	struct dg_log_entry e;

	dg_replay_init(&s);
	replay_all(log, len, &s);
	dg_replay_init(&before);
	dg_replay_copy(&before, &s);

	memset(&e, 0, sizeof e);
	e.violation = true;
	e.pcr = DG_LOG_MAX_PCR;
	ck_assert_int_eq(dg_replay_extend(&s, &e), DG_ERR_FORMAT);
	e.pcr = 0xffffffffu;
	ck_assert_int_eq(dg_replay_extend(&s, &e), DG_ERR_FORMAT);
	/* A non-violation entry without template data. */
	e.pcr = 10;
	e.violation = false;
	ck_assert_int_eq(dg_replay_extend(&s, &e), DG_ERR_INVAL);
	ck_assert_mem_eq(s.sha1, before.sha1, sizeof s.sha1);
	ck_assert_mem_eq(s.sha256, before.sha256, sizeof s.sha256);
	ck_assert_uint_eq(s.used, before.used);
	ck_assert_uint_eq(s.entries, before.entries);
	dg_replay_fini(&before);
	dg_replay_fini(&s);
}
END_TEST

/* Incremental: replay a prefix, copy the state, continue: same as at once. */
START_TEST(test_incremental_copy)
{
	static uint8_t log[LOG_CAP];
	size_t len = build_log(log, sizeof log);
	struct dg_replay full, part, resumed;
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rc;

	dg_replay_init(&full);
	replay_all(log, len, &full);

	dg_replay_init(&part);
	dg_replay_init(&resumed);
	ck_assert_int_eq(dg_log_reader_init(&r, log, len, DG_LOG_FORMAT_BINARY), DG_OK);
	for (int i = 0; i < ENTRY_COUNT / 3; i++) {
		ck_assert_int_eq(dg_log_next(&r, &e), DG_OK);
		ck_assert_int_eq(dg_replay_extend(&part, &e), DG_OK);
	}
	dg_replay_copy(&resumed, &part);
	ck_assert_uint_eq(resumed.entries, ENTRY_COUNT / 3);
	ck_assert_int_ne(memcmp(resumed.sha256, full.sha256, sizeof full.sha256), 0);
	while ((rc = dg_log_next(&r, &e)) == DG_OK)
		ck_assert_int_eq(dg_replay_extend(&resumed, &e), DG_OK);
	ck_assert_int_eq(rc, DG_ERR_NOTFOUND);
	ck_assert_mem_eq(resumed.sha1, full.sha1, sizeof full.sha1);
	ck_assert_mem_eq(resumed.sha256, full.sha256, sizeof full.sha256);
	ck_assert_uint_eq(resumed.used, full.used);
	ck_assert_uint_eq(resumed.entries, full.entries);
	/* The prefix state was not disturbed by the copy's progress. */
	ck_assert_uint_eq(part.entries, ENTRY_COUNT / 3);
	dg_log_reader_fini(&r);
	dg_replay_fini(&full);
	dg_replay_fini(&part);
	dg_replay_fini(&resumed);
}
END_TEST

static Suite *
replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("replay");

	tcase_add_test(tc, test_replay_matches_python);
	tcase_add_test(tc, test_replay_agrees_with_evmctl);
	tcase_add_test(tc, test_violation_known_answer);
	tcase_add_test(tc, test_bad_entries_change_nothing);
	tcase_add_test(tc, test_incremental_copy);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(replay_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
