package archive

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// EnvelopeVersion is the version of the envelope this build writes. 2: its objects
// may be sealed under a per-run session stanza (purgeguard-X25519-session) that
// builds writing 1 cannot open; they stop at the version ("newer format") instead
// of taking the stanza for tampering.
const EnvelopeVersion = 2

const envelopeName = "envelope.jsonl"

// EnvelopeKey is the key of an encrypted snapshot's plaintext envelope.
func EnvelopeKey(tenant, id uuid.UUID) string {
	return SnapshotPrefix(tenant, id) + envelopeName
}

// Envelope is the plaintext part of an encrypted snapshot: what list, prune and a
// verify without a private key need, and nothing of the tenant's data (no table or
// file names, no row counts, no content digest, no reason text). Its objects are
// described as stored, sealed: a keyless verify re-reads each and checks its size
// and the SHA-256 of its bytes, which finds a lost, truncated or altered object.
// It cannot find a forged one: the envelope is in clear, so whoever can write the
// store can write a matching one (Object Lock is what keeps objects from being
// replaced; opening them with the tenant's key is what proves their content).
//
// It is JSON Lines: this header, then one SealedObject per line in strictly
// increasing key order (so a duplicate is found without remembering the keys), then
// nothing. Objects is the count of those lines, so a cut envelope is found.
type Envelope struct {
	Version   int       `json:"envelope_format"`
	Snapshot  uuid.UUID `json:"snapshot"`
	Tenant    uuid.UUID `json:"tenant"`
	CreatedAt time.Time `json:"created_at"`
	Kind      string    `json:"kind"` // ScopeTenant, ScopeRetention or ScopeTrash
	// Manifest is the sealed manifest itself.
	Manifest SealedObject `json:"manifest"`
	// Objects is how many object lines follow: every table object and every blob
	// the manifest names.
	Objects int64 `json:"objects"`
}

// SealedObject is one stored object as the store holds it.
type SealedObject struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`   // stored bytes
	SHA256 string `json:"sha256"` // of the stored bytes, hex
}

// Validate checks one object's fields.
func (o SealedObject) Validate() error {
	if o.Key == "" {
		return errors.New("empty key")
	}
	if o.Size < 0 {
		return fmt.Errorf("%s: negative size %d", o.Key, o.Size)
	}
	if b, err := hex.DecodeString(o.SHA256); err != nil || len(b) != 32 || hex.EncodeToString(b) != o.SHA256 {
		return fmt.Errorf("%s: sha256 %q is not 64 lowercase hex digits", o.Key, o.SHA256)
	}
	return nil
}

func (e *Envelope) validate() error {
	switch {
	case e.Version < 1:
		return fmt.Errorf("envelope_format %d", e.Version)
	case e.Snapshot == uuid.Nil:
		return errors.New("no snapshot id")
	case e.Tenant == uuid.Nil:
		return errors.New("no tenant")
	case e.CreatedAt.IsZero():
		return errors.New("no created_at")
	case e.Kind != ScopeTenant && e.Kind != ScopeRetention && e.Kind != ScopeTrash:
		return fmt.Errorf("kind %q", e.Kind)
	case e.Objects < 0:
		return fmt.Errorf("negative object count %d", e.Objects)
	}
	if err := e.Manifest.Validate(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// EncodeEnvelope writes the envelope and its objects, sorted by key; e.Objects is
// set from them. A duplicate key is refused: it would be checked twice and counted
// once.
func EncodeEnvelope(w io.Writer, e Envelope, objects []SealedObject) error {
	objects = slices.SortedFunc(slices.Values(objects), func(a, b SealedObject) int { return strings.Compare(a.Key, b.Key) })
	return EncodeEnvelopeEach(w, e, int64(len(objects)), func(fn func(SealedObject) error) error {
		for _, o := range objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	})
}

// EncodeEnvelopeEach writes the envelope and the n objects each hands out, which
// must come in strictly increasing key order: a snapshot of a million blobs lists
// them from temporary files, never from a slice. e.Objects is set to n; a count
// that does not match, or a key out of order or repeated, is an error.
func EncodeEnvelopeEach(w io.Writer, e Envelope, n int64, each func(fn func(SealedObject) error) error) error {
	e.Objects = n
	if err := e.validate(); err != nil {
		return fmt.Errorf("archive: envelope of %s: %w", e.Snapshot, err)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(&e); err != nil {
		return fmt.Errorf("archive: envelope of %s: %w", e.Snapshot, err)
	}
	var i int64
	prev := ""
	err := each(func(o SealedObject) error {
		if err := o.Validate(); err != nil {
			return fmt.Errorf("archive: envelope of %s: %w", e.Snapshot, err)
		}
		if i > 0 && o.Key <= prev {
			if o.Key == prev {
				return fmt.Errorf("archive: envelope of %s: %s listed twice", e.Snapshot, o.Key)
			}
			return fmt.Errorf("archive: envelope of %s: %s listed after %s (key order)", e.Snapshot, o.Key, prev)
		}
		if i++; i > n {
			return fmt.Errorf("archive: envelope of %s: more than the %d objects counted", e.Snapshot, n)
		}
		prev = o.Key
		if err := enc.Encode(&o); err != nil {
			return fmt.Errorf("archive: envelope of %s: %w", e.Snapshot, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if i != n {
		return fmt.Errorf("archive: envelope of %s: %d objects listed, %d counted", e.Snapshot, i, n)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("archive: envelope of %s: %w", e.Snapshot, err)
	}
	return nil
}

// maxEnvelopeLine bounds one line: a header or an object is a few hundred bytes.
const maxEnvelopeLine = 64 << 10

// DecodeEnvelope reads an envelope, handing each object to fn as it is read (a
// snapshot may name tens of thousands of blobs: none is held here). An error from
// fn stops it and is returned. A newer envelope format is ErrNewerFormat; an
// unknown field, a malformed line, a count that does not match the lines, or
// anything after them is an error.
func DecodeEnvelope(r io.Reader, fn func(SealedObject) error) (*Envelope, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxEnvelopeLine)
	line := 0
	next := func(v any) (bool, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return false, fmt.Errorf("archive: read envelope line %d: %w", line+1, err)
			}
			return false, nil
		}
		line++
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return false, fmt.Errorf("archive: envelope line %d: %w", line, err)
		}
		if dec.More() {
			return false, fmt.Errorf("archive: envelope line %d: more than one JSON value", line)
		}
		return true, nil
	}
	var e Envelope
	// The version first, alone, so that a newer envelope is named as such rather
	// than as one with unknown fields.
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("archive: read envelope: %w", err)
		}
		return nil, errors.New("archive: envelope is empty")
	}
	line++
	var v struct {
		Version int `json:"envelope_format"`
	}
	if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
		return nil, fmt.Errorf("archive: envelope line 1: %w", err)
	}
	if v.Version > EnvelopeVersion {
		return nil, fmt.Errorf("archive: envelope_format %d > %d: %w", v.Version, EnvelopeVersion, ErrNewerFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("archive: envelope line 1: %w", err)
	}
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("archive: envelope: %w", err)
	}
	prev := ""
	for n := int64(0); ; n++ {
		var o SealedObject
		ok, err := next(&o)
		if err != nil {
			return nil, err
		}
		if !ok {
			if n != e.Objects {
				return nil, fmt.Errorf("archive: envelope of %s lists %d objects, says %d (cut short?)", e.Snapshot, n, e.Objects)
			}
			return &e, nil
		}
		if n >= e.Objects {
			return nil, fmt.Errorf("archive: envelope of %s: line %d after its %d objects", e.Snapshot, line, e.Objects)
		}
		if err := o.Validate(); err != nil {
			return nil, fmt.Errorf("archive: envelope line %d: %w", line, err)
		}
		if n > 0 && o.Key <= prev {
			return nil, fmt.Errorf("archive: envelope line %d: %s is not after %s (objects are listed once, in key order)", line, o.Key, prev)
		}
		prev = o.Key
		if err := fn(o); err != nil {
			return nil, err
		}
	}
}
