#!/usr/bin/env bash
# Regenerates everything derived in contracts/: installs the pinned JS
# Solidity compiler and OpenZeppelin's merkle-tree from the npm registry,
# exports the Groth16 work-proof verifier from the Go code, compiles sol/ into
# build/*.json, and rewrites the OpenZeppelin Merkle test vectors used by
# package reputation. CI runs it and then checks `git diff --exit-code`.
set -euo pipefail
cd "$(dirname "$0")"

SOLC_VERSION=0.8.30
OZ_MERKLE_TREE_VERSION=1.0.8

mkdir -p .npm
if [ ! -f .npm/package.json ]; then
  echo '{"private": true}' > .npm/package.json
fi
(cd .npm && npm install --no-audit --no-fund --silent --no-save \
  "solc@${SOLC_VERSION}" "@openzeppelin/merkle-tree@${OZ_MERKLE_TREE_VERSION}")
export NODE_PATH="$PWD/.npm/node_modules"

# Groth16 verifiers of work proofs, from the deterministic (UNSAFE) dev
# setups: "test" backs the on-chain proof test; "standard" is the production
# profile's circuit (its dev setup takes about 1.5 minutes on 2 cores).
go run ./genverifier -profile test -name WorkVerifierTest -o sol/WorkVerifierTest.sol
go run ./genverifier -profile standard -name WorkVerifierStandard -o sol/WorkVerifierStandard.sol
node scripts/compile.js
node scripts/merkle-vectors.js > ../reputation/testdata/oz_merkle_vectors.json
