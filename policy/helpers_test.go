package policy_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
)

// tid is tenant number n, with an ID that sorts by n.
func tid(n int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012d", n))
}

// tids is tenants from..to, inclusive; empty, not nil, when to < from.
func tids(from, to int) []uuid.UUID {
	out := []uuid.UUID{}
	for n := from; n <= to; n++ {
		out = append(out, tid(n))
	}
	return out
}

// permissive disables every rule that can be disabled, so that a test sees only
// the rule it sets.
func permissive() policy.Rules {
	return policy.Rules{MaxTenants: -1, MaxFraction: 1, MinSourceRatio: 0, ActiveWithin: 0}
}

func ruleNames(vs []policy.Violation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func find(vs []policy.Violation, rule string) *policy.Violation {
	for i := range vs {
		if vs[i].Rule == rule {
			return &vs[i]
		}
	}
	return nil
}

// num reads an optional number of a Violation: NaN when absent.
func num(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// checkOne checks that d breaks rule with wantDetail, or not at all when
// wantDetail is "", and that the decision is consistent with its violations.
func checkOne(t *testing.T, d policy.Decision, rule, wantDetail string) {
	t.Helper()
	v := find(d.Violations, rule)
	switch {
	case wantDetail == "" && v != nil:
		t.Errorf("%s: got %q, want no violation", rule, v.Detail)
	case wantDetail != "" && v == nil:
		t.Errorf("%s: got no violation (violations %v), want %q", rule, ruleNames(d.Violations), wantDetail)
	case v != nil && v.Detail != wantDetail:
		t.Errorf("%s: got detail\n\t%s\nwant\n\t%s", rule, v.Detail, wantDetail)
	}
	if d.Allowed != (len(d.Violations) == 0) || d.Violations == nil {
		t.Errorf("decision: got allowed %v with violations %#v, want allowed exactly when there are none", d.Allowed, d.Violations)
	}
}

// activity maps tenant numbers to Unix nanoseconds; 0 is the zero time.
func activity(m map[int]int64) map[uuid.UUID]time.Time {
	if m == nil {
		return nil
	}
	out := map[uuid.UUID]time.Time{}
	for n, ns := range m {
		if ns == 0 {
			out[tid(n)] = time.Time{}
			continue
		}
		out[tid(n)] = time.Unix(0, ns).UTC()
	}
	return out
}
