package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// keys init writes an identity file (0600) that age reads, prints its recipient and
// nothing secret, and never overwrites a file.
func TestCLI_KeysInit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "operator.key")
	code, stdout, stderr := runCLI(t, nil, "keys", "init", "--out", out)
	if code != exitOK {
		t.Fatalf("keys init: exit %d, stderr %s", code, stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(strings.NewReader(string(body)))
	if err != nil || len(ids) != 1 {
		t.Fatalf("the file is not one age identity: %v", err)
	}
	id := ids[0].(*age.X25519Identity)
	if got, want := strings.TrimSpace(stdout), id.Recipient().String(); got != want {
		t.Errorf("stdout %q, want the identity's recipient %q", got, want)
	}
	if strings.Contains(stdout+stderr, id.String()) || strings.Contains(stdout+stderr, "AGE-SECRET-KEY") {
		t.Errorf("the secret was printed:\nstdout %s\nstderr %s", stdout, stderr)
	}

	code, _, stderr = runCLI(t, nil, "keys", "init", "--out", out)
	if code != exitError || !strings.Contains(stderr, "already exists") {
		t.Errorf("keys init over an existing file: exit %d, stderr %q; want exit 1 saying it exists", code, stderr)
	}
	if again, _ := os.ReadFile(out); string(again) != string(body) {
		t.Error("the existing identity file was changed")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	code, _, stderr = runCLI(t, nil, "keys", "init")
	if code != exitUsage || !strings.Contains(stderr, "out") {
		t.Errorf("keys init without --out: exit %d, stderr %q; want a usage error naming --out", code, stderr)
	}

	other := filepath.Join(t.TempDir(), "break-glass.key")
	code, stdout, _ = runCLI(t, nil, "keys", "init", "--out", other, "-o", "json")
	var doc struct {
		Recipient    string `json:"recipient"`
		IdentityFile string `json:"identity_file"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); code != exitOK || err != nil || !strings.HasPrefix(doc.Recipient, "age1") || doc.IdentityFile != other {
		t.Errorf("keys init -o json: exit %d, %q (%v)", code, stdout, err)
	}
}

// keys rotate reseals the tenant keys in the store to the new recipients: the old
// identity opens none afterwards, the new one opens all; a wrong identity changes
// nothing and says why.
func TestCLI_KeysRotate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"PURGEGUARD_STORAGE_URL": "file://" + dir}
	keysDir := t.TempDir()
	newKey := func(name string) (string, string) {
		out := filepath.Join(keysDir, name)
		code, stdout, stderr := runCLI(t, env, "keys", "init", "--out", out)
		if code != exitOK {
			t.Fatalf("keys init: %d %s", code, stderr)
		}
		return out, strings.TrimSpace(stdout)
	}
	oldFile, oldRecipient := newKey("old.key")
	newFile, newRecipient := newKey("new.key")
	strangerFile, _ := newKey("stranger.key")
	identities := func(path string) *seal.Identities {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ids, err := seal.ParseIdentities(f)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}

	store, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := seal.NewKeyStore(store)
	if err != nil {
		t.Fatal(err)
	}
	oldRs, err := seal.ParseRecipients(strings.NewReader(oldRecipient))
	if err != nil {
		t.Fatal(err)
	}
	tenants := []uuid.UUID{uuid.New(), uuid.New()}
	for _, tenant := range tenants {
		if _, err := ks.Create(ctx, tenant, oldRs); err != nil {
			t.Fatal(err)
		}
	}

	code, _, stderr := runCLI(t, env, "keys", "rotate", "--identity-file", strangerFile, "--recipient", newRecipient)
	if code != exitError || !strings.Contains(stderr, "none of the identities") {
		t.Errorf("rotate with a stranger's identity: exit %d, stderr %q", code, stderr)
	}
	if _, err := ks.Identity(ctx, tenants[0], identities(oldFile)); err != nil {
		t.Fatalf("after a refused rotation the old identity must still open: %v", err)
	}
	code, _, stderr = runCLI(t, env, "keys", "rotate", "--recipient", newRecipient)
	if code != exitUsage || !strings.Contains(stderr, "--identity-file") {
		t.Errorf("rotate without --identity-file: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr := runCLI(t, env, "keys", "rotate", "--identity-file", oldFile, "--recipient", newRecipient, "-o", "json")
	var res struct {
		Resealed, Unchanged int
		Recipients          []string
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != exitOK || err != nil || res.Resealed != 2 || len(res.Recipients) != 1 {
		t.Fatalf("rotate: exit %d, %q (%v), stderr %s", code, stdout, err, stderr)
	}
	for _, tenant := range tenants {
		if _, err := ks.Identity(ctx, tenant, identities(oldFile)); !errors.Is(err, seal.ErrNotRecipient) {
			t.Errorf("tenant %s, old identity after rotate: got %v, want ErrNotRecipient", tenant, err)
		}
		if _, err := ks.Identity(ctx, tenant, identities(newFile)); err != nil {
			t.Errorf("tenant %s, new identity after rotate: %v", tenant, err)
		}
	}
	code, stdout, _ = runCLI(t, env, "keys", "rotate", "--identity-file", newFile, "--recipient", newRecipient)
	if code != exitOK || !strings.Contains(stdout, "resealed 0 tenant keys") || !strings.Contains(stdout, "2 already") {
		t.Errorf("second rotate: exit %d, %q", code, stdout)
	}
}
