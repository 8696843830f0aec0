/*
 * ragward query TEXT... | ragward cite check TRACE_ID FILE
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/retrieve.h"
#include "ragward/sources.h"
#include "cli/cli.h"
#include "core/banned.h"

#define MAX_CITE_FILE (4 * 1024 * 1024)

/* Registered in cli/main.c's groups[] (declared in cli/cli.h). */
extern const cli_command cli_cmds_query[];

static const char *str_or_empty(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "";
}

static void result_say(const json_t *r)
{
	const json_t *c = json_object_get(r, "citation");
	char *name = cli_escape(str_or_empty(json_object_get(c, "source_name"))),
	     *uri = cli_escape(str_or_empty(json_object_get(c, "uri"))),
	     *sec = cli_escape(str_or_empty(json_object_get(c, "section")));

	cli_say("%-5s %10.4g  chunk %-6lld %s  %s%s%s", json_string_value(json_object_get(c, "tag")),
	        json_real_value(json_object_get(r, "score")),
	        (long long)json_integer_value(json_object_get(r, "chunk_id")), name ? name : "?", uri ? uri : "?",
	        sec && *sec ? " > " : "", sec ? sec : "");
	ward_free(name);
	ward_free(uri);
	ward_free(sec);
}

static int cmd_query(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"k", required_argument, NULL, 'k'},     {"source", required_argument, NULL, 's'},
	        {"label", required_argument, NULL, 'l'}, {"min-trust", required_argument, NULL, 't'},
	        {"datamark", no_argument, NULL, 'd'},    {"json", no_argument, NULL, 'j'},
	        {"no-trace", no_argument, NULL, 'n'},    {"context", no_argument, NULL, 'c'},
	        {NULL, 0, NULL, 0}};
	int64_t sources[WARD_QUERY_MAX_SOURCES];
	const char *labels[WARD_QUERY_MAX_LABELS];
	ward_retrieve_opts o;
	ward_buf text;
	ward_actor who;
	char namebuf[256], caller[300];
	char *q = NULL;
	size_t qlen = 0;
	json_t *res = NULL;
	int c, rc, context_only = 0;

	ward_retrieve_opts_init(&o);
	o.filter.source_ids = sources;
	o.filter.labels = labels;
	while ((c = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
		switch (c) {
		case 'k': {
			long long k;
			if (cli_parse_id(optarg, &k) < 0 || k > WARD_QUERY_MAX_K)
				return cli_usage(ctx, "--k must be between 1 and %d", WARD_QUERY_MAX_K);
			o.k = (size_t)k;
			break;
		}
		case 's': {
			long long id;
			if (cli_parse_id(optarg, &id) < 0)
				return cli_usage(ctx, "--source needs a source id, not '%s'", optarg);
			if (o.filter.nsource_ids == WARD_QUERY_MAX_SOURCES)
				return cli_usage(ctx, "at most %d --source filters", WARD_QUERY_MAX_SOURCES);
			sources[o.filter.nsource_ids++] = id;
			break;
		}
		case 'l':
			if (o.filter.nlabels == WARD_QUERY_MAX_LABELS)
				return cli_usage(ctx, "at most %d --label filters", WARD_QUERY_MAX_LABELS);
			labels[o.filter.nlabels++] = optarg;
			break;
		case 't': {
			ward_trust t;
			if (ward_trust_parse(&t, optarg) < 0)
				return cli_usage(ctx, "%s", ward_error_last()->message);
			o.filter.min_trust = (int)t;
			break;
		}
		case 'c':
			context_only = 1;
			break;
		case 'd':
			o.datamark = 1;
			break;
		case 'n':
			o.no_trace = 1;
			break;
		case 'j':
			break;
		default:
			return cli_usage(ctx, "bad option for 'query'");
		}
	}
	if (optind >= argc)
		return cli_usage(ctx, "usage: ragward query TEXT [--k N] [--source ID]... [--label L]... [--json]");
	/* The local operator reads the store file anyway: without --label the
	 * CLI sees every label; with --label it sees what those labels see. */
	o.filter.all_labels = o.filter.nlabels == 0;
	ward_buf_init(&text, WARD_QUERY_MAX_BYTES + 1);
	for (int i = optind; i < argc; i++)
		if ((i > optind && ward_buf_putc(&text, ' ') < 0) || ward_buf_puts(&text, argv[i]) < 0)
			break;
	if (text.err) {
		ward_buf_dispose(&text);
		return cli_usage(ctx, "query too long/complex (at most %d bytes)", WARD_QUERY_MAX_BYTES);
	}
	if (ward_buf_detach(&text, &q, &qlen) < 0) {
		ward_buf_dispose(&text);
		return cli_fail(ctx);
	}
	cli_actor(&who, NULL, namebuf, sizeof(namebuf));
	snprintf(caller, sizeof(caller), "cli:%s", who.name);
	o.caller = caller;
	if (ward_retrieve(ctx->store, q, qlen, &o, &res) < 0) {
		ward_free(q);
		return cli_fail(ctx);
	}
	ward_free(q);
	if (ctx->json)
		return cli_print_json(res);
	{
		const json_t *results = json_object_get(res, "results"), *r;
		size_t i;

		if (!context_only) {
			cli_say("trace %s: %zu result(s), %lld withheld",
			        json_string_value(json_object_get(res, "trace_id")), json_array_size(results),
			        (long long)json_integer_value(json_object_get(res, "withheld")));
			json_array_foreach(results, i, r) result_say(r);
		}
		rc = fputs(json_string_value(json_object_get(res, "context")), stdout) == EOF || fflush(stdout) != 0
		             ? WARD_EXIT_ERROR
		             : WARD_EXIT_OK;
	}
	json_decref(res);
	return rc;
}

/* Reads FILE ("-": stdin) into memory, capped. */
static int read_all(const char *path, char **out, size_t *len)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	ward_buf b;
	char chunk[8192];
	size_t n;
	int rc = 0;

	if (!fp)
		return ward_error_set(WARD_EIO, "'%s': cannot open: %s", path, strerror(errno));
	ward_buf_init(&b, MAX_CITE_FILE);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if ((rc = ward_buf_append(&b, chunk, n)) < 0)
			break;
	if (rc == 0 && ferror(fp))
		rc = ward_error_set(WARD_EIO, "'%s': cannot read", path);
	else if (rc < 0)
		rc = ward_error_set(rc, "'%s': %s", path, rc == WARD_ETOOBIG ? "larger than 4 MiB" : "out of memory");
	if (fp != stdin)
		fclose(fp);
	if (rc == 0 && (rc = ward_buf_detach(&b, out, len)) < 0)
		rc = ward_error_set(rc, "out of memory");
	ward_buf_dispose(&b);
	return rc;
}

static int cmd_cite_check(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	char *output = NULL;
	size_t len = 0;
	json_t *res = NULL, *cites, *cite;
	size_t i;
	int c, ok;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (c != 'j')
			return cli_usage(ctx, "bad option for 'cite check'");
	if (argc - optind != 2)
		return cli_usage(ctx, "usage: ragward cite check TRACE_ID FILE [--json]");
	if (read_all(argv[optind + 1], &output, &len) < 0)
		return cli_fail(ctx);
	if (ward_cite_check(ctx->store, argv[optind], output, len, &res) < 0) {
		ward_free(output);
		return cli_fail(ctx);
	}
	ward_free(output);
	ok = json_is_true(json_object_get(res, "ok"));
	cites = json_object_get(res, "citations");
	json_array_foreach(cites, i, cite)
	{
		const char *uri = json_string_value(json_object_get(cite, "uri"));
		char *u = uri ? cli_escape(uri) : NULL;
		cli_say("%-6s %-14s %s", json_string_value(json_object_get(cite, "tag")),
		        json_string_value(json_object_get(cite, "status")), u ? u : "-");
		ward_free(u);
	}
	cli_say("%zu citation(s): %s", json_array_size(cites), ok ? "all ok" : "PROBLEMS FOUND");
	if (ctx->json) {
		int rc = cli_print_json(res);
		return rc != WARD_EXIT_OK ? rc : ok ? WARD_EXIT_OK : WARD_EXIT_FAIL;
	}
	json_decref(res);
	return ok ? WARD_EXIT_OK : WARD_EXIT_FAIL;
}

const cli_command cli_cmds_query[] = {
        {NULL, "query", CMD_STORE_RO, cmd_query,
         "query TEXT... [--k N] [--source ID]... [--label L]... [--min-trust T] [--datamark] [--no-trace]"
         " [--context] [--json]",
         "search the served chunks; prints citation-tagged, verified results",
         "The text is split into words (letters and digits) and searched with BM25 (title\n"
         "and section weighted). Only active documents of approved sources are served, and\n"
         "every hit is verified (text hash and signature) before it is shown; a chunk that\n"
         "fails is withheld and counted. Every query appends a trace to the trace sink\n"
         "(HOME/traces.jsonl by default; traces.* in config.yaml).\n"
         "Prints the model-ready context on stdout and a listing on stderr.\n\n"
         "  --k N, -k N     results (1..50, default 5)\n"
         "  --source ID     only this source (repeatable)\n"
         "  --label L       see only public sources and sources labelled L (repeatable;\n"
         "                  without --label the local operator sees every source)\n"
         "  --min-trust T   low (default), standard or high\n"
         "  --datamark      spotlighting: whitespace inside blocks becomes U+02C6\n"
         "  --no-trace      write no trace record\n"
         "  --context       print only the model-ready context (no listing on stderr)\n"
         "  --json          print {\"trace_id\", \"query\", \"results\", \"withheld\", \"context\"}\n"
         "                  (docs/retrieval.md)\n"},
        {"cite", "check", CMD_STORE_RO, cmd_cite_check, "cite check TRACE_ID FILE [--json]",
         "check the [n] citations of a model's output against a retrieval trace",
         "FILE ('-' for stdin) is the model's output. Each tag is resolved against the\n"
         "trace; exit 1 when one was never retrieved in that trace ('not-retrieved'), or\n"
         "its chunk has since been revoked ('revoked') or changed ('changed').\n\n"
         "  --json  print {\"trace_id\", \"citations\": [{\"tag\", \"chunk_id\", \"uri\", \"title\",\n"
         "          \"section\", \"status\"}], \"ok\"}\n"},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
