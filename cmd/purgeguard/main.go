// Command purgeguard is a safety sidecar for multi-tenant PostgreSQL services that
// purge tenants: it refuses deletion sets that look wrong, snapshots every row and
// file a purge would destroy, and restores one tenant exactly.
//
// This package only parses flags, loads configuration, wires the packages together
// and maps errors to exit codes.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise: a
// sidecar's memory should not depend on the size of the tenant it saves, and the
// streams' live memory is far below it, so the collector keeps garbage from piling up.
const defaultMemoryLimit = 48 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with their own streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp()
	app.Reader, app.Writer, app.ErrWriter = stdin, stdout, stderr
	start := time.Now()
	err := app.RunContext(ctx, args)
	if name, ok := app.Metadata[unknownKey].(string); ok && err == nil {
		err = usagef("unknown command %q", name)
	}
	writeMetrics(app, start, err)
	return report(stdout, stderr, err)
}
