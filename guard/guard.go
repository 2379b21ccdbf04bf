// Package guard runs a tenant purge under purgeguard's protection: take the lock,
// decide on the deletion set, snapshot and verify every target, count every
// tenant's rows, approve exactly the targets at the database fence, run the purge
// command, withdraw the approvals, and check the blast radius: no other tenant lost
// a row, and no approved tenant lost more rows than its snapshot holds.
package guard

import (
	"github.com/purgeguard/purgeguard/profile"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// Environment variables the purge command receives.
const (
	EnvApproved  = "PURGEGUARD_APPROVED_TENANTS"
	EnvSnapshots = "PURGEGUARD_SNAPSHOTS"
)

// Options says what to guard.
type Options struct {
	Input    Input
	Rules    policy.Rules
	Activity *profile.Activity
	// Snapshot carries the catalog, files and tuning; Tenants and Reason are set here.
	Snapshot snapshot.Options
	Reason   string
	NoWait   bool
	// Command is the purge, run with the approvals in its environment.
	Command        []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ApprovalTTL bounds how long the fence accepts the approved deletes; default 1h.
	ApprovalTTL time.Duration
	Log         *slog.Logger
	Now         func() time.Time
}

// Result is what a guarded run did.
type Result struct {
	Run       uuid.UUID       `json:"run"`
	Decision  policy.Decision `json:"decision"`
	Snapshots []SnapshotRef   `json:"snapshots"`
	Fenced    bool            `json:"fenced"`
	ExitCode  int             `json:"exit_code"`
	Losses    []Loss          `json:"losses"`
	// FileLosses are files of tenants the run did not approve that the command
	// removed (the first 1000; FilesLost counts them all).
	FileLosses []FileLoss       `json:"file_losses"`
	FilesLost  int              `json:"files_lost"`
	Removed    map[string]int64 `json:"rows_removed"` // per table, approved tenants
	// Retention is the retention policy's decision, for a retention purge.
	Retention *policy.RetentionDecision `json:"retention,omitempty"`
	// Trashed counts the rows the capturing fence kept while the command ran: rows
	// it deleted without approval (and any other session's meanwhile). They are not
	// lost: `trash save` then `restore` bring them back.
	Trashed int64 `json:"trash_rows"`
	saved   map[string]*snapshot.Snapshot
}

// SnapshotRef names one snapshot the run took.
type SnapshotRef struct {
	Tenant   uuid.UUID `json:"tenant"`
	Snapshot uuid.UUID `json:"snapshot"`
}

// Saved sums the run's snapshots: what was saved before the purge ran.
func (r *Result) Saved() snapshot.Totals {
	var t snapshot.Totals
	for _, m := range r.saved {
		mt := m.Totals
		t.Tables += mt.Tables
		t.Rows += mt.Rows
		t.Files += mt.Files
		t.FilesBytes += mt.FilesBytes
		t.RawBytes += mt.RawBytes
		t.StoredBytes += mt.StoredBytes
		t.Missing += mt.Missing
		t.OutsideRoot += mt.OutsideRoot
	}
	return t
}

// CommandError carries the purge command's own failure: its exit code is the
// guard's.
type CommandError struct {
	Code int
	Err  error
}

func (e *CommandError) Error() string { return fmt.Sprintf("guard: purge command: %v", e.Err) }
func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the command's status.
func (e *CommandError) ExitCode() int { return e.Code }

// Run guards one purge. It returns a *policy.RefusedError when the policy refuses
// (the command never runs), a *BlastRadiusError when rows went that should not
// have, a *CommandError when the command failed, or another error.
func Run(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ApprovalTTL <= 0 {
		o.ApprovalTTL = time.Hour
	}
	res, conn, g, release, err := start(ctx, cfg, o.NoWait, o.Snapshot.Graph, o.Command, o.Log)
	if err != nil {
		return res, err
	}
	defer release()
	run := res.Run
	res.Decision, err = decide(ctx, conn, g, o.Activity, o.Input, o.Rules, o.Now())
	if err != nil {
		return res, err
	}
	if err := res.Decision.Err(); err != nil {
		o.Log.Warn("deletion set refused by policy: the purge does not run", "violations", len(res.Decision.Violations))
		return res, err
	}
	present := presentTargets(res.Decision)
	o.Log.Info("deletion set allowed", "targets", len(res.Decision.Targets), "present", len(present))

	if len(present) > 0 {
		if err := res.save(ctx, cfg, store, o.Snapshot, present, o.Reason, "guard run"); err != nil {
			return res, err
		}
	}
	if testHookBeforeCount != nil {
		testHookBeforeCount()
	}
	before, err := count(ctx, conn, g)
	if err != nil {
		return res, err
	}
	fc, err := newFileCheck(ctx, conn, g, o.Snapshot.Files, res.saved)
	if err != nil {
		return res, err
	}
	if err := fc.before(ctx, conn); err != nil {
		return res, err
	}
	res.Fenced, err = arm(ctx, conn, run, res, o)
	if err != nil {
		return res, err
	}
	mark, err := trashMark(ctx, conn)
	if err != nil {
		return res, err
	}
	code, cmdErr := runCommand(ctx, o, res)
	res.ExitCode = code

	// The purge is over (or was interrupted): withdraw the approvals and look at what
	// it did, even if our own context ended.
	after := context.WithoutCancel(ctx)
	if res.Fenced {
		if err := fence.Disarm(after, conn, run); err != nil {
			o.Log.Error("could not withdraw the fence approvals; they expire on their own", "run", run, "err", err)
		}
	}
	counted, err := count(after, conn, g)
	if err != nil {
		return res, err
	}
	res.Removed = removed(before, counted, res.saved)
	res.Losses = blastRadius(before, counted, res.saved)
	if res.Trashed, err = mark.count(after, conn); err != nil {
		return res, err
	}
	if err := fc.after(after, conn); err != nil {
		return res, err
	}
	res.FileLosses, res.FilesLost = fc.lost, fc.nLost
	if err := res.verdict(code, cmdErr); err != nil {
		return res, err
	}
	if o.Input.HasSourceOfTruth {
		if err := repository.PutState(after, store, repository.State{SourceOfTruthSize: len(o.Input.SourceOfTruth), At: o.Now().UTC()}); err != nil {
			o.Log.Warn("could not record the source of truth's size for the next run", "err", err)
		}
	}
	return res, nil
}

// start is the first step of both guarded runs: with a command to run, a new run id,
// the lock, a connection and the tenant graph. The caller releases.
func start(ctx context.Context, cfg *pgx.ConnConfig, noWait bool, graph profile.Tenants, command []string, log *slog.Logger) (*Result, *pgx.Conn, *catalog.Graph, func(), error) {
	if len(command) == 0 {
		return nil, nil, nil, nil, errors.New("guard: no purge command given")
	}
	res, err := newResult()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	conn, g, release, err := begin(ctx, cfg, noWait, graph, log)
	if err != nil {
		return res, nil, nil, nil, err
	}
	return res, conn, g, release, nil
}

// verdict is the last step of both guarded runs: a loss outranks the command's own
// failure (the operator must learn what went), and a failed command passes its status
// on.
func (res *Result) verdict(code int, cmdErr error) error {
	if res.Losses == nil {
		res.Losses = []Loss{}
	}
	if res.FileLosses == nil {
		res.FileLosses = []FileLoss{}
	}
	if len(res.Losses) > 0 || res.FilesLost > 0 {
		return &BlastRadiusError{Losses: res.Losses, Files: res.FileLosses, FilesLost: res.FilesLost, Trashed: res.Trashed}
	}
	if cmdErr != nil {
		return &CommandError{Code: code, Err: cmdErr}
	}
	return nil
}

func newResult() (*Result, error) {
	run, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	return &Result{Run: run, Snapshots: []SnapshotRef{}, Losses: []Loss{}, FileLosses: []FileLoss{}, Removed: map[string]int64{}, saved: map[string]*snapshot.Snapshot{}}, nil
}

// begin takes purgeguard's lock, then opens the guard's own connection and reads the
// tenant graph; release closes both, the lock last.
func begin(ctx context.Context, cfg *pgx.ConnConfig, noWait bool, co profile.Tenants, log *slog.Logger) (*pgx.Conn, *catalog.Graph, func(), error) {
	unlock, err := lock(ctx, cfg, noWait, log)
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		unlock()
		return nil, nil, nil, fmt.Errorf("guard: connect: %w", err)
	}
	release := func() {
		conn.Close(context.WithoutCancel(ctx))
		unlock()
	}
	g, err := catalog.Load(ctx, conn, co)
	if err != nil {
		release()
		return nil, nil, nil, fmt.Errorf("guard: %w", err)
	}
	return conn, g, release, nil
}

// presentTargets are the targets the database holds: an absent one has nothing to
// save (the policy reports it as a note).
func presentTargets(d policy.Decision) []uuid.UUID {
	absent := map[uuid.UUID]bool{}
	for _, n := range d.Notes {
		if n.Rule == policy.RuleAbsentFromDatabase {
			for _, t := range n.Tenants {
				absent[t] = true
			}
		}
	}
	var out []uuid.UUID
	for _, t := range d.Targets {
		if !absent[t] {
			out = append(out, t)
		}
	}
	return out
}

// save snapshots tenants, verifies the snapshots and records them in the result.
func (res *Result) save(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, so snapshot.Options,
	tenants []uuid.UUID, reason, defaultReason string) error {
	so.Tenants, so.Reason = tenants, reason
	if so.Reason == "" {
		so.Reason = defaultReason + " " + res.Run.String()
	}
	ms, err := snapshot.Run(ctx, cfg, store, so)
	if err != nil {
		return err
	}
	if err := verifyAll(ctx, store, ms); err != nil {
		return err
	}
	for i := range ms {
		m := &ms[i]
		res.saved[m.Tenant.String()] = m
		res.Snapshots = append(res.Snapshots, SnapshotRef{Tenant: m.Tenant, Snapshot: m.ID})
	}
	return nil
}

// verifyAll re-reads each committed snapshot from storage, manifest first, and checks
// every object it names: what the purge may rely on is what storage holds. An
// encrypted snapshot is checked without its key, as the host that wrote it holds
// none: every object its envelope lists is there, of the size and SHA-256 written.
func verifyAll(ctx context.Context, store storage.Store, ss []snapshot.Snapshot) error {
	chk, err := repository.NewChecker(store)
	if err != nil {
		return err
	}
	defer chk.Close()
	for _, s := range ss {
		ref := archive.SnapshotRef{Tenant: s.Tenant, ID: s.ID}
		sealed, err := repository.IsSealed(ctx, store, ref)
		if err != nil {
			return fmt.Errorf("guard: snapshot %s of tenant %s: %w", s.ID, s.Tenant, err)
		}
		if sealed {
			probs, err := repository.VerifySealed(ctx, store, ref, nil)
			if err != nil {
				return err
			}
			if len(probs) > 0 {
				return fmt.Errorf("guard: snapshot %s of tenant %s fails verification, the purge does not run: %w", s.ID, s.Tenant, errors.Join(probs...))
			}
			continue
		}
		m, err := repository.Manifest(ctx, store, ref)
		if err != nil {
			return fmt.Errorf("guard: snapshot %s of tenant %s: %w", s.ID, s.Tenant, err)
		}
		probs, err := chk.Verify(ctx, m, nil)
		if err != nil {
			return err
		}
		if len(probs) > 0 {
			return fmt.Errorf("guard: snapshot %s of tenant %s fails verification, the purge does not run: %w", m.ID, m.Tenant, errors.Join(probs...))
		}
	}
	return nil
}

// arm approves exactly the snapshotted targets at the fence, if it is installed.
func arm(ctx context.Context, conn *pgx.Conn, run uuid.UUID, res *Result, o Options) (bool, error) {
	st, err := fence.Status(ctx, conn)
	if err != nil {
		return false, err
	}
	if !st.Installed {
		return false, nil
	}
	expires := o.Now().Add(o.ApprovalTTL)
	var approvals []fence.Approval
	for _, s := range res.Snapshots {
		approvals = append(approvals, fence.Approval{Tenant: s.Tenant.String(), Snapshot: s.Snapshot, Run: run, ExpiresAt: expires})
	}
	if len(approvals) == 0 {
		return true, nil
	}
	if err := fence.Arm(ctx, conn, run, approvals); err != nil {
		return false, err
	}
	return true, nil
}

// runCommand runs the purge with the approvals in its environment and its streams
// passed through. A signal that ends our context is passed on to it; the guard
// then waits for it to exit before checking what it did.
func runCommand(ctx context.Context, o Options, res *Result) (int, error) {
	var approved, snaps []string
	for _, s := range res.Snapshots {
		approved = append(approved, s.Tenant.String())
		snaps = append(snaps, s.Tenant.String()+":"+s.Snapshot.String())
	}
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Env = append(os.Environ(), EnvApproved+"="+strings.Join(approved, ","), EnvSnapshots+"="+strings.Join(snaps, ","))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	o.Log.Info("running the purge command", "command", o.Command[0], "approved", len(approved))
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("start %s: %w", o.Command[0], err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), err
		}
		return ee.ExitCode(), err
	}
	return 1, err
}

// testHookBeforeCount runs between the snapshots and the counts: a test writes a
// row there, which the purge then removes without a copy.
var testHookBeforeCount func()
