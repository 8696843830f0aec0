/*
 * The audit log: events as RFC 6962 leaves, signed checkpoints, the external
 * anchor file, and the verifier.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/buf.h"
#include "ragward/keys.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

#define EVENT_TAG "ragward/audit-event/v1"
#define CHECKPOINT_TAG "ragward/checkpoint/v1"

/* ---- leaf encoding ------------------------------------------------------ */

static int put_field(ward_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

	if (n > UINT32_MAX)
		return ward_error_set(WARD_ETOOBIG, "audit field too long");
	if (ward_buf_append(b, len, 4) < 0 || ward_buf_append(b, s, n) < 0)
		return b->err;
	return 0;
}

/* The leaf hash of one event: every field, length-prefixed, after a domain tag. */
static int event_leaf(ward_hash out, int64_t seq, const char *at, const char *actor, long uid, const char *action,
		      const char *subject, const char *details)
{
	ward_buf b;
	char num[32], uidnum[32];
	int rc;

	ward_buf_init(&b, WARD_MAX_AUDIT_DETAILS + 16 * 1024);
	snprintf(num, sizeof(num), "%" PRId64, seq);
	snprintf(uidnum, sizeof(uidnum), "%ld", uid);
	if ((rc = ward_buf_puts(&b, EVENT_TAG)) < 0 || (rc = put_field(&b, num)) < 0 || (rc = put_field(&b, at)) < 0 ||
	    (rc = put_field(&b, actor)) < 0 || (rc = put_field(&b, uidnum)) < 0 || (rc = put_field(&b, action)) < 0 ||
	    (rc = put_field(&b, subject)) < 0 || (rc = put_field(&b, details)) < 0) {
		ward_buf_dispose(&b);
		return ward_error_set(rc, "encoding audit event %" PRId64 ": too large or out of memory", seq);
	}
	rc = ward_merkle_leaf_hash(out, b.ptr, b.len);
	ward_buf_dispose(&b);
	return rc;
}

/* ---- frontier persistence ---------------------------------------------- */

/* Loads the frontier saved by the last commit, or rebuilds it from the stored
 * leaf hashes when it is missing or disagrees with the event count. */
static int frontier_load(ward_store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t count = 0;
	int rc;

	ward_merkle_frontier_init(&s->frontier);
	if ((rc = ward_db_prepare(s, &st, "SELECT count(*) FROM audit_events")) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);

	if ((rc = ward_db_prepare(s, &st, "SELECT value FROM meta WHERE key = 'audit_frontier'")) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)sizeof(s->frontier)) {
		memcpy(&s->frontier, sqlite3_column_blob(st, 0), sizeof(s->frontier));
	}
	sqlite3_finalize(st);
	if ((int64_t)s->frontier.size == count) {
		s->frontier_loaded = 1;
		return 0;
	}

	ward_merkle_frontier_init(&s->frontier);
	if ((rc = ward_db_prepare(s, &st, "SELECT leaf_hash FROM audit_events ORDER BY seq")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != WARD_SHA256_LEN) {
			sqlite3_finalize(st);
			return ward_error_set(WARD_EVERIFY, "audit log damaged: bad leaf hash length");
		}
		if ((rc = ward_merkle_frontier_append(&s->frontier, sqlite3_column_blob(st, 0))) < 0) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return ward_db_fail(s, "reading audit leaves");
	s->frontier_loaded = 1;
	return 0;
}

int ward_audit_tx_begin(ward_store *s)
{
	s->frontier_loaded = 0;
	return 0;
}

int ward_audit_append(ward_store *s, const ward_actor *who, const char *action, const char *subject,
		      const json_t *details)
{
	sqlite3_stmt *st = NULL;
	char *djson = NULL;
	char at[32];
	ward_hash leaf;
	int64_t seq;
	int rc;

	if (!s->in_tx)
		return ward_error_set(WARD_EINVAL, "audit event '%s' outside a transaction", action);
	if (!s->frontier_loaded && (rc = frontier_load(s)) < 0)
		return rc;
	if (details)
		djson = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	else
		djson = ward_strdup("{}");
	if (!djson)
		return ward_error_set(WARD_ENOMEM, "encoding audit details: out of memory");
	if (strlen(djson) > WARD_MAX_AUDIT_DETAILS) {
		rc = ward_error_set(WARD_ETOOBIG, "audit details of '%s' exceed %d bytes", action,
				    WARD_MAX_AUDIT_DETAILS);
		goto done;
	}
	seq = (int64_t)s->frontier.size + 1;
	ward_now_rfc3339(at);
	if ((rc = event_leaf(leaf, seq, at, who->name, who->uid, action, subject, djson)) < 0)
		goto done;
	if ((rc = ward_db_prepare(s, &st,
				  "INSERT INTO audit_events(seq, at, actor, uid, action, subject, details, leaf_hash)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")) < 0)
		goto done;
	sqlite3_bind_int64(st, 1, seq);
	ward_db_bind_text(st, 2, at);
	ward_db_bind_text(st, 3, who->name);
	sqlite3_bind_int64(st, 4, who->uid);
	ward_db_bind_text(st, 5, action);
	ward_db_bind_text(st, 6, subject);
	ward_db_bind_text(st, 7, djson);
	sqlite3_bind_blob(st, 8, leaf, WARD_SHA256_LEN, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = ward_db_fail(s, "appending audit event");
		goto done;
	}
	if ((rc = ward_merkle_frontier_append(&s->frontier, leaf)) < 0)
		goto done;
	s->events_appended = 1;
done:
	sqlite3_finalize(st);
	ward_free(djson); /* json_dumps allocates through the same hook (ward_alloc_install_jansson) */
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------- */

/* The signed body of a checkpoint: five lines, each ending in '\n'. */
static int checkpoint_body(ward_buf *b, const ward_checkpoint *c)
{
	char *root = NULL;
	int rc;

	if ((rc = ward_base64_encode(&root, c->root, WARD_SHA256_LEN)) < 0)
		return rc;
	rc = ward_buf_printf(b, CHECKPOINT_TAG "\n%s\n%" PRIu64 "\n%s\n%s\n", c->store_id, c->size, root, c->time);
	ward_free(root);
	return rc < 0 ? ward_error_set(rc, "encoding checkpoint") : 0;
}

static int checkpoint_sign(ward_store *s, ward_checkpoint *c)
{
	ward_buf b;
	int rc;

	if (!s->signer)
		return ward_error_set(WARD_EKEY, "signing a checkpoint needs the store's signing key");
	memcpy(c->store_id, s->store_id, sizeof(c->store_id));
	memcpy(c->key_id, s->key_id, sizeof(c->key_id));
	ward_now_rfc3339(c->time);
	ward_buf_init(&b, 1024);
	if ((rc = checkpoint_body(&b, c)) == 0)
		rc = ward_sign(c->signature, s->signer, b.ptr, b.len);
	ward_buf_dispose(&b);
	return rc;
}

static int checkpoint_insert(ward_store *s, const ward_checkpoint *c)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st,
				  "INSERT INTO checkpoints(tree_size, root, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->size);
	sqlite3_bind_blob(st, 2, c->root, WARD_SHA256_LEN, SQLITE_TRANSIENT);
	ward_db_bind_text(st, 3, c->time);
	ward_db_bind_text(st, 4, c->key_id);
	sqlite3_bind_blob(st, 5, c->signature, WARD_ED25519_SIG_LEN, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = ward_db_fail(s, "storing checkpoint");
	sqlite3_finalize(st);
	return rc;
}

/*
 * Refuses to sign a checkpoint the anchor outside the database does not
 * agree with: after an older database was restored, or the log truncated,
 * signing would paper over the evidence (T49). The anchor must name this
 * store and a size and root the store has itself checkpointed.
 */
static int anchor_allows_signing(ward_store *s)
{
	ward_checkpoint a;
	sqlite3_stmt *st = NULL;
	char path[WARD_MAX_PATH_LEN];
	int rc, agrees = 0;

	if (snprintf(path, sizeof(path), "%s/anchor.checkpoint", s->home) >= (int)sizeof(path))
		return ward_error_set(WARD_ETOOBIG, "home path too long");
	rc = ward_checkpoint_read_file(&a, path);
	if (rc == WARD_ENOTFOUND)
		return 0;
	if (rc < 0)
		return ward_error_set(WARD_EVERIFY, "refusing to sign: %s (investigate, then remove the anchor)",
				      ward_error_last()->message);
	if (strcmp(a.store_id, s->store_id) != 0)
		return ward_error_set(WARD_EVERIFY, "refusing to sign: '%s' belongs to another store", path);
	if ((rc = ward_db_prepare(s, &st, "SELECT 1 FROM checkpoints WHERE tree_size = ?1 AND root = ?2 LIMIT 1")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)a.size);
	sqlite3_bind_blob(st, 2, a.root, WARD_SHA256_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	agrees = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ward_db_fail(s, "reading checkpoints");
	if (!agrees)
		return ward_error_set(WARD_EVERIFY,
				      "refusing to sign: the store does not contain its anchored checkpoint (%" PRIu64
				      " events); it was rolled back or rewritten — run 'ragward audit verify'",
				      a.size);
	return 0;
}

int ward_audit_tx_seal(ward_store *s)
{
	ward_checkpoint c;
	sqlite3_stmt *st = NULL;
	int rc;

	memset(&c, 0, sizeof(c));
	c.size = s->frontier.size;
	if ((rc = anchor_allows_signing(s)) < 0)
		return rc;
	if ((rc = ward_merkle_frontier_root(&s->frontier, c.root)) < 0 || (rc = checkpoint_sign(s, &c)) < 0 ||
	    (rc = checkpoint_insert(s, &c)) < 0)
		return rc;
	if ((rc = ward_db_prepare(s, &st, "INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_frontier', ?1)")) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, &s->frontier, sizeof(s->frontier), SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = ward_db_fail(s, "storing audit frontier");
	sqlite3_finalize(st);
	return rc;
}

static int checkpoint_from_row(ward_store *s, sqlite3_stmt *st, ward_checkpoint *c)
{
	const unsigned char *at = sqlite3_column_text(st, 2), *kid = sqlite3_column_text(st, 3);

	memset(c, 0, sizeof(*c));
	if (sqlite3_column_bytes(st, 1) != WARD_SHA256_LEN || sqlite3_column_bytes(st, 4) != WARD_ED25519_SIG_LEN ||
	    !at || !kid || sqlite3_column_bytes(st, 2) >= (int)sizeof(c->time) ||
	    sqlite3_column_bytes(st, 3) >= (int)sizeof(c->key_id) || sqlite3_column_int64(st, 0) < 0)
		return ward_error_set(WARD_EVERIFY, "checkpoint row is malformed");
	memcpy(c->store_id, s->store_id, sizeof(c->store_id));
	c->size = (uint64_t)sqlite3_column_int64(st, 0);
	memcpy(c->root, sqlite3_column_blob(st, 1), WARD_SHA256_LEN);
	memcpy(c->time, at, (size_t)sqlite3_column_bytes(st, 2));
	memcpy(c->key_id, kid, (size_t)sqlite3_column_bytes(st, 3));
	memcpy(c->signature, sqlite3_column_blob(st, 4), WARD_ED25519_SIG_LEN);
	return 0;
}

static int latest_checkpoint(ward_store *s, ward_checkpoint *c, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*found = 0;
	if ((rc = ward_db_prepare(s, &st,
				  "SELECT tree_size, root, at, key_id, signature FROM checkpoints ORDER BY id DESC LIMIT 1")) < 0)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = checkpoint_from_row(s, st, c);
		*found = rc == 0;
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading checkpoints");
	}
	sqlite3_finalize(st);
	return rc;
}

int ward_checkpoint_format(char **out, const ward_checkpoint *c)
{
	ward_buf b;
	char *sig = NULL;
	int rc;

	*out = NULL;
	ward_buf_init(&b, WARD_MAX_CHECKPOINT_FILE);
	if ((rc = checkpoint_body(&b, c)) < 0)
		goto done;
	if ((rc = ward_base64_encode(&sig, c->signature, WARD_ED25519_SIG_LEN)) < 0)
		goto done;
	if ((rc = ward_buf_printf(&b, "\nsignature %s %s\n", c->key_id, sig)) < 0 ||
	    (rc = ward_buf_detach(&b, out, NULL)) < 0)
		rc = ward_error_set(rc, "encoding checkpoint");
done:
	ward_free(sig);
	ward_buf_dispose(&b);
	return rc;
}

/* Splits off the next '\n'-terminated line; NULL when there is none. */
static char *next_line(char **cursor)
{
	char *line = *cursor, *nl = line ? strchr(line, '\n') : NULL;

	if (!nl)
		return NULL;
	*nl = '\0';
	*cursor = nl + 1;
	return line;
}

static int is_hex32(const char *s)
{
	if (strlen(s) != 32)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/*
 * Strict parser of the text form: exactly the five body lines, an empty line
 * and "signature <key_id> <base64>", nothing before or after.
 */
int ward_checkpoint_parse(ward_checkpoint *out, const char *text, size_t len)
{
	char *copy = NULL, *cur, *l[8] = {0}, *end = NULL, *sp;
	uint8_t *bin = NULL;
	size_t binlen = 0;
	unsigned long long size;
	int rc = WARD_EINVAL;

	memset(out, 0, sizeof(*out));
	if (len > WARD_MAX_CHECKPOINT_FILE)
		return ward_error_set(WARD_ETOOBIG, "checkpoint is larger than %d bytes", WARD_MAX_CHECKPOINT_FILE);
	if (memchr(text, '\0', len))
		return ward_error_set(WARD_EINVAL, "checkpoint contains a NUL byte");
	if (!(copy = ward_strndup(text, len)))
		return ward_error_set(WARD_ENOMEM, "parsing checkpoint: out of memory");
	cur = copy;
	for (int i = 0; i < 7; i++)
		if (!(l[i] = next_line(&cur)))
			goto bad;
	if (*cur != '\0' || strcmp(l[0], CHECKPOINT_TAG) != 0 || !is_hex32(l[1]) || l[5][0] != '\0')
		goto bad;
	memcpy(out->store_id, l[1], 33);
	if (l[2][0] < '0' || l[2][0] > '9' || (l[2][0] == '0' && l[2][1]))
		goto bad;
	errno = 0;
	size = strtoull(l[2], &end, 10);
	if (errno || *end || size > (unsigned long long)WARD_MAX_AUDIT_EVENTS)
		goto bad;
	out->size = size;
	if (ward_base64_decode(&bin, &binlen, l[3], strlen(l[3])) < 0 || binlen != WARD_SHA256_LEN)
		goto bad;
	memcpy(out->root, bin, WARD_SHA256_LEN);
	ward_free(bin);
	bin = NULL;
	if (strlen(l[4]) != 20 || l[4][19] != 'Z')
		goto bad;
	memcpy(out->time, l[4], 21);
	if (strncmp(l[6], "signature ", 10) != 0)
		goto bad;
	sp = strchr(l[6] + 10, ' ');
	if (!sp)
		goto bad;
	*sp = '\0';
	if (!is_hex32(l[6] + 10))
		goto bad;
	memcpy(out->key_id, l[6] + 10, 33);
	if (ward_base64_decode(&bin, &binlen, sp + 1, strlen(sp + 1)) < 0 || binlen != WARD_ED25519_SIG_LEN)
		goto bad;
	memcpy(out->signature, bin, WARD_ED25519_SIG_LEN);
	rc = 0;
	goto done;
bad:
	rc = ward_error_set(WARD_EINVAL, "checkpoint is malformed");
done:
	ward_free(bin);
	ward_free(copy);
	return rc;
}

int ward_checkpoint_read_file(ward_checkpoint *out, const char *path)
{
	char buf[WARD_MAX_CHECKPOINT_FILE + 1];
	struct stat sb;
	ssize_t n;
	size_t total = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ward_error_set(errno == ENOENT ? WARD_ENOTFOUND : WARD_EIO, "cannot open checkpoint '%s': %s",
				      path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return ward_error_set(WARD_EINVAL, "checkpoint '%s' is not a regular file", path);
	}
	while (total < sizeof(buf) && (n = read(fd, buf + total, sizeof(buf) - total)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ward_error_set(WARD_EIO, "reading checkpoint '%s': %s", path, strerror(errno));
			close(fd);
			return rc;
		}
		total += (size_t)n;
	}
	close(fd);
	if ((rc = ward_checkpoint_parse(out, buf, total)) < 0)
		return ward_error_wrap("checkpoint '%s'", path);
	return 0;
}

/* Writes HOME/anchor.checkpoint atomically: temp file, fsync, rename, fsync dir. */
int ward_audit_write_anchor(ward_store *s)
{
	ward_checkpoint c;
	ward_buf tmp, final;
	char *text = NULL;
	int rc, found = 0, fd = -1, dfd = -1;

	ward_buf_init(&tmp, WARD_MAX_PATH_LEN);
	ward_buf_init(&final, WARD_MAX_PATH_LEN);
	if ((rc = latest_checkpoint(s, &c, &found)) < 0 || !found)
		goto done;
	{
		/* Concurrent writers: never move the anchor backwards. */
		ward_checkpoint cur;
		char apath[WARD_MAX_PATH_LEN];
		snprintf(apath, sizeof(apath), "%s/anchor.checkpoint", s->home);
		if (ward_checkpoint_read_file(&cur, apath) == 0 && !strcmp(cur.store_id, c.store_id) &&
		    cur.size > c.size)
			goto done;
		ward_error_clear();
	}
	if ((rc = ward_checkpoint_format(&text, &c)) < 0)
		goto done;
	if (ward_buf_printf(&tmp, "%s/anchor.checkpoint.%ld.tmp", s->home, (long)getpid()) < 0 ||
	    ward_buf_printf(&final, "%s/anchor.checkpoint", s->home) < 0) {
		rc = ward_error_set(WARD_ETOOBIG, "anchor path too long");
		goto done;
	}
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) != 0) {
		rc = ward_error_set(WARD_EIO, "writing '%s': %s", tmp.ptr, strerror(errno));
		goto done;
	}
	close(fd);
	fd = -1;
	if (rename(tmp.ptr, final.ptr) != 0) {
		rc = ward_error_set(WARD_EIO, "renaming to '%s': %s", final.ptr, strerror(errno));
		goto done;
	}
	if ((dfd = open(s->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		fsync(dfd);
done:
	if (fd >= 0) {
		close(fd);
		unlink(tmp.ptr);
	}
	if (dfd >= 0)
		close(dfd);
	ward_free(text);
	ward_buf_dispose(&tmp);
	ward_buf_dispose(&final);
	return rc;
}

int ward_audit_checkpoint(ward_store *s, ward_checkpoint *out)
{
	sqlite3_stmt *st = NULL;
	int64_t count = 0;
	int rc, found = 0;

	if ((rc = ward_db_prepare(s, &st, "SELECT count(*) FROM audit_events")) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if ((rc = latest_checkpoint(s, out, &found)) < 0)
		return rc;
	if (found && (int64_t)out->size == count)
		return 0;
	/* The log has events no checkpoint covers (only possible after an
	 * interrupted or foreign write): sign one now, which needs the key. */
	if (!s->signer)
		return ward_error_set(WARD_EKEY, "the log has grown past its last checkpoint: signing one needs the key");
	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	if ((rc = frontier_load(s)) < 0 || (rc = ward_audit_tx_seal(s)) < 0) {
		ward_store_rollback(s);
		return rc;
	}
	s->events_appended = 0; /* sealed already */
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = ward_db_fail(s, "committing checkpoint");
		ward_store_rollback(s);
		return rc;
	}
	s->in_tx = 0;
	if (ward_audit_write_anchor(s) < 0)
		return rc = ward_error_wrap("checkpoint stored");
	return latest_checkpoint(s, out, &found);
}

/* ---- reading ------------------------------------------------------------- */

void ward_audit_events_free(ward_audit_event *ev, size_t n)
{
	if (!ev)
		return;
	for (size_t i = 0; i < n; i++) {
		ward_free(ev[i].time);
		ward_free(ev[i].actor);
		ward_free(ev[i].action);
		ward_free(ev[i].subject);
		ward_free(ev[i].details);
	}
	ward_free(ev);
}

int ward_audit_list(ward_store *s, int64_t limit, ward_audit_event **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	ward_audit_event *ev = NULL, *grown;
	size_t count = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ward_db_prepare(s, &st,
				  "SELECT seq, at, actor, uid, action, subject, details FROM ("
				  " SELECT * FROM audit_events ORDER BY seq DESC LIMIT ?1) ORDER BY seq")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(grown = ward_realloc(ev, cap * sizeof(*ev)))) {
				rc = ward_error_set(WARD_ENOMEM, "listing audit events: out of memory");
				goto done;
			}
			ev = grown;
		}
		memset(&ev[count], 0, sizeof(ev[count]));
		count++;
		ev[count - 1].seq = sqlite3_column_int64(st, 0);
		ev[count - 1].uid = (long)sqlite3_column_int64(st, 3);
		if ((rc = ward_db_col_dup(&ev[count - 1].time, st, 1)) < 0 ||
		    (rc = ward_db_col_dup(&ev[count - 1].actor, st, 2)) < 0 ||
		    (rc = ward_db_col_dup(&ev[count - 1].action, st, 4)) < 0 ||
		    (rc = ward_db_col_dup(&ev[count - 1].subject, st, 5)) < 0 ||
		    (rc = ward_db_col_dup(&ev[count - 1].details, st, 6)) < 0)
			goto done;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "listing audit events");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_audit_events_free(ev, count);
		return rc;
	}
	*out = ev;
	*n = count;
	return 0;
}

/* ---- verification -------------------------------------------------------- */

static int report_add(ward_audit_report *r, const char *object, const char *fmt, ...) WARD_PRINTF(3, 4);

static int report_add(ward_audit_report *r, const char *object, const char *fmt, ...)
{
	ward_finding_line *grown;
	ward_buf b;
	va_list ap;
	int rc;

	if (!(grown = ward_realloc(r->failures, (r->nfailures + 1) * sizeof(*grown))))
		return ward_error_set(WARD_ENOMEM, "audit report: out of memory");
	r->failures = grown;
	ward_buf_init(&b, 1024);
	va_start(ap, fmt);
	{
		char line[1024];
		vsnprintf(line, sizeof(line), fmt, ap);
		rc = ward_buf_puts(&b, line);
	}
	va_end(ap);
	grown[r->nfailures].object = ward_strdup(object);
	if (rc < 0 || !grown[r->nfailures].object || ward_buf_detach(&b, &grown[r->nfailures].problem, NULL) < 0) {
		ward_free(grown[r->nfailures].object);
		ward_buf_dispose(&b);
		return ward_error_set(WARD_ENOMEM, "audit report: out of memory");
	}
	r->nfailures++;
	return 0;
}

void ward_audit_report_dispose(ward_audit_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nfailures; i++) {
		ward_free(r->failures[i].object);
		ward_free(r->failures[i].problem);
	}
	ward_free(r->failures);
	memset(r, 0, sizeof(*r));
}

/* Reads every event, recomputes its leaf and reports gaps and edited rows.
 * The recomputed leaves (not the stored ones) form the tree. */
static int load_leaves(ward_store *s, ward_hash **leaves_out, uint64_t *n_out, ward_audit_report *r)
{
	sqlite3_stmt *st = NULL;
	ward_hash *leaves = NULL, *grown;
	uint64_t n = 0, cap = 0;
	int64_t expect = 1;
	int rc;

	if ((rc = ward_db_prepare(s, &st,
				  "SELECT seq, at, actor, uid, action, subject, details, leaf_hash FROM audit_events"
				  " ORDER BY seq")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const char *f[5];
		char obj[64];

		snprintf(obj, sizeof(obj), "event %" PRId64, seq);
		for (; expect < seq; expect++) {
			char missing[48];
			snprintf(missing, sizeof(missing), "event %" PRId64, expect);
			if ((rc = report_add(r, missing, "missing (deleted from the log)")) < 0)
				goto done;
		}
		expect = seq + 1;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			if (!(grown = ward_realloc(leaves, cap * sizeof(*leaves)))) {
				rc = ward_error_set(WARD_ENOMEM, "verifying audit log: out of memory");
				goto done;
			}
			leaves = grown;
		}
		f[0] = (const char *)sqlite3_column_text(st, 1);
		f[1] = (const char *)sqlite3_column_text(st, 2);
		f[2] = (const char *)sqlite3_column_text(st, 4);
		f[3] = (const char *)sqlite3_column_text(st, 5);
		f[4] = (const char *)sqlite3_column_text(st, 6);
		if (!f[0] || !f[1] || !f[2] || !f[3] || !f[4]) {
			if ((rc = report_add(r, obj, "has a NULL field")) < 0)
				goto done;
			memset(leaves[n], 0, sizeof(ward_hash));
		} else if ((rc = event_leaf(leaves[n], seq, f[0], f[1], (long)sqlite3_column_int64(st, 3), f[2], f[3],
					   f[4])) < 0) {
			goto done;
		}
		if (sqlite3_column_bytes(st, 7) != WARD_SHA256_LEN ||
		    memcmp(sqlite3_column_blob(st, 7), leaves[n], WARD_SHA256_LEN) != 0) {
			if ((rc = report_add(r, obj, "leaf hash mismatch (row edited)")) < 0)
				goto done;
		}
		n++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading audit events");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_free(leaves);
		return rc;
	}
	*leaves_out = leaves;
	*n_out = n;
	return 0;
}

/* 0 when the checkpoint's signature verifies with the key it names; the key
 * must be one this store has recorded. */
static int checkpoint_check_sig(ward_store *s, const ward_checkpoint *c, const char **why)
{
	ward_key *k = NULL;
	ward_buf b;
	int rc;

	*why = NULL;
	if (strcmp(c->store_id, s->store_id) != 0) {
		*why = "belongs to another store";
		return 0;
	}
	if (ward_keys_public(s, c->key_id, &k) < 0) {
		*why = "signed by an unknown key";
		return 0;
	}
	ward_buf_init(&b, 1024);
	if ((rc = checkpoint_body(&b, c)) == 0) {
		rc = ward_verify(k, c->signature, WARD_ED25519_SIG_LEN, b.ptr, b.len);
		if (rc == WARD_EVERIFY) {
			*why = "signature invalid";
			rc = 0;
		}
	}
	ward_buf_dispose(&b);
	ward_key_free(k);
	return rc;
}

/* Root of the first `size` leaves, computed with the frontier. */
static int prefix_root(ward_hash out, const ward_hash *leaves, uint64_t size)
{
	return ward_merkle_root(out, leaves, size);
}

static int check_anchor(ward_store *s, const ward_checkpoint *a, const char *name, const ward_hash *leaves,
			uint64_t n, ward_audit_report *r)
{
	const char *why = NULL;
	ward_hash root;
	int rc;

	if ((rc = checkpoint_check_sig(s, a, &why)) < 0)
		return rc;
	if (why)
		return report_add(r, name, "%s", why);
	if (a->size > n)
		return report_add(r, name, "log shrank from %" PRIu64 " to %" PRIu64 " events (truncated or rolled back)",
				  a->size, n);
	if ((rc = prefix_root(root, leaves, a->size)) < 0)
		return rc;
	if (!ward_ct_equal(root, a->root, WARD_SHA256_LEN))
		return report_add(r, name, "inconsistent with anchored checkpoint at size %" PRIu64
				  " (log rewritten or rolled back)", a->size);
	return 0;
}

/*
 * The anchors are read before the log, and the log in one read transaction:
 * an anchor is written after its commit, so one read first can only be as
 * old as the snapshot or older, never newer. Read after (as before), a
 * writer committing in between made the log look truncated ("log shrank")
 * to an `audit verify` or `verify` run during an ingest; events and
 * checkpoints read in two snapshots could do the same.
 */
typedef struct {
	int rc; /* 0, or the read's error (its message below) */
	ward_checkpoint c;
	char message[sizeof(((ward_error *)0)->message)];
} anchor_read_t;

int ward_audit_verify(ward_store *s, const char *extra_anchor_path, ward_audit_report *r)
{
	sqlite3_stmt *st = NULL;
	ward_hash *leaves = NULL;
	uint64_t n = 0, last_size = 0, max_size = 0;
	ward_buf path;
	int rc, have_last = 0, own_tx = 0;
	ward_hash last_root;
	const char *paths[2] = {NULL, extra_anchor_path};
	anchor_read_t anchors[2];

	memset(r, 0, sizeof(*r));
	memset(anchors, 0, sizeof(anchors));
	ward_buf_init(&path, WARD_MAX_PATH_LEN);
	/* Anchors kept outside the database: the home's own, and the caller's. */
	if ((rc = ward_buf_printf(&path, "%s/anchor.checkpoint", s->home)) < 0)
		goto done;
	paths[0] = path.ptr;
	for (int i = 0; i < 2; i++) {
		if (!paths[i])
			continue;
		if ((anchors[i].rc = ward_checkpoint_read_file(&anchors[i].c, paths[i])) < 0) {
			if (i == 1) { /* the caller's file: an error of the call */
				rc = anchors[i].rc;
				goto done;
			}
			snprintf(anchors[i].message, sizeof(anchors[i].message), "%s", ward_error_last()->message);
		}
	}
	if (sqlite3_get_autocommit(s->db)) {
		if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			rc = ward_db_fail(s, "starting the audit check");
			goto done;
		}
		own_tx = 1;
	}
	if ((rc = load_leaves(s, &leaves, &n, r)) < 0)
		goto done;
	r->events = n;

	/*
	 * Stored checkpoints, oldest first: each must be signed by a known key,
	 * never shrink, and agree with the recomputed tree at its size. For the
	 * common case of checkpoints at growing sizes, roots are computed in one
	 * pass with the frontier.
	 */
	{
		ward_merkle_frontier f;
		uint64_t fed = 0;

		ward_merkle_frontier_init(&f);
		if ((rc = ward_db_prepare(s, &st, "SELECT tree_size, root, at, key_id, signature, id FROM checkpoints"
						  " ORDER BY id")) < 0)
			goto done;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			ward_checkpoint c;
			const char *why = NULL;
			ward_hash root;
			char obj[64];

			snprintf(obj, sizeof(obj), "checkpoint %lld", (long long)sqlite3_column_int64(st, 5));
			r->checkpoints++;
			if (checkpoint_from_row(s, st, &c) < 0) {
				if ((rc = report_add(r, obj, "malformed row")) < 0)
					goto done;
				continue;
			}
			if ((rc = checkpoint_check_sig(s, &c, &why)) < 0)
				goto done;
			if (why && (rc = report_add(r, obj, "%s", why)) < 0)
				goto done;
			if (have_last && c.size < last_size &&
			    (rc = report_add(r, obj, "size %" PRIu64 " is smaller than the previous checkpoint's %" PRIu64,
					     c.size, last_size)) < 0)
				goto done;
			if (c.size > n) {
				if ((rc = report_add(r, obj, "log shrank from %" PRIu64 " to %" PRIu64 " events", c.size, n)) <
				    0)
					goto done;
				continue;
			}
			if (c.size >= fed) {
				for (; fed < c.size; fed++)
					if ((rc = ward_merkle_frontier_append(&f, leaves[fed])) < 0)
						goto done;
				rc = ward_merkle_frontier_root(&f, root);
			} else {
				rc = prefix_root(root, leaves, c.size);
			}
			if (rc < 0)
				goto done;
			if (!ward_ct_equal(root, c.root, WARD_SHA256_LEN) &&
			    (rc = report_add(r, obj, "root mismatch at size %" PRIu64 " (events edited, reordered or"
						     " inserted)", c.size)) < 0)
				goto done;
			if (have_last && c.size == last_size && !ward_ct_equal(last_root, c.root, WARD_SHA256_LEN) &&
			    (rc = report_add(r, obj, "split view: two roots for size %" PRIu64, c.size)) < 0)
				goto done;
			have_last = 1;
			last_size = c.size;
			memcpy(last_root, c.root, sizeof(last_root));
			if (c.size > max_size)
				max_size = c.size;
		}
		if (rc != SQLITE_DONE) {
			rc = ward_db_fail(s, "reading checkpoints");
			goto done;
		}
		sqlite3_finalize(st);
		st = NULL;
		rc = 0;
	}
	if (n > 0 && max_size < n) {
		char obj[64];
		snprintf(obj, sizeof(obj), "events %" PRIu64 "-%" PRIu64, max_size + 1, n);
		if ((rc = report_add(r, obj, "not covered by any signed checkpoint (inserted?)")) < 0)
			goto done;
	}

	{
		const char *names[2] = {"anchor", "checkpoint file"};
		for (int i = 0; i < 2; i++) {
			if (!paths[i] || (anchors[i].rc == WARD_ENOTFOUND && i == 0))
				continue;
			if (anchors[i].rc < 0) {
				rc = report_add(r, names[i], "%s", anchors[i].message);
			} else {
				r->anchors_checked++;
				rc = check_anchor(s, &anchors[i].c, names[i], leaves, n, r);
			}
			if (rc < 0)
				goto done;
		}
	}
done:
	sqlite3_finalize(st);
	if (own_tx)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL); /* read only: nothing to keep or lose */
	ward_free(leaves);
	ward_buf_dispose(&path);
	return rc;
}

/* ---- the serving check -------------------------------------------------- */

#define SERVE_CHECK_TRIES 5

/* The anchor as a value to compare: absent, unreadable or a checkpoint. */
typedef struct {
	int rc;
	ward_checkpoint c;
} anchor_state;

static void anchor_read(anchor_state *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->rc = ward_checkpoint_read_file(&a->c, path);
	ward_error_clear();
}

static int anchor_same(const anchor_state *x, const anchor_state *y)
{
	if (x->rc != y->rc)
		return 0;
	return x->rc != 0 || (strcmp(x->c.store_id, y->c.store_id) == 0 && x->c.size == y->c.size &&
			      memcmp(x->c.root, y->c.root, sizeof(x->c.root)) == 0);
}

/*
 * One pass in one read transaction, so that the events, the checkpoints and
 * the keys are one snapshot: a writer committing between two of the
 * verifier's statements would otherwise look like a log that shrank.
 */
static int serve_check_once(ward_store *s, ward_audit_report *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return ward_db_fail(s, "starting the store check");
	/* A database SQLite itself finds damaged: its audit log proves
	 * nothing, so the damage is the one failure reported. */
	if ((rc = ward_store_quick_check(s)) == WARD_EVERIFY)
		rc = report_add(r, "database", "%s", ward_error_last()->message);
	else if (rc == 0)
		rc = ward_audit_verify(s, NULL, r);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

int ward_audit_serve_check(ward_store *s, ward_audit_report *r, uint64_t *anchor_size)
{
	anchor_state before, after;
	char path[WARD_MAX_PATH_LEN];
	int rc;

	memset(r, 0, sizeof(*r));
	*anchor_size = 0;
	if (snprintf(path, sizeof(path), "%s/anchor.checkpoint", s->home) >= (int)sizeof(path))
		return ward_error_set(WARD_ETOOBIG, "home path too long");
	/*
	 * The anchor is refreshed after each commit, outside the database, and
	 * the verifier reads it after its snapshot: an ingest committing in
	 * between makes an anchor newer than the snapshot, which reads as a
	 * truncated log. When the anchor did not change across a pass, the one
	 * the verifier read is older than its snapshot and the verdict stands;
	 * when it changed, the pass proves nothing and runs again.
	 */
	for (int tries = 0; tries < SERVE_CHECK_TRIES; tries++) {
		ward_audit_report_dispose(r);
		anchor_read(&before, path);
		if ((rc = serve_check_once(s, r)) < 0)
			return rc;
		anchor_read(&after, path);
		if (!anchor_same(&before, &after))
			continue;
		/* Another store's anchor is a failure the verifier has reported. */
		if (after.rc == 0 && strcmp(after.c.store_id, s->store_id) == 0)
			*anchor_size = after.c.size;
		return 0;
	}
	ward_audit_report_dispose(r);
	return ward_error_set(WARD_EBUSY, "the anchor kept changing during %d store checks (ingest running?)",
			      SERVE_CHECK_TRIES);
}
