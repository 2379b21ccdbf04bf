package restore_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/exampledb"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

func TestMain(m *testing.M) { exampledb.Main(m) }

// Bring back a tenant that was deleted after its snapshot: rows in one transaction,
// then its files.
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
	if _, err := snapshot.Run(ctx, cfg, store, snapshot.Options{Tenants: []uuid.UUID{tenant},
		Graph: db.Profile.Tenants, Files: db.Profile.Files}); err != nil {
		log.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
		log.Fatal(err)
	}

	rep, err := restore.Run(ctx, cfg, store, restore.Options{
		Tenant: tenant, // the newest snapshot of the tenant
		Graph:  db.Profile.Tenants,
		Files:  db.Profile.Files,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.Totals.Inserted == rep.Totals.Rows, rep.Totals.Present)
	// Output: true 0
}
