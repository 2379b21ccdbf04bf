package config_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/config"
)

// LoadPurgeDB merges wazo-purge-db's files as xivo's read_config_file_hierarchy
// and ChainMap do: conf.d in name order before the main file, the first file
// setting a key winning, mappings merged key by key.
func TestLoadPurgeDB(t *testing.T) {
	tests := []struct {
		name      string
		main      string            // "" : no main file
		confd     map[string]string // in the conf.d the main file names
		days      int
		perPlugin map[string]int
		wantErr   string // the error names file and line
	}{
		{name: "main file only", main: "days_to_keep: 90\ndays_to_keep_per_plugin:\n  recordings: 7\n",
			days: 90, perPlugin: map[string]int{"recordings": 7}},
		{name: "nothing set: 365", main: "debug: false\n", days: 365, perPlugin: map[string]int{}},
		{name: "empty main file", main: "\n", days: 365, perPlugin: map[string]int{}},
		{name: "zero days are legal", main: "days_to_keep: 0\n", days: 0, perPlugin: map[string]int{}},
		{name: "conf.d beats the main file", main: "days_to_keep: 365\n",
			confd: map[string]string{"50-x.yml": "days_to_keep: 30\n"}, days: 30, perPlugin: map[string]int{}},
		{name: "the first conf.d file in name order wins", main: "days_to_keep: 365\n",
			confd: map[string]string{"10-a.yml": "days_to_keep: 10\n", "90-z.yml": "days_to_keep: 90\n"}, days: 10, perPlugin: map[string]int{}},
		{name: "per-plugin mappings merge key by key",
			main: "days_to_keep_per_plugin:\n  cel: 31\n  exports: 5\n",
			confd: map[string]string{
				"10-a.yml": "days_to_keep_per_plugin:\n  recordings: 7\n",
				"20-b.yml": "days_to_keep_per_plugin:\n  recordings: 8\n  exports: 1\n",
			},
			days: 365, perPlugin: map[string]int{"cel": 31, "exports": 1, "recordings": 7}},
		{name: "dot files and non-.yml files are skipped", main: "days_to_keep: 365\n",
			confd: map[string]string{".hidden.yml": "days_to_keep: 1\n", "a.yaml": "days_to_keep: 2\n", "b.yml.dpkg-old": "days_to_keep: 3\n"},
			days:  365, perPlugin: map[string]int{}},
		{name: "a string is not days", main: "days_to_keep: '30'\n", wantErr: "config.yml:1: days_to_keep"},
		{name: "a fraction is not days", main: "days_to_keep_per_plugin:\n  recordings: 1.5\n", wantErr: "config.yml:2: days_to_keep_per_plugin.recordings"},
		{name: "negative days", main: "days_to_keep: -1\n", wantErr: "config.yml:1: days_to_keep: -1"},
		{name: "per-plugin not a mapping", main: "days_to_keep_per_plugin:\n", wantErr: "config.yml:1: days_to_keep_per_plugin"},
		{name: "invalid YAML names its line", main: "debug: false\ndays_to_keep: 30\n\tbad: 1\n", wantErr: "config.yml:2: found a tab character"},
		{name: "invalid conf.d file is refused", main: "days_to_keep: 30\n",
			confd: map[string]string{"50-x.yml": "days_to_keep: [\n"}, wantErr: "50-x.yml:1"},
		{name: "not a mapping", main: "- 1\n", wantErr: "config.yml:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			confd := filepath.Join(dir, "conf.d")
			if err := os.Mkdir(confd, 0o755); err != nil {
				t.Fatal(err)
			}
			main := filepath.Join(dir, "config.yml")
			// Every main mapping points at the test's conf.d (the default is /etc's),
			// after its own lines, so that the lines the test names stay.
			body := tt.main
			if !strings.HasPrefix(body, "- ") {
				body += "extra_config_files: " + confd + "\n"
			}
			if err := os.WriteFile(main, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			for n, body := range tt.confd {
				if err := os.WriteFile(filepath.Join(confd, n), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := config.LoadPurgeDB(main)
			if tt.wantErr != "" {
				want := tt.wantErr
				var ce *config.Error
				if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v (%T), want a *config.Error containing %q", err, err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DaysToKeep != tt.days || !maps.Equal(got.PerPlugin, tt.perPlugin) {
				t.Errorf("got days_to_keep %d, per plugin %v; want %d, %v", got.DaysToKeep, got.PerPlugin, tt.days, tt.perPlugin)
			}
		})
	}
}

// A missing file at the default path is a host without wazo-purge-db; a missing
// file that was configured is an error; "" reads nothing.
func TestLoadPurgeDBMissing(t *testing.T) {
	if _, err := os.Stat(config.DefaultPurgeConfig); err == nil {
		t.Skip(config.DefaultPurgeConfig + " exists on this host")
	}
	for _, path := range []string{config.DefaultPurgeConfig, ""} {
		got, err := config.LoadPurgeDB(path)
		if err != nil || got.DaysToKeep != 365 || len(got.PerPlugin) != 0 {
			t.Errorf("LoadPurgeDB(%q) = %+v, %v; want days_to_keep 365 and no error", path, got, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "config.yml")
	var ce *config.Error
	if _, err := config.LoadPurgeDB(missing); !errors.As(err, &ce) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadPurgeDB(%q): got %v, want a *config.Error naming the file", missing, err)
	}
}

// DaysFor is wazo-purge-db's days_to_keep_per_plugin.get(plugin, days_to_keep),
// with -d replacing days_to_keep only.
func TestPurgeDBDaysFor(t *testing.T) {
	p := config.PurgeDB{DaysToKeep: 90, PerPlugin: map[string]int{"recordings": 7, "exports": 0}}
	d := func(n int) *int { return &n }
	tests := []struct {
		plugin   string
		override *int
		want     int
	}{
		{"recordings", nil, 7},
		{"recordings", d(0), 7},
		{"exports", d(30), 0},
		{"call-logs", nil, 90},
		{"call-logs", d(0), 0},
		{"", d(5), 5},
	}
	for _, tt := range tests {
		if got := p.DaysFor(tt.plugin, tt.override); got != tt.want {
			t.Errorf("DaysFor(%q, %v) = %d, want %d", tt.plugin, tt.override, got, tt.want)
		}
	}
}
