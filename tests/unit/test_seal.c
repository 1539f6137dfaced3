/*
 * Sealing to a P-256 key: round trips, every tamper and misuse, and an
 * independent cross-check with python3 'cryptography'. The recipient here is
 * a software key whose ECDH stands in for the TPM's ECDH_ZGen (test_tpm.c
 * opens seals with a real swtpm).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/seal.h"
#include "testutil.h"

static const uint8_t aad[] = "nonce|node-1|web-1|db-password";

struct rcpt {
	EVP_PKEY *key;
	uint8_t point[DG_SEAL_POINT_LEN];
};

static void
rcpt_new(struct rcpt *r)
{
	r->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert_ptr_nonnull(r->key);
	ck_assert_int_eq(dg_seal_point_of(r->key, r->point), DG_OK);
}

/* What TPM2_ECDH_ZGen computes: x of (d * ephemeral point). */
static void
soft_zgen(EVP_PKEY *priv, const uint8_t point[DG_SEAL_POINT_LEN], uint8_t z[DG_SEAL_COORD_LEN])
{
	uint8_t enc[1 + DG_SEAL_POINT_LEN];
	enc[0] = 0x04;
	memcpy(enc + 1, point, DG_SEAL_POINT_LEN);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, enc, sizeof enc),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *fctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *peer = NULL;
	ck_assert_int_eq(EVP_PKEY_fromdata_init(fctx), 1);
	ck_assert_int_eq(EVP_PKEY_fromdata(fctx, &peer, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(priv, NULL);
	size_t len = DG_SEAL_COORD_LEN;
	ck_assert_int_eq(EVP_PKEY_derive_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_derive_set_peer(ctx, peer), 1);
	ck_assert_int_eq(EVP_PKEY_derive(ctx, z, &len), 1);
	ck_assert_uint_eq(len, DG_SEAL_COORD_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_CTX_free(fctx);
	EVP_PKEY_free(peer);
}

static int
soft_unseal(const struct rcpt *r, const uint8_t *a, size_t a_len, const uint8_t *in,
            size_t in_len, uint8_t *pt, size_t cap, size_t *pt_len)
{
	uint8_t z[DG_SEAL_COORD_LEN];
	const uint8_t *point;
	int rv = dg_seal_ephemeral(in, in_len, &point);
	if (rv != DG_OK)
		return rv;
	soft_zgen(r->key, point, z);
	return dg_unseal(z, r->point, a, a_len, in, in_len, pt, cap, pt_len);
}

START_TEST(test_round_trip)
{
	static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 8000};
	uint8_t pt[8000], out[8000 + DG_SEAL_OVERHEAD], back[8000];
	size_t out_len, back_len;
	struct rcpt r;

	rcpt_new(&r);
	for (size_t i = 0; i < sizeof pt; i++)
		pt[i] = (uint8_t)(i * 7 + 3);
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k];
		ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, n, out, sizeof out, &out_len),
		                 DG_OK);
		ck_assert_uint_eq(out_len, n + DG_SEAL_OVERHEAD);
		if (n >= 16) /* ciphertext is not the plaintext */
			ck_assert(memcmp(out + DG_SEAL_POINT_LEN + 12, pt, n) != 0);
		ck_assert_int_eq(soft_unseal(&r, aad, sizeof aad, out, out_len, back, sizeof back,
		                             &back_len), DG_OK);
		ck_assert_uint_eq(back_len, n);
		ck_assert(n == 0 || memcmp(back, pt, n) == 0);
	}
	EVP_PKEY_free(r.key);
}
END_TEST

/* Two seals of the same input differ (fresh ephemeral key and iv). */
START_TEST(test_fresh_each_time)
{
	uint8_t a[64 + DG_SEAL_OVERHEAD], b[64 + DG_SEAL_OVERHEAD], pt[64] = {0};
	size_t la, lb;
	struct rcpt r;

	rcpt_new(&r);
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, 64, a, sizeof a, &la), DG_OK);
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, 64, b, sizeof b, &lb), DG_OK);
	ck_assert(memcmp(a, b, DG_SEAL_POINT_LEN) != 0);                  /* ephemeral point */
	ck_assert(memcmp(a + DG_SEAL_POINT_LEN, b + DG_SEAL_POINT_LEN, 12) != 0); /* iv */
	EVP_PKEY_free(r.key);
}
END_TEST

/* Another recipient (another TPM) and another context open nothing, and
 * leave no plaintext behind. */
START_TEST(test_wrong_key_and_aad)
{
	static const uint8_t other_aad[] = "nonce|node-1|web-2|db-password";
	uint8_t pt[32], out[32 + DG_SEAL_OVERHEAD], back[32];
	size_t out_len, back_len;
	struct rcpt r, other;

	memset(pt, 'p', sizeof pt);
	rcpt_new(&r);
	rcpt_new(&other);
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_OK);
	memset(back, 0, sizeof back);
	ck_assert_int_eq(soft_unseal(&other, aad, sizeof aad, out, out_len, back, sizeof back,
	                             &back_len), DG_ERR_CRYPTO);
	for (size_t i = 0; i < sizeof back; i++)
		ck_assert_uint_eq(back[i], 0);
	ck_assert_int_eq(soft_unseal(&r, other_aad, sizeof other_aad, out, out_len, back,
	                             sizeof back, &back_len), DG_ERR_CRYPTO);
	ck_assert_int_eq(soft_unseal(&r, NULL, 0, out, out_len, back, sizeof back, &back_len),
	                 DG_ERR_CRYPTO);
	EVP_PKEY_free(r.key);
	EVP_PKEY_free(other.key);
}
END_TEST

/* Flipping any bit after the ephemeral point fails the tag. (A flipped
 * point bit is usually off the curve, which the TPM refuses, and otherwise a
 * different z: both fail; test_tpm.c covers the TPM's answer.) */
START_TEST(test_tamper_every_bit)
{
	uint8_t pt[20], out[20 + DG_SEAL_OVERHEAD], back[20];
	size_t out_len, back_len;
	uint8_t z[DG_SEAL_COORD_LEN];
	struct rcpt r;

	memset(pt, 's', sizeof pt);
	rcpt_new(&r);
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_OK);
	soft_zgen(r.key, out, z);
	for (size_t i = 0; i < out_len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			out[i] ^= (uint8_t)(1u << bit);
			/* with z fixed, a point change alters the HKDF salt: also a failure */
			ck_assert_int_eq(dg_unseal(z, r.point, aad, sizeof aad, out, out_len, back,
			                           sizeof back, &back_len), DG_ERR_CRYPTO);
			out[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_int_ne(dg_unseal(z, r.point, aad, sizeof aad, out, out_len - 1, back,
	                           sizeof back, &back_len), DG_OK);
	ck_assert_int_eq(dg_unseal(z, r.point, aad, sizeof aad, out, out_len, back, sizeof back,
	                           &back_len), DG_OK);
	EVP_PKEY_free(r.key);
}
END_TEST

START_TEST(test_buffer_bounds)
{
	uint8_t pt[50] = {1}, out[50 + DG_SEAL_OVERHEAD], back[50];
	size_t out_len, back_len;
	const uint8_t *point;
	struct rcpt r;

	rcpt_new(&r);
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, sizeof pt, out, sizeof out - 1,
	                         &out_len), DG_ERR_TOOBIG);
	ck_assert_uint_eq(out_len, 0);
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_OK);
	ck_assert_int_eq(soft_unseal(&r, aad, sizeof aad, out, out_len, back, sizeof back - 1,
	                             &back_len), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_seal_ephemeral(out, DG_SEAL_OVERHEAD - 1, &point), DG_ERR_TRUNCATED);
	EVP_PKEY_free(r.key);
}
END_TEST

/* Only P-256 recipients: an RSA key or another curve is refused. */
START_TEST(test_recipient_must_be_p256)
{
	uint8_t pt[4] = {0}, out[4 + DG_SEAL_OVERHEAD];
	size_t out_len;
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	ck_assert_int_eq(dg_seal(p384, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(dg_seal(rsa, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(dg_seal(NULL, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_ERR_INVAL);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
}
END_TEST

/* Full cross-check with python3 'cryptography': it opens what dg_seal made
 * and seals something the dg_unseal path must open. */
static const char py_script[] =
	"import sys\n"
	"from cryptography.hazmat.primitives.asymmetric import ec\n"
	"from cryptography.hazmat.primitives.kdf.hkdf import HKDF\n"
	"from cryptography.hazmat.primitives import hashes\n"
	"from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
	"def pt(p):\n"
	"    n = p.public_numbers()\n"
	"    return n.x.to_bytes(32, 'big') + n.y.to_bytes(32, 'big')\n"
	"def load(xy):\n"
	"    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b'\\x04' + xy)\n"
	"def key(z, eph, rcpt):\n"
	"    return HKDF(hashes.SHA256(), 32, eph + rcpt, b'driftgate seal v2').derive(z)\n"
	"mode, aad = sys.argv[1], bytes.fromhex(sys.argv[2])\n"
	"if mode == 'open':\n"
	"    d = ec.derive_private_key(int(sys.argv[3], 16), ec.SECP256R1())\n"
	"    blob = bytes.fromhex(sys.argv[4])\n"
	"    eph, iv, ct = blob[:64], blob[64:76], blob[76:]\n"
	"    k = key(d.exchange(ec.ECDH(), load(eph)), eph, pt(d.public_key()))\n"
	"    print(AESGCM(k).decrypt(iv, ct, aad).hex())\n"
	"else:\n"
	"    rcpt = bytes.fromhex(sys.argv[3])\n"
	"    e = ec.generate_private_key(ec.SECP256R1())\n"
	"    eph = pt(e.public_key())\n"
	"    k = key(e.exchange(ec.ECDH(), load(rcpt)), eph, rcpt)\n"
	"    iv = bytes(range(12))\n"
	"    print((eph + iv + AESGCM(k).encrypt(iv, bytes.fromhex(sys.argv[4]), aad)).hex())\n";

static void
to_hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = '\0';
}

static int
run_py(const char *dir, const char *args, char *result, size_t cap)
{
	char path[600];
	snprintf(path, sizeof path, "%s/out", dir);
	if (tu_sh("python3 %s/seal.py %s > %s", dir, args, path) != 0)
		return -1;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char *ok = fgets(result, (int)cap, f);
	fclose(f);
	if (ok == NULL)
		return -1;
	result[strcspn(result, "\n")] = '\0';
	return 0;
}

START_TEST(test_python_cross_check)
{
	static const uint8_t pt[] = "cross-checked secret";
	uint8_t blob[sizeof pt + DG_SEAL_OVERHEAD], back[sizeof pt];
	char aad_hex[2 * sizeof aad + 1], point_hex[2 * DG_SEAL_POINT_LEN + 1];
	char pt_hex[2 * sizeof pt + 1], blob_hex[2 * sizeof blob + 1], args[2048], result[1024];
	char path[600], *priv_hex = NULL;
	size_t blob_len, back_len;
	BIGNUM *d = NULL;
	struct rcpt r;
	char *dir;

	if (tu_sh("python3 -c 'import cryptography' 2>/dev/null") != 0) {
		fprintf(stderr, "python3 cryptography missing: cross-check skipped\n");
		return;
	}
	dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/seal.py", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(py_script, f);
	fclose(f);

	rcpt_new(&r);
	ck_assert_int_eq(EVP_PKEY_get_bn_param(r.key, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	priv_hex = BN_bn2hex(d);
	to_hex(aad, sizeof aad, aad_hex);
	to_hex(r.point, sizeof r.point, point_hex);
	to_hex(pt, sizeof pt, pt_hex);

	/* dg_seal -> python opens */
	ck_assert_int_eq(dg_seal(r.key, aad, sizeof aad, pt, sizeof pt, blob, sizeof blob,
	                         &blob_len), DG_OK);
	to_hex(blob, blob_len, blob_hex);
	snprintf(args, sizeof args, "open %s %s %s", aad_hex, priv_hex, blob_hex);
	ck_assert_int_eq(run_py(dir, args, result, sizeof result), 0);
	ck_assert_str_eq(result, pt_hex);

	/* python seals -> the agent's path (ZGen, then dg_unseal) opens */
	snprintf(args, sizeof args, "seal %s %s %s", aad_hex, point_hex, pt_hex);
	ck_assert_int_eq(run_py(dir, args, result, sizeof result), 0);
	ck_assert_int_eq(tu_hex(result, blob, sizeof blob), (int)sizeof blob);
	ck_assert_int_eq(soft_unseal(&r, aad, sizeof aad, blob, sizeof blob, back, sizeof back,
	                             &back_len), DG_OK);
	ck_assert_mem_eq(back, pt, sizeof pt);

	OPENSSL_free(priv_hex);
	BN_clear_free(d);
	EVP_PKEY_free(r.key);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

static Suite *
seal_suite(void)
{
	Suite *s = suite_create("seal");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_fresh_each_time);
	tcase_add_test(tc, test_wrong_key_and_aad);
	tcase_add_test(tc, test_tamper_every_bit);
	tcase_add_test(tc, test_buffer_bounds);
	tcase_add_test(tc, test_recipient_must_be_p256);
	tcase_add_test(tc, test_python_cross_check);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(seal_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
