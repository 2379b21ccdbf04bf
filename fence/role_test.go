package fence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// The service's role has no rights on schema purgeguard: the trigger still reads the
// approvals (SECURITY DEFINER) and refuses with the fence's error, not 42501.
func TestServiceRoleWithoutRightsOnTheFence(t *testing.T) {
	e, res := callLogd(t)
	e.install(t, callLogdGraph(t, e))

	role := pgx.Identifier{testenv.RandomName("svc_")}.Sanitize()
	e.exec(t, "CREATE ROLE "+role)
	t.Cleanup(func() {
		// Roles are cluster-wide: drop it before the test database goes.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	e.exec(t, "GRANT USAGE ON SCHEMA public TO "+role)
	e.exec(t, "GRANT SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO "+role)
	if _, err := e.svc.Exec(e.ctx, "SET ROLE "+role); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Exec(e.ctx, "SELECT count(*) FROM purgeguard.approval"); err == nil {
		t.Fatal("the service role reads purgeguard.approval: the test proves nothing")
	}

	x, y := res.Tenants[0].String(), res.Tenants[1].String()
	e.refused(t, fmt.Sprintf(deleteTenant, y), "tenant "+y)
	e.refused(t, "TRUNCATE call_logd_call_log CASCADE", "truncate of public.call_logd_call_log")
	e.arm(t, uuid.New(), time.Now().Add(time.Hour), x)
	if n := e.deleted(t, fmt.Sprintf(deleteTenant, x)); n != 1 {
		t.Fatalf("approved delete by the service role removed %d tenants, want 1", n)
	}
}
