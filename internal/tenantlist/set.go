package tenantlist

import (
	"bytes"
	"iter"
	"slices"

	"github.com/google/uuid"
)

// Set is a set of tenant IDs whose iteration is sorted, so that anything built
// from it (a deletion plan, a report, a log line) is the same from run to run.
// The zero value is an empty set ready to use; a nil *Set reads as empty.
type Set struct {
	m map[uuid.UUID]struct{}
}

// NewSet returns a set holding ids.
func NewSet(ids ...uuid.UUID) *Set {
	s := &Set{}
	s.Add(ids...)
	return s
}

// Add puts ids in the set.
func (s *Set) Add(ids ...uuid.UUID) {
	if s.m == nil {
		s.m = make(map[uuid.UUID]struct{}, len(ids))
	}
	for _, id := range ids {
		s.m[id] = struct{}{}
	}
}

// Has reports whether id is in the set.
func (s *Set) Has(id uuid.UUID) bool {
	if s == nil {
		return false
	}
	_, ok := s.m[id]
	return ok
}

// Len is the number of IDs in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.m)
}

// Sorted returns the IDs in byte order, which is the order of their canonical
// strings; never nil.
func (s *Set) Sorted() []uuid.UUID {
	out := make([]uuid.UUID, 0, s.Len())
	if s != nil {
		for id := range s.m {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, Compare)
	return out
}

// All iterates over the IDs in sorted order.
func (s *Set) All() iter.Seq[uuid.UUID] {
	return slices.Values(s.Sorted())
}

// Minus returns the IDs of s that are not in o: "tenants in the database minus
// tenants in the source of truth", on one type, so that it cannot go wrong the
// way the incident's did.
func (s *Set) Minus(o *Set) *Set {
	out := &Set{}
	for id := range s.items() {
		if !o.Has(id) {
			out.Add(id)
		}
	}
	return out
}

// Intersect returns the IDs in both s and o.
func (s *Set) Intersect(o *Set) *Set {
	out := &Set{}
	for id := range s.items() {
		if o.Has(id) {
			out.Add(id)
		}
	}
	return out
}

// items ranges over the map in no particular order, for building other sets.
func (s *Set) items() map[uuid.UUID]struct{} {
	if s == nil {
		return nil
	}
	return s.m
}

// Compare orders tenant IDs by bytes, for slices.SortFunc.
func Compare(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
