package reputation

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// stateVersion is the first byte of an encoded NodeState. A new layout gets
// a new version; old versions stay decodable.
const stateVersion = 3

// maxStateRefLen bounds an evidence reference in the encoding.
const maxStateRefLen = 256

// MarshalBinary encodes the state deterministically: equal states encode to
// equal bytes, so replicas can compare and hash them.
//
// Layout (version 2): version byte, then uvarints for integers, uvarint
// length-prefixed strings, raw 32-byte fingerprints and 20-byte addresses,
// in field order. Version 1 lacks the contest fields of a conflict (Device,
// Incumbent, Answered, Failed, Outcome); it is still decoded (as an open
// contest of a newcomer) but no longer written. Version 3 appends the
// timing window (a count, then one uvarint per ratio); versions 1 and 2
// decode with an empty window.
func (st NodeState) MarshalBinary() ([]byte, error) {
	return st.marshal(stateVersion), nil
}

func (st NodeState) marshal(version byte) []byte {
	var b []byte
	u := func(v uint64) { b = binary.AppendUvarint(b, v) }
	s := func(v string) { u(uint64(len(v))); b = append(b, v...) }
	b = append(b, version)
	u(st.Updated)
	u(st.Registered)
	u(uint64(len(st.Devices)))
	for _, d := range st.Devices {
		s(d.UUID)
		b = append(b, d.Fingerprint[:]...)
	}
	if st.Anchored {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, e := range st.Evidence {
		u(e.Pos)
		u(e.Neg)
	}
	u(uint64(len(st.Conflicts)))
	for _, c := range st.Conflicts {
		s(c.Identity)
		u(c.Since)
		u(uint64(len(c.Nodes)))
		for _, n := range c.Nodes {
			b = append(b, n[:]...)
		}
		if version >= 2 {
			s(c.Device)
			flags := byte(c.Outcome) << 1
			if c.Incumbent {
				flags |= 1
			}
			b = append(b, flags)
			u(c.Answered)
			u(c.Failed)
		}
	}
	u(uint64(len(st.Penalties)))
	for _, p := range st.Penalties {
		u(p.At)
		b = append(b, byte(p.Dimension))
		s(string(p.Reason))
		u(p.Weight)
		u(uint64(len(p.Evidence)))
		for _, r := range p.Evidence {
			s(r)
		}
	}
	u(st.Accepted)
	u(st.Rejected)
	u(st.Missed)
	u(st.Resets)
	if version >= 3 {
		u(uint64(len(st.Timing)))
		for _, r := range st.Timing {
			u(uint64(r))
		}
	}
	return b
}

type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrInvalidState, fmt.Sprintf(format, args...))
	}
}

func (d *stateDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("%s: bad or truncated varint", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stateDecoder) count(what string, max int) int {
	v := d.uvarint(what)
	if v > uint64(max) {
		d.fail("%s: %d exceeds limit %d", what, v, max)
		return 0
	}
	return int(v)
}

func (d *stateDecoder) bytes(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("%s: truncated", what)
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *stateDecoder) str(what string, max int) string {
	n := d.count(what+" length", max)
	return string(d.bytes(what, n))
}

func (d *stateDecoder) evidence(what string) uint64 {
	v := d.uvarint(what)
	if v > evidenceLimit {
		d.fail("%s: %d exceeds evidence limit", what, v)
	}
	return v
}

// UnmarshalBinary decodes bytes produced by MarshalBinary. It accepts only
// the canonical encoding of a state that satisfies the model's invariants
// (sorted, unique devices and conflicts; bounded sizes; valid reason codes),
// so untrusted bytes cannot smuggle in a state Apply could never produce.
func (st *NodeState) UnmarshalBinary(data []byte) error {
	d := &stateDecoder{b: data}
	v := d.bytes("version", 1)
	if d.err != nil {
		return d.err
	}
	version := v[0]
	if version < 1 || version > stateVersion {
		return fmt.Errorf("%w: unsupported version %d (this build reads 1 to %d)", ErrInvalidState, version, stateVersion)
	}
	var out NodeState
	out.Updated = d.uvarint("updated")
	out.Registered = d.uvarint("registered")
	if n := d.count("devices", MaxDevices); n > 0 {
		out.Devices = make([]Device, n)
		for i := range out.Devices {
			out.Devices[i].UUID = d.str("device uuid", maxRefLen)
			copy(out.Devices[i].Fingerprint[:], d.bytes("fingerprint", 32))
			if d.err == nil && out.Devices[i].UUID == "" {
				d.fail("empty device uuid")
			}
			if d.err == nil && i > 0 && out.Devices[i-1].UUID >= out.Devices[i].UUID {
				d.fail("devices not sorted and unique")
			}
		}
	}
	if a := d.bytes("anchored", 1); d.err == nil {
		if a[0] > 1 {
			d.fail("anchored flag %d", a[0])
		}
		out.Anchored = a[0] == 1
	}
	for i := range out.Evidence {
		out.Evidence[i].Pos = d.evidence("evidence")
		out.Evidence[i].Neg = d.evidence("evidence")
	}
	if n := d.count("conflicts", maxConflicts); n > 0 {
		out.Conflicts = make([]Conflict, n)
		for i := range out.Conflicts {
			c := &out.Conflicts[i]
			c.Identity = d.str("identity", maxRefLen)
			c.Since = d.uvarint("since")
			m := d.count("conflict nodes", maxConflictNodes)
			c.Nodes = make([]ethcrypto.Address, m)
			for j := range c.Nodes {
				copy(c.Nodes[j][:], d.bytes("node", 20))
				if d.err == nil && j > 0 && bytes.Compare(c.Nodes[j-1][:], c.Nodes[j][:]) >= 0 {
					d.fail("conflict nodes not sorted and unique")
				}
			}
			if version >= 2 {
				c.Device = d.str("conflict device", maxRefLen)
				if f := d.bytes("conflict flags", 1); d.err == nil {
					if f[0]>>1 > byte(ConflictClone) {
						d.fail("conflict flags %d", f[0])
					}
					c.Incumbent = f[0]&1 == 1
					c.Outcome = ConflictOutcome(f[0] >> 1)
				}
				c.Answered = d.uvarint("answered")
				c.Failed = d.uvarint("failed")
			}
			if d.err == nil && (c.Identity == "" || m < 2) {
				d.fail("conflict needs an identity and at least 2 nodes")
			}
			if d.err == nil && i > 0 && strings.Compare(out.Conflicts[i-1].Identity, c.Identity) >= 0 {
				d.fail("conflicts not sorted and unique")
			}
		}
	}
	if n := d.count("penalties", 1024); n > 0 {
		out.Penalties = make([]Penalty, n)
		for i := range out.Penalties {
			p := &out.Penalties[i]
			p.At = d.uvarint("penalty time")
			if dim := d.bytes("dimension", 1); d.err == nil {
				if Dimension(dim[0]) >= NumDimensions {
					d.fail("dimension %d", dim[0])
				}
				p.Dimension = Dimension(dim[0])
			}
			p.Reason = Reason(d.str("reason", 64))
			if d.err == nil && !p.Reason.Valid() {
				d.fail("reason code %q", p.Reason)
			}
			p.Weight = d.evidence("penalty weight")
			if m := d.count("evidence refs", maxEvidenceRefs); m > 0 {
				p.Evidence = make([]string, m)
				for j := range p.Evidence {
					p.Evidence[j] = d.str("evidence ref", maxStateRefLen)
				}
			}
		}
	}
	out.Accepted = d.uvarint("accepted")
	out.Rejected = d.uvarint("rejected")
	out.Missed = d.uvarint("missed")
	out.Resets = d.uvarint("resets")
	if version >= 3 {
		if n := d.count("timing window", TimingWindow); n > 0 {
			out.Timing = make([]uint32, n)
			for i := range out.Timing {
				r := d.uvarint("timing ratio")
				if r > maxTimingBP {
					d.fail("timing ratio %d exceeds %d", r, maxTimingBP)
				}
				out.Timing[i] = uint32(r)
			}
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrInvalidState, len(d.b))
	}
	// Reject non-minimal varints and other non-canonical forms.
	again := out.marshal(version)
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: not in canonical form", ErrInvalidState)
	}
	*st = out
	return nil
}
