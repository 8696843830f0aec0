/*
 * ragward sources request|approve|reject|revoke|list|show|import
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/sources.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "core/banned.h"

static json_t *source_json(const ward_source *s)
{
	json_t *labels = json_loads(s->labels ? s->labels : "[]", 0, NULL);
	json_t *seeds = json_loads(s->seeds ? s->seeds : "[]", 0, NULL);

	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:s, s:I, s:s, s:s?, s:s?, s:o?, s:s?, s:s?, "
			 "s:o}",
			 "id", (json_int_t)s->id, "name", s->name, "kind", ward_kind_name(s->kind), "pattern", s->pattern,
			 "trust", ward_trust_name(s->trust), "labels", labels ? labels : json_array(), "allow_private",
			 s->allow_private, "state", s->state, "origin", s->origin, "requested_by", s->requested_by,
			 "requested_uid", (json_int_t)s->requested_uid, "requested_at", s->requested_at, "reason",
			 s->reason, "decided_by", s->decided_by, "decided_uid",
			 s->decided_by ? json_integer(s->decided_uid) : NULL, "decided_at", s->decided_at, "note",
			 s->note, "seeds", seeds ? seeds : json_array());
}

static void source_say(const ward_source *s)
{
	char *pattern = cli_escape(s->pattern);

	cli_say("%-4lld %-10s %-5s %-8s %-24s %s", (long long)s->id, s->state, ward_kind_name(s->kind),
		ward_trust_name(s->trust), s->name, pattern ? pattern : "?");
	ward_free(pattern);
}

static int cmd_request(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"kind", required_argument, NULL, 'k'},   {"trust", required_argument, NULL, 't'},
		{"labels", required_argument, NULL, 'l'}, {"allow-private", no_argument, NULL, 'p'},
		{"by", required_argument, NULL, 'b'},     {"reason", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},         {"seed", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0}};
	const char *seeds[WARD_MAX_SEEDS];
	ward_source_request req;
	const char *by = NULL;
	char namebuf[256];
	ward_actor who;
	ward_source src;
	int64_t id;
	int c, rc;

	memset(&req, 0, sizeof(req));
	req.trust = WARD_TRUST_STANDARD;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (ward_kind_parse(&req.kind, optarg) < 0)
				return cli_usage(ctx, "%s", ward_error_last()->message);
			req.kind_given = 1;
			break;
		case 't':
			if (ward_trust_parse(&req.trust, optarg) < 0)
				return cli_usage(ctx, "%s", ward_error_last()->message);
			break;
		case 'l':
			req.labels = optarg;
			break;
		case 'p':
			req.allow_private = 1;
			break;
		case 'b':
			by = optarg;
			break;
		case 'r':
			req.reason = optarg;
			break;
		case 's':
			if (req.nseeds >= WARD_MAX_SEEDS)
				return cli_usage(ctx, "more than %d --seed options", WARD_MAX_SEEDS);
			seeds[req.nseeds++] = optarg;
			break;
		case 'j':
			break;
		default:
			return cli_usage(ctx, "bad option for 'sources request'");
		}
	}
	if (argc - optind != 2)
		return cli_usage(ctx, "usage: ragward sources request NAME PATTERN [options]");
	req.seeds = seeds;
	req.name = argv[optind];
	req.pattern = argv[optind + 1];
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if (ward_sources_request(ctx->store, &who, &req, &id) < 0)
		return cli_fail(ctx);
	if (ward_sources_get(ctx->store, id, &src) < 0)
		return cli_fail(ctx);
	{
		char *pattern = cli_escape(src.pattern);
		cli_say("source %lld requested: %s %s (%s); a reviewer other than '%s' must approve it:\n"
			"  ragward sources approve %lld --by REVIEWER",
			(long long)id, ward_kind_name(src.kind), pattern ? pattern : "?", ward_trust_name(src.trust),
			who.name, (long long)id);
		ward_free(pattern);
	}
	if (ctx->json)
		rc = cli_print_json(source_json(&src));
	else
		rc = printf("%lld\n", (long long)id) < 0 ? WARD_EXIT_ERROR : WARD_EXIT_OK;
	ward_source_dispose(&src);
	return rc;
}

static int run_decide(cli_ctx *ctx, int argc, char **argv, ward_decision d, const char *name)
{
	static const struct option opts[] = {{"by", required_argument, NULL, 'b'},
					     {"note", required_argument, NULL, 'n'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *by = NULL, *note = NULL;
	char namebuf[256];
	ward_actor who;
	ward_source src;
	long long id;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			by = optarg;
		else if (c == 'n')
			note = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'sources %s'", name);
	}
	if (argc - optind != 1 || cli_parse_id(argv[optind], &id) < 0)
		return cli_usage(ctx, "usage: ragward sources %s ID [--by WHO] [--note TEXT]", name);
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if (ward_sources_decide(ctx->store, &who, id, d, note) < 0)
		return cli_fail(ctx);
	if (ward_sources_get(ctx->store, id, &src) < 0)
		return cli_fail(ctx);
	cli_say("source %lld is now %s (by %s)", id, src.state, who.name);
	rc = ctx->json ? cli_print_json(source_json(&src)) : WARD_EXIT_OK;
	ward_source_dispose(&src);
	return rc;
}

static int cmd_approve(cli_ctx *ctx, int argc, char **argv)
{
	return run_decide(ctx, argc, argv, WARD_DECIDE_APPROVE, "approve");
}

static int cmd_reject(cli_ctx *ctx, int argc, char **argv)
{
	return run_decide(ctx, argc, argv, WARD_DECIDE_REJECT, "reject");
}

static int cmd_revoke(cli_ctx *ctx, int argc, char **argv)
{
	return run_decide(ctx, argc, argv, WARD_DECIDE_REVOKE, "revoke");
}

static int cmd_list(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"state", required_argument, NULL, 's'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *state = NULL;
	ward_source *list = NULL;
	size_t n = 0;
	json_t *arr;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			state = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'sources list'");
	}
	if (optind != argc)
		return cli_usage(ctx, "'sources list' takes no arguments");
	if (ward_sources_list(ctx->store, state, &list, &n) < 0)
		return cli_fail(ctx);
	arr = json_array();
	if (!ctx->json)
		cli_say("%-4s %-10s %-5s %-8s %-24s %s", "ID", "STATE", "KIND", "TRUST", "NAME", "PATTERN");
	for (size_t i = 0; i < n; i++) {
		if (ctx->json)
			json_array_append_new(arr, source_json(&list[i]));
		else
			source_say(&list[i]);
	}
	ward_sources_free(list, n);
	if (ctx->json)
		return cli_print_json(json_pack("{s:o}", "sources", arr));
	json_decref(arr);
	return WARD_EXIT_OK;
}

static int cmd_show(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	ward_source src;
	long long id;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (c != 'j')
			return cli_usage(ctx, "bad option for 'sources show'");
	if (argc - optind != 1 || cli_parse_id(argv[optind], &id) < 0)
		return cli_usage(ctx, "usage: ragward sources show ID [--json]");
	if (ward_sources_get(ctx->store, id, &src) < 0)
		return cli_fail(ctx);
	if (ctx->json) {
		rc = cli_print_json(source_json(&src));
	} else {
		char *pattern = cli_escape(src.pattern), *reason = src.reason ? cli_escape(src.reason) : NULL,
		     *note = src.note ? cli_escape(src.note) : NULL;
		cli_say("source %lld: %s\n  state:         %s\n  kind:          %s\n  pattern:       %s\n"
			"  trust:         %s\n  labels:        %s\n  allow private: %s\n  origin:        %s\n"
			"  requested:     %s by %s (uid %ld)%s%s",
			id, src.name, src.state, ward_kind_name(src.kind), pattern ? pattern : "?",
			ward_trust_name(src.trust), src.labels, src.allow_private ? "yes" : "no", src.origin,
			src.requested_at, src.requested_by, src.requested_uid, reason ? "\n  reason:        " : "",
			reason ? reason : "");
		if (src.decided_by)
			cli_say("  decided:       %s by %s (uid %ld)%s%s", src.decided_at, src.decided_by, src.decided_uid,
				note ? "\n  note:          " : "", note ? note : "");
		ward_free(pattern);
		ward_free(reason);
		ward_free(note);
		rc = WARD_EXIT_OK;
	}
	ward_source_dispose(&src);
	return rc;
}

static int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"by", required_argument, NULL, 'b'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *by = NULL;
	char namebuf[256];
	ward_actor who;
	ward_import_result res;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			by = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'sources import'");
	}
	if (argc - optind != 1)
		return cli_usage(ctx, "usage: ragward sources import FILE [--by WHO]");
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if (ward_sources_import(ctx->store, &who, argv[optind], &res) < 0)
		return cli_fail(ctx);
	cli_say("imported '%s' (sha256 %s): %zu added, %zu unchanged", argv[optind], res.sha256_hex, res.added,
		res.unchanged);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s, s:I, s:I}", "file", argv[optind], "sha256", res.sha256_hex,
						"added", (json_int_t)res.added, "unchanged", (json_int_t)res.unchanged));
	return WARD_EXIT_OK;
}

static const char source_json_help[] =
	"  --json     print the source: {\"id\", \"name\", \"kind\", \"pattern\", \"trust\", \"labels\",\n"
	"             \"allow_private\", \"state\", \"origin\", \"requested_by\", \"requested_uid\",\n"
	"             \"requested_at\", \"reason\", \"decided_by\", \"decided_uid\", \"decided_at\", \"note\",\n"
	"             \"seeds\"}\n";

#define DECIDE_HELP(what)                                                                                           \
	what "\n\n  --by WHO     the reviewer (default: the OS user; the OS uid is recorded too)\n"                \
	     "  --note TEXT  why\n  --json       print the source (see 'sources show --help')\n"

const cli_command cli_cmds_sources[] = {
	{"sources", "request", CMD_STORE_SIGN, cmd_request,
	 "sources request NAME PATTERN [--kind https|http|file] [--trust high|standard|low] [--labels a,b]"
	 " [--allow-private] [--seed URL]... [--by WHO] [--reason TEXT] [--json]",
	 "ask for a new source; prints its id (state 'requested')",
	 "PATTERN is a URL prefix (https://docs.example.com/guide/), a host with its\n"
	 "subdomains (https://*.example.com/) or, with --kind file, a directory. URLs are\n"
	 "canonicalized (lowercase host, punycode, no default port, no userinfo, no\n"
	 "fragment). Prefixes match on path segments: https://a.com/docs does not cover\n"
	 "https://a.com/docs-evil.\n\n"
	 "  --kind K         https (default for URLs), http (plaintext allowed), file (default for paths)\n"
	 "  --trust T        high, standard (default) or low\n"
	 "  --labels a,b     access labels (lowercase letters, digits, '-', '_', '.')\n"
	 "  --allow-private  allow fetching from loopback/private addresses (tests, intranets)\n"
	 "  --seed URL       a page 'ingest --all' fetches besides PATTERN (repeatable; must be covered by it)\n"
	 "  --by WHO         the requester (default: the OS user)\n"
	 "  --reason TEXT    why the source is needed\n"
	 "  --json           print the new source (see 'sources show --help') instead of its id\n"},
	{"sources", "approve", CMD_STORE_SIGN, cmd_approve, "sources approve ID [--by WHO] [--note TEXT] [--json]",
	 "approve a requested (or revoked) source",
	 DECIDE_HELP("With the two-person rule (on by default; 'two_person_rule: false' in\n"
		     "HOME/config.yaml turns it off) the approver must differ from the requester.")},
	{"sources", "reject", CMD_STORE_SIGN, cmd_reject, "sources reject ID [--by WHO] [--note TEXT] [--json]",
	 "reject a requested source", DECIDE_HELP("Only a requested source can be rejected.")},
	{"sources", "revoke", CMD_STORE_SIGN, cmd_revoke, "sources revoke ID [--by WHO] [--note TEXT] [--json]",
	 "revoke an approved source; its chunks are withheld at once",
	 DECIDE_HELP("Only an approved source can be revoked; a new approval reverses it.")},
	{"sources", "list", CMD_STORE_RO, cmd_list, "sources list [--state S] [--json]", "list sources",
	 "  --state S  requested, approved, rejected or revoked\n"
	 "  --json     print {\"sources\": [source, ...]} (see 'sources show --help')\n"},
	{"sources", "show", CMD_STORE_RO, cmd_show, "sources show ID [--json]", "show one source", source_json_help},
	{"sources", "import", CMD_STORE_SIGN, cmd_import, "sources import FILE [--by WHO] [--json]",
	 "import the reviewed baseline (rules/sources.yaml format)",
	 "New entries are added as approved; identical entries are left alone; an entry\n"
	 "that differs from the stored source of the same name fails the whole import.\n"
	 "The file's SHA-256 is recorded in the audit event. Format: rules/README.md.\n\n"
	 "  --by WHO   who imports (default: the OS user)\n"
	 "  --json     print {\"file\", \"sha256\", \"added\", \"unchanged\"}\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
