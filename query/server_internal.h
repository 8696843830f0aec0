/*
 * Shared between query/http.c and query/metrics.c: the endpoint and status
 * classes counted for /metrics.
 */
#ifndef RAGWARD_QUERY_SERVER_INTERNAL_H
#define RAGWARD_QUERY_SERVER_INTERNAL_H

#include <stddef.h>
#include "ragward/buf.h"

typedef enum {
	WARD_EP_SEARCH = 0,
	WARD_EP_CHUNKS,
	WARD_EP_CITATIONS,
	WARD_EP_KEYS,
	WARD_EP_HEALTHZ,
	WARD_EP_METRICS,
	WARD_EP_MCP,
	WARD_EP_OTHER,
	WARD_EP_COUNT
} ward_endpoint;

const char *ward_endpoint_name(ward_endpoint ep);

/* Process-wide counters (all servers of the process share them, like the
 * retrieval counters they sit next to). */
void ward_metrics_request(ward_endpoint ep, unsigned status, double seconds);
/* A chunk withheld by GET /v1/chunks/{id} because it failed verification. */
void ward_metrics_chunk_withheld(void);
/* Renders the Prometheus text exposition format (version 0.0.4) into b. */
int ward_metrics_render(ward_buf *b) WARD_MUST_CHECK;

#endif
