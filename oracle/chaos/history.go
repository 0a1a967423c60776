package chaos

import (
	"sync"
	"time"
)

// OpKind is the kind of a recorded operation.
type OpKind string

// Operation kinds of the register workload.
const (
	// OpWrite registers node Key with the devices that encode Value.
	OpWrite OpKind = "write"
	// OpReadLinear reads node Key with READ_CONSISTENCY_LINEARIZABLE.
	OpReadLinear OpKind = "read-linearizable"
	// OpReadStale reads node Key from the serving member's replica.
	OpReadStale OpKind = "read-stale"
)

// Outcome is what the client learned about an operation.
type Outcome int

// Outcomes.
const (
	// OK: the API answered yes (a write is acknowledged; a read returned).
	OK Outcome = iota
	// Failed: the API refused before anything was proposed (the write did
	// not happen).
	Failed
	// Indeterminate: the call timed out or the member lost its leadership;
	// the write may or may not have happened.
	Indeterminate
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	default:
		return "indeterminate"
	}
}

// Op is one recorded operation. Value is the value written, or the value
// read (0: the node is not registered).
type Op struct {
	Client  int
	Kind    OpKind
	Key     int
	Value   int
	Member  int
	Outcome Outcome
	// Call and Return are nanoseconds since the history began.
	Call, Return int64
	Err          string
}

// History records operations from many goroutines.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts an empty history.
func NewHistory() *History { return &History{start: time.Now()} }

// Now returns the history's clock: nanoseconds since it began (monotonic).
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the recorded operations.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Acks are the writes the API acknowledged and the report signatures
// clients saw; each must survive on every member.
type Acks struct {
	mu sync.Mutex
	// Registrations: node address (EIP-55) -> acknowledged.
	Registrations map[string]bool
	// Verdicts: challenge id (0x hex) -> accepted, as the API answered.
	Verdicts map[string]bool
	// Signatures: epoch -> signer addresses seen in a served report.
	Signatures map[uint64]map[string]bool
	// registrationAcks counts acknowledged registrations, repeats of one
	// node included.
	registrationAcks int
}

// NewAcks returns empty acknowledgements.
func NewAcks() *Acks {
	return &Acks{Registrations: map[string]bool{}, Verdicts: map[string]bool{}, Signatures: map[uint64]map[string]bool{}}
}

// Registered records an acknowledged registration.
func (a *Acks) Registered(addr string) {
	a.mu.Lock()
	a.Registrations[addr] = true
	a.registrationAcks++
	a.mu.Unlock()
}

// Verdict records an acknowledged verdict.
func (a *Acks) Verdict(id string, accepted bool) {
	a.mu.Lock()
	a.Verdicts[id] = accepted
	a.mu.Unlock()
}

// Signed records a signature seen in a served report.
func (a *Acks) Signed(epoch uint64, signer string) {
	a.mu.Lock()
	if a.Signatures[epoch] == nil {
		a.Signatures[epoch] = map[string]bool{}
	}
	a.Signatures[epoch][signer] = true
	a.mu.Unlock()
}

// Count returns the number of acknowledged operations: every acknowledged
// registration, each acknowledged verdict and each report signature seen.
func (a *Acks) Count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.registrationAcks + len(a.Verdicts)
	for _, s := range a.Signatures {
		n += len(s)
	}
	return n
}

// AckedWritesSince returns the number of acknowledged writes called at or
// after t (the history's clock).
func (h *History) AckedWritesSince(t int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, op := range h.ops {
		if op.Kind == OpWrite && op.Outcome == OK && op.Call >= t {
			n++
		}
	}
	return n
}
