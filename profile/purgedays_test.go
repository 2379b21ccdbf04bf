package profile_test

import (
	"testing"

	"github.com/purgeguard/purgeguard/profile"
)

// Each kind gets its purger's days when the purge job names that purger
// (days_to_keep_per_plugin), else the job's days (days_to_keep), as wazo-purge-db
// hands them to call-logd's purgers.
func TestPurgeDaysFor(t *testing.T) {
	r := profile.CallLogd().Retention
	r.PurgeDays = 90
	r.PluginDays = map[string]int{"recordings": 7, "exports": 0, "cel": 31}
	want := map[string]int{"cdr": 90, "recording": 7, "export": 0}
	for _, k := range r.Kinds {
		if got := r.PurgeDaysFor(k); got != want[k.Rule.Kind] {
			t.Errorf("%s (plugin %q): %d days, want %d", k.Rule.Kind, k.Plugin, got, want[k.Rule.Kind])
		}
	}
	if got := r.PurgeDaysFor(profile.RetentionKind{}); got != 90 {
		t.Errorf("a kind without a plugin: %d days, want the job's 90", got)
	}
}
