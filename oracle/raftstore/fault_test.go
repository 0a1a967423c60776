package raftstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/raftstore"
)

// TestWALWriteFailureIsFatal checks the crash-stop policy: when the disk
// refuses a WAL write, StoreLogs does not return (so raft never
// acknowledges the entries); the process panics with a raftstore message.
func TestWALWriteFailureIsFatal(t *testing.T) {
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	s, err := raftstore.Open("db", &raftstore.Options{FS: errorfs.Wrap(vfs.NewMem(), toggle)})
	if err != nil {
		t.Fatal(err)
	}
	// The store is deliberately not closed: after a fatal error Pebble's
	// state is undefined, and the process would have exited.
	if err := s.StoreLogs([]*raft.Log{{Index: 1}, {Index: 2}}); err != nil {
		t.Fatalf("StoreLogs before the fault: %v", err)
	}
	toggle.On()
	var recovered any
	var storeErr error
	func() {
		defer func() { recovered = recover() }()
		storeErr = s.StoreLogs([]*raft.Log{{Index: 3}, {Index: 4}})
	}()
	if recovered == nil {
		t.Fatalf("StoreLogs with a failing WAL returned %v, want a crash-stop panic", storeErr)
	}
	if msg := fmt.Sprint(recovered); !strings.Contains(msg, "raftstore: pebble fatal error") || !strings.Contains(msg, "injected") {
		t.Fatalf("panic %q does not name raftstore and the disk error", msg)
	}
}
