/*
 * `ragward verify` throughput: builds a store of N synthetic signed chunks
 * (through ward_documents_store, CHUNKS_PER_DOC chunks per document, one
 * transaction per document), then times ward_store_verify and prints
 * chunks/s next to OpenSSL's raw Ed25519 verify rate (EVP_DigestVerify over a
 * 32-byte digest, as the store signs) measured in the same run, and the
 * ratio. Prints figures; asserts nothing. Not built by default.
 *
 * Build (release library, no sanitizers):
 *   cmake -S . -B /tmp/build-rel -DCMAKE_BUILD_TYPE=Release -DRAGWARD_TESTS=OFF
 *   cmake --build /tmp/build-rel -j2 --target ragward_lib
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -I. \
 *      $(pkg-config --cflags jansson) bench/verify_bench.c -o /tmp/verify_bench \
 *      /tmp/build-rel/libragward.a \
 *      $(pkg-config --libs sqlite3 libxml-2.0 libpcre2-8 libcurl libcrypto libmagic icu-uc \
 *        icu-i18n jansson yaml-0.1 libmicrohttpd libhs) -lpthread -lstdc++
 *   (drop libhs when Vectorscan is not installed)
 * Run:
 *   /tmp/verify_bench [CHUNKS [JOBS [CHUNK_BYTES]]]
 *   (defaults: 100000 chunks, jobs = online CPUs, 600-byte chunks). The store
 *   is built under $TMPDIR (or /tmp) and removed afterwards; set
 *   VERIFY_BENCH_KEEP=1 to keep it (its path is printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Raw Ed25519 verifications per second on one core, for about `secs`. */
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

int main(int argc, char **argv)
{
	long nchunks = argc > 1 ? atol(argv[1]) : 100000;
	unsigned jobs = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	size_t chunk_bytes = argc > 3 ? (size_t)atol(argv[3]) : 600;
	const char *tmp = getenv("TMPDIR");
	char dir[512], home[600];
	ward_verify_opts o;
	ward_verify_report r;
	ward_store *s = NULL;
	double raw, cps, online, ideal;

	if (nchunks < 1 || chunk_bytes < 16) {
		fprintf(stderr, "usage: verify_bench [CHUNKS [JOBS [CHUNK_BYTES]]]\n");
		return 64;
	}
	snprintf(dir, sizeof(dir), "%s/verify-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(home, sizeof(home), "%s/home", dir);
	build_store(home, nchunks, chunk_bytes);

	ward_verify_opts_init(&o);
	o.jobs = jobs;
	if (ward_store_open(&s, home, 0) < 0)
		die("opening the store");
	if (ward_store_verify(s, &o, &r) < 0)
		die("verify");
	ward_store_close(s);
	raw = openssl_ed25519_rate(2.0);
	online = (double)sysconf(_SC_NPROCESSORS_ONLN);
	ideal = raw * (r.jobs < online ? r.jobs : online);
	cps = r.chunk_seconds > 0 ? (double)r.chunks.checked / r.chunk_seconds : 0;

	printf("verify: %llu chunks, %u thread(s) on %.0f online CPU(s), ok=%d\n", (unsigned long long)r.chunks.checked,
	       r.jobs, online, ward_verify_report_ok(&r));
	printf("  chunk checks          %10.0f chunks/s  (%.2f s)\n", cps, r.chunk_seconds);
	printf("  whole verify          %10.0f chunks/s  (%.2f s: + documents, FTS, audit, integrity checks)\n",
	       r.seconds > 0 ? (double)r.chunks.checked / r.seconds : 0, r.seconds);
	printf("  OpenSSL Ed25519 raw   %10.0f verify/s per core; x%.0f cores = %.0f/s\n", raw,
	       r.jobs < online ? (double)r.jobs : online, ideal);
	printf("  ratio chunk checks / raw on those cores: %.2f\n", ideal > 0 ? cps / ideal : 0);
	printf("  projected whole verify of 1M chunks: %.0f s (limit 120 s on 2 cores)\n",
	       r.seconds > 0 ? 1e6 * r.seconds / (double)r.chunks.checked : 0);
	ward_verify_report_dispose(&r);
	if (!getenv("VERIFY_BENCH_KEEP")) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "verify_bench: could not remove %s\n", dir);
	} else {
		fprintf(stderr, "store kept in %s\n", home);
	}
	return 0;
}
