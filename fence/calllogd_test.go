package fence_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/catalog"
)

const deleteTenant = "DELETE FROM call_logd_tenant WHERE uuid = '%s'"

func TestDeleteWithoutApprovalIsRefused(t *testing.T) {
	e, res := callLogd(t)
	e.install(t, callLogdGraph(t, e))

	// The sync bug: every tenant at once.
	pgErr := e.refused(t, "DELETE FROM call_logd_tenant",
		"delete of tenant", "public.call_logd_tenant", "run the purge through `purgeguard guard`")
	if pgErr.SchemaName != "public" || pgErr.TableName != "call_logd_tenant" {
		t.Errorf("error names %s.%s, want public.call_logd_tenant", pgErr.SchemaName, pgErr.TableName)
	}
	y := res.Tenants[1].String()
	e.refused(t, fmt.Sprintf(deleteTenant, y), "tenant "+y)
}

func TestArmApprovesOnlyArmedLiveTenants(t *testing.T) {
	e, res := callLogd(t)
	e.install(t, callLogdGraph(t, e))
	x, y, x2, z := res.Tenants[0].String(), res.Tenants[1].String(), res.Tenants[2].String(), res.Tenants[3].String()

	run := uuid.New()
	e.arm(t, run, time.Now().Add(time.Hour), x)
	e.refused(t, fmt.Sprintf("DELETE FROM call_logd_tenant WHERE uuid IN ('%s', '%s')", x, y), "tenant "+y)

	before := e.counts(t)
	var xLogs int64
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1", x).Scan(&xLogs); err != nil || xLogs == 0 {
		t.Fatalf("call logs of %s: %d, %v", x, xLogs, err)
	}
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, x)); n != 1 {
		t.Fatalf("approved delete removed %d tenants, want 1", n)
	}
	after := e.counts(t)
	if got := before["call_logd_tenant"] - after["call_logd_tenant"]; got != 1 {
		t.Errorf("tenants: %d removed, want 1", got)
	}
	if got := before["call_logd_call_log"] - after["call_logd_call_log"]; got != xLogs {
		t.Errorf("call logs: %d removed, want the %d of %s (the cascade)", got, xLogs, x)
	}

	// An approval past its expiry approves nothing.
	e.arm(t, uuid.New(), time.Now().Add(-time.Minute), y)
	e.refused(t, fmt.Sprintf(deleteTenant, y), "tenant "+y)

	// Disarm withdraws the run's approvals, and only the run's.
	other, disarmed := uuid.New(), uuid.New()
	e.arm(t, other, time.Now().Add(time.Hour), z)
	e.arm(t, disarmed, time.Now().Add(time.Hour), x2)
	if err := fence.Disarm(e.ctx, e.admin, disarmed); err != nil {
		t.Fatalf("Disarm: %v", err)
	}
	e.refused(t, fmt.Sprintf(deleteTenant, x2), "tenant "+x2)
	var expired int
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM purgeguard.approval WHERE tenant = $1", y).Scan(&expired); err != nil || expired != 0 {
		t.Errorf("expired approvals left after Disarm: %d, %v", expired, err)
	}
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, z)); n != 1 {
		t.Errorf("delete of %s, armed by another run: %d rows, want 1", z, n)
	}
}

func TestTruncateOfGraphTablesIsRefused(t *testing.T) {
	e, _ := callLogd(t)
	g := callLogdGraph(t, e)
	e.install(t, g)
	// A plain TRUNCATE of a table other tables reference fails before any trigger
	// (0A000); CASCADE is the form that empties them, and triggers fire in the order
	// the tables are named.
	for _, tb := range g.Tables {
		e.refused(t, "TRUNCATE "+tb.Name.Sanitize()+" CASCADE", "truncate of "+tb.Name.String())
	}
	e.refused(t, "TRUNCATE call_logd_export", "truncate of public.call_logd_export")
	e.refused(t, "TRUNCATE cel, call_logd_retention", "truncate of public.call_logd_retention")
	// The fence is about the tenant graph: other tables are none of its business.
	if _, err := e.svc.Exec(e.ctx, "TRUNCATE cel"); err != nil {
		t.Errorf("TRUNCATE of a table outside the graph: %v", err)
	}
}

func TestInstallTwiceStatusAndUninstall(t *testing.T) {
	e, res := callLogd(t)
	g := callLogdGraph(t, e)
	catalogBefore, dataBefore := e.catalogState(t), e.contents(t)

	e.install(t, g)
	e.install(t, g)
	if got, want := len(e.fenceTriggers(t)), len(g.Tables)+1; got != want {
		t.Errorf("%d fence triggers after two installs, want %d: %v", got, want, e.fenceTriggers(t))
	}

	x, y := res.Tenants[0].String(), res.Tenants[1].String()
	run, snapshot := uuid.New(), uuid.New()
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	if err := fence.Arm(e.ctx, e.admin, run, []fence.Approval{{Tenant: x, Snapshot: snapshot, Run: run, ExpiresAt: expires}}); err != nil {
		t.Fatalf("Arm: %v", err)
	}
	e.arm(t, uuid.New(), time.Now().Add(-time.Hour), y)

	st, err := fence.Status(e.ctx, e.svc)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	var want []catalog.Name
	for _, tb := range g.Tables {
		want = append(want, tb.Name)
	}
	slices.SortFunc(want, func(a, b catalog.Name) int { return strings.Compare(a.String(), b.String()) })
	if !st.Installed || !slices.Equal(st.Tables, want) {
		t.Errorf("Status: installed %v, tables %v; want installed, %v", st.Installed, st.Tables, want)
	}
	if len(st.Approvals) != 1 {
		t.Fatalf("Status approvals %+v, want only the live one of %s", st.Approvals, x)
	}
	if a := st.Approvals[0]; a.Tenant != x || a.Run != run || a.Snapshot != snapshot || !a.ExpiresAt.Equal(expires) || a.CreatedAt.IsZero() {
		t.Errorf("Status approval %+v, want tenant %s run %s snapshot %s expiring %s", a, x, run, snapshot, expires)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"installed":true`, `"tables":[`, `"approvals":[`, `"expires_at":`, `"created_at":`, `"snapshot":"` + snapshot.String()} {
		if !strings.Contains(string(js), key) {
			t.Errorf("Status JSON %s lacks %s", js, key)
		}
	}

	e.uninstall(t, g)
	if after := e.catalogState(t); !slices.Equal(catalogBefore, after) {
		t.Errorf("catalog after Uninstall differs:\nbefore %q\nafter  %q", catalogBefore, after)
	}
	if after := e.contents(t); fmt.Sprint(after) != fmt.Sprint(dataBefore) {
		t.Errorf("data after Uninstall differs:\nbefore %v\nafter  %v", dataBefore, after)
	}
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, y)); n != 1 {
		t.Errorf("delete after Uninstall removed %d tenants, want 1", n)
	}
	e.uninstall(t, g)
	if st, err := fence.Status(e.ctx, e.admin); err != nil || st.Installed {
		t.Errorf("Status after Uninstall: %+v, %v; want not installed", st, err)
	}
	if err := fence.Arm(e.ctx, e.admin, run, []fence.Approval{{Tenant: x, ExpiresAt: expires}}); !errors.Is(err, fence.ErrNotInstalled) {
		t.Errorf("Arm without the fence: %v, want ErrNotInstalled", err)
	}
	if err := fence.Disarm(e.ctx, e.admin, run); !errors.Is(err, fence.ErrNotInstalled) {
		t.Errorf("Disarm without the fence: %v, want ErrNotInstalled", err)
	}
}

func TestInstallFollowsTheGraphAndUninstallFindsStrays(t *testing.T) {
	e, _ := callLogd(t)
	e.install(t, callLogdGraph(t, e))

	// The graph gains call_logd_note and loses call_logd_export.
	// Qualified: the test's role is called purgeguard, and "$user" now names a schema.
	e.exec(t, "CREATE TABLE public.call_logd_note (id serial PRIMARY KEY, tenant_uuid uuid NOT NULL REFERENCES call_logd_tenant (uuid) ON DELETE CASCADE)")
	e.exec(t, "ALTER TABLE call_logd_export DROP CONSTRAINT call_logd_export_tenant_uuid_fkey")
	e.install(t, callLogdGraph(t, e))
	e.refused(t, "TRUNCATE call_logd_note", "truncate of public.call_logd_note")
	if _, err := e.svc.Exec(e.ctx, "TRUNCATE call_logd_export"); err != nil {
		t.Errorf("TRUNCATE of a table that left the graph: %v", err)
	}

	// Without a new Install, a table leaving the graph and a renamed one keep their
	// triggers; Uninstall must still find them (here without any graph).
	e.exec(t, "ALTER TABLE call_logd_retention DROP CONSTRAINT call_logd_retention_tenant_uuid_fkey")
	e.exec(t, "ALTER TABLE call_logd_recording RENAME TO call_logd_recording_old")
	// A table of the user's own in schema purgeguard is not the fence's to drop.
	e.exec(t, "CREATE TABLE purgeguard.mine (x int)")
	if err := fence.Uninstall(e.ctx, e.admin, nil, false); err == nil || !strings.Contains(err.Error(), "objects the fence did not create") {
		t.Fatalf("Uninstall with a foreign table in schema purgeguard: %v, want it refused", err)
	}
	if st, err := fence.Status(e.ctx, e.admin); err != nil || !st.Installed {
		t.Fatalf("Status after a refused Uninstall: %+v, %v; want the fence still installed", st, err)
	}
	e.exec(t, "ALTER TABLE purgeguard.mine SET SCHEMA public")
	if err := fence.Uninstall(e.ctx, e.admin, nil, false); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	if left := e.fenceTriggers(t); len(left) > 0 {
		t.Errorf("triggers left after Uninstall: %v", left)
	}
}

func TestInstallIsOneTransaction(t *testing.T) {
	e, _ := callLogd(t)
	g := *callLogdGraph(t, e)
	g.Key = "tenant_uuid" // not a column of the root
	err := fence.InstallGraph(e.ctx, e.admin, &g)
	if !errors.Is(err, catalog.ErrNotFound) || !strings.Contains(err.Error(), "fence: install on public.call_logd_tenant") {
		t.Fatalf("Install with a wrong key: %v, want a named ErrNotFound", err)
	}
	// The last table's trigger fails to create: nothing before it may stay.
	g = *callLogdGraph(t, e)
	g.Tables = append(slices.Clone(g.Tables), &catalog.Table{Name: catalog.Name{Schema: "public", Table: "no_such_table"}})
	if err := fence.InstallGraph(e.ctx, e.admin, &g); err == nil || !strings.Contains(err.Error(), "public.no_such_table") {
		t.Fatalf("Install with a missing table: %v, want an error naming it", err)
	}
	if st, err := fence.Status(e.ctx, e.admin); err != nil || st.Installed {
		t.Errorf("Status after failed installs: %+v, %v; want not installed", st, err)
	}
	if left := e.fenceTriggers(t); len(left) > 0 {
		t.Errorf("triggers left by failed installs: %v", left)
	}
}
