// Compiles sol/*.sol with the JS solc and writes one JSON artifact per
// contract to build/ (abi, bytecode). The output is deterministic: the
// compiler version is pinned, metadata is not appended to the bytecode, and
// JSON is written with stable formatting, so build.sh can check that the
// committed artifacts are up to date.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..");
const srcDir = path.join(root, "sol");
const outDir = path.join(root, "build");

const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

const out = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of out.errors || []) {
  process.stderr.write(e.formattedMessage + "\n");
  if (e.severity === "error") failed = true;
}
if (failed) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
const written = new Set();
for (const file of Object.keys(out.contracts).sort()) {
  for (const name of Object.keys(out.contracts[file]).sort()) {
    const c = out.contracts[file][name];
    if (!c.evm.bytecode.object) continue; // interfaces
    const artifact = {
      contractName: name,
      source: "sol/" + file,
      compiler: "solc-js " + solc.version(),
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
    };
    fs.writeFileSync(path.join(outDir, name + ".json"), JSON.stringify(artifact, null, 1) + "\n");
    written.add(name + ".json");
  }
}
for (const f of fs.readdirSync(outDir)) {
  if (f.endsWith(".json") && !written.has(f)) fs.unlinkSync(path.join(outDir, f));
}
