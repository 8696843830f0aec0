/*
 * ragward rules check|test [DIR]: the reviewer's admission gate for
 * injection rule packs (format: rules/README.md).
 *
 * DIR defaults to $RAGWARD_RULES, else /usr/share/ragward/rules/injection when
 * it exists, else ./rules/injection. Exit 1 when a pack is invalid or an
 * example fails, 2 on an operational error, 64 on a usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/scan.h"
#include "cli/cli.h"
#include "core/banned.h"

extern const cli_command cli_cmds_rules[];

/* A pack that does not load is a failed check (1), not a usage error: the
 * library's EINVAL means "the pack is invalid" here. */
static int rules_fail(cli_ctx *ctx, const char *dir)
{
	const ward_error *e = ward_error_last();
	int code = e->code ? e->code : WARD_EIO;
	int rc = (code == WARD_ENOMEM || code == WARD_EIO) ? WARD_EXIT_ERROR : WARD_EXIT_FAIL;
	char *msg = cli_escape(e->message);

	fprintf(stderr, "ragward: rules in '%s' rejected: %s\n", dir, msg ? msg : "?");
	if (ctx->json)
		cli_print_json(json_pack("{s:s, s:{s:s, s:s}}", "dir", dir, "error", "code", ward_error_name(code),
		                         "message", e->message));
	ward_free(msg);
	return rc;
}

static int parse_args(cli_ctx *ctx, int argc, char **argv, const char *name, const char **dir)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (c != 'j')
			return cli_usage(ctx, "bad option for 'rules %s'", name);
	if (argc - optind > 1)
		return cli_usage(ctx, "usage: ragward rules %s [DIR] [--json]", name);
	*dir = argc - optind == 1 ? argv[optind] : ward_ruleset_default_dir();
	return 0;
}

static int cmd_check(cli_ctx *ctx, int argc, char **argv)
{
	ward_ruleset_opts opts;
	ward_ruleset *rs = NULL;
	ward_ruleset_stats st;
	const char *dir = NULL;
	int rc;

	if ((rc = parse_args(ctx, argc, argv, "check", &dir)) != 0)
		return rc;
	memset(&opts, 0, sizeof(opts));
	opts.revalidate = 1; /* every check, whatever a cache says */
	opts.cache_dir = cli_cache_dir(ctx); /* compiled databases only: verified when loaded */
	if (ward_ruleset_load(&rs, dir, &opts) < 0)
		return rules_fail(ctx, dir);
	ward_ruleset_stats_get(rs, &st);
	cli_say("%zu rules (%zu patterns) in '%s' are valid; rule set sha256 %s", ward_ruleset_count(rs), st.patterns,
	        dir, ward_ruleset_sha256(rs));
	if (ward_ruleset_has_prefilter(rs))
		cli_say("prefilter: vectorscan; %zu (pattern, view) pairs exact, %zu approximate, %zu confirmed on "
		        "every text by PCRE2",
		        st.hs_exact, st.hs_prefilter, st.always_confirm);
	else
		cli_say("prefilter: none (PCRE2 only)");
	rc = WARD_EXIT_OK;
	if (ctx->json)
		rc = cli_print_json(json_pack("{s:s, s:I, s:s, s:b, s:I, s:{s:I, s:I, s:I}}", "dir", dir, "rules",
		                              (json_int_t)ward_ruleset_count(rs), "sha256", ward_ruleset_sha256(rs),
		                              "prefilter", ward_ruleset_has_prefilter(rs), "patterns",
		                              (json_int_t)st.patterns, "vectorscan", "exact", (json_int_t)st.hs_exact,
		                              "approximate", (json_int_t)st.hs_prefilter, "always_confirm",
		                              (json_int_t)st.always_confirm));
	ward_ruleset_free(rs);
	return rc;
}

static int cmd_test(cli_ctx *ctx, int argc, char **argv)
{
	ward_ruleset_opts opts;
	ward_ruleset *rs = NULL;
	ward_example_failure *f = NULL;
	size_t nf = 0, nex = 0;
	const char *dir = NULL;
	json_t *arr = NULL;
	int rc;

	if ((rc = parse_args(ctx, argc, argv, "test", &dir)) != 0)
		return rc;
	memset(&opts, 0, sizeof(opts));
	opts.revalidate = 1;    /* the pumped-input check, whatever a cache says */
	opts.cache_dir = cli_cache_dir(ctx);
	opts.skip_examples = 1; /* run below, listing every failure */
	if (ward_ruleset_load(&rs, dir, &opts) < 0)
		return rules_fail(ctx, dir);
	if (ward_ruleset_test(rs, &f, &nf, &nex) < 0) {
		ward_ruleset_free(rs);
		return rules_fail(ctx, dir);
	}
	arr = json_array();
	for (size_t i = 0; i < nf; i++) {
		char *ex = cli_escape(f[i].example);
		cli_say("FAIL %s (%s): %s example did not %s: \"%s\"", f[i].rule_id, f[i].file,
		        f[i].expected ? "match" : "no_match", f[i].expected ? "match" : "stay unmatched",
		        ex ? ex : "?");
		ward_free(ex);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "rule_id", f[i].rule_id, "file", f[i].file,
		                                     "example", f[i].example, "expected",
		                                     f[i].expected ? "match" : "no_match"));
	}
	cli_say("%zu rules, %zu examples, %zu failing", ward_ruleset_count(rs), nex, nf);
	rc = nf ? WARD_EXIT_FAIL : WARD_EXIT_OK;
	if (ctx->json) {
		int prc = cli_print_json(json_pack("{s:s, s:I, s:I, s:O}", "dir", dir, "rules",
		                                   (json_int_t)ward_ruleset_count(rs), "examples", (json_int_t)nex,
		                                   "failures", arr));
		if (prc != WARD_EXIT_OK)
			rc = prc;
	}
	json_decref(arr);
	ward_example_failures_free(f, nf);
	ward_ruleset_free(rs);
	return rc;
}

#define RULES_DIR_HELP                                                                                                 \
	"DIR defaults to $RAGWARD_RULES, else /usr/share/ragward/rules/injection when it\n"                            \
	"exists, else ./rules/injection. Every *.yaml file of DIR is a pack (rules/README.md).\n"

const cli_command cli_cmds_rules[] = {
        {"rules", "check", CMD_NO_STORE, cmd_check, "rules check [DIR] [--json]",
         "validate and compile the injection rule packs; print the rule-set hash",
         RULES_DIR_HELP
         "Loads every pack as the scanner does: strict keys, patterns compiled with\n"
         "PCRE2 (UTF, UCP; \\C, callouts and leading (*...) verbs refused; compiled size\n"
         "capped), every example run, every pattern pumped with adversarial input under\n"
         "the match limits, and the Vectorscan prefilter built. Exit 1 on any failure.\n\n"
         "  --json  print {\"dir\", \"rules\", \"sha256\", \"prefilter\", \"patterns\", \"vectorscan\"}\n"},
        {"rules", "test", CMD_NO_STORE, cmd_test, "rules test [DIR] [--json]",
         "run every rule's examples and list each failing one",
         RULES_DIR_HELP "A `match` example must match on one of the views the rule declares (after\n"
                        "normalization); a `no_match` example must match on none. Exit 1 when one fails.\n\n"
                        "  --json  print {\"dir\", \"rules\", \"examples\",\n"
                        "          \"failures\": [{\"rule_id\", \"file\", \"example\", \"expected\"}]}\n"},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
