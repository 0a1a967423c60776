package oracle

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestRaftLogger checks the hclog bridge: Raft's messages reach the
// member's slog handler with its attributes, their key-value pairs and
// component, at the mapped level, filtered by the handler's level.
func TestRaftLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", "m1")
	h := RaftLogger(l)
	h.Debug("hidden", "k", 1)
	h.Named("transport").With("peer", "m2").Warn("failed to heartbeat", "err", "connection refused")
	h.Info("initial configuration", "servers", hclog.Fmt("%+v", []string{"m1", "m2"}))
	h.StandardLogger(nil).Print("[ERROR] raft: snapshot failed")
	if h.IsDebug() || !h.IsInfo() {
		t.Errorf("IsDebug %v, IsInfo %v; want false, true under an Info handler", h.IsDebug(), h.IsInfo())
	}
	h.SetLevel(hclog.Error)
	h.Warn("suppressed by SetLevel")
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="failed to heartbeat" member=m1 component=raft.transport peer=m2 err="connection refused"`,
		`level=ERROR msg="raft: snapshot failed" member=m1 component=raft`,
		`level=INFO msg="initial configuration" member=m1 component=raft servers="[m1 m2]"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"hidden", "suppressed"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("log has %q:\n%s", unwanted, out)
		}
	}
}
