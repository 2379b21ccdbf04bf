package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
)

const fileListName = "files.jsonl.zst"

// FileListKey is the key of a format-3 snapshot's list of files.
func FileListKey(tenant, id uuid.UUID) string {
	return SnapshotPrefix(tenant, id) + fileListName
}

// FileList is where a format-3 manifest lists its files: a separate object, one
// File as JSON per line, zstd-compressed, in the order the snapshot found them. A
// tenant with a million recordings has a list of a million entries: inline, the
// manifest would be read whole by list and prune, and held whole by whoever wrote
// it. The manifest keeps only the list's digest, its entry count and its totals, so
// list and prune never open it and every other reader streams it.
type FileList struct {
	Key         string `json:"key"`
	Entries     int64  `json:"entries"`
	StoredBytes int64  `json:"stored_bytes"` // of the list object itself
	SHA256      string `json:"sha256"`       // of the stored (compressed) object
	// Totals sums the entries, so that a manifest's Totals need not read the list.
	Totals FileTotals `json:"totals"`
}

// FileTotals sums a list of files.
type FileTotals struct {
	Saved       int64 `json:"saved"`        // stored files (recovered ones included)
	Bytes       int64 `json:"bytes"`        // their raw content
	BlobBytes   int64 `json:"blob_bytes"`   // their blobs as stored
	Missing     int64 `json:"missing"`      // named, not on disk
	OutsideRoot int64 `json:"outside_root"` // named, outside their root: never read
	Recovered   int64 `json:"recovered"`    // of Saved: taken from the file shield
}

// add counts one entry.
func (t *FileTotals) add(f *File) {
	switch {
	case f.Missing:
		t.Missing++
	case f.OutsideRoot:
		t.OutsideRoot++
	default:
		t.Saved++
		if f.Recovered {
			t.Recovered++
		}
		t.Bytes += f.Size
		t.BlobBytes += f.StoredBytes
	}
}

func (l *FileList) validate(m *Manifest) error {
	if want := FileListKey(m.Tenant, m.ID); l.Key != want {
		return fmt.Errorf("file list: key %q, want %q", l.Key, want)
	}
	t := l.Totals
	if l.Entries < 0 || l.StoredBytes < 0 || t.Saved < 0 || t.Bytes < 0 || t.BlobBytes < 0 || t.Missing < 0 ||
		t.OutsideRoot < 0 || t.Recovered < 0 || t.Recovered > t.Saved || t.Saved+t.Missing+t.OutsideRoot != l.Entries {
		return errors.New("file list: counts do not add up")
	}
	if _, err := ParseDigestHex(l.SHA256); err != nil {
		return fmt.Errorf("file list: %w", err)
	}
	return nil
}

// validateFile checks one entry of a manifest of format version v.
func validateFile(f *File, v int) error {
	if f.Path == "" {
		return errors.New("empty path")
	}
	if f.Owner != nil && v < 2 {
		return fmt.Errorf("file %s: format_version %d has no owners", f.Path, v)
	}
	if f.Size < 0 || f.StoredBytes < 0 {
		// A negative size would also make Digest.Check skip the size comparison.
		return fmt.Errorf("file %s: negative size", f.Path)
	}
	if f.Pack != nil && v < 4 {
		return fmt.Errorf("file %s: format_version %d has no packs", f.Path, v)
	}
	if f.Missing || f.OutsideRoot {
		if f.Pack != nil {
			return fmt.Errorf("file %s: %w", f.Path, errPackedMissing)
		}
		return nil
	}
	// Parsed, not made into a key: a key string per entry was 4 MB of garbage in a
	// 42k-file snapshot.
	if _, err := ParseDigestHex(f.SHA256); err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	return nil
}

// FileListWriter writes a file list as entries come: nothing of it stays in memory
// but the compressor's window. Close it to learn what the manifest records.
type FileListWriter struct {
	stored *Digest
	enc    *zstd.Encoder
	tot    FileTotals
	n      int64
	err    error
}

// NewFileListWriter writes a file list, compressed at zstd level, to w.
func NewFileListWriter(w io.Writer, level int) (*FileListWriter, error) {
	stored := NewDigest()
	// The small blobs' encoder: at levels up to 3 the fastest one, which took half
	// the time of level 3's on a 42k-file list (16.7 MB: 30 against 57 ms) and
	// stored 5% less, its lines' randomness being in digests and names it cannot
	// shorten.
	enc, err := NewSmallBlobEncoder(level)
	if err != nil {
		return nil, fmt.Errorf("archive: file list: %w", err)
	}
	enc.Reset(io.MultiWriter(w, stored))
	return &FileListWriter{stored: stored, enc: enc}, nil
}

// Add appends one entry, which must be valid in the current format.
func (w *FileListWriter) Add(f File) error {
	e, err := EncodeFileEntry(f)
	if err != nil {
		return err
	}
	return w.AddEncoded(e)
}

// FileEntry is a file list entry checked and encoded (EncodeFileEntry), for
// AddEncoded: writers adding from several goroutines under a lock encode first,
// outside it.
type FileEntry struct {
	f    File
	line []byte
}

// EncodeFileEntry checks f, which must be valid in the current format, and encodes
// it as a file list line.
func EncodeFileEntry(f File) (FileEntry, error) {
	// Room for the line as json.Marshal writes it when no string needs escaping.
	n := len(f.Table) + len(f.Column) + len(f.Path) + len(f.SHA256) + 320
	if f.Owner != nil {
		n += len(f.Owner.User) + len(f.Owner.Group)
	}
	e, _, err := AppendFileEntry(make([]byte, 0, n), f)
	return e, err
}

// AppendFileEntry is EncodeFileEntry writing the line at the end of buf, which it
// returns grown: the entry's line is buf's, valid while buf's bytes are not
// overwritten. A writer adding entries in batches reuses one buffer for each batch
// (a line of about 400 bytes per file was a 42k-file snapshot's largest garbage).
func AppendFileEntry(buf []byte, f File) (FileEntry, []byte, error) {
	if err := validateFile(&f, FormatVersion); err != nil {
		return FileEntry{}, buf, fmt.Errorf("archive: file list: %w", err)
	}
	start := len(buf)
	b, err := appendFileJSON(buf, &f)
	if err != nil {
		return FileEntry{}, buf, fmt.Errorf("archive: file list: %s: %w", f.Path, err)
	}
	b = append(b, '\n')
	return FileEntry{f: f, line: b[start:len(b):len(b)]}, b, nil
}

// AddEncoded appends one entry EncodeFileEntry made.
func (w *FileListWriter) AddEncoded(e FileEntry) error {
	if w.err != nil {
		return w.err
	}
	if e.line == nil {
		return errors.New("archive: file list: an entry not made by EncodeFileEntry")
	}
	if _, err := w.enc.Write(e.line); err != nil {
		w.err = fmt.Errorf("archive: file list: %w", err)
		return w.err
	}
	w.tot.add(&e.f)
	w.n++
	return nil
}

// Close ends the list (the encoder is closed whatever happened) and returns what
// a manifest records of it, without its Key.
func (w *FileListWriter) Close() (FileList, error) {
	err := w.enc.Close()
	if w.err != nil {
		return FileList{}, w.err
	}
	if err != nil {
		return FileList{}, fmt.Errorf("archive: file list: %w", err)
	}
	return FileList{Entries: w.n, StoredBytes: w.stored.Size(), SHA256: w.stored.Hex(), Totals: w.tot}, nil
}

// ReadFileList reads the stored list l of manifest m from r and calls fn with each
// entry in turn. Every entry is validated as the manifest's own would be, and once
// the list is read its digest, size and entry count are checked: a list that is
// not the one the manifest names is an *VerifyError — returned at the end, after fn
// has seen its entries, so a caller that acts on entries must not commit anything
// before ReadFileList returns nil. An error of fn stops the reading and is returned
// as it is.
func ReadFileList(r io.Reader, m *Manifest, fn func(File) error) error {
	l := m.FileList
	if l == nil {
		return fmt.Errorf("archive: manifest %s has no file list", m.ID)
	}
	stored := NewDigest()
	tee := io.TeeReader(r, stored)
	dec, err := NewBlobDecoder()
	if err != nil {
		return fmt.Errorf("archive: file list: %w", err)
	}
	defer dec.Close()
	bad := func(what string, err error) error { return &VerifyError{Key: l.Key, What: what, Reason: err} }
	if err := dec.Reset(tee); err != nil {
		return bad("decompress", err)
	}
	er := newFileEntryReader(dec)
	var n int64
	var tot FileTotals
	order := newPackOrder(m)
	for {
		var f File
		err := er.next(&f)
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
				return bad("file list entry", err)
			}
			// A decompression error, or the storage read under it.
			return bad("decompress", err)
		}
		if err := validateFile(&f, m.FormatVersion); err != nil {
			return bad("file list entry", err)
		}
		if err := order.check(&f); err != nil {
			return bad("file list entry", err)
		}
		if n++; n > l.Entries {
			return &VerifyError{Key: l.Key, What: "entries", Want: fmt.Sprint(l.Entries), Got: fmt.Sprintf("more than %d", l.Entries)}
		}
		tot.add(&f)
		if err := fn(f); err != nil {
			return err
		}
	}
	// The decoder may stop at the end of the frame: hash whatever follows it too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return bad("read", err)
	}
	if err := stored.Check(l.Key, l.SHA256, l.StoredBytes); err != nil {
		return err
	}
	if n != l.Entries {
		return &VerifyError{Key: l.Key, What: "entries", Want: fmt.Sprint(l.Entries), Got: fmt.Sprint(n)}
	}
	if tot != l.Totals {
		return &VerifyError{Key: l.Key, What: "totals", Want: fmt.Sprintf("%+v", l.Totals), Got: fmt.Sprintf("%+v", tot)}
	}
	return order.finish()
}
