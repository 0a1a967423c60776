package oracle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/oracle/fsm"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		err     error
		code    codes.Code
		message string // substring the client sees
	}{
		{fmt.Errorf("%w: signed by 0x1", ErrBadSignature), codes.Unauthenticated, "SIGNATURE_INVALID"},
		{fmt.Errorf("%w: 0xabc", ErrUnknownNode), codes.PermissionDenied, "NODE_UNKNOWN"},
		{ErrRateLimited, codes.ResourceExhausted, "RATE_LIMITED"},
		{ErrOverloaded, codes.ResourceExhausted, "overloaded"},
		{ErrTooLarge, codes.InvalidArgument, "MESSAGE_TOO_LARGE"},
		{ErrUnknownNonce, codes.NotFound, "NONCE_UNKNOWN"},
		{ErrNonceReused, codes.AlreadyExists, "NONCE_REUSED"},
		{ErrNotCommitted, codes.FailedPrecondition, "NOT_COMMITTED"},
		{fmt.Errorf("%w: epoch 9", fsm.ErrNotFound), codes.NotFound, "epoch 9"},
		{fmt.Errorf("%w; the leader is m1 at 127.0.0.1:1", ErrNotLeader), codes.Unavailable, "the leader is m1"},
		{ErrOutcomeUnknown, codes.Unavailable, "outcome unknown"},
		{context.Canceled, codes.Canceled, ""},
		{errors.New("pebble: disk on fire at /var/lib/secret"), codes.Internal, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			st, _ := status.FromError(ToStatus(quietLog(), "/m", tc.err))
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.message)
			}
			if tc.code == codes.Internal && strings.Contains(st.Message(), "secret") {
				t.Fatal("internal detail leaked")
			}
		})
	}
}
