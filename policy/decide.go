package policy

import (
	"github.com/google/uuid"
)

// facts is what every check reads: the input turned into sets once.
type facts struct {
	in          Input
	r           Rules
	targets     []uuid.UUID // sorted, deduplicated, never nil
	undecidable bool        // no targets given and none derivable
	database    idSet
	source      idSet
	sourceGiven bool
}

// check evaluates one rule and returns its violation, or nil when it holds.
type check func(*facts) *Violation

// refusals run in the order of the Rule constants; every one runs, so that a
// refusal lists everything wrong at once, not one problem per attempt.
var refusals = []check{
	checkRules,
	checkInput,
	checkNoTargets,
	checkEmptySource,
	checkShrunkenSource,
	checkListedBySource,
	checkNilUUID,
	checkProtected,
	checkRecentlyActive,
	checkMaxTenants,
	checkMaxFraction,
}

var notes = []check{
	checkAbsentFromDatabase,
}

// Decide evaluates every rule on a deletion set and returns the decision.
//
// When in.Targets is nil and a source of truth is given, the targets are derived:
// Derive(in.Database, in.SourceOfTruth). When both are given, each target is
// checked against the source of truth: a target it lists is a contradiction, which
// is what catches a caller whose set difference went wrong. With neither, there is
// nothing to decide on and the decision refuses (no_targets), so that a caller
// that lost its input does not get a go-ahead for a purge nobody checked.
//
// A target absent from the database deletes nothing: it is a note
// (absent_from_database), not a refusal, but it still counts towards max_tenants
// and max_fraction, whose point is to bound what the caller meant to delete.
func Decide(in Input, r Rules) Decision {
	f := &facts{
		in:          in,
		r:           r,
		database:    newIDSet(in.Database),
		source:      newIDSet(in.SourceOfTruth),
		sourceGiven: in.sourceGiven(),
	}
	switch {
	case in.Targets != nil:
		f.targets = newIDSet(in.Targets).sorted()
	case f.sourceGiven:
		f.targets = Derive(in.Database, in.SourceOfTruth)
	default:
		f.targets, f.undecidable = []uuid.UUID{}, true
	}
	d := Decision{Targets: f.targets, Violations: run(refusals, f)}
	if n := run(notes, f); len(n) > 0 {
		d.Notes = n
	}
	d.Allowed = len(d.Violations) == 0
	return d
}

func run(checks []check, f *facts) []Violation {
	out := []Violation{}
	for _, c := range checks {
		if v := c(f); v != nil {
			out = append(out, *v)
		}
	}
	return out
}
