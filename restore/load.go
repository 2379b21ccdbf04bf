package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/storage"
)

// loader loads tables inside the restore's transaction.
type loader struct {
	tx    pgx.Tx
	store storage.Store
	m     *archive.Manifest
	o     Options
	g     *catalog.Graph // the target's own graph: keys, identities, cycles now
	dec   *zstd.Decoder
	// direct: the tenant's root row is absent, so its rows were purged whole and
	// COPY straight into each table is tried first (as fast as a raw load); a
	// conflict falls back to staging for that table and the ones after it.
	direct bool
	staged int
	// sampled: the transaction's statistics target is lowered (freshen).
	sampled bool
}

// plan is how one table is loaded.
type plan struct {
	t       archive.Table
	live    *catalog.Table
	cols    []string // the snapshot's columns, in COPY order
	insert  []string // those inserted: still in the table, not generated
	dropped []string // in the snapshot, gone from the table (AllowDropColumns)
	nulled  []string // cycle-breaking columns: inserted NULL, set at the end
	// rows: the purge deleted rows of this table (root, cascade, extra); otherwise
	// it only changed some columns, and restore only puts those back.
	rows     bool
	identity bool
	stage    string // temporary table, once staged
	// direct: copied straight into the table; before: the tenant's rows in it
	// just before, copied: the rows copied (checkRows compares them after).
	direct         bool
	before, copied int64
	added          int64 // rows put in the table, for freshen once every table is loaded
}

func newLoader(ctx context.Context, tx pgx.Tx, store storage.Store, m *archive.Manifest, o Options) (*loader, error) {
	g, err := catalog.Load(ctx, tx, o.Graph)
	if err != nil {
		return nil, fmt.Errorf("restore: target database: %w", err)
	}
	if g.Root.Schema != m.Root.Schema || g.Root.Table != m.Root.Table || g.Key != m.Root.Key {
		return nil, fmt.Errorf("restore: snapshot %s has tenant root %s.%s(%s), the configuration %s(%s)",
			m.ID, m.Root.Schema, m.Root.Table, m.Root.Key, g.Root, g.Key)
	}
	for i, c := range o.Files {
		if g.Table(c.Table) == nil {
			return nil, &profile.MismatchError{Field: fmt.Sprintf("files[%d].table", i),
				Reason: fmt.Sprintf("%s is not a table a tenant purge reaches from %s (a typo? see purgeguard tables)", c.Table, g.Root)}
		}
	}
	var present bool
	err = tx.QueryRow(ctx, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE %s::text = $1)",
		g.Root.Sanitize(), pgx.Identifier{g.Key}.Sanitize()), m.Tenant.String()).Scan(&present)
	if err != nil {
		return nil, fmt.Errorf("restore: look up tenant %s: %w", m.Tenant, err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, err
	}
	return &loader{tx: tx, store: store, m: m, o: o, g: g, dec: dec, direct: !present && !o.DryRun}, nil
}

func (l *loader) close() { l.dec.Close() }

// plan checks every table against the target schema before anything is loaded:
// a dropped column or a changed type is an error naming table and column.
func (l *loader) plan(ctx context.Context, tables []archive.Table) ([]*plan, error) {
	var out []*plan
	for _, t := range tables {
		name := catalog.Name{Schema: t.Schema, Table: t.Name}
		live := l.g.Table(name)
		if live == nil {
			var exists bool
			if err := l.tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name.Sanitize()).Scan(&exists); err != nil {
				return nil, fmt.Errorf("restore: table %s: %w", name, err)
			}
			if !exists {
				return nil, fmt.Errorf("restore: table %s: %w in the target database", name, catalog.ErrNotFound)
			}
			return nil, fmt.Errorf("restore: table %s: no longer reached from the tenant root in the target database", name)
		}
		p := &plan{t: t, live: live, rows: live.Reach != catalog.ReachSetNull && live.Reach != catalog.ReachSetDefault}
		for _, c := range t.Columns {
			p.cols = append(p.cols, c.Name)
			lc := live.Column(c.Name)
			switch {
			case lc == nil && l.o.AllowDropColumns:
				p.dropped = append(p.dropped, c.Name)
				continue
			case lc == nil:
				return nil, fmt.Errorf("restore: table %s: column %q was dropped since the snapshot (restore without it with --allow-drop-columns)", name, c.Name)
			case lc.Type != c.Type:
				return nil, fmt.Errorf("restore: table %s: column %q changed type since the snapshot: %s, now %s", name, c.Name, c.Type, lc.Type)
			}
			p.insert = append(p.insert, c.Name)
			if lc.Identity != "" {
				p.identity = true
			}
		}
		for _, cy := range l.g.Cycles {
			if cy.Break.Child == name {
				p.nulled = append(p.nulled, cy.Break.Columns...)
			}
		}
		if (len(p.nulled) > 0 || len(live.Changed) > 0 || !p.rows) && len(live.PrimaryKey) == 0 {
			return nil, fmt.Errorf("restore: table %s: no primary key to match rows by", name)
		}
		for _, k := range live.PrimaryKey {
			if !slices.Contains(p.insert, k) {
				return nil, fmt.Errorf("restore: table %s: primary key column %q is not in the snapshot", name, k)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// load loads one table.
func (l *loader) load(ctx context.Context, p *plan) (TableReport, error) {
	tr := TableReport{Table: p.live.Name.String(), InSnapshot: p.t.Rows}
	// Only a table with a primary key can be copied straight in: a row that survived
	// the purge is then a unique violation, not a silent duplicate.
	if l.direct && p.rows && len(p.live.PrimaryKey) > 0 && len(p.dropped) == 0 && len(p.nulled) == 0 && len(p.live.Changed) == 0 {
		before, err := l.count(ctx, "SELECT count(*) FROM ("+l.g.SelectColumns(p.live, l.m.Tenant, p.keyCols())+") x")
		if err != nil {
			return tr, fmt.Errorf("restore: table %s: count the tenant's rows: %w", tr.Table, err)
		}
		n, err := l.copyDirect(ctx, p)
		if err == nil {
			tr.Inserted, tr.Method = n, "copy"
			p.direct, p.before, p.copied, p.added = true, before, n, n
			return tr, nil
		}
		if !isUniqueViolation(err) {
			return tr, err
		}
		l.direct = false // some rows survived the purge: stage from here on
	}
	tr.Method = "staged"
	if err := l.stageTable(ctx, p); err != nil {
		return tr, err
	}
	present, err := l.count(ctx, fmt.Sprintf("SELECT count(*) FROM %s s WHERE EXISTS (SELECT 1 FROM %s l WHERE %s)",
		p.stage, p.live.Name.Sanitize(), matchRow(p, "l", "s")))
	if err != nil {
		return tr, fmt.Errorf("restore: table %s: %w", tr.Table, err)
	}
	tr.Present = present
	if p.rows {
		if l.o.OnConflict == ConflictFail && present > 0 {
			return tr, fmt.Errorf("restore: table %s: %d of %d %w (--on-conflict fail)", tr.Table, present, p.t.Rows, ErrConflict)
		}
		if l.o.DryRun {
			tr.Inserted = p.t.Rows - present
		} else {
			tag, err := l.tx.Exec(ctx, insertSQL(p))
			if err != nil {
				return tr, fmt.Errorf("restore: table %s: insert: %w", tr.Table, err)
			}
			tr.Inserted = tag.RowsAffected()
			p.added = tr.Inserted
			return tr, nil
		}
	}
	return tr, nil
}

// freshen brings the planner's statistics of a table up to the rows this restore
// put in it (p.added), when those outgrow what the planner knew by more than
// autovacuum's own threshold (a tenth), or the table was never analysed. The checks
// after the load join each table with the others, and a table restored into empty
// still looks empty to the planner, which then picks nested loops: 5.4 s of a 10 s
// restore of 105k rows where the raw COPY took 2 s (BENCH_PART=layouts). ANALYZE
// runs inside the transaction and samples its own new rows; a role that does not
// own the table gets a warning, not an error.
//
// It runs once every table is loaded (loadStep), not after each: an ANALYZE of the
// call logs in the transaction made the next COPYs, of their destinations and
// participants, slower by 55 and 40 ms (medians of 6 restores of 105k rows: 302 and
// 607 ms against 245 and 542), more than it cost itself. What runs between the
// loads is each table's count of the tenant's rows already there, on a table the
// purge emptied of them.
//
// Only the columns those joins compare are analysed (joinColumns): any ANALYZE
// sets the table's row and page counts, which is what the plans were missing,
// and the statistics of every other column cost most of it. On 20,000 call logs
// (BENCH_PART=layouts' tenant) ANALYZE of call_log took 148 ms, of its id and
// tenant 9 ms; of its participants 79 ms against 21 ms: 270 ms of a 1.5 s
// restore went to statistics no check reads. And the sample is a tenth of the
// default (statsTarget): inside the transaction that loaded them, the two ANALYZEs
// took 94 ms at the default target, 30 ms at 10.
func (l *loader) freshen(ctx context.Context, p *plan) error {
	added := p.added
	if added == 0 {
		return nil
	}
	var known float64
	if err := l.tx.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = $1::regclass",
		p.live.Name.Sanitize()).Scan(&known); err != nil {
		return fmt.Errorf("restore: table %s: planner statistics: %w", p.live.Name, err)
	}
	if known >= 0 && float64(added) <= known/10 {
		return nil
	}
	if !l.sampled {
		// SET LOCAL: the target goes back with the transaction's end.
		if _, err := l.tx.Exec(ctx, fmt.Sprintf("SET LOCAL default_statistics_target = %d", statsTarget)); err != nil {
			return fmt.Errorf("restore: table %s: statistics target: %w", p.live.Name, err)
		}
		l.sampled = true
	}
	sql := "ANALYZE " + p.live.Name.Sanitize()
	if cols := l.joinColumns(p); len(cols) > 0 {
		ids := make([]string, len(cols))
		for i, c := range cols {
			ids[i] = pgx.Identifier{c}.Sanitize()
		}
		sql += " (" + strings.Join(ids, ", ") + ")"
	}
	if _, err := l.tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("restore: table %s: analyze: %w", p.live.Name, err)
	}
	return nil
}

// statsTarget is the statistics target of restore's own ANALYZEs: 3,000 rows
// sampled per table instead of 30,000. The checks need the row counts and how
// distinct the keys are, which such a sample shows; the statistics it leaves are
// those of a table that grew by more than a tenth, which autovacuum analyses
// again at its own target after the commit (its threshold is that tenth too).
const statsTarget = 10

// joinColumns returns the columns of p's table that restore's counts and checks
// join or filter on, in the table's column order: its primary key, both sides of
// every foreign key of the graph it is in, the tenant key of the root, an extra
// table's tenant columns, and the configured file columns. Nil means every
// column: a table without a primary key is matched on all of them.
func (l *loader) joinColumns(p *plan) []string {
	t := p.live
	if len(t.PrimaryKey) == 0 {
		return nil
	}
	want := map[string]bool{}
	add := func(cols ...string) {
		for _, c := range cols {
			want[c] = true
		}
	}
	add(t.PrimaryKey...)
	add(t.ExtraColumns...)
	if t.Name == l.g.Root {
		add(l.g.Key)
	}
	for _, fk := range l.g.FKs {
		if fk.Child == t.Name {
			add(fk.Columns...)
		}
		if fk.Parent == t.Name {
			add(fk.RefColumns...)
		}
	}
	for _, f := range l.o.Files {
		if f.Table == t.Name {
			add(f.Column)
		}
	}
	var cols []string
	for _, c := range t.Columns {
		if want[c.Name] {
			cols = append(cols, c.Name)
		}
	}
	return cols
}

// finish puts back the references a purge changed and the cycle-breaking columns,
// once every table is loaded (a reference may point at a row of a later table),
// then moves sequences past the restored ids.
func (l *loader) finish(ctx context.Context, plans []*plan, rep *Report) error {
	for i, p := range plans {
		cols := slices.Clone(p.live.Changed)
		for _, c := range p.nulled {
			if !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
		if len(cols) == 0 {
			continue
		}
		n, err := l.putBack(ctx, p, cols)
		if err != nil {
			return fmt.Errorf("restore: table %s: put back %s: %w", p.live.Name, strings.Join(cols, ", "), err)
		}
		rep.Tables[i].Updated += n
	}
	if l.o.OnConflict == ConflictFillNulls {
		for i, p := range plans {
			n, err := l.fillNulls(ctx, p)
			if err != nil {
				return fmt.Errorf("restore: table %s: fill NULLs: %w", p.live.Name, err)
			}
			rep.Tables[i].Updated += n
		}
	}
	if l.o.DryRun {
		return nil
	}
	return l.sequences(ctx, plans)
}

// copyDirect copies the snapshot straight into the table inside a savepoint.
func (l *loader) copyDirect(ctx context.Context, p *plan) (int64, error) {
	sp, err := l.tx.Begin(ctx)
	if err != nil {
		return 0, err
	}
	n, err := l.copyInto(ctx, p, p.live.Name.Sanitize())
	if err != nil {
		_ = sp.Rollback(ctx)
		return 0, err
	}
	return n, sp.Commit(ctx)
}

// stageTable copies the snapshot into a temporary table shaped like the snapshot,
// with the target's types (a dropped column stays text: it is not inserted).
func (l *loader) stageTable(ctx context.Context, p *plan) error {
	l.staged++
	p.stage = pgx.Identifier{"pg_temp", fmt.Sprintf("purgeguard_stage_%d", l.staged)}.Sanitize()
	defs := make([]string, len(p.cols))
	for i, c := range p.cols {
		typ := "text"
		if lc := p.live.Column(c); lc != nil {
			typ = lc.Type // from the target's catalog, never from the manifest
		}
		defs[i] = pgx.Identifier{c}.Sanitize() + " " + typ
	}
	if _, err := l.tx.Exec(ctx, "CREATE TEMPORARY TABLE "+p.stage+" ("+strings.Join(defs, ", ")+") ON COMMIT DROP"); err != nil {
		return fmt.Errorf("restore: table %s: staging table: %w", p.live.Name, err)
	}
	if _, err := l.copyInto(ctx, p, p.stage); err != nil {
		return err
	}
	if len(p.live.Changed) > 0 || len(p.nulled) > 0 {
		if _, err := l.tx.Exec(ctx, "ANALYZE "+p.stage); err != nil {
			return err
		}
	}
	return nil
}

// copyInto streams the table's object into target with COPY FROM STDIN, checking
// its SHA-256 again on the way: verified before the transaction, it must not have
// changed since.
func (l *loader) copyInto(ctx context.Context, p *plan, target string) (int64, error) {
	rc, err := l.store.Get(ctx, p.t.Key)
	if err != nil {
		return 0, fmt.Errorf("restore: table %s: %w", p.live.Name, err)
	}
	defer rc.Close()
	sum := archive.NewDigest()
	if err := l.dec.Reset(io.TeeReader(rc, sum)); err != nil {
		return 0, &archive.VerifyError{Key: p.t.Key, What: "decompress", Reason: err}
	}
	cols := make([]string, len(p.cols))
	for i, c := range p.cols {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	sql := "COPY " + target + " (" + strings.Join(cols, ", ") + ") FROM STDIN"
	src := &stopReader{r: l.dec}
	tag, err := l.tx.Conn().PgConn().CopyFrom(ctx, src, sql)
	if rerr := src.stop(); rerr != nil {
		// pgconn reports a failed read as the server's "COPY from stdin failed"
		// with the reason as text: the reader's own error is the cause, and the one
		// a caller can branch on (a stalled or given-up storage).
		return 0, fmt.Errorf("restore: table %s: %w", p.live.Name, rerr)
	}
	if err != nil {
		return 0, fmt.Errorf("restore: table %s: %w", p.live.Name, err)
	}
	if _, err := io.Copy(io.Discard, io.TeeReader(rc, sum)); err != nil {
		return 0, fmt.Errorf("restore: table %s: %w", p.live.Name, err)
	}
	if err := sum.Check(p.t.Key, p.t.SHA256, p.t.StoredBytes); err != nil {
		return 0, err
	}
	if tag.RowsAffected() != p.t.Rows {
		return 0, &archive.VerifyError{Key: p.t.Key, What: "rows", Want: fmt.Sprint(p.t.Rows), Got: fmt.Sprint(tag.RowsAffected())}
	}
	return tag.RowsAffected(), nil
}

// stopReader is what COPY reads from: pgconn's CopyFrom reads it from a goroutine
// of its own, which it does not wait for when it returns on a cancelled context
// (the files' staging failed, the restore is stopping). stop waits out a read in
// flight and ends any later one, so that the decoder under it is the loader's
// again, to reuse or to close.
type stopReader struct {
	mu      sync.Mutex
	r       io.Reader
	stopped bool
	err     error // the first read error other than io.EOF
}

func (s *stopReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return 0, errCopyStopped
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// stop ends reading and returns the first read error, if any.
func (s *stopReader) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	return s.err
}

var errCopyStopped = errors.New("restore: copy stopped")

// insertSQL inserts the staged rows that are not there yet.
func insertSQL(p *plan) string {
	var cols, vals []string
	for _, c := range p.insert {
		cols = append(cols, pgx.Identifier{c}.Sanitize())
		if slices.Contains(p.nulled, c) {
			vals = append(vals, "NULL")
		} else {
			vals = append(vals, "s."+pgx.Identifier{c}.Sanitize())
		}
	}
	override := ""
	if p.identity {
		override = " OVERRIDING SYSTEM VALUE"
	}
	sql := "INSERT INTO " + p.live.Name.Sanitize() + " (" + strings.Join(cols, ", ") + ")" + override +
		" SELECT " + strings.Join(vals, ", ") + " FROM " + p.stage + " s"
	if len(p.live.PrimaryKey) == 0 {
		// No key for ON CONFLICT to catch a second run by: skip identical rows.
		sql += " WHERE NOT EXISTS (SELECT 1 FROM " + p.live.Name.Sanitize() + " l WHERE " + matchRow(p, "l", "s") + ")"
	}
	return sql + " ON CONFLICT DO NOTHING"
}

// putBack restores columns a purge changed (or a cycle break left NULL), one column
// at a time, in rows still holding what the purge left there: a NULL for SET NULL
// and cycle breaks (a reference the application set again since is left alone), or
// anything else for SET DEFAULT (the default cannot be told from a chosen value).
// It returns the number of column values put back.
func (l *loader) putBack(ctx context.Context, p *plan, cols []string) (int64, error) {
	var total int64
	for _, c := range cols {
		id := pgx.Identifier{c}.Sanitize()
		cond := "l." + id + " IS NULL AND s." + id + " IS NOT NULL"
		if l.setDefault(p, c) {
			cond = "l." + id + " IS DISTINCT FROM s." + id
		}
		where := matchKey(p, "l", "s") + " AND " + cond
		var n int64
		if l.o.DryRun {
			var err error
			if n, err = l.count(ctx, "SELECT count(*) FROM "+p.live.Name.Sanitize()+" l, "+p.stage+" s WHERE "+where); err != nil {
				return 0, err
			}
		} else {
			tag, err := l.tx.Exec(ctx, "UPDATE "+p.live.Name.Sanitize()+" l SET "+id+" = s."+id+" FROM "+p.stage+" s WHERE "+where)
			if err != nil {
				return 0, err
			}
			n = tag.RowsAffected()
		}
		total += n
	}
	return total, nil
}

// fillNulls sets, in the rows of p's table that were already present, every column
// the live row holds NULL and the snapshot does not; it returns the rows changed. A
// table copied straight in, or without a primary key to match rows by, has nothing
// to fill.
func (l *loader) fillNulls(ctx context.Context, p *plan) (int64, error) {
	if !p.rows || p.stage == "" || len(p.live.PrimaryKey) == 0 {
		return 0, nil
	}
	var sets, conds []string
	for _, c := range p.insert {
		if slices.Contains(p.live.PrimaryKey, c) || slices.Contains(p.nulled, c) {
			continue // keys match already; cycle breaks were put back by finish
		}
		id := pgx.Identifier{c}.Sanitize()
		sets = append(sets, id+" = coalesce(l."+id+", s."+id+")")
		conds = append(conds, "l."+id+" IS NULL AND s."+id+" IS NOT NULL")
	}
	if len(sets) == 0 {
		return 0, nil
	}
	where := matchKey(p, "l", "s") + " AND (" + strings.Join(conds, " OR ") + ")"
	if l.o.DryRun {
		return l.count(ctx, "SELECT count(*) FROM "+p.live.Name.Sanitize()+" l, "+p.stage+" s WHERE "+where)
	}
	tag, err := l.tx.Exec(ctx, "UPDATE "+p.live.Name.Sanitize()+" l SET "+strings.Join(sets, ", ")+" FROM "+p.stage+" s WHERE "+where)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// setDefault reports whether a purge sets column c of p's table to its default
// (and never to NULL).
func (l *loader) setDefault(p *plan, c string) bool {
	def := false
	for _, fk := range p.live.Via {
		if fk.Child != p.live.Name || !slices.Contains(fk.SetColumns, c) {
			continue
		}
		switch fk.OnDelete {
		case catalog.OnDeleteSetNull:
			return false
		case catalog.OnDeleteSetDefault:
			def = true
		}
	}
	return def
}

// sequences moves every sequence owned by a restored column past the largest
// restored value, so that the next insert does not collide. Only ever forward.
// The sequences are looked up in one query for every column of every table: one
// pg_get_serial_sequence round trip per column was 60 of them, about 10 ms, for
// call-logd's tables.
func (l *loader) sequences(ctx context.Context, plans []*plan) error {
	var tables, cols []string
	for _, p := range plans {
		for _, c := range p.insert {
			tables, cols = append(tables, p.live.Name.Sanitize()), append(cols, c)
		}
	}
	if len(cols) == 0 {
		return nil
	}
	rows, err := l.tx.Query(ctx, `SELECT i, s FROM (SELECT i, pg_get_serial_sequence(t, c) AS s
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(t, c, i)) x WHERE s IS NOT NULL ORDER BY i`, tables, cols)
	if err != nil {
		return fmt.Errorf("restore: sequences of the restored columns: %w", err)
	}
	type owned struct {
		I   int64
		Seq string
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[owned])
	if err != nil {
		return fmt.Errorf("restore: sequences of the restored columns: %w", err)
	}
	for _, o := range seqs {
		table, c := tables[o.I-1], cols[o.I-1]
		sql := fmt.Sprintf(`SELECT setval($1::regclass, m) FROM (SELECT max(%s)::bigint AS m FROM %s) x
			WHERE m > coalesce(pg_sequence_last_value($1::regclass), 0)`, pgx.Identifier{c}.Sanitize(), table)
		if _, err := l.tx.Exec(ctx, sql, o.Seq); err != nil {
			return fmt.Errorf("restore: table %s: move sequence %s: %w", table, o.Seq, err)
		}
	}
	return nil
}

func (l *loader) count(ctx context.Context, sql string) (int64, error) {
	var n int64
	err := l.tx.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// matchKey matches a live row and a staged row by primary key.
func matchKey(p *plan, live, stage string) string {
	var conds []string
	for _, k := range p.live.PrimaryKey {
		id := pgx.Identifier{k}.Sanitize()
		conds = append(conds, live+"."+id+" = "+stage+"."+id)
	}
	return strings.Join(conds, " AND ")
}

// matchRow matches by primary key, or by every column when the table has none.
func matchRow(p *plan, live, stage string) string {
	if len(p.live.PrimaryKey) > 0 {
		return matchKey(p, live, stage)
	}
	var conds []string
	for _, c := range p.insert {
		id := pgx.Identifier{c}.Sanitize()
		conds = append(conds, live+"."+id+" IS NOT DISTINCT FROM "+stage+"."+id)
	}
	return strings.Join(conds, " AND ")
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
