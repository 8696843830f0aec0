/*
 * ragward traces verify: checks the hash chain of a retrieval trace file
 * (docs/retrieval.md "Traces").
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/traces.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "core/banned.h"

/* The configured trace file: the store's config says where it is. */
static int configured_path(cli_ctx *ctx, char *out, size_t outlen)
{
	ward_store *s = NULL;
	int rc;

	if ((rc = ward_store_open(&s, ctx->home, 0)) < 0)
		return rc;
	if (!(ward_store_config(s)->trace_sink & WARD_TRACE_SINK_FILE))
		rc = ward_error_set(WARD_EINVAL, "traces.sink is 'syslog': there is no trace file (name one as FILE)");
	else
		rc = ward_trace_path(out, outlen, s);
	ward_store_close(s);
	return rc;
}

static int cmd_verify(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"head", required_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	char path[WARD_MAX_PATH_LEN + 1];
	const char *head = NULL;
	json_t *res = NULL, *broken;
	int c, ok;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h')
			head = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'traces verify'");
	}
	if (argc - optind > 1)
		return cli_usage(ctx, "'traces verify' takes at most one FILE");
	if (optind < argc) {
		if (snprintf(path, sizeof(path), "%s", argv[optind]) >= (int)sizeof(path))
			return cli_usage(ctx, "FILE is too long");
	} else if (configured_path(ctx, path, sizeof(path)) < 0) {
		return cli_fail(ctx);
	}
	if (ward_trace_verify(path, head, &res) < 0)
		return cli_fail(ctx); /* unreadable: 2; a malformed --head: 64 */
	ok = json_is_true(json_object_get(res, "ok"));
	if (ctx->json) {
		int rc = cli_print_json(res);
		return rc != WARD_EXIT_OK ? rc : ok ? WARD_EXIT_OK : WARD_EXIT_FAIL;
	}
	{
		char *ef = cli_escape(path);
		broken = json_object_get(res, "broken");
		if (ok)
			cli_say("%s: %lld lines, chain intact%s; head %s", ef ? ef : "?",
			        (long long)json_integer_value(json_object_get(res, "lines")),
			        json_integer_value(json_object_get(res, "unchained")) > 0
			                ? " (leading lines without \"prev\" were written before the chain)"
			                : "",
			        json_string_value(json_object_get(res, "head")));
		else
			cli_say("%s: chain broken at line %lld: %s", ef ? ef : "?",
			        (long long)json_integer_value(json_object_get(broken, "line")),
			        json_string_value(json_object_get(broken, "problem")));
		ward_free(ef);
	}
	json_decref(res);
	return ok ? WARD_EXIT_OK : WARD_EXIT_FAIL;
}

const cli_command cli_cmds_traces[] = {
        {"traces", "verify", CMD_NO_STORE, cmd_verify, "traces verify [--head HEX] [--json] [FILE]",
         "check the hash chain of the retrieval trace file; exit 1 when a line was changed, removed or reordered",
         "Every line of the trace file carries \"prev\", the SHA-256 of the line before (the\n"
         "first line: the SHA-256 of nothing). A changed, removed or reordered line breaks\n"
         "the line after it; the first broken line is reported. The chain has no key: keep\n"
         "the printed head (or the syslog copy, traces.sink: both) outside this host and\n"
         "pass it back with --head to detect lines removed from the end or a rewritten file.\n"
         "FILE defaults to the configured trace file (traces.path, docs/configuration.md).\n"
         "Exit codes: 0 intact, 1 broken, 2 the file cannot be read.\n\n"
         "  --head HEX  a head printed earlier: some line of the file must hash to it\n"
         "  --json      print {\"file\", \"ok\", \"lines\", \"unchained\", \"head\",\n"
         "              \"broken\": null or {\"line\", \"problem\"}}\n"},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
