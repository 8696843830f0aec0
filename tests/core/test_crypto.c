#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

static void sha256_hex(const void *data, size_t n, char out[2 * WARD_SHA256_LEN + 1])
{
	uint8_t d[WARD_SHA256_LEN];

	assert_int_equal(ward_sha256(d, data, n), 0);
	ward_hex_encode_to(out, d, sizeof(d));
}

/* FIPS 180-2 appendix B. */
static void test_core_crypto__sha256_fips_vectors(void **state)
{
	char hex[2 * WARD_SHA256_LEN + 1];
	static const char msg448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	(void)state;
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex(NULL, 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(strlen(msg448), 56);
	sha256_hex(msg448, strlen(msg448), hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The one-million-'a' vector, fed in uneven pieces through the incremental API. */
static void test_core_crypto__sha256_incremental(void **state)
{
	ward_sha256_ctx *c = NULL;
	uint8_t d[WARD_SHA256_LEN];
	char hex[2 * WARD_SHA256_LEN + 1];
	char block[997];
	size_t left = 1000000;

	(void)state;
	memset(block, 'a', sizeof(block));
	assert_int_equal(ward_sha256_new(&c), 0);
	assert_int_equal(ward_sha256_update(c, NULL, 0), 0);
	while (left > 0) {
		size_t n = left < sizeof(block) ? left : sizeof(block);
		assert_int_equal(ward_sha256_update(c, block, n), 0);
		left -= n;
	}
	assert_int_equal(ward_sha256_final(c, d), 0);
	ward_sha256_free(c);
	ward_hex_encode_to(hex, d, sizeof(d));
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	ward_sha256_free(NULL);
}

static void test_core_crypto__sha256_new_enomem(void **state)
{
	ward_sha256_ctx *c = (ward_sha256_ctx *)1;

	(void)state;
	ward_alloc_fail_after(0);
	assert_int_equal(ward_sha256_new(&c), WARD_ENOMEM);
	assert_null(c);
	ward_alloc_fail_reset();
}

/* RFC 8032 section 7.1: derive the key from the seed and check public key and
 * signature byte for byte. */
struct rfc8032_vector {
	const char *seed;
	const char *pub;
	const char *msg;
	const char *sig;
};

static const struct rfc8032_vector rfc8032[] = {
	{
		"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
		"",
		"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
		"5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	},
	{
		"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
		"72",
		"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
		"085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
	},
};

/* Builds a private ward_key from a raw seed by way of its PKCS#8 PEM, since
 * the public API has no raw-private constructor. */
static ward_key *key_from_seed(const uint8_t seed[32])
{
	EVP_PKEY *pkey;
	BIO *bio;
	char *data = NULL;
	long n;
	ward_key *k = NULL;

	pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	assert_non_null(pkey);
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	assert_true(n > 0);
	assert_int_equal(ward_key_from_pem(&k, data, (size_t)n, 1), 0);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return k;
}

static void test_core_crypto__ed25519_rfc8032(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
		const struct rfc8032_vector *v = &rfc8032[i];
		uint8_t seed[32], pub[32], want_pub[32], sig[64], want_sig[64];
		uint8_t *msg = NULL;
		size_t msg_len = 0;
		ward_key *k;
		ward_key *pk = NULL;

		assert_int_equal(ward_hex_decode_to(seed, sizeof(seed), v->seed), 0);
		assert_int_equal(ward_hex_decode_to(want_pub, sizeof(want_pub), v->pub), 0);
		assert_int_equal(ward_hex_decode_to(want_sig, sizeof(want_sig), v->sig), 0);
		assert_int_equal(ward_hex_decode(&msg, &msg_len, v->msg, strlen(v->msg)), 0);

		k = key_from_seed(seed);
		assert_true(ward_key_has_private(k));
		assert_int_equal(ward_key_public_raw(k, pub), 0);
		assert_memory_equal(pub, want_pub, 32);
		assert_int_equal(ward_sign(sig, k, msg, msg_len), 0);
		assert_memory_equal(sig, want_sig, 64);

		assert_int_equal(ward_key_from_public(&pk, want_pub), 0);
		assert_false(ward_key_has_private(pk));
		assert_int_equal(ward_verify(pk, want_sig, 64, msg, msg_len), 0);

		ward_key_free(pk);
		ward_key_free(k);
		ward_free(msg);
	}
}

static void test_core_crypto__key_id(void **state)
{
	uint8_t pub[32];
	uint8_t digest[32];
	char want[WARD_KEY_ID_HEX_LEN + 1];
	char id[WARD_KEY_ID_HEX_LEN + 1];
	ward_key *k = NULL;

	(void)state;
	assert_int_equal(ward_hex_decode_to(pub, sizeof(pub), rfc8032[0].pub), 0);
	assert_int_equal(ward_key_from_public(&k, pub), 0);
	assert_int_equal(ward_key_id(k, id), 0);
	assert_int_equal(ward_sha256(digest, pub, sizeof(pub)), 0);
	ward_hex_encode_to(want, digest, WARD_KEY_ID_LEN);
	assert_string_equal(id, want);
	assert_int_equal(strlen(id), WARD_KEY_ID_HEX_LEN);
	ward_key_free(k);
}

static void test_core_crypto__sign_verify_roundtrip_and_negatives(void **state)
{
	static const char msg[] = "the chunk text that a reader trusts";
	ward_key *k = NULL;
	ward_key *other = NULL;
	ward_key *pub_only = NULL;
	uint8_t sig[64];
	uint8_t bad[64];
	uint8_t pub[32];
	char tampered[sizeof(msg)];
	size_t bit;

	(void)state;
	assert_int_equal(ward_key_generate(&k), 0);
	assert_int_equal(ward_key_generate(&other), 0);
	assert_int_equal(ward_sign(sig, k, msg, strlen(msg)), 0);
	assert_int_equal(ward_verify(k, sig, sizeof(sig), msg, strlen(msg)), 0);

	assert_int_equal(ward_key_public_raw(k, pub), 0);
	assert_int_equal(ward_key_from_public(&pub_only, pub), 0);
	assert_int_equal(ward_verify(pub_only, sig, sizeof(sig), msg, strlen(msg)), 0);

	/* every single flipped bit of the signature is caught */
	for (bit = 0; bit < 64 * 8; bit++) {
		memcpy(bad, sig, sizeof(bad));
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(ward_verify(pub_only, bad, sizeof(bad), msg, strlen(msg)), WARD_EVERIFY);
	}
	assert_int_equal(ward_error_last()->code, WARD_EVERIFY);

	/* one flipped bit of the message */
	memcpy(tampered, msg, sizeof(msg));
	tampered[3] ^= 0x01;
	assert_int_equal(ward_verify(pub_only, sig, sizeof(sig), tampered, strlen(msg)), WARD_EVERIFY);
	/* message truncated or extended */
	assert_int_equal(ward_verify(pub_only, sig, sizeof(sig), msg, strlen(msg) - 1), WARD_EVERIFY);
	assert_int_equal(ward_verify(pub_only, sig, sizeof(sig), msg, sizeof(msg)), WARD_EVERIFY);
	/* wrong key */
	assert_int_equal(ward_verify(other, sig, sizeof(sig), msg, strlen(msg)), WARD_EVERIFY);
	/* truncated, over-long, empty and absent signatures */
	assert_int_equal(ward_verify(pub_only, sig, 63, msg, strlen(msg)), WARD_EVERIFY);
	assert_int_equal(ward_verify(pub_only, sig, 0, msg, strlen(msg)), WARD_EVERIFY);
	assert_int_equal(ward_verify(pub_only, NULL, 64, msg, strlen(msg)), WARD_EVERIFY);
	{
		uint8_t longer[65];
		memcpy(longer, sig, 64);
		longer[64] = 0;
		assert_int_equal(ward_verify(pub_only, longer, sizeof(longer), msg, strlen(msg)), WARD_EVERIFY);
	}
	/* an all-zero and an all-0xff signature (the latter has S >= L: OpenSSL
	 * may report it as malformed rather than wrong) */
	memset(bad, 0, sizeof(bad));
	assert_int_equal(ward_verify(pub_only, bad, sizeof(bad), msg, strlen(msg)), WARD_EVERIFY);
	memset(bad, 0xff, sizeof(bad));
	assert_int_equal(ward_verify(pub_only, bad, sizeof(bad), msg, strlen(msg)), WARD_EVERIFY);

	/* a public-only key cannot sign */
	assert_int_equal(ward_sign(bad, pub_only, msg, strlen(msg)), WARD_EINVAL);

	/* the good signature still verifies after all the failures */
	assert_int_equal(ward_verify(pub_only, sig, sizeof(sig), msg, strlen(msg)), 0);

	ward_key_free(pub_only);
	ward_key_free(other);
	ward_key_free(k);
	ward_key_free(NULL);
}

static void test_core_crypto__sign_empty_message(void **state)
{
	ward_key *k = NULL;
	uint8_t sig[64];

	(void)state;
	assert_int_equal(ward_key_generate(&k), 0);
	assert_int_equal(ward_sign(sig, k, NULL, 0), 0);
	assert_int_equal(ward_verify(k, sig, sizeof(sig), "", 0), 0);
	assert_int_equal(ward_verify(k, sig, sizeof(sig), "x", 1), WARD_EVERIFY);
	ward_key_free(k);
}

static void test_core_crypto__pem_roundtrip(void **state)
{
	ward_key *k = NULL;
	ward_key *priv = NULL;
	ward_key *pub = NULL;
	char *priv_pem = NULL;
	char *pub_pem = NULL;
	size_t priv_len = 0;
	size_t pub_len = 0;
	uint8_t raw1[32], raw2[32], raw3[32], sig[64];
	char id1[WARD_KEY_ID_HEX_LEN + 1], id2[WARD_KEY_ID_HEX_LEN + 1];

	(void)state;
	assert_int_equal(ward_key_generate(&k), 0);
	assert_int_equal(ward_key_private_pem(k, &priv_pem, &priv_len), 0);
	assert_int_equal(ward_key_public_pem(k, &pub_pem, &pub_len), 0);
	assert_int_equal(strlen(priv_pem), priv_len);
	assert_int_equal(strlen(pub_pem), pub_len);
	assert_non_null(strstr(priv_pem, "-----BEGIN PRIVATE KEY-----"));
	assert_non_null(strstr(pub_pem, "-----BEGIN PUBLIC KEY-----"));

	assert_int_equal(ward_key_from_pem(&priv, priv_pem, priv_len, 1), 0);
	assert_int_equal(ward_key_from_pem(&pub, pub_pem, pub_len, 0), 0);
	assert_true(ward_key_has_private(priv));
	assert_false(ward_key_has_private(pub));

	assert_int_equal(ward_key_public_raw(k, raw1), 0);
	assert_int_equal(ward_key_public_raw(priv, raw2), 0);
	assert_int_equal(ward_key_public_raw(pub, raw3), 0);
	assert_memory_equal(raw1, raw2, 32);
	assert_memory_equal(raw1, raw3, 32);
	assert_int_equal(ward_key_id(k, id1), 0);
	assert_int_equal(ward_key_id(pub, id2), 0);
	assert_string_equal(id1, id2);

	assert_int_equal(ward_sign(sig, priv, "m", 1), 0);
	assert_int_equal(ward_verify(pub, sig, sizeof(sig), "m", 1), 0);

	/* a public-only key has no private PEM; the wrong kind of PEM is refused */
	{
		char *none = (char *)1;
		assert_int_equal(ward_key_private_pem(pub, &none, NULL), WARD_EINVAL);
		assert_null(none);
	}
	{
		ward_key *x = NULL;
		assert_int_equal(ward_key_from_pem(&x, pub_pem, pub_len, 1), WARD_EKEY);
		assert_null(x);
		assert_int_equal(ward_key_from_pem(&x, priv_pem, priv_len, 0), WARD_EKEY);
		assert_null(x);
	}

	ward_free_secure(priv_pem, priv_len);
	ward_free(pub_pem);
	ward_key_free(pub);
	ward_key_free(priv);
	ward_key_free(k);
}

static char *pem_of(EVP_PKEY *pkey, int private_part, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	char *s;
	long n;

	assert_non_null(bio);
	if (private_part)
		assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
	n = BIO_get_mem_data(bio, &data);
	assert_true(n > 0);
	s = ward_strndup(data, (size_t)n);
	assert_non_null(s);
	*len = (size_t)n;
	BIO_free(bio);
	return s;
}

static void test_core_crypto__non_ed25519_pem_rejected(void **state)
{
	EVP_PKEY *ec;
	char *priv_pem;
	char *pub_pem;
	size_t priv_len, pub_len;
	ward_key *k = NULL;

	(void)state;
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ec);
	priv_pem = pem_of(ec, 1, &priv_len);
	pub_pem = pem_of(ec, 0, &pub_len);

	assert_int_equal(ward_key_from_pem(&k, priv_pem, priv_len, 1), WARD_EKEY);
	assert_null(k);
	assert_int_equal(ward_error_last()->code, WARD_EKEY);
	assert_non_null(strstr(ward_error_last()->message, "EC"));
	assert_int_equal(ward_key_from_pem(&k, pub_pem, pub_len, 0), WARD_EKEY);
	assert_null(k);

	ward_free(priv_pem);
	ward_free(pub_pem);
	EVP_PKEY_free(ec);
}

static void test_core_crypto__garbage_pem_rejected(void **state)
{
	static const char *garbage[] = {
		"not a pem at all",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
		"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
		"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
		"MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgAAAAAAAAAAAICCAAw\n"
		"-----END ENCRYPTED PRIVATE KEY-----\n",
	};
	size_t i;
	ward_key *k = NULL;

	(void)state;
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		assert_int_equal(ward_key_from_pem(&k, garbage[i], strlen(garbage[i]), 1), WARD_EKEY);
		assert_null(k);
		assert_int_equal(ward_key_from_pem(&k, garbage[i], strlen(garbage[i]), 0), WARD_EKEY);
		assert_null(k);
	}
	assert_int_equal(ward_key_from_pem(&k, "", 0, 1), WARD_EKEY);
	assert_int_equal(ward_key_from_pem(&k, NULL, 0, 0), WARD_EKEY);
	assert_null(k);
}

/* An encrypted key must fail cleanly, never prompt on the terminal. */
static void test_core_crypto__encrypted_pem_rejected(void **state)
{
	EVP_PKEY *pkey;
	BIO *bio;
	char *data = NULL;
	long n;
	ward_key *k = NULL;

	(void)state;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(pkey);
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, pkey, EVP_aes_256_cbc(), "passphrase", 10, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	assert_true(n > 0);
	assert_non_null(strstr(data, "ENCRYPTED"));
	assert_int_equal(ward_key_from_pem(&k, data, (size_t)n, 1), WARD_EKEY);
	assert_null(k);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
}

static void test_core_crypto__key_generate_enomem(void **state)
{
	ward_key *k = (ward_key *)1;

	(void)state;
	ward_alloc_fail_after(0);
	assert_int_equal(ward_key_generate(&k), WARD_ENOMEM);
	assert_null(k);
	ward_alloc_fail_reset();
}

static void test_core_crypto__ct_equal(void **state)
{
	(void)state;
	assert_true(ward_ct_equal("abcd", "abcd", 4));
	assert_false(ward_ct_equal("abcd", "abce", 4));
	assert_false(ward_ct_equal("\x00xyz", "\x01xyz", 4));
	assert_true(ward_ct_equal("a", "b", 0));
}

static void test_core_crypto__random_and_wipe(void **state)
{
	uint8_t a[32] = {0};
	uint8_t b[32] = {0};
	uint8_t zero[32] = {0};
	uint8_t *heap;

	(void)state;
	assert_int_equal(ward_random(a, sizeof(a)), 0);
	assert_int_equal(ward_random(b, sizeof(b)), 0);
	assert_int_equal(ward_random(b, 0), 0);
	assert_false(ward_ct_equal(a, b, sizeof(a)));
	ward_wipe(a, sizeof(a));
	assert_memory_equal(a, zero, sizeof(zero));
	ward_wipe(NULL, 10);
	heap = ward_malloc(16);
	assert_non_null(heap);
	memset(heap, 0x5a, 16);
	ward_free_secure(heap, 16);
	ward_free_secure(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_core_crypto__sha256_fips_vectors, teardown),
		cmocka_unit_test_teardown(test_core_crypto__sha256_incremental, teardown),
		cmocka_unit_test_teardown(test_core_crypto__sha256_new_enomem, teardown),
		cmocka_unit_test_teardown(test_core_crypto__ed25519_rfc8032, teardown),
		cmocka_unit_test_teardown(test_core_crypto__key_id, teardown),
		cmocka_unit_test_teardown(test_core_crypto__sign_verify_roundtrip_and_negatives, teardown),
		cmocka_unit_test_teardown(test_core_crypto__sign_empty_message, teardown),
		cmocka_unit_test_teardown(test_core_crypto__pem_roundtrip, teardown),
		cmocka_unit_test_teardown(test_core_crypto__non_ed25519_pem_rejected, teardown),
		cmocka_unit_test_teardown(test_core_crypto__garbage_pem_rejected, teardown),
		cmocka_unit_test_teardown(test_core_crypto__encrypted_pem_rejected, teardown),
		cmocka_unit_test_teardown(test_core_crypto__key_generate_enomem, teardown),
		cmocka_unit_test_teardown(test_core_crypto__ct_equal, teardown),
		cmocka_unit_test_teardown(test_core_crypto__random_and_wipe, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
