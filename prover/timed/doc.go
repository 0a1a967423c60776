// Package timed is the timed phase of a TrueGPU challenge: a large int8
// GEMM, sized per claimed GPU class so that an honest device spends
// seconds of device time, whose results are bound by a SHA-256 Merkle
// commitment and checked by the oracle with cheap interactive native spot
// checks. The oracle draws a 16-byte sample seed only after it has recorded
// the node's commitment root; the node then opens the sampled cells.
//
// This comment is the normative specification "truegpu/timed/v1". Every
// backend (this package's reference Compute, device kernels) must produce
// bit-identical roots. GoldenSpec, GoldenNonce and GoldenRootHex pin one
// instance.
//
// # Shape
//
// A Spec {M, N, K} describes C (M×N) = A (M×K) · B (K×N). It is valid when
// 1 ≤ M ≤ 2^24, 256 ≤ N ≤ 2^24 with N a multiple of 256, 8 ≤ K ≤ 65536
// with K a multiple of 8, and the leaf count M·N/256 is at most 2^40.
//
// # Generator
//
// Keys: h = SHA-256("truegpu/timed/v1/key" ‖ nonce), where nonce is 32
// bytes, and k_t = LE64(h[8t : 8t+8]) for t = 0..3 (little-endian).
//
// fmix is the SplitMix64 finalizer on uint64 with wrapping multiplication:
//
//	z ^= z >> 30; z *= 0xbf58476d1ce4e5b9
//	z ^= z >> 27; z *= 0x94d049bb133111eb
//	z ^= z >> 31
//
// and word(ctr, ka, kb) = fmix(fmix(ctr ^ ka) ^ kb). Byte number b of a
// word w is (w >> 8b) & 0xff, read as a two's-complement int8.
//
//	A[i][k] = byte (k mod 8) of word(i·(K/8) + ⌊k/8⌋, k0, k1)   (rows of A)
//	B[k][j] = byte (k mod 8) of word(j·(K/8) + ⌊k/8⌋, k2, k3)   (columns of B)
//
// Counters are computed in uint64.
//
// # Result
//
// C[i][j] = Σ_k int32(A[i][k])·int32(B[k][j]) in int32 wrapping arithmetic
// (|C[i][j]| ≤ 2^30, so no wrap occurs in practice). The committed value of
// a cell is its low byte uint8(C[i][j]). Cells are numbered row-major,
// c = i·N + j.
//
// # Commitment
//
// Leaf l (0 ≤ l < L = M·N/256) holds the 256 committed bytes of cells
// l·256 … l·256+255, which always lie in row ⌊l/(N/256)⌋. With be64 and
// be32 big-endian encodings:
//
//	leaf hash    = SHA-256(0x00 ‖ be64(l) ‖ 256 leaf bytes)
//	padding leaf = SHA-256(0x02)                      (one byte)
//	inner node   = SHA-256(0x01 ‖ left ‖ right)
//
// The tree has P leaves, P the smallest power of two ≥ L, leaves L … P−1
// being padding leaves; treeRoot is its root (with L = 1 the root is the
// leaf hash). A Merkle path has log2(P) sibling hashes, bottom-up; at
// height d the node is on the left when bit d of l is 0. The commitment
// root is
//
//	root = SHA-256("truegpu/timed/v1/root" ‖ be32(M) ‖ be32(N) ‖ be32(K) ‖ nonce ‖ treeRoot)
//
// # Sampling
//
// For q = 0, 1, 2, …: h = SHA-256("truegpu/timed/v1/sample" ‖ root ‖ seed ‖
// be32(q)) and cell = be64(h[0:8]) mod M·N; duplicates are skipped until
// min(Samples, M·N) distinct cells are drawn; they are used in ascending
// order. Samples is 24 and the seed is SeedSize = 16 bytes.
//
// # Openings
//
// The node answers with, in order: the magic "TGTO", version byte 1, the
// 32-byte treeRoot, a be16 count, then per opening: be64 leaf index, the
// 256 leaf bytes, a u8 depth and depth sibling hashes of 32 bytes,
// bottom-up. There is exactly one opening per distinct leaf holding a
// sampled cell, in strictly ascending leaf order. Decoders accept at most
// Samples openings and depths of at most 48, and reject trailing bytes.
//
// # Verification
//
// The oracle rejects unless the spec is valid, Commit(spec, nonce,
// treeRoot) equals the recorded root, the opened leaves are exactly the
// sampled leaves, every path has log2(P) hashes and leads to treeRoot, and
// every sampled cell's byte equals the low byte of C[i][j] recomputed
// natively (Cell: two K-vectors from the generator and a dot product).
//
// # Soundness
//
// The seed is drawn only after the root is recorded, so the committed
// leaves are fixed independently of which cells will be opened, and the
// Merkle tree (collision resistance of SHA-256) prevents changing any of
// them afterwards. Sampled cells are (up to the hash) uniform and distinct.
// If a node committed a result in which only a fraction f of the cells
// hold the correct low byte, each sampled cell is correct with probability
// at most f + (1−f)/256 (a wrong guess matches the true low byte with
// probability 1/256 at best when it is not computed), so the node passes
// with probability at most (f + (1−f)/256)^Samples; for f = 0.8 that is
// below 0.5%, and for f = 0.5 below 2^−23. Because the product cannot be
// computed before the nonce is known, passing also binds the node to having
// done the work after the challenge was issued.
package timed
