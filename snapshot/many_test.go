package snapshot_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/retention"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/snapshot"
)

// seqScans reads pg_stat_user_tables once the snapshot's connections have gone
// (a backend flushes its statistics as it exits).
func seqScans(t *testing.T, ctx context.Context, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var others int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	read := func() map[string]int64 {
		if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, "SELECT relname::text, coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname LIKE 'call_logd_%'")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for rows.Next() {
			var n string
			var c int64
			if err := rows.Scan(&n, &c); err != nil {
				t.Fatal(err)
			}
			out[n] = c
		}
		return out
	}
	prev := read()
	for range 20 { // settled: two reads 100ms apart agree
		time.Sleep(100 * time.Millisecond)
		cur := read()
		same := len(cur) == len(prev)
		for k, v := range cur {
			same = same && prev[k] == v
		}
		if same {
			return cur
		}
		prev = cur
	}
	return prev
}

// Twenty tenants in one run read each table no more often than one tenant does, and
// each tenant's snapshot holds exactly its own rows.
func TestRun_ManyTenantsOneScanPerTable(t *testing.T) {
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	conn := testenv.Connect(t, dsn)
	if err := fixture.CreateSchema(ctx, conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, conn, fixture.Options{Seed: 12, Tenants: 30, CallLogsPerTenant: 20})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx) // counted connections: only the ones this test opens below
	stats := testenv.Connect(t, dsn)
	cfg, _ := pgx.ParseConfig(dsn)
	root, _ := catalog.ParseName("public.call_logd_tenant")
	s := fileStore(t)
	// The paths are read too (the files are absent: the fixture wrote none), from a
	// scan of their own.
	rec, _ := catalog.ParseName("public.call_logd_recording")
	exp, _ := catalog.ParseName("public.call_logd_export")
	files := []profile.FileColumn{{Table: rec, Column: "path", Root: t.TempDir()}, {Table: exp, Column: "path", Root: t.TempDir()}}
	run := func(tenants []uuid.UUID, ret *retention.Options) (map[string]int64, []*archive.Manifest) {
		before := seqScans(t, ctx, stats)
		ss, err := snapshot.Run(ctx, cfg, s, snapshot.Options{Tenants: tenants, Graph: catalog.Options{Root: root, Key: "uuid"},
			Retention: ret, Files: files})
		if err != nil {
			t.Fatalf("snapshot of %d tenants: %v", len(tenants), err)
		}
		after := seqScans(t, ctx, stats)
		delta := map[string]int64{}
		for k, v := range after {
			delta[k] = v - before[k]
		}
		return delta, manifests(t, s, ss)
	}
	// Twenty of the thirty tenants are two thirds of every table: a run would select
	// their children by joining back to call_log (one scan of it per child), as it
	// should for such a share (TestRun_KeyedOrJoinedByShare). What is measured here
	// is how a run covers many tenants: the keyed selects, as for a small share.
	defer snapshot.SetKeyedShareMax(1)()
	one, _ := run(res.Tenants[:1], nil)
	twenty, _ := run(res.Tenants[5:25], nil)
	t.Logf("sequential scans: 1 tenant %v; 20 tenants %v", one, twenty)
	for table, n := range twenty {
		if n > one[table] {
			t.Errorf("%s: %d sequential scans for 20 tenants, %d for one", table, n, one[table])
		}
	}
	if one["call_logd_call_log"] == 0 {
		t.Errorf("no sequential scan of call_log counted: the test measures nothing (%v)", one)
	}
	// A retention scope: the planner picks index probes or one hash per table
	// depending on how many rows qualify, so the bound is absolute: no table is
	// scanned more often than there are selects in the scope (4 tables, 2 path
	// columns), where a scan per tenant would be 20 or more.
	twenty, _ = run(res.Tenants[5:25], fixture.Retention(365))
	if twenty["call_logd_call_log"] == 0 {
		t.Errorf("retention: no sequential scan of call_log counted: the test measures nothing (%v)", twenty)
	}
	for table, n := range twenty {
		if n > 6 {
			t.Errorf("retention: %s: %d sequential scans for 20 tenants, want at most one per select (6)", table, n)
		}
	}
	_, ms := run(res.Tenants[5:25], nil)
	g, err := catalog.Load(ctx, stats, catalog.Options{Root: root, Key: "uuid"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, tb := range m.Tables {
			var want int64
			q := "SELECT count(*) FROM (" + g.Select(g.Table(catalog.Name{Schema: tb.Schema, Table: tb.Name}), m.Tenant) + ") x"
			if err := stats.QueryRow(ctx, q).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if tb.Rows != want {
				t.Errorf("tenant %s, %s: snapshot holds %d rows, the tenant has %d", m.Tenant, tb.Name, tb.Rows, want)
			}
		}
		if got := storedLines(t, s, m.Tables[1].Key); int64(len(got)) != m.Tables[1].Rows {
			t.Errorf("tenant %s: object of %s holds %d lines, manifest %d", m.Tenant, m.Tables[1].Name, len(got), m.Tables[1].Rows)
		}
	}
}
