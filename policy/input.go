package policy

import (
	"time"

	"github.com/google/uuid"
)

// Input is everything the decision depends on. Decide does not modify it.
type Input struct {
	// Targets are the tenants the caller wants to delete. Nil means "derive them":
	// the database minus the source of truth. A non-nil empty slice means "delete
	// nothing" and derives nothing.
	Targets []uuid.UUID
	// Database lists the tenants currently in the database (the root table).
	Database []uuid.UUID
	// SourceOfTruth lists the tenants the source of truth (wazo-auth) has. It is
	// given when HasSourceOfTruth is true or when it is non-empty: forgetting the
	// flag must not switch the contradiction check off. So "not given" is a nil or
	// empty SourceOfTruth with HasSourceOfTruth false, and "given and empty" needs
	// HasSourceOfTruth true.
	SourceOfTruth    []uuid.UUID
	HasSourceOfTruth bool
	// PreviousSourceSize is the number of tenants the source of truth listed at the
	// previous run; 0 means unknown and disables shrunken_source_of_truth.
	PreviousSourceSize int
	// LastActivity is each tenant's latest activity; a missing or zero time means
	// no activity is known.
	LastActivity map[uuid.UUID]time.Time
	// Now is the time the activity window ends at. It is an input, not a clock
	// read, so that a decision can be replayed.
	Now time.Time
}

func (in Input) sourceGiven() bool { return in.HasSourceOfTruth || len(in.SourceOfTruth) > 0 }
