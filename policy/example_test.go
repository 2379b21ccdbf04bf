package policy_test

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
)

// The incident purgeguard exists for: a tenant sync compares str UUIDs with uuid
// objects, nothing matches, and every tenant looks deleted. The policy refuses the set
// before anything is removed.
func ExampleDecide() {
	var db []uuid.UUID
	for i := range 10 {
		db = append(db, uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)}))
	}
	d := policy.Decide(policy.Input{
		Targets:       db,     // what the broken set difference produced
		Database:      db,     // every tenant
		SourceOfTruth: db[:9], // wazo-auth still lists nine of them
		Now:           time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC),
	}, policy.DefaultRules())
	fmt.Println("allowed:", d.Allowed)
	for _, v := range d.Violations {
		fmt.Println("refused:", v.Rule)
	}
	// Output:
	// allowed: false
	// refused: listed_by_source_of_truth
	// refused: max_tenants
	// refused: max_fraction
}
