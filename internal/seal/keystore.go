package seal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/storage"
)

// KeysPrefix is the area of storage holding the tenant keys. It must never be under
// Object Lock: forgetting a tenant erases its key there.
const KeysPrefix = "keys/"

const (
	keyName       = "key.json"       // the tenant key record, one object: created whole or not at all
	forgottenName = "forgotten.json" // the tombstone Forget leaves
	keyFormat     = 1
	addressKeyLen = 32
	maxRecordSize = 64 << 10
)

// ErrNoKey is what reading a tenant without a key answers: nothing was ever sealed
// for it (its snapshots, if any, are plaintext).
var ErrNoKey = errors.New("no key")

// NoKeyError names the tenant without a key; it Is ErrNoKey and fs.ErrNotExist.
type NoKeyError struct{ Tenant uuid.UUID }

func (e *NoKeyError) Error() string { return fmt.Sprintf("seal: tenant %s has no key", e.Tenant) }

// Is makes errors.Is(err, ErrNoKey) and errors.Is(err, fs.ErrNotExist) true.
func (e *NoKeyError) Is(target error) bool { return target == ErrNoKey || target == fs.ErrNotExist }

// ErrForgotten is what every use of a forgotten tenant's key answers.
var ErrForgotten = errors.New("keys forgotten")

// ForgottenError says the tenant was crypto-shredded, and when: what was sealed for
// it can no longer be opened by anyone. It Is ErrForgotten.
type ForgottenError struct {
	Tenant uuid.UUID
	At     time.Time
}

func (e *ForgottenError) Error() string {
	return fmt.Sprintf("seal: tenant %s: keys forgotten on %s", e.Tenant, e.At.UTC().Format(time.DateOnly))
}

// Is makes errors.Is(err, ErrForgotten) true.
func (e *ForgottenError) Is(target error) bool { return target == ErrForgotten }

// ErrNotRecipient is what opening a tenant key with identities it was not sealed to
// answers.
var ErrNotRecipient = errors.New("not a recipient")

// keyRecord is keys/<tenant>/key.json. Everything a tenant's key is lives in this
// one object, created in one conditional write, so that two writers creating the
// same tenant's key end with one, and a crash cannot leave a recipient whose
// identity was never stored (objects sealed to a key no one could ever open).
type keyRecord struct {
	Version int       `json:"format"`
	Tenant  uuid.UUID `json:"tenant"`
	Created time.Time `json:"created"`
	Rotated time.Time `json:"rotated,omitzero"`
	// Recipient is the tenant's public key: writers seal to it.
	Recipient string `json:"recipient"`
	// AddressKey names the tenant's blobs (see TenantRecipient.BlobAddress). It is
	// readable by whoever can read this object: see the package README section.
	AddressKey []byte `json:"address_key"`
	// Identity is the tenant's private key, sealed (armored age) to Operators.
	Identity string `json:"identity"`
	// Operators are the recipients Identity is sealed to, sorted: Rotate skips a
	// tenant already sealed to exactly the new set, so an interrupted rotation can
	// be run again.
	Operators []string `json:"operators"`
}

// Format redacts the record: it holds the address key.
func (k keyRecord) Format(f fmt.State, _ rune) { fmt.Fprint(f, "seal.keyRecord(REDACTED)") }

type tombstone struct {
	Version   int       `json:"format"`
	Tenant    uuid.UUID `json:"tenant"`
	Forgotten time.Time `json:"forgotten"`
}

// KeyStore keeps the tenant keys in a store's keys/ area.
type KeyStore struct {
	store storage.Store
	er    storage.Erasable
	now   func() time.Time
}

// NewKeyStore uses the store's keys/ area, which must be erasable.
func NewKeyStore(s storage.Store) (*KeyStore, error) {
	er, ok := s.(storage.Erasable)
	if !ok {
		return nil, fmt.Errorf("seal: store %v cannot erase objects for good, which a tenant key store needs", s)
	}
	return &KeyStore{store: s, er: er, now: time.Now}, nil
}

func keyKey(tenant uuid.UUID) string       { return KeysPrefix + tenant.String() + "/" + keyName }
func forgottenKey(tenant uuid.UUID) string { return KeysPrefix + tenant.String() + "/" + forgottenName }

// Create makes the tenant's key, sealing its identity to the operators, unless it
// has one: then it returns that one (two writers racing end with the same key). A
// forgotten tenant gets no new key: its ForgottenError is returned.
func (ks *KeyStore) Create(ctx context.Context, tenant uuid.UUID, operators Recipients) (*TenantRecipient, error) {
	if tenant == uuid.Nil {
		return nil, errors.New("seal: the nil tenant gets no key")
	}
	if operators.Len() == 0 {
		return nil, errors.New("seal: no operator recipients to seal the tenant key to")
	}
	if err := ks.checkForgotten(ctx, tenant); err != nil {
		return nil, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("seal: tenant %s: generate a key: %w", tenant, err)
	}
	rec := keyRecord{Version: keyFormat, Tenant: tenant, Created: ks.now().UTC(), Recipient: id.Recipient().String(),
		AddressKey: make([]byte, addressKeyLen)}
	if _, err := rand.Read(rec.AddressKey); err != nil {
		return nil, fmt.Errorf("seal: tenant %s: generate an address key: %w", tenant, err)
	}
	if err := rec.seal(id, operators); err != nil {
		return nil, err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("seal: tenant %s: encode its key: %w", tenant, err)
	}
	err = ks.er.CreateErasable(ctx, keyKey(tenant), bytes.NewReader(body))
	created := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("seal: tenant %s: store its key: %w", tenant, err)
	}
	// Forget writes its tombstone, then erases the key. Looking again after our
	// write closes the race: either Forget's erase comes after our write and removes
	// it, or its tombstone is already there and we remove our own key here.
	if err := ks.checkForgotten(ctx, tenant); err != nil {
		if created {
			if eerr := ks.er.Erase(ctx, keyKey(tenant)); eerr != nil {
				return nil, errors.Join(err, fmt.Errorf("seal: tenant %s: erase the key made while it was forgotten: %w", tenant, eerr))
			}
		}
		return nil, err
	}
	if created {
		return rec.recipient()
	}
	return ks.Recipient(ctx, tenant)
}

// seal seals the identity to the operators into the record.
func (k *keyRecord) seal(id *age.X25519Identity, operators Recipients) error {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, operators.list...)
	if err != nil {
		return fmt.Errorf("seal: tenant %s: seal its identity to %s: %w", k.Tenant, operators, err)
	}
	if _, err := io.WriteString(w, id.String()); err != nil {
		return fmt.Errorf("seal: tenant %s: seal its identity: %w", k.Tenant, err)
	}
	if err := errors.Join(w.Close(), aw.Close()); err != nil {
		return fmt.Errorf("seal: tenant %s: seal its identity: %w", k.Tenant, err)
	}
	k.Identity = buf.String()
	k.Operators = slices.Clone(operators.text)
	return nil
}

func (k *keyRecord) recipient() (*TenantRecipient, error) {
	r, err := age.ParseX25519Recipient(k.Recipient)
	if err != nil {
		return nil, fmt.Errorf("seal: tenant %s: its key record's recipient: %w", k.Tenant, err)
	}
	if len(k.AddressKey) != addressKeyLen {
		return nil, fmt.Errorf("seal: tenant %s: its key record's address key is %d bytes, want %d", k.Tenant, len(k.AddressKey), addressKeyLen)
	}
	return &TenantRecipient{redactor: redactor{"seal.TenantRecipient"}, Tenant: k.Tenant, recipient: r, addressKey: slices.Clone(k.AddressKey)}, nil
}

// checkForgotten answers the tenant's ForgottenError when it has a tombstone.
func (ks *KeyStore) checkForgotten(ctx context.Context, tenant uuid.UUID) error {
	var t tombstone
	err := ks.read(ctx, forgottenKey(tenant), &t)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("seal: tenant %s: %w", tenant, err)
	case t.Tenant != tenant:
		return fmt.Errorf("seal: %s names tenant %s", forgottenKey(tenant), t.Tenant)
	}
	return &ForgottenError{Tenant: tenant, At: t.Forgotten}
}

// read decodes a small JSON object; a missing one is an error that Is fs.ErrNotExist.
func (ks *KeyStore) read(ctx context.Context, key string, v any) error {
	rc, err := ks.store.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxRecordSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if len(body) > maxRecordSize {
		return fmt.Errorf("read %s: longer than %d bytes", key, maxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The decoder's message may quote the text: never echo a key record.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("decode %s: not valid JSON at byte %d", key, se.Offset)
		case errors.As(err, &te):
			return fmt.Errorf("decode %s: field %s has the wrong type", key, te.Field)
		}
		return fmt.Errorf("decode %s: malformed", key)
	}
	return nil
}

// record reads the tenant's key record: a forgotten tenant's ForgottenError, a
// NoKeyError when there is none.
func (ks *KeyStore) record(ctx context.Context, tenant uuid.UUID) (*keyRecord, error) {
	if err := ks.checkForgotten(ctx, tenant); err != nil {
		return nil, err
	}
	var rec keyRecord
	err := ks.read(ctx, keyKey(tenant), &rec)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &NoKeyError{Tenant: tenant}
	case err != nil:
		return nil, fmt.Errorf("seal: tenant %s: %w", tenant, err)
	case rec.Version > keyFormat:
		return nil, fmt.Errorf("seal: tenant %s: key record format %d is newer than this build's %d", tenant, rec.Version, keyFormat)
	case rec.Tenant != tenant:
		// A record copied under another tenant would make two tenants share a key.
		return nil, fmt.Errorf("seal: %s names tenant %s", keyKey(tenant), rec.Tenant)
	}
	return &rec, nil
}

// Recipient is what a writer needs to seal the tenant's objects (no private key).
func (ks *KeyStore) Recipient(ctx context.Context, tenant uuid.UUID) (*TenantRecipient, error) {
	rec, err := ks.record(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return rec.recipient()
}

// Identity opens the tenant's private key with an operator's identities.
func (ks *KeyStore) Identity(ctx context.Context, tenant uuid.UUID, operator *Identities) (*TenantIdentity, error) {
	rec, err := ks.record(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return rec.open(operator)
}

func (k *keyRecord) open(operator *Identities) (*TenantIdentity, error) {
	if operator == nil || len(operator.list) == 0 {
		return nil, fmt.Errorf("seal: tenant %s: no operator identity to open its key (encryption.identity_file)", k.Tenant)
	}
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(k.Identity)), operator.list...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("seal: tenant %s: its key is sealed to %s, and none of the identities given is one of them: %w",
				k.Tenant, strings.Join(k.Operators, ","), ErrNotRecipient)
		}
		return nil, fmt.Errorf("seal: tenant %s: open its key: %w", k.Tenant, err)
	}
	text, err := io.ReadAll(io.LimitReader(r, 1<<10))
	if err != nil {
		return nil, fmt.Errorf("seal: tenant %s: open its key: %w", k.Tenant, err)
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("seal: tenant %s: its sealed key is not an X25519 identity", k.Tenant)
	}
	// The recipient is stored beside the sealed identity in clear: a record whose
	// recipient was replaced would have had writers seal to someone else's key.
	if id.Recipient().String() != k.Recipient {
		return nil, fmt.Errorf("seal: tenant %s: its key record's recipient does not match its identity (the record was altered)", k.Tenant)
	}
	return newTenantIdentity(k.Tenant, id), nil
}

// RotateResult counts what Rotate did.
type RotateResult struct {
	Resealed  int // tenant keys sealed again to the new recipients
	Unchanged int // already sealed to exactly them (an earlier, interrupted rotation)
	Forgotten int // forgotten tenants, skipped
}

// Rotate seals every tenant's identity again, to the new operator recipients, with
// the operator identities given; no object sealed for a tenant changes (its key
// stays the same). Each key record is replaced with every earlier version destroyed,
// so a recipient no longer listed can no longer open any tenant. It stops at the
// first tenant it cannot open; running it again after a fix carries on.
func (ks *KeyStore) Rotate(ctx context.Context, operator *Identities, to Recipients) (RotateResult, error) {
	var res RotateResult
	if to.Len() == 0 {
		return res, errors.New("seal: rotate: no new recipients")
	}
	tenants, err := ks.Tenants(ctx)
	if err != nil {
		return res, err
	}
	for _, tenant := range tenants {
		rec, err := ks.record(ctx, tenant)
		switch {
		case errors.Is(err, ErrForgotten), errors.Is(err, ErrNoKey):
			res.Forgotten++
			continue
		case err != nil:
			return res, err
		case slices.Equal(rec.Operators, to.text):
			res.Unchanged++
			continue
		}
		tid, err := rec.open(operator)
		if err != nil {
			return res, err
		}
		if err := rec.seal(tid.id, to); err != nil {
			return res, err
		}
		rec.Rotated = ks.now().UTC()
		body, err := json.Marshal(rec)
		if err != nil {
			return res, fmt.Errorf("seal: tenant %s: encode its key: %w", tenant, err)
		}
		if err := ks.er.ReplaceErasable(ctx, keyKey(tenant), bytes.NewReader(body)); err != nil {
			return res, fmt.Errorf("seal: tenant %s: store its resealed key: %w", tenant, err)
		}
		// As in Create: a Forget that came meanwhile wins.
		if err := ks.checkForgotten(ctx, tenant); errors.Is(err, ErrForgotten) {
			if eerr := ks.er.Erase(ctx, keyKey(tenant)); eerr != nil {
				return res, fmt.Errorf("seal: tenant %s: erase the key resealed while it was forgotten: %w", tenant, eerr)
			}
			res.Forgotten++
			continue
		}
		res.Resealed++
	}
	return res, nil
}

// Tenants lists the tenants with a key record or a tombstone, in key order.
func (ks *KeyStore) Tenants(ctx context.Context) ([]uuid.UUID, error) {
	var out []uuid.UUID
	err := ks.store.List(ctx, KeysPrefix, func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Key, KeysPrefix)
		dir, name, ok := strings.Cut(rest, "/")
		if !ok || name != keyName && name != forgottenName {
			return nil
		}
		t, err := uuid.Parse(dir)
		if err != nil || t.String() != dir {
			return nil // not ours
		}
		if len(out) == 0 || out[len(out)-1] != t {
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal: list tenant keys: %w", err)
	}
	return out, nil
}

// Forget crypto-shreds the tenant: it records when (a tombstone, kept), then erases
// its key record with every version of it. Everything ever sealed for the tenant
// is unreadable from then on, wherever it is stored; every later use of its key
// answers a ForgottenError with that date. Forgetting again keeps the first date
// and finishes an interrupted erase. A tenant without a key gets a tombstone too:
// no key will be made for it afterwards.
func (ks *KeyStore) Forget(ctx context.Context, tenant uuid.UUID) (time.Time, error) {
	t := tombstone{Version: keyFormat, Tenant: tenant, Forgotten: ks.now().UTC()}
	body, err := json.Marshal(t)
	if err != nil {
		return time.Time{}, err
	}
	if err := ks.er.CreateErasable(ctx, forgottenKey(tenant), bytes.NewReader(body)); errors.Is(err, fs.ErrExist) {
		var fe *ForgottenError
		if err := ks.checkForgotten(ctx, tenant); !errors.As(err, &fe) {
			return time.Time{}, fmt.Errorf("seal: tenant %s: read its tombstone: %w", tenant, err)
		}
		t.Forgotten = fe.At
	} else if err != nil {
		return time.Time{}, fmt.Errorf("seal: tenant %s: record that it is forgotten: %w", tenant, err)
	}
	if err := ks.er.Erase(ctx, keyKey(tenant)); err != nil {
		return time.Time{}, fmt.Errorf("seal: tenant %s: erase its key: %w", tenant, err)
	}
	return t.Forgotten, nil
}
