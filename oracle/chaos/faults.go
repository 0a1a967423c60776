package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// SnapshotEvery is the Raft snapshot threshold of runs with crash-restore
// faults (oracled -unsafe-snapshot-every): small enough that a member
// stopped for a few seconds falls behind the others' logs and is sent a
// snapshot.
const SnapshotEvery = 128

// snapshotTrailing is the number of entries oracled keeps behind a
// snapshot with -unsafe-snapshot-every SnapshotEvery.
const snapshotTrailing = max(SnapshotEvery/4, 16)

// Errors of the faults that crash a member on purpose, as they appear in
// its log: the fail-stop lines ScanLogsWindows excuses.
const (
	// injectedDiskError is Pebble's errorfs.ErrInjected.
	injectedDiskError = "injected error"
	// fileTooLarge is EFBIG, what a write past RLIMIT_FSIZE fails with.
	fileTooLarge = "file too large"
)

// setClock writes m's clock offset (oracled -unsafe-clock-file), whole
// milliseconds, replacing the file in one rename.
func setClock(m *Member, offset time.Duration) error {
	tmp := m.ClockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(offset.Milliseconds(), 10)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.ClockFile)
}

// injectClockSkew offsets the leader's clock for hold: a step ahead or
// behind by 2-10s, or a drift of 10-50% fast or slow from the fault's
// start. A probe registration through the skewed leader checks that its
// stamps carry the offset (a fault that did not reach them is a harness
// error). The clock then returns to the wall clock.
func injectClockSkew(ctx context.Context, c *Cluster, w *Workload, rng *rand.Rand, m *Member, hold time.Duration) (string, error) {
	variant := rng.IntN(3)
	sign := 1
	if rng.IntN(2) == 0 {
		sign = -1
	}
	step := time.Duration(sign*(2000+rng.IntN(8001))) * time.Millisecond
	rate := float64(sign) * (0.1 + 0.4*rng.Float64())
	start := time.Now()
	offsetAt := func(t time.Time) time.Duration {
		if variant == 2 {
			return time.Duration(float64(t.Sub(start)) * rate)
		}
		return step
	}
	var desc string
	switch {
	case variant == 2:
		desc = fmt.Sprintf("%s: %s's clock drifts %+.0f%% for %v", ClockSkew, m.ID, 100*rate, hold.Round(time.Millisecond))
	case step > 0:
		desc = fmt.Sprintf("%s: %s's clock %v ahead for %v", ClockSkew, m.ID, step, hold.Round(time.Millisecond))
	default:
		desc = fmt.Sprintf("%s: %s's clock %v behind for %v", ClockSkew, m.ID, -step, hold.Round(time.Millisecond))
	}
	if err := setClock(m, offsetAt(start)); err != nil {
		return desc, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				if variant == 2 {
					setClock(m, offsetAt(now))
				}
			}
		}
	}()
	// Let the member read the file (every 20ms) and drift a little.
	sleepCtx(ctx, min(hold/3, time.Second))
	verdict, err := probeClock(ctx, c, w, m, offsetAt)
	if err == nil {
		sleepCtx(ctx, hold-time.Since(start))
	}
	close(stop)
	<-done
	if herr := setClock(m, 0); err == nil {
		err = herr
	}
	return desc + "; " + verdict, err
}

// probeClock registers the probe node through m while m leads and reads
// the node's update time back linearizably: the leader's stamp must be the
// wall clock plus the offset (within 300ms). When leadership moves during
// a probe it tries again, up to five times, and then reports the skew as
// unverified.
func probeClock(ctx context.Context, c *Cluster, w *Workload, m *Member, offsetAt func(time.Time) time.Duration) (string, error) {
	key := attest.NodeKeyFromSeed([]byte(fmt.Sprintf("truegpu chaos clock probe seed %d", w.cfg.Seed)))
	const slack = 300 * time.Millisecond
	for try := 0; try < 5; try++ {
		if try > 0 {
			sleepCtx(ctx, 300*time.Millisecond)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if c.Leader(ctx) != m.Index {
			continue
		}
		n := w.probes.Add(1)
		req := &truegpuv1.RegisterNodeRequest{
			Address: key.Address().String(), TimestampUnixMs: time.Now().UnixMilli(), Cluster: ClusterID,
			Devices: []*truegpuv1.Device{{Index: 0, ClaimedClass: gpuclass.H100SXM, Fingerprint: &truegpuv1.DeviceFingerprint{
				Uuid: fmt.Sprintf("GPU-chaos-probe-%d", n), Serial: fmt.Sprintf("chaos-probe-serial-%d", n), Name: "NVIDIA H100 80GB HBM3",
				VbiosVersion: fmt.Sprintf("chaos-probe-%d", n),
			}}},
		}
		if err := key.Sign(req); err != nil {
			return "", err
		}
		t1 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := truegpuv1.NewNodeServiceClient(c.Conn(m.Index)).RegisterNode(cctx, req)
		cancel()
		t2 := time.Now()
		if err != nil {
			continue
		}
		w.Acks.Registered(resp.Address)
		cctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		got, err := truegpuv1.NewReputationServiceClient(c.Conn(m.Index)).GetNode(cctx,
			&truegpuv1.GetNodeRequest{Address: resp.Address, Consistency: truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		cancel()
		if err != nil || c.Leader(ctx) != m.Index {
			continue
		}
		stamp := time.UnixMilli(got.GetNode().GetUpdatedAtUnixMs())
		lo, hi := offsetAt(t1.Add(-100*time.Millisecond)), offsetAt(t2)
		if lo > hi {
			lo, hi = hi, lo
		}
		skew := stamp.Sub(t1)
		if stamp.Before(t1.Add(lo-slack)) || stamp.After(t2.Add(hi+slack)) {
			return "", fmt.Errorf("chaos: %s leads with its clock offset by %v..%v, but stamped a registration %v from the wall clock", m.ID, lo.Round(time.Millisecond), hi.Round(time.Millisecond), skew.Round(time.Millisecond))
		}
		return fmt.Sprintf("its stamp of a probe registration was %v off the wall clock", skew.Round(time.Millisecond)), nil
	}
	return "skew of the stamps not verified (leadership moved during every probe)", nil
}

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid (the hard
// limit stays): a process of the same user may do it (prlimit(2)).
func setFileSizeLimit(pid int, soft uint64) error {
	if pid <= 0 {
		return errors.New("chaos: no process to limit") // pid 0 would be the harness itself
	}
	var old syscall.Rlimit
	if _, _, e := syscall.Syscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&old)), 0, 0); e != 0 {
		return fmt.Errorf("chaos: prlimit of %d: %w", pid, e)
	}
	lim := syscall.Rlimit{Cur: min(soft, old.Max), Max: old.Max}
	if _, _, e := syscall.Syscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		return fmt.Errorf("chaos: prlimit of %d: %w", pid, e)
	}
	return nil
}

// injectDiskFault makes the writes of one member (the leader or a
// follower, drawn) fail: disk-errors through Pebble's errorfs on its Raft
// log (oracled -unsafe-disk-fault-file), disk-full by a file size limit
// of 0 on the process (every write to a regular file fails with EFBIG, as
// on a full disk). The member must fail stop: exit within hold. The
// others must keep acknowledging writes meanwhile (waiting up to 20s more
// for one). Then the fault is removed and the member restarted from its
// data directory.
func injectDiskFault(ctx context.Context, c *Cluster, w *Workload, res *RunResult, rng *rand.Rand, kind Fault, leader, follower int, hold time.Duration) (string, error) {
	target, role := leader, "leader"
	if rng.IntN(2) == 0 {
		target, role = follower, "follower"
	}
	m := c.Members[target]
	desc := fmt.Sprintf("%s on %s (%s) for %v", kind, m.ID, role, hold.Round(time.Millisecond))
	since := w.History.Now()
	start := time.Now()
	exited := m.Exited()
	switch kind {
	case DiskErrors:
		m.OpenWindow(injectedDiskError)
		if err := os.WriteFile(m.DiskFaultFile, nil, 0o600); err != nil {
			return desc, err
		}
	case DiskFull:
		m.OpenWindow(fileTooLarge)
		if err := setFileSizeLimit(m.PID(), 0); err != nil {
			return desc, err
		}
	}
	exitedAfter := time.Duration(-1)
	timer := time.NewTimer(hold)
	select {
	case <-exited:
		exitedAfter = time.Since(start)
		<-timer.C
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		return desc, ctx.Err()
	}
	for deadline := time.Now().Add(20 * time.Second); w.History.AckedWritesSince(since) == 0 && time.Now().Before(deadline); {
		sleepCtx(ctx, 250*time.Millisecond)
	}
	acked := w.History.AckedWritesSince(since)
	if acked == 0 {
		res.FaultViolations = append(res.FaultViolations, fmt.Sprintf("%s: no write acknowledged in %v while only %s had a disk fault", kind, time.Since(start).Round(time.Second), m.ID))
	}
	if exitedAfter < 0 {
		select {
		case <-exited:
			exitedAfter = time.Since(start)
		default:
		}
	}
	// Remove the fault.
	switch kind {
	case DiskErrors:
		if err := os.Remove(m.DiskFaultFile); err != nil {
			return desc, err
		}
	case DiskFull:
		if exitedAfter < 0 {
			setFileSizeLimit(m.PID(), ^uint64(0))
		}
	}
	if exitedAfter < 0 {
		res.FaultViolations = append(res.FaultViolations, fmt.Sprintf("%s: %s kept running for %v with failing writes (want a fail-stop); killed", kind, m.ID, time.Since(start).Round(time.Second)))
		desc += "; did not exit, killed"
		if err := c.Kill(m); err != nil {
			return desc, err
		}
	} else {
		desc += fmt.Sprintf("; exited after %v", exitedAfter.Round(time.Millisecond))
		c.Reap(m)
	}
	m.CloseWindow()
	desc += fmt.Sprintf("; %d writes acknowledged meanwhile; restarted", acked)
	return desc, c.Restart(m)
}

// newestSnapshot returns the index of the newest complete Raft snapshot in
// m's data directory (hashicorp/raft's file store keeps them in
// snapshots/snapshots, named term-index-milliseconds), or 0.
func newestSnapshot(m *Member) uint64 {
	entries, _ := os.ReadDir(filepath.Join(m.DataDir, "snapshots", "snapshots"))
	var best uint64
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if !e.IsDir() || len(parts) != 3 || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if i, err := strconv.ParseUint(parts[1], 10, 64); err == nil && i > best {
			best = i
		}
	}
	return best
}

// restoreDirs returns the names of the state's restore directories (the
// tables fsm.Restore writes before it ingests them, removed when it
// returns).
func restoreDirs(m *Member) map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(m.DataDir, "state"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "restore-") {
			out[e.Name()] = true
		}
	}
	return out
}

// killDuringRestore, for m just started with its restore hold file
// naming a stage, waits for m to hold a new restore there and sends
// SIGKILL. It returns "hit" when the restore directory was still there
// after the process died (the restore was interrupted), "missed" when it
// was not, and "none" when no restore reached the stage within d or the
// process exited by itself. The hold file is removed before it returns.
func killDuringRestore(ctx context.Context, c *Cluster, m *Member, old map[string]bool, d time.Duration) (string, error) {
	defer os.Remove(m.RestoreHoldFile)
	defer os.Remove(m.RestoreHoldFile + ".held")
	exited := m.Exited()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(m.RestoreHoldFile + ".held"); err == nil {
			if err := c.Kill(m); err != nil {
				return "", err
			}
			for name := range restoreDirs(m) {
				if !old[name] {
					return "hit", nil
				}
			}
			return "missed", nil
		}
		select {
		case <-exited:
			c.Reap(m)
			return "none", nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	return "none", ctx.Err()
}

// injectCrashRestore makes a follower install a snapshot and kills it in
// the middle of restoring it, once or twice (drawn), then restarts it.
// The follower either loses its data directory (it restarts empty and
// joins again) or only falls behind (stopped until the others' logs no
// longer reach back to its last entry). The run must have been started
// with SnapshotEvery. A run in which no kill landed inside a restore is a
// harness error: the fault was not injected.
func injectCrashRestore(ctx context.Context, c *Cluster, rng *rand.Rand, m *Member, hold time.Duration) (string, error) {
	if c.Config.SnapshotEvery == 0 {
		return string(CrashRestore), errors.New("chaos: crash-restore needs a cluster with SnapshotEvery")
	}
	lost := rng.IntN(2) == 0
	want := 1 + rng.IntN(2)
	how := "behind"
	if lost {
		how = "data directory lost"
	}
	desc := fmt.Sprintf("%s %s (%s)", CrashRestore, m.ID, how)
	var last uint64
	if h, err := c.Health(ctx, m.Index); err == nil {
		last = h.AppliedIndex
	}
	if err := c.Kill(m); err != nil {
		return desc, err
	}
	start := time.Now()
	// Every other member must have compacted its log past what m holds,
	// so that whichever leads sends a snapshot.
	need := uint64(snapshotTrailing) + 8
	if !lost {
		need += last + 64
	}
	for {
		ok := true
		for _, o := range c.Active() {
			if o != m && o.Running() && newestSnapshot(o) < need {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Since(start) > 90*time.Second {
			return desc, fmt.Errorf("chaos: no snapshot past index %d within 90s", need)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return desc, ctx.Err()
		}
	}
	sleepCtx(ctx, hold-time.Since(start))
	var phases []string
	hits := 0
	for attempt := 0; attempt < want+2 && hits < want; attempt++ {
		old := restoreDirs(m)
		// Where the kill lands: as the restore begins, or with the whole
		// snapshot decoded into tables and the state not yet replaced.
		stage := fsm.RestoreStarted
		if rng.IntN(2) == 0 {
			stage = fsm.RestoreTablesWritten
		}
		if err := os.WriteFile(m.RestoreHoldFile, []byte(stage), 0o600); err != nil {
			return desc, err
		}
		var err error
		if attempt == 0 && lost {
			err = c.StartFresh(ctx, m)
		} else {
			err = c.Restart(m)
		}
		if err != nil {
			return desc, err
		}
		phase, err := killDuringRestore(ctx, c, m, old, 30*time.Second)
		if err != nil {
			return desc, err
		}
		phases = append(phases, phase+" at "+string(stage))
		if phase == "hit" {
			hits++
		}
		if phase == "none" {
			break
		}
	}
	desc += fmt.Sprintf("; others' snapshots past index %d after %v; %d kill(s) wanted in a restore: %s", need, time.Since(start).Round(100*time.Millisecond), want, strings.Join(phases, ", "))
	if !m.Running() || c.Reap(m) {
		if err := c.Restart(m); err != nil {
			return desc, err
		}
	}
	if hits == 0 {
		return desc, errors.New("chaos: no kill landed in the middle of a snapshot restore")
	}
	return desc, nil
}

// memberClient dials member at's real gRPC address presenting as's
// certificate (membership calls are for the member they are about, or an
// operator).
func memberClient(c *Cluster, as, at *Member) (*grpc.ClientConn, error) {
	cert, err := tls.LoadX509KeyPair(as.CertFile, as.KeyFile)
	if err != nil {
		return nil, err
	}
	t := c.ClientTLS()
	t.Certificates = []tls.Certificate{cert}
	return grpc.NewClient(at.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(t)))
}

// removeMember asks the leader, with m's own certificate (a member
// leaving), to remove m, until an answer says it is done. m must be
// retired already (Retire), so that the leader is looked for among the
// others. It returns the errors of the refused attempts.
func removeMember(ctx context.Context, c *Cluster, m *Member, d time.Duration) ([]string, error) {
	deadline := time.Now().Add(d)
	var last error = errors.New("no leader")
	var refused []string
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return refused, ctx.Err()
		}
		if l := c.Leader(ctx); l >= 0 {
			cc, err := memberClient(c, m, c.Members[l])
			if err != nil {
				return refused, err
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = truegpuv1.NewAdminServiceClient(cc).RemoveMember(cctx, &truegpuv1.RemoveMemberRequest{Id: m.ID})
			cancel()
			cc.Close()
			if err == nil {
				return refused, nil
			}
			last = err
			refused = append(refused, fmt.Sprintf("%s: %v", c.Members[l].ID, status.Convert(err).Message()))
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	return refused, fmt.Errorf("chaos: remove %s: %w", m.ID, last)
}

// waitMembers waits until the cluster is healthy with exactly its members
// as voters, each with its row (signer) in the member table.
func waitMembers(ctx context.Context, c *Cluster, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if last = c.healthy(ctx); last == nil {
			last = c.rowsPublished(ctx)
			if last == nil {
				return nil
			}
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
	return last
}

// rowsPublished requires a signer row for every member of the cluster in
// the leader's view.
func (c *Cluster) rowsPublished(ctx context.Context) error {
	l := c.Leader(ctx)
	if l < 0 {
		return errors.New("no leader")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl, err := truegpuv1.NewAdminServiceClient(c.Conn(l)).GetCluster(cctx, &truegpuv1.GetClusterRequest{})
	if err != nil {
		return err
	}
	var missing []string
	for _, mem := range cl.Members {
		if mem.SignerAddress == "" {
			missing = append(missing, mem.Id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("no member row for %v", missing)
	}
	return nil
}

// injectMembership adds a spare member (started empty, joining through
// the leader) and, once it is a voter with its row, removes an old member
// (the leader or a follower, drawn) with RemoveMember, stops it and leaves
// it out of the run. A change that does not take effect within a minute
// is a fault violation.
func injectMembership(ctx context.Context, c *Cluster, res *RunResult, rng *rand.Rand, leader, follower int, hold time.Duration) (string, error) {
	var spare *Member
	for _, m := range c.Members {
		if !m.InCluster() && !m.Running() {
			spare = m
			break
		}
	}
	victim, role := c.Members[leader], "leader"
	if rng.IntN(2) == 0 {
		victim, role = c.Members[follower], "follower"
	}
	desc := fmt.Sprintf("%s: add %s", Membership, "?")
	if spare == nil {
		return desc, errors.New("chaos: membership needs a spare member (ClusterConfig.Spares)")
	}
	desc = fmt.Sprintf("%s: add %s, then remove %s (%s), over %v", Membership, spare.ID, victim.ID, role, hold.Round(time.Millisecond))
	start := time.Now()
	if err := c.StartFresh(ctx, spare); err != nil {
		return desc, err
	}
	if err := waitMembers(ctx, c, 60*time.Second); err != nil {
		res.FaultViolations = append(res.FaultViolations, fmt.Sprintf("%s: %s did not become a voter with its row within 60s: %v", Membership, spare.ID, err))
		return desc, err
	}
	joined := time.Since(start)
	sleepCtx(ctx, hold/2)
	t := time.Now()
	c.Retire(victim)
	refused, err := removeMember(ctx, c, victim, 60*time.Second)
	if len(refused) > 0 {
		desc += fmt.Sprintf("; RemoveMember answered %d time(s) before success: %s", len(refused), strings.Join(refused, "; "))
	}
	if err != nil {
		res.FaultViolations = append(res.FaultViolations, fmt.Sprintf("%s: %v", Membership, err))
		return desc, err
	}
	if _, err := c.Stop(victim, 20*time.Second); err != nil {
		return desc, err
	}
	if err := waitMembers(ctx, c, 60*time.Second); err != nil {
		res.FaultViolations = append(res.FaultViolations, fmt.Sprintf("%s: after removing %s: %v", Membership, victim.ID, err))
		return desc, err
	}
	desc += fmt.Sprintf("; joined in %v, removed in %v", joined.Round(100*time.Millisecond), time.Since(t).Round(100*time.Millisecond))
	sleepCtx(ctx, hold-time.Since(start))
	return desc, nil
}
