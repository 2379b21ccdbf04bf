package seal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// ForgetOptions says which tenants to crypto-shred.
type ForgetOptions struct {
	// Tenants are forgotten by name.
	Tenants []uuid.UUID
	// OlderThan, when set, forgets every tenant with a key that the database no
	// longer holds and whose newest snapshot is older than this: when it was last
	// saved is when it was deleted, give or take the purge's own run.
	OlderThan time.Duration
	// Present are the tenants the database holds now (the caller reads them).
	Present map[uuid.UUID]bool
	// Force forgets a named tenant the database still holds.
	Force bool
	Now   time.Time
}

// ForgetTenant is one tenant a forget crypto-shreds, and what it makes unreadable.
type ForgetTenant struct {
	Tenant uuid.UUID `json:"tenant"`
	// InDatabase: the database holds it still (forgotten only with Force).
	InDatabase bool `json:"in_database"`
	// Sealed are its encrypted snapshots: unreadable by anyone once it is forgotten.
	Sealed []archive.SnapshotRef `json:"snapshots_unreadable"`
	// Plaintext are its snapshots written before encryption: forgetting does not
	// touch them, prune (or a delete) must.
	Plaintext []archive.SnapshotRef `json:"snapshots_plaintext"`
	// LastSnapshot is when its newest snapshot was taken.
	LastSnapshot time.Time `json:"last_snapshot,omitzero"`
	// Forgotten is when it was forgotten (an earlier forget's date is kept).
	Forgotten time.Time `json:"forgotten,omitzero"`
}

// ErrStillPresent refuses to forget a tenant the database still holds.
var ErrStillPresent = errors.New("tenant still in the database")

// PlanForget decides which tenants to forget and lists what each makes unreadable,
// reading only. A named tenant the database holds is refused (ErrStillPresent)
// unless Force; a forget naming no tenant at all is refused.
func PlanForget(ctx context.Context, ks *KeyStore, store storage.Store, o ForgetOptions) ([]ForgetTenant, error) {
	if len(o.Tenants) == 0 && o.OlderThan <= 0 {
		return nil, errors.New("forget: give --tenant or --older-than")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	var present []uuid.UUID
	for _, t := range o.Tenants {
		if t == uuid.Nil {
			return nil, errors.New("forget: the nil tenant")
		}
		if o.Present[t] {
			present = append(present, t)
		}
	}
	if len(present) > 0 && !o.Force {
		return nil, fmt.Errorf("forget: %v: %w: a tenant is forgotten once deleted (give --force to forget one still there)", present, ErrStillPresent)
	}
	tenants := slices.Clone(o.Tenants)
	if o.OlderThan > 0 {
		keyed, err := ks.Tenants(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range keyed {
			if !o.Present[t] && !slices.Contains(tenants, t) {
				tenants = append(tenants, t)
			}
		}
	}
	var out []ForgetTenant
	for _, t := range tenants {
		if err := ks.checkForgotten(ctx, t); errors.Is(err, ErrForgotten) && !slices.Contains(o.Tenants, t) {
			continue // forgotten already: --older-than has nothing left to do
		} else if err != nil && !errors.Is(err, ErrForgotten) {
			return nil, err
		}
		ft := ForgetTenant{Tenant: t, InDatabase: o.Present[t], Sealed: []archive.SnapshotRef{}, Plaintext: []archive.SnapshotRef{}}
		sums, broken, err := repository.ListAll(ctx, store, t)
		if err != nil {
			return nil, err
		}
		for _, s := range sums {
			if s.Sealed {
				ft.Sealed = append(ft.Sealed, s.SnapshotRef)
			} else {
				ft.Plaintext = append(ft.Plaintext, s.SnapshotRef)
			}
			if s.CreatedAt.After(ft.LastSnapshot) {
				ft.LastSnapshot = s.CreatedAt
			}
		}
		for _, b := range broken {
			ft.Sealed = append(ft.Sealed, b.SnapshotRef) // unknown: counted with those made unreadable
		}
		if !slices.Contains(o.Tenants, t) && (ft.LastSnapshot.IsZero() || o.Now.Sub(ft.LastSnapshot) < o.OlderThan) {
			continue // deleted too recently (or never saved: no date to go by)
		}
		out = append(out, ft)
	}
	return out, nil
}

// ForgetAll crypto-shreds each planned tenant (KeyStore.Forget), recording when in
// each; it stops at the first failure, returning the tenants done.
func (ks *KeyStore) ForgetAll(ctx context.Context, plan []ForgetTenant) ([]ForgetTenant, error) {
	var done []ForgetTenant
	for _, ft := range plan {
		at, err := ks.Forget(ctx, ft.Tenant)
		if err != nil {
			return done, err
		}
		ft.Forgotten = at
		done = append(done, ft)
	}
	return done, nil
}
