/*
 * Writes seed inputs that need the encoders: one valid wire message of each
 * type (DIR/wire/<type>) and a binary log with every template, several
 * hash algorithms and a violation (DIR/log_binary/templates.bin).
 * Usage: gen_seeds DIR (the subdirectories must exist).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/log.h"
#include "driftgate/wire.h"

static void
write_file(const char *dir, const char *sub, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
set(struct dg_bytes *b, size_t len, int fill)
{
	uint8_t buf[300];

	memset(buf, fill, sizeof buf);
	if (len > sizeof buf || dg_bytes_set(b, buf, len) != DG_OK)
		exit(1);
}

static void
wire_seeds(const char *dir)
{
	for (int t = DG_MSG_ENROLL_REQ; t <= DG_MSG_ERROR; t++) {
		struct dg_msg m;
		uint8_t *out;
		size_t len;

		dg_msg_init(&m);
		m.type = (enum dg_msg_type)t;
		strcpy(m.agent_id, "node-1");
		set(&m.ek_pub, 282, 0x01);
		set(&m.ak_pub, 90, 0x02);
		set(&m.ek_cert, 300, 0x30);
		set(&m.id_object, 68, 0x03);
		set(&m.enc_secret, 256, 0x04);
		set(&m.credential, 32, 0x05);
		set(&m.nonce, 32, 0x06);
		set(&m.attest, 145, 0x07);
		set(&m.signature, 262, 0x08);
		if (t == DG_MSG_ATTEST) {
			set(&m.bind_key, 90, 0x09);
			set(&m.bind_attest, 120, 0x0c);
			set(&m.bind_sig, 262, 0x0d);
			strcpy(m.request[0].scope, "web-1");
			strcpy(m.request[0].secret, "db-password");
			m.n_request = 1;
			m.leases[0] = m.request[0];
			m.leases[1].secret[0] = 'k'; /* a node secret: scope "" */
			m.n_leases = 2;
		}
		set(&m.log, 120, 0x0a);
		m.log_from = 3;
		m.pcr = 13;
		m.pass = t == DG_MSG_VERDICT;
		m.n_reasons = 1;
		strcpy(m.reasons[0].code, "unknown-file");
		strcpy(m.reasons[0].detail, "/usr/bin/x (sha256:00) is not in the baseline");
		m.n_sealed = 1;
		strcpy(m.sealed[0].name, "db-password");
		set(&m.sealed[0].blob, 80, 0x0b);
		if (t == DG_MSG_VERDICT) {
			m.lease_ms = 60000;
			strcpy(m.renewed[0].scope, "web-1");
			strcpy(m.renewed[0].secret, "api-token");
			m.n_renewed = 1;
			strcpy(m.refused, "workload web does not name secret x");
		}
		m.code = DG_ERR_POLICY;
		strcpy(m.message, "baseline refused");
		if (dg_wire_encode(&m, &out, &len) != DG_OK)
			exit(1);
		write_file(dir, "wire", dg_msg_type_name(m.type), out, len);
		free(out);
		dg_msg_clear(&m);
	}
}

static void
log_seed(const char *dir)
{
	static const uint8_t d[64] = {0x5a, 0xa5};
	static const uint8_t sig[] = {0x03, 0x02, 0x04, 0x00, 0x01};
	uint8_t buf[4096];
	size_t len = 0, n;

	if (dg_log_encode(10, DG_TEMPLATE_IMA_NG, "sha1", d, 20, "boot_aggregate", NULL, 0,
	                  buf + len, sizeof buf - len, &n) != DG_OK)
		exit(1);
	len += n;
	if (dg_log_encode(10, DG_TEMPLATE_IMA_SIG, "sha256", d, 32, "/usr/bin/signed", sig,
	                  sizeof sig, buf + len, sizeof buf - len, &n) != DG_OK)
		exit(1);
	len += n;
	if (dg_log_encode(10, DG_TEMPLATE_IMA_SIG, "sha384", d, 48, "/usr/lib/unsigned.so", NULL,
	                  0, buf + len, sizeof buf - len, &n) != DG_OK)
		exit(1);
	len += n;
	if (dg_log_encode(10, DG_TEMPLATE_IMA_BUF, "sha512", d, 64, "kexec-cmdline",
	                  (const uint8_t *)"root=/dev/sda1", 14, buf + len, sizeof buf - len,
	                  &n) != DG_OK)
		exit(1);
	len += n;
	/* A violation: the same kind of entry with an all-zero template hash. */
	if (dg_log_encode(13, DG_TEMPLATE_IMA_NG, "sha256", d, 32, "/var/log/open-writers", NULL,
	                  0, buf + len, sizeof buf - len, &n) != DG_OK)
		exit(1);
	memset(buf + len + 4, 0, DG_SHA1_LEN);
	len += n;
	write_file(dir, "log_binary", "templates.bin", buf, len);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	wire_seeds(argv[1]);
	log_seed(argv[1]);
	return 0;
}
