/*
 * Retrieval latency at scale (issue 4, "Figures to report"). Prints figures;
 * asserts nothing. Not built by default.
 *
 * 1. Builds (once) a store of N chunks (default 1,000,000) of synthetic but
 *    realistic text: sentences taken from the files of a source folder
 *    (default ../shared/eval/dev/docs beside the repository; HTML tags, CSS and scripts
 *    stripped, mostly-English sentences kept), chunks of ~750 bytes made of
 *    runs of consecutive sentences from random places, 500 chunks per
 *    document, a heading every 8 chunks, document titles from sentences. It
 *    goes through the library (ward_documents_store: signed, FTS-indexed, one
 *    transaction per document). The store is cached in /tmp/ragward-qbench-N
 *    (QBENCH_HOME overrides) and reused by later runs; delete it to rebuild.
 *    1,000 natural-language queries of 3-8 words (windows of sentences,
 *    some as "how do I ..." questions; 10,000 are written to HOME/queries.txt,
 *    the first QUERIES are used).
 * 2. Baseline, same run: the plain FTS5 query ward_store_search ran before
 *    the two-phase search (bm25(chunks_fts, 3, 2, 1) over every match of the
 *    OR query, joined and filtered, ORDER BY score, id LIMIT 10) on its own
 *    read-only connection: latency and top-10 ids.
 * 3. ward_retrieve (k = 10, verification included, traces written to
 *    HOME/traces.jsonl with the default batched sync): pass 1 (cold
 *    verification cache and cold term statistics), pass 2 (warm), each
 *    also as thread CPU time (wall time follows the machine's load);
 *    overlap@10 of the ids against the baseline; then 2 threads (one store
 *    handle each) for throughput. The load average is printed at start and
 *    end.
 * `query_bench http HOST:PORT TOKEN [THREADS [QUERIES]]` instead replays the
 * first QUERIES (1000) queries
 * as POST /v1/search {"query", "k": 10} over keep-alive loopback connections
 * (a client of its own: one connection per thread) against a running
 * `ragward serve` on the cached store.
 *
 * Build (release library, no sanitizers):
 *   cmake -S . -B /tmp/build-qrel -DCMAKE_BUILD_TYPE=Release -DRAGWARD_TESTS=OFF -DRAGWARD_BENCH=ON
 *   cmake --build /tmp/build-qrel -j2
 * Run:
 *   /tmp/build-qrel/bench/query_bench [CHUNKS [QUERIES]]   (defaults 1000000 1000)
 *   QBENCH_BASELINE=200 limits the baseline to the first 200 queries
 *   (overlap@10 is then over those); QBENCH_SRC=DIR changes the text source.
 *   HTTP: see bench/README.md "query".
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sqlite3.h>

#include "ragward/crypto.h"
#include "ragward/documents.h"
#include "ragward/retrieve.h"
#include "ragward/sources.h"
#include "ragward/store.h"

#define CHUNKS_PER_DOC 500
#define CHUNK_BYTES    750
#define TOPK           10
#define MAX_QUERIES    100000

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* This thread's CPU time: on a machine shared with builds the wall time of a
 * call grows with the load, its CPU time much less. */
static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_load(const char *when)
{
	double la[3];

	if (getloadavg(la, 3) == 3)
		printf("load average %s: %.2f %.2f %.2f\n", when, la[0], la[1], la[2]);
}

static void die(const char *what)
{
	fprintf(stderr, "query_bench: %s: %s\n", what, ward_error_last()->message);
	exit(2);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- sentence pool ---------------------------------------------------------- */

static char **sent;
static size_t nsent, capsent;

static void add_sentence(const char *s, size_t n)
{
	size_t alpha = 0, words = 0;
	int inword = 0;

	while (n && (*s == ' ' || *s == '#' || *s == '*' || *s == '-' || *s == '>' || *s == '|')) {
		s++;
		n--;
	}
	if (n < 20 || n > 400)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int a = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		alpha += a || c == ' ';
		if (a && !inword)
			words++;
		inword = a;
	}
	if (alpha * 10 < n * 8 || words < 4)
		return;
	if (nsent == capsent) {
		capsent = capsent ? capsent * 2 : 65536;
		sent = realloc(sent, capsent * sizeof(*sent));
	}
	sent[nsent] = malloc(n + 1);
	memcpy(sent[nsent], s, n);
	sent[nsent][n] = '\0';
	nsent++;
}

/* Strips tags (and <style>/<script> bodies), folds white space, splits on
 * sentence ends and blank lines. */
static void load_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf, *out;
	long len;
	size_t o = 0, start = 0;
	int skip = 0, nl = 0;

	if (!fp)
		return;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	if (len <= 0 || len > 64L * 1024 * 1024 || !(buf = malloc((size_t)len + 1))) {
		fclose(fp);
		return;
	}
	len = (long)fread(buf, 1, (size_t)len, fp);
	fclose(fp);
	buf[len] = '\0';
	out = malloc((size_t)len + 2);
	for (long i = 0; i < len; i++) {
		char c = buf[i];
		if (c == '<') {
			if (!strncasecmp(buf + i, "<style", 6) || !strncasecmp(buf + i, "<script", 7))
				skip = 1;
			else if (!strncasecmp(buf + i, "</style", 7) || !strncasecmp(buf + i, "</script", 8))
				skip = 0;
			char *e = strchr(buf + i, '>');
			if (!e)
				break;
			i = e - buf;
			c = ' ';
		}
		if (skip)
			continue;
		if (c == '\n') {
			if (++nl >= 2 && o > start) {
				add_sentence(out + start, o - start);
				start = o;
			}
			c = ' ';
		} else if (c != ' ' && c != '\t' && c != '\r') {
			nl = 0;
		}
		if (c == '\t' || c == '\r' || c == '`' || c == '[' || c == ']' || (unsigned char)c < 0x20)
			c = ' ';
		if (c == ' ' && o > start && out[o - 1] == ' ')
			continue;
		out[o++] = c;
		if ((c == '.' || c == '?' || c == '!') && i + 1 < len &&
		    (buf[i + 1] == ' ' || buf[i + 1] == '\n')) {
			add_sentence(out + start, o - start);
			start = o;
		}
	}
	if (o > start)
		add_sentence(out + start, o - start);
	free(out);
	free(buf);
}

static void load_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		fprintf(stderr, "query_bench: cannot read '%s'\n", dir);
		exit(2);
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap)
			names = realloc(names, (cap = cap ? cap * 2 : 256) * sizeof(*names));
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	/* readdir order varies between file systems; sort for a stable pool */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		char p[4096];
		struct stat sb;
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
			load_file(p);
		free(names[i]);
	}
	free(names);
}

/* ---- store ----------------------------------------------------------------- */

static void words_of(const char *s, size_t max, char *out, size_t outlen)
{
	size_t o = 0, w = 0;
	int in = 0;

	for (; *s && w < max && o + 2 < outlen; s++) {
		unsigned char c = (unsigned char)*s;
		int a = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (a) {
			if (!in && o)
				out[o++] = ' ';
			out[o++] = (char)c;
		} else if (in) {
			w++;
		}
		in = a;
	}
	out[o] = '\0';
}

static void build_store(const char *home, long nchunks)
{
	ward_actor admin = {"admin", (long)getuid()}, alice = {"alice", (long)getuid()}, bob = {"bob", (long)getuid()};
	ward_source_request req;
	ward_store *s = NULL;
	ward_chunk_in *cin = calloc(CHUNKS_PER_DOC, sizeof(*cin));
	char *texts = malloc((size_t)CHUNKS_PER_DOC * (CHUNK_BYTES + 512));
	char (*heads)[160] = malloc((size_t)CHUNKS_PER_DOC * 160);
	char key_id[33], uri[96], title[160], hw[120];
	int64_t src = 0;
	long done = 0, doc = 0;
	double t0 = now();

	if (ward_store_init_home(home, &admin, key_id) < 0 || ward_store_open(&s, home, WARD_STORE_SIGN) < 0)
		die("creating the store");
	memset(&req, 0, sizeof(req));
	req.name = "bench";
	req.pattern = "/srv/bench";
	req.trust = WARD_TRUST_STANDARD;
	if (ward_sources_request(s, &alice, &req, &src) < 0 ||
	    ward_sources_decide(s, &bob, src, WARD_DECIDE_APPROVE, NULL) < 0)
		die("approving the source");
	while (done < nchunks) {
		size_t n = (size_t)(nchunks - done < CHUNKS_PER_DOC ? nchunks - done : CHUNKS_PER_DOC);
		size_t pos = 0;
		ward_doc_in in;
		ward_doc_outcome outcome;
		int64_t id, version;

		words_of(sent[rnd() % nsent], 6, title, sizeof(title));
		for (size_t i = 0; i < n; i++) {
			char *t = texts + i * (CHUNK_BYTES + 512);
			size_t off = 0, si = rnd() % nsent;

			if (i % 8 == 0) {
				words_of(sent[rnd() % nsent], 4, hw, sizeof(hw));
				snprintf(heads[i], sizeof(heads[i]), "%s > %s", title, hw);
			} else {
				memcpy(heads[i], heads[i - 1], sizeof(heads[i]));
			}
			while (off < CHUNK_BYTES) {
				size_t l = strlen(sent[si]);
				if (off + l + 2 > CHUNK_BYTES + 500)
					l = CHUNK_BYTES + 500 - off - 2;
				memcpy(t + off, sent[si], l);
				off += l;
				t[off++] = ' ';
				si = (rnd() % 4 == 0) ? rnd() % nsent : (si + 1) % nsent;
			}
			t[off - 1] = '\0';
			cin[i].heading_path = heads[i];
			cin[i].text = t;
			cin[i].len = off - 1;
			cin[i].char_start = pos;
			cin[i].char_end = pos + off - 1;
			pos += off;
		}
		snprintf(uri, sizeof(uri), "file:///srv/bench/doc%06ld", doc++);
		memset(&in, 0, sizeof(in));
		in.source_id = src;
		in.uri = in.final_url = uri;
		in.declared_type = in.detected_type = "text/plain";
		in.title = title;
		in.bytes = (const uint8_t *)uri;
		in.len = strlen(uri);
		if (ward_sha256(in.byte_sha256, uri, strlen(uri)) < 0)
			die("hashing");
		in.fetched_at = "2026-01-01T00:00:00Z";
		in.ruleset_sha256 = "none";
		in.verdict = "accept";
		in.chunks = cin;
		in.nchunks = n;
		if (ward_documents_store(s, &admin, &in, &outcome, &id, &version) < 0)
			die("storing a document");
		done += (long)n;
		if (doc % 200 == 0)
			fprintf(stderr, "  %ld chunks, %.0f s\n", done, now() - t0);
	}
	ward_store_close(s);
	fprintf(stderr, "built %ld chunks in %ld documents in %.1f s\n", done, doc, now() - t0);
	free(cin);
	free(texts);
	free(heads);
}

static void write_queries(const char *path, size_t nq)
{
	static const char *const lead[] = {"how do I", "how to", "what is", "why does", "where is the"};
	FILE *fp = fopen(path, "w");

	if (!fp) {
		perror(path);
		exit(2);
	}
	for (size_t q = 0; q < nq; q++) {
		char w[64][48];
		size_t nw = 0, len, start;
		const char *s = sent[rnd() % nsent];
		int ok;

		/* words of the sentence (letters and digits, 2..40 bytes) */
		while (*s && nw < 64) {
			size_t l = 0;
			while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
				s++;
			while (s[l] && ((s[l] >= 'a' && s[l] <= 'z') || (s[l] >= 'A' && s[l] <= 'Z') ||
			                (s[l] >= '0' && s[l] <= '9')))
				l++;
			if (l >= 2 && l < 40) {
				memcpy(w[nw], s, l);
				w[nw++][l] = '\0';
			}
			s += l;
		}
		if (nw < 3) {
			q--;
			continue;
		}
		ok = rnd() % 3 == 0;
		len = 3 + rnd() % 6; /* 3..8 words in all */
		if (ok)
			len = len < 5 ? 3 : len - 2; /* "how do I" + words: still <= 8 words */
		if (len > nw)
			len = nw;
		start = rnd() % (nw - len + 1);
		if (ok)
			fprintf(fp, "%s ", lead[rnd() % 5]);
		for (size_t i = 0; i < len; i++)
			fprintf(fp, "%s%s", i ? " " : "", w[start + i]);
		fputc('\n', fp);
	}
	fclose(fp);
}

static char **queries;
static size_t nqueries;

static void read_queries(const char *path, size_t max)
{
	FILE *fp = fopen(path, "r");
	char line[1024];

	if (!fp) {
		perror(path);
		exit(2);
	}
	queries = calloc(max, sizeof(*queries));
	while (nqueries < max && fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		queries[nqueries++] = strdup(line);
	}
	fclose(fp);
}

/* ---- statistics ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, size_t n, double wall)
{
	double *v = malloc(n * sizeof(double)), sum = 0;

	memcpy(v, ms, n * sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	printf("%-34s n=%-5zu p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  max %8.2f ms  mean %7.2f ms  %7.1f q/s\n", what, n,
	       v[n / 2], v[(size_t)(n * 0.90)], v[(size_t)(n * 0.99) < n ? (size_t)(n * 0.99) : n - 1], v[n - 1],
	       sum / (double)n, wall > 0 ? (double)n / wall : 1000.0 * (double)n / sum);
	free(v);
	fflush(stdout);
}

/* ---- the plain FTS5 baseline (the SQL before the two-phase search) --------- */

static const char plain_sql[] =
        "SELECT c.id, bm25(chunks_fts, 3.0, 2.0, 1.0) AS score"
        " FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid"
        " JOIN documents d ON d.id = c.document_id"
        " JOIN sources s ON s.id = d.source_id"
        " WHERE chunks_fts MATCH ?1"
        " AND d.state = 'active' AND s.state = 'approved'"
        " AND (CASE s.trust WHEN 'high' THEN 2 WHEN 'standard' THEN 1 ELSE 0 END) >= 0"
        " AND (CASE WHEN json_valid(s.labels) AND json_type(s.labels) = 'array' THEN"
        "       json_array_length(s.labels) = 0"
        "       OR EXISTS (SELECT 1 FROM json_each(s.labels) sl JOIN json_each('[]') cl ON sl.value = cl.value)"
        "     ELSE 0 END)"
        " ORDER BY score, c.id LIMIT 10";

static int64_t (*base_ids)[TOPK];
static size_t nbase;

static void run_baseline(const char *home, size_t n)
{
	char path[700];
	sqlite3 *db;
	sqlite3_stmt *st;
	double *ms = calloc(n, sizeof(double)), t0 = now();

	snprintf(path, sizeof(path), "%s/store.db", home);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, plain_sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "query_bench: baseline: %s\n", sqlite3_errmsg(db));
		exit(2);
	}
	base_ids = calloc(n, sizeof(*base_ids));
	for (size_t q = 0; q < n; q++) {
		char *fts = NULL;
		double t;
		size_t i = 0;

		if (ward_query_to_fts(&fts, NULL, queries[q], strlen(queries[q])) < 0)
			die("query to fts");
		t = now();
		sqlite3_bind_text(st, 1, fts, -1, SQLITE_TRANSIENT);
		while (sqlite3_step(st) == SQLITE_ROW && i < TOPK)
			base_ids[q][i++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		ms[q] = (now() - t) * 1000;
		free(fts);
	}
	nbase = n;
	report("plain FTS5 bm25 OR, joins (k=10)", ms, n, now() - t0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(ms);
}

/* ---- the library call ------------------------------------------------------ */

static int64_t (*lib_ids)[TOPK];
static double *lib_cpu; /* CPU ms of the single-thread passes */

static double retrieve_one(ward_store *s, size_t q, int record)
{
	ward_retrieve_opts o;
	json_t *res = NULL;
	double t, c = cpu_now();

	ward_retrieve_opts_init(&o);
	o.k = TOPK;
	o.filter.all_labels = 0;
	o.caller = "bench";
	t = now();
	if (ward_retrieve(s, queries[q], strlen(queries[q]), &o, &res) < 0)
		die(queries[q]);
	t = (now() - t) * 1000;
	if (lib_cpu)
		lib_cpu[q] = (cpu_now() - c) * 1000;
	if (record) {
		json_t *arr = json_object_get(res, "results");
		for (size_t i = 0; i < TOPK; i++)
			lib_ids[q][i] = i < json_array_size(arr)
			                        ? json_integer_value(json_object_get(json_array_get(arr, i), "chunk_id"))
			                        : 0;
	}
	json_decref(res);
	return t;
}

static void overlap(void)
{
	double sum = 0;
	size_t exact = 0, n = nbase;

	for (size_t q = 0; q < n; q++) {
		size_t hit = 0, nb = 0;
		for (size_t i = 0; i < TOPK; i++) {
			if (!base_ids[q][i])
				continue;
			nb++;
			for (size_t j = 0; j < TOPK; j++)
				if (lib_ids[q][j] == base_ids[q][i]) {
					hit++;
					break;
				}
		}
		sum += nb ? (double)hit / (double)nb : 1.0;
		exact += hit == nb;
	}
	printf("overlap@10 vs plain FTS5: mean %.3f; identical top-10 sets: %zu/%zu\n", sum / (double)n, exact, n);
}

typedef struct {
	const char *home;
	size_t from, to;
	double *ms;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	ward_store *s = NULL;

	if (ward_store_open(&s, w->home, 0) < 0)
		die("opening the store");
	for (size_t q = w->from; q < w->to; q++)
		w->ms[q] = retrieve_one(s, q, 0);
	ward_store_close(s);
	return NULL;
}

/* ---- HTTP client ----------------------------------------------------------- */

typedef struct {
	struct sockaddr_in addr;
	const char *host, *token;
	size_t from, to;
	double *ms;
	long errors;
} hworker;

static int hconnect(hworker *w)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&w->addr, sizeof(w->addr)) != 0) {
		perror("connect");
		exit(2);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Reads one response (Content-Length framed); returns the status or -1. */
static int hread(int fd, char *buf, size_t cap)
{
	size_t got = 0, need = 0;
	char *hdr_end = NULL;

	for (;;) {
		ssize_t r = read(fd, buf + got, cap - got - 1);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		buf[got] = '\0';
		if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
			char *cl = NULL;
			for (char *p = buf; p < hdr_end && !cl; p++)
				if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
					cl = p;
			need = (size_t)(hdr_end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (hdr_end && got >= need)
			return atoi(buf + 9);
		if (got + 1 >= cap)
			return -1;
	}
}

static void *hwork(void *arg)
{
	hworker *w = arg;
	size_t cap = 4 * 1024 * 1024;
	char *buf = malloc(cap), req[4096];
	int fd = hconnect(w);

	for (size_t q = w->from; q < w->to; q++) {
		json_t *body = json_pack("{s:s, s:i}", "query", queries[q], "k", TOPK);
		char *b = json_dumps(body, JSON_COMPACT);
		int n = snprintf(req, sizeof(req),
		                 "POST /v1/search HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
		                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		                 w->host, w->token, strlen(b), b);
		double t = now();
		int status;

		if (write(fd, req, (size_t)n) != n || (status = hread(fd, buf, cap)) < 0) {
			close(fd);
			fd = hconnect(w);
			status = -1;
		}
		w->ms[q] = (now() - t) * 1000;
		if (status != 200)
			w->errors++;
		free(b);
		json_decref(body);
	}
	close(fd);
	free(buf);
	return NULL;
}

static int http_main(int argc, char **argv, const char *home)
{
	hworker w[8];
	char host[256], qpath[700];
	const char *colon;
	int threads = argc > 4 ? atoi(argv[4]) : 2;
	size_t nq = argc > 5 ? (size_t)atol(argv[5]) : 1000;
	double *ms, t0;
	long errors = 0;

	if (argc < 4 || !(colon = strrchr(argv[2], ':')) || threads < 1 || threads > 8) {
		fprintf(stderr, "usage: query_bench http HOST:PORT TOKEN [THREADS [QUERIES]]\n");
		return 64;
	}
	snprintf(qpath, sizeof(qpath), "%s/queries.txt", home);
	read_queries(qpath, nq < 1 || nq > MAX_QUERIES ? 1000 : nq);
	ms = calloc(nqueries, sizeof(double));
	memset(w, 0, sizeof(w));
	snprintf(host, sizeof(host), "%s", argv[2]);
	for (int i = 0; i < threads; i++) {
		w[i].addr.sin_family = AF_INET;
		w[i].addr.sin_port = htons((uint16_t)atoi(colon + 1));
		host[colon - argv[2]] = '\0';
		inet_pton(AF_INET, host, &w[i].addr.sin_addr);
		w[i].host = argv[2];
		w[i].token = argv[3];
		w[i].ms = ms;
	}
	/* pass 1: one connection, sequential (latency); pass 2: the same again;
	 * pass 3: THREADS connections (throughput) */
	for (int pass = 1; pass <= 2; pass++) {
		w[0].from = 0;
		w[0].to = nqueries;
		t0 = now();
		hwork(&w[0]);
		report(pass == 1 ? "POST /v1/search, 1 conn (pass 1)" : "POST /v1/search, 1 conn (pass 2)", ms, nqueries,
		       now() - t0);
	}
	{
		pthread_t th[8];
		char label[64];
		t0 = now();
		for (int i = 0; i < threads; i++) {
			w[i].from = nqueries * (size_t)i / (size_t)threads;
			w[i].to = nqueries * (size_t)(i + 1) / (size_t)threads;
			pthread_create(&th[i], NULL, hwork, &w[i]);
		}
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		snprintf(label, sizeof(label), "POST /v1/search, %d client threads", threads);
		report(label, ms, nqueries, now() - t0);
	}
	for (int i = 0; i < threads; i++)
		errors += w[i].errors;
	printf("HTTP non-200 responses: %ld\n", errors);
	return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	int http = argc > 1 && strcmp(argv[1], "http") == 0;
	long nchunks = !http && argc > 1 ? atol(argv[1]) : 1000000;
	size_t nq = !http && argc > 2 ? (size_t)atol(argv[2]) : 1000;
	const char *src = getenv("QBENCH_SRC") ? getenv("QBENCH_SRC") : "../shared/eval/dev/docs";
	const char *bl = getenv("QBENCH_BASELINE");
	char home[600], marker[700], qpath[700];
	size_t nbl;
	ward_store *s = NULL;
	double *ms, t0;
	struct stat sb;

	if (getenv("QBENCH_HOME"))
		snprintf(home, sizeof(home), "%s", getenv("QBENCH_HOME"));
	else
		snprintf(home, sizeof(home), "/tmp/ragward-qbench-%ld", nchunks);
	if (http)
		return http_main(argc, argv, home);
	if (nchunks < 1000 || nq < 1 || nq > MAX_QUERIES) {
		fprintf(stderr, "usage: query_bench [CHUNKS [QUERIES]] | query_bench http HOST:PORT TOKEN [THREADS]\n");
		return 64;
	}
	snprintf(marker, sizeof(marker), "%s/qbench.complete", home);
	snprintf(qpath, sizeof(qpath), "%s/queries.txt", home);
	if (stat(marker, &sb) != 0) {
		FILE *fp;
		load_dir(src);
		fprintf(stderr, "%zu sentences from %s\n", nsent, src);
		if (nsent < 1000) {
			fprintf(stderr, "query_bench: too few sentences in '%s'\n", src);
			return 2;
		}
		if (stat(home, &sb) == 0) {
			fprintf(stderr, "query_bench: '%s' exists but is incomplete: remove it\n", home);
			return 2;
		}
		build_store(home, nchunks);
		write_queries(qpath, MAX_QUERIES < 10000 ? MAX_QUERIES : 10000);
		if (!(fp = fopen(marker, "w")) || fclose(fp) != 0)
			return 2;
	} else {
		fprintf(stderr, "reusing the store in %s\n", home);
	}
	read_queries(qpath, nq);
	nq = nqueries;
	nbl = bl ? (size_t)atol(bl) : nq;
	if (nbl > nq)
		nbl = nq;
	printf("store %s: %ld chunks; %zu queries (3-8 words), k=%d\n", home, nchunks, nq, TOPK);
	print_load("at start");

	if (nbl)
		run_baseline(home, nbl);

	lib_ids = calloc(nq, sizeof(*lib_ids));
	lib_cpu = calloc(nq, sizeof(double));
	ms = calloc(nq, sizeof(double));
	if (ward_store_open(&s, home, 0) < 0)
		die("opening the store");
	for (int pass = 1; pass <= 2; pass++) {
		t0 = now();
		for (size_t q = 0; q < nq; q++)
			ms[q] = retrieve_one(s, q, pass == 1);
		report(pass == 1 ? "ward_retrieve (pass 1, cold caches)" : "ward_retrieve (pass 2, warm)", ms, nq,
		       now() - t0);
		report("  the same, thread CPU time", lib_cpu, nq, 0);
	}
	free(lib_cpu); /* threads below: wall time only */
	lib_cpu = NULL;
	ward_store_close(s);
	if (nbl)
		overlap();
	{
		ward_retrieve_stats rs;
		ward_retrieve_stats_get(&rs);
		printf("verification: %llu Ed25519 verifies, %llu cache hits, %llu withheld\n", rs.verified, rs.cache_hits,
		       rs.withheld);
	}
	{
		worker w[2] = {{home, 0, nq / 2, ms}, {home, nq / 2, nq, ms}};
		pthread_t th[2];
		t0 = now();
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, work, &w[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		report("ward_retrieve, 2 threads", ms, nq, now() - t0);
	}
	print_load("at end");
	return 0;
}
