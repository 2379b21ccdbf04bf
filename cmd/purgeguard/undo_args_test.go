package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRedactCommand(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"wazo-purge-db"}, []string{"wazo-purge-db"}},
		{[]string{"sync", "--token", "s3cr3t", "--days", "30"}, []string{"sync", "--token", "REDACTED", "--days", "30"}},
		{[]string{"sync", "--password=hunter2"}, []string{"sync", "--password=REDACTED"}},
		{[]string{"sync", "-api-key", "k"}, []string{"sync", "-api-key", "REDACTED"}},
		{[]string{"psql", "postgres://u:pw@db/x?sslmode=disable"}, []string{"psql", "postgres://db/x (credentials REDACTED)"}},
		{[]string{"curl", "https://auth/tenants?token=abc"}, []string{"curl", "https://auth/tenants (credentials REDACTED)"}},
		{[]string{"curl", "https://auth/tenants"}, []string{"curl", "https://auth/tenants"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, " "), func(t *testing.T) {
			if got := redactCommand(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	local := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-28T03:00:00Z", time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC), true},
		{"2026-11-28T03:00:00+01:00", time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC), true},
		{"2026-11-28 03:00", local("2026-11-28 03:00:00"), true},
		{"2026-11-28", local("2026-11-28 00:00:00"), true},
		{"6h", now.Add(-6 * time.Hour), true},
		{"2d", now.Add(-48 * time.Hour), true},
		{"yesterday", time.Time{}, false},
		{"-2h", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWhen("--since", tt.in, now)
			if (err == nil) != tt.ok || !got.Equal(tt.want) {
				t.Errorf("got %v, %v; want %v (ok %v)", got, err, tt.want, tt.ok)
			}
			if err != nil && exitCode(err) != exitUsage {
				t.Errorf("error %v: exit %d, want %d", err, exitCode(err), exitUsage)
			}
		})
	}
}

// undo's selection is checked before anything is read: exactly one of --run,
// --since, --tenants-file; usage errors exit 2.
func TestUndoUsage(t *testing.T) {
	env := map[string]string{"PURGEGUARD_STORAGE_URL": "file://" + t.TempDir()}
	for _, args := range [][]string{
		{"undo"},
		{"undo", "--run", "01a2216b-6912-735d-b245-e4c821611bfc", "--since", "2h"},
		{"undo", "--until", "1h"},
		{"undo", "--since", "1h", "--until", "2h"},
		{"undo", "--run", "not-a-run"},
		{"undo", "--run", "01a2216b-6912-735d-b245-e4c821611bfc", "--jobs", "0"},
		{"undo", "--run", "01a2216b-6912-735d-b245-e4c821611bfc"}, // no such run recorded
		{"history", "--since", "someday"},
	} {
		if code, out, errOut := runCLI(t, env, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, exitUsage, out, errOut)
		}
	}
}
