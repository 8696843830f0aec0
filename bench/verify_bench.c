/*
 * `ragward verify` throughput: builds a store of N synthetic signed chunks
 * (through ward_documents_store, CHUNKS_PER_DOC chunks per document, one
 * transaction per document) or takes an existing one, then times the whole
 * ward_store_verify (every check, as `ragward verify` runs it) and prints
 * chunks/s next to OpenSSL's raw Ed25519 verify rate (EVP_DigestVerify over a
 * 32-byte digest, as the store signs) on as many threads as verify used,
 * measured in the same run just before and just after each verification, and
 * the ratio. The machine may be shared: each run also prints the load
 * average and the process CPU time, and with several runs the medians.
 * Prints figures; asserts nothing. Not built by default.
 *
 * Build: bench/run does (cmake -DCMAKE_BUILD_TYPE=Release -DRAGWARD_BENCH=ON
 * into build-bench; the program is build-bench/bench/verify_bench).
 * Run:
 *   verify_bench [CHUNKS [JOBS [CHUNK_BYTES]]]
 *   (defaults: 100000 chunks, jobs = online CPUs, 600-byte chunks). The store
 *   is built under $TMPDIR (or /tmp) and removed afterwards; set
 *   VERIFY_BENCH_KEEP=1 to keep it (its path is printed).
 *   VERIFY_BENCH_HOME=DIR verifies the store in DIR, building it there first
 *   (and keeping it) when DIR does not exist; CHUNKS is then only the size to
 *   build. verify opens one read-write connection (the FTS5 check, rolled
 *   back): point it at a copy of a store another program uses.
 *   VERIFY_BENCH_RUNS=R verifies R times (default 1) and prints the medians.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "ragward/crypto.h"
#include "ragward/documents.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "ragward/verify.h"

#define CHUNKS_PER_DOC 5000

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "verify_bench: %s: %s\n", what, ward_error_last()->message);
	exit(2);
}

/* Raw Ed25519 verifications per second on one thread, for about `secs`. */
static double openssl_ed25519_rate(double secs)
{
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char msg[32], sig[64];
	size_t siglen = sizeof(sig);
	long n = 0;
	double t0, t;

	memset(msg, 0x5a, sizeof(msg));
	if (!kctx || !md || EVP_PKEY_keygen_init(kctx) <= 0 || EVP_PKEY_keygen(kctx, &key) <= 0 ||
	    EVP_DigestSignInit(md, NULL, NULL, NULL, key) <= 0 || EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) <= 0) {
		fprintf(stderr, "verify_bench: OpenSSL Ed25519 set-up failed\n");
		exit(2);
	}
	t0 = now();
	do {
		for (int i = 0; i < 200; i++, n++) {
			EVP_MD_CTX_reset(md);
			if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) <= 0 ||
			    EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) != 1) {
				fprintf(stderr, "verify_bench: OpenSSL verify failed\n");
				exit(2);
			}
		}
		t = now() - t0;
	} while (t < secs);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(kctx);
	return (double)n / t;
}

typedef struct {
	double secs, rate;
} raw_job;

static void *raw_thread(void *arg)
{
	raw_job *j = arg;

	j->rate = openssl_ed25519_rate(j->secs);
	return NULL;
}

/* Raw Ed25519 verifications per second on `threads` threads at once (the
 * sum), for about `secs`: what the machine gives right now. */
static double openssl_ed25519_rate_threads(unsigned threads, double secs)
{
	pthread_t t[64];
	raw_job j[64];
	double sum = 0;

	if (threads > 64)
		threads = 64;
	for (unsigned i = 0; i < threads; i++) {
		j[i].secs = secs;
		if (pthread_create(&t[i], NULL, raw_thread, &j[i]) != 0) {
			fprintf(stderr, "verify_bench: cannot start a thread\n");
			exit(2);
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sum += j[i].rate;
	}
	return sum;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static double load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void build_store(const char *home, long nchunks, size_t chunk_bytes)
{
	ward_actor admin = {"admin", (long)getuid()}, alice = {"alice", (long)getuid()}, bob = {"bob", (long)getuid()};
	ward_source_request req;
	ward_store *s = NULL;
	ward_chunk_in *cin = calloc(CHUNKS_PER_DOC, sizeof(*cin));
	char *texts = malloc((size_t)CHUNKS_PER_DOC * (chunk_bytes + 1));
	char key_id[33], uri[64];
	int64_t src = 0;
	long done = 0, doc = 0;
	double t0 = now();

	if (!cin || !texts) {
		fprintf(stderr, "verify_bench: out of memory\n");
		exit(2);
	}
	if (ward_store_init_home(home, &admin, key_id) < 0 || ward_store_open(&s, home, WARD_STORE_SIGN) < 0)
		die("creating the store");
	memset(&req, 0, sizeof(req));
	req.name = "bench";
	req.pattern = "/srv/bench";
	req.trust = WARD_TRUST_STANDARD;
	if (ward_sources_request(s, &alice, &req, &src) < 0 || ward_sources_decide(s, &bob, src, WARD_DECIDE_APPROVE, NULL) < 0)
		die("approving the source");
	while (done < nchunks) {
		size_t n = (size_t)(nchunks - done < CHUNKS_PER_DOC ? nchunks - done : CHUNKS_PER_DOC);
		ward_doc_in in;
		ward_doc_outcome outcome;
		int64_t id, version;

		for (size_t i = 0; i < n; i++) {
			char *t = texts + i * (chunk_bytes + 1);
			size_t off = 0;
			/* Distinct words so FTS5 has a realistic vocabulary. */
			while (off < chunk_bytes) {
				int w = snprintf(t + off, chunk_bytes + 1 - off, "w%ld ", (done + (long)i) * 7 % 50021 + (long)off);
				if (w <= 0)
					break;
				off += (size_t)w;
			}
			t[chunk_bytes] = '\0';
			cin[i].heading_path = "Bench > Section";
			cin[i].text = t;
			cin[i].len = strlen(t);
			cin[i].char_start = i * chunk_bytes;
			cin[i].char_end = (i + 1) * chunk_bytes;
		}
		snprintf(uri, sizeof(uri), "file:///srv/bench/doc%ld", doc++);
		memset(&in, 0, sizeof(in));
		in.source_id = src;
		in.uri = in.final_url = uri;
		in.declared_type = in.detected_type = "text/plain";
		in.title = "Bench document";
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
	}
	ward_store_close(s);
	fprintf(stderr, "built %ld chunks in %ld documents in %.1f s\n", done, doc, now() - t0);
	free(cin);
	free(texts);
}

#define MAX_RUNS 20

int main(int argc, char **argv)
{
	long nchunks = argc > 1 ? atol(argv[1]) : 100000;
	unsigned jobs = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	size_t chunk_bytes = argc > 3 ? (size_t)atol(argv[3]) : 600;
	const char *tmp = getenv("TMPDIR"), *given = getenv("VERIFY_BENCH_HOME");
	int runs = getenv("VERIFY_BENCH_RUNS") ? atoi(getenv("VERIFY_BENCH_RUNS")) : 1;
	char dir[512] = "", home[600];
	double wall[MAX_RUNS], cps[MAX_RUNS], raw[MAX_RUNS], ratio[MAX_RUNS], cpu[MAX_RUNS], online;
	unsigned threads = 0;
	uint64_t checked = 0;
	struct stat sb;

	if (nchunks < 1 || chunk_bytes < 16 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: verify_bench [CHUNKS [JOBS [CHUNK_BYTES]]] (VERIFY_BENCH_RUNS 1..%d)\n", MAX_RUNS);
		return 64;
	}
	if (given && *given) {
		snprintf(home, sizeof(home), "%s", given);
		if (stat(home, &sb) != 0)
			build_store(home, nchunks, chunk_bytes);
	} else {
		snprintf(dir, sizeof(dir), "%s/verify-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 2;
		}
		snprintf(home, sizeof(home), "%s/home", dir);
		build_store(home, nchunks, chunk_bytes);
	}
	online = (double)sysconf(_SC_NPROCESSORS_ONLN);

	for (int i = 0; i < runs; i++) {
		ward_verify_opts o;
		ward_verify_report r;
		ward_store *s = NULL;
		double before, after, c0, l0 = load1();

		ward_verify_opts_init(&o);
		o.jobs = jobs;
		threads = jobs ? jobs : ward_verify_default_jobs();
		if (threads > online)
			threads = (unsigned)online;
		before = openssl_ed25519_rate_threads(threads, 1.0);
		c0 = cpu_seconds();
		/* Timed like `ragward verify`: opening the store and every check. */
		{
			double t0 = now();
			if (ward_store_open(&s, home, 0) < 0)
				die("opening the store");
			if (ward_store_verify(s, &o, &r) < 0)
				die("verify");
			ward_store_close(s);
			wall[i] = now() - t0;
		}
		cpu[i] = cpu_seconds() - c0;
		after = openssl_ed25519_rate_threads(threads, 1.0);
		checked = r.chunks.checked;
		cps[i] = (double)checked / wall[i];
		raw[i] = (before + after) / 2;
		ratio[i] = cps[i] / raw[i];
		printf("run %d: %llu chunks, %u job(s), ok=%d: %.1f s (chunk checks %.1f s), %.0f chunks/s;"
		       " raw Ed25519 on %u thread(s) %.0f/s (before %.0f, after %.0f); ratio %.2f;"
		       " CPU %.1f s (%.0f us/chunk); load %.1f -> %.1f\n",
		       i + 1, (unsigned long long)checked, r.jobs, ward_verify_report_ok(&r), wall[i], r.chunk_seconds,
		       cps[i], threads, raw[i], before, after, ratio[i], cpu[i],
		       1e6 * cpu[i] / (double)(checked ? checked : 1), l0, load1());
		fflush(stdout);
		ward_verify_report_dispose(&r);
	}
	{
		double w = median(wall, runs), c = median(cps, runs), rw = median(raw, runs), q = median(ratio, runs),
		       u = median(cpu, runs);
		printf("verify: %llu chunks, %u thread(s) on %.0f online CPU(s), median of %d run(s)\n",
		       (unsigned long long)checked, threads, online, runs);
		printf("  whole verify          %10.0f chunks/s  (%.1f s wall, %.1f s CPU)\n", c, w, u);
		printf("  OpenSSL Ed25519 raw   %10.0f verify/s on %u thread(s)\n", rw, threads);
		printf("  ratio whole verify / raw: %.2f\n", q);
		printf("  projected whole verify of 1M chunks at this rate: %.0f s (limit 120 s on 2 cores)\n",
		       c > 0 ? 1e6 / c : 0);
	}
	if (!dir[0]) {
		/* a given store is kept */
	} else if (!getenv("VERIFY_BENCH_KEEP")) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "verify_bench: could not remove %s\n", dir);
	} else {
		fprintf(stderr, "store kept in %s\n", home);
	}
	return 0;
}
