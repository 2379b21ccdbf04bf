package fence_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/testdata"
)

// A partition created (PARTITION OF) or attached (ATTACH PARTITION) below a fenced
// table after Install, by the tables' owner who is no superuser, gets the triggers
// its siblings have from the fence's event trigger: a DELETE aimed at it is kept in
// the trash under the graph table, with the partition as the relation it left, and
// a TRUNCATE of it is refused. Status says new partitions are covered.
func TestCapture_PartitionCreatedAfterInstall(t *testing.T) {
	const orgA, orgB = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	e := newEnv(t, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
	g := e.load(t, catalog.Options{Root: catalog.Name{Schema: "app", Table: "org"}, Key: "id"})
	e.installCapture(t, g)
	if st := e.status(t); !st.NewPartitions {
		t.Fatalf("installed by a superuser: Status.NewPartitions false, want the event trigger fencing new partitions")
	}
	ownerRole(t, e, "app", "%")
	for _, ddl := range []string{
		`CREATE TABLE app.audit_log_2028 PARTITION OF app.audit_log
			FOR VALUES FROM ('2028-01-01 00:00:00+00') TO ('2029-01-01 00:00:00+00')`,
		`CREATE TABLE app.audit_log_2029 (LIKE app.audit_log)`,
		`ALTER TABLE app.audit_log ATTACH PARTITION app.audit_log_2029
			FOR VALUES FROM ('2029-01-01 00:00:00+00') TO ('2030-01-01 00:00:00+00')`,
	} {
		if _, err := e.svc.Exec(e.ctx, ddl); err != nil {
			t.Fatalf("the owner's %s: %v", ddl, err)
		}
	}
	e.exec(t, `INSERT INTO app.audit_log (at, org_id, message) VALUES
		('2028-02-01 00:00:00+00', $1, 'in 2028'), ('2028-03-01 00:00:00+00', $2, 'B in 2028'),
		('2029-02-01 00:00:00+00', $1, 'in 2029')`, orgA, orgB)

	for _, p := range []string{"app.audit_log_2028", "app.audit_log_2029"} {
		e.refused(t, "TRUNCATE "+p+" CASCADE", "truncate of "+p)
	}
	if n := e.deleted(t, "DELETE FROM app.audit_log_2028 WHERE org_id = $1", orgA); n != 1 {
		t.Fatalf("delete from the created partition: %d rows, want 1", n)
	}
	if n := e.deleted(t, "DELETE FROM app.audit_log_2029"); n != 1 {
		t.Fatalf("delete from the attached partition: %d rows, want 1", n)
	}
	rows, err := e.admin.Query(e.ctx, `SELECT table_schema || '.' || table_name || ' ' || rel_schema || '.' || rel_name || ' ' || op || ' ' || tenant
		FROM purgeguard.trash ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"app.audit_log app.audit_log_2028 delete " + orgA,
		"app.audit_log app.audit_log_2029 delete " + orgA,
	}
	if !equalStrings(got, want) {
		t.Fatalf("trash after deletes aimed at partitions created after install:\n%q\nwant\n%q", got, want)
	}
}
