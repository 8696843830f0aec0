/*
 * The MCP JSON-RPC dispatcher (ward_mcp_handle) over an empty store: each
 * input line is one message of a fresh session that has been initialized, as
 * the stdio transport feeds them. Every response is one line of ASCII JSON,
 * a JSON-RPC 2.0 object with a result or an error.
 */
#include <jansson.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "ragward/alloc.h"
#include "ragward/mcp.h"
#include "ragward/store.h"

#define FUZZ_MAX_INPUT (64 * 1024)
#define FUZZ_MAX_MESSAGES 8

static ward_store *store;

static void close_store(void)
{
	ward_store_close(store);
	store = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char home[8192], key_id[33];
	ward_actor who = {"fuzz", (long)getuid()};

	(void)argc;
	(void)argv;
	snprintf(home, sizeof(home), "%s/home", fuzz_scratch_dir());
	if (ward_store_init_home(home, &who, key_id) != 0 || ward_store_open(&store, home, 0) != 0) {
		fprintf(stderr, "fuzz_mcp: cannot create a store in '%s': %s\n", home, ward_error_last()->message);
		abort();
	}
	atexit(close_store);
	return 0;
}

static void check_response(const char *r)
{
	json_t *v;
	json_error_t e;

	if (!r)
		return;
	for (const char *p = r; *p; p++)
		FUZZ_CHECK((unsigned char)*p < 0x80 && *p != '\n');
	v = json_loads(r, JSON_REJECT_DUPLICATES, &e);
	FUZZ_CHECK(v != NULL);
	FUZZ_CHECK(json_is_object(v));
	FUZZ_CHECK(json_is_string(json_object_get(v, "jsonrpc")) &&
		   strcmp(json_string_value(json_object_get(v, "jsonrpc")), "2.0") == 0);
	FUZZ_CHECK((json_object_get(v, "result") != NULL) != (json_object_get(v, "error") != NULL));
	json_decref(v);
}

static void handle(ward_mcp_session *sess, const char *msg, size_t len)
{
	char *resp = NULL;

	int rc = ward_mcp_handle(sess, store, msg, len, &resp);

	/* Every protocol problem is an error response; only ENOMEM may fail. */
	if (rc != 0)
		fprintf(stderr, "fuzz_mcp: ward_mcp_handle returned %d: %s\n", rc, ward_error_last()->message);
	FUZZ_CHECK(rc == 0);
	check_response(resp);
	ward_free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char init[] = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
				   "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
				   "\"clientInfo\":{\"name\":\"fuzz\",\"version\":\"1\"}}}";
	static const char inited[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
	static const char *labels[] = {"public"};
	ward_mcp_identity who = {"fuzz", labels, 1, size % 2};
	ward_mcp_session *sess = NULL;
	size_t off = 0;
	int n = 0;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (!store)
		LLVMFuzzerInitialize(NULL, NULL);
	FUZZ_CHECK(ward_mcp_session_new(&sess, &who) == 0);
	/* Inputs starting with '!' talk to an uninitialized session. */
	if (size == 0 || data[0] != '!') {
		handle(sess, init, sizeof(init) - 1);
		handle(sess, inited, sizeof(inited) - 1);
	} else {
		off = 1;
	}
	while (off <= size && n++ < FUZZ_MAX_MESSAGES) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;

		handle(sess, (const char *)data + off, len);
		if (!nl)
			break;
		off += len + 1;
	}
	ward_mcp_session_free(sess);
	return 0;
}
