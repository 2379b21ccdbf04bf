package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/storage"
)

// The shield running and snapshots encrypted (issue 15): the shield uploads its
// blobs plaintext and shared, so an encrypted snapshot seals its own copy of every
// file, whichever way it gets the content: from the file on disk, from the shield's
// link of a file call-logd removed, or, the link gone too, stream to stream from the
// shield's plaintext blob. The snapshot's envelope lists a sealed blob of the tenant
// for every file and no shared one; a restore with the identity puts every file back
// byte identical, with its mode and mtime.
func TestShield_EncryptedSnapshot(t *testing.T) {
	w := newCallLogdWorld(t, fixture.Options{Seed: 15, Tenants: 3, CallLogsPerTenant: 40})
	ctx, dsn, conn, dir, rec, exp, res := w.ctx, w.dsn, w.conn, w.dir, w.rec, w.exp, w.res
	env, procEnv, cfgFile := callLogdShieldEnv(t, dir, dsn, rec, exp)
	idFile := filepath.Join(t.TempDir(), "operator.key")
	code, stdout, errOut := runCLI(t, nil, "keys", "init", "--out", idFile)
	if code != exitOK {
		t.Fatalf("keys init: %d %s", code, errOut)
	}
	base, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	appendConfig(t, env, "encryption:\n  recipients: ["+strings.TrimSpace(stdout)+"]\n")
	restoreEnv := map[string]string{}
	for k, v := range env {
		restoreEnv[k] = v
	}
	restoreEnv["PURGEGUARD_CONFIG"] = filepath.Join(dir, "restore.yaml")
	if err := os.WriteFile(restoreEnv["PURGEGUARD_CONFIG"], append(base, "encryption:\n  identity_file: "+idFile+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	startShield(t, procEnv, dir, countFiles(rec, exp))

	// sealedSnapshot snapshots the tenant and checks what its envelope lists: a
	// sealed blob of the tenant for each of its files, no shared blob.
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(env["PURGEGUARD_STORAGE_URL"], "s3://"), "/")
	store, err := storage.NewS3(ctx, bucket, prefix, storage.S3Options{Endpoint: env["PURGEGUARD_S3_ENDPOINT"], Region: env["AWS_REGION"],
		AccessKeyID: env["AWS_ACCESS_KEY_ID"], SecretAccessKey: env["AWS_SECRET_ACCESS_KEY"], Insecure: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	sealedSnapshot := func(tenant uuid.UUID, files int) {
		t.Helper()
		code, out, errOut := runCLI(t, env, "-o", "json", "snapshot", "--tenant", tenant.String())
		if code != exitOK {
			t.Fatalf("encrypted snapshot with the shield running: exit %d\n%s%s", code, out, errOut)
		}
		var doc struct {
			Snapshots []struct {
				Snapshot uuid.UUID `json:"snapshot"`
				Files    int       `json:"files"`
			} `json:"snapshots"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Snapshots) != 1 || doc.Snapshots[0].Files != files {
			t.Fatalf("snapshot output: %v, want %d files:\n%s", err, files, out)
		}
		obj, err := store.Get(ctx, archive.EnvelopeKey(tenant, doc.Snapshots[0].Snapshot))
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		sealed, shared, packs := 0, 0, 0
		if _, err := archive.DecodeEnvelope(obj, func(o archive.SealedObject) error {
			switch {
			case strings.HasPrefix(o.Key, archive.TenantBlobsPrefix(tenant)):
				sealed++
			case strings.HasPrefix(o.Key, archive.BlobsPrefix):
				shared++
			case strings.Contains(o.Key, "/packs/"):
				packs++ // the snapshot's own small files, sealed (format 4)
			}
			return nil
		}); err != nil {
			t.Fatalf("envelope: %v", err)
		}
		if (sealed < files && packs == 0) || shared != 0 {
			t.Errorf("envelope of tenant %s: %d sealed blobs of its own, %d packs, %d shared; want %d files in them, none shared", tenant, sealed, packs, shared, files)
		}
	}

	// Files on disk: sealed from the files.
	first := res.Tenants[0]
	filesOf := func(tenant uuid.UUID) map[string]fileState {
		t.Helper()
		out := map[string]fileState{}
		for _, p := range tenantPaths(t, conn, tenant) {
			if _, err := os.Lstat(p); err == nil {
				out[p] = stateOf(t, p)
			}
		}
		if len(out) < 10 {
			t.Fatalf("tenant %s has %d files: too few to test", tenant, len(out))
		}
		return out
	}
	sealedSnapshot(first, len(filesOf(first)))

	// The files removed by call-logd: from the shield's links, and from its blobs
	// for the half whose links are gone too.
	victim := res.Tenants[1]
	want := filesOf(victim)
	script, err := filepath.Abs("../../testdata/calllogd/remove_tenant.sh")
	if err != nil {
		t.Fatal(err)
	}
	removeTenant := func(steps string) {
		t.Helper()
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "TENANT="+victim.String(), "STEPS="+steps)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("remove_tenant.sh: %v\n%s", err, out)
		}
	}
	start := time.Now().Add(-time.Second)
	removeTenant("files")
	var losses []struct {
		Link   string `json:"link"`
		SHA256 string `json:"sha256"`
	}
	waitUntil(t, "every loss recorded with its blob", func() bool {
		code, out, _ := runCLI(t, env, "-o", "json", "files", "lost", "--since", start.UTC().Format(time.RFC3339))
		var doc struct {
			Lost []struct {
				Link   string `json:"link"`
				SHA256 string `json:"sha256"`
			} `json:"lost"`
		}
		if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Lost) != len(want) {
			return false
		}
		for _, l := range doc.Lost {
			if l.SHA256 == "" {
				return false
			}
		}
		losses = doc.Lost
		return true
	})
	unlinked := 0
	for i, l := range losses {
		if i%2 == 0 && l.Link != "" {
			if err := os.Remove(l.Link); err != nil {
				t.Fatal(err)
			}
			unlinked++
		}
	}
	if unlinked == 0 {
		t.Fatal("no shield link removed: the blob path is not tested")
	}
	sealedSnapshot(victim, len(want))

	removeTenant("all")
	if err := os.RemoveAll(filepath.Join(rec, victim.String())); err != nil {
		t.Fatal(err)
	}
	for p := range want {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s still there", p)
		}
	}
	if code, out, errOut := runCLI(t, restoreEnv, "restore", "--tenant", victim.String()); code != exitOK {
		t.Fatalf("restore of the encrypted snapshot: exit %d\n%s%s", code, out, errOut)
	}
	for p, w := range want {
		got := stateOf(t, p)
		if got.sum != w.sum || got.mode != w.mode || !got.mtime.Equal(w.mtime) {
			t.Errorf("%s: restored %+v, want %+v", p, got, w)
		}
	}
}
