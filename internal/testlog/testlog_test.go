package testlog_test

import (
	"testing"

	"github.com/truegpu/truegpu/internal/testlog"
)

// TestAfterTheTest: a logger of a finished test drops what it is given
// instead of panicking.
func TestAfterTheTest(t *testing.T) {
	var log interface{ Info(string, ...any) }
	t.Run("sub", func(t *testing.T) {
		l := testlog.New(t)
		l.Info("during the test", "k", 1)
		log = l
	})
	log.Info("after the test")
	w := testlog.Writer(t)
	if n, err := w.Write([]byte("a line\n")); n != 7 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
}
