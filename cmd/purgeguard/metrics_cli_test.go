package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// --metrics-file on every exit path but usage: a refusal (3), a success, an error
// (1), a purge command's own 3 under guard (not a refusal); one file shared by the
// commands keeps each one's series.
func TestCLI_MetricsFile(t *testing.T) {
	env, res, _ := cliEnv(t)
	appendConfig(t, env, thirdOfTenants)
	dir := t.TempDir()
	prom := filepath.Join(dir, "purgeguard.prom")
	tenantsFile := func(name string, n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = res.Tenants[i].String()
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	get := func(name, command string) (float64, bool) {
		t.Helper()
		mfs := parseProm(t, prom)
		for _, m := range mfs[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == command {
					if m.Counter != nil {
						return m.Counter.GetValue(), true
					}
					return m.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	want := func(name, command string, v float64) {
		t.Helper()
		if got, ok := get(name, command); !ok || got != v {
			t.Errorf("%s{command=%q}: got %v (present %v), want %v", name, command, got, ok, v)
		}
	}

	// Refused by policy: exit 3, recorded as a refusal, no success.
	if code, out, errOut := runCLI(t, env, "--metrics-file", prom, "check", "--delete", tenantsFile("all.txt", 3)); code != exitRefused {
		t.Fatalf("check of every tenant: exit %d, want %d\n%s%s", code, exitRefused, out, errOut)
	}
	want("purgeguard_last_run_exit_code", "check", exitRefused)
	want("purgeguard_last_run_refused", "check", 1)
	want("purgeguard_refusals_total", "check", 1)
	if _, ok := get("purgeguard_last_success_timestamp_seconds", "check"); ok {
		t.Error("a refused check recorded a success")
	}
	if _, ok := get("purgeguard_last_run_timestamp_seconds", "check"); !ok {
		t.Error("no last run time for check")
	}

	// A snapshot, with the file from the environment: its rows and stored bytes, and
	// check's series are still there.
	env["PURGEGUARD_METRICS_FILE"] = prom
	tenant := res.Tenants[1].String()
	code, out, errOut := runCLI(t, env, "-o", "json", "snapshot", "--tenant", tenant)
	delete(env, "PURGEGUARD_METRICS_FILE")
	if code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
	}
	var snap struct {
		Snapshots []struct {
			Rows        int64 `json:"rows"`
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out), &snap); err != nil || len(snap.Snapshots) != 1 || snap.Snapshots[0].Rows == 0 {
		t.Fatalf("snapshot -o json: %v\n%s", err, out)
	}
	want("purgeguard_last_run_exit_code", "snapshot", 0)
	want("purgeguard_last_run_rows", "snapshot", float64(snap.Snapshots[0].Rows))
	want("purgeguard_last_run_bytes", "snapshot", float64(snap.Snapshots[0].StoredBytes))
	want("purgeguard_last_run_refused", "snapshot", 0)
	success, ok := get("purgeguard_last_success_timestamp_seconds", "snapshot")
	if !ok || success == 0 {
		t.Errorf("no last success time for snapshot")
	}
	if d, ok := get("purgeguard_last_run_duration_seconds", "snapshot"); !ok || d <= 0 {
		t.Errorf("snapshot duration: got %v, want > 0", d)
	}
	want("purgeguard_refusals_total", "check", 1)

	// An error: exit 1 recorded, the last success kept, nothing saved.
	if code, out, errOut := runCLI(t, env, "--metrics-file", prom, "snapshot", "--tenant", "00000000-0000-4000-8000-000000000001"); code != exitError {
		t.Fatalf("snapshot of an absent tenant: exit %d, want %d\n%s%s", code, exitError, out, errOut)
	}
	want("purgeguard_last_run_exit_code", "snapshot", exitError)
	want("purgeguard_last_success_timestamp_seconds", "snapshot", success)
	want("purgeguard_last_run_rows", "snapshot", 0)

	// guard passes the purge command's own 3 on: not a refusal.
	if code, out, errOut := runCLI(t, env, "--metrics-file", prom, "guard", "--delete", tenantsFile("one.txt", 1), "--", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("guard of a command exiting 3: exit %d\n%s%s", code, out, errOut)
	}
	want("purgeguard_last_run_exit_code", "guard", 3)
	want("purgeguard_last_run_refused", "guard", 0)
	want("purgeguard_refusals_total", "guard", 0)
	if rows, ok := get("purgeguard_last_run_rows", "guard"); !ok || rows == 0 {
		t.Errorf("guard rows saved: got %v, want > 0", rows)
	}
	want("purgeguard_last_run_exit_code", "check", exitRefused)

	// Usage errors, help and dry runs write nothing.
	fresh := filepath.Join(dir, "fresh.prom")
	for _, args := range [][]string{
		{"snapshot"},
		{"snapshot", "--bogus"},
		{"snapshot", "--help"},
		{"restore"},
		{"prune", "--keep-last", "1", "--dry-run"},
		{"version"},
	} {
		runCLI(t, env, append([]string{"--metrics-file", fresh}, args...)...)
		if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v: metrics file written (%v)", args, err)
			os.Remove(fresh)
		}
	}

	// A metrics file that cannot be written is a warning, not the run's outcome.
	bad := filepath.Join(dir, "no-such-dir", "purgeguard.prom")
	code, out, errOut = runCLI(t, env, "--metrics-file", bad, "snapshot", "--tenant", tenant)
	if code != exitOK || !strings.Contains(errOut, "metrics file not written") {
		t.Errorf("snapshot with an unwritable metrics file: exit %d, want 0 with a warning\n%s%s", code, out, errOut)
	}
}

func parseProm(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return mfs
}
