package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
)

func TestDecideRetention(t *testing.T) {
	a := uuid.MustParse("0b0e5f3a-7d41-4c55-8e0f-3a9d6c2b1e02")
	b := uuid.MustParse("c3a1f2e4-9b7d-4e6f-8a5c-2d1b0e9f8a03")
	rules := policy.RetentionRules{MaxFraction: 0.5, MaxTenantFraction: 0.9, MinRows: 100}
	// tenant: cdr removed/held, then recording removed/held.
	tenant := func(id uuid.UUID, cdrRemoved, cdrHeld, recRemoved, recHeld int64) policy.RetentionTenant {
		return policy.RetentionTenant{Tenant: id, Kinds: []policy.RetentionKind{
			{Kind: "cdr", Days: 365, Held: cdrHeld, Removed: cdrRemoved},
			{Kind: "recording", Days: 7, Held: recHeld, Removed: recRemoved},
		}}
	}
	tests := []struct {
		name   string
		in     []policy.RetentionTenant
		rules  *policy.RetentionRules
		refuse []string // rules, in order
		detail string   // in the violations' details
	}{
		{name: "nothing to remove", in: []policy.RetentionTenant{tenant(a, 0, 1000, 0, 0), tenant(b, 0, 0, 0, 0)}},
		{name: "no tenant", in: nil},
		{name: "a nightly run", in: []policy.RetentionTenant{tenant(a, 3, 1000, 30, 250), tenant(b, 3, 1000, 30, 250)}},
		// all rows: 1250+1250 held; 1250 removed is exactly 0.5.
		{name: "all rows: exactly at max_fraction", in: []policy.RetentionTenant{tenant(a, 500, 1000, 125, 250), tenant(b, 500, 1000, 125, 250)}},
		{name: "all rows: one row over max_fraction", in: []policy.RetentionTenant{tenant(a, 501, 1000, 125, 250), tenant(b, 500, 1000, 125, 250)},
			refuse: []string{policy.RuleRetentionMaxFraction}, detail: "the purge would remove 1251 of the 2500 rows of 2 tenants (0.5004) > retention max_fraction 0.5: cdr 1001 of 2000, recording 250 of 500"},
		{name: "days_to_keep 0: everything", in: []policy.RetentionTenant{tenant(a, 1000, 1000, 250, 250), tenant(b, 1000, 1000, 250, 250)},
			refuse: []string{policy.RuleRetentionMaxFraction, policy.RuleRetentionMaxTenantFraction}, detail: "tenant " + a.String() + ": 1250 of 1250 rows (1; cdr 1000 of 1000 (365 days), recording 250 of 250 (7 days))"},
		// tenant a: 900 of 1000 is exactly 0.9; b keeps the total under 0.5.
		{name: "tenant: exactly at max_tenant_fraction", in: []policy.RetentionTenant{tenant(a, 900, 1000, 0, 0), tenant(b, 0, 1000, 0, 0)}},
		{name: "tenant: one row over max_tenant_fraction", in: []policy.RetentionTenant{tenant(a, 901, 1000, 0, 0), tenant(b, 0, 1000, 0, 0)},
			refuse: []string{policy.RuleRetentionMaxTenantFraction}, detail: "tenant " + a.String() + ": 901 of 1000 rows (0.901; cdr 901 of 1000 (365 days))"},
		{name: "tenant: kinds are summed", in: []policy.RetentionTenant{tenant(a, 800, 900, 100, 100), tenant(b, 0, 1000, 0, 0)},
			refuse: nil},
		// min_rows: 99 rows all gone is a tenant's last days; 100 is not.
		{name: "tenant: under min_rows", in: []policy.RetentionTenant{tenant(a, 99, 99, 0, 0), tenant(b, 0, 1000, 0, 0)}},
		{name: "tenant: at min_rows", in: []policy.RetentionTenant{tenant(a, 100, 100, 0, 0), tenant(b, 0, 1000, 0, 0)},
			refuse: []string{policy.RuleRetentionMaxTenantFraction}},
		{name: "all rows: under min_rows", in: []policy.RetentionTenant{tenant(a, 40, 40, 9, 9), tenant(b, 50, 50, 0, 0)}},
		{name: "all rows: at min_rows", in: []policy.RetentionTenant{tenant(a, 41, 41, 9, 9), tenant(b, 50, 50, 0, 0)},
			refuse: []string{policy.RuleRetentionMaxFraction}},
		{name: "limit 1 never refuses", in: []policy.RetentionTenant{tenant(a, 1000, 1000, 250, 250)},
			rules: &policy.RetentionRules{MaxFraction: 1, MaxTenantFraction: 1, MinRows: 0}},
		{name: "limit 0 refuses any removal", in: []policy.RetentionTenant{tenant(a, 1, 1000, 0, 0)},
			rules: &policy.RetentionRules{MaxFraction: 0, MaxTenantFraction: 1, MinRows: 0}, refuse: []string{policy.RuleRetentionMaxFraction}},
		{name: "limit 0 allows no removal", in: []policy.RetentionTenant{tenant(a, 0, 1000, 0, 0)},
			rules: &policy.RetentionRules{MaxFraction: 0, MaxTenantFraction: 0, MinRows: 0}},
		{name: "rules out of range", in: []policy.RetentionTenant{tenant(a, 0, 1000, 0, 0)},
			rules: &policy.RetentionRules{MaxFraction: 1.5, MaxTenantFraction: -0.1, MinRows: -1}, refuse: []string{policy.RuleInvalidRules},
			detail: "retention max_fraction 1.5 is outside 0..1, retention max_tenant_fraction -0.1 is outside 0..1, retention min_rows -1 is negative"},
		{name: "more removed than held", in: []policy.RetentionTenant{tenant(a, 11, 10, 0, 0)}, refuse: []string{policy.RuleInvalidInput},
			detail: "tenant " + a.String() + ", cdr: 11 removed of 10 held"},
		{name: "negative count", in: []policy.RetentionTenant{tenant(a, 0, 10, -1, 0)}, refuse: []string{policy.RuleInvalidInput}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules
			if tt.rules != nil {
				r = *tt.rules
			}
			d := policy.DecideRetention(policy.RetentionInput{Tenants: tt.in}, r)
			var got []string
			var details []string
			for _, v := range d.Violations {
				got = append(got, v.Rule)
				details = append(details, v.Detail)
			}
			if !slices.Equal(got, tt.refuse) || d.Allowed != (len(tt.refuse) == 0) {
				t.Fatalf("allowed %v, violations %v; want %v\n%s", d.Allowed, got, tt.refuse, strings.Join(details, "\n"))
			}
			if d.Violations == nil {
				t.Error("Violations is nil: JSON would say null")
			}
			if (d.Err() == nil) != d.Allowed {
				t.Errorf("Err() = %v with allowed %v", d.Err(), d.Allowed)
			}
			if tt.detail != "" && !strings.Contains(strings.Join(details, "\n"), tt.detail) {
				t.Errorf("details do not say %q:\n%s", tt.detail, strings.Join(details, "\n"))
			}
		})
	}
}

// The defaults are those documented in config.example.yaml and the README.
func TestDefaultRetentionRules(t *testing.T) {
	if got := policy.DefaultRetentionRules(); got != (policy.RetentionRules{MaxFraction: 0.5, MaxTenantFraction: 0.9, MinRows: 100}) {
		t.Errorf("DefaultRetentionRules() = %+v", got)
	}
}
