/*
 * URL and path canonicalization, and the allowlist coverage test.
 *
 * URLs are split by libcurl's URL API, the same parser that later fetches
 * them: a second, hand-written parser would sooner or later disagree with
 * curl about where the host ends, and that disagreement is exactly what
 * allowlist bypasses are made of (see curl's libcurl-security.md). What curl
 * accepts but a reviewer should never approve is refused here, before and
 * after curl has parsed the string:
 *
 *  - before: length cap, scheme (http/https only), "//" right after the
 *    scheme, a non-empty authority, no '@' in it (userinfo), no control
 *    characters, whitespace or backslashes anywhere, no non-ASCII byte
 *    outside the host, no %2e/%2f/%5c in the path;
 *  - after: no user/password/zone id, a host made of [a-z0-9._-] labels or a
 *    bracketed IPv6 literal, a port other than 0.
 *
 * The canonical string is rebuilt from curl's parts, so comparing two
 * canonical forms (ward_pattern_covers) is plain string logic.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "ragward/url.h"
#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/error.h"
#include "core/limits.h"
#include "core/banned.h"

/* Room for an echoed input in an error message; the message slot is 512. */
#define SHOW_MAX 160

/* ---------------------------------------------------------------- helpers */

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Renders untrusted input for an error message: bytes outside printable
 * ASCII (and the backslash) become \xNN and long inputs are cut. Reviewers
 * and logs must see what the bytes are, not what a bidi override or a
 * terminal escape makes them look like (T58).
 */
static const char *show(char *dst, size_t size, const char *s, size_t len)
{
	size_t o = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= size) {
			memcpy(dst + o, "...", 4);
			return dst;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			dst[o++] = (char)c;
		} else {
			int n = snprintf(dst + o, size - o, "\\x%02x", c);

			if (n < 0)
				break;
			o += (size_t)n;
		}
	}
	dst[o] = '\0';
	return dst;
}

/*
 * Length in bytes of a bidi control (U+061C, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069) in UTF-8 at p, else 0. These reorder how a URL or a path
 * is displayed (Trojan Source), so they get their own message.
 */
static size_t bidi_len(const unsigned char *p, size_t avail)
{
	if (avail >= 2 && p[0] == 0xD8 && p[1] == 0x9C)
		return 2;
	if (avail < 3 || p[0] != 0xE2)
		return 0;
	if (p[1] == 0x80 && (p[2] == 0x8E || p[2] == 0x8F || (p[2] >= 0xAA && p[2] <= 0xAE)))
		return 3;
	if (p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9)
		return 3;
	return 0;
}

/* %2e, %2f, %5c in any case. Servers decode them, so "/docs/%2e%2e/admin"
 * passes a prefix check on "/docs/" and then walks out of it. */
static int encoded_separator_at(const char *p, size_t avail)
{
	char a, b;

	if (avail < 3 || p[0] != '%')
		return 0;
	a = p[1];
	b = to_lower(p[2]);
	return (a == '2' && (b == 'e' || b == 'f')) || (a == '5' && b == 'c');
}

/* ------------------------------------------------------------ URL parsing */

/*
 * The checks curl cannot do for us because it accepts the input: where the
 * authority starts and ends is found with curl's own rule (the host ends at
 * the first '/', '?' or '#'; backslashes, which curl would also treat as a
 * separator in some versions, are refused outright).
 */
static int check_raw_url(const char *what, const char *url, size_t len, int pattern,
			 size_t *auth_start, size_t *auth_end)
{
	char shown[SHOW_MAX];
	char scheme[16];
	size_t i = 0;
	size_t a0, a1, path_end;

	/* Bytes that are wrong anywhere come first, whatever the structure. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c < 0x20 || c == 0x7f)
			return ward_error_set(WARD_EINVAL, "%s '%s': control character at byte %zu",
					      what, show(shown, sizeof(shown), url, len), i);
		if (c == ' ')
			return ward_error_set(WARD_EINVAL,
					      "%s '%s': space at byte %zu (percent-encode it as %%20)",
					      what, show(shown, sizeof(shown), url, len), i);
		if (c == '\\')
			return ward_error_set(WARD_EINVAL, "%s '%s': backslash at byte %zu", what,
					      show(shown, sizeof(shown), url, len), i);
	}

	i = 0;
	while (i < len && (is_alpha((unsigned char)url[i]) ||
			   (i > 0 && (is_digit((unsigned char)url[i]) || url[i] == '+' ||
				      url[i] == '-' || url[i] == '.'))))
		i++;
	if (i == 0 || i >= len || url[i] != ':')
		return ward_error_set(WARD_EINVAL, "%s '%s': not a URL (expected 'https://host/path')",
				      what, show(shown, sizeof(shown), url, len));
	if (i >= sizeof(scheme))
		return ward_error_set(WARD_EINVAL, "%s '%s': unsupported scheme (only http and https)",
				      what, show(shown, sizeof(shown), url, len));
	{
		size_t k;

		for (k = 0; k < i; k++)
			scheme[k] = to_lower(url[k]);
		scheme[i] = '\0';
	}
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
		return ward_error_set(WARD_EINVAL, "%s: unsupported scheme '%s' (only http and https)",
				      what, scheme);
	if (len - i < 3 || url[i + 1] != '/' || url[i + 2] != '/')
		return ward_error_set(WARD_EINVAL, "%s '%s': expected '//' after '%s:'", what,
				      show(shown, sizeof(shown), url, len), scheme);

	a0 = i + 3;
	a1 = a0;
	while (a1 < len && url[a1] != '/' && url[a1] != '?' && url[a1] != '#')
		a1++;
	/* curl 7.88 reads "https:///x" as host "x": an empty authority has to
	 * be caught before curl sees it. */
	if (a1 == a0)
		return ward_error_set(WARD_EINVAL, "%s '%s': empty host", what,
				      show(shown, sizeof(shown), url, len));
	/* Do not echo the URL: whatever precedes '@' may be a password. */
	if (memchr(url + a0, '@', a1 - a0) != NULL)
		return ward_error_set(WARD_EINVAL,
				      "%s: userinfo ('user@' or 'user:password@' before the host) is "
				      "not allowed; put no credentials in URLs",
				      what);

	path_end = a1;
	while (path_end < len && url[path_end] != '?' && url[path_end] != '#')
		path_end++;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c >= 0x80 && (i < a0 || i >= a1)) {
			const char *part = i < path_end ? "path" : "query or fragment";
			size_t bl = bidi_len((const unsigned char *)url + i, len - i);

			if (bl > 0)
				return ward_error_set(WARD_EINVAL,
						      "%s '%s': bidi control character in the %s at "
						      "byte %zu; percent-encode non-ASCII characters",
						      what, show(shown, sizeof(shown), url, len), part, i);
			return ward_error_set(WARD_EINVAL,
					      "%s '%s': non-ASCII byte in the %s at byte %zu; "
					      "percent-encode non-ASCII characters",
					      what, show(shown, sizeof(shown), url, len), part, i);
		}
		if (i >= a1 && i < path_end && encoded_separator_at(url + i, len - i))
			return ward_error_set(WARD_EINVAL,
					      "%s '%s': encoded '.', '/' or '\\' (%.3s) in the path "
					      "is not allowed",
					      what, show(shown, sizeof(shown), url, len), url + i);
	}
	if (pattern && path_end < len)
		return ward_error_set(WARD_EINVAL, "%s '%s': a pattern must not have a query or fragment",
				      what, show(shown, sizeof(shown), url, len));
	*auth_start = a0;
	*auth_end = a1;
	return 0;
}

/*
 * Gets the host as punycode. libcurl 7.88 converts with libidn2's
 * idn2_lookup_ul(), which reads the input in the *locale's* charset: in the
 * default "C" locale every non-ASCII host fails (as CURLUE_OUT_OF_MEMORY).
 * A library must not call setlocale() (process-wide, not thread-safe), so
 * the conversion runs under a thread-local C.UTF-8 locale via uselocale().
 */
static CURLUcode get_host_punycode(CURLU *h, char **host)
{
	char *raw = NULL;
	CURLUcode rc;
	const char *p;
	int ascii = 1;
	locale_t utf8, old = (locale_t)0;

	rc = curl_url_get(h, CURLUPART_HOST, &raw, 0);
	if (rc != CURLUE_OK)
		return rc;
	for (p = raw; *p; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = 0;
	curl_free(raw);
	if (ascii)
		return curl_url_get(h, CURLUPART_HOST, host, CURLU_PUNYCODE);

	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8 != (locale_t)0)
		old = uselocale(utf8);
	rc = curl_url_get(h, CURLUPART_HOST, host, CURLU_PUNYCODE);
	if (utf8 != (locale_t)0) {
		uselocale(old);
		freelocale(utf8);
	}
	/* An invalid IDN and a real allocation failure look the same here. */
	return rc == CURLUE_OUT_OF_MEMORY ? CURLUE_BAD_HOSTNAME : rc;
}

/* An IPv4 literal as curl prints it (dotted decimal, curl having already
 * normalized "127.1", "2130706433", "0x7f.1", ...). */
static int is_ipv4_literal(const char *h)
{
	int digits = 0;

	for (; *h; h++) {
		if (is_digit((unsigned char)*h))
			digits = 1;
		else if (*h != '.')
			return 0;
	}
	return digits;
}

/* Lowercases the host in place and checks it is either "[v6]" or labels of
 * [a-z0-9_-] separated by single dots (one trailing dot is kept: "a.com."
 * stays a different host from "a.com", which fails closed). */
static int check_host(const char *what, char *host, const char *url, size_t len)
{
	char shown[SHOW_MAX];
	char shown_host[SHOW_MAX];
	char *p;

	for (p = host; *p; p++)
		*p = to_lower(*p);
	if (host[0] == '\0')
		return ward_error_set(WARD_EINVAL, "%s '%s': empty host", what,
				      show(shown, sizeof(shown), url, len));
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 3 || host[n - 1] != ']')
			goto bad;
		for (p = host + 1; p < host + n - 1; p++)
			if (!is_hex((unsigned char)*p) && *p != ':' && *p != '.')
				goto bad;
		return 0;
	}
	if (host[0] == '.')
		goto bad;
	for (p = host; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.' && p[1] == '.')
			goto bad;
		if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.'))
			goto bad;
	}
	return 0;
bad:
	return ward_error_set(WARD_EINVAL, "%s '%s': invalid host '%s'", what,
			      show(shown, sizeof(shown), url, len),
			      show(shown_host, sizeof(shown_host), host, strlen(host)));
}

static int curl_error(const char *what, CURLUcode rc, const char *url, size_t len)
{
	char shown[SHOW_MAX];

	if (rc == CURLUE_OUT_OF_MEMORY)
		return ward_error_set(WARD_ENOMEM, "%s: out of memory while parsing", what);
	if (rc == CURLUE_USER_NOT_ALLOWED)
		return ward_error_set(WARD_EINVAL, "%s: userinfo is not allowed; put no credentials in URLs",
				      what);
	return ward_error_set(WARD_EINVAL, "%s '%s': %s", what, show(shown, sizeof(shown), url, len),
			      curl_url_strerror(rc));
}

/*
 * Canonicalizes `url`. With `pattern` set, a leading "*." label is accepted
 * (the rest of the host goes through curl), and a query or fragment is
 * refused. `https_out` (may be NULL) receives 1 for https, 0 for http.
 */
static int canon_url_once(char **out, const char *url, int pattern, const char *what, int *https_out)
{
	char shown[SHOW_MAX];
	ward_buf stripped, canon;
	CURLU *h = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	char *part = NULL;
	const char *parse = url;
	size_t len, a0 = 0, a1 = 0;
	int wildcard = 0;
	int err = 0;
	CURLUcode rc;

	ward_buf_init(&stripped, WARD_MAX_URL_LEN);
	ward_buf_init(&canon, WARD_MAX_URL_LEN);
	*out = NULL;

	if (url == NULL) {
		err = ward_error_set(WARD_EINVAL, "%s: missing", what);
		goto done;
	}
	len = strnlen(url, WARD_MAX_URL_LEN + 1);
	if (len > WARD_MAX_URL_LEN) {
		err = ward_error_set(WARD_ETOOBIG, "%s '%s': longer than %d bytes", what,
				     show(shown, sizeof(shown), url, 60), WARD_MAX_URL_LEN);
		goto done;
	}
	if ((err = check_raw_url(what, url, len, pattern, &a0, &a1)) < 0)
		goto done;

	if (pattern && a1 - a0 >= 2 && url[a0] == '*' && url[a0 + 1] == '.') {
		wildcard = 1;
		a0 += 2;
		/* Stripped, a pattern whose host is only "*." would reach curl
		 * as "https:///x", which curl 7.88 takes for host "x". */
		if (a0 == a1 || url[a0] == ':') {
			err = ward_error_set(WARD_EINVAL, "%s '%s': empty host after '*.'", what,
					     show(shown, sizeof(shown), url, len));
			goto done;
		}
		/* curl refuses '*' in a host; hand it the URL without "*.". */
		if ((err = ward_buf_append(&stripped, url, a0 - 2)) < 0 ||
		    (err = ward_buf_puts(&stripped, url + a0)) < 0)
			goto done;
		parse = stripped.ptr;
	}
	if (memchr(url + a0, '*', a1 - a0) != NULL) {
		err = ward_error_set(WARD_EINVAL,
				     pattern ? "%s '%s': '*' is only allowed as the whole first label "
					       "('https://*.example.com/')"
					     : "%s '%s': '*' is not allowed in the host of a URL to fetch",
				     what, show(shown, sizeof(shown), url, len));
		goto done;
	}

	h = curl_url();
	if (h == NULL) {
		err = ward_error_set(WARD_ENOMEM, "%s: out of memory", what);
		goto done;
	}
	/* Dot segments are removed here (no CURLU_PATH_AS_IS). */
	rc = curl_url_set(h, CURLUPART_URL, parse, CURLU_DISALLOW_USER);
	if (rc != CURLUE_OK) {
		err = curl_error(what, rc, url, len);
		goto done;
	}

	/* Belt and braces: the raw checks above already refused these. */
	rc = curl_url_get(h, CURLUPART_USER, &part, 0);
	if (rc == CURLUE_OUT_OF_MEMORY) {
		err = curl_error(what, rc, url, len);
		goto done;
	}
	if (rc != CURLUE_NO_USER) {
		err = ward_error_set(WARD_EINVAL, "%s: userinfo is not allowed; put no credentials in URLs",
				     what);
		goto done;
	}
	rc = curl_url_get(h, CURLUPART_PASSWORD, &part, 0);
	if (rc == CURLUE_OUT_OF_MEMORY) {
		err = curl_error(what, rc, url, len);
		goto done;
	}
	if (rc != CURLUE_NO_PASSWORD) {
		err = ward_error_set(WARD_EINVAL, "%s: userinfo is not allowed; put no credentials in URLs",
				     what);
		goto done;
	}
	/* A zone id names a local interface: meaningless in an allowlist, and
	 * link-local destinations are refused at fetch time anyway. */
	rc = curl_url_get(h, CURLUPART_ZONEID, &part, 0);
	if (rc != CURLUE_NO_ZONEID) {
		err = ward_error_set(WARD_EINVAL, "%s '%s': IPv6 zone ids are not allowed", what,
				     show(shown, sizeof(shown), url, len));
		goto done;
	}

	rc = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
	if (rc != CURLUE_OK) {
		err = curl_error(what, rc, url, len);
		goto done;
	}
	for (char *p = scheme; *p; p++)
		*p = to_lower(*p);

	rc = get_host_punycode(h, &host);
	if (rc != CURLUE_OK) {
		if (rc == CURLUE_BAD_HOSTNAME)
			err = ward_error_set(WARD_EINVAL,
					     "%s '%s': host is not a valid (internationalized) domain name",
					     what, show(shown, sizeof(shown), url, len));
		else
			err = curl_error(what, rc, url, len);
		goto done;
	}
	if ((err = check_host(what, host, url, len)) < 0)
		goto done;
	if (wildcard && (host[0] == '[' || is_ipv4_literal(host))) {
		err = ward_error_set(WARD_EINVAL, "%s '%s': '*.' cannot precede an IP address", what,
				     show(shown, sizeof(shown), url, len));
		goto done;
	}
	/* "*.com" would approve a whole top-level domain: almost certainly a
	 * mistake, and curl has no public-suffix API to judge finer. */
	if (wildcard) {
		const char *dot = strchr(host, '.');

		if (dot == NULL || dot[1] == '\0') {
			err = ward_error_set(WARD_EINVAL,
					     "%s '%s': '*.' needs a name of at least two labels after it",
					     what, show(shown, sizeof(shown), url, len));
			goto done;
		}
	}

	rc = curl_url_get(h, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT);
	if (rc != CURLUE_OK && rc != CURLUE_NO_PORT) {
		err = curl_error(what, rc, url, len);
		goto done;
	}
	if (port != NULL && strcmp(port, "0") == 0) {
		err = ward_error_set(WARD_EINVAL, "%s '%s': port 0 is not valid", what,
				     show(shown, sizeof(shown), url, len));
		goto done;
	}

	rc = curl_url_get(h, CURLUPART_PATH, &path, 0);
	if (rc != CURLUE_OK) {
		err = curl_error(what, rc, url, len);
		goto done;
	}
	/* Same rule as on the raw string, on what curl will actually send. */
	for (size_t i = 0; path[i]; i++) {
		if ((unsigned char)path[i] >= 0x80 || (unsigned char)path[i] <= 0x20 ||
		    encoded_separator_at(path + i, strlen(path + i))) {
			err = ward_error_set(WARD_EINVAL, "%s '%s': path not allowed after parsing", what,
					     show(shown, sizeof(shown), url, len));
			goto done;
		}
	}
	if (wildcard && strcmp(path, "/") != 0 && path[0] != '\0') {
		err = ward_error_set(WARD_EINVAL,
				     "%s '%s': a '*.' pattern covers whole hosts; its path must be '/'",
				     what, show(shown, sizeof(shown), url, len));
		goto done;
	}

	if (!pattern) {
		rc = curl_url_get(h, CURLUPART_QUERY, &query, 0);
		if (rc != CURLUE_OK && rc != CURLUE_NO_QUERY) {
			err = curl_error(what, rc, url, len);
			goto done;
		}
	}

	if ((err = ward_buf_puts(&canon, scheme)) < 0 || (err = ward_buf_puts(&canon, "://")) < 0 ||
	    (wildcard && (err = ward_buf_puts(&canon, "*.")) < 0) ||
	    (err = ward_buf_puts(&canon, host)) < 0)
		goto done;
	if (port != NULL && ((err = ward_buf_putc(&canon, ':')) < 0 || (err = ward_buf_puts(&canon, port)) < 0))
		goto done;
	if ((err = ward_buf_puts(&canon, path[0] ? path : "/")) < 0)
		goto done;
	/* The query is kept as given: its order can matter to the server. An
	 * empty query ("x?") is dropped, as curl itself does. */
	if (query != NULL && query[0] != '\0' &&
	    ((err = ward_buf_putc(&canon, '?')) < 0 || (err = ward_buf_puts(&canon, query)) < 0))
		goto done;
	if (https_out != NULL)
		*https_out = strcmp(scheme, "https") == 0;
	err = ward_buf_detach(&canon, out, NULL);

done:
	if (err == WARD_ETOOBIG && *out == NULL && canon.err == WARD_ETOOBIG)
		err = ward_error_set(WARD_ETOOBIG, "%s '%s': canonical form longer than %d bytes", what,
				     show(shown, sizeof(shown), url, 60), WARD_MAX_URL_LEN);
	curl_free(part);
	curl_free(query);
	curl_free(path);
	curl_free(port);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(h);
	ward_buf_dispose(&canon);
	ward_buf_dispose(&stripped);
	return err;
}

/* ------------------------------------------------------------ public API */

const char *ward_kind_name(ward_source_kind kind)
{
	switch (kind) {
	case WARD_KIND_HTTPS:
		return "https";
	case WARD_KIND_HTTP:
		return "http";
	case WARD_KIND_FILE:
		return "file";
	}
	return "unknown";
}

int ward_kind_parse(ward_source_kind *out, const char *s)
{
	char shown[SHOW_MAX];

	if (s != NULL && strcmp(s, "https") == 0)
		*out = WARD_KIND_HTTPS;
	else if (s != NULL && strcmp(s, "http") == 0)
		*out = WARD_KIND_HTTP;
	else if (s != NULL && strcmp(s, "file") == 0)
		*out = WARD_KIND_FILE;
	else
		return ward_error_set(WARD_EINVAL, "source kind '%s': unknown (expected https, http or file)",
				      s ? show(shown, sizeof(shown), s, strnlen(s, SHOW_MAX)) : "");
	return 0;
}

/*
 * curl decodes a percent-encoded host only after its own IPv4 normalization,
 * so "http://21%3070/" comes out as host "21070", which curl reads as
 * 0.0.82.78 when that canonical URL is parsed again (to fetch it, or to
 * compare it). A URL with a '%' therefore goes through a second pass, which
 * makes the canonical form a fixed point (found by fuzz/fuzz_url.c).
 */
static int canon_url(char **out, const char *url, int pattern, const char *what, int *https_out)
{
	char *first = NULL;
	int err;

	if ((err = canon_url_once(&first, url, pattern, what, https_out)) < 0 || strchr(url, '%') == NULL) {
		*out = first;
		return err;
	}
	err = canon_url_once(out, first, pattern, what, https_out);
	ward_free(first);
	return err;
}

int ward_url_canonicalize(char **out, const char *url)
{
	return canon_url(out, url, 0, "url", NULL);
}

/*
 * Lexical only, on purpose: realpath() would follow symlinks at approval
 * time, and the tree can change before ingest. Confinement is enforced when
 * files are opened (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS under
 * the approved root), so here ".." is simply refused rather than resolved:
 * "/srv/docs/../etc" must not become a harmless-looking "/srv/etc".
 */
int ward_path_canonicalize(char **out, const char *path)
{
	char shown[SHOW_MAX];
	ward_buf b;
	size_t len, i, seg;
	int err = 0;

	ward_buf_init(&b, WARD_MAX_PATH_LEN);
	*out = NULL;
	if (path == NULL) {
		err = ward_error_set(WARD_EINVAL, "path: missing");
		goto done;
	}
	len = strnlen(path, WARD_MAX_PATH_LEN + 1);
	if (len > WARD_MAX_PATH_LEN) {
		err = ward_error_set(WARD_ETOOBIG, "path '%s': longer than %d bytes",
				     show(shown, sizeof(shown), path, 60), WARD_MAX_PATH_LEN);
		goto done;
	}
	if (path[0] != '/') {
		err = ward_error_set(WARD_EINVAL, "path '%s': not absolute",
				     show(shown, sizeof(shown), path, len));
		goto done;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c < 0x20 || c == 0x7f) {
			err = ward_error_set(WARD_EINVAL, "path '%s': control character at byte %zu",
					     show(shown, sizeof(shown), path, len), i);
			goto done;
		}
		if (bidi_len((const unsigned char *)path + i, len - i) > 0) {
			err = ward_error_set(WARD_EINVAL, "path '%s': bidi control character at byte %zu",
					     show(shown, sizeof(shown), path, len), i);
			goto done;
		}
	}

	for (i = 0; i < len; i = seg) {
		size_t start;

		while (i < len && path[i] == '/')
			i++;
		start = i;
		seg = i;
		while (seg < len && path[seg] != '/')
			seg++;
		if (seg == start || (seg - start == 1 && path[start] == '.'))
			continue;
		if (seg - start == 2 && path[start] == '.' && path[start + 1] == '.') {
			err = ward_error_set(WARD_EINVAL, "path '%s': '..' components are not allowed",
					     show(shown, sizeof(shown), path, len));
			goto done;
		}
		if ((err = ward_buf_putc(&b, '/')) < 0 ||
		    (err = ward_buf_append(&b, path + start, seg - start)) < 0)
			goto done;
	}
	if (b.len == 0 && (err = ward_buf_putc(&b, '/')) < 0)
		goto done;
	err = ward_buf_detach(&b, out, NULL);
done:
	ward_buf_dispose(&b);
	return err;
}

int ward_pattern_canonicalize(char **out, const char *pattern, ward_source_kind kind)
{
	char shown[SHOW_MAX];
	int https = 0;
	int err;

	*out = NULL;
	switch (kind) {
	case WARD_KIND_FILE:
		return ward_path_canonicalize(out, pattern);
	case WARD_KIND_HTTPS:
	case WARD_KIND_HTTP:
		break;
	default:
		return ward_error_set(WARD_EINVAL, "source pattern: unknown kind %d", (int)kind);
	}
	if ((err = canon_url(out, pattern, 1, "source pattern", &https)) < 0)
		return err;
	if (https != (kind == WARD_KIND_HTTPS)) {
		err = ward_error_set(WARD_EINVAL, "source pattern '%s': scheme does not match kind '%s'",
				     show(shown, sizeof(shown), *out, strlen(*out)), ward_kind_name(kind));
		ward_free(*out);
		*out = NULL;
	}
	return err;
}

/* ---------------------------------------------------------------- covers */

/* A canonical URL cut into parts (pointers into the string, not copies). */
typedef struct {
	int https;
	int wildcard;
	const char *host;
	size_t host_len;
	long port; /* 0 when not written (the scheme's default) */
	const char *path;
	size_t path_len; /* up to '?' or the end */
	int has_query;
} url_parts;

/* Splits a canonical URL; returns -1 on anything a canonicalizer would not
 * produce, which makes ward_pattern_covers fail closed. */
static int split_canonical(url_parts *u, const char *s)
{
	const char *p, *auth_end;

	memset(u, 0, sizeof(*u));
	if (strncmp(s, "https://", 8) == 0) {
		u->https = 1;
		p = s + 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		p = s + 7;
	} else {
		return -1;
	}
	auth_end = p + strcspn(p, "/?#");
	if (*auth_end != '/')
		return -1;
	if (p[0] == '*' && p[1] == '.') {
		u->wildcard = 1;
		p += 2;
	}
	u->host = p;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(auth_end - p));

		if (close == NULL)
			return -1;
		p = close + 1;
	} else {
		while (p < auth_end && *p != ':')
			p++;
	}
	u->host_len = (size_t)(p - u->host);
	if (u->host_len == 0)
		return -1;
	if (p < auth_end) {
		if (*p != ':' || auth_end - p < 2 || auth_end - p > 6)
			return -1;
		for (p++; p < auth_end; p++) {
			if (!is_digit((unsigned char)*p))
				return -1;
			u->port = u->port * 10 + (*p - '0');
		}
		if (u->port < 1 || u->port > 65535)
			return -1;
	}
	u->path = auth_end;
	u->path_len = strcspn(auth_end, "?#");
	if (auth_end[u->path_len] == '#')
		return -1;
	u->has_query = auth_end[u->path_len] == '?';
	return 0;
}

/* A ".." segment never survives canonicalization; seeing one means the
 * caller skipped it, so fail closed. */
static int has_dotdot_segment(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++)
		if (p[i] == '.' && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') &&
		    (i + 2 == n || p[i + 2] == '/'))
			return 1;
	return 0;
}

/*
 * Port rule. Each side's effective port is the explicit one, else 443 for
 * https and 80 for http. When neither side wrote a port, both use their
 * scheme's default and the ports match: an http-kind pattern
 * "http://a.com/" covers "https://a.com/" (the same service upgraded to TLS,
 * typically via a redirect). As soon as either side wrote one, the effective
 * ports must be equal: "http://a.com/" does not cover "http://a.com:8080/"
 * or "http://a.com:443/" (plaintext on 443 is not what was approved), while
 * "http://a.com:8080/" covers "https://a.com:8080/" and "http://a.com/"
 * covers "https://a.com:80/" (same host and port, stronger transport).
 * For https-kind patterns both sides are https, so this is plain equality
 * of the written ports.
 */
static int ports_match(const url_parts *pat, const url_parts *tgt)
{
	long pp, tp;

	if (pat->port == 0 && tgt->port == 0)
		return 1;
	pp = pat->port ? pat->port : (pat->https ? 443 : 80);
	tp = tgt->port ? tgt->port : (tgt->https ? 443 : 80);
	return pp == tp;
}

static int hosts_match(const url_parts *pat, const url_parts *tgt)
{
	size_t n = pat->host_len;

	if (tgt->host_len == n && memcmp(pat->host, tgt->host, n) == 0)
		return 1;
	/* "*.example.com" covers "a.example.com" but not "badexample.com":
	 * the byte before the base must be a dot. */
	return pat->wildcard && tgt->host_len > n + 1 &&
	       tgt->host[tgt->host_len - n - 1] == '.' &&
	       memcmp(tgt->host + tgt->host_len - n, pat->host, n) == 0;
}

/* Prefix on segment boundaries: "/docs" covers "/docs" and "/docs/x", not
 * "/docs-evil"; "/docs/" covers "/docs/x" but not "/docs". */
static int path_covers(const char *p, size_t pn, const char *t, size_t tn)
{
	if (tn < pn || memcmp(p, t, pn) != 0)
		return 0;
	return tn == pn || (pn > 0 && p[pn - 1] == '/') || t[pn] == '/';
}

static int url_covers(const char *pattern, ward_source_kind kind, const char *target)
{
	url_parts pat, tgt;

	if (split_canonical(&pat, pattern) < 0 || split_canonical(&tgt, target) < 0)
		return 0;
	if (pat.has_query || pat.https != (kind == WARD_KIND_HTTPS) || tgt.wildcard)
		return 0;
	if (kind == WARD_KIND_HTTPS && !tgt.https)
		return 0;
	if (has_dotdot_segment(tgt.path, tgt.path_len))
		return 0;
	return hosts_match(&pat, &tgt) && ports_match(&pat, &tgt) &&
	       path_covers(pat.path, pat.path_len, tgt.path, tgt.path_len);
}

static int file_covers(const char *pattern, const char *target)
{
	size_t pn = strlen(pattern);
	size_t tn = strlen(target);

	if (pattern[0] != '/' || target[0] != '/' || has_dotdot_segment(target, tn))
		return 0;
	if (pn == 1)
		return 1;
	return tn >= pn && memcmp(pattern, target, pn) == 0 && (tn == pn || target[pn] == '/');
}

int ward_pattern_covers(const char *pattern, ward_source_kind kind, const char *target)
{
	if (pattern == NULL || target == NULL)
		return 0;
	switch (kind) {
	case WARD_KIND_HTTPS:
	case WARD_KIND_HTTP:
		return url_covers(pattern, kind, target);
	case WARD_KIND_FILE:
		return file_covers(pattern, target);
	}
	return 0;
}

int ward_is_url(const char *s)
{
	size_t i = 0;

	if (s == NULL || !is_alpha((unsigned char)s[0]))
		return 0;
	while (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) || s[i] == '+' ||
	       s[i] == '-' || s[i] == '.')
		i++;
	return s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/';
}
