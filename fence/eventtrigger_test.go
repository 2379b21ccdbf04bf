package fence_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// ownerRole creates a role that is not a superuser, makes it the owner of every
// table of schema whose name is LIKE pattern, and switches the service's session to
// it: the role a service's migrations run as, which may alter and drop triggers on
// its own tables and create next year's partition.
func ownerRole(t *testing.T, e *env, schema, pattern string) string {
	t.Helper()
	role := pgx.Identifier{testenv.RandomName("owner_")}.Sanitize()
	e.exec(t, "CREATE ROLE "+role+" NOSUPERUSER")
	t.Cleanup(func() {
		// Roles are cluster-wide: drop it before the test database goes.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "REASSIGN OWNED BY "+role+" TO CURRENT_USER; DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	e.exec(t, "GRANT USAGE, CREATE ON SCHEMA "+pgx.Identifier{schema}.Sanitize()+" TO "+role)
	rows, err := e.admin.Query(e.ctx, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname LIKE $2`, schema, pattern)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables of %s like %s: %v %v", schema, pattern, tables, err)
	}
	for _, tb := range tables {
		e.exec(t, "ALTER TABLE "+tb+" OWNER TO "+role)
	}
	if _, err := e.svc.Exec(e.ctx, "SET ROLE "+role); err != nil {
		t.Fatal(err)
	}
	return role
}

// ddlBypasses are what the owner of a fenced table could run to delete around the
// fence: each must be refused while the DDL guard is installed.
var ddlBypasses = []struct {
	mode, sql string
}{
	{fence.ModeRefuse, "ALTER TABLE call_logd_tenant DISABLE TRIGGER " + fence.DeleteTrigger},
	{fence.ModeRefuse, "ALTER TABLE call_logd_tenant DISABLE TRIGGER USER"},
	{fence.ModeRefuse, "ALTER TABLE call_logd_tenant ENABLE REPLICA TRIGGER " + fence.DeleteTrigger},
	{fence.ModeRefuse, "DROP TRIGGER " + fence.DeleteTrigger + " ON call_logd_tenant"},
	{fence.ModeRefuse, "DROP TRIGGER " + fence.TruncateTrigger + " ON call_logd_call_log"},
	{fence.ModeCapture, "ALTER TABLE call_logd_call_log DISABLE TRIGGER " + fence.CaptureTrigger},
	{fence.ModeCapture, "ALTER TABLE call_logd_recording DISABLE TRIGGER USER"},
	{fence.ModeCapture, "DROP TRIGGER " + fence.CaptureTrigger + " ON call_logd_call_log"},
	{fence.ModeCapture, "DROP TRIGGER " + fence.CaptureUpdateTrigger + " ON call_logd_recording"},
}

// Installed by a superuser, the fence refuses the tables' owner every way of turning
// its triggers off, leaves the owner's other DDL alone, and lets a superuser through.
func TestDDLGuard_RefusesTheOwner(t *testing.T) {
	for _, mode := range []string{fence.ModeRefuse, fence.ModeCapture} {
		t.Run(mode, func(t *testing.T) {
			e, res := callLogd(t)
			g := callLogdGraph(t, e)
			if mode == fence.ModeRefuse {
				e.install(t, g)
			} else {
				e.installCapture(t, g, recordingPath)
			}
			ownerRole(t, e, "public", "call_logd_%")
			if st := e.status(t); !st.DDLGuard {
				t.Fatalf("fence installed by a superuser: status says no DDL guard")
			}
			before := e.fenceTriggerStates(t)
			for _, b := range ddlBypasses {
				if b.mode != mode {
					continue
				}
				pgErr := e.refused(t, b.sql, "refused", "purgeguard_")
				if pgErr.Hint == "" {
					t.Errorf("%s: refused without a hint naming the fix", b.sql)
				}
				if after := e.fenceTriggerStates(t); !equalStrings(before, after) {
					t.Fatalf("%s: refused but the fence's triggers changed:\nbefore %v\nafter  %v", b.sql, before, after)
				}
			}
			// Still fenced: the owner's delete of a tenant is refused (or captured).
			y := res.Tenants[1].String()
			if mode == fence.ModeRefuse {
				e.refused(t, fmt.Sprintf(deleteTenant, y), "tenant "+y)
			}

			// The owner's other DDL goes through, on a fenced table too.
			for _, sql := range []string{
				"ALTER TABLE call_logd_tenant ADD COLUMN purgeguard_test_extra int",
				"ALTER TABLE call_logd_tenant DROP COLUMN purgeguard_test_extra",
				"CREATE TABLE purgeguard_test_other (id int)",
				"CREATE TRIGGER other_trigger BEFORE DELETE ON purgeguard_test_other FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
				"ALTER TABLE purgeguard_test_other DISABLE TRIGGER USER",
				"DROP TRIGGER other_trigger ON purgeguard_test_other",
			} {
				if _, err := e.svc.Exec(e.ctx, sql); err != nil {
					t.Fatalf("the owner's unrelated DDL %s: %v", sql, err)
				}
			}

			// A superuser may: the guard is against the owner, not the cluster's admin.
			trig := fence.DeleteTrigger
			table := "call_logd_tenant"
			if mode == fence.ModeCapture {
				trig, table = fence.CaptureTrigger, "call_logd_call_log"
			}
			e.exec(t, "ALTER TABLE "+table+" DISABLE TRIGGER "+trig)
			e.exec(t, "ALTER TABLE "+table+" ENABLE TRIGGER "+trig)

			// The owner cannot uninstall it either, and learns why; nothing changes.
			err := fence.UninstallGraph(e.ctx, e.svc, g, true)
			if err == nil || !strings.Contains(err.Error(), "only a superuser") {
				t.Fatalf("uninstall by the owner: %v, want an error saying only a superuser can", err)
			}
			if after := e.fenceTriggerStates(t); !equalStrings(before, after) {
				t.Fatalf("refused uninstall changed the fence's triggers:\nbefore %v\nafter  %v", before, after)
			}
			if st := e.status(t); !st.Installed || !st.DDLGuard {
				t.Fatalf("after a refused uninstall: %+v", st)
			}

			// A superuser's uninstall removes the event triggers with the rest.
			if err := fence.UninstallGraph(e.ctx, e.admin, g, true); err != nil {
				t.Fatal(err)
			}
			var left int
			if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'purgeguard%'").Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Fatalf("%d event triggers left after uninstall", left)
			}
			if _, err := e.svc.Exec(e.ctx, "ALTER TABLE call_logd_tenant ADD COLUMN after_uninstall int"); err != nil {
				t.Fatalf("DDL after uninstall: %v", err)
			}
		})
	}
}

// Installed by the tables' owner (not a superuser), the fence works but has no DDL
// guard, and says so: only a superuser may create event triggers.
func TestDDLGuard_NotInstalledByTheOwner(t *testing.T) {
	e, res := callLogd(t)
	g := callLogdGraph(t, e)
	role := ownerRole(t, e, "public", "call_logd_%")
	e.exec(t, "GRANT CREATE ON DATABASE "+pgx.Identifier{e.database(t)}.Sanitize()+" TO "+role)
	if err := fence.InstallGraph(e.ctx, e.svc, g); err != nil {
		t.Fatalf("install by the owner: %v", err)
	}
	st, err := fence.Status(e.ctx, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Installed || st.DDLGuard || st.NewPartitions {
		t.Fatalf("installed by the owner: installed %v, DDL guard %v, new partitions fenced %v; want installed without event triggers",
			st.Installed, st.DDLGuard, st.NewPartitions)
	}
	y := res.Tenants[1].String()
	e.refused(t, fmt.Sprintf(deleteTenant, y), "tenant "+y)
	if err := fence.UninstallGraph(e.ctx, e.svc, g, false); err != nil {
		t.Fatalf("uninstall by the owner who installed it: %v", err)
	}
}

func (e *env) status(t *testing.T) *fence.State {
	t.Helper()
	st, err := fence.Status(e.ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *env) database(t *testing.T) string {
	t.Helper()
	var db string
	if err := e.admin.QueryRow(e.ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

// fenceTriggerStates lists every trigger calling a function of schema purgeguard with
// its enabled state, partitions' clones included.
func (e *env) fenceTriggerStates(t *testing.T) []string {
	t.Helper()
	rows, err := e.admin.Query(e.ctx, `
		SELECT t.tgrelid::regclass::text || ' ' || t.tgname || ' ' || t.tgenabled::text
		FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'purgeguard' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no fence trigger: the test proves nothing")
	}
	return out
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
