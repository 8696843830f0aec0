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

int ward_config_load(ward_config *cfg, const char *home)
{
	ward_buf path;
	json_t *doc = NULL, *v;
	const char *key;
	int rc;

	cfg->two_person_rule = 1;
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
