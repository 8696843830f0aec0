/*
 * URL canonicalization and allowlist coverage.
 *
 * Input: "<kind byte><pattern>\n<target>". Invariants: every canonical form
 * is a fixed point of its canonicalizer; a pattern covers a target only when
 * the scheme, host and port agree (or the host is under a wildcard pattern's
 * domain), and a file pattern only covers paths beneath it.
 */
#include "fuzz_common.h"
#include "core/limits.h"
#include "ragward/alloc.h"
#include "ragward/url.h"

#define FUZZ_MAX_INPUT (2 * WARD_MAX_URL_LEN + 8)

/* The authority ("host[:port]") of a canonical http(s) URL or pattern, as a
 * [start, end) range; scheme length in *slen. */
static void authority(const char *u, const char **a, size_t *alen, size_t *slen)
{
	const char *p = strstr(u, "://");

	FUZZ_CHECK(p != NULL);
	*slen = (size_t)(p - u);
	*a = p + 3;
	*alen = strcspn(*a, "/?#");
}

static int ends_with(const char *s, size_t n, const char *suf, size_t m)
{
	return n >= m && memcmp(s + n - m, suf, m) == 0;
}

/* Splits an authority into host and effective port (0: none given). */
static void host_port(const char *a, size_t alen, size_t *hlen, long *port)
{
	size_t i = alen;

	*port = 0;
	*hlen = alen;
	while (i > 0 && a[i - 1] >= '0' && a[i - 1] <= '9')
		i--;
	if (i > 0 && i < alen && a[i - 1] == ':') {
		*hlen = i - 1;
		*port = strtol(a + i, NULL, 10);
	}
}

static void check_http_cover(const char *pat, ward_source_kind kind, const char *tgt)
{
	const char *pa, *ta;
	size_t pl, tl, ps, ts, ph, th;
	long pp, tp;
	int p_https = strncmp(pat, "https://", 8) == 0, t_https = strncmp(tgt, "https://", 8) == 0;

	authority(pat, &pa, &pl, &ps);
	authority(tgt, &ta, &tl, &ts);
	/* Scheme: an https pattern covers only https targets. */
	if (kind == WARD_KIND_HTTPS)
		FUZZ_CHECK(t_https);
	else
		FUZZ_CHECK(t_https || strncmp(tgt, "http://", 7) == 0);
	host_port(pa, pl, &ph, &pp);
	host_port(ta, tl, &th, &tp);
	if (ph >= 2 && pa[0] == '*' && pa[1] == '.') {
		/* "*.example.com" covers example.com and names under it. */
		const char *dom = pa + 2;
		size_t dl = ph - 2;

		FUZZ_CHECK((th == dl && memcmp(ta, dom, dl) == 0) ||
			   (th > dl && ends_with(ta, th, dom, dl) && ta[th - dl - 1] == '.'));
	} else {
		FUZZ_CHECK(th == ph && memcmp(ta, pa, ph) == 0);
	}
	/* Ports: equal, comparing the scheme's default when one is omitted. */
	if (pp || tp)
		FUZZ_CHECK((pp ? pp : (p_https ? 443 : 80)) == (tp ? tp : (t_https ? 443 : 80)));
	/* Path prefix, segment-exact. */
	{
		const char *pp_ = pa + pl, *tp_ = ta + tl;
		size_t n = strcspn(pp_, "?#");

		FUZZ_CHECK(strncmp(tp_, pp_, n) == 0);
		FUZZ_CHECK(n == 0 || pp_[n - 1] == '/' || tp_[n] == '\0' || tp_[n] == '/' || tp_[n] == '?');
	}
}

static void check_file_cover(const char *pat, const char *tgt)
{
	size_t n = strlen(pat);

	if (strcmp(pat, "/") == 0)
		return;
	FUZZ_CHECK(strncmp(tgt, pat, n) == 0 && (tgt[n] == '\0' || tgt[n] == '/'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *pat_in, *tgt_in, *pat = NULL, *pat2 = NULL, *tgt = NULL, *tgt2 = NULL, *u = NULL, *u2 = NULL;
	ward_source_kind kind;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	kind = (ward_source_kind)(data[0] % 3);
	fuzz_split2(data + 1, size - 1, &in, &tgt_in);
	pat_in = in;

	/* Every input line as a fetch URL: the canonical form is a fixed point. */
	if (ward_url_canonicalize(&u, pat_in) == 0) {
		FUZZ_CHECK(u != NULL);
		FUZZ_CHECK(ward_url_canonicalize(&u2, u) == 0);
		FUZZ_CHECK(strcmp(u, u2) == 0);
		FUZZ_CHECK(ward_is_url(u));
		ward_free(u2);
		u2 = NULL;
	}
	ward_free(u);
	u = NULL;

	if (ward_pattern_canonicalize(&pat, pat_in, kind) != 0)
		goto done;
	FUZZ_CHECK(ward_pattern_canonicalize(&pat2, pat, kind) == 0);
	FUZZ_CHECK(strcmp(pat, pat2) == 0);

	if (kind == WARD_KIND_FILE) {
		if (ward_path_canonicalize(&tgt, tgt_in) != 0)
			goto done;
		FUZZ_CHECK(ward_path_canonicalize(&tgt2, tgt) == 0);
		FUZZ_CHECK(strcmp(tgt, tgt2) == 0);
		/* A directory pattern covers itself. */
		FUZZ_CHECK(ward_pattern_covers(pat, kind, pat) == 1);
		if (ward_pattern_covers(pat, kind, tgt) == 1)
			check_file_cover(pat, tgt);
	} else {
		if (ward_url_canonicalize(&tgt, tgt_in) != 0)
			goto done;
		FUZZ_CHECK(ward_url_canonicalize(&tgt2, tgt) == 0);
		FUZZ_CHECK(strcmp(tgt, tgt2) == 0);
		if (ward_pattern_covers(pat, kind, tgt) == 1)
			check_http_cover(pat, kind, tgt);
	}
done:
	ward_free(pat);
	ward_free(pat2);
	ward_free(tgt);
	ward_free(tgt2);
	free(in);
	return 0;
}
