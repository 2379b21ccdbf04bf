package policy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/policy"
)

var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// The incident: 100 tenants in the database, wazo-auth lists all 100, and the
// sync's set difference compared str with UUID, so it asked to delete all 100.
func TestIncidentStrVersusUUID(t *testing.T) {
	all := tids(1, 100)
	d := policy.Decide(policy.Input{
		Targets:          all,
		Database:         all,
		SourceOfTruth:    all,
		HasSourceOfTruth: true,
		Now:              now,
	}, policy.DefaultRules())

	if d.Allowed {
		t.Fatal("Decide: got allowed, want refused")
	}
	want := []string{policy.RuleListedBySourceOfTruth, policy.RuleMaxTenants, policy.RuleMaxFraction}
	if got := ruleNames(d.Violations); !slices.Equal(got, want) {
		t.Errorf("violations: got %v, want %v", got, want)
	}
	if v := find(d.Violations, policy.RuleListedBySourceOfTruth); v == nil || !slices.Equal(v.Tenants, all) {
		t.Errorf("listed_by_source_of_truth: got %+v, want all 100 tenants named", v)
	}
	if !slices.Equal(d.Targets, all) {
		t.Errorf("targets: got %d tenants, want the 100", len(d.Targets))
	}
	err := d.Err()
	if err == nil {
		t.Fatal("Err: got nil, want a *RefusedError")
	}
	wantErr := "refused by policy: listed_by_source_of_truth: 100 targets still listed by the source of truth: " +
		"00000000-0000-4000-8000-000000000001, 00000000-0000-4000-8000-000000000002, 00000000-0000-4000-8000-000000000003, " +
		"00000000-0000-4000-8000-000000000004, 00000000-0000-4000-8000-000000000005 and 95 more; " +
		"max_tenants: 100 targets > limit 5; " +
		"max_fraction: 100 targets of 100 database tenants = 1 > limit 0.1"
	if err.Error() != wantErr {
		t.Errorf("Err: got\n\t%s\nwant\n\t%s", err, wantErr)
	}
}

// The same sync with its difference derived here: it cannot go wrong that way.
func TestIncidentDerivedDeletesNothing(t *testing.T) {
	all := tids(1, 100)
	d := policy.Decide(policy.Input{Database: all, SourceOfTruth: all, HasSourceOfTruth: true, Now: now}, policy.DefaultRules())
	if !d.Allowed || len(d.Targets) != 0 || d.Targets == nil {
		t.Errorf("Decide: got %+v, want allowed with no targets", d)
	}
}

// wazo-auth answers with no tenants (an expired token, a failed query): derive
// says "delete everything", and the empty source of truth alone refuses it.
func TestEmptySourceOfTruthDerivesEverything(t *testing.T) {
	all := tids(1, 100)
	d := policy.Decide(policy.Input{Database: all, SourceOfTruth: nil, HasSourceOfTruth: true, Now: now}, policy.DefaultRules())
	want := []string{policy.RuleEmptySourceOfTruth, policy.RuleMaxTenants, policy.RuleMaxFraction}
	if got := ruleNames(d.Violations); d.Allowed || !slices.Equal(got, want) {
		t.Errorf("Decide: got allowed %v, violations %v, want refused by %v", d.Allowed, got, want)
	}
	if !slices.Equal(d.Targets, all) {
		t.Errorf("targets: got %d, want the 100 derived", len(d.Targets))
	}

	// Even with every size rule disabled.
	d = policy.Decide(policy.Input{Database: all, HasSourceOfTruth: true}, permissive())
	if got := ruleNames(d.Violations); d.Allowed || !slices.Equal(got, []string{policy.RuleEmptySourceOfTruth}) {
		t.Errorf("Decide, permissive rules: got allowed %v, violations %v, want refused by empty_source_of_truth", d.Allowed, got)
	}
	if !strings.Contains(d.Err().Error(), "the source of truth lists no tenants") {
		t.Errorf("Err: got %v, want it to say the source of truth lists no tenants", d.Err())
	}
}
