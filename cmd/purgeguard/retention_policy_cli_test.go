package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// writePurgeDB writes a wazo-purge-db configuration: config.yml naming its conf.d,
// and the conf.d files given. It returns config.yml's path.
func writePurgeDB(t *testing.T, main string, confd map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte("extra_config_files: "+filepath.Join(dir, "conf.d")+"/\n"+main), 0o600); err != nil {
		t.Fatal(err)
	}
	for n, body := range confd {
		if err := os.WriteFile(filepath.Join(dir, "conf.d", n), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// An install whose nightly purge has been running, where the operator keeps
// recordings 7 days and exports 1 (wazo-purge-db's days_to_keep_per_plugin, in
// conf.d): guard --retention reads the days from wazo-purge-db's own files, saves
// what the purge takes with them, exits 0, and fill-nulls restores give back every
// row and file. Read with the days_to_keep alone, it would save too little and
// the purge would take recordings and exports "newer than the cut-off" (exit 4).
func TestCLI_GuardRetentionPerPluginDays(t *testing.T) {
	env, res, _ := cliEnv(t)
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	// No tenant's own days: the purge job's decide. Exports between 1 and 2 days
	// old are what exports: 1 takes and the built-in 2 would keep.
	if _, err := conn.Exec(ctx, `DELETE FROM call_logd_retention;
		UPDATE call_logd_export e SET requested_at = now() - make_interval(hours => CASE WHEN x.n % 2 = 0 THEN 36 ELSE 6 END)
		FROM (SELECT uuid, row_number() OVER (ORDER BY uuid) AS n FROM call_logd_export) x WHERE x.uuid = e.uuid`); err != nil {
		t.Fatal(err)
	}
	purge, err := filepath.Abs("../../testdata/calllogd/retention_purge.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", env["PURGEGUARD_DATABASE_URL"])
	// The nightly job ran before, with the defaults: what is left is a year.
	if out, err := runPurge(t, purge); err != nil {
		t.Fatalf("first purge: %v\n%s", err, out)
	}
	cfg := writePurgeDB(t, "days_to_keep: 365\n", map[string]string{
		"50-call-logd.yml": "enabled_plugins:\n  purgers:\n    call-logs: true\n",
		"60-retention.yml": "days_to_keep_per_plugin:\n  recordings: 7\n  exports: 1\n",
	})
	appendConfig(t, env, "retention:\n  purge_config: "+cfg+"\n")
	state := func() string {
		var s string
		err := conn.QueryRow(ctx, `SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
			SELECT 'l' || c::text AS x FROM call_logd_call_log c UNION ALL SELECT 'p' || p::text FROM call_logd_call_log_participant p
			UNION ALL SELECT 'd' || d::text FROM call_logd_call_log_destination d UNION ALL SELECT 'r' || r::text FROM call_logd_recording r
			UNION ALL SELECT 'e' || e::text FROM call_logd_export e) s`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s + filesState(t, filepath.Dir(env["PURGEGUARD_CONFIG"]))
	}
	before := state()

	t.Setenv("PURGE_DAYS_RECORDINGS", "7")
	t.Setenv("PURGE_DAYS_EXPORTS", "1")
	code, out, errOut := runCLI(t, env, "-o", "json", "guard", "--retention", "--", purge)
	if code != exitOK {
		t.Fatalf("guard --retention: exit %d\n%s%s", code, out, errOut)
	}
	var got struct {
		Snapshots []struct{ Tenant, Snapshot string } `json:"snapshots"`
		Retention struct {
			Allowed bool  `json:"allowed"`
			Removed int64 `json:"rows_to_remove"`
		} `json:"retention"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("guard -o json: %v\n%s", err, out)
	}
	if len(got.Snapshots) == 0 || !got.Retention.Allowed || got.Retention.Removed == 0 {
		t.Fatalf("guard --retention: %d snapshots, retention decision %+v; want snapshots and an allowed purge taking rows\n%s",
			len(got.Snapshots), got.Retention, out)
	}
	var recs, exps int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM call_logd_recording WHERE path IS NULL),
		(SELECT count(*) FROM call_logd_export)`).Scan(&recs, &exps); err != nil {
		t.Fatal(err)
	}
	if recs == 0 || exps == len(res.Tenants)*3 {
		t.Errorf("after the purge: %d recordings emptied, %d exports left of %d: want recordings emptied and exports taken", recs, exps, len(res.Tenants)*3)
	}
	if state() == before {
		t.Fatal("the purge changed nothing: the test proves nothing")
	}
	for _, s := range got.Snapshots {
		code, out, errOut = runCLI(t, env, "restore", "--tenant", s.Tenant, "--snapshot", s.Snapshot, "--dry-run")
		if code != exitOK || !strings.Contains(out, "recording 7d") || !strings.Contains(out, "export 1d") {
			t.Errorf("restore --dry-run: exit %d, want the scope with recording 7d and export 1d\n%s%s", code, out, errOut)
		}
		if code, out, errOut = runCLI(t, env, "restore", "--tenant", s.Tenant, "--snapshot", s.Snapshot, "--on-conflict", "fill-nulls"); code != exitOK {
			t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
		}
	}
	if state() != before {
		t.Error("after guard --retention and a fill-nulls restore of every snapshot, the database or the files differ from before the purge")
	}
}

// days_to_keep: 0 in wazo-purge-db's configuration would take every call log:
// check --retention and guard --retention refuse it (exit 3) with the numbers, the
// purge command does not run and nothing is saved. --purge-days overrides the file
// (wazo-purge-db's -d); a configured file that is missing or invalid is a usage
// error naming file and line.
func TestCLI_RetentionPolicyRefusesZeroDays(t *testing.T) {
	env, _, backups := cliEnv(t)
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	if _, err := conn.Exec(ctx, `DELETE FROM call_logd_retention`); err != nil {
		t.Fatal(err)
	}
	var calls int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM call_logd_call_log`).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	cfg := writePurgeDB(t, "days_to_keep: 0\n", nil)
	appendConfig(t, env, "retention:\n  purge_config: "+cfg+"\n")

	code, out, errOut := runCLI(t, env, "check", "--retention")
	if code != exitRefused || !strings.Contains(out, "retention_max_fraction") ||
		!strings.Contains(out, "cdr "+strconv.Itoa(calls)+" of "+strconv.Itoa(calls)) {
		t.Errorf("check --retention with days_to_keep 0: exit %d, want %d naming retention_max_fraction and cdr %d of %d\n%s%s",
			code, exitRefused, calls, calls, out, errOut)
	}
	code, out, _ = runCLI(t, env, "-o", "json", "check", "--retention")
	var doc struct {
		Allowed    bool
		Violations []struct{ Rule string }
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitRefused || err != nil || doc.Allowed || len(doc.Violations) == 0 {
		t.Errorf("check --retention -o json: exit %d, %v; want one refusing JSON document\n%s", code, err, out)
	}

	marker := filepath.Join(t.TempDir(), "ran")
	code, out, errOut = runCLI(t, env, "guard", "--retention", "--", "touch", marker)
	if code != exitRefused || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "of "+strconv.Itoa(calls)) {
		t.Errorf("guard --retention with days_to_keep 0: exit %d, want %d with the numbers\n%s%s", code, exitRefused, out, errOut)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("guard --retention ran the purge command it refused")
	}
	if _, err := os.Stat(filepath.Join(backups, "snapshots")); err == nil {
		t.Error("guard --retention saved a snapshot for a purge it refused")
	}

	// --purge-days is wazo-purge-db's -d: 365 over the file's 0 is a quiet night.
	if code, out, errOut = runCLI(t, env, "check", "--retention", "--purge-days", "365"); code != exitOK {
		t.Errorf("check --retention --purge-days 365: exit %d, want 0\n%s%s", code, out, errOut)
	}

	// A configured file that is missing, or says what is not a number of days.
	for _, tt := range []struct{ body, want string }{
		{"", "nope.yml"},
		{"days_to_keep: 7\ndays_to_keep_per_plugin:\n  recordings: seven\n", "config.yml:4: days_to_keep_per_plugin.recordings"}, // line 1 names conf.d
	} {
		path := filepath.Join(t.TempDir(), "nope.yml")
		if tt.body != "" {
			path = writePurgeDB(t, tt.body, nil)
		}
		// The same configuration, naming that file.
		data, err := os.ReadFile(env["PURGEGUARD_CONFIG"])
		if err != nil {
			t.Fatal(err)
		}
		badCfg := filepath.Join(t.TempDir(), "purgeguard.yaml")
		if err := os.WriteFile(badCfg, []byte(strings.Replace(string(data), cfg, path, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		bad := maps.Clone(env)
		bad["PURGEGUARD_CONFIG"] = badCfg
		if code, out, errOut = runCLI(t, bad, "check", "--retention"); code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("check --retention with purge_config %q: exit %d, want %d naming %q\n%s%s", path, code, exitUsage, tt.want, out, errOut)
		}
	}
}

// runPurge runs the testdata purge with the test's environment.
func runPurge(t *testing.T, purge string) (string, error) {
	t.Helper()
	out, err := exec.Command(purge).CombinedOutput()
	return string(out), err
}
