package seal

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sessions: one X25519 agreement for many objects.
//
// age wraps each object's file key to its recipient with a fresh X25519 agreement:
// two scalar multiplications to seal, one to open, about 0.1 ms in all. A tenant's
// snapshot seals one object per file, tens of thousands of small recordings, and
// those agreements were most of what encryption cost (issue 15's bench). So a
// snapshot's view (Objects) makes one session key the first time it seals and wraps it once,
// as age does, to the tenant's X25519 recipient; each object's file key is then
// wrapped under a key derived from the session key and a nonce of its own. Every
// object still carries all that opening it needs (the session key's standard age
// X25519 stanza inside its own), and a TenantIdentity opens the session key once
// per session, not once per object.
//
// The stanza, in an age header:
//
//	-> purgeguard-X25519-session <ephemeral share> <nonce>
//	<body: the session key's age X25519 stanza body (32 bytes) ‖ the file key sealed (32 bytes)>
//
// The file key is sealed with ChaCha20-Poly1305 under HKDF-SHA-256(session key,
// salt nonce, info sessionLabel) and a zero nonce, as age's own stanzas do: the
// derived key is used once (the 16-byte nonce is random per object). The session
// key, 16 random bytes like an age file key, lives in the writing process's memory
// while the snapshot is written: Objects.Commit zeroes and drops it. (NewWriter,
// for one-off writers, keeps one per TenantRecipient.)
const (
	sessionStanza = "purgeguard-X25519-session"
	sessionLabel  = "purgeguard.io/seal/X25519-session/v1"
	sessionKeyLen = 16 // age's file key size: what its X25519 stanza wraps
	sessionNonce  = 16
)

// session wraps file keys for one tenant under one session key.
type session struct {
	redactor
	wrapped *age.Stanza // the session key, wrapped to the tenant's recipient
	key     []byte
}

func newSession(to *age.X25519Recipient) (*session, error) {
	key := make([]byte, sessionKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	ss, err := to.Wrap(key)
	if err != nil {
		return nil, err
	}
	if len(ss) != 1 || ss[0].Type != "X25519" || len(ss[0].Args) != 1 {
		return nil, errors.New("seal: unexpected X25519 stanza from age")
	}
	return &session{redactor: redactor{"seal.session"}, wrapped: ss[0], key: key}, nil
}

// Wrap is age.Recipient's: the file key sealed under the session.
func (s *session) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	nonce := make([]byte, sessionNonce)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(sessionWrapKey(s.key, nonce))
	if err != nil {
		return nil, err
	}
	body := append([]byte{}, s.wrapped.Body...)
	body = aead.Seal(body, make([]byte, chacha20poly1305.NonceSize), fileKey, nil)
	return []*age.Stanza{{
		Type: sessionStanza,
		Args: []string{s.wrapped.Args[0], base64.RawStdEncoding.EncodeToString(nonce)},
		Body: body,
	}}, nil
}

func sessionWrapKey(key, nonce []byte) []byte {
	k, err := hkdf.Key(sha256.New, key, nonce, sessionLabel, chacha20poly1305.KeySize)
	if err != nil {
		panic(err) // 32 bytes of HKDF-SHA-256 cannot fail
	}
	return k
}

// maxSessions bounds an opener's cache of session keys: a restore meets its
// snapshot's session and those of the earlier snapshots whose blobs it reuses.
const maxSessions = 1024

// opener is age.Identity for a tenant: it opens objects sealed under a session,
// each session key once, and objects sealed to the tenant's recipient directly.
type opener struct {
	redactor
	id *age.X25519Identity

	mu       sync.Mutex
	sessions map[string][]byte // session key by its wrapped stanza (share ‖ body)
}

func newOpener(id *age.X25519Identity) *opener {
	return &opener{redactor: redactor{"seal.opener"}, id: id, sessions: map[string][]byte{}}
}

// Unwrap is age.Identity's.
func (o *opener) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		var fileKey []byte
		var err error
		switch s.Type {
		case sessionStanza:
			fileKey, err = o.unwrapSession(s)
		case "X25519":
			fileKey, err = o.id.Unwrap([]*age.Stanza{s})
		default:
			continue
		}
		if errors.Is(err, age.ErrIncorrectIdentity) {
			continue
		}
		return fileKey, err
	}
	return nil, age.ErrIncorrectIdentity
}

func (o *opener) unwrapSession(s *age.Stanza) ([]byte, error) {
	const wrappedLen = sessionKeyLen + chacha20poly1305.Overhead
	const bodyLen = wrappedLen + sessionKeyLen + chacha20poly1305.Overhead // age file keys are 16 bytes too
	if len(s.Args) != 2 || len(s.Body) != bodyLen {
		return nil, fmt.Errorf("invalid %s stanza", sessionStanza)
	}
	nonce, err := base64.RawStdEncoding.Strict().DecodeString(s.Args[1])
	if err != nil || len(nonce) != sessionNonce {
		return nil, fmt.Errorf("invalid %s stanza: nonce", sessionStanza)
	}
	id := s.Args[0] + " " + string(s.Body[:wrappedLen])
	o.mu.Lock()
	key, ok := o.sessions[id]
	o.mu.Unlock()
	if !ok {
		key, err = o.id.Unwrap([]*age.Stanza{{Type: "X25519", Args: s.Args[:1], Body: s.Body[:wrappedLen]}})
		if err != nil {
			return nil, err
		}
		o.mu.Lock()
		if len(o.sessions) >= maxSessions {
			clear(o.sessions)
		}
		o.sessions[id] = key
		o.mu.Unlock()
	}
	aead, err := chacha20poly1305.New(sessionWrapKey(key, nonce))
	if err != nil {
		return nil, err
	}
	fileKey, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), s.Body[wrappedLen:], nil)
	if err != nil {
		return nil, age.ErrIncorrectIdentity
	}
	return fileKey, nil
}
