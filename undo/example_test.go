package undo_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/exampledb"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/undo"
)

func TestMain(m *testing.M) { exampledb.Main(m) }

// Bring back two tenants a purge removed, from their newest snapshots, both at once,
// each in its own transaction.
func ExamplePlan_Execute() {
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
	lost := db.Tenants[:2]
	if _, err := snapshot.Run(ctx, cfg, store, snapshot.Options{Tenants: lost, Graph: db.Profile.Tenants, Files: db.Profile.Files}); err != nil {
		log.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = ANY ($1)", lost); err != nil {
		log.Fatal(err)
	}

	plan, err := undo.NewPlan(ctx, store, undo.Selection{Tenants: lost})
	if err != nil {
		log.Fatal(err)
	}
	res, err := plan.Execute(ctx, cfg, store, undo.Options{Jobs: 2, Graph: db.Profile.Tenants, Files: db.Profile.Files})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(plan.Tenants), res.Restored, res.Failed, res.Err())
	// Output: 2 2 0 <nil>
}
