package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// No key material comes out of any type, however it is printed (fmt verbs and
// flags, JSON, slog), nor out of any error: not the operator's identity, not a
// tenant's identity, not its address key.
func TestSecretsNeverPrint(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	ks := keyStore(t, s)
	ids, rs, idFile := operator(t)
	to, err := ks.Create(ctx, tenantA, rs)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ks.Identity(ctx, tenantA, ids)
	if err != nil {
		t.Fatal(err)
	}
	opKey, err := seal.GenerateOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	var opFile bytes.Buffer
	if err := opKey.WriteIdentityFile(&opFile, testNow); err != nil {
		t.Fatal(err)
	}

	// The secrets, as they could appear: the identities' text, the address key raw,
	// in hex and in base64, and the tenant identity's text (opened here with age
	// itself from the stored record).
	var rec struct {
		AddressKey []byte `json:"address_key"`
		Identity   string `json:"identity"`
	}
	if err := json.Unmarshal([]byte(readAll(t, s, seal.KeysPrefix+tenantA.String()+"/key.json")), &rec); err != nil {
		t.Fatal(err)
	}
	opIDs, err := age.ParseIdentities(strings.NewReader(idFile))
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(rec.Identity)), opIDs...)
	if err != nil {
		t.Fatal(err)
	}
	tenantSecret, _ := io.ReadAll(r)
	secrets := []string{secretLine(idFile), secretLine(opFile.String()), strings.TrimSpace(string(tenantSecret)),
		string(rec.AddressKey), hex.EncodeToString(rec.AddressKey), base64.StdEncoding.EncodeToString(rec.AddressKey),
		strings.Trim(fmt.Sprint(rec.AddressKey[:8]), "[]")}

	values := map[string]any{"Identities": ids, "OperatorKey": opKey, "TenantRecipient": to,
		"TenantIdentity": id, "KeyStore": ks}
	var out strings.Builder
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			fmt.Fprintf(&out, "%s "+verb+"\n", name, v)
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(&out, "%s json: %s\n", name, b)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&out, nil)).Info("x", "v", v)
	}
	// Errors: a wrong identity file, a secret given where a recipient is wanted, a
	// key record that does not parse.
	_, err = seal.ParseRecipients(strings.NewReader(secretLine(idFile)))
	fmt.Fprintln(&out, err)
	_, err = seal.ParseIdentities(strings.NewReader(secretLine(idFile) + "x"))
	fmt.Fprintln(&out, err)
	key := seal.KeysPrefix + tenantB.String() + "/key.json"
	if err := s.Put(ctx, key, strings.NewReader(`{"address_key":"`+base64.StdEncoding.EncodeToString(rec.AddressKey)+`","identity":`)); err != nil {
		t.Fatal(err)
	}
	_, err = ks.Recipient(ctx, tenantB)
	fmt.Fprintln(&out, err)
	if err == nil {
		t.Error("a cut key record was read")
	}

	for _, secret := range secrets {
		if secret != "" && strings.Contains(out.String(), secret) {
			t.Errorf("secret %.12q… printed in:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "REDACTED") {
		t.Errorf("nothing says REDACTED:\n%s", out.String())
	}
}

func secretLine(file string) string {
	for line := range strings.SplitSeq(file, "\n") {
		if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
			return line
		}
	}
	return ""
}

// A store that cannot erase (this one hides the capability by wrapping) is refused:
// a key written there might never be shredded.
func TestNewKeyStore_NeedsErasable(t *testing.T) {
	wrapped := struct{ storage.Store }{testenv.FileStore(t)}
	if _, err := seal.NewKeyStore(wrapped); err == nil {
		t.Error("NewKeyStore on a store without Erasable: no error")
	}
}

// Create and Forget racing for one tenant: whatever the interleaving, the tenant
// ends forgotten with no key record left (a key made after the tombstone would let
// new snapshots of a forgotten tenant be read).
func TestKeyStore_CreateRacingForget(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	_, rs, _ := operator(t)
	for round := range 20 {
		tenant := tenantA
		tenant[15] = byte(round)
		var wg sync.WaitGroup
		creator, forgetter := keyStore(t, s), keyStore(t, s)
		var createErr, forgetErr error
		wg.Go(func() { _, createErr = creator.Create(ctx, tenant, rs) })
		wg.Go(func() { _, forgetErr = forgetter.Forget(ctx, tenant) })
		wg.Wait()
		if forgetErr != nil {
			t.Fatal(forgetErr)
		}
		if createErr != nil && !errors.Is(createErr, seal.ErrForgotten) {
			t.Fatal(createErr)
		}
		if _, err := s.Stat(ctx, seal.KeysPrefix+tenant.String()+"/key.json"); err == nil {
			t.Fatalf("round %d: a key record survived Forget (Create: %v)", round, createErr)
		}
		if _, err := creator.Recipient(ctx, tenant); !errors.Is(err, seal.ErrForgotten) {
			t.Fatalf("round %d: Recipient after the race: got %v, want ErrForgotten", round, err)
		}
	}
}
