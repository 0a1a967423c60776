package fsm

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sort"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Node registration and the identity index.

// identities returns the identity strings a device presents: its UUID and,
// when reported, its serial.
func identities(d *truegpuv1.Device) []string {
	fp := d.GetFingerprint()
	out := []string{"uuid:" + fp.GetUuid()}
	if s := fp.GetSerial(); s != "" {
		out = append(out, "serial:"+s)
	}
	return out
}

func (t *txn) registerNode(c *truegpuv1.RegisterNodeCommand) error {
	if len(c.Address) != 20 {
		return invalid("register: address must be 20 bytes, got %d", len(c.Address))
	}
	if len(c.Devices) == 0 {
		return invalid("register: no devices")
	}
	if err := checkSignedRegistration(t.f.cfg.Recover, c); err != nil {
		return err
	}
	seen := map[string]bool{}
	var devs []reputation.Device
	for i, d := range c.Devices {
		if d.GetFingerprint().GetUuid() == "" {
			return invalid("register: device %d has no UUID", i)
		}
		if d.Index != uint32(i) {
			return invalid("register: device %d has index %d; devices are listed by index from 0", i, d.Index)
		}
		for _, id := range identities(d) {
			if seen[id] {
				return invalid("register: identity %s listed twice", id)
			}
			seen[id] = true
		}
		devs = append(devs, reputation.Device{UUID: d.Fingerprint.Uuid, Fingerprint: truegpuv1.FingerprintDigest(d.Fingerprint)})
	}
	rec := &truegpuv1.NodeRecord{}
	existed, err := t.getMsg(key(prefixNode, c.Address), rec)
	if err != nil {
		return err
	}
	meta, err := t.meta()
	if err != nil {
		return err
	}
	oldIDs := map[string]bool{}
	if existed {
		for _, d := range rec.Devices {
			for _, id := range identities(d) {
				oldIDs[id] = true
			}
		}
	} else {
		rec = &truegpuv1.NodeRecord{
			Address: c.Address, RegisteredAtUnixMs: t.at, RegisteredIndex: t.index,
			Counters: &truegpuv1.NodeCounters{},
		}
		meta.NodeCount++
		t.putMsg(keyMeta, meta)
	}
	rec.Devices = c.Devices
	if err := t.event(rec, reputation.Event{Kind: reputation.EventRegistered, Devices: devs}); err != nil {
		return err
	}
	// Identity index: find other holders of each identity before writing.
	self := ethcrypto.Address(c.Address)
	type dup struct {
		id    string
		nodes []ethcrypto.Address
	}
	// deviceOf is the UUID of the device of r that presents identity id.
	deviceOf := func(r *truegpuv1.NodeRecord, id string) string {
		for _, d := range r.Devices {
			if slices.Contains(identities(d), id) {
				return d.GetFingerprint().GetUuid()
			}
		}
		return ""
	}
	var dups []dup
	var resolved []dup
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		holders, err := t.identityHolders(id)
		if err != nil {
			return err
		}
		if !slices.Contains(holders, self) {
			holders = append(holders, self)
			slices.SortFunc(holders, func(a, b ethcrypto.Address) int { return bytes.Compare(a[:], b[:]) })
		}
		if len(holders) > 1 {
			dups = append(dups, dup{id, holders})
			// Contests are decided on evidence at epoch close
			// (decideContests), not on the newcomer's word.
			t.set(key(prefixContest, []byte(id)), nil)
		}
		t.set(key(prefixIdentity, []byte(id), []byte{0}, c.Address), nil)
	}
	var gone []string
	for id := range oldIDs {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		holders, err := t.identityHolders(id)
		if err != nil {
			return err
		}
		t.del(key(prefixIdentity, []byte(id), []byte{0}, c.Address))
		rest := slices.DeleteFunc(holders, func(a ethcrypto.Address) bool { return a == self })
		resolved = append(resolved, dup{id, rest})
		if len(rest) <= 1 {
			t.del(key(prefixContest, []byte(id)))
		}
		if err := t.event(rec, reputation.Event{Kind: reputation.EventDuplicateResolved, Identity: id}); err != nil {
			return err
		}
	}
	// Records of other nodes touched by this registration.
	others := map[ethcrypto.Address]*truegpuv1.NodeRecord{}
	other := func(a ethcrypto.Address) (*truegpuv1.NodeRecord, error) {
		if r, ok := others[a]; ok {
			return r, nil
		}
		r, err := t.node(a[:])
		if err != nil {
			return nil, err
		}
		others[a] = r
		return r, nil
	}
	for _, d := range dups {
		ev := reputation.Event{Kind: reputation.EventDuplicateIdentity, Identity: d.id, Nodes: d.nodes}
		if len(ev.Nodes) > 16 {
			ev.Nodes = ev.Nodes[:16]
		}
		for _, a := range d.nodes {
			target := rec
			if a != self {
				if target, err = other(a); err != nil {
					return err
				}
			}
			ev.Device = deviceOf(target, d.id)
			if err := t.event(target, ev); err != nil {
				return err
			}
		}
	}
	for _, d := range resolved {
		if len(d.nodes) == 1 {
			target, err := other(d.nodes[0])
			if err != nil {
				return err
			}
			if err := t.event(target, reputation.Event{Kind: reputation.EventDuplicateResolved, Identity: d.id}); err != nil {
				return err
			}
		}
	}
	for a, r := range others {
		t.putMsg(key(prefixNode, a[:]), r)
	}
	t.putMsg(key(prefixNode, c.Address), rec)
	t.set(key(prefixDevCount, c.Address), binary.AppendUvarint(nil, uint64(len(c.Devices))))
	return nil
}

func (t *txn) identityHolders(id string) ([]ethcrypto.Address, error) {
	var out []ethcrypto.Address
	p := key(prefixIdentity, []byte(id), []byte{0})
	err := t.scan(p, func(k, _ []byte) error {
		if len(k) == len(p)+20 {
			out = append(out, ethcrypto.Address(k[len(p):]))
		}
		return nil
	})
	return out, err
}
