package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/storage"
)

// exporter runs the work of one Run: the table units on the read's transactions,
// and beside them the files of each snapshot whose paths are read.
type exporter struct {
	o      Options
	g      *catalog.Graph
	sel    selector         // renders what is saved of a table: a tenant or a retention scope
	tables []*catalog.Table // the graph's tables the scope reaches, in load order
	store  storage.Store
	blobs  *blobSet
	// batch, when the store can batch (file://), writes the plaintext blobs: their
	// syncs shared, flushed before any manifest names them.
	batch storage.Batch
	// views are where each snapshot's objects go: the store itself, or the tenant's
	// sealed view of it when Options.Sealer is set.
	views   map[*archive.Manifest]storage.Store
	ledgers []*objectSpill // of the sealed views: closeViews removes their files

	// keys of parent tables' saved rows, by table and column, for the children
	// selected by them (in a tenant scope, not a retention scope)
	keys    map[keyCol]*parentIDs
	idBytes atomic.Int64 // held by all of keys: over idBudget, children join their parent
	// relRows are the planner's estimates of each table's rows (partitions summed;
	// negative: never analysed), against which a parent's saved rows are a share.
	relRows map[catalog.Name]float64

	reported atomic.Int64 // files reported missing or outside their root
	files    []fileColumn // the file columns, by index (fileColumn.idx)
	// rootFDs are the file columns' roots, open while the files are saved, by index
	// (openBeneath); noOpenat2 is set once the kernel refused openat2 itself.
	rootFDs   []int
	noOpenat2 atomic.Bool
	// shieldAsked and shieldVouched count, by file column (fileColumn.idx), the files
	// the shield was asked about and those it vouched for (askShield).
	shieldAsked, shieldVouched []atomic.Int64
	// byNameVouched and byNameMissed count the files the shield vouched for by
	// name, and those it did not but then did by descriptor (shieldStoredAt).
	byNameVouched, byNameMissed atomic.Int64

	mu sync.Mutex // serialises Progress and guards the results below
	// reused are blobs found already stored, not uploaded by this run.
	reused digestSpill
	// vouched are blobs the file shield stored and keeps live for prune (its list of
	// live blobs): not asked about again, unless Object Lock needs their retention
	// extended.
	vouched digestSpill
	// reusedSealed are the stored keys of sealed blobs found already stored (a
	// tenant's own copies, at keyed addresses: no digest names them).
	reusedSealed *pathSpill
	// results per manifest, assembled in catalog order at the end
	saved map[*archive.Manifest]map[catalog.Name]archive.Table
	paths map[*archive.Manifest]*pathSpill // the paths its rows name, as read
	// pathsLeft counts the units still reading a snapshot's paths; pathsReady is
	// closed when none is left (pathsAwaited).
	pathsLeft  map[*archive.Manifest]int
	pathsReady map[*archive.Manifest]chan struct{}
	lists      map[*archive.Manifest]*listSpill     // its file list, as files are saved
	packs      map[*archive.Manifest][]archive.Pack // its packs stored, in order
	// packCh, while the files are saved, takes small files to the pack writer.
	packCh chan<- packJob
	dirs   map[*archive.Manifest]map[string]archive.Dir // directories of saved files, under their root
	names  place.Names                                  // user and group names by id, looked up once

	dirSeen sync.Map // directory path → archive.Dir, or false: each looked at once per run (dirsOf)
}

// selector renders the rows a snapshot saves of a table: *catalog.Graph for a
// tenant purge, *catalog.Retention for a retention purge.
type selector interface {
	Select(t *catalog.Table, tenant uuid.UUID) string
	SelectColumns(t *catalog.Table, tenant uuid.UUID, cols []string) string
	SelectTenants(t *catalog.Table, tenants []uuid.UUID) (string, bool)
}

// unit is one table of one tenant, or the file paths one column names for a tenant;
// with many, the same for several tenants from one scan.
type unit struct {
	m     *archive.Manifest
	many  []*archive.Manifest // several tenants' table from one scan (m is nil)
	table *catalog.Table
	files *fileColumn
	ref   *catalog.ParentRef // rows selected by the keys of the parent's saved rows
	size  int64              // relation size: largest first keeps every worker busy to the end
	depth int                // parents selected by keys above the table: 0 if none
}

// manifests are the snapshots u saves a table of.
func (u unit) manifests() []*archive.Manifest {
	if u.m != nil {
		return []*archive.Manifest{u.m}
	}
	return u.many
}

// keyCol names a parent's key column whose values a snapshot collects.
type keyCol struct {
	table  catalog.Name
	column string
}

func (e *exporter) run(ctx context.Context, r *consistentRead, ms []*archive.Manifest, files []fileColumn) error {
	if err := e.openViews(ctx, ms); err != nil {
		return err
	}
	e.saved = map[*archive.Manifest]map[catalog.Name]archive.Table{}
	e.paths = map[*archive.Manifest]*pathSpill{}
	e.lists = map[*archive.Manifest]*listSpill{}
	e.packs = map[*archive.Manifest][]archive.Pack{}
	e.dirs = map[*archive.Manifest]map[string]archive.Dir{}
	e.files = files
	defer e.closeSpills()
	sizes, err := relationSizes(ctx, r.coord, e.g)
	if err != nil {
		return err
	}
	if e.relRows, err = relationRows(ctx, r.coord, e.g); err != nil {
		return err
	}
	var units []unit
	tenants := make([]uuid.UUID, len(ms))
	for i, m := range ms {
		e.saved[m] = map[catalog.Name]archive.Table{}
		tenants[i] = m.Tenant
	}
	refs := e.parentRefs(ms)
	for _, t := range e.tables {
		ref, keyed := refs[t.Name]
		var depth int
		for p, ok := ref, keyed; ok; p, ok = refs[p.Parent.Name] {
			depth++
		}
		switch _, many := e.sel.SelectTenants(t, tenants); {
		case keyed && len(ms) > 1:
			units = append(units, unit{many: ms, table: t, ref: &ref, size: sizes[t.Name], depth: depth})
		case keyed:
			units = append(units, unit{m: ms[0], table: t, ref: &ref, size: sizes[t.Name], depth: depth})
		case many && len(ms) > 1:
			units = append(units, unit{many: ms, table: t, size: sizes[t.Name]})
		default:
			for _, m := range ms {
				units = append(units, unit{m: m, table: t, size: sizes[t.Name]})
			}
		}
	}
	e.countParentUnits(units)
	for i := range files {
		if !slices.Contains(e.tables, files[i].table) {
			continue // the scope holds no row of that table
		}
		if _, ok := e.sel.SelectTenants(files[i].table, tenants); ok && len(ms) > 1 {
			units = append(units, unit{many: ms, files: &files[i]})
			continue
		}
		for _, m := range ms {
			units = append(units, unit{m: m, files: &files[i]})
		}
	}
	// Children selected by keys wait for their parent's: they come after every other
	// unit, parents before children. The paths come first: a tenant's files are
	// saved as soon as its paths are read, while its tables are still being copied.
	slices.SortStableFunc(units, func(a, b unit) int {
		if a.depth != b.depth {
			return a.depth - b.depth
		}
		if (a.files == nil) != (b.files == nil) {
			if a.files != nil {
				return -1
			}
			return 1
		}
		return int(min(max(b.size-a.size, -1), 1))
	})
	e.pathsAwaited(ms, units)

	if e.batch = storage.BatchOf(e.store); e.batch != nil {
		defer e.batch.Close()
	}
	// The files are saved while the tables are copied: the copy mostly waits for
	// PostgreSQL to format rows, leaving this process's CPU idle. The paths come
	// from the run's read whenever the files are saved, so the file list is the one
	// the rows name; the manifests are written only after both end, and the first
	// error of either stops the other.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	filesDone := make(chan error, 1)
	go func() {
		err := e.runFiles(ctx, ms)
		if err != nil {
			cancel(err)
		}
		filesDone <- err
	}()
	tablesErr := e.runTables(ctx, r, units)
	if tablesErr != nil {
		cancel(tablesErr)
	}
	if filesErr := <-filesDone; tablesErr != nil || filesErr != nil {
		return context.Cause(ctx)
	}
	// Every blob this run wrote is durable, under its key, before the manifests
	// that name them are written.
	if e.batch != nil {
		if err := e.batch.Flush(ctx); err != nil {
			return fmt.Errorf("snapshot: blobs: %w", err)
		}
	}
	// A blob found already stored may have been unreferenced, and a prune may have
	// swept it since: check again just before the manifests name it. Under Object
	// Lock the check also extends its retention to that of the objects written now.
	check := func(key string) error { _, err := e.store.Stat(ctx, key); return err }
	l, lock := e.store.(storage.Locker)
	if lock {
		check = func(key string) error { return l.ExtendLock(ctx, key) }
	}
	recheckKey := func(key string) error {
		if err := check(key); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapshot: blob %s, already stored when this run began, is gone (a concurrent prune?): run the snapshot again: %w", key, err)
		} else if err != nil {
			return fmt.Errorf("snapshot: blob %s, already stored: %w", key, err)
		}
		return nil
	}
	recheck := func(sum [32]byte) error { return recheckKey(archive.BlobKey(sum)) }
	if err := e.reused.each(recheck); err != nil {
		return err
	}
	if lock {
		if err := e.vouched.each(recheck); err != nil {
			return err
		}
	}
	if e.reusedSealed != nil {
		if err := e.reusedSealed.each(func(_ int, key string) error { return recheckKey(key) }); err != nil {
			return err
		}
	}
	for _, m := range ms {
		for _, t := range e.tables {
			m.Tables = append(m.Tables, e.saved[m][t.Name])
		}
		// The files are listed in the order they were saved, in an object of
		// their own: never whole in memory.
		if fl := e.lists[m]; fl != nil {
			if err := fl.put(ctx, e.storeOf(m), m); err != nil {
				return err
			}
		}
		m.Packs = e.packs[m]
		for _, d := range e.dirs[m] {
			m.Dirs = append(m.Dirs, d)
		}
		slices.SortFunc(m.Dirs, func(a, b archive.Dir) int { return strings.Compare(a.Path, b.Path) })
	}
	return nil
}

// closeSpills removes the run's temporary files.
func (e *exporter) closeSpills() {
	for _, s := range e.paths {
		s.close()
	}
	for _, s := range e.lists {
		s.close()
	}
	e.reused.close()
	e.vouched.close()
	if e.reusedSealed != nil {
		e.reusedSealed.close()
	}
}

// runTables hands units to one goroutine per read transaction; the first error
// cancels the rest.
func (e *exporter) runTables(ctx context.Context, r *consistentRead, units []unit) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan unit)
	var wg sync.WaitGroup
	for _, tx := range r.workers {
		wg.Go(func() {
			enc, err := newEncoder(e.o.Level)
			if err != nil {
				cancel(err)
				return
			}
			defer enc.Close()
			for u := range ch {
				if ctx.Err() != nil {
					continue
				}
				var err error
				switch {
				case u.ref != nil:
					err = e.exportByParent(ctx, tx, enc, u)
				case u.files != nil && u.many != nil:
					err = e.readPathsMany(ctx, tx, u)
				case u.files != nil:
					err = e.readPaths(ctx, tx, u)
				case u.many != nil:
					err = e.exportMany(ctx, tx, enc, u)
				default:
					err = e.exportTable(ctx, tx, enc, u)
				}
				if err != nil {
					cancel(err)
					continue
				}
				if u.files != nil {
					e.pathsRead(u)
				}
				e.unitDone(u)
			}
		})
	}
	for _, u := range units {
		if u.ref != nil {
			select { // the parent's rows are being saved by a unit sent before
			case <-e.keys[keyCol{u.ref.Parent.Name, u.ref.Column}].ready:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		ch <- u
	}
	close(ch)
	wg.Wait()
	return context.Cause(ctx)
}

func (e *exporter) exportTable(ctx context.Context, tx pgx.Tx, enc *zstd.Encoder, u unit) error {
	return e.saveTable(ctx, enc, u.m, u.table, func(w io.Writer) error {
		if rw, ok := e.sel.(rowWriter); ok {
			if done, err := rw.WriteRows(ctx, tx, u.table, u.m.Tenant, w); done || err != nil {
				return err
			}
		}
		_, err := tx.Conn().PgConn().CopyTo(ctx, w, "COPY ("+e.sel.Select(u.table, u.m.Tenant)+") TO STDOUT")
		return err
	})
}

// rowWriter is a selector that can write a table's rows in COPY's text form itself
// (the trash's: its rows are kept as text); done false: use Select.
type rowWriter interface {
	WriteRows(ctx context.Context, q catalog.Querier, t *catalog.Table, tenant uuid.UUID, w io.Writer) (done bool, err error)
}

// saveTable stores the COPY text rows writes as table t of snapshot m, collecting
// the keys of t's rows that children are selected by.
func (e *exporter) saveTable(ctx context.Context, enc *zstd.Encoder, m *archive.Manifest, t *catalog.Table, rows func(w io.Writer) error) error {
	key := archive.TableKey(m.Tenant, m.ID, t.Name.Schema, t.Name.Table)
	start := time.Now()
	o, err := putCompressed(ctx, e.storeOf(m), key, enc, func(w io.Writer) error {
		tw := e.tapIDs(t, m, w)
		return tw.done(rows(tw))
	})
	if err != nil {
		return fmt.Errorf("snapshot: table %s of tenant %s: %w", t.Name, m.Tenant, err)
	}
	e.o.Log.Debug("table saved", "tenant", m.Tenant, "table", t.Name.String(), "rows", o.rows.Rows,
		"raw_bytes", o.rows.Bytes, "stored_bytes", o.stored.Size(), "seconds", time.Since(start).Seconds())
	e.record(m, t, key, o)
	return nil
}

// record adds a stored table object to its manifest.
func (e *exporter) record(m *archive.Manifest, t *catalog.Table, key string, o *object) {
	cols := make([]archive.Column, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = archive.Column{Name: c.Name, Type: c.Type}
	}
	at := archive.Table{
		Schema: t.Name.Schema, Name: t.Name.Table, Reach: t.Reach, Columns: cols,
		PrimaryKey: t.PrimaryKey, Rows: o.rows.Rows, RawBytes: o.rows.Bytes,
		StoredBytes: o.stored.Size(), SHA256: o.stored.Hex(), Key: key,
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.saved[m][t.Name] = at
	e.progress(Event{Tenant: m.Tenant, Table: t.Name.String(), Rows: o.rows.Rows, Bytes: o.rows.Bytes, Stored: o.stored.Size()})
}

// progress reports one event; e.mu is held.
func (e *exporter) progress(ev Event) {
	if e.o.Progress != nil {
		e.o.Progress(ev)
	}
}

// relationSizes reads each table's on-disk size (partitions summed): a proxy for
// how long its export takes, to start the longest first.
func relationSizes(ctx context.Context, q pgx.Tx, g *catalog.Graph) (map[catalog.Name]int64, error) {
	out := make(map[catalog.Name]int64, len(g.Tables))
	for _, t := range g.Tables {
		var n int64
		// pg_partition_tree has no row for a table that is not partitioned.
		err := q.QueryRow(ctx, `SELECT coalesce((SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree($1::regclass)),
			pg_relation_size($1::regclass))::bigint`, t.Name.Sanitize()).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("snapshot: size of %s: %w", t.Name, err)
		}
		out[t.Name] = n
	}
	return out, nil
}

// relationRows reads the planner's estimate of each table's rows (partitions
// summed): -1 for a table never analysed.
func relationRows(ctx context.Context, q pgx.Tx, g *catalog.Graph) (map[catalog.Name]float64, error) {
	out := make(map[catalog.Name]float64, len(g.Tables))
	for _, t := range g.Tables {
		var n float64
		// pg_partition_tree has no row for a table that is not partitioned.
		err := q.QueryRow(ctx, `SELECT coalesce((SELECT CASE WHEN count(*) = 0 THEN NULL
				WHEN bool_or(c.reltuples >= 0) THEN sum(greatest(c.reltuples, 0)) ELSE -1 END
			FROM pg_partition_tree($1::regclass) p JOIN pg_class c ON c.oid = p.relid WHERE c.relkind IN ('r', 'm', 'f')),
			(SELECT reltuples FROM pg_class WHERE oid = $1::regclass))::float8`, t.Name.Sanitize()).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("snapshot: row estimate of %s: %w", t.Name, err)
		}
		out[t.Name] = n
	}
	return out, nil
}

// discard deletes what a failed run stored under its snapshots. Blobs stay: they
// may be shared, and prune removes the unreferenced ones.
func (e *exporter) discard(ms []*archive.Manifest) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, m := range ms {
		var keys []string
		_ = e.store.List(ctx, archive.SnapshotPrefix(m.Tenant, m.ID), func(i storage.Info) error {
			keys = append(keys, i.Key)
			return nil
		})
		for _, k := range keys {
			if err := e.store.Delete(ctx, k); err != nil {
				e.o.Log.Warn("could not delete an object of a failed snapshot; prune will", "key", k, "err", err)
			}
		}
	}
}
