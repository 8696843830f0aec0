/*
 * ragward scan FILE...: extract and scan without storing, for rule authors
 * and for evaluation. The --json shape is fixed by DESIGN.md "Contracts".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/extract.h"
#include "ragward/fetch.h"
#include "ragward/scan.h"
#include "ragward/scandoc.h"
#include "ragward/typegate.h"
#include "ragward/verdict.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "core/banned.h"

typedef struct {
	ward_verdict verdict;
	double score;
	char detected[128];
	ward_findings found;
} scan_result;

/* The same stages ingest runs, minus fetch and store: type gate, extract,
 * scan, verdict (for a standard-trust source). */
static int scan_file(const ward_ruleset *rs, const char *path, scan_result *r)
{
	char *bytes = NULL;
	size_t len = 0;
	ward_gate_result gate;
	ward_extracted *x = NULL;
	ward_policy policy;
	int rc;

	memset(&gate, 0, sizeof(gate));
	if ((rc = ward_file_read(&bytes, &len, path, WARD_MAX_DOC_BYTES)) < 0)
		return rc;
	if ((rc = ward_typegate(&gate, bytes, len, NULL, path, 0)) < 0)
		goto done;
	snprintf(r->detected, sizeof(r->detected), "%s",
		 gate.decision == WARD_GATE_ACCEPT ? ward_doctype_name(gate.type) : gate.detected);
	if (gate.decision != WARD_GATE_ACCEPT) {
		int reject = gate.decision == WARD_GATE_REJECT;
		/* A type-gate refusal is reported as a finding, so the JSON says why. */
		if ((rc = ward_findings_push(&r->found, reject ? "typegate.reject" : "typegate.quarantine", "type-gate",
					     reject ? 4 : 3, WARD_CH_VISIBLE, 0, 0, gate.reason)) < 0)
			goto done;
		r->verdict = reject ? WARD_VERDICT_REJECT : WARD_VERDICT_QUARANTINE;
		goto done;
	}
	if ((rc = ward_extract(&x, gate.utf8, gate.utf8_len, gate.type)) < 0 ||
	    (rc = ward_extracted_rebase(x, &gate.map)) < 0)
		goto done;
	if ((rc = ward_scan_document(rs, x, &r->found)) < 0)
		goto done;
	ward_policy_default(&policy);
	ward_verdict_decide(&r->verdict, &r->score, &r->found, 1, &policy);
done:
	ward_extracted_free(x);
	ward_gate_result_dispose(&gate);
	ward_free(bytes);
	return rc;
}

static json_t *result_json(const char *path, const scan_result *r, const char *sha)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < r->found.n; i++) {
		const ward_finding *f = &r->found.items[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "rule_id", f->rule_id,
						     "category", f->category, "severity", cli_severity_name(f->severity),
						     "channel", ward_channel_name(f->channel), "view",
						     ward_view_name(f->view), "start", (json_int_t)f->start, "end",
						     (json_int_t)f->end, "excerpt", f->excerpt ? f->excerpt : ""));
	}
	return json_pack("{s:s, s:s, s:s, s:f, s:o, s:s}", "file", path, "detected_type", r->detected, "verdict",
			 ward_verdict_name(r->verdict), "score", r->score, "findings", arr ? arr : json_array(),
			 "ruleset_sha256", sha);
}

static int cmd_scan(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"rules", required_argument, NULL, 'r'},
					     {"no-prefilter", no_argument, NULL, 'p'},
					     {NULL, 0, NULL, 0}};
	const char *rules_dir = NULL;
	ward_ruleset_opts ro;
	ward_ruleset *rs = NULL;
	int c, rc = WARD_EXIT_OK, errors = 0;
	ward_verdict worst = WARD_VERDICT_ACCEPT;

	memset(&ro, 0, sizeof(ro));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			rules_dir = optarg;
		else if (c == 'p')
			ro.no_prefilter = 1;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'scan'");
	}
	if (optind == argc)
		return cli_usage(ctx, "usage: ragward scan FILE... [--json] [--rules DIR]");
	ro.cache_dir = cli_cache_dir(ctx);
	if (ward_ruleset_load(&rs, cli_rules_dir(rules_dir), &ro) < 0)
		return cli_fail(ctx);
	for (int i = optind; i < argc; i++) {
		scan_result r;

		memset(&r, 0, sizeof(r));
		ward_findings_init(&r.found);
		if (scan_file(rs, argv[i], &r) < 0) {
			const ward_error *e = ward_error_last();
			fprintf(stderr, "ragward: %s: %s\n", argv[i], e->message);
			if (ctx->json)
				cli_print_json(json_pack("{s:s, s:{s:s, s:s}}", "file", argv[i], "error", "code",
							 ward_error_name(e->code), "message", e->message));
			errors++;
			ward_findings_dispose(&r.found);
			continue;
		}
		if (r.verdict > worst)
			worst = r.verdict;
		if (ctx->json) {
			if (cli_print_json(result_json(argv[i], &r, ward_ruleset_sha256(rs))) != 0)
				errors++;
		} else {
			char *shown = cli_escape(argv[i]);
			cli_say("%s: %s (score %.1f, %zu findings, %s)", shown ? shown : "?", ward_verdict_name(r.verdict),
				r.score, r.found.n, r.detected);
			for (size_t j = 0; j < r.found.n; j++) {
				const ward_finding *f = &r.found.items[j];
				char *ex = cli_escape(f->excerpt ? f->excerpt : "");
				cli_say("  %-8s %-36s %-9s %-8s @%zu  %s", cli_severity_name(f->severity), f->rule_id,
					ward_channel_name(f->channel), ward_view_name(f->view), f->start, ex ? ex : "");
				ward_free(ex);
			}
			ward_free(shown);
		}
		ward_findings_dispose(&r.found);
	}
	ward_ruleset_free(rs);
	/* 1 when a document would not be served (quarantine or reject). */
	if (errors)
		rc = WARD_EXIT_ERROR;
	else if (worst >= WARD_VERDICT_QUARANTINE)
		rc = WARD_EXIT_FAIL;
	return rc;
}

const cli_command cli_cmds_scan[] = {
	{NULL, "scan", CMD_NO_STORE, cmd_scan, "scan FILE... [--json] [--rules DIR] [--no-prefilter]",
	 "extract and scan files for prompt injection without storing them",
	 "Runs the type gate, extraction (visible text, hidden channels, attributes,\n"
	 "comments, link URLs) and the injection rules, and prints each file's verdict\n"
	 "as a standard-trust source would get it.\n\n"
	 "  --rules DIR      rule packs (default: $RAGWARD_RULES, else /usr/share/ragward/rules/injection,\n"
	 "                   else ./rules/injection, else the rules of the source tree it was built from)\n"
	 "  --no-prefilter   run PCRE2 only, without the Vectorscan prefilter (same results)\n"
	 "  --json           one JSON object per file, one per line (detected_type: html, xhtml, xml,\n"
	 "                   feed, text or markdown when accepted, else the detected MIME type): {\"file\", \"detected_type\",\n"
	 "                   \"verdict\", \"score\", \"findings\": [{\"rule_id\", \"category\", \"severity\",\n"
	 "                   \"channel\", \"view\", \"start\", \"end\", \"excerpt\"}], \"ruleset_sha256\"}\n\n"
	 "Exit: 0 every file would be served (accept, flag, strip); 1 some file would be\n"
	 "quarantined or rejected; 2 a file could not be read or scanned; 64 usage.\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
