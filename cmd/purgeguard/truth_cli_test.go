package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// oneJSON decodes stdout strictly: exactly one JSON object of the given shape, no
// unknown field, nothing after it.
func oneJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not one JSON document of the expected shape: %v\n%s", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document:\n%s", out)
	}
}

type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	Hint     string `json:"hint,omitempty"`
}

// The rough edges a new user met on a fresh clone (#14), each pinned: exit code, a
// one-line message naming the fix, and under -o json one error document.
func TestCLI_RoughEdges(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	badIDs := filepath.Join(dir, "ids.txt")
	if err := os.WriteFile(badIDs, []byte("2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71\nnot-a-uuid\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noDB := map[string]string{"PURGEGUARD_STORAGE_URL": store,
		"PURGEGUARD_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}
	tests := []struct {
		name string
		args []string
		code int
		want string // in the error message
	}{
		{"restore without --tenant", []string{"restore"}, exitUsage, "give --tenant UUID"},
		{"fence without a subcommand", []string{"fence"}, exitUsage, "install, status or uninstall"},
		{"bad UUID in a tenants file", []string{"snapshot", "--tenants-file", badIDs}, exitUsage, "ids.txt:2"},
		{"no database", []string{"snapshot", "--tenant", "2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71"}, exitError, "--database-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, noDB, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
				t.Errorf("exit %d (want %d); stderr %q should name %q; stdout %q should be empty", code, tt.code, errOut, tt.want, out)
			}
			if strings.Contains(errOut, "USAGE:") || strings.Contains(errOut, "finished") {
				t.Errorf("stderr holds the whole help or a success line:\n%s", errOut)
			}
			code, out, _ = runCLI(t, noDB, append([]string{"-o", "json"}, tt.args...)...)
			var doc jsonError
			oneJSON(t, out, &doc)
			if code != tt.code || doc.ExitCode != code || !strings.Contains(doc.Error+doc.Hint, tt.want) {
				t.Errorf("-o json: exit %d, %+v", code, doc)
			}
		})
	}
	_, out, _ := runCLI(t, noDB, "guard", "--help")
	for _, bad := range []string{"--tenant", "(default: 0)", "(default: snapshot.jobs) (default"} {
		if strings.Contains(out, bad) {
			t.Errorf("guard --help holds %q:\n%s", bad, out)
		}
	}
}

// A typo in files[].table would silently drop every recording: it is a configuration
// error caught before anything is read or written, for snapshot and restore alike.
func TestCLI_FilesTableTypo(t *testing.T) {
	env, res, backups := cliEnv(t)
	tenant := res.Tenants[0].String()
	if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant); code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
	}
	before, _ := filepath.Glob(filepath.Join(backups, "snapshots", tenant, "*"))
	cfg, err := os.ReadFile(env["PURGEGUARD_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	typo := strings.Replace(string(cfg), "public.call_logd_recording", "public.call_logd_recordings", 1)
	if err := os.WriteFile(env["PURGEGUARD_CONFIG"], []byte(typo), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"snapshot", "--tenant", tenant}, {"restore", "--tenant", tenant, "--dry-run"}} {
		code, out, errOut := runCLI(t, env, args...)
		if code != exitUsage || !strings.Contains(errOut, "files[0].table") || !strings.Contains(errOut, "call_logd_recordings") {
			t.Errorf("%v with files[0].table misspelt: exit %d (want %d)\n%s%s", args, code, exitUsage, out, errOut)
		}
	}
	after, _ := filepath.Glob(filepath.Join(backups, "snapshots", tenant, "*"))
	if len(after) != len(before) {
		t.Errorf("a refused snapshot wrote objects: %d snapshot dirs, was %d", len(after), len(before))
	}
}

// A restore whose files would have nowhere to go (a missing root) is refused before
// anything is written, and a failed restore prints no report of rows "restored".
func TestCLI_RestoreMissingRootAndFailure(t *testing.T) {
	env, res, _ := cliEnv(t)
	tenant := res.Tenants[1].String()
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant); code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(env["PURGEGUARD_CONFIG"])
	var recRoot string
	for _, l := range strings.Split(string(cfg), "\n") {
		if strings.Contains(l, "root:") && strings.Contains(l, "recordings") {
			recRoot = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "root:"))
		}
	}
	moved := recRoot + ".moved"
	if err := os.Rename(recRoot, moved); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, env, "restore", "--tenant", tenant)
	var n int
	_ = conn.QueryRow(ctx, "SELECT count(*) FROM call_logd_tenant WHERE uuid = $1", tenant).Scan(&n)
	if code != exitUsage || !strings.Contains(errOut, recRoot) || !strings.Contains(errOut, "--files-root") || n != 0 || out != "" {
		t.Errorf("restore with a missing root: exit %d (want %d), tenant rows %d (want 0)\n%s%s", code, exitUsage, n, out, errOut)
	}
	if err := os.Rename(moved, recRoot); err != nil {
		t.Fatal(err)
	}
	// A file in the way with other content: the restore fails; nothing on stdout says
	// rows were restored, and -o json is the error alone.
	entries, _ := filepath.Glob(filepath.Join(recRoot, tenant, "*", "*"))
	var victim string
	for _, e := range entries {
		if fi, err := os.Stat(e); err == nil && fi.Mode().IsRegular() {
			victim = e
		}
	}
	if victim == "" {
		t.Fatalf("no recording file of tenant %s under %s", tenant, recRoot)
	}
	if err := os.WriteFile(victim, []byte("someone else's"), 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, env, "restore", "--tenant", tenant)
	if code == exitOK || strings.Contains(out, "restored tenant") || strings.Contains(out, "INSERTED") {
		t.Errorf("restore over a differing file: exit %d, stdout reports a restore:\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, env, "-o", "json", "restore", "--tenant", tenant)
	var doc jsonError
	oneJSON(t, out, &doc)
	if code == exitOK || doc.ExitCode != code || !strings.Contains(doc.Error, filepath.Base(victim)) {
		t.Errorf("-o json restore over a differing file: exit %d, %+v", code, doc)
	}
}

// One corrupt manifest among good ones: list shows the good ones and the broken one,
// verify --all verifies the others and exits 4 naming it, prune carries on and leaves
// it (and every blob) alone; a file:// write killed mid-way is swept by prune.
func TestCLI_CorruptManifestAmongGood(t *testing.T) {
	env, res, backups := cliEnv(t)
	for _, tn := range res.Tenants {
		if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tn.String()); code != exitOK {
			t.Fatalf("snapshot: exit %d\n%s%s", code, out, errOut)
		}
	}
	bad := res.Tenants[1].String()
	ms, _ := filepath.Glob(filepath.Join(backups, "snapshots", bad, "*", "manifest.json"))
	if len(ms) != 1 {
		t.Fatalf("manifests of %s: %v", bad, ms)
	}
	junk := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x00}, 100)
	if err := os.WriteFile(ms[0], junk, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, env, "-o", "json", "list")
	var list struct {
		Snapshots []map[string]any `json:"snapshots"`
		Broken    []struct {
			Tenant   string `json:"tenant"`
			Snapshot string `json:"snapshot"`
			Error    string `json:"error"`
		} `json:"broken"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != exitOK || len(list.Snapshots) != 2 || len(list.Broken) != 1 || list.Broken[0].Tenant != bad {
		t.Errorf("list: exit %d, %d snapshots, broken %+v (want 2 and the one of %s)\n%s%s", code, len(list.Snapshots), list.Broken, bad, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "-o", "json", "verify", "--all")
	var ver struct {
		OK        bool `json:"ok"`
		Snapshots []struct {
			Tenant   string   `json:"tenant"`
			Snapshot string   `json:"snapshot"`
			OK       bool     `json:"ok"`
			Problems []string `json:"problems"`
		} `json:"snapshots"`
	}
	oneJSON(t, out, &ver)
	good := 0
	for _, s := range ver.Snapshots {
		if s.OK {
			good++
		} else if s.Tenant != bad || len(s.Problems) == 0 || !strings.Contains(s.Problems[0], "manifest.json") {
			t.Errorf("verify: unexpected failure %+v", s)
		}
	}
	if code != exitVerify || good != 2 || len(ver.Snapshots) != 3 {
		t.Errorf("verify --all: exit %d (want %d), %d good of %d\n%s%s", code, exitVerify, good, len(ver.Snapshots), out, errOut)
	}
	// A killed write's temporary file, older than prune's grace.
	tmp := filepath.Join(backups, "blobs", ".tmp-4242")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil { // small files are packed: maybe no blob yet
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	blobsBefore, _ := filepath.Glob(filepath.Join(backups, "blobs", "sha256", "*", "*"))
	code, out, errOut = runCLI(t, env, "-o", "json", "prune", "--keep-last", "1")
	var pr map[string]any
	oneJSON(t, out, &pr)
	if code != exitOK || pr["broken"] == nil || pr["blob_sweep_skipped"] == nil {
		t.Errorf("prune: exit %d, report %v\n%s", code, pr, errOut)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("prune left the killed write's temporary file: %v", err)
	}
	if _, err := os.Stat(ms[0]); err != nil {
		t.Errorf("prune removed the broken snapshot's manifest: %v", err)
	}
	blobsAfter, _ := filepath.Glob(filepath.Join(backups, "blobs", "sha256", "*", "*"))
	if len(blobsAfter) != len(blobsBefore) {
		t.Errorf("blobs %d before prune, %d after: none may go while a manifest is unreadable", len(blobsBefore), len(blobsAfter))
	}
}

// A guarded command that fails still gets its report (what was approved and saved,
// the blast radius), and under -o json its own stdout goes to stderr: stdout is one
// document.
func TestCLI_GuardCommandFails(t *testing.T) {
	env, res, _ := cliEnv(t)
	appendConfig(t, env, thirdOfTenants)
	del := filepath.Join(t.TempDir(), "del.txt")
	if err := os.WriteFile(del, []byte(res.Tenants[0].String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, env, "guard", "--delete", del, "--", "sh", "-c", "echo purging; exit 7")
	if code != 7 || !strings.Contains(out, "1 tenants approved and snapshotted, blast radius clean, command exit 7") {
		t.Errorf("guard of a failing command: exit %d (want 7)\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "-o", "json", "guard", "--delete", del, "--", "sh", "-c", "echo purging; exit 7")
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("guard -o json: %v\n%s", err, out)
	}
	if _, err := dec.Token(); err != io.EOF || code != 7 || doc["exit_code"] != float64(7) || !strings.Contains(errOut, "purging") {
		t.Errorf("guard -o json of a failing command: exit %d, doc %v; the command's output should be on stderr:\n%s", code, doc, errOut)
	}
}
