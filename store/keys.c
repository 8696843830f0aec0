/*
 * Signing keys on disk and in the keys table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/buf.h"
#include "ragward/keys.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

#define ENDORSE_TAG "ragward/key-endorsement/v1\n"

/*
 * Opens a private key the way OpenSSH's sshkey_perm_ok does: no symlink
 * (O_NOFOLLOW), a regular file, owned by us, and unreadable by group/other;
 * its directory must not be writable by group/other either.
 */
int ward_keys_load_private(ward_key **out, const char *path)
{
	char buf[WARD_MAX_KEY_FILE + 1];
	struct stat sb, db;
	size_t total = 0;
	ssize_t n;
	char *dir = NULL, *slash;
	int fd = -1, rc = 0;

	*out = NULL;
	if (!(dir = ward_strdup(path)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if ((slash = strrchr(dir, '/')))
		*(slash == dir ? slash + 1 : slash) = '\0';
	else {
		ward_free(dir);
		dir = ward_strdup(".");
		if (!dir)
			return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	if (lstat(dir, &db) != 0 || !S_ISDIR(db.st_mode)) {
		rc = ward_error_set(WARD_EKEY, "key directory '%s' is missing or not a directory", dir);
		goto done;
	}
	if (db.st_mode & 022) {
		rc = ward_error_set(WARD_EKEY, "key directory '%s' is writable by group or other (mode %04o): refusing",
				    dir, (unsigned)(db.st_mode & 07777));
		goto done;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		rc = ward_error_set(WARD_EKEY, errno == ELOOP ? "private key '%s' is a symlink: refusing"
							       : "cannot open private key '%s': %s",
				    path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = ward_error_set(WARD_EKEY, "private key '%s' is not a regular file", path);
		goto done;
	}
	if (sb.st_uid != geteuid()) {
		rc = ward_error_set(WARD_EKEY, "private key '%s' is owned by uid %ld, not by us (uid %ld): refusing", path,
				    (long)sb.st_uid, (long)geteuid());
		goto done;
	}
	if (sb.st_mode & 077) {
		rc = ward_error_set(WARD_EKEY,
				    "unprotected private key '%s': permissions %04o are too open; it must not be"
				    " accessible by group or other (chmod 600)",
				    path, (unsigned)(sb.st_mode & 07777));
		goto done;
	}
	if (sb.st_size > WARD_MAX_KEY_FILE) {
		rc = ward_error_set(WARD_EKEY, "private key '%s' is larger than %d bytes", path, WARD_MAX_KEY_FILE);
		goto done;
	}
	while (total < sizeof(buf) && (n = read(fd, buf + total, sizeof(buf) - total)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ward_error_set(WARD_EKEY, "reading private key '%s': %s", path, strerror(errno));
			goto done;
		}
		total += (size_t)n;
	}
	if (total > WARD_MAX_KEY_FILE) {
		rc = ward_error_set(WARD_EKEY, "private key '%s' is larger than %d bytes", path, WARD_MAX_KEY_FILE);
		goto done;
	}
	if ((rc = ward_key_from_pem(out, buf, total, 1)) < 0)
		rc = ward_error_set(WARD_EKEY, "private key '%s' is not a valid Ed25519 PEM key", path);
done:
	ward_wipe(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	ward_free(dir);
	return rc;
}

static int write_new_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	int rc = 0;

	if (fd < 0)
		return ward_error_set(WARD_EIO, "cannot create '%s': %s", path, strerror(errno));
	if (fchmod(fd, mode) != 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = ward_error_set(WARD_EIO, "writing '%s': %s", path, strerror(errno));
		unlink(path);
	}
	close(fd);
	return rc;
}

int ward_keys_write_files(const char *keys_dir, const ward_key *k, const char *key_id)
{
	char *priv = NULL, *pub = NULL;
	size_t priv_len = 0, pub_len = 0;
	ward_buf p;
	int rc;

	ward_buf_init(&p, WARD_MAX_PATH_LEN);
	if ((rc = ward_key_private_pem(k, &priv, &priv_len)) < 0 || (rc = ward_key_public_pem(k, &pub, &pub_len)) < 0)
		goto done;
	if ((rc = ward_buf_printf(&p, "%s/%s.key", keys_dir, key_id)) < 0)
		goto done;
	if ((rc = write_new_file(p.ptr, priv, priv_len, 0600)) < 0)
		goto done;
	ward_buf_reset(&p);
	if ((rc = ward_buf_printf(&p, "%s/%s.pub", keys_dir, key_id)) < 0)
		goto done;
	if ((rc = write_new_file(p.ptr, pub, pub_len, 0644)) < 0) {
		ward_buf_reset(&p);
		if (ward_buf_printf(&p, "%s/%s.key", keys_dir, key_id) == 0)
			unlink(p.ptr);
	}
done:
	if (priv)
		ward_free_secure(priv, priv_len);
	ward_free(pub);
	ward_buf_dispose(&p);
	return rc;
}

int ward_keys_insert(ward_store *s, const ward_key *k, const char *key_id)
{
	uint8_t pub[WARD_ED25519_PUB_LEN];
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	if ((rc = ward_key_public_raw(k, pub)) < 0)
		return rc;
	ward_now_rfc3339(now);
	if ((rc = ward_db_prepare(s, &st,
				  "INSERT INTO keys(key_id, public_key, state, created_at) VALUES (?1, ?2, 'active', ?3)")) < 0)
		return rc;
	ward_db_bind_text(st, 1, key_id);
	sqlite3_bind_blob(st, 2, pub, sizeof(pub), SQLITE_TRANSIENT);
	ward_db_bind_text(st, 3, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = ward_db_fail(s, "recording key");
	sqlite3_finalize(st);
	return rc;
}

/* Loads the active key's private half and checks it is the key the table names. */
int ward_keys_load_signer(ward_store *s)
{
	sqlite3_stmt *st = NULL;
	char id[33] = "", got[33];
	ward_buf path;
	ward_key *k = NULL;
	int rc;

	ward_buf_init(&path, WARD_MAX_PATH_LEN);
	if ((rc = ward_db_prepare(s, &st, "SELECT key_id FROM keys WHERE state = 'active'")) < 0)
		goto done;
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32) {
		rc = ward_error_set(WARD_EKEY, "store '%s' has no active signing key", s->home);
		goto done;
	}
	memcpy(id, sqlite3_column_text(st, 0), 32);
	if ((rc = ward_buf_printf(&path, "%s/keys/%s.key", s->home, id)) < 0)
		goto done;
	if ((rc = ward_keys_load_private(&k, path.ptr)) < 0)
		goto done;
	if ((rc = ward_key_id(k, got)) < 0)
		goto done;
	if (strcmp(got, id) != 0) {
		rc = ward_error_set(WARD_EKEY, "private key '%s' does not match the store's active key %s", path.ptr, id);
		goto done;
	}
	s->signer = k;
	k = NULL;
	memcpy(s->key_id, id, sizeof(id));
done:
	sqlite3_finalize(st);
	ward_key_free(k);
	ward_buf_dispose(&path);
	return rc;
}

/* Read once per retrieval (the chunks' key): kept prepared. */
static const char public_key_sql[] = "SELECT public_key FROM keys WHERE key_id = ?1";

int ward_keys_public(ward_store *s, const char *key_id, ward_key **out)
{
	sqlite3_stmt *st = NULL;
	char got[33];
	int rc;

	*out = NULL;
	if ((rc = ward_db_prepare_cached(s, &st, public_key_sql)) < 0)
		return rc;
	ward_db_bind_text(st, 1, key_id);
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != WARD_ED25519_PUB_LEN) {
		rc = ward_error_set(WARD_ENOTFOUND, "key '%s' is not known to this store", key_id);
		goto done;
	}
	if ((rc = ward_key_from_public(out, sqlite3_column_blob(st, 0))) < 0)
		goto done;
	/* A row whose key id is not the hash of its public key was edited. */
	if ((rc = ward_key_id(*out, got)) < 0)
		goto done;
	if (strcmp(got, key_id) != 0)
		rc = ward_error_set(WARD_EVERIFY, "key row '%s' does not match its public key", key_id);
done:
	ward_db_release(s, st);
	if (rc < 0) {
		ward_key_free(*out);
		*out = NULL;
	}
	return rc;
}

void ward_keys_free(ward_key_info *k, size_t n)
{
	if (!k)
		return;
	for (size_t i = 0; i < n; i++) {
		ward_free(k[i].state);
		ward_free(k[i].created_at);
		ward_free(k[i].retired_at);
	}
	ward_free(k);
}

int ward_keys_list(ward_store *s, ward_key_info **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	ward_key_info *v = NULL, *grown;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ward_db_prepare(s, &st,
				  "SELECT key_id, state, created_at, retired_at, public_key FROM keys ORDER BY created_at, rowid")) <
	    0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(grown = ward_realloc(v, (count + 1) * sizeof(*v)))) {
			rc = ward_error_set(WARD_ENOMEM, "listing keys: out of memory");
			goto done;
		}
		v = grown;
		memset(&v[count], 0, sizeof(v[count]));
		count++;
		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 4) != WARD_ED25519_PUB_LEN) {
			rc = ward_error_set(WARD_EVERIFY, "keys table holds a malformed row");
			goto done;
		}
		memcpy(v[count - 1].key_id, sqlite3_column_text(st, 0), 32);
		memcpy(v[count - 1].public_key, sqlite3_column_blob(st, 4), WARD_ED25519_PUB_LEN);
		if ((rc = ward_db_col_dup(&v[count - 1].state, st, 1)) < 0 ||
		    (rc = ward_db_col_dup(&v[count - 1].created_at, st, 2)) < 0 ||
		    (rc = ward_db_col_dup(&v[count - 1].retired_at, st, 3)) < 0)
			goto done;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "listing keys");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_keys_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

/* 1 when the keys table holds key_id, 0 when it does not, -1 when the store
 * cannot tell (then the caller must assume it might). */
static int key_known(ward_store *s, const char *key_id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM keys WHERE key_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Rotation: the new key files are written first, then one transaction retires
 * the old key, records the new one and the audit event carrying the old key's
 * endorsement of the new public key; the checkpoint sealing that transaction
 * is signed by the new key. If the transaction fails the new files are removed.
 */
int ward_keys_rotate(ward_store *s, const ward_actor *who, char new_key_id[33])
{
	ward_key *nk = NULL, *old = NULL;
	uint8_t pub[WARD_ED25519_PUB_LEN], sig[WARD_ED25519_SIG_LEN];
	char old_id[33], id[33], now[32], pubhex[2 * WARD_ED25519_PUB_LEN + 1], *sig64 = NULL;
	ward_buf msg, keys_dir;
	sqlite3_stmt *st = NULL;
	json_t *details = NULL;
	char key_path[WARD_MAX_PATH_LEN], pub_path[WARD_MAX_PATH_LEN];
	int rc, files_written = 0, commit_tried = 0;

	new_key_id[0] = '\0';
	ward_buf_init(&msg, 1024);
	ward_buf_init(&keys_dir, WARD_MAX_PATH_LEN);
	if (!s->signer) {
		rc = ward_error_set(WARD_EKEY, "rotating keys needs the current signing key");
		goto done;
	}
	memcpy(old_id, s->key_id, sizeof(old_id));
	if ((rc = ward_key_generate(&nk)) < 0 || (rc = ward_key_id(nk, id)) < 0 ||
	    (rc = ward_key_public_raw(nk, pub)) < 0)
		goto done;
	ward_hex_encode_to(pubhex, pub, sizeof(pub));
	if ((rc = ward_buf_printf(&msg, ENDORSE_TAG "%s\n%s\n%s\n", s->store_id, id, pubhex)) < 0 ||
	    (rc = ward_sign(sig, s->signer, msg.ptr, msg.len)) < 0 ||
	    (rc = ward_base64_encode(&sig64, sig, sizeof(sig))) < 0)
		goto done;
	/* The paths to remove on failure are built before anything is written,
	 * so the cleanup itself cannot fail for lack of memory. */
	if (snprintf(key_path, sizeof(key_path), "%s/keys/%s.key", s->home, id) >= (int)sizeof(key_path) ||
	    snprintf(pub_path, sizeof(pub_path), "%s/keys/%s.pub", s->home, id) >= (int)sizeof(pub_path)) {
		rc = ward_error_set(WARD_ETOOBIG, "home path too long");
		goto done;
	}
	if ((rc = ward_buf_printf(&keys_dir, "%s/keys", s->home)) < 0 ||
	    (rc = ward_keys_write_files(keys_dir.ptr, nk, id)) < 0)
		goto done;
	files_written = 1;

	if ((rc = ward_store_begin(s)) < 0)
		goto done;
	ward_now_rfc3339(now);
	if ((rc = ward_db_prepare(s, &st, "UPDATE keys SET state = 'retired', retired_at = ?1 WHERE key_id = ?2"
					  " AND state = 'active'")) < 0)
		goto done;
	ward_db_bind_text(st, 1, now);
	ward_db_bind_text(st, 2, old_id);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
		rc = sqlite3_changes(s->db) != 1 ? ward_error_set(WARD_ESTATE, "key %s is not the active key", old_id)
						 : ward_db_fail(s, "retiring key");
		goto done;
	}
	if ((rc = ward_keys_insert(s, nk, id)) < 0)
		goto done;
	details = json_pack("{s:s, s:s, s:s, s:s}", "old_key_id", old_id, "new_key_id", id, "new_public_key", pubhex,
			    "endorsement", sig64);
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_audit_append(s, who, "key.rotate", id, details)) < 0)
		goto done;
	old = s->signer;
	s->signer = nk;
	memcpy(s->key_id, id, sizeof(id));
	commit_tried = 1;
	if ((rc = ward_store_commit(s)) < 0) {
		s->signer = old;
		memcpy(s->key_id, old_id, sizeof(old_id));
		old = NULL;
		goto done;
	}
	nk = NULL;
	memcpy(new_key_id, id, sizeof(id));
done:
	if (rc < 0) {
		ward_store_rollback(s);
		/* A failed COMMIT may still have reached the disk (the WAL commit
		 * record can be written before the sync fails): then the new key is
		 * the active one, so its files must stay. A spare key file is
		 * harmless; a missing active key is not. */
		if (files_written && (!commit_tried || (!s->commit_uncertain && key_known(s, id) == 0))) {
			unlink(key_path);
			unlink(pub_path);
		}
	}
	sqlite3_finalize(st);
	json_decref(details);
	ward_key_free(old);
	ward_key_free(nk == s->signer ? NULL : nk);
	ward_free(sig64);
	ward_buf_dispose(&msg);
	ward_buf_dispose(&keys_dir);
	return rc;
}
