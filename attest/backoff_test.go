package attest

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	wantCaps := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, c := range wantCaps {
		c *= time.Millisecond
		d := b.next()
		if d < c/2 || d > c {
			t.Fatalf("attempt %d: wait %v outside [%v, %v]", i, d, c/2, c)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: wait %v, want at most the minimum", d)
	}
	huge := backoff{min: time.Second, max: time.Hour, n: 200}
	if d := huge.next(); d < 30*time.Minute || d > time.Hour {
		t.Fatalf("after many failures: wait %v, want within [max/2, max]", d)
	}
}
