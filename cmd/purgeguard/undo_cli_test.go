package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/undo"
)

// undoPurge stands in for a purge job that takes files first, as call-logd's does:
// it removes the approved tenants' recording and export files, then deletes the
// tenants (ON DELETE CASCADE takes their rows).
const undoPurge = `set -eu
q() { "${PGBIN:+$PGBIN/}psql" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
ids="$PURGEGUARD_APPROVED_TENANTS"
echo "SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
	WHERE c.tenant_uuid = ANY (string_to_array(:'ids', ',')::uuid[]) AND r.path IS NOT NULL
	UNION ALL SELECT path FROM call_logd_export WHERE tenant_uuid = ANY (string_to_array(:'ids', ',')::uuid[]) AND path IS NOT NULL" |
	q -v ids="$ids" | while IFS= read -r p; do rm -f "$p"; done
echo "DELETE FROM call_logd_tenant WHERE uuid = ANY (string_to_array(:'ids', ',')::uuid[])" | q -v ids="$ids"
`

type undoWorld struct {
	env           map[string]string
	conn          *pgx.Conn
	rec, exp      string
	tenants       []uuid.UUID // purged by the guarded runs
	others        []uuid.UUID // kept
	purge, doomed string
}

func newUndoWorld(t *testing.T) *undoWorld {
	t.Helper()
	cw := newCallLogdWorld(t, fixture.Options{Seed: 19, Tenants: 23, CallLogsPerTenant: 12, RecordingEvery: 2})
	dsn, dir, res := cw.dsn, cw.dir, cw.res
	w := &undoWorld{conn: cw.conn, rec: cw.rec, exp: cw.exp}
	w.tenants, w.others = res.Tenants[:20], res.Tenants[20:]
	b := testenv.MinIO(t)
	cfg := filepath.Join(dir, "purgeguard.yaml")
	// A policy loosened for the test: twenty tenants of 23, recently active.
	yaml := fmt.Sprintf(`storage:
  s3:
    insecure: true
policy:
  max_tenants: -1
  max_fraction: 1
  active_within: 0s
files:
  - table: public.call_logd_recording
    column: path
    root: %s
  - table: public.call_logd_export
    column: path
    root: %s
`, w.rec, w.exp)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = map[string]string{
		"PURGEGUARD_DATABASE_URL": dsn, "PURGEGUARD_CONFIG": cfg,
		"PURGEGUARD_STORAGE_URL": b.URL("undo"), "PURGEGUARD_S3_ENDPOINT": b.Endpoint,
		"AWS_ACCESS_KEY_ID": b.AccessKey, "AWS_SECRET_ACCESS_KEY": b.SecretKey, "AWS_REGION": b.Region,
	}
	t.Setenv("DATABASE_URL", dsn)
	w.purge = filepath.Join(dir, "purge.sh")
	if err := os.WriteFile(w.purge, []byte(undoPurge), 0o700); err != nil {
		t.Fatal(err)
	}
	w.doomed = filepath.Join(dir, "doomed.txt")
	var lines []string
	for _, id := range w.tenants {
		lines = append(lines, id.String())
	}
	if err := os.WriteFile(w.doomed, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// guardPurge purges the twenty tenants through guard and returns the run id.
func (w *undoWorld) guardPurge(t *testing.T) uuid.UUID {
	t.Helper()
	code, stdout, stderr := runCLI(t, w.env, "-o", "json", "guard", "--delete", w.doomed, "--", "sh", w.purge)
	if code != exitOK {
		t.Fatalf("guarded purge: exit %d\n%s%s", code, stdout, stderr)
	}
	var res struct {
		Run       uuid.UUID `json:"run"`
		Snapshots []struct {
			Tenant uuid.UUID `json:"tenant"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Snapshots) != len(w.tenants) {
		t.Fatalf("guard output: %v, %d snapshots, want %d:\n%s", err, len(res.Snapshots), len(w.tenants), stdout)
	}
	var left int
	if err := w.conn.QueryRow(testenv.Context(t), "SELECT count(*) FROM call_logd_tenant").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != len(w.others) {
		t.Fatalf("after the purge: %d tenants, want %d", left, len(w.others))
	}
	return res.Run
}

// state is the md5 of every table (rows ordered) and every file under the roots
// with its bytes, mode, owner, group and mtime.
func (w *undoWorld) state(t *testing.T) map[string]string {
	t.Helper()
	out := testenv.TableState(t, w.conn)
	files := testenv.FileState(t, w.rec, w.exp)
	if len(files) == 0 {
		t.Fatal("no file under the roots: the test would not look at files")
	}
	maps.Copy(out, files)
	return out
}

type undoDoc struct {
	Plan   undo.Plan   `json:"plan"`
	Result undo.Result `json:"result"`
}

func (w *undoWorld) undo(t *testing.T, wantCode int, args ...string) undoDoc {
	t.Helper()
	code, stdout, stderr := runCLI(t, w.env, append([]string{"-o", "json", "undo"}, args...)...)
	if code != wantCode {
		t.Fatalf("undo %v: exit %d, want %d\n%s%s", args, code, wantCode, stdout, stderr)
	}
	var doc undoDoc
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("undo %v: output is not one JSON document: %v\n%s", args, err, stdout)
	}
	return doc
}

func statuses(r undo.Result) map[string]int {
	out := map[string]int{}
	for _, t := range r.Tenants {
		out[t.Status]++
	}
	return out
}

func inserted(r undo.Result) (n int64) {
	for _, t := range r.Tenants {
		n += t.Inserted + t.Updated + int64(t.FilesWritten)
	}
	return n
}

// Issue 19's acceptance: twenty tenants purged by one guarded run come back with one
// undo --run, the database and the files identical to before; a second undo inserts
// nothing; a conflicting file fails its tenant alone (the 19 others restored, exit
// 1, the reason named), and once it is fixed a rerun restores only that tenant.
func TestUndo_GuardRun(t *testing.T) {
	w := newUndoWorld(t)
	ctx := testenv.Context(t)
	original := w.state(t)
	run := w.guardPurge(t)

	dry := w.undo(t, exitOK, "--run", run.String(), "--dry-run")
	if len(dry.Plan.Tenants) != 20 || dry.Plan.Run == nil || dry.Plan.Run.ID != run || dry.Plan.Files == 0 {
		t.Fatalf("plan: %d tenants (want 20), run %+v, %d files", len(dry.Plan.Tenants), dry.Plan.Run, dry.Plan.Files)
	}
	if got := statuses(dry.Result); got[undo.WouldRestore] != 20 || !dry.Result.DryRun {
		t.Errorf("dry run: %v, want 20 would_restore", got)
	}
	var left int
	if err := w.conn.QueryRow(ctx, "SELECT count(*) FROM call_logd_tenant").Scan(&left); err != nil || left != len(w.others) {
		t.Fatalf("the dry run changed the database: %d tenants (%v), want %d", left, err, len(w.others))
	}

	doc := w.undo(t, exitOK, "--run", run.String(), "--jobs", "3")
	if got := statuses(doc.Result); got[undo.Restored] != 20 {
		t.Errorf("undo: %v, want 20 restored", got)
	}
	testenv.SameState(t, "after undo", original, w.state(t))

	again := w.undo(t, exitOK, "--run", run.String())
	if got := statuses(again.Result); got[undo.Present] != 20 || inserted(again.Result) != 0 {
		t.Errorf("second undo: %v, %d rows and files put back; want 20 present and nothing", got, inserted(again.Result))
	}

	// A second bad run; one tenant's recording is in the way with other content.
	run2 := w.guardPurge(t)
	victim := w.tenants[7]
	var path string
	if err := w.conn.QueryRow(ctx, `SELECT path FROM call_logd_recording WHERE path LIKE $1 LIMIT 1`, w.rec+"/"+victim.String()+"/%").Scan(&path); err == nil {
		t.Fatal("the purge left the victim's rows")
	}
	path = ""
	for k := range original {
		if p, ok := strings.CutPrefix(k, "file "+w.rec+"/"+victim.String()+"/"); ok && path == "" {
			path = filepath.Join(w.rec, victim.String(), p)
		}
	}
	if path == "" {
		t.Fatal("the victim has no recording file")
	}
	if err := os.WriteFile(path, []byte("someone else's recording"), 0o640); err != nil {
		t.Fatal(err)
	}
	failed := w.undo(t, exitError, "--run", run2.String(), "--jobs", "2")
	if got := statuses(failed.Result); got[undo.Restored] != 19 || got[undo.Failed] != 1 {
		t.Errorf("undo with a conflicting file: %v, want 19 restored and 1 failed", got)
	}
	for _, tr := range failed.Result.Tenants {
		if tr.Status == undo.Failed && (tr.Tenant != victim || !strings.Contains(tr.Reason, path) || !strings.Contains(tr.Reason, "different content")) {
			t.Errorf("failed tenant %s: reason %q; want %s, naming %s and its different content", tr.Tenant, tr.Reason, victim, path)
		}
	}
	var victimRows, back int
	if err := w.conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE uuid = $1), count(*) FROM call_logd_tenant", victim).Scan(&victimRows, &back); err != nil {
		t.Fatal(err)
	}
	if victimRows != 0 || back != len(w.others)+19 {
		t.Errorf("after the partial undo: victim rows %d (want 0: rolled back), tenants %d (want %d)", victimRows, back, len(w.others)+19)
	}

	// Fixed: the stray file moved away. The rerun restores the victim alone.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	rerun := w.undo(t, exitOK, "--run", run2.String())
	if got := statuses(rerun.Result); got[undo.Restored] != 1 || got[undo.Present] != 19 {
		t.Errorf("rerun: %v, want 1 restored and 19 present", got)
	}
	for _, tr := range rerun.Result.Tenants {
		if tr.Status == undo.Restored && tr.Tenant != victim {
			t.Errorf("rerun restored %s, want only %s", tr.Tenant, victim)
		}
		if tr.Status == undo.Present && tr.Inserted+tr.Updated != 0 {
			t.Errorf("rerun inserted %d rows for %s, already back", tr.Inserted+tr.Updated, tr.Tenant)
		}
	}
	testenv.SameState(t, "after the rerun", original, w.state(t))

	// history lists both runs, newest first, with what they did.
	code, stdout, stderr := runCLI(t, w.env, "-o", "json", "history")
	if code != exitOK {
		t.Fatalf("history: exit %d\n%s%s", code, stdout, stderr)
	}
	var hist struct {
		Runs []struct {
			Run       uuid.UUID   `json:"run"`
			Scope     string      `json:"scope"`
			Command   []string    `json:"command"`
			Targets   []uuid.UUID `json:"targets"`
			Snapshots []any       `json:"snapshots"`
			ExitCode  int         `json:"exit_code"`
			Verdict   string      `json:"verdict"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(stdout), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Runs) != 2 || hist.Runs[0].Run != run2 || hist.Runs[1].Run != run {
		t.Fatalf("history: %+v, want runs %s then %s", hist.Runs, run2, run)
	}
	for _, r := range hist.Runs {
		if r.Scope != archive.ScopeTenant || len(r.Targets) != 20 || len(r.Snapshots) != 20 || r.ExitCode != 0 || r.Verdict != "clean" ||
			!slices.Equal(r.Command, []string{"sh", w.purge}) {
			t.Errorf("history run %s: %+v", r.Run, r)
		}
	}
	code, stdout, _ = runCLI(t, w.env, "history")
	if code != exitOK || !strings.Contains(stdout, run2.String()) || !strings.Contains(stdout, "clean") {
		t.Errorf("history text: exit %d\n%s", code, stdout)
	}
}
