package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// fileState is what must come back of a file: bytes, mode, mtime, owner, group.
type fileState struct {
	sum      [32]byte
	mode     os.FileMode
	mtime    time.Time
	uid, gid uint32
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileState{sum: sha256.Sum256(b), mode: fi.Mode(), mtime: fi.ModTime(), uid: st.Uid, gid: st.Gid}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads the shield's metrics endpoint into name → value (series without labels).
func scrape(addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if ok && !strings.HasPrefix(name, "#") {
			if v, err := strconv.ParseFloat(val, 64); err == nil {
				out[name] = v
			}
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := testenv.Context(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// call-logd's remove_tenant(), run outside guard with the shield running: every
// recording and export zip of the tenant comes back through files restore, byte
// identical, with mode, mtime, owner and group (one file of another user and group,
// 0640), its directories recreated with their owner and mode; a snapshot of the
// tenant taken once its files were gone (rows still there) holds every file.
func TestShield_CallLogdRemoveTenant(t *testing.T) {
	w := newCallLogdWorld(t, fixture.Options{Seed: 12, Tenants: 3, CallLogsPerTenant: 40})
	dsn, conn, dir, rec, exp, res := w.dsn, w.conn, w.dir, w.rec, w.exp, w.res
	victim := res.Tenants[1]
	named := tenantPaths(t, conn, victim)
	// The tenant's directory belongs to www-data (33), 0750; one recording to another
	// user and group, 0640, another 0600.
	tenantDir := filepath.Join(rec, victim.String())
	if err := os.Chown(tenantDir, 33, 33); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tenantDir, 0o750); err != nil {
		t.Fatal(err)
	}
	want := map[string]fileState{}
	odd := 0
	for _, p := range named {
		if _, err := os.Lstat(p); err != nil {
			continue // a row naming a file never written (the fixture's missing files)
		}
		if strings.HasPrefix(p, tenantDir) && odd < 2 {
			mode := []os.FileMode{0o640, 0o600}[odd]
			if err := os.Chown(p, 1234+odd, 33+odd); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			odd++
		}
		want[p] = stateOf(t, p)
	}
	if odd < 2 || len(want) < 10 {
		t.Fatalf("fixture: %d files of the tenant, %d changed owners: too few to test", len(want), odd)
	}
	env, procEnv, cfgFile := callLogdShieldEnv(t, dir, dsn, rec, exp)
	addr := startShield(t, procEnv, dir, countFiles(rec, exp))

	snapshotSkipsHeads(t, env, cfgFile, dsn, res.Tenants[0])

	// remove_tenant(): first the files (the rows still there) ...
	script, err := filepath.Abs("../../testdata/calllogd/remove_tenant.sh")
	if err != nil {
		t.Fatal(err)
	}
	removeTenant := func(steps string) {
		t.Helper()
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "TENANT="+victim.String(), "STEPS="+steps)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("remove_tenant.sh: %v\n%s", err, out)
		}
	}
	start := time.Now().Add(-time.Second)
	removeTenant("files")
	for p := range want {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s still there after remove_tenant", p)
		}
	}
	lost := func() []map[string]any {
		code, out, errOut := runCLI(t, env, "-o", "json", "files", "lost", "--since", start.UTC().Format(time.RFC3339))
		if code != exitOK {
			t.Fatalf("files lost: exit %d: %s", code, errOut)
		}
		var doc struct {
			Lost []map[string]any `json:"lost"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Lost
	}
	waitUntil(t, "every loss recorded", func() bool { return len(lost()) == len(want) })
	if m := scrape(addr); m["purgeguard_shield_lost_files"] != float64(len(want)) || m["purgeguard_shield_losses_total"] != float64(len(want)) {
		t.Errorf("metrics after the losses: lost_files %v, losses_total %v; want %d", m["purgeguard_shield_lost_files"], m["purgeguard_shield_losses_total"], len(want))
	}
	snapshotAfterFilesGone(t, env, victim, want)

	// ... then the rows and the tenant; the tenant's directory goes too.
	removeTenant("all")
	if err := os.RemoveAll(tenantDir); err != nil {
		t.Fatal(err)
	}
	for _, under := range []string{tenantDir, exp} {
		code, out, errOut := runCLI(t, env, "files", "restore", "--under", under, "--since", start.UTC().Format(time.RFC3339))
		if code != exitOK {
			t.Fatalf("files restore --under %s: exit %d\n%s%s", under, code, out, errOut)
		}
	}
	for p, w := range want {
		got := stateOf(t, p)
		if got.sum != w.sum || got.mode != w.mode || !got.mtime.Equal(w.mtime) || got.uid != w.uid || got.gid != w.gid {
			t.Errorf("%s: got %+v, want %+v", p, got, w)
		}
	}
	fi, err := os.Stat(tenantDir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o750 || st.Uid != 33 || st.Gid != 33 {
		t.Errorf("tenant directory recreated %v %d:%d, want 0750 33:33", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	// A second run restores nothing.
	code, out, _ := runCLI(t, env, "-o", "json", "files", "restore", "--under", tenantDir)
	if code != exitOK || strings.Contains(out, `"restored"`) {
		t.Errorf("second files restore: exit %d, restored again:\n%s", code, out)
	}
}

// snapshotAfterFilesGone: a snapshot of the tenant once its files are gone (its rows
// still there) holds every file, recovered from the shield, and verifies.
func snapshotAfterFilesGone(t *testing.T, env map[string]string, tenant uuid.UUID, want map[string]fileState) {
	t.Helper()
	code, out, errOut := runCLI(t, env, "-o", "json", "snapshot", "--tenant", tenant.String())
	if code != exitOK {
		t.Fatalf("snapshot after the files went: exit %d\n%s", code, errOut)
	}
	var doc struct {
		Snapshots []struct {
			Snapshot  uuid.UUID `json:"snapshot"`
			Files     int       `json:"files"`
			Recovered int       `json:"recovered_files"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Snapshots) != 1 {
		t.Fatalf("snapshot output: %v\n%s", err, out)
	}
	if s := doc.Snapshots[0]; s.Files != len(want) || s.Recovered != len(want) {
		t.Errorf("snapshot after the files went: %d files, %d recovered; want %d, all recovered", s.Files, s.Recovered, len(want))
	}
	if code, _, errOut := runCLI(t, env, "verify", "--tenant", tenant.String()); code != exitOK {
		t.Errorf("verify of the snapshot: exit %d\n%s", code, errOut)
	}
}

// countingStore counts the blob HEADs (Stat) a snapshot makes.
type countingStore struct {
	storage.Store
	blobStats atomic.Int64
}

func (c *countingStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	if strings.HasPrefix(key, archive.BlobsPrefix) {
		c.blobStats.Add(1)
	}
	return c.Store.Stat(ctx, key)
}

// snapshotSkipsHeads: with every file of a tenant uploaded by the shield, a snapshot
// asks storage about none of its blobs, names each file by the shield's blob (not
// its own pack: the shield vouched for it in this store), and by its true digest.
func snapshotSkipsHeads(t *testing.T, vars map[string]string, cfgFile, dsn string, tenant uuid.UUID) {
	t.Helper()
	ctx := testenv.Context(t)
	for k, v := range vars {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(cfgFile, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := cfg.Profile()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cfg: cfg, prof: prof}
	base, err := openStore(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: base}
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := snapshot.Run(ctx, pc, store, snapshot.Options{Tenants: []uuid.UUID{tenant}, Graph: prof.Tenants, Files: prof.Files,
		Shield: snapshotShield(ctx, e, store)})
	if err != nil {
		t.Fatal(err)
	}
	if n := store.blobStats.Load(); n != 0 {
		t.Errorf("snapshot of a shielded tenant asked storage about %d blobs, want 0", n)
	}
	m := testenv.Manifest(t, base, ms[0].Tenant, ms[0].ID)
	saved := 0
	for _, f := range m.Files {
		if f.Missing {
			continue
		}
		saved++
		if f.Pack != nil {
			// A small file the snapshot read itself goes into its pack; one the
			// shield vouched for is named by the shield's blob.
			t.Errorf("%s: stored in the snapshot's pack, not named by the shield's blob", f.Path)
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: manifest names %s, content is %x", f.Path, f.SHA256, sum)
		}
		// The shortcut keeps what restore gives back: the owner and group.
		st := stateOf(t, f.Path)
		if f.Owner == nil || f.Owner.UID != st.uid || f.Owner.GID != st.gid {
			t.Errorf("%s: manifest owner %+v, want %d:%d", f.Path, f.Owner, st.uid, st.gid)
		}
	}
	if saved == 0 {
		t.Fatal("no file saved: nothing tested")
	}
}

// tenantPaths lists the recording and export paths tenant's rows name.
func tenantPaths(t *testing.T, conn *pgx.Conn, tenant uuid.UUID) []string {
	t.Helper()
	rows, err := conn.Query(testenv.Context(t), `SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = $1 AND r.path IS NOT NULL UNION ALL
		SELECT path FROM call_logd_export WHERE tenant_uuid = $1 AND path IS NOT NULL ORDER BY 1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	named, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return named
}

// startShield runs the shield as its own process (its log in dir) and waits until
// it has linked and uploaded the total files under its roots; it returns the
// metrics address.
func startShield(t *testing.T, procEnv []string, dir string, total int) string {
	t.Helper()
	addr := freeAddr(t)
	sh := exec.Command(purgeguardBinary(t), "shield", "--metrics-listen", addr)
	sh.Env = append(os.Environ(), procEnv...)
	logFile, err := os.Create(filepath.Join(dir, "shield.log"))
	if err != nil {
		t.Fatal(err)
	}
	sh.Stderr = logFile
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sh.Process.Signal(syscall.SIGTERM)
		_ = sh.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("shield log:\n%s", b)
		}
	})
	waitUntil(t, "every file shielded and uploaded", func() bool {
		m := scrape(addr)
		return m["purgeguard_shield_files"] == float64(total) && m["purgeguard_shield_upload_queue"] == 0
	})
	return addr
}

// countFiles counts the regular files under roots.
func countFiles(roots ...string) int {
	var total int
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				total++
			}
			return err
		})
	}
	return total
}

// callLogdShieldEnv writes a configuration with call-logd's two file columns under rec and
// exp and the shield's index in dir, storage on MinIO; it returns the variables for
// runCLI, the same as a process environment, and the configuration file.
func callLogdShieldEnv(t *testing.T, dir, dsn, rec, exp string) (env map[string]string, procEnv []string, cfgFile string) {
	t.Helper()
	b := testenv.MinIO(t)
	cfgFile = filepath.Join(dir, "purgeguard.yaml")
	yaml := fmt.Sprintf("storage:\n  s3:\n    insecure: true\nfiles:\n  - table: public.call_logd_recording\n    column: path\n    root: %s\n"+
		"  - table: public.call_logd_export\n    column: path\n    root: %s\nshield:\n  index: %s\n  settle: 1s\n",
		rec, exp, filepath.Join(dir, "state", "index.db"))
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env = map[string]string{
		"PURGEGUARD_DATABASE_URL": dsn, "PURGEGUARD_CONFIG": cfgFile,
		"PURGEGUARD_STORAGE_URL": b.URL("calllogd"), "PURGEGUARD_S3_ENDPOINT": b.Endpoint,
		"AWS_ACCESS_KEY_ID": b.AccessKey, "AWS_SECRET_ACCESS_KEY": b.SecretKey, "AWS_REGION": b.Region,
	}
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	return env, procEnv, cfgFile
}
