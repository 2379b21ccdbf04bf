package restore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// restoreFile is one file of the snapshot and where it goes.
type restoreFile struct {
	archive.File
	root     string // the directory it must stay under
	target   string // where it is written
	notSaved bool   // missing or outside its root when the snapshot was taken
	noRoot   string // why it has nowhere to go: no root configured for its column

	outcome string
	staged  *place.Staged
	inTree  bool // staged in a tree's mirror (tree.go), under its own name
	// frame is a packed file's content as stored, read from its pack by the walk
	// (a pack is read once, in order); nil for a file stored as a blob.
	frame []byte
}

// fileSource walks the files of one step: the manifest's entries of the tables
// restored, each with where it goes. It reads them from storage on each walk (a
// manifest's file list is streamed, never held: a tenant can have a million
// recordings), and every walk checks the list's digest once read, so every walk
// sees the same files.
type fileSource struct {
	store storage.Store
	m     *archive.Manifest
	in    map[string]bool // schema.table of the tables restored
	o     Options
	// skip are targets an earlier step of the same restore writes (several steps
	// only: a single step holds no set of its targets).
	skip map[string]bool
	// roots are the configured roots by file column (the last one configured for
	// a column wins), with their paths cleaned once, not once per file.
	roots    map[fileColumn]columnRoot
	filesDir string // o.FilesRoot, cleaned
}

// columnRoot is where a file column's files lie.
type columnRoot struct {
	root      string // cleaned
	tenantDir string // the tenant's directory under root, when per tenant
}

func newFileSource(store storage.Store, m *archive.Manifest, tables []archive.Table, o Options) *fileSource {
	in := map[string]bool{}
	for _, t := range tables {
		in[t.Schema+"."+t.Name] = true
	}
	s := &fileSource{store: store, m: m, in: in, o: o, roots: map[fileColumn]columnRoot{}}
	for _, c := range o.Files {
		r := columnRoot{root: filepath.Clean(c.Root)}
		if c.PerTenant {
			r.tenantDir = filepath.Join(r.root, m.Tenant.String())
		}
		s.roots[fileColumn{c.Table.String(), c.Column}] = r
	}
	if o.FilesRoot != "" {
		s.filesDir = filepath.Clean(o.FilesRoot)
	}
	return s
}

// each calls fn with each file to restore. A path the snapshot saved must lie under
// its configured root as the row names it: one that does not was not written by a
// snapshot (which records such paths as outside_root and never reads them) and is
// an integrity problem, passed to bad (nil: an error).
func (s *fileSource) each(ctx context.Context, bad func(string), fn func(*restoreFile) error) error {
	err := repository.Files(ctx, s.store, s.m, func(f archive.File) error {
		if !s.in[f.Table] {
			return nil
		}
		rf, prob, err := s.place(f)
		switch {
		case err != nil:
			return err
		case prob != "" && bad != nil:
			bad(prob)
			return nil
		case prob != "":
			return &IntegrityError{Tenant: s.m.Tenant, Snapshot: s.m.ID, Problems: []string{prob}}
		case rf.target != "" && s.skip[rf.target]:
			return nil
		}
		return fn(&rf)
	})
	var ve *archive.VerifyError
	if errors.As(err, &ve) {
		return fmt.Errorf("restore: snapshot %s fails verification, nothing written: %w", s.m.ID, err)
	}
	return err
}

// place decides where f goes.
func (s *fileSource) place(f archive.File) (restoreFile, string, error) {
	rf := restoreFile{File: f}
	if f.Missing || f.OutsideRoot {
		rf.notSaved = true
		return rf, "", nil
	}
	c, ok := s.roots[fileColumn{f.Table, f.Column}]
	root, tenantDir := c.root, c.tenantDir
	clean := filepath.Clean(f.Path)
	switch {
	case !ok:
		// Refused when written: the configuration's own check (a files[].table
		// the purge does not reach) speaks first, once connected.
		rf.noRoot = fmt.Sprintf("no files root configured for %s.%s", f.Table, f.Column)
	case !filepath.IsAbs(f.Path) || !archive.Within(root, clean) || clean == root:
		return rf, fmt.Sprintf("file %s: path leaves its root %s", f.Path, root), nil
	case tenantDir != "" && (!archive.Within(tenantDir, clean) || clean == tenantDir):
		// Checked on the recorded path, before any --files-root mapping: a row
		// of the snapshot naming it does not make it the tenant's.
		return rf, fmt.Sprintf("file %s: path lies outside the tenant's directory %s", f.Path, tenantDir), nil
	case s.filesDir != "":
		// clean lies under root: what follows root's separator is the relative
		// path, clean already (filepath.Rel and Join, by slicing).
		rel := strings.TrimPrefix(clean[len(root):], string(filepath.Separator))
		rf.root, rf.target = s.filesDir, s.filesDir+string(filepath.Separator)+rel
		if s.filesDir == string(filepath.Separator) {
			rf.target = s.filesDir + rel
		}
	default:
		rf.root, rf.target = root, clean
	}
	return rf, "", nil
}

// survey walks the files once before anything is read or written: the paths that
// leave their root (integrity problems, at most maxNamed+1 named), and the roots
// the files go to, with a file of each for the messages.
func (s *fileSource) survey(ctx context.Context) (probs []string, roots map[string]*restoreFile, err error) {
	roots = map[string]*restoreFile{}
	more := 0
	err = s.each(ctx, func(p string) {
		if len(probs) < maxNamed {
			probs = append(probs, p)
		} else {
			more++
		}
	}, func(f *restoreFile) error {
		if f.root != "" && roots[f.root] == nil {
			roots[f.root] = f
		}
		return nil
	})
	if more > 0 {
		probs = append(probs, fmt.Sprintf("%d more files whose path leaves its root or its tenant's directory", more))
	}
	return probs, roots, err
}

// fileRun stages, commits or aborts the files of one restore (journal.go).
type fileRun struct {
	o        Options
	store    storage.Store
	src      *fileSource
	run      uuid.UUID
	owner    place.Owner                 // --files-owner, else Keep (recorded owners are used)
	dirs     map[string]archive.Dir      // recorded directories by target path
	journals map[string]*journal         // by root
	created  []string                    // directories made, parents first
	ping     func(context.Context) error // fails once the database connection is gone
	// stages are the run's staging directories by root (stagePath), made on first
	// use; stageIn says, per root and directory, where that directory's files are
	// staged: the root's staging directory when it is on the same mount, else nil
	// (beside them). See place.Dir.StageUnsyncedIn for why.
	stages  map[string]*place.Dir
	stageIn map[[2]string]*place.Dir
	// trees are the missing directories made whole in a staging directory, by
	// their real path and by their mirror's (tree.go).
	trees, mirrors map[string]*tree
	// staged lists the files staged, in a temporary file: a million staged files
	// cost no memory. Read back to commit or to abort them.
	staged *stagedSpill
	// treeStaged lists the files created in trees, apart: a tree placed whole
	// places them all, so the commit reads them back only for a tree it could not
	// place (with 850k files, the phase after the rows committed took 2.6 s before,
	// 0.17 s since), and an abort removes them with the staging directory.
	treeStaged *stagedSpill
	// paths are the paths of the files the staging walk saw, for the files check;
	// walked is closed once the staging has ended (paths nil, walkErr why, if it
	// failed).
	paths   *pathSpill
	walked  chan struct{}
	walkErr error
	counts  fileCounts
	mu      sync.Mutex // the staging workers share the fields above
}

// fileCounts counts the outcomes of a run's files; the report lists the first
// MaxFileReports of them.
type fileCounts struct {
	written, present, differ, refused, notSaved int
}

func newFileRun(o Options, store storage.Store, m *archive.Manifest, src *fileSource, owner place.Owner) *fileRun {
	fr := &fileRun{o: o, store: store, src: src, run: uuid.New(), owner: owner, dirs: map[string]archive.Dir{},
		journals: map[string]*journal{}, stages: map[string]*place.Dir{}, stageIn: map[[2]string]*place.Dir{},
		trees: map[string]*tree{}, mirrors: map[string]*tree{}, walked: make(chan struct{})}
	for _, d := range m.Dirs {
		target := d.Path
		if o.FilesRoot != "" {
			for _, c := range o.Files {
				if rel, err := filepath.Rel(filepath.Clean(c.Root), d.Path); err == nil && archive.Within(c.Root, d.Path) {
					target = filepath.Join(o.FilesRoot, rel)
					break
				}
			}
		}
		fr.dirs[target] = d
	}
	return fr
}

// stage decides each file's outcome and, unless DryRun, stages it under a temp
// name, FileJobs files at a time (a download, a decompression, a write and an
// fsync each: one at a time leaves the disk and the network idle). Any error (a
// refused path, a file with other content, storage gone) stops the run and is
// returned: the caller aborts it. The report lists the first MaxFileReports files
// (in the order they were done); the counts cover every one.
func (fr *fileRun) stage(ctx context.Context) (out []FileReport, notListed int, err error) {
	defer func() {
		fr.walkErr = err
		close(fr.walked)
	}()
	out = []FileReport{}
	paths, err := newPathSpill(fr.o.TempDir)
	if err != nil {
		return out, notListed, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *restoreFile)
	var wg sync.WaitGroup
	for range max(fr.o.FileJobs, 1) {
		wg.Go(func() {
			w, err := newStager()
			if err != nil {
				cancel(err)
				return
			}
			defer w.close()
			for f := range jobs {
				if ctx.Err() != nil {
					continue
				}
				r, err := fr.stageFile(ctx, w, f)
				if err != nil {
					cancel(err)
					continue
				}
				fr.mu.Lock()
				fr.counts.add(r.Outcome, 1)
				if len(out) < MaxFileReports {
					out = append(out, r)
				} else {
					notListed++
				}
				if fr.o.Progress != nil {
					fr.o.Progress(Event{File: f.Path, Bytes: f.Size})
				}
				fr.mu.Unlock()
			}
		})
	}
	lastPing := time.Now()
	// Packed files' frames are read here, in the walk's order, each pack once from
	// its start; the workers decode and check them as they would a blob.
	packs := repository.NewPackCursor(fr.store, fr.src.m)
	defer packs.Abandon()
	err = fr.src.each(ctx, nil, func(f *restoreFile) error {
		if !f.notSaved {
			if err := paths.add(f.Table, f.Column, f.Path); err != nil {
				return err
			}
		}
		if f.Pack != nil && !f.notSaved {
			frame, err := packs.Frame(ctx, f.File)
			if err != nil {
				return err
			}
			f.frame = frame
		}
		// The database may be gone while the files are fetched: stop early rather
		// than fetch everything for a commit that cannot happen.
		if fr.ping != nil && time.Since(lastPing) > 2*time.Second {
			if err := fr.ping(ctx); err != nil {
				return fmt.Errorf("restore: database connection lost during the file phase: %w", err)
			}
			lastPing = time.Now()
		}
		select {
		case jobs <- f:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	if err == nil {
		// The last pack read, whole: every one is checked before the rows commit.
		err = packs.Close()
	}
	close(jobs)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		// A worker's error is the cause of what the walk saw.
		paths.close()
		return out, notListed, cause
	}
	var ve *archive.VerifyError
	if errors.As(err, &ve) {
		err = fmt.Errorf("restore: snapshot %s fails verification, nothing written: %w", fr.src.m.ID, err)
	}
	if err != nil {
		paths.close()
		return out, notListed, err
	}
	fr.paths = paths
	return out, notListed, nil
}

// walkedPaths waits for the staging to end and returns the paths of the files it
// saw (the run closes them: closePaths).
func (fr *fileRun) walkedPaths(ctx context.Context) (*pathSpill, error) {
	select {
	case <-fr.walked:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if fr.paths == nil {
		// The staging failed: its error, which also cancels the load (whichever
		// the load sees first, the run reports the staging's).
		return nil, fr.walkErr
	}
	return fr.paths, nil
}

func (fr *fileRun) closePaths() {
	if fr.paths != nil {
		fr.paths.close()
		fr.paths = nil
	}
}

// stager is one staging worker's own: its decoder, its read buffer, and the
// directory it stages into, held open (files come in list order: most follow the
// one before into the same directory).
type stager struct {
	dec *zstd.Decoder
	// br buffers a blob: the decoder reads a frame's header a few bytes at a time,
	// and buffered, a small blob costs one read(2) instead of a dozen.
	br *bufio.Reader
	// whole decodes a packed file's frame at once into out (DecodeAll): a stream
	// per file, for a frame already in memory, showed in a profile as its set-up.
	whole    *zstd.Decoder
	out      []byte
	outRd    bytes.Reader
	sum      *archive.Digest // reset per file
	dir      heldDir
	prepared [2]string // the root and directory prepareDir last made ready for this worker
	place    placement // where prepareDir said that directory's files are staged
	mirror   heldDir   // the directory's copy in a tree, held open
}

func newStager() (*stager, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, err
	}
	whole, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxWholeFrame))
	if err != nil {
		dec.Close()
		return nil, err
	}
	return &stager{dec: dec, whole: whole, br: bufio.NewReaderSize(nil, repository.BlobReadBuffer), sum: archive.NewDigest()}, nil
}

// maxWholeFrame bounds a packed file decoded at once: packs hold files up to 256
// KiB, and a frame that decodes to more is refused, not held.
const maxWholeFrame = 1 << 20

// openDir returns dir, under root, held open; nil (and no error) when dir does not
// exist yet. A dir that leaves the root is an *place.OutsideError.
func (w *stager) openDir(root place.Root, dir string) (*place.Dir, error) {
	d, err := w.dir.open(root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return d, err
}

func (w *stager) close() {
	w.dec.Close()
	w.whole.Close()
	w.dir.close()
	w.mirror.close()
}

// heldDir holds the directory last opened under a root, for the files after it
// that go there too. It is kept per root as well as per path: nested roots can
// name one directory, which must then lie under each.
type heldDir struct {
	d    *place.Dir
	root string
}

// open returns dir opened under root (place.Root.OpenDir's errors), the one held
// when it is the same.
func (h *heldDir) open(root place.Root, dir string) (*place.Dir, error) {
	if h.d != nil && h.d.Path() == dir && h.root == root.Dir() {
		return h.d, nil
	}
	h.close()
	d, err := root.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	h.d, h.root = d, root.Dir()
	return d, nil
}

func (h *heldDir) close() {
	if h.d != nil {
		_ = h.d.Close()
		h.d = nil
	}
}

// stageFile stages one file and returns its report line.
func (fr *fileRun) stageFile(ctx context.Context, w *stager, f *restoreFile) (FileReport, error) {
	r := FileReport{Path: f.Path}
	if f.notSaved {
		r.Outcome, r.Detail = FileNotSaved, "missing or outside its root when the snapshot was taken"
		return r, nil
	}
	err := fr.stageOne(ctx, w, f)
	if f.staged != nil {
		fr.mu.Lock()
		serr := fr.keep(f)
		fr.mu.Unlock()
		if serr != nil {
			_ = f.staged.Abort()
			err = serr
		}
	}
	if err != nil {
		return r, fmt.Errorf("restore: file %s: %w", f.Path, err)
	}
	r.Outcome = f.outcome
	if f.target != f.Path {
		r.Detail = "at " + f.target
	}
	return r, nil
}

func (c *fileCounts) add(outcome string, n int) {
	switch outcome {
	case FileWritten, FileOverwritten:
		c.written += n
	case FilePresent:
		c.present += n
	case FileDiffers:
		c.differ += n
	case FileRefused:
		c.refused += n
	case FileNotSaved:
		c.notSaved += n
	}
}

// keep records a staged file in the run's spill, or in its trees' one.
func (fr *fileRun) keep(f *restoreFile) error {
	spill := &fr.staged
	if f.inTree {
		spill = &fr.treeStaged
	}
	if *spill == nil {
		s, err := newStagedSpill(fr.o.TempDir)
		if err != nil {
			return err
		}
		*spill = s
	}
	return (*spill).add(stagedFile{Staged: *f.staged, Path: f.Path, Replace: f.outcome == FileOverwritten, Root: f.root})
}

// eachStaged calls fn with every staged file not in a tree, then, when trees is
// true, with those in trees.
func (fr *fileRun) eachStaged(trees bool, fn func(stagedFile) error) error {
	for _, s := range []*stagedSpill{fr.staged, fr.treeStaged} {
		if s == nil || (s == fr.treeStaged && !trees) {
			continue
		}
		if err := s.each(fn); err != nil {
			return err
		}
	}
	return nil
}

// closeSpills removes the lists of staged files.
func (fr *fileRun) closeSpills() {
	for _, s := range []*stagedSpill{fr.staged, fr.treeStaged} {
		if s != nil {
			s.close()
		}
	}
	fr.staged, fr.treeStaged = nil, nil
}

func (fr *fileRun) stageOne(ctx context.Context, w *stager, f *restoreFile) error {
	if f.noRoot != "" {
		return fmt.Errorf("%s: %w", f.noRoot, ErrFileRefused)
	}
	root := place.NewRoot(f.root)
	dir, name := filepath.Dir(f.target), filepath.Base(f.target)
	here := [2]string{root.Dir(), dir}
	// A directory this worker stages into a tree is missing in place: nothing can
	// be at its targets, and its path was checked when its copy was made.
	inTree := w.prepared == here && w.place.tree != nil
	var d *place.Dir
	var err error
	if !inTree {
		if d, err = w.openDir(root, dir); err != nil {
			return refusedIfOutside(err)
		}
	}
	var fi fs.FileInfo
	switch {
	case inTree:
		err = fs.ErrNotExist
	case d != nil:
		fi, err = d.Lstat(name)
	default:
		// Its directory is not made yet: the deepest one that is decides.
		if err := root.Check(f.target); err != nil {
			return fmt.Errorf("%w: %w", err, ErrFileRefused)
		}
		err = fs.ErrNotExist
	}
	f.outcome = FileWritten
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("a %s is in its place: %w", fi.Mode().Type(), ErrFileRefused)
	default:
		same, err := sameContent(f.target, f.SHA256)
		if err != nil {
			return err
		}
		if same {
			f.outcome = FilePresent
			return nil
		}
		if !fr.o.OverwriteFiles {
			f.outcome = FileDiffers
			return fmt.Errorf("exists with other content (--overwrite-files replaces it): %w", ErrFileDiffers)
		}
		f.outcome = FileOverwritten
	}
	if fr.o.DryRun {
		if f.frame != nil { // a blob was checked before (verify), a packed file here
			return repository.CheckFrame(w.dec, fr.src.m, f.File, f.frame)
		}
		return nil
	}
	if w.prepared != here || (d == nil && w.place.tree == nil) {
		p, err := fr.prepareDir(root, dir)
		if err != nil {
			return refusedIfOutside(err)
		}
		w.prepared, w.place = here, p
	}
	var mirror *place.Dir
	if w.place.tree != nil {
		if mirror, err = w.mirror.open(place.NewRoot(filepath.Dir(w.place.tree.mirror)), w.place.mirrorDir); err != nil {
			return err
		}
	} else if d == nil {
		if d, err = w.openDir(root, dir); err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("directory %s: made, then gone", dir)
		}
	}
	var key string
	var src io.Reader
	var content io.Reader
	switch {
	case f.frame != nil && f.Size >= 0 && f.Size <= maxWholeFrame:
		key = fr.src.m.Packs[f.Pack.Index].Key
		out, err := w.whole.DecodeAll(f.frame, w.out[:0])
		if err != nil {
			return &archive.VerifyError{Key: key, What: "decompress " + f.Path, Reason: err}
		}
		w.out = out
		w.outRd.Reset(out)
		content = &w.outRd
	case f.frame != nil:
		key = fr.src.m.Packs[f.Pack.Index].Key
		src = bytes.NewReader(f.frame)
	default:
		if key, err = archive.BlobKeyHex(f.SHA256); err != nil {
			return err
		}
		rc, err := fr.store.Get(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		w.br.Reset(rc)
		defer w.br.Reset(nil)
		src = w.br
	}
	if content == nil {
		if err := w.dec.Reset(src); err != nil {
			return &archive.VerifyError{Key: key, What: "decompress", Reason: err}
		}
		content = w.dec
		if f.frame != nil {
			// Read from memory: any error is the frame's (a blob's may be storage's,
			// and verify decompressed every blob before).
			content = frameReader{r: w.dec, key: key, path: f.Path}
		}
	}
	sum := w.sum
	sum.Reset()
	a := place.Attr{Mode: fs.FileMode(f.Mode).Perm(), ModTime: f.ModTime, Owner: fr.fileOwner(f.Owner)}
	// Unsynced: the run syncs its staged files together before the rows commit
	// (syncStaged), not one at a time here.
	tag, check := journalTag+fr.run.String(), func() error { return sum.Check(key, f.SHA256, f.Size) }
	switch {
	case mirror != nil:
		if f.staged, err = mirror.CreateUnsynced(ctx, name, io.TeeReader(content, sum), a, check); err == nil {
			f.staged.Target, f.inTree = f.target, true
		}
	case w.place.stage != nil:
		f.staged, err = d.StageUnsyncedIn(ctx, w.place.stage, name, tag, io.TeeReader(content, sum), a, check)
	default:
		f.staged, err = d.StageUnsynced(ctx, name, tag, io.TeeReader(content, sum), a, check)
	}
	return refusedIfOutside(err)
}

// refusedIfOutside marks a path that leaves its root (a *place.OutsideError) as a
// refused file; other errors, and nil, pass unchanged.
func refusedIfOutside(err error) error {
	if err == nil {
		return nil // before errors.As, whose target escapes: once per file
	}
	var oe *place.OutsideError
	if errors.As(err, &oe) {
		return fmt.Errorf("%w: %w", err, ErrFileRefused)
	}
	return err
}

// frameReader reads a packed file's decoded frame: a decoding error is the pack's,
// named as such.
type frameReader struct {
	r         io.Reader
	key, path string
}

func (r frameReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &archive.VerifyError{Key: r.key, What: "decompress " + r.path, Reason: err}
	}
	return n, err
}

// prepareDir returns where dir's files are staged: in a tree when dir is missing
// (treeFor, which makes its copy), else in the staging directory or beside them
// (stagingFor), once dir is made (journalled) and, on the run's first use of it,
// swept of what killed runs left there. One file's at a time: the staging itself
// runs in parallel, the directories and the journal do not.
func (fr *fileRun) prepareDir(root place.Root, dir string) (placement, error) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	j, err := fr.journal(root)
	if err != nil {
		return placement{}, err
	}
	if p, ok, err := fr.treeFor(root, j, dir); err != nil || ok {
		return p, err
	}
	created, err := root.MkdirAll(dir, fr.dirAttr)
	for _, d := range created {
		fr.created = append(fr.created, d)
		if jerr := j.add("mkdir", d); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		return placement{}, err
	}
	if !j.dirs[dir] {
		// First use of dir by this run: what an earlier run left here without a
		// journal saying so goes first. Restores of other tenants may be at work
		// beside this one (they share guard's lock): their temps, named by their run
		// and journalled, are left alone.
		if err := sweepOrphans(root.Dir(), dir); err != nil {
			return placement{}, err
		}
		if err := sweepLegacy(dir); err != nil {
			return placement{}, err
		}
		if err := j.add("dir", dir); err != nil {
			return placement{}, err
		}
	}
	st, err := fr.stagingFor(root, j, dir)
	return placement{stage: st}, err
}

// stagingFor returns where the files of dir, under root, are staged: the run's
// staging directory in root when dir is on its mount (a rename cannot cross
// mounts), nil (beside them) when it is not or the kernel cannot tell.
func (fr *fileRun) stagingFor(root place.Root, j *journal, dir string) (*place.Dir, error) {
	key := [2]string{root.Dir(), dir}
	if s, ok := fr.stageIn[key]; ok {
		return s, nil
	}
	s, err := fr.stagingDir(root, j)
	if err != nil {
		return nil, err
	}
	same, err := onMountOf(root, s, dir)
	if err != nil {
		return nil, err
	}
	if !same {
		s = nil
	}
	fr.stageIn[key] = s
	return s, nil
}

// onMountOf reports whether dir, opened under root (which refuses a dir that
// leaves it), is on the staging directory's mount: whether a rename from one to
// the other can succeed.
func onMountOf(root place.Root, stage *place.Dir, dir string) (bool, error) {
	d, err := root.OpenDir(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	same, err := place.SameMount(stage, d)
	if err != nil {
		return false, fmt.Errorf("restore: staging directory: %w", err)
	}
	return same, nil
}

// stagingDir returns the run's staging directory in root, made (journalled) on
// first use. The caller holds fr.mu.
func (fr *fileRun) stagingDir(root place.Root, j *journal) (*place.Dir, error) {
	if s, ok := fr.stages[root.Dir()]; ok {
		return s, nil
	}
	p := stagePath(root.Dir(), fr.run)
	// Journalled before it is made: a run killed after the mkdir leaves a journal
	// that names it.
	if err := j.add("stage", p); err != nil {
		return nil, err
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		return nil, fmt.Errorf("restore: staging directory: %w", err)
	}
	s, err := root.OpenDir(p)
	if err != nil {
		_ = os.Remove(p)
		return nil, fmt.Errorf("restore: staging directory: %w", err)
	}
	fr.stages[root.Dir()] = s
	return s, nil
}

// removeStages removes the run's staging directories with what is left in them:
// trees whose files were placed one by one, files a failed abort left. A staging
// directory is the run's own (its name holds the run's id), made by Mkdir.
func (fr *fileRun) removeStages() {
	for _, s := range fr.stages {
		p := s.Path()
		_ = s.Close()
		if err := os.RemoveAll(p); err != nil {
			fr.o.Log.Warn("staging directory not removed (the next restore sweeps it)", "path", p, "err", err)
		}
	}
	fr.stages, fr.stageIn = map[string]*place.Dir{}, map[[2]string]*place.Dir{}
}

// closeStages releases the staging directories, left on disk for the next
// restore's sweep (their journal names them).
func (fr *fileRun) closeStages() {
	for _, s := range fr.stages {
		_ = s.Close()
	}
	fr.stages, fr.stageIn = map[string]*place.Dir{}, map[[2]string]*place.Dir{}
}

// fileOwner is who a written file belongs to: --files-owner, else the recorded
// owner when this process may give files away, else whoever runs the restore.
func (fr *fileRun) fileOwner(rec *archive.Owner) place.Owner {
	switch {
	case !fr.owner.IsKeep():
		return fr.owner
	case rec != nil && place.CanChown():
		return place.Owner{UID: int(rec.UID), GID: int(rec.GID), User: rec.User, Group: rec.Group}
	}
	return place.Keep
}

// dirAttr gives a directory to create its recorded mode and owner (the owner
// overridden by --files-owner); an unrecorded one takes its parent's.
func (fr *fileRun) dirAttr(dir string) (place.DirAttr, bool) {
	d, ok := fr.dirs[dir]
	if !ok {
		return place.DirAttr{}, false
	}
	owner := fr.fileOwner(&d.Owner)
	return place.DirAttr{Mode: fs.FileMode(d.Mode) & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky), Owner: owner}, true
}

func (fr *fileRun) journal(root place.Root) (*journal, error) {
	if j, ok := fr.journals[root.Dir()]; ok {
		return j, nil
	}
	j, err := openJournal(root, fr.run)
	if err != nil {
		return nil, err
	}
	fr.journals[root.Dir()] = j
	return j, nil
}

// abort removes every staged file, the directories the run made (when empty) and
// the journals: nothing of the run is left.
func (fr *fileRun) abort() {
	// The files in trees go with the staging directory that holds them.
	if fr.staged != nil || fr.treeStaged != nil {
		err := fr.eachStaged(false, func(s stagedFile) error {
			if err := s.Abort(); err != nil {
				fr.o.Log.Warn("temp file not removed (the next restore sweeps it)", "path", s.Temp, "err", err)
			}
			return nil
		})
		if err != nil {
			// The journals stay: the next restore sweeps what they list.
			fr.o.Log.Warn("staged files not all removed (the next restore sweeps them)", "err", err)
			fr.closeSpills()
			fr.closeStages()
			return
		}
		fr.closeSpills()
	}
	fr.removeStages()
	place.RemoveCreated(fr.created)
	fr.removeJournals()
}

// syncJobs is how many staged files are synced at once where syncfs(2) is not
// available: concurrent fsyncs on one filesystem share its journal's commits.
const syncJobs = 16

// syncStaged makes every staged file durable, before the rows commit: a rename
// after the commit must never name a file whose content a crash can lose. One
// syncfs(2) per files root does it for every file; without syncfs, an fsync each.
func (fr *fileRun) syncStaged(ctx context.Context) error {
	if fr.staged == nil && fr.treeStaged == nil {
		return nil
	}
	whole := true
	for _, root := range slices.Sorted(maps.Keys(fr.journals)) {
		ok, err := place.SyncFS(root)
		if err != nil {
			return fmt.Errorf("restore: files root %s: %w", root, err)
		}
		whole = whole && ok
	}
	if whole {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan stagedFile)
	var wg sync.WaitGroup
	for range syncJobs {
		wg.Go(func() {
			for s := range ch {
				if ctx.Err() != nil {
					continue
				}
				if err := s.Sync(); err != nil {
					cancel(fmt.Errorf("restore: file %s: %w", s.Path, err))
				}
			}
		})
	}
	err := fr.eachStaged(true, func(s stagedFile) error {
		select {
		case ch <- s:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(ch)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	if err != nil {
		return err
	}
	// A tree's directories are renamed with it: their entries must be durable too.
	for _, t := range fr.trees {
		err := filepath.WalkDir(t.mirror, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			return place.SyncDir(p)
		})
		if err != nil {
			return fmt.Errorf("restore: directory %s: %w", t.real, err)
		}
	}
	return nil
}

// commit renames every staged file onto its target, once the rows are committed.
// A file that cannot be placed is reported and the others go on: the rows are in,
// and a rerun writes what is missing.
func (fr *fileRun) commit(rep *Report) error {
	var errs []error
	failed := 0
	byPath := map[string]int{}
	for i, r := range rep.Files {
		byPath[r.Path] = i
	}
	dirs := map[string]bool{} // renamed into, synced once each after the renames
	if fr.staged != nil || fr.treeStaged != nil {
		// Trees first: one rename each places all their files.
		for _, d := range fr.placeTrees() {
			dirs[d] = true
		}
		whole := true
		for _, t := range fr.trees {
			whole = whole && t.placed
		}
		// Each directory is opened under its root again, and the file renamed in it
		// by name: a link swapped into its path since it was staged is refused, not
		// followed. Files come in the order staged: most go where the one before did.
		var held, heldMirror heldDir
		defer held.close()
		defer heldMirror.close()
		rename := func(s stagedFile) error {
			dir, from := filepath.Dir(s.Target), filepath.Dir(s.Temp)
			stage := fr.stages[s.Root]
			t, err := fr.treeOf(s)
			switch {
			case err != nil:
				return err
			case t != nil && t.placed:
				return nil
			case t != nil:
				// Something was made at the tree's place meanwhile: its files go in one
				// by one, into directories made in place as they would have been.
				if _, err := t.root.MkdirAll(dir, fr.dirAttr); err != nil {
					return err
				}
				m, err := heldMirror.open(place.NewRoot(stage.Path()), from)
				if err != nil {
					return err
				}
				d, err := held.open(place.NewRoot(s.Root), dir)
				if err != nil {
					return err
				}
				dirs[dir] = true
				return d.RenameFrom(m, filepath.Base(s.Temp), filepath.Base(s.Target), s.Replace)
			case from != dir && (stage == nil || from != stage.Path()):
				return fmt.Errorf("staged at %s, neither beside it nor in the run's staging directory", s.Temp)
			}
			dirs[dir] = true
			d, err := held.open(place.NewRoot(s.Root), dir)
			if err != nil {
				return err
			}
			if from != dir {
				return d.RenameFrom(stage, filepath.Base(s.Temp), filepath.Base(s.Target), s.Replace)
			}
			return d.Rename(filepath.Base(s.Temp), filepath.Base(s.Target), s.Replace)
		}
		err := fr.eachStaged(!whole, func(s stagedFile) error {
			if err := rename(s); err != nil {
				_ = s.Abort()
				if failed++; failed <= maxNamed {
					errs = append(errs, fmt.Errorf("restore: file %s: %w", s.Path, err))
				}
				if j, ok := byPath[s.Path]; ok {
					rep.Files[j].Outcome, rep.Files[j].Detail = FileRefused, err.Error()
				}
				fr.counts.written--
				fr.counts.refused++
			}
			return nil
		})
		fr.closeSpills()
		if err != nil {
			// The journals stay: the next restore sweeps the temps they list.
			fr.closeStages()
			rep.total(fr.counts)
			return fmt.Errorf("restore: rows committed, but the staged files could not be read back (run the restore again to write them): %w", err)
		}
	}
	var syncErrs []error
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := place.SyncDir(d); err != nil {
			syncErrs = append(syncErrs, err)
		}
	}
	rep.total(fr.counts)
	fr.removeStages()
	fr.removeJournals()
	if failed > 0 {
		return fmt.Errorf("restore: rows committed, but %d file(s) not placed (run the restore again to write them): %w", failed, errors.Join(errs...))
	}
	if len(syncErrs) > 0 {
		return fmt.Errorf("restore: rows committed and files placed, but not every directory synced (a crash may lose renames: run the restore again): %w", errors.Join(syncErrs...))
	}
	return nil
}

func (fr *fileRun) removeJournals() {
	for _, j := range fr.journals {
		if err := j.remove(); err != nil {
			fr.o.Log.Warn("journal not removed", "err", err)
		}
	}
	fr.journals = map[string]*journal{}
}

// sweep removes, in every root this restore may write to, what killed runs left.
func sweep(o Options) error {
	roots := map[string]bool{}
	if o.FilesRoot != "" {
		roots[filepath.Clean(o.FilesRoot)] = true
	} else {
		for _, c := range o.Files {
			roots[filepath.Clean(c.Root)] = true
		}
	}
	for r := range roots {
		if _, err := sweepJournals(r, o.Log); err != nil {
			return err
		}
	}
	return nil
}

// sweepOrphans removes the restore temp files in dir whose run is not alive: no
// journal in rootDir names the run (it was killed before writing one), or its
// journal's flock is free (it died). A live run holds its journal's flock.
func sweepOrphans(rootDir, dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), place.TempPrefix+journalTag)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if len(rest) >= 36 {
			run := rest[:36]
			live, seen := alive[run]
			if !seen {
				if id, err := uuid.Parse(run); err == nil {
					jp := journalPath(rootDir, id)
					if _, err := os.Stat(jp); err == nil {
						var release func()
						if live, release, err = journalInUse(jp); err != nil {
							return err
						}
						release()
					}
				}
				alive[run] = live
			}
			if live {
				continue
			}
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// sweepLegacy removes the temp files restores before the journal left in dir:
// .purgeguard- followed by digits only (os.CreateTemp's), which nothing else makes.
func sweepLegacy(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), place.TempPrefix)
		if !ok || rest == "" || !e.Type().IsRegular() || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func sameContent(path, sha string) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	d := archive.NewDigest()
	if _, err := io.Copy(d, fh); err != nil {
		return false, err
	}
	return d.Hex() == sha, nil
}

// pinger returns a check that the transaction's connection still answers.
func pinger(tx pgx.Tx) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := tx.Exec(ctx, "SELECT 1")
		return err
	}
}
