package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{fmt.Errorf("parse: %w", flag.ErrHelp), 0},
		{UsageError("-n %d is negative", -1), 2},
		{fmt.Errorf("verb: %w", UsageError("no file")), 2},
		{errors.New("connection refused"), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestUsageError(t *testing.T) {
	err := UsageError("-n %d is negative", -1)
	if !errors.Is(err, ErrUsage) || err.Error() != "usage: -n -1 is negative" {
		t.Fatalf("UsageError = %q (is ErrUsage: %v), want \"usage: -n -1 is negative\" wrapping ErrUsage", err, errors.Is(err, ErrUsage))
	}
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err      error
		code     int
		wantText string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{errors.New("disk full"), 1, "oracled: disk full\n"},
		{UsageError("no file"), 2, "oracled: usage: no file\n"},
	} {
		var b strings.Builder
		if code := report(&b, "oracled", tc.err); code != tc.code || b.String() != tc.wantText {
			t.Errorf("report(%v) = %d, %q; want %d, %q", tc.err, code, b.String(), tc.code, tc.wantText)
		}
	}
}
