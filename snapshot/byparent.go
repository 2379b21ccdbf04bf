package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
)

// idSet holds the keys of the rows a snapshot saved of a parent table, for its
// children's selects (catalog.SelectByParentIDs). Integers are kept as varint deltas from
// the previous key (a table's ids come mostly in ascending runs: about two bytes
// each), UUIDs as their 16 bytes: a tenant's keys cost a small fraction of what its
// rows do, and nothing of them goes back into SQL unparsed.
type idSet struct {
	uuid bool // else an integer type
	buf  []byte
	last int64 // the last integer added, which the next delta is from
}

// add parses one COPY text field; NULL (\N) is no key: no child row references it.
func (k *idSet) add(field []byte) error {
	if string(field) == `\N` {
		return nil
	}
	if k.uuid {
		id, err := uuid.ParseBytes(field)
		if err != nil {
			return fmt.Errorf("key %q is not a UUID: %w", field, err)
		}
		k.buf = append(k.buf, id[:]...)
	} else {
		v, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return fmt.Errorf("key %q is not an integer: %w", field, err)
		}
		k.buf = binary.AppendVarint(k.buf, v-k.last)
		k.last = v
	}
	return nil
}

// idChunks calls fn with the keys of sets as SQL array elements ("1,2,3"), at most
// size at a time, set after set in the order each was filled; with several sets,
// ords holds the number of each key's set in sets ("0,0,1"). The lists are only
// valid during the call.
func idChunks(sets []*idSet, size int, fn func(keys, ords []byte) error) error {
	var keys, ords []byte
	n := 0
	for i, k := range sets {
		var last int64
		for b := k.buf; len(b) > 0; {
			if n > 0 {
				keys = append(keys, ',')
				if len(sets) > 1 {
					ords = append(ords, ',')
				}
			}
			if k.uuid {
				keys = append(keys, uuid.UUID(b[:16]).String()...)
				b = b[16:]
			} else {
				d, w := binary.Varint(b)
				last += d
				keys = strconv.AppendInt(keys, last, 10)
				b = b[w:]
			}
			if len(sets) > 1 {
				ords = strconv.AppendInt(ords, int64(i), 10)
			}
			if n++; n == size {
				if err := fn(keys, ords); err != nil {
					return err
				}
				keys, ords, n = keys[:0], ords[:0], 0
			}
		}
	}
	if n > 0 {
		return fn(keys, ords)
	}
	return nil
}

// idTap passes COPY text through to w and adds field col of every row to keys.
// COPY escapes tabs and newlines inside values, so every raw tab ends a field and
// every raw newline a row.
type idTap struct {
	w     io.Writer
	col   int
	keys  *idSet
	spent *atomic.Int64 // bytes of keys held by the run
	field int           // index of the field being read
	cur   []byte        // the key field read so far
}

func (k *idTap) Write(p []byte) (int, error) {
	n, err := k.w.Write(p)
	if err != nil {
		return n, err
	}
	for q := p; len(q) > 0; {
		switch {
		case k.field < k.col:
			i := bytes.IndexByte(q, '\t')
			if i < 0 {
				i = len(q)
			}
			if bytes.IndexByte(q[:i], '\n') >= 0 {
				return 0, fmt.Errorf("COPY row with %d fields, key column is field %d", k.field+1, k.col+1)
			}
			if i == len(q) {
				return n, nil
			}
			k.field++
			q = q[i+1:]
		case k.field == k.col:
			i := bytes.IndexAny(q, "\t\n")
			end := i
			if i < 0 {
				end = len(q)
			}
			if len(k.cur)+end > 64 {
				return 0, fmt.Errorf("key field longer than 64 bytes")
			}
			k.cur = append(k.cur, q[:end]...)
			if i < 0 {
				return n, nil
			}
			if k.spent.Load() <= idBudget { // past it, the keys go unused
				before := len(k.keys.buf)
				if err := k.keys.add(k.cur); err != nil {
					return 0, err
				}
				k.spent.Add(int64(len(k.keys.buf) - before))
			}
			k.cur = k.cur[:0]
			k.field++
			if q[i] == '\n' {
				k.field = 0
			}
			q = q[i+1:]
		default:
			i := bytes.IndexByte(q, '\n')
			if i < 0 {
				return n, nil
			}
			k.field = 0
			q = q[i+1:]
		}
	}
	return n, nil
}

// done checks that the text ended at a row's end.
func (k *idTap) done() error {
	if k.field != 0 || len(k.cur) > 0 {
		return fmt.Errorf("COPY text ended inside a row")
	}
	return nil
}

// parentIDs are the keys of one column of a parent table, per snapshot, collected
// while the parent's rows are saved.
type parentIDs struct {
	typ     string
	mu      sync.Mutex
	sets    map[*archive.Manifest]*idSet
	pending int           // units saving the parent's rows, not done yet
	ready   chan struct{} // closed when pending reaches 0
}

// set returns m's key set, made on first use.
func (p *parentIDs) set(m *archive.Manifest) *idSet {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.sets[m]
	if k == nil {
		k = &idSet{uuid: p.typ == "uuid"}
		p.sets[m] = k
	}
	return k
}

// idBudget caps the keys a run holds (about 2 bytes per integer key): past it,
// children are selected by joining back to their parent, as without keys, and the
// run's memory stays bounded whatever its tenants' sizes. A variable for tests.
var idBudget int64 = 16 << 20

// parentRefs returns the tables a run selects by their parent's keys: in a run of a
// tenant scope, each table catalog.SelectedByParent allows whose parent is saved too. It
// makes the key sets those selects read.
func (e *exporter) parentRefs(ms []*archive.Manifest) map[catalog.Name]catalog.ParentRef {
	refs := map[catalog.Name]catalog.ParentRef{}
	e.keys = map[keyCol]*parentIDs{}
	if _, tenantScope := e.sel.(*catalog.Graph); !tenantScope {
		return refs // a retention or a trash scope: each table selects its own rows
	}
	for _, t := range e.tables {
		if ref, ok := e.g.SelectedByParent(t); ok && slices.Contains(e.tables, ref.Parent) {
			refs[t.Name] = ref
			e.keys[keyCol{ref.Parent.Name, ref.Column}] = &parentIDs{
				typ: ref.Type, sets: map[*archive.Manifest]*idSet{}, ready: make(chan struct{}),
			}
		}
	}
	return refs
}

// countParentUnits counts, for each collected key column, the units saving its
// table's rows.
func (e *exporter) countParentUnits(units []unit) {
	for _, u := range units {
		if u.table == nil {
			continue
		}
		for _, col := range e.keyCols(u.table) {
			e.keys[col].pending++
		}
	}
}

// unitDone marks a unit saved: the children of its table wait for every unit of it.
func (e *exporter) unitDone(u unit) {
	if u.table == nil {
		return
	}
	for _, col := range e.keyCols(u.table) {
		p := e.keys[col]
		p.mu.Lock()
		if p.pending--; p.pending == 0 {
			close(p.ready)
		}
		p.mu.Unlock()
	}
}

// keyCols are the columns of t whose keys this run collects.
func (e *exporter) keyCols(t *catalog.Table) []keyCol {
	var cols []keyCol
	for _, c := range t.Columns {
		if _, ok := e.keys[keyCol{t.Name, c.Name}]; ok {
			cols = append(cols, keyCol{t.Name, c.Name})
		}
	}
	return cols
}

// tapped is a table object's writer through the taps collecting its keys.
type tapped struct {
	io.Writer
	taps []*idTap
}

// tapIDs wraps w so that the keys of t's rows written to it for m are collected.
func (e *exporter) tapIDs(t *catalog.Table, m *archive.Manifest, w io.Writer) *tapped {
	tw := &tapped{Writer: w}
	for _, col := range e.keyCols(t) {
		tap := &idTap{w: tw.Writer, col: slices.Index(t.ColumnNames(), col.column), keys: e.keys[col].set(m), spent: &e.idBytes}
		tw.taps = append(tw.taps, tap)
		tw.Writer = tap
	}
	return tw
}

// done returns err, or an error if a tap's text ended inside a row.
func (tw *tapped) done(err error) error {
	if err != nil {
		return err
	}
	for _, tap := range tw.taps {
		if err := tap.done(); err != nil {
			return err
		}
	}
	return nil
}

// IDsPerQuery is how many keys one select of a child takes: measured on the bench
// database, 5000 keys (35 KiB of SQL) let the planner probe the child's index and
// were faster than 20000 (a merge join reading the whole index); few enough that
// the query strings in flight do not grow the heap.
const IDsPerQuery = 5000

// exportByParent saves a table selected by the keys of its parent's saved rows, for
// each tenant of the unit. When the keys went over budget it saves it as without
// keys.
func (e *exporter) exportByParent(ctx context.Context, tx pgx.Tx, enc *zstd.Encoder, u unit) error {
	saved, total := e.parentShare(u)
	keyed := byParentIDs(saved, total)
	if !keyed {
		e.o.Log.Debug("tenants' share of the parent too large for keyed selects: table selected by joining its parent",
			"table", u.table.Name.String(), "parent", u.ref.Parent.Name.String(), "parent_rows_saved", saved, "parent_rows", total)
	}
	if e.idBytes.Load() > idBudget {
		e.o.Log.Debug("parent keys over budget: table selected by joining its parent", "table", u.table.Name.String(),
			"parent", u.ref.Parent.Name.String(), "key_bytes", e.idBytes.Load())
		keyed = false
	}
	if !keyed {
		tenants := make([]uuid.UUID, len(u.many))
		for i, m := range u.many {
			tenants[i] = m.Tenant
		}
		if _, ok := e.sel.SelectTenants(u.table, tenants); ok && len(u.many) > 1 {
			return e.exportMany(ctx, tx, enc, unit{many: u.many, table: u.table})
		}
		for _, m := range u.manifests() {
			if err := e.exportTable(ctx, tx, enc, unit{m: m, table: u.table}); err != nil {
				return err
			}
		}
		return nil
	}
	pk := e.keys[keyCol{u.ref.Parent.Name, u.ref.Column}]
	e.o.Log.Debug("table selected by its parent's saved ids", "table", u.table.Name.String(),
		"parent", u.ref.Parent.Name.String()+"."+u.ref.Column, "key_bytes", e.idBytes.Load())
	if u.m != nil {
		head, tail := e.g.SelectByParentIDs(u.table, *u.ref)
		return e.saveTable(ctx, enc, u.m, u.table, func(w io.Writer) error {
			return idChunks([]*idSet{pk.set(u.m)}, IDsPerQuery, func(keys, _ []byte) error {
				return copyQuery(ctx, tx, w, "COPY ("+head, keys, tail+") TO STDOUT")
			})
		})
	}
	// Several tenants: one query per chunk of their keys, whatever their number,
	// rows routed by the tenant's ordinal.
	head, mid, tail := e.g.SelectByParentIDsTenants(u.table, *u.ref)
	sets := make([]*idSet, len(u.many))
	byOrd := make(map[string]*archive.Manifest, len(u.many))
	for i, m := range u.many {
		sets[i] = pk.set(m)
		byOrd[strconv.Itoa(i)] = m
	}
	return e.split(ctx, enc, u, byOrd, func(w io.Writer) error {
		return idChunks(sets, IDsPerQuery, func(keys, ords []byte) error {
			return copyQuery(ctx, tx, w, "COPY ("+head, keys, mid, ords, tail+") TO STDOUT")
		})
	})
}

// keyedShareMax is the largest share of a parent table's rows, saved by a run, for
// which the run selects the parent's children by the saved rows' keys: each key is
// an index probe into the child, random reads whose number grows with the share,
// where the join back to the parent reads the child once, in order. Measured on
// make bench's scrambled layout (issue 17): keyed selects were the better at 1% of
// the parent (the measured tenant of the standard bench) and took 1/0.67 the
// join's time at 50%. A variable for tests.
var keyedShareMax = 0.10

// byParentIDs decides how a child is selected from the parent's rows a run saved
// and the parent's estimated rows (negative: never analysed): by the saved keys
// while they are at most keyedShareMax of the parent, else by joining back. With
// no estimate, or one below what was saved (stale statistics), the count saved
// is all there is to go on: keyed, as before this choice existed.
func byParentIDs(saved int64, parentRows float64) bool {
	if parentRows <= 0 || float64(saved) > parentRows {
		return true
	}
	return float64(saved) <= keyedShareMax*parentRows
}

// SelectsByParentIDs reports whether Run selects a child table by the ids of its
// parent's saved rows, rather than by joining back to the parent, given the
// parent's rows the run saved (for all its tenants) and the planner's estimate of
// the parent's rows (pg_class.reltuples; negative: never analysed). For tools that
// render the selects Run makes (make bench's raw baseline).
func SelectsByParentIDs(saved int64, parentRows float64) bool { return byParentIDs(saved, parentRows) }

// parentShare returns the rows of u's parent table saved for u's tenants by this
// run (known: the child waited for them) and the parent's estimated rows.
func (e *exporter) parentShare(u unit) (saved int64, total float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range u.manifests() {
		saved += e.saved[m][u.ref.Parent.Name].Rows
	}
	return saved, e.relRows[u.ref.Parent.Name]
}

// copyQuery runs COPY with the query made of parts, strings and byte slices.
func copyQuery(ctx context.Context, tx pgx.Tx, w io.Writer, parts ...any) error {
	var sql strings.Builder // one allocation per query: the query string itself
	n := 0
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			n += len(p)
		case []byte:
			n += len(p)
		}
	}
	sql.Grow(n)
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			sql.WriteString(p)
		case []byte:
			sql.Write(p)
		}
	}
	_, err := tx.Conn().PgConn().CopyTo(ctx, w, sql.String())
	return err
}
