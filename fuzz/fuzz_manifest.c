/* Ingest manifests (a YAML list of targets, or {targets: [...]}) read from a
 * file, as `ragward ingest --manifest FILE` does. */
#include "fuzz_common.h"
#include "core/limits.h"
#include "ragward/ingest.h"

#define FUZZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **targets = NULL;
	size_t n = 0, i;
	const char *path;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	path = fuzz_write_file("manifest.yaml", data, size);
	if (ward_ingest_manifest_targets(path, &targets, &n) != 0) {
		FUZZ_CHECK(targets == NULL && n == 0);
		return 0;
	}
	FUZZ_CHECK(n <= WARD_MAX_BATCH_TARGETS);
	for (i = 0; i < n; i++) {
		size_t l;

		FUZZ_CHECK(targets[i] != NULL);
		l = strlen(targets[i]);
		FUZZ_CHECK(l > 0 && l <= WARD_MAX_PATH_LEN);
	}
	ward_ingest_targets_free(targets, n);
	return 0;
}
