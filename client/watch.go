package client

import (
	"context"
	"errors"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// WatchOptions configure WatchScores.
type WatchOptions struct {
	// Addresses limits the watch to these nodes; empty watches all.
	Addresses []string
	// OnReconnect, when set, is called with the error that ended a stream
	// before the watch reopens it. Changes applied while the stream was
	// down are not replayed: re-read the nodes you track (Node, Nodes) to
	// catch up.
	OnReconnect func(err error)
}

// WatchScores calls fn with each score or status change the member
// applies, in apply order, until ctx ends (it then returns ctx's error) or
// fn returns an error (returned as is). A stream that breaks, because the
// member restarted or the network failed, is reopened with backoff; a
// change at a Raft index older than one already delivered (a lagging
// member's replay) is skipped.
func (c *Client) WatchScores(ctx context.Context, opts WatchOptions, fn func(*truegpuv1.ScoreChange) error) error {
	var last uint64
	pause := c.opts.Backoff
	for {
		delivered, err := c.watchOnce(ctx, opts.Addresses, &last, fn)
		var ferr *callbackError
		if errors.As(err, &ferr) {
			return ferr.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if delivered {
			pause = c.opts.Backoff
		}
		if opts.OnReconnect != nil {
			opts.OnReconnect(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 16*c.opts.Backoff)
	}
}

// callbackError carries an error returned by the caller's function.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

func (c *Client) watchOnce(ctx context.Context, addrs []string, last *uint64, fn func(*truegpuv1.ScoreChange) error) (delivered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.reputation.WatchScores(ctx, &truegpuv1.WatchScoresRequest{Addresses: addrs})
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return delivered, err
		}
		ch := resp.GetChange()
		if ch == nil || ch.AppliedIndex < *last {
			continue
		}
		*last = ch.AppliedIndex
		delivered = true
		if err := fn(ch); err != nil {
			return delivered, &callbackError{err}
		}
	}
}
