package fence_test

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// env is a test database with two sessions: admin installs and arms the fence, svc
// plays the service (or the purge) deleting rows, as in production.
type env struct {
	ctx   context.Context
	dsn   string
	admin *pgx.Conn
	svc   *pgx.Conn
}

func newEnv(t *testing.T, scripts ...string) *env {
	t.Helper()
	dsn := testenv.Postgres(t)
	e := &env{ctx: testenv.Context(t), dsn: dsn, admin: testenv.Connect(t, dsn), svc: testenv.Connect(t, dsn)}
	for _, s := range scripts {
		e.exec(t, s)
	}
	return e
}

// callLogd is a call-logd database with four tenants of fixture data.
func callLogd(t *testing.T) (*env, *fixture.Result) {
	t.Helper()
	e := newEnv(t)
	if err := fixture.CreateSchema(e.ctx, e.admin); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(e.ctx, e.admin, fixture.Options{Seed: 7, Tenants: 4, CallLogsPerTenant: 12})
	if err != nil {
		t.Fatal(err)
	}
	return e, res
}

func callLogdGraph(t *testing.T, e *env) *catalog.Graph {
	t.Helper()
	return e.load(t, catalog.Options{Root: catalog.Name{Schema: "public", Table: "call_logd_tenant"}, Key: "uuid"})
}

func (e *env) load(t *testing.T, o catalog.Options) *catalog.Graph {
	t.Helper()
	g, err := catalog.Load(e.ctx, e.admin, o)
	if err != nil {
		t.Fatalf("catalog.Load: %v", err)
	}
	return g
}

func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.admin.Exec(e.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) install(t *testing.T, g *catalog.Graph) {
	t.Helper()
	if err := fence.InstallGraph(e.ctx, e.admin, g); err != nil {
		t.Fatalf("Install: %v", err)
	}
}

func (e *env) uninstall(t *testing.T, g *catalog.Graph) {
	t.Helper()
	if err := fence.UninstallGraph(e.ctx, e.admin, g, false); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
}

func (e *env) arm(t *testing.T, run uuid.UUID, expires time.Time, tenants ...string) {
	t.Helper()
	var approvals []fence.Approval
	for _, tenant := range tenants {
		approvals = append(approvals, fence.Approval{Tenant: tenant, Snapshot: uuid.New(), ExpiresAt: expires})
	}
	if err := fence.Arm(e.ctx, e.admin, run, approvals); err != nil {
		t.Fatalf("Arm: %v", err)
	}
}

// refused runs sql in the service's session and fails unless the fence refused it
// (by SQLSTATE) with a message containing every one of want. Nothing may change.
func (e *env) refused(t *testing.T, sql string, want ...string) *pgconn.PgError {
	t.Helper()
	before := e.counts(t)
	_, err := e.svc.Exec(e.ctx, sql)
	if err == nil {
		t.Fatalf("%s: succeeded, want the fence to refuse it", sql)
	}
	if !fence.IsRefused(err) {
		t.Fatalf("%s: %v, want the fence's SQLSTATE %s", sql, err, fence.SQLState)
	}
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	for _, w := range want {
		if !strings.Contains(pgErr.Message, w) {
			t.Errorf("%s: message %q does not contain %q", sql, pgErr.Message, w)
		}
	}
	if after := e.counts(t); !maps.Equal(before, after) {
		t.Fatalf("%s: refused but rows changed:\nbefore %v\nafter  %v", sql, before, after)
	}
	return pgErr
}

// deleted runs sql in the service's session and returns the rows it deleted.
func (e *env) deleted(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	tag, err := e.svc.Exec(e.ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

// userTablesSQL lists the database's own tables (not partitioned parents, whose rows
// their partitions hold), outside the system schemas and the fence's.
const userTablesSQL = `
SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'purgeguard')
	AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`

// counts returns the row count of every user table.
func (e *env) counts(t *testing.T) map[string]int64 {
	t.Helper()
	return perTable(t, e, "SELECT count(*)::text FROM %s", func(s string) int64 {
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	})
}

// contents returns a digest of every user table's rows, to compare data exactly.
func (e *env) contents(t *testing.T) map[string]string {
	t.Helper()
	return perTable(t, e, "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM %s t",
		func(s string) string { return s })
}

// perTable runs query, whose %s is a table name, on every user table.
func perTable[V any](t *testing.T, e *env, query string, conv func(string) V) map[string]V {
	t.Helper()
	rows, err := e.admin.Query(e.ctx, userTablesSQL)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]V{}
	for _, tb := range tables {
		var s string
		if err := e.admin.QueryRow(e.ctx, strings.Replace(query, "%s", tb, 1)).Scan(&s); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		out[tb] = conv(s)
	}
	return out
}

// catalogState lists the schemas, functions, triggers and relations of the database
// outside pg_catalog, to check that Uninstall leaves no trace.
func (e *env) catalogState(t *testing.T) []string {
	t.Helper()
	rows, err := e.admin.Query(e.ctx, `
		SELECT 'schema ' || nspname FROM pg_namespace
		UNION ALL
		SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) FROM pg_proc p
		JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
		UNION ALL
		SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgfoid::regprocedure::text
			|| ' ' || tgenabled::text || ' ' || tgtype FROM pg_trigger
		UNION ALL
		SELECT 'event trigger ' || evtname || ' ' || evtevent FROM pg_event_trigger
		UNION ALL
		SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	state, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// fenceTriggers lists the triggers named like the fence's, anywhere.
func (e *env) fenceTriggers(t *testing.T) []string {
	t.Helper()
	rows, err := e.admin.Query(e.ctx, `
		SELECT tgrelid::regclass::text || ' ' || tgname FROM pg_trigger
		WHERE tgname IN ($1, $2, $3, $4, $5) ORDER BY 1`, fence.DeleteTrigger, fence.TruncateTrigger, fence.CaptureTrigger, fence.CaptureUpdateTrigger, fence.MarkTrigger)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}
