package retention

import "testing"

func TestDays(t *testing.T) {
	n := func(d int) *int { return &d }
	tests := []struct {
		name            string
		tenant, global  *int
		purge, purgeDef int
		builtin, want   int
	}{
		{"tenant's own days win", n(30), n(90), 100, 365, 365, 30},
		{"tenant's own zero days win", n(0), nil, 100, 365, 365, 0},
		{"nothing changed: global", nil, n(365), 365, 365, 365, 365},
		{"global changed: global", nil, n(90), 365, 365, 365, 90},
		{"purge job changed, global not: purge job", nil, n(365), 100, 365, 365, 100},
		{"both changed: global", nil, n(90), 100, 365, 365, 90},
		{"global NULL counts as the built-in default", nil, nil, 100, 365, 365, 100},
		{"global NULL, purge job unchanged: built-in", nil, nil, 365, 365, 2, 2},
		{"export: global 2 is the built-in, purge job changed", nil, n(2), 100, 365, 2, 100},
		{"export: global 3 changed", nil, n(3), 100, 365, 2, 3},
		{"purge default one off", nil, n(365), 364, 365, 365, 364},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Days(tt.tenant, tt.global, tt.purge, tt.purgeDef, tt.builtin); got != tt.want {
				t.Errorf("Days = %d, want %d", got, tt.want)
			}
		})
	}
}
