/*
 * The citation check: resolves the [n] tags of a model's output against the
 * trace of the retrieval that produced its context, and re-checks every cited
 * chunk against the store as it is now.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/log.h"
#include "ragward/retrieve.h"
#include "core/banned.h"

#define TAG_MAX_DIGITS 4

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads one number of at most TAG_MAX_DIGITS digits at *p. */
static int read_num(const char *s, size_t len, size_t *p, unsigned *out)
{
	size_t i = *p, d = 0;
	unsigned v = 0;

	while (i < len && is_digit(s[i]) && d < TAG_MAX_DIGITS + 1) {
		v = v * 10 + (unsigned)(s[i] - '0');
		i++;
		d++;
	}
	if (d == 0 || d > TAG_MAX_DIGITS)
		return -1;
	*p = i;
	*out = v;
	return 0;
}

/*
 * Tags are "[n]" and lists "[n, m]" / "[n,m]". Collects distinct numbers in
 * order of first appearance. Text like "[a]" or "[12345]" is not a tag.
 */
static size_t find_tags(const char *s, size_t len, unsigned *tags, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n < max; i++) {
		unsigned v[16];
		size_t nv = 0, p = i + 1;
		int ok = 0;

		if (s[i] != '[')
			continue;
		while (nv < 16 && read_num(s, len, &p, &v[nv]) == 0) {
			nv++;
			if (p < len && s[p] == ']') {
				ok = 1;
				break;
			}
			if (p < len && s[p] == ',') {
				p++;
				while (p < len && s[p] == ' ')
					p++;
				continue;
			}
			break;
		}
		if (!ok)
			continue;
		for (size_t j = 0; j < nv && n < max; j++) {
			int dup = 0;
			for (size_t k = 0; k < n && !dup; k++)
				dup = tags[k] == v[j];
			if (!dup)
				tags[n++] = v[j];
		}
		i = p;
	}
	return n;
}

static const json_t *trace_entry(const json_t *trace, const char *tag)
{
	const json_t *results = json_object_get(trace, "results"), *r;
	size_t i;

	json_array_foreach(results, i, r)
	{
		const char *t = json_string_value(json_object_get(r, "tag"));
		if (t && strcmp(t, tag) == 0)
			return r;
	}
	return NULL;
}

/* The status of a chunk now, against the hash the trace recorded. */
static int chunk_status(ward_store *s, ward_chunk_keys *keys, int64_t chunk_id, const char *traced_hash,
                        const char **status)
{
	ward_search_hit h;
	char hex[2 * WARD_SHA256_LEN + 1];
	int found = 0, ok = 0, rc;

	if ((rc = ward_store_chunk_get(s, chunk_id, &h, &found)) < 0)
		return rc;
	if (!found) {
		*status = "revoked";
		return 0;
	}
	if (!h.doc_state || strcmp(h.doc_state, "active") != 0 || !h.source_state ||
	    strcmp(h.source_state, "approved") != 0) {
		*status = "revoked";
		goto done;
	}
	/* No memo here: the check is rare and must see the row as it is. */
	if ((rc = ward_chunk_verify_row(s, &h.row, keys, NULL, &ok)) < 0)
		goto done;
	hex[0] = '\0';
	if (h.row.text_sha256_len == WARD_SHA256_LEN)
		ward_hex_encode_to(hex, h.row.text_sha256, WARD_SHA256_LEN);
	if (!ok || !traced_hash || strcmp(hex, traced_hash) != 0) {
		if (!ok)
			ward_log(WARD_LOG_SECURITY, "cited chunk %" PRId64 " fails verification", chunk_id);
		*status = "changed";
	} else {
		*status = "ok";
	}
done:
	ward_search_hit_dispose(&h);
	return rc;
}

int ward_cite_check(ward_store *s, const char *trace_id, const char *output, size_t len, json_t **out)
{
	unsigned tags[WARD_CITE_MAX_TAGS];
	size_t ntags;
	ward_chunk_keys keys;
	json_t *trace = NULL, *cites = NULL, *res = NULL;
	int rc, all_ok = 1;

	*out = NULL;
	memset(&keys, 0, sizeof(keys));
	if (!output)
		return ward_error_set(WARD_EINVAL, "output is missing");
	if (len > WARD_CITE_MAX_OUTPUT)
		return ward_error_set(WARD_ETOOBIG, "output is longer than %d bytes", WARD_CITE_MAX_OUTPUT);
	if ((rc = ward_trace_find(s, trace_id, &trace)) < 0)
		return rc;
	ntags = find_tags(output, len, tags, WARD_CITE_MAX_TAGS);
	if (!(cites = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < ntags; i++) {
		char tag[16];
		const json_t *e;
		const char *status = "not-retrieved";
		json_t *c;

		snprintf(tag, sizeof(tag), "[%u]", tags[i]);
		e = trace_entry(trace, tag);
		if (e) {
			json_int_t id = json_integer_value(json_object_get(e, "chunk_id"));
			if ((rc = chunk_status(s, &keys, (int64_t)id,
			                       json_string_value(json_object_get(e, "text_sha256")), &status)) < 0)
				goto done;
			c = json_pack("{s:s, s:I, s:O?, s:O?, s:O?, s:s}", "tag", tag, "chunk_id", id, "uri",
			              json_object_get(e, "uri"), "title", json_object_get(e, "title"), "section",
			              json_object_get(e, "section"), "status", status);
		} else {
			c = json_pack("{s:s, s:n, s:n, s:n, s:n, s:s}", "tag", tag, "chunk_id", "uri", "title",
			              "section", "status", status);
		}
		if (strcmp(status, "ok") != 0)
			all_ok = 0;
		if (!c || json_array_append_new(cites, c) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
	}
	if (!(res = json_pack("{s:s, s:O, s:b}", "trace_id", trace_id, "citations", cites, "ok", all_ok))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	*out = res;
	rc = 0;
done:
	json_decref(cites);
	json_decref(trace);
	ward_chunk_keys_dispose(&keys);
	return rc;
}
