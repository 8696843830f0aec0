/*
 * ragward callers add|list|revoke: the bearer tokens of the retrieval server.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/callers.h"
#include "ragward/crypto.h"
#include "cli/cli.h"
#include "core/banned.h"

/* Registered in cli/main.c's groups[] (declared in cli/cli.h). */
extern const cli_command cli_cmds_callers[];

static json_t *caller_json(const ward_caller *c)
{
	json_t *labels = json_loads(c->labels ? c->labels : "[]", 0, NULL);

	return json_pack("{s:I, s:s, s:o, s:s, s:s, s:s?}", "id", (json_int_t)c->id, "name", c->name, "labels",
	                 labels ? labels : json_array(), "state", c->state, "created_at",
	                 c->created_at ? c->created_at : "", "revoked_at", c->revoked_at);
}

static int parse_common(cli_ctx *ctx, int argc, char **argv, const char **labels, const char **by, int allow_labels)
{
	static const struct option opts[] = {{"labels", required_argument, NULL, 'l'},
	                                     {"by", required_argument, NULL, 'b'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (!allow_labels)
				return cli_usage(ctx, "--labels is only for 'callers add'");
			*labels = optarg;
			break;
		case 'b':
			*by = optarg;
			break;
		case 'j':
			break;
		default:
			return cli_usage(ctx, "bad option");
		}
	}
	return 0;
}

static int cmd_add(cli_ctx *ctx, int argc, char **argv)
{
	const char *labels = NULL, *by = NULL;
	char token[WARD_CALLER_TOKEN_LEN + 1], namebuf[256];
	ward_actor who;
	ward_caller c;
	json_t *obj;
	int rc;

	if ((rc = parse_common(ctx, argc, argv, &labels, &by, 1)) != 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage(ctx, "usage: ragward callers add NAME [--labels a,b] [--by WHO] [--json]");
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if (ward_callers_add(ctx->store, &who, argv[optind], labels, token, &c) < 0)
		return cli_fail(ctx);
	if (ctx->json) {
		obj = caller_json(&c);
		if (obj && json_object_set_new(obj, "token", json_string(token)) != 0) {
			json_decref(obj);
			obj = NULL;
		}
		rc = cli_print_json(obj);
	} else {
		cli_say("caller '%s' (id %lld) added with labels %s; its token is shown this once:", c.name,
		        (long long)c.id, c.labels);
		rc = printf("%s\n", token) < 0 || fflush(stdout) != 0 ? WARD_EXIT_ERROR : WARD_EXIT_OK;
	}
	ward_wipe(token, sizeof(token));
	ward_caller_dispose(&c);
	return rc;
}

static int cmd_list(cli_ctx *ctx, int argc, char **argv)
{
	const char *labels = NULL, *by = NULL;
	ward_caller *list = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	if ((rc = parse_common(ctx, argc, argv, &labels, &by, 0)) != 0)
		return rc;
	if (optind != argc || by)
		return cli_usage(ctx, "usage: ragward callers list [--json]");
	if (ward_callers_list(ctx->store, &list, &n) < 0)
		return cli_fail(ctx);
	if (ctx->json) {
		arr = json_array();
		for (size_t i = 0; arr && i < n; i++)
			if (json_array_append_new(arr, caller_json(&list[i])) != 0) {
				json_decref(arr);
				arr = NULL;
			}
		rc = cli_print_json(arr ? json_pack("{s:o}", "callers", arr) : NULL);
	} else {
		if (n == 0)
			cli_say("no callers yet: add one with 'ragward callers add NAME'");
		for (size_t i = 0; i < n; i++)
			cli_say("%-4lld %-8s %-24s %s", (long long)list[i].id, list[i].state, list[i].name,
			        list[i].labels);
		rc = WARD_EXIT_OK;
	}
	ward_callers_free(list, n);
	return rc;
}

static int cmd_revoke(cli_ctx *ctx, int argc, char **argv)
{
	const char *labels = NULL, *by = NULL;
	char namebuf[256];
	ward_actor who;
	ward_caller c;
	int rc;

	if ((rc = parse_common(ctx, argc, argv, &labels, &by, 0)) != 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage(ctx, "usage: ragward callers revoke ID|NAME [--by WHO] [--json]");
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if (ward_callers_revoke(ctx->store, &who, argv[optind], &c) < 0)
		return cli_fail(ctx);
	if (ctx->json)
		rc = cli_print_json(caller_json(&c));
	else {
		cli_say("caller '%s' (id %lld) revoked; its token no longer works", c.name, (long long)c.id);
		rc = WARD_EXIT_OK;
	}
	ward_caller_dispose(&c);
	return rc;
}

const cli_command cli_cmds_callers[] = {
        {"callers", "add", CMD_STORE_SIGN, cmd_add, "callers add NAME [--labels a,b] [--by WHO] [--json]",
         "add a caller of the retrieval server and print its token once",
         "The token (\"rwd_\" + 64 hex digits, 256 random bits) is printed on stdout this\n"
         "once; the store keeps only its SHA-256. The caller sees chunks of unlabelled\n"
         "sources and of sources sharing one of its labels.\n\n"
         "  --labels a,b  the labels this caller may see (lowercase letters, digits, '-', '_', '.')\n"
         "  --by WHO      who adds it (default: the OS user)\n"
         "  --json        print {\"id\", \"name\", \"labels\", \"state\", \"created_at\", \"token\"}\n"},
        {"callers", "list", CMD_STORE_RO, cmd_list, "callers list [--json]", "list callers (never their tokens)",
         "  --json  print {\"callers\": [{\"id\", \"name\", \"labels\", \"state\", \"created_at\", "
         "\"revoked_at\"}]}\n"},
        {"callers", "revoke", CMD_STORE_SIGN, cmd_revoke, "callers revoke ID|NAME [--by WHO] [--json]",
         "revoke a caller; its token stops working at the next request",
         "  --by WHO  who revokes it (default: the OS user)\n"
         "  --json    print the caller\n"},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
