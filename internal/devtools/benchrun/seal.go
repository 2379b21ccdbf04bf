package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// sealBench measures encryption's cost (issue 15): purgeguard snapshot of the tenant
// (rows and files) into a fresh file:// store, plaintext and encrypted, then restore
// from each into an emptied database (its rows; the files themselves are still on
// disk with their content and kept, their blobs not read), then the same restore with
// its files written into an empty --files-root (every blob and pack read), in the same run, in pairs
// whose order alternates; the median of runs each, each pair's ratios, with peak RSS. Each snapshot goes to an empty store: blobs are uploaded
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
	type variant struct {
		name, snapCfg, restCfg, store string
		snaps, rests, fileRests       []measure
	}
	vs := []*variant{
		{name: "plaintext", snapCfg: fullCfg, restCfg: fullCfg},
		{name: "encrypted", snapCfg: sealCfg, restCfg: openCfg},
	}
	for _, v := range vs {
		v.store = filepath.Join(work, "seal-"+v.name)
	}
	// The runs are paired and their order alternates (plaintext first, then
	// encrypted first, …): whatever slows a stretch of the run (autovacuum after the
	// fixture, the page cache filling) falls on both sides alike. Run one after the
	// other, every plaintext run came first, and a restore printed 0.80.
	order := func(i int) []*variant {
		if i%2 == 1 {
			return []*variant{vs[1], vs[0]}
		}
		return vs
	}
	for i := range runs {
		for _, v := range order(i) {
			if err := os.RemoveAll(v.store); err != nil {
				return err
			}
			cmd := command(bin, "--log-level", "warn", "snapshot", "--tenant", tenant.String())
			cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL=file://"+v.store, "PURGEGUARD_CONFIG="+v.snapCfg)
			cmd.Stdout, cmd.Stderr = nil, os.Stderr
			m, err := timed("snapshot "+v.name, cmd)
			if err != nil {
				return err
			}
			v.snaps = append(v.snaps, m)
		}
	}
	// restores runs each variant's restore, pairs in alternating order, into an
	// emptied database, and into an emptied filesRoot when one is given.
	restores := func(label, filesRoot string, into func(*variant) *[]measure) error {
		for i := range runs {
			for _, v := range order(i) {
				if err := r.empty(ctx); err != nil {
					return err
				}
				args := []string{"--log-level", "warn", "restore", "--tenant", tenant.String(), "--target-database-url", r.dsn}
				if filesRoot != "" {
					if err := os.RemoveAll(filesRoot); err != nil {
						return err
					}
					if err := os.MkdirAll(filesRoot, 0o755); err != nil {
						return err
					}
					args = append(args, "--files-root", filesRoot)
				}
				cmd := command(bin, args...)
				cmd.Env = append(os.Environ(), "PURGEGUARD_STORAGE_URL=file://"+v.store, "PURGEGUARD_CONFIG="+v.restCfg)
				cmd.Stdout, cmd.Stderr = nil, os.Stderr
				m, err := timed(label+" "+v.name, cmd)
				if err != nil {
					return err
				}
				ms := into(v)
				*ms = append(*ms, m)
			}
		}
		return nil
	}
	if err := restores("restore", "", func(v *variant) *[]measure { return &v.rests }); err != nil {
		return err
	}
	// Then the restore a purge calls for: the files are gone, so every blob and
	// pack is read (and, encrypted, opened) and every file written, into an empty
	// --files-root.
	filesRoot := filepath.Join(work, "seal-files-root")
	if err := restores("restore with files", filesRoot, func(v *variant) *[]measure { return &v.fileRests }); err != nil {
		return err
	}
	if err := os.RemoveAll(filesRoot); err != nil {
		return err
	}
	for _, v := range vs {
		snap, rest, frest := middle(v.snaps), middle(v.rests), middle(v.fileRests)
		fmt.Printf("seal: %-9s snapshot (rows and files) %7.2f s, peak RSS %6.1f MiB; restore (rows; files on disk kept, no blob read) %7.2f s, peak RSS %6.1f MiB\n",
			v.name, snap.wall.Seconds(), float64(snap.rssKiB)/1024, rest.wall.Seconds(), float64(rest.rssKiB)/1024)
		fmt.Printf("seal: %-9s restore with its files written (rows, every blob and pack read, files into an empty --files-root) %7.2f s, peak RSS %6.1f MiB\n",
			v.name, frest.wall.Seconds(), float64(frest.rssKiB)/1024)
	}
	for i := range runs {
		fmt.Printf("seal: pair %d (%s first): encrypted / plaintext snapshot %.2f, restore %.2f, restore with files %.2f\n", i+1, order(i)[0].name,
			vs[1].snaps[i].wall.Seconds()/vs[0].snaps[i].wall.Seconds(), vs[1].rests[i].wall.Seconds()/vs[0].rests[i].wall.Seconds(),
			vs[1].fileRests[i].wall.Seconds()/vs[0].fileRests[i].wall.Seconds())
	}
	ps, pr := middle(vs[0].snaps).wall.Seconds(), middle(vs[0].rests).wall.Seconds()
	es, er := middle(vs[1].snaps).wall.Seconds(), middle(vs[1].rests).wall.Seconds()
	pf, ef := middle(vs[0].fileRests).wall.Seconds(), middle(vs[1].fileRests).wall.Seconds()
	fmt.Printf("seal: encrypted / plaintext, medians: snapshot %.2f (target <= 1.1: %s), restore %.2f (target <= 1.1: %s), restore with files %.2f (target <= 1.1: %s)\n",
		es/ps, verdict(es/ps <= 1.1), er/pr, verdict(er/pr <= 1.1), ef/pf, verdict(ef/pf <= 1.1))
	fmt.Println("seal: targets: encrypted <= 1.1x plaintext for each, peak RSS <= 64 MiB (compare the two lines above)")
	// The wall time of a restore that writes every file leans on the disk: creating
	// tens of thousands of files in one directory varies threefold from run to run
	// here, whatever the variant. purgeguard's own CPU is printed beside it, for
	// what encryption costs the process; the verdict stays the wall time's.
	pc, ec := medianOwnCPU(vs[0].fileRests), medianOwnCPU(vs[1].fileRests)
	fmt.Printf("seal: restore with files, purgeguard's own CPU (user and system), medians: plaintext %.2f s, encrypted %.2f s, ratio %.2f (not the target's measure: the wall time above is)\n",
		pc, ec, ec/pc)
	return nil
}

// medianOwnCPU is the median of the runs' own CPU seconds.
func medianOwnCPU(ms []measure) float64 {
	cpu := make([]float64, len(ms))
	for i, m := range ms {
		cpu[i] = m.ownCPU
	}
	slices.Sort(cpu)
	return cpu[len(cpu)/2]
}
