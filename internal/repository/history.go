package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// ErrNoRun is returned when no audit record tells of a guard run.
var ErrNoRun = errors.New("no guard run with that id in the audit records")

// Verdicts of a guard run's blast-radius check.
const (
	VerdictClean      = "clean"       // checked: nothing went that should not have
	VerdictLosses     = "losses"      // checked: rows went without a copy, or from the wrong tenants
	VerdictRefused    = "refused"     // the policy refused: the purge never ran
	VerdictNotReached = "not_reached" // the run failed before the check (e.g. a snapshot failed)
	VerdictUnknown    = "unknown"     // an older record that does not say
)

// GuardRun is one guarded run (tenant or retention purge) as its audit record tells
// it: what history lists and what undo --run restores.
type GuardRun struct {
	Run      uuid.UUID `json:"run"`
	Started  time.Time `json:"started"`  // from the run id (a UUIDv7)
	Recorded time.Time `json:"recorded"` // when the record was written: the run's end
	// Scope is archive.ScopeTenant or archive.ScopeRetention. Records written before
	// it was recorded are read as retention when they name snapshots but no target.
	Scope     string                `json:"scope"`
	Command   []string              `json:"command"` // empty in records older than #19
	Targets   []uuid.UUID           `json:"targets"`
	Snapshots []archive.SnapshotRef `json:"snapshots"`
	Outcome   string                `json:"outcome"` // done, refused, failed
	ExitCode  int                   `json:"exit_code"`
	Verdict   string                `json:"verdict"`
	Losses    int                   `json:"losses"`
	Error     string                `json:"error,omitempty"`
	User      string                `json:"user,omitempty"`
	Host      string                `json:"host,omitempty"`
	Audit     string                `json:"audit"` // the record's key
}

// maxAudit bounds one audit record read back: a guard decision names every target.
const maxAudit = 64 << 20

// GuardRuns returns the guard runs recorded at or after since (every one when since
// is zero), newest first. Records are read one at a time; only the guard runs'
// summaries are kept.
func GuardRuns(ctx context.Context, s storage.Store, since time.Time) ([]GuardRun, error) {
	var out []GuardRun
	err := eachAudit(ctx, s, since, func(a *archive.Audit, key string) error {
		if a.Kind != archive.AuditGuard {
			return nil
		}
		out = append(out, guardRun(a, key))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b GuardRun) int {
		if c := b.Recorded.Compare(a.Recorded); c != 0 {
			return c
		}
		return b.Started.Compare(a.Started)
	})
	return out, nil
}

// FindGuardRun returns the record of guard run id. Only records written after the
// run started are read (the record is written as it ends).
func FindGuardRun(ctx context.Context, s storage.Store, id uuid.UUID) (*GuardRun, error) {
	since := time.Time{}
	if id.Version() == 7 {
		sec, nsec := id.Time().UnixTime()
		since = time.Unix(sec, nsec).Add(-time.Minute) // clocks of two hosts
	}
	var found *GuardRun
	errFound := errors.New("found")
	err := eachAudit(ctx, s, since, func(a *archive.Audit, key string) error {
		if a.Kind != archive.AuditGuard {
			return nil
		}
		if r := guardRun(a, key); r.Run == id {
			found = &r
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("run %s: %w", id, ErrNoRun)
	}
	return found, nil
}

// eachAudit calls fn with every audit record stored at or after since, oldest first.
func eachAudit(ctx context.Context, s storage.Store, since time.Time, fn func(*archive.Audit, string) error) error {
	from := ""
	if !since.IsZero() {
		from = archive.AuditKey(since.Truncate(time.Second), uuid.Nil)
	}
	var keys []string
	err := s.List(ctx, archive.AuditPrefix, func(i storage.Info) error {
		if i.Key >= from {
			keys = append(keys, i.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list audit records: %w", err)
	}
	slices.Sort(keys)
	for _, key := range keys {
		a, err := getAudit(ctx, s, key)
		if err != nil {
			return err
		}
		if err := fn(a, key); err != nil {
			return err
		}
	}
	return nil
}

func getAudit(ctx context.Context, s storage.Store, key string) (*archive.Audit, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("audit record %s: %w", key, err)
	}
	defer rc.Close()
	var a archive.Audit
	if err := json.NewDecoder(io.LimitReader(rc, maxAudit)).Decode(&a); err != nil {
		return nil, fmt.Errorf("audit record %s: %w", key, err)
	}
	return &a, nil
}

// guardDetail is the part of a guard record's detail that history reads; older
// records hold the same names.
type guardDetail struct {
	Run      uuid.UUID         `json:"run"`
	ExitCode int               `json:"exit_code"`
	Losses   []json.RawMessage `json:"losses"`
	Error    string            `json:"error"`
	Verdict  string            `json:"verdict"`
	Decision *struct {
		Targets []uuid.UUID `json:"targets"`
	} `json:"decision"`
}

func guardRun(a *archive.Audit, key string) GuardRun {
	var d guardDetail
	_ = json.Unmarshal(a.Detail, &d) // a detail that does not read leaves the fields empty
	r := GuardRun{Run: a.Run, Recorded: a.Time, Scope: a.Scope, Command: a.Command, Targets: a.Tenants, Snapshots: a.Snapshots,
		Outcome: a.Outcome, ExitCode: d.ExitCode, Verdict: d.Verdict, Losses: len(d.Losses), Error: d.Error,
		User: a.User, Host: a.Host, Audit: key}
	if r.Run == uuid.Nil {
		r.Run = d.Run
	}
	if r.Run.Version() == 7 {
		sec, nsec := r.Run.Time().UnixTime()
		r.Started = time.Unix(sec, nsec).UTC()
	}
	if r.Targets == nil && d.Decision != nil {
		r.Targets = d.Decision.Targets
	}
	if r.Targets == nil {
		r.Targets = []uuid.UUID{}
	}
	if r.Snapshots == nil {
		r.Snapshots = []archive.SnapshotRef{}
	}
	if r.Command == nil {
		r.Command = []string{}
	}
	if r.Scope == "" {
		r.Scope = archive.ScopeTenant
		if len(r.Targets) == 0 && len(r.Snapshots) > 0 {
			r.Scope = archive.ScopeRetention
		}
	}
	if r.Verdict == "" {
		switch {
		case r.Outcome == "refused":
			r.Verdict = VerdictRefused
		case r.Losses > 0:
			r.Verdict = VerdictLosses
		case r.Outcome == "done":
			r.Verdict = VerdictClean
		default:
			r.Verdict = VerdictUnknown
		}
	}
	return r
}
