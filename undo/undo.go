// Package undo restores, in one command, everything one bad event removed: every
// tenant a guard run snapshotted, every snapshot taken in a time window, or the
// newest snapshot of each listed tenant. It plans first (which snapshots of which
// tenants, in which order: NewPlan), then executes the plan (Plan.Execute), several
// tenants at once, each tenant in its own restore transaction: a tenant comes back
// whole or not at all, and a failed tenant does not stop the others. Restores
// insert only what is missing, so running an undo again after a partial failure
// restores only what is still missing.
package undo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/storage"
)

// Selection says what to undo: exactly one of a guard run, a time window, or a list
// of tenants.
type Selection struct {
	// Run: every tenant guard run Run snapshotted, from those snapshots, as the
	// run's audit record names them (the CLI's guard writes it; guard.Run alone
	// does not).
	Run uuid.UUID
	// Since, Until: every snapshot created in [Since, Until] (Until zero: no end),
	// of any scope (tenant, retention, trash); a tenant with several gets them
	// all, newest first (retention snapshots last: see TenantPlan.order).
	Since, Until time.Time
	// Tenants: the newest snapshot of each.
	Tenants []uuid.UUID
}

func (s Selection) check() error {
	n := 0
	if s.Run != uuid.Nil {
		n++
	}
	if !s.Since.IsZero() {
		n++
	}
	if len(s.Tenants) > 0 {
		n++
	}
	switch {
	case n != 1:
		return errors.New("undo: select by exactly one of a run, a time window or tenants")
	case !s.Until.IsZero() && s.Since.IsZero():
		return errors.New("undo: an end of the window without its start")
	case !s.Until.IsZero() && s.Until.Before(s.Since):
		return fmt.Errorf("undo: the window ends (%s) before it starts (%s)", s.Until.Format(time.RFC3339), s.Since.Format(time.RFC3339))
	}
	return nil
}

// Plan is what an undo restores: per tenant, the snapshots in the order they are
// applied. It is what --dry-run prints.
type Plan struct {
	Selection string       `json:"selection"` // the selection, in words
	Run       *Run         `json:"run,omitempty"`
	Tenants   []TenantPlan `json:"tenants"`
	// Sums over every tenant's snapshots.
	Snapshots int   `json:"snapshots"`
	Rows      int64 `json:"rows"`
	Files     int   `json:"files"`
}

// Run is the guard run an undo --run reverses, as its audit record tells it.
type Run struct {
	ID       uuid.UUID `json:"id"`
	Started  time.Time `json:"started"`
	Recorded time.Time `json:"recorded"`
	Scope    string    `json:"scope"`
	Command  []string  `json:"command"`
	Outcome  string    `json:"outcome"`
	Verdict  string    `json:"verdict"`
}

// TenantPlan is one tenant of a plan. Problem, when set, is why the tenant cannot
// be restored (no snapshot, an unreadable manifest): it fails without being tried.
type TenantPlan struct {
	Tenant    uuid.UUID `json:"tenant"`
	Snapshots []Step    `json:"snapshots"`
	Rows      int64     `json:"rows"`  // in its snapshots
	Files     int       `json:"files"` // in its snapshots
	Problem   string    `json:"problem,omitempty"`
}

// Step is one snapshot of a tenant's plan and how rows already present are treated:
// skipped (restore.ConflictSkip: the newest snapshot's version of a row wins, it is
// applied first), or completed (restore.ConflictFillNulls, for a retention snapshot:
// a recording whose row survived with its path emptied gets it back; in any order).
type Step struct {
	Snapshot   uuid.UUID `json:"snapshot"`
	CreatedAt  time.Time `json:"created_at"`
	Scope      string    `json:"scope"`
	Reason     string    `json:"reason,omitempty"`
	OnConflict string    `json:"on_conflict"`
	Rows       int64     `json:"rows"`
	Files      int       `json:"files"`
}

// NewPlan reads what sel selects from the store's manifests and audit records; it
// reads nothing from the database and changes nothing.
func NewPlan(ctx context.Context, store storage.Store, sel Selection) (*Plan, error) {
	if err := sel.check(); err != nil {
		return nil, err
	}
	p := &Plan{Tenants: []TenantPlan{}}
	switch {
	case sel.Run != uuid.Nil:
		if err := p.fromRun(ctx, store, sel.Run); err != nil {
			return nil, err
		}
	case !sel.Since.IsZero():
		if err := p.fromWindow(ctx, store, sel.Since, sel.Until); err != nil {
			return nil, err
		}
	default:
		if err := p.fromTenants(ctx, store, sel.Tenants); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(p.Tenants, func(a, b TenantPlan) int { return bytes.Compare(a.Tenant[:], b.Tenant[:]) })
	for _, t := range p.Tenants {
		p.Snapshots += len(t.Snapshots)
		p.Rows += t.Rows
		p.Files += t.Files
	}
	return p, nil
}

func (p *Plan) fromRun(ctx context.Context, store storage.Store, id uuid.UUID) error {
	r, err := repository.FindGuardRun(ctx, store, id)
	if err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	p.Selection = "guard run " + id.String()
	p.Run = &Run{ID: r.Run, Started: r.Started, Recorded: r.Recorded, Scope: r.Scope, Command: r.Command, Outcome: r.Outcome, Verdict: r.Verdict}
	return p.addAll(ctx, store, r.Snapshots)
}

// addAll adds the snapshots refs name, grouped by tenant, each tenant's newest first.
func (p *Plan) addAll(ctx context.Context, store storage.Store, refs []archive.SnapshotRef) error {
	index := map[uuid.UUID]int{}
	for _, ref := range refs {
		i, ok := index[ref.Tenant]
		if !ok {
			i = len(p.Tenants)
			index[ref.Tenant] = i
			p.Tenants = append(p.Tenants, TenantPlan{Tenant: ref.Tenant, Snapshots: []Step{}})
		}
		if err := p.Tenants[i].add(ctx, store, ref); err != nil {
			return err
		}
	}
	for i := range p.Tenants {
		p.Tenants[i].order()
	}
	return nil
}

func (p *Plan) fromWindow(ctx context.Context, store storage.Store, since, until time.Time) error {
	p.Selection = "snapshots created from " + since.UTC().Format(time.RFC3339)
	if !until.IsZero() {
		p.Selection += " to " + until.UTC().Format(time.RFC3339)
	}
	sums, broken, err := repository.ListAll(ctx, store, uuid.Nil)
	if err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	in := func(t time.Time) bool { return !t.Before(since) && (until.IsZero() || !t.After(until)) }
	var refs []archive.SnapshotRef
	for _, s := range sums {
		if in(s.CreatedAt) {
			refs = append(refs, s.SnapshotRef)
		}
	}
	if err := p.addAll(ctx, store, refs); err != nil {
		return err
	}
	// A manifest that cannot be read has no time to go by but its id's (a UUIDv7):
	// one of the window makes its tenant fail rather than come back in part.
	for _, b := range broken {
		if b.ID.Version() != 7 {
			continue
		}
		sec, nsec := b.ID.Time().UnixTime()
		if !in(time.Unix(sec, nsec)) {
			continue
		}
		i := slices.IndexFunc(p.Tenants, func(t TenantPlan) bool { return t.Tenant == b.Tenant })
		if i < 0 {
			p.Tenants = append(p.Tenants, TenantPlan{Tenant: b.Tenant, Snapshots: []Step{}})
			i = len(p.Tenants) - 1
		}
		p.Tenants[i].Problem = fmt.Sprintf("snapshot %s: %v", b.ID, b.Err)
	}
	return nil
}

func (p *Plan) fromTenants(ctx context.Context, store storage.Store, tenants []uuid.UUID) error {
	p.Selection = fmt.Sprintf("the newest snapshot of %d listed tenants", len(tenants))
	seen := map[uuid.UUID]bool{}
	for _, t := range tenants {
		if seen[t] {
			continue
		}
		seen[t] = true
		tp := TenantPlan{Tenant: t, Snapshots: []Step{}}
		sums, err := repository.List(ctx, store, t)
		switch {
		case err != nil:
			var ve *archive.VerifyError
			if !errors.As(err, &ve) {
				return fmt.Errorf("undo: %w", err)
			}
			tp.Problem = err.Error()
		case len(sums) == 0:
			tp.Problem = "no committed snapshot"
		default:
			if err := tp.add(ctx, store, sums[0].SnapshotRef); err != nil {
				return err
			}
		}
		p.Tenants = append(p.Tenants, tp)
	}
	return nil
}

// add appends a snapshot's step; a manifest that cannot be read (gone, corrupt)
// becomes the tenant's problem, a storage failure an error.
func (tp *TenantPlan) add(ctx context.Context, store storage.Store, ref archive.SnapshotRef) error {
	if slices.ContainsFunc(tp.Snapshots, func(s Step) bool { return s.Snapshot == ref.ID }) {
		return nil
	}
	m, _, err := repository.Open(ctx, store, ref, nil)
	if errors.Is(err, repository.ErrSealed) {
		// An encrypted snapshot is planned from its envelope, no key needed: its
		// counts are inside it, and restoring it opens it (Options.Keys).
		e, err := repository.Envelope(ctx, store, ref, nil)
		if err != nil {
			return fmt.Errorf("undo: %w", err)
		}
		oc := restore.ConflictSkip
		if e.Kind == archive.ScopeRetention {
			oc = restore.ConflictFillNulls
		}
		tp.Snapshots = append(tp.Snapshots, Step{Snapshot: ref.ID, CreatedAt: e.CreatedAt, Scope: e.Kind, OnConflict: oc})
		return nil
	}
	var ve *archive.VerifyError
	switch {
	case errors.Is(err, repository.ErrNoSnapshot) || errors.As(err, &ve):
		tp.Problem = err.Error()
		return nil
	case err != nil:
		return fmt.Errorf("undo: %w", err)
	}
	oc := restore.ConflictSkip
	if m.Scope.Kind == archive.ScopeRetention {
		oc = restore.ConflictFillNulls
	}
	tot := m.Totals()
	tp.Snapshots = append(tp.Snapshots, Step{Snapshot: m.ID, CreatedAt: m.CreatedAt, Scope: m.Scope.Kind, Reason: m.Reason,
		OnConflict: oc, Rows: tot.Rows, Files: tot.Files})
	tp.Rows += tot.Rows
	tp.Files += tot.Files
	return nil
}

// order puts the tenant's state snapshots (tenant scope, and any other that holds
// whole rows) newest first: with skip, the first version of a row put back stays,
// so the newest state wins. Retention snapshots go after them: they complete rows
// (fill-nulls) and give the same result in any order (restore's README), and they
// hold no tenant root row, so one cannot go first where the tenant was purged whole.
func (tp *TenantPlan) order() {
	slices.SortStableFunc(tp.Snapshots, func(a, b Step) int {
		ra, rb := a.Scope == archive.ScopeRetention, b.Scope == archive.ScopeRetention
		switch {
		case ra && !rb:
			return 1
		case rb && !ra:
			return -1
		}
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.Snapshot[:], a.Snapshot[:])
	})
}

// Options says how to execute a plan.
type Options struct {
	// Jobs is how many tenants are restored at once, each on its own connection
	// (default 1).
	Jobs int
	// DryRun counts, per tenant, what is already present and what would be
	// inserted and written, and changes nothing.
	DryRun           bool
	Graph            profile.Tenants
	Files            []profile.FileColumn
	AllowDropColumns bool
	OverwriteFiles   bool
	Log              *slog.Logger
	// Lock runs first in each tenant's transaction (the CLI gives
	// guard.LockTenantTx: guard's lock, shared, and the tenant's own); its error
	// fails that tenant. A lock that excludes other restores of other tenants
	// makes them fail or wait: Jobs would gain nothing.
	Lock func(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error
	// Keys open encrypted snapshots (issue 15), as restore.Options.Keys.
	Keys restore.Opener
}

// Tenant outcomes.
const (
	Restored     = "restored"      // rows or files were put back (with DryRun: would be)
	Present      = "present"       // everything of its snapshots was already there
	Failed       = "failed"        // nothing of it was committed; Reason says why
	WouldRestore = "would_restore" // DryRun: something is missing
)

// TenantResult is one tenant's outcome.
type TenantResult struct {
	Tenant       uuid.UUID   `json:"tenant"`
	Status       string      `json:"status"`
	Snapshots    []uuid.UUID `json:"snapshots"`
	Rows         int64       `json:"rows_in_snapshots"`
	Present      int64       `json:"rows_present"`
	Inserted     int64       `json:"rows_inserted"` // with DryRun: to insert
	Updated      int64       `json:"rows_updated"`
	FilesWritten int         `json:"files_written"` // with DryRun: to write
	FilesPresent int         `json:"files_present"`
	FilesDiffer  int         `json:"files_differ"`
	Reason       string      `json:"reason,omitempty"`
	err          error
}

// Result is an executed plan: one result per tenant of the plan, in its order.
type Result struct {
	DryRun   bool           `json:"dry_run"`
	Tenants  []TenantResult `json:"tenants"`
	Restored int            `json:"restored"`
	Present  int            `json:"present"`
	Failed   int            `json:"failed"`
}

// IncompleteError is returned by Result.Err when a tenant did not come back.
type IncompleteError struct {
	Failed []uuid.UUID
	Errs   []error // the tenants' own errors, for errors.As
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("undo: %d tenants not restored", len(e.Failed))
}

// Unwrap gives the tenants' errors to errors.Is and errors.As.
func (e *IncompleteError) Unwrap() []error { return e.Errs }

// Err is nil when every tenant is back (restored or already present), else an
// *IncompleteError naming the others.
func (r *Result) Err() error {
	var ie IncompleteError
	for _, t := range r.Tenants {
		if t.Status == Failed {
			ie.Failed = append(ie.Failed, t.Tenant)
			ie.Errs = append(ie.Errs, t.err)
		}
	}
	if len(ie.Failed) == 0 {
		return nil
	}
	return &ie
}

// Execute restores every tenant of the plan, o.Jobs at a time, each in its own
// transaction through restore.RunSteps. A tenant's failure is recorded in its result
// and the others go on; the error returned is for the run itself (a cancelled
// context), and Result.Err says whether every tenant is back.
func (p *Plan) Execute(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	jobs := max(o.Jobs, 1)
	res := &Result{DryRun: o.DryRun, Tenants: make([]TenantResult, len(p.Tenants))}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, max(len(p.Tenants), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res.Tenants[i] = p.Tenants[i].execute(ctx, cfg, store, o) // each worker its own indexes
			}
		}()
	}
	for i := range p.Tenants {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, t := range res.Tenants {
		switch t.Status {
		case Restored, WouldRestore:
			res.Restored++
		case Present:
			res.Present++
		default:
			res.Failed++
		}
	}
	return res, ctx.Err()
}

// execute restores one tenant from all its snapshots in one transaction.
func (tp *TenantPlan) execute(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options) TenantResult {
	tr := TenantResult{Tenant: tp.Tenant, Snapshots: make([]uuid.UUID, len(tp.Snapshots)), Rows: tp.Rows}
	for i, s := range tp.Snapshots {
		tr.Snapshots[i] = s.Snapshot
	}
	fail := func(err error) TenantResult {
		tr.Status, tr.err, tr.Reason = Failed, err, err.Error()
		o.Log.Warn("tenant not restored", "tenant", tp.Tenant, "err", err)
		return tr
	}
	switch {
	case tp.Problem != "":
		return fail(errors.New(tp.Problem))
	case len(tp.Snapshots) == 0:
		return fail(errors.New("no snapshot to restore"))
	case ctx.Err() != nil:
		return fail(ctx.Err())
	}
	steps := make([]restore.Step, len(tp.Snapshots))
	for i, s := range tp.Snapshots {
		steps[i] = restore.Step{Snapshot: s.Snapshot, OnConflict: s.OnConflict}
	}
	ro := restore.Options{Tenant: tp.Tenant, DryRun: o.DryRun, AllowDropColumns: o.AllowDropColumns,
		Graph: o.Graph, Files: o.Files, OverwriteFiles: o.OverwriteFiles, Log: o.Log.With("tenant", tp.Tenant), Keys: o.Keys}
	if o.Lock != nil {
		ro.Lock = func(ctx context.Context, tx pgx.Tx) error { return o.Lock(ctx, tx, tp.Tenant) }
	}
	reps, err := restore.RunSteps(ctx, cfg, store, ro, steps)
	for _, r := range reps {
		tr.Present += r.Totals.Present
		tr.Inserted += r.Totals.Inserted
		tr.Updated += r.Totals.Updated
		tr.FilesWritten += r.Totals.FilesWritten
		tr.FilesPresent += r.Totals.FilesPresent
		tr.FilesDiffer += r.Totals.FilesDiffer
	}
	if err != nil {
		if len(reps) == 0 && !o.DryRun {
			// Rolled back before the commit: nothing of this tenant, row or file, is there.
			tr.Inserted, tr.Updated, tr.FilesWritten = 0, 0, 0
		}
		// With reports, its rows committed and a file could not be renamed into
		// place: a rerun writes what is missing.
		return fail(err)
	}
	tr.Status = Present
	if tr.Inserted > 0 || tr.Updated > 0 || tr.FilesWritten > 0 {
		tr.Status = Restored
		if o.DryRun {
			tr.Status = WouldRestore
		}
	}
	o.Log.Info("tenant done", "tenant", tp.Tenant, "status", tr.Status, "rows_inserted", tr.Inserted, "files_written", tr.FilesWritten)
	return tr
}
