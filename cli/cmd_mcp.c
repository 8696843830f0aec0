/*
 * ragward mcp: the MCP tool server over stdio. Newline-delimited JSON-RPC
 * messages on stdin, one response line each on stdout, logs on stderr only
 * (stdout belongs to the protocol). docs/mcp.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/buf.h"
#include "ragward/callers.h"
#include "ragward/log.h"
#include "ragward/mcp.h"
#include "ragward/retrieve.h"
#include "ragward/traces.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "core/banned.h"

/* Registered in cli/main.c's groups[] (declared in cli/cli.h). */
extern const cli_command cli_cmds_mcp[];

static int write_line(const char *text)
{
	return fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0 ? -1 : 0;
}

/*
 * Reads one line into b (without the newline; a trailing CR is dropped).
 * Returns 1 for a line, 0 at EOF with nothing read, -1 on a read error.
 * *oversized is set when the line exceeded the buffer's cap: the rest of it
 * was read and thrown away.
 */
static int read_line(FILE *in, ward_buf *b, int *oversized)
{
	int c, any = 0;

	ward_buf_reset(b);
	*oversized = 0;
	while ((c = getc(in)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (!*oversized && ward_buf_putc(b, (char)c) < 0)
			*oversized = 1;
	}
	if (c == EOF && ferror(in))
		return -1;
	if (!any)
		return 0;
	if (!*oversized && b->len && b->ptr[b->len - 1] == '\r')
		b->len--;
	return 1;
}

/*
 * T49 on stdio: before it answers, the store passes the check `ragward
 * serve` runs (quick_check, the audit log against its checkpoints and HOME's
 * anchor). *high becomes the log size no later read may fall below.
 */
static int startup_check(cli_ctx *ctx, uint64_t *high)
{
	ward_audit_report rep;
	uint64_t anchor = 0;
	int rc;

	if (ward_audit_serve_check(ctx->store, &rep, &anchor) < 0) {
		ward_audit_report_dispose(&rep);
		return cli_fail(ctx);
	}
	for (size_t i = 0; i < rep.nfailures; i++)
		cli_say("ragward mcp: audit: %s: %s", rep.failures[i].object, rep.failures[i].problem);
	rc = rep.nfailures ? WARD_EXIT_FAIL : WARD_EXIT_OK;
	if (rc)
		cli_say("ragward mcp: the store failed its audit check; refusing to serve (see 'ragward audit verify'"
			" and 'ragward verify')");
	*high = anchor > rep.events ? anchor : rep.events;
	ward_audit_report_dispose(&rep);
	return rc;
}

/*
 * After each message, before its answer is written: the audit log the
 * connection sees must not have shrunk below *high (a rollback or tail
 * truncation in place, under the open connection). The process has no
 * reload; a database file replaced under it is not read at all (the
 * connection keeps the file it opened). Returns 0, WARD_EXIT_FAIL when the
 * log shrank (refuse: the answer is dropped and the session ends; the next
 * start checks again) or the exit code of an error.
 */
static int log_guard(cli_ctx *ctx, uint64_t *high)
{
	int64_t size = 0;
	uint64_t seen;
	int found = 0;

	if (ward_store_checkpoint_size(ctx->store, &size, &found) < 0)
		return cli_fail(ctx);
	seen = found && size > 0 ? (uint64_t)size : 0;
	if (seen < *high) {
		ward_log(WARD_LOG_SECURITY,
			 "mcp: the audit log's latest checkpoint covers %llu events, fewer than the %llu seen before"
			 " (rolled back or truncated in place); refusing to serve",
			 (unsigned long long)seen, (unsigned long long)*high);
		cli_say("ragward mcp: the store failed its audit check; refusing to serve (see 'ragward audit verify'"
			" and 'ragward verify')");
		return WARD_EXIT_FAIL;
	}
	*high = seen;
	return 0;
}

static int cmd_mcp(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"label", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0}};
	const char *labels[WARD_MAX_LABELS];
	ward_mcp_identity who;
	ward_mcp_session *sess = NULL;
	ward_actor os;
	ward_caller tc;
	ward_buf line;
	char namebuf[256], caller[300];
	const char *token = getenv("RAGWARD_MCP_TOKEN");
	const char **tlabels = NULL;
	json_t *tlabels_json = NULL;
	uint64_t high = 0;
	int c, rc = WARD_EXIT_OK;

	memset(&tc, 0, sizeof(tc));
	memset(&line, 0, sizeof(line));

	memset(&who, 0, sizeof(who));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (who.nlabels == WARD_MAX_LABELS)
				return cli_usage(ctx, "at most %d --label options", WARD_MAX_LABELS);
			labels[who.nlabels++] = optarg;
			break;
		default:
			return cli_usage(ctx, "bad option for 'mcp'");
		}
	}
	if (optind < argc)
		return cli_usage(ctx, "'mcp' takes no arguments");
	if ((rc = startup_check(ctx, &high)) != WARD_EXIT_OK)
		return rc;
	if (token && *token) {
		/* The agent runs as a registered caller: it sees what that
		 * caller's labels allow, exactly as over HTTP. */
		if (who.nlabels)
			return cli_usage(ctx, "--label cannot be combined with RAGWARD_MCP_TOKEN");
		if (ward_callers_authenticate(ctx->store, token, strlen(token), &tc) < 0 ||
		    ward_caller_labels(&tc, &tlabels_json, &tlabels, &who.nlabels) < 0) {
			rc = cli_fail(ctx);
			goto done;
		}
		who.labels = tlabels;
		who.all_labels = 0;
		snprintf(caller, sizeof(caller), "mcp-stdio:token:%s", tc.name);
	} else {
		/* The local operator, who can read the store file anyway: every
		 * label unless --label narrows the view (as `ragward query`). */
		who.labels = labels;
		who.all_labels = who.nlabels == 0;
		cli_actor(&os, NULL, namebuf, sizeof(namebuf));
		snprintf(caller, sizeof(caller), "mcp-stdio:%s", os.name);
	}
	who.caller = caller;
	if (ward_mcp_session_new(&sess, &who) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}

	cli_say("ragward mcp: serving MCP on stdio (store %s, %s)", ctx->home,
		token && *token ? "caller token" : who.all_labels ? "all labels: local operator" : "labels from --label");
	ward_buf_init(&line, WARD_MCP_MAX_MESSAGE);
	for (;;) {
		char *response = NULL;
		int oversized, r = read_line(stdin, &line, &oversized);

		if (r == 0)
			break;
		if (r < 0) {
			cli_say("ragward mcp: cannot read stdin: %s", strerror(errno));
			rc = WARD_EXIT_ERROR;
			break;
		}
		if (oversized) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,"
				 "\"message\":\"message larger than %d bytes\"}}",
				 WARD_MCP_MAX_MESSAGE);
			cli_say("ragward mcp: dropped a message larger than %d bytes", WARD_MCP_MAX_MESSAGE);
			if (write_line(msg) < 0)
				goto write_failed;
			continue;
		}
		if (line.len == 0)
			continue;
		if (ward_mcp_handle(sess, ctx->store, line.ptr, line.len, &response) < 0) {
			rc = cli_fail(ctx);
			break;
		}
		if ((rc = log_guard(ctx, &high)) != 0) {
			ward_free(response);
			break;
		}
		if (response && write_line(response) < 0) {
			ward_free(response);
			goto write_failed;
		}
		ward_free(response);
		/* One agent, one request at a time: nothing batches up behind this
		 * answer, so its trace record is made durable now instead of waiting
		 * for the next request or the end of stdin. */
		if (ward_trace_unsynced() > 0 && ward_trace_flush() < 0)
			cli_say("ragward mcp: cannot sync the trace file: %s", ward_error_last()->message);
	}
	goto done;
write_failed:
	cli_say("ragward mcp: cannot write stdout: %s", strerror(errno));
	rc = WARD_EXIT_ERROR;
done:
	ward_buf_dispose(&line);
	ward_mcp_session_free(sess);
	ward_free(tlabels);
	json_decref(tlabels_json);
	ward_caller_dispose(&tc);
	return rc;
}

const cli_command cli_cmds_mcp[] = {
	{NULL, "mcp", CMD_STORE_RO, cmd_mcp, "mcp [--label L]...",
	 "serve the search and fetch tools over MCP on stdin/stdout",
	 "Speaks the Model Context Protocol (JSON-RPC 2.0, one message per line) on\n"
	 "stdin and stdout, for an agent that starts ragward as a local tool server.\n"
	 "Tools: 'search' (verified, citation-tagged passages) and 'fetch' (one passage\n"
	 "by id). Logs go to stderr only. Exits 0 at the end of stdin.\n\n"
	 "Like 'ragward serve' it first runs SQLite's quick_check and the audit-log\n"
	 "verification (with HOME's anchor) and refuses a rolled-back, truncated or\n"
	 "edited store (exit 1); an audit log that shrinks while it runs ends it (exit 1).\n\n"
	 "stdio is for a local, trusted agent running as the operator: it sees every\n"
	 "source unless --label or RAGWARD_MCP_TOKEN narrows it. Remote agents use 'ragward serve' (POST /mcp)\n"
	 "with a caller token. Every search and fetch appends a trace to\n"
	 "the trace sink (HOME/traces.jsonl by default). docs/mcp.md has the details.\n\n"
	 "  --label L   see only public sources and sources labelled L (repeatable)\n\n"
	 "Environment: RAGWARD_MCP_TOKEN=TOKEN runs the session as that caller\n"
	 "('ragward callers add'): it sees only what the caller's labels allow, and\n"
	 "traces name it.\n\n"
	 "Register it with an MCP client, e.g.:\n"
	 "  {\"command\": \"ragward\", \"args\": [\"--home\", \"/path/to/home\", \"mcp\"]}\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
