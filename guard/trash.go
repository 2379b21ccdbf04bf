package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/trash"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// ErrNoTrash is returned by SaveTrash and ListTrash when the database has no trash
// (no fence installed, or one from before capture mode: install it again).
var ErrNoTrash = errors.New("the database has no purgeguard trash: install the fence (fence install --mode capture)")

// TrashOptions says how to save the trash.
type TrashOptions struct {
	// Snapshot carries the catalog, files and tuning; Tenants and Retention are
	// ignored.
	Snapshot snapshot.Options
	Reason   string
	NoWait   bool
	Log      *slog.Logger
}

// TrashResult is what a trash save did.
type TrashResult struct {
	// Recovered are the saves an earlier run committed but did not finish: their
	// rows were removed from the trash now.
	Recovered []TrashSaved `json:"recovered"`
	Saved     []TrashSaved `json:"saved"`
	// Unresolved rows have no tenant yet (see trash.Resolve): they stay.
	Unresolved int64 `json:"unresolved_rows"`
}

// TrashSaved is one tenant's trash rows turned into a snapshot.
type TrashSaved struct {
	Tenant       uuid.UUID `json:"tenant"`
	Snapshot     uuid.UUID `json:"snapshot"`
	Transactions int       `json:"transactions"`
	Rows         int64     `json:"rows"` // removed from the trash
}

// SaveTrash turns the trash into snapshots, one per tenant, under purgeguard's lock:
//
//  0. summarizes the trash index's page ranges not summarized yet (trash.Summarize);
//  1. finishes the saves a crashed run left: a journaled save whose manifest is
//     committed and verifies has its rows removed; one without a manifest is
//     forgotten (its rows stay, its objects are prune's);
//  2. rewrites rows kept before their table's columns changed (trash.Reshape),
//     attributes rows to tenants (trash.Resolve) and commits that;
//  3. reads, per tenant, the transactions of its rows, and journals each save
//     (snapshot id, tenant, transactions) before anything is written;
//  4. saves every tenant's rows and files (snapshot.RunTrash) and verifies them;
//  5. only then removes, per tenant, exactly the rows of those transactions, and
//     its journal entry, in one transaction.
//
// A crash anywhere leaves every row either in the trash or in a committed, verified
// snapshot; the next run finishes or forgets the journaled saves, so no row is saved
// twice. The trash never drops a row on its own.
func SaveTrash(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o TrashOptions) (*TrashResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	res := &TrashResult{Recovered: []TrashSaved{}, Saved: []TrashSaved{}}
	phase := phaseTimer(o.Log)
	conn, g, release, err := begin(ctx, cfg, o.NoWait, o.Snapshot.Graph, o.Log)
	if err != nil {
		return nil, err
	}
	defer release()
	if ok, err := trash.Exists(ctx, conn); err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("guard: trash save: %w", ErrNoTrash)
	}
	phase("lock and connect")
	// Within a lock timeout: a VACUUM of the trash holds the lock summarizing takes.
	// The save reads correctly without it, only slower: a failure is a warning.
	var summarized int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
			return err
		}
		summarized, err = trash.Summarize(ctx, tx)
		return err
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "55P03":
		o.Log.Warn("trash index: not summarized, another process held the trash (a VACUUM?); the save reads more of the trash", "err", err)
	case ctx.Err() != nil:
		return res, fmt.Errorf("guard: trash save: %w", ctx.Err())
	case err != nil:
		o.Log.Warn("trash index: not summarized; the save reads more of the trash", "err", err)
	case summarized > 0:
		o.Log.Debug("trash index: page ranges summarized", "ranges", summarized)
	}
	phase("index summarized")
	if res.Recovered, err = finishJournal(ctx, conn, store, o.Log); err != nil {
		return res, err
	}
	phase("journal of earlier saves")
	var resolved, reshaped int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if reshaped, err = trash.Reshape(ctx, tx); err != nil {
			return err
		}
		resolved, err = trash.Resolve(ctx, tx, g)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("guard: trash save: %w", err)
	}
	if reshaped > 0 {
		o.Log.Info("trash rows kept before their table's columns changed, rewritten into its columns now", "rows", reshaped)
	}
	phase("attribution")
	if res.Unresolved, err = trash.CountUnresolved(ctx, conn); err != nil {
		return res, fmt.Errorf("guard: trash save: %w", err)
	}
	txs, err := trash.Transactions(ctx, conn)
	if err != nil {
		return res, fmt.Errorf("guard: trash save: %w", err)
	}
	phase("transactions read")
	var attributed int64
	for _, list := range txs {
		for _, t := range list {
			attributed += t.Rows
		}
	}
	o.Log.Info("trash read", "rows", attributed+res.Unresolved, "attributed_now", resolved, "unattributed", res.Unresolved)
	if res.Unresolved > 0 {
		o.Log.Warn("trash rows with no tenant found stay in the trash; see purgeguard trash list", "rows", res.Unresolved)
	}
	if len(txs) == 0 {
		return res, nil
	}
	var batches []snapshot.TrashBatch
	for tenant, list := range txs {
		id, err := uuid.NewV7()
		if err != nil {
			return res, err
		}
		b := snapshot.TrashBatch{Tenant: tenant, ID: id, Transactions: []snapshot.TrashTransaction{}}
		for _, t := range list {
			b.Xids = append(b.Xids, t.Xid)
			b.Transactions = append(b.Transactions, snapshot.TrashTransaction(t))
		}
		batches = append(batches, b)
	}
	if err := journal(ctx, conn, batches); err != nil {
		return res, err
	}
	phase("journal")
	so := o.Snapshot
	so.Reason = o.Reason
	if so.Reason == "" {
		so.Reason = "trash save"
	}
	ms, err := snapshot.RunTrash(ctx, cfg, store, so, batches)
	if err != nil {
		// Nothing committed: the journal entries name no manifest; forget them.
		forgetJournal(context.WithoutCancel(ctx), conn, batches, o.Log)
		return res, err
	}
	phase("snapshots written and committed")
	if testHookAfterTrashCommit != nil {
		testHookAfterTrashCommit()
	}
	byTenant := map[uuid.UUID]snapshot.TrashBatch{}
	for _, b := range batches {
		byTenant[b.Tenant] = b
	}
	for _, m := range ms {
		b := byTenant[m.Tenant]
		n, truncated, err := finish(ctx, conn, store, m.Tenant, m.ID, b.Xids, sole(txs, m.Tenant), phase)
		if err != nil {
			return res, err
		}
		res.Saved = append(res.Saved, TrashSaved{Tenant: m.Tenant, Snapshot: m.ID, Transactions: len(b.Xids), Rows: n})
		o.Log.Info("trash rows saved and removed from the trash", "tenant", m.Tenant, "snapshot", m.ID, "rows", n, "truncated", truncated)
	}
	return res, nil
}

// testHookAfterTrashCommit runs between the commit of the trash snapshots and the
// removal of their rows: a test stops the save there, as a crash would.
var testHookAfterTrashCommit func()

// journal records the saves about to run, committed before anything is written.
func journal(ctx context.Context, conn *pgx.Conn, batches []snapshot.TrashBatch) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, b := range batches {
			xids := make([]string, len(b.Xids))
			for i, x := range b.Xids {
				xids[i] = fmt.Sprint(x)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO purgeguard.trash_save (snapshot, tenant, xids) VALUES ($1, $2, $3::text[]::xid8[])",
				b.ID, b.Tenant.String(), xids); err != nil {
				return fmt.Errorf("guard: trash save: journal the save of tenant %s: %w", b.Tenant, err)
			}
		}
		return nil
	})
}

func forgetJournal(ctx context.Context, conn *pgx.Conn, batches []snapshot.TrashBatch, log *slog.Logger) {
	ids := make([]uuid.UUID, len(batches))
	for i, b := range batches {
		ids[i] = b.ID
	}
	if _, err := conn.Exec(ctx, "DELETE FROM purgeguard.trash_save WHERE snapshot = ANY ($1)", ids); err != nil {
		log.Warn("journal of the failed trash save left; the next save clears it", "err", err)
	}
}

// finishJournal completes or forgets the saves an earlier run journaled.
func finishJournal(ctx context.Context, conn *pgx.Conn, store storage.Store, log *slog.Logger) ([]TrashSaved, error) {
	type entry struct {
		id     uuid.UUID
		tenant uuid.UUID
		xids   []uint64
	}
	rows, err := conn.Query(ctx, "SELECT snapshot, tenant, (SELECT array_agg(x::text::numeric::bigint) FROM unnest(xids) x) FROM purgeguard.trash_save ORDER BY created_at, snapshot")
	if err != nil {
		return nil, fmt.Errorf("guard: trash save: read the journal: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (entry, error) {
		var e entry
		var t string
		var xids []int64
		if err := r.Scan(&e.id, &t, &xids); err != nil {
			return e, err
		}
		for _, x := range xids {
			e.xids = append(e.xids, uint64(x))
		}
		e.tenant, err = uuid.Parse(t)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("guard: trash save: read the journal: %w", err)
	}
	out := []TrashSaved{}
	for _, e := range entries {
		_, err := repository.IsSealed(ctx, store, archive.SnapshotRef{Tenant: e.tenant, ID: e.id}) // committed either way?
		if errors.Is(err, repository.ErrNoSnapshot) {
			log.Info("an earlier trash save did not commit; its rows stay in the trash", "tenant", e.tenant, "snapshot", e.id)
			if _, err := conn.Exec(ctx, "DELETE FROM purgeguard.trash_save WHERE snapshot = $1", e.id); err != nil {
				return out, fmt.Errorf("guard: trash save: clear the journal: %w", err)
			}
			continue
		}
		if err != nil {
			return out, fmt.Errorf("guard: trash save: journaled snapshot %s: %w", e.id, err)
		}
		n, _, err := finish(ctx, conn, store, e.tenant, e.id, e.xids, nil, func(string) {})
		if err != nil {
			return out, err
		}
		log.Info("finished an earlier trash save: its rows are removed from the trash", "tenant", e.tenant, "snapshot", e.id, "rows", n)
		out = append(out, TrashSaved{Tenant: e.tenant, Snapshot: e.id, Transactions: len(e.xids), Rows: n})
	}
	return out, nil
}

// finish verifies a committed trash snapshot, then removes its rows from the trash
// and its journal entry in one transaction; truncated says whether the trash was
// emptied whole (trash.Remove).
func finish(ctx context.Context, conn *pgx.Conn, store storage.Store, tenant, id uuid.UUID, xids []uint64, sole *trash.Sole, phase func(string)) (n int64, truncated bool, err error) {
	if err := verifyAll(ctx, store, []snapshot.Snapshot{{Tenant: tenant, ID: id}}); err != nil {
		return 0, false, fmt.Errorf("guard: trash snapshot %s: its rows stay in the trash: %w", id, err)
	}
	phase("verify")
	// READ COMMITTED whatever the server's default: Remove's check after its lock
	// must see the rows a capture committed while it waited (trash.Remove).
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var err error
		if n, truncated, err = trash.Remove(ctx, tx, tenant, xids, sole); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM purgeguard.trash_save WHERE snapshot = $1", id)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("guard: trash snapshot %s committed, removing its rows from the trash: %w", id, err)
	}
	phase("removal from the trash")
	return n, truncated, nil
}

// sole tells what txs, the trash's transactions read under the save's lock after
// the attribution, says of tenant's: its rows, if no other tenant has a row in
// them (nil otherwise).
func sole(txs map[uuid.UUID][]trash.Transaction, tenant uuid.UUID) *trash.Sole {
	mine := map[uint64]bool{}
	s := &trash.Sole{}
	for _, t := range txs[tenant] {
		mine[t.Xid] = true
		s.Rows += t.Rows
	}
	for other, list := range txs {
		if other == tenant {
			continue
		}
		for _, t := range list {
			if mine[t.Xid] {
				return nil
			}
		}
	}
	return s
}

// phaseTimer returns a function logging, at debug level, the time since its last
// call (or since phaseTimer) under the name of the phase that took it.
func phaseTimer(log *slog.Logger) func(name string) {
	last := time.Now()
	return func(name string) {
		now := time.Now()
		log.Debug("trash save phase", "phase", name, "seconds", now.Sub(last).Seconds())
		last = now
	}
}

// TrashGroup is what the trash holds of one tenant (nil: not attributed yet), table
// and capturing transaction.
type TrashGroup struct {
	Tenant *uuid.UUID `json:"tenant"`
	Table  string     `json:"table"`
	Xid    uint64     `json:"xid"`
	First  time.Time  `json:"first"`
	Last   time.Time  `json:"last"`
	Rows   int64      `json:"rows"`
}

// ListTrash reads what the trash holds, per tenant, table and transaction (tenant
// nil: all). It first attributes what it can, as a save would, unless a guard, a
// restore or a save holds purgeguard's lock: it lists without waiting, and rows
// not attributed yet show without a tenant.
func ListTrash(ctx context.Context, cfg *pgx.ConnConfig, o TrashOptions, tenant *uuid.UUID) ([]TrashGroup, error) {
	conn, g, err := connectGraph(ctx, cfg, o.Snapshot.Graph)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if ok, err := trash.Exists(ctx, conn); err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("guard: trash list: %w", ErrNoTrash)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := LockTx(ctx, tx); err != nil {
			return err
		}
		if _, err := trash.Reshape(ctx, tx); err != nil {
			return err
		}
		_, err := trash.Resolve(ctx, tx, g)
		return err
	})
	if errors.Is(err, ErrBusy) {
		if o.Log != nil {
			o.Log.Info("another purgeguard run holds the lock: listing without attributing new rows")
		}
	} else if err != nil {
		return nil, fmt.Errorf("guard: trash list: %w", err)
	}
	groups, err := trash.List(ctx, conn, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]TrashGroup, len(groups))
	for i, gr := range groups {
		out[i] = TrashGroup(gr)
	}
	return out, nil
}

// TrashSummary is what the trash holds of one tenant (nil: not attributed yet) and,
// when summed per table, one table, over all the transactions that kept it.
type TrashSummary struct {
	Tenant       *uuid.UUID `json:"tenant"`
	Table        string     `json:"table,omitempty"`
	Transactions int        `json:"transactions"`
	First        time.Time  `json:"first"`
	Last         time.Time  `json:"last"`
	Rows         int64      `json:"rows"`
}

// SummarizeTrash sums groups per tenant and table (perTable) or per tenant, in the
// order of each one's oldest row (groups come oldest first): a service that deletes
// row by row leaves a transaction, so a group, per row.
func SummarizeTrash(groups []TrashGroup, perTable bool) []TrashSummary {
	type key struct {
		tenant uuid.UUID
		known  bool
		table  string
	}
	var out []TrashSummary
	at := map[key]int{}
	xids := map[key]map[uint64]bool{}
	for _, g := range groups {
		k := key{known: g.Tenant != nil}
		if g.Tenant != nil {
			k.tenant = *g.Tenant
		}
		if perTable {
			k.table = g.Table
		}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k], xids[k] = i, map[uint64]bool{}
			out = append(out, TrashSummary{Tenant: g.Tenant, Table: k.table, First: g.First, Last: g.Last})
		}
		sm := &out[i]
		if !xids[k][g.Xid] {
			xids[k][g.Xid] = true
			sm.Transactions++
		}
		if g.First.Before(sm.First) {
			sm.First = g.First
		}
		if g.Last.After(sm.Last) {
			sm.Last = g.Last
		}
		sm.Rows += g.Rows
	}
	return out
}

// connectGraph opens a connection and reads the tenant graph.
func connectGraph(ctx context.Context, cfg *pgx.ConnConfig, co catalog.Options) (*pgx.Conn, *catalog.Graph, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("guard: connect: %w", err)
	}
	g, err := catalog.Load(ctx, conn, co)
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("guard: %w", err)
	}
	return conn, g, nil
}

// TrashStats are the trash's size and age.
type TrashStats struct {
	Rows       int64      `json:"rows"`
	Unresolved int64      `json:"unresolved"` // rows no tenant is known for yet
	Oldest     *time.Time `json:"oldest,omitempty"`
}

// ReadTrashStats reads the trash's size and oldest row, for metrics.
func ReadTrashStats(ctx context.Context, cfg *pgx.ConnConfig) (TrashStats, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return TrashStats{}, fmt.Errorf("guard: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	st, err := trash.ReadStats(ctx, conn)
	return TrashStats(st), err
}

// trashCounter counts the rows the capturing fence keeps from a moment on.
type trashCounter struct {
	exists bool
	since  time.Time
}

// trashMark notes the database's clock before a command runs, if the database has
// a trash.
func trashMark(ctx context.Context, conn *pgx.Conn) (trashCounter, error) {
	var m trashCounter
	var err error
	if m.exists, err = trash.Exists(ctx, conn); err != nil || !m.exists {
		return m, err
	}
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&m.since); err != nil {
		return m, fmt.Errorf("guard: read the clock: %w", err)
	}
	return m, nil
}

// count returns the rows kept since the mark.
func (m trashCounter) count(ctx context.Context, conn *pgx.Conn) (int64, error) {
	if !m.exists {
		return 0, nil
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM purgeguard.trash WHERE at >= $1", m.since).Scan(&n); err != nil {
		return 0, fmt.Errorf("guard: count the rows the fence kept: %w", err)
	}
	return n, nil
}
