package fence_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

func (e *env) installCapture(t *testing.T, g *catalog.Graph, watch ...fence.Column) {
	t.Helper()
	if err := fence.InstallCaptureGraph(e.ctx, e.admin, g, watch); err != nil {
		t.Fatalf("InstallCapture: %v", err)
	}
}

// trashCount returns the trash's rows per graph table and op.
func (e *env) trashCount(t *testing.T) map[string]int64 {
	t.Helper()
	rows, err := e.admin.Query(e.ctx, "SELECT table_name || ' ' || op, count(*) FROM purgeguard.trash GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var recordingPath = fence.Column{Table: catalog.Name{Schema: "public", Table: "call_logd_recording"}, Column: "path"}

// Capture mode lets every delete through: what guard did not approve is kept, row
// for row, cascades and emptied file paths included; approved tenants go without a
// copy, their cascades too. TRUNCATE stays refused.
func TestCapture_KeepsUnapprovedLetsApprovedGo(t *testing.T) {
	e, res := callLogd(t)
	g := callLogdGraph(t, e)
	e.installCapture(t, g, recordingPath)
	x, y := res.Tenants[0].String(), res.Tenants[1].String()
	counts := func(tenant string) map[string]int64 {
		out := map[string]int64{}
		for _, tb := range []string{"call_logd_call_log", "call_logd_call_log_participant", "call_logd_recording", "call_logd_export"} {
			var n int64
			q := "SELECT count(*) FROM " + tb + " t WHERE "
			if tb == "call_logd_call_log_participant" || tb == "call_logd_recording" {
				q += "call_log_id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = $1)"
			} else {
				q += "tenant_uuid = $1"
			}
			if err := e.admin.QueryRow(e.ctx, q, tenant).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[tb] = n
		}
		return out
	}
	yRows := counts(y)
	var yPaths int64
	if err := e.admin.QueryRow(e.ctx, `SELECT count(*) FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = $1 AND r.path IS NOT NULL`, y).Scan(&yPaths); err != nil || yPaths == 0 {
		t.Fatalf("recordings with a path of %s: %d, %v", y, yPaths, err)
	}

	e.arm(t, uuid.New(), time.Now().Add(time.Hour), x)
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, x)); n != 1 {
		t.Fatalf("approved delete: %d rows, want 1", n)
	}
	if got := e.trashCount(t); len(got) != 0 {
		t.Fatalf("trash after an approved delete: %v, want empty", got)
	}

	// The purgers' way, then the tenant: nothing refused, everything kept.
	e.deleted(t, "UPDATE call_logd_recording SET path = NULL WHERE call_log_id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = $1)", y)
	e.deleted(t, "DELETE FROM call_logd_call_log WHERE tenant_uuid = $1", y)
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, y)); n != 1 {
		t.Fatalf("unapproved delete in capture mode: %d rows, want 1", n)
	}
	got := e.trashCount(t)
	want := map[string]int64{
		"call_logd_tenant delete":               1,
		"call_logd_call_log delete":             yRows["call_logd_call_log"],
		"call_logd_call_log_participant delete": yRows["call_logd_call_log_participant"],
		"call_logd_recording delete":            yRows["call_logd_recording"],
		"call_logd_recording update":            yPaths,
		"call_logd_export delete":               yRows["call_logd_export"],
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("trash %s: %d rows, want %d (trash %v)", k, got[k], n, got)
		}
	}
	// Every deleted row is filed under its tenant as it is kept, participants and
	// recordings too (through the call logs kept just before them): trash save has
	// nothing to attribute but the emptied paths.
	var unfiled int64
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM purgeguard.trash WHERE op = 'delete' AND tenant IS DISTINCT FROM $1", y).Scan(&unfiled); err != nil || unfiled != 0 {
		t.Errorf("deleted rows kept without tenant %s: %d (%v), want 0", y, unfiled, err)
	}
	e.refused(t, "TRUNCATE call_logd_call_log CASCADE", "truncate of public.call_logd_call_log")
}

// Switching modes in place keeps the approvals and the trash; uninstall refuses
// while the trash holds rows, and with force leaves the database as before the
// fence (no service table dropped).
func TestCapture_SwitchModesAndUninstall(t *testing.T) {
	e, res := callLogd(t)
	g := callLogdGraph(t, e)
	catalogBefore := e.catalogState(t)
	x, y, z := res.Tenants[0].String(), res.Tenants[1].String(), res.Tenants[2].String()

	e.install(t, g)
	e.arm(t, uuid.New(), time.Now().Add(time.Hour), x)
	e.installCapture(t, g, recordingPath)
	e.deleted(t, fmt.Sprintf(deleteTenant, y))
	trash := e.trashCount(t)
	if trash["call_logd_tenant delete"] != 1 {
		t.Fatalf("trash after a delete in capture mode: %v", trash)
	}

	e.install(t, g) // back to refuse
	st, err := fence.Status(e.ctx, e.admin)
	if err != nil || st.Mode != fence.ModeRefuse || len(st.Approvals) != 1 || st.TrashRows == 0 {
		t.Fatalf("Status after switching to refuse: %+v, %v; want refuse, the approval and the trash kept", st, err)
	}
	if got := e.trashCount(t); !maps.Equal(got, trash) {
		t.Errorf("trash after switching to refuse: %v, want %v", got, trash)
	}
	e.refused(t, fmt.Sprintf(deleteTenant, z), "tenant "+z)
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, x)); n != 1 {
		t.Errorf("approved delete after switching: %d rows, want 1", n)
	}
	if names := e.fenceTriggers(t); slices.ContainsFunc(names, func(s string) bool {
		return slices.Contains([]string{fence.CaptureTrigger, fence.CaptureUpdateTrigger, fence.MarkTrigger}, lastWord(s))
	}) {
		t.Errorf("capture triggers left in refuse mode: %v", names)
	}

	if err := fence.UninstallGraph(e.ctx, e.admin, g, false); !errors.Is(err, fence.ErrTrashNotEmpty) {
		t.Fatalf("Uninstall with rows in the trash: %v, want ErrTrashNotEmpty", err)
	}
	if st, err := fence.Status(e.ctx, e.admin); err != nil || !st.Installed {
		t.Fatalf("Status after a refused uninstall: %+v, %v", st, err)
	}
	if err := fence.UninstallGraph(e.ctx, e.admin, g, true); err != nil {
		t.Fatalf("Uninstall --force: %v", err)
	}
	if after := e.catalogState(t); !slices.Equal(catalogBefore, after) {
		t.Errorf("catalog after Uninstall differs:\nbefore %q\nafter  %q", catalogBefore, after)
	}
}

func lastWord(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ' ' {
			return s[i+1:]
		}
	}
	return s
}

// The service's role has no rights on schema purgeguard: its deletes and emptied
// paths are still kept (the triggers are SECURITY DEFINER), and it cannot read or
// empty the trash itself.
func TestCapture_ServiceRoleWithoutRights(t *testing.T) {
	e, res := callLogd(t)
	e.installCapture(t, callLogdGraph(t, e), recordingPath)
	role := pgx.Identifier{testenv.RandomName("svc_")}.Sanitize()
	e.exec(t, "CREATE ROLE "+role)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	e.exec(t, "GRANT USAGE ON SCHEMA public TO "+role)
	e.exec(t, "GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+role)
	if _, err := e.svc.Exec(e.ctx, "SET ROLE "+role); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Exec(e.ctx, "DELETE FROM purgeguard.trash"); err == nil {
		t.Fatal("the service role can empty the trash")
	}
	y := res.Tenants[1].String()
	e.deleted(t, "UPDATE call_logd_recording SET path = NULL WHERE call_log_id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = $1)", y)
	e.deleted(t, fmt.Sprintf(deleteTenant, y))
	got := e.trashCount(t)
	if got["call_logd_tenant delete"] != 1 || got["call_logd_recording update"] == 0 || got["call_logd_call_log delete"] == 0 {
		t.Errorf("trash after the service role's deletes: %v, want its rows", got)
	}
}

// A table without a tenant column lets its rows go unkept only when they go with
// an approved tenant's (a cascade). A direct DELETE of another tenant's rows from it,
// later in the same transaction as an approved delete, is kept row for row.
func TestCapture_DirectDeleteAfterApprovedIsKept(t *testing.T) {
	e, res := callLogd(t)
	g := callLogdGraph(t, e)
	e.installCapture(t, g, recordingPath)
	x, y := res.Tenants[0].String(), res.Tenants[1].String()
	const yParticipants = "SELECT count(*) FROM call_logd_call_log_participant WHERE call_log_id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = $1)"
	var n int64
	if err := e.admin.QueryRow(e.ctx, yParticipants, y).Scan(&n); err != nil || n == 0 {
		t.Fatalf("participants of %s: %d, %v", y, n, err)
	}
	e.arm(t, uuid.New(), time.Now().Add(time.Hour), x)
	// One simple-protocol query string: one transaction.
	e.deleted(t, fmt.Sprintf("BEGIN; "+deleteTenant+"; DELETE FROM call_logd_call_log_participant WHERE call_log_id IN "+
		"(SELECT id FROM call_logd_call_log WHERE tenant_uuid = '%s'); COMMIT", x, y))
	want := map[string]int64{"call_logd_call_log_participant delete": n}
	if got := e.trashCount(t); !maps.Equal(got, want) {
		t.Fatalf("trash after an approved delete then a direct delete of %s's participants: %v, want %v", y, got, want)
	}
}

// A participant is filed under its call log's tenant however it goes: the capture of
// a cascade takes the tenant its parent's capture recorded for the statement, and
// every other delete looks it up. A direct delete of another tenant's participants
// later in the transaction, in the same statement (a function), or from inside a
// trigger must not take the tenant recorded by an earlier cascade.
func TestCapture_ChildFiledUnderItsOwnTenant(t *testing.T) {
	const zParticipants = "DELETE FROM call_logd_call_log_participant WHERE call_log_id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = '%[2]s')"
	for _, tc := range []struct {
		name, sql string
	}{
		{"a direct delete later in the transaction",
			"BEGIN; DELETE FROM call_logd_tenant WHERE uuid = '%[1]s'; " + zParticipants + "; COMMIT"},
		{"a direct delete in the same statement",
			"DO $$BEGIN DELETE FROM call_logd_tenant WHERE uuid = '%[1]s'; " + zParticipants + "; END$$"},
		{"a delete from inside a trigger in the same statement",
			"DO $$BEGIN DELETE FROM call_logd_tenant WHERE uuid = '%[1]s'; INSERT INTO cleanup VALUES ('%[2]s'); END$$"},
		{"two tenants in one message",
			"DELETE FROM call_logd_tenant WHERE uuid = '%[1]s'; DELETE FROM call_logd_tenant WHERE uuid = '%[2]s'"},
		{"two tenants in one statement",
			"DELETE FROM call_logd_tenant WHERE uuid IN ('%[1]s', '%[2]s')"},
		{"a tenant and another's call logs in one statement",
			"WITH a AS (DELETE FROM call_logd_tenant WHERE uuid = '%[1]s' RETURNING 1), " +
				"b AS (DELETE FROM call_logd_call_log WHERE tenant_uuid = '%[2]s' RETURNING 1) SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)"},
		{"two deletes of the parent in one statement",
			"WITH a AS (DELETE FROM call_logd_call_log WHERE tenant_uuid = '%[1]s' RETURNING 1), " +
				"b AS (DELETE FROM call_logd_call_log WHERE tenant_uuid = '%[2]s' RETURNING 1) SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, res := callLogd(t)
			g := callLogdGraph(t, e)
			e.installCapture(t, g, recordingPath)
			// A service's own trigger deleting a tenant's participants (trigger depth 2).
			if _, err := e.admin.Exec(e.ctx, `CREATE TABLE cleanup (tenant uuid);
				GRANT INSERT ON cleanup TO PUBLIC;
				CREATE FUNCTION cleanup_participants() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
					DELETE FROM call_logd_call_log_participant WHERE call_log_id IN
						(SELECT id FROM call_logd_call_log WHERE tenant_uuid = NEW.tenant);
					RETURN NULL;
				END $$;
				CREATE TRIGGER cleanup AFTER INSERT ON cleanup FOR EACH ROW EXECUTE FUNCTION cleanup_participants()`); err != nil {
				t.Fatal(err)
			}
			y, z := res.Tenants[0].String(), res.Tenants[1].String()
			e.deleted(t, fmt.Sprintf(tc.sql, y, z))
			var zKept, misfiled int64
			if err := e.admin.QueryRow(e.ctx, `
				WITH kept AS (
					SELECT tr.tenant, (tr.row::call_logd_call_log_participant).call_log_id AS call_log
					FROM purgeguard.trash tr WHERE tr.table_name = 'call_logd_call_log_participant'),
				owner AS (
					SELECT id, tenant_uuid::text AS tenant FROM call_logd_call_log
					UNION ALL
					SELECT (k.row::call_logd_call_log).id, (k.row::call_logd_call_log).tenant_uuid::text
					FROM purgeguard.trash k WHERE k.table_name = 'call_logd_call_log')
				SELECT count(*) FILTER (WHERE o.tenant = $1),
					count(*) FILTER (WHERE k.tenant IS NOT NULL AND k.tenant IS DISTINCT FROM o.tenant)
				FROM kept k LEFT JOIN owner o ON o.id = k.call_log`, z).Scan(&zKept, &misfiled); err != nil {
				t.Fatal(err)
			}
			if zKept == 0 {
				t.Fatalf("no participant of %s kept: the case proves nothing", z)
			}
			if misfiled != 0 {
				t.Errorf("%d participants kept under another tenant than their call log's (%d of %s kept)", misfiled, zKept, z)
			}
		})
	}
}

// A child's capture that looks its rows' tenant up among its parent's kept rows
// turns sequential scans off for that lookup alone (the trash's BRIN index, with
// or without statistics): the service's session gets its own setting back, in
// the same transaction, whichever it had; and the lookup still files each child
// row under its tenant.
func TestCapture_LookupLeavesTheSessionsSettings(t *testing.T) {
	for _, setting := range []string{"on", "off"} {
		t.Run("enable_seqscan "+setting, func(t *testing.T) {
			e, res := callLogd(t)
			g := callLogdGraph(t, e)
			e.installCapture(t, g, recordingPath)
			y, z := res.Tenants[0].String(), res.Tenants[1].String()
			var after string
			var unfiled int64
			err := pgx.BeginFunc(e.ctx, e.svc, func(tx pgx.Tx) error {
				if _, err := tx.Exec(e.ctx, "SET LOCAL enable_seqscan = "+setting); err != nil {
					return err
				}
				// two tenants in one statement: the participants' capture looks up
				if _, err := tx.Exec(e.ctx, "DELETE FROM call_logd_tenant WHERE uuid IN ($1, $2)", y, z); err != nil {
					return err
				}
				return tx.QueryRow(e.ctx, "SELECT current_setting('enable_seqscan')").Scan(&after)
			})
			if err != nil {
				t.Fatal(err)
			}
			if after != setting {
				t.Errorf("enable_seqscan after the capturing DELETE: %s, want the session's %s", after, setting)
			}
			if err := e.admin.QueryRow(e.ctx, `SELECT count(*) FROM purgeguard.trash
				WHERE table_name = 'call_logd_call_log_participant' AND tenant IS NULL`).Scan(&unfiled); err != nil {
				t.Fatal(err)
			}
			if unfiled != 0 {
				t.Errorf("%d participant rows kept without their tenant, want every one filed by the lookup", unfiled)
			}
		})
	}
}
