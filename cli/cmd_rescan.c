/*
 * ragward rescan: judge stored documents again after the rule set changed
 * (docs/rescan.md). Built for cron like ingest: the same lock, idempotent
 * (a second run with the same rules has nothing to do), a JSON summary.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "ragward/ingest.h"
#include "ragward/rescan.h"
#include "ragward/scan.h"
#include "cli/cli.h"
#include "core/banned.h"

static void progress_draw(void *ctx, size_t done, size_t total, const ward_rescan_item *it)
{
	const int width = 30;
	int filled = total ? (int)(done * (size_t)width / total) : width;
	char *shown = cli_escape(it->uri ? it->uri : "");

	(void)ctx;
	fprintf(stderr, "\r\033[K[%.*s%*s] %zu/%zu %.60s", filled, "##############################", width - filled, "",
		done, total, shown ? shown : "");
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
	ward_free(shown);
}

static json_t *side_json(const char *verdict, const char *state, const char *ruleset)
{
	if (!verdict || !state)
		return json_null();
	return json_pack("{s:s, s:s, s:s?}", "verdict", verdict, "state", state, "ruleset_sha256", ruleset);
}

static int cmd_rescan(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"source", required_argument, NULL, 's'}, {"all", no_argument, NULL, 'a'},
					     {"force", no_argument, NULL, 'f'},	        {"rules", required_argument, NULL, 'r'},
					     {"by", required_argument, NULL, 'b'},      {"json", no_argument, NULL, 'J'},
					     {NULL, 0, NULL, 0}};
	const char *by = NULL, *rules_dir = NULL;
	char namebuf[256];
	long long source = 0;
	int all = 0, c, rc = WARD_EXIT_OK, lock_fd = -1, tampered = 0;
	ward_rescan_opts o;
	ward_rescan_report r;
	ward_ruleset *rs = NULL;
	ward_actor who;
	json_t *items = NULL;

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_parse_id(optarg, &source) < 0)
				return cli_usage(ctx, "--source needs a source id");
			break;
		case 'a':
			all = 1;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'r':
			rules_dir = optarg;
			break;
		case 'b':
			by = optarg;
			break;
		case 'J':
			break;
		default:
			return cli_usage(ctx, "bad option for 'rescan'");
		}
	}
	if (optind != argc)
		return cli_usage(ctx, "'rescan' takes no arguments (use --source ID or --all)");
	if (!all == !source)
		return cli_usage(ctx, "give exactly one of --source ID and --all");
	cli_actor(&who, by, namebuf, sizeof(namebuf));

	if (ward_ingest_lock(ctx->home, &lock_fd) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}
	if (cli_load_rules_audited(ctx, rules_dir, &who, &rs) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}
	o.rules = rs;
	o.source_id = source;
	if (isatty(STDERR_FILENO)) {
		o.progress = progress_draw;
		o.progress_ctx = NULL;
	}
	if (ward_rescan_run(ctx->store, &who, &o, &r) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}

	items = json_array();
	if (!items) {
		ward_error_set(WARD_ENOMEM, "out of memory");
		rc = cli_fail(ctx);
		goto done;
	}
	for (size_t i = 0; i < r.nitems; i++) {
		const ward_rescan_item *it = &r.items[i];
		char *uri = cli_escape(it->uri ? it->uri : ""), *reason = cli_escape(it->reason ? it->reason : "");

		tampered |= it->tampered;
		if (!ctx->json || !o.progress)
			cli_say("%-11s %lld %s: %s/%s -> %s/%s%s%s", ward_rescan_outcome_name(it->outcome),
				(long long)it->document_id, uri ? uri : "", it->from_state ? it->from_state : "?",
				it->from_verdict ? it->from_verdict : "?", it->to_state ? it->to_state : "-",
				it->to_verdict ? it->to_verdict : "-", it->reason ? ": " : "", reason ? reason : "");
		ward_free(uri);
		ward_free(reason);
		json_array_append_new(items, json_pack("{s:I, s:s?, s:s, s:o, s:o, s:s?}", "document_id",
						       (json_int_t)it->document_id, "uri", it->uri, "outcome",
						       ward_rescan_outcome_name(it->outcome), "from",
						       side_json(it->from_verdict, it->from_state, it->from_ruleset), "to",
						       side_json(it->to_verdict, it->to_state, it->to_ruleset), "reason",
						       it->reason));
	}
	cli_say("rescan under rule set %s: %zu rescanned (%zu changed, %zu newly quarantined, %zu unchanged),"
		" %zu skipped, %zu failed",
		ward_ruleset_sha256(rs), r.rescanned, r.changed, r.quarantined, r.unchanged, r.skipped, r.failed);
	if (tampered)
		rc = WARD_EXIT_FAIL;
	else if (r.failed)
		rc = WARD_EXIT_PARTIAL;
	if (ctx->json) {
		int prc = cli_print_json(json_pack(
			"{s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:O}", "ruleset_sha256", ward_ruleset_sha256(rs), "counts",
			"rescanned", (json_int_t)r.rescanned, "changed", (json_int_t)r.changed, "quarantined",
			(json_int_t)r.quarantined, "unchanged", (json_int_t)r.unchanged, "skipped", (json_int_t)r.skipped,
			"failed", (json_int_t)r.failed, "items", items));
		if (prc)
			rc = prc;
	}
done:
	json_decref(items);
	ward_rescan_report_dispose(&r);
	ward_ruleset_free(rs);
	ward_ingest_unlock(lock_fd);
	return rc;
}

const cli_command cli_cmds_rescan[] = {
	{NULL, "rescan", CMD_STORE_SIGN, cmd_rescan, "rescan (--source ID | --all) [--force] [--rules DIR] [--by WHO] [--json]",
	 "judge stored documents again with the current rule set",
	 "Re-runs the type gate, extraction, scan and verdict over the kept bytes of every\n"
	 "active or quarantined document (of one source, or all) that an older rule set\n"
	 "judged. A document the new rules quarantine (or reject) moves to quarantine\n"
	 "unless a reviewer released it and no finding is more severe than before; a\n"
	 "quarantined document stays quarantined (only a reviewer releases); nothing is\n"
	 "deleted. Every rescanned document's chunk statements are re-signed with the new\n"
	 "rule-set hash and verdict, its findings replaced, and a document.rescan event\n"
	 "audited, in one transaction per document. Documents stored with --no-keep-bytes\n"
	 "are skipped (re-ingest them). Shares the ingest lock: one run per home at a time.\n\n"
	 "  --source ID   only this source's documents\n"
	 "  --all         every source\n"
	 "  --force       also documents already judged by the current rule set\n"
	 "  --rules DIR   injection rule packs (default: $RAGWARD_RULES, else the bundled ones)\n"
	 "  --by WHO      recorded as the actor of the audit events (default: the OS user)\n"
	 "  --json        print {\"ruleset_sha256\", \"counts\": {\"rescanned\", \"changed\", \"quarantined\",\n"
	 "                \"unchanged\", \"skipped\", \"failed\"}, \"items\": [{\"document_id\", \"uri\",\n"
	 "                \"outcome\", \"from\", \"to\", \"reason\"}]}; from/to are {\"verdict\", \"state\",\n"
	 "                \"ruleset_sha256\"}, to is null for skipped and failed documents\n\n"
	 "Exit: 0 the run finished (also when verdicts changed or documents moved to\n"
	 "quarantine: see the counts and the audit log); 1 a stored chunk failed signature\n"
	 "verification (that document is not re-signed); 2 operational error (or another\n"
	 "run holds the lock); 3 the run finished but some documents failed; 64 usage.\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
