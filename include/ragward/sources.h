/*
 * Source governance: which URL prefixes, hosts and directories may feed the
 * index. States: requested -> approved | rejected; approved -> revoked;
 * revoked -> approved (a new approval). Every change appends an audit event in
 * the same transaction.
 */
#ifndef RAGWARD_SOURCES_H
#define RAGWARD_SOURCES_H

#include <stdint.h>
#include "ragward/store.h"
#include "ragward/url.h"

typedef enum { WARD_TRUST_LOW = 0, WARD_TRUST_STANDARD = 1, WARD_TRUST_HIGH = 2 } ward_trust;

const char *ward_trust_name(ward_trust t);
int ward_trust_parse(ward_trust *out, const char *s) WARD_MUST_CHECK;

typedef struct {
	int64_t id;
	char *name;
	ward_source_kind kind;
	char *pattern; /* canonical */
	ward_trust trust;
	char *labels; /* JSON array of strings */
	int allow_private;
	char *state; /* requested, approved, rejected, revoked */
	char *origin; /* cli, import */
	char *requested_by;
	long requested_uid;
	char *requested_at;
	char *reason;
	char *decided_by; /* NULL until a decision */
	long decided_uid;
	char *decided_at;
	char *note;
	char *seeds; /* JSON array of canonical URLs fetched by `ingest --all` besides the pattern */
} ward_source;

void ward_source_dispose(ward_source *src);
void ward_sources_free(ward_source *list, size_t n);

typedef struct {
	const char *name;
	const char *pattern;
	ward_source_kind kind;
	int kind_given; /* 0: inferred from the pattern (https URL or absolute path) */
	ward_trust trust;
	const char *labels; /* comma-separated, may be NULL */
	int allow_private;
	const char *reason; /* may be NULL */
	const char *const *seeds; /* extra URLs for `ingest --all` (http/https only), each covered by the pattern */
	size_t nseeds;
} ward_source_request;

/* Validates and canonicalizes, then stores a source in state "requested". */
int ward_sources_request(ward_store *s, const ward_actor *who, const ward_source_request *req, int64_t *id_out)
	WARD_MUST_CHECK;

typedef enum { WARD_DECIDE_APPROVE, WARD_DECIDE_REJECT, WARD_DECIDE_REVOKE } ward_decision;

/*
 * Applies a reviewer decision. Illegal transitions are WARD_ESTATE; an
 * approval by the requester while the two-person rule is on is WARD_EPOLICY.
 */
int ward_sources_decide(ward_store *s, const ward_actor *who, int64_t id, ward_decision d, const char *note)
	WARD_MUST_CHECK;

int ward_sources_get(ward_store *s, int64_t id, ward_source *out) WARD_MUST_CHECK;
/* state may be NULL for all. */
int ward_sources_list(ward_store *s, const char *state, ward_source **out, size_t *n) WARD_MUST_CHECK;

/*
 * The approved source that covers a URL or an absolute path (the longest
 * pattern wins; ties go to the lowest id). WARD_EPOLICY with a message naming
 * `ragward sources request` when none does.
 */
int ward_sources_match(ward_store *s, const char *target, ward_source *out) WARD_MUST_CHECK;

typedef struct {
	size_t added;
	size_t unchanged;
	char sha256_hex[65];
} ward_import_result;

/*
 * Imports the reviewed baseline file (rules/sources.yaml format, see
 * rules/README.md): new entries are added as approved, identical entries are
 * left alone, and an entry that differs from the stored source of the same
 * name fails the whole import (WARD_EEXISTS). All or nothing.
 */
int ward_sources_import(ward_store *s, const ward_actor *who, const char *path, ward_import_result *res)
	WARD_MUST_CHECK;

#endif
