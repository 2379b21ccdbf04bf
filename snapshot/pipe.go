package snapshot

import (
	"context"
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func newEncoder(level int) (*zstd.Encoder, error) {
	// One goroutine per encoder: parallelism comes from the workers, and memory
	// stays bounded by their number. What repeats in COPY text is within a few rows:
	// measured on call-logd's tables, a 512 KiB window stores the same bytes (within
	// 0.3%) at the same speed as 2 MiB or the 8 MiB default, and each encoder's
	// history is then 1 MiB instead of 4 (two encoders' histories were most of a
	// snapshot's heap).
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(512<<10))
}

// object is one stored object being written: what is written to it goes through
// the encoder into the upload, joined by a pipe — no temporary file, no buffered
// object — and is counted (rows, raw bytes) and hashed (stored bytes) on the way.
type object struct {
	pw      *io.PipeWriter
	enc     *zstd.Encoder
	stored  *archive.Digest
	rows    archive.RowCounter
	putDone chan error
}

// putter is where an object goes: a store, or a batch of one (storage.Batch).
type putter interface {
	Put(ctx context.Context, key string, r io.Reader) error
}

func openObject(ctx context.Context, s putter, key string, enc *zstd.Encoder) *object {
	pr, pw := io.Pipe()
	o := &object{pw: pw, enc: enc, stored: archive.NewDigest(), putDone: make(chan error, 1)}
	go func() {
		err := s.Put(ctx, key, pr)
		if err == nil {
			err = errUploadEnded // a producer still writing has nowhere to go
		}
		pr.CloseWithError(err)
		o.putDone <- err
	}()
	enc.Reset(io.MultiWriter(pw, o.stored))
	return o
}

func (o *object) Write(p []byte) (int, error) {
	n, err := o.enc.Write(p)
	o.rows.Write(p[:n])
	return n, err
}

// close ends the object. With a nil err the upload completes; otherwise it is
// abandoned and nothing is stored. Whichever side failed first is returned.
func (o *object) close(err error) error {
	err = errors.Join(err, o.enc.Close())
	o.pw.CloseWithError(err) // nil: the upload sees EOF and completes
	perr := <-o.putDone
	if errors.Is(perr, errUploadEnded) {
		perr = nil
	}
	if err != nil {
		if perr != nil && errors.Is(err, perr) {
			return perr // the upload failed first: the producer only saw the pipe close
		}
		return err
	}
	return perr
}

// putCompressed streams what produce writes into the object key.
func putCompressed(ctx context.Context, s putter, key string, enc *zstd.Encoder, produce func(w io.Writer) error) (*object, error) {
	o := openObject(ctx, s, key, enc)
	if err := o.close(produce(o)); err != nil {
		return nil, err
	}
	return o, nil
}

var errUploadEnded = errors.New("upload ended")
