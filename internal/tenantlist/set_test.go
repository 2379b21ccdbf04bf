package tenantlist_test

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/tenantlist"
)

func TestSet(t *testing.T) {
	s := tenantlist.NewSet(uuidC, uuidA, uuidC)
	s.Add(uuidB, uuidA)
	if got, want := s.Len(), 3; got != want {
		t.Errorf("Len: got %d, want %d", got, want)
	}
	want := []uuid.UUID{uuidA, uuidB, uuidC}
	if got := s.Sorted(); !slices.Equal(got, want) {
		t.Errorf("Sorted: got %v, want %v", got, want)
	}
	if got := slices.Collect(s.All()); !slices.Equal(got, want) {
		t.Errorf("All: got %v, want %v", got, want)
	}
	if !s.Has(uuidB) || s.Has(uuid.Nil) {
		t.Errorf("Has: got %v for %v and %v for nil, want true and false", s.Has(uuidB), uuidB, s.Has(uuid.Nil))
	}

	db := tenantlist.NewSet(uuidA, uuidB, uuidC)
	src := tenantlist.NewSet(uuidB, uuid.Nil)
	if got, want := db.Minus(src).Sorted(), []uuid.UUID{uuidA, uuidC}; !slices.Equal(got, want) {
		t.Errorf("Minus: got %v, want %v", got, want)
	}
	if got, want := db.Intersect(src).Sorted(), []uuid.UUID{uuidB}; !slices.Equal(got, want) {
		t.Errorf("Intersect: got %v, want %v", got, want)
	}
}

func TestSetZeroAndNil(t *testing.T) {
	var zero tenantlist.Set
	if zero.Len() != 0 || zero.Has(uuidA) || len(zero.Sorted()) != 0 || zero.Sorted() == nil {
		t.Errorf("zero Set: got len %d, sorted %#v, want an empty, non-nil list", zero.Len(), zero.Sorted())
	}
	zero.Add(uuidA)
	if !zero.Has(uuidA) {
		t.Errorf("zero Set after Add: got no %v, want it", uuidA)
	}
	var nilSet *tenantlist.Set
	if nilSet.Len() != 0 || nilSet.Has(uuidA) || nilSet.Sorted() == nil {
		t.Errorf("nil *Set: got len %d, sorted %#v, want empty", nilSet.Len(), nilSet.Sorted())
	}
	if got := zero.Minus(nilSet).Sorted(); !slices.Equal(got, []uuid.UUID{uuidA}) {
		t.Errorf("Minus nil: got %v, want [%v]", got, uuidA)
	}
	if got := nilSet.Minus(&zero).Len(); got != 0 {
		t.Errorf("nil Minus: got %d IDs, want 0", got)
	}
}

// The order is the order of canonical strings, so reports sort the same in Go,
// in PostgreSQL's uuid ordering and in sort(1).
func TestSetOrderIsStringOrder(t *testing.T) {
	ids := []uuid.UUID{uuid.Max, uuidC, uuid.Nil, uuidB, uuidA, uuid.MustParse("0b0e5f3a-7d41-4c55-8e0f-3a9d6c2b1e01")}
	got := tenantlist.NewSet(ids...).Sorted()
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = id.String()
	}
	slices.Sort(strs)
	for i := range got {
		if got[i].String() != strs[i] {
			t.Fatalf("Sorted: got %v, want the order of %v", got, strs)
		}
	}
}
