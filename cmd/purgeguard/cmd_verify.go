package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/seal"
)

func newVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "re-read snapshots: checksums, decompression, row counts and blobs (exit 4 on any mismatch)",
		Description: `Every object a manifest names is read back: its SHA-256 and size, that it
decompresses, that its rows and bytes match the manifest; every file blob decompresses
to the SHA-256 and size recorded. Every problem is named; the exit status is 4 if any.

An encrypted snapshot is checked without any key from its plaintext envelope: every
object it lists (tables, blobs, the sealed manifest) is there, of the size and SHA-256
written. With --contents it is also opened (encryption.identity_file) and checked as
above. A snapshot it cannot open (its tenant's keys forgotten, with the date; no
identity given) is listed UNREAD with the reason and the others are still checked:
the exit status is then 1, or 4 if any snapshot failed.

Examples:
   purgeguard verify --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71
   purgeguard verify --tenant 2f3c… --snapshot 0193…
   purgeguard verify --all -o json`,
		Flags: []cli.Flag{
			newTenantFlag(),
			&cli.StringFlag{Name: "snapshot", Aliases: []string{"s"}, Usage: "snapshot `ID` (default: every snapshot of --tenant)"},
			&cli.BoolFlag{Name: "all", Usage: "every snapshot of every tenant"},
			&cli.BoolFlag{Name: "contents", Usage: "open encrypted snapshots too (encryption.identity_file) and check their rows and files"},
		},
		Action: runVerify,
	}
}

type verifyResult struct {
	Tenant   uuid.UUID `json:"tenant"`
	Snapshot uuid.UUID `json:"snapshot"`
	OK       bool      `json:"ok"`
	Problems []string  `json:"problems"`
	// Unread says why --contents could not open the snapshot (its stored bytes
	// were checked).
	Unread string `json:"unread,omitempty"`
}

// unreadable reports whether err says that a sealed snapshot cannot be opened with
// the keys at hand, rather than that it is damaged or the store failed.
func unreadable(err error) bool {
	for _, target := range []error{seal.ErrForgotten, seal.ErrNoIdentity, seal.ErrNotRecipient, seal.ErrNoKey, repository.ErrSealed} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func runVerify(c *cli.Context) error {
	e := getEnv(c)
	tenants, err := tenantArgs(c)
	if err != nil {
		return err
	}
	all := c.Bool("all")
	switch {
	case all && len(tenants) > 0:
		return usagef("verify: --all and --tenant exclude each other")
	case !all && len(tenants) == 0:
		return usagef("verify: give --tenant (and optionally --snapshot), or --all")
	case c.IsSet("snapshot") && len(tenants) != 1:
		return usagef("verify: --snapshot needs exactly one --tenant")
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	// Snapshots are verified one manifest at a time: a repository of many
	// snapshots of many files never sits in memory.
	var refs []archive.SnapshotRef
	results := []verifyResult{}
	bad, unread := 0, 0
	var firstUnread error
	if c.IsSet("snapshot") {
		id, err := uuid.Parse(c.String("snapshot"))
		if err != nil {
			return usagef("--snapshot %q: not a snapshot id", c.String("snapshot"))
		}
		refs = append(refs, archive.SnapshotRef{Tenant: tenants[0], ID: id})
	} else {
		if all {
			tenants = []uuid.UUID{uuid.Nil}
		}
		for _, t := range tenants {
			list, broken, err := repository.ListAll(c.Context, store, t)
			if err != nil {
				return err
			}
			// A broken manifest is reported with the rest, never in their way.
			for _, b := range broken {
				results = append(results, verifyResult{Tenant: b.Tenant, Snapshot: b.ID, Problems: []string{b.Err.Error()}})
				bad++
			}
			if len(list) == 0 && len(broken) == 0 && t != uuid.Nil {
				return fmt.Errorf("verify: tenant %s: %w", t, repository.ErrNoSnapshot)
			}
			for _, s := range list {
				refs = append(refs, s.SnapshotRef)
			}
		}
	}
	chk, err := repository.NewChecker(store)
	if err != nil {
		return err
	}
	defer chk.Close()
	var op repository.Opener
	if c.Bool("contents") {
		if op, err = opener(c.Context, e, store); err != nil {
			return err
		}
	}
	prog := newProgress(e, "verify", 0)
	for _, ref := range refs {
		sealed, err := repository.IsSealed(c.Context, store, ref)
		if err != nil {
			prog.done(false)
			return err
		}
		var probs repository.Problems
		if sealed {
			// Keyless first: the stored bytes, as the envelope lists them.
			if probs, err = repository.VerifySealed(c.Context, store, ref, func(_ string, n int64) { prog.minor(n) }); err != nil {
				prog.done(false)
				return err
			}
			if !c.Bool("contents") || len(probs) > 0 {
				r := verifyResult{Tenant: ref.Tenant, Snapshot: ref.ID, OK: len(probs) == 0, Problems: []string{}}
				for _, p := range probs {
					r.Problems = append(r.Problems, p.Error())
				}
				if !r.OK {
					bad++
				}
				results = append(results, r)
				continue
			}
		}
		m, objects, err := repository.Open(c.Context, store, ref, op)
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			results = append(results, verifyResult{Tenant: ref.Tenant, Snapshot: ref.ID, Problems: []string{err.Error()}})
			bad++
			continue
		}
		if unreadable(err) {
			// Its stored bytes passed; its contents cannot be opened here (a forgotten
			// tenant, no identity): said for this snapshot, and the others go on.
			results = append(results, verifyResult{Tenant: ref.Tenant, Snapshot: ref.ID, OK: true, Problems: []string{}, Unread: err.Error()})
			if firstUnread == nil {
				firstUnread = err
			}
			unread++
			continue
		}
		if err != nil {
			prog.done(false)
			return err
		}
		if objects != store {
			objChk, err := repository.NewChecker(objects)
			if err != nil {
				return err
			}
			probs, err = objChk.Verify(c.Context, m, func(_ string, n int64) { prog.minor(n) })
			objChk.Close()
			if err != nil {
				prog.done(false)
				return err
			}
		} else if probs, err = chk.Verify(c.Context, m, func(_ string, n int64) { prog.minor(n) }); err != nil {
			prog.done(false)
			return err
		}
		r := verifyResult{Tenant: m.Tenant, Snapshot: m.ID, OK: len(probs) == 0, Problems: []string{}}
		for _, p := range probs {
			r.Problems = append(r.Problems, p.Error())
		}
		if !r.OK {
			bad++
		}
		results = append(results, r)
	}
	prog.done(true)
	if err := e.emit(map[string]any{"ok": bad == 0 && unread == 0, "snapshots": results}, func(w io.Writer) {
		for _, r := range results {
			if r.Unread != "" {
				fmt.Fprintf(w, "UNREAD  snapshot %s of tenant %s: stored bytes ok, contents not opened: %s\n", r.Snapshot, r.Tenant, r.Unread)
				continue
			}
			if r.OK {
				fmt.Fprintf(w, "ok      snapshot %s of tenant %s\n", r.Snapshot, r.Tenant)
				continue
			}
			fmt.Fprintf(w, "FAILED  snapshot %s of tenant %s\n", r.Snapshot, r.Tenant)
			for _, p := range r.Problems {
				fmt.Fprintf(w, "        %s\n", p)
			}
		}
		if len(results) == 0 {
			fmt.Fprintln(w, "no snapshot to verify")
		}
	}); err != nil {
		return err
	}
	if bad > 0 {
		return &errReported{code: exitVerify}
	}
	if unread > 0 && e.json {
		return &errReported{code: exitError} // each one says why in the document
	}
	if unread > 0 {
		return fmt.Errorf("verify --contents: %d of %d snapshots could not be opened; the first: %w", unread, len(results), firstUnread)
	}
	return nil
}
