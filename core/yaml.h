/*
 * YAML to JSON (jansson) for ragward's own files: config.yaml, sources.yaml,
 * manifests and rule packs. libyaml does the parsing; this layer refuses
 * what those files never need and what makes YAML dangerous: aliases (the
 * "billion laughs" of YAML), more than one document, duplicate keys, non-string
 * keys, and nesting deeper than WARD_MAX_YAML_DEPTH.
 *
 * Plain (unquoted) scalars true/false become JSON booleans, null/~ null,
 * decimal integers JSON integers; everything else is a string.
 */
#ifndef RAGWARD_CORE_YAML_H
#define RAGWARD_CORE_YAML_H

#include <stddef.h>
#include <jansson.h>
#include "ragward/error.h"

/* Parses `len` bytes. On error, the message names the line and column. */
int ward_yaml_parse(json_t **out, const char *data, size_t len, const char *name) WARD_MUST_CHECK;

/* Reads a regular file (no symlink) of at most `max` bytes and parses it.
 * sha256_hex (65 bytes) receives the file's SHA-256 when not NULL. */
int ward_yaml_load_file(json_t **out, const char *path, size_t max, char *sha256_hex) WARD_MUST_CHECK;

/* Reads a whole regular file (no symlink) of at most `max` bytes. *out is
 * ward_malloc'd and NUL-terminated. */
int ward_file_read(char **out, size_t *len, const char *path, size_t max) WARD_MUST_CHECK;

#endif
