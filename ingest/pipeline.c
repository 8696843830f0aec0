/*
 * The ingest pipeline for one document: source check -> fetch -> type gate ->
 * extract -> scan -> verdict -> chunk -> sign + store (one transaction).
 *
 * Every refusal happens before the next stage runs: a target no approved
 * source covers is refused before any connection or open; a document the
 * type gate rejects is never parsed; a rejected verdict is never stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/chunk.h"
#include "ragward/documents.h"
#include "ragward/extract.h"
#include "ragward/fetch.h"
#include "ragward/ingest.h"
#include "ragward/log.h"
#include "ragward/sources.h"
#include "ragward/typegate.h"
#include "ragward/verdict.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "core/banned.h"

const char *ward_ingest_outcome_name(ward_ingest_outcome o)
{
	static const char *const names[] = {"new", "updated", "unchanged", "quarantined", "rejected", "failed"};

	return (o >= WARD_INGEST_NEW && o <= WARD_INGEST_FAILED) ? names[o] : "?";
}

void ward_ingest_item_dispose(ward_ingest_item *it)
{
	if (!it)
		return;
	ward_free(it->target);
	ward_free(it->reason);
	memset(it, 0, sizeof(*it));
}

static int item_set(ward_ingest_item *it, ward_ingest_outcome o, const char *reason)
{
	it->outcome = o;
	ward_free(it->reason);
	it->reason = NULL;
	if (reason && !(it->reason = ward_strdup(reason)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	return 0;
}

/* Errors that describe the item, not the store: they become its outcome. */
static int item_from_error(ward_ingest_item *it, int rc)
{
	const char *msg = ward_error_last()->message;

	switch (rc) {
	case WARD_EPOLICY:
	case WARD_ETOOBIG:
	case WARD_EINVAL:
	case WARD_ENOTFOUND:
	case WARD_EVERIFY:
		return item_set(it, WARD_INGEST_REJECTED, msg);
	case WARD_ENET:
	case WARD_ETIMEOUT:
	case WARD_EIO:
		return item_set(it, WARD_INGEST_FAILED, msg);
	default:
		return rc; /* the store or memory failed: stop the run */
	}
}

typedef struct {
	ward_store *store;
} allow_ctx;

/* Every redirect hop must be covered by an approved source. */
static int allow_url(void *ctx, const char *url)
{
	ward_source src;
	int rc = ward_sources_match(((allow_ctx *)ctx)->store, url, &src);

	ward_source_dispose(&src);
	return rc;
}

static void findings_to_rows(ward_finding_in *rows, const ward_findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		rows[i].rule_id = f->items[i].rule_id;
		rows[i].category = f->items[i].category;
		rows[i].severity = f->items[i].severity;
		rows[i].channel = ward_channel_name(f->items[i].channel);
		rows[i].view = ward_view_name(f->items[i].view);
		rows[i].start = f->items[i].start;
		rows[i].end = f->items[i].end;
		rows[i].excerpt = f->items[i].excerpt;
	}
}

/*
 * Scans the visible text and every hidden channel. Findings in visible text
 * carry offsets into the extracted text (mapped to the original bytes when
 * stored); segment findings are shifted to the segment's source range.
 */
static int scan_document(const ward_ruleset *rs, const ward_extracted *x, ward_findings *visible,
			 ward_findings *segments)
{
	int rc;

	if ((rc = ward_scan_text(rs, WARD_CH_VISIBLE, x->text, x->len, visible)) < 0)
		return rc;
	for (size_t i = 0; i < x->nsegments; i++) {
		size_t before = segments->n;
		if ((rc = ward_scan_text(rs, x->segments[i].channel, x->segments[i].text, x->segments[i].len,
					 segments)) < 0)
			return rc;
		for (size_t j = before; j < segments->n; j++) {
			segments->items[j].start = x->segments[i].src_start;
			segments->items[j].end = x->segments[i].src_end;
		}
	}
	return 0;
}

/* Merges b into a (moving the findings). */
static int findings_merge(ward_findings *a, ward_findings *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (a->n == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 16;
			ward_finding *grown = ward_realloc(a->items, cap * sizeof(*grown));
			if (!grown)
				return ward_error_set(WARD_ENOMEM, "out of memory");
			a->items = grown;
			a->cap = cap;
		}
		a->items[a->n++] = b->items[i];
		memset(&b->items[i], 0, sizeof(b->items[i]));
	}
	a->incomplete |= b->incomplete;
	b->n = 0;
	return 0;
}

static int fetch_target(ward_fetch_result **fr, ward_store *s, const ward_source *src, const char *target,
			const ward_ingest_opts *o)
{
	ward_fetch_opts fo;
	ward_doc_latest prev;
	allow_ctx actx = {s};
	int rc, found = 0;

	if (src->kind == WARD_KIND_FILE)
		return ward_fetch_file(fr, src->pattern, target, o->max_bytes);
	memset(&fo, 0, sizeof(fo));
	fo.ca_file = o->ca_file;
	fo.allow_private = src->allow_private;
	fo.allow_http = src->kind == WARD_KIND_HTTP;
	fo.max_bytes = o->max_bytes;
	fo.total_timeout_ms = o->timeout_ms;
	fo.allow_url = allow_url;
	fo.allow_ctx = &actx;
	if ((rc = ward_documents_latest(s, target, &prev, &found)) < 0)
		return rc;
	if (found && strcmp(prev.state, "dropped") != 0) {
		fo.if_none_match = prev.etag;
		fo.if_modified_since = prev.last_modified;
	}
	rc = ward_fetch_url(fr, target, &fo);
	ward_doc_latest_dispose(&prev);
	return rc;
}

int ward_ingest_one(ward_store *s, const ward_actor *who, const char *target, const ward_ingest_opts *o,
		    ward_ingest_item *item)
{
	ward_source src;
	ward_fetch_result *fr = NULL;
	ward_gate_result gate;
	ward_extracted *x = NULL;
	ward_findings found, seg;
	ward_chunk *chunks = NULL;
	ward_chunk_in *cin = NULL;
	ward_finding_in *fin = NULL;
	ward_doc_in doc;
	ward_policy policy;
	ward_verdict verdict = WARD_VERDICT_ACCEPT;
	ward_doc_outcome outcome;
	size_t nchunks = 0;
	double score = 0;
	int rc;

	memset(item, 0, sizeof(*item));
	memset(&src, 0, sizeof(src));
	memset(&gate, 0, sizeof(gate));
	memset(&doc, 0, sizeof(doc));
	ward_findings_init(&found);
	ward_findings_init(&seg);
	if (!(item->target = ward_strdup(target)))
		return ward_error_set(WARD_ENOMEM, "out of memory");

	/* 1. The allowlist, before any connection or open. */
	if ((rc = ward_sources_match(s, target, &src)) < 0) {
		item->not_allowlisted = rc == WARD_EPOLICY;
		rc = item_from_error(item, rc);
		goto done;
	}
	/* 2. Fetch. */
	if ((rc = fetch_target(&fr, s, &src, target, o)) < 0) {
		rc = item_from_error(item, rc);
		goto done;
	}
	if (fr->not_modified) {
		ward_doc_latest prev;
		int have = 0;
		if ((rc = ward_documents_latest(s, target, &prev, &have)) < 0)
			goto done;
		item->document_id = prev.id;
		item->version = prev.version;
		ward_doc_latest_dispose(&prev);
		rc = item_set(item, WARD_INGEST_UNCHANGED, "not modified (conditional re-fetch)");
		goto done;
	}
	doc.source_id = src.id;
	doc.uri = target;
	doc.final_url = fr->final_url ? fr->final_url : target;
	doc.peer_ip = fr->peer_ip;
	doc.http_status = fr->status;
	doc.etag = fr->etag;
	doc.last_modified = fr->last_modified;
	doc.bytes = (const uint8_t *)fr->body;
	doc.len = fr->len;
	doc.keep_bytes = o->keep_bytes;
	memcpy(doc.byte_sha256, fr->sha256, WARD_SHA256_LEN);
	doc.fetched_at = fr->fetched_at;
	doc.ruleset_sha256 = o->rules ? ward_ruleset_sha256(o->rules) : "none";

	/* 3. Type gate. */
	if ((rc = ward_typegate(&gate, fr->body, fr->len, fr->content_type, doc.final_url, 0)) < 0) {
		rc = item_from_error(item, rc);
		goto done;
	}
	doc.declared_type = gate.declared;
	doc.detected_type = gate.detected;
	if (gate.decision == WARD_GATE_REJECT) {
		if ((rc = ward_documents_record_reject(s, who, &doc, gate.reason)) < 0)
			goto done;
		rc = item_set(item, WARD_INGEST_REJECTED, gate.reason);
		goto done;
	}
	if (gate.decision == WARD_GATE_QUARANTINE) {
		/* Kept for the reviewer, never parsed or served. */
		doc.verdict = "quarantine";
		doc.title = "";
		if ((rc = ward_documents_store(s, who, &doc, &outcome, &item->document_id, &item->version)) < 0)
			goto done;
		rc = item_set(item, outcome == WARD_DOC_UNCHANGED ? WARD_INGEST_UNCHANGED : WARD_INGEST_QUARANTINED,
			      gate.reason);
		goto done;
	}

	/* 4. Extract, 5. scan and decide. */
	if ((rc = ward_extract(&x, gate.utf8, gate.utf8_len, gate.type)) < 0) {
		rc = item_from_error(item, rc);
		goto done;
	}
	doc.title = x->title;
	if (o->rules) {
		if ((rc = scan_document(o->rules, x, &found, &seg)) < 0) {
			rc = item_from_error(item, rc);
			goto done;
		}
		/* Visible findings point into the extracted text: map them to the
		 * original bytes, as segment findings already are. */
		for (size_t i = 0; i < found.n; i++) {
			found.items[i].start = ward_offmap_lookup(&x->map, found.items[i].start);
			found.items[i].end = ward_offmap_lookup(&x->map, found.items[i].end);
		}
		ward_policy_default(&policy);
		if ((rc = findings_merge(&found, &seg)) < 0)
			goto done;
		ward_verdict_decide(&verdict, &score, &found, (int)src.trust, &policy);
	}
	doc.verdict = ward_verdict_name(verdict);
	doc.score = score;
	if (found.n) {
		if (!(fin = ward_calloc(found.n, sizeof(*fin)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		findings_to_rows(fin, &found);
		doc.findings = fin;
		doc.nfindings = found.n;
	}
	if (verdict == WARD_VERDICT_REJECT) {
		char why[128];
		snprintf(why, sizeof(why), "verdict reject (score %.1f, %zu findings)", score, found.n);
		if ((rc = ward_documents_record_reject(s, who, &doc, why)) < 0)
			goto done;
		rc = item_set(item, WARD_INGEST_REJECTED, why);
		goto done;
	}

	/* 6. Chunk, 7. sign and store in one transaction. */
	if ((rc = ward_chunk_text(&chunks, &nchunks, x, NULL)) < 0) {
		rc = item_from_error(item, rc);
		goto done;
	}
	if (nchunks && !(cin = ward_calloc(nchunks, sizeof(*cin)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nchunks; i++) {
		cin[i].heading_path = chunks[i].heading_path;
		cin[i].char_start = chunks[i].start;
		cin[i].char_end = chunks[i].end;
		cin[i].text = x->text + chunks[i].start;
		cin[i].len = chunks[i].end - chunks[i].start;
	}
	doc.chunks = cin;
	doc.nchunks = nchunks;
	if ((rc = ward_documents_store(s, who, &doc, &outcome, &item->document_id, &item->version)) < 0)
		goto done;
	switch (outcome) {
	case WARD_DOC_NEW:
		rc = item_set(item, WARD_INGEST_NEW, NULL);
		break;
	case WARD_DOC_UPDATED:
		rc = item_set(item, WARD_INGEST_UPDATED, NULL);
		break;
	case WARD_DOC_UNCHANGED:
		rc = item_set(item, WARD_INGEST_UNCHANGED, NULL);
		break;
	case WARD_DOC_QUARANTINED: {
		char why[128];
		snprintf(why, sizeof(why), "verdict quarantine (score %.1f, %zu findings)", score, found.n);
		rc = item_set(item, WARD_INGEST_QUARANTINED, why);
		break;
	}
	}
done:
	ward_free(fin);
	ward_free(cin);
	ward_chunks_free(chunks, nchunks);
	ward_findings_dispose(&found);
	ward_findings_dispose(&seg);
	ward_extracted_free(x);
	ward_gate_result_dispose(&gate);
	ward_fetch_result_free(fr);
	ward_source_dispose(&src);
	return rc;
}

/* ---- batch targets --------------------------------------------------------- */

void ward_ingest_targets_free(char **targets, size_t n)
{
	ward_fetch_paths_free(targets, n);
}

int ward_ingest_source_targets(ward_store *s, int64_t source_id, char ***targets, size_t *n)
{
	ward_source src;
	int rc;

	*targets = NULL;
	*n = 0;
	if ((rc = ward_sources_get(s, source_id, &src)) < 0)
		return rc;
	if (strcmp(src.state, "approved") != 0) {
		rc = ward_error_set(WARD_EPOLICY, "source %lld is %s, not approved", (long long)source_id, src.state);
		goto done;
	}
	if (src.kind == WARD_KIND_FILE) {
		rc = ward_fetch_list_files(targets, n, src.pattern, WARD_MAX_BATCH_TARGETS);
	} else if (strstr(src.pattern, "://*.") == NULL) {
		char **one = ward_calloc(1, sizeof(*one));
		if (!one || !(one[0] = ward_strdup(src.pattern))) {
			ward_free(one);
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		*targets = one;
		*n = 1;
	}
done:
	ward_source_dispose(&src);
	return rc;
}

int ward_ingest_manifest_targets(const char *path, char ***targets, size_t *n)
{
	json_t *doc = NULL, *list, *v;
	char **out = NULL;
	size_t i, count;
	int rc;

	*targets = NULL;
	*n = 0;
	if ((rc = ward_yaml_load_file(&doc, path, WARD_MAX_MANIFEST_FILE, NULL)) < 0)
		return rc;
	list = json_is_array(doc) ? doc : json_object_get(doc, "targets");
	if (!json_is_array(list) || (json_is_object(doc) && json_object_size(doc) != 1)) {
		rc = ward_error_set(WARD_EINVAL, "manifest '%s': expected a list of URLs/paths or {targets: [...]}", path);
		goto done;
	}
	count = json_array_size(list);
	if (count > WARD_MAX_BATCH_TARGETS) {
		rc = ward_error_set(WARD_ETOOBIG, "manifest '%s': more than %d targets", path, WARD_MAX_BATCH_TARGETS);
		goto done;
	}
	if (count && !(out = ward_calloc(count, sizeof(*out)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > WARD_MAX_PATH_LEN) {
			rc = ward_error_set(WARD_EINVAL, "manifest '%s': entry %zu is not a URL or path", path, i);
			goto done;
		}
		if (!(out[i] = ward_strdup(json_string_value(v)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
	}
	*targets = out;
	*n = count;
	out = NULL;
done:
	ward_ingest_targets_free(out, count);
	json_decref(doc);
	return rc;
}

/* ---- lock ---------------------------------------------------------------------- */

int ward_ingest_lock(const char *home, int *fd)
{
	ward_buf path;
	int rc = 0;

	*fd = -1;
	ward_buf_init(&path, WARD_MAX_PATH_LEN);
	if (ward_buf_printf(&path, "%s/ingest.lock", home) < 0) {
		ward_buf_dispose(&path);
		return ward_error_set(WARD_ETOOBIG, "home path too long");
	}
	*fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		rc = ward_error_set(WARD_EIO, "cannot open '%s': %s", path.ptr, strerror(errno));
	} else if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? ward_error_set(WARD_EBUSY, "another ingest is already running on '%s'", home)
					  : ward_error_set(WARD_EIO, "cannot lock '%s': %s", path.ptr, strerror(errno));
		close(*fd);
		*fd = -1;
	}
	ward_buf_dispose(&path);
	return rc;
}

void ward_ingest_unlock(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}
