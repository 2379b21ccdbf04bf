package snapshot_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/exampledb"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

func TestMain(m *testing.M) { exampledb.Main(m) }

// Save one tenant of a call-logd database, rows and recording files, to a directory.
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
	tenant := db.Tenants[0]
	saved, err := snapshot.Run(ctx, cfg, store, snapshot.Options{
		Tenants: []uuid.UUID{tenant},
		Reason:  "before deleting the tenant",
		Graph:   db.Profile.Tenants, // profile.CallLogd().Tenants on a Wazo host
		Files:   db.Profile.Files,
	})
	if err != nil {
		log.Fatal(err)
	}
	s := saved[0]
	fmt.Println(s.Tenant == tenant, s.Scope.Kind, s.Totals.Tables, "tables,", s.Totals.Files > 0, s.Totals.Missing)
	// Output: true tenant 8 tables, true 0
}
