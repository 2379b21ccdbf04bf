package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// guard's exit status: the command's own when all is well, 4 when the blast-radius
// check finds a tenant that lost rows without approval.
func TestCLI_GuardExitCodes(t *testing.T) {
	env, res, _ := cliEnv(t)
	appendConfig(t, env, thirdOfTenants)
	dir := t.TempDir()
	target := filepath.Join(dir, "target.txt")
	if err := os.WriteFile(target, []byte(res.Tenants[0].String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	del := func(ids ...string) string {
		return psql() + ` "` + env["PURGEGUARD_DATABASE_URL"] + `" -qAtX -v ON_ERROR_STOP=1 -c "DELETE FROM call_logd_tenant WHERE uuid IN ('` +
			strings.Join(ids, "','") + `')"`
	}

	if code, out, errOut := runCLI(t, env, "guard", "--delete", target, "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("guard of a command exiting 7: exit %d, want 7\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, env, "guard", "--delete", target, "--", "sh", "-c", del(res.Tenants[0].String(), res.Tenants[1].String()))
	if code != exitVerify || !strings.Contains(out, res.Tenants[1].String()) || !strings.Contains(out, "NOT approved") {
		t.Errorf("guard of a purge that also deleted an unapproved tenant: exit %d, want %d naming %s\n%s%s",
			code, exitVerify, res.Tenants[1], out, errOut)
	}
}

// guard exits 4 when the command removes a file of a tenant it did not approve (rows
// untouched), naming the tenant and the path.
func TestCLI_GuardFileLoss(t *testing.T) {
	env, res, _ := cliEnv(t)
	appendConfig(t, env, thirdOfTenants)
	target := filepath.Join(t.TempDir(), "target.txt")
	if err := os.WriteFile(target, []byte(res.Tenants[0].String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(env["PURGEGUARD_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	rec := strings.Fields(strings.SplitN(string(cfg), "root: ", 2)[1])[0]
	var victim string
	_ = filepath.WalkDir(filepath.Join(rec, res.Tenants[2].String()), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && victim == "" {
			victim = p
		}
		return err
	})
	if victim == "" {
		t.Fatal("fixture: no recording of the third tenant on disk")
	}
	code, out, errOut := runCLI(t, env, "guard", "--delete", target, "--", "rm", victim)
	if code != exitVerify || !strings.Contains(out, victim) || !strings.Contains(out, res.Tenants[2].String()) {
		t.Errorf("guard of a command removing a file of an unapproved tenant: exit %d, want %d naming %s and %s\n%s%s",
			code, exitVerify, res.Tenants[2], victim, out, errOut)
	}
}
