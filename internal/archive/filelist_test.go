package archive_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// listManifest writes files as a file list and returns the format-3 manifest naming
// it and the stored bytes.
func listManifest(t *testing.T, files []archive.File) (*archive.Manifest, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewFileListWriter(&buf, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := w.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	l, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	l.Key = archive.FileListKey(tenantA, snapA)
	m := validManifest()
	m.Files = []archive.File{} // what Decode gives for a listed manifest's "files": []
	m.FileList = &l
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return m, buf.Bytes()
}

func readAll(m *archive.Manifest, data []byte) ([]archive.File, error) {
	var got []archive.File
	err := archive.ReadFileList(iotest.HalfReader(bytes.NewReader(data)), m, func(f archive.File) error {
		got = append(got, f)
		return nil
	})
	return got, err
}

// A list reads back entry for entry, and the manifest's totals come from the list
// without reading it: the same totals as the files inline.
func TestFileList_RoundTrip(t *testing.T) {
	inline := validManifest()
	files := inline.Files
	for i := range 1000 {
		files = append(files, archive.File{Table: "public.t", Column: "p", Path: fmt.Sprintf("/rec/%d.wav", i),
			Size: int64(i), SHA256: sumHex(fmt.Sprint(i)), StoredBytes: 7, Recovered: i%10 == 0})
	}
	inline.Files = files
	m, data := listManifest(t, files)
	got, err := readAll(m, data)
	if err != nil {
		t.Fatalf("ReadFileList: %v", err)
	}
	if !reflect.DeepEqual(got, files) {
		t.Errorf("entries: got %d, want %d, or they differ", len(got), len(files))
	}
	if got, want := m.Totals(), inline.Totals(); got != want {
		t.Errorf("totals: got %+v, want %+v", got, want)
	}
	if got, want := m.FileEntries(), int64(len(files)); got != want {
		t.Errorf("entries: got %d, want %d", got, want)
	}
	var buf bytes.Buffer
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	back, err := archive.Decode(&buf)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("manifest with a file list: got %+v, want %+v", back, m)
	}
}

// A list that is not the one the manifest names is a *VerifyError, whatever was
// changed; an error of the callback stops the reading and comes back as it is.
func TestReadFileList_Refuses(t *testing.T) {
	files := validManifest().Files
	m, data := listManifest(t, files)
	other, otherData := listManifest(t, files[:2])
	stop := errors.New("stop")
	tests := []struct {
		name string
		m    func() *archive.Manifest
		data []byte
	}{
		{"flipped byte", func() *archive.Manifest { return m }, func() []byte {
			b := bytes.Clone(data)
			b[len(b)/2] ^= 1
			return b
		}()},
		{"truncated", func() *archive.Manifest { return m }, data[:len(data)-3]},
		{"byte appended", func() *archive.Manifest { return m }, append(bytes.Clone(data), 0)},
		{"another list", func() *archive.Manifest { return m }, otherData},
		{"fewer entries than said", func() *archive.Manifest {
			c := *other
			l := *other.FileList
			l.Entries, l.Totals.OutsideRoot = 3, 1
			c.FileList = &l
			return &c
		}, otherData},
		{"more entries than said", func() *archive.Manifest {
			c := *m
			l := *m.FileList
			l.Entries, l.Totals.OutsideRoot = 2, 0
			c.FileList = &l
			return &c
		}, data},
		{"other totals", func() *archive.Manifest {
			c := *m
			l := *m.FileList
			l.Totals.Bytes++
			c.FileList = &l
			return &c
		}, data},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(tt.m(), tt.data)
			var ve *archive.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *VerifyError", err)
			}
		})
	}
	err := archive.ReadFileList(bytes.NewReader(data), m, func(archive.File) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("callback error: got %v, want %v", err, stop)
	}
}

// The writer refuses an entry the manifest would refuse, and the manifest refuses a
// list in an older format or beside inline files.
func TestFileList_Validate(t *testing.T) {
	w, err := archive.NewFileListWriter(&bytes.Buffer{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(archive.File{Table: "public.t", Column: "p", Path: "/a", SHA256: "XYZ"}); err == nil {
		t.Error("Add of an entry with a bad sha256: got nil, want an error")
	}
	if _, err := archive.EncodeFileEntry(archive.File{Table: "public.t", Column: "p", Path: "/a", SHA256: "XYZ"}); err == nil {
		t.Error("EncodeFileEntry of an entry with a bad sha256: got nil, want an error")
	}
	if err := w.AddEncoded(archive.FileEntry{}); err == nil {
		t.Error("AddEncoded of an entry EncodeFileEntry did not make: got nil, want an error")
	}
	if l, err := w.Close(); err != nil || l.Entries != 0 {
		t.Errorf("after refused entries: %d entries (%v), want none", l.Entries, err)
	}
	m, _ := listManifest(t, validManifest().Files)
	tests := []struct {
		name string
		edit func(m *archive.Manifest)
	}{
		{"format 2", func(m *archive.Manifest) { m.FormatVersion = 2 }},
		{"inline files too", func(m *archive.Manifest) { m.Files = validManifest().Files }},
		{"key of another snapshot", func(m *archive.Manifest) { m.FileList.Key = archive.FileListKey(tenantA, snapB) }},
		{"bad sha256", func(m *archive.Manifest) { m.FileList.SHA256 = "00" }},
		{"counts do not add up", func(m *archive.Manifest) { m.FileList.Entries++ }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *m
			l := *m.FileList
			c.FileList = &l
			tt.edit(&c)
			if err := c.Validate(); err == nil {
				t.Error("Validate: got nil, want an error")
			}
		})
	}
}

// Entries appended to one buffer, reused batch after batch as a snapshot's file
// workers do, make the list Add makes, byte for byte: each entry's line is its own
// part of the buffer, and what a batch appends after an entry does not change it.
func TestAppendFileEntry_ReusedBuffer(t *testing.T) {
	var files []archive.File
	for i := range 300 {
		files = append(files, archive.File{Table: "public.t", Column: "p", Path: fmt.Sprintf("/rec/%d.wav", i),
			Size: int64(i), SHA256: sumHex(fmt.Sprint(i)), StoredBytes: 7, Owner: &archive.Owner{UID: 33, GID: 33, User: "www-data", Group: "www-data"}})
	}
	var byAdd, byAppend bytes.Buffer
	add, err := archive.NewFileListWriter(&byAdd, 3)
	if err != nil {
		t.Fatal(err)
	}
	app, err := archive.NewFileListWriter(&byAppend, 3)
	if err != nil {
		t.Fatal(err)
	}
	var lines []byte
	for start := 0; start < len(files); start += 64 {
		var batch []archive.FileEntry
		for _, f := range files[start:min(start+64, len(files))] {
			if err := add.Add(f); err != nil {
				t.Fatal(err)
			}
			var e archive.FileEntry
			if e, lines, err = archive.AppendFileEntry(lines, f); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, e)
		}
		for _, e := range batch {
			if err := app.AddEncoded(e); err != nil {
				t.Fatal(err)
			}
		}
		lines = lines[:0]
	}
	la, err := add.Close()
	if err != nil {
		t.Fatal(err)
	}
	lp, err := app.Close()
	if err != nil {
		t.Fatal(err)
	}
	if la != lp || !bytes.Equal(byAdd.Bytes(), byAppend.Bytes()) {
		t.Errorf("appended entries: list %+v (%d bytes), want %+v (%d bytes)", lp, byAppend.Len(), la, byAdd.Len())
	}
	if _, _, err := archive.AppendFileEntry(nil, archive.File{Table: "public.t", Column: "p", Path: "/rec/x.wav", SHA256: "XYZ"}); err == nil {
		t.Error("an entry with a bad digest was appended")
	}
}
