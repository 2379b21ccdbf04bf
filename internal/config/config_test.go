package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/config"
)

// The example file is the documentation of every key: it must say exactly the defaults.
func TestExampleIsDefault(t *testing.T) {
	f, err := os.Open("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := config.Parse(f, "config.example.yaml")
	if err != nil {
		t.Fatalf("parse example: %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.yaml differs from the defaults:\ngot  %+v\nwant %+v", got, want)
	}
}

// testRecipient is a well-formed age recipient (from `purgeguard keys init`).
const testRecipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantLine   int
		wantKey    string
	}{
		{"unknown top key", "database:\n  url: x\nstorge:\n  url: file:///x\n", 3, "storge"},
		{"unknown nested key", "storage:\n  s3:\n    endpont: x\n", 3, "storage.s3.endpont"},
		{"unknown key in list item", "files:\n  - table: a.b\n    column: p\n    rot: /x\n", 4, "files[0].rot"},
		{"type error", "snapshot:\n  jobs: many\n", 2, "snapshot.jobs"},
		{"jobs out of range", "snapshot:\n  jobs: 0\n", 2, "snapshot.jobs"},
		{"fraction out of range", "policy:\n  max_fraction: 1.5\n", 2, "policy.max_fraction"},
		{"bad duration", "policy:\n  active_within: soon\n", 2, "policy.active_within"},
		{"bad size", "storage:\n  s3:\n    part_size: big\n", 3, "storage.s3.part_size"},
		{"part size too small", "storage:\n  s3:\n    part_size: 1MiB\n", 3, "storage.s3.part_size"},
		{"bad protected uuid", "policy:\n  protected:\n    - 7f0e0c9a-1111-4a4a-8b8b-000000000001\n    - not-a-uuid\n", 4, "policy.protected[1]"},
		{"relative files root", "files:\n  - table: a.b\n    column: p\n    root: rel/dir\n", 4, "files[0].root"},
		{"bad storage scheme", "storage:\n  url: ftp://x/y\n", 2, "storage.url"},
		{"relative file url", "storage:\n  url: file://relative\n", 2, "storage.url"},
		{"bad table name", "tenants:\n  table: a.b.c\n", 2, "tenants.table"},
		{"compression level", "snapshot:\n  compression_level: 23\n", 2, "snapshot.compression_level"},
		{"object lock bad mode", "storage:\n  url: s3://b/p\n  s3:\n    object_lock:\n      mode: governance\n      days: 7\n", 5, "storage.s3.object_lock.mode"},
		{"object lock days 0", "storage:\n  url: s3://b/p\n  s3:\n    object_lock:\n      mode: COMPLIANCE\n      days: 0\n", 6, "storage.s3.object_lock.days"},
		{"object lock days left out", "storage:\n  url: s3://b/p\n  s3:\n    object_lock:\n      mode: GOVERNANCE\n", 5, "storage.s3.object_lock.days"},
		{"object lock days without mode", "storage:\n  url: s3://b/p\n  s3:\n    object_lock:\n      days: 30\n", 5, "storage.s3.object_lock.mode"},
		{"object lock on file url", "storage:\n  url: file:///x\n  s3:\n    object_lock:\n      mode: GOVERNANCE\n      days: 1\n", 5, "storage.s3.object_lock.mode"},
		{"object lock unknown key", "storage:\n  s3:\n    object_lock:\n      retain_days: 3\n", 4, "storage.s3.object_lock.retain_days"},
		{"recipient not age", "encryption:\n  recipients:\n    - age1nope\n", 3, "encryption.recipients[0]"},
		{"secret as recipient", "encryption:\n  recipients: [" + testRecipient + ", AGE-SECRET-KEY-1QQQQ]\n", 2, "encryption.recipients[1]"},
		{"relative identity file", "encryption:\n  identity_file: op.key\n", 2, "encryption.identity_file"},
		{"relative recipients file", "encryption:\n  recipients_file: r.txt\n", 2, "encryption.recipients_file"},
		{"bad keys url", "encryption:\n  keys_url: gs://b\n", 2, "encryption.keys_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(strings.NewReader(tt.yaml), "bad.yaml")
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want *config.Error", err)
			}
			if ce.Line != tt.wantLine || ce.Key != tt.wantKey || ce.File != "bad.yaml" {
				t.Errorf("got file %q line %d key %q (%v), want bad.yaml line %d key %q", ce.File, ce.Line, ce.Key, err, tt.wantLine, tt.wantKey)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("bad.yaml:%d", tt.wantLine)) || !strings.Contains(msg, tt.wantKey) {
				t.Errorf("message %q does not name bad.yaml:%d and %s", msg, tt.wantLine, tt.wantKey)
			}
		})
	}
}

// Encryption is applied (issue 15): recipients and an identity file are accepted.
func TestParse_Encryption(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("encryption:\n  recipients: ["+testRecipient+"]\n  identity_file: /etc/purgeguard/op.key\n"), "ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Encryption; len(got.Recipients) != 1 || got.Recipients[0] != testRecipient || got.IdentityFile != "/etc/purgeguard/op.key" {
		t.Errorf("encryption: got %+v", got)
	}
}

func TestParse_Values(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader(`
storage:
  url: s3://bucket/pfx
  s3:
    part_size: 16MiB
    object_lock: {mode: COMPLIANCE, days: 30}
policy:
  active_within: 36h
  max_tenants: -1
  protected: ["{7F0E0C9A-1111-4A4A-8B8B-000000000001}", "urn:uuid:7f0e0c9a-1111-4a4a-8b8b-000000000002"]
files: []
`), "ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(cfg.Storage.S3.PartSize), int64(16<<20); got != want {
		t.Errorf("part_size: got %d, want %d", got, want)
	}
	if got, want := cfg.Storage.S3.ObjectLock, (config.ObjectLock{Mode: config.ObjectLockCompliance, Days: 30}); got != want {
		t.Errorf("object_lock: got %+v, want %+v", got, want)
	}
	if got, want := time.Duration(cfg.Policy.ActiveWithin), 36*time.Hour; got != want {
		t.Errorf("active_within: got %v, want %v", got, want)
	}
	if got := len(cfg.Files); got != 0 {
		t.Errorf("files: got %d entries, want an explicit empty list to replace the defaults", got)
	}
	if got, want := cfg.Policy.Protected[0].String(), "7f0e0c9a-1111-4a4a-8b8b-000000000001"; got != want {
		t.Errorf("protected[0]: got %s, want %s", got, want)
	}
	if got, want := cfg.Policy.Protected[1].String(), "7f0e0c9a-1111-4a4a-8b8b-000000000002"; got != want {
		t.Errorf("protected[1]: got %s, want %s", got, want)
	}
	if cfg.Policy.MaxTenants != -1 {
		t.Errorf("max_tenants: got %d, want -1", cfg.Policy.MaxTenants)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/c.yaml"
	if err := os.WriteFile(path, []byte("storage:\n  url: file:///from/file\n  s3:\n    region: eu-west-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		config.EnvStorageURL:  "s3://env-bucket/p",
		config.EnvS3Endpoint:  "127.0.0.1:9000",
		config.EnvAccessKey:   "AKIAENV",
		config.EnvSecretKey:   "env-secret",
		config.EnvDatabaseURL: "postgres://u:pw@h/db",
	}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.URL != "s3://env-bucket/p" || cfg.Storage.S3.Endpoint != "127.0.0.1:9000" ||
		cfg.Storage.S3.AccessKeyID != "AKIAENV" || cfg.Storage.S3.SecretAccessKey.Reveal() != "env-secret" ||
		cfg.Database.URL.Reveal() != "postgres://u:pw@h/db" {
		t.Errorf("env did not override: %+v", cfg)
	}
	if got, want := cfg.Storage.S3.Region, "eu-west-3"; got != want {
		t.Errorf("region from file: got %s, want %s", got, want)
	}
}

// Secrets must not leave through any printing path: fmt, JSON, slog (text and JSON).
func TestSecretsNeverPrinted(t *testing.T) {
	const pw, key = "hunter2-pw-9d1f", "s3cr3t-key-77aa"
	cfg := config.Default()
	cfg.Database.URL = config.DSN("postgres://alice:" + pw + "@db:5432/asterisk?sslmode=disable")
	cfg.Storage.S3.SecretAccessKey = config.Secret(key)

	var out bytes.Buffer
	fmt.Fprintf(&out, "%v %+v %#v %s\n", cfg, cfg, cfg, cfg.Database.URL)
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)
	slog.New(slog.NewTextHandler(&out, nil)).Info("cfg", "config", cfg, "dsn", cfg.Database.URL, "key", cfg.Storage.S3.SecretAccessKey)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("cfg", "dsn", cfg.Database.URL, "key", cfg.Storage.S3.SecretAccessKey)
	for _, secret := range []string{pw, key} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("secret %q printed in:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "alice") {
		t.Errorf("redaction removed the user name too; want only the password gone:\n%s", out.String())
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://u:pw@h:5432/db", "postgres://u:REDACTED@h:5432/db"},
		{"postgresql://u@h/db", "postgresql://u@h/db"},
		{"postgres://h/db?password=pw&sslmode=require", "postgres://h/db?password=REDACTED&sslmode=require"},
		{"host=h user=u password=pw dbname=d", "host=h user=u password=REDACTED dbname=d"},
		{"host=h password='p w\\'x' dbname=d", "host=h password=REDACTED dbname=d"},
		{"host=h sslpassword=pw", "host=h sslpassword=REDACTED"},
		{"garbage-without-form", "REDACTED"},
	}
	for _, tt := range tests {
		if got := config.RedactDSN(tt.in); got != tt.want {
			t.Errorf("RedactDSN(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true}, {"0d", 0, true}, {"36h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true}, {"-1h", 0, false}, {"d", 0, false}, {"1.5d", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q): got %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"8MiB", 8 << 20, true}, {"16MB", 16e6, true}, {"1048576", 1 << 20, true}, {"2GiB", 2 << 30, true},
		{"1KiB", 1024, true}, {"5B", 5, true}, {"-1", 0, false}, {"MiB", 0, false}, {"1.5MiB", 0, false},
	}
	for _, tt := range tests {
		got, err := config.ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q): got %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// A private identity pasted where a recipient belongs is refused without being
// echoed: the error would print the secret into a log.
func TestParse_SecretAsRecipientNotEchoed(t *testing.T) {
	const secret = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
	_, err := config.Parse(strings.NewReader("encryption:\n  recipients: ["+secret+"]\n"), "bad.yaml")
	if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "GFPYYSJZ") {
		t.Errorf("got %v, want a refusal that does not quote the secret", err)
	}
}
