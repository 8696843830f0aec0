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

/* Documents (ingest, extract). */
#define WARD_MAX_DOC_BYTES (16 * 1024 * 1024) /* a fetched or local document */
#define WARD_MAX_DOM_DEPTH 256                /* element nesting in HTML/XML */
#define WARD_MAX_SEGMENTS 10000               /* hidden/attribute/comment pieces per document */
#define WARD_MAX_LINKS 10000                  /* links and images per document */
#define WARD_MAX_FEED_ITEMS 1000              /* items per RSS/Atom feed */

/* Fetch. */
#define WARD_FETCH_MAX_REDIRECTS 5
#define WARD_FETCH_CONNECT_TIMEOUT_MS 5000
#define WARD_FETCH_TOTAL_TIMEOUT_MS 60000
#define WARD_FETCH_LOW_SPEED_BYTES 1024 /* below this many bytes/s ... */
#define WARD_FETCH_LOW_SPEED_SECONDS 15 /* ... for this long, abort */

/* Scanner. */
#define WARD_MAX_SCAN_BYTES (4 * 1024 * 1024) /* one text handed to the scanner */
#define WARD_MAX_RULE_FILE (1024 * 1024)      /* one rule pack */
#define WARD_MAX_RULES 2000                   /* rules in a rule set */
#define WARD_MAX_PATTERN_LEN 4096             /* one PCRE2 pattern */
#define WARD_MAX_PATTERN_COMPILED (256 * 1024) /* PCRE2_INFO_SIZE of one pattern */
#define WARD_PCRE2_MATCH_LIMIT 1000000
#define WARD_PCRE2_DEPTH_LIMIT 10000
#define WARD_PCRE2_HEAP_LIMIT_KIB (32 * 1024)
#define WARD_PCRE2_JIT_STACK_MAX (1024 * 1024)
#define WARD_DECODE_MAX_DEPTH 3               /* nested decodings (base64 of hex of ...) */
#define WARD_DECODE_MIN_RUN 16                /* shortest base64/hex run worth decoding */
#define WARD_MAX_FINDINGS 1000                /* per document; more is itself a finding */
#define WARD_EXCERPT_LEN 120                  /* bytes of context in a finding */

/* CLI output. */
#define WARD_DEFAULT_AUDIT_LIMIT 50 /* `audit log` without --limit */

#endif
