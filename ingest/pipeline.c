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
#include "ragward/normalize.h"
#include "ragward/scandoc.h"
#include "ragward/sources.h"
#include "ragward/typegate.h"
#include "ragward/verdict.h"
#include "ingest/pipeline_internal.h"
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

void ward_pipeline_findings_to_rows(ward_finding_in *rows, const ward_findings *f)
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
	if (found) {
		fo.if_none_match = prev.etag;
		fo.if_modified_since = prev.last_modified;
	}
	rc = ward_fetch_url(fr, target, &fo);
	ward_doc_latest_dispose(&prev);
	return rc;
}

/*
 * The strip action: invisible characters (tag characters, zero-width
 * characters inside words, bidi controls, variation-selector runs, private
 * use) are removed from a chunk's served text. Which characters count is the
 * normalizer's inventory, so legitimate uses (emoji ZWJ sequences, flags,
 * Persian ZWNJ) stay. The signature covers the stripped text; the removal is
 * recorded as the document's findings, with offsets.
 */
int ward_pipeline_strip_invisible(char **out, size_t *out_len, size_t *removed, const char *text, size_t len)
{
	ward_normalized *n = NULL;
	ward_buf b;
	size_t pos = 0;
	int rc;

	*out = NULL;
	*out_len = 0;
	ward_buf_init(&b, len + 1);
	if ((rc = ward_normalize(&n, text, len)) < 0)
		goto done;
	for (size_t i = 0; i < n->ninvisible; i++) {
		const ward_invisible *v = &n->invisible[i];
		if (v->start < pos || v->end > len)
			continue;
		if ((rc = ward_buf_append(&b, text + pos, v->start - pos)) < 0)
			goto done;
		*removed += v->count;
		pos = v->end;
	}
	if ((rc = ward_buf_append(&b, text + pos, len - pos)) < 0 || (rc = ward_buf_detach(&b, out, out_len)) < 0)
		goto done;
done:
	if (rc < 0)
		ward_error_set(rc, "stripping invisible characters: %s", rc == WARD_ENOMEM ? "out of memory" : "failed");
	ward_normalized_free(n);
	ward_buf_dispose(&b);
	return rc;
}

int ward_pipeline_policy(ward_store *s, ward_policy *p)
{
	ward_policy_default(p);
	return ward_policy_configure(p, ward_store_config(s)->thresholds);
}

int ward_pipeline_judge(const ward_ruleset *rules, const ward_policy *p, int trust, const ward_extracted *x,
			ward_findings *found, ward_verdict *verdict, double *score)
{
	int rc;

	if ((rc = ward_scan_document(rules, x, found)) < 0)
		return rc;
	ward_verdict_decide(verdict, score, found, trust, p);
	return 0;
}

/*
 * 5. Scan and decide, 6. chunk, 7. sign and store in one transaction: the
 * stages after extraction, for a document or a feed item. Sets the item's
 * outcome; returns an error only when the store itself failed.
 */
static int judge_and_store(ward_store *s, const ward_actor *who, const ward_ingest_opts *o, const ward_source *src,
			   ward_doc_in *doc, const ward_extracted *x, ward_ingest_item *item)
{
	ward_findings found;
	ward_chunk *chunks = NULL;
	ward_chunk_in *cin = NULL;
	char **stripped = NULL;
	size_t nstripped = 0, nchunks = 0;
	ward_finding_in *fin = NULL;
	ward_policy policy;
	ward_verdict verdict = WARD_VERDICT_ACCEPT;
	ward_doc_outcome outcome;
	double score = 0;
	int rc = 0;

	ward_findings_init(&found);
	if (o->rules) {
		if ((rc = ward_pipeline_policy(s, &policy)) < 0)
			goto done;
		if ((rc = ward_pipeline_judge(o->rules, &policy, (int)src->trust, x, &found, &verdict, &score)) < 0) {
			rc = item_from_error(item, rc);
			goto done;
		}
	}
	doc->verdict = ward_verdict_name(verdict);
	doc->score = score;
	if (found.n) {
		if (!(fin = ward_calloc(found.n, sizeof(*fin)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		ward_pipeline_findings_to_rows(fin, &found);
		doc->findings = fin;
		doc->nfindings = found.n;
	}
	if (verdict == WARD_VERDICT_REJECT) {
		char why[128];
		snprintf(why, sizeof(why), "verdict reject (score %.1f, %zu findings)", score, found.n);
		if ((rc = ward_documents_record_reject(s, who, doc, why)) < 0)
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
	if (verdict == WARD_VERDICT_STRIP && nchunks && !(stripped = ward_calloc(nchunks, sizeof(*stripped)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nchunks; i++) {
		cin[i].heading_path = chunks[i].heading_path;
		cin[i].char_start = chunks[i].start;
		cin[i].char_end = chunks[i].end;
		cin[i].text = x->text + chunks[i].start;
		cin[i].len = chunks[i].end - chunks[i].start;
		if (stripped) {
			if ((rc = ward_pipeline_strip_invisible(&stripped[i], &cin[i].len, &nstripped, cin[i].text, cin[i].len)) < 0)
				goto done;
			cin[i].text = stripped[i];
		}
	}
	doc->chunks = cin;
	doc->nchunks = nchunks;
	if ((rc = ward_documents_store(s, who, doc, &outcome, &item->document_id, &item->version)) < 0)
		goto done;
	switch (outcome) {
	case WARD_DOC_NEW:
	case WARD_DOC_UPDATED: {
		char why[128];
		snprintf(why, sizeof(why), "verdict %s (score %.1f, %zu findings%s)", ward_verdict_name(verdict), score,
			 found.n, nstripped ? ", invisible characters stripped" : "");
		rc = item_set(item, outcome == WARD_DOC_NEW ? WARD_INGEST_NEW : WARD_INGEST_UPDATED,
			      verdict == WARD_VERDICT_ACCEPT ? NULL : why);
		break;
	}
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
	for (size_t i = 0; stripped && i < nchunks; i++)
		ward_free(stripped[i]);
	ward_free(stripped);
	ward_free(fin);
	ward_free(cin);
	ward_chunks_free(chunks, nchunks);
	ward_findings_dispose(&found);
	return rc;
}

/*
 * An RSS/Atom feed: every item becomes its own document, identified by the
 * feed URL plus a fragment derived from the item's link (or title and date),
 * so an item keeps its identity and versions across runs. The feed's outcome
 * summarises its items.
 */
static int ingest_feed(ward_store *s, const ward_actor *who, const ward_ingest_opts *o, const ward_source *src,
		       ward_doc_in *doc, const ward_gate_result *gate, ward_ingest_item *item)
{
	ward_feed_item *items = NULL;
	size_t n = 0, counts[6] = {0};
	char why[160];
	int rc;

	if ((rc = ward_extract_feed(&items, &n, gate->utf8, gate->utf8_len)) < 0)
		return item_from_error(item, rc);
	for (size_t i = 0; i < n; i++) {
		ward_ingest_item sub;
		ward_doc_in d = *doc;
		uint8_t h[WARD_SHA256_LEN];
		char hex[2 * WARD_SHA256_LEN + 1], *uri = NULL, *final = NULL;
		ward_buf key;

		memset(&sub, 0, sizeof(sub));
		ward_buf_init(&key, 3 * WARD_MAX_URL_LEN);
		if (ward_buf_printf(&key, "%s\n%s\n%s", items[i].link ? items[i].link : "",
				    items[i].link ? "" : (items[i].title ? items[i].title : ""),
				    items[i].link ? "" : (items[i].date ? items[i].date : "")) < 0 ||
		    (rc = ward_sha256(h, key.ptr, key.len)) < 0) {
			ward_buf_dispose(&key);
			rc = rc < 0 ? rc : ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		ward_buf_dispose(&key);
		ward_hex_encode_to(hex, h, 8);
		ward_buf_init(&key, 2 * WARD_MAX_URL_LEN);
		if (ward_buf_printf(&key, "%s#item-%s", doc->uri, hex) < 0 || ward_buf_detach(&key, &uri, NULL) < 0 ||
		    ward_buf_printf(&key, "%s#item-%s", doc->final_url, hex) < 0 ||
		    ward_buf_detach(&key, &final, NULL) < 0) {
			ward_buf_dispose(&key);
			ward_free(uri);
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		ward_buf_dispose(&key);
		d.uri = uri;
		d.final_url = final;
		d.title = items[i].title ? items[i].title : "";
		/* An item's identity is its own bytes within the feed: hash what
		 * it contributes, so other items changing leave it unchanged. */
		if ((rc = ward_sha256(d.byte_sha256, items[i].content ? items[i].content->text : "",
				      items[i].content ? items[i].content->len : 0)) < 0) {
			ward_free(uri);
			ward_free(final);
			goto done;
		}
		d.keep_bytes = 0;
		if (items[i].content && (rc = ward_extracted_rebase(items[i].content, &gate->map)) < 0) {
			ward_free(uri);
			ward_free(final);
			goto done;
		}
		if (items[i].content)
			rc = judge_and_store(s, who, o, src, &d, items[i].content, &sub);
		else
			rc = item_set(&sub, WARD_INGEST_REJECTED, "feed item without content");
		ward_free(uri);
		ward_free(final);
		if (rc < 0) {
			ward_ingest_item_dispose(&sub);
			goto done;
		}
		counts[sub.outcome]++;
		ward_ingest_item_dispose(&sub);
	}
	snprintf(why, sizeof(why), "feed: %zu items (%zu new, %zu updated, %zu unchanged, %zu quarantined, %zu rejected)",
		 n, counts[0], counts[1], counts[2], counts[3], counts[4]);
	rc = item_set(item, counts[WARD_INGEST_NEW]           ? WARD_INGEST_NEW
			    : counts[WARD_INGEST_UPDATED]     ? WARD_INGEST_UPDATED
			    : counts[WARD_INGEST_QUARANTINED] ? WARD_INGEST_QUARANTINED
			    : counts[WARD_INGEST_REJECTED] && !counts[WARD_INGEST_UNCHANGED] ? WARD_INGEST_REJECTED
							      : WARD_INGEST_UNCHANGED,
		      why);
done:
	ward_feed_items_free(items, n);
	return rc;
}

int ward_ingest_one(ward_store *s, const ward_actor *who, const char *target, const ward_ingest_opts *o,
		    ward_ingest_item *item)
{
	ward_source src;
	ward_fetch_result *fr = NULL;
	ward_gate_result gate;
	ward_extracted *x = NULL;
	char *heading_title = NULL;
	ward_doc_in doc;
	ward_doc_outcome outcome;
	int rc;

	memset(item, 0, sizeof(*item));
	memset(&src, 0, sizeof(src));
	memset(&gate, 0, sizeof(gate));
	memset(&doc, 0, sizeof(doc));
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

	/* 4. Extract (a feed: each item is its own document), then 5-7. */
	if (gate.type == WARD_TYPE_FEED) {
		rc = ingest_feed(s, who, o, &src, &doc, &gate, item);
		goto done;
	}
	if ((rc = ward_extract(&x, gate.utf8, gate.utf8_len, gate.type)) < 0) {
		rc = item_from_error(item, rc);
		goto done;
	}
	if ((rc = ward_extracted_rebase(x, &gate.map)) < 0)
		goto done;
	doc.title = x->title;
	/* Markdown and text have no <title>: their first heading names them. */
	for (size_t i = 0; (!doc.title || !*doc.title) && i < x->nblocks; i++)
		if (x->blocks[i].kind == WARD_BLOCK_HEADING) {
			size_t n = x->blocks[i].end - x->blocks[i].start;
			if (n > WARD_MAX_TITLE_LEN)
				n = WARD_MAX_TITLE_LEN;
			if (!(heading_title = ward_strndup(x->text + x->blocks[i].start, n))) {
				rc = ward_error_set(WARD_ENOMEM, "out of memory");
				goto done;
			}
			doc.title = heading_title;
		}
	rc = judge_and_store(s, who, o, &src, &doc, x, item);
done:
	ward_free(heading_title);
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
	} else {
		/* The pattern URL itself (a wildcard host has none), then the seeds. */
		json_t *seeds = json_loads(src.seeds ? src.seeds : "[]", 0, NULL);
		size_t ns = json_array_size(seeds), k = 0, i;
		char **list = ward_calloc(ns + 1, sizeof(*list));
		json_t *v;

		if (!seeds || !list) {
			json_decref(seeds);
			ward_free(list);
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		if (strstr(src.pattern, "://*.") == NULL && !(list[k++] = ward_strdup(src.pattern)))
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
		json_array_foreach(seeds, i, v) if (rc == 0 && json_is_string(v) &&
						     !(list[k++] = ward_strdup(json_string_value(v))))
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
		json_decref(seeds);
		if (rc < 0) {
			ward_ingest_targets_free(list, k);
			goto done;
		}
		*targets = list;
		*n = k;
	}
done:
	ward_source_dispose(&src);
	return rc;
}

int ward_ingest_manifest_targets(const char *path, char ***targets, size_t *n)
{
	json_t *doc = NULL, *list, *v;
	char **out = NULL;
	size_t i, count = 0;
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
