package archive

import "github.com/klauspost/compress/zstd"

// NewBlobEncoder returns the zstd encoder blobs are written with: one goroutine and
// a 1 MiB window, so that many uploads in flight stay small in memory.
func NewBlobEncoder(level int) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
}

// NewBlobDecoder returns a decoder for blobs (and table objects): one goroutine, a
// bounded window. Close it: it owns goroutines.
func NewBlobDecoder() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
}
