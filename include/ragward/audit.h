/*
 * The audit log: an append-only RFC 6962 Merkle log of governance events,
 * with signed checkpoints.
 *
 * Every governance change appends its event inside the change's own
 * transaction; ward_store_commit then signs a checkpoint of the new tree in
 * that same transaction. The leaf of an event is
 *   SHA-256(0x00 || "ragward/audit-event/v1" || fields),
 * where fields are length-prefixed (u32 big-endian) strings: seq, time, actor,
 * uid, action, subject, details (docs/audit-log.md gives the bytes).
 */
#ifndef RAGWARD_AUDIT_H
#define RAGWARD_AUDIT_H

#include <stdint.h>
#include <jansson.h>
#include "ragward/store.h"
#include "ragward/merkle.h"

/* Appends one event; must be called inside ward_store_begin/commit. `details`
 * may be NULL (stored as {}); it is borrowed. */
int ward_audit_append(ward_store *s, const ward_actor *who, const char *action, const char *subject,
		      const json_t *details) WARD_MUST_CHECK;

typedef struct {
	int64_t seq;
	char *time;
	char *actor;
	long uid;
	char *action;
	char *subject;
	char *details; /* compact JSON */
} ward_audit_event;

/* The last `limit` events (all when limit <= 0), oldest first. */
int ward_audit_list(ward_store *s, int64_t limit, ward_audit_event **out, size_t *n) WARD_MUST_CHECK;
void ward_audit_events_free(ward_audit_event *ev, size_t n);

/* A signed tree head. */
typedef struct {
	char store_id[33];
	uint64_t size;
	ward_hash root;
	char time[32];
	char key_id[33];
	uint8_t signature[64];
} ward_checkpoint;

/* The latest stored checkpoint; signs a new one first when the log has grown
 * past it (needs a store opened with WARD_STORE_SIGN then). */
int ward_audit_checkpoint(ward_store *s, ward_checkpoint *out) WARD_MUST_CHECK;

/* Text form (docs/audit-log.md). *out is ward_malloc'd. */
int ward_checkpoint_format(char **out, const ward_checkpoint *c) WARD_MUST_CHECK;
int ward_checkpoint_parse(ward_checkpoint *out, const char *text, size_t len) WARD_MUST_CHECK;
int ward_checkpoint_read_file(ward_checkpoint *out, const char *path) WARD_MUST_CHECK;

/* One failed check: what failed, about which object. */
typedef struct {
	char *object;  /* "event 17", "checkpoint 3", "anchor" */
	char *problem; /* "leaf hash mismatch (row edited)" */
} ward_finding_line;

typedef struct {
	uint64_t events;
	uint64_t checkpoints;
	int anchors_checked;
	ward_finding_line *failures;
	size_t nfailures;
} ward_audit_report;

/*
 * Recomputes the tree from the stored events and checks: sequence numbers are
 * 1..n without gaps, each stored leaf hash, every stored checkpoint (signature
 * by the key it names, root at its size, sizes never shrink, no two roots for
 * one size), that the latest checkpoint covers the whole log, and that the log
 * extends each anchor given (HOME/anchor.checkpoint when present, plus
 * `extra_anchor_path` when not NULL). Returns 0 when the checks ran (the
 * verdict is report->nfailures == 0), or an error when they could not run.
 */
int ward_audit_verify(ward_store *s, const char *extra_anchor_path, ward_audit_report *report) WARD_MUST_CHECK;
void ward_audit_report_dispose(ward_audit_report *r);

/*
 * The check a server runs before it answers from a store (T42, T49):
 * SQLite's quick_check, then ward_audit_verify with the home's anchor, in
 * one read transaction; a pass during which the anchor changed (a writer
 * committed meanwhile) is run again. A failed quick_check is the one failure
 * reported (object "database"): the audit log of a damaged file proves
 * nothing. Returns 0 when the checks ran (the verdict is
 * report->nfailures == 0) or an error when they could not (WARD_EBUSY when
 * the anchor kept changing); dispose of the report either way. *anchor_size
 * is the tree size of the home's anchor (0 when there is none or it names
 * another store), which a server's later reads of the log must not fall
 * below.
 */
int ward_audit_serve_check(ward_store *s, ward_audit_report *report, uint64_t *anchor_size) WARD_MUST_CHECK;

#endif
