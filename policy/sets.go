package policy

import (
	"bytes"
	"slices"

	"github.com/google/uuid"
)

// idSet is a set of tenants. It is only ever read out through sorted, so that
// decisions do not depend on map order.
type idSet map[uuid.UUID]struct{}

func newIDSet(ids []uuid.UUID) idSet {
	s := make(idSet, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

func (s idSet) has(id uuid.UUID) bool {
	_, ok := s[id]
	return ok
}

// sorted returns the tenants in the order of their canonical strings; never nil.
func (s idSet) sorted() []uuid.UUID {
	out := make([]uuid.UUID, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	slices.SortFunc(out, compareIDs)
	return out
}

func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// filter returns the ids for which keep is true, in their order; never nil.
func filter(ids []uuid.UUID, keep func(uuid.UUID) bool) []uuid.UUID {
	out := []uuid.UUID{}
	for _, id := range ids {
		if keep(id) {
			out = append(out, id)
		}
	}
	return out
}

// Derive returns the tenants of the database that the source of truth does not
// list, sorted and deduplicated; never nil. Both sides are uuid.UUID, so the
// difference compares tenants, not their spellings.
func Derive(database, sourceOfTruth []uuid.UUID) []uuid.UUID {
	src := newIDSet(sourceOfTruth)
	return filter(newIDSet(database).sorted(), func(id uuid.UUID) bool { return !src.has(id) })
}
