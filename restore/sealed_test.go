package restore_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// operatorKeys makes an operator key and the keyrings of the two hosts: the one that
// snapshots holds its recipient only, the one that restores its identity too.
func operatorKeys(t *testing.T, s storage.Store) (writer, reader *seal.Keyring) {
	t.Helper()
	k, err := seal.GenerateOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := k.WriteIdentityFile(&file, time.Now()); err != nil {
		t.Fatal(err)
	}
	ids, err := seal.ParseIdentities(&file)
	if err != nil {
		t.Fatal(err)
	}
	to, err := seal.ParseRecipients(strings.NewReader(k.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := seal.NewKeyStore(s)
	if err != nil {
		t.Fatal(err)
	}
	return seal.NewKeyring(ks, to, nil), seal.NewKeyring(ks, seal.Recipients{}, ids)
}

// sealedSnapshot takes an encrypted snapshot of tenant with the writer's keys.
func (w *world) sealedSnapshot(t *testing.T, tenant uuid.UUID, sealer snapshot.Sealer) archive.SnapshotRef {
	t.Helper()
	cfg, _ := pgx.ParseConfig(w.dsn)
	ms, err := snapshot.Run(testenv.Context(t), cfg, w.store, snapshot.Options{Tenants: []uuid.UUID{tenant},
		Graph: w.catalog, Files: w.snapF, ToolVersion: "test", Sealer: sealer})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return archive.SnapshotRef{Tenant: ms[0].Tenant, ID: ms[0].ID}
}

// openManifest reads back a sealed snapshot's manifest with the reader's keys.
func openManifest(t *testing.T, s storage.Store, ref archive.SnapshotRef, keys repository.Opener) (*archive.Manifest, storage.Store) {
	t.Helper()
	m, objects, err := repository.Open(testenv.Context(t), s, ref, keys)
	if err != nil {
		t.Fatalf("open snapshot %s: %v", ref.ID, err)
	}
	return m, objects
}

// knownStrings are pieces of the tenant's data a reader of the bucket must not find:
// text fields of the first rows of every table (not the tenant's id, which names
// keys), every file path, and the start of every file's content.
func knownStrings(t *testing.T, m *archive.Manifest, objects storage.Store) []string {
	t.Helper()
	ctx := testenv.Context(t)
	dec, err := archive.NewBlobDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []string
	for _, tb := range m.Tables {
		rc, err := objects.Get(ctx, tb.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := dec.Reset(rc); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(dec)
		for i := 0; i < 3 && sc.Scan(); i++ {
			for _, f := range strings.Split(sc.Text(), "\t") {
				// Table names are in the objects' keys (schema, not data): a value
				// that happens to be part of one is not searched for.
				if len(f) >= 10 && f != m.Tenant.String() && f != `\N` && !slices.ContainsFunc(m.Tables, func(tb archive.Table) bool { return strings.Contains(tb.Key, f) }) {
					out = append(out, f)
				}
			}
		}
		rc.Close()
	}
	for _, f := range m.Files {
		out = append(out, f.Path)
		if b, err := os.ReadFile(f.Path); err == nil && len(b) >= 16 {
			out = append(out, string(b[:min(len(b), 48)]))
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d known strings: the search would prove nothing", len(out))
	}
	return out
}

// findInStore reads every object of the store, raw and (when it decompresses)
// decompressed, and returns the known strings found, with where.
func findInStore(t *testing.T, s storage.Store, known []string) []string {
	t.Helper()
	ctx := testenv.Context(t)
	var keys []string
	if err := s.List(ctx, "", func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var found []string
	for _, k := range keys {
		rc, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		texts := [][]byte{raw}
		if plain, err := dec.DecodeAll(raw, nil); err == nil {
			texts = append(texts, plain)
		}
		for _, s := range known {
			for _, text := range texts {
				if bytes.Contains(text, []byte(s)) {
					found = append(found, k+": "+s)
					break
				}
			}
		}
	}
	return found
}

// The encrypted round trip, on both test schemas and real MinIO: rows and files come
// back identical; no object of the bucket holds any known piece of the tenant's data
// (a plaintext snapshot of the same tenant, searched the same way, does); a host
// holding only the recipient snapshots but cannot restore, and says what it needs.
func TestSealed_RoundTrip(t *testing.T) {
	for _, schema := range []struct {
		name string
		open func(*testing.T, storage.Store) *world
	}{{"calllogd", callLogd}, {"graph", graph}} {
		t.Run(schema.name, func(t *testing.T) {
			w := schema.open(t, s3Store(t))
			writer, reader := operatorKeys(t, w.store)
			tenant := w.tenants[0]
			before, filesBefore := w.state(t), w.fileState(t)
			ref := w.sealedSnapshot(t, tenant, writer)

			m, objects := openManifest(t, w.store, ref, reader)
			known := knownStrings(t, m, objects)
			if found := findInStore(t, w.store, known); len(found) > 0 {
				t.Errorf("the bucket holds the tenant's data in clear:\n%s", strings.Join(found, "\n"))
			}
			// The control: the same search finds them in a plaintext snapshot.
			plain := s3Store(t)
			cfg, _ := pgx.ParseConfig(w.dsn)
			if _, err := snapshot.Run(testenv.Context(t), cfg, plain, snapshot.Options{Tenants: []uuid.UUID{tenant},
				Graph: w.catalog, Files: w.snapF, ToolVersion: "test"}); err != nil {
				t.Fatal(err)
			}
			if found := findInStore(t, plain, known); len(found) == 0 {
				t.Error("the search finds nothing in a plaintext snapshot either: it proves nothing")
			}

			w.purgeTenant(t, tenant)
			for _, f := range m.Files {
				if !f.Missing {
					if err := os.Remove(f.Path); err != nil {
						t.Fatal(err)
					}
				}
			}
			purged, filesPurged := w.state(t), w.fileState(t)

			// Recipients only: refused before anything is written, naming the fix.
			o := w.options(tenant)
			o.Keys = writer
			_, err := w.restore(t, o)
			if !errors.Is(err, seal.ErrNoIdentity) || !strings.Contains(err.Error(), "encryption.identity_file") {
				t.Fatalf("restore with the recipient only: got %v, want an error naming encryption.identity_file", err)
			}
			o.Keys = nil
			if _, err := w.restore(t, o); !errors.Is(err, repository.ErrSealed) {
				t.Fatalf("restore without keys: got %v, want ErrSealed", err)
			}
			sameState(t, "after refused restores", purged, w.state(t))
			testenv.SameState(t, "files after refused restores", filesPurged, w.fileState(t))

			o.Keys = reader
			rep := w.mustRestore(t, o)
			sameState(t, "after restore", before, w.state(t))
			testenv.SameState(t, "files after restore", filesBefore, w.fileState(t))
			if rep.Totals.Rows == 0 || rep.Totals.Inserted == 0 {
				t.Errorf("report totals %+v: want rows inserted", rep.Totals)
			}
		})
	}
}
