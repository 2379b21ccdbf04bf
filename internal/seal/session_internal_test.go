package seal

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// The session and the opener hold key material (the session key, the cache of
// session keys opened): no fmt verb prints it.
func TestSessionAndOpenerNeverPrint(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSession(id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	o := newOpener(id)
	o.sessions["x"] = s.key
	for _, v := range []any{s, *s, o} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			out := fmt.Sprintf(verb, v)
			if bytes.Contains([]byte(out), []byte(hex.EncodeToString(s.key))) || bytes.Contains([]byte(out), s.key) ||
				bytes.Contains([]byte(out), []byte(fmt.Sprint(s.key)[1:20])) || bytes.Contains([]byte(out), []byte(id.String())) {
				t.Errorf("%s of %T prints key material: %s", verb, v, out)
			}
		}
	}
}

// A snapshot's view seals every object under one session, its own (another view
// of the tenant has another), and Commit zeroes and drops its session key: it is
// not held past the snapshot.
func TestObjects_SessionPerViewDroppedAtCommit(t *testing.T) {
	ctx := t.Context()
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	tenant := uuid.New()
	to := &TenantRecipient{Tenant: tenant, recipient: x.Recipient(), addressKey: bytes.Repeat([]byte{7}, 32)}
	share := func(key string) string {
		rc, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return strings.Fields(strings.Split(string(b), "\n")[1])[2]
	}
	shares := map[string]bool{}
	for range 2 {
		o := newObjects(s, to, nil)
		snap := uuid.Must(uuid.NewV7())
		tables := []string{archive.TableKey(tenant, snap, "public", "a"), archive.TableKey(tenant, snap, "public", "b")}
		for _, k := range append(tables, archive.ManifestKey(tenant, snap)) {
			if err := o.Put(ctx, k, strings.NewReader("rows of "+k)); err != nil {
				t.Fatal(err)
			}
		}
		sess := o.sess
		if sess == nil || share(tables[0]) != share(tables[1]) {
			t.Fatal("one view, two sessions")
		}
		shares[share(tables[0])] = true
		if err := o.Commit(ctx, snap, archive.ScopeTenant, time.Now()); err != nil {
			t.Fatal(err)
		}
		if o.sess != nil || !bytes.Equal(sess.key, make([]byte, sessionKeyLen)) {
			t.Errorf("after Commit the view holds its session key (%v) or it is not zeroed", o.sess != nil)
		}
	}
	if len(shares) != 2 {
		t.Errorf("two views of one tenant: %d sessions, want one each", len(shares))
	}
}
