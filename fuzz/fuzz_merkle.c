/*
 * RFC 6962 Merkle proofs. Two halves per input:
 *  - arbitrary verifier arguments (index, sizes, proof hashes straight from the
 *    input): the verifiers must never crash or accept garbage that does not
 *    hash to the root;
 *  - a tree of up to 64 leaves built from the input: generated inclusion and
 *    consistency proofs verify, the frontier agrees with the root, and a
 *    proof with one flipped bit is refused.
 */
#include "fuzz_common.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/merkle.h"

#define FUZZ_MAX_INPUT (16 * 1024)
#define FUZZ_MAX_LEAVES 64

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void raw_verifiers(const uint8_t *data, size_t size)
{
	/* u64 a, u64 b, hash x, hash y, proof hashes... */
	const size_t hdr = 16 + 2 * WARD_SHA256_LEN;
	ward_hash *proof = NULL;
	size_t n;
	uint64_t a, b;

	if (size < hdr)
		return;
	a = get_u64(data);
	b = get_u64(data + 8);
	n = (size - hdr) / WARD_SHA256_LEN;
	if (n && !(proof = malloc(n * sizeof(ward_hash))))
		abort();
	if (n)
		memcpy(proof, data + hdr, n * sizeof(ward_hash));
	/* Whatever the outcome, these return 0 or WARD_EVERIFY. */
	{
		int r1 = ward_merkle_verify_inclusion(a, b, data + 16, (const ward_hash *)proof, n,
						      data + 16 + WARD_SHA256_LEN);
		int r2 = ward_merkle_verify_consistency(a, b, data + 16, data + 16 + WARD_SHA256_LEN,
							(const ward_hash *)proof, n);

		FUZZ_CHECK(r1 == 0 || r1 == WARD_EVERIFY);
		FUZZ_CHECK(r2 == 0 || r2 == WARD_EVERIFY);
	}
	free(proof);
}

static void built_tree(const uint8_t *data, size_t size)
{
	ward_hash leaves[FUZZ_MAX_LEAVES], root, root_m, froot;
	ward_hash *proof = NULL;
	ward_merkle_frontier f;
	size_t plen = 0, i, off = 4, part;
	uint64_t n, m, idx;
	unsigned flip;

	if (size < 4)
		return;
	n = 1 + data[0] % FUZZ_MAX_LEAVES;
	m = 1 + data[1] % n;
	idx = data[2] % n;
	flip = data[3];
	part = (size - 4) / n;
	ward_merkle_frontier_init(&f);
	for (i = 0; i < n; i++) {
		size_t len = i + 1 == n ? size - off : part;

		FUZZ_CHECK(ward_merkle_leaf_hash(leaves[i], data + off, len) == 0);
		off += len;
		FUZZ_CHECK(ward_merkle_frontier_append(&f, leaves[i]) == 0);
	}
	FUZZ_CHECK(ward_merkle_root(root, leaves, n) == 0);
	FUZZ_CHECK(ward_merkle_frontier_root(&f, froot) == 0);
	FUZZ_CHECK(memcmp(root, froot, sizeof(root)) == 0);
	FUZZ_CHECK(ward_merkle_root(root_m, leaves, m) == 0);

	/* Inclusion of leaf idx in the tree of n. */
	FUZZ_CHECK(ward_merkle_inclusion_proof(&proof, &plen, leaves, n, idx) == 0);
	FUZZ_CHECK(ward_merkle_verify_inclusion(idx, n, leaves[idx], proof, plen, root) == 0);
	if (plen) {
		proof[(flip >> 3) % plen][flip % WARD_SHA256_LEN] ^= (uint8_t)(1u << (flip & 7));
		FUZZ_CHECK(ward_merkle_verify_inclusion(idx, n, leaves[idx], proof, plen, root) == WARD_EVERIFY);
	}
	ward_free(proof);
	proof = NULL;
	plen = 0;

	/* Consistency between m and n. */
	FUZZ_CHECK(ward_merkle_consistency_proof(&proof, &plen, leaves, m, n) == 0);
	FUZZ_CHECK(ward_merkle_verify_consistency(m, n, root_m, root, proof, plen) == 0);
	if (plen) {
		proof[(flip >> 3) % plen][flip % WARD_SHA256_LEN] ^= (uint8_t)(1u << (flip & 7));
		FUZZ_CHECK(ward_merkle_verify_consistency(m, n, root_m, root, proof, plen) == WARD_EVERIFY);
	}
	ward_free(proof);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	raw_verifiers(data, size);
	built_tree(data, size);
	return 0;
}
