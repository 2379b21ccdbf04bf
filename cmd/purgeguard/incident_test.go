package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// The call-logd incident, replayed with a stand-in sync job (testdata/incident) on a
// real PostgreSQL and MinIO: through guard the buggy deletion set is refused and
// nothing is deleted; with the fence installed, the buggy job run without guard
// deletes nothing either; the fixed job through guard purges exactly the tenant
// wazo-auth dropped, and restore brings it back identical.
func TestIncidentReplay(t *testing.T) {
	w := newCallLogdWorld(t, fixture.Options{Seed: 9, Tenants: 10, CallLogsPerTenant: 30})
	ctx, dsn, conn, dir, res := w.ctx, w.dsn, w.conn, w.dir, w.res
	b := testenv.MinIO(t)
	cfgFile := filepath.Join(dir, "purgeguard.yaml")
	yaml := "storage:\n  s3:\n    insecure: true\n" + w.filesYAML()
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PURGEGUARD_DATABASE_URL": dsn, "PURGEGUARD_CONFIG": cfgFile,
		"PURGEGUARD_STORAGE_URL": b.URL("incident"), "PURGEGUARD_S3_ENDPOINT": b.Endpoint,
		"AWS_ACCESS_KEY_ID": b.AccessKey, "AWS_SECRET_ACCESS_KEY": b.SecretKey, "AWS_REGION": b.Region,
	}
	t.Setenv("DATABASE_URL", dsn)
	sync, err := filepath.Abs("../../testdata/incident/sync.sh")
	if err != nil {
		t.Fatal(err)
	}
	dropped := res.Tenants[3]
	auth := filepath.Join(dir, "auth.txt")
	var lines []string
	for _, id := range res.Tenants {
		if id != dropped {
			lines = append(lines, id.String())
		}
	}
	if err := os.WriteFile(auth, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		t.Helper()
		var s string
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM call_logd_tenant) || '/' || (SELECT count(*) FROM call_logd_call_log)
			|| '/' || (SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM call_logd_call_log_participant x)
			|| '/' || (SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM call_logd_recording x)`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	original := state()
	shell := func(args ...string) (string, error) {
		out, err := runSync(t, sync, args...)
		return out, err
	}

	// 1. The buggy sync's deletion set, through guard: refused, the job never runs.
	buggy := filepath.Join(dir, "buggy.txt")
	out, err := shell("targets", "buggy", auth)
	if err != nil {
		t.Fatalf("buggy targets: %v\n%s", err, out)
	}
	if n := strings.Count(out, "\n"); n != len(res.Tenants) {
		t.Fatalf("the buggy comparison targets %d tenants, want all %d (the incident)", n, len(res.Tenants))
	}
	if err := os.WriteFile(buggy, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	code, stdout, stderr := runCLI(t, env, "-o", "json", "guard", "--delete", buggy, "--source-of-truth", auth,
		"--", "sh", "-c", "touch "+marker+" && "+sync+" delete "+buggy)
	if code != exitRefused || !strings.Contains(stdout, "listed_by_source_of_truth") {
		t.Fatalf("guard of the buggy set: exit %d, want %d refusing listed_by_source_of_truth\n%s%s", code, exitRefused, stdout, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the purge command ran although the policy refused")
	}
	if got := state(); got != original {
		t.Errorf("after a refused guard: state %s, want %s", got, original)
	}

	// 2. The fence installed, the buggy job run without guard: its DELETE fails.
	if code, out, errOut := runCLI(t, env, "fence", "install"); code != exitOK {
		t.Fatalf("fence install: exit %d\n%s%s", code, out, errOut)
	}
	if out, err := shell("run", "buggy", auth); err == nil {
		t.Errorf("the buggy job deleted through the fence:\n%s", out)
	}
	if got := state(); got != original {
		t.Errorf("after the fenced buggy job: state %s, want %s", got, original)
	}

	// 3. The fixed job through guard: exactly the dropped tenant is snapshotted and purged.
	fixed := filepath.Join(dir, "fixed.txt")
	out, err = shell("targets", "fixed", auth)
	if err != nil || strings.TrimSpace(out) != dropped.String() {
		t.Fatalf("fixed targets: %q, %v; want %s", out, err, dropped)
	}
	if err := os.WriteFile(fixed, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, env, "guard", "--delete", fixed, "--source-of-truth", auth, "--reason", "sync",
		"--", sync, "delete", fixed)
	if code != exitOK {
		t.Fatalf("guard of the fixed job: exit %d\n%s%s", code, stdout, stderr)
	}
	var left, others int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE uuid = $1), count(*) FROM call_logd_tenant", dropped).Scan(&left, &others); err != nil {
		t.Fatal(err)
	}
	if left != 0 || others != int64(len(res.Tenants)-1) {
		t.Errorf("after the fixed job: dropped tenant rows %d (want 0), tenants %d (want %d)", left, others, len(res.Tenants)-1)
	}
	code, stdout, _ = runCLI(t, env, "list")
	if code != exitOK || !strings.Contains(stdout, dropped.String()) || strings.Count(stdout, "\n") != 2 {
		t.Errorf("list after the guard: want exactly one snapshot, of %s:\n%s", dropped, stdout)
	}

	// 4. Restore brings it back identical (the fence does not stand in the way of inserts).
	if code, out, errOut := runCLI(t, env, "restore", "--tenant", dropped.String()); code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	if got := state(); got != original {
		t.Errorf("after restore: state %s, want %s", got, original)
	}
}

func runSync(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(script, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
