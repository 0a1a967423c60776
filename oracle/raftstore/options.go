package raftstore

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/truegpu/truegpu/internal/pebblelog"
)

// MaxEntrySizeLimit is the largest value Options.MaxEntrySize may take, and
// the largest Data or Extensions field the decoder accepts (1 GiB).
const MaxEntrySizeLimit = 1 << 30

// Options configure a Store. A nil *Options means all defaults; zero fields
// take their documented default.
type Options struct {
	// MaxEntrySize is the largest encoded size, in bytes, of one log entry
	// (Data plus Extensions plus a fixed 39-byte header). StoreLogs rejects
	// larger entries with ErrEntryTooLarge and writes nothing. Default
	// 64 MiB; at most MaxEntrySizeLimit.
	MaxEntrySize int

	// CacheSize is the size, in bytes, of the Pebble block cache that serves
	// GetLog for entries no longer in the memtable. Default 8 MiB.
	CacheSize int64

	// MemTableSize is the Pebble memtable size in bytes. Larger values
	// absorb longer write bursts before a flush. Default 4 MiB; at least
	// 64 KiB and below 4 GiB.
	MemTableSize uint64

	// FS is the file system the store lives on. Default DefaultFS (the
	// operating system). Tests use vfs.NewMem or an error-injecting FS.
	FS vfs.FS

	// Logger receives Pebble's informational messages (at Debug) and errors
	// (at Error), with component=raftstore/pebble. Pebble's fatal errors are
	// logged at Error and then panic; see the package documentation.
	// Default slog.Default(); an oracle member passes its own logger.
	Logger *slog.Logger
}

// DefaultFS is the file system of stores opened without Options.FS:
// vfs.Default. Production code leaves it alone; oracled replaces it only
// with its development flag -unsafe-disk-fault-file (which needs
// -unsafe-dev-keys), to make the Raft log's writes fail on command for the
// fault-injection campaigns (oracle/chaos).
var DefaultFS vfs.FS = vfs.Default

const (
	defaultMaxEntrySize = 64 << 20
	defaultCacheSize    = 8 << 20
	defaultMemTableSize = 4 << 20
	minMemTableSize     = 64 << 10
	maxMemTableSize     = 4 << 30
)

// EnsureDefaults returns a copy of o (nil allowed) with every zero field
// replaced by its default.
func (o *Options) EnsureDefaults() *Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.MaxEntrySize == 0 {
		c.MaxEntrySize = defaultMaxEntrySize
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = defaultMemTableSize
	}
	if c.FS == nil {
		c.FS = DefaultFS
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &c
}

// Validate reports every problem with o at once, joined with errors.Join;
// each wraps ErrInvalidOptions. Zero fields are valid (they mean the
// default). A nil *Options is valid.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	var errs []error
	if o.MaxEntrySize < 0 || o.MaxEntrySize > MaxEntrySizeLimit {
		errs = append(errs, fmt.Errorf("%w: MaxEntrySize %d must be between 1 and %d (0 means the default %d)",
			ErrInvalidOptions, o.MaxEntrySize, MaxEntrySizeLimit, defaultMaxEntrySize))
	} else if o.MaxEntrySize != 0 && o.MaxEntrySize < encodedOverhead {
		errs = append(errs, fmt.Errorf("%w: MaxEntrySize %d is below the %d byte entry header",
			ErrInvalidOptions, o.MaxEntrySize, encodedOverhead))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("%w: CacheSize %d must not be negative (0 means the default %d)",
			ErrInvalidOptions, o.CacheSize, defaultCacheSize))
	}
	if o.MemTableSize != 0 && (o.MemTableSize < minMemTableSize || o.MemTableSize >= maxMemTableSize) {
		errs = append(errs, fmt.Errorf("%w: MemTableSize %d must be at least %d and below %d (0 means the default %d)",
			ErrInvalidOptions, o.MemTableSize, minMemTableSize, uint64(maxMemTableSize), defaultMemTableSize))
	}
	return errors.Join(errs...)
}

// pebbleLogger is the log store's Pebble logger: through l, with Fatalf's
// panic beginning "raftstore: pebble fatal error: ".
func pebbleLogger(l *slog.Logger) pebblelog.Logger {
	return pebblelog.Logger{L: l, Component: "raftstore/pebble", FatalPrefix: "raftstore: pebble fatal error: "}
}
