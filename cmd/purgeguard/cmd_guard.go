package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/policy"
)

func newGuardCommand() *cli.Command {
	return &cli.Command{
		Name:      "guard",
		Usage:     "check, snapshot and verify, then run the purge COMMAND and check its blast radius",
		ArgsUsage: "-- COMMAND [ARGS...]",
		Description: `Runs the purge under protection, in this order:
  1. takes purgeguard's advisory lock (a second guard waits; --no-wait fails instead);
  2. runs the policy on the deletion set (as 'check' does): refused, COMMAND never runs;
  3. snapshots every target present in the database and verifies the snapshots;
  4. counts every tenant's rows in every table of the tenant graph;
  5. if the fence is installed, approves exactly the snapshotted targets;
  6. runs COMMAND with PURGEGUARD_APPROVED_TENANTS (comma-separated UUIDs) and
     PURGEGUARD_SNAPSHOTS (tenant:snapshot pairs) in its environment, its stdin,
     stdout and stderr passed through (stdout to stderr under -o json, so that
     stdout holds one JSON document), SIGINT/SIGTERM passed on;
  7. withdraws the approvals and counts again: no other tenant may have lost a row,
     and no approved tenant may have lost more rows of a table than its snapshot holds.
Every run has an id, printed with the result and kept in its audit record: 'purgeguard
history' lists the runs, 'purgeguard undo --run ID' restores what one took.

Exit status: COMMAND's own when all is well; 3 when refused (COMMAND never ran); 4
when the blast-radius check finds a loss (tenants, tables, counts and snapshots named).

With --retention it guards the scheduled retention purge instead (no deletion set):
it reads every tenant's retention cut-offs (see snapshot --help; the days come from
wazo-purge-db's own configuration, retention.purge_config), counts the rows newer
than them, refuses (exit 3, nothing saved or run) a purge that would take more than
policy.retention allows (see check --help), saves and verifies what the purge will remove (snapshot
--retention), runs COMMAND, and checks that no row newer than its tenant's cut-off
went (or lost its recording), that no table outside the purge's reach lost a row,
and that no tenant lost more rows of a table than its snapshot holds. The command
must finish within --margin of the start, or the rows it then reaches count as
losses.

Examples (call-logd's tenant sync; its nightly retention purge):
   purgeguard guard --source-of-truth https://localhost:9497/api/auth/0.1/tenants \
       --source-of-truth-header "X-Auth-Token: $TOKEN" -- wazo-call-logd-sync-db
   purgeguard guard --retention -- wazo-purge-db`,
		Flags: []cli.Flag{newDeleteFlag(), newSourceFlag(), newHeaderFlag(), newReasonFlag(), newDatabaseURLFlag(), newRetentionFlag("guard the scheduled retention purge instead of a tenant purge (config: retention): every tenant"), newMarginFlag(), newPurgeDaysFlag(),
			&cli.BoolFlag{Name: "no-wait", Usage: "fail instead of waiting when another guard holds the lock"},
			newJobsFlag(),
		},
		Action: runGuard,
	}
}

func runGuard(c *cli.Context) error {
	e := getEnv(c)
	command := c.Args().Slice()
	if len(command) == 0 {
		return usagef("guard: give the purge command after --, e.g. purgeguard guard --delete f.txt -- ./purge.sh")
	}
	if c.Bool(flagRetention) {
		return runGuardRetention(c, e, command)
	}
	if c.IsSet(flagMargin) || c.IsSet(flagPurgeDays) {
		return usagef("--margin and --purge-days go with --retention")
	}
	store, in, act, err := decisionSetup(c, e)
	if err != nil {
		return err
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	so, prog, err := snapshotOptions(c, e)
	if err != nil {
		return err
	}
	if err := snapshotsTo(c.Context, e, store, &so); err != nil {
		return err
	}
	res, err := guard.Run(c.Context, cfg, store, guard.Options{
		Input: in, Rules: e.cfg.PolicyRules(), Activity: act, Reason: c.String(flagReason),
		NoWait: c.Bool("no-wait"), Command: command, Snapshot: so,
		Stdin: c.App.Reader, Stdout: commandStdout(c, e), Stderr: c.App.ErrWriter, Log: e.log,
	})
	prog.done(err == nil)
	return guardOutcome(c, e, archive.ScopeTenant, command, res, err)
}

// runGuardRetention guards the scheduled retention purge.
func runGuardRetention(c *cli.Context, e *env, command []string) error {
	for _, f := range []string{flagDelete, flagSource, flagHeader} {
		if c.IsSet(f) {
			return usagef("--%s has no place with --retention: a retention purge has no deletion set", f)
		}
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	so, prog, err := snapshotOptions(c, e)
	if err != nil {
		return err
	}
	if so.Retention, err = retentionOptions(c, e); err != nil {
		return err
	}
	if err := snapshotsTo(c.Context, e, store, &so); err != nil {
		return err
	}
	res, err := guard.RunRetention(c.Context, cfg, store, guard.RetentionOptions{
		Snapshot: so, Reason: c.String(flagReason), NoWait: c.Bool("no-wait"), Command: command,
		Stdin: c.App.Reader, Stdout: commandStdout(c, e), Stderr: c.App.ErrWriter, Log: e.log,
		Rules: e.cfg.RetentionRules(),
	})
	prog.done(err == nil)
	return guardOutcome(c, e, archive.ScopeRetention, command, res, err)
}

// guardOutcome audits a guarded run and turns its result into output and an exit
// status.
func guardOutcome(c *cli.Context, e *env, scope string, command []string, res *guard.Result, err error) error {
	writeGuardAudit(c, e, scope, command, res, err)
	if res == nil {
		return err
	}
	saved := res.Saved()
	e.saved(saved.Rows, saved.StoredBytes)
	var refused *policy.RefusedError
	var blast *guard.BlastRadiusError
	var failed *guard.CommandError
	switch {
	case errors.As(err, &refused):
		if perr := e.emit(res, func(w io.Writer) {
			if res.Retention != nil {
				printRetentionDecision(w, *res.Retention)
			} else {
				printDecision(w, res.Decision)
			}
			fmt.Fprintln(w, "the purge command was not run")
		}); perr != nil {
			return perr
		}
		return &errReported{code: exitRefused}
	case errors.As(err, &blast):
		if perr := e.emit(res, func(w io.Writer) { printLosses(w, res) }); perr != nil {
			return perr
		}
		return &errReported{code: exitVerify}
	case errors.As(err, &failed):
		// The command failed, but purgeguard did its part: say what was saved and
		// that the blast radius is clean, then exit with the command's status.
		if perr := e.emit(res, func(w io.Writer) { printGuarded(w, res, "guarded purge FAILED") }); perr != nil {
			return perr
		}
		return &errReported{code: failed.ExitCode(), command: true}
	case err != nil:
		return err
	}
	e.log.Info("guarded purge done", "run", res.Run, "snapshots", len(res.Snapshots), "exit_code", res.ExitCode, "fenced", res.Fenced)
	return e.emit(res, func(w io.Writer) { printGuarded(w, res, "guarded purge done") })
}

// commandStdout is where the purge command's own output goes: through to stdout,
// except under -o json, where stdout holds purgeguard's one JSON document and the
// command's output goes to stderr with its logs.
func commandStdout(c *cli.Context, e *env) io.Writer {
	if e.json {
		return c.App.ErrWriter
	}
	return c.App.Writer
}

func printGuarded(w io.Writer, res *guard.Result, head string) {
	fmt.Fprintf(w, "%s (run %s): %d tenants approved and snapshotted, blast radius clean, command exit %d\n", head, res.Run, len(res.Snapshots), res.ExitCode)
	for _, s := range res.Snapshots {
		fmt.Fprintf(w, "  tenant %s: snapshot %s\n", s.Tenant, s.Snapshot)
	}
}

func printLosses(w io.Writer, res *guard.Result) {
	fmt.Fprintf(w, "BLAST RADIUS CHECK FAILED (run %s): %d losses (purge command exit %d)\n", res.Run, len(res.Losses)+res.FilesLost, res.ExitCode)
	for _, f := range res.FileLosses {
		lost := "was NOT approved and lost"
		if f.Why == guard.FileKeptRow {
			lost = "lost, from a row the retention purge KEEPS,"
		}
		fmt.Fprintf(w, "  tenant %s %s file %s (%s): restore with purgeguard files restore --under %s (from the file shield)\n",
			f.Tenant, lost, f.Path, f.Table, f.Path)
	}
	if n := res.FilesLost - len(res.FileLosses); n > 0 {
		fmt.Fprintf(w, "  and %d more files: purgeguard files lost lists them\n", n)
	}
	for _, l := range res.Losses {
		switch l.Kind {
		case guard.LossCollateral:
			fmt.Fprintf(w, "  tenant %s was NOT approved and lost %d rows of %s (%d -> %d)\n", l.Tenant, l.Before-l.After, l.Table, l.Before, l.After)
		case guard.LossNewer:
			fmt.Fprintf(w, "  tenant %s lost %d %s rows NEWER than its retention cut-off (%d -> %d): the purge took what it must keep\n", l.Tenant, l.Before-l.After, l.Table, l.Before, l.After)
		default:
			fmt.Fprintf(w, "  tenant %s lost %d rows of %s; snapshot %s holds %d: %d rows purged without a copy\n",
				l.Tenant, l.Before-l.After, l.Table, l.Snapshot, l.Saved, l.Before-l.After-l.Saved)
		}
	}
	if res.Trashed > 0 {
		fmt.Fprintf(w, "the capturing fence kept the %d rows deleted meanwhile in the trash: the loss is prevented, the command still misbehaved\n", res.Trashed)
		fmt.Fprintln(w, "restore with: purgeguard trash save, then purgeguard restore --tenant TENANT --snapshot SNAPSHOT (the trash snapshot it prints)")
		return
	}
	fmt.Fprintf(w, "restore every tenant of this run with: purgeguard undo --run %s --dry-run, then without --dry-run\n", res.Run)
}

// writeGuardAudit records a guarded run: what history lists and undo --run reads.
func writeGuardAudit(c *cli.Context, e *env, scope string, command []string, res *guard.Result, err error) {
	store, serr := openStore(c.Context, e)
	if serr != nil {
		return
	}
	var tenants []uuid.UUID
	a := newAudit(archive.AuditGuard, nil)
	a.Outcome = "done"
	a.Scope, a.Command = scope, redactCommand(command)
	detail := map[string]any{}
	if res != nil {
		a.Run = res.Run
		tenants = res.Decision.Targets
		for _, s := range res.Snapshots {
			a.Snapshots = append(a.Snapshots, archive.SnapshotRef{Tenant: s.Tenant, ID: s.Snapshot})
		}
		detail["run"], detail["decision"], detail["exit_code"], detail["losses"], detail["fenced"] = res.Run, res.Decision, res.ExitCode, res.Losses, res.Fenced
	}
	// Refused by the policy, not merely undecided: a run that failed before deciding
	// (the lock, the connection) has an empty decision and is "failed".
	var refused *policy.RefusedError
	if errors.As(err, &refused) {
		a.Outcome = "refused"
	}
	if err != nil && a.Outcome != "refused" {
		a.Outcome = "failed"
		detail["error"] = err.Error()
	}
	var blast *guard.BlastRadiusError
	var failed *guard.CommandError
	switch {
	case res == nil:
		detail["verdict"] = repository.VerdictNotReached
	case a.Outcome == "refused":
		detail["verdict"] = repository.VerdictRefused
	case errors.As(err, &blast):
		detail["verdict"] = repository.VerdictLosses
	case err == nil, errors.As(err, &failed):
		detail["verdict"] = repository.VerdictClean
	default:
		detail["verdict"] = repository.VerdictNotReached
	}
	a.Tenants = tenants
	a.Detail = jsonDetail(detail)
	if perr := repository.PutAudit(c.Context, store, a); perr != nil {
		e.log.Warn("audit record not written", "err", perr)
	}
}
