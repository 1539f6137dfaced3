/*
 * Measurement log: encoder, binary and ascii readers, ascii formatter, and the
 * file digest used to measure. Known answers come from python3 (struct +
 * hashlib), which builds the kernel formats on its own from the same inputs.
 */
#include "driftgate/err.h"
#include "driftgate/fsdigest.h"
#include "driftgate/log.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAMPLE_CAP (256 * 1024)

struct sample {
	uint32_t pcr;
	enum dg_log_template template_id;
	const char *alg;
	size_t digest_len;
	const char *path;
	const char *extra; /* bytes as a string, NULL for none */
	int violation;
};

/* Every template, every digest, one- and two-digit PCRs, a path with a space
 * (the kernel logs it with '_'), an empty ima-sig signature, a violation. */
static const struct sample samples[] = {
	{10, DG_TEMPLATE_IMA_NG, "sha256", 32, "/usr/bin/env", NULL, 0},
	{10, DG_TEMPLATE_IMA_NG, "sha1", 20, "/bin/sh", NULL, 0},
	{10, DG_TEMPLATE_IMA_SIG, "sha256", 32, "/usr/lib/libc.so.6", "\x03\x02\x04sig", 0},
	{10, DG_TEMPLATE_IMA_SIG, "sha512", 64, "/etc/ld.so.cache", NULL, 0},
	{11, DG_TEMPLATE_IMA_BUF, "sha256", 32, "kexec-cmdline", "root=/dev/sda1 ro", 0},
	{5, DG_TEMPLATE_IMA_NG, "sha384", 48, "/opt/a file", NULL, 0},
	{10, DG_TEMPLATE_IMA_NG, "sha256", 32, "/tmp/violated", NULL, 1},
	{23, DG_TEMPLATE_IMA_BUF, "sha1", 20, "empty-buffer", NULL, 0},
};
#define SAMPLE_COUNT (sizeof samples / sizeof samples[0])

static void
sample_digest(size_t k, uint8_t *out, size_t len)
{
	for (size_t j = 0; j < len; j++)
		out[j] = (uint8_t)(k * 16 + j * 3 + 1);
}

/* Encode the samples into buf; entry offsets into offs[SAMPLE_COUNT + 1]. */
static size_t
build_sample_log(uint8_t *buf, size_t cap, size_t *offs)
{
	size_t len = 0, n;
	uint8_t digest[DG_LOG_MAX_DIGEST];

	for (size_t k = 0; k < SAMPLE_COUNT; k++) {
		const struct sample *s = &samples[k];
		size_t extra_len = s->extra ? strlen(s->extra) : 0;
		sample_digest(k, digest, s->digest_len);
		if (offs)
			offs[k] = len;
		ck_assert_int_eq(dg_log_encode(s->pcr, s->template_id, s->alg, digest,
		                               s->digest_len, s->path,
		                               (const uint8_t *)s->extra, extra_len, buf + len,
		                               cap - len, &n),
		                 DG_OK);
		if (s->violation)
			memset(buf + len + 4, 0, DG_SHA1_LEN);
		len += n;
	}
	if (offs)
		offs[SAMPLE_COUNT] = len;
	return len;
}

static void
hex_of(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

/*
 * python3 builds the binary and ascii logs from a tab-separated description
 * (pcr, template, alg, digest hex, path, extra hex, violation) following the
 * kernel: ima_fs.c (binary layout, "%2d " pcr, " "-separated fields with a
 * bare " " for an empty one) and ima_template_lib.c ("alg:\0" digest, path
 * with spaces turned into '_' and a NUL, hex for sig / buf).
 */
static const char python_builder[] =
	"import hashlib, struct, sys\n"
	"binary, ascii = b'', ''\n"
	"for line in open(sys.argv[1]):\n"
	"    pcr, tmpl, alg, dig, path, extra, viol = line.rstrip('\\n').split('\\t')\n"
	"    dig, extra = bytes.fromhex(dig), bytes.fromhex(extra)\n"
	"    path = path.replace(' ', '_')\n"
	"    d = alg.encode() + b':\\0' + dig\n"
	"    n = path.encode() + b'\\0'\n"
	"    data = struct.pack('<I', len(d)) + d + struct.pack('<I', len(n)) + n\n"
	"    if tmpl != 'ima-ng':\n"
	"        data += struct.pack('<I', len(extra)) + extra\n"
	"    th = bytes(20) if viol == '1' else hashlib.sha1(data).digest()\n"
	"    binary += struct.pack('<I', int(pcr)) + th + struct.pack('<I', len(tmpl))\n"
	"    binary += tmpl.encode() + struct.pack('<I', len(data)) + data\n"
	"    fields = [alg + ':' + dig.hex(), path] + ([extra.hex()] if tmpl != 'ima-ng' else [])\n"
	"    ascii += '%2d %s %s' % (int(pcr), th.hex(), tmpl) + ''.join(' ' + f for f in fields) + '\\n'\n"
	"open(sys.argv[2], 'wb').write(binary)\n"
	"open(sys.argv[3], 'w').write(ascii)\n";

static void
python_sample_logs(const char *dir)
{
	char path[512], hex[2 * DG_LOG_MAX_EXTRA + 1];
	uint8_t digest[DG_LOG_MAX_DIGEST];
	FILE *f;

	snprintf(path, sizeof path, "%s/build.py", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(python_builder, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/samples.tsv", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	for (size_t k = 0; k < SAMPLE_COUNT; k++) {
		const struct sample *s = &samples[k];
		sample_digest(k, digest, s->digest_len);
		hex_of(digest, s->digest_len, hex);
		fprintf(f, "%u\t%s\t%s\t%s\t%s\t", s->pcr, dg_log_template_name(s->template_id),
		        s->alg, hex, s->path);
		hex_of((const uint8_t *)(s->extra ? s->extra : ""), s->extra ? strlen(s->extra) : 0,
		       hex);
		fprintf(f, "%s\t%d\n", hex, s->violation);
	}
	fclose(f);
	ck_assert_int_eq(tu_sh("cd %s && python3 build.py samples.tsv expected.bin expected.txt", dir),
	                 0);
}

START_TEST(test_encode_matches_python)
{
	static uint8_t log[SAMPLE_CAP];
	char *dir = tu_tmpdir(), path[512];
	size_t len = build_sample_log(log, sizeof log, NULL), expected_len;
	uint8_t *expected;

	python_sample_logs(dir);
	snprintf(path, sizeof path, "%s/expected.bin", dir);
	ck_assert_ptr_nonnull(expected = tu_read_file(path, &expected_len));
	ck_assert_uint_eq(len, expected_len);
	ck_assert_mem_eq(log, expected, len);
	free(expected);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

/* Read the binary log, check every view against the samples, format each
 * entry as ascii and compare with python's lines, then read those lines back. */
START_TEST(test_round_trip_binary_ascii)
{
	static uint8_t log[SAMPLE_CAP];
	static char ascii[SAMPLE_CAP];
	char *dir = tu_tmpdir(), path[512];
	size_t offs[SAMPLE_COUNT + 1], len = build_sample_log(log, sizeof log, offs);
	size_t ascii_len = 0, n, expected_len;
	uint8_t digest[DG_LOG_MAX_DIGEST], *expected;
	uint8_t data_copy[SAMPLE_COUNT][512];
	size_t data_len[SAMPLE_COUNT];
	struct dg_log_reader r, ra;
	struct dg_log_entry e;

	ck_assert_int_eq(dg_log_detect_format(log, len), DG_LOG_FORMAT_BINARY);
	ck_assert_int_eq(dg_log_reader_init(&r, log, len, DG_LOG_FORMAT_BINARY), DG_OK);
	for (size_t k = 0; k < SAMPLE_COUNT; k++) {
		const struct sample *s = &samples[k];
		size_t extra_len = s->extra ? strlen(s->extra) : 0;
		ck_assert_uint_eq(r.off, offs[k]);
		ck_assert_int_eq(dg_log_next(&r, &e), DG_OK);
		ck_assert_uint_eq(e.pcr, s->pcr);
		ck_assert_int_eq(e.template_id, s->template_id);
		ck_assert_int_eq(e.violation, s->violation);
		ck_assert_str_eq(e.hash_alg, s->alg);
		sample_digest(k, digest, s->digest_len);
		ck_assert_uint_eq(e.digest_len, s->digest_len);
		ck_assert_mem_eq(e.digest, digest, s->digest_len);
		ck_assert_uint_eq(e.path_len, strlen(s->path));
		ck_assert_uint_eq(e.path[e.path_len], '\0');
		if (strchr(s->path, ' ') == NULL)
			ck_assert_str_eq(e.path, s->path);
		else
			ck_assert_str_eq(e.path, "/opt/a_file");
		ck_assert_uint_eq(e.extra_len, extra_len);
		if (extra_len != 0)
			ck_assert_mem_eq(e.extra, s->extra, extra_len);
		else
			ck_assert_ptr_null(e.extra);
		ck_assert(e.template_data_len <= sizeof data_copy[k]);
		memcpy(data_copy[k], e.template_data, e.template_data_len);
		data_len[k] = e.template_data_len;
		ck_assert_int_eq(dg_log_format_ascii(&e, ascii + ascii_len,
		                                     sizeof ascii - ascii_len, &n),
		                 DG_OK);
		ck_assert_uint_eq(strlen(ascii + ascii_len), n);
		ascii_len += n;
	}
	ck_assert_int_eq(dg_log_next(&r, &e), DG_ERR_NOTFOUND);
	ck_assert_uint_eq(r.index, SAMPLE_COUNT);
	ck_assert_uint_eq(r.off, len);
	dg_log_reader_fini(&r);

	python_sample_logs(dir);
	snprintf(path, sizeof path, "%s/expected.txt", dir);
	ck_assert_ptr_nonnull(expected = tu_read_file(path, &expected_len));
	ck_assert_uint_eq(ascii_len, expected_len);
	ck_assert_mem_eq(ascii, expected, ascii_len);
	free(expected);

	ck_assert_int_eq(dg_log_detect_format((uint8_t *)ascii, ascii_len), DG_LOG_FORMAT_ASCII);
	ck_assert_int_eq(dg_log_reader_init(&ra, (uint8_t *)ascii, ascii_len,
	                                    DG_LOG_FORMAT_ASCII), DG_OK);
	ck_assert_int_eq(dg_log_reader_init(&r, log, len, DG_LOG_FORMAT_BINARY), DG_OK);
	for (size_t k = 0; k < SAMPLE_COUNT; k++) {
		struct dg_log_entry eb;
		ck_assert_int_eq(dg_log_next(&ra, &e), DG_OK);
		ck_assert_int_eq(dg_log_next(&r, &eb), DG_OK);
		ck_assert_uint_eq(e.template_data_len, data_len[k]);
		ck_assert_mem_eq(e.template_data, data_copy[k], data_len[k]);
		ck_assert_mem_eq(e.template_hash, eb.template_hash, DG_SHA1_LEN);
		ck_assert_uint_eq(e.pcr, eb.pcr);
		ck_assert_int_eq(e.template_id, eb.template_id);
		ck_assert_int_eq(e.violation, eb.violation);
		ck_assert_str_eq(e.hash_alg, eb.hash_alg);
		ck_assert_str_eq(e.path, eb.path);
		ck_assert_uint_eq(e.extra_len, eb.extra_len);
	}
	ck_assert_int_eq(dg_log_next(&ra, &e), DG_ERR_NOTFOUND);
	ck_assert_uint_eq(ra.off, ascii_len);
	dg_log_reader_fini(&ra);
	dg_log_reader_fini(&r);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

/* Read everything; return the first non-OK code. */
static int
read_all(const uint8_t *buf, size_t len, enum dg_log_format fmt, struct dg_log_reader *r)
{
	struct dg_log_entry e;
	int rc;

	ck_assert_int_eq(dg_log_reader_init(r, buf, len, fmt), DG_OK);
	while ((rc = dg_log_next(r, &e)) == DG_OK)
		;
	return rc;
}

START_TEST(test_truncated_everywhere)
{
	static uint8_t log[SAMPLE_CAP];
	static char ascii[SAMPLE_CAP];
	size_t offs[SAMPLE_COUNT + 1], len = build_sample_log(log, sizeof log, offs);
	size_t aoffs[SAMPLE_COUNT + 1], ascii_len = 0, n;
	struct dg_log_reader r;
	struct dg_log_entry e;

	ck_assert_int_eq(dg_log_reader_init(&r, log, len, DG_LOG_FORMAT_BINARY), DG_OK);
	for (size_t k = 0; k < SAMPLE_COUNT; k++) {
		ck_assert_int_eq(dg_log_next(&r, &e), DG_OK);
		aoffs[k] = ascii_len;
		ck_assert_int_eq(dg_log_format_ascii(&e, ascii + ascii_len, sizeof ascii - ascii_len,
		                                     &n), DG_OK);
		ascii_len += n;
	}
	aoffs[SAMPLE_COUNT] = ascii_len;
	dg_log_reader_fini(&r);

	for (int pass = 0; pass < 2; pass++) {
		const uint8_t *buf = pass == 0 ? log : (const uint8_t *)ascii;
		const size_t *o = pass == 0 ? offs : aoffs;
		size_t total = pass == 0 ? len : ascii_len, k = 0;
		for (size_t cut = 0; cut < total; cut++) {
			/* A fresh copy so ASan sees any read past the cut. */
			uint8_t *copy = malloc(cut ? cut : 1);
			memcpy(copy, buf, cut);
			while (o[k + 1] <= cut)
				k++;
			int rc = read_all(copy, cut, pass ? DG_LOG_FORMAT_ASCII : DG_LOG_FORMAT_BINARY,
			                  &r);
			ck_assert_uint_eq(r.index, k);
			ck_assert_uint_eq(r.off, o[k]);
			ck_assert_int_eq(rc, cut == o[k] ? DG_ERR_NOTFOUND : DG_ERR_TRUNCATED);
			dg_log_reader_fini(&r);
			free(copy);
		}
	}
}
END_TEST

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* One binary entry around raw template data, with a correct sha1 template
 * hash (computed with OpenSSL: what is tested here is the parser). */
static size_t
craft_entry(uint32_t pcr, const char *name, const uint8_t *data, size_t data_len,
            uint8_t *out)
{
	size_t name_len = strlen(name);

	put_u32(out, pcr);
	ck_assert_int_eq(EVP_Q_digest(NULL, "SHA1", NULL, data, data_len, out + 4, NULL), 1);
	put_u32(out + 24, (uint32_t)name_len);
	memcpy(out + 28, name, name_len);
	put_u32(out + 28 + name_len, (uint32_t)data_len);
	memcpy(out + 32 + name_len, data, data_len);
	return 32 + name_len + data_len;
}

/* Append one "u32 len | bytes" field. */
static size_t
add_field(uint8_t *data, size_t at, const void *bytes, size_t len)
{
	put_u32(data + at, (uint32_t)len);
	memcpy(data + at + 4, bytes, len);
	return at + 4 + len;
}

static int
read_one(const uint8_t *buf, size_t len)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rc;

	ck_assert_int_eq(dg_log_reader_init(&r, buf, len, DG_LOG_FORMAT_BINARY), DG_OK);
	rc = dg_log_next(&r, &e);
	if (rc != DG_OK) {
		ck_assert_uint_eq(r.index, 0);
		ck_assert_uint_eq(r.off, 0);
	}
	dg_log_reader_fini(&r);
	return rc;
}

static const uint8_t sha256_field[] = "sha256:\0"
	"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
	"\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20";
#define SHA256_FIELD_LEN (8 + 32)

START_TEST(test_template_data_rejects)
{
	static uint8_t data[DG_LOG_MAX_TEMPLATE_DATA + 64], out[DG_LOG_MAX_TEMPLATE_DATA + 128];
	static char long_path[DG_LOG_MAX_PATH + 2];
	size_t n;

	/* The well-formed baseline is accepted. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_OK);
	/* Path without its NUL. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 7);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	/* Path with a NUL inside. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin\0ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	/* Empty path. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "", 1);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	/* Digest one byte short / long for sha256. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN - 1);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	n = add_field(data, 0, "sha1:\0" "0123456789012345678901", 6 + 21);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	/* Unknown algorithm; no ":"; no NUL after the ':'. */
	n = add_field(data, 0, "md5:\0" "0123456789012345", 5 + 16);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)),
	                 DG_ERR_UNSUPPORTED);
	n = add_field(data, 0, "sha1\0" "01234567890123456789", 5 + 20);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	n = add_field(data, 0, "sha1:" "01234567890123456789", 5 + 20);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	/* A trailing byte after the ima-ng fields; ima-sig without its sig field. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	data[n++] = 0;
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-sig", data, n, out)), DG_ERR_FORMAT);
	/* Inner field lengths beyond the template data or huge. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	put_u32(data + SHA256_FIELD_LEN + 4, 9);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_FORMAT);
	put_u32(data + SHA256_FIELD_LEN + 4, 0xffffffffu);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_TOOBIG);
	put_u32(data, 0xffffffffu);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_TOOBIG);
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	put_u32(data + n, 0xffffffffu);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-sig", data, n + 4, out)),
	                 DG_ERR_TOOBIG);
	/* Extra at its bound is fine, one more byte is too big. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	memset(data + n + 4, 0xab, DG_LOG_MAX_EXTRA + 1);
	put_u32(data + n, DG_LOG_MAX_EXTRA);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-buf", data, n + 4 + DG_LOG_MAX_EXTRA,
	                                           out)), DG_OK);
	put_u32(data + n, DG_LOG_MAX_EXTRA + 1);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-buf", data,
	                                           n + 4 + DG_LOG_MAX_EXTRA + 1, out)),
	                 DG_ERR_TOOBIG);
	/* Path of DG_LOG_MAX_PATH bytes is fine, one more is too big. */
	memset(long_path, 'a', DG_LOG_MAX_PATH);
	long_path[0] = '/';
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, long_path, DG_LOG_MAX_PATH + 1);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_OK);
	long_path[DG_LOG_MAX_PATH] = 'a';
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, long_path, DG_LOG_MAX_PATH + 2);
	ck_assert_int_eq(read_one(out, craft_entry(10, "ima-ng", data, n, out)), DG_ERR_TOOBIG);
}
END_TEST

START_TEST(test_entry_header_rejects)
{
	static uint8_t log[SAMPLE_CAP], bad[SAMPLE_CAP];
	uint8_t data[128];
	size_t offs[SAMPLE_COUNT + 1], len = build_sample_log(log, sizeof log, offs), n;
	size_t e0 = offs[1]; /* first entry: ima-ng, name at 28, data length at 34 */

	ck_assert_int_eq(read_one(log, e0), DG_OK);
	/* PCR out of range. */
	memcpy(bad, log, e0);
	put_u32(bad, 24);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_FORMAT);
	put_u32(bad, 0xffffffffu);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_FORMAT);
	/* Template name length huge, zero, just too long. */
	memcpy(bad, log, e0);
	put_u32(bad + 24, 0xffffffffu);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_TOOBIG);
	put_u32(bad + 24, 0);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_FORMAT);
	put_u32(bad + 24, 16);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_TOOBIG);
	/* Template data length huge, or beyond the input. */
	memcpy(bad, log, e0);
	put_u32(bad + 34, 0xffffffffu);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_TOOBIG);
	put_u32(bad + 34, DG_LOG_MAX_TEMPLATE_DATA);
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_TRUNCATED);
	/* Tampered template hash, tampered template data. */
	memcpy(bad, log, e0);
	bad[4] ^= 1;
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_FORMAT);
	memcpy(bad, log, e0);
	bad[e0 - 2] ^= 1;
	ck_assert_int_eq(read_one(bad, e0), DG_ERR_FORMAT);
	/* Template names other than the three. */
	n = add_field(data, 0, sha256_field, SHA256_FIELD_LEN);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(read_one(bad, craft_entry(10, "ima", data, n, bad)), DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(read_one(bad, craft_entry(10, "ima-nh", data, n, bad)),
	                 DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(read_one(bad, craft_entry(10, "ima-ngv2", data, n, bad)),
	                 DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(read_one(bad, craft_entry(10, "ima-ng", data, n, bad)), DG_OK);
	(void)len;
}
END_TEST

/* An error names the bad entry and leaves the reader where it was. */
START_TEST(test_error_position)
{
	static uint8_t log[SAMPLE_CAP];
	size_t offs[SAMPLE_COUNT + 1], len = build_sample_log(log, sizeof log, offs);
	struct dg_log_reader r;
	struct dg_log_entry e;

	log[offs[3] + 4] ^= 0x80; /* entry 3's template hash */
	ck_assert_int_eq(dg_log_reader_init(&r, log, len, DG_LOG_FORMAT_BINARY), DG_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dg_log_next(&r, &e), DG_OK);
	for (int again = 0; again < 2; again++) {
		ck_assert_int_eq(dg_log_next(&r, &e), DG_ERR_FORMAT);
		ck_assert_uint_eq(r.index, 3);
		ck_assert_uint_eq(r.off, offs[3]);
	}
	dg_log_reader_fini(&r);
}
END_TEST

static int
read_ascii_line(const char *line)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rc;

	ck_assert_int_eq(dg_log_reader_init(&r, (const uint8_t *)line, strlen(line),
	                                    DG_LOG_FORMAT_ASCII), DG_OK);
	rc = dg_log_next(&r, &e);
	dg_log_reader_fini(&r);
	return rc;
}

/* Lines edited from one good line (python3 check: sha1 of the template data
 * "\x28\0\0\0sha256:\0" + 32 bytes 0x00 + "\x08\0\0\0/bin/ok\0" is
 * hashlib.sha1(...).hexdigest() == GOOD_HASH below). */
#define GOOD_HASH "480a902549977a3781ede04ac69c2c72a3d7a65c"
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

START_TEST(test_ascii_rejects)
{
	char good[256];
	uint8_t data[128], hash[DG_SHA1_LEN];
	char hash_hex[41];
	size_t n;

	/* Build the good line's hash here too, and check python agrees. */
	n = add_field(data, 0, "sha256:\0" "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	                       "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 40);
	n = add_field(data, n, "/bin/ok", 8);
	ck_assert_int_eq(EVP_Q_digest(NULL, "SHA1", NULL, data, n, hash, NULL), 1);
	hex_of(hash, DG_SHA1_LEN, hash_hex);
	ck_assert_int_eq(tu_sh("test \"$(python3 -c \"import hashlib,struct; "
	                       "d=b'sha256:\\0'+bytes(32); n=b'/bin/ok\\0'; "
	                       "print(hashlib.sha1(struct.pack('<I',len(d))+d+"
	                       "struct.pack('<I',len(n))+n).hexdigest())\")\" = %s",
	                       hash_hex), 0);

	snprintf(good, sizeof good, "10 %s ima-ng sha256:" ZERO64 " /bin/ok\n", hash_hex);
	ck_assert_int_eq(read_ascii_line(good), DG_OK);
	snprintf(good, sizeof good, " 9 %s ima-ng sha256:" ZERO64 " /bin/ok\n", hash_hex);
	ck_assert_int_eq(read_ascii_line(good), DG_OK);
	/* Missing newline at the end: truncated. */
	good[strlen(good) - 1] = '\0';
	ck_assert_int_eq(read_ascii_line(good), DG_ERR_TRUNCATED);

	/* Each case is the text before and after the template hash. */
	static const char *const bad_lines[][2] = {
		{"24 ", " ima-ng sha256:" ZERO64 " /bin/ok\n"},     /* pcr out of range */
		{"09 ", " ima-ng sha256:" ZERO64 " /bin/ok\n"},     /* not "%2d" */
		{"9 ", " ima-ng sha256:" ZERO64 " /bin/ok\n"},      /* not "%2d" */
		{"10  ", " ima-ng sha256:" ZERO64 " /bin/ok\n"},    /* double space */
		{"10 ", " ima-ng sha256:" ZERO64 "0 /bin/ok\n"},    /* odd digest hex */
		{"10 ", " ima-ng sha256:" ZERO64 "00 /bin/ok\n"},   /* digest too long */
		{"10 ", " ima-ng sha256:" ZERO64 " /bin/ok 00\n"},  /* ima-ng with extra */
		{"10 ", " ima-ng sha256:" ZERO64 " \n"},            /* empty path */
		{"10 ", " ima-sig sha256:" ZERO64 " /bin/ok\n"},    /* ima-sig w/o field */
		{"10 ", " ima-sig sha256:" ZERO64 " /bin/ok 0g\n"}, /* bad hex */
		{"10 ", " ima-ng sha256" ZERO64 " /bin/ok\n"},      /* no colon */
		{"10 ", " ima-ng sha256:" ZERO64 " /bin/ox\n"},     /* hash mismatch */
	};
	for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++) {
		char line[256];
		snprintf(line, sizeof line, "%s%s%s", bad_lines[i][0], hash_hex, bad_lines[i][1]);
		ck_assert_msg(read_ascii_line(line) == DG_ERR_FORMAT, "line %zu: %s", i, line);
	}
	ck_assert_int_eq(read_ascii_line("10 " GOOD_HASH "X ima-ng sha256:" ZERO64 " /a\n"),
	                 DG_ERR_FORMAT);
	snprintf(good, sizeof good, "10 %s ima sha256:" ZERO64 " /bin/ok\n", hash_hex);
	ck_assert_int_eq(read_ascii_line(good), DG_ERR_UNSUPPORTED);
	snprintf(good, sizeof good, "10 %s ima-ng md5:" ZERO64 " /bin/ok\n", hash_hex);
	ck_assert_int_eq(read_ascii_line(good), DG_ERR_UNSUPPORTED);
	/* A NUL inside the line. */
	snprintf(good, sizeof good, "10 %s ima-ng sha256:" ZERO64 " /bin/ok\n", hash_hex);
	good[strlen(good) - 3] = '\0';
	good[strlen(good)] = 'k';
	{
		struct dg_log_reader r;
		struct dg_log_entry e;
		ck_assert_int_eq(dg_log_reader_init(&r, (uint8_t *)good, strlen(good) + 3,
		                                    DG_LOG_FORMAT_ASCII), DG_OK);
		ck_assert_int_eq(dg_log_next(&r, &e), DG_ERR_FORMAT);
		dg_log_reader_fini(&r);
	}
	/* The pasted GOOD_HASH is the one computed above. */
	ck_assert_str_eq(hash_hex, GOOD_HASH);
}
END_TEST

START_TEST(test_encode_and_format_errors)
{
	static uint8_t buf[SAMPLE_CAP];
	static char long_path[DG_LOG_MAX_PATH + 2];
	uint8_t digest[DG_LOG_MAX_DIGEST] = {0};
	char line[512];
	size_t n, need;
	struct dg_log_entry e;
	struct dg_log_reader r;

	ck_assert_int_eq(dg_log_encode(24, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, "/a", NULL,
	                               0, buf, sizeof buf, &n), DG_ERR_INVAL);
	ck_assert_int_eq(dg_log_encode(10, (enum dg_log_template)3, "sha256", digest, 32, "/a",
	                               NULL, 0, buf, sizeof buf, &n), DG_ERR_INVAL);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_NG, "md5", digest, 16, "/a", NULL, 0,
	                               buf, sizeof buf, &n), DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_NG, "sha256", digest, 31, "/a", NULL,
	                               0, buf, sizeof buf, &n), DG_ERR_INVAL);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, "/a",
	                               digest, 1, buf, sizeof buf, &n), DG_ERR_INVAL);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, "", NULL, 0,
	                               buf, sizeof buf, &n), DG_ERR_INVAL);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_BUF, "sha256", digest, 32, "b",
	                               digest, DG_LOG_MAX_EXTRA + 1, buf, sizeof buf, &n),
	                 DG_ERR_TOOBIG);
	memset(long_path, 'a', DG_LOG_MAX_PATH + 1);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, long_path,
	                               NULL, 0, buf, sizeof buf, &n), DG_ERR_TOOBIG);
	long_path[DG_LOG_MAX_PATH] = '\0';
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, long_path,
	                               NULL, 0, buf, sizeof buf, &n), DG_OK);
	/* Every capacity below the need is refused; the exact need works. */
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_SIG, "sha256", digest, 32, "/a",
	                               digest, 5, buf, sizeof buf, &need), DG_OK);
	for (size_t cap = 0; cap < need; cap++)
		ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_SIG, "sha256", digest, 32, "/a",
		                               digest, 5, buf, cap, &n), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_log_encode(10, DG_TEMPLATE_IMA_SIG, "sha256", digest, 32, "/a",
	                               digest, 5, buf, need, &n), DG_OK);
	ck_assert_uint_eq(n, need);

	/* ascii: capacity, and paths that would break the line. */
	ck_assert_int_eq(dg_log_reader_init(&r, buf, n, DG_LOG_FORMAT_BINARY), DG_OK);
	ck_assert_int_eq(dg_log_next(&r, &e), DG_OK);
	ck_assert_int_eq(dg_log_format_ascii(&e, line, sizeof line, &need), DG_OK);
	for (size_t cap = 0; cap <= need; cap++)
		ck_assert_int_eq(dg_log_format_ascii(&e, line, cap, &n), DG_ERR_TOOBIG);
	e.path = "/a b";
	e.path_len = 4;
	ck_assert_int_eq(dg_log_format_ascii(&e, line, sizeof line, &n), DG_ERR_FORMAT);
	e.path = "/a\n10";
	e.path_len = 5;
	ck_assert_int_eq(dg_log_format_ascii(&e, line, sizeof line, &n), DG_ERR_FORMAT);
	dg_log_reader_fini(&r);
	ck_assert_str_eq(dg_log_template_name(DG_TEMPLATE_IMA_SIG), "ima-sig");
	ck_assert_ptr_null(dg_log_template_name((enum dg_log_template)3));
}
END_TEST

START_TEST(test_detect_format)
{
	static const uint8_t binary_pcr10[] = {10, 0, 0, 0, 0x12};
	static const uint8_t binary_pcr0[] = {0, 0, 0, 0, 0x20};

	ck_assert_int_eq(dg_log_detect_format((const uint8_t *)"10 abc", 6), DG_LOG_FORMAT_ASCII);
	ck_assert_int_eq(dg_log_detect_format((const uint8_t *)" 5 abc", 6), DG_LOG_FORMAT_ASCII);
	ck_assert_int_eq(dg_log_detect_format(binary_pcr10, sizeof binary_pcr10),
	                 DG_LOG_FORMAT_BINARY);
	ck_assert_int_eq(dg_log_detect_format(binary_pcr0, sizeof binary_pcr0),
	                 DG_LOG_FORMAT_BINARY);
	ck_assert_int_eq(dg_log_detect_format((const uint8_t *)"", 0), DG_LOG_FORMAT_BINARY);
	ck_assert_int_eq(dg_log_detect_format((const uint8_t *)"10", 2), DG_LOG_FORMAT_BINARY);
}
END_TEST

/* File digests against `openssl dgst -sha256`, across the 256 KiB chunking. */
START_TEST(test_fsdigest)
{
	char *dir = tu_tmpdir(), path[512], expected_hex[65], got_hex[65];
	uint8_t got[32];
	FILE *f;
	int fd;

	ck_assert_int_eq(tu_sh("cd %s && head -c 786435 /dev/urandom > big && : > empty && "
	                       "ln -s big link && mkfifo fifo && "
	                       "openssl dgst -sha256 -r big | cut -c1-64 > big.sha256", dir), 0);
	snprintf(path, sizeof path, "%s/big.sha256", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_int_eq(fscanf(f, "%64s", expected_hex), 1);
	fclose(f);
	snprintf(path, sizeof path, "%s/big", dir);
	ck_assert_int_eq(dg_fsdigest_path(path, got), DG_OK);
	hex_of(got, 32, got_hex);
	ck_assert_str_eq(got_hex, expected_hex);
	/* fd variant from its current offset: the whole file when at 0. */
	ck_assert_int_ge(fd = open(path, O_RDONLY), 0);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(dg_fsdigest_fd(fd, got), DG_OK);
	close(fd);
	hex_of(got, 32, got_hex);
	ck_assert_str_eq(got_hex, expected_hex);
	/* SHA-256 of the empty string (FIPS 180 / `printf '' | sha256sum`). */
	snprintf(path, sizeof path, "%s/empty", dir);
	ck_assert_int_eq(dg_fsdigest_path(path, got), DG_OK);
	hex_of(got, 32, got_hex);
	ck_assert_str_eq(got_hex,
	                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Symlinks are not followed, FIFOs and missing files are refused. */
	snprintf(path, sizeof path, "%s/link", dir);
	ck_assert_int_eq(dg_fsdigest_path(path, got), DG_ERR_IO);
	snprintf(path, sizeof path, "%s/fifo", dir);
	ck_assert_int_eq(dg_fsdigest_path(path, got), DG_ERR_IO);
	snprintf(path, sizeof path, "%s/missing", dir);
	ck_assert_int_eq(dg_fsdigest_path(path, got), DG_ERR_IO);
	ck_assert_int_eq(dg_fsdigest_path(dir, got), DG_ERR_IO);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_test(tc, test_encode_matches_python);
	tcase_add_test(tc, test_round_trip_binary_ascii);
	tcase_add_test(tc, test_truncated_everywhere);
	tcase_add_test(tc, test_template_data_rejects);
	tcase_add_test(tc, test_entry_header_rejects);
	tcase_add_test(tc, test_error_position);
	tcase_add_test(tc, test_ascii_rejects);
	tcase_add_test(tc, test_encode_and_format_errors);
	tcase_add_test(tc, test_detect_format);
	tcase_add_test(tc, test_fsdigest);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
