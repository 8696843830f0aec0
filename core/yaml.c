/*
 * YAML to jansson with the restrictions described in core/yaml.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "core/banned.h"

typedef struct {
	yaml_parser_t parser;
	const char *name;
} yctx;

static int yfail(yctx *y, const yaml_event_t *ev, const char *what)
{
	size_t line = ev ? ev->start_mark.line + 1 : y->parser.problem_mark.line + 1;
	size_t col = ev ? ev->start_mark.column + 1 : y->parser.problem_mark.column + 1;

	return ward_error_set(WARD_EINVAL, "'%s' line %zu column %zu: %s", y->name, line, col, what);
}

static int next_event(yctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev)) {
		const char *problem = y->parser.problem ? y->parser.problem : "invalid YAML";
		if (y->parser.error == YAML_MEMORY_ERROR)
			return ward_error_set(WARD_ENOMEM, "'%s': out of memory", y->name);
		return yfail(y, NULL, problem);
	}
	return 0;
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (strcmp(v, "true") == 0)
			return json_true();
		if (strcmp(v, "false") == 0)
			return json_false();
		if (strcmp(v, "null") == 0 || strcmp(v, "~") == 0 || len == 0)
			return json_null();
		if (len < 19 && ((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1]))) {
			char *end = NULL;
			long long n;
			errno = 0;
			n = strtoll(v, &end, 10);
			if (!errno && end && *end == '\0')
				return json_integer(n);
		}
	}
	return json_stringn(v, len);
}

static int parse_node(yctx *y, yaml_event_t *ev, json_t **out, int depth);

static int parse_children(yctx *y, json_t *container, int is_map, int depth)
{
	yaml_event_t ev;
	int rc;

	for (;;) {
		json_t *key = NULL, *val = NULL;

		if ((rc = next_event(y, &ev)) < 0)
			return rc;
		if (ev.type == (is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (is_map) {
			if (ev.type != YAML_SCALAR_EVENT) {
				rc = yfail(y, &ev, "mapping keys must be plain strings");
				yaml_event_delete(&ev);
				return rc;
			}
			if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
				rc = yfail(y, &ev, "NUL bytes are not allowed in keys");
				yaml_event_delete(&ev);
				return rc;
			}
			key = json_stringn((const char *)ev.data.scalar.value, ev.data.scalar.length);
			if (!key) {
				yaml_event_delete(&ev);
				return ward_error_set(WARD_EINVAL, "'%s': key is not valid UTF-8", y->name);
			}
			if (json_object_get(container, json_string_value(key))) {
				rc = yfail(y, &ev, "duplicate key");
				json_decref(key);
				yaml_event_delete(&ev);
				return rc;
			}
			yaml_event_delete(&ev);
			if ((rc = next_event(y, &ev)) < 0) {
				json_decref(key);
				return rc;
			}
		}
		rc = parse_node(y, &ev, &val, depth + 1);
		yaml_event_delete(&ev);
		if (rc < 0) {
			json_decref(key);
			return rc;
		}
		if (is_map)
			rc = json_object_set_new(container, json_string_value(key), val);
		else
			rc = json_array_append_new(container, val);
		json_decref(key);
		if (rc != 0)
			return ward_error_set(WARD_ENOMEM, "'%s': out of memory", y->name);
	}
}

static int parse_node(yctx *y, yaml_event_t *ev, json_t **out, int depth)
{
	json_t *c;
	int rc;

	*out = NULL;
	if (depth > WARD_MAX_YAML_DEPTH)
		return yfail(y, ev, "nested too deeply");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return yfail(y, ev, "aliases are not allowed");
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return yfail(y, ev, "anchors are not allowed");
		/* A "\0" escape would silently cut the value short as a C string. */
		if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
			return yfail(y, ev, "NUL bytes are not allowed in values");
		if (!(*out = scalar_value(ev)))
			return yfail(y, ev, "scalar is not valid UTF-8");
		return 0;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int is_map = ev->type == YAML_MAPPING_START_EVENT;
		if ((is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor))
			return yfail(y, ev, "anchors are not allowed");
		c = is_map ? json_object() : json_array();
		if (!c)
			return ward_error_set(WARD_ENOMEM, "'%s': out of memory", y->name);
		if ((rc = parse_children(y, c, is_map, depth)) < 0) {
			json_decref(c);
			return rc;
		}
		*out = c;
		return 0;
	}
	default:
		return yfail(y, ev, "unexpected YAML event");
	}
}

int ward_yaml_parse(json_t **out, const char *data, size_t len, const char *name)
{
	yctx y;
	yaml_event_t ev;
	json_t *root = NULL;
	int rc, stage = 0;

	*out = NULL;
	memset(&y, 0, sizeof(y));
	y.name = name;
	if (!yaml_parser_initialize(&y.parser))
		return ward_error_set(WARD_ENOMEM, "'%s': out of memory", name);
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)data, len);
	/* stream start, document start, node, document end, stream end */
	for (;;) {
		if ((rc = next_event(&y, &ev)) < 0)
			goto done;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		switch (stage) {
		case 0:
			rc = ev.type == YAML_STREAM_START_EVENT ? 0 : yfail(&y, &ev, "expected stream start");
			break;
		case 1:
			rc = ev.type == YAML_DOCUMENT_START_EVENT ? 0 : yfail(&y, &ev, "expected a document");
			break;
		case 2:
			rc = parse_node(&y, &ev, &root, 0);
			break;
		case 3:
			rc = ev.type == YAML_DOCUMENT_END_EVENT ? 0 : yfail(&y, &ev, "expected end of document");
			break;
		default:
			rc = yfail(&y, &ev, "only one YAML document is allowed");
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			goto done;
		stage++;
	}
	if (!root)
		root = json_null();
	*out = root;
	root = NULL;
	rc = 0;
done:
	json_decref(root);
	yaml_parser_delete(&y.parser);
	return rc;
}

int ward_file_read(char **out, size_t *len, const char *path, size_t max)
{
	struct stat sb;
	ward_buf b;
	char chunk[8192];
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ward_error_set(errno == ENOENT ? WARD_ENOTFOUND : WARD_EIO, "cannot open '%s': %s", path,
				      errno == ELOOP ? "is a symlink" : strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return ward_error_set(WARD_EINVAL, "'%s' is not a regular file", path);
	}
	ward_buf_init(&b, max);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ward_error_set(WARD_EIO, "reading '%s': %s", path, strerror(errno));
			goto done;
		}
		if ((rc = ward_buf_append(&b, chunk, (size_t)n)) < 0) {
			rc = rc == WARD_ETOOBIG ? ward_error_set(rc, "'%s' is larger than %zu bytes", path, max)
						: ward_error_set(rc, "reading '%s': out of memory", path);
			goto done;
		}
	}
	rc = ward_buf_detach(&b, out, len);
done:
	close(fd);
	ward_buf_dispose(&b);
	return rc;
}

int ward_yaml_load_file(json_t **out, const char *path, size_t max, char *sha256_hex)
{
	char *data = NULL;
	size_t len = 0;
	uint8_t digest[WARD_SHA256_LEN];
	int rc;

	*out = NULL;
	if ((rc = ward_file_read(&data, &len, path, max)) < 0)
		return rc;
	if (sha256_hex) {
		if ((rc = ward_sha256(digest, data, len)) < 0)
			goto done;
		ward_hex_encode_to(sha256_hex, digest, sizeof(digest));
	}
	rc = ward_yaml_parse(out, data, len, path);
done:
	ward_free(data);
	return rc;
}
