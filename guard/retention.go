package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// LossNewer: a retention purge removed (or emptied) rows newer than the tenant's
// cut-off, which it must never touch.
const LossNewer = "newer_than_cutoff"

// RetentionOptions says what to guard: a scheduled retention purge.
type RetentionOptions struct {
	// Snapshot carries the catalog, files, tuning and Retention; Tenants empty means
	// every tenant, as the purge itself does.
	Snapshot       snapshot.Options
	Reason         string
	NoWait         bool
	Command        []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Log            *slog.Logger
	// Rules bound what the purge may take (policy.DefaultRetentionRules for the
	// call-logd profile; the zero value refuses any removal); a purge over them is
	// refused, a *policy.RefusedError, before anything is saved or run.
	Rules policy.RetentionRules
}

// RunRetention guards a retention purge: lock; read every tenant's cut-offs and
// count its rows newer than them (and every table's rows); refuse a purge taking
// more than the rules allow; snapshot and verify what
// the purge will remove; run the command; count again. No row newer than its
// tenant's cut-off may go, no table the purge does not reach may lose a row, no
// tenant may lose more rows of a table than its snapshot holds, and no file named by
// a row the purge keeps may go. The cut-offs
// include the margin, so a purge that runs longer than the margin after they were
// read shows as a loss rather than passing unsaved rows.
func RunRetention(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o RetentionOptions) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Snapshot.Retention == nil {
		return nil, errors.New("guard: no retention configured")
	}
	res, conn, g, release, err := start(ctx, cfg, o.NoWait, o.Snapshot.Graph, o.Command, o.Log)
	if err != nil {
		return res, err
	}
	defer release()
	// A retention purge has no deletion set for the policy to refuse.
	res.Decision.Allowed = true
	tenants := o.Snapshot.Tenants
	if len(tenants) == 0 {
		if tenants, err = g.Tenants(ctx, conn); err != nil {
			return res, err
		}
	}
	// Read before the snapshot: its own cut-offs are then no earlier, so every row
	// older than these is in it.
	facts, err := readRetention(ctx, conn, g, *o.Snapshot.Retention, tenants)
	if err != nil {
		return res, err
	}
	d := policy.DecideRetention(facts.input, o.Rules)
	res.Retention = &d
	if !d.Allowed {
		res.Decision = policy.Decision{Allowed: false, Targets: []uuid.UUID{}, Violations: d.Violations}
		return res, d.Err()
	}
	scope, newerBefore := facts.scope, facts.newer
	reached := map[string]bool{}
	for _, t := range scope.Tables() {
		reached[t.Name.String()] = true
	}
	before, err := count(ctx, conn, g)
	if err != nil {
		return res, err
	}

	if err := res.save(ctx, cfg, store, o.Snapshot, tenants, o.Reason, "guard --retention run"); err != nil {
		return res, err
	}
	fc, err := newRetentionFileCheck(ctx, conn, g, o.Snapshot.Files, scope, tenants)
	if err != nil {
		return res, err
	}
	if err := fc.before(ctx, conn); err != nil {
		return res, err
	}

	if res.Fenced, err = armRetention(ctx, conn, res.Run, g, o.Snapshot.Retention.Rules(), facts.cutoffs); err != nil {
		return res, err
	}
	code, cmdErr := runCommand(ctx, Options{Command: o.Command, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Log: o.Log}, res)
	res.ExitCode = code
	after := context.WithoutCancel(ctx)
	if res.Fenced {
		if err := fence.Disarm(after, conn, res.Run); err != nil {
			o.Log.Error("could not withdraw the fence's retention approvals; they expire on their own", "run", res.Run, "err", err)
		}
	}
	newerAfter, err := countNewer(after, conn, scope)
	if err != nil {
		return res, err
	}
	counted, err := count(after, conn, g)
	if err != nil {
		return res, err
	}
	for kind, m := range newerBefore {
		for k, n := range m {
			if a := newerAfter[kind][k]; a < n {
				res.Losses = append(res.Losses, Loss{Kind: LossNewer, Tenant: k, Table: kind, Before: n, After: a})
			}
		}
	}
	// Every tenant is in the purge's reach, but only in the tables the scope
	// reaches: elsewhere any drop is collateral. A tenant without a snapshot had
	// nothing to lose.
	inReach := make(map[string]*snapshot.Snapshot, len(tenants))
	for _, t := range tenants {
		if m, ok := res.saved[t.String()]; ok {
			inReach[t.String()] = m
		} else {
			inReach[t.String()] = &snapshot.Snapshot{}
		}
	}
	res.Removed = removed(before, counted, inReach)
	for _, l := range blastRadius(before, counted, inReach) {
		if l.Kind == LossUnsaved && !reached[l.Table] {
			l.Kind, l.Saved, l.Snapshot = LossCollateral, 0, uuid.Nil
		}
		res.Losses = append(res.Losses, l)
	}
	if err := fc.after(after, conn); err != nil {
		return res, err
	}
	res.FileLosses, res.FilesLost = fc.lost, fc.nLost
	return res, res.verdict(code, cmdErr)
}

// countNewer counts, per kind and tenant, the rows the purge must leave alone.
func countNewer(ctx context.Context, q catalog.Querier, scope *catalog.Retention) (Counts, error) {
	out := Counts{}
	for _, n := range scope.NewerSQL() {
		m, err := countQuery(ctx, q, n.SQL)
		if err != nil {
			return nil, fmt.Errorf("guard: count %s rows newer than the cut-offs: %w", n.Kind, err)
		}
		out[n.Kind] = m
	}
	return out, nil
}

// countQuery reads a `SELECT tenant::text, count(*) ... GROUP BY 1`.
func countQuery(ctx context.Context, q catalog.Querier, sql string) (map[string]int64, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var k string
		var c int64
		if err := rows.Scan(&k, &c); err != nil {
			return nil, err
		}
		m[k] = c
	}
	return m, rows.Err()
}

// retentionApprovalTTL bounds how long the capturing fence lets a guarded
// retention purge's rows go without a copy, should the guard die before it
// withdraws the approvals.
const retentionApprovalTTL = time.Hour

// armRetention approves, at a capturing fence, what the snapshot just saved: each
// tenant's rows older than the cut-offs read before it (no later than the
// snapshot's own, so every such row is in it), for the command's duration. A
// refusing fence has nothing to approve for a retention purge (it guards the root).
func armRetention(ctx context.Context, conn *pgx.Conn, run uuid.UUID, g *catalog.Graph, rules []catalog.Rule, cutoffs map[uuid.UUID]map[string]time.Time) (bool, error) {
	st, err := fence.Status(ctx, conn)
	if err != nil {
		return false, err
	}
	if !st.Installed || st.Mode != fence.ModeCapture {
		return false, nil
	}
	approvals := retentionApprovals(g, rules, cutoffs, time.Now().Add(retentionApprovalTTL))
	if err := fence.ArmRetention(ctx, conn, run, approvals); err != nil {
		return false, err
	}
	return true, nil
}

// retentionApprovals renders the approvals of a retention purge of the tenants of
// cutoffs (per kind) under rules, each until expires. A rule emptying columns
// through a composite key cannot be checked row by row: it is left out, and what
// it empties is kept in the trash.
func retentionApprovals(g *catalog.Graph, rules []catalog.Rule, cutoffs map[uuid.UUID]map[string]time.Time, expires time.Time) []fence.RetentionApproval {
	var out []fence.RetentionApproval
	for tenant, cuts := range cutoffs {
		for _, r := range rules {
			a := fence.RetentionApproval{Tenant: tenant, Table: r.Table, TenantColumn: r.TenantColumn, TimeColumn: r.TimeColumn,
				Cutoff: cuts[r.Kind], ExpiresAt: expires}
			if !r.NullTable.IsZero() {
				i := slices.IndexFunc(g.FKs, func(fk catalog.FK) bool { return fk.Child == r.NullTable && fk.Parent == r.Table })
				if i < 0 || len(g.FKs[i].Columns) != 1 {
					continue
				}
				a.Null = &fence.NullRef{Table: r.NullTable, Column: g.FKs[i].Columns[0], RefColumn: g.FKs[i].RefColumns[0]}
			}
			out = append(out, a)
		}
	}
	return out
}
