package snapshot_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
)

// Files on either side of SmallBlob (stored from memory below it, streamed above
// it) are stored whole: each entry's digest and size are its file's, and its blob
// decompresses to exactly its bytes.
func TestRun_BlobsOfEverySize(t *testing.T) {
	ctx := testenv.Context(t)
	e := &env{dsn: testenv.Postgres(t), recordings: t.TempDir(), exports: t.TempDir()}
	e.conn = testenv.Connect(t, e.dsn)
	if err := fixture.CreateSchema(ctx, e.conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, e.conn, fixture.Options{Seed: 5, Tenants: 1, CallLogsPerTenant: 40,
		RecordingEvery: 1, FileSize: 64, FileTenants: 1, RecordingsRoot: e.recordings, ExportsRoot: e.exports})
	if err != nil {
		t.Fatal(err)
	}
	e.res = res
	s := fileStore(t)
	cfg, err := pgx.ParseConfig(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	first, err := snapshot.Run(ctx, cfg, s, loose(e.options(res.Tenants[0])))
	if err != nil {
		t.Fatal(err)
	}
	m, err := repository.Manifest(ctx, s, archive.SnapshotRef{Tenant: first[0].Tenant, ID: first[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	if err := repository.Files(ctx, s, m, func(f archive.File) error {
		if !f.Missing && !f.OutsideRoot {
			paths = append(paths, f.Path)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 4096, snapshot.SmallBlob - 1, snapshot.SmallBlob, snapshot.SmallBlob + 1, 3 * snapshot.SmallBlob}
	if len(paths) < len(sizes) {
		t.Fatalf("%d files on disk, want at least %d", len(paths), len(sizes))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.IntN(16)) // compressible, not trivially
		}
		if err := os.WriteFile(paths[i], b, 0o640); err != nil {
			t.Fatal(err)
		}
		want[paths[i]] = b
	}
	second, err := snapshot.Run(ctx, cfg, s, loose(e.options(res.Tenants[0])))
	if err != nil {
		t.Fatal(err)
	}
	m, err = repository.Manifest(ctx, s, archive.SnapshotRef{Tenant: second[0].Tenant, ID: second[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	seen := 0
	if err := repository.Files(ctx, s, m, func(f archive.File) error {
		b, ok := want[f.Path]
		if !ok {
			return nil
		}
		seen++
		sum := sha256.Sum256(b)
		if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(b)) {
			t.Errorf("%d bytes: entry %s, %d bytes; want its file's digest and size", len(b), f.SHA256, f.Size)
		}
		key, err := archive.BlobKeyHex(f.SHA256)
		if err != nil {
			return err
		}
		info, err := s.Stat(ctx, key)
		if err != nil {
			return err
		}
		if info.Size != f.StoredBytes {
			t.Errorf("%d bytes: stored_bytes %d, blob %d", len(b), f.StoredBytes, info.Size)
		}
		rc, err := s.Get(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := dec.Reset(rc); err != nil {
			return err
		}
		got, err := io.ReadAll(dec)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%d bytes: blob holds %d other bytes", len(b), len(got))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != len(sizes) {
		t.Errorf("%d of the %d rewritten files in the manifest", seen, len(sizes))
	}
}
