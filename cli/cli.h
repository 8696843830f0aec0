/*
 * The CLI's shared pieces: the command table entry, exit codes, and output
 * helpers. The CLI owns stdout and stderr; the library never prints.
 *
 * Output contract (DESIGN.md "Contracts"): with --json a reporting command
 * prints exactly one JSON object on stdout; human text and progress go to
 * stderr. Data a script consumes without --json (a new source id, a PEM
 * public key, a checkpoint) goes to stdout.
 */
#ifndef RAGWARD_CLI_H
#define RAGWARD_CLI_H

#include <jansson.h>
#include "ragward/scan.h"
#include "ragward/store.h"

/* Exit codes, defined once. */
enum {
	WARD_EXIT_OK = 0,
	WARD_EXIT_FAIL = 1,    /* verification or policy failure */
	WARD_EXIT_ERROR = 2,   /* operational error: I/O, network, database */
	WARD_EXIT_PARTIAL = 3, /* a batch finished, some items failed transiently */
	WARD_EXIT_USAGE = 64,  /* bad command line */
};

/* What the dispatcher prepares before calling a command. */
enum {
	CMD_NO_STORE = 0,
	CMD_STORE_RO = 1, /* open the store read-only */
	CMD_STORE_RW = 2, /* open it read-write */
	CMD_STORE_SIGN = 3, /* read-write with the signing key loaded */
};

typedef struct cli_ctx {
	const char *home;
	ward_store *store; /* opened per the command's needs, else NULL */
	int json;          /* --json given */
	const char *prog;
} cli_ctx;

typedef struct cli_command {
	const char *group; /* "sources", or NULL for a top-level command */
	const char *name;
	int needs;
	int (*run)(cli_ctx *ctx, int argc, char **argv); /* returns an exit code */
	const char *usage;   /* one line, after "ragward " */
	const char *summary; /* one line */
	const char *help;    /* option list and details */
} cli_command;

/* Exit code for a library error code. */
int cli_exit_for(int ward_code);

/* Reports the current library error (stderr, and a JSON error object on
 * stdout under --json) and returns its exit code. */
int cli_fail(cli_ctx *ctx);
/* Reports a usage error and returns WARD_EXIT_USAGE. */
int cli_usage(cli_ctx *ctx, const char *fmt, ...) WARD_PRINTF(2, 3);

/* Prints `obj` as one line on stdout and releases it. Returns 0 or an exit code. */
int cli_print_json(json_t *obj);
/* Human text to stderr. */
void cli_say(const char *fmt, ...) WARD_PRINTF(1, 2);
/* Escapes control characters and bidi controls so untrusted text can be shown
 * on a terminal; returns a static-per-call buffer the caller must free. */
char *cli_escape(const char *s);

/* "low", "medium", "high", "critical" for severities 1..4 (clamped). */
const char *cli_severity_name(int severity);

/* Parses a positive decimal id; 0 on success. */
int cli_parse_id(const char *s, long long *out);

/* Resolves --by: the given name, else the OS user. */
void cli_actor(ward_actor *a, const char *by, char *buf, size_t buflen);

/* The rule directory: `given` when not NULL, else $RAGWARD_RULES, else
 * /usr/share/ragward/rules/injection, else ./rules/injection, else the rules of
 * the source tree this binary was built from. */
const char *cli_rules_dir(const char *given);

/* Where compiled rule databases are cached: HOME/cache when the home exists,
 * else $XDG_CACHE_HOME/ragward or ~/.cache/ragward (created 0700). NULL when
 * none can be made: then nothing is cached. */
const char *cli_cache_dir(const cli_ctx *ctx);

/* Loads the rule packs (dir_opt as for cli_rules_dir) with the cache, and
 * records a rule-set hash not seen before in the audit log (rules.load), as
 * ingest and rescan both do before judging documents. Returns < 0 with the
 * error set. */
int cli_load_rules_audited(cli_ctx *ctx, const char *dir_opt, const ward_actor *who, ward_ruleset **rs);

/* The command groups (cli/cmd_*.c). */
extern const cli_command cli_cmds_init[];
extern const cli_command cli_cmds_keys[];
extern const cli_command cli_cmds_sources[];
extern const cli_command cli_cmds_audit[];
extern const cli_command cli_cmds_ingest[];
extern const cli_command cli_cmds_scan[];
extern const cli_command cli_cmds_rules[];
extern const cli_command cli_cmds_quarantine[];
extern const cli_command cli_cmds_query[];
extern const cli_command cli_cmds_mcp[];
extern const cli_command cli_cmds_verify[];
extern const cli_command cli_cmds_stats[];
extern const cli_command cli_cmds_rescan[];
extern const cli_command cli_cmds_serve[];
extern const cli_command cli_cmds_callers[];
extern const cli_command cli_cmds_traces[];

#endif
