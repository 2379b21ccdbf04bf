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

// defaultGCPercent is the collector's target unless GOGC says otherwise. A snapshot's
// live heap is a few MiB of encoders and buffers whatever the tenant; at Go's default
// of 100 a long run's garbage doubles the heap past it before a collection, while a
// short run never collects, so peak memory depended on the tenant's size (measured:
// 29 vs 35 MiB for 10k and 200k call logs; 28 vs 30 at 25). A small live heap makes
// the extra collections cheap.
const defaultGCPercent = 25

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfiling := startProfiling(os.Stderr)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stopProfiling()
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
	return report(stdout, stderr, getOutput(app).json, err)
}
