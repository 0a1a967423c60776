package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// RegisterNodes registers n nodes by proposing their signed registrations
// on the leader m: node i has key key(i) and devices devices(i). It skips
// the node-facing checks of RegisterNode (admission budget, replay window,
// cluster name); Apply still checks each node's signature, so the state is
// what real registrations leave. At most workers registrations are in
// flight (one per node when workers <= 0). It returns the nodes' addresses
// in order, or the first error.
func RegisterNodes(ctx context.Context, m *oracle.Member, n, workers int, key func(i int) *attest.NodeKey, devices func(i int) []*truegpuv1.Device) ([]ethcrypto.Address, error) {
	if workers <= 0 || workers > n {
		workers = n
	}
	addrs := make([]ethcrypto.Address, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) { once.Do(func() { first = err }) }
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				k := key(i)
				a := k.Address()
				addrs[i] = a
				devs := devices(i)
				req := &truegpuv1.RegisterNodeRequest{Address: a.String(), Devices: devs, TimestampUnixMs: time.Now().UnixMilli()}
				if err := k.Sign(req); err != nil {
					fail(err)
					return
				}
				signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
				if err != nil {
					fail(err)
					return
				}
				_, err = m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_RegisterNode{RegisterNode: &truegpuv1.RegisterNodeCommand{
					Address: a[:], Devices: devs, SignedRequest: signed}}})
				if err != nil {
					fail(fmt.Errorf("register node %s: %w", a, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return addrs, first
}

// SyntheticChallenge is a challenge of device 0 of node a claiming class,
// issued at now, with a 10-minute commitment deadline, a 20-minute proof
// deadline and no timed or memory phase.
func SyntheticChallenge(a ethcrypto.Address, nonce [32]byte, now time.Time, p *prover.Profile, class string) *truegpuv1.IssuedChallenge {
	ms := now.UnixMilli()
	id := truegpuv1.ChallengeID(nonce[:], a[:], 0, ms)
	return &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce[:], Profile: p.ID(), ClaimedClass: class,
		IssuedAtUnixMs: ms, CommitDeadlineUnixMs: ms + 600_000, ProofDeadlineUnixMs: ms + 1_200_000, ExpectedLatencyMs: 10}
}

// DirSize is the total size of the regular files under dir; a directory
// that does not exist (or a file removed during the walk) counts as empty.
func DirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}
