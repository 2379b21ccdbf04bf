package restore_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// growFiles rewrites n of the tenant's recordings with more bytes than a pack
// takes (they stay loose blobs), keeping their mode, and returns their paths.
func growFiles(t *testing.T, w *world, n int) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(w.roots[0], w.tenants[0].String(), "*", "*.wav"))
	if err != nil || len(paths) < n+2 {
		t.Fatalf("%d recordings of the tenant on disk (%v), want more than %d", len(paths), err, n+2)
	}
	out := map[string]bool{}
	for _, p := range paths[:n] {
		b := make([]byte, snapshot.DefaultPackMax+4096)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		out[p] = true
	}
	return out
}

// A tenant's small files go to its snapshot's packs, its large ones stay loose
// blobs; restored, every file is back byte for byte, with its mode, mtime and
// owner, beside its rows: on a file:// store and on S3.
func TestRun_PackedRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(*testing.T) storage.Store
	}{{"file", fileStore}, {"s3", s3Store}} {
		t.Run(tc.name, func(t *testing.T) {
			w := callLogd(t, tc.store(t))
			tenant := w.tenants[0]
			big := growFiles(t, w, 2)
			rowsBefore, filesBefore := w.state(t), w.rootState(t)
			m := w.snapshot(t, tenant)
			if m.FormatVersion != 4 || len(m.Packs) == 0 {
				t.Fatalf("format %d with %d packs: want format 4 with packs", m.FormatVersion, len(m.Packs))
			}
			packed, loose := 0, 0
			for _, f := range m.Files {
				switch {
				case f.Missing || f.OutsideRoot:
				case big[f.Path]:
					loose++
					if f.Pack != nil {
						t.Errorf("%s (%d bytes) packed, want a loose blob", f.Path, f.Size)
					}
					key, _ := archive.BlobKeyHex(f.SHA256)
					if _, err := w.store.Stat(testenv.Context(t), key); err != nil {
						t.Errorf("%s: blob %s: %v", f.Path, key, err)
					}
				default:
					packed++
					if f.Pack == nil {
						t.Errorf("%s (%d bytes) a loose blob, want packed", f.Path, f.Size)
					}
				}
			}
			if loose != len(big) || packed < 10 {
				t.Fatalf("%d loose and %d packed files, want %d and many", loose, packed, len(big))
			}
			w.purgeTenant(t, tenant)
			removeFiles(t, m)
			rep := w.mustRestore(t, w.options(tenant))
			if rep.Totals.FilesWritten != packed+loose {
				t.Errorf("files written: %d, want %d", rep.Totals.FilesWritten, packed+loose)
			}
			sameState(t, "rows after restore", rowsBefore, w.state(t))
			testenv.SameState(t, "files after restore", filesBefore, w.rootState(t))
		})
	}
}

// packedFiles are m's packed files, in the order of its list.
func packedFiles(t *testing.T, m *archive.Manifest) []int {
	t.Helper()
	var out []int
	for i, f := range m.Files {
		if f.Pack != nil {
			out = append(out, i)
		}
	}
	if len(out) < 2 {
		t.Fatalf("%d packed files: the test needs two", len(out))
	}
	return out
}

// A pack altered in storage (a flipped byte), or a manifest whose packed entry's
// digest is not its frame's content: verify names the pack, and restore refuses
// with nothing written, rows or files.
func TestRun_PackTampered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string, m *archive.Manifest)
	}{
		{"flipped byte", func(t *testing.T, dir string, m *archive.Manifest) {
			path := filepath.Join(dir, filepath.FromSlash(m.Packs[0].Key))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"content digests swapped", func(t *testing.T, dir string, m *archive.Manifest) {
			// The pack is intact and its digest holds: only the content digest of
			// each frame, checked before anything is placed, tells.
			i := packedFiles(t, m)
			a, b := &m.Files[i[0]], &m.Files[i[1]]
			a.SHA256, b.SHA256 = b.SHA256, a.SHA256
			a.Size, b.Size = b.Size, a.Size
			rewriteManifest(t, dir, m)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store, err := storage.NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			w := callLogd(t, store)
			tenant := w.tenants[0]
			m := w.snapshot(t, tenant)
			if len(m.Packs) == 0 {
				t.Fatal("no pack: the test proves nothing")
			}
			tc.tamper(t, dir, m)
			key := m.Packs[0].Key

			chk, err := repository.NewChecker(store)
			if err != nil {
				t.Fatal(err)
			}
			defer chk.Close()
			stored := testenv.Manifest(t, store, m.Tenant, m.ID)
			probs, err := chk.Verify(testenv.Context(t), stored, nil)
			if err != nil || len(probs) == 0 || !strings.Contains(errors.Join(probs...).Error(), key) {
				t.Errorf("verify: %v, %v; want a problem naming %s", probs, err, key)
			}

			w.purgeTenant(t, tenant)
			removeFiles(t, m)
			purged, files := w.state(t), w.rootState(t)
			_, err = w.restore(t, w.options(tenant))
			var ve *archive.VerifyError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), key) {
				t.Fatalf("restore of a tampered pack: %v, want a verification error naming %s", err, key)
			}
			w.nothingWritten(t, purged, files)
		})
	}
}

// A sealed snapshot's pack, altered in the bucket: restore refuses, nothing
// written (the sealed stream's authentication, before any content digest).
func TestSealed_PackTampered(t *testing.T) {
	w := callLogd(t, s3Store(t))
	writer, reader := operatorKeys(t, w.store)
	tenant := w.tenants[0]
	ref := w.sealedSnapshot(t, tenant, writer)
	m, _ := openManifest(t, w.store, ref, reader)
	if len(m.Packs) == 0 {
		t.Fatal("no pack: the test proves nothing")
	}
	key := m.Packs[0].Key
	body := rawGet(t, w.store, key)
	body[len(body)/2] ^= 0x01
	rawPut(t, w.store, key, body)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	purged, files := w.state(t), w.rootState(t)
	o := w.options(tenant)
	o.Keys = reader
	_, err := w.restore(t, o)
	var ve *archive.VerifyError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), key) {
		t.Fatalf("restore of a tampered sealed pack: %v, want a verification error naming %s", err, key)
	}
	w.nothingWritten(t, purged, files)
}

// A format-3 manifest (no packs: every file a blob) is still restored.
func TestRun_Format3Restores(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := callLogd(t, store)
	w.packMax = -1 // as a format-3 snapshot stored them
	tenant := w.tenants[0]
	rowsBefore, filesBefore := w.state(t), w.rootState(t)
	m := w.snapshot(t, tenant)
	m.FormatVersion = 3
	rewriteManifest(t, dir, m)
	if got := testenv.Manifest(t, store, m.Tenant, m.ID); got.FormatVersion != 3 || savedFiles(got) == 0 {
		t.Fatalf("stored manifest: format %d, %d files; want 3 with files", got.FormatVersion, savedFiles(got))
	}
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	w.mustRestore(t, w.options(tenant))
	sameState(t, "rows after restore", rowsBefore, w.state(t))
	testenv.SameState(t, "files after restore", filesBefore, w.rootState(t))
}

// Prune of a snapshot removes its packs with it; the packs of the snapshots kept
// (the tenant's newer one, another tenant's) stay, and so do the blobs they name.
func TestPrune_PacksGoWithTheirSnapshot(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	w := callLogd(t, store)
	growFiles(t, w, 1)
	a, b := w.tenants[0], w.tenants[1]
	old := w.snapshot(t, a)
	kept := []*archive.Manifest{w.snapshot(t, a), w.snapshot(t, b)}
	if len(old.Packs) == 0 || len(kept[0].Packs) == 0 || len(kept[1].Packs) == 0 {
		t.Fatal("a snapshot without packs: the test proves nothing")
	}
	rep, err := repository.Prune(ctx, store, repository.PruneOptions{KeepLast: 1, Grace: 1, Tenants: nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].ID != old.ID {
		t.Fatalf("prune removed %v, want snapshot %s alone", rep.Removed, old.ID)
	}
	for _, p := range old.Packs {
		if _, err := store.Stat(ctx, p.Key); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pack %s of the pruned snapshot: %v, want it gone", p.Key, err)
		}
	}
	chk, err := repository.NewChecker(store)
	if err != nil {
		t.Fatal(err)
	}
	defer chk.Close()
	for _, m := range kept {
		probs, err := chk.Verify(ctx, testenv.Manifest(t, store, m.Tenant, m.ID), nil)
		if err != nil || len(probs) > 0 {
			t.Errorf("snapshot %s kept, after the prune: %v, %v; want it whole", m.ID, probs, err)
		}
	}
}
