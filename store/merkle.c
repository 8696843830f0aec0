/*
 * RFC 6962 / RFC 9162 §2.1 Merkle tree: hashes, inclusion and consistency
 * proofs, and the incremental frontier used by the audit log.
 *
 * Tree sizes and indices are uint64_t. Every shift below is by one bit on an
 * unsigned value, so a hostile size, index or proof length can never cause an
 * out-of-range shift; a proof longer than the tree is deep is rejected because
 * the size counter reaches zero first.
 */
#include <inttypes.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "ragward/merkle.h"
#include "core/banned.h"

#define LEAF_PREFIX 0x00
#define NODE_PREFIX 0x01

/* A tree of at most 2^64 - 1 leaves is at most 64 levels deep. An inclusion
 * path has one hash per level; a consistency proof has at most one per level
 * plus the subtree hash where the recursion stops. */
#define MAX_INCLUSION_LEN 64
#define MAX_CONSISTENCY_LEN 65

int ward_merkle_leaf_hash(ward_hash out, const void *entry, size_t n)
{
	static const uint8_t prefix = LEAF_PREFIX;
	ward_sha256_ctx *ctx = NULL;
	int rc;

	if (!out || (!entry && n > 0)) {
		rc = ward_error_set(WARD_EINVAL, "merkle leaf hash: missing entry");
		goto done;
	}
	/* Streamed so that a large entry is never copied just to prepend one byte. */
	if ((rc = ward_sha256_new(&ctx)) < 0)
		goto done;
	if ((rc = ward_sha256_update(ctx, &prefix, 1)) < 0)
		goto done;
	if (n > 0 && (rc = ward_sha256_update(ctx, entry, n)) < 0)
		goto done;
	rc = ward_sha256_final(ctx, out);
done:
	ward_sha256_free(ctx);
	return rc;
}

int ward_merkle_node_hash(ward_hash out, const ward_hash left, const ward_hash right)
{
	/* Fixed 65-byte input: a stack buffer and a one-shot hash avoid an
	 * allocation per interior node, which matters for roots over many leaves. */
	uint8_t buf[1 + 2 * WARD_SHA256_LEN];

	if (!out || !left || !right)
		return ward_error_set(WARD_EINVAL, "merkle node hash: missing child");
	buf[0] = NODE_PREFIX;
	memcpy(buf + 1, left, WARD_SHA256_LEN);
	memcpy(buf + 1 + WARD_SHA256_LEN, right, WARD_SHA256_LEN);
	return ward_sha256(out, buf, sizeof(buf));
}

/* Largest power of two strictly smaller than n (n >= 2). Written as
 * "k < n - k" rather than "2k < n" so that k = 2^63 cannot overflow. */
static uint64_t split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

static int is_power_of_two(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

static int hash_equal(const ward_hash a, const ward_hash b)
{
	/* Roots and proof hashes are public, but a constant-time compare costs
	 * nothing here and keeps one comparison idiom for hashes. */
	return ward_ct_equal(a, b, WARD_SHA256_LEN);
}

/* MTH(D[n]) for n >= 1, following the RFC's recursive definition directly
 * (depth <= 64) so that it stays independent of the frontier's algorithm. */
static int subtree_root(ward_hash out, const ward_hash *leaves, uint64_t n)
{
	ward_hash left, right;
	uint64_t k;
	int rc;

	if (n == 1) {
		memcpy(out, leaves[0], WARD_SHA256_LEN);
		return 0;
	}
	k = split_point(n);
	if ((rc = subtree_root(left, leaves, k)) < 0)
		return rc;
	if ((rc = subtree_root(right, leaves + k, n - k)) < 0)
		return rc;
	return ward_merkle_node_hash(out, left, right);
}

static int empty_root(ward_hash out)
{
	return ward_sha256(out, "", 0);
}

int ward_merkle_root(ward_hash out, const ward_hash *leaves, uint64_t n)
{
	if (!out || (!leaves && n > 0))
		return ward_error_set(WARD_EINVAL, "merkle root: missing leaves");
	if (n == 0)
		return empty_root(out);
	return subtree_root(out, leaves, n);
}

/* Hands a stack-built proof to the caller as a ward_malloc'd array. */
static int copy_proof(ward_hash **proof, size_t *len, const ward_hash *path, size_t n)
{
	ward_hash *p = NULL;

	if (n > 0) {
		p = ward_malloc(n * sizeof(ward_hash));
		if (!p)
			return ward_error_set(WARD_ENOMEM, "merkle proof: out of memory");
		memcpy(p, path, n * sizeof(ward_hash));
	}
	*proof = p;
	*len = n;
	return 0;
}

/* PATH(m, D[n]) of RFC 9162 §2.1.3.1: the sibling subtree hashes from the
 * leaf up. The recursion appends the deeper part first, so path[0] is the
 * leaf's sibling. */
static int inclusion_path(ward_hash *path, size_t *len, const ward_hash *leaves, uint64_t n, uint64_t m)
{
	uint64_t k;
	int rc;

	if (n == 1)
		return 0;
	k = split_point(n);
	if (m < k) {
		if ((rc = inclusion_path(path, len, leaves, k, m)) < 0)
			return rc;
		rc = subtree_root(path[*len], leaves + k, n - k);
	} else {
		if ((rc = inclusion_path(path, len, leaves + k, n - k, m - k)) < 0)
			return rc;
		rc = subtree_root(path[*len], leaves, k);
	}
	if (rc < 0)
		return rc;
	(*len)++;
	return 0;
}

int ward_merkle_inclusion_proof(ward_hash **proof, size_t *len, const ward_hash *leaves, uint64_t size,
				uint64_t index)
{
	ward_hash path[MAX_INCLUSION_LEN];
	size_t n = 0;
	int rc;

	if (!proof || !len)
		return ward_error_set(WARD_EINVAL, "inclusion proof: missing output");
	*proof = NULL;
	*len = 0;
	if (index >= size)
		return ward_error_set(WARD_EINVAL,
				      "inclusion proof for leaf %" PRIu64 ": index not below tree size %" PRIu64,
				      index, size);
	if (!leaves)
		return ward_error_set(WARD_EINVAL, "inclusion proof: missing leaves");
	if ((rc = inclusion_path(path, &n, leaves, size, index)) < 0)
		return rc;
	return copy_proof(proof, len, path, n);
}

int ward_merkle_verify_inclusion(uint64_t index, uint64_t size, const ward_hash leaf, const ward_hash *proof,
				 size_t len, const ward_hash root)
{
	ward_hash r;
	uint64_t fn, sn;
	size_t i;
	int rc;

	if (!leaf || !root || (!proof && len > 0))
		return ward_error_set(WARD_EVERIFY, "inclusion proof: missing leaf, root or proof");
	if (index >= size)
		return ward_error_set(WARD_EVERIFY,
				      "inclusion proof for leaf %" PRIu64 ": index not below tree size %" PRIu64,
				      index, size);
	/* No tree is deeper than this; rejecting early also keeps the work for
	 * a hostile length constant. */
	if (len > MAX_INCLUSION_LEN)
		return ward_error_set(WARD_EVERIFY,
				      "inclusion proof for leaf %" PRIu64 " in tree size %" PRIu64
				      ": proof too long (%zu hashes)",
				      index, size, len);

	/* RFC 9162 §2.1.3.2. fn is the node's position on its level, sn the
	 * position of the level's last node; both move up one level per step. */
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, WARD_SHA256_LEN);
	for (i = 0; i < len; i++) {
		/* Already at the root: the proof is too long. This also bounds the
		 * loop to 64 iterations however long `len` is. */
		if (sn == 0)
			return ward_error_set(WARD_EVERIFY,
					      "inclusion proof for leaf %" PRIu64 " in tree size %" PRIu64
					      ": proof too long",
					      index, size);
		if ((fn & 1) || fn == sn) {
			rc = ward_merkle_node_hash(r, proof[i], r);
			/* A right-edge node without a sibling is promoted unchanged
			 * through the levels where it is a left child. */
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			rc = ward_merkle_node_hash(r, r, proof[i]);
		}
		if (rc < 0)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return ward_error_set(WARD_EVERIFY,
				      "inclusion proof for leaf %" PRIu64 " in tree size %" PRIu64 ": proof too short",
				      index, size);
	if (!hash_equal(r, root))
		return ward_error_set(WARD_EVERIFY,
				      "inclusion proof for leaf %" PRIu64 " in tree size %" PRIu64 ": root mismatch",
				      index, size);
	return 0;
}

/* SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, for 0 < m <= n. `whole` is b:
 * true while the old tree is still the left edge of the current subtree, in
 * which case its root is known to the verifier and is not repeated. */
static int consistency_path(ward_hash *path, size_t *len, const ward_hash *leaves, uint64_t m, uint64_t n,
			    int whole)
{
	uint64_t k;
	int rc;

	if (m == n) {
		if (whole)
			return 0;
		if ((rc = subtree_root(path[*len], leaves, n)) < 0)
			return rc;
		(*len)++;
		return 0;
	}
	k = split_point(n);
	if (m <= k) {
		if ((rc = consistency_path(path, len, leaves, m, k, whole)) < 0)
			return rc;
		rc = subtree_root(path[*len], leaves + k, n - k);
	} else {
		if ((rc = consistency_path(path, len, leaves + k, m - k, n - k, 0)) < 0)
			return rc;
		rc = subtree_root(path[*len], leaves, k);
	}
	if (rc < 0)
		return rc;
	(*len)++;
	return 0;
}

int ward_merkle_consistency_proof(ward_hash **proof, size_t *len, const ward_hash *leaves, uint64_t m,
				  uint64_t n)
{
	ward_hash path[MAX_CONSISTENCY_LEN];
	size_t count = 0;
	int rc;

	if (!proof || !len)
		return ward_error_set(WARD_EINVAL, "consistency proof: missing output");
	*proof = NULL;
	*len = 0;
	if (m > n)
		return ward_error_set(WARD_EINVAL,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": old size is larger", m, n);
	/* The empty tree is a prefix of every tree and a tree of itself: both
	 * proofs are empty (RFC 9162 defines the proof only for 0 < m < n). */
	if (m == 0 || m == n)
		return 0;
	if (!leaves)
		return ward_error_set(WARD_EINVAL, "consistency proof: missing leaves");
	if ((rc = consistency_path(path, &count, leaves, m, n, 1)) < 0)
		return rc;
	return copy_proof(proof, len, path, count);
}

int ward_merkle_verify_consistency(uint64_t m, uint64_t n, const ward_hash old_root, const ward_hash new_root,
				   const ward_hash *proof, size_t len)
{
	ward_hash fr, sr, empty;
	const ward_hash *c;
	uint64_t fn, sn;
	size_t total, i;
	int seeded, rc;

	if (!old_root || !new_root || (!proof && len > 0))
		return ward_error_set(WARD_EVERIFY, "consistency proof: missing root or proof");
	if (m > n)
		return ward_error_set(WARD_EVERIFY,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": log shrank", m, n);
	if (m == n) {
		/* Same size: nothing to prove, so any proof is malformed, and a
		 * different root is a split view. */
		if (len != 0)
			return ward_error_set(WARD_EVERIFY,
					      "consistency proof for size %" PRIu64 ": proof must be empty", m);
		if (!hash_equal(old_root, new_root))
			return ward_error_set(WARD_EVERIFY,
					      "consistency proof for size %" PRIu64 ": roots differ (split view)", m);
		return 0;
	}
	if (m == 0) {
		/* The empty tree is consistent with any tree, but only if the old
		 * root really is the empty tree's root. */
		if (len != 0)
			return ward_error_set(WARD_EVERIFY,
					      "consistency proof from size 0 to %" PRIu64 ": proof must be empty", n);
		if ((rc = empty_root(empty)) < 0)
			return rc;
		if (!hash_equal(old_root, empty))
			return ward_error_set(WARD_EVERIFY,
					      "consistency proof from size 0 to %" PRIu64 ": old root is not the empty root", n);
		return 0;
	}
	if (len == 0)
		return ward_error_set(WARD_EVERIFY,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": proof is empty", m, n);
	if (len > MAX_CONSISTENCY_LEN)
		return ward_error_set(WARD_EVERIFY,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": proof too long (%zu hashes)",
				      m, n, len);

	/* RFC 9162 §2.1.4.2. When m is a power of two the old tree is a complete
	 * subtree of the new one, so its root is the first node of the path. It
	 * is prepended virtually (`seeded`) rather than by copying the proof. */
	seeded = is_power_of_two(m);
	total = len + (size_t)seeded;
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	c = seeded ? (const ward_hash *)old_root : &proof[0];
	memcpy(fr, *c, WARD_SHA256_LEN);
	memcpy(sr, *c, WARD_SHA256_LEN);
	for (i = 1; i < total; i++) {
		c = &proof[i - (size_t)seeded];
		/* Reached the new root with proof left over: too long. Bounds the
		 * loop to 64 iterations whatever `len` is. */
		if (sn == 0)
			return ward_error_set(WARD_EVERIFY,
					      "consistency proof from size %" PRIu64 " to %" PRIu64 ": proof too long", m,
					      n);
		if ((fn & 1) || fn == sn) {
			if ((rc = ward_merkle_node_hash(fr, *c, fr)) < 0)
				return rc;
			if ((rc = ward_merkle_node_hash(sr, *c, sr)) < 0)
				return rc;
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			if ((rc = ward_merkle_node_hash(sr, sr, *c)) < 0)
				return rc;
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return ward_error_set(WARD_EVERIFY,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": proof too short", m, n);
	if (!hash_equal(fr, old_root))
		return ward_error_set(WARD_EVERIFY,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": old root mismatch", m, n);
	if (!hash_equal(sr, new_root))
		return ward_error_set(WARD_EVERIFY,
				      "consistency proof from size %" PRIu64 " to %" PRIu64 ": new root mismatch", m, n);
	return 0;
}

void ward_merkle_frontier_init(ward_merkle_frontier *f)
{
	if (f)
		memset(f, 0, sizeof(*f));
}

/* Appending is incrementing a binary counter: each set low bit of size is a
 * perfect subtree that merges with the new one (the carry) into a subtree of
 * twice the size. Nothing in *f changes until every hash has succeeded. */
int ward_merkle_frontier_append(ward_merkle_frontier *f, const ward_hash leaf)
{
	ward_hash cur;
	unsigned i = 0;
	int rc;

	if (!f || !leaf)
		return ward_error_set(WARD_EINVAL, "merkle frontier: missing frontier or leaf");
	if (f->size == UINT64_MAX)
		return ward_error_set(WARD_ETOOBIG, "merkle frontier: tree is full");
	memcpy(cur, leaf, WARD_SHA256_LEN);
	/* size < 2^64 - 1 has a clear bit at or below 63, so i stays below 64. */
	while (f->size & ((uint64_t)1 << i)) {
		if ((rc = ward_merkle_node_hash(cur, f->nodes[i], cur)) < 0)
			return rc;
		i++;
	}
	memcpy(f->nodes[i], cur, WARD_SHA256_LEN);
	f->size++;
	return 0;
}

/* The subtrees are folded from the smallest (rightmost) up, because in the
 * RFC's split the right part of every node is the smaller remainder:
 * for 7 = 4 + 2 + 1 leaves the root is H(p4, H(p2, p1)). */
int ward_merkle_frontier_root(const ward_merkle_frontier *f, ward_hash out)
{
	ward_hash r;
	unsigned i;
	int have = 0, rc;

	if (!f || !out)
		return ward_error_set(WARD_EINVAL, "merkle frontier: missing frontier or output");
	if (f->size == 0)
		return empty_root(out);
	for (i = 0; i < 64; i++) {
		if (!(f->size & ((uint64_t)1 << i)))
			continue;
		if (!have) {
			memcpy(r, f->nodes[i], WARD_SHA256_LEN);
			have = 1;
		} else if ((rc = ward_merkle_node_hash(r, f->nodes[i], r)) < 0) {
			return rc;
		}
	}
	memcpy(out, r, WARD_SHA256_LEN);
	return 0;
}
