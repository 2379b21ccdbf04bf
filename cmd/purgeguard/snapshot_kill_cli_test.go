package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
)

// The real binary killed with SIGKILL while a file:// snapshot writes its blobs (in
// batches: written, then synced together, then renamed), some of them stored and
// others not yet: no manifest exists, so the snapshot does not; every blob stored
// under its key is whole (it decompresses to the digest it is named by); a rerun
// commits a snapshot that verifies, and prune sweeps the killed run's temporary
// files once past its grace. (A kill keeps what the page cache holds: the order of syncs, renames and
// manifest is what makes a power cut safe too, TestRun_BlobsStoredBeforeManifest.)
func TestCLI_SnapshotKilledWhileWritingBlobs(t *testing.T) {
	// Enough small recordings that the file phase lasts while the test watches it.
	w := newCallLogdWorld(t, fixture.Options{Seed: 5, Tenants: 2, CallLogsPerTenant: 10,
		BigTenantCallLogs: 3000, RecordingEvery: 1, FileSize: 512, FileTenants: 1})
	res, dir := w.res, w.dir
	cfg := filepath.Join(dir, "purgeguard.yaml")
	if err := os.WriteFile(cfg, []byte(w.filesYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	backups := filepath.Join(dir, "backups")
	env := map[string]string{
		"PURGEGUARD_DATABASE_URL": w.dsn,
		"PURGEGUARD_STORAGE_URL":  "file://" + backups,
		"PURGEGUARD_CONFIG":       cfg,
		// A killed run leaves its spills (temporary files) behind: in the test's
		// directory, not in the machine's /tmp.
		"TMPDIR": t.TempDir(),
	}
	tenant := res.Tenants[0].String()

	cmd := exec.Command(purgeguardBinary(t), "snapshot", "--tenant", tenant)
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
	// Kill once some blobs are stored under their keys, or a pack of the
	// snapshot's small files is being written (format 4: the recordings here are
	// small enough for one): the run is then in its file phase, its manifest not
	// yet written.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		blobs, _ := storedBlobs(t, backups)
		if len(blobs) > 0 || len(packTemps(t, backups)) > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("snapshot ended (%v) before a blob was stored\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no blob stored within the test's deadline")
		}
		time.Sleep(time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited

	blobs, temps := storedBlobs(t, backups)
	temps = append(temps, packTemps(t, backups)...)
	if manifests := findNamed(t, backups, "manifest.json"); len(manifests) > 0 {
		t.Fatalf("the killed snapshot committed %v: the kill landed after the blobs (stored %d)", manifests, len(blobs))
	}
	if len(blobs) >= res.Files {
		t.Fatalf("%d blobs stored of %d files: the kill did not land between blob writes", len(blobs), res.Files)
	}
	t.Logf("killed with %d blobs stored of %d files, %d temporary files", len(blobs), res.Files, len(temps))
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, p := range blobs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		err = dec.Reset(f)
		if err == nil {
			_, err = io.Copy(h, dec)
		}
		f.Close()
		if want := strings.TrimSuffix(filepath.Base(p), ".zst"); err != nil || hex.EncodeToString(h.Sum(nil)) != want {
			t.Errorf("blob %s is not whole: %v, content sha256 %x", p, err, h.Sum(nil))
		}
	}

	if code, out, errOut := runCLI(t, env, "snapshot", "--tenant", tenant); code != exitOK {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, env, "verify", "--tenant", tenant); code != exitOK {
		t.Fatalf("verify after the rerun: exit %d\n%s%s", code, out, errOut)
	}
	// The killed run's temporary files, aged past prune's grace (an hour), go.
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range temps {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errOut := runCLI(t, env, "prune", "--keep-last", "1"); code != exitOK {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	if _, left := storedBlobs(t, backups); len(left) > 0 {
		t.Errorf("temporary files left after prune: %v", left)
	}
	if left := packTemps(t, backups); len(left) > 0 {
		t.Errorf("temporary files of packs left after prune: %v", left)
	}
}

// packTemps lists the temporary files of packs being written in a file:// store.
func packTemps(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "snapshots"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // not made yet, or renamed away while walking
			}
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") && filepath.Base(filepath.Dir(p)) == "packs" {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storedBlobs lists the blobs stored under their keys in a file:// store, and the
// temporary files beside them.
func storedBlobs(t *testing.T, root string) (blobs, temps []string) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // not made yet, or renamed away while walking
			}
			return err
		}
		switch {
		case d.IsDir():
		case strings.HasPrefix(d.Name(), ".tmp-"):
			temps = append(temps, p)
		case strings.HasSuffix(d.Name(), ".zst"):
			blobs = append(blobs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blobs, temps
}

// findNamed lists the files under root with the given name.
func findNamed(t *testing.T, root, name string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() && d.Name() == name {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
