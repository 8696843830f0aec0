/*
 * Internals of the fetch module shared with its tests only. Nothing here is
 * part of the library's API.
 */
#ifndef RAGWARD_INGEST_FETCH_INTERNAL_H
#define RAGWARD_INGEST_FETCH_INTERNAL_H

/*
 * Test hook for ward_fetch_file: called once per read attempt (0, then 1 on
 * the retry) after the first chunk has been read and before the rest, with
 * the file's absolute path. A test uses it to modify the file in the middle
 * of a read, which cannot be timed reliably from outside. NULL disables it.
 * Process-wide and not synchronized: tests only.
 */
typedef void (*ward_fetch_file_hook)(void *ctx, int attempt, const char *path);
void ward_fetch_file_set_test_hook(ward_fetch_file_hook fn, void *ctx);

#endif
