package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// read is one consistent read of the database shared by several connections: the
// coordinator exports its snapshot and every worker imports it, so all tables of
// all tenants are read as of the same instant however many connections read them.
type consistentRead struct {
	coord         pgx.Tx
	workers       []pgx.Tx // workers[0] is the coordinator's own transaction
	conns         []*pgx.Conn
	serverVersion string
}

func openRead(ctx context.Context, cfg *pgx.ConnConfig, jobs int) (_ *consistentRead, err error) {
	r := &consistentRead{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("snapshot: connect: %w", err)
	}
	r.conns = append(r.conns, conn)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("snapshot: begin: %w", err)
	}
	if err := tune(ctx, tx); err != nil {
		return nil, err
	}
	r.coord = tx
	r.workers = append(r.workers, tx)
	var snap string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot(), current_setting('server_version')").Scan(&snap, &r.serverVersion); err != nil {
		return nil, fmt.Errorf("snapshot: export snapshot: %w", err)
	}
	if testHookAfterExport != nil {
		testHookAfterExport()
	}
	for i := 1; i < jobs; i++ {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("snapshot: connect worker %d: %w", i, err)
		}
		r.conns = append(r.conns, c)
		wtx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, fmt.Errorf("snapshot: begin worker %d: %w", i, err)
		}
		// The snapshot id is a server-made token, not input: it cannot carry SQL,
		// and SET TRANSACTION SNAPSHOT takes no parameter.
		if _, err := wtx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snap)); err != nil {
			return nil, fmt.Errorf("snapshot: worker %d: import snapshot: %w", i, err)
		}
		if err := tune(ctx, wtx); err != nil {
			return nil, err
		}
		r.workers = append(r.workers, wtx)
	}
	return r, nil
}

// tune sets the read's planner settings. Measured on the bench database, a parallel
// hash semi-join makes the leader and each worker scan call_log to build their own
// hash (call-logd has no index on tenant_uuid): without parallel query a snapshot
// takes half the CPU. JIT compiles for little gain on these scans. Both are local to
// the transaction.
func tune(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off"); err != nil {
		return fmt.Errorf("snapshot: planner settings: %w", err)
	}
	return nil
}

// close ends every read transaction and connection.
func (r *consistentRead) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range r.conns {
		_ = c.Close(ctx)
	}
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// testHookAfterExport runs between the export and the workers' import: a test
// commits a write there, which no worker may see.
var testHookAfterExport func()
