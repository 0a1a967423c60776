package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consensys/gnark/logger"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// proofBundle is the JSON file "prove" writes and "verify" reads: one
// challenge and its work proof.
type proofBundle struct {
	Profile string `json:"profile"` // "name/vN"
	Digest  string `json:"digest"`  // 0x-hex profile digest
	Nonce   string `json:"nonce"`   // 0x-hex, 32 bytes
	Node    string `json:"node"`    // 0x-hex, 20 bytes
	Root    string `json:"root"`    // 0x-hex, 32 bytes
	Seed    string `json:"seed"`    // 0x-hex, 16 bytes: the sample seed
	Proof   string `json:"proof"`   // 0x-hex, verifier.ProofSize (256) bytes
}

// keyFlags selects where keys come from: a directory written by "setup" or
// "ceremony seal", a single verifying key file, or an in-process unsafe dev
// setup.
type keyFlags struct {
	dir       string
	vkFile    string
	unsafeDev bool
}

func (k *keyFlags) register(fs *flag.FlagSet, withVK bool) {
	fs.StringVar(&k.dir, "keys", "", "`dir`ectory with PROFILE-vN.pk and PROFILE-vN.vk (from 'setup' or 'ceremony seal')")
	fs.BoolVar(&k.unsafeDev, "unsafe-dev", false, "use deterministic UNSAFE dev keys, generated once and cached in the user cache dir (anyone can forge proofs under them)")
	if withVK {
		fs.StringVar(&k.vkFile, "vk", "", "verifying key `file` (overrides -keys)")
	}
}

func keyFileBase(dir string, p *prover.Profile) string {
	return filepath.Join(dir, fmt.Sprintf("%s-v%d", p.Name, p.Version))
}

func (k *keyFlags) check() error {
	n := 0
	for _, set := range []bool{k.dir != "", k.vkFile != "", k.unsafeDev} {
		if set {
			n++
		}
	}
	if n == 0 {
		return usageError("choose keys with -keys DIR, -vk FILE or -unsafe-dev")
	}
	if k.unsafeDev && n > 1 {
		return usageError("-unsafe-dev cannot be combined with -keys or -vk")
	}
	return nil
}

func warnUnsafe(w io.Writer, p *prover.Profile) {
	fmt.Fprintf(w, "WARNING: using UNSAFE deterministic dev keys for %s: anyone can forge proofs under them\n", p.ID())
}

func (k *keyFlags) provingKey(ctx *runContext, p *prover.Profile) (*prover.ProvingKey, error) {
	if k.unsafeDev {
		warnUnsafe(ctx.Stderr, p)
		pk, _, err := prover.CachedUnsafeDevSetup(p, "")
		return pk, err
	}
	if k.dir == "" {
		return nil, usageError("proving needs -keys DIR or -unsafe-dev")
	}
	f, err := os.Open(keyFileBase(k.dir, p) + ".pk")
	if err != nil {
		return nil, fmt.Errorf("proving key for %s: %w (create one with 'truegpuctl setup' or a ceremony)", p.ID(), err)
	}
	defer f.Close()
	return prover.ReadProvingKey(f, p)
}

func (k *keyFlags) verifyingKey(ctx *runContext, p *prover.Profile) (*verifier.VerifyingKey, error) {
	if k.unsafeDev {
		warnUnsafe(ctx.Stderr, p)
		_, vk, err := prover.CachedUnsafeDevSetup(p, "")
		return vk, err
	}
	path := k.vkFile
	if path == "" {
		path = keyFileBase(k.dir, p) + ".vk"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verifying key for %s: %w", p.ID(), err)
	}
	vk, err := verifier.DecodeVerifyingKey(b)
	if err != nil {
		return nil, fmt.Errorf("verifying key %s: %w", path, err)
	}
	if vk.Digest != p.Digest() {
		return nil, fmt.Errorf("verifying key %s is for digest %x, not profile %s: %w", path, vk.Digest, p.ID(), verifier.ErrDigestMismatch)
	}
	return vk, nil
}

func writeKeys(dir string, pk *prover.ProvingKey) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := keyFileBase(dir, pk.Profile())
	var buf bytes.Buffer
	if _, err := pk.WriteTo(&buf); err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".pk", buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".vk", pk.VerifyingKey().Encode(), 0o644); err != nil {
		return "", err
	}
	return base, nil
}

func decodeHex(name, s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return nil, fmt.Errorf("%s %q is not hex: %w", name, s, err)
	}
	if n > 0 && len(b) != n {
		return nil, fmt.Errorf("%s %q has %d bytes, want %d", name, s, len(b), n)
	}
	return b, nil
}

func profileFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "profile", "test", "workload `profile`: "+profileNames())
}

func profileNames() string {
	var names []string
	for _, p := range prover.Profiles() {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// profileByID accepts "name" or "name/vN".
func profileByID(id string) (*prover.Profile, error) {
	return prover.ProfileByID(id)
}

func writeOut(ctx *runContext, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := ctx.Stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func init() {
	// gnark logs circuit compilation and proving to stdout; stdout of these
	// verbs carries their output.
	logger.Disable()
}

func init() {
	var (
		profile string
		out     string
		dev     bool
	)
	register(&command{
		Name:  "setup",
		Usage: "-unsafe-dev [-profile P] -out DIR",
		Short: "write deterministic UNSAFE dev keys for a profile",
		Long: `
Setup writes DIR/PROFILE-vN.pk and DIR/PROFILE-vN.vk for the profile from
the deterministic dev setup. Its toxic waste is public: anyone can forge
proofs under these keys. Use them only for tests and local development;
production keys come from 'truegpuctl ceremony'. -unsafe-dev is required
to say so.`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&out, "out", "", "output `dir`ectory")
			fs.BoolVar(&dev, "unsafe-dev", false, "confirm that UNSAFE dev keys are wanted")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("setup takes no arguments, got %q", args)
			}
			if !dev {
				return usageError("setup only makes UNSAFE dev keys; pass -unsafe-dev, or run 'truegpuctl ceremony' for production keys")
			}
			if out == "" {
				return usageError("-out DIR is required")
			}
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			warnUnsafe(ctx.Stderr, p)
			start := time.Now()
			pk, _, err := prover.UnsafeDevSetup(p)
			if err != nil {
				return err
			}
			base, err := writeKeys(out, pk)
			if err != nil {
				return err
			}
			fmt.Fprintf(ctx.Stdout, "%s: %d constraints, setup %v, keys %s.pk and %s.vk\n",
				p.ID(), pk.Constraints(), time.Since(start).Round(time.Millisecond), base, base)
			return nil
		},
	})
}

func init() {
	var (
		profile  string
		nonceHex string
		seedHex  string
		nodeHex  string
		out      string
		keys     keyFlags
	)
	register(&command{
		Name:  "prove",
		Usage: "[-profile P] [-nonce HEX] [-seed HEX] -node HEX (-keys DIR | -unsafe-dev) [-out FILE]",
		Short: "run a work challenge locally and prove it",
		Long: `
Prove runs the seeded GEMM challenge of a profile on the CPU with the
reference implementation, commits to the results, derives the sample
indices from (root, sample seed, nonce, node) and proves them. It writes a
JSON bundle (profile, digest, nonce, node, root, seed, proof) for
'truegpuctl verify'. Without -nonce a random nonce is drawn; without -seed
a random sample seed, standing in for the one an oracle draws when it
records the root.`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&nonceHex, "nonce", "", "challenge nonce, 32 bytes `hex` (default: random)")
			fs.StringVar(&seedHex, "seed", "", "sample seed, 16 bytes `hex` (default: random)")
			fs.StringVar(&nodeHex, "node", "", "node address, 20 bytes `hex`")
			fs.StringVar(&out, "out", "", "bundle output `file` (default: stdout)")
			keys.register(fs, false)
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("prove takes no arguments, got %q", args)
			}
			if err := keys.check(); err != nil {
				return err
			}
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			var nonce prover.Nonce
			if nonceHex == "" {
				if _, err := rand.Read(nonce[:]); err != nil {
					return err
				}
			} else {
				b, err := decodeHex("-nonce", nonceHex, 32)
				if err != nil {
					return usageError("%v", err)
				}
				copy(nonce[:], b)
			}
			var seed prover.SampleSeed
			if seedHex == "" {
				if _, err := rand.Read(seed[:]); err != nil {
					return err
				}
			} else {
				b, err := decodeHex("-seed", seedHex, prover.SampleSeedSize)
				if err != nil {
					return usageError("%v", err)
				}
				copy(seed[:], b)
			}
			var node prover.Address
			b, err := decodeHex("-node", nodeHex, 20)
			if err != nil {
				return usageError("%v", err)
			}
			copy(node[:], b)
			pk, err := keys.provingKey(ctx, p)
			if err != nil {
				return err
			}
			t0 := time.Now()
			cells := prover.Compute(p, nonce)
			t1 := time.Now()
			tree, err := prover.NewTree(p, cells)
			if err != nil {
				return err
			}
			t2 := time.Now()
			proof, err := prover.ProveTree(pk, tree, nonce, node, seed)
			if err != nil {
				return err
			}
			t3 := time.Now()
			root := tree.Root()
			d := p.Digest()
			bundle := proofBundle{
				Profile: p.ID(),
				Digest:  "0x" + hex.EncodeToString(d[:]),
				Nonce:   "0x" + hex.EncodeToString(nonce[:]),
				Node:    "0x" + hex.EncodeToString(node[:]),
				Root:    "0x" + hex.EncodeToString(root[:]),
				Seed:    "0x" + hex.EncodeToString(seed[:]),
				Proof:   "0x" + hex.EncodeToString(proof),
			}
			data, err := json.MarshalIndent(bundle, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(ctx.Stderr, "%s: compute %v, commit %v, prove %v (%d constraints), proof %d bytes\n",
				p.ID(), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond),
				t3.Sub(t2).Round(time.Millisecond), pk.Constraints(), len(proof))
			return writeOut(ctx, out, append(data, '\n'))
		},
	})
}

// loadBundle reads a bundle and returns its profile, proof and public
// inputs.
func loadBundle(path string) (*prover.Profile, *verifier.Proof, verifier.PublicInputs, error) {
	var pub verifier.PublicInputs
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, pub, err
	}
	var b proofBundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, nil, pub, fmt.Errorf("%s: not a proof bundle: %w", path, err)
	}
	p, err := profileByID(b.Profile)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	var nonce prover.Nonce
	var node prover.Address
	var root [32]byte
	var seed prover.SampleSeed
	fields := []struct {
		name string
		s    string
		dst  []byte
	}{{"nonce", b.Nonce, nonce[:]}, {"node", b.Node, node[:]}, {"root", b.Root, root[:]}, {"seed", b.Seed, seed[:]}}
	for _, f := range fields {
		v, err := decodeHex(f.name, f.s, len(f.dst))
		if err != nil {
			return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
		}
		copy(f.dst, v)
	}
	raw, err := decodeHex("proof", b.Proof, verifier.ProofSize)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	proof, err := verifier.DecodeProof(raw)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	pub, err = p.PublicInputs(nonce, node, root, seed)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	return p, proof, pub, nil
}

// errVerifyFailed marks a run of "verify" where some proof did not verify.
var errVerifyFailed = errors.New("some proofs did not verify")

func init() {
	var keys keyFlags
	register(&command{
		Name:  "verify",
		Usage: "(-keys DIR | -vk FILE | -unsafe-dev) BUNDLE...",
		Short: "verify work-proof bundles (batched per profile)",
		Long: `
Verify checks proof bundles written by 'truegpuctl prove'. Bundles of the
same profile are verified together by batch verification; each bundle is
reported as ok or FAIL. The public inputs are rebuilt from the bundle's
nonce, node, root and sample seed, so this checks a proof for the challenge the bundle
names; an oracle builds them from its own record of the challenge instead.

Exit status: 0 all proofs verify, 1 some do not or a bundle is malformed.`,
		Flags: func(fs *flag.FlagSet) { keys.register(fs, true) },
		Run: func(ctx *runContext, args []string) error {
			if len(args) == 0 {
				return usageError("name at least one bundle file")
			}
			if err := keys.check(); err != nil {
				return err
			}
			type group struct {
				p      *prover.Profile
				idx    []int
				proofs []*verifier.Proof
				pubs   []verifier.PublicInputs
			}
			groups := map[string]*group{}
			var order []string
			for i, path := range args {
				p, proof, pub, err := loadBundle(path)
				if err != nil {
					return err
				}
				g, ok := groups[p.ID()]
				if !ok {
					g = &group{p: p}
					groups[p.ID()] = g
					order = append(order, p.ID())
				}
				g.idx = append(g.idx, i)
				g.proofs = append(g.proofs, proof)
				g.pubs = append(g.pubs, pub)
			}
			status := make([]string, len(args))
			failed := 0
			for _, id := range order {
				g := groups[id]
				vk, err := keys.verifyingKey(ctx, g.p)
				if err != nil {
					return err
				}
				bad, err := verifier.VerifyBatch(vk, g.proofs, g.pubs)
				if err != nil {
					return err
				}
				for _, i := range g.idx {
					status[i] = "ok"
				}
				for _, b := range bad {
					status[g.idx[b]] = "FAIL"
					failed++
				}
			}
			for i, path := range args {
				fmt.Fprintf(ctx.Stdout, "%-4s %s\n", status[i], path)
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d", errVerifyFailed, failed, len(args))
			}
			return nil
		},
	})
}

func init() {
	var (
		profile string
		out     string
		keys    keyFlags
	)
	register(&command{
		Name:  "solidity",
		Usage: "[-profile P] (-keys DIR | -vk FILE | -unsafe-dev) [-out FILE]",
		Short: "export the Solidity work-proof verifier for a profile",
		Long: `
Solidity writes a Solidity contract (gnark's Groth16 BN254 verifier) that
verifies work proofs of the profile under the given verifying key. Its
verifyProof takes the proof as uint256[8] (A.x, A.y, B.x.a1, B.x.a0,
B.y.a1, B.y.a0, C.x, C.y) and the public inputs as uint256[6] (nonceHi,
nonceLo, node, root, seed, digest; see docs/PROTOCOL.md).`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&out, "out", "", "output `file` (default: stdout)")
			keys.register(fs, true)
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("solidity takes no arguments, got %q", args)
			}
			if err := keys.check(); err != nil {
				return err
			}
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			vk, err := keys.verifyingKey(ctx, p)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := verifier.ExportSolidity(vk, &buf); err != nil {
				return err
			}
			return writeOut(ctx, out, buf.Bytes())
		},
	})
}

func init() {
	var (
		profile        string
		out            string
		commons        string
		beacon         string
		phase1         string
		beacon1        string
		vkFile         string
		transcriptFile string
	)
	register(&command{
		Name:  "ceremony",
		Usage: "[-profile P] [-out FILE] [-commons FILE] [-beacon HEX] [-phase1 FILES -beacon1 HEX] [-vk FILE] [-transcript FILE] STEP FILE...",
		Short: "run the Groth16 MPC key ceremony for a profile",
		Long: `
Ceremony drives the two-phase Groth16 MPC setup (gnark mpcsetup) of a
profile's circuit. The keys are safe if at least one contributor destroyed
their randomness. Steps, in order:

  phase1-init                      -out P1_0           start of phase 1 (public)
  phase1-contribute PREV           -out NEXT           add a contribution (each participant)
  phase1-verify C1 C2 ...                              check every contribution in order
  phase1-seal C1 C2 ...   -beacon HEX -out COMMONS     verify all, apply the beacon
  phase1-check C1 C2 ...  -beacon HEX -commons COMMONS check that COMMONS is exactly what
                                                       the contributions and the beacon produce
  phase2-init             -commons COMMONS -out P2_0   start of phase 2 (public)
  phase2-contribute PREV           -out NEXT           add a contribution (each participant)
  phase2-verify C1 C2 ... -commons COMMONS             check every contribution in order
  seal D1 D2 ...  -phase1 C1,C2,... -beacon1 HEX -beacon HEX -out DIR
                                                       verify the whole transcript, re-derive the
                                                       sealed phase 1 (a -commons file, if given,
                                                       must match it), apply the phase-2 beacon,
                                                       write DIR/PROFILE-vN.pk, .vk and .transcript
  verify-transcript D1 D2 ... -phase1 C1,C2,... -beacon1 HEX -beacon HEX -vk FILE [-transcript FILE]
                                                       recompute the keys from the transcript and
                                                       check that FILE is its verifying key (and
                                                       that the .transcript summary names both)

Contribution lists name the outputs of phase*-contribute, first to last
(not the init file); D1... are phase-2 contributions, -phase1 lists the
phase-1 ones. Beacons must be public randomness fixed after the last
contribution of their phase (e.g. a future drand round). Sealing is
deterministic, so anyone holding the transcript (the contribution files and
both beacons) can check a verifying key with verify-transcript; the
.transcript file names the transcript by the SHA-256 of each file and the
beacons and binds them to the verifying key with one transcript hash.`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&out, "out", "", "output `file` (or directory for seal)")
			fs.StringVar(&commons, "commons", "", "sealed phase-1 `file`")
			fs.StringVar(&beacon, "beacon", "", "public random beacon, `hex` (of phase 2 for seal and verify-transcript)")
			fs.StringVar(&phase1, "phase1", "", "phase-1 contribution `files`, comma-separated, first to last (seal, verify-transcript)")
			fs.StringVar(&beacon1, "beacon1", "", "phase-1 beacon, `hex` (seal, verify-transcript)")
			fs.StringVar(&vkFile, "vk", "", "verifying key `file` to check (verify-transcript)")
			fs.StringVar(&transcriptFile, "transcript", "", "transcript summary `file` written by seal (verify-transcript)")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) == 0 {
				return usageError("name a ceremony step")
			}
			step, files := args[0], args[1:]
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			needOut := func() error {
				if out == "" {
					return usageError("%s needs -out", step)
				}
				return nil
			}
			needFiles := func(min, max int) error {
				if len(files) < min || max >= 0 && len(files) > max {
					return usageError("%s takes %d..%d files, got %d", step, min, max, len(files))
				}
				return nil
			}
			beaconBytes := func() ([]byte, error) {
				if beacon == "" {
					return nil, usageError("%s needs -beacon", step)
				}
				return decodeHex("-beacon", beacon, 0)
			}
			openAll := func() ([]io.Reader, func(), error) {
				var rs []io.Reader
				var fs []*os.File
				closeAll := func() {
					for _, f := range fs {
						f.Close()
					}
				}
				for _, name := range files {
					f, err := os.Open(name)
					if err != nil {
						closeAll()
						return nil, nil, err
					}
					fs = append(fs, f)
					rs = append(rs, f)
				}
				return rs, closeAll, nil
			}
			writeFile := func(fn func(w io.Writer) error) error {
				var buf bytes.Buffer
				if err := fn(&buf); err != nil {
					return err
				}
				return os.WriteFile(out, buf.Bytes(), 0o644)
			}
			openCommons := func() (*os.File, error) {
				if commons == "" {
					return nil, usageError("%s needs -commons", step)
				}
				return os.Open(commons)
			}
			// transcript opens the phase-1 files of -phase1 and the
			// phase-2 files of the arguments, with both beacons.
			transcript := func() (prover.Transcript, func(), error) {
				var t prover.Transcript
				if phase1 == "" || beacon1 == "" {
					return t, nil, usageError("%s needs -phase1 (the phase-1 contributions) and -beacon1", step)
				}
				var err error
				if t.Beacon1, err = decodeHex("-beacon1", beacon1, 0); err != nil {
					return t, nil, err
				}
				if t.Beacon2, err = beaconBytes(); err != nil {
					return t, nil, err
				}
				p2, done2, err := openAll()
				if err != nil {
					return t, nil, err
				}
				saved := files
				files = strings.Split(phase1, ",")
				p1, done1, err := openAll()
				files = saved
				if err != nil {
					done2()
					return t, nil, err
				}
				t.Phase1, t.Phase2 = p1, p2
				return t, func() { done1(); done2() }, nil
			}
			c, err := prover.NewCeremony(p)
			if err != nil {
				return err
			}
			switch step {
			case "phase1-check":
				if err := needFiles(1, -1); err != nil {
					return err
				}
				bb, err := beaconBytes()
				if err != nil {
					return err
				}
				cf, err := openCommons()
				if err != nil {
					return err
				}
				defer cf.Close()
				rs, done, err := openAll()
				if err != nil {
					return err
				}
				defer done()
				if err := c.CheckCommons(cf, bb, rs...); err != nil {
					return err
				}
				fmt.Fprintf(ctx.Stdout, "sealed phase 1 of %s: matches %d contributions and the beacon\n", p.ID(), len(rs))
				return nil
			case "verify-transcript":
				if err := needFiles(1, -1); err != nil {
					return err
				}
				if vkFile == "" {
					return usageError("verify-transcript needs -vk")
				}
				vkb, err := os.ReadFile(vkFile)
				if err != nil {
					return err
				}
				vk, err := verifier.DecodeVerifyingKey(vkb)
				if err != nil {
					return fmt.Errorf("%s: %w", vkFile, err)
				}
				var published *prover.TranscriptSummary
				if transcriptFile != "" {
					b, err := os.ReadFile(transcriptFile)
					if err != nil {
						return err
					}
					if published, err = prover.ParseTranscriptSummary(b); err != nil {
						return fmt.Errorf("%s: %w", transcriptFile, err)
					}
					if err := published.Check(vk); err != nil {
						return fmt.Errorf("%s: %w", transcriptFile, err)
					}
				}
				t, done, err := transcript()
				if err != nil {
					return err
				}
				defer done()
				sum, err := c.VerifyTranscript(t, vk)
				if err != nil {
					return err
				}
				if published != nil && !published.Equal(sum) {
					return fmt.Errorf("%w: %s names transcript %x, the files given are transcript %x", prover.ErrCeremony, transcriptFile, published.Digest, sum.Digest)
				}
				fmt.Fprintf(ctx.Stdout, "%s: %s is the verifying key of transcript %x (%d phase-1 and %d phase-2 contributions)\n",
					p.ID(), vkFile, sum.Digest, len(sum.Phase1), len(sum.Phase2))
				return nil
			case "phase1-init":
				if err := errors.Join(needOut(), needFiles(0, 0)); err != nil {
					return err
				}
				return writeFile(c.Phase1Init)
			case "phase1-contribute", "phase2-contribute":
				if err := errors.Join(needOut(), needFiles(1, 1)); err != nil {
					return err
				}
				rs, done, err := openAll()
				if err != nil {
					return err
				}
				defer done()
				if step == "phase1-contribute" {
					return writeFile(func(w io.Writer) error { return c.Phase1Contribute(rs[0], w) })
				}
				return writeFile(func(w io.Writer) error { return c.Phase2Contribute(rs[0], w) })
			case "phase1-verify":
				if err := needFiles(1, -1); err != nil {
					return err
				}
				rs, done, err := openAll()
				if err != nil {
					return err
				}
				defer done()
				if err := c.Phase1Verify(rs...); err != nil {
					return err
				}
				fmt.Fprintf(ctx.Stdout, "phase 1 of %s: %d contributions verified\n", p.ID(), len(rs))
				return nil
			case "phase1-seal":
				if err := errors.Join(needOut(), needFiles(1, -1)); err != nil {
					return err
				}
				bb, err := beaconBytes()
				if err != nil {
					return err
				}
				rs, done, err := openAll()
				if err != nil {
					return err
				}
				defer done()
				return writeFile(func(w io.Writer) error { return c.Phase1Seal(bb, w, rs...) })
			case "phase2-init":
				if err := errors.Join(needOut(), needFiles(0, 0)); err != nil {
					return err
				}
				cf, err := openCommons()
				if err != nil {
					return err
				}
				defer cf.Close()
				return writeFile(func(w io.Writer) error { return c.Phase2Init(cf, w) })
			case "phase2-verify":
				if err := needFiles(1, -1); err != nil {
					return err
				}
				cf, err := openCommons()
				if err != nil {
					return err
				}
				defer cf.Close()
				rs, done, err := openAll()
				if err != nil {
					return err
				}
				defer done()
				if err := c.Phase2Verify(cf, rs...); err != nil {
					return err
				}
				fmt.Fprintf(ctx.Stdout, "phase 2 of %s: %d contributions verified\n", p.ID(), len(rs))
				return nil
			case "seal":
				if err := errors.Join(needOut(), needFiles(1, -1)); err != nil {
					return err
				}
				t, done, err := transcript()
				if err != nil {
					return err
				}
				defer done()
				if commons != "" {
					// The sealed file phase 2 started from must be the
					// transcript's; the keys never depend on it.
					cf, err := os.Open(commons)
					if err != nil {
						return err
					}
					ps := strings.Split(phase1, ",")
					p1, done1, err := func() ([]io.Reader, func(), error) {
						saved := files
						files = ps
						defer func() { files = saved }()
						return openAll()
					}()
					if err != nil {
						cf.Close()
						return err
					}
					err = c.CheckCommons(cf, t.Beacon1, p1...)
					cf.Close()
					done1()
					if err != nil {
						return fmt.Errorf("%s: %w", commons, err)
					}
				}
				pk, _, sum, err := c.SealTranscript(t)
				if err != nil {
					return err
				}
				base, err := writeKeys(out, pk)
				if err != nil {
					return err
				}
				js, err := sum.MarshalJSON()
				if err != nil {
					return err
				}
				if err := os.WriteFile(base+".transcript", append(js, '\n'), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(ctx.Stdout, "%s: keys %s.pk and %s.vk, transcript %x in %s.transcript\n", p.ID(), base, base, sum.Digest, base)
				return nil
			default:
				return usageError("unknown ceremony step %q", step)
			}
		},
	})
}
