package seal

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"filippo.io/age"
	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// TenantRecipient is what a writer needs for one tenant: its public key and its
// address key. It reads nothing.
type TenantRecipient struct {
	redactor
	Tenant     uuid.UUID
	recipient  *age.X25519Recipient
	addressKey []byte

	once    sync.Once
	session *session // made on first use: see session.go
	sessErr error

	macs sync.Pool // of HMAC-SHA256 under addressKey, reset for each address
}

// sealer is what every object is sealed to: the recipient's session.
func (r *TenantRecipient) sealer() (age.Recipient, error) {
	r.once.Do(func() { r.session, r.sessErr = newSession(r.recipient) })
	if r.sessErr != nil {
		return nil, fmt.Errorf("seal: tenant %s: start a session: %w", r.Tenant, r.sessErr)
	}
	return r.session, nil
}

// Recipient is the tenant's public key (age1…).
func (r *TenantRecipient) Recipient() string { return r.recipient.String() }

// BlobAddress names a file's blob within the tenant: HMAC-SHA256 of the content's
// SHA-256 under the tenant's address key, in hex. The same content gets the same
// address within a tenant (dedupe holds) and an unrelated one in another tenant,
// so blob names say nothing about contents across tenants.
//
// A snapshot asks it three times per blob: the keyed state is made once and reset
// (hmac.New hashes the key into both pads and allocates both digests every time).
func (r *TenantRecipient) BlobAddress(contentSHA256 [sha256.Size]byte) string {
	m, ok := r.macs.Get().(hash.Hash)
	if ok {
		m.Reset()
	} else {
		m = hmac.New(sha256.New, r.addressKey)
	}
	m.Write(contentSHA256[:])
	var sum [sha256.Size]byte
	addr := hex.EncodeToString(m.Sum(sum[:0]))
	r.macs.Put(m)
	return addr
}

// TenantIdentity opens what was sealed for one tenant.
type TenantIdentity struct {
	redactor
	Tenant uuid.UUID
	id     *age.X25519Identity
	open   *opener
}

func newTenantIdentity(tenant uuid.UUID, id *age.X25519Identity) *TenantIdentity {
	return &TenantIdentity{redactor: redactor{"seal.TenantIdentity"}, Tenant: tenant, id: id, open: newOpener(id)}
}

// sealedHeader begins every sealed stream, inside the encryption: the object it was
// sealed as. Opening it under another name or tenant fails.
func sealedHeader(tenant uuid.UUID, key string) []byte {
	return []byte("purgeguard-sealed/1\n" + tenant.String() + "\n" + key + "\n")
}

// NewWriter seals what is written to it for the tenant, as the object key, into w.
// Close ends the stream (its last chunk); it does not close w. Memory is one chunk
// (64 KiB) whatever the length.
func NewWriter(w io.Writer, to *TenantRecipient, key string) (io.WriteCloser, error) {
	r, err := to.sealer()
	if err != nil {
		return nil, err
	}
	wc, err := age.Encrypt(w, r)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", key, err)
	}
	if _, err := wc.Write(sealedHeader(to.Tenant, key)); err != nil {
		return nil, fmt.Errorf("seal %s: %w", key, err)
	}
	return wc, nil
}

// newSealingReader is NewWriter the other way round: reading it reads r sealed,
// under the session sess (the view's: see Objects.sealer). Storing an object needs
// no pipe and no goroutine then: the store reads the sealed stream itself. Memory
// is one pooled chunk (sealing.go).
func newSealingReader(r io.Reader, sess *session, to *TenantRecipient, key string) (io.Reader, error) {
	sr, err := newSealer(r, sess, sealedHeader(to.Tenant, key))
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", key, err)
	}
	return sr, nil
}

// NewReader opens a stream sealed for the identity's tenant as the object key.
// Every failure to open or read (a flipped byte, a truncated object, an object
// sealed for another tenant or as another key) is an *archive.VerifyError naming
// the key: the object is not what was stored there.
//
// A failure of r itself (the network, the disk) is not a verification failure: it
// is returned as it is, wrapped with the key.
func NewReader(r io.Reader, id *TenantIdentity, key string) (io.Reader, error) {
	src := &sourceReader{r: r}
	pr, err := openPayload(src, id)
	if err != nil {
		if src.failed(err) {
			return nil, fmt.Errorf("open %s: %w", key, err)
		}
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, &archive.VerifyError{Key: key, What: "decrypt", Reason: fmt.Errorf("not sealed for tenant %s", id.Tenant)}
		}
		return nil, &archive.VerifyError{Key: key, What: "decrypt", Reason: err}
	}
	want := sealedHeader(id.Tenant, key)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(pr, got); err != nil {
		if src.failed(err) {
			return nil, fmt.Errorf("open %s: %w", key, err)
		}
		return nil, &archive.VerifyError{Key: key, What: "decrypt", Reason: err}
	}
	if !bytes.Equal(got, want) {
		return nil, &archive.VerifyError{Key: key, What: "sealed name", Reason: errors.New("sealed as another object or tenant (moved or swapped)")}
	}
	return &openReader{r: pr, src: src, key: key}, nil
}

// openPayload reads an age file's header (age checks it: stanzas, identity, MAC)
// and returns the reader of its payload (payloadReader).
func openPayload(src io.Reader, id *TenantIdentity) (io.Reader, error) {
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(src)
	pr, err := openPayloadFrom(br, id)
	if err != nil {
		br.Reset(nil)
		headerReaders.Put(br)
		return nil, err
	}
	pr.br = br // given back with its buffers
	return pr, nil
}

// headerReaders are the bufio.Readers objects are opened through: a restore opens
// tens of thousands, each allocated 4 KiB of garbage.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func openPayloadFrom(br *bufio.Reader, id *TenantIdentity) (*payloadReader, error) {
	hdr, err := splitHeader(br)
	if err != nil {
		return nil, err
	}
	fileKey, err := age.DecryptHeader(hdr, id.open)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, payloadNonce)
	if _, err := io.ReadFull(br, nonce); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return newPayloadReader(fileKey, nonce, br)
}

// sourceReader remembers the error of the stored stream itself, so that it is told
// apart from what decryption finds wrong in the bytes.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (s *sourceReader) failed(err error) bool { return s.err != nil && errors.Is(err, s.err) }

// openReader turns the stream's read errors into verification errors naming the
// object. io.EOF is returned only once age has seen the authenticated last chunk.
type openReader struct {
	r   io.Reader
	src *sourceReader
	key string
}

func (o *openReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	switch {
	case err == nil || err == io.EOF:
	case o.src.failed(err):
		err = fmt.Errorf("read %s: %w", o.key, err)
	default:
		err = &archive.VerifyError{Key: o.key, What: "decrypt", Reason: err}
	}
	return n, err
}
