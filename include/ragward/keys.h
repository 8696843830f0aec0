/*
 * Signing keys. The private key lives in HOME/keys/<key_id>.key (0600, in a
 * 0700 directory) and is refused when group/other can read it, when it is a
 * symlink, or when it belongs to another user. The keys table keeps every
 * public key ever used, so signatures by retired keys still verify.
 */
#ifndef RAGWARD_KEYS_H
#define RAGWARD_KEYS_H

#include <stdint.h>
#include "ragward/store.h"
#include "ragward/crypto.h"

typedef struct {
	char key_id[33];
	char *state; /* active, retired */
	char *created_at;
	char *retired_at; /* NULL while active */
	uint8_t public_key[WARD_ED25519_PUB_LEN];
} ward_key_info;

int ward_keys_list(ward_store *s, ward_key_info **out, size_t *n) WARD_MUST_CHECK;
void ward_keys_free(ward_key_info *k, size_t n);

/* The public key for a key id (active or retired); WARD_ENOTFOUND otherwise. */
int ward_keys_public(ward_store *s, const char *key_id, ward_key **out) WARD_MUST_CHECK;

/* The signing key of an opened store (borrowed; NULL without WARD_STORE_SIGN). */
const ward_key *ward_store_signer(const ward_store *s);

/*
 * Generates a new key, retires the active one, and records "key.rotate" with
 * the old key's signature over the new public key (an endorsement that shows
 * the rotation was made by the holder of the old key). Needs WARD_STORE_SIGN.
 */
int ward_keys_rotate(ward_store *s, const ward_actor *who, char new_key_id[33]) WARD_MUST_CHECK;

/* Loads a private key file with the permission checks above. */
int ward_keys_load_private(ward_key **out, const char *path) WARD_MUST_CHECK;
/* Writes a new private key file (O_EXCL, 0600) and its .pub next to it. */
int ward_keys_write_files(const char *keys_dir, const ward_key *k, const char *key_id) WARD_MUST_CHECK;

#endif
