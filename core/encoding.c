/*
 * Hex and base64. Decoders are strict: every malformed input is refused
 * rather than repaired, because these strings carry hashes, signatures and
 * keys, and two spellings of one value would defeat string comparisons.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "core/banned.h"

static const char hex_digits[] = "0123456789abcdef";

/* -1 for a non-hex character. */
static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void ward_hex_encode_to(char *out, const uint8_t *data, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex_digits[data[i] >> 4];
		out[2 * i + 1] = hex_digits[data[i] & 0x0F];
	}
	out[2 * n] = '\0';
}

int ward_hex_encode(char **out, const uint8_t *data, size_t n)
{
	char *s;

	*out = NULL;
	if (n > (SIZE_MAX - 1) / 2)
		return ward_error_set(WARD_ETOOBIG, "hex: input of %zu bytes is too large", n);
	s = ward_malloc(2 * n + 1);
	if (s == NULL)
		return ward_error_set(WARD_ENOMEM, "hex: out of memory");
	ward_hex_encode_to(s, data, n);
	*out = s;
	return 0;
}

/* Decodes into out (len / 2 bytes) after the caller checked the length. */
static int hex_decode_raw(uint8_t *out, const char *hex, size_t len)
{
	size_t i;

	for (i = 0; i < len; i += 2) {
		int hi = hex_value((unsigned char)hex[i]);
		int lo = hex_value((unsigned char)hex[i + 1]);

		if (hi < 0 || lo < 0)
			return ward_error_set(WARD_EINVAL, "hex: invalid character at offset %zu", hi < 0 ? i : i + 1);
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int ward_hex_decode(uint8_t **out, size_t *out_len, const char *hex, size_t len)
{
	uint8_t *d = NULL;
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	if (len % 2 != 0) {
		rc = ward_error_set(WARD_EINVAL, "hex: odd length %zu", len);
		goto done;
	}
	d = ward_malloc(len / 2 + 1);
	if (d == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "hex: out of memory");
		goto done;
	}
	rc = hex_decode_raw(d, hex, len);
	if (rc != 0)
		goto done;
	d[len / 2] = '\0';
	*out = d;
	*out_len = len / 2;
	d = NULL;
done:
	ward_free(d);
	return rc;
}

int ward_hex_decode_to(uint8_t *out, size_t n, const char *hex)
{
	size_t len;

	if (hex == NULL)
		return ward_error_set(WARD_EINVAL, "hex: no input");
	if (n > (SIZE_MAX - 1) / 2)
		return ward_error_set(WARD_EINVAL, "hex: expected length too large");
	/* strnlen: a string longer than expected is rejected without reading
	 * past what we need to know. */
	len = strnlen(hex, 2 * n + 1);
	if (len != 2 * n)
		return ward_error_set(WARD_EINVAL, "hex: expected %zu characters", 2 * n);
	return hex_decode_raw(out, hex, len);
}

/* EVP_EncodeBlock takes an int length; chunks are a multiple of 3 so no
 * padding appears mid-stream. */
#define B64_CHUNK (3 * 1024 * 1024)

int ward_base64_encode(char **out, const uint8_t *data, size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);
	size_t off = 0;
	size_t pos = 0;
	char *s;

	*out = NULL;
	if (groups > (SIZE_MAX - 1) / 4)
		return ward_error_set(WARD_ETOOBIG, "base64: input of %zu bytes is too large", n);
	s = ward_malloc(4 * groups + 1);
	if (s == NULL)
		return ward_error_set(WARD_ENOMEM, "base64: out of memory");
	s[0] = '\0';
	while (off < n) {
		size_t chunk = n - off > B64_CHUNK ? B64_CHUNK : n - off;
		int w = EVP_EncodeBlock((unsigned char *)s + pos, data + off, (int)chunk);

		pos += (size_t)w;
		off += chunk;
	}
	s[pos] = '\0';
	*out = s;
	return 0;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Checks everything EVP_DecodeBlock lets through: it skips surrounding
 * whitespace, accepts padding anywhere in the last group and ignores
 * non-zero trailing bits. Returns the number of '=' (0..2) or a negative
 * code. */
static int b64_validate(const char *b64, size_t len)
{
	size_t pad = 0;
	size_t i;

	if (len % 4 != 0)
		return ward_error_set(WARD_EINVAL, "base64: length %zu is not a multiple of 4", len);
	if (len == 0)
		return 0;
	if (b64[len - 1] == '=')
		pad++;
	if (b64[len - 2] == '=') {
		if (pad == 0)
			return ward_error_set(WARD_EINVAL, "base64: bad padding");
		pad++;
	}
	for (i = 0; i < len - pad; i++)
		if (b64_value((unsigned char)b64[i]) < 0)
			return ward_error_set(WARD_EINVAL, "base64: invalid character at offset %zu", i);
	/* Non-canonical encodings: the unused low bits of the last character
	 * before the padding must be zero. */
	if (pad == 2 && (b64_value((unsigned char)b64[len - 3]) & 0x0F) != 0)
		return ward_error_set(WARD_EINVAL, "base64: non-canonical trailing bits");
	if (pad == 1 && (b64_value((unsigned char)b64[len - 2]) & 0x03) != 0)
		return ward_error_set(WARD_EINVAL, "base64: non-canonical trailing bits");
	return (int)pad;
}

int ward_base64_decode(uint8_t **out, size_t *out_len, const char *b64, size_t len)
{
	uint8_t *d = NULL;
	size_t pos = 0;
	size_t off = 0;
	int pad;
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	pad = b64_validate(b64, len);
	if (pad < 0) {
		rc = pad;
		goto done;
	}
	d = ward_malloc(len / 4 * 3 + 1);
	if (d == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "base64: out of memory");
		goto done;
	}
	/* Chunks of whole 4-character groups; only the last may carry padding. */
	while (off < len) {
		size_t chunk = len - off > (size_t)B64_CHUNK / 3 * 4 ? (size_t)B64_CHUNK / 3 * 4 : len - off;
		int w = EVP_DecodeBlock(d + pos, (const unsigned char *)b64 + off, (int)chunk);

		if (w < 0 || (size_t)w != chunk / 4 * 3) {
			rc = ward_error_set(WARD_EINVAL, "base64: decoding failed");
			goto done;
		}
		pos += (size_t)w;
		off += chunk;
	}
	/* EVP_DecodeBlock counts the bytes that padding stands for. */
	pos -= (size_t)pad;
	d[pos] = '\0';
	*out = d;
	*out_len = pos;
	d = NULL;
done:
	ward_free(d);
	return rc;
}
