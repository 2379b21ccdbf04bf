package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command line in-process with the environment given (and nothing
// else from the test process's PURGEGUARD_/AWS_ variables).
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for _, k := range []string{"PURGEGUARD_DATABASE_URL", "PURGEGUARD_STORAGE_URL", "PURGEGUARD_S3_ENDPOINT",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "PURGEGUARD_CONFIG", "PURGEGUARD_METRICS_FILE"} {
		t.Setenv(k, env[k])
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"purgeguard"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d, want 0", code)
	}
	for _, name := range []string{"tables", "snapshot", "list", "verify", "check", "guard", "fence", "restore", "undo", "history", "prune", "version"} {
		if !strings.Contains(out, "   "+name+" ") {
			t.Errorf("--help does not list %q:\n%s", name, out)
		}
	}
	code, out, _ = runCLI(t, nil, "fence", "--help")
	for _, sub := range []string{"install", "status", "uninstall"} {
		if code != exitOK || !strings.Contains(out, sub) {
			t.Errorf("fence --help (exit %d) does not list %q:\n%s", code, sub, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("storage:\n  s3:\n    endpont: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"version", []string{"version"}, exitOK, ""},
		{"unknown command", []string{"nosuch"}, exitUsage, `unknown command "nosuch"`},
		{"unknown flag", []string{"version", "--bogus"}, exitUsage, "bogus"},
		{"bad output", []string{"-o", "yaml", "version"}, exitUsage, "--output"},
		{"bad config names key and line", []string{"--config", bad, "version"}, exitUsage, "bad.yaml:3: storage.s3.endpont: unknown key"},
		{"missing config", []string{"--config", bad + ".nope", "version"}, exitUsage, "bad.yaml.nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit: got %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestJSONErrorIsOneDocument(t *testing.T) {
	code, out, _ := runCLI(t, nil, "-o", "json", "--config", "/nonexistent.yaml", "version")
	var doc struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if doc.ExitCode != code || doc.Error == "" {
		t.Errorf("got %+v with exit %d, want the error and the same exit code", doc, code)
	}
}

// A secret given through the environment must not come out of any error path.
func TestSecretsNotInOutput(t *testing.T) {
	const pw, key = "pw-5e1b9c", "key-0f7d3a"
	env := map[string]string{
		"PURGEGUARD_DATABASE_URL": "postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=1",
		"AWS_SECRET_ACCESS_KEY":   key,
		"AWS_ACCESS_KEY_ID":       "AKIA",
		"PURGEGUARD_STORAGE_URL":  "s3://b/p",
		"PURGEGUARD_S3_ENDPOINT":  "127.0.0.1:1",
	}
	for _, args := range [][]string{
		{"-o", "json", "--log-level", "debug", "version"},
		{"--log-level", "debug", "--log-format", "json", "tables"},
		{"-o", "json", "--log-level", "debug", "list"},
	} {
		_, out, errOut := runCLI(t, env, args...)
		for _, s := range []string{pw, key} {
			if strings.Contains(out+errOut, s) {
				t.Errorf("%v: secret %q printed:\n%s\n%s", args, s, out, errOut)
			}
		}
	}
}

// --output may follow the command, as the examples of --help write it, and a value
// given there wins over the one before the command.
func TestOutputAfterCommand(t *testing.T) {
	store := map[string]string{"PURGEGUARD_STORAGE_URL": "file://" + t.TempDir()}
	for _, args := range [][]string{
		{"list", "-o", "json"},
		{"list", "--output", "json"},
		{"-o", "json", "list"},
		{"-o", "text", "list", "-o", "json"},
	} {
		code, out, errOut := runCLI(t, store, args...)
		var doc map[string]any
		if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil {
			t.Errorf("%v: exit %d, stdout not one JSON document:\n%s%s", args, code, out, errOut)
		}
	}
	if code, out, _ := runCLI(t, store, "-o", "json", "list", "-o", "text"); code != exitOK || strings.HasPrefix(out, "{") {
		t.Errorf("-o json list -o text: exit %d, got JSON:\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, store, "list", "-o", "yaml"); code != exitUsage || !strings.Contains(errOut, `--output "yaml"`) {
		t.Errorf("list -o yaml: exit %d, %s; want a usage error naming the value", code, errOut)
	}
}
