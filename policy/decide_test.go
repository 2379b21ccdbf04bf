package policy_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
)

func TestDefaultRules(t *testing.T) {
	got := policy.DefaultRules()
	want := policy.Rules{MaxTenants: 5, MaxFraction: 0.10, MinSourceRatio: 0.5, Protected: []uuid.UUID{}, ActiveWithin: 7 * 24 * time.Hour}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultRules: got %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: got %v, want nil", err)
	}
}

// The zero Rules allow no deletion: forgetting to configure is not permission.
func TestZeroRulesAllowNoDeletion(t *testing.T) {
	d := policy.Decide(policy.Input{Targets: tids(1, 1), Database: tids(1, 1000)}, policy.Rules{})
	want := []string{policy.RuleMaxTenants, policy.RuleMaxFraction}
	if got := ruleNames(d.Violations); d.Allowed || !slices.Equal(got, want) {
		t.Errorf("Decide: got allowed %v, violations %v, want refused by %v", d.Allowed, got, want)
	}
}

func TestAllowed(t *testing.T) {
	db := tids(1, 100)
	d := policy.Decide(policy.Input{
		Database:           db,
		SourceOfTruth:      tids(4, 100),
		HasSourceOfTruth:   true,
		PreviousSourceSize: 100,
		LastActivity:       activity(map[int]int64{1: now.Add(-30 * 24 * time.Hour).UnixNano(), 50: now.UnixNano()}),
		Now:                now,
	}, policy.DefaultRules())
	if !d.Allowed || d.Err() != nil {
		t.Fatalf("Decide: got %+v, err %v, want allowed", d, d.Err())
	}
	if want := tids(1, 3); !slices.Equal(d.Targets, want) {
		t.Errorf("targets: got %v, want %v", d.Targets, want)
	}
	if d.Violations == nil || len(d.Violations) != 0 || d.Notes != nil {
		t.Errorf("violations, notes: got %#v, %#v, want empty and nil", d.Violations, d.Notes)
	}
}

func TestTargetsSortedAndDeduplicated(t *testing.T) {
	in := policy.Input{Targets: []uuid.UUID{tid(3), tid(1), tid(3), tid(2), tid(1)}, Database: tids(1, 10)}
	d := policy.Decide(in, permissive())
	if want := tids(1, 3); !slices.Equal(d.Targets, want) {
		t.Errorf("targets: got %v, want %v", d.Targets, want)
	}
}

func TestDerive(t *testing.T) {
	for _, tc := range []struct {
		name          string
		database, src []uuid.UUID
		want          []uuid.UUID
	}{
		{"difference, sorted", []uuid.UUID{tid(5), tid(1), tid(3), tid(2)}, []uuid.UUID{tid(2), tid(9)}, []uuid.UUID{tid(1), tid(3), tid(5)}},
		{"duplicates", []uuid.UUID{tid(1), tid(1), tid(2)}, []uuid.UUID{tid(2), tid(2)}, []uuid.UUID{tid(1)}},
		{"nothing missing", tids(1, 3), tids(1, 3), []uuid.UUID{}},
		{"empty source", tids(1, 3), nil, tids(1, 3)},
		{"empty database", nil, tids(1, 3), []uuid.UUID{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := policy.Derive(tc.database, tc.src)
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("Derive: got %#v, want %v", got, tc.want)
			}
		})
	}
}

// everythingWrong breaks every rule at once, in shuffled order.
func everythingWrong(rng *rand.Rand) (policy.Input, policy.Rules) {
	shuffled := func(ids []uuid.UUID) []uuid.UUID {
		ids = slices.Clone(ids)
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		return ids
	}
	in := policy.Input{
		Targets:            shuffled(append(tids(1, 12), uuid.Nil, tid(500), tid(400))),
		Database:           shuffled(tids(1, 20)),
		SourceOfTruth:      shuffled(append(tids(10, 12), tids(15, 20)...)),
		HasSourceOfTruth:   true,
		PreviousSourceSize: 100,
		LastActivity:       activity(map[int]int64{2: now.UnixNano(), 7: now.UnixNano(), 9: now.Add(-30 * 24 * time.Hour).UnixNano()}),
		Now:                now,
	}
	r := policy.DefaultRules()
	r.MaxTenants = -5
	r.Protected = shuffled([]uuid.UUID{tid(11), tid(4), tid(99)})
	return in, r
}

func TestViolationsAllReportedInFixedOrder(t *testing.T) {
	in, r := everythingWrong(rand.New(rand.NewPCG(1, 2)))
	d := policy.Decide(in, r)
	want := []string{
		policy.RuleInvalidRules,
		policy.RuleShrunkenSourceOfTruth,
		policy.RuleListedBySourceOfTruth,
		policy.RuleNilUUID,
		policy.RuleProtected,
		policy.RuleRecentlyActive,
		policy.RuleMaxFraction,
	}
	if got := ruleNames(d.Violations); !slices.Equal(got, want) {
		t.Errorf("violations: got %v, want %v", got, want)
	}
	if got, want := ruleNames(d.Notes), []string{policy.RuleAbsentFromDatabase}; !slices.Equal(got, want) {
		t.Errorf("notes: got %v, want %v", got, want)
	}
	for _, v := range append(d.Violations, d.Notes...) {
		if !slices.IsSortedFunc(v.Tenants, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }) {
			t.Errorf("%s: got tenants %v, want them sorted", v.Rule, v.Tenants)
		}
	}
}

func TestDeterministic(t *testing.T) {
	in, r := everythingWrong(rand.New(rand.NewPCG(1, 2)))
	first := policy.Decide(in, r)
	for seed := range uint64(20) {
		in, r := everythingWrong(rand.New(rand.NewPCG(seed, seed)))
		if got := policy.Decide(in, r); !reflect.DeepEqual(got, first) {
			t.Fatalf("Decide with inputs shuffled by seed %d: got\n%+v\nwant\n%+v", seed, got, first)
		}
	}
}

func TestDecideDoesNotMutateItsInput(t *testing.T) {
	in, r := everythingWrong(rand.New(rand.NewPCG(3, 4)))
	// A derived decision too: Targets nil.
	derived := in
	derived.Targets = nil
	for _, in := range []policy.Input{in, derived} {
		wantIn := cloneInput(in)
		wantR := r
		wantR.Protected = slices.Clone(r.Protected)
		d := policy.Decide(in, r)
		if !reflect.DeepEqual(in, wantIn) || !reflect.DeepEqual(r, wantR) {
			t.Errorf("Decide modified its input: got %+v, %+v, want %+v, %+v", in, r, wantIn, wantR)
		}
		// Nor may the decision share storage with the input, where a caller's later
		// edit would change a decision already taken.
		if len(d.Targets) > 0 && len(in.Targets) > 0 && &d.Targets[0] == &in.Targets[0] {
			t.Error("Decision.Targets shares storage with Input.Targets")
		}
	}
}

func cloneInput(in policy.Input) policy.Input {
	out := in
	out.Targets = slices.Clone(in.Targets)
	out.Database = slices.Clone(in.Database)
	out.SourceOfTruth = slices.Clone(in.SourceOfTruth)
	out.LastActivity = make(map[uuid.UUID]time.Time, len(in.LastActivity))
	for k, v := range in.LastActivity {
		out.LastActivity[k] = v
	}
	return out
}

func TestRefusedError(t *testing.T) {
	d := policy.Decide(policy.Input{Targets: tids(1, 7), Database: tids(1, 1000)}, permissiveWith(func(r *policy.Rules) { r.MaxTenants = 5 }))
	err := d.Err()
	var re *policy.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Err: got %v, want a *RefusedError", err)
	}
	if want := "refused by policy: max_tenants: 7 targets > limit 5"; err.Error() != want {
		t.Errorf("Error: got %q, want %q", err, want)
	}
	if !reflect.DeepEqual(re.Decision, d) {
		t.Errorf("RefusedError.Decision: got %+v, want %+v", re.Decision, d)
	}
	if got := (&policy.RefusedError{}).Error(); got != "refused by policy" {
		t.Errorf("Error of an empty decision: got %q, want %q", got, "refused by policy")
	}
}

func permissiveWith(edit func(*policy.Rules)) policy.Rules {
	r := permissive()
	edit(&r)
	return r
}
