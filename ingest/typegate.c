/*
 * The type gate: what a document is, from its bytes (libmagic with a reduced
 * check set, or a cheap sniff when the declared type and the first bytes
 * already decide), compared with what it claims to be, then converted to
 * UTF-8 with ICU.
 *
 * Why both a declared and a detected type: sniffing alone lets a server turn
 * text/plain into HTML (WHATWG MIME Sniffing warns that differing
 * interpretations "have had security implications"), and the declared type
 * alone lets it hand a PDF or an executable to the extractors. They must
 * agree, and the result must be allowed for the source.
 *
 * Agreement table (rows: declared type from Content-Type, or from the name's
 * extension when there is no header; columns: what the bytes look like, i.e.
 * libmagic's MIME type refined by a sniff of the XML root element). Q is
 * QUARANTINE with a reason naming both sides; any binary column is REJECT.
 *
 *   declared \ bytes | html        | xhtml        | xml          | feed   | text
 *                    | text/html   | xml + <html> | xml, other   | <rss>, | text/plain, other
 *                    |             |              | root         | <feed>,| text/x-..., json, js
 *                    |             |              |              | <rdf:RDF>
 *   -----------------+-------------+--------------+--------------+--------+-------------------
 *   none             | html        | xhtml        | xml          | feed   | text
 *   text/html        | html        | html (1)     | Q            | Q      | html (2)
 *   xhtml+xml        | xhtml if    | xhtml        | Q            | Q      | xhtml if root is
 *                    | root <html> |              |              |        | <html>, else Q
 *   xml, rdf+xml     | xml (3)     | xml          | xml          | feed   | xml if a root
 *                    |             |              |              |        | element, else Q
 *   rss+xml/atom+xml | Q           | Q            | Q            | feed   | Q
 *   text/plain       | Q (4)       | Q            | Q            | Q      | text, markdown
 *                    |             |              |              |        | when name is .md
 *   text/markdown    | markdown(5) | Q            | Q            | Q      | markdown
 *   anything else    | Q           | Q            | Q            | Q      | Q
 *   any              | binary, archive, executable (image/png, application/pdf,
 *                    | application/zip, application/gzip, application/x-executable,
 *                    | application/octet-stream ...) → REJECT naming the detected type
 *
 *   (1) XHTML served as text/html is parsed as HTML, as browsers do.
 *   (2) fragments ("<p>...") are detected as text/plain or text/x-*.
 *   (3) libmagic calls XML that contains <title> or <a href> "text/html"
 *       (an Atom feed without a declaration is one); a root element decides.
 *   (4) "declared text/plain but the bytes are HTML": sniffing never promotes
 *       text/plain into the HTML parser.
 *   (5) Markdown may embed HTML; it is never handed to the HTML parser. A
 *       document that begins with <!doctype html> or <html> is Q.
 *
 * Then: a NUL byte in the first WARD_GATE_SNIFF_BYTES of a text → REJECT; the
 * decided type outside `allowed` → Q "type X is not allowed for this source".
 *
 * Charset (non-accepted documents are not converted): a BOM wins; else the
 * Content-Type charset; else for HTML a <meta charset> or http-equiv in the
 * first WARD_GATE_META_BYTES; else for XML, XHTML and feeds the encoding
 * declaration; else UTF-8 if valid. Only the charsets in `charsets[]` are
 * accepted. UTF-16/32 input is converted before detection so libmagic and the
 * sniffs look at text, not at interleaved NULs.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <magic.h>
#include <unicode/ucnv.h>
#include <unicode/utf8.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/error.h"
#include "ragward/typegate.h"
#include "core/limits.h"
#include "core/banned.h"

/* Pinned, so the MAGIC environment variable can never choose the database
 * (security-controls T08/T19). Overridable at build time. */
#ifndef WARD_MAGIC_DB_PATH
#define WARD_MAGIC_DB_PATH "/usr/lib/file/magic.mgc"
#endif

/* Text, soft magic and encoding checks stay on: they tell text from binary.
 * The binary-format parsers with a CVE history (ELF, CDF), archive and
 * decompression code (and its forks) are off; tar and apptype are useless
 * here. MAGIC_COMPRESS, MAGIC_DEVICES and MAGIC_SYMLINK are never set. */
#define GATE_MAGIC_FLAGS                                                                                    \
	(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_COMPRESS_FORK | MAGIC_NO_CHECK_TAR | \
	 MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_CDF | MAGIC_NO_CHECK_APPTYPE)

#define GATE_DEFAULT_ALLOWED                                                                                  \
	((1u << WARD_TYPE_HTML) | (1u << WARD_TYPE_XHTML) | (1u << WARD_TYPE_XML) | (1u << WARD_TYPE_FEED) |    \
	 (1u << WARD_TYPE_TEXT) | (1u << WARD_TYPE_MARKDOWN))

/* Declared families. */
typedef enum { FAM_NONE, FAM_HTML, FAM_XHTML, FAM_XML, FAM_FEED, FAM_TEXT, FAM_MARKDOWN, FAM_OTHER } gate_fam;

/* What the bytes look like. */
typedef enum { BY_HTML, BY_XHTML, BY_XML, BY_FEED, BY_TEXT, BY_BINARY } gate_bytes;

/* ---- small ASCII helpers (locale-free on purpose) ------------------------- */

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* 1 when s[0..n) starts with the lowercase ASCII `lit`, ignoring case. */
static int istarts(const char *s, size_t n, const char *lit)
{
	size_t i, l = strlen(lit);

	if (n < l)
		return 0;
	for (i = 0; i < l; i++)
		if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

static int ieq(const char *a, const char *b)
{
	while (*a && *b && lower((unsigned char)*a) == lower((unsigned char)*b))
		a++, b++;
	return *a == '\0' && *b == '\0';
}

/* Copies at most cap-1 bytes, NUL-terminates; replaces bytes that are not
 * printable ASCII, since these strings end up in reasons and audit events. */
static void copy_printable(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i;

	if (cap == 0)
		return;
	if (n > cap - 1)
		n = cap - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c >= 0x20 && c < 0x7F ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* ---- charsets ------------------------------------------------------------- */

typedef struct {
	const char *label; /* matched through ICU's alias table ("latin1" finds iso-8859-1) */
	const char *name;  /* reported in ward_gate_result.charset */
	const char *icu;   /* converter used to decode */
	int wide;          /* not ASCII-compatible: convert before sniffing */
} gate_charset;

/* The allowed charsets. iso-8859-1 and us-ascii decode as windows-1252 and
 * gb2312 as gbk, as browsers do (WHATWG Encoding), so the text we keep is the
 * text a reader saw; "utf-16" without a BOM is little-endian, also as in
 * WHATWG. Order matters: the first entry whose label resolves to the same
 * ICU converter wins. */
static const gate_charset charsets[] = {
	{"utf-8", "utf-8", "UTF-8", 0},
	{"utf-16le", "utf-16le", "UTF-16LE", 1},
	{"utf-16be", "utf-16be", "UTF-16BE", 1},
	{"utf-16", "utf-16le", "UTF-16LE", 1},
	{"utf-32le", "utf-32le", "UTF-32LE", 1},
	{"utf-32be", "utf-32be", "UTF-32BE", 1},
	{"utf-32", "utf-32le", "UTF-32LE", 1},
	{"iso-8859-1", "windows-1252", "windows-1252", 0},
	{"us-ascii", "windows-1252", "windows-1252", 0},
	{"iso-8859-2", "iso-8859-2", "iso-8859-2", 0},
	{"iso-8859-3", "iso-8859-3", "iso-8859-3", 0},
	{"iso-8859-4", "iso-8859-4", "iso-8859-4", 0},
	{"iso-8859-5", "iso-8859-5", "iso-8859-5", 0},
	{"iso-8859-6", "iso-8859-6", "iso-8859-6", 0},
	{"iso-8859-7", "iso-8859-7", "iso-8859-7", 0},
	{"iso-8859-8", "iso-8859-8", "iso-8859-8", 0},
	{"iso-8859-9", "iso-8859-9", "iso-8859-9", 0},
	{"iso-8859-10", "iso-8859-10", "iso-8859-10", 0},
	{"iso-8859-11", "iso-8859-11", "iso-8859-11", 0},
	{"iso-8859-13", "iso-8859-13", "iso-8859-13", 0},
	{"iso-8859-14", "iso-8859-14", "iso-8859-14", 0},
	{"iso-8859-15", "iso-8859-15", "iso-8859-15", 0},
	{"windows-1250", "windows-1250", "windows-1250", 0},
	{"windows-1251", "windows-1251", "windows-1251", 0},
	{"windows-1252", "windows-1252", "windows-1252", 0},
	{"windows-1253", "windows-1253", "windows-1253", 0},
	{"windows-1254", "windows-1254", "windows-1254", 0},
	{"windows-1255", "windows-1255", "windows-1255", 0},
	{"windows-1256", "windows-1256", "windows-1256", 0},
	{"windows-1257", "windows-1257", "windows-1257", 0},
	{"windows-1258", "windows-1258", "windows-1258", 0},
	{"koi8-r", "koi8-r", "koi8-r", 0},
	{"shift_jis", "shift_jis", "shift_jis", 0},
	{"euc-jp", "euc-jp", "euc-jp", 0},
	{"gb18030", "gb18030", "gb18030", 0},
	{"gbk", "gbk", "gbk", 0},
	{"gb2312", "gbk", "gbk", 0},
	{"big5", "big5", "big5", 0},
	{"euc-kr", "euc-kr", "euc-kr", 0},
};

#define NCHARSETS (sizeof(charsets) / sizeof(charsets[0]))

/* The allowed charset a label names, or NULL. ICU's alias table resolves the
 * label ("latin1", "cp1252", "x-sjis"), so no alias list is kept here. */
static const gate_charset *charset_lookup(const char *label)
{
	UErrorCode st = U_ZERO_ERROR;
	const char *want;
	size_t i;

	if (label == NULL || *label == '\0')
		return NULL;
	want = ucnv_getAlias(label, 0, &st);
	if (U_FAILURE(st) || want == NULL)
		return NULL;
	for (i = 0; i < NCHARSETS; i++) {
		UErrorCode st2 = U_ZERO_ERROR;
		const char *have = ucnv_getAlias(charsets[i].label, 0, &st2);

		if (U_SUCCESS(st2) && have != NULL && strcmp(have, want) == 0)
			return &charsets[i];
	}
	return NULL;
}

static const gate_charset *charset_named(const char *label)
{
	size_t i;

	for (i = 0; i < NCHARSETS; i++)
		if (strcmp(charsets[i].label, label) == 0)
			return &charsets[i];
	return NULL;
}

/* The charset a byte-order mark names, and its length. UTF-32LE's mark starts
 * with UTF-16LE's, so it is tested first. */
static const gate_charset *bom_charset(const unsigned char *b, size_t n, size_t *bom_len)
{
	*bom_len = 0;
	if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
		return *bom_len = 3, charset_named("utf-8");
	if (n >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0)
		return *bom_len = 4, charset_named("utf-32le");
	if (n >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF)
		return *bom_len = 4, charset_named("utf-32be");
	if (n >= 2 && b[0] == 0xFF && b[1] == 0xFE)
		return *bom_len = 2, charset_named("utf-16le");
	if (n >= 2 && b[0] == 0xFE && b[1] == 0xFF)
		return *bom_len = 2, charset_named("utf-16be");
	return NULL;
}

/* ---- Content-Type (RFC 9110 §8.3.1) ------------------------------------- */

static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token, lowercased into dst (cap bytes). Returns the end, or NULL when
 * empty or too long. */
static const char *read_token(const char *p, char *dst, size_t cap)
{
	size_t n = 0;

	while (is_tchar((unsigned char)*p)) {
		if (n + 1 >= cap)
			return NULL;
		dst[n++] = (char)lower((unsigned char)*p++);
	}
	dst[n] = '\0';
	return n ? p : NULL;
}

/*
 * media-type = type "/" subtype *( OWS ";" OWS [ parameter ] ), parameter =
 * token "=" ( token / quoted-string ). Fills the lowercased "type/subtype"
 * and the charset parameter (lowercased, "" when absent); other parameters
 * are checked for syntax and ignored. A repeated charset is ambiguous and
 * refused. Returns 0, or -1 when the value does not follow the grammar.
 */
static int parse_content_type(const char *ct, char *mt, size_t mtcap, char *cs, size_t cscap)
{
	char type[64], sub[96], pname[64], pval[128];
	const char *p;
	int have_charset = 0;

	mt[0] = cs[0] = '\0';
	if (strnlen(ct, WARD_GATE_CT_MAX + 1) > WARD_GATE_CT_MAX)
		return -1;
	p = skip_ows(ct);
	if (!(p = read_token(p, type, sizeof(type))) || *p++ != '/' || !(p = read_token(p, sub, sizeof(sub))))
		return -1;
	if ((size_t)snprintf(mt, mtcap, "%s/%s", type, sub) >= mtcap)
		return -1;
	for (;;) {
		size_t n = 0;

		p = skip_ows(p);
		if (*p == '\0')
			break;
		if (*p++ != ';')
			return -1;
		p = skip_ows(p);
		if (*p == ';' || *p == '\0')
			continue; /* empty parameter, allowed by the grammar */
		if (!(p = read_token(p, pname, sizeof(pname))) || *p++ != '=')
			return -1;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				unsigned char c = (unsigned char)*p;

				if (c == '\\') {
					c = (unsigned char)*++p;
					if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7F)
						return -1;
				} else if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7F) {
					return -1;
				}
				if (n + 1 >= sizeof(pval))
					return -1;
				pval[n++] = (char)lower(c);
			}
			p++;
			pval[n] = '\0';
		} else if (!(p = read_token(p, pval, sizeof(pval)))) {
			return -1;
		}
		if (strcmp(pname, "charset") == 0) {
			if (have_charset || (size_t)snprintf(cs, cscap, "%s", pval) >= cscap)
				return -1;
			have_charset = 1;
		}
	}
	return 0;
}

/* ---- declared type -------------------------------------------------------- */

static const struct {
	const char *mime;
	gate_fam fam;
} mime_fams[] = {
	{"text/html", FAM_HTML},
	{"application/xhtml+xml", FAM_XHTML},
	{"text/xml", FAM_XML},
	{"application/xml", FAM_XML},
	{"application/rdf+xml", FAM_XML}, /* RSS 1.0 is served so; the root decides */
	{"application/rss+xml", FAM_FEED},
	{"application/atom+xml", FAM_FEED},
	{"text/plain", FAM_TEXT},
	{"text/markdown", FAM_MARKDOWN},
	{"text/x-markdown", FAM_MARKDOWN},
};

static const struct {
	const char *ext;
	const char *mime;
} ext_types[] = {
	{"html", "text/html"},		    {"htm", "text/html"},	      {"xhtml", "application/xhtml+xml"},
	{"xml", "application/xml"},	    {"rss", "application/rss+xml"}, {"atom", "application/atom+xml"},
	{"txt", "text/plain"},		    {"text", "text/plain"},	      {"md", "text/markdown"},
	{"markdown", "text/markdown"},
};

static gate_fam mime_family(const char *mime)
{
	size_t i;

	for (i = 0; i < sizeof(mime_fams) / sizeof(mime_fams[0]); i++)
		if (strcmp(mime_fams[i].mime, mime) == 0)
			return mime_fams[i].fam;
	return FAM_OTHER;
}

/* The MIME type of the name's extension, or NULL. `name` may be a URL: the
 * query and fragment are cut and only the last path segment counts. */
static const char *ext_mime(const char *name)
{
	const char *seg, *end, *dot;
	char ext[16];
	size_t n, i;

	if (name == NULL)
		return NULL;
	end = name + strcspn(name, "?#");
	seg = name;
	for (const char *p = name; p < end; p++)
		if (*p == '/' || *p == '\\')
			seg = p + 1;
	dot = NULL;
	for (const char *p = seg; p < end; p++)
		if (*p == '.')
			dot = p;
	if (dot == NULL || (n = (size_t)(end - dot - 1)) == 0 || n >= sizeof(ext))
		return NULL;
	for (i = 0; i < n; i++)
		ext[i] = (char)lower((unsigned char)dot[1 + i]);
	ext[n] = '\0';
	for (i = 0; i < sizeof(ext_types) / sizeof(ext_types[0]); i++)
		if (strcmp(ext_types[i].ext, ext) == 0)
			return ext_types[i].mime;
	return NULL;
}

/* ---- sniffs --------------------------------------------------------------- */

static size_t skip_bom_ws(const char *s, size_t n)
{
	size_t i = 0;

	if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
		i = 3;
	while (i < n && is_ws((unsigned char)s[i]))
		i++;
	return i;
}

/* "<!doctype html" or "<html" first, ending in a delimiter ("<htmlx" is not
 * HTML). The cheap path that lets declared HTML skip libmagic. */
static int starts_like_html(const char *s, size_t n)
{
	size_t i = skip_bom_ws(s, n), l;

	if (istarts(s + i, n - i, "<!doctype html"))
		l = 14;
	else if (istarts(s + i, n - i, "<html"))
		l = 5;
	else
		return 0;
	return i + l < n && (is_ws((unsigned char)s[i + l]) || s[i + l] == '>' || s[i + l] == '/');
}

/* Offset just past `lit` after p, searching s[p..n), or n when absent. */
static size_t find_after(const char *s, size_t n, size_t p, const char *lit)
{
	size_t l = strlen(lit);

	for (; p + l <= n; p++)
		if (memcmp(s + p, lit, l) == 0)
			return p + l;
	return n;
}

/*
 * The name of the root element, looked for in the first
 * WARD_GATE_SNIFF_BYTES: skips a BOM, whitespace, processing instructions
 * (the XML declaration), comments and a DOCTYPE (with its internal subset).
 * Returns 1 and the name, or 0 when the window does not start with markup.
 */
static int sniff_root(const char *s, size_t n, char *name, size_t cap)
{
	size_t i, k;

	if (n > WARD_GATE_SNIFF_BYTES)
		n = WARD_GATE_SNIFF_BYTES;
	i = skip_bom_ws(s, n);
	for (;;) {
		while (i < n && is_ws((unsigned char)s[i]))
			i++;
		if (i >= n || s[i] != '<')
			return 0;
		if (istarts(s + i, n - i, "<?")) {
			i = find_after(s, n, i + 2, "?>");
		} else if (istarts(s + i, n - i, "<!--")) {
			i = find_after(s, n, i + 4, "-->");
		} else if (istarts(s + i, n - i, "<!doctype")) {
			int depth = 0;

			for (i += 9; i < n; i++) {
				if (s[i] == '[')
					depth++;
				else if (s[i] == ']' && depth > 0)
					depth--;
				else if (s[i] == '>' && depth == 0)
					break;
			}
			i++;
		} else {
			break;
		}
	}
	i++; /* past '<' */
	for (k = 0; i + k < n; k++) {
		unsigned char c = (unsigned char)s[i + k];

		if (is_ws(c) || c == '>' || c == '/')
			break;
		if (k == 0 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'))
			return 0;
		if (k + 1 >= cap)
			return 0;
		name[k] = (char)c;
	}
	if (k == 0 || i + k >= n)
		return 0;
	name[k] = '\0';
	return 1;
}

static int is_feed_root(const char *root)
{
	return strcmp(root, "rss") == 0 || strcmp(root, "feed") == 0 || strcmp(root, "rdf:RDF") == 0;
}

/* A value: quoted with ' or ", or up to whitespace, '>' or ';'. Copies it
 * (lowercased) into dst; returns the offset after it. */
static size_t read_attr_value(const char *s, size_t n, size_t i, char *dst, size_t cap)
{
	size_t k = 0;
	int ok = 1;

	if (i < n && (s[i] == '"' || s[i] == '\'')) {
		char q = s[i++];

		for (; i < n && s[i] != q; i++)
			if (k + 1 < cap)
				dst[k++] = (char)lower((unsigned char)s[i]);
			else
				ok = 0;
		i++;
	} else {
		for (; i < n && !is_ws((unsigned char)s[i]) && s[i] != '>'; i++)
			if (k + 1 < cap)
				dst[k++] = (char)lower((unsigned char)s[i]);
			else
				ok = 0;
	}
	dst[ok ? k : 0] = '\0';
	return i;
}

/* "charset=x" inside a http-equiv content value. */
static int charset_from_content(const char *content, char *dst, size_t cap)
{
	const char *p = content;
	size_t k = 0;

	while ((p = strstr(p, "charset")) != NULL) {
		p = skip_ows(p + 7);
		if (*p != '=')
			continue;
		p = skip_ows(p + 1);
		if (*p == '"' || *p == '\'')
			p++;
		while (*p && *p != ';' && *p != '"' && *p != '\'' && !is_ws((unsigned char)*p) && k + 1 < cap)
			dst[k++] = *p++;
		dst[k] = '\0';
		return k > 0;
	}
	return 0;
}

/*
 * The charset an HTML document names in its first WARD_GATE_META_BYTES: a
 * <meta charset> or <meta http-equiv="content-type" content="...;
 * charset=x">, outside comments (a simplified WHATWG prescan). Returns 1 and
 * the label.
 */
static int sniff_meta_charset(const char *s, size_t n, char *dst, size_t cap)
{
	size_t i = 0;

	if (n > WARD_GATE_META_BYTES)
		n = WARD_GATE_META_BYTES;
	while (i < n) {
		char aname[32], aval[128], charset[128] = "", content[128] = "";
		int pragma = 0;

		if (istarts(s + i, n - i, "<!--")) {
			i = find_after(s, n, i + 4, "-->");
			continue;
		}
		if (!istarts(s + i, n - i, "<meta") || i + 5 >= n ||
		    !(is_ws((unsigned char)s[i + 5]) || s[i + 5] == '/')) {
			i++;
			continue;
		}
		i += 5;
		for (;;) {
			size_t k = 0;

			while (i < n && (is_ws((unsigned char)s[i]) || s[i] == '/'))
				i++;
			if (i >= n || s[i] == '>')
				break;
			while (i < n && !is_ws((unsigned char)s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/') {
				if (k + 1 < sizeof(aname))
					aname[k++] = (char)lower((unsigned char)s[i]);
				i++;
			}
			aname[k] = '\0';
			while (i < n && is_ws((unsigned char)s[i]))
				i++;
			aval[0] = '\0';
			if (i < n && s[i] == '=') {
				i++;
				while (i < n && is_ws((unsigned char)s[i]))
					i++;
				i = read_attr_value(s, n, i, aval, sizeof(aval));
			}
			if (strcmp(aname, "charset") == 0 && charset[0] == '\0')
				snprintf(charset, sizeof(charset), "%s", aval);
			else if (strcmp(aname, "http-equiv") == 0 && strcmp(aval, "content-type") == 0)
				pragma = 1;
			else if (strcmp(aname, "content") == 0 && content[0] == '\0')
				snprintf(content, sizeof(content), "%s", aval);
		}
		if (charset[0] != '\0' && (size_t)snprintf(dst, cap, "%s", charset) < cap)
			return 1;
		if (pragma && charset_from_content(content, dst, cap))
			return 1;
	}
	return 0;
}

/* The encoding pseudo-attribute of an XML declaration at the very start. */
static int sniff_xml_encoding(const char *s, size_t n, char *dst, size_t cap)
{
	size_t i = 0, end;

	if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
		i = 3;
	if (!istarts(s + i, n - i, "<?xml") || i + 5 >= n || !is_ws((unsigned char)s[i + 5]))
		return 0;
	end = find_after(s, n < i + 1024 ? n : i + 1024, i, "?>");
	for (i += 5; i + 8 < end; i++) {
		if (memcmp(s + i, "encoding", 8) != 0)
			continue;
		i += 8;
		while (i < end && is_ws((unsigned char)s[i]))
			i++;
		if (i >= end || s[i] != '=')
			return 0;
		i++;
		while (i < end && is_ws((unsigned char)s[i]))
			i++;
		if (i >= end || (s[i] != '"' && s[i] != '\''))
			return 0;
		read_attr_value(s, end, i, dst, cap);
		return dst[0] != '\0';
	}
	return 0;
}

/* ---- libmagic: one cookie per thread --------------------------------------- */

static pthread_once_t magic_once = PTHREAD_ONCE_INIT;
static pthread_key_t magic_key;
static int magic_key_failed;

static void magic_destroy(void *m)
{
	magic_close(m);
}

static void magic_key_create(void)
{
	magic_key_failed = pthread_key_create(&magic_key, magic_destroy) != 0;
}

/* The calling thread's cookie, opened on first use. The parameters are set
 * explicitly because their defaults differ between file versions. */
static int gate_magic(magic_t *out)
{
	static const struct {
		int param;
		size_t value;
	} params[] = {
		{MAGIC_PARAM_INDIR_MAX, WARD_MAGIC_INDIR_MAX},
		{MAGIC_PARAM_NAME_MAX, WARD_MAGIC_NAME_MAX},
		{MAGIC_PARAM_ELF_PHNUM_MAX, WARD_MAGIC_ELF_PHNUM_MAX},
		{MAGIC_PARAM_ELF_SHNUM_MAX, WARD_MAGIC_ELF_SHNUM_MAX},
		{MAGIC_PARAM_ELF_NOTES_MAX, WARD_MAGIC_ELF_NOTES_MAX},
		{MAGIC_PARAM_REGEX_MAX, WARD_MAGIC_REGEX_MAX},
		{MAGIC_PARAM_BYTES_MAX, WARD_MAGIC_BYTES_MAX},
		{MAGIC_PARAM_ENCODING_MAX, WARD_MAGIC_ENCODING_MAX},
	};
	magic_t m;
	size_t i;
	int rc;

	*out = NULL;
	if (pthread_once(&magic_once, magic_key_create) != 0 || magic_key_failed)
		return ward_error_set(WARD_EIO, "type gate: cannot create the per-thread libmagic key");
	if ((m = pthread_getspecific(magic_key)) != NULL) {
		*out = m;
		return 0;
	}
	if ((m = magic_open(GATE_MAGIC_FLAGS)) == NULL)
		return ward_error_set(WARD_ENOMEM, "type gate: cannot open libmagic");
	if (magic_load(m, WARD_MAGIC_DB_PATH) != 0) {
		rc = ward_error_set(WARD_EIO, "type gate: cannot load the magic database '%s': %s", WARD_MAGIC_DB_PATH,
				    magic_error(m) ? magic_error(m) : "unknown error");
		goto fail;
	}
	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		if (magic_setparam(m, params[i].param, &params[i].value) != 0) {
			rc = ward_error_set(WARD_EIO, "type gate: libmagic refused parameter %d", params[i].param);
			goto fail;
		}
	}
	if (pthread_setspecific(magic_key, m) != 0) {
		rc = ward_error_set(WARD_ENOMEM, "type gate: cannot keep the libmagic cookie");
		goto fail;
	}
	*out = m;
	return 0;
fail:
	magic_close(m);
	return rc;
}

/* libmagic's MIME type of the first WARD_GATE_MAGIC_WINDOW bytes. Its soft
 * magic and text checks cost about linear time in what they are given (1.7 ms
 * for 64 KiB of HTML, 0.3 ms for 4 KiB); binary signatures sit at the start,
 * and the bytes past the window are still checked by the strict decoding. */
static int gate_detect(char *mime, size_t cap, const char *s, size_t n)
{
	magic_t m;
	const char *r;
	int rc;

	if ((rc = gate_magic(&m)) < 0)
		return rc;
	/* A window that ends inside a UTF-8 sequence makes libmagic call the
	 * whole text binary data: end it on a character boundary. */
	if (n > WARD_GATE_MAGIC_WINDOW) {
		size_t k = WARD_GATE_MAGIC_WINDOW;

		while (k > WARD_GATE_MAGIC_WINDOW - 4 && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
		n = k;
	}
	r = magic_buffer(m, s, n);
	if (r == NULL)
		return ward_error_set(WARD_EIO, "type gate: libmagic failed: %s",
				      magic_error(m) ? magic_error(m) : "unknown error");
	copy_printable(mime, cap, r, strcspn(r, ";"));
	return 0;
}

/* ---- conversion ----------------------------------------------------------- */

/* Offset of the first byte that is not strict UTF-8 (ICU's U8_NEXT refuses
 * overlongs, surrogates and code points past U+10FFFF), or n. */
static size_t utf8_bad_offset(const char *s, size_t n)
{
	int32_t i = 0, len = (int32_t)n;
	UChar32 c;

	while (i < len) {
		int32_t at = i;

		U8_NEXT(s, i, len, c);
		if (c < 0)
			return (size_t)at;
	}
	return n;
}

/*
 * Decodes n bytes as `cs` into out->utf8. Undecodable input (ICU's STOP
 * callbacks make every illegal or unmapped sequence an error) sets *bad to 1
 * and *bad_at to about where it stopped; the return value is then 0. Output
 * over min(4 n, 2 WARD_MAX_DOC_BYTES) is refused the same way (*bad = 2).
 */
/*
 * Converts to UTF-8 and records, in out->map, where each converted character
 * came from in the original bytes (`in` starts `base` bytes into them, after a
 * BOM), so that offsets of findings and citations point at the document as it
 * was fetched, whatever its charset.
 */
static int gate_convert(ward_gate_result *out, const char *in, size_t n, const gate_charset *cs, int *bad,
			size_t *bad_at, size_t base)
{
	UConverter *src = NULL;
	UErrorCode st = U_ZERO_ERROR;
	const char *s = in;
	ward_buf b;
	size_t cap = (size_t)2 * WARD_MAX_DOC_BYTES;
	int rc = 0;

	*bad = 0;
	*bad_at = 0;
	if (n <= cap / 4)
		cap = 4 * n;
	ward_buf_init(&b, cap);
	ward_offmap_dispose(&out->map);
	ward_offmap_init(&out->map, base + n);
	if (strcmp(cs->icu, "UTF-8") == 0) {
		/* No transcoding needed: validate strictly and copy. */
		if ((*bad_at = utf8_bad_offset(in, n)) < n) {
			*bad = 1;
			goto done;
		}
		if ((rc = ward_buf_append(&b, in, n)) < 0 || (rc = ward_offmap_add(&out->map, 0, base)) < 0)
			goto done;
		goto finish;
	}
	if (n > INT32_MAX) {
		*bad = 2;
		goto done;
	}
	src = ucnv_open(cs->icu, &st);
	if (U_SUCCESS(st))
		ucnv_setToUCallBack(src, UCNV_TO_U_CALLBACK_STOP, NULL, NULL, NULL, &st);
	if (U_FAILURE(st)) {
		rc = ward_error_set(st == U_MEMORY_ALLOCATION_ERROR ? WARD_ENOMEM : WARD_EIO,
				    "type gate: cannot open converter '%s': %s", cs->icu, u_errorName(st));
		goto done;
	}
	/* One character at a time, so each one's source offset is known; an
	 * anchor is only added where the byte lengths differ (offmap merges
	 * anchors on one diagonal). Non-UTF-8 documents are rare: simplicity
	 * wins over speed here. */
	while (s < in + n) {
		const char *at = s;
		uint8_t u8[U8_MAX_LENGTH];
		int32_t k = 0;
		UChar32 c;

		st = U_ZERO_ERROR;
		c = ucnv_getNextUChar(src, &s, in + n, &st);
		if (st == U_INDEX_OUTOFBOUNDS_ERROR)
			break;
		if (U_FAILURE(st) || c < 0 || c > 0x10FFFF || U_IS_SURROGATE(c) || s <= at) {
			*bad = 1;
			*bad_at = (size_t)(at - in);
			goto done;
		}
		U8_APPEND_UNSAFE(u8, k, c);
		if ((rc = ward_offmap_add(&out->map, b.len, base + (size_t)(at - in))) < 0)
			goto done;
		if (ward_buf_append(&b, u8, (size_t)k) < 0) {
			if (b.err == WARD_ETOOBIG) {
				*bad = 2;
				goto done;
			}
			rc = b.err;
			goto done;
		}
	}
	/* The end of the text maps to the end of the input. */
	if ((rc = ward_offmap_add(&out->map, b.len, base + n)) < 0)
		goto done;
finish:
	if ((rc = ward_buf_detach(&b, &out->utf8, &out->utf8_len)) < 0) {
		if (rc == WARD_ETOOBIG) {
			*bad = 2;
			rc = 0;
		}
	}
done:
	ward_buf_dispose(&b);
	if (src != NULL)
		ucnv_close(src);
	return rc;
}

/* ---- the decision ---------------------------------------------------------- */

static void set_decision(ward_gate_result *out, ward_gate_decision d, ward_doctype t, const char *fmt, ...)
	WARD_PRINTF(4, 5);

static void set_decision(ward_gate_result *out, ward_gate_decision d, ward_doctype t, const char *fmt, ...)
{
	va_list ap;

	out->decision = d;
	out->type = d == WARD_GATE_ACCEPT ? t : WARD_TYPE_UNKNOWN;
	out->reason[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
		va_end(ap);
	}
}

static const char *bytes_word(gate_bytes by)
{
	switch (by) {
	case BY_HTML:
	case BY_XHTML:
		return "HTML";
	case BY_XML:
		return "XML";
	case BY_FEED:
		return "an RSS/Atom feed";
	case BY_TEXT:
		return "plain text";
	default:
		return "binary";
	}
}

/* Applies the agreement table at the top of this file. */
static void gate_agree(ward_gate_result *out, gate_fam fam, gate_bytes by, const char *root, int md_name,
		       int html_start)
{
	const char *decl = out->declared;
	const char *what = bytes_word(by);
	char rootinfo[80] = "";

	if (root[0] != '\0')
		snprintf(rootinfo, sizeof(rootinfo), " (root <%s>)", root);

	switch (fam) {
	case FAM_NONE:
		set_decision(out, WARD_GATE_ACCEPT,
			     by == BY_HTML    ? WARD_TYPE_HTML
			     : by == BY_XHTML ? WARD_TYPE_XHTML
			     : by == BY_XML   ? WARD_TYPE_XML
			     : by == BY_FEED  ? WARD_TYPE_FEED
					      : WARD_TYPE_TEXT,
			     NULL);
		return;
	case FAM_HTML:
		if (by == BY_HTML || by == BY_XHTML || by == BY_TEXT)
			set_decision(out, WARD_GATE_ACCEPT, WARD_TYPE_HTML, NULL);
		else
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s%s", decl, what,
				     rootinfo);
		return;
	case FAM_XHTML:
		if (by == BY_XHTML || ((by == BY_HTML || by == BY_TEXT) && ieq(root, "html")))
			set_decision(out, WARD_GATE_ACCEPT, WARD_TYPE_XHTML, NULL);
		else
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s%s", decl, what,
				     rootinfo);
		return;
	case FAM_XML:
		if (by == BY_FEED)
			set_decision(out, WARD_GATE_ACCEPT, WARD_TYPE_FEED, NULL);
		else if (by == BY_XML || by == BY_XHTML || root[0] != '\0')
			set_decision(out, WARD_GATE_ACCEPT, WARD_TYPE_XML, NULL);
		else
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s", decl, what);
		return;
	case FAM_FEED:
		if (by == BY_FEED)
			set_decision(out, WARD_GATE_ACCEPT, WARD_TYPE_FEED, NULL);
		else if (root[0] != '\0')
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the root element is <%s>", decl,
				     root);
		else
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s", decl, what);
		return;
	case FAM_TEXT:
		if (by == BY_TEXT)
			set_decision(out, WARD_GATE_ACCEPT, md_name ? WARD_TYPE_MARKDOWN : WARD_TYPE_TEXT, NULL);
		else
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s", decl, what);
		return;
	case FAM_MARKDOWN:
		if (by == BY_TEXT || (by == BY_HTML && !html_start))
			set_decision(out, WARD_GATE_ACCEPT, WARD_TYPE_MARKDOWN, NULL);
		else
			set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s", decl, what);
		return;
	case FAM_OTHER:
	default:
		set_decision(out, WARD_GATE_QUARANTINE, 0, "declared %s but the bytes are %s (%s)", decl, what,
			     out->detected);
		return;
	}
}

/* What libmagic's answer says about the bytes, before the root sniff. */
static gate_bytes detected_bytes(const char *mime)
{
	if (strcmp(mime, "text/html") == 0)
		return BY_HTML;
	if (strcmp(mime, "text/xml") == 0 || strcmp(mime, "application/xml") == 0 ||
	    strcmp(mime, "application/xhtml+xml") == 0)
		return BY_XML;
	/* text/x-c, text/x-shellscript, ...: libmagic's guesses at prose that
	 * looks like code; message/rfc822 is a text that starts with "From:" or
	 * "Subject:" lines. JSON and JavaScript are text too. */
	if (strncmp(mime, "text/", 5) == 0 || strncmp(mime, "message/", 8) == 0 || strcmp(mime, "application/json") == 0 ||
	    strcmp(mime, "application/javascript") == 0)
		return BY_TEXT;
	return BY_BINARY;
}

/* The charset for an accepted, ASCII-compatible document. Returns the entry,
 * or NULL with the label copied to `label` when it names a charset that is
 * not allowed. */
static const gate_charset *gate_pick_charset(const gate_charset *bom, const char *ct_charset, ward_doctype t,
					     const char *s, size_t n, char *label, size_t cap, const char **from)
{
	const gate_charset *cs;

	label[0] = '\0';
	*from = "";
	if (bom != NULL)
		return bom;
	if (ct_charset[0] != '\0') {
		snprintf(label, cap, "%s", ct_charset);
		*from = " (Content-Type)";
		return charset_lookup(ct_charset);
	}
	if ((t == WARD_TYPE_HTML && sniff_meta_charset(s, n, label, cap)) ||
	    ((t == WARD_TYPE_XML || t == WARD_TYPE_XHTML || t == WARD_TYPE_FEED) && sniff_xml_encoding(s, n, label, cap))) {
		*from = t == WARD_TYPE_HTML ? " (<meta>)" : " (XML declaration)";
		cs = charset_lookup(label);
		/* A label read by an ASCII prescan cannot be UTF-16/32: the
		 * bytes were readable as ASCII. WHATWG treats it as UTF-8. */
		if (cs != NULL && cs->wide)
			cs = charset_named("utf-8");
		return cs;
	}
	return charset_named("utf-8");
}

int ward_typegate(ward_gate_result *out, const char *bytes, size_t len, const char *content_type, const char *name,
		  unsigned allowed)
{
	char ct_charset[64] = "", label[64], root[64] = "";
	const gate_charset *bom, *cs = NULL;
	const char *view, *nul, *from = "";
	size_t bom_len, vlen, i, bad_at = 0;
	gate_fam fam = FAM_NONE;
	gate_bytes by;
	int md_name = 0, wide = 0, bad = 0, rc = 0;

	if (out == NULL)
		return ward_error_set(WARD_EINVAL, "type gate: no result");
	memset(out, 0, sizeof(*out));
	if (bytes == NULL && len > 0)
		return ward_error_set(WARD_EINVAL, "type gate: no bytes");
	if (allowed == 0)
		allowed = GATE_DEFAULT_ALLOWED;

	/* Declared type: the header if there is one, else the extension. */
	{
		const char *ext = ext_mime(name);

		md_name = ext != NULL && strcmp(ext, "text/markdown") == 0;
		if (content_type != NULL && *skip_ows(content_type) != '\0') {
			if (parse_content_type(content_type, out->declared, sizeof(out->declared), ct_charset,
					       sizeof(ct_charset)) < 0) {
				out->declared[0] = '\0';
				set_decision(out, WARD_GATE_QUARANTINE, 0, "malformed Content-Type header");
				return 0;
			}
			fam = mime_family(out->declared);
		} else if (ext != NULL) {
			snprintf(out->declared, sizeof(out->declared), "%s", ext);
			fam = mime_family(ext);
		}
	}
	if (len == 0) {
		set_decision(out, WARD_GATE_REJECT, 0, "empty document");
		return 0;
	}
	if (len > WARD_MAX_DOC_BYTES) {
		set_decision(out, WARD_GATE_REJECT, 0, "document of %zu bytes exceeds the cap of %d bytes", len,
			     WARD_MAX_DOC_BYTES);
		return 0;
	}

	/* A BOM wins; a declared UTF-16/32 charset also means converting first. */
	bom = bom_charset((const unsigned char *)bytes, len, &bom_len);
	cs = bom;
	if (cs == NULL && ct_charset[0] != '\0' && (cs = charset_lookup(ct_charset)) == NULL) {
		set_decision(out, WARD_GATE_REJECT, 0, "charset '%s' is not allowed", ct_charset);
		return 0;
	}
	wide = cs != NULL && cs->wide;
	view = bytes;
	vlen = len;
	if (wide) {
		snprintf(out->charset, sizeof(out->charset), "%s", cs->name);
		if ((rc = gate_convert(out, bytes + bom_len, len - bom_len, cs, &bad, &bad_at, bom_len)) < 0)
			goto fail;
		if (bad) {
			set_decision(out, WARD_GATE_REJECT, 0, bad == 2 ? "undecodable as %s: output exceeds its cap"
									: "undecodable as %s near byte %zu",
				     cs->name, bad_at);
			goto refused;
		}
		view = out->utf8;
		vlen = out->utf8_len;
	}
	i = !wide && bom_len == 3 ? 3 : 0;
	while (i < vlen && is_ws((unsigned char)view[i]))
		i++;
	if (i >= vlen) {
		set_decision(out, WARD_GATE_REJECT, 0, "empty document (only whitespace)");
		goto refused;
	}

	/* Detect: the cheap sniff when declared HTML starts like HTML, else libmagic. */
	nul = memchr(view, 0, vlen < WARD_GATE_SNIFF_BYTES ? vlen : WARD_GATE_SNIFF_BYTES);
	if (nul == NULL && fam == FAM_HTML && starts_like_html(view, vlen)) {
		snprintf(out->detected, sizeof(out->detected), "text/html");
		out->sniffed = 1;
	} else if ((rc = gate_detect(out->detected, sizeof(out->detected), view, vlen)) < 0) {
		goto fail;
	}
	by = detected_bytes(out->detected);
	if (by == BY_BINARY) {
		if (nul != NULL && strcmp(out->detected, "application/octet-stream") == 0)
			set_decision(out, WARD_GATE_REJECT, 0, "binary content (%s): NUL byte at offset %zu",
				     out->detected, (size_t)(nul - view));
		else
			set_decision(out, WARD_GATE_REJECT, 0,
				     "detected %s: binary, archive and executable content is not ingested", out->detected);
		goto refused;
	}
	if (nul != NULL) {
		set_decision(out, WARD_GATE_REJECT, 0, "NUL byte at offset %zu in a document detected as %s",
			     (size_t)(nul - view), out->detected);
		goto refused;
	}
	if (sniff_root(view, vlen, root, sizeof(root)) && is_feed_root(root))
		by = BY_FEED;
	else if (by == BY_XML && strcmp(root, "html") == 0)
		by = BY_XHTML;
	gate_agree(out, fam, by, root, md_name, starts_like_html(view, vlen));
	if (out->decision != WARD_GATE_ACCEPT)
		goto refused;
	if (!(allowed & (1u << out->type))) {
		set_decision(out, WARD_GATE_QUARANTINE, 0, "type %s (detected %s) is not allowed for this source",
			     ward_doctype_name(out->type), out->detected);
		goto refused;
	}
	if (wide)
		return 0;

	/* Charset of an ASCII-compatible document, then convert. */
	cs = gate_pick_charset(bom, ct_charset, out->type, bytes, len, label, sizeof(label), &from);
	if (cs == NULL) {
		set_decision(out, WARD_GATE_REJECT, 0, "charset '%s'%s is not allowed", label, from);
		goto refused;
	}
	snprintf(out->charset, sizeof(out->charset), "%s", cs->name);
	if ((rc = gate_convert(out, bytes + bom_len, len - bom_len, cs, &bad, &bad_at, bom_len)) < 0)
		goto fail;
	if (bad == 2) {
		set_decision(out, WARD_GATE_REJECT, 0, "undecodable as %s: output exceeds its cap", cs->name);
		goto refused;
	}
	if (bad == 1 && from[0] != '\0' && strcmp(from, " (Content-Type)") != 0 &&
	    utf8_bad_offset(bytes, len) == len) {
		/* An in-document label (<meta>, XML declaration) is often stale:
		 * the file was re-saved as UTF-8 and kept its old declaration.
		 * Valid UTF-8 that the label cannot decode is taken as UTF-8. */
		cs = charset_named("utf-8");
		snprintf(out->charset, sizeof(out->charset), "%s", cs->name);
		if ((rc = gate_convert(out, bytes, len, cs, &bad, &bad_at, 0)) < 0)
			goto fail;
	}
	if (bad) {
		if (label[0] == '\0' && bom == NULL)
			set_decision(out, WARD_GATE_REJECT, 0,
				     "not valid UTF-8 and no charset declared (first bad byte at offset %zu)", bad_at);
		else
			set_decision(out, WARD_GATE_REJECT, 0, "undecodable as %s near byte %zu", cs->name,
				     bad_at + bom_len);
		goto refused;
	}
	return 0;

refused:
	/* Only accepted documents carry text. */
	ward_free(out->utf8);
	out->utf8 = NULL;
	out->utf8_len = 0;
	ward_offmap_dispose(&out->map);
	return 0;
fail:
	ward_gate_result_dispose(out);
	return rc;
}

void ward_gate_result_dispose(ward_gate_result *r)
{
	if (r == NULL)
		return;
	ward_free(r->utf8);
	ward_offmap_dispose(&r->map);
	memset(r, 0, sizeof(*r));
}
