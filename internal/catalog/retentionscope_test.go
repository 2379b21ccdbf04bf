package catalog_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// A call-logd-shaped graph built by hand: tenant ← log ← rec (cascade).
func retentionGraph() *catalog.Graph {
	tenant, log, rec := name("public", "tenant"), name("public", "log"), name("public", "rec")
	logFK := catalog.FK{Constraint: "l", Child: log, Columns: []string{"tenant_uuid"}, Parent: tenant, RefColumns: []string{"uuid"}, OnDelete: catalog.OnDeleteCascade}
	recFK := catalog.FK{Constraint: "r", Child: rec, Columns: []string{"log_id"}, Parent: log, RefColumns: []string{"id"}, OnDelete: catalog.OnDeleteCascade}
	return &catalog.Graph{
		Root: tenant, Key: "uuid", KeyType: "uuid",
		Tables: []*catalog.Table{
			{Name: tenant, Reach: catalog.ReachRoot, Columns: []catalog.Column{{Name: "uuid", Type: "uuid"}}},
			{Name: log, Reach: catalog.ReachCascade, Columns: []catalog.Column{{Name: "id", Type: "int"},
				{Name: "tenant_uuid", Type: "uuid"}, {Name: "date", Type: "timestamptz"}}, Via: []catalog.FK{logFK}},
			{Name: rec, Reach: catalog.ReachCascade, Columns: []catalog.Column{{Name: "id", Type: "int"},
				{Name: "log_id", Type: "int", NotNull: true}, {Name: "path", Type: "text"}}, Via: []catalog.FK{recFK}},
		},
		FKs: []catalog.FK{logFK, recFK},
	}
}

func TestRetention_Rules(t *testing.T) {
	log, rec := name("public", "log"), name("public", "rec")
	a := uuid.MustParse("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
	cut := map[uuid.UUID]map[string]time.Time{a: {"cdr": time.Unix(0, 0)}}
	ok := catalog.Rule{Kind: "cdr", Table: log, TenantColumn: "tenant_uuid", TimeColumn: "date"}
	cases := []struct {
		name string
		rule catalog.Rule
		cuts map[uuid.UUID]map[string]time.Time
		want string // "" for no error
		is   error  // the sentinel the error wraps, if any
	}{
		{"deleting rule", ok, cut, "", nil},
		{"nulling rule", catalog.Rule{Kind: "cdr", Table: log, TenantColumn: "tenant_uuid", TimeColumn: "date", NullTable: rec, NullColumns: []string{"path"}}, cut, "", nil},
		{"table out of the graph", catalog.Rule{Kind: "cdr", Table: name("public", "cel"), TenantColumn: "t", TimeColumn: "d"}, cut, "public.cel is not reached", catalog.ErrRetention},
		{"no time column", catalog.Rule{Kind: "cdr", Table: log, TenantColumn: "tenant_uuid", TimeColumn: "when"}, cut, "public.log.when does not exist", catalog.ErrNotFound},
		{"null column NOT NULL", catalog.Rule{Kind: "cdr", Table: log, TenantColumn: "tenant_uuid", TimeColumn: "date", NullTable: rec, NullColumns: []string{"log_id"}}, cut, "NOT NULL", catalog.ErrRetention},
		{"null table without a key to the table", catalog.Rule{Kind: "cdr", Table: rec, TenantColumn: "log_id", TimeColumn: "path", NullTable: log, NullColumns: []string{"date"}}, cut, "no foreign key from public.log to public.rec", catalog.ErrRetention},
		{"a tenant without that kind's cut-off", ok, map[uuid.UUID]map[string]time.Time{a: {"export": time.Unix(0, 0)}}, "no cdr cut-off", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := retentionGraph().Retention([]catalog.Rule{tc.rule}, tc.cuts)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

// Tenants sharing a cut-off share one comparison; the tenant root itself is never
// in a retention scope; a nulled row is selected only while it holds a value.
func TestRetention_SQL(t *testing.T) {
	g := retentionGraph()
	log, rec := name("public", "log"), name("public", "rec")
	a := uuid.MustParse("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
	b := uuid.MustParse("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
	c := uuid.MustParse("cccccccc-cccc-4ccc-8ccc-cccccccccccc")
	old, recent := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cuts := map[uuid.UUID]map[string]time.Time{
		a: {"cdr": old, "recording": recent}, b: {"cdr": old, "recording": recent}, c: {"cdr": recent, "recording": recent},
	}
	r, err := g.Retention([]catalog.Rule{
		{Kind: "cdr", Table: log, TenantColumn: "tenant_uuid", TimeColumn: "date"},
		{Kind: "recording", Table: log, TenantColumn: "tenant_uuid", TimeColumn: "date", NullTable: rec, NullColumns: []string{"path"}},
	}, cuts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range r.Tables() {
		names = append(names, tb.Name.String())
	}
	if strings.Join(names, ",") != "public.log,public.rec" {
		t.Errorf("tables in scope: %v, want the log and the recordings, never the tenant root", names)
	}
	sql, ok := r.SelectTenants(g.Table(log), []uuid.UUID{a, b, c})
	if !ok {
		t.Fatal("no single-scan select for the log")
	}
	grouped := `t0."tenant_uuid" IN ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'::uuid) AND t0."date" < '2025-01-01T00:00:00Z'::timestamptz`
	if !strings.Contains(sql, grouped) || !strings.HasSuffix(sql, `ORDER BY t0."tenant_uuid"`) {
		t.Errorf("single-scan select does not group tenants by cut-off or order by tenant:\n%s", sql)
	}
	one := r.Select(g.Table(rec), c)
	if !strings.Contains(one, `(t0."path" IS NOT NULL) AND EXISTS (SELECT 1 FROM ONLY "public"."log" p1 WHERE p1."id" = t0."log_id"`) {
		t.Errorf("recordings' select does not take nulled recordings only while they hold a path:\n%s", one)
	}
	if strings.Contains(one, "aaaaaaaa") {
		t.Errorf("tenant c's select names another tenant:\n%s", one)
	}
}
