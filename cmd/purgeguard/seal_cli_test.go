package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// sealedEnv is cliEnv on a MinIO bucket, with an operator key made by keys init and
// two configurations: the snapshot host's (recipients only, the one env uses) and
// the restore host's (the identity file too).
func sealedEnv(t *testing.T) (env map[string]string, restoreCfg string, tenants []string, bkt testenv.S3) {
	t.Helper()
	env, res, _ := cliEnv(t)
	appendConfig(t, env, thirdOfTenants+"storage:\n  s3:\n    insecure: true\n")
	bkt = testenv.MinIO(t)
	env["PURGEGUARD_STORAGE_URL"] = bkt.URL("pg")
	env["PURGEGUARD_S3_ENDPOINT"] = bkt.Endpoint
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"] = bkt.AccessKey, bkt.SecretKey, bkt.Region
	idFile := filepath.Join(t.TempDir(), "operator.key")
	code, stdout, stderr := runCLI(t, nil, "keys", "init", "--out", idFile)
	if code != exitOK {
		t.Fatalf("keys init: %d %s", code, stderr)
	}
	base, err := os.ReadFile(env["PURGEGUARD_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	appendConfig(t, env, "encryption:\n  recipients: ["+strings.TrimSpace(stdout)+"]\n")
	restoreCfg = filepath.Join(t.TempDir(), "restore.yaml")
	if err := os.WriteFile(restoreCfg, append(base, "encryption:\n  identity_file: "+idFile+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range res.Tenants {
		tenants = append(tenants, id.String())
	}
	return env, restoreCfg, tenants, bkt
}

// secretFree fails the test when a run printed key material.
func secretFree(t *testing.T, what string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		if strings.Contains(o, "AGE-SECRET-KEY") || strings.Contains(strings.ToLower(o), "age-secret-key") {
			t.Errorf("%s printed a secret key:\n%s", what, o)
		}
	}
}

// The commands on an encrypted store, as the two hosts run them: the snapshot host
// (recipients only) snapshots, guards, lists and verifies without a key, and cannot
// restore (exit 1 naming encryption.identity_file); the restore host restores. A
// flipped byte is exit 4 naming the object, with nothing written. forget refuses a
// tenant still in the database (exit 3), then crypto-shreds it: restore and verify
// --contents say "keys forgotten on DATE", an audit record names the snapshots.
func TestCLI_Encrypted(t *testing.T) {
	env, restoreCfg, tenants, bkt := sealedEnv(t)
	restoreEnv := map[string]string{}
	for k, v := range env {
		restoreEnv[k] = v
	}
	restoreEnv["PURGEGUARD_CONFIG"] = restoreCfg
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	count := func(tenant string) (n int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1", tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tenant := tenants[0]
	want := count(tenant)
	var outputs []string
	run := func(env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		code, out, errOut := runCLI(t, env, args...)
		outputs = append(outputs, out, errOut)
		return code, out, errOut
	}

	code, out, errOut := run(env, "-o", "json", "snapshot", "--tenant", tenant)
	if code != exitOK {
		t.Fatalf("snapshot with recipients only: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, "unencrypted") {
		t.Errorf("an encrypted snapshot warned about plaintext:\n%s", errOut)
	}
	code, out, _ = run(env, "list", "--tenant", tenant)
	if code != exitOK || !strings.Contains(out, "(encrypted)") {
		t.Errorf("list: exit %d, want the snapshot shown encrypted:\n%s", code, out)
	}
	if code, out, errOut = run(env, "verify", "--tenant", tenant); code != exitOK || !strings.Contains(out, "ok ") {
		t.Errorf("keyless verify: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(env, "verify", "--tenant", tenant, "--contents")
	if code != exitError || !strings.Contains(errOut, "encryption.identity_file") {
		t.Errorf("verify --contents with recipients only: exit %d, want %d naming encryption.identity_file\n%s%s", code, exitError, out, errOut)
	}
	if code, out, errOut = run(restoreEnv, "verify", "--tenant", tenant, "--contents"); code != exitOK {
		t.Errorf("verify --contents with the identity: exit %d\n%s%s", code, out, errOut)
	}

	// guard on the snapshot host: its snapshot is encrypted and verified keyless.
	target := filepath.Join(t.TempDir(), "target.txt")
	if err := os.WriteFile(target, []byte(tenant+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	purge := psql() + ` "` + env["PURGEGUARD_DATABASE_URL"] + `" -qAtX -v ON_ERROR_STOP=1 -c "DELETE FROM call_logd_tenant WHERE uuid = '` + tenant + `'"`
	if code, out, errOut = run(env, "guard", "--delete", target, "--", "sh", "-c", purge); code != exitOK || count(tenant) != 0 {
		t.Fatalf("guard with recipients only: exit %d, %d call logs left\n%s%s", code, count(tenant), out, errOut)
	}
	code, out, _ = run(env, "-o", "json", "list", "--tenant", tenant)
	if code != exitOK || strings.Count(out, `"encrypted": true`) != 2 {
		t.Errorf("list after guard: want two encrypted snapshots:\n%s", out)
	}

	code, out, errOut = run(env, "restore", "--tenant", tenant)
	if code != exitError || !strings.Contains(errOut, "encryption.identity_file") || count(tenant) != 0 {
		t.Fatalf("restore with recipients only: exit %d, %d call logs; want %d naming encryption.identity_file\n%s%s", code, count(tenant), exitError, out, errOut)
	}

	// A flipped byte in the newest snapshot's biggest table: exit 4 naming it.
	cl := bkt.Client(t)
	var victim minio.ObjectInfo
	for o := range cl.ListObjects(ctx, bkt.Bucket, minio.ListObjectsOptions{Prefix: "pg/snapshots/" + tenant + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if strings.Contains(o.Key, "/tables/") && (victim.Key == "" || o.LastModified.After(victim.LastModified) ||
			o.LastModified.Equal(victim.LastModified) && o.Size > victim.Size) {
			victim = o
		}
	}
	obj, err := cl.GetObject(ctx, bkt.Bucket, victim.Key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(body)
	flipped[len(flipped)/2] ^= 0x40
	put := func(b []byte) {
		if _, err := cl.PutObject(ctx, bkt.Bucket, victim.Key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(flipped)
	key := strings.TrimPrefix(victim.Key, "pg/")
	if code, out, errOut = run(env, "verify", "--tenant", tenant); code != exitVerify || !strings.Contains(out, key) {
		t.Errorf("keyless verify of a flipped byte: exit %d, want %d naming %s\n%s%s", code, exitVerify, key, out, errOut)
	}
	// Restored from the snapshot it belongs to (the newest, guard's).
	if code, out, errOut = run(restoreEnv, "restore", "--tenant", tenant); code != exitVerify || !strings.Contains(out+errOut, key) || count(tenant) != 0 {
		t.Errorf("restore of a flipped byte: exit %d, %d call logs; want %d naming %s\n%s%s", code, count(tenant), exitVerify, key, out, errOut)
	}
	put(body)
	if code, out, errOut = run(restoreEnv, "restore", "--tenant", tenant); code != exitOK || count(tenant) != want {
		t.Fatalf("restore with the identity: exit %d, %d call logs, want %d\n%s%s", code, count(tenant), want, out, errOut)
	}

	// forget: refused while the tenant is in the database, then done.
	if code, out, errOut = run(env, "forget", "--tenant", tenant); code != exitRefused || !strings.Contains(errOut, "still in the database") {
		t.Errorf("forget of a tenant in the database: exit %d, want %d\n%s%s", code, exitRefused, out, errOut)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = run(env, "forget", "--tenant", tenant, "--dry-run"); code != exitOK || !strings.Contains(out, "would forget tenant "+tenant+": 2 encrypted snapshots unreadable") {
		t.Errorf("forget --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = run(restoreEnv, "verify", "--tenant", tenant, "--contents"); code != exitOK {
		t.Errorf("a dry run forgot: verify --contents exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = run(env, "forget", "--tenant", tenant); code != exitOK || !strings.Contains(out, "forgot tenant "+tenant) {
		t.Fatalf("forget: exit %d\n%s%s", code, out, errOut)
	}
	today := "keys forgotten on " + time.Now().UTC().Format(time.DateOnly)
	if code, out, errOut = run(restoreEnv, "restore", "--tenant", tenant); code != exitError || !strings.Contains(errOut, today) || count(tenant) != 0 {
		t.Errorf("restore of a forgotten tenant: exit %d, %d call logs; want %d saying %q\n%s%s", code, count(tenant), exitError, today, out, errOut)
	}
	if code, out, errOut = run(restoreEnv, "verify", "--tenant", tenant, "--contents"); code != exitError || !strings.Contains(errOut, today) {
		t.Errorf("verify --contents of a forgotten tenant: exit %d, want %d saying %q\n%s%s", code, exitError, today, out, errOut)
	}
	if code, out, errOut = run(env, "verify", "--tenant", tenant); code != exitOK {
		t.Errorf("keyless verify of a forgotten tenant: exit %d (its objects are intact)\n%s%s", code, out, errOut)
	}
	// The audit record of the forget: who, when, which snapshots.
	var audit struct {
		Kind      string `json:"kind"`
		User      string `json:"user"`
		Snapshots []struct {
			Tenant string `json:"tenant"`
		} `json:"snapshots"`
	}
	found := false
	for o := range cl.ListObjects(ctx, bkt.Bucket, minio.ListObjectsOptions{Prefix: "pg/audit/", Recursive: true}) {
		r, err := cl.GetObject(ctx, bkt.Bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		outputs = append(outputs, string(b))
		if json.Unmarshal(b, &audit) == nil && audit.Kind == "forget" {
			found = len(audit.Snapshots) == 2 && audit.Snapshots[0].Tenant == tenant && audit.User != ""
		}
	}
	if !found {
		t.Error("no audit record of the forget naming the two snapshots and who")
	}
	// Another tenant is untouched by all this.
	if code, out, errOut = run(env, "snapshot", "--tenant", tenants[1]); code != exitOK {
		t.Fatalf("snapshot of another tenant after a forget: exit %d\n%s%s", code, out, errOut)
	}
	// verify --contents of both, the forgotten one first: each of its snapshots is
	// said unread (with the date), and the other tenant's is still checked.
	code, out, errOut = run(restoreEnv, "verify", "--tenant", tenant, "--tenant", tenants[1], "--contents")
	if code != exitError || strings.Count(out, "UNREAD  snapshot") != 2 || !strings.Contains(out, today) ||
		!strings.Contains(out, "ok      snapshot") || !strings.Contains(out, "of tenant "+tenants[1]) || !strings.Contains(errOut, today) {
		t.Errorf("verify --contents of a forgotten tenant and another: exit %d, want %d, its two snapshots UNREAD and the other ok\n%s%s", code, exitError, out, errOut)
	}
	code, out, _ = run(restoreEnv, "-o", "json", "verify", "--tenant", tenant, "--tenant", tenants[1], "--contents")
	var doc struct {
		OK        bool `json:"ok"`
		Snapshots []struct {
			OK     bool   `json:"ok"`
			Unread string `json:"unread"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitError || err != nil || doc.OK || len(doc.Snapshots) != 3 ||
		!strings.Contains(doc.Snapshots[0].Unread, today) || doc.Snapshots[2].Unread != "" || !doc.Snapshots[2].OK {
		t.Errorf("verify --contents -o json: exit %d, %v: want one document, the forgotten snapshots unread, the other ok\n%s", code, err, out)
	}
	// --older-than: the tenants deleted from the database whose newest snapshot is
	// older than D; not one deleted more recently, not one still there.
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenants[1]); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = run(env, "forget", "--older-than", "1h"); code != exitOK || !strings.Contains(out, "no tenant to forget") {
		t.Errorf("forget --older-than 1h of a tenant saved just now: exit %d, want nothing forgotten\n%s%s", code, out, errOut)
	}
	time.Sleep(1100 * time.Millisecond) // the snapshot must be older than the second below
	code, out, errOut = run(env, "forget", "--older-than", "1s")
	if code != exitOK || !strings.Contains(out, "forgot tenant "+tenants[1]) || strings.Contains(out, tenants[2]) || strings.Contains(out, tenant) {
		t.Errorf("forget --older-than 1s: exit %d, want %s alone forgotten\n%s%s", code, tenants[1], out, errOut)
	}
	secretFree(t, "a command", outputs...)
}

// Plaintext snapshots to s3:// are warned about, once per run.
func TestCLI_PlaintextS3Warns(t *testing.T) {
	env, res, _ := cliEnv(t)
	appendConfig(t, env, "storage:\n  s3:\n    insecure: true\n")
	bkt := testenv.MinIO(t)
	env["PURGEGUARD_STORAGE_URL"] = bkt.URL("pg")
	env["PURGEGUARD_S3_ENDPOINT"] = bkt.Endpoint
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"] = bkt.AccessKey, bkt.SecretKey, bkt.Region
	code, out, errOut := runCLI(t, env, "snapshot", "--tenant", res.Tenants[0].String(), "--tenant", res.Tenants[1].String())
	if code != exitOK || strings.Count(errOut, "unencrypted") != 1 {
		t.Errorf("plaintext snapshot to s3: exit %d, want one warning:\n%s%s", code, out, errOut)
	}
}
