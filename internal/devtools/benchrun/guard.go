package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// guardOverhead measures `purgeguard guard --delete <empty> -- true` on a database
// of many tenants: the price of wrapping a sync run that deletes nothing.
func guardOverhead(bin, dsn, work, cfg string, runs int) (measure, error) {
	empty := filepath.Join(work, "empty.txt")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return measure{}, err
	}
	store := filepath.Join(work, "store-guard")
	defer os.RemoveAll(store)
	return median(runs, func() (measure, error) {
		cmd := command(bin, "--log-level", "warn", "guard", "--delete", empty, "--", "true")
		cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+cfg)
		cmd.Stdout, cmd.Stderr = nil, os.Stderr
		m, err := timed("purgeguard guard, empty deletion set", cmd)
		if err != nil {
			return m, fmt.Errorf("guard overhead: %w", err)
		}
		return m, nil
	})
}
