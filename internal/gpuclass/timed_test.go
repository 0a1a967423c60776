package gpuclass

import (
	"testing"
)

func TestTimedDimsHitTheTarget(t *testing.T) {
	for _, c := range Classes() {
		m, n, k := c.TimedDims(DefaultTimedTargetMillis)
		if k != TimedK || n%TimedLeafCells != 0 || m == 0 {
			t.Fatalf("%s: dims %d×%d×%d break the shape rules", c.Name, m, n, k)
		}
		e := c.TimedExpectedMillis(m, n, k)
		if e > DefaultTimedTargetMillis || e < DefaultTimedTargetMillis*98/100 {
			t.Errorf("%s: expected %d ms, want within 2%% below %d", c.Name, e, DefaultTimedTargetMillis)
		}
	}
	if m, n, k := (Class{}).TimedDims(0); m != 0 || n != 0 || k != 0 {
		t.Fatalf("zero target gives %d×%d×%d", m, n, k)
	}
}

func TestTimedDeadline(t *testing.T) {
	if got, want := TimedDeadline(4000), uint64(4000*125/100+NetworkAllowanceMillis+OracleAllowanceMillis); got != want {
		t.Fatalf("TimedDeadline(4000) = %d, want %d", got, want)
	}
	if got := TimedExpectedLatency(4000); got != 4000+NetworkAllowanceMillis+OracleAllowanceMillis {
		t.Fatalf("TimedExpectedLatency(4000) = %d", got)
	}
}

// TestTimedSeparatesThroughput checks the claim the deadline rule is built
// on: on the production target, hardware with at most two thirds of the
// claimed class's effective int8 throughput misses the claimed class's
// deadline even when it takes the whole network allowance for itself, and
// every honest class meets its own.
func TestTimedSeparatesThroughput(t *testing.T) {
	all := append(Classes(), HardwareModels()...)
	for _, claimed := range Classes() {
		m, n, k := claimed.TimedDims(DefaultTimedTargetMillis)
		e := claimed.TimedExpectedMillis(m, n, k)
		dl := TimedDeadline(e)
		if e+NetworkAllowanceMillis+OracleAllowanceMillis > dl {
			t.Errorf("honest %s: %d ms of work cannot meet its %d ms deadline", claimed.Name, e, dl)
		}
		for _, actual := range all {
			if actual.Int8GOPS*actual.GEMMEfficiencyPercent*3 > claimed.Int8GOPS*claimed.GEMMEfficiencyPercent*2 {
				continue
			}
			// The device work alone must overrun the deadline: a node
			// can make its own link look as slow as the whole allowance.
			if got := actual.TimedExpectedMillis(m, n, k); got <= dl {
				t.Errorf("%s claiming %s: %d ms of work meets the %d ms deadline", actual.Name, claimed.Name, got, dl)
			}
		}
	}
}
