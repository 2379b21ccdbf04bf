package restore

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/place"
)

// A sweep leaves a live run's journal and temp files alone (restores of other
// tenants run beside it under the shared lock), and removes them once the run is
// dead: the kernel drops a dead process's flock.
func TestSweepJournals_LiveRunKept(t *testing.T) {
	root := t.TempDir()
	run := uuid.New()
	j, err := openJournal(place.NewRoot(root), run)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tenant", "monitor")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(dir, place.TempPrefix+journalTag+run.String()+"-0001")
	if err := os.WriteFile(temp, []byte("staged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := j.add("dir", dir); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)

	if n, err := sweepJournals(root, log); err != nil || n != 0 {
		t.Fatalf("sweep during a live run: %d removed, %v; want 0", n, err)
	}
	for _, p := range []string{temp, j.path} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("sweep during a live run removed %s: %v", p, err)
		}
	}

	j.f.Close() // the run dies: its lock goes with its file
	if n, err := sweepJournals(root, log); err != nil || n != 1 {
		t.Fatalf("sweep after the run died: %d removed, %v; want 1", n, err)
	}
	for _, p := range []string{temp, j.path} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("sweep after the run died left %s (%v)", p, err)
		}
	}
}

// The first use of a directory sweeps the temps of dead runs only: a live run's
// temp (another tenant's restore, beside this one) stays.
func TestSweepOrphans(t *testing.T) {
	root := t.TempDir()
	live, dead := uuid.New(), uuid.New()
	j, err := openJournal(place.NewRoot(root), live)
	if err != nil {
		t.Fatal(err)
	}
	defer j.remove()
	liveTemp := filepath.Join(root, place.TempPrefix+journalTag+live.String()+"-0001")
	deadTemp := filepath.Join(root, place.TempPrefix+journalTag+dead.String()+"-0001")
	for _, p := range []string{liveTemp, deadTemp} {
		if err := os.WriteFile(p, []byte("staged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := sweepOrphans(root, root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(liveTemp); err != nil {
		t.Errorf("a live run's temp was swept: %v", err)
	}
	if _, err := os.Stat(deadTemp); !os.IsNotExist(err) {
		t.Errorf("a dead run's temp was left (%v)", err)
	}
}

// A dead run's staging directory, named in its journal, is swept with the temps and
// directory copies in it; a "stage" line naming any other directory (not this run's staging directory
// in this root) removes nothing.
func TestSweepJournals_StagingDirectory(t *testing.T) {
	root := t.TempDir()
	run := uuid.New()
	j, err := openJournal(place.NewRoot(root), run)
	if err != nil {
		t.Fatal(err)
	}
	stage := stagePath(root, run)
	other := filepath.Join(root, "tenant")
	for _, d := range []string{stage, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	temp := filepath.Join(stage, place.TempPrefix+journalTag+run.String()+"-0001")
	kept := filepath.Join(other, place.TempPrefix+journalTag+run.String()+"-0002")
	// A missing directory's copy, made whole in the staging directory.
	inTree := filepath.Join(stage, "d1", "monitor", "rec.wav")
	if err := os.MkdirAll(filepath.Dir(inTree), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{temp, kept, inTree} {
		if err := os.WriteFile(p, []byte("staged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{other, stage} {
		if err := j.add("stage", s); err != nil {
			t.Fatal(err)
		}
	}
	j.f.Close() // the run dies
	if n, err := sweepJournals(root, slog.New(slog.DiscardHandler)); err != nil || n != 1 {
		t.Fatalf("sweep: %d removed, %v; want 1", n, err)
	}
	for _, p := range []string{temp, inTree, stage, j.path} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("sweep left %s (%v)", p, err)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("a stage line naming %s removed %s: %v", other, kept, err)
	}
}
