/*
 * The signed statement of a chunk: what a chunk's signature covers.
 *
 * A versioned, length-prefixed canonical encoding of the chunk's provenance
 * and content hash (docs/signed-statement.md gives it byte by byte). Every
 * column of a chunk row is either in the statement or checked against it, so
 * a changed value in any column fails verification. The signature is Ed25519
 * over SHA-256(statement).
 */
#ifndef RAGWARD_CANON_H
#define RAGWARD_CANON_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/crypto.h"
#include "ragward/error.h"

#define WARD_STATEMENT_VERSION 1

typedef struct {
	int version;             /* WARD_STATEMENT_VERSION */
	char key_id[33];         /* signer, hex */
	int64_t chunk_id;
	int64_t document_id;
	int64_t document_version;
	int64_t source_id;
	const char *uri;         /* the document's final URI (or canonical path) */
	uint8_t doc_sha256[WARD_SHA256_LEN];  /* of the fetched bytes */
	int64_t ordinal;         /* chunk number within the document version, from 0 */
	const char *heading_path; /* "Guide > Install > Linux", "" when none */
	int64_t char_start, char_end; /* byte range of the chunk in the extracted text */
	uint8_t text_sha256[WARD_SHA256_LEN]; /* of the chunk text */
	const char *ruleset_sha256; /* hex, or "none" when no rule set judged it */
	const char *verdict;     /* accept, flag, strip, quarantine */
	const char *fetched_at;  /* RFC 3339 UTC */
} ward_statement;

/* Encodes; *out is ward_malloc'd. Strings must be valid and at most
 * WARD_MAX_STATEMENT_FIELD bytes. */
int ward_statement_encode(uint8_t **out, size_t *len, const ward_statement *st) WARD_MUST_CHECK;

/* Decodes strictly (tag, version, every field, nothing after). The string
 * fields of *out point into `buf`'s copy held in *storage (ward_free it). */
int ward_statement_decode(ward_statement *out, char **storage, const uint8_t *buf, size_t len) WARD_MUST_CHECK;

int ward_statement_sign(uint8_t sig[WARD_ED25519_SIG_LEN], const ward_key *k, const ward_statement *st)
	WARD_MUST_CHECK;
/* 0 when valid, WARD_EVERIFY when not. */
int ward_statement_verify(const ward_key *k, const uint8_t *sig, size_t sig_len, const ward_statement *st)
	WARD_MUST_CHECK;

#endif
