package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// cliEnv is a generated call-logd database, its files, a storage directory and a
// configuration pointing at all three.
func cliEnv(t *testing.T) (env map[string]string, res *fixture.Result, backups string) {
	t.Helper()
	w := newCallLogdWorld(t, fixture.Options{Seed: 3, Tenants: 3, CallLogsPerTenant: 40})
	cfg := filepath.Join(w.dir, "purgeguard.yaml")
	if err := os.WriteFile(cfg, []byte(w.filesYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	backups = filepath.Join(w.dir, "backups")
	return map[string]string{
		"PURGEGUARD_DATABASE_URL": w.dsn,
		"PURGEGUARD_STORAGE_URL":  "file://" + backups,
		"PURGEGUARD_CONFIG":       cfg,
	}, w.res, backups
}

// appendConfig adds YAML to the test's configuration file.
func appendConfig(t *testing.T, env map[string]string, yaml string) {
	t.Helper()
	cfg, err := os.ReadFile(env["PURGEGUARD_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env["PURGEGUARD_CONFIG"], append(cfg, yaml...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// thirdOfTenants lets a deletion set be one tenant of cliEnv's three.
const thirdOfTenants = "policy:\n  max_fraction: 0.5\n"

// psql is the client of the test cluster (PGBIN from with-servers.sh), else PATH's.
func psql() string {
	if bin := os.Getenv("PGBIN"); bin != "" {
		return filepath.Join(bin, "psql")
	}
	return "psql"
}

// snapshot → list → verify, then a flipped byte in one stored table: verify names
// the object and exits 4.
func TestCLI_SnapshotListVerify(t *testing.T) {
	env, res, backups := cliEnv(t)
	tenant := res.Tenants[1].String()

	// A dry run counts what the snapshot will hold and writes nothing at all.
	code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant, "--dry-run", "-o", "json")
	var plan struct {
		DryRun bool `json:"dry_run"`
		Plans  []struct {
			Tenant string `json:"tenant"`
			Rows   int64  `json:"rows"`
			Files  int    `json:"files"`
		} `json:"plans"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != exitOK || err != nil || !plan.DryRun || len(plan.Plans) != 1 {
		t.Fatalf("snapshot --dry-run: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if _, err := os.Stat(backups); err == nil {
		t.Errorf("snapshot --dry-run created the storage directory %s", backups)
	}

	code, out, errOut = runCLI(t, env, "-o", "json", "snapshot", "--tenant", strings.ToUpper(tenant), "--reason", "cli test")
	if code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s\n%s", code, out, errOut)
	}
	var snap struct {
		Snapshots []struct {
			Tenant   string `json:"tenant"`
			Snapshot string `json:"snapshot"`
			Tables   int    `json:"tables"`
			Rows     int64  `json:"rows"`
			Files    int    `json:"files"`
			Missing  int    `json:"missing_files"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out), &snap); err != nil || len(snap.Snapshots) != 1 {
		t.Fatalf("snapshot -o json: %v\n%s", err, out)
	}
	s := snap.Snapshots[0]
	if s.Tenant != tenant || s.Tables != 8 || s.Rows == 0 || s.Files == 0 {
		t.Errorf("snapshot summary: got %+v, want tenant %s with 8 tables, rows and files", s, tenant)
	}
	if p := plan.Plans[0]; p.Tenant != tenant || p.Rows != s.Rows || p.Files != s.Files+s.Missing || s.Missing == 0 {
		t.Errorf("dry run counted %+v, the snapshot holds %d rows and names %d files (%d missing); want the same, some missing", p, s.Rows, s.Files+s.Missing, s.Missing)
	}

	code, out, _ = runCLI(t, env, "list", "--tenant", tenant)
	if code != exitOK || !strings.Contains(out, s.Snapshot) || !strings.Contains(out, "cli test") {
		t.Errorf("list: exit %d, output does not show snapshot %s with its reason:\n%s", code, s.Snapshot, out)
	}
	code, out, errOut = runCLI(t, env, "verify", "--tenant", tenant)
	if code != exitOK || !strings.Contains(out, "ok") {
		t.Fatalf("verify of a fresh snapshot: exit %d\n%s\n%s", code, out, errOut)
	}

	obj := filepath.Join(backups, "snapshots", tenant, s.Snapshot, "tables", "public.call_logd_call_log.copy.zst")
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(obj, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// And one in the pack of the snapshot's small files (format 4).
	pack := filepath.Join(backups, "snapshots", tenant, s.Snapshot, "packs", "000000.pack")
	if b, err = os.ReadFile(pack); err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(pack, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, env, "verify", "--tenant", tenant)
	for _, name := range []string{"public.call_logd_call_log.copy.zst", "packs/000000.pack"} {
		if code != exitVerify || !strings.Contains(out, name) {
			t.Errorf("verify of a flipped byte: exit %d, want %d naming %s:\n%s", code, exitVerify, name, out)
		}
	}

	// A truncated object (another table) and a truncated blob: each is named.
	truncate := func(path string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	truncate(filepath.Join(backups, "snapshots", tenant, s.Snapshot, "tables", "public.call_logd_call_log_participant.copy.zst"))
	names := []string{"public.call_logd_call_log_participant.copy.zst"}
	// The test's files are small enough for a pack: a blob is truncated if any.
	blobs, err := filepath.Glob(filepath.Join(backups, "blobs", "sha256", "*", "*.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) > 0 {
		truncate(blobs[0])
		names = append(names, filepath.Base(blobs[0]))
	}
	code, out, _ = runCLI(t, env, "verify", "--tenant", tenant)
	for _, name := range names {
		if code != exitVerify || !strings.Contains(out, name) {
			t.Errorf("verify of truncated objects: exit %d, want %d naming %s:\n%s", code, exitVerify, name, out)
		}
	}
}

func TestCLI_SnapshotUsage(t *testing.T) {
	env, _, _ := cliEnv(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no tenant", []string{"snapshot"}, exitUsage, "--tenant"},
		{"bad tenant", []string{"snapshot", "--tenant", "not-a-uuid"}, exitUsage, "not-a-uuid"},
		{"absent tenant", []string{"snapshot", "--tenant", "00000000-0000-4000-8000-000000000001"}, exitError, "00000000-0000-4000-8000-000000000001"},
		{"verify needs a target", []string{"verify"}, exitUsage, "--tenant"},
		{"verify unknown tenant", []string{"verify", "--tenant", "00000000-0000-4000-8000-000000000001"}, exitError, "no committed snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, env, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("exit %d, want %d with %q in:\n%s%s", code, tt.code, tt.want, out, errOut)
			}
		})
	}
}

// purge → restore --dry-run (changes nothing) → restore → restore again (nothing to
// do) → a corrupted object: exit 4 before anything is written.
func TestCLI_Restore(t *testing.T) {
	env, res, backups := cliEnv(t)
	tenant := res.Tenants[2].String()
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	count := func() (n int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1", tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := count()
	if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant); code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
		t.Fatal(err)
	}
	// While a guard run holds the lock, a restore refuses and changes nothing.
	cfg, err := pgx.ParseConfig(env["PURGEGUARD_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := guard.Lock(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, env, "restore", "--tenant", tenant)
	unlock()
	if code != exitError || !strings.Contains(errOut, "guard run") || count() != 0 {
		t.Fatalf("restore under a guard's lock: exit %d, %d call logs after; want %d naming the guard\n%s%s", code, count(), exitError, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "restore", "--tenant", tenant, "--dry-run")
	if code != exitOK || !strings.Contains(out, "dry run") || count() != 0 {
		t.Fatalf("restore --dry-run: exit %d, %d call logs after\n%s%s", code, count(), out, errOut)
	}
	code, out, errOut = runCLI(t, env, "-o", "json", "restore", "--tenant", tenant)
	var rep struct {
		Totals struct {
			Inserted int64 `json:"rows_inserted"`
		} `json:"totals"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Totals.Inserted == 0 || count() != want {
		t.Fatalf("restore: exit %d, %d call logs (want %d)\n%s%s", code, count(), want, out, errOut)
	}
	code, out, _ = runCLI(t, env, "restore", "--tenant", tenant)
	if code != exitOK || !strings.Contains(out, "nothing to restore") {
		t.Errorf("second restore: exit %d, want 0 saying nothing to restore:\n%s", code, out)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
		t.Fatal(err)
	}
	objs, _ := filepath.Glob(filepath.Join(backups, "snapshots", tenant, "*", "tables", "public.call_logd_recording.copy.zst"))
	if len(objs) != 1 {
		t.Fatalf("recording objects: %v", objs)
	}
	if err := os.WriteFile(objs[0], []byte("not zstd"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, env, "restore", "--tenant", tenant)
	if code != exitVerify || count() != 0 || !strings.Contains(out+errOut, "public.call_logd_recording.copy.zst") {
		t.Errorf("restore of a corrupted snapshot: exit %d (want %d), %d call logs (want 0)\n%s%s", code, exitVerify, count(), out, errOut)
	}
}

func TestCLI_Prune(t *testing.T) {
	env, res, _ := cliEnv(t)
	tenant := res.Tenants[0].String()
	for range 3 {
		if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant); code != exitOK {
			t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, env, "prune"); code != exitUsage || !strings.Contains(errOut, "--keep-last") {
		t.Errorf("prune without a rule: exit %d, want %d: %s", code, exitUsage, errOut)
	}
	code, out, _ := runCLI(t, env, "prune", "--keep-last", "1", "--dry-run")
	if code != exitOK || !strings.Contains(out, "would remove (dry run) 2 snapshots, kept 1") {
		t.Errorf("prune --dry-run: exit %d:\n%s", code, out)
	}
	if code, out, _ := runCLI(t, env, "-o", "json", "list"); code != exitOK || strings.Count(out, `"snapshot":`) != 3 {
		t.Errorf("a dry run removed snapshots:\n%s", out)
	}
	if code, out, _ := runCLI(t, env, "prune", "--keep-last", "1"); code != exitOK || !strings.Contains(out, "removed 2 snapshots, kept 1") {
		t.Errorf("prune: exit %d:\n%s", code, out)
	}
	if code, out, _ := runCLI(t, env, "verify", "--all"); code != exitOK || strings.Count(out, "ok ") != 1 {
		t.Errorf("verify after prune: exit %d, want the one kept snapshot ok:\n%s", code, out)
	}
}

// With object lock on, prune refuses the locked snapshot and says so; verify still
// passes. A bucket without object lock is refused at open, before anything is written.
func TestCLI_PruneObjectLock(t *testing.T) {
	env, res, _ := cliEnv(t)
	b := testenv.MinIOWithLock(t)
	appendConfig(t, env, "storage:\n  s3:\n    insecure: true\n    object_lock:\n      mode: GOVERNANCE\n      days: 1\n")
	env["PURGEGUARD_STORAGE_URL"] = b.URL("pg")
	env["PURGEGUARD_S3_ENDPOINT"] = b.Endpoint
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"] = b.AccessKey, b.SecretKey, b.Region

	tenant := res.Tenants[0].String()
	var ids []string
	for range 2 {
		code, out, errOut := runCLI(t, env, "-o", "json", "snapshot", "--tenant", tenant)
		if code != exitOK {
			t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
		}
		var snap struct {
			Snapshots []struct {
				Snapshot string `json:"snapshot"`
			} `json:"snapshots"`
		}
		if err := json.Unmarshal([]byte(out), &snap); err != nil || len(snap.Snapshots) != 1 {
			t.Fatalf("snapshot -o json: %v\n%s", err, out)
		}
		ids = append(ids, snap.Snapshots[0].Snapshot)
	}
	code, out, errOut := runCLI(t, env, "prune", "--keep-last", "1")
	if code != exitOK || !strings.Contains(out, "removed 0 snapshots, kept 1") ||
		!strings.Contains(out, "snapshot "+ids[0]+" of tenant "+tenant+" locked until ") {
		t.Errorf("prune of a locked snapshot: exit %d, want 0 and it reported locked:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "snapshot locked") {
		t.Errorf("prune logged no warning:\n%s", errOut)
	}
	code, out, _ = runCLI(t, env, "-o", "json", "prune", "--keep-last", "1", "--dry-run")
	var rep struct {
		Locked []struct {
			ID    string `json:"id"`
			Until string `json:"locked_until"`
		} `json:"locked"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil || len(rep.Locked) != 1 || rep.Locked[0].ID != ids[0] || rep.Locked[0].Until == "" {
		t.Errorf("prune --dry-run -o json: exit %d, %v, want %s locked with its date:\n%s", code, err, ids[0], out)
	}
	if code, out, _ := runCLI(t, env, "verify", "--all"); code != exitOK || strings.Count(out, "ok ") != 2 {
		t.Errorf("verify after prune: exit %d, want both snapshots ok:\n%s", code, out)
	}

	plain := testenv.MinIO(t)
	env["PURGEGUARD_STORAGE_URL"] = plain.URL("pg")
	code, out, errOut = runCLI(t, env, "snapshot", "--tenant", tenant)
	if code != exitError || !strings.Contains(errOut, "does not have object lock enabled") {
		t.Errorf("snapshot with object lock on a bucket without it: exit %d, want %d and a clear error:\n%s%s", code, exitError, out, errOut)
	}
}
