// Package fsm owns the oracle's replicated state machine: the Raft FSM whose
// state lives in Pebble. Apply decodes a versioned truegpu.v1.Command envelope
// and dispatches it to a handler; every applied log entry writes its state
// changes and the last applied index in one Pebble batch, so a restart never
// applies an entry twice. Snapshots stream a consistent Pebble snapshot as
// checksummed records; Restore replaces the whole state in one atomic batch.
//
// Determinism: nothing here reads a clock, a random source, the network or
// floating point. Time comes from the command's leader_time_unix_ms, nonces
// from the issued challenges, and scores from package reputation's integer
// model. The package does not verify proofs (the leader did, and members
// audit outside Apply) and does not schedule anything: it records.
package fsm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/pebblelog"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// CommandVersion is the envelope version this state machine applies.
const CommandVersion = 1

// SampleSeedSize is the size of the sample seed a commitment carries: the
// width of the proof's seed input.
const SampleSeedSize = verifier.SampleSeedSize

// DefaultRetainEpochs is Config.RetainEpochs when unset.
const DefaultRetainEpochs = 1440

// Errors of the state machine. Compare with errors.Is. A command that fails
// leaves the state unchanged; the error is returned to the proposer in the
// command's Result.
var (
	// ErrUnknownCommand reports an envelope whose body type this member does
	// not know and that does not carry ignore_if_unknown.
	ErrUnknownCommand = errors.New("fsm: unknown command type")
	// ErrUnsupportedVersion reports an envelope version other than
	// CommandVersion.
	ErrUnsupportedVersion = errors.New("fsm: unsupported command version")
	// ErrInvalidCommand reports a command with missing or malformed fields.
	ErrInvalidCommand = errors.New("fsm: invalid command")
	// ErrNotFound reports a node, challenge, epoch or member that does not
	// exist.
	ErrNotFound = errors.New("fsm: not found")
	// ErrConflict reports a command that contradicts the state: a challenge
	// issued twice, a commitment or verdict for a challenge already past that
	// step, a signature added twice.
	ErrConflict = errors.New("fsm: conflicts with state")
	// ErrLate reports a commitment that arrived after its deadline.
	ErrLate = errors.New("fsm: after deadline")
	// ErrStaleEpoch reports a close for an epoch that is not the open one.
	ErrStaleEpoch = errors.New("fsm: not the open epoch")
	// ErrBadSignature reports a report signature that does not recover to
	// a member's signer.
	ErrBadSignature = errors.New("fsm: bad report signature")
	// ErrBadSnapshot reports snapshot bytes that are not a valid stream.
	ErrBadSnapshot = errors.New("fsm: malformed snapshot")
)

// Config configures the state machine. Every replica must use equal values
// of the settings that decide scores and report digests (replicated, in
// config.go); Recover and Logger are local to a replica.
type Config struct {
	// Model is the reputation model. Default: reputation.DefaultParams().
	Model *reputation.Model
	// Recover recovers the signer of a node's signed request (Apply checks
	// every registration, commitment and verdict against one). Default
	// ethcrypto.RecoverAddress; a member passes its
	// ethcrypto.RecoverCache, so that a request it already checked on
	// arrival is not recovered again when its command is applied. It must
	// return what RecoverAddress returns.
	Recover func(hash [32]byte, sig []byte) (ethcrypto.Address, error)
	// Domain is the EIP-712 domain of epoch reports. Default: chain id 0 and
	// the zero contract.
	Domain reputation.Domain
	// MaxReasons bounds the reasons kept per node record. Default 8.
	MaxReasons int
	// RetainEpochs is how many closed epochs keep the challenges decided
	// in them: closing epoch E deletes the challenges (and their history
	// rows) decided in epoch E-RetainEpochs. Their verdicts stay counted
	// in node records and reports. Default 1440 (a day of one-minute
	// epochs).
	RetainEpochs uint64
	// ParamsDigest binds the workload parameters into the report's config
	// digest (e.g. the profile digest). Default zero.
	ParamsDigest [32]byte
	// ReportLifetime is how long after its timestamp an epoch report is
	// valid (its expires-at). Default reputation.DefaultReportLifetime.
	ReportLifetime time.Duration
	// ReportClockSkew is how long before its timestamp an epoch report is
	// valid already (its valid-from), to allow for chain block times behind
	// the leader's clock. Default reputation.DefaultReportClockSkew;
	// negative means none.
	ReportClockSkew time.Duration
	// Logger receives what the state's Pebble store reports: its
	// informational messages at Debug, its errors at Error (with
	// component=fsm/pebble). Default slog.Default(). Not part of the
	// replicated configuration.
	Logger *slog.Logger
}

func (c *Config) ensureDefaults() error {
	if c.Model == nil {
		m, err := reputation.NewModel(reputation.DefaultParams())
		if err != nil {
			return err
		}
		c.Model = m
	}
	if c.Domain.Name == "" {
		c.Domain = reputation.NewDomain(0, ethcrypto.Address{})
	}
	if c.MaxReasons == 0 {
		c.MaxReasons = 8
	}
	if c.RetainEpochs == 0 {
		c.RetainEpochs = DefaultRetainEpochs
	}
	if c.Recover == nil {
		c.Recover = ethcrypto.RecoverAddress
	}
	if c.ReportLifetime == 0 {
		c.ReportLifetime = reputation.DefaultReportLifetime
	}
	if c.ReportClockSkew == 0 {
		c.ReportClockSkew = reputation.DefaultReportClockSkew
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Result is what Apply returns for one log entry: the entry's index and one
// error per command (a CommandBatch holds several; any other command one).
// A nil error means the command was applied.
type Result struct {
	Index uint64
	Errs  []error
}

// Notification describes what one applied batch of entries changed, for
// watchers (challenge streams, score watches). It is delivered after the
// state is committed.
type Notification struct {
	Index        uint64
	ScoreChanges []*truegpuv1.ScoreChange
	Issued       []*truegpuv1.IssuedChallenge
	EpochClosed  uint64
}

// FSM is the oracle state machine. It implements raft.BatchingFSM. Apply,
// Snapshot and Restore are called by Raft, one at a time; the read methods
// are safe to call concurrently with them.
type FSM struct {
	db      *pebble.DB
	dir     string
	opts    *pebble.Options
	cfg     Config
	applied atomic.Uint64
	cache   applyCache
	open    openIndex
	list    listStats

	subMu sync.Mutex
	subs  map[int]chan Notification
	subID int
}

var (
	_ raft.BatchingFSM = (*FSM)(nil)
)

// Open opens (or creates) the state in dir.
func Open(dir string, cfg Config) (*FSM, error) { return open(dir, cfg, false) }

// Inspect opens the state in dir for reading, whatever replicated
// configuration it was recorded under (and without recording one): for
// tools that read a stopped member's state, such as the fault campaign's
// checkers. Its reads are those of an FSM opened with Open; it must not be
// given to Raft.
func Inspect(dir string) (*FSM, error) { return open(dir, Config{}, true) }

func open(dir string, cfg Config, inspect bool) (*FSM, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &pebble.Options{
		Logger: pebbleLogger(cfg.Logger),
		// Small memtables keep skiplist inserts cheap; history rows and
		// node records land at random places (node addresses), and
		// inserts into a large memtable miss the CPU cache at every level.
		MemTableSize: 8 << 20,
		// Compacting L0 in larger groups into a larger base level rewrites
		// each key fewer times: with the random history keys every L0
		// table overlaps the whole base level.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 64,
		LBaseMaxBytes:         512 << 20,
		Cache:                 pebble.NewCache(64 << 20),
		// Restore replaces the state by ingesting tables and excising the
		// old ones, which needs virtual sstables.
		FormatMajorVersion: pebble.FormatNewest,
	}
	defer opts.Cache.Unref()
	for i := range opts.Levels {
		// Most point reads of Apply look up keys that may not exist
		// (challenge ids, identities); bloom filters skip the tables.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	opts.EnsureDefaults() // Restore makes writer options from opts
	// Tables of a restore that did not finish.
	old, _ := filepath.Glob(filepath.Join(dir, "restore-*"))
	for _, p := range old {
		os.RemoveAll(p)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("fsm: open state in %s: %w", dir, err)
	}
	f := &FSM{db: db, dir: dir, opts: opts, cfg: cfg, subs: map[int]chan Notification{}}
	idx, err := f.readApplied(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	f.applied.Store(idx)
	if !inspect {
		if err := f.checkConfig(); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := f.loadIndexes(); err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
}

// loadIndexes rebuilds the in-memory indexes (cache.go, list.go) from the
// state, building the listing index first if the state lacks it.
func (f *FSM) loadIndexes() error {
	if err := f.cache.load(f.db); err != nil {
		return err
	}
	if err := f.loadList(); err != nil {
		return err
	}
	return f.open.load(f)
}

// Close closes the state.
func (f *FSM) Close() error { return f.db.Close() }

// AppliedIndex returns the index of the last applied log entry.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Subscribe returns a channel of notifications. Slow subscribers miss
// notifications (the channel is never blocked on); cancel releases it.
func (f *FSM) Subscribe(buffer int) (<-chan Notification, func()) {
	ch := make(chan Notification, buffer)
	f.subMu.Lock()
	id := f.subID
	f.subID++
	f.subs[id] = ch
	f.subMu.Unlock()
	return ch, func() {
		f.subMu.Lock()
		if _, ok := f.subs[id]; ok {
			delete(f.subs, id)
			close(ch)
		}
		f.subMu.Unlock()
	}
}

func (f *FSM) publish(n Notification) {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- n:
		default:
		}
	}
}

// pebbleLogger is the state's Pebble logger: through l, with Fatalf's
// panic beginning "fsm: pebble: ".
func pebbleLogger(l *slog.Logger) pebblelog.Logger {
	return pebblelog.Logger{L: l, Component: "fsm/pebble", FatalPrefix: "fsm: pebble: "}
}
