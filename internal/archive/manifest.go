package archive

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Scope kinds: what part of a tenant a snapshot holds.
const (
	ScopeTenant    = "tenant"    // everything a purge of the tenant would remove or change
	ScopeRetention = "retention" // what a retention purge would remove, per cut-off
	ScopeTrash     = "trash"     // rows the capturing fence kept, from the transactions listed (format 2)
)

// Manifest describes one committed snapshot. It is written last: a snapshot without
// one does not exist for any reader.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	ID            uuid.UUID `json:"id"`
	Tenant        uuid.UUID `json:"tenant"`
	Reason        string    `json:"reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	ToolVersion   string    `json:"tool_version"`
	ServerVersion string    `json:"server_version"`
	Scope         Scope     `json:"scope"`
	Root          Root      `json:"root"`
	Tables        []Table   `json:"tables"`
	// Dirs are the directories between a files root and its saved files (format 2),
	// so that restore makes them again with their owner and mode.
	Dirs []Dir `json:"dirs,omitempty"`
	// FileList, from format 3, names the object listing the files (filelist.go):
	// Files is then empty. A manifest without one lists its files inline.
	FileList *FileList `json:"file_list,omitempty"`
	// Packs, from format 4, hold the contents of the snapshot's small files (pack.go):
	// a packed File names its pack and offset instead of a blob.
	Packs []Pack `json:"packs,omitempty"`
	Files []File `json:"files"` // last: Encode streams them
}

// Owner is the owner and group of a file or directory: numeric ids, and the names
// the snapshot's host gave them, for information (restore sets the ids).
type Owner struct {
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

// Dir is a directory under a files root.
type Dir struct {
	Path  string `json:"path"`
	Mode  uint32 `json:"mode"` // permission bits with setgid and sticky, as fs.FileMode
	Owner Owner  `json:"owner"`
}

// Root names the tenant root table and its key column.
type Root struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Key    string `json:"key"`
}

// Scope says which rows the snapshot holds. For a retention snapshot, Cutoffs maps
// each kind (cdr, recording, export) to the instant before which rows were saved
// (the purge's cut-off plus a margin).
type Scope struct {
	Kind    string               `json:"kind"`
	Cutoffs map[string]time.Time `json:"cutoffs,omitempty"`
	Days    map[string]int       `json:"days,omitempty"` // the tenant's retention days per kind
	// Transactions, for a trash snapshot, are the deleting transactions whose rows of
	// the tenant it holds: their ids, first and last capture times and row counts.
	Transactions []Transaction `json:"transactions,omitempty"`
}

// Transaction is one transaction whose deleted rows a trash snapshot holds.
type Transaction struct {
	Xid   uint64    `json:"xid"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Rows  int64     `json:"rows"`
}

// Column is one saved column with its type as PostgreSQL formats it.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Table is one table's rows in the snapshot: COPY text of Columns, zstd-compressed.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Reach is how a purge touches the table: root, cascade, set_null, set_default, extra.
	Reach       string   `json:"reach"`
	Columns     []Column `json:"columns"`
	PrimaryKey  []string `json:"primary_key,omitempty"`
	Rows        int64    `json:"rows"`
	RawBytes    int64    `json:"raw_bytes"`
	StoredBytes int64    `json:"stored_bytes"`
	SHA256      string   `json:"sha256"` // of the stored (compressed) object
	Key         string   `json:"key"`
}

// File is one file named by a row. SHA256 is of the raw content and names its blob.
type File struct {
	Table       string    `json:"table"`  // schema.table of the row naming it
	Column      string    `json:"column"` // column holding the path
	Path        string    `json:"path"`   // as stored in the database
	Size        int64     `json:"size,omitempty"`
	Mode        uint32    `json:"mode,omitempty"`
	ModTime     time.Time `json:"mtime,omitzero"`
	Owner       *Owner    `json:"owner,omitempty"` // format 2; nil in older manifests
	SHA256      string    `json:"sha256,omitempty"`
	StoredBytes int64     `json:"stored_bytes,omitempty"`
	Missing     bool      `json:"missing,omitempty"`      // the database names it, the disk does not have it
	OutsideRoot bool      `json:"outside_root,omitempty"` // resolved, it is not under its configured root: never read
	// Recovered: missing on disk when the snapshot was taken, saved from the file
	// shield's copy (its link or its blob). Format 3 (see FormatVersion).
	Recovered bool `json:"recovered,omitempty"`
	// Pack: the content is a frame of one of the manifest's packs (format 4), not a
	// blob; StoredBytes is the frame's length.
	Pack *FilePack `json:"pack,omitempty"`
}

// Totals sums a manifest's tables and files.
type Totals struct {
	Tables      int   `json:"tables"`
	Rows        int64 `json:"rows"`
	Files       int   `json:"files"`
	FilesBytes  int64 `json:"files_bytes"`
	RawBytes    int64 `json:"raw_bytes"`
	StoredBytes int64 `json:"stored_bytes"`
	Missing     int   `json:"missing_files"`
	OutsideRoot int   `json:"outside_root_files"`
	Recovered   int   `json:"recovered_files"` // of Files: saved from the file shield
}

// Totals sums the manifest.
func (m *Manifest) Totals() Totals {
	var t Totals
	t.Tables = len(m.Tables)
	for _, tb := range m.Tables {
		t.Rows += tb.Rows
		t.RawBytes += tb.RawBytes
		t.StoredBytes += tb.StoredBytes
	}
	var ft FileTotals
	if m.FileList != nil {
		ft = m.FileList.Totals
	}
	for i := range m.Files {
		ft.add(&m.Files[i])
	}
	t.Files, t.Recovered, t.FilesBytes = int(ft.Saved), int(ft.Recovered), ft.Bytes
	t.Missing, t.OutsideRoot = int(ft.Missing), int(ft.OutsideRoot)
	t.StoredBytes += ft.BlobBytes
	return t
}

// FileEntries is how many entries the manifest's files hold, inline or listed.
func (m *Manifest) FileEntries() int64 {
	if m.FileList != nil {
		return m.FileList.Entries
	}
	return int64(len(m.Files))
}

// Ref is where the manifest's snapshot lives.
func (m *Manifest) Ref() SnapshotRef { return SnapshotRef{Tenant: m.Tenant, ID: m.ID} }

// ErrNewerFormat is returned for a manifest written by a newer purgeguard.
var ErrNewerFormat = errors.New("manifest written by a newer purgeguard format")

// Validate checks the manifest's internal consistency: a reader trusts nothing that
// fails it, since restore turns these fields into SQL identifiers and file paths.
func (m *Manifest) Validate() error {
	if m.FormatVersion < 1 {
		return fmt.Errorf("archive: manifest %s: format_version %d", m.ID, m.FormatVersion)
	}
	if m.FormatVersion > FormatVersion {
		return fmt.Errorf("archive: manifest %s: format_version %d > %d: %w", m.ID, m.FormatVersion, FormatVersion, ErrNewerFormat)
	}
	if m.ID == uuid.Nil || m.Tenant == uuid.Nil {
		return fmt.Errorf("archive: manifest: id and tenant must be set")
	}
	switch m.Scope.Kind {
	case ScopeTenant, ScopeRetention:
	case ScopeTrash:
		if m.FormatVersion < 2 {
			return fmt.Errorf("archive: manifest %s: scope %q in format_version %d", m.ID, m.Scope.Kind, m.FormatVersion)
		}
		if len(m.Scope.Transactions) == 0 {
			return fmt.Errorf("archive: manifest %s: trash scope without transactions", m.ID)
		}
	default:
		return fmt.Errorf("archive: manifest %s: unknown scope %q", m.ID, m.Scope.Kind)
	}
	seen := make(map[string]bool, len(m.Tables))
	for i, t := range m.Tables {
		if t.Schema == "" || t.Name == "" {
			return fmt.Errorf("archive: manifest %s: tables[%d]: schema and name must be set", m.ID, i)
		}
		if want := TableKey(m.Tenant, m.ID, t.Schema, t.Name); t.Key != want {
			return fmt.Errorf("archive: manifest %s: table %s.%s: key %q, want %q", m.ID, t.Schema, t.Name, t.Key, want)
		}
		if seen[t.Key] {
			return fmt.Errorf("archive: manifest %s: table %s.%s listed twice", m.ID, t.Schema, t.Name)
		}
		seen[t.Key] = true
		if len(t.Columns) == 0 {
			return fmt.Errorf("archive: manifest %s: table %s.%s: no columns", m.ID, t.Schema, t.Name)
		}
		if t.Rows < 0 || t.RawBytes < 0 || t.StoredBytes < 0 {
			return fmt.Errorf("archive: manifest %s: table %s.%s: negative count", m.ID, t.Schema, t.Name)
		}
		if _, err := BlobKeyHex(t.SHA256); err != nil {
			return fmt.Errorf("archive: manifest %s: table %s.%s: %w", m.ID, t.Schema, t.Name, err)
		}
	}
	for i, d := range m.Dirs {
		if d.Path == "" || d.Path[0] != '/' {
			return fmt.Errorf("archive: manifest %s: dirs[%d]: path %q is not absolute", m.ID, i, d.Path)
		}
	}
	if m.FormatVersion < 2 && len(m.Dirs) > 0 {
		return fmt.Errorf("archive: manifest %s: format_version %d has no dirs", m.ID, m.FormatVersion)
	}
	if l := m.FileList; l != nil {
		switch {
		case m.FormatVersion < 3:
			return fmt.Errorf("archive: manifest %s: format_version %d has no file list", m.ID, m.FormatVersion)
		case len(m.Files) > 0:
			return fmt.Errorf("archive: manifest %s: files both inline and in a file list", m.ID)
		}
		if err := l.validate(m); err != nil {
			return fmt.Errorf("archive: manifest %s: %w", m.ID, err)
		}
	}
	if m.FormatVersion < 4 && len(m.Packs) > 0 {
		return fmt.Errorf("archive: manifest %s: format_version %d has no packs", m.ID, m.FormatVersion)
	}
	for i := range m.Packs {
		if err := m.Packs[i].validate(m, i); err != nil {
			return fmt.Errorf("archive: manifest %s: %w", m.ID, err)
		}
	}
	order := newPackOrder(m)
	for i := range m.Files {
		f := &m.Files[i]
		err := validateFile(f, m.FormatVersion)
		if err == nil {
			err = order.check(f)
		}
		if err != nil {
			if f.Path == "" {
				return fmt.Errorf("archive: manifest %s: files[%d]: %w", m.ID, i, err)
			}
			return fmt.Errorf("archive: manifest %s: %w", m.ID, err)
		}
	}
	if m.FileList == nil {
		if err := order.finish(); err != nil {
			return fmt.Errorf("archive: manifest %s: %w", m.ID, err)
		}
	}
	return nil
}

// Encode writes m as indented JSON after validating it: the same bytes as
// json.Encoder with a two-space indent, but the files one at a time, so that a
// manifest naming a hundred thousand files never sits in memory as one document.
func Encode(w io.Writer, m *Manifest) error {
	if err := m.Validate(); err != nil {
		return err
	}
	head := *m
	head.Files = nil
	b, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: encode manifest %s: %w", m.ID, err)
	}
	// Files is the struct's last field: its null closes the document.
	const tail = "\n  \"files\": null\n}"
	if !bytes.HasSuffix(b, []byte(tail)) {
		return fmt.Errorf("archive: encode manifest %s: files are not the last field", m.ID)
	}
	bw := bufio.NewWriter(w)
	bw.Write(b[:len(b)-len(tail)])
	bw.WriteString("\n  \"files\": [")
	for i := range m.Files {
		if i > 0 {
			bw.WriteByte(',')
		}
		f, err := json.MarshalIndent(&m.Files[i], "    ", "  ")
		if err != nil {
			return fmt.Errorf("archive: encode manifest %s: file %s: %w", m.ID, m.Files[i].Path, err)
		}
		bw.WriteString("\n    ")
		bw.Write(f)
	}
	if len(m.Files) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("archive: encode manifest %s: %w", m.ID, err)
	}
	return nil
}

// maxManifestBytes bounds what Decode reads: a manifest lists files, so it can be
// large, but a runaway object must not exhaust memory.
const maxManifestBytes = 256 << 20

// Decode reads and validates a manifest. Unknown fields are refused within this
// format version: they mean a writer and reader that disagree on the format. A
// manifest of a newer format is refused as such (ErrNewerFormat), whatever else it
// holds.
//
// It streams: the files are decoded one at a time, so that a manifest naming tens of
// thousands of files costs its decoded entries and never also its text (twice, as
// reading it whole and then decoding did).
func Decode(r io.Reader) (*Manifest, error) {
	cr := &countingReader{r: io.LimitReader(r, maxManifestBytes+1)}
	var m Manifest
	err := decodeStream(json.NewDecoder(&squeezer{r: cr}), &m)
	switch {
	case cr.n > maxManifestBytes:
		return nil, fmt.Errorf("archive: manifest larger than %d bytes", maxManifestBytes)
	case cr.err != nil:
		return nil, fmt.Errorf("archive: read manifest: %w", cr.err)
	case m.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("archive: manifest format_version %d > %d: %w", m.FormatVersion, FormatVersion, ErrNewerFormat)
	case err != nil:
		return nil, fmt.Errorf("archive: decode manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// decodeStream decodes one JSON object into m, field by field, then checks nothing
// follows. A field it cannot decode (unknown, or of another type) does not stop it
// when the text stays well-formed: the format version, wherever it stands, still
// says whether the manifest is of a newer format; the first such error is returned.
func decodeStream(dec *json.Decoder, m *Manifest) error {
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != nil { // null decodes to the zero manifest, as json.Unmarshal does
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return fmt.Errorf("a manifest is a JSON object, not %v", tok)
		}
		fields := manifestFields(m)
		var first error
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := tok.(string)
			var ferr error
			switch field, ok := fields[name]; {
			case name == "files":
				ferr = decodeFiles(dec, &m.Files)
			case ok:
				ferr = dec.Decode(field)
			default:
				ferr = fmt.Errorf("json: unknown field %q", name)
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
			}
			if broken(ferr) {
				return ferr
			}
			first = cmp.Or(first, ferr)
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return err
		}
		if first != nil {
			return first
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the manifest")
		}
		return err
	}
	return nil
}

// decodeFiles decodes the files array one entry at a time. An entry it cannot
// decode is skipped (the text being well-formed) and its error returned once the
// array is read, so that the caller can go on reading the manifest.
func decodeFiles(dec *json.Decoder, files *[]File) error {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("files: want an array, not %v", tok)
	}
	*files = []File{}
	var first error
	for dec.More() {
		var f File
		if err := dec.Decode(&f); err != nil {
			if broken(err) {
				return err
			}
			first = cmp.Or(first, err)
			continue
		}
		*files = append(*files, f)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return err
	}
	return first
}

// broken reports a decoding error after which the text cannot be read further.
func broken(err error) bool {
	var syntax *json.SyntaxError
	return errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// manifestFields maps each JSON name of Manifest to its field in m, from the struct
// tags themselves: a field added to Manifest is decoded without more code here.
func manifestFields(m *Manifest) map[string]any {
	v := reflect.ValueOf(m).Elem()
	out := make(map[string]any, v.NumField())
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		out[name] = v.Field(i).Addr().Interface()
	}
	return out
}

// squeezer passes JSON text with each run of whitespace outside strings cut to its
// first byte: the same JSON to a parser, but json.Decoder rescans a run of
// whitespace at every refill of its buffer, so a long one (a corrupt manifest of
// 256 MiB of spaces) took minutes instead of a second.
type squeezer struct {
	r                       io.Reader
	inString, escaped, last bool // last: the previous byte kept was whitespace
}

func (s *squeezer) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		w := 0
		for _, c := range p[:n] {
			space := false
			switch {
			case s.inString:
				switch {
				case s.escaped:
					s.escaped = false
				case c == '\\':
					s.escaped = true
				case c == '"':
					s.inString = false
				}
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				if s.last {
					continue
				}
				space = true
			case c == '"':
				s.inString = true
			}
			s.last = space
			p[w] = c
			w++
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
	}
}

// countingReader counts what was read and keeps the first read error that is not
// the end of the input.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
