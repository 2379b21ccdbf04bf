package snapshot_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/snapshot"
)

// Children selected by the keys of their parent's saved rows hold exactly what the
// join back to the parent selects, for one tenant and for several in one run; and
// past the key budget a run falls back to the join and saves the same rows.
func TestRun_KeyedChildrenEqualJoined(t *testing.T) {
	e := newEnv(t)
	for _, tenants := range [][]int{{0}, {0, 1, 2}} {
		o := e.options()
		for _, i := range tenants {
			o.Tenants = append(o.Tenants, e.res.Tenants[i])
		}
		run := func(budget int64) ([]*archive.Manifest, string) {
			defer snapshot.SetKeyBudget(budget)()
			var logs bytes.Buffer
			o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := fileStore(t)
			ms := e.run(t, s, o)
			for _, m := range ms {
				for i, tb := range m.Tables {
					m.Tables[i].Key = strings.Join(storedLines(t, s, tb.Key), "")
				}
			}
			return ms, logs.String()
		}
		keyed, klog := run(16 << 20)
		joined, jlog := run(0)
		if !strings.Contains(klog, "selected by its parent's saved keys") || strings.Contains(klog, "over budget") {
			t.Fatalf("%d tenants: the keyed run did not select children by keys:\n%s", len(tenants), klog)
		}
		if !strings.Contains(jlog, "over budget") {
			t.Fatalf("%d tenants: the run over budget did not fall back to the join:\n%s", len(tenants), jlog)
		}
		for i := range keyed {
			for j, tb := range keyed[i].Tables {
				other := joined[i].Tables[j]
				if tb.Name != other.Name || tb.Key != other.Key || tb.Rows != other.Rows {
					t.Errorf("%d tenants, tenant %s, %s: by keys %d rows, joined %s %d rows, contents differ",
						len(tenants), keyed[i].Tenant, tb.Name, tb.Rows, other.Name, other.Rows)
				}
			}
			if keyed[i].Totals().Rows == 0 {
				t.Errorf("tenant %s: empty snapshot: the test compares nothing", keyed[i].Tenant)
			}
		}
		if !slices.EqualFunc(keyed, joined, func(a, b *archive.Manifest) bool { return a.Tenant == b.Tenant }) {
			t.Errorf("manifests in a different order")
		}
	}
}
