package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/storage"
)

// restoreFile is one file of the snapshot and where it goes.
type restoreFile struct {
	archive.File
	root     string // the directory it must stay under
	target   string // where it is written
	refused  string // why it is not written, when it is not
	notSaved bool   // missing or outside its root when the snapshot was taken
}

// selectFiles decides, before anything is written, where each file of the chosen
// tables goes. A path that leaves its root (.., absolute elsewhere) is refused here;
// one that leaves it through a symbolic link is refused when written.
func selectFiles(m *archive.Manifest, tables []archive.Table, o Options) ([]restoreFile, error) {
	in := map[string]bool{}
	for _, t := range tables {
		in[t.Schema+"."+t.Name] = true
	}
	var out []restoreFile
	for _, f := range m.Files {
		if !in[f.Table] {
			continue
		}
		rf := restoreFile{File: f}
		if f.Missing || f.OutsideRoot {
			rf.notSaved = true
			out = append(out, rf)
			continue
		}
		var root string
		for _, c := range o.Files {
			if c.Table.String() == f.Table && c.Column == f.Column {
				root = filepath.Clean(c.Root)
			}
		}
		clean := filepath.Clean(f.Path)
		switch {
		case root == "":
			rf.refused = fmt.Sprintf("no files root configured for %s.%s", f.Table, f.Column)
		case !filepath.IsAbs(f.Path) || !archive.Within(root, clean) || clean == root:
			rf.refused = fmt.Sprintf("path leaves its root %s", root)
		case o.FilesRoot != "":
			rel, err := filepath.Rel(root, clean)
			if err != nil {
				return nil, err
			}
			rf.root, rf.target = filepath.Clean(o.FilesRoot), filepath.Join(o.FilesRoot, rel)
		default:
			rf.root, rf.target = root, clean
		}
		out = append(out, rf)
	}
	return out, nil
}

// restoreFiles writes every file that is not already there with the same content.
// It returns an error (and the restore rolls back) if a file differs without
// OverwriteFiles, or if a write fails; refused paths are reported, not written.
func restoreFiles(ctx context.Context, s storage.Store, files []restoreFile, o Options) ([]FileReport, error) {
	out := []FileReport{}
	if len(files) == 0 {
		return out, nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return out, err
	}
	defer dec.Close()
	var errs []error
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r := FileReport{Path: f.Path}
		switch {
		case f.notSaved:
			r.Outcome, r.Detail = FileNotSaved, "missing or outside its root when the snapshot was taken"
		case f.refused != "":
			r.Outcome, r.Detail = FileRefused, f.refused
			o.Log.Warn("file not restored: its path leaves its root", "path", f.Path, "reason", f.refused)
		default:
			outcome, detail, err := restoreOne(ctx, s, dec, f, o)
			r.Outcome, r.Detail = outcome, detail
			if err != nil {
				errs = append(errs, fmt.Errorf("restore: file %s: %w", f.Path, err))
			}
		}
		if r.Outcome != FileWritten && f.target != "" && f.target != f.Path {
			r.Detail += " (at " + f.target + ")"
		}
		out = append(out, r)
		if o.Progress != nil {
			o.Progress(Event{File: f.Path, Bytes: f.Size})
		}
	}
	return out, errors.Join(errs...)
}

func restoreOne(ctx context.Context, s storage.Store, dec *zstd.Decoder, f restoreFile, o Options) (string, string, error) {
	root := place.NewRoot(f.root)
	if err := root.Check(f.target); err != nil {
		var oe *place.OutsideError
		if errors.As(err, &oe) {
			o.Log.Warn("file not restored: its directory leaves its root", "path", f.Path, "reason", oe.Reason)
			return FileRefused, oe.Reason, nil
		}
		return "", "", err
	}
	fi, err := os.Lstat(f.target)
	outcome := FileWritten
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", "", err
	case !fi.Mode().IsRegular():
		return FileRefused, "a " + fi.Mode().Type().String() + " is in its place", nil
	default:
		same, err := sameContent(f.target, f.SHA256)
		if err != nil {
			return "", "", err
		}
		if same {
			return FilePresent, "", nil
		}
		if !o.OverwriteFiles {
			return FileDiffers, "exists with other content (--overwrite-files replaces it)", ErrFileDiffers
		}
		outcome = FileOverwritten
	}
	if o.DryRun {
		return outcome, "", nil
	}
	if _, err := root.MkdirAll(filepath.Dir(f.target), nil); err != nil {
		return "", "", err
	}
	err = writeFile(ctx, s, dec, f, root)
	var oe *place.OutsideError
	if errors.As(err, &oe) { // a link raced in while creating
		return FileRefused, oe.Reason, nil
	}
	return outcome, "", err
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

// writeFile places the blob at the target, checking its SHA-256 on the way.
func writeFile(ctx context.Context, s storage.Store, dec *zstd.Decoder, f restoreFile, root place.Root) error {
	key, err := archive.BlobKeyHex(f.SHA256)
	if err != nil {
		return err
	}
	rc, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := dec.Reset(rc); err != nil {
		return &archive.VerifyError{Key: key, What: "decompress", Reason: err}
	}
	sum := archive.NewDigest()
	a := place.Attr{Mode: fs.FileMode(f.Mode).Perm(), ModTime: f.ModTime, Owner: place.Keep}
	return root.Write(ctx, f.target, io.TeeReader(dec, sum), a, func() error { return sum.Check(key, f.SHA256, f.Size) })
}
