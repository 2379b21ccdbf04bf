package guard_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// The command removes a recording of a tenant it was not approved for (its rows
// untouched, as call-logd's purgers do before the tenant DELETE): a loss naming the
// tenant and the path; the approved tenant's files, purged with it, are not.
func TestRun_FileOfUnapprovedTenantRemoved(t *testing.T) {
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	conn := testenv.Connect(t, dsn)
	if err := fixture.CreateSchema(ctx, conn); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(t.TempDir(), "recordings")
	res, err := fixture.Generate(ctx, conn, fixture.Options{Seed: 5, Tenants: 10, CallLogsPerTenant: 20, RecordingsRoot: rec})
	if err != nil {
		t.Fatal(err)
	}
	a, b := res.Tenants[1], res.Tenants[6]
	pathOf := func(tenant uuid.UUID) string {
		var p string
		if err := conn.QueryRow(ctx, `SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
			WHERE c.tenant_uuid = $1 AND r.path IS NOT NULL ORDER BY 1`, tenant).Scan(&p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("fixture: first recording of %s not on disk: %v", tenant, err)
		}
		return p
	}
	victim := pathOf(b)
	store, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := pgx.ParseConfig(dsn)
	root, _ := catalog.ParseName("public.call_logd_tenant")
	recTable, _ := profile.ParseTableName("public.call_logd_recording")
	t.Setenv("DATABASE_URL", dsn)
	psql := "psql"
	if bin := os.Getenv("PGBIN"); bin != "" {
		psql = filepath.Join(bin, "psql")
	}
	t.Setenv("PSQL", psql)
	script := `rm -rf "` + filepath.Join(rec, a.String()) + `" && rm -f "` + victim + `" && ` +
		del + `"DELETE FROM call_logd_tenant WHERE uuid = '` + a.String() + `'"`
	result, err := guard.Run(ctx, cfg, store, guard.Options{
		Input: guard.Input{Targets: []uuid.UUID{a}}, Rules: policy.DefaultRules(),
		Snapshot: snapshot.Options{Graph: catalog.Options{Root: root, Key: "uuid"}, ToolVersion: "test",
			Files: []profile.FileColumn{{Table: recTable, Column: "path", Root: rec}}},
		Command: []string{"sh", "-c", script}, Stdout: os.Stderr, Stderr: os.Stderr,
	})
	var br *guard.BlastRadiusError
	if !errors.As(err, &br) {
		t.Fatalf("got %v, want a BlastRadiusError", err)
	}
	if len(br.Losses) != 0 {
		t.Errorf("row losses %+v: want none (the rows are untouched)", br.Losses)
	}
	if result.FilesLost != 1 || len(br.Files) != 1 || br.Files[0].Path != victim || br.Files[0].Tenant != b.String() {
		t.Fatalf("file losses %+v (%d): want exactly %s of tenant %s", br.Files, result.FilesLost, victim, b)
	}
	if !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), b.String()) || !strings.Contains(err.Error(), "files restore") {
		t.Errorf("message %q: want the tenant, the path and how to restore it", err)
	}
}
