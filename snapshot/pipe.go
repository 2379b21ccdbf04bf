package snapshot

import (
	"context"
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

func newEncoder(level int) (*zstd.Encoder, error) {
	// One goroutine per encoder: parallelism comes from the workers, and memory
	// stays bounded by their number.
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1))
}

// putCompressed streams what produce writes through enc into the object key, and
// returns the digest of the stored (compressed) bytes, taken on the way through.
// The producer and the upload run at once, joined by a pipe: no temporary file, no
// buffered object. Whichever side fails first unblocks the other.
func putCompressed(ctx context.Context, s storage.Store, key string, enc *zstd.Encoder, produce func(w io.Writer) error) (*archive.Digest, error) {
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		err := s.Put(ctx, key, pr)
		if err == nil {
			err = errUploadEnded // a producer still writing has nowhere to go
		}
		pr.CloseWithError(err)
		putDone <- err
	}()
	stored := archive.NewDigest()
	enc.Reset(io.MultiWriter(pw, stored))
	err := produce(enc)
	err = errors.Join(err, enc.Close())
	pw.CloseWithError(err) // nil: the upload sees EOF and completes
	perr := <-putDone
	if errors.Is(perr, errUploadEnded) {
		perr = nil
	}
	if err != nil {
		if perr != nil && errors.Is(err, perr) {
			return nil, perr // the upload failed first: the producer only saw the pipe close
		}
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	return stored, nil
}

var errUploadEnded = errors.New("upload ended")
