// Writes Merkle-tree test vectors computed by OpenZeppelin's own
// @openzeppelin/merkle-tree (StandardMerkleTree), so the Go tree in package
// reputation is checked against an independent implementation.
//
// Usage: node merkle-vectors.js > ../../reputation/testdata/oz_merkle_vectors.json
// (needs @openzeppelin/merkle-tree; build.sh installs it).
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

function address(i) {
  // Deterministic, spread-out addresses.
  let h = "";
  let x = (i * 2654435761) >>> 0;
  for (let k = 0; k < 5; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    h += x.toString(16).padStart(8, "0");
  }
  return "0x" + h;
}

const cases = [];
for (const n of [1, 2, 3, 4, 5, 7, 8, 13]) {
  const values = [];
  for (let i = 0; i < n; i++) {
    values.push([address(n * 100 + i), String((i * 1237) % 10001), String(i % 5)]);
  }
  const tree = StandardMerkleTree.of(values, ["address", "uint256", "uint8"]);
  const proofs = values.map((v) => tree.getProof(v));
  cases.push({ values, root: tree.root, proofs });
}
process.stdout.write(JSON.stringify(cases, null, 1) + "\n");
