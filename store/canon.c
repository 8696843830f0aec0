/*
 * The chunk statement encoding (docs/signed-statement.md). This file is the
 * only place that knows the byte layout.
 *
 *   statement = "ragward/chunk/v1" 0x00 field*
 *   field     = u32 big-endian length || bytes
 *
 * Fields, in order: version, key_id, chunk_id, document_id, document_version,
 * source_id, uri, doc_sha256 (32 raw bytes), ordinal, heading_path,
 * char_start, char_end, text_sha256 (32 raw bytes), ruleset_sha256, verdict,
 * fetched_at. Integers are decimal ASCII without leading zeros or '+'.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/canon.h"
#include "core/limits.h"
#include "core/banned.h"

#define TAG "ragward/chunk/v1"
#define NFIELDS 16

static int put(ward_buf *b, const void *p, size_t n)
{
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

	if (n > WARD_MAX_STATEMENT_FIELD)
		return ward_error_set(WARD_ETOOBIG, "statement field longer than %d bytes", WARD_MAX_STATEMENT_FIELD);
	if (ward_buf_append(b, len, 4) < 0 || ward_buf_append(b, p, n) < 0)
		return b->err;
	return 0;
}

static int put_str(ward_buf *b, const char *s)
{
	return put(b, s ? s : "", s ? strlen(s) : 0);
}

static int put_int(ward_buf *b, int64_t v)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	return put(b, num, (size_t)n);
}

int ward_statement_encode(uint8_t **out, size_t *len, const ward_statement *st)
{
	ward_buf b;
	char *p = NULL;
	int rc;

	*out = NULL;
	*len = 0;
	if (st->version != WARD_STATEMENT_VERSION)
		return ward_error_set(WARD_EINVAL, "unknown statement version %d", st->version);
	ward_buf_init(&b, 16 * WARD_MAX_STATEMENT_FIELD);
	if ((rc = ward_buf_append(&b, TAG, sizeof(TAG))) < 0 || /* includes the NUL */
	    (rc = put_int(&b, st->version)) < 0 || (rc = put_str(&b, st->key_id)) < 0 ||
	    (rc = put_int(&b, st->chunk_id)) < 0 || (rc = put_int(&b, st->document_id)) < 0 ||
	    (rc = put_int(&b, st->document_version)) < 0 || (rc = put_int(&b, st->source_id)) < 0 ||
	    (rc = put_str(&b, st->uri)) < 0 || (rc = put(&b, st->doc_sha256, WARD_SHA256_LEN)) < 0 ||
	    (rc = put_int(&b, st->ordinal)) < 0 || (rc = put_str(&b, st->heading_path)) < 0 ||
	    (rc = put_int(&b, st->char_start)) < 0 || (rc = put_int(&b, st->char_end)) < 0 ||
	    (rc = put(&b, st->text_sha256, WARD_SHA256_LEN)) < 0 || (rc = put_str(&b, st->ruleset_sha256)) < 0 ||
	    (rc = put_str(&b, st->verdict)) < 0 || (rc = put_str(&b, st->fetched_at)) < 0)
		goto done;
	if ((rc = ward_buf_detach(&b, &p, len)) < 0)
		goto done;
	*out = (uint8_t *)p;
done:
	ward_buf_dispose(&b);
	if (rc < 0)
		return ward_error_set(rc, "encoding chunk statement: %s",
				      rc == WARD_ENOMEM ? "out of memory" : "a field is too long");
	return 0;
}

static int parse_int(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	int neg = 0;
	size_t i = 0;

	if (n == 0 || n > 20)
		return -1;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
		if (n == 1)
			return -1;
	}
	if (s[i] == '0' && n > i + 1)
		return -1; /* no leading zeros: one encoding per value */
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (neg && v == 0)
		return -1; /* "-0" */
	*out = neg ? -v : v;
	return 0;
}

int ward_statement_decode(ward_statement *out, char **storage, const uint8_t *buf, size_t len)
{
	size_t off = sizeof(TAG), flen[NFIELDS], fpos[NFIELDS], total = 0;
	char *store = NULL, *w;
	int64_t iv;
	int rc = WARD_EINVAL;

	memset(out, 0, sizeof(*out));
	*storage = NULL;
	if (len < sizeof(TAG) || memcmp(buf, TAG, sizeof(TAG)) != 0)
		return ward_error_set(WARD_EINVAL, "not a chunk statement");
	for (int i = 0; i < NFIELDS; i++) {
		if (len - off < 4)
			return ward_error_set(WARD_EINVAL, "chunk statement truncated at field %d", i);
		flen[i] = ((size_t)buf[off] << 24) | ((size_t)buf[off + 1] << 16) | ((size_t)buf[off + 2] << 8) |
			  buf[off + 3];
		off += 4;
		if (flen[i] > WARD_MAX_STATEMENT_FIELD || flen[i] > len - off)
			return ward_error_set(WARD_EINVAL, "chunk statement field %d has a bad length", i);
		fpos[i] = off;
		off += flen[i];
		total += flen[i] + 1;
	}
	if (off != len)
		return ward_error_set(WARD_EINVAL, "chunk statement has trailing bytes");
	if (!(store = ward_malloc(total)))
		return ward_error_set(WARD_ENOMEM, "decoding chunk statement: out of memory");
	w = store;
	/* Copy every field NUL-terminated; string fields must not contain NUL. */
	char *f[NFIELDS];
	for (int i = 0; i < NFIELDS; i++) {
		f[i] = w;
		memcpy(w, buf + fpos[i], flen[i]);
		w[flen[i]] = '\0';
		w += flen[i] + 1;
		if (i != 7 && i != 12 && memchr(f[i], '\0', flen[i]))
			goto bad;
	}
	if (parse_int(f[0], flen[0], &iv) < 0 || iv != WARD_STATEMENT_VERSION)
		goto bad;
	out->version = (int)iv;
	if (flen[1] >= sizeof(out->key_id))
		goto bad;
	memcpy(out->key_id, f[1], flen[1] + 1);
	if (parse_int(f[2], flen[2], &out->chunk_id) < 0 || parse_int(f[3], flen[3], &out->document_id) < 0 ||
	    parse_int(f[4], flen[4], &out->document_version) < 0 || parse_int(f[5], flen[5], &out->source_id) < 0)
		goto bad;
	out->uri = f[6];
	if (flen[7] != WARD_SHA256_LEN)
		goto bad;
	memcpy(out->doc_sha256, f[7], WARD_SHA256_LEN);
	if (parse_int(f[8], flen[8], &out->ordinal) < 0)
		goto bad;
	out->heading_path = f[9];
	if (parse_int(f[10], flen[10], &out->char_start) < 0 || parse_int(f[11], flen[11], &out->char_end) < 0)
		goto bad;
	if (flen[12] != WARD_SHA256_LEN)
		goto bad;
	memcpy(out->text_sha256, f[12], WARD_SHA256_LEN);
	out->ruleset_sha256 = f[13];
	out->verdict = f[14];
	out->fetched_at = f[15];
	*storage = store;
	return 0;
bad:
	ward_free(store);
	memset(out, 0, sizeof(*out));
	return ward_error_set(rc, "chunk statement is malformed");
}

static int statement_digest(uint8_t digest[WARD_SHA256_LEN], const ward_statement *st)
{
	uint8_t *enc = NULL;
	size_t len = 0;
	int rc;

	if ((rc = ward_statement_encode(&enc, &len, st)) < 0)
		return rc;
	rc = ward_sha256(digest, enc, len);
	ward_free(enc);
	return rc;
}

int ward_statement_sign(uint8_t sig[WARD_ED25519_SIG_LEN], const ward_key *k, const ward_statement *st)
{
	uint8_t digest[WARD_SHA256_LEN];
	int rc;

	if ((rc = statement_digest(digest, st)) < 0)
		return rc;
	return ward_sign(sig, k, digest, sizeof(digest));
}

int ward_statement_verify(const ward_key *k, const uint8_t *sig, size_t sig_len, const ward_statement *st)
{
	uint8_t digest[WARD_SHA256_LEN];
	int rc;

	if ((rc = statement_digest(digest, st)) < 0)
		return rc;
	return ward_verify(k, sig, sig_len, digest, sizeof(digest));
}
