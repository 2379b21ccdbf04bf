package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// command returns cmd name args run under GNU time, which writes the command's peak
// RSS to a file that rss reads. Go starts children with vfork, and Linux carries the
// parent's high-water RSS into the child's ru_maxrss when it execs: every command
// measured from this process reported at least this process's own peak (the same
// 31.2 MiB for pg_dump and purgeguard alike). GNU time forks from a small process.
func command(name string, args ...string) *exec.Cmd {
	f, err := os.CreateTemp("", "benchrun-rss-*")
	if err != nil {
		panic(err) // no temp dir: nothing of the bench can run
	}
	f.Close()
	return exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", f.Name(), name}, args...)...)
}

// rss returns the peak RSS in KiB of a command made by command, once it has run.
func rss(cmd *exec.Cmd) int64 {
	path := cmd.Args[4]
	defer os.Remove(path)
	b, err := os.ReadFile(path)
	if err != nil {
		panic(fmt.Sprintf("peak RSS of %s: %v", cmd.Args[5], err))
	}
	// The last line: GNU time first notes a non-zero exit status.
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		panic(fmt.Sprintf("peak RSS of %s: %q: %v", cmd.Args[5], b, err))
	}
	return kib
}

// machineCPU returns the machine's busy CPU time so far, in seconds, from
// /proc/stat: user, nice, system, irq, softirq and steal of every core.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		if i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return float64(ticks) / 100 // USER_HZ, 100 on Linux
}
