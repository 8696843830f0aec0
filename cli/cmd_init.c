/*
 * ragward init: create a store and its first signing key.
 */
#include <getopt.h>
#include <stdio.h>

#include "ragward/store.h"
#include "cli/cli.h"
#include "core/banned.h"

static int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"by", required_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	const char *by = NULL;
	char key_id[33], namebuf[256];
	ward_actor who;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			by = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'init'");
	}
	if (optind != argc)
		return cli_usage(ctx, "'init' takes no arguments");
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	if (ward_store_init_home(ctx->home, &who, key_id) < 0)
		return cli_fail(ctx);
	cli_say("initialised store in '%s' with signing key %s", ctx->home, key_id);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s}", "home", ctx->home, "key_id", key_id));
	return WARD_EXIT_OK;
}

const cli_command cli_cmds_init[] = {
	{NULL, "init", CMD_NO_STORE, cmd_init, "init [--by WHO] [--json]",
	 "create a store and an Ed25519 signing key in the home directory",
	 "Creates HOME (0700) with store.db, keys/<key_id>.key (0600) and the first audit\n"
	 "events. Refuses, changing nothing, when HOME already holds a store.\n\n"
	 "  --by WHO   who performs the change (default: the OS user)\n"
	 "  --json     print {\"home\", \"key_id\"} on stdout\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
