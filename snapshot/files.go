package snapshot

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/storage"
)

// fileColumn is a configured file column found in the tenant graph.
type fileColumn struct {
	profile.FileColumn
	table    *catalog.Table
	name     string // Table as the manifest spells it, shared by every file's entry
	realRoot string // Root with symbolic links resolved, to test resolved paths against
	idx      int    // its index among the run's file columns
}

// shieldTrials is how many files of a column the shield is asked about while it has
// vouched for none of them: past it, the shield is asked about that column's files no
// more (askShield). Without a shield running, each question is three system calls
// of every file (a stat and an xattr read by name, an xattr read by descriptor) for
// no answer: a fifth of what an unshielded recording costs a snapshot. A running
// shield vouches for most of a root's files, and for its first ones: its initial scan
// uploads a root in the order the snapshot reads it. The shield's directory is no
// sign either way: a snapshot run in another container than the shield may see the
// files and their xattrs without the directory beside the root (a volume mounted at
// the root itself).
var shieldTrials int64 = 256

// askShield says whether the shield is asked about a file of column c, and counts it.
// No shield, or a sealed snapshot (the shield's blobs are plaintext), asks about none.
func (e *exporter) askShield(c *fileColumn) bool {
	if e.o.Shield == nil || e.o.Sealer != nil {
		return false
	}
	asked, vouched := &e.shieldAsked[c.idx], &e.shieldVouched[c.idx]
	if asked.Load() >= shieldTrials && vouched.Load() == 0 {
		return false
	}
	asked.Add(1)
	return true
}

// shieldSaid records that the shield vouched for the file fw is saving.
func (e *exporter) shieldSaid(fw *fileWorker) {
	if fw.col != nil {
		e.shieldVouched[fw.col.idx].Add(1)
	}
}

// filePath is one path a row names.
type filePath struct {
	col  *fileColumn
	path string
}

// fileColumns matches the configured file columns with the graph. A table the purge
// does not reach, or a missing column, is a *profile.MismatchError: a typo must not
// silently drop every file of a column.
func fileColumns(g *catalog.Graph, cols []profile.FileColumn, log *slog.Logger) ([]fileColumn, error) {
	var out []fileColumn
	for i, c := range cols {
		t := g.Table(c.Table)
		if t == nil {
			return nil, &profile.MismatchError{Field: fmt.Sprintf("files[%d].table", i),
				Reason: fmt.Sprintf("%s is not a table a tenant purge reaches from %s (a typo? see purgeguard tables)", c.Table, g.Root)}
		}
		if !slices.ContainsFunc(t.Columns, func(col catalog.Column) bool { return col.Name == c.Column }) {
			return nil, &profile.MismatchError{Field: fmt.Sprintf("files[%d].column", i),
				Reason: fmt.Sprintf("%s has no column %q", c.Table, c.Column)}
		}
		root := filepath.Clean(c.Root)
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("snapshot: files root %s: %w", root, err)
			}
			real = root // no root yet: every file it should hold is missing
		}
		out = append(out, fileColumn{FileColumn: profile.FileColumn{Table: c.Table, Column: c.Column, Root: root}, table: t,
			name: c.Table.String(), realRoot: real, idx: len(out)})
	}
	return out, nil
}

// readPaths reads, within the consistent read, every distinct path the column
// names for the tenant, into the tenant's spill of paths.
func (e *exporter) readPaths(ctx context.Context, tx pgx.Tx, u unit) error {
	c := u.files
	sql := "SELECT DISTINCT p::text FROM (" + e.sel.SelectColumns(c.table, u.m.Tenant, []string{c.Column}) +
		") AS s(p) WHERE p IS NOT NULL ORDER BY 1"
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("snapshot: paths in %s.%s of tenant %s: %w", c.Table, c.Column, u.m.Tenant, err)
	}
	defer rows.Close()
	for rows.Next() {
		// The text's bytes as they came (text is its own binary form), written to
		// the spill before the next row: no string per path.
		p := rows.RawValues()[0]
		if p == nil {
			return fmt.Errorf("snapshot: paths in %s.%s of tenant %s: a NULL path", c.Table, c.Column, u.m.Tenant)
		}
		if err := e.addPath(u.m, c, p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("snapshot: paths in %s.%s of tenant %s: %w", c.Table, c.Column, u.m.Tenant, err)
	}
	return nil
}

// addPath spills one path of m's rows.
func (e *exporter) addPath(m *archive.Manifest, c *fileColumn, p []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.paths[m]
	if s == nil {
		sp, err := newSpill(e.o.TempDir, "paths")
		if err != nil {
			return err
		}
		s = &pathSpill{spill: sp}
		e.paths[m] = s
	}
	if err := s.add(c.idx, p); err != nil {
		return fmt.Errorf("snapshot: spill paths of tenant %s: %w", m.Tenant, err)
	}
	return nil
}

// readPathsMany is readPaths for several tenants in one scan: the single-scan
// select of the column's table, its first column (the tenant) renamed, routes each
// path to its tenant. Per tenant, a nightly retention run over every tenant would
// read the recordings and call logs once per tenant.
func (e *exporter) readPathsMany(ctx context.Context, tx pgx.Tx, u unit) error {
	c := u.files
	tenants := make([]uuid.UUID, len(u.many))
	byKey := make(map[string]*archive.Manifest, len(u.many))
	for i, m := range u.many {
		tenants[i] = m.Tenant
		byKey[m.Tenant.String()] = m
	}
	sel, ok := e.sel.SelectTenants(c.table, tenants)
	if !ok {
		return fmt.Errorf("snapshot: paths in %s.%s: no single-scan select", c.Table, c.Column)
	}
	col := pgx.Identifier{c.Column}.Sanitize()
	rows, err := tx.Query(ctx, "SELECT DISTINCT s.k, s."+col+"::text FROM ("+sel+") AS s(k) WHERE s."+col+" IS NOT NULL ORDER BY 1, 2")
	if err != nil {
		return fmt.Errorf("snapshot: paths in %s.%s: %w", c.Table, c.Column, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var p []byte // the spill copies it before the next row
		if err := rows.Scan(&k, &p); err != nil {
			return fmt.Errorf("snapshot: paths in %s.%s: %w", c.Table, c.Column, err)
		}
		m, ok := byKey[k]
		if !ok {
			return fmt.Errorf("snapshot: paths in %s.%s: a row of tenant %q, not asked for", c.Table, c.Column, k)
		}
		if err := e.addPath(m, c, p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("snapshot: paths in %s.%s: %w", c.Table, c.Column, err)
	}
	return nil
}

const fileWorkersPerJob = 3

// fileBatch is how many paths a file worker takes at once, and saves before it
// records them under e.mu in one go: one job per path cost a channel hand-over and
// a lock per file, about 10k futex waits and 26k nanosleeps for 42k recordings
// whose blobs the shield had stored (each then a few system calls, no upload).
const fileBatch = 64

// fileJob is one path of one snapshot to save; left counts the snapshot's files
// not yet done with.
type fileJob struct {
	m    *archive.Manifest
	p    filePath
	left *sync.WaitGroup
}

// savedFile is a saved file's entry, encoded outside e.mu, with what the run
// records beside it.
type savedFile struct {
	m     *archive.Manifest
	entry archive.FileEntry
	ev    Event
	dirs  []archive.Dir
}

// pathsAwaited counts, per snapshot, the units reading its paths (pathsRead), for
// runFiles to wait until every path of a snapshot is read before saving its files.
func (e *exporter) pathsAwaited(ms []*archive.Manifest, units []unit) {
	e.pathsLeft = make(map[*archive.Manifest]int, len(ms))
	e.pathsReady = make(map[*archive.Manifest]chan struct{}, len(ms))
	for _, u := range units {
		if u.files == nil {
			continue
		}
		for _, m := range u.manifests() {
			e.pathsLeft[m]++
		}
	}
	for _, m := range ms {
		e.pathsReady[m] = make(chan struct{})
		if e.pathsLeft[m] == 0 {
			close(e.pathsReady[m])
		}
	}
}

// pathsRead marks u's paths read: a snapshot whose every path is read is ready
// for runFiles.
func (e *exporter) pathsRead(u unit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range u.manifests() {
		if e.pathsLeft[m]--; e.pathsLeft[m] == 0 {
			close(e.pathsReady[m])
		}
	}
}

// runFiles saves every path of every manifest on Jobs*fileWorkersPerJob goroutines.
// Small files go to their snapshot's packs through one pack writer (pack.go).
func (e *exporter) runFiles(ctx context.Context, ms []*archive.Manifest) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.rootFDs = openRoots(e.files)
	defer func() { closeRoots(e.rootFDs); e.rootFDs = nil }()
	e.shieldAsked, e.shieldVouched = make([]atomic.Int64, len(e.files)), make([]atomic.Int64, len(e.files))
	workers := e.o.Jobs * fileWorkersPerJob
	ch := make(chan []fileJob, workers)
	// Bounded: a worker waits while the pack writer is behind, holding one frame.
	packCh := make(chan packJob, workers)
	e.packCh = packCh
	defer func() { e.packCh = nil }()
	packDone := make(chan struct{})
	go func() {
		defer close(packDone)
		newPackWriter(e).run(ctx, packCh, func(err error) { cancel(err) })
	}()
	var wg sync.WaitGroup
	// Files are small and each ends in an fsync or an HTTP round trip: more
	// goroutines than connections keep the disk or the network busy.
	for range workers {
		wg.Go(func() {
			enc, err := archive.NewBlobEncoder(e.o.Level)
			var small *zstd.Encoder
			if err == nil {
				small, err = archive.NewSmallBlobEncoder(e.o.Level)
			}
			if err != nil {
				cancel(err)
				for jobs := range ch {
					doneAll(jobs)
				}
				return
			}
			defer enc.Close()
			defer small.Close()
			fw := &fileWorker{enc: enc, small: small, dh: &dirHandle{fd: -1}}
			defer fw.dh.close()
			done := make([]savedFile, 0, fileBatch)
			for jobs := range ch {
				if ctx.Err() != nil {
					doneAll(jobs)
					continue
				}
				done = done[:0]
				for i, j := range jobs {
					if err := e.saveJob(ctx, fw, j, &done); err != nil {
						cancel(err)
						doneAll(jobs[i+1:])
						break
					}
				}
				if err := e.recordFiles(done); err != nil {
					cancel(err)
				}
				// recordFiles copied the lines into the lists' encoders.
				fw.lines = fw.lines[:0]
			}
		})
	}
	var enders sync.WaitGroup // each sends a snapshot's end to the pack writer
	batch := make([]fileJob, 0, fileBatch)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case ch <- batch:
			batch = make([]fileJob, 0, fileBatch)
			return nil
		case <-ctx.Done():
			doneAll(batch)
			batch = batch[:0]
			return context.Cause(ctx)
		}
	}
	for _, m := range ms {
		select {
		case <-e.pathsReady[m]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		e.mu.Lock()
		paths := e.paths[m]
		e.mu.Unlock()
		if paths == nil {
			continue
		}
		left := new(sync.WaitGroup)
		err := paths.each(func(col int, path string) error {
			left.Add(1)
			batch = append(batch, fileJob{m, filePath{col: &e.files[col], path: path}, left})
			if len(batch) < fileBatch {
				return nil
			}
			return send()
		})
		if err == nil {
			err = send()
		}
		doneAll(batch) // not sent: an error stopped the walk
		batch = batch[:0]
		// Once every file of m is done with, m's last pack is closed, while the
		// workers go on with the next snapshot's files.
		enders.Go(func() {
			left.Wait()
			select {
			case packCh <- packJob{m: m, end: true}:
			case <-ctx.Done():
			}
		})
		if err != nil {
			cancel(err)
			break
		}
	}
	close(ch)
	wg.Wait()
	enders.Wait()
	close(packCh)
	<-packDone
	return context.Cause(ctx)
}

// doneAll marks jobs done without saving them (the run is failing).
func doneAll(jobs []fileJob) {
	for _, j := range jobs {
		j.left.Done()
	}
}

// saveJob saves one path: its entry goes to done, or, for a small file to pack,
// to the pack writer, which records it in the order of the pack's frames.
func (e *exporter) saveJob(ctx context.Context, fw *fileWorker, j fileJob, done *[]savedFile) error {
	defer j.left.Done()
	f, ev, err := e.saveFile(ctx, fw, j.m, j.p)
	if err != nil {
		fw.frame = nil
		return fmt.Errorf("snapshot: file %s of tenant %s: %w", j.p.path, j.m.Tenant, err)
	}
	ev.Tenant = j.m.Tenant
	var dirs []archive.Dir
	if f.Owner != nil {
		dirs = fw.dirs.of(e, j.m, j.p)
	}
	if frame := fw.frame; frame != nil {
		fw.frame = nil
		select {
		case e.packCh <- packJob{m: j.m, f: f, ev: ev, dirs: dirs, frame: frame}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	// Encoded into the worker's buffer, emptied once the batch is recorded.
	entry, lines, err := archive.AppendFileEntry(fw.lines, f)
	if err != nil {
		return fmt.Errorf("snapshot: file %s of tenant %s: %w", j.p.path, j.m.Tenant, err)
	}
	fw.lines = lines
	*done = append(*done, savedFile{m: j.m, entry: entry, ev: ev, dirs: dirs})
	return nil
}

// recordFiles adds saved files to their snapshots' lists, under e.mu once for all.
func (e *exporter) recordFiles(done []savedFile) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range done {
		if err := e.addFile(s.m, s.entry); err != nil {
			return err
		}
		if e.dirs[s.m] == nil {
			e.dirs[s.m] = map[string]archive.Dir{}
		}
		for _, d := range s.dirs {
			e.dirs[s.m][d.Path] = d
		}
		e.progress(s.ev)
	}
	return nil
}

// addFile appends a saved file's entry to m's file list; e.mu is held.
func (e *exporter) addFile(m *archive.Manifest, f archive.FileEntry) error {
	l := e.lists[m]
	if l == nil {
		var err error
		if l, err = newListSpill(e.o.TempDir, e.o.Level); err != nil {
			return err
		}
		e.lists[m] = l
	}
	if err := l.w.AddEncoded(f); err != nil {
		return fmt.Errorf("snapshot: file list of tenant %s: %w", m.Tenant, err)
	}
	return nil
}

// reuse records a blob found already stored (vouched: by the file shield), checked
// again before the manifests name it; e.mu is held.
func (e *exporter) reuse(sum [32]byte, vouched bool) error {
	s := &e.reused
	if vouched {
		s = &e.vouched
	}
	if s.spill == nil {
		sp, err := newSpill(e.o.TempDir, "blobs")
		if err != nil {
			return err
		}
		s.spill = sp
	}
	if err := s.add(sum); err != nil {
		return fmt.Errorf("snapshot: spill reused blobs: %w", err)
	}
	return nil
}

// saveFile records one path. A path outside its root is never opened, a missing
// file is recorded as missing; both are reported, neither stops the snapshot. The
// kernel resolves and opens the path under its root's directory (openBeneath); what
// it refuses there, or a kernel without openat2, is resolved in user space and
// checked against the resolved root. A file whose blob the shield stored is first
// looked at by name in its directory, held open in fw.dh (shieldStoredAt).
func (e *exporter) saveFile(ctx context.Context, fw *fileWorker, m *archive.Manifest, p filePath) (archive.File, Event, error) {
	c := p.col
	f := archive.File{Table: c.name, Column: c.Column, Path: p.path}
	ev := Event{Table: f.Table, File: p.path}
	clean := filepath.Clean(p.path)
	if !filepath.IsAbs(p.path) || !archive.Within(c.Root, clean) {
		f.OutsideRoot = true
		e.report("file path outside its root: not read", "path", p.path, "root", c.Root, "table", f.Table)
		return f, ev, nil
	}
	fw.col = c
	ask, asked := e.askShield(c), false
	if ask {
		rf, rev, ok, byName, err := e.shieldStoredAt(fw, c, clean, f, ev)
		if ok {
			e.shieldSaid(fw)
		}
		if ok || err != nil {
			return rf, rev, err
		}
		asked = byName
	}
	fd, err := e.openBeneath(c, clean)
	switch {
	case err == nil:
		return e.saveFD(ctx, fw, m, p.path, f, ev, fd, ask, asked)
	case absent(err):
		return e.missing(ctx, fw, m, p, f, ev)
	}
	// Refused by openat2, or no openat2: resolved here, the check after the
	// resolution reporting a path that leaves the root as it always did.
	real, err := filepath.EvalSymlinks(clean)
	if absent(err) {
		return e.missing(ctx, fw, m, p, f, ev)
	}
	if err != nil {
		return f, ev, err
	}
	if !archive.Within(c.realRoot, real) {
		f.OutsideRoot = true
		e.report("file path resolves outside its root: not read", "path", p.path, "resolved", real, "root", c.Root, "table", f.Table)
		return f, ev, nil
	}
	// O_NOFOLLOW: a link swapped in after the check above is refused, not followed.
	fh, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if absent(err) {
		return e.missing(ctx, fw, m, p, f, ev)
	}
	if err != nil {
		return f, ev, err
	}
	defer fh.Close()
	return e.saveOpen(ctx, fw, m, p.path, f, ev, fh, ask)
}

// absent says whether err means no file is at the path: it does not exist, or a
// component of it is a file, not a directory (a row naming x.wav/y while x.wav is
// a recording), which must be reported like any missing file, not stop the run.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// missing records a file the disk does not have: from the shield's copy when the
// shield has one, else as missing.
func (e *exporter) missing(ctx context.Context, fw *fileWorker, m *archive.Manifest, p filePath, f archive.File, ev Event) (archive.File, Event, error) {
	if e.o.Shield != nil {
		rf, rev, ok, err := e.fromShield(ctx, fw, m, p, f, ev)
		if ok || err != nil {
			return rf, rev, err
		}
	}
	f.Missing = true
	e.report("file named by a row is missing", "path", p.path, "table", f.Table)
	return f, ev, nil
}

// saveFD saves the file openBeneath opened as fd, and closes it. It costs an fstat,
// and the shield's look (fgetxattr) when ask says to ask it: a file whose blob the
// shield stored costs nothing more. A small file is read from the descriptor; the
// descriptor becomes an *os.File, whose making costs two more system calls (fcntl,
// and epoll_ctl for the O_NONBLOCK descriptor), only for a larger file (or one that
// is not regular, or grew past smallBlob). A sealed snapshot, which the shield cannot
// serve, once made one for every file: 0.1 s of CPU for 42k recordings.
// askedByName says the shield was asked about it by name first, and said no
// (shieldStoredAt).
func (e *exporter) saveFD(ctx context.Context, fw *fileWorker, m *archive.Manifest, path string, f archive.File, ev Event, fd int, ask, askedByName bool) (archive.File, Event, error) {
	st := place.NewStatInfo(path)
	if err := place.Fstat(fd, st); err != nil {
		_ = syscall.Close(fd)
		return f, ev, err
	}
	if ask {
		if rf, rev, ok, err := e.shieldStored(f, ev, fd, st); ok || err != nil {
			_ = syscall.Close(fd)
			if ok {
				e.shieldSaid(fw)
				if askedByName {
					e.byNameMissed.Add(1)
				}
			}
			return rf, rev, err
		}
	}
	if st.Mode().IsRegular() && st.Size() <= smallBlob {
		// Read from the descriptor itself: an *os.File costs two system calls more
		// to make (fcntl, and epoll_ctl for the O_NONBLOCK descriptor), for every
		// small file.
		if testHookAfterFstat != nil {
			testHookAfterFstat(path)
		}
		rf, rev, ok, err := e.saveSmall(ctx, fw, m, f, ev, fdReader{fd: fd, name: path}, st)
		if ok || err != nil {
			_ = syscall.Close(fd)
			return rf, rev, err
		}
		// Grew past smallBlob since its stat: streamed from its start below.
		if _, err := syscall.Seek(fd, 0, io.SeekStart); err != nil {
			_ = syscall.Close(fd)
			return f, ev, &fs.PathError{Op: "seek", Path: path, Err: err}
		}
	}
	fh := os.NewFile(uintptr(fd), path)
	defer fh.Close()
	// Stat and shield asked above: not again (two system calls of each file).
	return e.saveStat(ctx, fw, m, path, f, ev, fh, st, false)
}

// shieldStored records f from the shield's word when the shield stored the blob of the
// open file fd (st its stat) as the file is now: no hashing, no HEAD. ok is false
// when it did not, or cannot say; the caller then reads the file.
func (e *exporter) shieldStored(f archive.File, ev Event, fd int, st fs.FileInfo) (archive.File, Event, bool, error) {
	// The shield's blobs are shared and plaintext: a sealed snapshot stores its own.
	if e.o.Shield == nil || e.o.Sealer != nil || !st.Mode().IsRegular() {
		return f, ev, false, nil
	}
	sum, stored, ok := e.o.Shield.Stored(fd, st)
	if !ok {
		return f, ev, false, nil
	}
	// The shield uploaded this very content (same inode, size and mtime).
	return e.recordVouched(f, ev, st, sum, stored)
}

// recordVouched records f, whose stat is st, as the content the shield stored under
// sum (stored bytes in storage).
func (e *exporter) recordVouched(f archive.File, ev Event, st fs.FileInfo, sum [32]byte, stored int64) (archive.File, Event, bool, error) {
	f.Size, f.Mode, f.ModTime, f.SHA256 = st.Size(), uint32(st.Mode().Perm()), st.ModTime().UTC(), hex.EncodeToString(sum[:])
	f.Owner = archiveOwner(place.OwnerOf(st, &e.names))
	f.StoredBytes = stored
	ev.Bytes = st.Size()
	e.mu.Lock()
	err := e.reuse(sum, true)
	e.mu.Unlock()
	return f, ev, true, err
}

// saveOpen hashes and stores the content of an open file (the file at its path, or
// the shield's link of it) under the name path.
func (e *exporter) saveOpen(ctx context.Context, fw *fileWorker, m *archive.Manifest, path string, f archive.File, ev Event, fh *os.File, ask bool) (archive.File, Event, error) {
	st, err := fh.Stat()
	if err != nil {
		return f, ev, err
	}
	return e.saveStat(ctx, fw, m, path, f, ev, fh, st, ask)
}

// saveStat is saveOpen once fh's stat st is known; ask says the shield is to be
// asked about fh (it was not yet).
func (e *exporter) saveStat(ctx context.Context, fw *fileWorker, m *archive.Manifest, path string, f archive.File, ev Event, fh *os.File, st fs.FileInfo, ask bool) (archive.File, Event, error) {
	p := filePath{path: path}
	store := e.storeOf(m)
	if !st.Mode().IsRegular() {
		return f, ev, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if ask {
		if rf, rev, ok, err := e.shieldStored(f, ev, int(fh.Fd()), st); ok || err != nil {
			if ok {
				e.shieldSaid(fw)
			}
			return rf, rev, err
		}
	}
	if st.Size() <= smallBlob {
		rf, rev, ok, err := e.saveSmall(ctx, fw, m, f, ev, fh, st)
		if ok || err != nil {
			return rf, rev, err
		}
		// Grew past smallBlob since its stat: streamed from its start.
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			return f, ev, err
		}
	}
	// Content addressing needs the digest before the upload: hash first, then
	// upload only blobs the store does not have, hashing again on the way and
	// comparing, so a file changed in between is caught rather than mislabelled.
	sum := archive.NewDigest()
	if _, err := copyFile(sum, fh); err != nil {
		return f, ev, err
	}
	f.Size, f.Mode, f.ModTime, f.SHA256 = sum.Size(), uint32(st.Mode().Perm()), st.ModTime().UTC(), sum.Hex()
	f.Owner = archiveOwner(place.OwnerOf(st, &e.names))
	ev.Bytes = sum.Size()
	key := archive.BlobKey(sum.Sum())
	storedKey, err := e.storedKey(m, key)
	if err != nil {
		return f, ev, err
	}
	storedSize, uploaded, err := e.blobs.ensure(storedKey, func() (int64, bool, error) {
		if size, ok, err := e.reuseStored(ctx, m, store, key, sum.Sum(), storedKey); err != nil || ok {
			return size, false, err
		}
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			return 0, false, err
		}
		again := archive.NewDigest()
		stored, err := putCompressed(ctx, e.blobPutter(store), key, fw.enc, func(w io.Writer) error {
			if _, err := copyFile(io.MultiWriter(w, again), fh); err != nil {
				return err
			}
			// Checked before the upload completes: a failed check abandons it, and
			// no blob is ever stored under a digest its content does not have.
			if err := again.Check(p.path, f.SHA256, f.Size); err != nil {
				return fmt.Errorf("file changed while it was saved: %w", err)
			}
			return nil
		})
		if err != nil {
			return 0, false, err
		}
		return stored.stored.Size(), true, nil
	})
	if err != nil {
		return f, ev, err
	}
	f.StoredBytes = storedSize
	if uploaded {
		ev.Stored = storedSize
	}
	return f, ev, nil
}

// smallBlob is the largest file saveSmall holds in memory: a recording of a few
// seconds, a voicemail greeting. Each of the run's file workers holds at most one
// such file and its compressed copy (a few hundred KiB each, kept between files).
const smallBlob = 256 << 10

// smallBufs are saveSmall's buffers, kept between files.
var smallBufs = sync.Pool{New: func() any { return new(smallBuf) }}

type smallBuf struct{ raw, comp []byte }

// saveSmall stores a file of at most smallBlob bytes from memory: read once, hashed
// and compressed in one call, put as one stream. The streaming path reads a file
// twice (to name its blob, then to store it, checking the two agree) through a
// pipe, a goroutine and an encoder per blob: for a tenant's thousands of small
// recordings those were most of the work. What is stored is exactly what was
// hashed, so a file changed meanwhile cannot be mislabelled. ok is false, nothing
// stored, when the file holds more than smallBlob bytes by now.
func (e *exporter) saveSmall(ctx context.Context, fw *fileWorker, m *archive.Manifest, f archive.File, ev Event, fh io.Reader, st fs.FileInfo) (archive.File, Event, bool, error) {
	b := smallBufs.Get().(*smallBuf)
	defer smallBufs.Put(b)
	if cap(b.raw) < smallBlob+1 {
		b.raw = make([]byte, smallBlob+1)
	}
	n, err := io.ReadFull(fh, b.raw[:smallBlob+1])
	switch {
	case err == nil:
		return f, ev, false, nil // more than smallBlob
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		return f, ev, false, err
	}
	raw := b.raw[:n]
	sum := archive.NewDigest()
	_, _ = sum.Write(raw)
	f.Size, f.Mode, f.ModTime, f.SHA256 = sum.Size(), uint32(st.Mode().Perm()), st.ModTime().UTC(), sum.Hex()
	f.Owner = archiveOwner(place.OwnerOf(st, &e.names))
	ev.Bytes = sum.Size()
	if e.packCh != nil && int64(len(raw)) <= packMax(e.o) {
		// To the snapshot's pack: a frame of its own, no blob, no look for one
		// already stored (packed files are not shared between snapshots).
		fw.frame = fw.encoderFor(raw).EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
		f.StoredBytes = int64(len(fw.frame))
		ev.Stored = f.StoredBytes
		return f, ev, true, nil
	}
	key := archive.BlobKey(sum.Sum())
	storedKey, err := e.storedKey(m, key)
	if err != nil {
		return f, ev, true, err
	}
	store := e.storeOf(m)
	storedSize, uploaded, err := e.blobs.ensure(storedKey, func() (int64, bool, error) {
		if size, ok, err := e.reuseStored(ctx, m, store, key, sum.Sum(), storedKey); err != nil || ok {
			return size, false, err
		}
		b.comp = fw.encoderFor(raw).EncodeAll(raw, b.comp[:0])
		if err := e.blobPutter(store).Put(ctx, key, bytes.NewReader(b.comp)); err != nil {
			return 0, false, err
		}
		return int64(len(b.comp)), true, nil
	})
	if err != nil {
		return f, ev, true, err
	}
	f.StoredBytes = storedSize
	if uploaded {
		ev.Stored = storedSize
	}
	return f, ev, true, nil
}

// testHookAfterFstat, when set by a test, runs between saveFD's fstat of a small
// file and its reading.
var testHookAfterFstat func(path string)

// fdReader reads a regular file's descriptor as os.File would, without being one.
type fdReader struct {
	fd   int
	name string
}

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(r.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: r.name, Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// reuseStored looks for the blob under key in store: when it is there (a blob is
// immutable: once stored, done), it is reused for m and its stored size returned
// with ok; when it is not, ok is false and the caller stores it.
func (e *exporter) reuseStored(ctx context.Context, m *archive.Manifest, store storage.Store, key string, sum [32]byte, storedKey string) (size int64, ok bool, err error) {
	info, err := store.Stat(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if err := e.reuseBlob(ctx, m, sum, storedKey); err != nil {
		return 0, false, err
	}
	return info.Size, true, nil
}

// copyBufs are copyFile's buffers, kept: io.Copy allocates 32 KiB per call.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyFile copies fh to w with a kept buffer (os.File's WriteTo, which io.Copy
// would take, allocates one per call).
func copyFile(w io.Writer, fh *os.File) (int64, error) {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(w, struct{ io.Reader }{fh}, buf[:])
}

// blobPutter is where a blob for store goes: the run's batch when store is the one
// it batches (a file:// store), sealed on its way when store is a tenant's sealed
// view of it, else store itself. The run flushes the batch before any manifest
// names a blob.
func (e *exporter) blobPutter(store storage.Store) putter {
	if e.batch == nil {
		return store
	}
	if store == e.store {
		return e.batch
	}
	if v, ok := store.(sealedView); ok {
		return sealedBatch{v: v, b: e.batch}
	}
	return store
}

// sealedBatch seals a tenant's blobs into the run's batch: a sealed snapshot paid
// an fsync, a rename and a directory fsync per blob where a plaintext one shares
// them (38.24 s against 11.67 s for 42,536 recordings, BENCH_PART=seal).
type sealedBatch struct {
	v sealedView
	b storage.Batch
}

func (p sealedBatch) Put(ctx context.Context, key string, r io.Reader) error {
	return p.v.PutVia(ctx, p.b.Put, key, r)
}

// archiveOwner is o as the manifest records it; nil when the system gave no owner.
func archiveOwner(o place.Owner) *archive.Owner {
	if o.IsKeep() {
		return nil
	}
	return &archive.Owner{UID: uint32(o.UID), GID: uint32(o.GID), User: o.User, Group: o.Group}
}

// dirsOf returns the directories between p's root (excluded) and its file, each
// with its mode and owner, so that restore can make them again as they were. A
// directory that cannot be read is left out: restore then gives it its parent's.
//
// Each directory is looked at once per run (dirSeen): a tenant's thousands of
// recordings share a few directories.
func (e *exporter) dirsOf(p filePath) []archive.Dir {
	var out []archive.Dir
	root := p.col.Root
	for d := filepath.Dir(filepath.Clean(p.path)); d != root && archive.Within(root, d); d = filepath.Dir(d) {
		if v, ok := e.dirSeen.Load(d); ok {
			if dir, ok := v.(archive.Dir); ok {
				out = append(out, dir)
			}
			continue
		}
		dir, ok := e.dirOf(d)
		if !ok {
			e.dirSeen.Store(d, false)
			continue
		}
		e.dirSeen.Store(d, dir)
		out = append(out, dir)
	}
	return out
}

// dirsMemo is a file worker's last dirsOf: the directories of a file in the same
// directory as the one before it, of the same snapshot, were recorded with that
// one (recordFiles keeps them per snapshot), and are not looked up again for each
// of a tenant's thousands of recordings.
type dirsMemo struct {
	m   *archive.Manifest
	col *fileColumn
	dir string
}

// of is dirsOf(p), or nothing when the worker's last file with an owner had p's
// directory, column and snapshot.
func (d *dirsMemo) of(e *exporter, m *archive.Manifest, p filePath) []archive.Dir {
	dir := filepath.Dir(p.path)
	if d.m == m && d.col == p.col && d.dir == dir {
		return nil
	}
	d.m, d.col, d.dir = m, p.col, dir
	return e.dirsOf(p)
}

// dirOf is one directory's mode and owner; ok is false when it cannot be read.
func (e *exporter) dirOf(d string) (archive.Dir, bool) {
	fi, err := os.Lstat(d)
	if err != nil || !fi.IsDir() {
		return archive.Dir{}, false
	}
	o := archiveOwner(place.OwnerOf(fi, &e.names))
	if o == nil {
		return archive.Dir{}, false
	}
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky)
	return archive.Dir{Path: d, Mode: uint32(mode), Owner: *o}, true
}

// maxReported bounds the per-file warnings of one run: a tenant whose media were
// cleaned up by hand can name thousands of missing files, all in the manifest and
// counted in the summary.
const maxReported = 20

// report warns about a file the snapshot could not save; past maxReported, only at
// debug level.
func (e *exporter) report(msg string, args ...any) {
	if n := e.reported.Add(1); n > maxReported {
		e.o.Log.Debug(msg, args...)
		return
	} else if n == maxReported {
		msg += " (further ones at debug level; the manifest lists every one)"
	}
	e.o.Log.Warn(msg, args...)
}

// blobSet makes each blob go up once per run, even when two rows name the same
// content at the same time. It remembers up to maxStored blobs stored (a few MiB);
// past that it starts again: a blob met again is then asked about (Stat) rather
// than uploaded twice, and a tenant's million recordings cost no more memory.
type blobSet struct {
	mu      sync.Mutex
	pending map[string]*blobEntry // being stored, or failed, by stored key
	stored  map[string]int64      // stored size
}

const maxStored = 1 << 16

type blobEntry struct {
	done     chan struct{}
	size     int64
	uploaded bool
	err      error
}

func newBlobSet() *blobSet {
	return &blobSet{pending: map[string]*blobEntry{}, stored: map[string]int64{}}
}

// ensure runs store for the blob stored as sum (its stored key: a tenant's sealed
// blob differs from another tenant's of the same content) once; later callers wait
// for it and share its result, as not uploaded by them.
func (b *blobSet) ensure(sum string, store func() (int64, bool, error)) (size int64, uploaded bool, err error) {
	b.mu.Lock()
	if size, ok := b.stored[sum]; ok {
		b.mu.Unlock()
		return size, false, nil
	}
	if e, ok := b.pending[sum]; ok {
		b.mu.Unlock()
		<-e.done
		return e.size, false, e.err
	}
	e := &blobEntry{done: make(chan struct{})}
	b.pending[sum] = e
	b.mu.Unlock()
	e.size, e.uploaded, e.err = store()
	if e.err == nil {
		b.mu.Lock()
		if len(b.stored) >= maxStored {
			b.stored = make(map[string]int64, 1024)
		}
		b.stored[sum] = e.size
		delete(b.pending, sum) // waiters hold e itself
		b.mu.Unlock()
	}
	close(e.done)
	return e.size, e.uploaded, e.err
}
