// Package restore brings one tenant back from a snapshot: every object verified
// before anything is written, the target schema checked against the manifest, every
// table loaded in foreign-key order inside one transaction (rows already present are
// left alone, so a restore can run twice), sequences moved past the restored ids,
// and files written under their root with temp + fsync + rename.
package restore

import (
	"os"
	"time"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/storage"
)

// On-conflict policies for rows already present.
const (
	ConflictSkip = "skip"
	ConflictFail = "fail"
	// ConflictFillNulls also sets, in a row already present, each column the live
	// row holds NULL and the snapshot does not: what a retention purge emptied
	// (call-logd's recording path) comes back, what anyone set since stays.
	ConflictFillNulls = "fill-nulls"
)

// Options says what to restore and how.
type Options struct {
	Tenant   uuid.UUID
	Snapshot uuid.UUID // uuid.Nil: the newest committed snapshot of Tenant
	DryRun   bool
	// Tables limits the restore to these tables; empty: every table of the snapshot.
	Tables           []profile.TableName
	OnConflict       string // ConflictSkip (default), ConflictFail or ConflictFillNulls
	AllowDropColumns bool
	// Graph says where the tenant tree starts (profile.CallLogd().Tenants for call-logd).
	Graph profile.Tenants
	Files []profile.FileColumn
	// FilesRoot, when set, replaces every configured root: a file is written at the
	// same path relative to it (a scratch restore to inspect before production).
	FilesRoot      string
	OverwriteFiles bool
	// FilesOwner, "USER:GROUP" (names or numeric ids), owns every file and
	// directory written instead of their recorded owner: a restore on a host whose
	// users differ. Empty: the recorded owner (when run as root).
	FilesOwner string
	Log        *slog.Logger
	// Progress, when set, is called after each table and file.
	Progress func(Event)
	// FileJobs is how many files are staged at once (fetched, decompressed, written
	// and synced); default 4.
	FileJobs int
	// TempDir holds the list of staged files while they wait for the commit (off
	// the heap: a tenant can have a million); default os.TempDir().
	TempDir string
	// Lock, when set, runs first in the restore's transaction; its error stops the
	// restore before anything is read or written (the CLI takes the guard's lock).
	Lock func(ctx context.Context, tx pgx.Tx) error
	// Keys open encrypted snapshots (issue 15); nil: only plaintext ones can be
	// restored. The CLI hands down its keyring (internal/seal).
	Keys Opener
}

// Opener opens a tenant's sealed objects: Open returns a view of the store in which
// Get returns what was sealed, under the plaintext layout's names. Without an
// operator identity, or for a forgotten tenant, it fails saying so.
type Opener interface {
	Open(ctx context.Context, s storage.Store, tenant uuid.UUID) (storage.Store, error)
}

// Event reports one restored table or file.
type Event struct {
	Table string
	File  string
	Rows  int64
	Bytes int64
}

// Scope says which rows the snapshot holds: a whole tenant ("tenant"), or what a
// retention purge removed ("retention") with each kind's cut-off and days.
type Scope struct {
	Kind    string               `json:"kind"`
	Cutoffs map[string]time.Time `json:"cutoffs,omitempty"`
	Days    map[string]int       `json:"days,omitempty"`
}

// Report says what the restore did, or with DryRun what it would do.
type Report struct {
	Tenant   uuid.UUID     `json:"tenant"`
	Snapshot uuid.UUID     `json:"snapshot"`
	DryRun   bool          `json:"dry_run"`
	Scope    Scope         `json:"scope"` // what the snapshot holds: a whole tenant, or a retention purge's take
	Tables   []TableReport `json:"tables"`
	// Files lists the first MaxFileReports files; FilesNotListed counts the others
	// (Totals counts every file).
	Files          []FileReport `json:"files"`
	FilesNotListed int          `json:"files_not_listed,omitempty"`
	Totals         Totals       `json:"totals"`
}

// MaxFileReports bounds a report's list of files: a tenant can have a million.
const MaxFileReports = 10000

// TableReport is one table. Inserted is what was (or would be) inserted; Updated
// counts rows whose SET NULL'd references were put back, or whose NULLs were filled
// (fill-nulls).
type TableReport struct {
	Table      string `json:"table"`
	InSnapshot int64  `json:"in_snapshot"`
	Present    int64  `json:"present"`
	Inserted   int64  `json:"inserted"`
	Updated    int64  `json:"updated,omitempty"`
	Method     string `json:"method,omitempty"` // "copy" (straight in) or "staged" (through a temporary table)
}

// File outcomes.
const (
	FileWritten     = "written"         // (or would be) written
	FilePresent     = "present"         // already there, same content
	FileDiffers     = "differs"         // there with other content: refused without OverwriteFiles
	FileOverwritten = "overwritten"     // differed, replaced
	FileRefused     = "refused"         // could not be placed (after the rows committed)
	FileNotSaved    = "not_in_snapshot" // missing or outside its root at snapshot time
)

// FileReport is one file.
type FileReport struct {
	Path    string `json:"path"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Totals sums a report.
type Totals struct {
	Rows          int64 `json:"rows_in_snapshot"`
	Present       int64 `json:"rows_present"`
	Inserted      int64 `json:"rows_inserted"`
	Updated       int64 `json:"rows_updated"`
	FilesWritten  int   `json:"files_written"`
	FilesPresent  int   `json:"files_present"`
	FilesDiffer   int   `json:"files_differ"`
	FilesRefused  int   `json:"files_refused"`
	FilesNotSaved int   `json:"files_not_in_snapshot"`
}

// ErrConflict is returned with OnConflict fail when a row is already present.
var ErrConflict = errors.New("rows already present")

// ErrFileDiffers is returned when a file exists with other content and
// OverwriteFiles is not set.
var ErrFileDiffers = errors.New("file exists with different content")

// Run restores one tenant: its rows and its files, all or nothing (files.go,
// journal.go). Every row must belong to the tenant and every file be named by one
// of its rows, or nothing is written (*IntegrityError).
func Run(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options) (*Report, error) {
	reps, err := RunSteps(ctx, cfg, store, o, []Step{{Snapshot: o.Snapshot, OnConflict: o.OnConflict}})
	if len(reps) == 0 {
		return nil, err
	}
	return reps[0], err
}

// Step is one snapshot of a restore that applies several of one tenant in order.
type Step struct {
	Snapshot   uuid.UUID // uuid.Nil: the newest committed snapshot of the tenant
	OnConflict string    // as Options.OnConflict
}

// RunSteps restores several snapshots of o.Tenant, in the order given, in ONE
// transaction, their files staged and renamed into place once it commits: the
// tenant comes back from all of them or from none, files included. Each step's
// snapshot and on-conflict policy replace o.Snapshot and o.OnConflict. Every
// snapshot is checked and verified before anything is written. With ConflictSkip a
// row that an earlier step put back is left as it is, so the first step's version of
// a row wins: give the newest snapshot first; a file an earlier step writes is
// likewise not written again by a later one. With DryRun every step is counted
// against the database as it is (a row two snapshots hold is counted by both).
//
// It returns one report per step; on an error before the commit, none.
func RunSteps(ctx context.Context, cfg *pgx.ConnConfig, store storage.Store, o Options, steps []Step) ([]*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FileJobs < 1 {
		o.FileJobs = 4
	}
	if len(steps) == 0 {
		return nil, errors.New("restore: no snapshot to restore")
	}
	owner := place.Keep
	if o.FilesOwner != "" {
		var err error
		if owner, err = place.ParseOwner(o.FilesOwner); err != nil {
			return nil, fmt.Errorf("restore: files owner: %w", err)
		}
	}
	type prepared struct {
		o      Options
		store  storage.Store // where m's objects are read: the store, or its opened view
		m      *archive.Manifest
		tables []archive.Table
		files  *fileSource
	}
	preps := make([]prepared, len(steps))
	for i, st := range steps {
		so := o
		so.Snapshot, so.OnConflict = st.Snapshot, st.OnConflict
		switch so.OnConflict {
		case "":
			so.OnConflict = ConflictSkip
		case ConflictSkip, ConflictFail, ConflictFillNulls:
		default:
			return nil, fmt.Errorf("restore: on-conflict %q: want skip, fail or fill-nulls", so.OnConflict)
		}
		m, objects, err := manifest(ctx, store, so)
		if err != nil {
			return nil, err
		}
		if m.Tenant != o.Tenant {
			return nil, fmt.Errorf("restore: snapshot %s is of tenant %s, not %s", m.ID, m.Tenant, o.Tenant)
		}
		tables, err := selectTables(m, so.Tables)
		if err != nil {
			return nil, err
		}
		files := newFileSource(objects, m, tables, so)
		probs, roots, err := files.survey(ctx)
		if err != nil {
			return nil, err
		}
		if len(probs) > 0 {
			return nil, &IntegrityError{Tenant: m.Tenant, Snapshot: m.ID, Problems: probs}
		}
		if err := checkRoots(roots); err != nil {
			return nil, err
		}
		preps[i] = prepared{o: so, store: objects, m: m, tables: tables, files: files}
	}
	// Nothing is written before every object this restore reads is known good: the
	// tables here, the files' blobs and packs as they are staged. The objects are
	// read while the connection is made and the lock taken, which write nothing
	// (about a third of the 30 ms the tables of 105k rows took to verify); the
	// verdict is awaited before anything else, and its error comes first.
	vctx, vcancel := context.WithCancel(ctx)
	verified := make(chan error, 1)
	go func() {
		var err error
		for _, p := range preps {
			if err = verify(vctx, p.store, p.m, p.tables, p.files, p.o.FileJobs, p.o.DryRun); err != nil {
				break
			}
		}
		verified <- err
	}()
	await := sync.OnceValue(func() error { return <-verified })
	defer func() { vcancel(); _ = await() }() // no read of storage outlives the call
	// failed is err, unless the verification failed: then its error.
	failed := func(err error) error {
		if verr := await(); verr != nil {
			return verr
		}
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, failed(fmt.Errorf("restore: connect: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, failed(fmt.Errorf("restore: begin: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if o.Lock != nil {
		if err := o.Lock(ctx, tx); err != nil {
			return nil, failed(fmt.Errorf("restore: %w", err))
		}
	}
	if err := await(); err != nil {
		return nil, err
	}
	// What a killed restore left goes; live restores of other tenants (beside this
	// one under the shared lock) keep their journals locked and are left alone.
	if !o.DryRun {
		if err := sweep(o); err != nil {
			return nil, err
		}
	}

	reps := make([]*Report, 0, len(preps))
	var frs []*fileRun
	abort := func() {
		for _, fr := range frs {
			fr.abort()
		}
	}
	staged := 0                 // staging tables live until the commit: their names go on across steps
	var written map[string]bool // targets an earlier step writes (several steps only)
	for i, p := range preps {
		p.files.skip = written
		if i < len(preps)-1 {
			// A later step does not write again what this one writes: its targets
			// are held (a single step, the usual restore, holds none).
			next := maps.Clone(written)
			if next == nil {
				next = map[string]bool{}
			}
			err := p.files.each(ctx, nil, func(f *restoreFile) error {
				if f.target != "" {
					next[f.target] = true
				}
				return nil
			})
			if err != nil {
				abort()
				return nil, err
			}
			written = next
		}
		rep, fr, err := runStep(ctx, tx, p.store, p.o, p.m, p.tables, p.files, owner, &staged)
		if fr != nil {
			frs = append(frs, fr)
		}
		if err != nil {
			abort()
			return nil, err
		}
		reps = append(reps, rep)
	}
	if o.DryRun {
		return reps, nil
	}
	// Files first: every staged file is durable before the rows commit.
	for _, fr := range frs {
		if err := fr.syncStaged(ctx); err != nil {
			abort()
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		abort()
		return nil, fmt.Errorf("restore: commit: %w", err)
	}
	var errs []error
	for i, fr := range frs {
		errs = append(errs, fr.commit(reps[i]))
	}
	return reps, errors.Join(errs...)
}

// runStep loads one snapshot inside the restore's transaction, checks what it
// loaded, and stages its files (renamed into place by the caller after the commit).
// The files are staged while the rows load: the rows are the database's work, the
// files this process's and the disk's, and one after the other left a core idle.
// Nothing staged is visible (temp names, renamed after the commit), so staging
// before the rows' checks have passed risks nothing: a failed check aborts the
// staged files as a failed file aborts the load. The returned fileRun, when not
// nil, holds what was staged: the caller aborts it on error.
func runStep(ctx context.Context, tx pgx.Tx, store storage.Store, o Options, m *archive.Manifest,
	tables []archive.Table, files *fileSource, owner place.Owner, staged *int) (*Report, *fileRun, error) {
	rep := &Report{Tenant: m.Tenant, Snapshot: m.ID, DryRun: o.DryRun, Scope: Scope{Kind: m.Scope.Kind, Cutoffs: m.Scope.Cutoffs, Days: m.Scope.Days}, Tables: []TableReport{}, Files: []FileReport{}}
	if o.Progress != nil {
		// Called from the load and from the staging: one at a time, as documented.
		var mu sync.Mutex
		progress := o.Progress
		o.Progress = func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			progress(e)
		}
	}
	l, err := newLoader(ctx, tx, store, m, o)
	if err != nil {
		return nil, nil, err
	}
	defer l.close()
	l.staged = *staged
	defer func() { *staged = l.staged }()
	plans, err := l.plan(ctx, tables)
	if err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fr := newFileRun(o, store, m, files, owner)
	// The staging pings the transaction to stop early when the database is gone,
	// but the load holds the connection (a pgx.Tx is not for concurrent use): while
	// it does, the load itself would see the database gone.
	var txBusy sync.Mutex
	txBusy.Lock()
	ping := pinger(tx)
	fr.ping = func(ctx context.Context) error {
		if !txBusy.TryLock() {
			return nil
		}
		defer txBusy.Unlock()
		return ping(ctx)
	}
	type stagedFiles struct {
		reports   []FileReport
		notListed int
		err       error
	}
	done := make(chan stagedFiles, 1)
	go func() {
		reports, notListed, err := fr.stage(ctx)
		if err != nil {
			cancel(err)
		}
		done <- stagedFiles{reports, notListed, err}
	}()
	lerr := loadStep(ctx, l, plans, fr.walkedPaths, o, rep)
	txBusy.Unlock()
	if lerr != nil {
		cancel(lerr)
	}
	st := <-done
	fr.closePaths()
	switch {
	case st.err != nil && (lerr == nil || context.Cause(ctx) == st.err):
		// The staging failed first: the load stopped for it.
		return nil, fr, st.err
	case lerr != nil:
		return nil, fr, lerr
	}
	rep.Files, rep.FilesNotListed = st.reports, st.notListed
	rep.total(fr.counts)
	return rep, fr, nil
}

// loadStep loads the planned tables into the transaction and checks them: the
// rows' counts and owners, and that the rows name every file.
func loadStep(ctx context.Context, l *loader, plans []*plan, walked func(context.Context) (*pathSpill, error), o Options, rep *Report) error {
	for _, p := range plans {
		tr, err := l.load(ctx, p)
		if err != nil {
			return err
		}
		rep.Tables = append(rep.Tables, tr)
		if o.Progress != nil {
			o.Progress(Event{Table: tr.Table, Rows: tr.Inserted, Bytes: p.t.RawBytes})
		}
	}
	for _, p := range plans {
		if err := l.freshen(ctx, p); err != nil {
			return err
		}
	}
	if err := l.finish(ctx, plans, rep); err != nil {
		return err
	}
	var probs []string
	if !o.DryRun {
		var err error
		if probs, err = l.checkRows(ctx, plans); err != nil {
			return err
		}
	}
	fprobs, err := l.checkFiles(ctx, plans, walked)
	if err != nil {
		return err
	}
	if probs = append(probs, fprobs...); len(probs) > 0 {
		return &IntegrityError{Tenant: l.m.Tenant, Snapshot: l.m.ID, Problems: probs}
	}
	return nil
}

// manifest loads the snapshot's manifest and the store its objects are read from
// (an encrypted snapshot's, opened with o.Keys).
func manifest(ctx context.Context, s storage.Store, o Options) (*archive.Manifest, storage.Store, error) {
	var op repository.Opener
	if o.Keys != nil {
		op = o.Keys
	}
	if o.Snapshot == uuid.Nil {
		return repository.OpenLatest(ctx, s, o.Tenant, op)
	}
	return repository.Open(ctx, s, archive.SnapshotRef{Tenant: o.Tenant, ID: o.Snapshot}, op)
}

// selectTables returns the manifest's tables in its load order, limited to names.
func selectTables(m *archive.Manifest, names []profile.TableName) ([]archive.Table, error) {
	if len(names) == 0 {
		return m.Tables, nil
	}
	var out []archive.Table
	for _, n := range names {
		if !slices.ContainsFunc(m.Tables, func(t archive.Table) bool { return t.Schema == n.Schema && t.Name == n.Table }) {
			return nil, fmt.Errorf("restore: table %s is not in snapshot %s", n, m.ID)
		}
	}
	for _, t := range m.Tables {
		if slices.Contains(names, profile.TableName{Schema: t.Schema, Table: t.Name}) {
			out = append(out, t)
		}
	}
	return out, nil
}

func verify(ctx context.Context, s storage.Store, m *archive.Manifest, tables []archive.Table, files *fileSource, jobs int, dryRun bool) error {
	chk, err := repository.NewChecker(s)
	if err != nil {
		return err
	}
	defer chk.Close()
	var mu sync.Mutex
	var probs []error
	more := 0
	keep := func(err error) error {
		var ve *archive.VerifyError
		if !errors.As(err, &ve) {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if len(probs) < maxNamed {
			probs = append(probs, err)
		} else {
			more++
		}
		return nil
	}
	for _, t := range tables {
		if err := chk.Table(ctx, t); err != nil {
			if err := keep(err); err != nil {
				return err
			}
		}
	}
	// A file's content is checked as it is staged, its blob or its pack read once:
	// nothing is placed before every check passed (staged files are renamed into
	// place after the rows commit, and a failed check aborts the run first). A file
	// already on disk with its content is kept, and its blob not read at all. A dry
	// run stages nothing: it checks the blobs here, jobs at a time (and the packs as
	// it walks them).
	if !dryRun {
		return report(m, probs, more)
	}
	err = repository.CheckBlobs(ctx, s, jobs, func(fn func(archive.File) error) error {
		return files.each(ctx, nil, func(f *restoreFile) error {
			if f.notSaved || f.Pack != nil {
				return nil
			}
			return fn(f.File)
		})
	}, func(_ archive.File, err error) error {
		if err == nil {
			return nil
		}
		return keep(err)
	})
	if err != nil {
		return err
	}
	return report(m, probs, more)
}

// report is verify's verdict: the objects that failed, the first few named.
func report(m *archive.Manifest, probs []error, more int) error {
	if more > 0 {
		probs = append(probs, fmt.Errorf("%d more objects fail verification", more))
	}
	if len(probs) > 0 {
		return fmt.Errorf("restore: snapshot %s fails verification, nothing written: %w", m.ID, errors.Join(probs...))
	}
	return nil
}

// total sums the tables into r's totals, and the file counts given.
func (r *Report) total(c fileCounts) {
	r.Totals = Totals{}
	for _, t := range r.Tables {
		r.Totals.Rows += t.InSnapshot
		r.Totals.Present += t.Present
		r.Totals.Inserted += t.Inserted
		r.Totals.Updated += t.Updated
	}
	r.Totals.FilesWritten, r.Totals.FilesPresent, r.Totals.FilesDiffer = c.written, c.present, c.differ
	r.Totals.FilesRefused, r.Totals.FilesNotSaved = c.refused, c.notSaved
}

// checkRoots refuses, before anything is read or written, files with nowhere to go:
// a files root that does not exist on this host. Restore never creates a root: a
// missing one means the configuration points at the wrong place (or the service is
// not installed here); --files-root restores elsewhere.
func checkRoots(roots map[string]*restoreFile) error {
	for _, r := range slices.Sorted(maps.Keys(roots)) {
		f := roots[r]
		if fi, err := os.Stat(f.root); err != nil || !fi.IsDir() {
			return &profile.MismatchError{Field: "files root " + f.root,
				Reason: fmt.Sprintf("not a directory on this host, and snapshot files go there (%s.%s): fix the configuration, or restore elsewhere with --files-root DIR", f.Table, f.Column)}
		}
	}
	return nil
}
