package fence_test

import (
	"fmt"
	"testing"

	"github.com/purgeguard/purgeguard/fence"
)

// IsRefused must tell the fence's exception from any other failure of the statement.
func TestIsRefusedOnlyForTheFence(t *testing.T) {
	e, res := callLogd(t)
	e.install(t, callLogdGraph(t, e))

	_, fenced := e.svc.Exec(e.ctx, fmt.Sprintf(deleteTenant, res.Tenants[0]))
	if !fence.IsRefused(fenced) || !fence.IsRefused(fmt.Errorf("purge: %w", fenced)) {
		t.Errorf("IsRefused(%v) false, or false once wrapped", fenced)
	}
	// 0A000: a plain TRUNCATE of a referenced table fails before any trigger fires.
	_, referenced := e.svc.Exec(e.ctx, "TRUNCATE call_logd_tenant")
	// P0001: what any other trigger's RAISE EXCEPTION gives.
	_, raised := e.svc.Exec(e.ctx, "DO $$BEGIN RAISE EXCEPTION 'purgeguard: delete of tenant x refused'; END$$")
	for _, err := range []error{nil, referenced, raised, fmt.Errorf("no database error")} {
		if fence.IsRefused(err) {
			t.Errorf("IsRefused(%v) = true, want false", err)
		}
	}
}
