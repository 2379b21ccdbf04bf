package restore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
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

// operator is an operator key: its identities (the restoring host's) and its
// recipients (the snapshotting host's).
type operator struct {
	ids *seal.Identities
	to  seal.Recipients
}

func newOperator(t *testing.T) operator {
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
	return operator{ids: ids, to: to}
}

func keyStore(t *testing.T, s storage.Store) *seal.KeyStore {
	t.Helper()
	ks, err := seal.NewKeyStore(s)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// operatorKeys makes an operator key and the keyrings of the two hosts: the one that
// snapshots holds its recipient only, the one that restores its identity only.
func operatorKeys(t *testing.T, s storage.Store) (writer, reader *seal.Keyring) {
	t.Helper()
	op, ks := newOperator(t), keyStore(t, s)
	return seal.NewKeyring(ks, op.to, nil), seal.NewKeyring(ks, seal.Recipients{}, op.ids)
}

// sealedSnapshot takes an encrypted snapshot of tenant with the writer's keys.
func (w *world) sealedSnapshot(t *testing.T, tenant uuid.UUID, sealer snapshot.Sealer) archive.SnapshotRef {
	t.Helper()
	cfg, _ := pgx.ParseConfig(w.dsn)
	ms, err := snapshot.Run(testenv.Context(t), cfg, w.store, snapshot.Options{Tenants: []uuid.UUID{tenant},
		Graph: w.catalog, Files: w.snapF, ToolVersion: "test", Sealer: sealer, PackMax: w.packMax})
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
	// Its files are read inline from its file list (sealed too), as testenv.Manifest
	// does: a test's few files fit in memory.
	if m.FileList != nil {
		m.Files = []archive.File{}
		err := repository.Files(testenv.Context(t), objects, m, func(f archive.File) error {
			m.Files = append(m.Files, f)
			return nil
		})
		if err != nil {
			t.Fatalf("files of snapshot %s: %v", ref.ID, err)
		}
		m.FileList = nil
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
			if savedFiles(m) > 0 && len(m.Packs) == 0 {
				t.Error("the sealed snapshot has no pack: its small files' sealing goes untested")
			}
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

// rawCopy copies a stored object's bytes to another key, as someone with write
// access to the bucket could; flip and cut alter one in place.
func rawCopy(t *testing.T, s storage.Store, from, to string) {
	t.Helper()
	b := rawGet(t, s, from)
	if err := s.Put(testenv.Context(t), to, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

func rawGet(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(testenv.Context(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawPut(t *testing.T, s storage.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(testenv.Context(t), key, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// Tampering with an encrypted snapshot, each way someone who can write the bucket
// could: every one is found before anything is written (a *archive.VerifyError
// naming the object, which the CLI exits 4 on), by the restore and by the keyless
// verify alike.
func TestSealed_Tampering(t *testing.T) {
	w := callLogd(t, s3Store(t))
	w.packMax = -1 // blobs tampered with; packs: TestSealed_PackTampered
	writer, reader := operatorKeys(t, w.store)
	a, b := w.tenants[0], w.tenants[1]
	refA, refB := w.sealedSnapshot(t, a, writer), w.sealedSnapshot(t, b, writer)
	mA, _ := openManifest(t, w.store, refA, reader)
	mB, _ := openManifest(t, w.store, refB, reader)
	w.purgeTenant(t, a)
	for _, f := range mA.Files {
		if !f.Missing {
			if err := os.Remove(f.Path); err != nil {
				t.Fatal(err)
			}
		}
	}
	purged, filesPurged := w.state(t), w.fileState(t)
	ctx := testenv.Context(t)

	// Where things are stored: the biggest table of each, a blob of each.
	table := func(m *archive.Manifest) archive.Table {
		return slices.MaxFunc(m.Tables, func(x, y archive.Table) int { return int(x.StoredBytes - y.StoredBytes) })
	}
	blob := func(m *archive.Manifest) string {
		for _, f := range m.Files {
			if !f.Missing && !f.OutsideRoot {
				k, err := archive.BlobKeyHex(f.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				view, err := writer.Seal(ctx, w.store, m.Tenant)
				if err != nil {
					t.Fatal(err)
				}
				sk, err := view.(*seal.Objects).StoredKey(k)
				if err != nil {
					t.Fatal(err)
				}
				return sk
			}
		}
		t.Fatalf("tenant %s has no file", m.Tenant)
		return ""
	}
	tA, tB := table(mA), table(mB)
	bA, bB := blob(mA), blob(mB)
	if tA.Key == tB.Key || bA == bB {
		t.Fatal("two tenants share an object")
	}
	manA := archive.SealedManifestKey(a, refA.ID)

	for _, tc := range []struct {
		name   string
		key    string // the object named
		tamper func()
	}{
		{"ciphertext byte flipped", tA.Key, func() {
			body := rawGet(t, w.store, tA.Key)
			body[len(body)/2] ^= 0x01
			rawPut(t, w.store, tA.Key, body)
		}},
		{"blob truncated", bA, func() {
			body := rawGet(t, w.store, bA)
			rawPut(t, w.store, bA, body[:len(body)-100])
		}},
		{"table of another tenant swapped in", tA.Key, func() {
			// The same table of B, at A's key: both sealed, both valid.
			rawCopy(t, w.store, archive.TableKey(b, refB.ID, tA.Schema, tA.Name), tA.Key)
		}},
		{"blob of another tenant at the tenant's address", bA, func() { rawCopy(t, w.store, bB, bA) }},
		{"manifest of A pointing at B's objects", manA, func() {
			// A forged manifest, sealed for A with A's public key (any snapshot host
			// has it), naming B's table object and B's blob.
			forged := *mA
			forged.Tables = slices.Clone(mA.Tables)
			for i := range forged.Tables {
				if forged.Tables[i].Name == tB.Name {
					forged.Tables[i] = tB
				}
			}
			forged.Files = slices.Clone(mB.Files)
			view, err := writer.Seal(ctx, w.store, a)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := archive.Encode(&buf, &forged); err == nil {
				t.Fatal("a manifest naming another tenant's table encodes: Validate lets it through")
			}
			// Encode refuses it; written by hand, the reader must refuse it too.
			forged.Tables = slices.Clone(mA.Tables)
			if err := archive.Encode(&buf, &forged); err != nil {
				t.Fatal(err)
			}
			text := strings.Replace(buf.String(), tA.Key, tB.Key, 1)
			if err := view.Put(ctx, archive.ManifestKey(a, refA.ID), strings.NewReader(text)); err != nil {
				t.Fatal(err)
			}
		}},
		{"another valid manifest of the tenant sealed in its place", manA, func() {
			// A's own manifest with another reason, sealed for A as A's manifest:
			// it opens and names only A's objects. The envelope's digest of the
			// sealed manifest is what refuses it.
			other := *mA
			other.Reason = "swapped in"
			var buf bytes.Buffer
			if err := archive.Encode(&buf, &other); err != nil {
				t.Fatal(err)
			}
			view, err := writer.Seal(ctx, w.store, a)
			if err != nil {
				t.Fatal(err)
			}
			if err := view.Put(ctx, archive.ManifestKey(a, refA.ID), &buf); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := rawGet(t, w.store, tc.key)
			defer rawPut(t, w.store, tc.key, saved)
			tc.tamper()
			o := w.options(a)
			o.Keys = reader
			_, err := w.restore(t, o)
			var ve *archive.VerifyError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("restore: got %v, want a VerifyError naming %s", err, tc.key)
			}
			sameState(t, "after a refused restore", purged, w.state(t))
			testenv.SameState(t, "files after a refused restore", filesPurged, w.fileState(t))
			probs, err := repository.VerifySealed(ctx, w.store, refA, nil)
			if err != nil || len(probs) == 0 || !strings.Contains(errors.Join(probs...).Error(), tc.key) {
				t.Errorf("keyless verify: %v, %v; want a problem naming %s", probs, err, tc.key)
			}
		})
	}
	// Put back, it restores: the tampering, not the test, made the failures.
	o := w.options(a)
	o.Keys = reader
	w.mustRestore(t, o)
}

// Forgetting a tenant whose snapshots are under COMPLIANCE Object Lock: its objects
// stay (they must), no one can read it any more, the date says when; another tenant
// still restores.
func TestSealed_ForgetUnderObjectLock(t *testing.T) {
	bkt := testenv.MinIOWithLock(t)
	store, err := storage.NewS3(testenv.Context(t), bkt.Bucket, "f", storage.S3Options{Endpoint: bkt.Endpoint, Region: bkt.Region,
		AccessKeyID: bkt.AccessKey, SecretAccessKey: bkt.SecretKey, Insecure: true, PartSize: 5 << 20,
		ObjectLock: storage.ObjectLock{Mode: "COMPLIANCE", Days: 1}})
	if err != nil {
		t.Fatal(err)
	}
	w := callLogd(t, store)
	writer, reader := operatorKeys(t, w.store)
	a, b := w.tenants[0], w.tenants[1]
	refA, refB := w.sealedSnapshot(t, a, writer), w.sealedSnapshot(t, b, writer)
	ctx := testenv.Context(t)
	count := func(prefix string) (n int) {
		if err := w.store.List(ctx, prefix, func(storage.Info) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	objectsA := count(archive.SnapshotPrefix(a, refA.ID)) + count(archive.TenantBlobsPrefix(a))

	at, err := reader.Keys().Forget(ctx, a)
	if err != nil {
		t.Fatalf("forget under COMPLIANCE lock: %v", err)
	}
	if got := count(archive.SnapshotPrefix(a, refA.ID)) + count(archive.TenantBlobsPrefix(a)); got != objectsA || got == 0 {
		t.Errorf("tenant's objects: %d after forget, %d before; the lock keeps them all", got, objectsA)
	}
	if err := w.store.Delete(ctx, archive.EnvelopeKey(a, refA.ID)); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("delete of a locked object: %v, want it refused", err)
	}
	w.purgeTenant(t, a)
	w.purgeTenant(t, b)
	purged := w.state(t)
	o := w.options(a)
	o.Keys = reader
	_, err = w.restore(t, o)
	var fe *seal.ForgottenError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "keys forgotten on "+at.UTC().Format(time.DateOnly)) {
		t.Fatalf("restore of a forgotten tenant: got %v, want keys forgotten on its date", err)
	}
	o.Keys = writer // a host with no identity hears the same news
	if _, err := w.restore(t, o); !errors.As(err, &fe) {
		t.Errorf("restore of a forgotten tenant without an identity: got %v, want a ForgottenError", err)
	}
	sameState(t, "after a refused restore", purged, w.state(t))
	if _, err := writer.Seal(ctx, w.store, a); !errors.As(err, &fe) {
		t.Errorf("a new snapshot of a forgotten tenant: got %v, want a ForgottenError (no new key)", err)
	}
	// The keyless verify still holds: the objects are there, untouched.
	if probs, err := repository.VerifySealed(ctx, w.store, refA, nil); err != nil || len(probs) > 0 {
		t.Errorf("keyless verify of the forgotten snapshot: %v %v", probs, err)
	}
	ob := w.options(b)
	ob.Keys = reader
	if rep := w.mustRestore(t, ob); rep.Totals.Inserted == 0 {
		t.Error("the other tenant restored nothing")
	}
	_ = refB
}

// keys rotate, then the old identity removed: the old identity opens nothing, the new
// one restores; no snapshot object changed.
func TestSealed_RotateThenOldIdentityRemoved(t *testing.T) {
	w := callLogd(t, s3Store(t))
	ks := keyStore(t, w.store)
	old, next := newOperator(t), newOperator(t)
	tenant := w.tenants[0]
	ref := w.sealedSnapshot(t, tenant, seal.NewKeyring(ks, old.to, nil))
	ctx := testenv.Context(t)
	var before []string
	if err := w.store.List(ctx, archive.SnapshotPrefix(tenant, ref.ID), func(i storage.Info) error {
		before = append(before, i.Key+" "+string(rawGet(t, w.store, i.Key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if res, err := ks.Rotate(ctx, old.ids, next.to); err != nil || res.Resealed != 1 {
		t.Fatalf("rotate: %+v, %v; want one tenant key resealed", res, err)
	}
	var after []string
	if err := w.store.List(ctx, archive.SnapshotPrefix(tenant, ref.ID), func(i storage.Info) error {
		after = append(after, i.Key+" "+string(rawGet(t, w.store, i.Key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Error("the rotation changed the snapshot's objects")
	}
	w.purgeTenant(t, tenant)
	purged := w.state(t)
	// The old identity, removed from the recipients: it opens nothing.
	o := w.options(tenant)
	o.Keys = seal.NewKeyring(ks, seal.Recipients{}, old.ids)
	if _, err := w.restore(t, o); !errors.Is(err, seal.ErrNotRecipient) {
		t.Fatalf("restore with the old identity after rotate: got %v, want ErrNotRecipient", err)
	}
	sameState(t, "after a refused restore", purged, w.state(t))
	o.Keys = seal.NewKeyring(ks, seal.Recipients{}, next.ids)
	if rep := w.mustRestore(t, o); rep.Totals.Inserted == 0 {
		t.Error("the new identity restored nothing")
	}
}

// blobPuts is a file:// store (its batches included) that counts the sealed blobs
// put through its own Put rather than through a batch.
type blobPuts struct {
	*storage.FileStore
	mu sync.Mutex
	n  int
}

func (b *blobPuts) Put(ctx context.Context, key string, r io.Reader) error {
	if strings.HasPrefix(key, archive.SealedBlobsPrefix) {
		b.mu.Lock()
		b.n++
		b.mu.Unlock()
	}
	return b.FileStore.Put(ctx, key, r)
}

// A sealed snapshot into a file:// store writes its blobs through the store's batch,
// their syncs shared as a plaintext snapshot's are (one put each cost a fsync, a
// rename and a directory fsync: 3.28 times the plaintext snapshot's time): none goes
// through the store's own Put, and restore brings every file back, so the batch was
// flushed before the snapshot was committed.
func TestSealed_FileStoreBlobsBatched(t *testing.T) {
	fs, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bp := &blobPuts{FileStore: fs}
	w := callLogd(t, bp)
	writer, reader := operatorKeys(t, w.store)
	tenant := w.tenants[0]
	before, filesBefore := w.state(t), w.fileState(t)
	ref := w.sealedSnapshot(t, tenant, writer)
	m, objects := openManifest(t, w.store, ref, reader)
	if m.Totals().Files == 0 {
		t.Fatal("the snapshot saved no file: this test checks nothing")
	}
	if bp.n != 0 {
		t.Errorf("%d sealed blobs put one by one, want every one through the batch", bp.n)
	}
	w.purgeTenant(t, tenant)
	err = repository.Files(testenv.Context(t), objects, m, func(f archive.File) error {
		if f.Missing || f.OutsideRoot {
			return nil
		}
		return os.Remove(f.Path)
	})
	if err != nil {
		t.Fatal(err)
	}
	o := w.options(tenant)
	o.Keys = reader
	w.mustRestore(t, o)
	sameState(t, "after restore", before, w.state(t))
	testenv.SameState(t, "files after restore", filesBefore, w.fileState(t))
}
