package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// sealBench measures encryption's cost (issue 15): purgeguard snapshot of the tenant
// (rows and files) into a fresh file:// store, plaintext and encrypted, then restore
// from each into an emptied database (its rows; every blob is read and checked first,
// the files themselves are still on disk and left as they are), in the same run; the median of
// runs each, with peak RSS. Each snapshot goes to an empty store: blobs are uploaded
// every time, as for a tenant's first snapshot.
func sealBench(ctx context.Context, bin, pgbin, dsn, work, fullCfg string, tenant uuid.UUID, runs int) error {
	idFile := filepath.Join(work, "seal-operator.key")
	_ = os.Remove(idFile)
	out, err := command(bin, "keys", "init", "--out", idFile).Output()
	if err != nil {
		return fmt.Errorf("keys init: %w", err)
	}
	recipient := strings.TrimSpace(string(out))
	with := func(base, name, extra string) (string, error) {
		b, err := os.ReadFile(base)
		if err != nil {
			return "", err
		}
		p := filepath.Join(work, name)
		return p, os.WriteFile(p, append(b, extra...), 0o600)
	}
	sealCfg, err := with(fullCfg, "seal-snapshot.yaml", "\nencryption:\n  recipients: ["+recipient+"]\n")
	if err != nil {
		return err
	}
	openCfg, err := with(fullCfg, "seal-restore.yaml", "\nencryption:\n  identity_file: "+idFile+"\n")
	if err != nil {
		return err
	}
	r := &restoreBench{bin: bin, pgbin: pgbin, adminDSN: dsn, tenant: tenant}
	i := strings.LastIndex(dsn, "/")
	r.dsn = dsn[:i] + "/bench_restore"
	if q := strings.Index(dsn[i:], "?"); q >= 0 {
		r.dsn += dsn[i+q:]
	}
	for _, v := range []struct{ name, snapCfg, restCfg string }{
		{"plaintext", fullCfg, fullCfg},
		{"encrypted", sealCfg, openCfg},
	} {
		store := filepath.Join(work, "seal-"+v.name)
		snap, err := median(runs, func() (measure, error) {
			if err := os.RemoveAll(store); err != nil {
				return measure{}, err
			}
			cmd := command(bin, "--log-level", "warn", "snapshot", "--tenant", tenant.String())
			cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+v.snapCfg)
			cmd.Stdout, cmd.Stderr = nil, os.Stderr
			return timed("snapshot "+v.name, cmd)
		})
		if err != nil {
			return err
		}
		rest, err := median(runs, func() (measure, error) {
			if err := r.empty(ctx); err != nil {
				return measure{}, err
			}
			cmd := command(bin, "--log-level", "warn", "restore", "--tenant", tenant.String(), "--target-database-url", r.dsn)
			cmd.Env = append(os.Environ(), "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+v.restCfg)
			cmd.Stdout, cmd.Stderr = nil, os.Stderr
			return timed("restore "+v.name, cmd)
		})
		if err != nil {
			return err
		}
		fmt.Printf("seal: %-9s snapshot (rows and files) %7.2f s, peak RSS %6.1f MiB; restore (rows, blobs checked) %7.2f s, peak RSS %6.1f MiB\n",
			v.name, snap.wall.Seconds(), float64(snap.rssKiB)/1024, rest.wall.Seconds(), float64(rest.rssKiB)/1024)
	}
	fmt.Println("seal: targets: encrypted <= 1.1x plaintext for each, peak RSS <= 64 MiB (compare the two lines above)")
	return nil
}
