package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// Profiling for developers, not a user-facing feature (no flag, no help text):
// PURGEGUARD_CPU_PROFILE=FILE writes a pprof CPU profile of the whole run,
// PURGEGUARD_ALLOC_PROFILE=FILE a profile of every allocation (sampled every 4 KiB
// instead of 512: a short run's garbage is what makes it collect, and the
// collector's preemptions cost CPU on the goroutines it stops), and
// PURGEGUARD_TRACE=FILE a runtime/trace execution trace (where the wall clock
// went: a goroutine blocked on a syscall, a channel or the scheduler), to
// attribute a benchmark's cost (`go tool pprof`, `go tool trace`). The files are
// written when the command returns; a run killed by a signal leaves them cut.
func startProfiling(stderr io.Writer) (stop func()) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	start := func(env string, begin func(io.Writer) error, end func()) {
		path := os.Getenv(env)
		if path == "" {
			return
		}
		f, err := os.Create(path)
		if err == nil {
			if err = begin(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "purgeguard: %s=%s: %v (not profiled)\n", env, path, err)
			return
		}
		stops = append(stops, func() {
			end()
			if err := f.Close(); err != nil {
				fmt.Fprintf(stderr, "purgeguard: %s=%s: %v\n", env, path, err)
			}
		})
	}
	start("PURGEGUARD_CPU_PROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile)
	var allocs io.Writer
	start("PURGEGUARD_ALLOC_PROFILE", func(w io.Writer) error {
		runtime.MemProfileRate = 4 << 10
		allocs = w
		return nil
	}, func() {
		if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
			fmt.Fprintf(stderr, "purgeguard: PURGEGUARD_ALLOC_PROFILE: %v\n", err)
		}
	})
	start("PURGEGUARD_TRACE", trace.Start, trace.Stop)
	return stop
}
