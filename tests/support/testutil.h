/*
 * Shared helpers for the unit tests: scratch homes under RAGWARD_TEST_TMP,
 * store set-up, and the attacker's view of a store (a plain sqlite3
 * connection to HOME/store.db that bypasses the library).
 *
 * The helpers assert with cmocka, so they may only be called from inside a
 * running cmocka test.
 */
#ifndef RAGWARD_TESTS_TESTUTIL_H
#define RAGWARD_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "ragward/audit.h"
#include "ragward/store.h"

/* A fresh, not yet existing home path "TMP/<prefix>-XXXXXX/home" (the parent
 * is made with mkdtemp). Free with tu_home_free, which also removes it. */
char *tu_home_path(const char *prefix);
void tu_home_free(char *home);

/* rm -rf (nftw, no symlink following). Missing paths are fine. */
void tu_rmrf(const char *path);

/* Joins home and name into a static-free, malloc'd path. */
char *tu_path(const char *home, const char *name);

/* An actor with this name and the real uid. */
ward_actor tu_actor(const char *name);

/* ward_store_init_home with actor "admin"; asserts success. key_id_out may be NULL. */
void tu_init(const char *home, char *key_id_out);
/* A fresh home, initialised: tu_home_path + tu_init. */
char *tu_new_home(const char *prefix);
/* ward_store_open; asserts success. */
ward_store *tu_open(const char *home, int flags);

/* A plain sqlite3 connection to HOME/store.db with no hardening: the attacker
 * with write access to the file. Close with sqlite3_close. */
sqlite3 *tu_raw_open(const char *home);
/* Runs SQL on a raw connection to HOME/store.db; returns the SQLite result
 * code and copies the error message into errbuf (may be NULL). */
int tu_raw_exec(const char *home, const char *sql, char *errbuf, size_t errlen);
/* Asserting variant. */
void tu_raw_exec_ok(const char *home, const char *sql);
/* Removes the append-only triggers, as an attacker would before tampering. */
void tu_drop_audit_triggers(const char *home);

/* SELECT count(*) FROM table, through a raw connection. */
long tu_count_rows(const char *home, const char *table);
/* SELECT <sql> returning one integer, through a raw connection. */
long long tu_query_int(const char *home, const char *sql);

/* Row counts of the governance tables, to compare before/after a change. */
typedef struct {
	long sources;
	long keys;
	long events;
	long checkpoints;
} tu_counts;
tu_counts tu_counts_get(const char *home);

/* Runs ward_audit_verify (asserting that the checks ran) and returns
 * nfailures. When report is not NULL the report is handed over (dispose it),
 * otherwise its lines are printed (as a diagnostic) and it is disposed. */
size_t tu_verify(ward_store *s, const char *extra_anchor, ward_audit_report *report);
/* Same on a read-only store opened just for this. */
size_t tu_verify_home(const char *home, const char *extra_anchor, ward_audit_report *report);
/* 1 when some failure line has an object containing `object` (NULL: any) and
 * a problem containing `problem` (NULL: any). */
int tu_report_has(const ward_audit_report *r, const char *object, const char *problem);
void tu_report_print(const ward_audit_report *r);

/* Files. */
void tu_write_file(const char *path, const void *data, size_t len);
void tu_write_str(const char *path, const char *text);
/* Whole file, NUL-terminated, malloc'd; NULL when it cannot be read. */
char *tu_read_file(const char *path, size_t *len);
/* Copies a file (mode 0600); returns 0, or -1 when src does not exist. */
int tu_copy_file(const char *src, const char *dst);
/* Sorted "name mode size" lines of a directory tree, malloc'd, for
 * before/after comparisons. */
char *tu_listing(const char *dir);
/* Number of entries in a directory (without . and ..). */
int tu_dir_count(const char *dir);

/* An approved source (requested by "alice", approved by "bob"), standard
 * trust; labels is a comma-separated list or NULL. Returns its id. */
int64_t tu_add_source(ward_store *s, const char *name, const char *pattern, const char *labels);
/* A one-chunk, accepted text/plain document of `source_id` (heading path
 * "Intro"), stored and signed by `s` (opened with WARD_STORE_SIGN). Returns
 * the document id. */
int64_t tu_add_doc(ward_store *s, int64_t source_id, const char *uri, const char *title, const char *text);

/* 1 when ward_error_last()'s message contains `needle`. */
int tu_error_has(const char *needle);

/* The leaf hash the store computes for an event (store/audit.c event_leaf),
 * rebuilt independently for forging rows. */
void tu_event_leaf(uint8_t out[32], int64_t seq, const char *at, const char *actor, long uid, const char *action,
		   const char *subject, const char *details);

#endif
