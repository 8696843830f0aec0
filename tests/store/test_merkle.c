/*
 * Tests for store/merkle.c (security-controls §5, T48, T50).
 *
 * Reference vectors: the 8-leaf tree of the certificate-transparency reference
 * tests, as carried by transparency-dev/merkle proof/verify_test.go and
 * rfc6962/rfc6962_test.go (hex constants only). The mutations follow
 * corruptInclusionProof / corruptConsistencyProof there, which is also how
 * that repository's testdata/{inclusion,consistency} JSON files were made;
 * here they are applied to those vectors and to many more tree sizes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "ragward/merkle.h"
#include "core/banned.h"

#define EMPTY_ROOT_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* sha256SomeHash of verify_test.go: an arbitrary, wrong root. */
#define SOME_HASH_HEX "abacaba000000000000000000000000000000000000000000060061e00123456"

/* Room for any proof a test builds plus the elements a mutation adds. */
#define MAX_TEST_PROOF 80

static const struct {
	const char *data;
	size_t len;
} ref_entries[8] = {
	{"", 0},
	{"\x00", 1},
	{"\x10", 1},
	{"\x20\x21", 2},
	{"\x30\x31", 2},
	{"\x40\x41\x42\x43", 4},
	{"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
	{"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};

/* Root of the tree of the first i+1 reference entries. */
static const char *const ref_roots[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* Inclusion paths; index is 0-based (verify_test.go lists it 1-based). */
static const struct {
	uint64_t index, size;
	size_t len;
	const char *proof[3];
} ref_inclusion[] = {
	{0, 1, 0, {NULL}},
	{0, 8, 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{5, 8, 3,
	 {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{1, 5, 3,
	 {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct {
	uint64_t m, n;
	size_t len;
	const char *proof[3];
} ref_consistency[] = {
	{1, 1, 0, {NULL}},
	{1, 8, 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6, 8, 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 5, 2,
	 {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	{6, 7, 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

/* Tree sizes for the mutation tests: powers of two and their neighbours. */
static const uint64_t mutation_sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64};

/* Bits flipped in each proof element: the two transparency-dev uses (bit 3
 * and bit 4 of byte 0) plus both ends and the middle of the hash. */
static const unsigned flip_bits[] = {0, 3, 4, 7, 129, 255};

static void hex_hash(ward_hash out, const char *hex)
{
	assert_int_equal(ward_hex_decode_to(out, WARD_SHA256_LEN, hex), 0);
}

/* memcpy with a NULL source is undefined even for 0 bytes, and an empty
 * proof is NULL. */
static void copy_hashes(ward_hash *dst, const ward_hash *src, size_t n)
{
	if (n > 0)
		memcpy(dst, src, n * sizeof(ward_hash));
}

static void ref_leaf_hashes(ward_hash out[8])
{
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(ward_merkle_leaf_hash(out[i], ref_entries[i].data, ref_entries[i].len), 0);
}

/* Distinct leaves for trees of any size: H(0x00 || "leaf-<i>"). */
static ward_hash *make_leaves(uint64_t n)
{
	ward_hash *leaves = calloc(n ? n : 1, sizeof(ward_hash));
	char buf[32];

	assert_non_null(leaves);
	for (uint64_t i = 0; i < n; i++) {
		int k = snprintf(buf, sizeof(buf), "leaf-%llu", (unsigned long long)i);
		assert_true(k > 0 && (size_t)k < sizeof(buf));
		assert_int_equal(ward_merkle_leaf_hash(leaves[i], buf, (size_t)k), 0);
	}
	return leaves;
}

/* ---- inclusion mutations ---- */

static void expect_incl_reject(const char *what, uint64_t index, uint64_t size, const ward_hash leaf,
			       const ward_hash *proof, size_t len, const ward_hash root)
{
	int rc = ward_merkle_verify_inclusion(index, size, leaf, proof, len, root);

	if (rc != WARD_EVERIFY)
		fail_msg("inclusion mutation '%s' (index %llu, size %llu, len %zu) gave %d, want EVERIFY", what,
			 (unsigned long long)index, (unsigned long long)size, len, rc);
}

/* The valid proof is accepted and every corruption of it is rejected. */
static void check_inclusion_mutations(uint64_t index, uint64_t size, const ward_hash *proof, size_t len,
				      const ward_hash root, const ward_hash leaf)
{
	ward_hash some, empty, wrong_leaf, zero;
	ward_hash buf[MAX_TEST_PROOF];
	size_t i, b;

	assert_true(len + 2 <= MAX_TEST_PROOF);
	hex_hash(some, SOME_HASH_HEX);
	hex_hash(empty, EMPTY_ROOT_HEX);
	assert_int_equal(ward_merkle_leaf_hash(wrong_leaf, "WrongLeaf", 9), 0);
	memset(zero, 0, sizeof(zero));

	assert_int_equal(ward_merkle_verify_inclusion(index, size, leaf, proof, len, root), 0);

	expect_incl_reject("index - 1", index - 1, size, leaf, proof, len, root);
	expect_incl_reject("index + 1", index + 1, size, leaf, proof, len, root);
	expect_incl_reject("index ^ 2", index ^ 2, size, leaf, proof, len, root);
	expect_incl_reject("size * 2", index, size * 2, leaf, proof, len, root);
	expect_incl_reject("size / 2", index, size / 2, leaf, proof, len, root);
	expect_incl_reject("wrong leaf", index, size, wrong_leaf, proof, len, root);
	expect_incl_reject("empty root", index, size, leaf, proof, len, empty);
	expect_incl_reject("random root", index, size, leaf, proof, len, some);
	if (memcmp(leaf, root, sizeof(ward_hash)) != 0)
		expect_incl_reject("leaf and root swapped", index, size, root, proof, len, leaf);

	/* Trailing garbage / trailing root. */
	copy_hashes(buf, proof, len);
	memcpy(buf[len], zero, sizeof(ward_hash));
	expect_incl_reject("trailing garbage", index, size, leaf, buf, len + 1, root);
	memcpy(buf[len], root, sizeof(ward_hash));
	expect_incl_reject("trailing root", index, size, leaf, buf, len + 1, root);

	/* Preceding garbage / preceding root. */
	copy_hashes(buf + 1, proof, len);
	memcpy(buf[0], zero, sizeof(ward_hash));
	expect_incl_reject("preceding garbage", index, size, leaf, buf, len + 1, root);
	memcpy(buf[0], root, sizeof(ward_hash));
	expect_incl_reject("preceding root", index, size, leaf, buf, len + 1, root);

	/* One bit flipped in one element. */
	for (i = 0; i < len; i++) {
		for (b = 0; b < sizeof(flip_bits) / sizeof(flip_bits[0]); b++) {
			copy_hashes(buf, proof, len);
			buf[i][flip_bits[b] / 8] ^= (uint8_t)(1u << (flip_bits[b] % 8));
			expect_incl_reject("modified proof bit", index, size, leaf, buf, len, root);
		}
	}

	if (len > 0) {
		expect_incl_reject("removed last component", index, size, leaf, proof, len - 1, root);
		expect_incl_reject("removed first component", index, size, leaf, proof + 1, len - 1, root);
	}
	if (len > 1) {
		/* proof[0], some, proof[1..]. */
		memcpy(buf[0], proof[0], sizeof(ward_hash));
		memcpy(buf[1], some, sizeof(ward_hash));
		memcpy(buf + 2, proof + 1, (len - 1) * sizeof(ward_hash));
		expect_incl_reject("inserted component", index, size, leaf, buf, len + 1, root);
		for (i = 0; i + 1 < len; i++) {
			copy_hashes(buf, proof, len);
			memcpy(buf[i], proof[i + 1], sizeof(ward_hash));
			memcpy(buf[i + 1], proof[i], sizeof(ward_hash));
			expect_incl_reject("swapped components", index, size, leaf, buf, len, root);
		}
	}
}

/* ---- consistency mutations ---- */

static void expect_cons_reject(const char *what, uint64_t m, uint64_t n, const ward_hash old_root,
			       const ward_hash new_root, const ward_hash *proof, size_t len)
{
	int rc = ward_merkle_verify_consistency(m, n, old_root, new_root, proof, len);

	if (rc != WARD_EVERIFY)
		fail_msg("consistency mutation '%s' (m %llu, n %llu, len %zu) gave %d, want EVERIFY", what,
			 (unsigned long long)m, (unsigned long long)n, len, rc);
}

/* For a non-empty valid proof (0 < m < n): accepted as is, every corruption
 * rejected. */
static void check_consistency_mutations(uint64_t m, uint64_t n, const ward_hash r1, const ward_hash r2,
					const ward_hash *proof, size_t len)
{
	ward_hash some, wrong, zero;
	ward_hash buf[MAX_TEST_PROOF];
	size_t i, b;

	assert_true(len > 0 && len + 2 <= MAX_TEST_PROOF);
	hex_hash(some, SOME_HASH_HEX);
	assert_int_equal(ward_merkle_leaf_hash(wrong, "WrongRoot", 9), 0);
	memset(zero, 0, sizeof(zero));

	assert_int_equal(ward_merkle_verify_consistency(m, n, r1, r2, proof, len), 0);

	expect_cons_reject("size1 - 1", m - 1, n, r1, r2, proof, len);
	expect_cons_reject("size1 + 1", m + 1, n, r1, r2, proof, len);
	expect_cons_reject("size1 ^ 2", m ^ 2, n, r1, r2, proof, len);
	expect_cons_reject("size2 * 2", m, n * 2, r1, r2, proof, len);
	expect_cons_reject("size2 / 2", m, n / 2, r1, r2, proof, len);
	expect_cons_reject("wrong root1", m, n, wrong, r2, proof, len);
	expect_cons_reject("wrong root2", m, n, r1, wrong, proof, len);
	expect_cons_reject("random root2", m, n, r1, some, proof, len);
	expect_cons_reject("swapped roots", m, n, r2, r1, proof, len);
	expect_cons_reject("empty proof", m, n, r1, r2, proof, 0);

	copy_hashes(buf, proof, len);
	memcpy(buf[len], zero, sizeof(ward_hash));
	expect_cons_reject("trailing garbage", m, n, r1, r2, buf, len + 1);
	memcpy(buf[len], r1, sizeof(ward_hash));
	expect_cons_reject("trailing root1", m, n, r1, r2, buf, len + 1);
	memcpy(buf[len], r2, sizeof(ward_hash));
	expect_cons_reject("trailing root2", m, n, r1, r2, buf, len + 1);

	copy_hashes(buf + 1, proof, len);
	memcpy(buf[0], zero, sizeof(ward_hash));
	expect_cons_reject("preceding garbage", m, n, r1, r2, buf, len + 1);
	memcpy(buf[0], r1, sizeof(ward_hash));
	expect_cons_reject("preceding root1", m, n, r1, r2, buf, len + 1);
	memcpy(buf[0], r2, sizeof(ward_hash));
	expect_cons_reject("preceding root2", m, n, r1, r2, buf, len + 1);
	memcpy(buf[0], proof[0], sizeof(ward_hash));
	expect_cons_reject("preceding proof[0]", m, n, r1, r2, buf, len + 1);

	expect_cons_reject("truncated proof", m, n, r1, r2, proof, len - 1);
	expect_cons_reject("dropped first", m, n, r1, r2, proof + 1, len - 1);

	for (i = 0; i < len; i++) {
		for (b = 0; b < sizeof(flip_bits) / sizeof(flip_bits[0]); b++) {
			copy_hashes(buf, proof, len);
			buf[i][flip_bits[b] / 8] ^= (uint8_t)(1u << (flip_bits[b] % 8));
			expect_cons_reject("modified proof bit", m, n, r1, r2, buf, len);
		}
	}
	if (len > 1) {
		memcpy(buf[0], proof[0], sizeof(ward_hash));
		memcpy(buf[1], some, sizeof(ward_hash));
		memcpy(buf + 2, proof + 1, (len - 1) * sizeof(ward_hash));
		expect_cons_reject("inserted component", m, n, r1, r2, buf, len + 1);
		for (i = 0; i + 1 < len; i++) {
			copy_hashes(buf, proof, len);
			memcpy(buf[i], proof[i + 1], sizeof(ward_hash));
			memcpy(buf[i + 1], proof[i], sizeof(ward_hash));
			expect_cons_reject("swapped components", m, n, r1, r2, buf, len);
		}
	}
}

/* ---- tests ---- */

static void test_store_merkle__empty_root(void **state)
{
	ward_hash want, got;
	ward_merkle_frontier f;

	(void)state;
	hex_hash(want, EMPTY_ROOT_HEX);
	assert_int_equal(ward_merkle_root(got, NULL, 0), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);

	ward_merkle_frontier_init(&f);
	memset(got, 0, sizeof(got));
	assert_int_equal(ward_merkle_frontier_root(&f, got), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);
}

static void test_store_merkle__leaf_and_node_hash(void **state)
{
	ward_hash want, got, a, b, ab, ba, forged;
	uint8_t buf[1 + 2 * WARD_SHA256_LEN];

	(void)state;
	/* rfc6962_test.go: the empty leaf and the leaf "L123456". */
	hex_hash(want, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	assert_int_equal(ward_merkle_leaf_hash(got, "", 0), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_leaf_hash(got, NULL, 0), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);
	hex_hash(want, "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
	assert_int_equal(ward_merkle_leaf_hash(got, "L123456", 7), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);

	/* Node = SHA-256(0x01 || left || right), order-dependent, and never equal
	 * to the leaf hash of the same 64 bytes (the second-preimage defence). */
	assert_int_equal(ward_merkle_leaf_hash(a, "Hello", 5), 0);
	assert_int_equal(ward_merkle_leaf_hash(b, "World", 5), 0);
	assert_int_equal(ward_merkle_node_hash(ab, a, b), 0);
	buf[0] = 0x01;
	memcpy(buf + 1, a, WARD_SHA256_LEN);
	memcpy(buf + 1 + WARD_SHA256_LEN, b, WARD_SHA256_LEN);
	assert_int_equal(ward_sha256(want, buf, sizeof(buf)), 0);
	assert_memory_equal(ab, want, WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_node_hash(ba, b, a), 0);
	assert_memory_not_equal(ab, ba, WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_leaf_hash(forged, buf + 1, 2 * WARD_SHA256_LEN), 0);
	assert_memory_not_equal(ab, forged, WARD_SHA256_LEN);

	/* The output may alias an input (the verifiers rely on it). */
	memcpy(got, a, WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_node_hash(got, got, b), 0);
	assert_memory_equal(got, ab, WARD_SHA256_LEN);
	memcpy(got, b, WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_node_hash(got, a, got), 0);
	assert_memory_equal(got, ab, WARD_SHA256_LEN);
}

static void test_store_merkle__reference_roots(void **state)
{
	ward_hash leaves[8], want, got;
	ward_merkle_frontier f;

	(void)state;
	ref_leaf_hashes(leaves);
	ward_merkle_frontier_init(&f);
	for (uint64_t n = 1; n <= 8; n++) {
		hex_hash(want, ref_roots[n - 1]);
		assert_int_equal(ward_merkle_root(got, leaves, n), 0);
		assert_memory_equal(got, want, WARD_SHA256_LEN);
		assert_int_equal(ward_merkle_frontier_append(&f, leaves[n - 1]), 0);
		assert_int_equal(ward_merkle_frontier_root(&f, got), 0);
		assert_memory_equal(got, want, WARD_SHA256_LEN);
	}
}

static void test_store_merkle__reference_inclusion(void **state)
{
	ward_hash leaves[8], want[3], root;
	ward_hash *proof = NULL;
	size_t len = 0;

	(void)state;
	ref_leaf_hashes(leaves);
	for (size_t t = 0; t < sizeof(ref_inclusion) / sizeof(ref_inclusion[0]); t++) {
		uint64_t index = ref_inclusion[t].index, size = ref_inclusion[t].size;

		for (size_t i = 0; i < ref_inclusion[t].len; i++)
			hex_hash(want[i], ref_inclusion[t].proof[i]);
		hex_hash(root, ref_roots[size - 1]);

		assert_int_equal(ward_merkle_inclusion_proof(&proof, &len, leaves, size, index), 0);
		assert_int_equal(len, ref_inclusion[t].len);
		if (len > 0)
			assert_memory_equal(proof, want, len * sizeof(ward_hash));
		else
			assert_null(proof);
		ward_free(proof);
		proof = NULL;

		/* Verify the published path, not our own output. */
		check_inclusion_mutations(index, size, (const ward_hash *)want, ref_inclusion[t].len, root,
					  leaves[index]);
	}
}

static void test_store_merkle__reference_consistency(void **state)
{
	ward_hash leaves[8], want[3], r1, r2;
	ward_hash *proof = NULL;
	size_t len = 0;

	(void)state;
	ref_leaf_hashes(leaves);
	for (size_t t = 0; t < sizeof(ref_consistency) / sizeof(ref_consistency[0]); t++) {
		uint64_t m = ref_consistency[t].m, n = ref_consistency[t].n;

		for (size_t i = 0; i < ref_consistency[t].len; i++)
			hex_hash(want[i], ref_consistency[t].proof[i]);
		hex_hash(r1, ref_roots[m - 1]);
		hex_hash(r2, ref_roots[n - 1]);

		assert_int_equal(ward_merkle_consistency_proof(&proof, &len, leaves, m, n), 0);
		assert_int_equal(len, ref_consistency[t].len);
		if (len > 0)
			assert_memory_equal(proof, want, len * sizeof(ward_hash));
		else
			assert_null(proof);
		ward_free(proof);
		proof = NULL;

		if (ref_consistency[t].len > 0)
			check_consistency_mutations(m, n, r1, r2, (const ward_hash *)want, ref_consistency[t].len);
		else
			assert_int_equal(ward_merkle_verify_consistency(m, n, r1, r2, NULL, 0), 0);
	}
}

static void test_store_merkle__inclusion_mutations(void **state)
{
	(void)state;
	for (size_t s = 0; s < sizeof(mutation_sizes) / sizeof(mutation_sizes[0]); s++) {
		uint64_t size = mutation_sizes[s];
		ward_hash *leaves = make_leaves(size);
		ward_hash root;

		assert_int_equal(ward_merkle_root(root, leaves, size), 0);
		for (uint64_t index = 0; index < size; index++) {
			ward_hash *proof = NULL;
			size_t len = 0;

			assert_int_equal(ward_merkle_inclusion_proof(&proof, &len, leaves, size, index), 0);
			check_inclusion_mutations(index, size, (const ward_hash *)proof, len, root, leaves[index]);
			ward_free(proof);
		}
		free(leaves);
	}
}

static void test_store_merkle__consistency_mutations(void **state)
{
	ward_hash empty, wrong;
	ward_hash extra[1];

	(void)state;
	hex_hash(empty, EMPTY_ROOT_HEX);
	assert_int_equal(ward_merkle_leaf_hash(wrong, "WrongRoot", 9), 0);
	memset(extra, 0, sizeof(extra));

	for (size_t s = 0; s < sizeof(mutation_sizes) / sizeof(mutation_sizes[0]); s++) {
		uint64_t n = mutation_sizes[s];
		ward_hash *leaves = make_leaves(n);
		ward_hash *roots = calloc(n + 1, sizeof(ward_hash));

		assert_non_null(roots);
		for (uint64_t i = 0; i <= n; i++)
			assert_int_equal(ward_merkle_root(roots[i], leaves, i), 0);

		for (uint64_t m = 1; m < n; m++) {
			ward_hash *proof = NULL;
			size_t len = 0;

			assert_int_equal(ward_merkle_consistency_proof(&proof, &len, leaves, m, n), 0);
			check_consistency_mutations(m, n, roots[m], roots[n], (const ward_hash *)proof, len);
			ward_free(proof);
		}

		/* m == n: only an empty proof between equal roots; a different root
		 * of the same size is equivocation (T50). */
		assert_int_equal(ward_merkle_verify_consistency(n, n, roots[n], roots[n], NULL, 0), 0);
		expect_cons_reject("same size, different root", n, n, roots[n], wrong, NULL, 0);
		expect_cons_reject("same size, non-empty proof", n, n, roots[n], roots[n], (const ward_hash *)extra,
				   1);
		expect_cons_reject("same size, proof of own root", n, n, roots[n], roots[n],
				   (const ward_hash *)&roots[n], 1);
		/* m == 0: the empty tree, with an empty proof and the empty root. */
		assert_int_equal(ward_merkle_verify_consistency(0, n, empty, roots[n], NULL, 0), 0);
		expect_cons_reject("size1 0, non-empty proof", 0, n, empty, roots[n], (const ward_hash *)&roots[n], 1);
		expect_cons_reject("size1 0, wrong old root", 0, n, wrong, roots[n], NULL, 0);
		/* Rollback: the log shrank. */
		expect_cons_reject("size1 > size2", n + 1, n, roots[n], roots[n], NULL, 0);
		if (n > 1)
			expect_cons_reject("swapped sizes", n, n - 1, roots[n], roots[n - 1], NULL, 0);

		free(roots);
		free(leaves);
	}
	/* 0 -> 0 needs equal (empty) roots. */
	assert_int_equal(ward_merkle_verify_consistency(0, 0, empty, empty, NULL, 0), 0);
	expect_cons_reject("0 -> 0, roots differ", 0, 0, empty, wrong, NULL, 0);
	expect_cons_reject("0 -> 0, non-empty proof", 0, 0, empty, empty, (const ward_hash *)&empty, 1);
}

/* Generation and verification agree for every index/size and m/n pair. */
static void test_store_merkle__all_pairs(void **state)
{
	const uint64_t max = 70;
	ward_hash *leaves = make_leaves(max);
	ward_hash *roots = calloc(max + 1, sizeof(ward_hash));

	(void)state;
	assert_non_null(roots);
	for (uint64_t i = 0; i <= max; i++)
		assert_int_equal(ward_merkle_root(roots[i], leaves, i), 0);

	for (uint64_t size = 1; size <= max; size++) {
		for (uint64_t index = 0; index < size; index++) {
			ward_hash *proof = NULL;
			size_t len = 0;

			assert_int_equal(ward_merkle_inclusion_proof(&proof, &len, leaves, size, index), 0);
			assert_true(len <= 7);
			assert_int_equal(ward_merkle_verify_inclusion(index, size, leaves[index], proof, len, roots[size]),
					 0);
			/* A neighbouring leaf under the same path must fail. */
			assert_int_equal(ward_merkle_verify_inclusion(index, size, leaves[(index + 1) % max], proof, len,
								      roots[size]),
					 WARD_EVERIFY);
			ward_free(proof);
		}
	}
	for (uint64_t n = 0; n <= max; n++) {
		for (uint64_t m = 0; m <= n; m++) {
			ward_hash *proof = NULL;
			size_t len = 0;

			assert_int_equal(ward_merkle_consistency_proof(&proof, &len, leaves, m, n), 0);
			if (m == 0 || m == n)
				assert_int_equal(len, 0);
			else
				assert_true(len > 0 && len <= 8);
			assert_int_equal(ward_merkle_verify_consistency(m, n, roots[m], roots[n], proof, len), 0);
			/* The proof must not also vouch for the next tree size (m = 0 is
			 * consistent with every tree, so it has nothing to bind). */
			if (n < max && m > 0 && m < n)
				assert_int_equal(
					ward_merkle_verify_consistency(m, n, roots[m], roots[n + 1], proof, len),
					WARD_EVERIFY);
			ward_free(proof);
		}
	}
	free(roots);
	free(leaves);
}

static void test_store_merkle__frontier_matches_root(void **state)
{
	const uint64_t max = 300;
	ward_hash *leaves = make_leaves(max);
	ward_merkle_frontier f;
	ward_hash a, b;

	(void)state;
	ward_merkle_frontier_init(&f);
	for (uint64_t n = 0; n <= max; n++) {
		assert_int_equal(f.size, n);
		assert_int_equal(ward_merkle_frontier_root(&f, a), 0);
		assert_int_equal(ward_merkle_root(b, leaves, n), 0);
		if (memcmp(a, b, sizeof(a)) != 0)
			fail_msg("frontier root differs from merkle root at n = %llu", (unsigned long long)n);
		if (n < max)
			assert_int_equal(ward_merkle_frontier_append(&f, leaves[n]), 0);
	}
	free(leaves);
}

static void test_store_merkle__frontier_seven(void **state)
{
	ward_hash *leaves = make_leaves(7);
	ward_hash p4, p2, inner, want, got;
	ward_merkle_frontier f;

	(void)state;
	/* 7 = 4 + 2 + 1: root = H(p4, H(p2, p1)). */
	assert_int_equal(ward_merkle_root(p4, leaves, 4), 0);
	assert_int_equal(ward_merkle_root(p2, leaves + 4, 2), 0);
	assert_int_equal(ward_merkle_node_hash(inner, p2, leaves[6]), 0);
	assert_int_equal(ward_merkle_node_hash(want, p4, inner), 0);

	ward_merkle_frontier_init(&f);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(ward_merkle_frontier_append(&f, leaves[i]), 0);
	assert_memory_equal(f.nodes[2], p4, WARD_SHA256_LEN);
	assert_memory_equal(f.nodes[1], p2, WARD_SHA256_LEN);
	assert_memory_equal(f.nodes[0], leaves[6], WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_frontier_root(&f, got), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);
	assert_int_equal(ward_merkle_root(got, leaves, 7), 0);
	assert_memory_equal(got, want, WARD_SHA256_LEN);
	free(leaves);
}

static void test_store_merkle__frontier_limits(void **state)
{
	ward_merkle_frontier f;
	ward_hash leaf, before, after;

	(void)state;
	assert_int_equal(ward_merkle_leaf_hash(leaf, "x", 1), 0);

	/* Full: refused, nothing changes. */
	ward_merkle_frontier_init(&f);
	f.size = UINT64_MAX;
	assert_int_equal(ward_merkle_frontier_root(&f, before), 0);
	assert_int_equal(ward_merkle_frontier_append(&f, leaf), WARD_ETOOBIG);
	assert_int_equal(f.size, UINT64_MAX);
	assert_int_equal(ward_merkle_frontier_root(&f, after), 0);
	assert_memory_equal(before, after, WARD_SHA256_LEN);

	/* The longest carry (63 merges) and the top bit, under UBSan. */
	ward_merkle_frontier_init(&f);
	f.size = UINT64_MAX >> 1;
	assert_int_equal(ward_merkle_frontier_append(&f, leaf), 0);
	assert_int_equal(f.size, (uint64_t)1 << 63);
	assert_int_equal(ward_merkle_frontier_root(&f, after), 0);
	assert_memory_equal(after, f.nodes[63], WARD_SHA256_LEN);

	assert_int_equal(ward_merkle_frontier_append(NULL, leaf), WARD_EINVAL);
	assert_int_equal(ward_merkle_frontier_root(NULL, after), WARD_EINVAL);
}

static void test_store_merkle__bad_arguments(void **state)
{
	ward_hash *leaves = make_leaves(4);
	ward_hash *proof = (ward_hash *)&proof; /* must be reset to NULL */
	ward_hash root;
	size_t len = 99;

	(void)state;
	assert_int_equal(ward_merkle_inclusion_proof(&proof, &len, leaves, 4, 4), WARD_EINVAL);
	assert_null(proof);
	assert_int_equal(len, 0);
	assert_int_equal(ward_merkle_inclusion_proof(&proof, &len, leaves, 0, 0), WARD_EINVAL);
	assert_int_equal(ward_merkle_inclusion_proof(&proof, &len, NULL, 4, 0), WARD_EINVAL);
	assert_int_equal(ward_merkle_consistency_proof(&proof, &len, leaves, 3, 2), WARD_EINVAL);
	assert_null(proof);
	assert_int_equal(ward_merkle_consistency_proof(&proof, &len, NULL, 2, 3), WARD_EINVAL);
	assert_int_equal(ward_merkle_root(root, NULL, 3), WARD_EINVAL);
	assert_int_equal(ward_merkle_leaf_hash(root, NULL, 3), WARD_EINVAL);

	/* Malformed verifier input is a verification failure, not a crash. */
	assert_int_equal(ward_merkle_root(root, leaves, 4), 0);
	assert_int_equal(ward_merkle_verify_inclusion(0, 4, NULL, NULL, 0, root), WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(0, 4, leaves[0], NULL, 2, root), WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(0, 4, leaves[0], (const ward_hash *)leaves, 2, NULL),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(0, 0, leaves[0], NULL, 0, root), WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(4, 4, leaves[0], (const ward_hash *)leaves, 2, root),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(UINT64_MAX, UINT64_MAX, leaves[0], NULL, 0, root),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_consistency(2, 4, root, root, NULL, 2), WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_consistency(2, 4, NULL, root, (const ward_hash *)leaves, 1),
			 WARD_EVERIFY);
	assert_int_equal(ward_error_last()->code, WARD_EVERIFY);
	free(leaves);
}

/* Proofs longer than any tree is deep, and trees near 2^64, must be
 * rejected cleanly (UBSan catches a bad shift, ASan a read past the end). */
static void test_store_merkle__overlong_proofs(void **state)
{
	enum { LONG = 200 };
	ward_hash *proof = calloc(LONG, sizeof(ward_hash));
	ward_hash leaf, root;

	(void)state;
	assert_non_null(proof);
	for (size_t i = 0; i < LONG; i++)
		proof[i][i % WARD_SHA256_LEN] = (uint8_t)i;
	assert_int_equal(ward_merkle_leaf_hash(leaf, "x", 1), 0);
	hex_hash(root, SOME_HASH_HEX);

	assert_int_equal(ward_merkle_verify_inclusion(0, 2, leaf, (const ward_hash *)proof, LONG, root),
			 WARD_EVERIFY);
	/* Stopped at the root, before hashing the remaining 199 elements. */
	assert_non_null(strstr(ward_error_last()->message, "too long"));
	assert_int_equal(ward_merkle_verify_inclusion(UINT64_MAX - 1, UINT64_MAX, leaf, (const ward_hash *)proof,
						      LONG, root),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(UINT64_MAX - 1, UINT64_MAX, leaf, (const ward_hash *)proof,
						      64, root),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion(0, UINT64_MAX, leaf, (const ward_hash *)proof, 65, root),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_inclusion((uint64_t)1 << 63, UINT64_MAX, leaf, (const ward_hash *)proof,
						      63, root),
			 WARD_EVERIFY);

	assert_int_equal(ward_merkle_verify_consistency(1, 2, leaf, root, (const ward_hash *)proof, LONG),
			 WARD_EVERIFY);
	assert_non_null(strstr(ward_error_last()->message, "too long"));
	assert_int_equal(ward_merkle_verify_consistency((uint64_t)1 << 63, UINT64_MAX, leaf, root,
							(const ward_hash *)proof, LONG),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_consistency(UINT64_MAX - 1, UINT64_MAX, leaf, root,
							(const ward_hash *)proof, 65),
			 WARD_EVERIFY);
	assert_int_equal(ward_merkle_verify_consistency(UINT64_MAX >> 1, UINT64_MAX, leaf, root,
							(const ward_hash *)proof, 64),
			 WARD_EVERIFY);
	free(proof);
}

/* An allocation failure while building a proof leaves no proof and no leak. */
static void test_store_merkle__alloc_failure(void **state)
{
	ward_hash *leaves = make_leaves(9);
	ward_hash *proof;
	size_t len;
	int rc, failed = 0;

	(void)state;
	for (long k = 0; k < 64; k++) {
		proof = NULL;
		len = 0;
		ward_alloc_fail_after(k);
		rc = ward_merkle_inclusion_proof(&proof, &len, leaves, 9, 3);
		ward_alloc_fail_reset();
		if (rc == 0) {
			assert_int_equal(len, 4);
			ward_free(proof);
			break;
		}
		assert_true(rc < 0);
		assert_null(proof);
		assert_int_equal(len, 0);
		failed = 1;
	}
	assert_true(failed);
	for (long k = 0; k < 64; k++) {
		proof = NULL;
		len = 0;
		ward_alloc_fail_after(k);
		rc = ward_merkle_consistency_proof(&proof, &len, leaves, 3, 9);
		ward_alloc_fail_reset();
		if (rc == 0) {
			ward_free(proof);
			break;
		}
		assert_null(proof);
		assert_int_equal(len, 0);
	}
	free(leaves);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_merkle__empty_root),
		cmocka_unit_test(test_store_merkle__leaf_and_node_hash),
		cmocka_unit_test(test_store_merkle__reference_roots),
		cmocka_unit_test(test_store_merkle__reference_inclusion),
		cmocka_unit_test(test_store_merkle__reference_consistency),
		cmocka_unit_test(test_store_merkle__inclusion_mutations),
		cmocka_unit_test(test_store_merkle__consistency_mutations),
		cmocka_unit_test(test_store_merkle__all_pairs),
		cmocka_unit_test(test_store_merkle__frontier_matches_root),
		cmocka_unit_test(test_store_merkle__frontier_seven),
		cmocka_unit_test(test_store_merkle__frontier_limits),
		cmocka_unit_test(test_store_merkle__bad_arguments),
		cmocka_unit_test(test_store_merkle__overlong_proofs),
		cmocka_unit_test(test_store_merkle__alloc_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
