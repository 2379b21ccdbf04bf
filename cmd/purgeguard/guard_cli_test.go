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
