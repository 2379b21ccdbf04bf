package policy

import (
	"strings"

	"github.com/google/uuid"
)

// Rule names: stable, for scripts and JSON consumers to branch on. Decide reports
// refusals in this order, causes before symptoms: a broken source of truth
// explains the contradictions and the size violations that follow from it.
const (
	RuleInvalidRules          = "invalid_rules"             // a Rules field is out of range
	RuleInvalidInput          = "invalid_input"             // Input cannot be evaluated: Now unset, negative size
	RuleNoTargets             = "no_targets"                // no targets given and none derivable
	RuleEmptySourceOfTruth    = "empty_source_of_truth"     // the source of truth lists no tenants
	RuleShrunkenSourceOfTruth = "shrunken_source_of_truth"  // it lists far fewer than at the previous run
	RuleListedBySourceOfTruth = "listed_by_source_of_truth" // a target the source of truth lists
	RuleNilUUID               = "nil_uuid"                  // the nil UUID is a target
	RuleProtected             = "protected"                 // a protected tenant is a target
	RuleRecentlyActive        = "recently_active"           // a target was active within ActiveWithin
	RuleMaxTenants            = "max_tenants"               // too many targets
	RuleMaxFraction           = "max_fraction"              // too large a share of the database
	RuleAbsentFromDatabase    = "absent_from_database"      // note only: a target the database lacks
)

// Decision is the outcome of Decide.
type Decision struct {
	Allowed    bool        `json:"allowed"`
	Targets    []uuid.UUID `json:"targets"`         // sorted, deduplicated; never nil
	Violations []Violation `json:"violations"`      // why it is refused; empty, not nil, when allowed
	Notes      []Violation `json:"notes,omitempty"` // findings that do not refuse
}

// Violation is one rule a deletion set breaks, or one note about it.
type Violation struct {
	Rule    string      `json:"rule"`
	Detail  string      `json:"detail"`            // a sentence with the numbers
	Tenants []uuid.UUID `json:"tenants,omitempty"` // every tenant concerned, sorted
	// Got and Limit are the numbers compared, for rules that compare numbers:
	// pointers, so that a limit of 0 is still written.
	Got   *float64 `json:"got,omitempty"`
	Limit *float64 `json:"limit,omitempty"`
}

// Err returns nil when the decision allows the deletion and a *RefusedError when
// it does not.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &RefusedError{Decision: d}
}

// RefusedError is a refused Decision, for callers that return errors; the CLI
// maps it to exit status 3.
type RefusedError struct{ Decision Decision }

// Error lists every violation: "refused by policy: max_tenants: 7 targets > limit
// 5; …". Details name at most a few tenants; Decision.Violations has them all.
func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Decision.Violations))
	for i, v := range e.Decision.Violations {
		parts[i] = v.Rule + ": " + v.Detail
	}
	if len(parts) == 0 {
		return "refused by policy"
	}
	return "refused by policy: " + strings.Join(parts, "; ")
}
