// Package truegpu is the root of TrueGPU, a verifiable-compute proof and
// node-reputation oracle for decentralised GPU networks. See README.md and
// docs/ARCHITECTURE.md; the code lives in the subpackages.
package truegpu
