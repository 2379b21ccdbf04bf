package metrics_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/purgeguard/purgeguard/internal/metrics"
)

var t0 = time.Date(2026, 3, 1, 2, 30, 0, 0, time.UTC)

func parse(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	return mfs
}

// sample is the value of family name for command, and whether there is one.
func sample(mfs map[string]*dto.MetricFamily, name, command string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			if l.GetName() == metrics.Label && l.GetValue() == command {
				if m.Counter != nil {
					return m.Counter.GetValue(), true
				}
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func want(t *testing.T, mfs map[string]*dto.MetricFamily, name, command string, v float64) {
	t.Helper()
	got, ok := sample(mfs, name, command)
	if !ok {
		t.Errorf("%s{command=%q}: absent, want %v", name, command, v)
	} else if got != v {
		t.Errorf("%s{command=%q}: got %v, want %v", name, command, got, v)
	}
}

func write(t *testing.T, path string, r metrics.Run) {
	t.Helper()
	if err := metrics.Write(path, r); err != nil {
		t.Fatal(err)
	}
}

func TestWrite_Snapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purgeguard.prom")
	write(t, path, metrics.Run{Command: "snapshot", Finished: t0, Duration: 1500 * time.Millisecond,
		Rows: new(int64(1234)), Bytes: new(int64(56789))})
	mfs := parse(t, path)
	ts := float64(t0.Unix())
	want(t, mfs, metrics.LastRun, "snapshot", ts)
	want(t, mfs, metrics.LastSuccess, "snapshot", ts)
	want(t, mfs, metrics.Duration, "snapshot", 1.5)
	want(t, mfs, metrics.ExitCode, "snapshot", 0)
	want(t, mfs, metrics.Refused, "snapshot", 0)
	want(t, mfs, metrics.RefusalsTotal, "snapshot", 0)
	want(t, mfs, metrics.Rows, "snapshot", 1234)
	want(t, mfs, metrics.Bytes, "snapshot", 56789)
	if got := mfs[metrics.RefusalsTotal].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("%s type: got %v, want COUNTER", metrics.RefusalsTotal, got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode: got %v (%v), want 0644 for node_exporter to read", fi.Mode(), err)
	}
}

// A command without rows or bytes writes no such series, and a failed run keeps the
// previous success time.
func TestWrite_FailureKeepsLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purgeguard.prom")
	if err := metrics.Write(path, metrics.Run{Command: "verify", Finished: t0, ExitCode: 4}); err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, path)
	if _, ok := sample(mfs, metrics.LastSuccess, "verify"); ok {
		t.Errorf("%s written for a command that never succeeded", metrics.LastSuccess)
	}
	for _, name := range []string{metrics.Rows, metrics.Bytes} {
		if _, ok := mfs[name]; ok {
			t.Errorf("%s written for verify, which has no such number", name)
		}
	}
	write(t, path, metrics.Run{Command: "verify", Finished: t0.Add(time.Hour)})
	write(t, path, metrics.Run{Command: "verify", Finished: t0.Add(2 * time.Hour), ExitCode: 1})
	mfs = parse(t, path)
	want(t, mfs, metrics.LastSuccess, "verify", float64(t0.Add(time.Hour).Unix()))
	want(t, mfs, metrics.LastRun, "verify", float64(t0.Add(2*time.Hour).Unix()))
	want(t, mfs, metrics.ExitCode, "verify", 1)
}

// snapshot, guard and prune share one file: each run replaces only its own series.
func TestWrite_KeepsOtherCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purgeguard.prom")
	write(t, path, metrics.Run{Command: "guard", Finished: t0, Rows: new(int64(10)), Bytes: new(int64(20))})
	write(t, path, metrics.Run{Command: "prune", Finished: t0.Add(time.Minute), Bytes: new(int64(99))})
	write(t, path, metrics.Run{Command: "snapshot", Finished: t0.Add(time.Hour), ExitCode: 1, Rows: new(int64(0)), Bytes: new(int64(0))})
	mfs := parse(t, path)
	want(t, mfs, metrics.LastSuccess, "guard", float64(t0.Unix()))
	want(t, mfs, metrics.Rows, "guard", 10)
	want(t, mfs, metrics.Bytes, "guard", 20)
	want(t, mfs, metrics.Bytes, "prune", 99)
	want(t, mfs, metrics.ExitCode, "snapshot", 1)
	if n := len(mfs[metrics.LastRun].Metric); n != 3 {
		t.Errorf("%s: got %d series, want 3 (guard, prune, snapshot)", metrics.LastRun, n)
	}
	// Running guard again replaces its series rather than adding a second one.
	write(t, path, metrics.Run{Command: "guard", Finished: t0.Add(2 * time.Hour), Rows: new(int64(11)), Bytes: new(int64(21))})
	mfs = parse(t, path)
	want(t, mfs, metrics.Rows, "guard", 11)
	if n := len(mfs[metrics.Rows].Metric); n != 2 {
		t.Errorf("%s: got %d series, want 2 (guard, snapshot)", metrics.Rows, n)
	}
}

// A series of another program sharing the file, without the command label, is kept.
func TestWrite_KeepsForeignSeries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purgeguard.prom")
	const foreign = "# HELP wazo_purge_last_run Something else.\n# TYPE wazo_purge_last_run gauge\nwazo_purge_last_run 42\n"
	if err := os.WriteFile(path, []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, path, metrics.Run{Command: "check", Finished: t0})
	mfs := parse(t, path)
	if mf, ok := mfs["wazo_purge_last_run"]; !ok || mf.Metric[0].GetGauge().GetValue() != 42 {
		t.Errorf("foreign series lost: %v", mfs["wazo_purge_last_run"])
	}
}

func TestWrite_RefusalsCarried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purgeguard.prom")
	for i, refused := range []bool{true, false, true, false} {
		code := 0
		if refused {
			code = 3
		}
		write(t, path, metrics.Run{Command: "check", Finished: t0.Add(time.Duration(i) * time.Hour), ExitCode: code, Refused: refused})
		// Another command's runs do not touch check's counter.
		write(t, path, metrics.Run{Command: "guard", Finished: t0, ExitCode: 3, Refused: true})
	}
	mfs := parse(t, path)
	want(t, mfs, metrics.RefusalsTotal, "check", 2)
	want(t, mfs, metrics.RefusalsTotal, "guard", 4)
	want(t, mfs, metrics.Refused, "check", 0)
	want(t, mfs, metrics.Refused, "guard", 1)
	want(t, mfs, metrics.LastSuccess, "check", float64(t0.Add(3*time.Hour).Unix()))
}

// A previous file that does not parse is reported and left as it was.
func TestWrite_UnparseablePrevious(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purgeguard.prom")
	const junk = "this is { not prometheus\n"
	if err := os.WriteFile(path, []byte(junk), 0o644); err != nil {
		t.Fatal(err)
	}
	err := metrics.Write(path, metrics.Run{Command: "snapshot", Finished: t0})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != junk {
		t.Errorf("the unreadable file was changed to %q", b)
	}
}

// Readers never see a partial file, and writers finishing together lose nothing:
// every read parses with every command's series, and no temporary file is left.
func TestWrite_Atomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "purgeguard.prom")
	commands := []string{"snapshot", "guard", "prune", "check"}
	for _, c := range commands {
		write(t, path, metrics.Run{Command: c, Finished: t0, Rows: new(int64(1)), Bytes: new(int64(1))})
	}
	const runs = 50
	var wg sync.WaitGroup
	errs := make(chan error, len(commands)*runs)
	for _, c := range commands {
		wg.Go(func() {
			for i := range runs {
				errs <- metrics.Write(path, metrics.Run{Command: c, Finished: t0.Add(time.Duration(i+1) * time.Second),
					Rows: new(int64(i + 1)), Bytes: new(int64(i + 1))})
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	p := expfmt.NewTextParser(model.LegacyValidation)
	for reads := 0; ; reads++ {
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		mfs, err := p.TextToMetricFamilies(f)
		f.Close()
		if err != nil {
			t.Fatalf("read %d: a partial file: %v", reads, err)
		}
		if n := len(mfs[metrics.LastRun].GetMetric()); n != len(commands) {
			t.Fatalf("read %d: %d commands' series, want %d", reads, n, len(commands))
		}
		select {
		case <-done:
		default:
			continue
		}
		break
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mfs := parse(t, path)
	for _, c := range commands {
		want(t, mfs, metrics.Rows, c, runs)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[0] != path || names[1] != path+".lock" {
		t.Errorf("files left in the directory: %v, want only the metrics file and its lock", names)
	}
}
