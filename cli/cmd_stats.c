/*
 * ragward stats: drift statistics per day and source (docs/verify.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/verify.h"
#include "cli/cli.h"
#include "core/banned.h"

static void say_changes_until(const json_t *changes, size_t *next, const char *day)
{
	const json_t *c;

	for (; (c = json_array_get(changes, *next)); (*next)++) {
		const char *t = json_string_value(json_object_get(c, "time"));
		const char *sha = json_string_value(json_object_get(c, "sha256"));
		const char *prev = json_string_value(json_object_get(c, "previous"));
		char *esha, *eprev;

		if (day && t && strncmp(t, day, 10) > 0)
			break;
		esha = cli_escape(sha ? sha : "?");
		eprev = cli_escape(prev ? prev : "none");
		cli_say("---- rule set changed at %s: %.16s (%lld rules), was %.16s ----", t ? t : "?",
			esha ? esha : "?", (long long)json_integer_value(json_object_get(c, "rules")),
			eprev ? eprev : "?");
		ward_free(esha);
		ward_free(eprev);
	}
}

static void say_findings(const json_t *findings)
{
	const char *rule;
	const json_t *n;

	json_object_foreach((json_t *)findings, rule, n) {
		char *e = cli_escape(rule);
		cli_say("      %-40s %lld", e ? e : "?", (long long)json_integer_value(n));
		ward_free(e);
	}
}

static void say_human(const json_t *res)
{
	const json_t *rows = json_object_get(res, "rows"), *changes = json_object_get(res, "ruleset_changes");
	const json_t *row, *rd;
	const char *last_day = "";
	size_t i, next = 0;

	cli_say("%-10s %-20s %-12s %5s %6s %4s %5s %5s %4s %6s %7s", "day", "source", "ruleset", "docs", "accept",
		"flag", "strip", "quar", "rej", "chunks", "avg len");
	json_array_foreach(rows, i, row) {
		const char *day = json_string_value(json_object_get(row, "day"));
		const char *src = json_string_value(json_object_get(row, "source"));
		const char *rs = json_string_value(json_object_get(row, "ruleset_sha256"));
		const json_t *v = json_object_get(row, "verdicts");
		char *esrc, *ers;

		if (day && strcmp(day, last_day) != 0) {
			say_changes_until(changes, &next, day);
			last_day = day;
		}
		if (json_is_true(json_object_get(row, "ruleset_changed")))
			cli_say("  (rule set of this source changed)");
		esrc = cli_escape(src ? src : "?");
		ers = cli_escape(rs ? rs : "?");
		cli_say("%-10s %-20.20s %-12.12s %5lld %6lld %4lld %5lld %5lld %4lld %6lld %7.1f", day ? day : "?",
			esrc ? esrc : "?", ers ? ers : "?", (long long)json_integer_value(json_object_get(row, "documents")),
			(long long)json_integer_value(json_object_get(v, "accept")),
			(long long)json_integer_value(json_object_get(v, "flag")),
			(long long)json_integer_value(json_object_get(v, "strip")),
			(long long)json_integer_value(json_object_get(v, "quarantine")),
			(long long)json_integer_value(json_object_get(v, "reject")),
			(long long)json_integer_value(json_object_get(row, "chunks")),
			json_real_value(json_object_get(row, "avg_chunk_length")));
		ward_free(esrc);
		ward_free(ers);
		say_findings(json_object_get(row, "findings"));
	}
	say_changes_until(changes, &next, NULL);
	if (strcmp(json_string_value(json_object_get(res, "traces")), "read") != 0) {
		char *e = cli_escape(json_string_value(json_object_get(res, "traces")));
		cli_say("reads: no retrieval traces (%s)", e ? e : "?");
		ward_free(e);
		return;
	}
	cli_say("%-10s %8s %8s %8s", "day", "queries", "served", "withheld");
	json_array_foreach(json_object_get(res, "reads"), i, rd)
		cli_say("%-10s %8lld %8lld %8lld", json_string_value(json_object_get(rd, "day")),
			(long long)json_integer_value(json_object_get(rd, "queries")),
			(long long)json_integer_value(json_object_get(rd, "served")),
			(long long)json_integer_value(json_object_get(rd, "withheld")));
}

static int cmd_stats(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"since", required_argument, NULL, 's'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *since = NULL;
	json_t *res = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			since = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'stats'");
	}
	if (optind != argc)
		return cli_usage(ctx, "'stats' takes no arguments");
	if (ward_store_stats(ctx->store, since, &res) < 0)
		return cli_fail(ctx);
	if (ctx->json)
		return cli_print_json(res);
	say_human(res);
	json_decref(res);
	return WARD_EXIT_OK;
}

const cli_command cli_cmds_stats[] = {
	{NULL, "stats", CMD_STORE_RO, cmd_stats, "stats [--since DATE] [--json]",
	 "drift statistics per day and source: verdicts, findings per rule, chunk length, withheld reads",
	 "Per UTC day and source (split by the rule set that judged the documents):\n"
	 "documents ingested, verdict counts (accept, flag, strip, quarantine, reject),\n"
	 "findings per rule, chunks and average chunk length; per day: queries, served\n"
	 "and withheld-on-read results from the trace file (traces.path, HOME/traces.jsonl\n"
	 "by default); rule-set changes mark a\n"
	 "boundary (docs/verify.md).\n\n"
	 "  --since DATE  only events from DATE on (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)\n"
	 "  --json        print {\"since\", \"rows\": [{\"day\", \"source_id\", \"source\",\n"
	 "                \"ruleset_sha256\", \"ruleset_changed\", \"documents\", \"verdicts\",\n"
	 "                \"chunks\", \"avg_chunk_length\", \"findings\"}], \"ruleset_changes\",\n"
	 "                \"traces\", \"reads\": [{\"day\", \"queries\", \"served\", \"withheld\"}]}\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
