package repository_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

func compress(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(b)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func put(t *testing.T, s storage.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// writeSnapshot stores a small valid snapshot: one table of rows, files from pool.
func writeSnapshot(t *testing.T, s storage.Store, tenant uuid.UUID, at time.Time, files [][]byte) *archive.Manifest {
	t.Helper()
	id, _ := uuid.NewV7()
	rows := []byte(fmt.Sprintf("1\t%s\n2\t%s\n", tenant, at))
	obj := compress(t, rows)
	key := archive.TableKey(tenant, id, "public", "t")
	put(t, s, key, obj)
	d := archive.NewDigest()
	d.Write(obj)
	m := &archive.Manifest{FormatVersion: archive.FormatVersion, ID: id, Tenant: tenant, CreatedAt: at,
		Scope: archive.Scope{Kind: archive.ScopeTenant}, Files: []archive.File{},
		Tables: []archive.Table{{Schema: "public", Name: "t", Reach: "root", Columns: []archive.Column{{Name: "a", Type: "int"}, {Name: "b", Type: "text"}},
			Rows: 2, RawBytes: int64(len(rows)), StoredBytes: d.Size(), SHA256: d.Hex(), Key: key}}}
	for i, f := range files {
		raw := archive.NewDigest()
		raw.Write(f)
		bk := archive.BlobKey(raw.Sum())
		put(t, s, bk, compress(t, f))
		m.Files = append(m.Files, archive.File{Table: "public.t", Column: "p", Path: fmt.Sprintf("/r/%d", i), Size: int64(len(f)), SHA256: raw.Hex()})
	}
	if err := repository.PutManifest(context.Background(), s, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Over random histories: prune keeps exactly what the rules say, every surviving
// snapshot still verifies, and no blob survives that nothing references.
func TestPrune_RandomHistories(t *testing.T) {
	now := time.Now()
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			s, err := storage.NewFile(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			pool := make([][]byte, 6)
			for i := range pool {
				pool[i] = []byte(fmt.Sprintf("recording %d of seed %d", i, seed))
			}
			tenants := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
			var all []*archive.Manifest
			for range 4 + r.IntN(10) {
				var files [][]byte
				for range r.IntN(4) {
					files = append(files, pool[r.IntN(len(pool))])
				}
				at := now.Add(-time.Duration(r.IntN(90*24)) * time.Hour).UTC()
				all = append(all, writeSnapshot(t, s, tenants[r.IntN(len(tenants))], at, files))
			}
			o := repository.PruneOptions{KeepLast: r.IntN(3), KeepWithin: time.Duration(r.IntN(60*24)) * time.Hour, Now: now.Add(2 * time.Hour)}
			if o.KeepLast == 0 && o.KeepWithin == 0 {
				o.KeepLast = 1
			}
			if r.IntN(3) == 0 {
				o.Tenants = tenants[:1]
			}
			if _, err := repository.Prune(testenv.Context(t), s, o); err != nil {
				t.Fatal(err)
			}
			// What the rules keep, computed independently.
			want := map[uuid.UUID]bool{}
			for _, tn := range tenants {
				var mine []*archive.Manifest
				for _, m := range all {
					if m.Tenant == tn {
						mine = append(mine, m)
					}
				}
				slices.SortFunc(mine, func(a, b *archive.Manifest) int { return b.CreatedAt.Compare(a.CreatedAt) })
				for i, m := range mine {
					scoped := len(o.Tenants) == 0 || slices.Contains(o.Tenants, tn)
					want[m.ID] = !scoped || i < o.KeepLast || o.Now.Sub(m.CreatedAt) < o.KeepWithin
				}
			}
			left, err := repository.List(testenv.Context(t), s, uuid.Nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[uuid.UUID]bool{}
			chk, _ := repository.NewChecker(s)
			defer chk.Close()
			referenced := map[string]bool{}
			for _, sum := range left {
				got[sum.ID] = true
				m, err := repository.Manifest(testenv.Context(t), s, sum.SnapshotRef)
				if err != nil {
					t.Fatal(err)
				}
				if probs, err := chk.Verify(testenv.Context(t), m, nil); err != nil || len(probs) > 0 {
					t.Errorf("surviving snapshot %s does not verify: %v %v", m.ID, probs, err)
				}
				for _, f := range m.Files {
					k, _ := archive.BlobKeyHex(f.SHA256)
					referenced[k] = true
				}
			}
			for _, m := range all {
				if got[m.ID] != want[m.ID] {
					t.Errorf("snapshot %s of %s (%s ago): kept=%v, want %v (rules %+v)", m.ID, m.Tenant, o.Now.Sub(m.CreatedAt), got[m.ID], want[m.ID], o)
				}
			}
			s.List(testenv.Context(t), archive.BlobsPrefix, func(i storage.Info) error {
				if !referenced[i.Key] {
					t.Errorf("blob %s survived with nothing referencing it", i.Key)
				}
				return nil
			})
		})
	}
}

// racingStore uploads a blob the moment prune starts listing blobs: a snapshot
// writing while prune sweeps.
type racingStore struct {
	storage.Store
	t   *testing.T
	key string
}

func (r *racingStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if prefix == archive.BlobsPrefix && r.key == "" {
		raw := archive.NewDigest()
		raw.Write([]byte("written during the sweep"))
		r.key = archive.BlobKey(raw.Sum())
		put(r.t, r.Store, r.key, compress(r.t, []byte("written during the sweep")))
	}
	return r.Store.List(ctx, prefix, fn)
}

func TestPrune_BlobWrittenDuringSweepSurvives(t *testing.T) {
	fs, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &racingStore{Store: fs, t: t}
	writeSnapshot(t, fs, uuid.New(), time.Now().Add(-48*time.Hour), [][]byte{[]byte("old")})
	rep, err := repository.Prune(testenv.Context(t), s, repository.PruneOptions{KeepWithin: time.Hour, Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Blobs != 0 {
		t.Errorf("report %+v: want the old snapshot removed and no blob swept (its blob is too new to sweep yet)", rep)
	}
	if _, err := fs.Stat(testenv.Context(t), s.key); err != nil {
		t.Errorf("a blob written while prune swept was removed: %v", err)
	}
}

func TestPrune_RefusesKeepingNothing(t *testing.T) {
	fs, _ := storage.NewFile(t.TempDir())
	if _, err := repository.Prune(testenv.Context(t), fs, repository.PruneOptions{}); err == nil {
		t.Error("prune with no keep rule: got nil error")
	}
}

// Objects of a snapshot never committed go once older than the grace, not before.
func TestPrune_IncompleteSnapshots(t *testing.T) {
	fs, _ := storage.NewFile(t.TempDir())
	tenant := uuid.New()
	id, _ := uuid.NewV7()
	key := archive.TableKey(tenant, id, "public", "t")
	put(t, fs, key, compress(t, []byte("x\n")))
	o := repository.PruneOptions{KeepLast: 1, Now: time.Now()}
	rep, err := repository.Prune(testenv.Context(t), fs, o)
	if err != nil || len(rep.Incomplete) != 0 {
		t.Fatalf("fresh uncommitted objects: %+v, %v; want them kept (a snapshot may be writing)", rep, err)
	}
	o.Now = time.Now().Add(2 * time.Hour)
	rep, err = repository.Prune(testenv.Context(t), fs, o)
	if err != nil || len(rep.Incomplete) != 1 || rep.Incomplete[0] != key {
		t.Fatalf("hour-old uncommitted objects: %+v, %v; want %s removed", rep, err, key)
	}
	if _, err := fs.Stat(testenv.Context(t), key); err == nil {
		t.Error("the object is still there")
	}
}
