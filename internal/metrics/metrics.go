// Package metrics records the outcome of a purgeguard command in a Prometheus
// text-format file for node_exporter's textfile collector.
//
// A textfile is rewritten whole at every run, yet several commands (a nightly
// snapshot, the guard, a weekly prune) may share one file: Write reads the previous
// file, replaces only the series of the command that ran and keeps every other
// series as it was, so a snapshot does not erase the guard's last success. What must
// outlive one run is carried from the previous file too: the last success time of a
// run that failed, and the refusals counter.
package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Label names the command whose run a series describes.
const Label = "command"

// Metric names.
const (
	LastRun       = "purgeguard_last_run_timestamp_seconds"
	LastSuccess   = "purgeguard_last_success_timestamp_seconds"
	Duration      = "purgeguard_last_run_duration_seconds"
	ExitCode      = "purgeguard_last_run_exit_code"
	Refused       = "purgeguard_last_run_refused"
	RefusalsTotal = "purgeguard_refusals_total"
	Rows          = "purgeguard_last_run_rows"
	Bytes         = "purgeguard_last_run_bytes"
	TrashRows     = "purgeguard_trash_rows"
	TrashOldest   = "purgeguard_trash_oldest_row_timestamp_seconds"
)

// Trash is the capturing fence's trash as a trash command left it.
type Trash struct {
	Rows   int64
	Oldest *time.Time // nil when the trash is empty
}

// Run is the outcome of one command.
type Run struct {
	Command  string // the label value: snapshot, guard, check, restore, prune, verify
	Finished time.Time
	Duration time.Duration
	ExitCode int
	Refused  bool // refused by policy (exit 3 from check or guard, not a purge command's own 3)
	// Rows and Bytes are what the run saved, restored or freed. Nil when the command
	// has no such number (check, verify): no series is better than a 0 that means
	// nothing.
	Rows, Bytes *int64
	// Trash, when set, is the trash's size and oldest row (trash save).
	Trash *Trash
}

// Write records r in the textfile at path: this command's series are replaced,
// every other series of the previous file is kept. The file is replaced by rename
// (prometheus.WriteToTextfile writes a temporary file in the same directory, whose
// name does not end in .prom, so the collector never reads half a file), and a lock
// file beside it (path + ".lock") serialises commands that finish at the same time,
// so neither loses the other's series.
//
// A previous file that cannot be parsed is left alone and reported: it may have been
// edited by hand, and node_exporter already flags it; remove it to start afresh.
func Write(path string, r Run) error {
	if r.Command == "" {
		return errors.New("metrics: a run needs its command")
	}
	unlock, err := lock(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	prev, err := read(path)
	if err != nil {
		return err
	}
	ours, err := families(r, prev)
	if err != nil {
		return err
	}
	merged := merge(ours, prev, r.Command)
	if err := prometheus.WriteToTextfile(path, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return merged, nil
	})); err != nil {
		return fmt.Errorf("metrics: write %s: %w", path, err)
	}
	return nil
}

// lock takes an exclusive flock on name, released by the returned function. Writes
// take milliseconds, so waiting is fine.
func lock(name string) (func(), error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics: lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}

// read parses the previous file; none is an empty map.
func read(path string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*dto.MetricFamily{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: read %s: %w", path, err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		return nil, fmt.Errorf("metrics: previous %s (remove it to start afresh): %w", path, err)
	}
	return mfs, nil
}

// families builds this run's series with the client library, carrying the last
// success and the refusals counter from prev.
func families(r Run, prev map[string]*dto.MetricFamily) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	labels := prometheus.Labels{Label: r.Command}
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
		g.Set(v)
		reg.MustRegister(g)
	}
	finished := float64(r.Finished.UnixNano()) / 1e9
	gauge(LastRun, "When the last run of the command finished (Unix time).", finished)
	gauge(Duration, "How long the last run of the command took.", r.Duration.Seconds())
	gauge(ExitCode, "Exit status of the last run: 0 done, 1 error, 3 refused by policy, 4 verification failed; guard: the purge command's own.", float64(r.ExitCode))
	gauge(Refused, "1 if the last run was refused by policy, else 0.", b2f(r.Refused))
	const successHelp = "When the last successful (exit 0) run of the command finished (Unix time); absent until one succeeds."
	if r.ExitCode == 0 {
		gauge(LastSuccess, successHelp, finished)
	} else if v, ok := value(prev, LastSuccess, r.Command); ok {
		gauge(LastSuccess, successHelp, v)
	}
	if r.Rows != nil {
		gauge(Rows, "Rows the last run saved (snapshot, guard) or restored (restore).", float64(*r.Rows))
	}
	if r.Bytes != nil {
		gauge(Bytes, "Compressed bytes of the snapshots the last run took (snapshot, guard), or bytes it freed (prune).", float64(*r.Bytes))
	}
	if r.Trash != nil {
		gauge(TrashRows, "Rows in the capturing fence's trash after the last run: rows kept and not saved yet.", float64(r.Trash.Rows))
		oldest := 0.0 // an empty trash: no age to alert on
		if r.Trash.Oldest != nil {
			oldest = float64(r.Trash.Oldest.UnixNano()) / 1e9
		}
		gauge(TrashOldest, "When the oldest row still in the trash was deleted (Unix time); 0 when the trash is empty.", oldest)
	}
	// A counter across runs of a process that exits: carried from the previous file.
	// A removed file starts again from 0, which rate() and increase() read as a reset.
	refusals := prometheus.NewCounter(prometheus.CounterOpts{Name: RefusalsTotal,
		Help: "Runs of the command refused by policy, counted across runs while this file is kept.", ConstLabels: labels})
	old, _ := value(prev, RefusalsTotal, r.Command)
	refusals.Add(old + b2f(r.Refused))
	reg.MustRegister(refusals)
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	return mfs, nil
}

// merge adds to ours every series of prev that belongs to another command (or to
// no command). Ours keep their help and type; an old series whose family changed
// type cannot be written under the new one and is dropped.
func merge(ours []*dto.MetricFamily, prev map[string]*dto.MetricFamily, command string) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range ours {
		byName[mf.GetName()] = mf
	}
	for name, old := range prev {
		var keep []*dto.Metric
		for _, m := range old.Metric {
			if labelValue(m) != command {
				keep = append(keep, m)
			}
		}
		if len(keep) == 0 {
			continue
		}
		if cur, ok := byName[name]; ok {
			if cur.GetType() == old.GetType() {
				cur.Metric = append(cur.Metric, keep...)
			}
			continue
		}
		old.Metric = keep
		byName[name] = old
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a), labelKey(b)) })
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// value is the sample of family name for command in mfs.
func value(mfs map[string]*dto.MetricFamily, name, command string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.Metric {
		if labelValue(m) != command {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func labelValue(m *dto.Metric) string {
	for _, l := range m.Label {
		if l.GetName() == Label {
			return l.GetValue()
		}
	}
	return ""
}

// labelKey orders series stably, so that the file does not change for nothing.
func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label {
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
