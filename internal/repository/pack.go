package repository

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// PackCursor reads the frames of a manifest's packed files in file list order
// (the order the snapshot wrote them, archive's packOrder holds the list to it):
// each pack is opened once and read from its start to its end, once, hashed on
// the way and compared with the manifest when the cursor leaves it. Not safe for
// concurrent use.
type PackCursor struct {
	s     storage.Store
	m     *archive.Manifest
	cur   int // the open pack, -1 for none
	rc    io.ReadCloser
	br    *bufio.Reader
	sum   *archive.Digest
	pos   int64
	ended []bool // packs already read to their end
}

// packReadBuffer is the buffer between a pack and its frames: a pack is read
// sequentially, in large reads.
const packReadBuffer = 256 << 10

// NewPackCursor reads m's packs from s.
func NewPackCursor(s storage.Store, m *archive.Manifest) *PackCursor {
	return &PackCursor{s: s, m: m, cur: -1, ended: make([]bool, len(m.Packs))}
}

// Frame returns f's frame, read from its pack into a new slice: the entries
// asked for must come in file list order (some may be skipped). A pack that is
// missing, too short, or (once the cursor leaves it) not the one the manifest
// names, is an *archive.VerifyError naming it.
func (c *PackCursor) Frame(ctx context.Context, f archive.File) ([]byte, error) {
	p := f.Pack
	if p == nil || p.Index < 0 || p.Index >= len(c.m.Packs) {
		return nil, fmt.Errorf("file %s is not in a pack of snapshot %s", f.Path, c.m.ID)
	}
	if p.Index != c.cur {
		if err := c.leave(); err != nil {
			return nil, err
		}
		if c.ended[p.Index] {
			return nil, fmt.Errorf("pack %s: asked for again, out of the list's order", c.m.Packs[p.Index].Key)
		}
		if err := c.open(ctx, p.Index); err != nil {
			return nil, err
		}
	}
	key := c.m.Packs[c.cur].Key
	if p.Offset < c.pos {
		return nil, fmt.Errorf("pack %s: frame of %s at %d, before %d: out of the list's order", key, f.Path, p.Offset, c.pos)
	}
	if err := c.skip(p.Offset - c.pos); err != nil {
		return nil, err
	}
	frame := make([]byte, f.StoredBytes)
	n, err := io.ReadFull(c.br, frame)
	c.pos += int64(n)
	c.sum.Write(frame[:n])
	if err != nil {
		return nil, c.readError(err)
	}
	return frame, nil
}

func (c *PackCursor) open(ctx context.Context, i int) error {
	key := c.m.Packs[i].Key
	rc, err := c.s.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return &archive.VerifyError{Key: key, What: "missing object"}
	}
	if err != nil {
		return err
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(rc, packReadBuffer)
	} else {
		c.br.Reset(rc)
	}
	c.cur, c.rc, c.sum, c.pos = i, rc, archive.NewDigest(), 0
	return nil
}

func (c *PackCursor) skip(n int64) error {
	got, err := io.CopyN(c.sum, c.br, n)
	c.pos += got
	if err != nil {
		return c.readError(err)
	}
	return nil
}

func (c *PackCursor) readError(err error) error {
	key := c.m.Packs[c.cur].Key
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &archive.VerifyError{Key: key, What: "size", Want: fmt.Sprint(c.m.Packs[c.cur].StoredBytes), Got: fmt.Sprint(c.pos)}
	}
	var ve *archive.VerifyError
	if errors.As(err, &ve) {
		return err // a sealed view's authentication failure
	}
	return fmt.Errorf("read %s: %w", key, err)
}

// leave reads the open pack to its end and checks it against the manifest.
func (c *PackCursor) leave() error {
	if c.cur < 0 {
		return nil
	}
	defer func() {
		c.rc.Close()
		c.br.Reset(nil)
		c.ended[c.cur] = true
		c.cur, c.rc = -1, nil
	}()
	if _, err := io.Copy(c.sum, c.br); err != nil {
		return c.readError(err)
	}
	p := c.m.Packs[c.cur]
	return c.sum.Check(p.Key, p.SHA256, p.StoredBytes)
}

// Close reads the pack still open to its end and checks it: call it once every
// frame was taken, for the verdict on the last pack.
func (c *PackCursor) Close() error {
	return c.leave()
}

// Abandon releases the open pack without checking it.
func (c *PackCursor) Abandon() {
	if c.rc != nil {
		c.rc.Close()
		c.br.Reset(nil)
		c.cur, c.rc = -1, nil
	}
}

// CheckFrame decompresses a packed file's frame with dec and compares its content
// with the size and SHA-256 the manifest recorded; a mismatch names the pack.
func CheckFrame(dec *zstd.Decoder, m *archive.Manifest, f archive.File, frame []byte) error {
	key := m.Packs[f.Pack.Index].Key
	if err := dec.Reset(bytes.NewReader(frame)); err != nil {
		return &archive.VerifyError{Key: key, What: "decompress " + f.Path, Reason: err}
	}
	raw := archive.NewDigest()
	if _, err := io.Copy(raw, dec); err != nil {
		return &archive.VerifyError{Key: key, What: "decompress " + f.Path, Reason: err}
	}
	if err := raw.Check(key, f.SHA256, f.Size); err != nil {
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			ve.What += " of " + f.Path
		}
		return err
	}
	return nil
}

// FileContent opens the stored content of one saved file of m, decompressed: its
// blob, or its frame read from its pack (the pack read from its start to the
// frame: for one file; a walk over many takes a PackCursor). The content is not
// checked: hash it against f.SHA256 where it matters. Close releases the decoder.
func FileContent(ctx context.Context, s storage.Store, m *archive.Manifest, f archive.File) (io.ReadCloser, error) {
	var key string
	if f.Pack != nil {
		if f.Pack.Index < 0 || f.Pack.Index >= len(m.Packs) {
			return nil, fmt.Errorf("file %s is not in a pack of snapshot %s", f.Path, m.ID)
		}
		key = m.Packs[f.Pack.Index].Key
	} else {
		var err error
		if key, err = archive.BlobKeyHex(f.SHA256); err != nil {
			return nil, err
		}
	}
	rc, err := s.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &archive.VerifyError{Key: key, What: "missing object"}
	}
	if err != nil {
		return nil, err
	}
	var src io.Reader = rc
	if f.Pack != nil {
		if _, err := io.CopyN(io.Discard, rc, f.Pack.Offset); err != nil {
			rc.Close()
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		src = io.LimitReader(rc, f.StoredBytes)
	}
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		rc.Close()
		return nil, &archive.VerifyError{Key: key, What: "decompress", Reason: err}
	}
	return &contentReader{dec: dec, rc: rc}, nil
}

type contentReader struct {
	dec *zstd.Decoder
	rc  io.ReadCloser
}

func (r *contentReader) Read(p []byte) (int, error) { return r.dec.Read(p) }

func (r *contentReader) Close() error {
	r.dec.Close()
	return r.rc.Close()
}
