package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/trash"
	"github.com/purgeguard/purgeguard/storage"
)

// TrashBatch is one tenant's rows of the capturing fence's trash to save as one
// snapshot: those of the transactions Xids. The caller chooses the snapshot's ID, so
// that it can record the save before it begins and finish it after a crash.
type TrashBatch struct {
	Tenant uuid.UUID
	ID     uuid.UUID
	Xids   []uint64
	// Transactions are the transactions of Xids as the caller read them from the
	// trash (trash.Transactions), recorded in the manifest; nil: RunTrash reads
	// them (a second scan of the whole trash).
	Transactions []TrashTransaction
}

// TrashTransaction is one capturing transaction's rows of one tenant.
type TrashTransaction struct {
	Xid   uint64
	First time.Time
	Last  time.Time
	Rows  int64
}

// RunTrash saves trash rows as ordinary snapshots, one per batch, all from one
// consistent read, with the scope "trash" and the transactions in the manifest. Every
// table of the graph is read from the trash instead of the live table (the rows are
// gone from there); files named by those rows are read from disk as Run reads them.
// Tenants need not be in the root table any more. Options.Tenants and
// Options.Retention are ignored. On error nothing is committed.
//
// Files a row names but the disk no longer holds (call-logd's remove_tenant()
// unlinks them before it deletes the rows) are taken from Options.Shield, its link
// or its blob, as Run takes them, and recorded as missing only when the shield has
// no copy either.
func RunTrash(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options, batches []TrashBatch) ([]Snapshot, error) {
	o.defaults()
	o.Retention, o.Tenants = nil, nil
	if len(batches) == 0 {
		return nil, errors.New("snapshot: no trash batch given")
	}
	xids := map[uuid.UUID][]uint64{}
	for _, b := range batches {
		switch {
		case b.Tenant == uuid.Nil || b.ID == uuid.Nil:
			return nil, errors.New("snapshot: trash batch without a tenant or an id")
		case len(b.Xids) == 0:
			return nil, fmt.Errorf("snapshot: trash batch of tenant %s without transactions", b.Tenant)
		case xids[b.Tenant] != nil:
			return nil, fmt.Errorf("snapshot: tenant %s in two trash batches", b.Tenant)
		}
		xids[b.Tenant] = b.Xids
	}
	r, err := openRead(ctx, cfg, o.Jobs)
	if err != nil {
		return nil, err
	}
	defer r.close()
	g, err := catalog.Load(ctx, r.coord, o.Graph)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	files, err := fileColumns(g, o.Files, o.Log)
	if err != nil {
		return nil, err
	}
	sel, err := trash.NewSelector(ctx, r.coord, xids)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	txs := map[uuid.UUID][]TrashTransaction{}
	for _, b := range batches {
		txs[b.Tenant] = b.Transactions
	}
	for _, b := range batches {
		if b.Transactions != nil {
			continue
		}
		read, err := trash.Transactions(ctx, r.coord)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		txs = map[uuid.UUID][]TrashTransaction{}
		for tenant, list := range read {
			for _, tx := range list {
				txs[tenant] = append(txs[tenant], TrashTransaction(tx))
			}
		}
		break
	}
	e := &exporter{o: o, g: g, sel: sel, tables: g.Tables, store: store, blobs: newBlobSet()}
	ms := make([]*archive.Manifest, len(batches))
	for i, b := range batches {
		scope := archive.Scope{Kind: archive.ScopeTrash}
		for _, tx := range txs[b.Tenant] {
			if slices.Contains(b.Xids, tx.Xid) {
				scope.Transactions = append(scope.Transactions, archive.Transaction{Xid: tx.Xid, First: tx.First, Last: tx.Last, Rows: tx.Rows})
			}
		}
		if len(scope.Transactions) != len(b.Xids) {
			return nil, fmt.Errorf("snapshot: trash of tenant %s: %d of its %d transactions hold rows", b.Tenant, len(scope.Transactions), len(b.Xids))
		}
		ms[i] = &archive.Manifest{
			FormatVersion: archive.FormatVersion,
			ID:            b.ID,
			Tenant:        b.Tenant,
			Reason:        o.Reason,
			CreatedAt:     o.Now().UTC(),
			ToolVersion:   o.ToolVersion,
			ServerVersion: r.serverVersion,
			Scope:         scope,
			Root:          archive.Root{Schema: g.Root.Schema, Table: g.Root.Table, Key: g.Key},
			Tables:        []archive.Table{},
			Files:         []archive.File{},
		}
	}
	defer e.closeViews()
	if err := e.run(ctx, r, ms, files); err != nil {
		e.discard(ms)
		return nil, err
	}
	for _, m := range ms {
		if err := e.commit(ctx, m); err != nil {
			e.discard(ms)
			return nil, err
		}
		tot := m.Totals()
		o.Log.Info("trash snapshot committed", "tenant", m.Tenant, "snapshot", m.ID, "transactions", len(m.Scope.Transactions),
			"rows", tot.Rows, "files", tot.Files, "missing_files", tot.Missing, "stored_bytes", tot.StoredBytes)
	}
	out := make([]Snapshot, len(ms))
	for i, m := range ms {
		out[i] = snapshotOf(m)
	}
	return out, nil
}
