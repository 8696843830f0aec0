/*
 * URL and path canonicalization, and the allowlist coverage test.
 *
 * URLs are parsed with libcurl's URL API (the same parser that later fetches
 * them), never by hand. Canonical form: lowercase scheme and host, IDN hosts as
 * punycode, no default port, no userinfo, no fragment, dot segments removed,
 * empty path as "/". Userinfo, control characters, whitespace, non-ASCII
 * outside the host, encoded dots/slashes/backslashes in the path and schemes
 * other than http/https are refused with WARD_EINVAL.
 */
#ifndef RAGWARD_URL_H
#define RAGWARD_URL_H

#include "ragward/error.h"

typedef enum {
	WARD_KIND_HTTPS = 0,
	WARD_KIND_HTTP = 1, /* plaintext allowed: covers http and https URLs */
	WARD_KIND_FILE = 2,
} ward_source_kind;

const char *ward_kind_name(ward_source_kind kind);
int ward_kind_parse(ward_source_kind *out, const char *s) WARD_MUST_CHECK;

/* Canonicalizes a URL to fetch (http or https). *out is ward_malloc'd. */
int ward_url_canonicalize(char **out, const char *url) WARD_MUST_CHECK;

/*
 * Canonicalizes a source pattern of the given kind:
 *  - https/http: a URL prefix ("https://docs.example.com/guide/") or a host
 *    with subdomains (first label "*": "https:" "//" "*.example.com/", which
 *    covers example.com and every name under it; written apart here only
 *    because a slash-star would open a nested comment). The scheme must agree
 *    with the kind.
 *  - file: an absolute directory path; "//", "." are collapsed, ".." is
 *    refused, the trailing "/" is dropped (except for "/").
 */
int ward_pattern_canonicalize(char **out, const char *pattern, ward_source_kind kind) WARD_MUST_CHECK;

/* Canonicalizes an absolute local path lexically (same rules as file patterns). */
int ward_path_canonicalize(char **out, const char *path) WARD_MUST_CHECK;

/*
 * 1 when the canonical pattern covers the canonical target, else 0.
 * Prefix semantics are segment-exact: "https://a.com/docs" covers
 * "https://a.com/docs" and "https://a.com/docs/x" but not
 * "https://a.com/docs-evil"; hosts and ports compare exactly (a wildcard
 * pattern matches the host itself or any name ending in ".host").
 * For WARD_KIND_HTTPS only https targets are covered; WARD_KIND_HTTP covers
 * both schemes. Both arguments must come from the canonicalizers above.
 */
int ward_pattern_covers(const char *pattern, ward_source_kind kind, const char *target) WARD_MUST_CHECK;

/* 1 when `s` looks like a URL (has "scheme://"), else 0. */
int ward_is_url(const char *s);

#endif
