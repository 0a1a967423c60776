package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/oracle/raftstore"
)

// Development-only fault hooks for the fault-injection campaigns of
// oracle/chaos (docs/RELIABILITY.md). The flags are hidden from -h and
// refused without -unsafe-dev-keys, so a production member cannot run with
// one by accident.
//
//	-unsafe-clock-file PATH      the member's clock is the wall clock plus the
//	                             signed milliseconds PATH holds (none or
//	                             unreadable: the last value read, at first 0);
//	                             read every 20ms
//	-unsafe-disk-fault-file PATH while PATH exists, every write and sync of the
//	                             Raft log's files fails (Pebble's errorfs);
//	                             checked every 20ms
//	-unsafe-snapshot-every N     a Raft snapshot every N new entries, checked
//	                             every half second, keeping N/4 entries (at
//	                             least 16) behind it
//	-unsafe-restore-hold-file PATH
//	                             when a snapshot restore reaches the stage PATH
//	                             names (fsm.RestoreStage: "started" or
//	                             "tables-written"), it creates PATH.held and
//	                             waits while PATH exists, at most a minute
type devFaults struct {
	clockFile, diskFaultFile, restoreHoldFile *string
	snapshotEvery                             *uint64
}

// devFaultFlagNames are the hidden flags.
var devFaultFlagNames = map[string]bool{"unsafe-clock-file": true, "unsafe-disk-fault-file": true, "unsafe-snapshot-every": true, "unsafe-restore-hold-file": true}

// devFaultFlags registers the hidden flags on fs.
func devFaultFlags(fs *flag.FlagSet) *devFaults {
	return &devFaults{
		clockFile:       fs.String("unsafe-clock-file", "", "development only (needs -unsafe-dev-keys): offset this member's clock by the milliseconds in this file"),
		diskFaultFile:   fs.String("unsafe-disk-fault-file", "", "development only (needs -unsafe-dev-keys): fail the Raft log's writes while this file exists"),
		snapshotEvery:   fs.Uint64("unsafe-snapshot-every", 0, "development only (needs -unsafe-dev-keys): take a Raft snapshot every N entries"),
		restoreHoldFile: fs.String("unsafe-restore-hold-file", "", "development only (needs -unsafe-dev-keys): hold a snapshot restore at the stage this file names while it exists"),
	}
}

// printVisibleDefaults prints the defaults of fs's flags but the hidden
// ones.
func printVisibleDefaults(fs *flag.FlagSet) {
	v := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	v.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if !devFaultFlagNames[f.Name] {
			v.Var(f.Value, f.Name, f.Usage)
			v.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	v.PrintDefaults()
}

// apply installs the hooks the flags ask for into cfg (and the Raft log's
// default file system). The watchers run until ctx ends.
func (d *devFaults) apply(ctx context.Context, cfg *oracle.Config, devKeys bool, warn io.Writer) error {
	if *d.clockFile == "" && *d.diskFaultFile == "" && *d.snapshotEvery == 0 && *d.restoreHoldFile == "" {
		return nil
	}
	if !devKeys {
		return errors.New("-unsafe-clock-file, -unsafe-disk-fault-file, -unsafe-snapshot-every and -unsafe-restore-hold-file inject faults for fault-injection campaigns and need -unsafe-dev-keys")
	}
	if path := *d.restoreHoldFile; path != "" {
		fsm.RestoreHold = func(stage fsm.RestoreStage) { holdRestore(path, stage, warn) }
		fmt.Fprintf(warn, "oracled: WARNING: -unsafe-restore-hold-file: snapshot restores hold at the stage %s names while it exists\n", path)
	}
	if path := *d.clockFile; path != "" {
		c := &fileClock{path: path}
		c.read(nil)
		cfg.Now = c.now
		fmt.Fprintf(warn, "oracled: WARNING: -unsafe-clock-file: this member's clock is offset by the milliseconds in %s\n", path)
		go poll(ctx, func() { c.read(warn) })
	}
	if path := *d.diskFaultFile; path != "" {
		toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
			switch op.Kind {
			case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync,
				errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFilePreallocate:
				return errorfs.ErrInjected
			}
			return nil
		})}
		raftstore.DefaultFS = errorfs.Wrap(vfs.Default, toggle)
		fmt.Fprintf(warn, "oracled: WARNING: -unsafe-disk-fault-file: the Raft log's writes fail while %s exists\n", path)
		var on atomic.Bool
		check := func() {
			_, err := os.Stat(path)
			if now := err == nil; now != on.Load() {
				on.Store(now)
				if now {
					toggle.On()
					fmt.Fprintln(warn, "oracled: UNSAFE disk fault on: the Raft log's writes fail")
				} else {
					toggle.Off()
					fmt.Fprintln(warn, "oracled: UNSAFE disk fault off")
				}
			}
		}
		check()
		go poll(ctx, check)
	}
	if n := *d.snapshotEvery; n > 0 {
		rc := raft.DefaultConfig()
		rc.SnapshotThreshold = n
		rc.TrailingLogs = max(n/4, 16)
		rc.SnapshotInterval = 500 * time.Millisecond
		cfg.Raft = rc
		fmt.Fprintf(warn, "oracled: WARNING: -unsafe-snapshot-every: a Raft snapshot every %d entries\n", n)
	}
	return nil
}

// holdRestore holds a restore at stage while path exists and names that
// stage, at most a minute, after creating path.held to say so.
func holdRestore(path string, stage fsm.RestoreStage, warn io.Writer) {
	want, err := os.ReadFile(path)
	if err != nil || fsm.RestoreStage(strings.TrimSpace(string(want))) != stage {
		return
	}
	if err := os.WriteFile(path+".held", nil, 0o600); err != nil {
		fmt.Fprintf(warn, "oracled: UNSAFE restore hold: %v\n", err)
		return
	}
	fmt.Fprintf(warn, "oracled: UNSAFE restore held at %s\n", stage)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err != nil {
			break
		}
	}
	os.Remove(path + ".held")
	fmt.Fprintf(warn, "oracled: UNSAFE restore released at %s\n", stage)
}

// poll calls f every 20ms until ctx ends.
func poll(ctx context.Context, f func()) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// fileClock is the wall clock plus an offset read from a file.
type fileClock struct {
	path   string
	offset atomic.Int64 // milliseconds
	logged int64
}

func (c *fileClock) now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()) * time.Millisecond)
}

// read takes the offset from the file; a missing or unreadable file keeps
// the last one. Changes of a second or more (and the return to zero) are
// written to warn.
func (c *fileClock) read(warn io.Writer) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return
	}
	c.offset.Store(ms)
	if d := ms - c.logged; d >= 1000 || d <= -1000 || (ms == 0 && c.logged != 0) {
		if warn != nil {
			fmt.Fprintf(warn, "oracled: UNSAFE clock offset %+dms\n", ms)
		}
		c.logged = ms
	}
}
