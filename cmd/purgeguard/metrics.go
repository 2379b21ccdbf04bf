package main

import (
	"errors"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/metrics"
)

// measured are the commands whose runs --metrics-file records, and the numbers each
// reports in env.rows and env.bytes: snapshot and guard the rows and bytes saved,
// restore and undo the rows inserted, prune the bytes freed. A command that fails before it
// has a number reports 0, so the series stay in place from run to run.
var measured = map[string]struct{ rows, bytes bool }{
	"snapshot": {rows: true, bytes: true},
	"guard":    {rows: true, bytes: true},
	"restore":  {rows: true},
	"undo":     {rows: true},
	"prune":    {bytes: true},
	"check":    {},
	"verify":   {},
	"trash":    {rows: true}, // rows saved; and the trash's size and oldest row
}

// saved adds a snapshot's rows and stored (compressed) bytes to the run's numbers.
func (e *env) saved(rows, storedBytes int64) {
	e.rows += rows
	e.bytes += storedBytes
}

const measureKey = "purgeguard.measure"

// measure is a run to record: its command and the file.
type measure struct{ command, path string }

// markMeasured runs as the command's Before: after its flags are parsed, the
// configuration loaded and --help handled, so a usage error from the command line or
// a help page is never recorded. A dry run is not recorded either: it changes
// nothing, and its success would hide a failing scheduled run.
func markMeasured(c *cli.Context) error {
	if path := c.String(flagMetrics); path != "" && !c.Bool("dry-run") {
		c.App.Metadata[measureKey] = measure{command: c.Command.Name, path: path}
	}
	return nil
}

// writeMetrics records a marked run's outcome, on every exit path but usage.
func writeMetrics(app *cli.App, start time.Time, err error) {
	m, ok := app.Metadata[measureKey].(measure)
	code := exitCode(err)
	if !ok || code == exitUsage {
		return
	}
	e := app.Metadata[envKey].(*env)
	now := time.Now()
	r := metrics.Run{Command: m.command, Finished: now, Duration: now.Sub(start), ExitCode: code}
	// A refusal is reported by the command itself; guard passes a purge command's
	// own exit 3 on as a *guard.CommandError, which is not one.
	var rep *errReported
	r.Refused = errors.As(err, &rep) && rep.code == exitRefused && !rep.command
	if measured[m.command].rows {
		r.Rows = &e.rows
	}
	if measured[m.command].bytes {
		r.Bytes = &e.bytes
	}
	r.Trash = e.trash
	// Metrics watch the run; they are not its outcome. The exit status belongs to the
	// snapshot, the refusal or the purge command (guard passes the purge's own on), and
	// the systemd unit, the CronJob and the scripts branch on it: a full disk under the
	// textfile directory must not turn a saved snapshot into a failure, nor a refusal
	// into a plain error. A file that stops changing shows in node_exporter's
	// node_textfile_mtime_seconds.
	if werr := metrics.Write(m.path, r); werr != nil {
		e.log.Warn("metrics file not written", "path", m.path, "err", werr)
	}
}
