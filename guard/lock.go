package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrBusy is returned with NoWait when another guard holds the lock, and by
// LockTx while a guard or a restore does.
var ErrBusy = errors.New("another purgeguard run holds the lock")

// lockKey is the advisory lock purgeguard runs take, in the two-int form so that it
// cannot collide with a service's own single-bigint keys: 'pgrd', 1.
const lockKey1, lockKey2 = 0x70677264, 1

// Lock takes the advisory lock on its own connection, held until unlock: a session
// lock, so a command that opens transactions of its own does not release it.
func Lock(ctx context.Context, cfg *pgx.ConnConfig, noWait bool) (unlock func(), err error) {
	return lock(ctx, cfg, noWait, slog.New(slog.DiscardHandler))
}

// lock is Lock that says, when it has to wait, that it waits and for whom: an
// operator whose guard run seems stuck learns which session holds the lock.
func lock(ctx context.Context, cfg *pgx.ConnConfig, noWait bool, log *slog.Logger) (unlock func(), err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("guard: connect for the lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockKey1, lockKey2).Scan(&ok); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("guard: lock: %w", err)
	}
	if !ok && noWait {
		conn.Close(ctx)
		return nil, ErrBusy
	}
	if !ok {
		args := []any{}
		var pid int
		var app, client string
		var since time.Time
		// The holder as the server knows it (the two-int form: classid, objid, objsubid 2),
		// in this database: advisory locks are per database, and another database's
		// guard holding the same key is not the one in the way.
		if err := conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local socket'), a.backend_start
			FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2 AND l.granted
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1`,
			lockKey1, lockKey2).Scan(&pid, &app, &client, &since); err == nil {
			args = append(args, "holder_pid", pid, "holder_application", app, "holder_client", client, "holder_since", since)
		}
		log.Info("waiting for purgeguard's lock: another guard run or a restore holds it (--no-wait fails instead)", args...)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", lockKey1, lockKey2); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("guard: lock: %w", err)
		}
		log.Info("purgeguard's lock taken")
	}
	return func() {
		// Released before the session closes: the server ends a closed session's
		// backend, and frees its locks, only some time after the client is gone, and
		// a restore or guard started right after would find the lock still held.
		// Closing releases it anyway if this fails.
		cctx := context.WithoutCancel(ctx)
		_, _ = conn.Exec(cctx, "SELECT pg_advisory_unlock($1, $2)", lockKey1, lockKey2)
		_ = conn.Close(cctx)
	}, nil
}

// LockTx takes the same lock for the length of tx, without waiting, or returns
// ErrBusy: a restore takes it so that it never loads a tenant while a guard run
// (and the purge it wraps) is at work, and a guard waits for the restore to end.
func LockTx(ctx context.Context, tx pgx.Tx) error {
	var ok bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1, $2)", lockKey1, lockKey2).Scan(&ok); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if !ok {
		return ErrBusy
	}
	return nil
}
