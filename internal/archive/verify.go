package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// VerifyError says that a stored object is not what its manifest promised. Callers
// branch on it (errors.As) to exit with the verification status and name the object.
type VerifyError struct {
	Key    string // the object
	What   string // what was compared: "sha256", "size", "rows", "decompress", "missing"
	Want   string
	Got    string
	Reason error // the underlying error, for decompression failures and the like
}

func (e *VerifyError) Error() string {
	switch {
	case e.Reason != nil:
		return fmt.Sprintf("verify %s: %s: %v", e.Key, e.What, e.Reason)
	case e.Want == "" && e.Got == "":
		return fmt.Sprintf("verify %s: %s", e.Key, e.What)
	default:
		return fmt.Sprintf("verify %s: %s mismatch: want %s, got %s", e.Key, e.What, e.Want, e.Got)
	}
}

func (e *VerifyError) Unwrap() error { return e.Reason }

// Digest hashes and counts what is written through it: wrap a stream in it on the way
// to storage so nothing is read twice to be checked.
type Digest struct {
	h hash.Hash
	n int64
}

// NewDigest returns an empty SHA-256 digest.
func NewDigest() *Digest { return &Digest{h: sha256.New()} }

func (d *Digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

// Size is the number of bytes written.
func (d *Digest) Size() int64 { return d.n }

// Sum is the SHA-256 of what was written.
func (d *Digest) Sum() [32]byte { return [32]byte(d.h.Sum(nil)) }

// Hex is Sum in lower-case hex, as manifests hold it.
func (d *Digest) Hex() string { s := d.Sum(); return hex.EncodeToString(s[:]) }

// Reset empties the digest, for the next stream: a digest per file of a
// million-file restore is a hash's state allocated per file.
func (d *Digest) Reset() { d.h.Reset(); d.n = 0 }

// Check compares a digest with what a manifest recorded for key.
func (d *Digest) Check(key, wantHex string, wantSize int64) error {
	if wantSize >= 0 && d.n != wantSize {
		return &VerifyError{Key: key, What: "size", Want: fmt.Sprint(wantSize), Got: fmt.Sprint(d.n)}
	}
	// Compared in a buffer of its own: Hex's strings, per file, are garbage.
	var sum [sha256.Size]byte
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], d.h.Sum(sum[:0]))
	if string(got[:]) != wantHex {
		return &VerifyError{Key: key, What: "sha256", Want: wantHex, Got: string(got[:])}
	}
	return nil
}

// RowCounter counts the rows of COPY text (one line per row: newlines inside values
// are escaped as \n, so every raw newline ends a row) and the bytes written through it.
type RowCounter struct {
	Rows  int64
	Bytes int64
	last  byte
}

func (c *RowCounter) Write(p []byte) (int, error) {
	c.Rows += int64(bytes.Count(p, newline))
	if len(p) > 0 {
		c.last = p[len(p)-1]
	}
	c.Bytes += int64(len(p))
	return len(p), nil
}

// Complete reports whether the text ended at a row boundary: a truncated stream that
// happens to decompress cleanly still shows here.
func (c *RowCounter) Complete() bool { return c.Bytes == 0 || c.last == '\n' }

var newline = []byte{'\n'}

var _ io.Writer = (*RowCounter)(nil)
