/*
 * ragward keys list|rotate|export
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/keys.h"
#include "cli/cli.h"
#include "core/banned.h"

static int parse_simple(cli_ctx *ctx, int argc, char **argv, const char *name, const char **by)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"by", required_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b' && by)
			*by = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for '%s'", name);
	}
	return 0;
}

static int cmd_list(cli_ctx *ctx, int argc, char **argv)
{
	ward_key_info *keys = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	if ((rc = parse_simple(ctx, argc, argv, "keys list", NULL)) != 0)
		return rc;
	if (optind != argc)
		return cli_usage(ctx, "'keys list' takes no arguments");
	if (ward_keys_list(ctx->store, &keys, &n) < 0)
		return cli_fail(ctx);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char pub[2 * WARD_ED25519_PUB_LEN + 1];
		ward_hex_encode_to(pub, keys[i].public_key, WARD_ED25519_PUB_LEN);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?, s:s}", "key_id", keys[i].key_id, "state",
						     keys[i].state, "created_at", keys[i].created_at, "retired_at",
						     keys[i].retired_at, "public_key", pub));
		cli_say("%s  %-7s  created %s%s%s", keys[i].key_id, keys[i].state, keys[i].created_at,
			keys[i].retired_at ? "  retired " : "", keys[i].retired_at ? keys[i].retired_at : "");
	}
	ward_keys_free(keys, n);
	if (ctx->json)
		return cli_print_json(json_pack("{s:o}", "keys", arr));
	json_decref(arr);
	return WARD_EXIT_OK;
}

static int cmd_rotate(cli_ctx *ctx, int argc, char **argv)
{
	const char *by = NULL;
	char namebuf[256], old[33], id[33];
	ward_actor who;
	int rc;

	if ((rc = parse_simple(ctx, argc, argv, "keys rotate", &by)) != 0)
		return rc;
	if (optind != argc)
		return cli_usage(ctx, "'keys rotate' takes no arguments");
	cli_actor(&who, by, namebuf, sizeof(namebuf));
	snprintf(old, sizeof(old), "%s", ward_store_key_id(ctx->store));
	if (ward_keys_rotate(ctx->store, &who, id) < 0)
		return cli_fail(ctx);
	cli_say("rotated signing key: %s -> %s (the old key stays known, retired)", old, id);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s}", "key_id", id, "previous_key_id", old));
	return WARD_EXIT_OK;
}

static int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
	ward_key_info *keys = NULL;
	json_t *arr = NULL;
	size_t n = 0, shown = 0;
	const char *want = NULL;
	int rc = WARD_EXIT_OK;

	if ((rc = parse_simple(ctx, argc, argv, "keys export", NULL)) != 0)
		return rc;
	if (argc - optind > 1)
		return cli_usage(ctx, "'keys export' takes at most one KEY_ID");
	if (optind < argc)
		want = argv[optind];
	if (ward_keys_list(ctx->store, &keys, &n) < 0)
		return cli_fail(ctx);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		ward_key *k = NULL;
		char *pem = NULL;
		size_t len = 0;

		if (want ? strcmp(want, keys[i].key_id) != 0 : strcmp(keys[i].state, "active") != 0)
			continue;
		if (ward_key_from_public(&k, keys[i].public_key) < 0 || ward_key_public_pem(k, &pem, &len) < 0) {
			ward_key_free(k);
			rc = cli_fail(ctx);
			goto done;
		}
		if (ctx->json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "key_id", keys[i].key_id, "state",
							     keys[i].state, "public_key_pem", pem));
		else
			fputs(pem, stdout);
		shown++;
		ward_free(pem);
		ward_key_free(k);
	}
	if (!shown) {
		ward_error_set(WARD_ENOTFOUND, "no key '%s' in this store", want ? want : "(active)");
		rc = cli_fail(ctx);
		goto done;
	}
	if (ctx->json) {
		rc = cli_print_json(json_pack("{s:O}", "keys", arr));
	}
done:
	json_decref(arr);
	ward_keys_free(keys, n);
	return rc;
}

const cli_command cli_cmds_keys[] = {
	{"keys", "list", CMD_STORE_RO, cmd_list, "keys list [--json]", "list signing keys, active and retired",
	 "  --json   print {\"keys\": [{\"key_id\", \"state\", \"created_at\", \"retired_at\", \"public_key\"}]}\n"},
	{"keys", "rotate", CMD_STORE_SIGN, cmd_rotate, "keys rotate [--by WHO] [--json]",
	 "create a new signing key and retire the current one",
	 "The old public key is kept so old signatures still verify; the audit event\n"
	 "carries the old key's signature over the new public key.\n\n"
	 "  --by WHO   who performs the change (default: the OS user)\n"
	 "  --json     print {\"key_id\", \"previous_key_id\"}\n"},
	{"keys", "export", CMD_STORE_RO, cmd_export, "keys export [KEY_ID] [--json]",
	 "print a public key (PEM) to verify signatures independently",
	 "Without KEY_ID, exports the active key.\n\n"
	 "  --json   print {\"keys\": [{\"key_id\", \"state\", \"public_key_pem\"}]}\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
