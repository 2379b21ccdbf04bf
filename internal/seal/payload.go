package seal

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// Opening an age file in two steps: age reads and checks the header
// (age.DecryptHeader: the stanzas, the identity, the header MAC), and payloadReader
// reads the payload. age's own reader allocates two 64 KiB buffers for every object
// it opens (one more per chunk): a restore of a tenant's tens of thousands of small
// blobs made gigabytes of garbage, and the collector (GOGC 25, to keep memory flat)
// ran thousands of times. payloadReader decrypts with two pooled buffers.
//
// The payload is age's STREAM (age-encryption.org/v1): a 16-byte nonce, then
// ChaCha20-Poly1305 chunks of 64 KiB of plaintext under HKDF-SHA-256(file key,
// nonce, "payload"), the AEAD nonce being an 11-byte big-endian chunk counter and a
// last-chunk flag byte. It follows age's reader (internal/stream) rule for rule:
// the file ends with a chunk flagged last (a full one too), only the first and only
// chunk may be empty, nothing may follow it.

const (
	payloadChunk    = 64 << 10
	payloadEncChunk = payloadChunk + chacha20poly1305.Overhead
	payloadNonce    = 16
	maxHeader       = 64 << 10
)

var chunkPool = sync.Pool{New: func() any { return new([payloadEncChunk]byte) }}

// splitHeader reads an age header from r: every line up to and including the one
// that starts with "---" (the MAC line; stanza lines start with "->", their bodies
// are base64). age.DecryptHeader parses and checks it.
func splitHeader(r *bufio.Reader) ([]byte, error) {
	var hdr []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if err == io.EOF || err == bufio.ErrBufferFull {
				return nil, fmt.Errorf("age header: %w", io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		hdr = append(hdr, line...)
		if len(hdr) > maxHeader {
			return nil, errors.New("age header: longer than 64 KiB")
		}
		if bytes.HasPrefix(line, []byte("---")) {
			return hdr, nil
		}
	}
}

// payloadReader opens a STREAM payload; its nonce was read.
type payloadReader struct {
	aead   cipher.AEAD
	src    io.Reader
	br     *bufio.Reader          // pooled (openPayload's), returned at the end
	in     *[payloadEncChunk]byte // pooled, returned at the end
	out    *[payloadEncChunk]byte
	unread []byte
	nonce  [chacha20poly1305.NonceSize]byte
	err    error
}

func newPayloadReader(fileKey, nonce []byte, src io.Reader) (*payloadReader, error) {
	key, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return &payloadReader{aead: aead, src: src, in: chunkPool.Get().(*[payloadEncChunk]byte), out: chunkPool.Get().(*[payloadEncChunk]byte)}, nil
}

func (r *payloadReader) Read(p []byte) (int, error) {
	if len(r.unread) > 0 {
		n := copy(p, r.unread)
		r.unread = r.unread[n:]
		return n, nil
	}
	if r.err != nil {
		r.release()
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	last, err := r.readChunk()
	if err != nil {
		r.err = err
		r.release()
		return 0, err
	}
	n := copy(p, r.unread)
	r.unread = r.unread[n:]
	if last {
		// Nothing may follow the last chunk.
		var b [1]byte
		if _, err := io.ReadFull(r.src, b[:]); err == nil {
			r.err = errors.New("trailing data after end of encrypted file")
		} else if err != io.EOF {
			r.err = fmt.Errorf("non-EOF error reading after end of encrypted file: %w", err)
		} else {
			r.err = io.EOF
		}
	}
	return n, nil
}

// release gives the buffers back once nothing is left to hand out.
func (r *payloadReader) release() {
	if r.in != nil && len(r.unread) == 0 {
		chunkPool.Put(r.in)
		chunkPool.Put(r.out)
		r.in, r.out = nil, nil
		if r.br != nil {
			r.br.Reset(nil)
			headerReaders.Put(r.br)
			r.br, r.src = nil, nil
		}
	}
}

func (r *payloadReader) readChunk() (last bool, err error) {
	in := r.in[:]
	n, err := io.ReadFull(r.src, in)
	switch {
	case err == io.EOF:
		return false, io.ErrUnexpectedEOF // no chunk flagged last: cut short
	case err == io.ErrUnexpectedEOF:
		if r.nonce != [chacha20poly1305.NonceSize]byte{} && n == chacha20poly1305.Overhead {
			return false, errors.New("last chunk is empty")
		}
		in = in[:n]
		last = true
		r.nonce[len(r.nonce)-1] = 1
	case err != nil:
		return false, err
	}
	out, err := r.aead.Open(r.out[:0], r.nonce[:], in, nil)
	if err != nil && !last {
		// A full-length chunk may be the last.
		last = true
		r.nonce[len(r.nonce)-1] = 1
		out, err = r.aead.Open(r.out[:0], r.nonce[:], in, nil)
	}
	if err != nil {
		return false, errors.New("failed to decrypt and authenticate payload chunk, file may be corrupted or tampered with")
	}
	for i := len(r.nonce) - 2; i >= 0; i-- { // the 11-byte big-endian counter
		r.nonce[i]++
		if r.nonce[i] != 0 {
			break
		}
	}
	r.unread = out
	return last, nil
}
