/*
 * RFC 6962 / RFC 9162 Merkle tree hashing, proofs and an incremental frontier.
 *
 * Leaf hash = SHA-256(0x00 || entry); node hash = SHA-256(0x01 || left || right);
 * the tree of n leaves splits at the largest power of two smaller than n.
 * The empty tree's root is SHA-256 of the empty string.
 */
#ifndef RAGWARD_MERKLE_H
#define RAGWARD_MERKLE_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/crypto.h"

typedef uint8_t ward_hash[WARD_SHA256_LEN];

int ward_merkle_leaf_hash(ward_hash out, const void *entry, size_t n) WARD_MUST_CHECK;
int ward_merkle_node_hash(ward_hash out, const ward_hash left, const ward_hash right) WARD_MUST_CHECK;

/* Root over n leaf hashes (n may be 0). */
int ward_merkle_root(ward_hash out, const ward_hash *leaves, uint64_t n) WARD_MUST_CHECK;

/* Inclusion proof (RFC 9162 2.1.3) of leaf `index` in the tree of the first
 * `size` leaves. *proof is ward_malloc'd (may be NULL when *len is 0). */
int ward_merkle_inclusion_proof(ward_hash **proof, size_t *len, const ward_hash *leaves, uint64_t size,
				uint64_t index) WARD_MUST_CHECK;
/* 0 when valid, WARD_EVERIFY when not (including malformed arguments). */
int ward_merkle_verify_inclusion(uint64_t index, uint64_t size, const ward_hash leaf, const ward_hash *proof,
				 size_t len, const ward_hash root) WARD_MUST_CHECK;

/* Consistency proof (RFC 9162 2.1.4) between sizes m <= n. */
int ward_merkle_consistency_proof(ward_hash **proof, size_t *len, const ward_hash *leaves, uint64_t m,
				  uint64_t n) WARD_MUST_CHECK;
int ward_merkle_verify_consistency(uint64_t m, uint64_t n, const ward_hash old_root, const ward_hash new_root,
				   const ward_hash *proof, size_t len) WARD_MUST_CHECK;

/* Frontier: the roots of the perfect subtrees of the current tree, so a leaf
 * can be appended and the root recomputed in O(log n). */
typedef struct {
	uint64_t size;
	ward_hash nodes[64]; /* nodes[i] is valid when bit i of size is set */
} ward_merkle_frontier;

void ward_merkle_frontier_init(ward_merkle_frontier *f);
int ward_merkle_frontier_append(ward_merkle_frontier *f, const ward_hash leaf) WARD_MUST_CHECK;
int ward_merkle_frontier_root(const ward_merkle_frontier *f, ward_hash out) WARD_MUST_CHECK;

#endif
