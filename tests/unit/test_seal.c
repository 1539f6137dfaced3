/* Sealing: round trips, every tamper and misuse, and independent cross-checks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/seal.h"
#include "testutil.h"

static const uint8_t aad[] = "nonce|node-1|db-password";

START_TEST(test_round_trip)
{
	static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 8000};
	uint8_t priv[DG_SEAL_KEY_LEN], pub[DG_SEAL_KEY_LEN];
	uint8_t pt[8000], out[8000 + DG_SEAL_OVERHEAD], back[8000];
	size_t out_len, back_len;

	ck_assert_int_eq(dg_seal_keygen(priv, pub), DG_OK);
	for (size_t i = 0; i < sizeof pt; i++)
		pt[i] = (uint8_t)(i * 7 + 3);
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k];
		ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, n, out, sizeof out, &out_len), DG_OK);
		ck_assert_uint_eq(out_len, n + DG_SEAL_OVERHEAD);
		/* ciphertext is not the plaintext */
		if (n >= 16)
			ck_assert(memcmp(out + 44, pt, n) != 0);
		ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, out, out_len, back, sizeof back,
		                           &back_len), DG_OK);
		ck_assert_uint_eq(back_len, n);
		ck_assert(n == 0 || memcmp(back, pt, n) == 0);
	}
	/* no aad at all also works */
	ck_assert_int_eq(dg_seal(pub, NULL, 0, pt, 32, out, sizeof out, &out_len), DG_OK);
	ck_assert_int_eq(dg_unseal(priv, NULL, 0, out, out_len, back, sizeof back, &back_len), DG_OK);
	ck_assert_mem_eq(back, pt, 32);
}
END_TEST

/* Two seals of the same input differ (fresh ephemeral key and iv). */
START_TEST(test_fresh_each_time)
{
	uint8_t priv[DG_SEAL_KEY_LEN], pub[DG_SEAL_KEY_LEN];
	uint8_t a[64 + DG_SEAL_OVERHEAD], b[64 + DG_SEAL_OVERHEAD], pt[64] = {0};
	size_t la, lb;

	ck_assert_int_eq(dg_seal_keygen(priv, pub), DG_OK);
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, 64, a, sizeof a, &la), DG_OK);
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, 64, b, sizeof b, &lb), DG_OK);
	ck_assert(memcmp(a, b, 32) != 0);      /* ephemeral public */
	ck_assert(memcmp(a + 32, b + 32, 12) != 0); /* iv */
}
END_TEST

START_TEST(test_wrong_key_and_aad)
{
	uint8_t priv[DG_SEAL_KEY_LEN], pub[DG_SEAL_KEY_LEN];
	uint8_t priv2[DG_SEAL_KEY_LEN], pub2[DG_SEAL_KEY_LEN];
	uint8_t pt[100], out[100 + DG_SEAL_OVERHEAD], back[100];
	size_t out_len, back_len = 1;

	memset(pt, 'p', sizeof pt);
	ck_assert_int_eq(dg_seal_keygen(priv, pub), DG_OK);
	ck_assert_int_eq(dg_seal_keygen(priv2, pub2), DG_OK);
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_OK);

	memset(back, 0xaa, sizeof back);
	ck_assert_int_eq(dg_unseal(priv2, aad, sizeof aad, out, out_len, back, sizeof back,
	                           &back_len), DG_ERR_CRYPTO);
	ck_assert_uint_eq(back_len, 0);
	/* unauthenticated plaintext is wiped, not left behind */
	for (size_t i = 0; i < sizeof back; i++)
		ck_assert_uint_eq(back[i], 0);

	uint8_t other_aad[sizeof aad];
	memcpy(other_aad, aad, sizeof aad);
	other_aad[0] ^= 1;
	ck_assert_int_eq(dg_unseal(priv, other_aad, sizeof aad, out, out_len, back, sizeof back,
	                           &back_len), DG_ERR_CRYPTO);
	ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad - 1, out, out_len, back, sizeof back,
	                           &back_len), DG_ERR_CRYPTO);
	ck_assert_int_eq(dg_unseal(priv, NULL, 0, out, out_len, back, sizeof back, &back_len),
	                 DG_ERR_CRYPTO);
}
END_TEST

/* Flipping any single bit anywhere (ephemeral key, iv, ciphertext, tag) fails. */
START_TEST(test_tamper_every_bit)
{
	uint8_t priv[DG_SEAL_KEY_LEN], pub[DG_SEAL_KEY_LEN];
	uint8_t pt[20], out[20 + DG_SEAL_OVERHEAD], back[20];
	size_t out_len, back_len;

	memset(pt, 's', sizeof pt);
	ck_assert_int_eq(dg_seal_keygen(priv, pub), DG_OK);
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_OK);
	for (size_t i = 0; i < out_len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			out[i] ^= (uint8_t)(1u << bit);
			ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, out, out_len, back,
			                           sizeof back, &back_len), DG_ERR_CRYPTO);
			out[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* dropping the last byte or appending one also fails */
	ck_assert_int_ne(dg_unseal(priv, aad, sizeof aad, out, out_len - 1, back, sizeof back,
	                           &back_len), DG_OK);
	ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, out, out_len, back, sizeof back,
	                           &back_len), DG_OK);
}
END_TEST

START_TEST(test_buffer_bounds)
{
	uint8_t priv[DG_SEAL_KEY_LEN], pub[DG_SEAL_KEY_LEN];
	uint8_t pt[50] = {1}, out[50 + DG_SEAL_OVERHEAD], back[50];
	size_t out_len, back_len;

	ck_assert_int_eq(dg_seal_keygen(priv, pub), DG_OK);
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, sizeof pt, out, sizeof out - 1, &out_len),
	                 DG_ERR_TOOBIG);
	ck_assert_uint_eq(out_len, 0);
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_OK);
	ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, out, out_len, back, sizeof back - 1,
	                           &back_len), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, out, DG_SEAL_OVERHEAD - 1, back,
	                           sizeof back, &back_len), DG_ERR_TRUNCATED);
}
END_TEST

/* An all-zero (small-order) recipient key gives an all-zero ECDH output,
 * which must be refused rather than used as a key. */
START_TEST(test_small_order_key)
{
	uint8_t zero_pub[DG_SEAL_KEY_LEN] = {0};
	uint8_t out[8 + DG_SEAL_OVERHEAD], pt[8] = {0};
	size_t out_len;

	ck_assert_int_eq(dg_seal(zero_pub, NULL, 0, pt, sizeof pt, out, sizeof out, &out_len),
	                 DG_ERR_CRYPTO);
}
END_TEST

/* Independent construction from RFC 7748 section 6.1: Alice's public key plays
 * the ephemeral key, Bob's private key the recipient, and the shared secret K
 * is taken from the RFC, not computed. HKDF comes from the openssl CLI and
 * AES-256-GCM from EVP here, so only dg_unseal's ECDH and layout are tested. */
START_TEST(test_rfc7748_vector)
{
	static const char alice_pub[] =
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
	static const char bob_priv[] =
		"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
	static const char bob_pub[] =
		"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
	static const char rfc_k[] =
		"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
	static const uint8_t pt[] = "the database password";
	uint8_t priv[32], key[32], blob[sizeof pt + DG_SEAL_OVERHEAD], back[sizeof pt];
	char *dir = tu_tmpdir(), path[512], hex[200];
	size_t back_len;
	int n;

	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/key", dir);
	ck_assert_int_eq(tu_sh("openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:%s "
	                       "-kdfopt hexsalt:%s%s -kdfopt 'info:driftgate seal v1' HKDF "
	                       "| tr -d ':\\n' > %s", rfc_k, alice_pub, bob_pub, path), 0);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(hex, sizeof hex, f));
	fclose(f);
	for (char *p = hex; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	ck_assert_int_eq(tu_hex(hex, key, sizeof key), 32);
	tu_sh("rm -rf %s", dir);
	free(dir);

	ck_assert_int_eq(tu_hex(bob_priv, priv, sizeof priv), 32);
	ck_assert_int_eq(tu_hex(alice_pub, blob, 32), 32);
	for (int i = 0; i < 12; i++)
		blob[32 + i] = (uint8_t)i;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, blob + 32), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof aad), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, blob + 44, &n, pt, sizeof pt), 1);
	ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, blob + 44 + sizeof pt, &n), 1);
	ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, blob + 44 + sizeof pt), 1);
	EVP_CIPHER_CTX_free(ctx);

	ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, blob, sizeof blob, back, sizeof back,
	                           &back_len), DG_OK);
	ck_assert_uint_eq(back_len, sizeof pt);
	ck_assert_mem_eq(back, pt, sizeof pt);
}
END_TEST

/* Full cross-check with python3 'cryptography': it unseals what dg_seal made
 * and seals something dg_unseal must open. */
static const char py_script[] =
	"import sys\n"
	"from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey\n"
	"from cryptography.hazmat.primitives.kdf.hkdf import HKDF\n"
	"from cryptography.hazmat.primitives import hashes, serialization\n"
	"from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
	"raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)\n"
	"def key(shared, eph, rcpt):\n"
	"    return HKDF(hashes.SHA256(), 32, eph + rcpt, b'driftgate seal v1').derive(shared)\n"
	"mode, aad = sys.argv[1], bytes.fromhex(sys.argv[2])\n"
	"if mode == 'open':\n"
	"    priv = X25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[3]))\n"
	"    blob = bytes.fromhex(sys.argv[4])\n"
	"    eph, iv, ct = blob[:32], blob[32:44], blob[44:]\n"
	"    k = key(priv.exchange(X25519PublicKey.from_public_bytes(eph)), eph,\n"
	"            priv.public_key().public_bytes(*raw))\n"
	"    print(AESGCM(k).decrypt(iv, ct, aad).hex())\n"
	"else:\n"
	"    rcpt = bytes.fromhex(sys.argv[3])\n"
	"    e = X25519PrivateKey.generate()\n"
	"    eph = e.public_key().public_bytes(*raw)\n"
	"    k = key(e.exchange(X25519PublicKey.from_public_bytes(rcpt)), eph, rcpt)\n"
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
	uint8_t priv[32], pub[32], blob[sizeof pt + DG_SEAL_OVERHEAD], back[sizeof pt];
	char aad_hex[2 * sizeof aad + 1], priv_hex[65], pub_hex[65], pt_hex[2 * sizeof pt + 1];
	char blob_hex[2 * sizeof blob + 1], args[1024], result[1024], path[600];
	size_t blob_len, back_len;
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

	ck_assert_int_eq(dg_seal_keygen(priv, pub), DG_OK);
	to_hex(aad, sizeof aad, aad_hex);
	to_hex(priv, 32, priv_hex);
	to_hex(pub, 32, pub_hex);
	to_hex(pt, sizeof pt, pt_hex);

	/* dg_seal -> python opens */
	ck_assert_int_eq(dg_seal(pub, aad, sizeof aad, pt, sizeof pt, blob, sizeof blob, &blob_len),
	                 DG_OK);
	to_hex(blob, blob_len, blob_hex);
	snprintf(args, sizeof args, "open %s %s %s", aad_hex, priv_hex, blob_hex);
	ck_assert_int_eq(run_py(dir, args, result, sizeof result), 0);
	ck_assert_str_eq(result, pt_hex);

	/* python seals -> dg_unseal opens */
	snprintf(args, sizeof args, "seal %s %s %s", aad_hex, pub_hex, pt_hex);
	ck_assert_int_eq(run_py(dir, args, result, sizeof result), 0);
	ck_assert_int_eq(tu_hex(result, blob, sizeof blob), (int)sizeof blob);
	ck_assert_int_eq(dg_unseal(priv, aad, sizeof aad, blob, sizeof blob, back, sizeof back,
	                           &back_len), DG_OK);
	ck_assert_mem_eq(back, pt, sizeof pt);

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
	tcase_add_test(tc, test_small_order_key);
	tcase_add_test(tc, test_rfc7748_vector);
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
