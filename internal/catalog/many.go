package catalog

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// SelectTenants selects the rows of several tenants in one scan: the tenant's key as
// text first, then t's stored columns, ordered by tenant, so that a reader can route
// each row to its tenant's stream while holding one stream open. It applies to a
// table whose rows reach the root through a single chain of cascade keys (no self
// reference, no diamond, no SET NULL reach), where the join along the chain selects
// exactly what Select does tenant by tenant; ok is false otherwise, and the caller
// uses Select per tenant.
func (g *Graph) SelectTenants(t *Table, tenants []uuid.UUID) (sql string, ok bool) {
	expr, joins, ok := g.attribution(t, true)
	if !ok || len(tenants) == 0 {
		return "", false
	}
	lits := make([]string, len(tenants))
	for i, id := range tenants {
		lits[i] = g.TenantLiteral(id)
	}
	// Ordered by the key itself, not its text: for one tenant the order is then
	// known from the WHERE clause and costs no sort.
	return fmt.Sprintf("SELECT %s::text, %s FROM %s WHERE %s IN (%s) ORDER BY %s",
		expr, columnList(t.ColumnNames()), joins, expr, strings.Join(lits, ", "), expr), true
}
