package policy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The JSON shape is an interface: scripts read it under --output json. Run
// `go test ./policy/ -run Golden -update` after an intended change, and review
// the diff.
func TestGoldenJSON(t *testing.T) {
	acme := uuid.MustParse("0b0e5f3a-7d41-4c55-8e0f-3a9d6c2b1e02")
	globex := uuid.MustParse("c3a1f2e4-9b7d-4e6f-8a5c-2d1b0e9f8a03")
	initech := uuid.MustParse("f47ac10b-58cc-4372-a567-0e02b2c3d479")
	master := uuid.MustParse("6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01")
	gone := uuid.MustParse("9d3c4b2a-1f0e-4d9c-8b7a-6f5e4d3c2b10")
	rules := policy.DefaultRules()
	rules.Protected = []uuid.UUID{master}

	for _, tc := range []struct {
		file string
		in   policy.Input
	}{
		{"refused.json", policy.Input{
			Targets:          []uuid.UUID{initech, master, acme, gone},
			Database:         []uuid.UUID{master, acme, globex, initech},
			SourceOfTruth:    []uuid.UUID{master, globex},
			HasSourceOfTruth: true,
			LastActivity:     map[uuid.UUID]time.Time{acme: now.Add(-time.Hour)},
			Now:              now,
		}},
		{"allowed.json", policy.Input{
			Targets:  []uuid.UUID{gone},
			Database: append(tids(1, 20), master, acme),
			Now:      now,
		}},
		{"derived.json", policy.Input{
			Database:           append(tids(1, 20), master, acme),
			SourceOfTruth:      tids(1, 20),
			HasSourceOfTruth:   true,
			PreviousSourceSize: 20,
			Now:                now,
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			d := policy.Decide(tc.in, rules)
			got, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			var back policy.Decision
			if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, d) {
				t.Errorf("JSON round trip: got %+v, %v, want %+v", back, err, d)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("JSON of the decision: got\n%s\nwant (%s)\n%s", got, path, want)
			}
		})
	}
}
