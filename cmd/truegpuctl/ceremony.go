package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

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
