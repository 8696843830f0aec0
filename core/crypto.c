/*
 * SHA-256 and Ed25519 over OpenSSL 3 EVP. Every OpenSSL failure drains the
 * thread's OpenSSL error queue into ward_error, so a stale queue entry can
 * never be mistaken for the cause of a later, unrelated failure.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "core/limits.h"
#include "core/banned.h"

struct ward_sha256_ctx {
	EVP_MD_CTX *md;
};

struct ward_key {
	EVP_PKEY *pkey;
	int has_private;
};

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

/* Fetching an algorithm walks the provider tables and takes locks; doing it
 * once keeps per-chunk hashing cheap. The object lives until exit. */
static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Records the first queued OpenSSL error (the root cause; later entries are
 * the call stack unwinding) and empties the queue. */
static int ossl_fail(int code, const char *what)
{
	char detail[256];
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	else
		snprintf(detail, sizeof(detail), "no openssl error reported");
	ERR_clear_error();
	return ward_error_set(code, "%s: %s", what, detail);
}

static const EVP_MD *sha256_get(void)
{
	if (pthread_once(&sha256_once, sha256_fetch) != 0)
		return NULL;
	return sha256_md;
}

/* OpenSSL treats a NULL data pointer inconsistently across calls even when
 * the length is 0. */
static const void *nonnull(const void *p)
{
	return p != NULL ? p : "";
}

int ward_sha256(uint8_t out[WARD_SHA256_LEN], const void *data, size_t n)
{
	const EVP_MD *md = sha256_get();
	unsigned int len = 0;

	if (md == NULL)
		return ossl_fail(WARD_ECRYPTO, "sha-256: algorithm unavailable");
	if (EVP_Digest(nonnull(data), n, out, &len, md, NULL) != 1 || len != WARD_SHA256_LEN)
		return ossl_fail(WARD_ECRYPTO, "sha-256: digest failed");
	return 0;
}

int ward_sha256_new(ward_sha256_ctx **out)
{
	const EVP_MD *md = sha256_get();
	ward_sha256_ctx *c = NULL;
	int rc = 0;

	*out = NULL;
	if (md == NULL) {
		rc = ossl_fail(WARD_ECRYPTO, "sha-256: algorithm unavailable");
		goto done;
	}
	c = ward_calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "sha-256: out of memory");
		goto done;
	}
	c->md = EVP_MD_CTX_new();
	if (c->md == NULL || EVP_DigestInit_ex(c->md, md, NULL) != 1) {
		rc = ossl_fail(WARD_ECRYPTO, "sha-256: cannot initialise context");
		goto done;
	}
	*out = c;
	c = NULL;
done:
	ward_sha256_free(c);
	return rc;
}

int ward_sha256_update(ward_sha256_ctx *c, const void *data, size_t n)
{
	if (c == NULL)
		return ward_error_set(WARD_EINVAL, "sha-256: no context");
	if (n == 0)
		return 0;
	if (EVP_DigestUpdate(c->md, data, n) != 1)
		return ossl_fail(WARD_ECRYPTO, "sha-256: update failed");
	return 0;
}

int ward_sha256_final(ward_sha256_ctx *c, uint8_t out[WARD_SHA256_LEN])
{
	unsigned int len = 0;

	if (c == NULL)
		return ward_error_set(WARD_EINVAL, "sha-256: no context");
	if (EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != WARD_SHA256_LEN)
		return ossl_fail(WARD_ECRYPTO, "sha-256: final failed");
	return 0;
}

void ward_sha256_free(ward_sha256_ctx *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	ward_free(c);
}

/* Takes ownership of pkey (freed on failure). */
static int key_wrap(ward_key **out, EVP_PKEY *pkey, int has_private)
{
	ward_key *k = ward_calloc(1, sizeof(*k));

	if (k == NULL) {
		EVP_PKEY_free(pkey);
		return ward_error_set(WARD_ENOMEM, "key: out of memory");
	}
	k->pkey = pkey;
	k->has_private = has_private;
	*out = k;
	return 0;
}

int ward_key_generate(ward_key **out)
{
	EVP_PKEY *pkey;

	*out = NULL;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL)
		return ossl_fail(WARD_ECRYPTO, "key: ed25519 generation failed");
	return key_wrap(out, pkey, 1);
}

int ward_key_from_public(ward_key **out, const uint8_t pub[WARD_ED25519_PUB_LEN])
{
	EVP_PKEY *pkey;

	*out = NULL;
	pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, pub, WARD_ED25519_PUB_LEN);
	if (pkey == NULL)
		return ossl_fail(WARD_EKEY, "key: invalid ed25519 public key");
	return key_wrap(out, pkey, 0);
}

/* Without a callback OpenSSL would prompt on the terminal for an encrypted
 * key; an unattended tool must fail instead. */
static int pem_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int ward_key_from_pem(ward_key **out, const char *pem, size_t len, int want_private)
{
	const char *kind = want_private ? "private" : "public";
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = 0;

	*out = NULL;
	if (pem == NULL || len == 0) {
		rc = ward_error_set(WARD_EKEY, "%s key: empty pem", kind);
		goto done;
	}
	if (len > WARD_MAX_KEY_FILE) {
		rc = ward_error_set(WARD_EKEY, "%s key: pem is %zu bytes, limit is %d", kind, len, WARD_MAX_KEY_FILE);
		goto done;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		rc = ossl_fail(WARD_ENOMEM, "key: cannot create memory bio");
		goto done;
	}
	if (want_private)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_no_password, NULL);
	else
		pkey = PEM_read_bio_PUBKEY(bio, NULL, pem_no_password, NULL);
	if (pkey == NULL) {
		rc = ossl_fail(WARD_EKEY,
			       want_private ? "private key: cannot parse pem" : "public key: cannot parse pem");
		goto done;
	}
	if (!EVP_PKEY_is_a(pkey, "ED25519")) {
		rc = ward_error_set(WARD_EKEY, "%s key: type is '%s', expected 'ED25519'", kind,
				    EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown");
		goto done;
	}
	rc = key_wrap(out, pkey, want_private);
	pkey = NULL;
done:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

/* Copies a memory BIO's contents into a NUL-terminated ward_malloc buffer. */
static int bio_to_string(BIO *bio, char **out, size_t *len, const char *what)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *s;

	if (n <= 0 || data == NULL)
		return ossl_fail(WARD_ECRYPTO, what);
	s = ward_malloc((size_t)n + 1);
	if (s == NULL)
		return ward_error_set(WARD_ENOMEM, "%s: out of memory", what);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	if (len != NULL)
		*len = (size_t)n;
	return 0;
}

int ward_key_private_pem(const ward_key *k, char **out, size_t *len)
{
	BIO *bio = NULL;
	int rc = 0;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (k == NULL || !k->has_private) {
		rc = ward_error_set(WARD_EINVAL, "private key pem: key has no private part");
		goto done;
	}
	/* secmem: the BIO's buffer is cleansed when freed, so the plaintext key
	 * does not linger in freed heap memory. */
	bio = BIO_new(BIO_s_secmem());
	if (bio == NULL) {
		rc = ossl_fail(WARD_ENOMEM, "private key pem: cannot create memory bio");
		goto done;
	}
	if (PEM_write_bio_PKCS8PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		rc = ossl_fail(WARD_ECRYPTO, "private key pem: encoding failed");
		goto done;
	}
	rc = bio_to_string(bio, out, len, "private key pem");
done:
	BIO_free(bio);
	return rc;
}

int ward_key_public_pem(const ward_key *k, char **out, size_t *len)
{
	BIO *bio = NULL;
	int rc = 0;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (k == NULL) {
		rc = ward_error_set(WARD_EINVAL, "public key pem: no key");
		goto done;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		rc = ossl_fail(WARD_ENOMEM, "public key pem: cannot create memory bio");
		goto done;
	}
	if (PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
		rc = ossl_fail(WARD_ECRYPTO, "public key pem: encoding failed");
		goto done;
	}
	rc = bio_to_string(bio, out, len, "public key pem");
done:
	BIO_free(bio);
	return rc;
}

int ward_key_public_raw(const ward_key *k, uint8_t out[WARD_ED25519_PUB_LEN])
{
	size_t len = WARD_ED25519_PUB_LEN;

	if (k == NULL)
		return ward_error_set(WARD_EINVAL, "public key: no key");
	if (EVP_PKEY_get_raw_public_key(k->pkey, out, &len) != 1 || len != WARD_ED25519_PUB_LEN)
		return ossl_fail(WARD_ECRYPTO, "public key: cannot export raw key");
	return 0;
}

int ward_key_has_private(const ward_key *k)
{
	return k != NULL && k->has_private;
}

int ward_key_id(const ward_key *k, char out[WARD_KEY_ID_HEX_LEN + 1])
{
	uint8_t pub[WARD_ED25519_PUB_LEN];
	uint8_t digest[WARD_SHA256_LEN];
	int rc;

	out[0] = '\0';
	rc = ward_key_public_raw(k, pub);
	if (rc != 0)
		return rc;
	rc = ward_sha256(digest, pub, sizeof(pub));
	if (rc != 0)
		return rc;
	ward_hex_encode_to(out, digest, WARD_KEY_ID_LEN);
	return 0;
}

void ward_key_free(ward_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	ward_free(k);
}

int ward_sign(uint8_t sig[WARD_ED25519_SIG_LEN], const ward_key *k, const void *msg, size_t n)
{
	EVP_MD_CTX *ctx = NULL;
	size_t sig_len = WARD_ED25519_SIG_LEN;
	int rc = 0;

	if (k == NULL || !k->has_private) {
		rc = ward_error_set(WARD_EINVAL, "sign: key has no private part");
		goto done;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = ossl_fail(WARD_ENOMEM, "sign: cannot create context");
		goto done;
	}
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1) {
		rc = ossl_fail(WARD_ECRYPTO, "sign: init failed");
		goto done;
	}
	if (EVP_DigestSign(ctx, sig, &sig_len, nonnull(msg), n) != 1 || sig_len != WARD_ED25519_SIG_LEN) {
		rc = ossl_fail(WARD_ECRYPTO, "sign: signing failed");
		goto done;
	}
done:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int ward_verify(const ward_key *k, const uint8_t *sig, size_t sig_len, const void *msg, size_t n)
{
	EVP_MD_CTX *ctx = NULL;
	int rc = 0;
	int r;

	if (k == NULL) {
		rc = ward_error_set(WARD_EINVAL, "verify: no key");
		goto done;
	}
	if (sig == NULL || sig_len != WARD_ED25519_SIG_LEN) {
		rc = ward_error_set(WARD_EVERIFY, "verify: signature is %zu bytes, expected %d",
				    sig == NULL ? (size_t)0 : sig_len, WARD_ED25519_SIG_LEN);
		goto done;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = ossl_fail(WARD_ENOMEM, "verify: cannot create context");
		goto done;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1) {
		rc = ossl_fail(WARD_ECRYPTO, "verify: init failed");
		goto done;
	}
	/* Only exactly 1 means valid: 0 is a bad signature and a negative value
	 * is a malformed one (e.g. an out-of-range scalar), never a pass. */
	r = EVP_DigestVerify(ctx, sig, sig_len, nonnull(msg), n);
	if (r != 1) {
		ERR_clear_error();
		rc = ward_error_set(WARD_EVERIFY, "verify: ed25519 signature does not match");
		goto done;
	}
done:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int ward_ct_equal(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	return CRYPTO_memcmp(a, b, n) == 0;
}

int ward_random(void *out, size_t n)
{
	unsigned char *p = out;

	/* RAND_bytes takes an int length. */
	while (n > 0) {
		int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;

		if (RAND_bytes(p, chunk) != 1)
			return ossl_fail(WARD_ECRYPTO, "random: rand_bytes failed");
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

void ward_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void ward_free_secure(void *p, size_t n)
{
	if (p == NULL)
		return;
	ward_wipe(p, n);
	ward_free(p);
}
