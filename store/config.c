/*
 * HOME/config.yaml: optional settings. Unknown keys are errors so that a typo
 * in a security setting is never silently ignored.
 */
#include <string.h>
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

int ward_config_load(ward_config *cfg, const char *home)
{
	ward_buf path;
	json_t *doc = NULL, *v;
	const char *key;
	int rc;

	cfg->two_person_rule = 1;
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
