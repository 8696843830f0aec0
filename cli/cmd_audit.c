/*
 * ragward audit log|verify|checkpoint
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "core/banned.h"

static int cmd_log(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"limit", required_argument, NULL, 'n'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	long long limit = WARD_DEFAULT_AUDIT_LIMIT;
	ward_audit_event *ev = NULL;
	size_t n = 0;
	json_t *arr;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n') {
			if (strcmp(optarg, "0") == 0)
				limit = 0;
			else if (cli_parse_id(optarg, &limit) < 0)
				return cli_usage(ctx, "--limit needs a number (0 for all)");
		} else if (c != 'j') {
			return cli_usage(ctx, "bad option for 'audit log'");
		}
	}
	if (optind != argc)
		return cli_usage(ctx, "'audit log' takes no arguments");
	if (ward_audit_list(ctx->store, limit, &ev, &n) < 0)
		return cli_fail(ctx);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *details = json_loads(ev[i].details, JSON_REJECT_DUPLICATES, NULL);
		if (ctx->json) {
			json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:o}", "seq",
							     (json_int_t)ev[i].seq, "time", ev[i].time, "actor",
							     ev[i].actor, "uid", (json_int_t)ev[i].uid, "action",
							     ev[i].action, "subject", ev[i].subject, "details",
							     details ? details : json_string(ev[i].details)));
		} else {
			char *actor = cli_escape(ev[i].actor), *subject = cli_escape(ev[i].subject),
			     *d = cli_escape(ev[i].details);
			cli_say("%6lld  %s  %-16s %-14s %s (uid %ld)  %s", (long long)ev[i].seq, ev[i].time, ev[i].action,
				subject ? subject : "?", actor ? actor : "?", ev[i].uid, d ? d : "?");
			ward_free(actor);
			ward_free(subject);
			ward_free(d);
			json_decref(details);
		}
	}
	ward_audit_events_free(ev, n);
	if (ctx->json)
		return cli_print_json(json_pack("{s:o}", "events", arr));
	json_decref(arr);
	return WARD_EXIT_OK;
}

static int cmd_verify(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"checkpoint", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *checkpoint = NULL;
	ward_audit_report rep;
	json_t *fails;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			checkpoint = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'audit verify'");
	}
	if (optind != argc)
		return cli_usage(ctx, "'audit verify' takes no arguments");
	if (ward_audit_verify(ctx->store, checkpoint, &rep) < 0)
		return cli_fail(ctx);
	fails = json_array();
	for (size_t i = 0; i < rep.nfailures; i++) {
		cli_say("FAIL %s: %s", rep.failures[i].object, rep.failures[i].problem);
		json_array_append_new(fails, json_pack("{s:s, s:s}", "object", rep.failures[i].object, "problem",
						       rep.failures[i].problem));
	}
	if (rep.nfailures == 0)
		cli_say("audit log ok: %llu events, %llu checkpoints, %d anchor(s) checked",
			(unsigned long long)rep.events, (unsigned long long)rep.checkpoints, rep.anchors_checked);
	else
		cli_say("audit log FAILED verification: %zu problem(s)", rep.nfailures);
	rc = rep.nfailures ? WARD_EXIT_FAIL : WARD_EXIT_OK;
	if (ctx->json) {
		int prc = cli_print_json(json_pack("{s:b, s:I, s:I, s:i, s:o}", "ok", rep.nfailures == 0, "events",
						   (json_int_t)rep.events, "checkpoints", (json_int_t)rep.checkpoints,
						   "anchors_checked", rep.anchors_checked, "failures", fails));
		if (prc)
			rc = prc;
	} else {
		json_decref(fails);
	}
	ward_audit_report_dispose(&rep);
	return rc;
}

static int write_file_atomic(const char *path, const char *text)
{
	char tmp[WARD_MAX_PATH_LEN + 16];
	size_t len = strlen(text);
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ward_error_set(WARD_ETOOBIG, "path '%s' is too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return ward_error_set(WARD_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return ward_error_set(WARD_EIO, "writing '%s': %s", tmp, strerror(e));
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return ward_error_set(WARD_EIO, "renaming to '%s': %s", path, strerror(e));
	}
	return 0;
}

static int cmd_checkpoint(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	const char *out = NULL;
	ward_checkpoint cp;
	char *text = NULL, root[65];
	int c, rc = WARD_EXIT_OK;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c != 'j')
			return cli_usage(ctx, "bad option for 'audit checkpoint'");
	}
	if (optind != argc)
		return cli_usage(ctx, "'audit checkpoint' takes no arguments");
	if (ward_audit_checkpoint(ctx->store, &cp) < 0 || ward_checkpoint_format(&text, &cp) < 0)
		return cli_fail(ctx);
	if (out && write_file_atomic(out, text) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}
	ward_hex_encode_to(root, cp.root, sizeof(cp.root));
	cli_say("checkpoint: %llu events, root %s, signed by %s%s%s", (unsigned long long)cp.size, root, cp.key_id,
		out ? ", written to " : "", out ? out : "");
	if (ctx->json)
		rc = cli_print_json(json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "store_id", cp.store_id, "tree_size",
					      (json_int_t)cp.size, "root", root, "time", cp.time, "key_id", cp.key_id,
					      "text", text));
	else if (!out)
		fputs(text, stdout);
done:
	ward_free(text);
	return rc;
}

const cli_command cli_cmds_audit[] = {
	{"audit", "log", CMD_STORE_RO, cmd_log, "audit log [--limit N] [--json]", "show the latest audit events",
	 "  --limit N  the last N events (default 50; 0 for all)\n"
	 "  --json     print {\"events\": [{\"seq\", \"time\", \"actor\", \"uid\", \"action\", \"subject\", \"details\"}]}\n"},
	{"audit", "verify", CMD_STORE_RO, cmd_verify, "audit verify [--checkpoint FILE] [--json]",
	 "recompute the Merkle log and check every checkpoint; exit 1 on tampering",
	 "Checks event sequence numbers, every event's leaf hash, every stored checkpoint\n"
	 "(signature, root at its size, no shrinking, no split view), that the log is\n"
	 "fully covered by a signed checkpoint, and that it still extends HOME/anchor.checkpoint\n"
	 "and, with --checkpoint, an exported checkpoint kept elsewhere.\n\n"
	 "  --checkpoint FILE  a checkpoint exported earlier with 'audit checkpoint --out'\n"
	 "  --json             print {\"ok\", \"events\", \"checkpoints\", \"anchors_checked\",\n"
	 "                     \"failures\": [{\"object\", \"problem\"}]}\n"},
	{"audit", "checkpoint", CMD_STORE_RO, cmd_checkpoint, "audit checkpoint [--out FILE] [--json]",
	 "print (or write) the latest signed checkpoint to keep outside the store",
	 "Keep the exported file somewhere the store's host cannot rewrite; 'audit verify\n"
	 "--checkpoint FILE' then detects truncation or a restored older database.\n\n"
	 "  --out FILE  write the checkpoint to FILE instead of stdout\n"
	 "  --json      print {\"store_id\", \"tree_size\", \"root\", \"time\", \"key_id\", \"text\"}\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
