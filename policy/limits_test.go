package policy_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
)

func TestMaxTenants(t *testing.T) {
	db := tids(1, 100)
	for _, tc := range []struct {
		name       string
		limit, n   int
		wantDetail string // "" when allowed
	}{
		{"below", 5, 4, ""},
		{"exactly at", 5, 5, ""},
		{"one above", 5, 6, "6 targets > limit 5"},
		{"-1 disables", -1, 100, ""},
		{"0 allows no deletion", 0, 1, "1 target > limit 0"},
		{"0 with nothing to delete", 0, 0, ""},
		{"1 exactly at", 1, 1, ""},
		{"1 one above", 1, 2, "2 targets > limit 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := permissive()
			r.MaxTenants = tc.limit
			d := policy.Decide(policy.Input{Targets: tids(1, tc.n), Database: db}, r)
			checkOne(t, d, policy.RuleMaxTenants, tc.wantDetail)
			if v := find(d.Violations, policy.RuleMaxTenants); v != nil && (num(v.Got) != float64(tc.n) || num(v.Limit) != float64(tc.limit)) {
				t.Errorf("got/limit: got %v/%v, want %d/%d", num(v.Got), num(v.Limit), tc.n, tc.limit)
			}
		})
	}
}

func TestMaxFraction(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n, total   int
		fraction   float64
		wantDetail string
	}{
		{"10 of 100 at 0.10 is exactly at", 10, 100, 0.10, ""},
		{"11 of 100 at 0.10", 11, 100, 0.10, "11 targets of 100 database tenants = 0.11 > limit 0.1"},
		{"9 of 100 at 0.10", 9, 100, 0.10, ""},
		{"1 of 10 at 0.10 is exactly at", 1, 10, 0.10, ""},
		{"1 of 9 at 0.10", 1, 9, 0.10, "1 target of 9 database tenants = 0.1111 > limit 0.1"},
		{"1 of 11 at 0.10", 1, 11, 0.10, ""},
		// Multiplying would get these wrong: 0.3*10 and 0.07*100 are not integers in float64.
		{"3 of 10 at 0.3 is exactly at", 3, 10, 0.3, ""},
		{"4 of 10 at 0.3", 4, 10, 0.3, "4 targets of 10 database tenants = 0.4 > limit 0.3"},
		{"7 of 100 at 0.07 is exactly at", 7, 100, 0.07, ""},
		{"8 of 100 at 0.07", 8, 100, 0.07, "8 targets of 100 database tenants = 0.08 > limit 0.07"},
		{"1 of 3 at 1/3 is exactly at", 1, 3, 1.0 / 3, ""},
		{"10001 of 100000 at 0.1 prints the digits that differ", 10001, 100000, 0.1, "10001 targets of 100000 database tenants = 0.10001 > limit 0.1"},
		{"0 allows no deletion", 1, 100, 0, "1 target of 100 database tenants = 0.01 > limit 0"},
		{"0 with nothing to delete", 0, 100, 0, ""},
		{"1 allows everything", 100, 100, 1, ""},
		{"nothing to delete from an empty database", 0, 0, 0.10, ""},
		{"targets and an empty database", 3, 0, 0.10, "3 targets but the database has no tenants"},
		{"targets and an empty database at 1", 3, 0, 1, "3 targets but the database has no tenants"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := permissive()
			r.MaxFraction = tc.fraction
			d := policy.Decide(policy.Input{Targets: tids(1, tc.n), Database: tids(1, tc.total)}, r)
			var notes []string
			if tc.total < tc.n {
				notes = []string{policy.RuleAbsentFromDatabase}
			}
			if got := ruleNames(d.Notes); !slices.Equal(got, notes) && !(len(got) == 0 && len(notes) == 0) {
				t.Errorf("notes: got %v, want %v", got, notes)
			}
			checkOne(t, d, policy.RuleMaxFraction, tc.wantDetail)
			v := find(d.Violations, policy.RuleMaxFraction)
			switch {
			case v == nil:
			case tc.total == 0:
				if v.Got != nil || num(v.Limit) != tc.fraction {
					t.Errorf("got/limit: got %v/%v, want none/%v", num(v.Got), num(v.Limit), tc.fraction)
				}
			case num(v.Got) != float64(tc.n)/float64(tc.total) || num(v.Limit) != tc.fraction:
				t.Errorf("got/limit: got %v/%v, want %v/%v", num(v.Got), num(v.Limit), float64(tc.n)/float64(tc.total), tc.fraction)
			}
		})
	}
}

func TestShrunkenSourceOfTruth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size, prev int
		ratio      float64
		wantDetail string
	}{
		{"exactly at", 50, 100, 0.5, ""},
		{"one below", 49, 100, 0.5, "the source of truth lists 49 tenants, 0.49 of the 100 at the previous run < min_source_ratio 0.5"},
		{"one above", 51, 100, 0.5, ""},
		{"odd previous size rounds against the source", 2, 5, 0.5, "the source of truth lists 2 tenants, 0.4 of the 5 at the previous run < min_source_ratio 0.5"},
		{"3 of 10 at 0.3 is exactly at", 3, 10, 0.3, ""},
		{"2 of 10 at 0.3", 2, 10, 0.3, "the source of truth lists 2 tenants, 0.2 of the 10 at the previous run < min_source_ratio 0.3"},
		{"grown", 200, 100, 0.5, ""},
		{"previous size unknown", 1, 0, 0.5, ""},
		{"0 disables", 1, 100, 0, ""},
		{"1 refuses any shrinking", 99, 100, 1, "the source of truth lists 99 tenants, 0.99 of the 100 at the previous run < min_source_ratio 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := permissive()
			r.MinSourceRatio = tc.ratio
			src := tids(1, tc.size)
			d := policy.Decide(policy.Input{Database: src, SourceOfTruth: src, HasSourceOfTruth: true, PreviousSourceSize: tc.prev}, r)
			checkOne(t, d, policy.RuleShrunkenSourceOfTruth, tc.wantDetail)
		})
	}
	t.Run("duplicates in the source count once", func(t *testing.T) {
		src := append(tids(1, 49), tids(1, 49)...)
		d := policy.Decide(policy.Input{Database: tids(1, 49), SourceOfTruth: src, PreviousSourceSize: 100, Now: now}, policy.DefaultRules())
		checkOne(t, d, policy.RuleShrunkenSourceOfTruth, "the source of truth lists 49 tenants, 0.49 of the 100 at the previous run < min_source_ratio 0.5")
	})
	t.Run("empty is also shrunken", func(t *testing.T) {
		d := policy.Decide(policy.Input{Targets: tids(1, 0), HasSourceOfTruth: true, PreviousSourceSize: 100, Now: now}, policy.DefaultRules())
		want := []string{policy.RuleEmptySourceOfTruth, policy.RuleShrunkenSourceOfTruth}
		if got := ruleNames(d.Violations); !slices.Equal(got, want) {
			t.Errorf("violations: got %v, want %v", got, want)
		}
	})
}

func TestRecentlyActive(t *testing.T) {
	week := 7 * 24 * time.Hour
	boundary := now.Add(-week)
	for _, tc := range []struct {
		name       string
		within     time.Duration
		last       map[int]int64
		wantDetail string
	}{
		{"exactly at the boundary is not recent", week, map[int]int64{1: boundary.UnixNano()}, ""},
		{"one nanosecond after the boundary", week, map[int]int64{1: boundary.UnixNano() + 1}, "1 target active after 2024-04-24T12:00:00Z (active_within 168h0m0s): 00000000-0000-4000-8000-000000000001"},
		{"one nanosecond before the boundary", week, map[int]int64{1: boundary.UnixNano() - 1}, ""},
		{"now", week, map[int]int64{2: now.UnixNano()}, "1 target active after 2024-04-24T12:00:00Z (active_within 168h0m0s): 00000000-0000-4000-8000-000000000002"},
		{"in the future (clock skew)", week, map[int]int64{1: now.UnixNano() + int64(time.Hour)}, "1 target active after 2024-04-24T12:00:00Z (active_within 168h0m0s): 00000000-0000-4000-8000-000000000001"},
		{"several, in tenant order", week, map[int]int64{3: now.UnixNano(), 1: now.UnixNano(), 2: 0},
			"2 targets active after 2024-04-24T12:00:00Z (active_within 168h0m0s): 00000000-0000-4000-8000-000000000001, 00000000-0000-4000-8000-000000000003"},
		{"activity of a tenant that is not a target", week, map[int]int64{50: now.UnixNano()}, ""},
		{"no activity known", week, nil, ""},
		{"0 disables", 0, map[int]int64{1: now.UnixNano()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := permissive()
			r.ActiveWithin = tc.within
			in := policy.Input{Targets: tids(1, 3), Database: tids(1, 100), Now: now, LastActivity: activity(tc.last)}
			checkOne(t, policy.Decide(in, r), policy.RuleRecentlyActive, tc.wantDetail)
		})
	}
}

func TestProtected(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         policy.Input
		protected  []int
		wantDetail string
	}{
		{"not a target", policy.Input{Targets: tids(1, 3), Database: tids(1, 100)}, []int{4, 50}, ""},
		{"targets", policy.Input{Targets: tids(1, 3), Database: tids(1, 100)}, []int{3, 1, 50},
			"2 targets protected: 00000000-0000-4000-8000-000000000001, 00000000-0000-4000-8000-000000000003"},
		{"derived", policy.Input{Database: tids(1, 10), SourceOfTruth: tids(1, 8)}, []int{9},
			"1 target protected: 00000000-0000-4000-8000-000000000009"},
		{"absent from the database", policy.Input{Targets: tids(200, 200), Database: tids(1, 10)}, []int{200},
			"1 target protected: 00000000-0000-4000-8000-000000000200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := permissive()
			for _, n := range tc.protected {
				r.Protected = append(r.Protected, tid(n))
			}
			checkOne(t, policy.Decide(tc.in, r), policy.RuleProtected, tc.wantDetail)
		})
	}
}

func TestListedBySourceOfTruth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         policy.Input
		wantDetail string
	}{
		{"targets the source lacks", policy.Input{Targets: tids(9, 10), Database: tids(1, 10), SourceOfTruth: tids(1, 8)}, ""},
		{"a target the source lists", policy.Input{Targets: tids(8, 10), Database: tids(1, 10), SourceOfTruth: tids(1, 8)},
			"1 target still listed by the source of truth: 00000000-0000-4000-8000-000000000008"},
		{"given without the flag still counts", policy.Input{Targets: tids(7, 8), Database: tids(1, 10), SourceOfTruth: tids(1, 8), HasSourceOfTruth: false},
			"2 targets still listed by the source of truth: 00000000-0000-4000-8000-000000000007, 00000000-0000-4000-8000-000000000008"},
		{"no source of truth", policy.Input{Targets: tids(1, 10), Database: tids(1, 10)}, ""},
		{"derived never contradicts", policy.Input{Database: tids(1, 10), SourceOfTruth: tids(5, 20)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOne(t, policy.Decide(tc.in, permissive()), policy.RuleListedBySourceOfTruth, tc.wantDetail)
		})
	}
}

func TestNilUUID(t *testing.T) {
	in := policy.Input{Targets: append(tids(1, 1), tid(0), [16]byte{}), Database: tids(1, 10)}
	checkOne(t, policy.Decide(in, permissive()), policy.RuleNilUUID,
		"the nil UUID 00000000-0000-0000-0000-000000000000 is a target: a zero value, not a tenant")
}

func TestInvalidRules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(*policy.Rules)
		wantDetail string
	}{
		{"defaults are valid", func(*policy.Rules) {}, ""},
		{"max_tenants -2", func(r *policy.Rules) { r.MaxTenants = -2 }, "max_tenants -2 is below -1"},
		{"max_fraction negative", func(r *policy.Rules) { r.MaxFraction = -0.1 }, "max_fraction -0.1 is outside 0..1"},
		{"max_fraction above 1", func(r *policy.Rules) { r.MaxFraction = 1.5 }, "max_fraction 1.5 is outside 0..1"},
		{"max_fraction NaN", func(r *policy.Rules) { r.MaxFraction = math.NaN() }, "max_fraction NaN is outside 0..1"},
		{"min_source_ratio above 1", func(r *policy.Rules) { r.MinSourceRatio = 2 }, "min_source_ratio 2 is outside 0..1"},
		{"min_source_ratio NaN", func(r *policy.Rules) { r.MinSourceRatio = math.NaN() }, "min_source_ratio NaN is outside 0..1"},
		{"active_within negative", func(r *policy.Rules) { r.ActiveWithin = -1 }, "active_within -1ns is negative"},
		{"all at once", func(r *policy.Rules) {
			r.MaxTenants, r.MaxFraction, r.MinSourceRatio, r.ActiveWithin = -3, 2, -1, -time.Hour
		},
			"max_tenants -3 is below -1, max_fraction 2 is outside 0..1, min_source_ratio -1 is outside 0..1, active_within -1h0m0s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := policy.DefaultRules()
			tc.edit(&r)
			// Nothing to delete: even then, broken rules refuse.
			d := policy.Decide(policy.Input{Targets: tids(1, 0), Database: tids(1, 10), Now: now}, r)
			checkOne(t, d, policy.RuleInvalidRules, tc.wantDetail)
			err := r.Validate()
			if (err == nil) != (tc.wantDetail == "") || err != nil && err.Error() != "invalid policy rules: "+tc.wantDetail {
				t.Errorf("Validate: got %v, want %q", err, tc.wantDetail)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         policy.Input
		within     time.Duration
		wantDetail string
	}{
		{"now unset", policy.Input{Targets: tids(1, 1), Database: tids(1, 10)}, time.Hour, "now is not set, and active_within needs it"},
		{"now unset, activity rule disabled", policy.Input{Targets: tids(1, 1), Database: tids(1, 10)}, 0, ""},
		{"negative previous size", policy.Input{Targets: tids(1, 1), Database: tids(1, 10), PreviousSourceSize: -1, Now: now}, time.Hour,
			"previous_source_size -1 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := permissive()
			r.ActiveWithin = tc.within
			checkOne(t, policy.Decide(tc.in, r), policy.RuleInvalidInput, tc.wantDetail)
		})
	}
}

func TestNoTargets(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         policy.Input
		wantDetail string
	}{
		{"nothing given", policy.Input{Database: tids(1, 10)}, "no targets given and no source of truth to derive them from"},
		{"empty source without the flag is not given", policy.Input{Database: tids(1, 10), SourceOfTruth: tids(1, 0)}, "no targets given and no source of truth to derive them from"},
		{"explicitly nothing", policy.Input{Targets: tids(1, 0), Database: tids(1, 10)}, ""},
		{"derived nothing", policy.Input{Database: tids(1, 10), SourceOfTruth: tids(1, 10)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Decide(tc.in, policy.Rules{})
			checkOne(t, d, policy.RuleNoTargets, tc.wantDetail)
			if d.Targets == nil || len(d.Targets) != 0 {
				t.Errorf("targets: got %#v, want an empty list", d.Targets)
			}
		})
	}
}

func TestAbsentFromDatabaseIsANote(t *testing.T) {
	r := permissive()
	r.MaxTenants = 2
	d := policy.Decide(policy.Input{Targets: []uuid.UUID{tid(2), tid(300), tid(200)}, Database: tids(1, 10)}, r)
	want := "2 targets not in the database (nothing to delete): 00000000-0000-4000-8000-000000000200, 00000000-0000-4000-8000-000000000300"
	if v := find(d.Notes, policy.RuleAbsentFromDatabase); v == nil || v.Detail != want || !slices.Equal(v.Tenants, []uuid.UUID{tid(200), tid(300)}) {
		t.Errorf("notes: got %+v, want %s", d.Notes, want)
	}
	// They still count: max_tenants bounds what the caller asked for.
	if got := ruleNames(d.Violations); !slices.Equal(got, []string{policy.RuleMaxTenants}) {
		t.Errorf("violations: got %v, want [max_tenants]", got)
	}
	d = policy.Decide(policy.Input{Targets: tids(11, 11), Database: tids(1, 10)}, permissive())
	if !d.Allowed || len(d.Notes) != 1 {
		t.Errorf("Decide: got %+v, want allowed with one note", d)
	}
}
