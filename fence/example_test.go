package fence_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/devtools/exampledb"
)

func TestMain(m *testing.M) { exampledb.Main(m) }

// Install the fence: from then on a tenant DELETE that no guard run approved fails,
// whichever client sends it.
func ExampleInstall() {
	db := exampledb.Open() // a call-logd database with three tenants (test scaffolding)
	defer db.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := fence.Install(ctx, conn, db.Profile.Tenants); err != nil {
		log.Fatal(err)
	}
	_, err = conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", db.Tenants[0])
	st, _ := fence.Status(ctx, conn)
	fmt.Println(fence.IsRefused(err), st.Installed)
	// Output: true true
}
