// Package snapshot saves every row and file a tenant purge would destroy: one
// consistent read of the database (an exported snapshot shared by every worker
// connection), each table streamed as COPY text through zstd into storage, each
// file a row names stored once by content, and a manifest written last per tenant
// to commit it.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/retention"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/storage"
)

// Options says what to save and how.
type Options struct {
	Tenants []uuid.UUID
	Reason  string
	Jobs    int // worker connections sharing the read; default 2
	Level   int // zstd level; default 3
	// Graph says where the tenant tree starts (profile.CallLogd().Tenants for
	// call-logd).
	Graph profile.Tenants
	// Retention, when set, saves what the scheduled retention purge will remove
	// instead of a whole tenant; no Tenants then means every tenant of the root.
	Retention *profile.Retention
	// Files are the columns naming files to save with their rows.
	Files []profile.FileColumn
	// Shield, when set, saves files missing on disk from the file shield's copy
	// and skips the upload of blobs the shield already stored.
	Shield Shield
	// Sealer, when set, encrypts every snapshot with its tenant's key (issue 15):
	// objects, blobs and manifest sealed, a plaintext envelope committing it.
	Sealer      Sealer
	ToolVersion string
	Log         *slog.Logger
	// Progress, when set, is called after each table and each file is stored. It is
	// called from worker goroutines, one call at a time.
	Progress func(Event)
	// Now stamps manifests; default time.Now.
	Now func() time.Time
	// TempDir holds the run's temporary files (the paths its rows name, its file
	// lists as they are written, the blobs it found stored), kept off the heap so
	// that memory does not grow with a tenant's files; default os.TempDir().
	TempDir string
	// PackMax is the largest file stored in the snapshot's packs rather than as a
	// loose, content-addressed blob (format 4): 0 is the default, DefaultPackMax;
	// negative packs nothing. Packed files are not shared with other snapshots.
	PackMax int64
}

// Event reports one saved table or file.
type Event struct {
	Tenant uuid.UUID
	Table  string // schema.table
	File   string // the path, for a file
	Rows   int64
	Bytes  int64 // raw bytes read (COPY text or file content)
	Stored int64 // bytes written to storage (0 for a blob already there)
	// Recovered: a file missing on disk, saved from the file shield's copy.
	Recovered bool
}

// ErrTenantAbsent is returned for a tenant the root table does not hold: a
// snapshot of it would be empty, which is never what the operator meant.
var ErrTenantAbsent = errors.New("tenant not in the tenant root table")

// Run takes one snapshot per tenant, all at the same instant of the database, and
// returns them once committed. On error nothing is committed, and the objects
// already written are deleted (best effort: prune removes any left).
func Run(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options) ([]Snapshot, error) {
	o.defaults()
	r, e, files, scopes, err := prepare(ctx, cfg, &o, o.Jobs)
	if err != nil {
		return nil, err
	}
	defer r.close()
	e.store, e.blobs = store, newBlobSet()
	g := e.g
	ms := make([]*archive.Manifest, len(o.Tenants))
	for i, t := range o.Tenants {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("snapshot: new id: %w", err)
		}
		ms[i] = &archive.Manifest{
			FormatVersion: archive.FormatVersion,
			ID:            id,
			Tenant:        t,
			Reason:        o.Reason,
			CreatedAt:     o.Now().UTC(),
			ToolVersion:   o.ToolVersion,
			ServerVersion: r.serverVersion,
			Scope:         scopes[t],
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
	if o.Retention != nil {
		ms = e.dropEmpty(ms)
	}
	for _, m := range ms {
		if err := e.commit(ctx, m); err != nil {
			e.discard(ms)
			return nil, err
		}
		tot := m.Totals()
		o.Log.Info("snapshot committed", "tenant", m.Tenant, "snapshot", m.ID, "tables", tot.Tables,
			"rows", tot.Rows, "files", tot.Files, "missing_files", tot.Missing, "stored_bytes", tot.StoredBytes)
	}
	out := make([]Snapshot, len(ms))
	for i, m := range ms {
		out[i] = snapshotOf(m)
	}
	return out, nil
}

// prepare opens the read with jobs workers (Run and DryRun alike) and reads within it
// what a run needs: the tenant graph, the tenants (every tenant of the root for a
// retention run without any), the file columns, and each tenant's scope. The
// exporter has no store yet. The caller closes the read; on error it is closed.
func prepare(ctx context.Context, cfg *pgx.ConnConfig, o *Options, jobs int) (r *consistentRead, e *exporter, files []fileColumn, scopes map[uuid.UUID]archive.Scope, err error) {
	if len(o.Tenants) == 0 && o.Retention == nil {
		return nil, nil, nil, nil, errors.New("snapshot: no tenant given")
	}
	if r, err = openRead(ctx, cfg, jobs); err != nil {
		return nil, nil, nil, nil, err
	}
	defer func() {
		if err != nil {
			r.close()
			r = nil
		}
	}()
	g, err := catalog.Load(ctx, r.coord, o.Graph)
	if err != nil {
		return r, nil, nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(o.Tenants) == 0 {
		if o.Tenants, err = g.Tenants(ctx, r.coord); err != nil {
			return r, nil, nil, nil, fmt.Errorf("snapshot: %w", err)
		}
		if len(o.Tenants) == 0 {
			return r, nil, nil, nil, fmt.Errorf("snapshot: %s holds no tenant", g.Root)
		}
	}
	if err := checkTenants(ctx, r.coord, g, o.Tenants); err != nil {
		return r, nil, nil, nil, err
	}
	files, err = fileColumns(g, o.Files, o.Log)
	if err != nil {
		return r, nil, nil, nil, err
	}
	e = &exporter{o: *o, g: g, sel: g, tables: g.Tables}
	scopes = map[uuid.UUID]archive.Scope{}
	for _, t := range o.Tenants {
		scopes[t] = archive.Scope{Kind: archive.ScopeTenant}
	}
	if o.Retention != nil {
		if e.sel, e.tables, err = retentionScope(ctx, r.coord, g, *o.Retention, scopes); err != nil {
			return r, nil, nil, nil, err
		}
	}
	return r, e, files, scopes, nil
}

func (o *Options) defaults() {
	if o.Jobs < 1 {
		o.Jobs = 2
	}
	if o.Level < 1 {
		o.Level = 3
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// retentionScope reads each tenant's retention days within the read, records them
// in the tenants' scopes, and returns the selector and tables of what the purge
// will remove.
func retentionScope(ctx context.Context, q pgx.Tx, g *catalog.Graph, o profile.Retention, scopes map[uuid.UUID]archive.Scope) (selector, []*catalog.Table, error) {
	tenants := make([]uuid.UUID, 0, len(scopes))
	for t := range scopes {
		tenants = append(tenants, t)
	}
	days, err := retention.Read(ctx, q, o, tenants)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	cutoffs := make(map[uuid.UUID]map[string]time.Time, len(days))
	for t, d := range days {
		cutoffs[t] = d.Cutoffs
		scopes[t] = archive.Scope{Kind: archive.ScopeRetention, Cutoffs: d.Cutoffs, Days: d.Days}
	}
	ret, err := g.Retention(o.Rules(), cutoffs)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	return ret, ret.Tables(), nil
}

// dropEmpty discards the snapshots of tenants the retention purge takes nothing
// from: a nightly run over every tenant would otherwise commit one empty snapshot
// per quiet tenant.
func (e *exporter) dropEmpty(ms []*archive.Manifest) []*archive.Manifest {
	var keep, empty []*archive.Manifest
	for _, m := range ms {
		if t := m.Totals(); t.Rows == 0 && m.FileEntries() == 0 {
			empty = append(empty, m)
			e.o.Log.Info("nothing to save: the retention purge removes nothing of this tenant", "tenant", m.Tenant)
			continue
		}
		keep = append(keep, m)
	}
	e.discard(empty)
	return keep
}

// checkTenants refuses tenants the root does not hold, naming them all.
func checkTenants(ctx context.Context, q pgx.Tx, g *catalog.Graph, tenants []uuid.UUID) error {
	sql := fmt.Sprintf("SELECT t FROM unnest($1::text[]) AS t WHERE NOT EXISTS (SELECT 1 FROM %s r WHERE r.%s::text = t)",
		g.Root.Sanitize(), pgx.Identifier{g.Key}.Sanitize())
	strs := make([]string, len(tenants))
	for i, t := range tenants {
		strs[i] = t.String()
	}
	rows, err := q.Query(ctx, sql, strs)
	if err != nil {
		return fmt.Errorf("snapshot: check tenants in %s: %w", g.Root, err)
	}
	absent, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("snapshot: check tenants in %s: %w", g.Root, err)
	}
	if len(absent) > 0 {
		return fmt.Errorf("snapshot: %v: %w %s", absent, ErrTenantAbsent, g.Root)
	}
	return nil
}
