/*
 * Hashing, signing and encodings over OpenSSL EVP.
 *
 * Ed25519 is used one-shot (EVP_DigestSign / EVP_DigestVerify with a NULL
 * digest). A verify result counts as success only when OpenSSL returns exactly
 * 1. Key ids are the first 16 bytes of SHA-256(raw 32-byte public key), in hex.
 */
#ifndef RAGWARD_CRYPTO_H
#define RAGWARD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/error.h"

#define WARD_SHA256_LEN 32
#define WARD_ED25519_PUB_LEN 32
#define WARD_ED25519_SIG_LEN 64
#define WARD_KEY_ID_LEN 16                       /* bytes */
#define WARD_KEY_ID_HEX_LEN (2 * WARD_KEY_ID_LEN) /* characters */

int ward_sha256(uint8_t out[WARD_SHA256_LEN], const void *data, size_t n) WARD_MUST_CHECK;

/* Incremental SHA-256 for streams (files, concatenations). */
typedef struct ward_sha256_ctx ward_sha256_ctx;
int ward_sha256_new(ward_sha256_ctx **out) WARD_MUST_CHECK;
int ward_sha256_update(ward_sha256_ctx *c, const void *data, size_t n) WARD_MUST_CHECK;
int ward_sha256_final(ward_sha256_ctx *c, uint8_t out[WARD_SHA256_LEN]) WARD_MUST_CHECK;
void ward_sha256_free(ward_sha256_ctx *c);

/* An Ed25519 key: a private key for signing, or a public key for verifying. */
typedef struct ward_key ward_key;

int ward_key_generate(ward_key **out) WARD_MUST_CHECK;
/* Raw 32-byte public key (no private part). */
int ward_key_from_public(ward_key **out, const uint8_t pub[WARD_ED25519_PUB_LEN]) WARD_MUST_CHECK;
/* PEM: PKCS#8 private key or SubjectPublicKeyInfo. Anything else is WARD_EKEY. */
int ward_key_from_pem(ward_key **out, const char *pem, size_t len, int want_private) WARD_MUST_CHECK;
/* PEM encodings; *out is allocated with ward_malloc, NUL-terminated. The private
 * PEM must be released with ward_free_secure(). */
int ward_key_private_pem(const ward_key *k, char **out, size_t *len) WARD_MUST_CHECK;
int ward_key_public_pem(const ward_key *k, char **out, size_t *len) WARD_MUST_CHECK;
int ward_key_public_raw(const ward_key *k, uint8_t out[WARD_ED25519_PUB_LEN]) WARD_MUST_CHECK;
int ward_key_has_private(const ward_key *k);
/* Hex key id (WARD_KEY_ID_HEX_LEN chars + NUL). */
int ward_key_id(const ward_key *k, char out[WARD_KEY_ID_HEX_LEN + 1]) WARD_MUST_CHECK;
void ward_key_free(ward_key *k);

int ward_sign(uint8_t sig[WARD_ED25519_SIG_LEN], const ward_key *k, const void *msg, size_t n) WARD_MUST_CHECK;
/* 0 when the signature is valid; WARD_EVERIFY when it is not; WARD_ECRYPTO on
 * an OpenSSL failure. */
int ward_verify(const ward_key *k, const uint8_t *sig, size_t sig_len, const void *msg, size_t n) WARD_MUST_CHECK;

/* Constant-time equality of two equal-length buffers: 1 when equal. */
int ward_ct_equal(const void *a, const void *b, size_t n);

/* Fills with cryptographically secure random bytes. */
int ward_random(void *out, size_t n) WARD_MUST_CHECK;

/* Zeroes memory in a way the compiler may not remove, then frees it. */
void ward_free_secure(void *p, size_t n);
void ward_wipe(void *p, size_t n);

/* Hex (lowercase) and standard base64 with padding. Outputs are allocated with
 * ward_malloc and NUL-terminated. Decoders reject any malformed input
 * (odd length, bad characters, bad padding) with WARD_EINVAL. */
int ward_hex_encode(char **out, const uint8_t *data, size_t n) WARD_MUST_CHECK;
/* Writes 2n+1 chars into a caller buffer. */
void ward_hex_encode_to(char *out, const uint8_t *data, size_t n);
int ward_hex_decode(uint8_t **out, size_t *out_len, const char *hex, size_t len) WARD_MUST_CHECK;
/* Decodes exactly `n` bytes into a caller buffer (fails when the length differs). */
int ward_hex_decode_to(uint8_t *out, size_t n, const char *hex) WARD_MUST_CHECK;
int ward_base64_encode(char **out, const uint8_t *data, size_t n) WARD_MUST_CHECK;
int ward_base64_decode(uint8_t **out, size_t *out_len, const char *b64, size_t len) WARD_MUST_CHECK;

#endif
