/*
 * The signed chunk statement: exact encoding, strict decoding, and signatures
 * that fail when any field changes (T46).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/canon.h"

static void fill(ward_statement *st)
{
	memset(st, 0, sizeof(*st));
	st->version = WARD_STATEMENT_VERSION;
	memcpy(st->key_id, "0123456789abcdef0123456789abcdef", 33);
	st->chunk_id = 42;
	st->document_id = 7;
	st->document_version = 2;
	st->source_id = 3;
	st->uri = "https://docs.example.com/guide/install";
	memset(st->doc_sha256, 0xab, sizeof(st->doc_sha256));
	st->ordinal = 0;
	st->heading_path = "Guide > Install";
	st->char_start = 0;
	st->char_end = 120;
	memset(st->text_sha256, 0xcd, sizeof(st->text_sha256));
	st->ruleset_sha256 = "none";
	st->verdict = "accept";
	st->fetched_at = "2026-11-28T08:16:42Z";
}

static void test_store_canon__roundtrip_is_byte_identical(void **state)
{
	ward_statement st, back;
	uint8_t *enc = NULL, *enc2 = NULL;
	size_t len = 0, len2 = 0;
	char *storage = NULL;

	(void)state;
	fill(&st);
	assert_int_equal(ward_statement_encode(&enc, &len, &st), 0);
	assert_memory_equal(enc, "ragward/chunk/v1\0", 17);
	/* first field: u32 length 1, then "1" */
	assert_memory_equal(enc + 17, "\0\0\0\001" "1", 5);
	assert_int_equal(ward_statement_decode(&back, &storage, enc, len), 0);
	assert_int_equal(back.chunk_id, 42);
	assert_string_equal(back.heading_path, "Guide > Install");
	assert_int_equal(ward_statement_encode(&enc2, &len2, &back), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(enc, enc2, len);
	ward_free(enc);
	ward_free(enc2);
	ward_free(storage);
}

static void test_store_canon__decoder_is_strict(void **state)
{
	ward_statement st, back;
	uint8_t *enc = NULL, *bad;
	size_t len = 0;
	char *storage = NULL;

	(void)state;
	fill(&st);
	assert_int_equal(ward_statement_encode(&enc, &len, &st), 0);
	bad = ward_malloc(len + 1);
	assert_non_null(bad);
	/* trailing byte */
	memcpy(bad, enc, len);
	bad[len] = 0;
	assert_int_equal(ward_statement_decode(&back, &storage, bad, len + 1), WARD_EINVAL);
	/* truncated */
	assert_int_equal(ward_statement_decode(&back, &storage, enc, len - 1), WARD_EINVAL);
	/* wrong tag */
	memcpy(bad, enc, len);
	bad[8] = 'X';
	assert_int_equal(ward_statement_decode(&back, &storage, bad, len), WARD_EINVAL);
	/* a leading zero in the version field ("01" has another length, so
	 * patch the digit instead: version "2" is unknown) */
	memcpy(bad, enc, len);
	bad[21] = '2';
	assert_int_equal(ward_statement_decode(&back, &storage, bad, len), WARD_EINVAL);
	/* a length that runs past the end */
	memcpy(bad, enc, len);
	bad[17] = 0x7f;
	assert_int_equal(ward_statement_decode(&back, &storage, bad, len), WARD_EINVAL);
	assert_null(storage);
	ward_free(bad);
	ward_free(enc);
}

static void test_store_canon__every_field_is_signed(void **state)
{
	ward_key *k = NULL, *other = NULL;
	ward_statement st, t;
	uint8_t sig[WARD_ED25519_SIG_LEN];

	(void)state;
	fill(&st);
	assert_int_equal(ward_key_generate(&k), 0);
	assert_int_equal(ward_key_generate(&other), 0);
	assert_int_equal(ward_statement_sign(sig, k, &st), 0);
	assert_int_equal(ward_statement_verify(k, sig, sizeof(sig), &st), 0);
	assert_int_equal(ward_statement_verify(other, sig, sizeof(sig), &st), WARD_EVERIFY);
	assert_int_equal(ward_statement_verify(k, sig, sizeof(sig) - 1, &st), WARD_EVERIFY);
	sig[0] ^= 1;
	assert_int_equal(ward_statement_verify(k, sig, sizeof(sig), &st), WARD_EVERIFY);
	sig[0] ^= 1;

#define MUST_FAIL(mutation)                                                                                         \
	do {                                                                                                        \
		t = st;                                                                                             \
		mutation;                                                                                           \
		assert_int_equal(ward_statement_verify(k, sig, sizeof(sig), &t), WARD_EVERIFY);                     \
	} while (0)
	MUST_FAIL(t.key_id[0] = '9');
	MUST_FAIL(t.chunk_id = 43);
	MUST_FAIL(t.document_id = 8);
	MUST_FAIL(t.document_version = 1);
	MUST_FAIL(t.source_id = 4);
	MUST_FAIL(t.uri = "https://docs.example.com/guide/instal");
	MUST_FAIL(t.doc_sha256[31] ^= 1);
	MUST_FAIL(t.ordinal = 1);
	MUST_FAIL(t.heading_path = "Guide > Install ");
	MUST_FAIL(t.char_start = 1);
	MUST_FAIL(t.char_end = 121);
	MUST_FAIL(t.text_sha256[0] ^= 0x80);
	MUST_FAIL(t.ruleset_sha256 = "nonf");
	MUST_FAIL(t.verdict = "flag");
	MUST_FAIL(t.fetched_at = "2026-11-28T08:16:43Z");
#undef MUST_FAIL
	ward_key_free(k);
	ward_key_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_canon__roundtrip_is_byte_identical),
		cmocka_unit_test(test_store_canon__decoder_is_strict),
		cmocka_unit_test(test_store_canon__every_field_is_signed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
