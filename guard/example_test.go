package guard_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/devtools/exampledb"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

func TestMain(m *testing.M) { exampledb.Main(m) }

// Guard a purge command: the deletion set passes the policy, the tenant is saved and
// verified, the command runs with the approvals in its environment, and the blast
// radius is checked after it.
func ExampleRun() {
	db := exampledb.Open() // a call-logd database with three tenants (test scaffolding)
	defer db.Close()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil {
		log.Fatal(err)
	}
	store, err := storage.NewFile(db.Dir + "/snapshots")
	if err != nil {
		log.Fatal(err)
	}
	doomed := db.Tenants[2]
	rules := policy.DefaultRules()
	rules.MaxFraction = 0.5 // one tenant of three
	res, err := guard.Run(ctx, cfg, store, guard.Options{
		Input:    guard.Input{Targets: []uuid.UUID{doomed}},
		Rules:    rules,
		Snapshot: snapshot.Options{Graph: db.Profile.Tenants, Files: db.Profile.Files},
		Command:  []string{"psql", db.URL, "-qc", "DELETE FROM call_logd_tenant WHERE uuid = '" + doomed.String() + "'"},
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Decision.Allowed, len(res.Snapshots), res.ExitCode, len(res.Losses))
	// Output: true 1 0 0
}
