package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// guard --retention around testdata's retention purge: every tenant's take is saved
// and verified, the blast radius is clean, and a fill-nulls restore of each snapshot
// gives back the database and files of before the purge. A purge that also takes
// newer rows is caught (exit 4).
func TestCLI_GuardRetention(t *testing.T) {
	env, res, _ := cliEnv(t)
	// The fixture was never purged: this first purge takes about half of two years,
	// which the retention policy refuses by default (TestCLI_RetentionPolicyRefusesZeroDays).
	appendConfig(t, env, "policy:\n  retention:\n    max_fraction: 1\n    max_tenant_fraction: 1\n")
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, env["PURGEGUARD_DATABASE_URL"])
	// Different days: 30 days of call logs; recordings emptied after 60 days; defaults.
	if _, err := conn.Exec(ctx, `DELETE FROM call_logd_retention;
		INSERT INTO call_logd_retention (tenant_uuid, cdr_days, recording_days, export_days) VALUES
		('`+res.Tenants[0].String()+`', 30, NULL, 1), ('`+res.Tenants[1].String()+`', NULL, 60, NULL)`); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		var s string
		err := conn.QueryRow(ctx, `SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
			SELECT 'l' || c::text AS x FROM call_logd_call_log c UNION ALL SELECT 'p' || p::text FROM call_logd_call_log_participant p
			UNION ALL SELECT 'd' || d::text FROM call_logd_call_log_destination d UNION ALL SELECT 'r' || r::text FROM call_logd_recording r
			UNION ALL SELECT 'e' || e::text FROM call_logd_export e) s`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s + filesState(t, filepath.Dir(env["PURGEGUARD_CONFIG"]))
	}
	before := state()

	purge, err := filepath.Abs("../../testdata/calllogd/retention_purge.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", env["PURGEGUARD_DATABASE_URL"])
	code, out, errOut := runCLI(t, env, "-o", "json", "guard", "--retention", "--", purge)
	if code != exitOK {
		t.Fatalf("guard --retention: exit %d\n%s%s", code, out, errOut)
	}
	var got struct {
		Snapshots []struct{ Tenant, Snapshot string } `json:"snapshots"`
		Removed   map[string]int64                    `json:"rows_removed"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("guard -o json: %v\n%s", err, out)
	}
	if len(got.Snapshots) != len(res.Tenants) || got.Removed["public.call_logd_call_log"] == 0 {
		t.Fatalf("guard --retention: %d snapshots (want %d), %d call logs removed (want some)\n%s",
			len(got.Snapshots), len(res.Tenants), got.Removed["public.call_logd_call_log"], out)
	}
	if state() == before {
		t.Fatal("the purge changed nothing: the test proves nothing")
	}
	for _, s := range got.Snapshots {
		code, out, errOut = runCLI(t, env, "restore", "--tenant", s.Tenant, "--snapshot", s.Snapshot, "--dry-run")
		if code != exitOK || !strings.Contains(out, "scope: what a retention purge removes: cdr") {
			t.Errorf("restore --dry-run of a retention snapshot: exit %d, want its scope shown\n%s%s", code, out, errOut)
		}
		if code, out, errOut = runCLI(t, env, "restore", "--tenant", s.Tenant, "--snapshot", s.Snapshot, "--on-conflict", "fill-nulls"); code != exitOK {
			t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
		}
	}
	if state() != before {
		t.Error("after guard --retention and a fill-nulls restore of every snapshot, the database or the files differ from before the purge")
	}

	// A purge that also deletes a tenant's newest call logs.
	greedy := purge + ` && ` + psql() + ` "$DATABASE_URL" -qAtX -c "DELETE FROM call_logd_call_log WHERE id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = '` +
		res.Tenants[2].String() + `' ORDER BY date DESC LIMIT 2)"`
	code, out, errOut = runCLI(t, env, "guard", "--retention", "--", "sh", "-c", greedy)
	if code != exitVerify || !strings.Contains(out, res.Tenants[2].String()) || !strings.Contains(out, "NEWER than its retention cut-off") {
		t.Errorf("guard --retention of a purge taking newer rows: exit %d, want %d naming %s\n%s%s", code, exitVerify, res.Tenants[2], out, errOut)
	}

	// A purge that also removes the file of a recording it keeps (the newest of a
	// tenant's on disk), its rows untouched, as call-logd's purgers remove files
	// before their DELETE.
	rows, err := conn.Query(ctx, `SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = $1 AND r.path IS NOT NULL ORDER BY c.date DESC`, res.Tenants[2])
	if err != nil {
		t.Fatal(err)
	}
	var kept string
	for rows.Next() && kept == "" {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err == nil {
			kept = p
		}
	}
	rows.Close()
	if kept == "" {
		t.Fatal("fixture: no recording of the third tenant on disk")
	}
	code, out, errOut = runCLI(t, env, "guard", "--retention", "--", "sh", "-c", purge+` && rm -f "`+kept+`"`)
	if code != exitVerify || !strings.Contains(out, kept) || !strings.Contains(out, res.Tenants[2].String()) || !strings.Contains(out, "files restore") {
		t.Errorf("guard --retention of a purge removing a kept recording's file: exit %d, want %d naming %s of %s and how to restore it\n%s%s",
			code, exitVerify, kept, res.Tenants[2], out, errOut)
	}
}

// filesState lists every file under dir (but the backups) with its SHA-256.
func filesState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || strings.Contains(p, "backups") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %x\n", p, sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
