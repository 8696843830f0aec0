/*
 * HOME/config.yaml: optional settings. Unknown keys are errors so that a typo
 * in a security setting is never silently ignored.
 */
#include <string.h>
#include <syslog.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "core/banned.h"

/*
 * verdict:
 *   standard: {flag: 1, quarantine: 6, reject: 20}
 * Tiers and levels may be given partly; thresholds must be positive and
 * ascending within a tier once merged with the defaults (checked by the
 * verdict code, which knows them).
 */
static int load_thresholds(ward_config *cfg, json_t *v, const char *path)
{
	static const char *const tiers[] = {"low", "standard", "high"};
	static const char *const levels[] = {"flag", "quarantine", "reject"};
	const char *tk, *lk;
	json_t *tv, *lv;

	if (!json_is_object(v))
		return ward_error_set(WARD_EINVAL, "'%s': verdict must be a mapping of trust tiers", path);
	json_object_foreach(v, tk, tv) {
		int t = -1;
		for (int i = 0; i < 3; i++)
			if (!strcmp(tk, tiers[i]))
				t = i;
		if (t < 0 || !json_is_object(tv))
			return ward_error_set(WARD_EINVAL, "'%s': verdict.%s: expected low, standard or high with a mapping",
					      path, tk);
		json_object_foreach(tv, lk, lv) {
			int l = -1;
			for (int i = 0; i < 3; i++)
				if (!strcmp(lk, levels[i]))
					l = i;
			if (l < 0 || !json_is_integer(lv) || json_integer_value(lv) <= 0 || json_integer_value(lv) > 1000)
				return ward_error_set(WARD_EINVAL,
						      "'%s': verdict.%s.%s: expected flag, quarantine or reject with a"
						      " whole number from 1 to 1000",
						      path, tk, lk);
			cfg->thresholds[t][l] = (double)json_integer_value(lv);
		}
	}
	return 0;
}

_Static_assert(sizeof(((ward_config *)0)->trace_path) == WARD_MAX_PATH_LEN + 1, "trace_path holds a path");

/* Index of `v` (a string) in names[], else -1. */
static int pick(const json_t *v, const char *const *names, size_t n)
{
	const char *s = json_string_value(v);

	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * store:
 *   wal_limit_mb: 64                (1..4096)
 */
static int load_store(ward_config *cfg, json_t *v, const char *path)
{
	const char *k;
	json_t *kv;

	if (!json_is_object(v))
		return ward_error_set(WARD_EINVAL, "'%s': store must be a mapping (wal_limit_mb)", path);
	json_object_foreach(v, k, kv) {
		if (strcmp(k, "wal_limit_mb") == 0) {
			json_int_t mb = json_integer_value(kv);
			if (!json_is_integer(kv) || mb < 1 || mb > WARD_WAL_LIMIT_MB_MAX)
				return ward_error_set(WARD_EINVAL, "'%s': store.wal_limit_mb must be an integer from 1 to %d",
				                      path, WARD_WAL_LIMIT_MB_MAX);
			cfg->wal_limit_bytes = (int64_t)mb * 1024 * 1024;
		} else {
			return ward_error_set(WARD_EINVAL, "'%s': unknown setting 'store.%s' (expected wal_limit_mb)",
			                      path, k);
		}
	}
	return 0;
}

/*
 * traces:
 *   sink: file | syslog | both      (default file)
 *   path: traces.jsonl              (relative to HOME; default HOME/traces.jsonl)
 *   sync: batch | every | none      (default: the caller's choice, batch)
 *   syslog_facility: user           (user, daemon, auth, authpriv, local0..local7)
 * The path is checked for form here; the file itself (no symlink, regular,
 * ours, not group/world-writable) when it is opened (store/traces.c).
 */
static int load_traces(ward_config *cfg, json_t *v, const char *path, const char *home)
{
	static const char *const sinks[] = {"file", "syslog", "both"};
	static const int sink_vals[] = {WARD_TRACE_SINK_FILE, WARD_TRACE_SINK_SYSLOG, WARD_TRACE_SINK_BOTH};
	static const char *const syncs[] = {"none", "batch", "every"};
	static const int sync_vals[] = {0, WARD_TRACE_SYNC_BATCH, WARD_TRACE_SYNC_NOW};
	static const char *const facs[] = {"user",   "daemon", "auth",   "authpriv", "local0", "local1",
	                                   "local2", "local3", "local4", "local5",   "local6", "local7"};
	static const int fac_vals[] = {LOG_USER,   LOG_DAEMON, LOG_AUTH,   LOG_AUTHPRIV, LOG_LOCAL0, LOG_LOCAL1,
	                               LOG_LOCAL2, LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5,   LOG_LOCAL6, LOG_LOCAL7};
	const char *k, *p;
	json_t *kv;
	int i, n;

	if (!json_is_object(v))
		return ward_error_set(WARD_EINVAL, "'%s': traces must be a mapping (sink, path, sync, syslog_facility)",
		                      path);
	json_object_foreach(v, k, kv) {
		if (strcmp(k, "sink") == 0) {
			if ((i = pick(kv, sinks, 3)) < 0)
				return ward_error_set(WARD_EINVAL, "'%s': traces.sink must be file, syslog or both",
				                      path);
			cfg->trace_sink = sink_vals[i];
		} else if (strcmp(k, "sync") == 0) {
			if ((i = pick(kv, syncs, 3)) < 0)
				return ward_error_set(WARD_EINVAL, "'%s': traces.sync must be batch, every or none",
				                      path);
			cfg->trace_sync = sync_vals[i];
		} else if (strcmp(k, "syslog_facility") == 0) {
			if ((i = pick(kv, facs, sizeof(facs) / sizeof(facs[0]))) < 0)
				return ward_error_set(
				        WARD_EINVAL,
				        "'%s': traces.syslog_facility must be user, daemon, auth, authpriv"
				        " or local0 to local7",
				        path);
			cfg->trace_facility = fac_vals[i];
		} else if (strcmp(k, "path") == 0) {
			p = json_string_value(kv);
			/* A string without control characters, not a directory
			 * name; the length check includes HOME when relative. */
			if (!p || !*p || p[strlen(p) - 1] == '/')
				return ward_error_set(WARD_EINVAL, "'%s': traces.path must be a file name or path",
				                      path);
			for (const char *c = p; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					return ward_error_set(WARD_EINVAL,
					                      "'%s': traces.path must not hold control characters",
					                      path);
			n = p[0] == '/' ? snprintf(cfg->trace_path, sizeof(cfg->trace_path), "%s", p)
			                : snprintf(cfg->trace_path, sizeof(cfg->trace_path), "%s/%s", home, p);
			if (n < 0 || (size_t)n >= sizeof(cfg->trace_path))
				return ward_error_set(WARD_ETOOBIG, "'%s': traces.path is longer than %d bytes", path,
				                      WARD_MAX_PATH_LEN);
		} else {
			return ward_error_set(WARD_EINVAL,
			                      "'%s': unknown setting 'traces.%s' (expected sink, path, sync or"
			                      " syslog_facility)",
			                      path, k);
		}
	}
	return 0;
}

int ward_config_load(ward_config *cfg, const char *home)
{
	ward_buf path;
	json_t *doc = NULL, *v;
	const char *key;
	int rc, n;

	cfg->two_person_rule = 1;
	cfg->trace_sink = WARD_TRACE_SINK_FILE;
	cfg->trace_sync = -1;
	cfg->trace_facility = LOG_USER;
	cfg->wal_limit_bytes = (int64_t)WARD_WAL_LIMIT_MB_DEFAULT * 1024 * 1024;
	n = snprintf(cfg->trace_path, sizeof(cfg->trace_path), "%s/traces.jsonl", home);
	if (n < 0 || (size_t)n >= sizeof(cfg->trace_path))
		return ward_error_set(WARD_ETOOBIG, "home path too long");
	for (int t = 0; t < 3; t++)
		for (int l = 0; l < 3; l++)
			cfg->thresholds[t][l] = -1;
	ward_buf_init(&path, WARD_MAX_PATH_LEN);
	if ((rc = ward_buf_printf(&path, "%s/config.yaml", home)) < 0) {
		ward_buf_dispose(&path);
		return ward_error_set(rc, "home path too long");
	}
	rc = ward_yaml_load_file(&doc, path.ptr, WARD_MAX_CONFIG_FILE, NULL);
	if (rc == WARD_ENOTFOUND) {
		rc = 0;
		goto done;
	}
	if (rc < 0)
		goto done;
	if (json_is_null(doc))
		goto done;
	if (!json_is_object(doc)) {
		rc = ward_error_set(WARD_EINVAL, "'%s': expected a mapping of settings", path.ptr);
		goto done;
	}
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "two_person_rule") == 0) {
			if (!json_is_boolean(v)) {
				rc = ward_error_set(WARD_EINVAL, "'%s': two_person_rule must be true or false", path.ptr);
				goto done;
			}
			cfg->two_person_rule = json_is_true(v);
		} else if (strcmp(key, "verdict") == 0) {
			if ((rc = load_thresholds(cfg, v, path.ptr)) < 0)
				goto done;
		} else if (strcmp(key, "traces") == 0) {
			if ((rc = load_traces(cfg, v, path.ptr, home)) < 0)
				goto done;
		} else if (strcmp(key, "store") == 0) {
			if ((rc = load_store(cfg, v, path.ptr)) < 0)
				goto done;
		} else {
			rc = ward_error_set(WARD_EINVAL, "'%s': unknown setting '%s'", path.ptr, key);
			goto done;
		}
	}
done:
	json_decref(doc);
	ward_buf_dispose(&path);
	return rc;
}
