/*
 * ragward serve: the HTTP/JSON retrieval server in the foreground. Signals
 * are taken synchronously (sigwait in the main thread, blocked everywhere
 * else): SIGTERM/SIGINT stop gracefully, SIGHUP reopens the store (which
 * the server checks again before it answers from it).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ragward/alloc.h"
#include "ragward/log.h"
#include "ragward/server.h"
#include "cli/cli.h"
#include "core/banned.h"

/* Registered in cli/main.c's groups[] (declared in cli/cli.h). */
extern const cli_command cli_cmds_serve[];

static void log_json_line(void *ctx, ward_log_level level, const char *msg)
{
	char now[32];
	json_t *o;
	char *line;

	(void)ctx;
	ward_now_rfc3339(now);
	o = json_pack("{s:s, s:s, s:s}", "time", now, "level", ward_log_level_name(level), "msg", msg);
	line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	if (line) {
		fprintf(stderr, "%s\n", line);
		ward_free(line);
	}
	json_decref(o);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	long long v;

	if (cli_parse_id(s, &v) < 0 || v > (long long)max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int cmd_serve(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
	                                     {"unix", required_argument, NULL, 'u'},
	                                     {"allow-remote", no_argument, NULL, 'r'},
	                                     {"threads", required_argument, NULL, 't'},
	                                     {"json-log", no_argument, NULL, 'J'},
	                                     {"allow-host", required_argument, NULL, 'H'},
	                                     {"timeout", required_argument, NULL, 'T'},
	                                     {"max-connections", required_argument, NULL, 'c'},
	                                     {"max-per-ip", required_argument, NULL, 'p'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {NULL, 0, NULL, 0}};
	ward_server_opts o;
	ward_server *srv = NULL;
	sigset_t set;
	int c, sig = 0, json_log = 0;

	ward_server_opts_init(&o);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o.listen = optarg;
			break;
		case 'u':
			o.unix_path = optarg;
			break;
		case 'r':
			o.allow_remote = 1;
			break;
		case 't':
			if (parse_uint(optarg, 256, &o.threads) < 0)
				return cli_usage(ctx, "--threads must be between 1 and 256");
			break;
		case 'T':
			if (parse_uint(optarg, 3600, &o.timeout_s) < 0)
				return cli_usage(ctx, "--timeout must be between 1 and 3600 seconds");
			break;
		case 'c':
			if (parse_uint(optarg, 100000, &o.conn_limit) < 0)
				return cli_usage(ctx, "--max-connections must be between 1 and 100000");
			break;
		case 'p':
			if (parse_uint(optarg, 100000, &o.per_ip_limit) < 0)
				return cli_usage(ctx, "--max-per-ip must be between 1 and 100000");
			break;
		case 'H':
			o.extra_hosts = optarg;
			break;
		case 'J':
			json_log = 1;
			break;
		case 'j':
			break;
		default:
			return cli_usage(ctx, "bad option for 'serve'");
		}
	}
	if (optind != argc)
		return cli_usage(ctx, "'serve' takes no arguments");
	if (o.listen && o.unix_path)
		return cli_usage(ctx, "give --listen or --unix, not both");
	if (json_log)
		ward_log_set_sink(log_json_line, NULL, WARD_LOG_INFO);

	/* Block the signals before any thread exists, so that every thread
	 * the server starts inherits the mask and only sigwait sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Before it listens, the server checks the store (quick_check, the
	 * audit log against HOME's anchor) and refuses one that was rolled
	 * back, truncated or edited: WARD_EVERIFY, exit 1, each failure on a
	 * security log line. It checks again at each SIGHUP and each replaced
	 * database file, and refuses to serve from then on (T49). */
	if (ward_server_start(&srv, ctx->home, &o) < 0)
		return cli_fail(ctx);
	if (o.unix_path)
		printf("unix:%s\n", o.unix_path);
	else
		printf("http://127.0.0.1:%u\n", (unsigned)ward_server_port(srv));
	fflush(stdout);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			ward_log(WARD_LOG_INFO, "SIGHUP: reopening the store and its configuration");
			ward_server_reload(srv);
			continue;
		}
		break;
	}
	ward_log(WARD_LOG_INFO, "%s: finishing requests in flight, then stopping",
	         sig == SIGINT ? "SIGINT" : "SIGTERM");
	ward_server_stop(srv);
	return WARD_EXIT_OK;
}

const cli_command cli_cmds_serve[] = {
        {NULL, "serve", CMD_NO_STORE, cmd_serve,
         "serve [--listen HOST:PORT | --unix PATH] [--allow-remote] [--allow-host NAME,...] [--threads N]"
         " [--timeout S] [--max-connections N] [--max-per-ip N] [--json-log]",
         "serve retrieval over HTTP/JSON (docs/http-api.md)",
         "Listens on 127.0.0.1:8411 unless told otherwise and prints the URL on stdout.\n"
         "Every /v1 endpoint and /metrics need 'Authorization: Bearer TOKEN' of a caller\n"
         "('ragward callers add'). SIGTERM or SIGINT stop after the requests in flight;\n"
         "SIGHUP reopens the store and re-reads HOME/config.yaml. Before it listens it\n"
         "runs SQLite's quick_check and the audit-log verification (with HOME's anchor):\n"
         "a store that was rolled back, truncated or edited is not served (exit 1). The\n"
         "check runs again before a reopened or replaced store answers, and every request\n"
         "checks that the audit log did not shrink; a failure makes /v1, /mcp and /healthz\n"
         "answer 503 until a restart (see 'ragward audit verify', 'ragward verify').\n"
         "MCP over Streamable HTTP is at /mcp (docs/mcp.md).\n\n"
         "  --listen HOST:PORT     TCP address (default 127.0.0.1:8411; port 0 picks a free one)\n"
         "  --unix PATH            listen on a unix socket (created 0660) instead\n"
         "  --allow-remote         permit a non-loopback address (callers still need tokens)\n"
         "  --allow-host NAME,...  extra Host names accepted (with the port), for --allow-remote\n"
         "  --threads N            worker threads (default 4)\n"
         "  --timeout S            idle/header timeout per connection (default 10)\n"
         "  --max-connections N    connections in total (default 256)\n"
         "  --max-per-ip N         connections per client address (default 64)\n"
         "  --json-log             log one JSON object per line on stderr\n"},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
