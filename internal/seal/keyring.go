package seal

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/storage"
)

// ErrNoIdentity is what opening a sealed object answers in a process given no
// operator identity: a snapshot host holds only recipients, by design.
var ErrNoIdentity = errors.New("no operator identity")

// NoIdentityError names the tenant whose objects could not be opened, and the fix.
// It Is ErrNoIdentity.
type NoIdentityError struct{ Tenant uuid.UUID }

func (e *NoIdentityError) Error() string {
	return fmt.Sprintf("seal: tenant %s: its snapshots are encrypted, and this process has no operator identity to open them: "+
		"set encryption.identity_file (the file `purgeguard keys init` wrote) where restores and verify --contents run", e.Tenant)
}

// Is makes errors.Is(err, ErrNoIdentity) true.
func (e *NoIdentityError) Is(target error) bool { return target == ErrNoIdentity }

// Keyring is what a process holds of encryption: the tenant key store, the
// operators' recipients (to make tenant keys: a process that writes snapshots), and
// an operator's identities (to open them: a process that restores). Either may be
// missing. It hands out per-tenant views of a store (Objects) that seal what is put
// and open what is got. Tenant keys are read once per Keyring.
type Keyring struct {
	redactor
	keys *KeyStore
	to   Recipients
	ids  *Identities

	mu         sync.Mutex
	recipients map[uuid.UUID]*TenantRecipient
	identities map[uuid.UUID]*TenantIdentity
}

// NewKeyring uses the key store; to may be empty (nothing sealed: Seal fails), ids
// nil (nothing opened: Open fails with a NoIdentityError).
func NewKeyring(keys *KeyStore, to Recipients, ids *Identities) *Keyring {
	return &Keyring{redactor: redactor{"seal.Keyring"}, keys: keys, to: to, ids: ids, recipients: map[uuid.UUID]*TenantRecipient{}, identities: map[uuid.UUID]*TenantIdentity{}}
}

// Sealing says whether new snapshots are sealed: operator recipients are known.
func (k *Keyring) Sealing() bool { return k != nil && k.to.Len() > 0 }

// CanOpen says whether an operator identity was given.
func (k *Keyring) CanOpen() bool { return k != nil && k.ids != nil }

// Keys is the tenant key store.
func (k *Keyring) Keys() *KeyStore { return k.keys }

// recipient is the tenant's public key, made first when create is set and it has
// none.
func (k *Keyring) recipient(ctx context.Context, tenant uuid.UUID, create bool) (*TenantRecipient, error) {
	k.mu.Lock()
	r := k.recipients[tenant]
	k.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var err error
	if create {
		r, err = k.keys.Create(ctx, tenant, k.to)
	} else {
		r, err = k.keys.Recipient(ctx, tenant)
	}
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.recipients[tenant] = r
	k.mu.Unlock()
	return r, nil
}

func (k *Keyring) identity(ctx context.Context, tenant uuid.UUID) (*TenantIdentity, error) {
	k.mu.Lock()
	id := k.identities[tenant]
	k.mu.Unlock()
	if id != nil {
		return id, nil
	}
	if k.ids == nil {
		// Forgotten first: no identity would open it anyway, and that is the news.
		if err := k.keys.checkForgotten(ctx, tenant); err != nil {
			return nil, err
		}
		return nil, &NoIdentityError{Tenant: tenant}
	}
	id, err := k.keys.Identity(ctx, tenant, k.ids)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.identities[tenant] = id
	k.mu.Unlock()
	return id, nil
}

// Seal returns a view of s in which the tenant's objects are sealed as they are put
// (its key is made on first use), for one snapshot: the view remembers what it
// stored, for the snapshot's envelope (Objects.Commit).
func (k *Keyring) Seal(ctx context.Context, s storage.Store, tenant uuid.UUID) (storage.Store, error) {
	if !k.Sealing() {
		return nil, errors.New("seal: no operator recipients (encryption.recipients): nothing can be sealed")
	}
	// Asked every time, cached key or not: a tenant forgotten since gets nothing
	// more sealed to its key.
	if err := k.keys.checkForgotten(ctx, tenant); err != nil {
		return nil, err
	}
	r, err := k.recipient(ctx, tenant, true)
	if err != nil {
		return nil, err
	}
	return newObjects(s, r, nil), nil
}

// Open returns a view of s in which the tenant's sealed objects are opened as they
// are got. Without an operator identity it fails with a NoIdentityError, for a
// forgotten tenant with its ForgottenError.
func (k *Keyring) Open(ctx context.Context, s storage.Store, tenant uuid.UUID) (storage.Store, error) {
	if k == nil {
		return nil, &NoIdentityError{Tenant: tenant}
	}
	id, err := k.identity(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r, err := k.recipient(ctx, tenant, false)
	if err != nil {
		return nil, err
	}
	return newObjects(s, r, id), nil
}
