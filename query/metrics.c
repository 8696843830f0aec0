/*
 * /metrics: request counters by endpoint and status, a latency histogram per
 * endpoint, and the retrieval counters (verified, cache hits, withheld), in
 * the Prometheus text format. Plain relaxed atomics: a scrape may see counts
 * a few requests apart, never torn values.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ragward/retrieve.h"
#include "query/server_internal.h"
#include "core/banned.h"

static const char *const endpoint_names[WARD_EP_COUNT] = {"search",  "chunks",  "citations", "keys",
                                                          "healthz", "metrics", "mcp",       "other"};

static const unsigned statuses[] = {200, 202, 204, 400, 401, 403, 404, 405, 406, 413, 415, 431, 500, 503};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static atomic_ullong requests[WARD_EP_COUNT][NSTATUS + 1]; /* last: any other status */
static atomic_ullong buckets[WARD_EP_COUNT][NBOUNDS + 1];  /* last: +Inf only */
static atomic_ullong micros_sum[WARD_EP_COUNT];
static atomic_ullong chunk_withheld;

const char *ward_endpoint_name(ward_endpoint ep)
{
	return ep < WARD_EP_COUNT ? endpoint_names[ep] : "other";
}

void ward_metrics_request(ward_endpoint ep, unsigned status, double seconds)
{
	size_t si = NSTATUS, bi = NBOUNDS;

	if (ep >= WARD_EP_COUNT)
		ep = WARD_EP_OTHER;
	for (size_t i = 0; i < NSTATUS; i++)
		if (statuses[i] == status) {
			si = i;
			break;
		}
	for (size_t i = 0; i < NBOUNDS; i++)
		if (seconds <= bounds[i]) {
			bi = i;
			break;
		}
	if (seconds < 0)
		seconds = 0;
	atomic_fetch_add_explicit(&requests[ep][si], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&buckets[ep][bi], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&micros_sum[ep], (unsigned long long)(seconds * 1e6), memory_order_relaxed);
}

void ward_metrics_chunk_withheld(void)
{
	atomic_fetch_add_explicit(&chunk_withheld, 1, memory_order_relaxed);
}

int ward_metrics_render(ward_buf *b)
{
	ward_retrieve_stats rs;

	ward_retrieve_stats_get(&rs);
	if (ward_buf_puts(b, "# HELP ragward_http_requests_total HTTP requests answered, by endpoint and status.\n"
	                     "# TYPE ragward_http_requests_total counter\n") < 0)
		return b->err;
	for (size_t e = 0; e < WARD_EP_COUNT; e++)
		for (size_t s = 0; s <= NSTATUS; s++) {
			unsigned long long v = atomic_load_explicit(&requests[e][s], memory_order_relaxed);
			if (!v)
				continue;
			if ((s < NSTATUS
			             ? ward_buf_printf(
			                       b, "ragward_http_requests_total{endpoint=\"%s\",status=\"%u\"} %llu\n",
			                       endpoint_names[e], statuses[s], v)
			             : ward_buf_printf(
			                       b,
			                       "ragward_http_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n",
			                       endpoint_names[e], v)) < 0)
				return b->err;
		}
	if (ward_buf_puts(b, "# HELP ragward_http_request_duration_seconds Time from the request's headers to the"
	                     " end of its response.\n"
	                     "# TYPE ragward_http_request_duration_seconds histogram\n") < 0)
		return b->err;
	for (size_t e = 0; e < WARD_EP_COUNT; e++) {
		unsigned long long cum = 0;
		for (size_t i = 0; i < NBOUNDS; i++) {
			cum += atomic_load_explicit(&buckets[e][i], memory_order_relaxed);
			if (ward_buf_printf(
			            b, "ragward_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
			            endpoint_names[e], bounds[i], cum) < 0)
				return b->err;
		}
		cum += atomic_load_explicit(&buckets[e][NBOUNDS], memory_order_relaxed);
		if (ward_buf_printf(b,
		                    "ragward_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
		                    endpoint_names[e], cum) < 0)
			return b->err;
		if (ward_buf_printf(b, "ragward_http_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n",
		                    endpoint_names[e],
		                    (double)atomic_load_explicit(&micros_sum[e], memory_order_relaxed) / 1e6) < 0)
			return b->err;
		if (ward_buf_printf(b, "ragward_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
		                    endpoint_names[e], cum) < 0)
			return b->err;
	}
	if (ward_buf_printf(b,
	                    "# HELP ragward_chunks_verified_total Chunks whose signature was checked on read.\n"
	                    "# TYPE ragward_chunks_verified_total counter\n"
	                    "ragward_chunks_verified_total %llu\n"
	                    "# HELP ragward_verify_cache_hits_total Verifications answered from the cache.\n"
	                    "# TYPE ragward_verify_cache_hits_total counter\n"
	                    "ragward_verify_cache_hits_total %llu\n"
	                    "# HELP ragward_withheld_chunks_total Chunks withheld because they failed verification on"
	                    " read (search and chunk fetch).\n"
	                    "# TYPE ragward_withheld_chunks_total counter\n"
	                    "ragward_withheld_chunks_total %llu\n"
	                    "# HELP ragward_verify_failures_total Verification failures seen by the server (every"
	                    " withheld chunk is one).\n"
	                    "# TYPE ragward_verify_failures_total counter\n"
	                    "ragward_verify_failures_total %llu\n",
	                    rs.verified, rs.cache_hits,
	                    rs.withheld + atomic_load_explicit(&chunk_withheld, memory_order_relaxed),
	                    rs.withheld + atomic_load_explicit(&chunk_withheld, memory_order_relaxed)) < 0)
		return b->err;
	return b->err;
}
