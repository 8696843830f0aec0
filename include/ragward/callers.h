/*
 * Callers of the retrieval server: one bearer token per caller, each with the
 * labels it may see. A token is shown once, when it is made; the store keeps
 * only SHA-256(token). Every change appends an audit event in its own
 * transaction (needs a store opened with WARD_STORE_SIGN).
 *
 * Token format: "rwd_" followed by 64 lowercase hex digits (256 random bits).
 */
#ifndef RAGWARD_CALLERS_H
#define RAGWARD_CALLERS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "ragward/store.h"

#define WARD_CALLER_TOKEN_PREFIX    "rwd_"
#define WARD_CALLER_TOKEN_LEN       68  /* prefix + 64 hex digits, without the NUL */
#define WARD_CALLER_TOKEN_MAX_INPUT 512 /* a presented token longer than this is refused unhashed */

typedef struct {
	int64_t id;
	char *name;
	char *labels; /* JSON array text, sorted ("[]" when none) */
	char *state;  /* active, revoked */
	char *created_at;
	char *revoked_at; /* NULL while active */
} ward_caller;

void ward_caller_dispose(ward_caller *c);
void ward_callers_free(ward_caller *list, size_t n);

/*
 * Adds a caller. `labels_csv` ("a,b", may be NULL) follows the source label
 * rules (lowercase letters, digits, '-', '_', '.'; at most 32 of 64 bytes).
 * `token` receives the new token, NUL-terminated; it is never stored and
 * cannot be shown again. `out` (may be NULL) receives the stored row.
 * WARD_EEXISTS when the name is taken; WARD_EINVAL for a bad name or label.
 */
int ward_callers_add(ward_store *s, const ward_actor *who, const char *name, const char *labels_csv,
                     char token[WARD_CALLER_TOKEN_LEN + 1], ward_caller *out) WARD_MUST_CHECK;

/* Every caller, oldest first (tokens are never listed: only hashes exist). */
int ward_callers_list(ward_store *s, ward_caller **out, size_t *n) WARD_MUST_CHECK;

/* A caller by decimal id or by name; WARD_ENOTFOUND when none. */
int ward_callers_get(ward_store *s, const char *id_or_name, ward_caller *out) WARD_MUST_CHECK;

/* Revokes a caller (active -> revoked; WARD_ESTATE when already revoked).
 * The token stops working at the next request. `out` may be NULL. */
int ward_callers_revoke(ward_store *s, const ward_actor *who, const char *id_or_name, ward_caller *out) WARD_MUST_CHECK;

/*
 * Checks a presented token: hashes it, looks the hash up, and compares the
 * stored and computed 32-byte hashes in constant time (ward_ct_equal). Only an
 * active caller passes. WARD_EPOLICY "caller token not accepted" for every
 * kind of refusal (unknown, revoked, malformed), so that the reason is not
 * observable; WARD_EDB when the store cannot be read. `out` receives the
 * caller on success.
 */
int ward_callers_authenticate(ward_store *s, const char *token, size_t len, ward_caller *out) WARD_MUST_CHECK;

/* The labels of a caller as a NULL-free array of borrowed strings taken from
 * the parsed JSON; *arr is ward_malloc'd (free it; strings live in *json,
 * which the caller json_decref's). Convenience for the server. */
int ward_caller_labels(const ward_caller *c, json_t **json, const char ***arr, size_t *n) WARD_MUST_CHECK;

#endif
