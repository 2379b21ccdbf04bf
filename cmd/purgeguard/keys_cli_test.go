package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
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
