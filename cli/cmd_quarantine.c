/*
 * ragward quarantine list|show|release|drop
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "cli/cli.h"
#include "core/banned.h"

static json_t *doc_json(const ward_doc_info *d)
{
	return json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:s, s:s, s:I, s:I}", "id",
			 (json_int_t)d->id, "source_id", (json_int_t)d->source_id, "version", (json_int_t)d->version,
			 "uri", d->uri ? d->uri : "", "title", d->title ? d->title : "", "state", d->state, "verdict",
			 d->verdict ? d->verdict : "", "score", d->score, "fetched_at", d->fetched_at ? d->fetched_at : "",
			 "ruleset_sha256", d->ruleset_sha256 ? d->ruleset_sha256 : "none", "detected_type",
			 d->detected_type ? d->detected_type : "", "ingested_by", d->ingested_by ? d->ingested_by : "",
			 "chunks", (json_int_t)d->nchunks, "findings", (json_int_t)d->nfindings);
}

static int only_json(cli_ctx *ctx, int argc, char **argv, const char *name)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (c != 'j')
			return cli_usage(ctx, "bad option for 'quarantine %s'", name);
	return 0;
}

static int cmd_list(cli_ctx *ctx, int argc, char **argv)
{
	ward_doc_info *docs = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	if ((rc = only_json(ctx, argc, argv, "list")) != 0)
		return rc;
	if (optind != argc)
		return cli_usage(ctx, "'quarantine list' takes no arguments");
	if (ward_quarantine_list(ctx->store, &docs, &n) < 0)
		return cli_fail(ctx);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char *uri = cli_escape(docs[i].uri ? docs[i].uri : "");
		json_array_append_new(arr, doc_json(&docs[i]));
		cli_say("%-5lld %-10s score %-5.1f %zu findings  %s", (long long)docs[i].id,
			docs[i].verdict ? docs[i].verdict : "", docs[i].score, docs[i].nfindings, uri ? uri : "?");
		ward_free(uri);
	}
	if (!n)
		cli_say("quarantine is empty");
	ward_doc_infos_free(docs, n);
	if (ctx->json)
		return cli_print_json(json_pack("{s:o}", "documents", arr));
	json_decref(arr);
	return WARD_EXIT_OK;
}

static int cmd_show(cli_ctx *ctx, int argc, char **argv)
{
	ward_doc_info d;
	ward_doc_finding *f = NULL;
	size_t nf = 0;
	long long id;
	json_t *obj, *arr;
	int rc;

	if ((rc = only_json(ctx, argc, argv, "show")) != 0)
		return rc;
	if (argc - optind != 1 || cli_parse_id(argv[optind], &id) < 0)
		return cli_usage(ctx, "usage: ragward quarantine show ID [--json]");
	if (ward_documents_get(ctx->store, id, &d) < 0)
		return cli_fail(ctx);
	if (ward_documents_findings(ctx->store, id, &f, &nf) < 0) {
		ward_doc_info_dispose(&d);
		return cli_fail(ctx);
	}
	obj = doc_json(&d);
	arr = json_array();
	{
		char *uri = cli_escape(d.uri ? d.uri : "");
		cli_say("document %lld (version %lld): %s\n  state %s, verdict %s, score %.1f, ingested by %s, rules %s",
			id, (long long)d.version, uri ? uri : "?", d.state, d.verdict ? d.verdict : "", d.score,
			d.ingested_by, d.ruleset_sha256 ? d.ruleset_sha256 : "none");
		ward_free(uri);
	}
	for (size_t i = 0; i < nf; i++) {
		char *ex = cli_escape(f[i].excerpt ? f[i].excerpt : "");
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "rule_id", f[i].rule_id,
						     "category", f[i].category, "severity", cli_severity_name(f[i].severity), "channel",
						     f[i].channel, "view", f[i].view, "start", (json_int_t)f[i].start,
						     "end", (json_int_t)f[i].end, "excerpt", f[i].excerpt ? f[i].excerpt : ""));
		cli_say("  %-8s %-34s %-9s @%lld  %s", cli_severity_name(f[i].severity), f[i].rule_id, f[i].channel, (long long)f[i].start,
			ex ? ex : "");
		ward_free(ex);
	}
	json_object_set_new(obj, "findings_list", arr);
	ward_doc_findings_free(f, nf);
	ward_doc_info_dispose(&d);
	if (ctx->json)
		return cli_print_json(obj);
	json_decref(obj);
	return WARD_EXIT_OK;
}

static int run_decide(cli_ctx *ctx, int argc, char **argv, int release)
{
	static const struct option opts[] = {{"by", required_argument, NULL, 'b'},
					     {"note", required_argument, NULL, 'n'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *by = NULL, *note = NULL, *name = release ? "release" : "drop";
	char namebuf[256];
	ward_actor who;
	ward_doc_info d;
	long long id;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			by = optarg;
		else if (c == 'n')
			note = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'quarantine %s'", name);
	}
	if (argc - optind != 1 || cli_parse_id(argv[optind], &id) < 0)
		return cli_usage(ctx, "usage: ragward quarantine %s ID [--by WHO] [--note TEXT]", name);
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if ((release ? ward_quarantine_release(ctx->store, &who, id, note)
		     : ward_quarantine_drop(ctx->store, &who, id, note)) < 0)
		return cli_fail(ctx);
	if (ward_documents_get(ctx->store, id, &d) < 0)
		return cli_fail(ctx);
	cli_say("document %lld is now %s (by %s)", id, d.state, who.name);
	rc = ctx->json ? cli_print_json(doc_json(&d)) : WARD_EXIT_OK;
	ward_doc_info_dispose(&d);
	return rc;
}

static int cmd_release(cli_ctx *ctx, int argc, char **argv)
{
	return run_decide(ctx, argc, argv, 1);
}

static int cmd_drop(cli_ctx *ctx, int argc, char **argv)
{
	return run_decide(ctx, argc, argv, 0);
}

#define DOC_JSON_HELP                                                                                               \
	"  --json   print the document: {\"id\", \"source_id\", \"version\", \"uri\", \"title\", \"state\", \"verdict\",\n" \
	"           \"score\", \"fetched_at\", \"ruleset_sha256\", \"detected_type\", \"ingested_by\", \"chunks\",\n"     \
	"           \"findings\"}\n"

const cli_command cli_cmds_quarantine[] = {
	{"quarantine", "list", CMD_STORE_RO, cmd_list, "quarantine list [--json]",
	 "list quarantined documents (stored, not served)", "  --json   print {\"documents\": [document, ...]}\n"},
	{"quarantine", "show", CMD_STORE_RO, cmd_show, "quarantine show ID [--json]",
	 "show a document and its findings", DOC_JSON_HELP "           plus \"findings_list\": [{\"rule_id\", \"category\","
	 " \"severity\", \"channel\", \"view\", \"start\", \"end\", \"excerpt\"}]\n"},
	{"quarantine", "release", CMD_STORE_SIGN, cmd_release, "quarantine release ID [--by WHO] [--note TEXT] [--json]",
	 "serve a quarantined document after review",
	 "Re-checks every chunk's signature first. With the two-person rule the reviewer\n"
	 "must not be the one who ingested it.\n\n"
	 "  --by WHO     the reviewer (default: the OS user)\n  --note TEXT  why\n" DOC_JSON_HELP},
	{"quarantine", "drop", CMD_STORE_SIGN, cmd_drop, "quarantine drop ID [--by WHO] [--note TEXT] [--json]",
	 "never serve a quarantined document (kept for audit)",
	 "  --by WHO     the reviewer (default: the OS user)\n  --note TEXT  why\n" DOC_JSON_HELP},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
