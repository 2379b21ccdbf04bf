package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
)

// call-logd's remove_tenant(), run outside guard with the capturing fence and the
// file shield: it succeeds (the service keeps working); trash save keeps its rows
// and, from the shield, the recordings and export zips it unlinked first (one of
// them from its blob alone, its link gone, with the owner the shield recorded);
// restore then brings back every table (md5 of each, ordered) and every file (bytes,
// mode, mtime, owner, group), its directories recreated as they were.
func TestCLI_TrashRemoveTenantWithShield(t *testing.T) {
	w := newCallLogdWorld(t, fixture.Options{Seed: 13, Tenants: 3, CallLogsPerTenant: 80})
	dsn, conn, dir, rec, exp, res := w.dsn, w.conn, w.dir, w.rec, w.exp, w.res
	victim := res.Tenants[1]
	tenantDir := filepath.Join(rec, victim.String())
	if err := os.Chown(tenantDir, 33, 33); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tenantDir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Two recordings of other owners, 0640 and 0600; the first is the one whose
	// shield link goes.
	want := map[string]fileState{}
	var odd []string
	absent := 0
	for _, p := range tenantPaths(t, conn, victim) {
		if _, err := os.Lstat(p); err != nil {
			absent++ // a row naming a file never written (the fixture's missing files)
			continue
		}
		if strings.HasPrefix(p, tenantDir) && len(odd) < 2 {
			if err := os.Chown(p, 1234+len(odd), 34+len(odd)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, []os.FileMode{0o640, 0o600}[len(odd)]); err != nil {
				t.Fatal(err)
			}
			odd = append(odd, p)
		}
		want[p] = stateOf(t, p)
	}
	if len(odd) < 2 || len(want) < 10 {
		t.Fatalf("fixture: %d files of the tenant, %d of other owners: too few to test", len(want), len(odd))
	}

	env, procEnv, _ := callLogdShieldEnv(t, dir, dsn, rec, exp)
	if code, out, errOut := runCLI(t, env, "fence", "install", "--mode", "capture"); code != exitOK {
		t.Fatalf("fence install --mode capture: exit %d\n%s%s", code, out, errOut)
	}
	before := dbState(t, conn)
	startShield(t, procEnv, dir, countFiles(rec, exp))
	start := time.Now().Add(-time.Second)

	removeTenant(t, dsn, victim.String())
	for p := range want {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s still there after remove_tenant", p)
		}
	}
	var lost []struct {
		Path, Link string
	}
	waitUntil(t, "every loss recorded", func() bool {
		code, out, _ := runCLI(t, env, "-o", "json", "files", "lost", "--since", start.UTC().Format(time.RFC3339))
		var doc struct {
			Lost []struct{ Path, Link string } `json:"lost"`
		}
		if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil {
			return false
		}
		lost = doc.Lost
		return len(lost) == len(want)
	})
	for _, l := range lost {
		if l.Path == odd[0] {
			if l.Link == "" {
				t.Fatalf("loss of %s names no link", l.Path)
			}
			if err := os.Remove(l.Link); err != nil {
				t.Fatal(err)
			}
		}
	}

	saved := trashSave(t, env)
	if len(saved.Saved) != 1 || saved.Saved[0].Tenant != victim.String() || saved.Unresolved != 0 {
		t.Fatalf("trash save: %+v, want one snapshot of %s and nothing unattributed", saved, victim)
	}
	snaps := trashSnapshots(t, env, victim.String())
	if len(snaps) != 1 || snaps[0].Files != len(want) || snaps[0].Recovered != len(want) || snaps[0].Missing != absent {
		t.Fatalf("trash snapshots: %+v; want one, with the %d files all recovered from the shield and %d never written missing", snaps, len(want), absent)
	}
	if code, out, errOut := runCLI(t, env, "verify", "--tenant", victim.String()); code != exitOK {
		t.Fatalf("verify of the trash snapshot: exit %d\n%s%s", code, out, errOut)
	}

	// The tenant's directory goes too: restore makes it again as it was.
	if err := os.RemoveAll(tenantDir); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, env, "restore", "--tenant", victim.String(), "--snapshot", saved.Saved[0].Snapshot, "--on-conflict", "fill-nulls"); code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	sameState(t, "after remove_tenant, trash save and restore", before, dbState(t, conn))
	for p, w := range want {
		got := stateOf(t, p)
		if got.sum != w.sum || got.mode != w.mode || !got.mtime.Equal(w.mtime) || got.uid != w.uid || got.gid != w.gid {
			t.Errorf("%s: got %+v, want %+v", p, got, w)
		}
	}
	fi, err := os.Stat(tenantDir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o750 || st.Uid != 33 || st.Gid != 33 {
		t.Errorf("tenant directory recreated %v %d:%d, want 0750 33:33", fi.Mode().Perm(), st.Uid, st.Gid)
	}
}
