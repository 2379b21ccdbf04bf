package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
)

// exportMany saves one table for several tenants from a single scan: the rows come
// ordered by tenant, the tenant's key first, and each goes to its tenant's object,
// one object open at a time. Without this, call-logd's call_log — no index on
// tenant_uuid — would be read once per tenant.
func (e *exporter) exportMany(ctx context.Context, tx pgx.Tx, enc *zstd.Encoder, u unit) error {
	tenants := make([]uuid.UUID, len(u.many))
	byKey := make(map[string]*archive.Manifest, len(u.many))
	for i, m := range u.many {
		tenants[i] = m.Tenant
		byKey[m.Tenant.String()] = m
	}
	sql, ok := e.sel.SelectTenants(u.table, tenants)
	if !ok {
		return fmt.Errorf("snapshot: table %s: no single-scan select", u.table.Name)
	}
	return e.split(ctx, enc, u, byKey, func(w io.Writer) error {
		_, err := tx.Conn().PgConn().CopyTo(ctx, w, "COPY ("+sql+") TO STDOUT")
		return err
	})
}

// split saves table u.table of the tenants u.many from the COPY text rows writes:
// lines "tenant\trow...", grouped by tenant, the tenant field being a key of byKey.
func (e *exporter) split(ctx context.Context, enc *zstd.Encoder, u unit, byKey map[string]*archive.Manifest, rows func(w io.Writer) error) error {
	t := u.table
	start := time.Now()
	sp := &splitter{ctx: ctx, e: e, t: t, enc: enc, byKey: byKey, seen: map[*archive.Manifest]bool{}}
	if err := sp.finish(rows(sp)); err != nil {
		return fmt.Errorf("snapshot: table %s: %w", t.Name, err)
	}
	// Tenants with no row in the table still get their (empty) object: a manifest
	// lists every table of the graph.
	for _, m := range u.many {
		if sp.seen[m] {
			continue
		}
		key := archive.TableKey(m.Tenant, m.ID, t.Name.Schema, t.Name.Table)
		o := openObject(ctx, e.storeOf(m), key, enc)
		if err := o.close(nil); err != nil {
			return fmt.Errorf("snapshot: table %s of tenant %s: %w", t.Name, m.Tenant, err)
		}
		e.record(m, t, key, o)
	}
	e.o.Log.Debug("table saved for several tenants in one scan", "table", t.Name.String(), "tenants", len(u.many),
		"seconds", time.Since(start).Seconds())
	return nil
}

// splitter routes COPY text lines "tenant\trow..." to the tenant's object, without
// the tenant field.
type splitter struct {
	ctx   context.Context
	e     *exporter
	t     *catalog.Table
	enc   *zstd.Encoder
	byKey map[string]*archive.Manifest
	seen  map[*archive.Manifest]bool

	prefix []byte // the tenant field read so far
	inRow  bool   // past the tenant field, inside a row
	cur    *object
	w      *tapped // cur, through the taps collecting its keys
	curM   *archive.Manifest
	curTag string // the tenant field of curM's rows
	curKey string
}

func (s *splitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if !s.inRow {
			i := bytes.IndexByte(p, '\t')
			if i < 0 {
				if s.prefix = append(s.prefix, p...); len(s.prefix) > 256 {
					return 0, fmt.Errorf("tenant field longer than 256 bytes")
				}
				return n, nil
			}
			s.prefix = append(s.prefix, p[:i]...)
			p = p[i+1:]
			if err := s.switchTo(string(s.prefix)); err != nil {
				return 0, err
			}
			s.prefix, s.inRow = s.prefix[:0], true
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := s.w.Write(p); err != nil {
				return 0, err
			}
			return n, nil
		}
		if _, err := s.w.Write(p[:i+1]); err != nil {
			return 0, err
		}
		p, s.inRow = p[i+1:], false
	}
	return n, nil
}

func (s *splitter) switchTo(tenant string) error {
	if s.curM != nil && s.curTag == tenant {
		return nil
	}
	m := s.byKey[tenant]
	switch {
	case m == nil:
		return fmt.Errorf("row of tenant %q, not one being saved", tenant)
	case s.seen[m]:
		return fmt.Errorf("rows of tenant %s not contiguous: the scan is not ordered by tenant", tenant)
	}
	if err := s.finish(nil); err != nil {
		return err
	}
	s.seen[m], s.curM, s.curTag = true, m, tenant
	s.curKey = archive.TableKey(m.Tenant, m.ID, s.t.Name.Schema, s.t.Name.Table)
	s.cur = openObject(s.ctx, s.e.storeOf(m), s.curKey, s.enc)
	s.w = s.e.tapIDs(s.t, m, s.cur)
	return nil
}

// finish closes the open object: committed with a nil err, abandoned otherwise.
func (s *splitter) finish(err error) error {
	if s.cur == nil {
		return err
	}
	o := s.cur
	s.cur = nil
	if err == nil && s.inRow {
		err = fmt.Errorf("COPY text ended inside a row")
	}
	if cerr := o.close(s.w.done(err)); cerr != nil {
		return cerr
	}
	s.e.record(s.curM, s.t, s.curKey, o)
	return nil
}
