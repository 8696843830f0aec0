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
#define WARD_MAX_SEEDS 256             /* seed URLs per http(s) source */

/* Files ragward reads. */
#define WARD_MAX_KEY_FILE (16 * 1024)          /* a PEM key */
#define WARD_MAX_CONFIG_FILE (256 * 1024)      /* config.yaml */
#define WARD_WAL_LIMIT_MB_DEFAULT 64           /* store.wal_limit_mb: the WAL file is cut back to this */
#define WARD_WAL_LIMIT_MB_MAX     4096
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
#define WARD_MAX_CSS_RULES 4096               /* hiding class/id rules taken from a page's <style> */

/* Fetch. */
#define WARD_FETCH_MAX_REDIRECTS 5
#define WARD_FETCH_CONNECT_TIMEOUT_MS 5000
#define WARD_FETCH_TOTAL_TIMEOUT_MS 60000
#define WARD_FETCH_LOW_SPEED_BYTES 1024 /* below this many bytes/s ... */
#define WARD_FETCH_LOW_SPEED_SECONDS 15 /* ... for this long, abort */
#define WARD_FETCH_MAX_HEADER_LINE 8192  /* one response header line */
#define WARD_FETCH_MAX_HEADERS 200       /* header lines in one response */
#define WARD_FETCH_MAX_VALIDATOR 1024    /* an ETag or Last-Modified value kept or sent */
#define WARD_FETCH_MAX_DIR_DEPTH 64      /* directory nesting under a file-source root */
#define WARD_FETCH_MAX_FILES 100000      /* files listed under one root (max 0) */
#define WARD_FETCH_READ_CHUNK (64 * 1024) /* read() size for local files */

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
#define WARD_MAX_PATTERN_NEST 32              /* parenthesis nesting in one pattern */
#define WARD_MAX_PATTERNS_PER_RULE 64
#define WARD_MAX_EXAMPLES_PER_RULE 64
#define WARD_MAX_EXAMPLE_LEN (16 * 1024)      /* one example text */
#define WARD_MAX_RULE_ID_LEN 64
#define WARD_MAX_RULE_TITLE_LEN 200
#define WARD_RULE_PUMP_SMALL (16 * 1024)      /* pumped-input sizes of the admission check */
#define WARD_RULE_PUMP_LARGE (64 * 1024)
#define WARD_RULE_PUMP_MAX_CHARS 24           /* distinct pattern characters pumped */
#define WARD_RULE_PUMP_BUDGET_MS 200          /* one pumped match may take this long */
#define WARD_MAX_HSDB_FILE (64 * 1024 * 1024) /* one cached Vectorscan database */

/* Batch ingest. */
#define WARD_MAX_BATCH_TARGETS 100000            /* targets of one run */
#define WARD_MAX_MANIFEST_FILE (8 * 1024 * 1024) /* a --manifest file */

/* A document title taken from its first heading. */
#define WARD_MAX_TITLE_LEN 300

/* Chunking. */
#define WARD_CHUNK_TARGET 800  /* bytes a chunk aims at */
#define WARD_CHUNK_MAX 2000    /* bytes a chunk never exceeds */
#define WARD_MAX_CHUNKS 20000  /* chunks per document */
#define WARD_CHUNK_MIN_MAX 16  /* smallest maximum a caller may ask for (room for one code point) */
#define WARD_CHUNK_HEADING_MAX 256 /* bytes of one heading kept in a heading path */

/* Type gate. */
#define WARD_MAGIC_BYTES_MAX (64 * 1024) /* bytes libmagic looks at */
#define WARD_MAGIC_INDIR_MAX 15          /* the lower of file 5.44's and current defaults */
#define WARD_MAGIC_NAME_MAX 30
#define WARD_MAGIC_ELF_PHNUM_MAX 128     /* ELF checks are off; capped anyway */
#define WARD_MAGIC_ELF_SHNUM_MAX 1024
#define WARD_MAGIC_ELF_NOTES_MAX 64
#define WARD_MAGIC_REGEX_MAX 8192
#define WARD_MAGIC_ENCODING_MAX (64 * 1024)
#define WARD_GATE_MAGIC_WINDOW (4 * 1024) /* bytes handed to magic_buffer (its cost grows with them) */
#define WARD_GATE_SNIFF_BYTES (8 * 1024) /* NUL check and root-element sniff window */
#define WARD_GATE_META_BYTES (4 * 1024)  /* <meta charset> prescan window */
#define WARD_GATE_CT_MAX 1024            /* a Content-Type header value */

/* Signed statements. */
#define WARD_MAX_STATEMENT_FIELD (64 * 1024) /* one string field of a chunk statement */

/* CLI output. */
#define WARD_DEFAULT_AUDIT_LIMIT 50 /* `audit log` without --limit */

/* Normalization (sanitize/normalize.c, sanitize/decode.c). */
#define WARD_NORMALIZE_MAX_GROWTH 18   /* folded/skeleton view bytes per raw byte (NFKC expands one code point to 18) */
#define WARD_MAX_INVISIBLE_RUNS 4096   /* invisible-character runs listed per text; more are only counted */
#define WARD_DECODE_MAX_GROWTH 2       /* decoded view at most 2 x the text (+ 1 KiB) */

#endif
