package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// callLogdWorld is a generated call-logd database on the test's PostgreSQL, with its
// recordings and export zips under a temporary directory: what every CLI test of the
// real schema starts from.
type callLogdWorld struct {
	ctx      context.Context
	dsn      string
	conn     *pgx.Conn
	dir      string // the test's temporary directory, also for config and storage
	rec, exp string // the recordings and exports roots
	res      *fixture.Result
}

// newCallLogdWorld creates call-logd's schema and generates o's tenants; the roots
// are set by the world, whatever o says.
func newCallLogdWorld(t *testing.T, o fixture.Options) *callLogdWorld {
	t.Helper()
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	w := &callLogdWorld{ctx: ctx, dsn: dsn, conn: testenv.Connect(t, dsn), dir: t.TempDir()}
	w.rec, w.exp = filepath.Join(w.dir, "recordings"), filepath.Join(w.dir, "exports")
	if err := fixture.CreateSchema(ctx, w.conn); err != nil {
		t.Fatal(err)
	}
	o.RecordingsRoot, o.ExportsRoot = w.rec, w.exp
	res, err := fixture.Generate(ctx, w.conn, o)
	if err != nil {
		t.Fatal(err)
	}
	w.res = res
	return w
}

// filesYAML is the configuration's files section for the world's two roots.
func (w *callLogdWorld) filesYAML() string {
	return "files:\n  - table: public.call_logd_recording\n    column: path\n    root: " + w.rec +
		"\n  - table: public.call_logd_export\n    column: path\n    root: " + w.exp + "\n"
}
