// Package memwalk is the memory phase of a TrueGPU challenge: evidence of a
// device's memory capacity and bandwidth. The node fills a table sized near
// the claimed class's memory with data that is expensive to regenerate,
// commits to it, and then, only after the oracle answers that commitment
// with a walk seed, runs many independent random walks that each read one
// table block per step at an address the previous step decides. The walk's
// states are committed, the oracle answers with a check seed, and the node
// opens a few (lane, step) transitions together with the blocks they read;
// the oracle recomputes them natively.
//
// This comment is the normative specification "truegpu/memwalk/v1". Every
// backend (this package's reference implementation, device kernels) must
// produce bit-identical roots. GoldenSpec, GoldenNonce, GoldenWalkSeed,
// GoldenTableRootHex and GoldenWalkRootHex pin one instance;
// GoldenCheckSeed is the check seed the package's tests open it with.
//
// # Shape
//
// A Spec {Blocks, Lanes, Steps} describes a table of Blocks blocks of
// BlockBytes = 1024 bytes and a walk of Lanes lanes of Steps steps. It is
// valid when 16 ≤ Blocks ≤ 2^32, Lanes is a power of two with
// 8 ≤ Lanes ≤ 2^24, 1 ≤ Steps ≤ 2^24, and the walk's leaf count
// Steps·Lanes/8 is at most 2^40.
//
// Encodings: be32/be64 are big-endian, le64 little-endian; words are uint64
// with wrapping arithmetic; rotl is a 64-bit left rotation; mulhi(a, b) is
// the high 64 bits of the 128-bit product.
//
// # The table
//
// The table is the low bytes of an int8 GEMM with inner dimension
// FillK = 2048 and the generator of "truegpu/timed/v1" (package
// prover/timed), keyed by the table nonce
//
//	tnonce = SHA-256("truegpu/memwalk/v1/table" ‖ nonce),  keys = timed.Key(tnonce)
//
// Byte j (0 ≤ j < 1024) of block i (0 ≤ i < Blocks) is the low byte of
// C[i][j] of the timed GEMM {M: Blocks, N: 1024, K: 2048} under those keys
// (timed.Cell with K = 2048): a 2048-long int8 dot product of row i of A and
// column j of B, 4,096 tensor operations per table byte. Regenerating a
// block costs 2^21 multiply-adds (4M tensor operations); a device
// regenerates far slower than it reads its own memory: on every class at
// least eight times slower (docs/PROTOCOL.md section 12).
//
// Table tree: leaf i is block i,
//
//	leaf hash    = SHA-256(0x00 ‖ be64(i) ‖ 1024 block bytes)
//	padding leaf = SHA-256(0x02)
//	inner node   = SHA-256(0x01 ‖ left ‖ right)
//
// over P leaves, P the smallest power of two ≥ Blocks (leaves Blocks … P−1
// are padding leaves; one leaf: the root is its hash). Paths are log2(P)
// siblings, bottom-up; at height d the node is on the left when bit d of
// the index is 0. The table commitment is
//
//	tableRoot = SHA-256("truegpu/memwalk/v1/table-root" ‖ be64(Blocks) ‖ nonce ‖ tableTreeRoot)
//
// # The walk
//
// The oracle's walk seed (16 bytes) arrives after tableRoot is recorded.
//
//	h = SHA-256("truegpu/memwalk/v1/walk" ‖ tableRoot ‖ walkSeed),  w0 = le64(h[0:8]), w1 = le64(h[8:16])
//	x(ℓ, 0) = word(ℓ, w0, w1)                      (timed's word: fmix(fmix(ℓ ^ w0) ^ w1))
//
// For t = 0 … Steps−1 every lane ℓ reads block a = mulhi(x(ℓ, t), Blocks)
// and folds all of it into its state. The block is 128 words
// b_0 … b_127 (b_k = le64 of block bytes 8k … 8k+7) in 32 chunks of four:
//
//	acc = 0
//	for c = 0 … 31:
//	    h = x ^ (c · 0x9E3779B97F4A7C15)
//	    for k = 4c … 4c+3:  h = rotl(h ^ b_k, 23) · 0xD6E8FEB86659FD93
//	    acc = acc + h
//	x(ℓ, t+1) = fmix(acc ^ x(ℓ, t))
//
// (fmix: the SplitMix64 finalizer of prover/timed). The chunks are
// independent given x, so 32 threads fold one block from one coalesced
// 1 KB read; every byte of the block and the whole state enter the result,
// so no digest of a block smaller than the block can stand in for it.
//
// Walk tree: for t = 1 … Steps and g = 0 … Lanes/8−1, leaf
// n = (t−1)·(Lanes/8) + g holds x(8g, t) … x(8g+7, t), the states of lanes
// 8g … 8g+7 after t steps, le64 each (64 bytes):
//
//	leaf hash = SHA-256(0x00 ‖ be64(n) ‖ 64 bytes)
//
// with the table tree's padding and inner nodes over P' = the smallest
// power of two ≥ Steps·Lanes/8 leaves. Because Lanes/8 is a power of two,
// each step's leaves form one subtree, so a node can keep one root per step
// and rebuild a step's subtree when it must open it. The walk commitment is
//
//	walkRoot = SHA-256("truegpu/memwalk/v1/walk-root" ‖ be64(Blocks) ‖ be32(Lanes) ‖ be32(Steps) ‖ nonce ‖ tableRoot ‖ walkSeed ‖ walkTreeRoot)
//
// # Checks
//
// The oracle's check seed (16 bytes) arrives after walkRoot is recorded.
// For q = 0, 1, 2, …: h = SHA-256("truegpu/memwalk/v1/check" ‖ walkRoot ‖
// checkSeed ‖ be32(q)); lane = be64(h[0:8]) mod Lanes, step = be64(h[8:16])
// mod Steps; duplicate (lane, step) pairs are skipped until
// min(Checks, Lanes·Steps) distinct pairs are drawn, Checks = 16. They are
// used in the order drawn. For each check the oracle also regenerates
// FillChecks = 4 bytes of the block read, at byte positions
// be16(h[16+2r : 18+2r]) mod 1024 for r = 0 … 3 of the h that drew it.
//
// # Openings
//
// The node answers with, in order: the magic "TGMW", version byte 1, the
// 32-byte tableTreeRoot, the 32-byte walkTreeRoot, a be16 count, then per
// check in the order drawn: the 1024 bytes of the block read and a u8 depth
// with depth sibling hashes (its table path; the block's index is not sent,
// the oracle derives it from the state), then a u8 presence flag followed,
// when it is 1, by the leaf holding the state before the step (the flag is
// 0 and the leaf absent when step = 0: the oracle derives x(ℓ, 0)), then
// the leaf holding the state after it; a leaf is its 64 bytes, a u8 depth
// and depth sibling hashes. Decoders accept at most Checks checks, flags of
// 0 or 1 and depths of at most 48, and reject trailing bytes.
//
// # Verification
//
// The oracle rejects unless the spec is valid; tableRoot and walkRoot
// recomputed from the opened tree roots equal the recorded ones; the count
// equals the number of checks drawn; for each check, the before-leaf is
// present exactly when step > 0, the state before the step (derived, or
// read from its leaf at lane ℓ mod 8 whose path of log2(P') hashes leads
// to walkTreeRoot at leaf (step−1)·(Lanes/8) + ⌊ℓ/8⌋) gives the block
// index a, the block's path of log2(P) hashes leads to
// tableTreeRoot at leaf a, the fold of the block gives exactly the state in
// the after-leaf (whose path leads to walkTreeRoot at leaf
// step·(Lanes/8) + ⌊ℓ/8⌋), and the FillChecks bytes of the block equal the
// low bytes of their native recomputation (timed.Cell, K = 2048).
//
// # Soundness
//
// The table root is fixed before the walk seed exists, the walk root before
// the check seed exists, and both seeds are 128 bits the node cannot
// influence. A node that made a fraction m of the Lanes·Steps transitions
// wrong (for example every transition whose block it did not hold and did
// not regenerate) passes with probability at most (1−m)^Checks; a node
// whose table is wrong in a fraction g of the blocks is caught by a check
// that reads such a block unless all four regenerated bytes match (2^-32).
// A node that holds only part of the table and regenerates the rest pays
// 2,048 tensor operations per byte it did not hold; one that streams the
// table from host memory pays its host link: either way the time the
// oracle measures between issuing the walk seed and recording the walk
// root exposes it.
package memwalk
