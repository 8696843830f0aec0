/*
 * ragward ingest: fetch, gate, extract, scan, chunk, sign and store
 * documents from approved sources. Built for cron: one run per home at a
 * time (flock), idempotent, clear exit codes, a JSON summary.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "ragward/ingest.h"
#include "ragward/scan.h"
#include "ragward/sources.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "core/banned.h"

#define MAX_JOBS 16

typedef struct {
	const char *home;
	char **targets;
	size_t ntargets;
	ward_ingest_item *items;
	const ward_ingest_opts *opts;
	const ward_actor *who;
	size_t next, done;
	int fatal;           /* a store error stopped the run */
	ward_error fatal_err;
	int progress;        /* draw a progress bar on stderr */
	pthread_mutex_t mu;
} run_state;

static void progress_draw(run_state *r, const char *target)
{
	const int width = 30;
	int filled = r->ntargets ? (int)(r->done * (size_t)width / r->ntargets) : width;
	char *shown = cli_escape(target);

	fprintf(stderr, "\r\033[K[%.*s%*s] %zu/%zu %.60s", filled, "##############################", width - filled,
		"", r->done, r->ntargets, shown ? shown : "");
	if (r->done == r->ntargets)
		fputc('\n', stderr);
	fflush(stderr);
	ward_free(shown);
}

/* One worker: its own store connection, so transactions never interleave on
 * a connection; SQLite's BEGIN IMMEDIATE serialises the writers. */
static void *worker(void *arg)
{
	run_state *r = arg;
	ward_store *s = NULL;

	if (ward_store_open(&s, r->home, WARD_STORE_SIGN) < 0) {
		pthread_mutex_lock(&r->mu);
		if (!r->fatal) {
			r->fatal = 1;
			r->fatal_err = *ward_error_last();
		}
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	ward_store_defer_anchor(s, 1); /* refreshed once, when this worker closes its store */
	for (;;) {
		size_t i;
		int rc;

		pthread_mutex_lock(&r->mu);
		i = r->fatal ? r->ntargets : r->next++;
		pthread_mutex_unlock(&r->mu);
		if (i >= r->ntargets)
			break;
		rc = ward_ingest_one(s, r->who, r->targets[i], r->opts, &r->items[i]);
		pthread_mutex_lock(&r->mu);
		if (rc < 0 && !r->fatal) {
			r->fatal = 1;
			r->fatal_err = *ward_error_last();
		}
		r->done++;
		if (r->progress)
			progress_draw(r, r->targets[i]);
		pthread_mutex_unlock(&r->mu);
	}
	ward_store_close(s);
	return NULL;
}

/* Appends `add` to the target list (taking ownership of the strings). */
static int targets_append(char ***list, size_t *n, char **add, size_t nadd)
{
	char **grown;

	if (*n + nadd > WARD_MAX_BATCH_TARGETS)
		return ward_error_set(WARD_ETOOBIG, "more than %d targets in one run", WARD_MAX_BATCH_TARGETS);
	if (!(grown = ward_realloc(*list, (*n + nadd + 1) * sizeof(*grown))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	*list = grown;
	memcpy(grown + *n, add, nadd * sizeof(*add));
	*n += nadd;
	return 0;
}

static int add_source_targets(cli_ctx *ctx, int64_t id, char ***list, size_t *n)
{
	char **t = NULL;
	size_t nt = 0;

	if (ward_ingest_source_targets(ctx->store, id, &t, &nt) < 0)
		return -1;
	if (targets_append(list, n, t, nt) < 0) {
		ward_ingest_targets_free(t, nt);
		return -1;
	}
	ward_free(t);
	return 0;
}

static int cmd_ingest(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, 'a'},          {"manifest", required_argument, NULL, 'm'},
		{"jobs", required_argument, NULL, 'j'},   {"json", no_argument, NULL, 'J'},
		{"ca-file", required_argument, NULL, 'c'}, {"rules", required_argument, NULL, 'r'},
		{"by", required_argument, NULL, 'b'},     {"no-keep-bytes", no_argument, NULL, 'k'},
		{NULL, 0, NULL, 0}};
	const char *manifest = NULL, *by = NULL, *rules_dir = NULL;
	char **targets = NULL, namebuf[256];
	size_t ntargets = 0, counts[6] = {0};
	long long jobs = 1;
	int all = 0, c, rc = WARD_EXIT_OK, lock_fd = -1, batch, not_allowed = 0, ids_given = 0;
	ward_ingest_opts io;
	ward_ruleset *rs = NULL;
	ward_actor who;
	run_state r;
	pthread_t threads[MAX_JOBS];
	json_t *items = NULL;

	memset(&io, 0, sizeof(io));
	memset(&r, 0, sizeof(r));
	io.keep_bytes = 1;
	io.ca_file = getenv("RAGWARD_CA_FILE");
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = 1;
			break;
		case 'm':
			manifest = optarg;
			break;
		case 'j':
			if (cli_parse_id(optarg, &jobs) < 0 || jobs > MAX_JOBS)
				return cli_usage(ctx, "--jobs needs a number from 1 to %d", MAX_JOBS);
			break;
		case 'c':
			io.ca_file = optarg;
			break;
		case 'r':
			rules_dir = optarg;
			break;
		case 'b':
			by = optarg;
			break;
		case 'k':
			io.keep_bytes = 0;
			break;
		case 'J':
			break;
		default:
			return cli_usage(ctx, "bad option for 'ingest'");
		}
	}
	if (!all && !manifest && optind == argc)
		return cli_usage(ctx, "nothing to ingest: give URLs, paths or source ids, --all or --manifest FILE");
	cli_actor(&who, by, namebuf, sizeof(namebuf));

	if (ward_ingest_lock(ctx->home, &lock_fd) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}
	/* Expand the targets: explicit ones, source ids, --manifest, --all. */
	for (int i = optind; i < argc; i++) {
		long long id;
		if (cli_parse_id(argv[i], &id) == 0) {
			ids_given = 1;
			if (add_source_targets(ctx, id, &targets, &ntargets) < 0) {
				rc = cli_fail(ctx);
				goto done;
			}
		} else {
			char *t = ward_strdup(argv[i]);
			if (!t || targets_append(&targets, &ntargets, &t, 1) < 0) {
				ward_free(t);
				ward_error_set(WARD_ENOMEM, "out of memory");
				rc = cli_fail(ctx);
				goto done;
			}
		}
	}
	if (manifest) {
		char **t = NULL;
		size_t nt = 0;
		if (ward_ingest_manifest_targets(manifest, &t, &nt) < 0 || targets_append(&targets, &ntargets, t, nt) < 0) {
			ward_ingest_targets_free(t, nt);
			rc = cli_fail(ctx);
			goto done;
		}
		ward_free(t);
	}
	if (all) {
		ward_source *list = NULL;
		size_t n = 0;
		if (ward_sources_list(ctx->store, "approved", &list, &n) < 0) {
			rc = cli_fail(ctx);
			goto done;
		}
		for (size_t i = 0; i < n; i++)
			if (add_source_targets(ctx, list[i].id, &targets, &ntargets) < 0) {
				ward_sources_free(list, n);
				rc = cli_fail(ctx);
				goto done;
			}
		ward_sources_free(list, n);
	}
	batch = all || manifest || ids_given || ntargets != 1;

	if (cli_load_rules_audited(ctx, rules_dir, &who, &rs) < 0) {
		rc = cli_fail(ctx);
		goto done;
	}
	io.rules = rs;
	if (ntargets && !(r.items = ward_calloc(ntargets, sizeof(*r.items)))) {
		ward_error_set(WARD_ENOMEM, "out of memory");
		rc = cli_fail(ctx);
		goto done;
	}
	r.home = ctx->home;
	r.targets = targets;
	r.ntargets = ntargets;
	r.opts = &io;
	r.who = &who;
	r.progress = isatty(STDERR_FILENO) && ntargets > 1;
	pthread_mutex_init(&r.mu, NULL);
	if (jobs > (long long)ntargets)
		jobs = ntargets ? (long long)ntargets : 1;
	/* The dispatcher's connection is not used by workers; close it so a
	 * worker's writes are not held up by it. */
	for (long long j = 0; j < jobs; j++)
		if (pthread_create(&threads[j], NULL, worker, &r) != 0) {
			jobs = j;
			break;
		}
	for (long long j = 0; j < jobs; j++)
		pthread_join(threads[j], NULL);
	pthread_mutex_destroy(&r.mu);
	if (r.fatal) {
		ward_error_set(r.fatal_err.code, "%s", r.fatal_err.message);
		rc = cli_fail(ctx);
		goto done;
	}

	items = json_array();
	for (size_t i = 0; i < ntargets; i++) {
		ward_ingest_item *it = &r.items[i];
		char *shown = cli_escape(it->target ? it->target : targets[i]);
		counts[it->outcome]++;
		not_allowed |= it->not_allowlisted;
		if (!ctx->json || !r.progress)
			cli_say("%-11s %s%s%s", ward_ingest_outcome_name(it->outcome), shown ? shown : "",
				it->reason ? ": " : "", it->reason ? it->reason : "");
		ward_free(shown);
		json_array_append_new(items,
				      json_pack("{s:s, s:s, s:s?, s:o, s:o}", "target", it->target ? it->target : targets[i],
						"outcome", ward_ingest_outcome_name(it->outcome), "reason", it->reason,
						"document_id", it->document_id ? json_integer(it->document_id) : json_null(),
						"version", it->version ? json_integer(it->version) : json_null()));
	}
	cli_say("ingest: %zu new, %zu updated, %zu unchanged, %zu quarantined, %zu rejected, %zu failed", counts[0],
		counts[1], counts[2], counts[3], counts[4], counts[5]);
	if (not_allowed)
		rc = WARD_EXIT_FAIL;
	else if (!batch && counts[WARD_INGEST_REJECTED])
		rc = WARD_EXIT_FAIL;
	else if (counts[WARD_INGEST_FAILED])
		rc = batch ? WARD_EXIT_PARTIAL : WARD_EXIT_ERROR;
	if (ctx->json) {
		int prc = cli_print_json(json_pack(
			"{s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:O}", "counts", "new", (json_int_t)counts[0], "updated",
			(json_int_t)counts[1], "unchanged", (json_int_t)counts[2], "quarantined", (json_int_t)counts[3],
			"rejected", (json_int_t)counts[4], "failed", (json_int_t)counts[5], "items", items));
		if (prc)
			rc = prc;
	}
done:
	json_decref(items);
	for (size_t i = 0; r.items && i < ntargets; i++)
		ward_ingest_item_dispose(&r.items[i]);
	ward_free(r.items);
	ward_ingest_targets_free(targets, ntargets);
	ward_ruleset_free(rs);
	ward_ingest_unlock(lock_fd);
	return rc;
}

const cli_command cli_cmds_ingest[] = {
	{NULL, "ingest", CMD_STORE_SIGN, cmd_ingest,
	 "ingest [URL|PATH|SOURCE_ID]... [--all] [--manifest FILE] [--jobs N] [--ca-file FILE] [--rules DIR] [--by WHO]"
	 " [--no-keep-bytes] [--json]",
	 "fetch, scan, sign and store documents from approved sources",
	 "Each target must be covered by an approved source ('ragward sources request');\n"
	 "a target that is not is refused before any connection or open. Unchanged bytes\n"
	 "write nothing; changed bytes create a new version that supersedes the old one.\n"
	 "One run per home at a time: a second run exits 2 with 'already running'.\n\n"
	 "  --all            every approved source (file sources: every regular file beneath the root)\n"
	 "  --manifest FILE  YAML list of URLs/paths (or {targets: [...]}), for cron jobs\n"
	 "  --jobs N         documents processed in parallel (1..16, default 1)\n"
	 "  --ca-file FILE   CA bundle for https (default: the system's; env RAGWARD_CA_FILE)\n"
	 "  --rules DIR      injection rule packs (default: $RAGWARD_RULES, else /usr/share/ragward/rules/injection,\n"
	 "                   else ./rules/injection, else the rules of the source tree it was built from)\n"
	 "  --no-keep-bytes  do not keep the fetched bytes in the store\n"
	 "  --by WHO         recorded as the actor of the audit events (default: the OS user)\n"
	 "  --json           print {\"counts\": {\"new\", \"updated\", \"unchanged\", \"quarantined\",\n"
	 "                   \"rejected\", \"failed\"}, \"items\": [{\"target\", \"outcome\", \"reason\",\n"
	 "                   \"document_id\", \"version\"}]}\n\n"
	 "Exit: 0 done; 1 a target is not covered by an approved source, or the single\n"
	 "document asked for was rejected; 2 operational error (or a single target failed);\n"
	 "3 the batch finished but some items failed transiently (retry later).\n"},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
