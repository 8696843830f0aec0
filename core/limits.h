/*
 * Every limit ragward enforces, named once. Inputs from outside (documents,
 * URLs, rule files, requests, files on disk) are capped by one of these.
 */
#ifndef RAGWARD_CORE_LIMITS_H
#define RAGWARD_CORE_LIMITS_H

/* Strings given on the command line or in sources.yaml. */
#define WARD_MAX_URL_LEN 2048          /* a source pattern or fetch URL */
#define WARD_MAX_PATH_LEN 4096         /* a file-source root or local path */
#define WARD_MAX_NAME_LEN 128          /* a source or caller name */
#define WARD_MAX_ACTOR_LEN 128         /* --by */
#define WARD_MAX_REASON_LEN 4096       /* --reason / --note */
#define WARD_MAX_LABELS 32             /* labels per source */
#define WARD_MAX_LABEL_LEN 64          /* one label */

/* Files ragward reads. */
#define WARD_MAX_KEY_FILE (16 * 1024)          /* a PEM key */
#define WARD_MAX_CONFIG_FILE (256 * 1024)      /* config.yaml */
#define WARD_MAX_SOURCES_FILE (4 * 1024 * 1024) /* sources.yaml */
#define WARD_MAX_SOURCES_PER_FILE 10000
#define WARD_MAX_YAML_DEPTH 16                 /* nesting in any YAML file ragward reads */
#define WARD_MAX_CHECKPOINT_FILE (8 * 1024)    /* an exported checkpoint */

/* Audit log. */
#define WARD_MAX_AUDIT_DETAILS (64 * 1024) /* JSON details of one event */
#define WARD_MAX_AUDIT_EVENTS ((long long)1 << 40)

/* Store. */
#define WARD_DB_BUSY_TIMEOUT_MS 30000      /* wait for another writer this long */
#define WARD_DB_MAX_LENGTH (64 * 1024 * 1024) /* SQLITE_LIMIT_LENGTH */
#define WARD_DB_MAX_SQL_LENGTH (1024 * 1024)  /* SQLITE_LIMIT_SQL_LENGTH */

/* CLI output. */
#define WARD_DEFAULT_AUDIT_LIMIT 50 /* `audit log` without --limit */

#endif
