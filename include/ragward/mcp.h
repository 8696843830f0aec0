/*
 * Model Context Protocol (MCP) tool server: a strict JSON-RPC 2.0 dispatcher
 * with two tools, `search` (citation-tagged, verified retrieval) and `fetch`
 * (one served chunk by id). docs/mcp.md describes the protocol subset, the
 * tool schemas and the result shapes.
 *
 * The dispatcher is transport-independent: ward_mcp_handle takes one
 * JSON-RPC message and produces at most one response. Two transports use it:
 *
 *  - stdio (`ragward mcp`, cli/cmd_mcp.c): one session for the process,
 *    newline-delimited messages;
 *  - Streamable HTTP (`POST /mcp` of `ragward serve`): ward_mcp_http_post
 *    applies the transport's rules (session header, protocol-version header,
 *    202 for notifications, 404 for an unknown session) over a registry of
 *    sessions keyed by their Mcp-Session-Id.
 *
 * Retrieved text is data, never instructions: the search tool's text content
 * is the spotlighted context of docs/retrieval.md, and the server's
 * `instructions` say so.
 *
 * Thread safety: a session may be used by several threads at once (the
 * registry reference-counts it); the store handed to each call must be usable
 * by the calling thread.
 */
#ifndef RAGWARD_MCP_H
#define RAGWARD_MCP_H

#include <stddef.h>
#include "ragward/error.h"
#include "ragward/store.h"

#define WARD_MCP_MAX_MESSAGE (1024 * 1024) /* one JSON-RPC message, bytes */
#define WARD_MCP_MAX_DEPTH 32              /* nesting of arrays and objects in a message */
#define WARD_MCP_MAX_SESSIONS 1024         /* live Streamable HTTP sessions (oldest evicted) */
#define WARD_MCP_SESSION_IDLE 3600         /* seconds before an unused HTTP session expires */
#define WARD_MCP_SESSION_ID_LEN 32         /* hex characters of a session id */

/* The newest protocol revision spoken; also accepted: 2025-06-18,
 * 2025-03-26, 2024-11-05 (structuredContent and outputSchema only from
 * 2025-06-18 on). */
#define WARD_MCP_PROTOCOL_LATEST "2025-11-25"

/* JSON-RPC error codes used in responses. */
enum {
	WARD_MCP_PARSE_ERROR = -32700,
	WARD_MCP_INVALID_REQUEST = -32600,
	WARD_MCP_METHOD_NOT_FOUND = -32601,
	WARD_MCP_INVALID_PARAMS = -32602,
	WARD_MCP_INTERNAL_ERROR = -32603,
	WARD_MCP_BAD_SESSION = -32000,       /* HTTP: missing or invalid session / header */
	WARD_MCP_SESSION_NOT_FOUND = -32001, /* HTTP: unknown or expired Mcp-Session-Id */
};

/*
 * Who is calling, decided by the transport before any message is read. All
 * pointers are copied by ward_mcp_session_new.
 *
 * caller:     recorded in every trace ("mcp-stdio:alice", "token:ci-bot");
 *             an HTTP session answers only to the caller that opened it.
 * labels:     the access labels of the caller (ward_search_filter.labels).
 * all_labels: 1 sees every source: only for the local operator (stdio),
 *             never for a remote caller.
 */
typedef struct {
	const char *caller;
	const char *const *labels;
	size_t nlabels;
	int all_labels;
} ward_mcp_identity;

typedef struct ward_mcp_session ward_mcp_session;

/* A new, uninitialised session with a random id. WARD_EINVAL for a missing
 * caller or more than WARD_MAX_LABELS labels; WARD_ENOMEM. */
int ward_mcp_session_new(ward_mcp_session **out, const ward_mcp_identity *who) WARD_MUST_CHECK;
/* Releases a session made with ward_mcp_session_new (NULL-safe). Not for
 * sessions of a registry: use ward_mcp_session_release for those. */
void ward_mcp_session_free(ward_mcp_session *sess);
/* The session id (WARD_MCP_SESSION_ID_LEN lowercase hex), borrowed. */
const char *ward_mcp_session_id(const ward_mcp_session *sess);
/* The negotiated protocol revision, or NULL before a successful initialize. */
const char *ward_mcp_session_protocol(const ward_mcp_session *sess);

/*
 * Handles one JSON-RPC message (`body`, `len` bytes, not NUL-terminated).
 *
 * *response receives a ward_malloc'd, NUL-terminated JSON-RPC response
 * (compact JSON, ASCII-only, no newline), or NULL when none is due: a
 * notification (no "id") or a response sent by the client. Every protocol
 * problem is answered inside *response as a JSON-RPC error: -32700 invalid
 * JSON (invalid UTF-8, duplicate keys included), -32600 invalid request
 * (batch arrays, wrong "jsonrpc", bad "id", missing "method", message larger
 * than WARD_MCP_MAX_MESSAGE or deeper than WARD_MCP_MAX_DEPTH, request before
 * initialize), -32601 unknown method, -32602 bad params (with the reason),
 * -32603 internal failure (details go to the log only). A tool's own failure
 * (bad arguments, a query with no searchable terms, a chunk not served) is a
 * result with "isError": true.
 *
 * Returns 0, or WARD_ENOMEM when not even an error response could be built.
 */
int ward_mcp_handle(ward_mcp_session *sess, ward_store *store, const char *body, size_t len, char **response)
	WARD_MUST_CHECK;

/* ---- Streamable HTTP ------------------------------------------------------ */

typedef struct ward_mcp_registry ward_mcp_registry;

/* Sessions of the HTTP transport. max_sessions 0: WARD_MCP_MAX_SESSIONS;
 * idle_seconds 0: WARD_MCP_SESSION_IDLE. When full, the least recently used
 * session is dropped. */
int ward_mcp_registry_new(ward_mcp_registry **out, size_t max_sessions, unsigned idle_seconds) WARD_MUST_CHECK;
void ward_mcp_registry_free(ward_mcp_registry *reg);
/* Live sessions (for /metrics). */
size_t ward_mcp_registry_count(ward_mcp_registry *reg);

/* The request headers the transport looks at (NULL: header absent). */
typedef struct {
	const char *session_id;       /* Mcp-Session-Id */
	const char *protocol_version; /* MCP-Protocol-Version */
	const char *accept;           /* Accept */
	const char *content_type;     /* Content-Type */
} ward_mcp_http_request;

/* What to answer. Dispose with ward_mcp_http_reply_dispose. */
typedef struct {
	int status;   /* 200, 202, 400, 404, 406, 413 or 415 */
	char *body;   /* NULL: no body (202); else JSON, Content-Type: application/json */
	char session_id[WARD_MCP_SESSION_ID_LEN + 1]; /* non-empty: send "Mcp-Session-Id: <it>" */
} ward_mcp_http_reply;

void ward_mcp_http_reply_dispose(ward_mcp_http_reply *r);

/*
 * One `POST /mcp` after the caller was authenticated (bearer token) and its
 * identity resolved. An "initialize" request without Mcp-Session-Id opens a
 * session (reply.session_id is set); any other message needs the session id
 * of a session opened by the same caller (400 when absent, 404 when unknown,
 * expired or another caller's), and a MCP-Protocol-Version header, when sent,
 * must be the session's revision (400). Notifications and client responses:
 * 202 with no body. Content-Type must be application/json (415); Accept, when
 * sent, must admit application/json (406); body larger than
 * WARD_MCP_MAX_MESSAGE: 413. Error bodies are JSON-RPC error responses.
 *
 * Returns 0 (out filled), or WARD_ENOMEM (answer 500).
 */
int ward_mcp_http_post(ward_mcp_registry *reg, ward_store *store, const ward_mcp_identity *who,
		       const ward_mcp_http_request *req, const char *body, size_t len, ward_mcp_http_reply *out)
	WARD_MUST_CHECK;

/*
 * `DELETE /mcp`: ends the caller's session. *status: 204 when ended, 400
 * without a session id, 404 when unknown or another caller's.
 */
void ward_mcp_http_delete(ward_mcp_registry *reg, const ward_mcp_identity *who, const char *session_id,
			  int *status);

#endif
