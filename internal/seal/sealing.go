package seal

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"io"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sealing an object as a reader, payloadReader's counterpart. age.EncryptReader
// hands out the header, the nonce and the payload as three reads (a file:// store
// wrote each with a write(2) of its own) and fills a bytes.Buffer that grows afresh
// for every object: a snapshot seals tens of thousands of small blobs, and that
// garbage and those writes were much of what sealing cost (issue 15's bench).
// sealingReader hands out the header, the nonce and the first chunk in one read
// from one pooled buffer.
//
// The header and nonce are age's own: age.Encrypt writes them (random file key
// wrapped by the recipient, header MAC, random nonce) into the buffer, and the
// writer it returns is dropped unused. The payload is age's STREAM as
// payloadReader opens it and age's writer seals it: 64 KiB chunks of plaintext,
// ChaCha20-Poly1305 under HKDF-SHA-256(file key, nonce, "payload"), the AEAD nonce
// an 11-byte big-endian chunk counter and a last-chunk flag; the last chunk is
// flagged (a full one too), and only an empty stream has an empty chunk.

// sealHeadroom is room before the first chunk for the header and the nonce: an
// age header with one session stanza is about 250 bytes. A longer one (several
// recipients) is handed out by a read of its own.
const sealHeadroom = 1024

var sealPool = sync.Pool{New: func() any { return new([sealHeadroom + payloadEncChunk + 1]byte) }}

// sealingReader reads src sealed: the age header and nonce, then the chunks.
type sealingReader struct {
	aead   cipher.AEAD
	src    io.Reader
	buf    *[sealHeadroom + payloadEncChunk + 1]byte // pooled, returned at the end
	head   []byte                                    // header and nonce not handed out yet
	prefix []byte                                    // plaintext read before src
	out    []byte                                    // sealed bytes not handed out yet
	nonce  [chacha20poly1305.NonceSize]byte
	carry  bool // tail, the byte read past the last full chunk, begins the next
	tail   byte
	last   bool
	err    error
}

// keyCapture is the recipient given to age.Encrypt: it wraps the file key with r
// and keeps it, for the payload's key.
type keyCapture struct {
	r       age.Recipient
	fileKey []byte
}

func (c *keyCapture) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	c.fileKey = append(c.fileKey[:0], fileKey...)
	return c.r.Wrap(fileKey)
}

// appender is an io.Writer appending to b.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// newSealer returns prefix then src, sealed to r as an age file.
func newSealer(src io.Reader, r age.Recipient, prefix []byte) (*sealingReader, error) {
	buf := sealPool.Get().(*[sealHeadroom + payloadEncChunk + 1]byte)
	head := &appender{b: buf[:0:sealHeadroom]} // past the headroom, append moves it to the heap
	kc := &keyCapture{r: r}
	if _, err := age.Encrypt(head, kc); err != nil { // the header, then the nonce
		sealPool.Put(buf)
		return nil, err
	}
	if len(kc.fileKey) == 0 || len(head.b) < payloadNonce {
		sealPool.Put(buf)
		return nil, errors.New("seal: age wrote no file key or no nonce")
	}
	nonce := head.b[len(head.b)-payloadNonce:]
	key, err := hkdf.Key(sha256.New, kc.fileKey, nonce, "payload", chacha20poly1305.KeySize)
	clear(kc.fileKey)
	if err != nil {
		sealPool.Put(buf)
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	clear(key)
	if err != nil {
		sealPool.Put(buf)
		return nil, err
	}
	return &sealingReader{aead: aead, src: src, buf: buf, head: head.b, prefix: prefix}, nil
}

func (r *sealingReader) Read(p []byte) (int, error) {
	if len(r.out) == 0 {
		switch {
		case r.err != nil:
			return 0, r.err
		case len(r.head) > sealHeadroom: // did not fit before the chunk
			r.out, r.head = r.head, nil
		case r.last:
			r.release()
			r.err = io.EOF
			return 0, io.EOF
		case len(p) == 0:
			return 0, nil
		default:
			if err := r.fill(); err != nil {
				r.release()
				r.err = err
				return 0, err
			}
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill reads and seals the next chunk into out, after the header for the first.
func (r *sealingReader) fill() error {
	const at = sealHeadroom
	b := r.buf[:]
	// A chunk's plaintext and one byte more: only the byte past a full chunk tells
	// that it is not the last.
	n := 0
	if r.carry {
		b[at], n = r.tail, 1
	}
	if len(r.prefix) > 0 {
		k := copy(b[at+n:at+payloadChunk+1], r.prefix)
		r.prefix, n = r.prefix[k:], n+k
	}
	m, err := io.ReadFull(r.src, b[at+n:at+payloadChunk+1])
	n += m
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	// Sealing writes its tag over the byte read past a full chunk: it is kept
	// aside until the next chunk is read, once this one is handed out.
	r.carry = n > payloadChunk
	if r.carry {
		r.tail, n = b[at+payloadChunk], payloadChunk
	} else {
		r.last = true
		r.nonce[len(r.nonce)-1] = 1
	}
	sealed := r.aead.Seal(b[at:at], r.nonce[:], b[at:at+n], nil)
	for i := len(r.nonce) - 2; ; i-- { // the 11-byte big-endian counter
		if i < 0 {
			return errors.New("seal: chunk counter wrapped around")
		}
		r.nonce[i]++
		if r.nonce[i] != 0 {
			break
		}
	}
	start := at
	if r.head != nil { // the first chunk: the header and nonce just before it
		start -= len(r.head)
		copy(b[start:at], r.head)
		r.head = nil
	}
	r.out = b[start : at+len(sealed)]
	return nil
}

// release gives the buffer back once the stream is over.
func (r *sealingReader) release() {
	if r.buf != nil {
		sealPool.Put(r.buf)
		r.buf, r.out = nil, nil
	}
}
