package main

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// The real binary killed with SIGKILL in the middle of a restore's file phase
// (its storage paused so that the kill lands there), then run again: the rerun
// completes the restore, rows and files, and no temp file or journal is left.
func TestCLI_RestoreKilledThenRerun(t *testing.T) {
	env, res, _ := cliEnv(t)
	srv := testenv.StartMinIO(t)
	env["PURGEGUARD_STORAGE_URL"] = "s3://" + srv.Bucket + "/kill"
	env["PURGEGUARD_S3_ENDPOINT"] = srv.Endpoint
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"] = srv.AccessKey, srv.SecretKey, srv.Region
	appendConfig(t, env, "storage:\n  s3:\n    insecure: true\n")
	dir := filepath.Dir(env["PURGEGUARD_CONFIG"])
	tenant := res.Tenants[0].String()
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	count := func() (n int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1", tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows2, err := conn.Query(ctx, `SELECT path FROM call_logd_export WHERE tenant_uuid = $1 AND path IS NOT NULL
		UNION ALL SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = $1 AND r.path IS NOT NULL`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := pgx.CollectRows(rows2, pgx.RowTo[string])
	if err != nil || len(paths) == 0 {
		t.Fatalf("tenant's paths: %v, %d", err, len(paths))
	}
	// One large file keeps the file phase going long enough for the kill to land
	// in it (the test checks that it did).
	big := make([]byte, 48<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(big); i += 8 {
		binary.LittleEndian.PutUint64(big[i:], rng.Uint64())
	}
	// The restore writes files in the manifest's order (table, then path): the
	// last recording comes last, so the file phase is well under way when the
	// large file's fetch is stopped.
	var last string
	if err := conn.QueryRow(ctx, `SELECT max(r.path) FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = $1`, tenant).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(last, big, 0o640); err != nil {
		t.Fatal(err)
	}
	rows, files := count(), filesState(t, dir)
	if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant); code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		_ = os.Remove(p)
	}

	bin := purgeguardBinary(t)
	cmd := exec.Command(bin, "restore", "--tenant", tenant)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PURGEGUARD_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for the file phase: a temp file beside a target.
	deadline := time.Now().Add(2 * time.Minute)
	for len(temps(t, dir)) == 0 {
		select {
		case err := <-exited:
			t.Fatalf("restore ended (%v) before a temp file was seen", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no temp file seen within the test's deadline")
		}
		time.Sleep(time.Millisecond)
	}
	seen := temps(t, dir)
	srv.Pause()
	_ = cmd.Process.Kill()
	<-exited
	srv.Resume()
	if len(temps(t, dir)) == 0 {
		t.Fatalf("the killed restore left no temp file (it had %v): the kill did not land in the file phase\n%s", seen, stderr.String())
	}
	// The killed client's backend goes (and its transaction and lock with it)
	// once the server sees the connection closed.
	for {
		var open int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			var who string
			_ = conn.QueryRow(ctx, "SELECT string_agg(format('%s %s %s %s', pid, application_name, state, left(query, 80)), '; ') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(&who)
			t.Fatalf("the killed restore's session is still open: %s", who)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if code, out, errOut := runCLI(t, env, "restore", "--tenant", tenant); code != exitOK {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if left := temps(t, dir); len(left) > 0 {
		t.Errorf("left after the rerun: %v", left)
	}
	if got := count(); got != rows {
		t.Errorf("call logs after the rerun: %d, want %d", got, rows)
	}
	if got := filesState(t, dir); got != files {
		t.Errorf("files after the rerun differ:\n%s\nwant\n%s", got, files)
	}
}

// temps lists the temp files and journals under dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // renamed away while walking
			}
			return err
		}
		if strings.HasPrefix(fi.Name(), ".purgeguard-") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
