package restore_test

import (
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/snapshot"
)

func (w *world) retentionSnapshot(t *testing.T, purgeDays int) []*archive.Manifest {
	t.Helper()
	cfg, _ := pgx.ParseConfig(w.dsn)
	ms, err := snapshot.Run(testenv.Context(t), cfg, w.store, snapshot.Options{Retention: fixture.Retention(purgeDays),
		Graph: w.catalog, Files: w.snapF, ToolVersion: "test", Reason: "nightly"})
	if err != nil {
		t.Fatalf("snapshot --retention: %v", err)
	}
	return manifests(t, w.store, ms)
}

// retentionPurge runs testdata's call-logd retention purge: files first, as the real
// one removes them before it commits. It returns how many files it removed.
func (w *world) retentionPurge(t *testing.T, purgeDays int) int {
	t.Helper()
	removed, err := fixture.RetentionPurge(testenv.Context(t), w.conn, purgeDays)
	if err != nil {
		t.Fatal(err)
	}
	return removed
}

// setDays gives a tenant its own retention days (nil: NULL, the default).
func (w *world) setDays(t *testing.T, tenant uuid.UUID, cdr, recording, export *int) {
	t.Helper()
	_, err := w.conn.Exec(testenv.Context(t), `INSERT INTO call_logd_retention (tenant_uuid, cdr_days, recording_days, export_days)
		VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_uuid) DO UPDATE
		SET cdr_days = EXCLUDED.cdr_days, recording_days = EXCLUDED.recording_days, export_days = EXCLUDED.export_days`,
		tenant, cdr, recording, export)
	if err != nil {
		t.Fatal(err)
	}
}

func days(n int) *int { return &n }

// Tenants with different days: one keeps 30 days of call logs, one empties
// recordings after 60 days but keeps call logs a year, one is on the defaults (and
// the purge job's days, changed, apply to it). snapshot --retention, the purge, then a
// fill-nulls restore of every snapshot: the database and the files are exactly as
// before the purge.
func TestRetention_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		purgeDays int
	}{{"job days unchanged", 365}, {"job days changed", 300}} {
		t.Run(tc.name, func(t *testing.T) {
			w := callLogd(t, fileStore(t))
			w.setDays(t, w.tenants[0], days(30), nil, days(1))
			w.setDays(t, w.tenants[1], nil, days(60), nil)
			beforeDB, beforeFiles := w.state(t), w.fileState(t)

			ms := w.retentionSnapshot(t, tc.purgeDays)
			if len(ms) != len(w.tenants) {
				t.Fatalf("%d retention snapshots, want one per tenant (%d)", len(ms), len(w.tenants))
			}
			for _, m := range ms {
				if m.Scope.Kind != archive.ScopeRetention || len(m.Scope.Cutoffs) != 3 {
					t.Errorf("snapshot of %s: scope %+v, want retention with 3 cut-offs", m.Tenant, m.Scope)
				}
			}
			if d := ms[0].Scope.Days; d["cdr"] != 30 || d["recording"] != 365 && tc.purgeDays == 365 || d["export"] != 1 {
				t.Errorf("tenant 0 days %v, want cdr 30, export 1", d)
			}
			if d := ms[2].Scope.Days; d["cdr"] != tc.purgeDays || d["export"] != map[bool]int{true: 2, false: tc.purgeDays}[tc.purgeDays == 365] {
				t.Errorf("tenant 2 days %v with the job at %d days", d, tc.purgeDays)
			}
			removed := w.retentionPurge(t, tc.purgeDays)
			afterDB := w.state(t)
			if removed == 0 || afterDB["public.call_logd_call_log"] == beforeDB["public.call_logd_call_log"] ||
				afterDB["public.call_logd_recording"] == beforeDB["public.call_logd_recording"] {
				t.Fatalf("the purge removed %d files and changed call logs %v / recordings %v: the test proves nothing",
					removed, afterDB["public.call_logd_call_log"] != beforeDB["public.call_logd_call_log"],
					afterDB["public.call_logd_recording"] != beforeDB["public.call_logd_recording"])
			}
			for _, m := range ms {
				o := w.options(m.Tenant)
				o.Snapshot, o.OnConflict = m.ID, restore.ConflictFillNulls
				w.mustRestore(t, o)
			}
			sameState(t, "after restoring every retention snapshot", beforeDB, w.state(t))
			sameState(t, "files after restoring every retention snapshot", beforeFiles, w.fileState(t))
		})
	}
}

// Two nights: the first empties recordings older than 60 days, the second deletes
// call logs older than 90 days (among them calls whose recording the first night
// emptied). Restoring the two snapshots in either order gives the database and files
// of before the first night; a plain skip restore would leave the paths NULL.
func TestRetention_SnapshotsInAnyOrder(t *testing.T) {
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		t.Run(strconv.Itoa(order[0])+strconv.Itoa(order[1]), func(t *testing.T) {
			w := callLogd(t, fileStore(t))
			tenant := w.tenants[1]
			for _, other := range []uuid.UUID{w.tenants[0], w.tenants[2]} {
				w.setDays(t, other, days(100000), days(100000), days(100000))
			}
			beforeDB, beforeFiles := w.state(t), w.fileState(t)

			w.setDays(t, tenant, days(100000), days(60), days(100000))
			night1 := w.retentionSnapshot(t, 365)
			w.retentionPurge(t, 365)
			w.setDays(t, tenant, days(90), days(60), days(100000))
			night2 := w.retentionSnapshot(t, 365)
			w.retentionPurge(t, 365)
			if len(night1) != 1 || len(night2) != 1 || night1[0].Tenant != tenant || night2[0].Tenant != tenant {
				t.Fatalf("want one snapshot of %s per night, got %d and %d", tenant, len(night1), len(night2))
			}
			w.setDays(t, tenant, days(100000), days(100000), days(100000))

			snaps := []*archive.Manifest{night1[0], night2[0]}
			for _, i := range order {
				o := w.options(tenant)
				o.Snapshot, o.OnConflict = snaps[i].ID, restore.ConflictFillNulls
				w.mustRestore(t, o)
			}
			// The days were put back by hand above: compare everything else.
			want, got := beforeDB, w.state(t)
			delete(want, "public.call_logd_retention")
			delete(got, "public.call_logd_retention")
			sameState(t, "after both restores", want, got)
			sameState(t, "files after both restores", beforeFiles, w.fileState(t))
		})
	}
}
