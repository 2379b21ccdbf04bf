package storage

import (
	"context"
	"io"
)

// Batcher is the optional capability of a store that writes many small objects
// faster together than one at a time. A file:// Put syncs its object and its
// directory before it returns: for a tenant's thousands of small recordings those
// syncs are most of the time. A batch shares them between many objects.
type Batcher interface {
	// Batch starts a batch of writes; nil when the store cannot batch (a wrapper of
	// a store without the capability).
	Batch() Batch
}

// Batch writes objects that become visible together, later than their Put returns
// but never half written: an object appears under its key whole, and durable,
// before Flush returns (a caller that commits something naming the objects, a
// manifest, flushes first). A crash or a Close before then leaves at most
// temporary files, which Leftovers lists and prune removes.
//
// A batch may flush part of its objects on its own (it holds a bounded number
// waiting); an error of such a flush is returned by the Put that ran it and again
// by Flush.
type Batch interface {
	// Put writes the stream under key, to appear at the latest when Flush returns.
	// A failed or cancelled Put leaves nothing behind. Puts may run concurrently.
	Put(ctx context.Context, key string, r io.Reader) error
	// Flush makes every object put so far durable and visible under its key. It
	// must not run concurrently with Put.
	Flush(ctx context.Context) error
	// Close removes the objects put and not flushed: they never appear.
	Close() error
}

// BatchOf returns a batch of s when s can batch, else nil (write with Put).
func BatchOf(s Store) Batch {
	if b, ok := s.(Batcher); ok {
		return b.Batch()
	}
	return nil
}
