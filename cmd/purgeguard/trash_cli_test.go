package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// dbState digests every table of the database but purgeguard's own, each ordered by
// the row's text: equal states are equal rows, byte for byte.
func dbState(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	ctx := testenv.Context(t)
	rows, err := conn.Query(ctx, `
		SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'purgeguard')
			AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var s string
		if err := conn.QueryRow(ctx, "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM "+tb+" t").Scan(&s); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		out[tb] = s
	}
	return out
}

func sameState(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, k+": "+v+" -> "+after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, k+": new table")
		}
	}
	if len(diff) > 0 {
		t.Errorf("%s: tables differ:\n%s", what, strings.Join(diff, "\n"))
	}
}

// removeTenant runs testdata's remove_tenant() stand-in, outside guard.
func removeTenant(t *testing.T, dsn, tenant string) {
	t.Helper()
	script, err := filepath.Abs("../../testdata/calllogd/remove_tenant.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "TENANT="+tenant)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("remove_tenant.sh: %v\n%s", err, out)
	}
}

type trashSaveOut struct {
	Recovered []struct{ Tenant, Snapshot string } `json:"recovered"`
	Saved     []struct {
		Tenant, Snapshot string
		Rows             int64
	} `json:"saved"`
	Unresolved int64 `json:"unresolved_rows"`
}

func trashSave(t *testing.T, env map[string]string) trashSaveOut {
	t.Helper()
	code, out, errOut := runCLI(t, env, "-o", "json", "trash", "save")
	var got trashSaveOut
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("trash save: exit %d\n%s%s", code, out, errOut)
	}
	return got
}

func trashRows(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(testenv.Context(t), "SELECT count(*) FROM purgeguard.trash").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// call-logd's remove_tenant(), run outside guard with the capturing fence: it
// succeeds (the service keeps working), every row it deleted or emptied is in the
// trash, and trash save then restore bring back every table exactly.
// Files: remove_tenant() unlinks the tenant's recordings first; without the file
// shield the trash snapshot records them as missing, so this test checks the rows
// only (TestCLI_TrashRemoveTenantWithShield checks the files).
func TestCLI_TrashRemoveTenant(t *testing.T) {
	env, res, _ := cliEnv(t)
	dsn := env["PURGEGUARD_DATABASE_URL"]
	conn := testenv.Connect(t, dsn)
	if code, out, errOut := runCLI(t, env, "fence", "install", "--mode", "capture"); code != exitOK || !strings.Contains(out, "capture mode") {
		t.Fatalf("fence install --mode capture: exit %d\n%s%s", code, out, errOut)
	}
	before := dbState(t, conn)
	victim := res.Tenants[1].String()

	removeTenant(t, dsn, victim)
	var left int64
	if err := conn.QueryRow(testenv.Context(t), "SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1", victim).Scan(&left); err != nil || left != 0 {
		t.Fatalf("after remove_tenant: %d call logs of the tenant left (%v), want 0", left, err)
	}

	code, out, errOut := runCLI(t, env, "-o", "json", "trash", "list", "--tenant", victim)
	var list struct {
		Groups []struct {
			Tenant *string
			Table  string
			Rows   int64
		} `json:"groups"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list.Groups) == 0 {
		t.Fatalf("trash list --tenant: exit %d, want groups\n%s%s", code, out, errOut)
	}
	tables := map[string]bool{}
	for _, g := range list.Groups {
		tables[g.Table] = true
	}
	for _, want := range []string{"public.call_logd_tenant", "public.call_logd_call_log", "public.call_logd_call_log_participant", "public.call_logd_recording", "public.call_logd_export"} {
		if !tables[want] {
			t.Errorf("trash list: no rows of %s\n%s", want, out)
		}
	}
	var total int64
	for _, g := range list.Groups {
		total += g.Rows
	}
	code, out, errOut = runCLI(t, env, "-o", "json", "trash", "list", "--tenant", victim, "--by", "tenant")
	var sum struct {
		By      string
		Summary []struct {
			Tenant       *string
			Transactions int
			Rows         int64
		}
	}
	if code != exitOK || json.Unmarshal([]byte(out), &sum) != nil || sum.By != "tenant" || len(sum.Summary) != 1 ||
		sum.Summary[0].Tenant == nil || *sum.Summary[0].Tenant != victim || sum.Summary[0].Rows != total || sum.Summary[0].Transactions < 1 {
		t.Errorf("trash list --by tenant: exit %d, want the victim's %d rows on one line\n%s%s", code, total, out, errOut)
	}
	if code, out, errOut := runCLI(t, env, "trash", "list", "--by", "day"); code != exitUsage || !strings.Contains(errOut, "transaction, table or tenant") {
		t.Errorf("trash list --by day: exit %d, want %d naming the choices\n%s%s", code, exitUsage, out, errOut)
	}

	metricsFile := filepath.Join(t.TempDir(), "purgeguard.prom")
	env["PURGEGUARD_METRICS_FILE"] = metricsFile
	saved := trashSave(t, env)
	delete(env, "PURGEGUARD_METRICS_FILE")
	if len(saved.Saved) != 1 || saved.Saved[0].Tenant != victim || saved.Unresolved != 0 {
		t.Fatalf("trash save: %+v, want one snapshot of %s and nothing unattributed", saved, victim)
	}
	prom, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`purgeguard_trash_rows{command="trash"} 0`, `purgeguard_trash_oldest_row_timestamp_seconds{command="trash"} 0`,
		`purgeguard_last_run_exit_code{command="trash"} 0`} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics after trash save: no %q in\n%s", want, prom)
		}
	}
	if n := trashRows(t, conn); n != 0 {
		t.Fatalf("trash after save: %d rows, want 0", n)
	}
	if code, out, errOut := runCLI(t, env, "verify", "--tenant", victim); code != exitOK {
		t.Fatalf("verify of the trash snapshot: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, env, "restore", "--tenant", victim, "--snapshot", saved.Saved[0].Snapshot, "--on-conflict", "fill-nulls"); code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	sameState(t, "after remove_tenant, trash save and restore", before, dbState(t, conn))
}

// The nightly retention purge with the capturing fence: run outside guard, what it
// deletes and empties is kept, and trash save then a fill-nulls restore give the
// database back; run under guard --retention, the fence lets exactly the saved rows
// go (the trash stays empty) and the guard's snapshots give it back.
func TestCLI_TrashRetention(t *testing.T) {
	env, res, _ := cliEnv(t)
	// The purge takes most of this small fixture: let the retention rules allow it.
	appendConfig(t, env, "policy:\n  retention:\n    max_fraction: 1\n    max_tenant_fraction: 1\n")
	dsn := env["PURGEGUARD_DATABASE_URL"]
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(ctx, `DELETE FROM call_logd_retention;
		INSERT INTO call_logd_retention (tenant_uuid, cdr_days, recording_days, export_days) VALUES
		('`+res.Tenants[0].String()+`', 30, NULL, 1), ('`+res.Tenants[1].String()+`', NULL, 60, NULL)`); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, env, "fence", "install", "--mode", "capture"); code != exitOK {
		t.Fatalf("fence install --mode capture: exit %d\n%s%s", code, out, errOut)
	}
	before := dbState(t, conn)
	purge, err := filepath.Abs("../../testdata/calllogd/retention_purge.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", dsn)

	// Outside guard.
	if out, err := exec.Command(purge).CombinedOutput(); err != nil {
		t.Fatalf("retention purge: %v\n%s", err, out)
	}
	if n := trashRows(t, conn); n == 0 {
		t.Fatal("the retention purge outside guard left nothing in the trash")
	}
	saved := trashSave(t, env)
	if len(saved.Saved) == 0 || saved.Unresolved != 0 || trashRows(t, conn) != 0 {
		t.Fatalf("trash save: %+v, want snapshots, nothing unattributed, an empty trash", saved)
	}
	for _, s := range saved.Saved {
		if code, out, errOut := runCLI(t, env, "restore", "--tenant", s.Tenant, "--snapshot", s.Snapshot, "--on-conflict", "fill-nulls"); code != exitOK {
			t.Fatalf("restore of trash snapshot %s: exit %d\n%s%s", s.Snapshot, code, out, errOut)
		}
	}
	sameState(t, "after an unguarded retention purge, trash save and restore", before, dbState(t, conn))

	// Under guard --retention.
	code, out, errOut := runCLI(t, env, "-o", "json", "guard", "--retention", "--", purge)
	if code != exitOK {
		t.Fatalf("guard --retention: exit %d\n%s%s", code, out, errOut)
	}
	if n := trashRows(t, conn); n != 0 {
		rows, _ := conn.Query(ctx, "SELECT table_name, op, count(*) FROM purgeguard.trash GROUP BY 1, 2")
		got, _ := pgx.CollectRows(rows, pgx.RowToMap)
		t.Fatalf("trash after guard --retention: %d rows (%v), want 0: the guard's snapshot holds them", n, got)
	}
	var got struct {
		Snapshots []struct{ Tenant, Snapshot string } `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Snapshots) == 0 {
		t.Fatalf("guard -o json: %v\n%s", err, out)
	}
	if maps.Equal(before, dbState(t, conn)) {
		t.Fatal("the guarded purge changed nothing: the test proves nothing")
	}
	for _, s := range got.Snapshots {
		if code, out, errOut := runCLI(t, env, "restore", "--tenant", s.Tenant, "--snapshot", s.Snapshot, "--on-conflict", "fill-nulls"); code != exitOK {
			t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
		}
	}
	sameState(t, "after guard --retention and restore", before, dbState(t, conn))
}

// kill -9 of `trash save` at every moment of its run (the real binary, killed ever
// later until a run completes), then a rerun: no row is lost, and each tenant has
// exactly one trash snapshot, whose restore inserts every row once.
func TestCLI_TrashSaveKill9(t *testing.T) {
	env, res, _ := cliEnv(t)
	dsn := env["PURGEGUARD_DATABASE_URL"]
	conn := testenv.Connect(t, dsn)
	bin := purgeguardBinary(t)
	if code, out, errOut := runCLI(t, env, "fence", "install", "--mode", "capture"); code != exitOK {
		t.Fatalf("fence install --mode capture: exit %d\n%s%s", code, out, errOut)
	}
	before := dbState(t, conn)
	victims := []string{res.Tenants[0].String(), res.Tenants[2].String()}
	for _, v := range victims {
		removeTenant(t, dsn, v)
	}
	// A recording whose path remove_tenant() emptied is kept twice (emptied, then
	// deleted) and saved once: the snapshots hold one row per deleted row.
	var want int64
	if err := conn.QueryRow(testenv.Context(t), "SELECT count(*) FROM purgeguard.trash WHERE op = 'delete'").Scan(&want); err != nil || want == 0 {
		t.Fatalf("deleted rows kept: %d, %v", want, err)
	}
	procEnv := os.Environ()
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	// A killed run leaves its spills (temporary files) behind: in the test's
	// directory, not in the machine's /tmp.
	procEnv = append(procEnv, "TMPDIR="+t.TempDir())

	kills := 0
	for delay := time.Duration(0); ; delay += 25 * time.Millisecond {
		cmd := exec.Command(bin, "trash", "save")
		cmd.Env = procEnv
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("trash save after %d kills: %v\n%s", kills, err, out.String())
			}
		case <-time.After(delay):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			if err := <-done; err == nil {
				break // it finished just before the signal
			}
			kills++
			// Rows leave the trash only once their snapshot is committed (nothing
			// lost), and no tenant has a second trash snapshot (nothing twice).
			for _, v := range victims {
				if n := len(trashSnapshots(t, env, v)); n > 1 {
					t.Fatalf("after kill %d (%s in): tenant %s has %d trash snapshots, want at most 1", kills, delay, v, n)
				}
			}
			left, saved := trashRows(t, conn), savedTrashRows(t, env, victims)
			if saved > want || left == 0 && saved != want {
				t.Fatalf("after kill %d (%s in): %d rows left in the trash, %d in trash snapshots; want %d saved once", kills, delay, left, saved, want)
			}
			continue
		}
		break
	}
	t.Logf("trash save killed %d times before a run completed", kills)
	if kills == 0 {
		t.Fatal("no run was killed: the test proves nothing")
	}
	// A last run finishes whatever the kills left.
	trashSave(t, env)
	if n := trashRows(t, conn); n != 0 {
		t.Fatalf("trash after the rerun: %d rows, want 0", n)
	}
	var journal int64
	if err := conn.QueryRow(testenv.Context(t), "SELECT count(*) FROM purgeguard.trash_save").Scan(&journal); err != nil || journal != 0 {
		t.Fatalf("trash save journal after the rerun: %d entries (%v), want 0", journal, err)
	}
	if saved := savedTrashRows(t, env, victims); saved != want {
		t.Errorf("rows in the committed trash snapshots: %d, want the %d deleted, each once", saved, want)
	}
	for _, v := range victims {
		snaps := trashSnapshots(t, env, v)
		if len(snaps) != 1 {
			t.Fatalf("tenant %s: %d trash snapshots, want 1", v, len(snaps))
		}
		code, out, errOut := runCLI(t, env, "-o", "json", "restore", "--tenant", v, "--snapshot", snaps[0].Snapshot, "--on-conflict", "fill-nulls")
		if code != exitOK {
			t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
		}
	}
	sameState(t, "after trash saves killed at every moment, a rerun and restore", before, dbState(t, conn))
}

type trashSnapshot struct {
	Snapshot  string `json:"snapshot"`
	Rows      int64  `json:"rows"`
	Files     int    `json:"files"`
	Missing   int    `json:"missing_files"`
	Recovered int    `json:"recovered_files"`
	Scope     struct {
		Kind string `json:"kind"`
	} `json:"scope"`
}

// trashSnapshots lists tenant's committed trash snapshots.
func trashSnapshots(t *testing.T, env map[string]string, tenant string) []trashSnapshot {
	t.Helper()
	code, out, errOut := runCLI(t, env, "-o", "json", "list", "--tenant", tenant)
	var got struct {
		Snapshots []trashSnapshot `json:"snapshots"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	var trash []trashSnapshot
	for _, s := range got.Snapshots {
		if s.Scope.Kind == "trash" {
			trash = append(trash, s)
		}
	}
	return trash
}

// savedTrashRows sums the rows of the tenants' committed trash snapshots.
func savedTrashRows(t *testing.T, env map[string]string, tenants []string) int64 {
	t.Helper()
	var n int64
	for _, tn := range tenants {
		for _, s := range trashSnapshots(t, env, tn) {
			n += s.Rows
		}
	}
	return n
}
