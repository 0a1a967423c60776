package fsm

import (
	"bytes"
	"io"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestDeviceChanges: registrations reach a reader of the change log in
// order, from its cursor; a restore invalidates older cursors.
func TestDeviceChanges(t *testing.T) {
	f := openFSM(t)
	all, cursor := f.DeviceCounts()
	if len(all) != 0 {
		t.Fatalf("empty state has %d nodes", len(all))
	}
	now := int64(1_700_000_000_000)
	a := nodeKey([]byte("dc-a")).Address()
	b := nodeKey([]byte("dc-b")).Address()
	reg := func(addr ethcrypto.Address, uuids ...string) {
		t.Helper()
		var devs []*truegpuv1.Device
		for i, u := range uuids {
			devs = append(devs, device(i, u))
		}
		now += 10
		if err := apply1(t, f, commandAt(now, signRegister(&truegpuv1.RegisterNodeCommand{Address: addr[:], Devices: devs}))); err != nil {
			t.Fatal(err)
		}
	}
	reg(a, "GPU-a0")
	reg(b, "GPU-b0", "GPU-b1")
	reg(a, "GPU-a0", "GPU-a1", "GPU-a2")
	changes, next, ok := f.DeviceChanges(cursor, 10)
	want := []DeviceCount{{a, 1}, {b, 2}, {a, 3}}
	if !ok || len(changes) != len(want) {
		t.Fatalf("changes %v ok %v, want %v", changes, ok, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("change %d = %v, want %v", i, changes[i], want[i])
		}
	}
	if more, again, ok := f.DeviceChanges(next, 10); !ok || len(more) != 0 || again != next {
		t.Fatalf("read past the end: %v %d %v", more, again, ok)
	}
	// A limited read continues where it stopped.
	first, mid, _ := f.DeviceChanges(cursor, 2)
	rest, _, _ := f.DeviceChanges(mid, 2)
	if len(first) != 2 || len(rest) != 1 || rest[0] != want[2] {
		t.Fatalf("paged reads %v then %v", first, rest)
	}
	all, _ = f.DeviceCounts()
	if len(all) != 2 {
		t.Fatalf("device counts %v", all)
	}
	// After a restore the old cursor is refused; DeviceCounts starts over.
	snap := snapshotBytes(t, f)
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.DeviceChanges(next, 10); ok {
		t.Fatal("a cursor from before the restore is still accepted")
	}
	all, cursor = f.DeviceCounts()
	if len(all) != 2 {
		t.Fatalf("device counts after restore %v", all)
	}
	if changes, _, ok := f.DeviceChanges(cursor, 10); !ok || len(changes) != 0 {
		t.Fatalf("fresh cursor after restore: %v %v", changes, ok)
	}
}
