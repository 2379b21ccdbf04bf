package seal_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// backend is a store every key store test runs on, and a way to count the stored
// versions of a key (delete markers included): a replaced or erased key record must
// leave nothing readable behind.
type backend struct {
	storage.Store
	versions func(t *testing.T, key string) int
}

// eachStore runs fn on a directory, a MinIO bucket, and a MinIO bucket under
// COMPLIANCE Object Lock (every Put locked, every bucket versioned).
func eachStore(t *testing.T, fn func(t *testing.T, s backend)) {
	onS3 := func(t *testing.T, b testenv.S3, lock storage.ObjectLock) backend {
		s, err := storage.NewS3(testenv.Context(t), b.Bucket, "p", storage.S3Options{Endpoint: b.Endpoint,
			Region: b.Region, AccessKeyID: b.AccessKey, SecretAccessKey: b.SecretKey, Insecure: true,
			PartSize: 5 << 20, ObjectLock: lock})
		if err != nil {
			t.Fatal(err)
		}
		c := b.Client(t)
		return backend{s, func(t *testing.T, key string) int {
			n := 0
			for v := range c.ListObjects(testenv.Context(t), b.Bucket, minio.ListObjectsOptions{Prefix: "p/" + key, WithVersions: true}) {
				if v.Err != nil {
					t.Fatal(v.Err)
				}
				if v.Key == "p/"+key {
					n++
				}
			}
			return n
		}}
	}
	backends := map[string]func(t *testing.T) backend{
		"file": func(t *testing.T) backend {
			s := testenv.FileStore(t)
			return backend{s, func(t *testing.T, key string) int {
				if _, err := s.Stat(testenv.Context(t), key); errors.Is(err, fs.ErrNotExist) {
					return 0
				}
				return 1
			}}
		},
		"s3": func(t *testing.T) backend { return onS3(t, testenv.MinIO(t), storage.ObjectLock{}) },
		"s3-locked": func(t *testing.T) backend {
			return onS3(t, testenv.MinIOWithLock(t), storage.ObjectLock{Mode: "COMPLIANCE", Days: 1})
		},
	}
	for _, name := range []string{"file", "s3", "s3-locked"} {
		t.Run(name, func(t *testing.T) { fn(t, backends[name](t)) })
	}
}

// Two writers creating the same tenant's key at once (eight here, as two snapshot
// hosts and their retries would) all get the same key, one record is stored, and
// what any of them sealed opens with the one identity.
func TestKeyStore_ConcurrentCreate(t *testing.T) {
	eachStore(t, func(t *testing.T, s backend) {
		ctx := testenv.Context(t)
		ids, rs, _ := operator(t)
		const writers = 8
		got := make([]*seal.TenantRecipient, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			ks := keyStore(t, s.Store) // one per writer, as on separate hosts
			wg.Go(func() { got[i], errs[i] = ks.Create(ctx, tenantA, rs) })
		}
		wg.Wait()
		for i := range writers {
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			if got[i].Recipient() != got[0].Recipient() {
				t.Fatalf("writer %d got recipient %s, writer 0 %s: two keys for one tenant", i, got[i].Recipient(), got[0].Recipient())
			}
			sealTo(t, ctx, s, got[i], fmt.Sprintf("obj/%d", i), strings.NewReader(fmt.Sprint("from writer ", i)))
		}
		var keys []string
		if err := s.List(ctx, seal.KeysPrefix, func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 {
			t.Errorf("key objects after the race: %v, want one", keys)
		}
		id, err := keyStore(t, s.Store).Identity(ctx, tenantA, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i := range writers {
			if text, err := open(ctx, s, id, fmt.Sprintf("obj/%d", i)); err != nil || text != fmt.Sprint("from writer ", i) {
				t.Errorf("object of writer %d: got %q, %v", i, text, err)
			}
		}
	})
}

func TestKeyStore_CreateIsIdempotent(t *testing.T) {
	ctx := testenv.Context(t)
	ks := keyStore(t, testenv.FileStore(t))
	_, rs, _ := operator(t)
	_, other, _ := operator(t)
	first, err := ks.Create(ctx, tenantA, rs)
	if err != nil {
		t.Fatal(err)
	}
	// A second writer configured with other operators still gets the tenant's key.
	again, err := ks.Create(ctx, tenantA, other)
	if err != nil {
		t.Fatal(err)
	}
	if first.Recipient() != again.Recipient() {
		t.Errorf("second Create: got %s, want the first key %s", again.Recipient(), first.Recipient())
	}
	if _, err := ks.Recipient(ctx, tenantB); !errors.Is(err, seal.ErrNoKey) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Recipient of a tenant without a key: got %v, want ErrNoKey", err)
	}
}

// Only an operator identity opens a tenant key; the recipients alone (all a
// snapshot host holds) do not.
func TestKeyStore_Identity(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	ks := keyStore(t, s)
	ids, rs, _ := operator(t)
	stranger, _, _ := operator(t)
	to, err := ks.Create(ctx, tenantA, rs)
	if err != nil {
		t.Fatal(err)
	}
	sealTo(t, ctx, s, to, "obj", strings.NewReader("call records"))
	if _, err := ks.Identity(ctx, tenantA, stranger); !errors.Is(err, seal.ErrNotRecipient) {
		t.Errorf("Identity with a stranger's identity: got %v, want ErrNotRecipient", err)
	}
	if _, err := ks.Identity(ctx, tenantA, nil); err == nil || !strings.Contains(err.Error(), "identity_file") {
		t.Errorf("Identity without one: got %v, want an error naming encryption.identity_file", err)
	}
	id, err := ks.Identity(ctx, tenantA, ids)
	if err != nil {
		t.Fatal(err)
	}
	if text, err := open(ctx, s, id, "obj"); err != nil || text != "call records" {
		t.Errorf("open: got %q, %v", text, err)
	}
}

// A key record whose recipient was replaced (someone redirecting future snapshots to
// their own key) is found when an operator opens it.
func TestKeyStore_AlteredRecipient(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	ks := keyStore(t, s)
	ids, rs, _ := operator(t)
	if _, err := ks.Create(ctx, tenantA, rs); err != nil {
		t.Fatal(err)
	}
	intruder, err := seal.GenerateOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	key := seal.KeysPrefix + tenantA.String() + "/key.json"
	rec := readAll(t, s, key)
	i := strings.Index(rec, `"recipient":"`) + len(`"recipient":"`)
	j := i + strings.Index(rec[i:], `"`)
	if err := s.Put(ctx, key, strings.NewReader(rec[:i]+intruder.Recipient()+rec[j:])); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Identity(ctx, tenantA, ids); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("Identity of an altered record: got %v, want it refused", err)
	}
}

func readAll(t *testing.T, s storage.Store, key string) string {
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
	return string(b)
}

// Rotation reseals every tenant key to the new operators: the old identity opens
// none of them any more (no earlier version is left to read on a versioned bucket
// either), the new one opens all, and what was sealed before rotation still opens.
func TestKeyStore_Rotate(t *testing.T) {
	eachStore(t, func(t *testing.T, s backend) {
		ctx := testenv.Context(t)
		ks := keyStore(t, s.Store)
		oldIDs, oldRs, _ := operator(t)
		newIDs, newRs, _ := operator(t)
		for _, tenant := range []uuid.UUID{tenantA, tenantB} {
			to, err := ks.Create(ctx, tenant, oldRs)
			if err != nil {
				t.Fatal(err)
			}
			sealTo(t, ctx, s, to, "obj/"+tenant.String(), strings.NewReader("before rotation"))
		}
		if _, err := ks.Forget(ctx, tenantB); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Rotate(ctx, newIDs, newRs); !errors.Is(err, seal.ErrNotRecipient) {
			t.Fatalf("Rotate with an identity that opens nothing: got %v, want ErrNotRecipient", err)
		}
		res, err := ks.Rotate(ctx, oldIDs, newRs)
		if err != nil {
			t.Fatal(err)
		}
		if res != (seal.RotateResult{Resealed: 1, Forgotten: 1}) {
			t.Errorf("Rotate: got %+v, want 1 resealed, 1 forgotten", res)
		}
		if _, err := ks.Identity(ctx, tenantA, oldIDs); !errors.Is(err, seal.ErrNotRecipient) {
			t.Errorf("old identity after rotation: got %v, want ErrNotRecipient", err)
		}
		id, err := ks.Identity(ctx, tenantA, newIDs)
		if err != nil {
			t.Fatalf("new identity after rotation: %v", err)
		}
		if text, err := open(ctx, s, id, "obj/"+tenantA.String()); err != nil || text != "before rotation" {
			t.Errorf("object sealed before rotation: got %q, %v", text, err)
		}
		if n := s.versions(t, seal.KeysPrefix+tenantA.String()+"/key.json"); n != 1 {
			t.Errorf("key record versions after rotation: %d, want 1 (an older one would still be sealed to the old operator)", n)
		}
		// Run again (as after an interruption): nothing left to do.
		if res, err := ks.Rotate(ctx, oldIDs, newRs); err != nil || res.Unchanged != 1 || res.Resealed != 0 {
			t.Errorf("second Rotate: got %+v, %v; want 1 unchanged", res, err)
		}
	})
}

// Forgetting a tenant makes every later use of its key a ForgottenError with the
// date; other tenants are untouched; no new key is made for it; forgetting again
// keeps the first date.
func TestKeyStore_Forget(t *testing.T) {
	eachStore(t, func(t *testing.T, s backend) {
		ctx := testenv.Context(t)
		ks := keyStore(t, s.Store)
		ids, rs, _ := operator(t)
		for _, tenant := range []uuid.UUID{tenantA, tenantB} {
			to, err := ks.Create(ctx, tenant, rs)
			if err != nil {
				t.Fatal(err)
			}
			sealTo(t, ctx, s, to, "obj/"+to.Tenant.String(), strings.NewReader("data"))
		}
		at, err := ks.Forget(ctx, tenantA)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(at) > time.Hour || at.After(time.Now()) {
			t.Errorf("forgotten at %v, want now", at)
		}
		checks := map[string]error{}
		_, checks["Identity"] = ks.Identity(ctx, tenantA, ids)
		_, checks["Recipient"] = ks.Recipient(ctx, tenantA)
		_, checks["Create"] = ks.Create(ctx, tenantA, rs)
		for op, err := range checks {
			var fe *seal.ForgottenError
			if !errors.As(err, &fe) || !errors.Is(err, seal.ErrForgotten) || !fe.At.Equal(at) {
				t.Errorf("%s after Forget: got %v, want a ForgottenError of %v", op, err, at)
				continue
			}
			if want := "keys forgotten on " + at.UTC().Format(time.DateOnly); !strings.Contains(err.Error(), want) {
				t.Errorf("%s after Forget: %q does not say %q", op, err, want)
			}
		}
		if n := s.versions(t, seal.KeysPrefix+tenantA.String()+"/key.json"); n != 0 {
			t.Errorf("key record versions after Forget: %d, want none (not even behind a delete marker)", n)
		}
		id, err := ks.Identity(ctx, tenantB, ids)
		if err != nil {
			t.Fatalf("the other tenant after Forget: %v", err)
		}
		if text, err := open(ctx, s, id, "obj/"+tenantB.String()); err != nil || text != "data" {
			t.Errorf("the other tenant's object: got %q, %v", text, err)
		}
		again, err := ks.Forget(ctx, tenantA)
		if err != nil || !again.Equal(at) {
			t.Errorf("second Forget: got %v, %v; want the first date %v", again, err, at)
		}
	})
}
