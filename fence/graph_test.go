package fence_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/testdata"
)

// subPartitions adds a partition of app.audit_log that is itself partitioned.
const subPartitions = `
CREATE TABLE app.audit_log_2027 PARTITION OF app.audit_log
	FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2028-01-01 00:00:00+00') PARTITION BY RANGE (at);
CREATE TABLE app.audit_log_2027_h1 PARTITION OF app.audit_log_2027
	FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2027-07-01 00:00:00+00');
INSERT INTO app.audit_log (at, org_id, message)
	VALUES ('2027-02-01 00:00:00+00', 'dddddddd-dddd-4ddd-8ddd-dddddddddddd', 'sub-partition');`

func TestGraphSchemaPartitionsAndRootKeyID(t *testing.T) {
	e := newEnv(t, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"), subPartitions)
	g := e.load(t, catalog.Options{
		Root:        catalog.Name{Schema: "app", Table: "org"},
		Key:         "id",
		ExtraTables: []catalog.Extra{{Table: catalog.Name{Schema: "app", Table: "usage"}, Column: "org_id"}},
	})
	catalogBefore := e.catalogState(t)
	e.install(t, g)

	// A statement trigger on the parent does not fire for TRUNCATE of a partition:
	// each partition, at every level, carries its own. CASCADE: app.audit_note
	// references app.audit_log, and without it TRUNCATE fails before any trigger.
	for _, table := range []string{"app.audit_log", "app.audit_log_2025", "app.audit_log_2026", "app.audit_log_2027", "app.audit_log_2027_h1"} {
		e.refused(t, "TRUNCATE "+table+" CASCADE", "truncate of "+table)
	}
	e.refused(t, `TRUNCATE app."attachment ""v2"".files"`, `truncate of app."attachment ""v2"".files"`)
	e.refused(t, "TRUNCATE app.usage", "truncate of app.usage")
	st, err := fence.Status(e.ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"audit_log_2025", "audit_log_2027", "audit_log_2027_h1"} {
		if !slices.Contains(st.Tables, catalog.Name{Schema: "app", Table: p}) {
			t.Errorf("Status tables %v lack partition app.%s", st.Tables, p)
		}
	}

	const orgD = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	e.refused(t, "DELETE FROM app.org WHERE id = '"+orgD+"'", "tenant "+orgD, "app.org")
	e.arm(t, uuid.New(), time.Now().Add(time.Hour), orgD)
	if n := e.deleted(t, "DELETE FROM app.org WHERE id = $1", orgD); n != 1 {
		t.Fatalf("approved delete of org D removed %d rows, want 1", n)
	}
	var left int
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM app.audit_log WHERE org_id = $1", orgD).Scan(&left); err != nil || left != 0 {
		t.Errorf("audit_log rows of org D after its delete: %d, %v; want the cascade to remove them", left, err)
	}
	e.refused(t, "DELETE FROM app.org", "delete of tenant")

	e.uninstall(t, g)
	if after := e.catalogState(t); !slices.Equal(catalogBefore, after) {
		t.Errorf("catalog after Uninstall differs:\nbefore %q\nafter  %q", catalogBefore, after)
	}
	if _, err := e.svc.Exec(e.ctx, "TRUNCATE app.audit_log_2025 CASCADE"); err != nil {
		t.Errorf("TRUNCATE of a partition after Uninstall: %v", err)
	}
}

// setNullSchema: a tenant's projects, and bookmarks that a tenant's delete empties
// (SET NULL straight from the root: those updates run before the root's statement
// trigger fires).
const setNullSchema = `
CREATE TABLE tenant (id uuid PRIMARY KEY);
CREATE TABLE project (id int PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE);
CREATE TABLE bookmark (id int PRIMARY KEY, shared_by uuid REFERENCES tenant (id) ON DELETE SET NULL);
INSERT INTO tenant VALUES ('11111111-1111-4111-8111-111111111111'), ('22222222-2222-4222-8222-222222222222');
INSERT INTO project VALUES (1, '11111111-1111-4111-8111-111111111111'), (2, '22222222-2222-4222-8222-222222222222');
INSERT INTO bookmark VALUES (1, '11111111-1111-4111-8111-111111111111'), (2, '22222222-2222-4222-8222-222222222222');`

// Capture mode: an approved tenant's delete goes without a copy, the rows its
// cascade empties through SET NULL included (their row trigger runs before any
// statement trigger: the root's row trigger has marked the transaction approved
// by then); the same unapproved keeps the tenant's rows and the emptied ones.
func TestCaptureApprovedSetNullCascade(t *testing.T) {
	const x, y = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	e := newEnv(t, setNullSchema)
	g := e.load(t, catalog.Options{Root: catalog.Name{Schema: "public", Table: "tenant"}, Key: "id"})
	e.installCapture(t, g)
	e.arm(t, uuid.New(), time.Now().Add(time.Hour), x)
	if n := e.deleted(t, "DELETE FROM tenant WHERE id = $1", x); n != 1 {
		t.Fatalf("approved delete: %d rows, want 1", n)
	}
	if got := e.trashCount(t); len(got) != 0 {
		t.Fatalf("trash after an approved delete: %v, want empty", got)
	}
	e.deleted(t, "DELETE FROM tenant WHERE id = $1", y)
	want := map[string]int64{"tenant delete": 1, "project delete": 1, "bookmark update": 1}
	if got := e.trashCount(t); !maps.Equal(got, want) {
		t.Fatalf("trash after an unapproved delete: %v, want %v", got, want)
	}
}

// partitionedParentSchema: a partitioned table whose rows tell their tenant, and a
// child of it whose rows do not (filed through their parent's).
const partitionedParentSchema = `
CREATE TABLE tenant (id uuid PRIMARY KEY);
CREATE TABLE log (id int, at date, tenant_id uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
	PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE log_2025 PARTITION OF log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE log_2026 PARTITION OF log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE note (log_id int, log_at date, body text,
	FOREIGN KEY (log_id, log_at) REFERENCES log (id, at) ON DELETE CASCADE);
INSERT INTO tenant VALUES ('11111111-1111-4111-8111-111111111111'), ('22222222-2222-4222-8222-222222222222');
INSERT INTO log VALUES (1, '2025-03-01', '11111111-1111-4111-8111-111111111111'),
	(2, '2026-03-01', '11111111-1111-4111-8111-111111111111'),
	(3, '2025-04-01', '22222222-2222-4222-8222-222222222222'),
	(4, '2026-04-01', '22222222-2222-4222-8222-222222222222');
INSERT INTO note VALUES (1, '2025-03-01', 'x'), (2, '2026-03-01', 'x'), (3, '2025-04-01', 'y'), (4, '2026-04-01', 'y');`

// One statement deletes one tenant's rows from a partition and the other's from
// the partitioned table: the parent's capture runs twice in it (a delete addressed
// to a partition fires the partition's trigger), and the children cascaded from
// both are each filed under their own tenant.
func TestCapture_PartitionAndParentInOneStatement(t *testing.T) {
	const x, y = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	e := newEnv(t, partitionedParentSchema)
	g := e.load(t, catalog.Options{Root: catalog.Name{Schema: "public", Table: "tenant"}, Key: "id"})
	e.installCapture(t, g)
	e.deleted(t, "WITH a AS (DELETE FROM log_2025 WHERE tenant_id = '"+x+"' RETURNING 1), "+
		"b AS (DELETE FROM log WHERE tenant_id = '"+y+"' RETURNING 1) SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)")
	rows, err := e.admin.Query(e.ctx, `SELECT (tr.row::note).log_id, coalesce(tr.tenant, '') FROM purgeguard.trash tr
		WHERE tr.table_name = 'note' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for rows.Next() {
		var id int
		var tenant string
		if err := rows.Scan(&id, &tenant); err != nil {
			t.Fatal(err)
		}
		got[id] = tenant
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{1: x, 3: y, 4: y}
	if !maps.Equal(got, want) {
		t.Fatalf("notes kept and their tenants: %v, want %v", got, want)
	}
}
