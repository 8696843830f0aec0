/* The YAML layer (libyaml to jansson) that reads config.yaml, sources.yaml,
 * manifests and rule packs: refuses aliases, several documents, duplicate or
 * non-string keys and deep nesting; what it accepts is well-formed JSON. */
#include "fuzz_common.h"
#include "core/limits.h"
#include "core/yaml.h"

#define FUZZ_MAX_INPUT (64 * 1024)

static size_t depth(const json_t *v)
{
	size_t d = 0, i;
	const char *k;
	json_t *e;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
		{
			size_t c = depth(e);

			FUZZ_CHECK(k != NULL);
			if (c > d)
				d = c;
		}
		return d + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			size_t c = depth(e);

			if (c > d)
				d = c;
		}
		return d + 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL;
	char *dump;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (ward_yaml_parse(&doc, (const char *)data, size, "fuzz.yaml") != 0) {
		FUZZ_CHECK(doc == NULL);
		return 0;
	}
	FUZZ_CHECK(doc != NULL);
	FUZZ_CHECK(depth(doc) <= WARD_MAX_YAML_DEPTH + 1);
	dump = json_dumps(doc, JSON_ENCODE_ANY | JSON_COMPACT);
	FUZZ_CHECK(dump != NULL);
	free(dump);
	json_decref(doc);
	return 0;
}
