package repository_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// putRaw stores an audit record as an older purgeguard wrote it, byte for byte.
func putRaw(t *testing.T, s storage.Store, file string) archive.Audit {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var a archive.Audit
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(testenv.Context(t), a.Key(), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return a
}

// History reads guard records of every age, newest first: records written before
// #19 (run id in the detail only, no scope, no command) read with their run id,
// their scope inferred and their verdict derived; other kinds are left out.
func TestGuardRuns(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	putRaw(t, s, "audit-guard-before-19.json")
	putRaw(t, s, "audit-guard-retention-before-19.json")
	tenant := uuid.MustParse("6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11")
	run := uuid.Must(uuid.NewV7())
	now := time.Now().UTC()
	newer := &archive.Audit{ID: uuid.Must(uuid.NewV7()), Kind: archive.AuditGuard, Time: now, ToolVersion: "test", Outcome: "refused",
		Run: run, Scope: archive.ScopeTenant, Command: []string{"sync", "--token", "REDACTED"}, Tenants: []uuid.UUID{tenant},
		Detail: json.RawMessage(`{"exit_code":0,"losses":[],"verdict":"refused"}`)}
	other := &archive.Audit{ID: uuid.Must(uuid.NewV7()), Kind: archive.AuditRestore, Time: now.Add(time.Second), ToolVersion: "test", Outcome: "done"}
	for _, a := range []*archive.Audit{newer, other} {
		if err := repository.PutAudit(ctx, s, a); err != nil {
			t.Fatal(err)
		}
	}

	runs, err := repository.GuardRuns(ctx, s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		run            string
		scope, verdict string
		targets, snaps int
		losses         int
		command        string
	}
	var got []row
	for _, r := range runs {
		got = append(got, row{r.Run.String(), r.Scope, r.Verdict, len(r.Targets), len(r.Snapshots), r.Losses, strings.Join(r.Command, " ")})
	}
	want := []row{
		{run.String(), archive.ScopeTenant, repository.VerdictRefused, 1, 0, 0, "sync --token REDACTED"},
		{"01a1fc0b-e380-7000-8000-000000000006", archive.ScopeRetention, repository.VerdictLosses, 0, 1, 1, ""},
		{"01a1f866-0d00-7000-8000-000000000003", archive.ScopeTenant, repository.VerdictClean, 1, 1, 0, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if len(runs) == 3 && !runs[2].Started.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("started of the old run: got %v, want its run id's time", runs[2].Started)
	}

	// Since leaves out what was recorded before it.
	if runs, err := repository.GuardRuns(ctx, s, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)); err != nil || len(runs) != 2 {
		t.Errorf("since 2026-11-21: %d runs (%v), want 2", len(runs), err)
	}

	r, err := repository.FindGuardRun(ctx, s, uuid.MustParse("01a1f866-0d00-7000-8000-000000000003"))
	if err != nil || len(r.Snapshots) != 1 || r.Snapshots[0].ID != uuid.MustParse("01a1f866-10e8-7000-8000-000000000002") {
		t.Errorf("find the old run: %+v, %v", r, err)
	}
	if _, err := repository.FindGuardRun(ctx, s, uuid.Must(uuid.NewV7())); !errors.Is(err, repository.ErrNoRun) {
		t.Errorf("find a run never recorded: got %v, want ErrNoRun", err)
	}
}
