package seal_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// tenantKeys creates tenant's key in a store of its own, sealed to a new operator
// key, and returns the recipient a snapshot host writes with and the identity a
// restore host reads with.
func tenantKeys(t *testing.T, tenant uuid.UUID) (*seal.TenantRecipient, *seal.TenantIdentity) {
	t.Helper()
	ctx := testenv.Context(t)
	ks := keyStore(t, testenv.FileStore(t))
	ids, rs, _ := operator(t)
	to, err := ks.Create(ctx, tenant, rs)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ks.Identity(ctx, tenant, ids)
	if err != nil {
		t.Fatal(err)
	}
	return to, id
}

// operator makes a new operator key: its identities (as a restore host holds them)
// and its recipients (as a snapshot host does).
func operator(t *testing.T) (*seal.Identities, seal.Recipients, string) {
	t.Helper()
	k, err := seal.GenerateOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := k.WriteIdentityFile(&file, time.Now()); err != nil {
		t.Fatal(err)
	}
	ids, err := seal.ParseIdentities(bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := seal.ParseRecipients(strings.NewReader(k.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	return ids, rs, file.String()
}

func keyStore(t *testing.T, s storage.Store) *seal.KeyStore {
	t.Helper()
	ks, err := seal.NewKeyStore(s)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// sealTo seals content for the tenant as key into the store, through a pipe as the
// snapshot writer will.
func sealTo(t *testing.T, ctx context.Context, s storage.Store, to *seal.TenantRecipient, key string, content io.Reader) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		w, err := seal.NewWriter(pw, to, key)
		if err == nil {
			_, err = io.Copy(w, content)
			err = errorsJoin(err, w.Close())
		}
		pw.CloseWithError(err)
	}()
	err := s.Put(ctx, key, pr)
	pr.CloseWithError(err)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// open reads a sealed object whole (small test objects only).
func open(ctx context.Context, s storage.Store, id *seal.TenantIdentity, key string) (string, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	r, err := seal.NewReader(rc, id, key)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

// generator is a deterministic stream of n bytes that never sits in memory.
func generator(seed uint64, n int64) io.Reader {
	return io.LimitReader(&prng{r: rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)}, n)
}

type prng struct{ r *rand.PCG }

func (p *prng) Read(b []byte) (int, error) {
	for i := 0; i < len(b); i += 8 {
		v := p.r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return len(b), nil
}

var (
	tenantA = uuid.MustParse("aaaaaaaa-0000-4000-8000-000000000001")
	tenantB = uuid.MustParse("bbbbbbbb-0000-4000-8000-000000000002")
)

var testNow = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
