#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

/* RFC 4648 section 10. */
static const struct {
	const char *plain;
	const char *b64;
	const char *hex; /* the RFC's BASE16, lowercased as we emit it */
} rfc4648[] = {
	{"", "", ""},
	{"f", "Zg==", "66"},
	{"fo", "Zm8=", "666f"},
	{"foo", "Zm9v", "666f6f"},
	{"foob", "Zm9vYg==", "666f6f62"},
	{"fooba", "Zm9vYmE=", "666f6f6261"},
	{"foobar", "Zm9vYmFy", "666f6f626172"},
};

#define NVEC (sizeof(rfc4648) / sizeof(rfc4648[0]))

static void test_core_encoding__hex_rfc4648(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NVEC; i++) {
		const char *p = rfc4648[i].plain;
		char *hex = NULL;
		uint8_t *back = NULL;
		size_t back_len = 99;

		assert_int_equal(ward_hex_encode(&hex, (const uint8_t *)p, strlen(p)), 0);
		assert_string_equal(hex, rfc4648[i].hex);
		assert_int_equal(ward_hex_decode(&back, &back_len, hex, strlen(hex)), 0);
		assert_non_null(back);
		assert_int_equal(back_len, strlen(p));
		assert_memory_equal(back, p, back_len);
		ward_free(back);
		ward_free(hex);
	}
}

static void test_core_encoding__hex_accepts_uppercase(void **state)
{
	uint8_t *d = NULL;
	size_t n = 0;
	uint8_t fixed[3];

	(void)state;
	assert_int_equal(ward_hex_decode(&d, &n, "666F6F", 6), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(d, "foo", 3);
	ward_free(d);
	assert_int_equal(ward_hex_decode(&d, &n, "aBcDeF", 6), 0);
	assert_memory_equal(d, "\xab\xcd\xef", 3);
	ward_free(d);
	assert_int_equal(ward_hex_decode_to(fixed, 3, "00FFa0"), 0);
	assert_memory_equal(fixed, "\x00\xff\xa0", 3);
}

static void test_core_encoding__hex_all_bytes_roundtrip(void **state)
{
	uint8_t all[256];
	uint8_t back[256];
	char hex[513];
	size_t i;

	(void)state;
	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	ward_hex_encode_to(hex, all, sizeof(all));
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102", 6);
	assert_memory_equal(hex + 506, "fdfeff", 6);
	assert_int_equal(ward_hex_decode_to(back, sizeof(back), hex), 0);
	assert_memory_equal(back, all, sizeof(all));
}

static void test_core_encoding__hex_malformed(void **state)
{
	static const char *bad[] = {"0", "abc", "0g", "g0", " 00", "00 ", "0x00", "zz", "-1", "\xc3\xa9"};
	uint8_t *d = (uint8_t *)1;
	size_t n = 99;
	uint8_t fixed[2];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ward_hex_decode(&d, &n, bad[i], strlen(bad[i])), WARD_EINVAL);
		assert_null(d);
		assert_int_equal(n, 0);
		assert_int_equal(ward_error_last()->code, WARD_EINVAL);
	}
	/* an embedded NUL is not a hex digit */
	assert_int_equal(ward_hex_decode(&d, &n, "0\0", 2), WARD_EINVAL);
	/* decode_to wants exactly 2n characters */
	assert_int_equal(ward_hex_decode_to(fixed, 2, "001"), WARD_EINVAL);
	assert_int_equal(ward_hex_decode_to(fixed, 2, "00112"), WARD_EINVAL);
	assert_int_equal(ward_hex_decode_to(fixed, 2, "001122"), WARD_EINVAL);
	assert_int_equal(ward_hex_decode_to(fixed, 2, "00x1"), WARD_EINVAL);
	assert_int_equal(ward_hex_decode_to(fixed, 2, NULL), WARD_EINVAL);
}

static void test_core_encoding__base64_rfc4648(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NVEC; i++) {
		const char *p = rfc4648[i].plain;
		char *b64 = NULL;
		uint8_t *back = NULL;
		size_t back_len = 99;

		assert_int_equal(ward_base64_encode(&b64, (const uint8_t *)p, strlen(p)), 0);
		assert_string_equal(b64, rfc4648[i].b64);
		assert_int_equal(ward_base64_decode(&back, &back_len, b64, strlen(b64)), 0);
		assert_non_null(back);
		assert_int_equal(back_len, strlen(p));
		assert_memory_equal(back, p, back_len);
		ward_free(back);
		ward_free(b64);
	}
}

static void test_core_encoding__base64_binary_roundtrip(void **state)
{
	uint8_t data[1000];
	size_t len;

	(void)state;
	for (len = 0; len < sizeof(data); len++)
		data[len] = (uint8_t)(len * 7 + 3);
	/* every length mod 3, including trailing zero bytes that padding must not eat */
	for (len = 0; len < 40; len++) {
		char *b64 = NULL;
		uint8_t *back = NULL;
		size_t back_len = 0;
		uint8_t zeros[40] = {0};

		assert_int_equal(ward_base64_encode(&b64, data, len), 0);
		assert_int_equal(strlen(b64), (len + 2) / 3 * 4);
		assert_int_equal(ward_base64_decode(&back, &back_len, b64, strlen(b64)), 0);
		assert_int_equal(back_len, len);
		assert_memory_equal(back, data, len);
		ward_free(back);
		ward_free(b64);

		assert_int_equal(ward_base64_encode(&b64, zeros, len), 0);
		assert_int_equal(ward_base64_decode(&back, &back_len, b64, strlen(b64)), 0);
		assert_int_equal(back_len, len);
		assert_memory_equal(back, zeros, len);
		ward_free(back);
		ward_free(b64);
	}
	{
		char *b64 = NULL;
		uint8_t *back = NULL;
		size_t back_len = 0;

		assert_int_equal(ward_base64_encode(&b64, data, sizeof(data)), 0);
		assert_int_equal(ward_base64_decode(&back, &back_len, b64, strlen(b64)), 0);
		assert_int_equal(back_len, sizeof(data));
		assert_memory_equal(back, data, sizeof(data));
		ward_free(back);
		ward_free(b64);
	}
}

static void test_core_encoding__base64_malformed(void **state)
{
	static const char *bad[] = {
		"Zg",         /* missing padding */
		"Zg=",        /* short padding */
		"Zm9",        /* length not a multiple of 4 */
		"Z===",       /* three '=' */
		"====",       /* padding only */
		"Zg==Zg==",   /* padding in the middle */
		"Zm=v",       /* '=' before data */
		"Z=g=",       /* interleaved */
		"Zm9v\n",     /* newline */
		"Zm9v YmFy",  /* inner space */
		" Zm9",       /* leading space */
		"Zm9\t",      /* tab */
		"Zm9-",       /* base64url alphabet */
		"Zm9_",
		"Zm9v.A==",
		"Zh==",       /* non-canonical: low bits set before '==' */
		"Zm9=",       /* non-canonical: low bits set before '=' */
		"Zm+=",
		"\xc3\xa9\xc3\xa9",
	};
	uint8_t *d = (uint8_t *)1;
	size_t n = 99;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ward_base64_decode(&d, &n, bad[i], strlen(bad[i])), WARD_EINVAL);
		assert_null(d);
		assert_int_equal(n, 0);
	}
	/* an embedded NUL inside the declared length */
	assert_int_equal(ward_base64_decode(&d, &n, "Zm\0v", 4), WARD_EINVAL);
	/* the canonical neighbours of the non-canonical cases are fine */
	assert_int_equal(ward_base64_decode(&d, &n, "Zg==", 4), 0);
	ward_free(d);
	assert_int_equal(ward_base64_decode(&d, &n, "Zm8=", 4), 0);
	ward_free(d);
}

static void test_core_encoding__enomem(void **state)
{
	char *s = (char *)1;
	uint8_t *d = (uint8_t *)1;
	size_t n = 99;

	(void)state;
	ward_alloc_fail_after(0);
	assert_int_equal(ward_hex_encode(&s, (const uint8_t *)"a", 1), WARD_ENOMEM);
	assert_null(s);
	s = (char *)1;
	assert_int_equal(ward_base64_encode(&s, (const uint8_t *)"a", 1), WARD_ENOMEM);
	assert_null(s);
	assert_int_equal(ward_hex_decode(&d, &n, "00", 2), WARD_ENOMEM);
	assert_null(d);
	d = (uint8_t *)1;
	assert_int_equal(ward_base64_decode(&d, &n, "Zg==", 4), WARD_ENOMEM);
	assert_null(d);
	ward_alloc_fail_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_core_encoding__hex_rfc4648, teardown),
		cmocka_unit_test_teardown(test_core_encoding__hex_accepts_uppercase, teardown),
		cmocka_unit_test_teardown(test_core_encoding__hex_all_bytes_roundtrip, teardown),
		cmocka_unit_test_teardown(test_core_encoding__hex_malformed, teardown),
		cmocka_unit_test_teardown(test_core_encoding__base64_rfc4648, teardown),
		cmocka_unit_test_teardown(test_core_encoding__base64_binary_roundtrip, teardown),
		cmocka_unit_test_teardown(test_core_encoding__base64_malformed, teardown),
		cmocka_unit_test_teardown(test_core_encoding__enomem, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
