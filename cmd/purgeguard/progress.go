package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows long work: one line redrawn in place on a terminal, else a log
// line per item (a cron job's log, a CI run) and a summary from the command.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	log   *slog.Logger
	verb  string
	start time.Time
	last  time.Time
	items int
	total int
	rows  int64
	bytes int64
	drawn bool
}

func newProgress(e *env, verb string, total int) *progress {
	p := &progress{w: e.stderr, log: e.log, verb: verb, total: total, start: time.Now(), last: time.Now()}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// item records one finished table: logged on its own when not on a terminal.
func (p *progress) item(what string, rows, bytes int64, attrs ...any) {
	p.add(rows, bytes, false, func() {
		p.log.Info(p.verb, append([]any{"item", what, "rows", rows, "bytes", bytes}, attrs...)...)
	})
}

// minor records one of many small items (a file): off a terminal, only a periodic
// line says how far the work is.
func (p *progress) minor(bytes int64) { p.add(0, bytes, true, nil) }

// periodic is how often minor items are summed up in the log.
const periodic = 10 * time.Second

func (p *progress) add(rows, bytes int64, minor bool, logItem func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.items++
	p.rows += rows
	p.bytes += bytes
	now := time.Now()
	switch {
	case p.tty:
		if now.Sub(p.last) >= 100*time.Millisecond {
			p.last = now
			p.draw()
		}
	case !minor:
		logItem()
	case now.Sub(p.last) >= periodic:
		p.last = now
		p.log.Info(p.verb+" in progress", "items", p.items, "rows", p.rows, "bytes", p.bytes)
	}
}

func (p *progress) draw() {
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.bytes) / secs / 1e6
	}
	of := ""
	if p.total > 0 {
		of = fmt.Sprintf("/%d", p.total)
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %d%s items, %d rows, %.1f MB, %.1f MB/s", p.verb, p.items, of, p.rows, float64(p.bytes)/1e6, rate)
	p.drawn = true
}

// done ends the progress line so that what follows starts on a clean line.
// done ends the display; ok false (the work failed) draws the last line but logs no
// "finished" summary that would read as success.
func (p *progress) done(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		p.draw()
		fmt.Fprintln(p.w)
	}
	if !p.tty && ok {
		p.log.Info(p.verb+" finished", "items", p.items, "rows", p.rows, "bytes", p.bytes,
			"seconds", time.Since(p.start).Round(time.Millisecond).Seconds())
	}
}
