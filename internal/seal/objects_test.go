package seal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// A tenant's view of the store: names in the plaintext layout go where sealed
// objects live, and nowhere else; what is put comes back opened with an identity,
// and not without one; the commit lists exactly what was stored, which the keyless
// verify then checks.
func TestObjects_PutGetCommit(t *testing.T) {
	ctx := t.Context()
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ids, to, _ := operator(t)
	ks := keyStore(t, s)
	writer, reader := seal.NewKeyring(ks, to, nil), seal.NewKeyring(ks, seal.Recipients{}, ids)
	tenant, other, snap := uuid.New(), uuid.New(), uuid.Must(uuid.NewV7())
	view, err := writer.Seal(ctx, s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	objs := view.(*seal.Objects)
	sum := sha256.Sum256([]byte("a recording"))
	blob := archive.BlobKey(sum)
	table := archive.TableKey(tenant, snap, "public", "call_logd_call_log")
	for _, tc := range []struct{ key, want string }{
		{table, table},
		{archive.ManifestKey(tenant, snap), archive.SealedManifestKey(tenant, snap)},
	} {
		if got, err := objs.StoredKey(tc.key); err != nil || got != tc.want {
			t.Errorf("StoredKey(%s): %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	sealedBlob, err := objs.StoredKey(blob)
	if err != nil || !strings.HasPrefix(sealedBlob, archive.TenantBlobsPrefix(tenant)) || strings.Contains(sealedBlob, blob[len(archive.BlobsPrefix)+3:len(blob)-4]) {
		t.Errorf("blob stored as %q (%v): want under the tenant's prefix, not named by the content digest", sealedBlob, err)
	}
	otherView, err := writer.Seal(ctx, s, other)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := otherView.(*seal.Objects).StoredKey(blob); k == sealedBlob {
		t.Error("two tenants' blobs of the same content share a name")
	}
	for _, foreign := range []string{archive.TableKey(other, snap, "public", "t"), "audit/2026/x.json", "keys/" + tenant.String() + "/key.json"} {
		if err := view.Put(ctx, foreign, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%s) through tenant %s's view: stored, want refused", foreign, tenant)
		}
	}

	content := bytes.Repeat([]byte("call log row\n"), 20000) // several chunks
	for _, k := range []string{table, blob, archive.ManifestKey(tenant, snap)} {
		if err := view.Put(ctx, k, bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := s.Get(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(raw)
	raw.Close()
	if bytes.Contains(stored, []byte("call log row")) {
		t.Error("the stored object holds the plaintext")
	}
	if _, err := view.Get(ctx, table); !errors.Is(err, seal.ErrNoIdentity) {
		t.Errorf("Get with the recipient only: %v, want ErrNoIdentity", err)
	}
	opened, err := reader.Open(ctx, s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{table, blob} {
		rc, err := opened.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("Get(%s): %d bytes, %v; want what was put", k, len(got), err)
		}
	}

	if err := objs.Commit(ctx, snap, archive.ScopeTenant, time.Now()); err != nil {
		t.Fatal(err)
	}
	ref := archive.SnapshotRef{Tenant: tenant, ID: snap}
	var listed []string
	e, err := repository.Envelope(ctx, s, ref, func(o archive.SealedObject) error { listed = append(listed, o.Key); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if e.Manifest.Key != archive.SealedManifestKey(tenant, snap) || len(listed) != 2 {
		t.Errorf("envelope: manifest %s, objects %v; want the sealed manifest and the table and blob", e.Manifest.Key, listed)
	}
	if probs, err := repository.VerifySealed(ctx, s, ref, nil); err != nil || len(probs) > 0 {
		t.Errorf("keyless verify: %v, %v", probs, err)
	}
	if sums, err := repository.List(ctx, s, tenant); err != nil || len(sums) != 1 || !sums[0].Sealed {
		t.Errorf("list: %+v, %v; want the one sealed snapshot", sums, err)
	}
}

// A keyring and a view print no key material, whatever the verb.
func TestKeyringAndObjects_Redacted(t *testing.T) {
	ctx := t.Context()
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ids, to, file := operator(t)
	kr := seal.NewKeyring(keyStore(t, s), to, ids)
	view, err := kr.Seal(ctx, s, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	opened, err := kr.Open(ctx, s, view.(*seal.Objects).Tenant())
	if err != nil {
		t.Fatal(err)
	}
	secret := file[strings.Index(file, "AGE-SECRET-KEY"):]
	secret = secret[:strings.IndexByte(secret, '\n')]
	for _, v := range []any{kr, view, opened} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, secret[15:30]) || strings.Contains(got, "AGE-SECRET-KEY") {
				t.Errorf("%s of %T printed key material", verb, v)
			}
		}
	}
}

// getCounter counts the reads of each object.
type getCounter struct {
	storage.Store
	mu   sync.Mutex
	gets map[string]int
}

func (g *getCounter) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	g.mu.Lock()
	g.gets[key]++
	g.mu.Unlock()
	return g.Store.Get(ctx, key)
}

// A second snapshot of a tenant notes the blobs the first stored without reading
// them: their sizes and digests come from the first snapshot's envelope. A blob no
// envelope lists (its run never committed) is read once to be hashed. Either way
// the envelope describes the stored bytes (the keyless verify passes), and one
// object stored and noted in the same run is listed once, as stored.
func TestObjects_NoteReadsNoListedBlob(t *testing.T) {
	ctx := t.Context()
	base, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &getCounter{Store: base, gets: map[string]int{}}
	_, to, _ := operator(t)
	writer := seal.NewKeyring(keyStore(t, base), to, nil) // the keys need an erasable store
	tenant := uuid.New()
	blob := func(content string) string { return archive.BlobKey(sha256.Sum256([]byte(content))) }
	snapshot := func(put, noted []string) archive.SnapshotRef {
		t.Helper()
		ref := archive.SnapshotRef{Tenant: tenant, ID: uuid.Must(uuid.NewV7())}
		view, err := writer.Seal(ctx, s, tenant)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range put {
			if err := view.Put(ctx, blob(c), strings.NewReader(c)); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range noted {
			if err := view.(*seal.Objects).Note(ctx, blob(c)); err != nil {
				t.Fatal(err)
			}
		}
		if err := view.Put(ctx, archive.ManifestKey(tenant, ref.ID), strings.NewReader("{}")); err != nil {
			t.Fatal(err)
		}
		if err := view.(*seal.Objects).Commit(ctx, ref.ID, archive.ScopeTenant, time.Now()); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	stored := func(content string) string {
		k, err := writer.Seal(ctx, s, tenant)
		if err != nil {
			t.Fatal(err)
		}
		sk, err := k.(*seal.Objects).StoredKey(blob(content))
		if err != nil {
			t.Fatal(err)
		}
		return sk
	}
	snapshot([]string{"one", "two"}, nil)
	// A run that stored "three" and never committed.
	view, err := writer.Seal(ctx, s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := view.Put(ctx, blob("three"), strings.NewReader("three")); err != nil {
		t.Fatal(err)
	}
	clear(s.gets)
	second := snapshot([]string{"four"}, []string{"one", "two", "three", "four"})
	for _, c := range []string{"one", "two", "four"} {
		if n := s.gets[stored(c)]; n != 0 {
			t.Errorf("blob %q read %d times by the second snapshot, want 0 (listed by the first envelope, or stored by this run)", c, n)
		}
	}
	if n := s.gets[stored("three")]; n != 1 {
		t.Errorf("blob no envelope lists read %d times, want once (to hash it)", n)
	}
	var listed []string
	if _, err := repository.Envelope(ctx, s, second, func(o archive.SealedObject) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 4 {
		t.Errorf("second envelope lists %v, want the four blobs once each", listed)
	}
	if probs, err := repository.VerifySealed(ctx, s, second, nil); err != nil || len(probs) > 0 {
		t.Errorf("keyless verify of the second snapshot: %v, %v", probs, err)
	}
}
