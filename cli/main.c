/*
 * ragward: the command-line front end. It parses the global options, finds
 * the command in the table, prepares what the command declares it needs
 * (store opened read-only, read-write, or with the signing key) and maps
 * library errors to the exit codes of DESIGN.md.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "ragward/log.h"
#include "ragward/scan.h"
#include "ragward/store.h"
#include "cli/cli.h"
#include "core/banned.h"

static const cli_command *const groups[] = {
	cli_cmds_init,	 cli_cmds_sources, cli_cmds_ingest, cli_cmds_scan,  cli_cmds_quarantine, cli_cmds_query,
	cli_cmds_serve,	 cli_cmds_mcp,	   cli_cmds_callers, cli_cmds_rules, cli_cmds_keys,	  cli_cmds_audit,
	cli_cmds_verify, cli_cmds_stats,  cli_cmds_rescan, cli_cmds_traces,
};

int cli_exit_for(int code)
{
	switch (code) {
	case WARD_OK:
		return WARD_EXIT_OK;
	case WARD_EPOLICY:
	case WARD_EVERIFY:
	case WARD_ESTATE:
	case WARD_EKEY:
	case WARD_EEXISTS:
		return WARD_EXIT_FAIL;
	case WARD_EINVAL:
	case WARD_ETOOBIG:
	case WARD_ENOTFOUND:
		return WARD_EXIT_USAGE;
	default:
		return WARD_EXIT_ERROR;
	}
}

void cli_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_print_json(json_t *obj)
{
	int rc = WARD_EXIT_OK;

	if (!obj || json_dumpf(obj, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) != 0 || fputc('\n', stdout) == EOF ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "ragward: cannot write JSON output\n");
		rc = WARD_EXIT_ERROR;
	}
	json_decref(obj);
	return rc;
}

int cli_fail(cli_ctx *ctx)
{
	const ward_error *e = ward_error_last();
	int code = e->code ? e->code : WARD_EIO;

	fprintf(stderr, "ragward: %s\n", e->message[0] ? e->message : "unknown error");
	if (ctx && ctx->json)
		cli_print_json(json_pack("{s:{s:s, s:s}}", "error", "code", ward_error_name(code), "message",
					 e->message));
	return cli_exit_for(code);
}

int cli_usage(cli_ctx *ctx, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ragward: %s (see 'ragward --help')\n", msg);
	if (ctx && ctx->json)
		cli_print_json(json_pack("{s:{s:s, s:s}}", "error", "code", "EUSAGE", "message", msg));
	return WARD_EXIT_USAGE;
}

/* Terminal-safe rendering of untrusted text: C0/C1 controls, DEL and the bidi
 * controls (U+200E/F, U+202A-E, U+2066-9) are shown as escapes. */
char *cli_escape(const char *s)
{
	size_t n = strlen(s), cap = n * 10 + 1, o = 0;
	const unsigned char *p = (const unsigned char *)s;
	char *out = ward_malloc(cap);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];
		if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		} else if (c == 0xe2 && i + 2 < n && ((p[i + 1] == 0x80 && ((p[i + 2] >= 0x8e && p[i + 2] <= 0x8f) ||
									 (p[i + 2] >= 0xaa && p[i + 2] <= 0xae))) ||
						   (p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9))) {
			unsigned cp = ((c & 0x0f) << 12) | ((p[i + 1] & 0x3f) << 6) | (p[i + 2] & 0x3f);
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", cp);
			i += 2;
		} else if (c == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", (unsigned)p[i + 1]);
			i += 1;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

const char *cli_severity_name(int s)
{
	static const char *const names[] = {"low", "low", "medium", "high", "critical"};

	return names[s < 1 ? 1 : s > 4 ? 4 : s];
}

int cli_parse_id(const char *s, long long *out)
{
	char *end = NULL;
	long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	v = strtoll(s, &end, 10);
	if (!end || *end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

void cli_actor(ward_actor *a, const char *by, char *buf, size_t buflen)
{
	(void)ward_actor_os(a, buf, buflen);
	if (by)
		a->name = by;
}

const char *cli_rules_dir(const char *given)
{
	const char *d = given ? given : ward_ruleset_default_dir();
	struct stat sb;

	if (given || getenv("RAGWARD_RULES") || (stat(d, &sb) == 0 && S_ISDIR(sb.st_mode)))
		return d;
#ifdef RAGWARD_BUILD_RULES_DIR
	if (stat(RAGWARD_BUILD_RULES_DIR, &sb) == 0 && S_ISDIR(sb.st_mode))
		return RAGWARD_BUILD_RULES_DIR;
#endif
	return d;
}

static int mkdir_private(const char *path)
{
	struct stat sb;

	if (mkdir(path, 0700) == 0)
		return 0;
	return (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) ? 0 : -1;
}

const char *cli_cache_dir(const cli_ctx *ctx)
{
	static char dir[4096];
	const char *xdg = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	struct stat sb;

	if (ctx->home && stat(ctx->home, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		snprintf(dir, sizeof(dir), "%s/cache", ctx->home);
		return mkdir_private(dir) == 0 ? dir : NULL;
	}
	if (xdg && *xdg)
		snprintf(dir, sizeof(dir), "%s/ragward", xdg);
	else if (h && *h && (snprintf(dir, sizeof(dir), "%s/.cache", h), mkdir_private(dir) == 0))
		snprintf(dir, sizeof(dir), "%s/.cache/ragward", h);
	else
		return NULL;
	return mkdir_private(dir) == 0 ? dir : NULL;
}

int cli_load_rules_audited(cli_ctx *ctx, const char *dir_opt, const ward_actor *who, ward_ruleset **rs)
{
	ward_ruleset_opts ro;
	const char *dir = cli_rules_dir(dir_opt);
	int changed = 0;

	memset(&ro, 0, sizeof(ro));
	ro.cache_dir = cli_cache_dir(ctx);
	if (ward_ruleset_load(rs, dir, &ro) < 0)
		return -1;
	if (ward_store_note_ruleset(ctx->store, who, ward_ruleset_sha256(*rs), ward_ruleset_count(*rs), dir, &changed) <
	    0)
		return -1;
	if (changed)
		cli_say("rule set %s (%zu rules from '%s') recorded in the audit log", ward_ruleset_sha256(*rs),
			ward_ruleset_count(*rs), dir);
	return 0;
}

static void log_to_stderr(void *ctx, ward_log_level level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "ragward: %s: %s\n", ward_log_level_name(level), msg);
}

static void print_main_help(void)
{
	printf("usage: ragward [--home DIR] <command> [options]\n\n"
	       "ragward governs what may enter a RAG index and proves where every chunk came from.\n\n"
	       "Commands:\n");
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const cli_command *c = groups[g]; c->name; c++) {
			char name[64];
			snprintf(name, sizeof(name), "%s%s%s", c->group ? c->group : "", c->group ? " " : "", c->name);
			printf("  %-20s %s\n", name, c->summary);
		}
	printf("\nGlobal options:\n"
	       "  --home DIR   the store's home (default: $RAGWARD_HOME, else ~/.ragward)\n"
	       "  --version    print the version and the library versions\n"
	       "  --help       this text; 'ragward <command> --help' for a command\n\n"
	       "Exit codes: 0 ok, 1 verification or policy failure, 2 operational error,\n"
	       "3 partial batch, 64 usage error.\n");
}

static void print_command_help(const cli_command *c)
{
	printf("usage: ragward %s\n\n%s\n", c->usage, c->summary);
	if (c->help && *c->help)
		printf("\n%s", c->help);
}

static void print_version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("ragward %s\n", RAGWARD_VERSION);
	printf("sqlite %s, openssl %s, libcurl %s\n", sqlite3_libversion(), OpenSSL_version(OPENSSL_VERSION_STRING),
	       cv ? cv->version : "?");
}

static const cli_command *find_command(int argc, char **argv, int *consumed)
{
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const cli_command *c = groups[g]; c->name; c++) {
			if (!c->group && strcmp(argv[0], c->name) == 0) {
				*consumed = 1;
				return c;
			}
			if (c->group && strcmp(argv[0], c->group) == 0 && argc > 1 && strcmp(argv[1], c->name) == 0) {
				*consumed = 2;
				return c;
			}
		}
	return NULL;
}

static int is_group(const char *name)
{
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const cli_command *c = groups[g]; c->name; c++)
			if (c->group && strcmp(c->group, name) == 0)
				return 1;
	return 0;
}

static void print_group_help(const char *group, FILE *to)
{
	fprintf(to, "usage: ragward %s <subcommand> [options]\n\nSubcommands:\n", group);
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const cli_command *c = groups[g]; c->name; c++)
			if (c->group && strcmp(c->group, group) == 0)
				fprintf(to, "  %-30s %s\n", c->usage, c->summary);
}

/* The runtime libraries must be at least the versions this build was tested
 * with (DESIGN.md "Dependencies"). */
static int check_runtime_versions(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	if (sqlite3_libversion_number() < 3040000) {
		fprintf(stderr, "ragward: SQLite %s is older than the tested minimum 3.40\n", sqlite3_libversion());
		return -1;
	}
	if (OpenSSL_version_num() < 0x30000000L) {
		fprintf(stderr, "ragward: OpenSSL is older than the tested minimum 3.0\n");
		return -1;
	}
	if (!cv || cv->version_num < 0x075800) {
		fprintf(stderr, "ragward: libcurl is older than the tested minimum 7.88\n");
		return -1;
	}
	return 0;
}

static int wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

static int has_json(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--json") == 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char default_home[4096];
	cli_ctx ctx;
	const cli_command *cmd;
	const char *home = NULL;
	int i = 1, consumed = 0, rc, flags;

	memset(&ctx, 0, sizeof(ctx));
	ctx.prog = "ragward";
	umask(077);
	ward_alloc_install_jansson();
	ward_log_set_sink(log_to_stderr, NULL, WARD_LOG_INFO);
	if (check_runtime_versions() < 0)
		return WARD_EXIT_ERROR;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "ragward: cannot initialise libcurl\n");
		return WARD_EXIT_ERROR;
	}

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
			home = argv[++i];
		} else if (strncmp(argv[i], "--home=", 7) == 0) {
			home = argv[i] + 7;
		} else if (strcmp(argv[i], "--version") == 0) {
			print_version();
			return WARD_EXIT_OK;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_main_help();
			return WARD_EXIT_OK;
		} else {
			return cli_usage(NULL, "unknown global option '%s'", argv[i]);
		}
	}
	if (i >= argc) {
		print_main_help();
		return WARD_EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			print_main_help();
			return WARD_EXIT_OK;
		}
		if ((cmd = find_command(argc - i - 1, argv + i + 1, &consumed))) {
			print_command_help(cmd);
			return WARD_EXIT_OK;
		}
		if (is_group(argv[i + 1])) {
			print_group_help(argv[i + 1], stdout);
			return WARD_EXIT_OK;
		}
		return cli_usage(NULL, "unknown command '%s'", argv[i + 1]);
	}
	ctx.json = has_json(argc - i, argv + i);
	if (!(cmd = find_command(argc - i, argv + i, &consumed))) {
		if (is_group(argv[i])) {
			if (i + 1 < argc && wants_help(1, argv + i + 1)) {
				print_group_help(argv[i], stdout);
				return WARD_EXIT_OK;
			}
			print_group_help(argv[i], stderr);
			return i + 1 < argc ? cli_usage(&ctx, "unknown subcommand '%s %s'", argv[i], argv[i + 1])
					    : cli_usage(&ctx, "'%s' needs a subcommand", argv[i]);
		}
		return cli_usage(&ctx, "unknown command '%s'", argv[i]);
	}
	argc -= i + consumed - 1;
	argv += i + consumed - 1; /* argv[0] is now the command's last word */
	if (wants_help(argc - 1, argv + 1)) {
		print_command_help(cmd);
		return WARD_EXIT_OK;
	}
	ctx.json = has_json(argc - 1, argv + 1);

	if (!home)
		home = getenv("RAGWARD_HOME");
	if (!home || !*home) {
		const char *h = getenv("HOME");
		if (!h || !*h)
			return cli_usage(&ctx, "no home: pass --home DIR or set RAGWARD_HOME");
		snprintf(default_home, sizeof(default_home), "%s/.ragward", h);
		home = default_home;
	}
	ctx.home = home;

	if (cmd->needs != CMD_NO_STORE) {
		flags = cmd->needs == CMD_STORE_SIGN ? WARD_STORE_SIGN : cmd->needs == CMD_STORE_RW ? WARD_STORE_RW : 0;
		if (ward_store_open(&ctx.store, home, flags) < 0) {
			rc = cli_fail(&ctx);
			goto done;
		}
	}
	optind = 0; /* GNU getopt: reinitialise for the command's own options */
	rc = cmd->run(&ctx, argc, argv);
done:
	ward_store_close(ctx.store);
	curl_global_cleanup();
	return rc;
}
