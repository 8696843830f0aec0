/*
 * Tests for store/keys.c and the key side of init (security-controls §5,
 * T45, T47): file modes, refusal of unsafe key files, init on an existing
 * home, rotation with the old key's endorsement, and tampered keys rows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/crypto.h"
#include "ragward/keys.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
	char key_id[33];
	char *keys_dir;
	char *key_path;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char name[64];

	if (!f)
		return -1;
	f->home = tu_home_path("keys");
	tu_init(f->home, f->key_id);
	f->keys_dir = tu_path(f->home, "keys");
	snprintf(name, sizeof(name), "%s.key", f->key_id);
	f->key_path = tu_path(f->keys_dir, name);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	chmod(f->keys_dir, 0700);
	tu_home_free(f->home);
	free(f->keys_dir);
	free(f->key_path);
	free(f);
	return 0;
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_mode & 07777;
}

/* Opening for signing must fail with WARD_EKEY and a message containing `needle`. */
static void expect_sign_open_refused(const fixture *f, const char *needle)
{
	ward_store *s = NULL;
	int rc = ward_store_open(&s, f->home, WARD_STORE_SIGN);

	if (rc != WARD_EKEY)
		fail_msg("want EKEY, got %d (%s)", rc, rc ? ward_error_last()->message : "opened");
	assert_null(s);
	if (needle && !tu_error_has(needle))
		fail_msg("message '%s' lacks '%s'", ward_error_last()->message, needle);
}

/* A store opened without the key still reads and verifies. */
static void expect_read_only_works(const fixture *f)
{
	ward_store *s = tu_open(f->home, 0);
	ward_source *list = NULL;
	size_t n = 0;

	assert_null(ward_store_key_id(s));
	assert_null(ward_store_signer(s));
	assert_int_equal(ward_sources_list(s, NULL, &list, &n), 0);
	ward_sources_free(list, n);
	assert_int_equal(tu_verify(s, NULL, NULL), 0);
	ward_store_close(s);
}

static void test_store_keys__init_modes(void **state)
{
	fixture *f = *state;
	char *db = tu_path(f->home, "store.db"), *pub;
	char name[64];
	ward_store *s;
	ward_key_info *keys = NULL;
	size_t n = 0;

	assert_int_equal(mode_of(f->home), 0700);
	assert_int_equal(mode_of(f->keys_dir), 0700);
	assert_int_equal(mode_of(f->key_path), 0600);
	snprintf(name, sizeof(name), "%s.pub", f->key_id);
	pub = tu_path(f->keys_dir, name);
	assert_true(S_ISREG(mode_of(pub)) || mode_of(pub) != 0);
	assert_int_equal(tu_dir_count(f->keys_dir), 2);
	assert_int_equal(strlen(f->key_id), 32);

	s = tu_open(f->home, WARD_STORE_SIGN);
	assert_string_equal(ward_store_key_id(s), f->key_id);
	assert_non_null(ward_store_signer(s));
	assert_int_equal(ward_keys_list(s, &keys, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0].key_id, f->key_id);
	assert_string_equal(keys[0].state, "active");
	assert_null(keys[0].retired_at);
	{
		/* the key id is the hash of the stored public key */
		ward_key *k = NULL;
		char id[33];
		assert_int_equal(ward_key_from_public(&k, keys[0].public_key), 0);
		assert_int_equal(ward_key_id(k, id), 0);
		assert_string_equal(id, f->key_id);
		ward_key_free(k);
	}
	ward_keys_free(keys, n);
	ward_store_close(s);
	free(db);
	free(pub);
}

/* store.h documents HOME/store.db as 0600 (security-controls §4: keep the
 * database file at 0600); the home's 0700 is a second line, not the only one. */
static void test_store_keys__store_db_mode_0600(void **state)
{
	fixture *f = *state;
	static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN); /* keeps -wal/-shm around while open */

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = tu_path(f->home, files[i]);
		struct stat sb;
		int exists = lstat(p, &sb) == 0;
		unsigned mode = exists ? (unsigned)(sb.st_mode & 0777) : 0;
		free(p);
		if (exists && (mode & 077)) {
			ward_store_close(s);
			fail_msg("'%s' has mode %04o, want 0600", files[i], mode);
		}
	}
	ward_store_close(s);
}

static void test_store_keys__key_mode_0644_refused(void **state)
{
	fixture *f = *state;
	static const mode_t modes[] = {0644, 0640, 0604, 0660, 0601, 0610};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(f->key_path, modes[i]), 0);
		expect_sign_open_refused(f, "permissions");
	}
	assert_true(tu_error_has("chmod 600"));
	expect_read_only_works(f);
	/* a key with fewer rights than 0600 is fine */
	assert_int_equal(chmod(f->key_path, 0400), 0);
	ward_store_close(tu_open(f->home, WARD_STORE_SIGN));
	assert_int_equal(chmod(f->key_path, 0600), 0);
	ward_store_close(tu_open(f->home, WARD_STORE_SIGN));
}

static void test_store_keys__key_symlink_refused(void **state)
{
	fixture *f = *state;
	char *real = tu_path(f->keys_dir, "real.pem");

	assert_int_equal(rename(f->key_path, real), 0);
	assert_int_equal(symlink(real, f->key_path), 0);
	expect_sign_open_refused(f, "symlink");
	/* a symlink to a key outside the keys directory, same */
	unlink(f->key_path);
	{
		char *dir = tu_path(f->home, ".."), *outside = tu_path(dir, "outside.key");
		assert_int_equal(rename(real, outside), 0);
		assert_int_equal(symlink(outside, f->key_path), 0);
		expect_sign_open_refused(f, "symlink");
		free(outside);
		free(dir);
	}
	expect_read_only_works(f);
	free(real);
}

static void test_store_keys__keys_dir_writable_refused(void **state)
{
	fixture *f = *state;

	assert_int_equal(chmod(f->keys_dir, 0777), 0);
	expect_sign_open_refused(f, "writable by group or other");
	assert_int_equal(chmod(f->keys_dir, 0720), 0);
	expect_sign_open_refused(f, "writable");
	assert_int_equal(chmod(f->keys_dir, 0702), 0);
	expect_sign_open_refused(f, "writable");
	expect_read_only_works(f);
	assert_int_equal(chmod(f->keys_dir, 0700), 0);
	ward_store_close(tu_open(f->home, WARD_STORE_SIGN));
}

static void test_store_keys__key_not_a_regular_file(void **state)
{
	fixture *f = *state;

	assert_int_equal(unlink(f->key_path), 0);
	expect_sign_open_refused(f, NULL); /* missing */
	assert_int_equal(mkdir(f->key_path, 0700), 0);
	expect_sign_open_refused(f, "not a regular file");
	rmdir(f->key_path);
	expect_read_only_works(f);
}

static void test_store_keys__garbage_and_truncated_pem(void **state)
{
	fixture *f = *state;
	size_t len;
	char *pem = tu_read_file(f->key_path, &len);
	char *big;

	assert_non_null(pem);
	assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	/* truncated at several points */
	for (size_t cut = 0; cut < len; cut += len / 7 + 1) {
		tu_write_file(f->key_path, pem, cut);
		expect_sign_open_refused(f, NULL);
	}
	/* a bit flipped in the base64 body */
	{
		char *bad = strdup(pem);
		char *body = strchr(bad, '\n') + 5;
		*body = *body == 'A' ? 'B' : 'A';
		tu_write_file(f->key_path, bad, len);
		/* either not a key, or a different key than the store's */
		expect_sign_open_refused(f, NULL);
		free(bad);
	}
	tu_write_str(f->key_path, "this is not a key\n");
	expect_sign_open_refused(f, "not a valid Ed25519 PEM key");
	tu_write_file(f->key_path, "\0\0\0\xff", 4);
	expect_sign_open_refused(f, NULL);
	/* a public key where the private key belongs */
	{
		char name[64];
		char *pubpath, *pub;
		snprintf(name, sizeof(name), "%s.pub", f->key_id);
		pubpath = tu_path(f->keys_dir, name);
		pub = tu_read_file(pubpath, NULL);
		assert_non_null(pub);
		tu_write_str(f->key_path, pub);
		expect_sign_open_refused(f, NULL);
		free(pub);
		free(pubpath);
	}
	/* larger than the cap */
	big = malloc(20000);
	assert_non_null(big);
	memset(big, 'A', 20000);
	tu_write_file(f->key_path, big, 20000);
	expect_sign_open_refused(f, "larger than");
	free(big);
	expect_read_only_works(f);
	/* the genuine file works again */
	tu_write_file(f->key_path, pem, len);
	ward_store_close(tu_open(f->home, WARD_STORE_SIGN));
	free(pem);
}

static void test_store_keys__key_of_another_store_refused(void **state)
{
	fixture *f = *state;
	ward_key *k = NULL;
	char *pem = NULL;
	size_t len = 0;

	/* a valid Ed25519 key, saved under the active key's name */
	assert_int_equal(ward_key_generate(&k), 0);
	assert_int_equal(ward_key_private_pem(k, &pem, &len), 0);
	tu_write_file(f->key_path, pem, len);
	assert_int_equal(chmod(f->key_path, 0600), 0);
	ward_free_secure(pem, len);
	ward_key_free(k);
	expect_sign_open_refused(f, "does not match");
	expect_read_only_works(f);
}

static void test_store_keys__no_active_key_row(void **state)
{
	fixture *f = *state;

	tu_raw_exec_ok(f->home, "UPDATE keys SET state = 'retired'");
	expect_sign_open_refused(f, "no active signing key");
}

static void test_store_keys__init_existing_home_refused(void **state)
{
	fixture *f = *state;
	char *db = tu_path(f->home, "store.db");
	char *before_list = tu_listing(f->home), *after_list;
	size_t before_len, after_len;
	char *before_db = tu_read_file(db, &before_len), *after_db;
	ward_actor a = tu_actor("eve");
	char kid[33] = "x";

	assert_int_equal(ward_store_init_home(f->home, &a, kid), WARD_EEXISTS);
	assert_true(tu_error_has("already holds a ragward store"));
	assert_string_equal(kid, "");
	after_list = tu_listing(f->home);
	after_db = tu_read_file(db, &after_len);
	assert_string_equal(after_list, before_list);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after_db, before_db, before_len);
	free(after_list);
	free(after_db);

	/* the same for a home holding only keys/, or only an anchor */
	{
		char *h2 = tu_home_path("keys-partial"), *k2, *a2;
		assert_int_equal(mkdir(h2, 0700), 0);
		k2 = tu_path(h2, "keys");
		assert_int_equal(mkdir(k2, 0700), 0);
		assert_int_equal(ward_store_init_home(h2, &a, kid), WARD_EEXISTS);
		assert_int_equal(tu_dir_count(h2), 1);
		assert_int_equal(tu_dir_count(k2), 0);
		rmdir(k2);
		a2 = tu_path(h2, "anchor.checkpoint");
		tu_write_str(a2, "x");
		assert_int_equal(ward_store_init_home(h2, &a, kid), WARD_EEXISTS);
		assert_int_equal(tu_dir_count(h2), 1);
		free(a2);
		free(k2);
		tu_home_free(h2);
	}
	/* a file where the home should be */
	{
		char *h3 = tu_home_path("keys-file");
		tu_write_str(h3, "not a directory");
		assert_int_equal(ward_store_init_home(h3, &a, kid), WARD_EEXISTS);
		tu_home_free(h3);
	}
	/* an existing empty directory is fine; a config.yaml in it is kept */
	{
		char *h4 = tu_home_path("keys-empty"), *cfg;
		assert_int_equal(mkdir(h4, 0700), 0);
		cfg = tu_path(h4, "config.yaml");
		tu_write_str(cfg, "two_person_rule: false\n");
		assert_int_equal(ward_store_init_home(h4, &a, kid), 0);
		{
			ward_store *s = tu_open(h4, WARD_STORE_SIGN);
			assert_false(ward_store_config(s)->two_person_rule);
			ward_store_close(s);
		}
		free(cfg);
		tu_home_free(h4);
	}
	free(before_list);
	free(before_db);
	free(db);
}

static void test_store_keys__init_bad_config_leaves_nothing(void **state)
{
	fixture *f = *state;
	char *h = tu_home_path("keys-badcfg"), *cfg;
	ward_actor a = tu_actor("admin");
	char kid[33];

	(void)f;
	assert_int_equal(mkdir(h, 0700), 0);
	cfg = tu_path(h, "config.yaml");
	tu_write_str(cfg, "two_person_rul: false\n");
	assert_int_equal(ward_store_init_home(h, &a, kid), WARD_EINVAL);
	/* only the config file the user wrote is left */
	assert_int_equal(tu_dir_count(h), 1);
	free(cfg);
	tu_home_free(h);
}

/* The endorsement message of store/keys.c (ENDORSE_TAG, then store id, new key
 * id and new public key in hex, one per line). */
static char *endorsement_message(const char *store_id, const char *new_id, const char *pubhex)
{
	char *m;
	size_t n = strlen("ragward/key-endorsement/v1\n") + strlen(store_id) + strlen(new_id) + strlen(pubhex) + 4;

	m = malloc(n);
	assert_non_null(m);
	snprintf(m, n, "ragward/key-endorsement/v1\n%s\n%s\n%s\n", store_id, new_id, pubhex);
	return m;
}

static void test_store_keys__rotate(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_actor a = tu_actor("admin");
	ward_key_info *keys = NULL;
	size_t n = 0;
	char new_id[33], store_id[33];
	ward_audit_event *ev = NULL;
	json_t *details;
	int64_t id;

	memcpy(store_id, ward_store_id(s), 33);
	assert_int_equal(ward_keys_rotate(s, &a, new_id), 0);
	assert_string_not_equal(new_id, f->key_id);
	assert_string_equal(ward_store_key_id(s), new_id);

	/* the new key signs from now on, in the same session */
	{
		ward_source_request r;
		memset(&r, 0, sizeof(r));
		r.name = "after-rotate";
		r.pattern = "https://after.example/";
		assert_int_equal(ward_sources_request(s, &a, &r, &id), 0);
	}
	assert_int_equal(tu_query_int(f->home, "SELECT count(*) FROM checkpoints WHERE key_id = (SELECT key_id FROM"
					       " keys WHERE state = 'active')"),
			 2); /* the rotation's own checkpoint and the request's */

	assert_int_equal(ward_keys_list(s, &keys, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(keys[i].key_id, f->key_id)) {
			assert_string_equal(keys[i].state, "retired");
			assert_non_null(keys[i].retired_at);
		} else {
			assert_string_equal(keys[i].key_id, new_id);
			assert_string_equal(keys[i].state, "active");
			assert_null(keys[i].retired_at);
		}
	}
	ward_keys_free(keys, n);

	/* old checkpoints still verify with the retired key */
	assert_int_equal(tu_verify(s, NULL, NULL), 0);

	/* the rotation event carries the old key's endorsement of the new key */
	{
		size_t count = 0;
		const char *pubhex, *sig64;
		uint8_t *sig = NULL;
		size_t siglen = 0;
		ward_key *oldpub = NULL, *newpub = NULL;
		char *msg;

		assert_int_equal(ward_audit_list(s, 2, &ev, &count), 0);
		assert_string_equal(ev[0].action, "key.rotate");
		assert_string_equal(ev[0].subject, new_id);
		details = json_loads(ev[0].details, 0, NULL);
		assert_non_null(details);
		assert_string_equal(json_string_value(json_object_get(details, "old_key_id")), f->key_id);
		assert_string_equal(json_string_value(json_object_get(details, "new_key_id")), new_id);
		pubhex = json_string_value(json_object_get(details, "new_public_key"));
		sig64 = json_string_value(json_object_get(details, "endorsement"));
		assert_non_null(pubhex);
		assert_non_null(sig64);
		assert_int_equal(strlen(pubhex), 64);

		assert_int_equal(ward_keys_public(s, f->key_id, &oldpub), 0);
		assert_int_equal(ward_keys_public(s, new_id, &newpub), 0);
		{
			/* the public key in the event is the one in the keys table */
			uint8_t raw[32];
			char hex[65];
			assert_int_equal(ward_key_public_raw(newpub, raw), 0);
			ward_hex_encode_to(hex, raw, 32);
			assert_string_equal(hex, pubhex);
		}
		assert_int_equal(ward_base64_decode(&sig, &siglen, sig64, strlen(sig64)), 0);
		assert_int_equal(siglen, 64);
		msg = endorsement_message(store_id, new_id, pubhex);
		assert_int_equal(ward_verify(oldpub, sig, siglen, msg, strlen(msg)), 0);
		/* not by the new key, and not over another message */
		assert_int_equal(ward_verify(newpub, sig, siglen, msg, strlen(msg)), WARD_EVERIFY);
		free(msg);
		msg = endorsement_message(store_id, f->key_id, pubhex);
		assert_int_equal(ward_verify(oldpub, sig, siglen, msg, strlen(msg)), WARD_EVERIFY);
		free(msg);
		ward_free(sig);
		ward_key_free(oldpub);
		ward_key_free(newpub);
		json_decref(details);
		ward_audit_events_free(ev, count);
	}
	ward_store_close(s);

	/* key files: old ones stay (its public half is still needed), new ones are 0600 */
	{
		char name[64];
		char *p;
		snprintf(name, sizeof(name), "%s.key", new_id);
		p = tu_path(f->keys_dir, name);
		assert_int_equal(mode_of(p), 0600);
		free(p);
		assert_int_equal(tu_dir_count(f->keys_dir), 4);
	}
	/* reopening signs with the new key; the old key file is not needed */
	assert_int_equal(unlink(f->key_path), 0);
	s = tu_open(f->home, WARD_STORE_SIGN);
	assert_string_equal(ward_store_key_id(s), new_id);
	/* rotate again: a chain of three keys, all checkpoints verify */
	{
		char third[33];
		assert_int_equal(ward_keys_rotate(s, &a, third), 0);
		assert_int_equal(tu_count_rows(f->home, "keys"), 3);
	}
	assert_int_equal(tu_verify(s, NULL, NULL), 0);
	ward_store_close(s);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
}

static void test_store_keys__rotate_needs_key(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_RW);
	ward_actor a = tu_actor("admin");
	char new_id[33];

	assert_int_equal(ward_keys_rotate(s, &a, new_id), WARD_EKEY);
	assert_string_equal(new_id, "");
	ward_store_close(s);
	assert_int_equal(tu_count_rows(f->home, "keys"), 1);
	assert_int_equal(tu_dir_count(f->keys_dir), 2);
}

static void test_store_keys__public_of_tampered_row(void **state)
{
	fixture *f = *state;
	ward_store *s;
	ward_key *k = NULL, *other = NULL;
	uint8_t raw[32];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;

	s = tu_open(f->home, 0);
	assert_int_equal(ward_keys_public(s, f->key_id, &k), 0);
	ward_key_free(k);
	k = NULL;
	assert_int_equal(ward_keys_public(s, "00000000000000000000000000000000", &k), WARD_ENOTFOUND);
	assert_null(k);
	ward_store_close(s);

	/* swap in another public key under the same id */
	assert_int_equal(ward_key_generate(&other), 0);
	assert_int_equal(ward_key_public_raw(other, raw), 0);
	ward_key_free(other);
	db = tu_raw_open(f->home);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE keys SET public_key = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, raw, 32, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);

	s = tu_open(f->home, 0);
	assert_int_equal(ward_keys_public(s, f->key_id, &k), WARD_EVERIFY);
	assert_null(k);
	/* and so every checkpoint signed by it is now by an unknown key */
	{
		ward_audit_report r;
		assert_true(tu_verify(s, NULL, &r) > 0);
		assert_true(tu_report_has(&r, "checkpoint 1", "unknown key"));
		ward_audit_report_dispose(&r);
	}
	ward_store_close(s);
}

static void test_store_keys__load_private_direct(void **state)
{
	fixture *f = *state;
	ward_key *k = NULL;
	char id[33];

	assert_int_equal(ward_keys_load_private(&k, f->key_path), 0);
	assert_true(ward_key_has_private(k));
	assert_int_equal(ward_key_id(k, id), 0);
	assert_string_equal(id, f->key_id);
	ward_key_free(k);
	k = NULL;
	/* write_files refuses to overwrite */
	assert_int_equal(ward_keys_load_private(&k, f->key_path), 0);
	assert_int_equal(ward_keys_write_files(f->keys_dir, k, f->key_id), WARD_EIO);
	ward_key_free(k);
	assert_int_equal(tu_dir_count(f->keys_dir), 2);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_store_keys__##name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(init_modes),
		T(store_db_mode_0600),
		T(key_mode_0644_refused),
		T(key_symlink_refused),
		T(keys_dir_writable_refused),
		T(key_not_a_regular_file),
		T(garbage_and_truncated_pem),
		T(key_of_another_store_refused),
		T(no_active_key_row),
		T(init_existing_home_refused),
		T(init_bad_config_leaves_nothing),
		T(rotate),
		T(rotate_needs_key),
		T(public_of_tampered_row),
		T(load_private_direct),
	};
#undef T

	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
