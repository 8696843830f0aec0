/*
 * ragward verify: offline check of the whole store (docs/verify.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/verify.h"
#include "cli/cli.h"
#include "core/banned.h"

static json_t *count_json(const ward_verify_count *c)
{
	return json_pack("{s:I, s:I}", "checked", (json_int_t)c->checked, "failed", (json_int_t)c->failed);
}

static json_t *report_json(const ward_verify_report *r)
{
	json_t *fails = json_array(), *docs;
	double cps = r->chunk_seconds > 0 ? (double)r->chunks.checked / r->chunk_seconds : 0.0;

	for (size_t i = 0; fails && i < r->nfailures; i++)
		json_array_append_new(fails, json_pack("{s:s, s:s}", "object", r->failures[i].object, "problem",
						       r->failures[i].problem));
	docs = count_json(&r->documents);
	if (docs)
		json_object_set_new(docs, "with_bytes", json_integer((json_int_t)r->documents_with_bytes));
	return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:i},"
			 " s:{s:s, s:s}, s:o, s:I, s:f, s:i, s:f}",
			 "ok", ward_verify_report_ok(r), "chunks", count_json(&r->chunks), "documents", docs, "fts",
			 count_json(&r->fts), "sources", count_json(&r->sources), "keys", count_json(&r->keys), "audit",
			 "events", (json_int_t)r->audit.checked, "failed", (json_int_t)r->audit.failed, "checkpoints",
			 (json_int_t)r->audit_checkpoints, "anchors_checked", r->audit_anchors, "sqlite",
			 "integrity_check", r->sqlite_integrity ? r->sqlite_integrity : "?", "fts5_integrity_check",
			 r->fts_integrity ? r->fts_integrity : "?", "failures", fails, "failures_omitted",
			 (json_int_t)r->failures_omitted, "chunks_per_second", cps, "jobs", (int)r->jobs, "seconds",
			 r->seconds);
}

static int cmd_verify(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"checkpoint", required_argument, NULL, 'c'},
					     {"jobs", required_argument, NULL, 'n'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	ward_verify_opts o;
	ward_verify_report r;
	long long jobs = 0;
	int c, rc;

	ward_verify_opts_init(&o);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			o.checkpoint_path = optarg;
		else if (c == 'n') {
			if (cli_parse_id(optarg, &jobs) < 0 || jobs > WARD_VERIFY_MAX_JOBS)
				return cli_usage(ctx, "--jobs needs a number from 1 to %d", WARD_VERIFY_MAX_JOBS);
			o.jobs = (unsigned)jobs;
		} else if (c != 'j')
			return cli_usage(ctx, "bad option for 'verify'");
	}
	if (optind != argc)
		return cli_usage(ctx, "'verify' takes no arguments");
	if (ward_store_verify(ctx->store, &o, &r) < 0) {
		ward_verify_report_dispose(&r);
		return cli_fail(ctx);
	}
	for (size_t i = 0; i < r.nfailures; i++) {
		char *obj = cli_escape(r.failures[i].object), *problem = cli_escape(r.failures[i].problem);
		cli_say("%s: %s", obj ? obj : "?", problem ? problem : "?");
		ward_free(obj);
		ward_free(problem);
	}
	if (r.failures_omitted)
		cli_say("... and %llu more failure(s) not listed", (unsigned long long)r.failures_omitted);
	if (r.fts_integrity && strncmp(r.fts_integrity, "skipped", 7) == 0)
		cli_say("warning: FTS5 integrity-check %s", r.fts_integrity);
	cli_say("chunks: %llu checked, %llu failed (%.0f chunks/s on %u thread%s); documents: %llu checked, %llu failed;"
		" fts rows: %llu, %llu failed; sources: %llu, %llu failed; keys: %llu, %llu failed;"
		" audit: %llu events, %llu failed; sqlite: %s; fts5: %s",
		(unsigned long long)r.chunks.checked, (unsigned long long)r.chunks.failed,
		r.chunk_seconds > 0 ? (double)r.chunks.checked / r.chunk_seconds : 0.0, r.jobs, r.jobs == 1 ? "" : "s",
		(unsigned long long)r.documents.checked, (unsigned long long)r.documents.failed,
		(unsigned long long)r.fts.checked, (unsigned long long)r.fts.failed, (unsigned long long)r.sources.checked,
		(unsigned long long)r.sources.failed, (unsigned long long)r.keys.checked, (unsigned long long)r.keys.failed,
		(unsigned long long)r.audit.checked, (unsigned long long)r.audit.failed,
		r.sqlite_integrity ? r.sqlite_integrity : "?", r.fts_integrity ? r.fts_integrity : "?");
	if (ward_verify_report_ok(&r))
		cli_say("store ok");
	else
		cli_say("store FAILED verification: %zu problem(s)", r.nfailures + (size_t)r.failures_omitted);
	rc = ward_verify_report_ok(&r) ? WARD_EXIT_OK : WARD_EXIT_FAIL;
	if (ctx->json) {
		int prc = cli_print_json(report_json(&r));
		if (prc)
			rc = prc;
	}
	ward_verify_report_dispose(&r);
	return rc;
}

const cli_command cli_cmds_verify[] = {
	{NULL, "verify", CMD_STORE_RO, cmd_verify, "verify [--checkpoint FILE] [--jobs N] [--json]",
	 "check every chunk, document, FTS row, source, key and the audit log; exit 1 on any failure",
	 "Offline check of the whole store (docs/verify.md): every chunk's text hash and\n"
	 "signature with the key it names (retired keys included); every kept document's\n"
	 "byte hash and length; every chunk's FTS row and every FTS row's chunk; documents\n"
	 "and sources against the audit log (values and state); key rows; the audit log\n"
	 "against its checkpoints, HOME/anchor.checkpoint and --checkpoint; SQLite\n"
	 "integrity_check and the FTS5 integrity-check (which needs write access to the\n"
	 "store file; it writes nothing, and is reported as skipped without it).\n"
	 "Exit 0: all checks pass; 1: some failed (each is listed); 2: the checks could not run.\n\n"
	 "  --checkpoint FILE  a checkpoint exported earlier with 'audit checkpoint --out'\n"
	 "  --jobs N           threads for the chunk checks (default: online CPUs, at most 16)\n"
	 "  --json             print {\"ok\", \"chunks\": {\"checked\", \"failed\"}, \"documents\",\n"
	 "                     \"fts\", \"sources\", \"keys\", \"audit\", \"sqlite\", \"failures\":\n"
	 "                     [{\"object\", \"problem\"}], \"failures_omitted\", \"chunks_per_second\",\n"
	 "                     \"jobs\", \"seconds\"}\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
