package archive_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// benchEntries is the size of a tenant with many recordings (issue #12's 42k).
const benchEntries = 42000

// benchFiles returns n entries as a snapshot of call-logd's recordings writes
// them: a path under the tenant's monitor directory, an owner, a digest, and every
// fourth one in a pack.
func benchFiles(n int) []archive.File {
	tenant := uuid.MustParse("6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11")
	mtime := time.Date(2026, 2, 1, 10, 4, 5, 123456789, time.UTC)
	files := make([]archive.File, n)
	var packed int
	var offset int64
	for i := range files {
		id := uuid.NewSHA1(tenant, fmt.Append(nil, i))
		sum := sha256.Sum256(id[:])
		f := archive.File{
			Table: "public.call_logd_recording", Column: "path",
			Path: "/var/lib/wazo/sounds/tenants/" + tenant.String() + "/monitor/" + id.String() + ".wav",
			Size: 480044 + int64(i), Mode: 0o640, ModTime: mtime.Add(time.Duration(i) * time.Second),
			Owner:  &archive.Owner{UID: 998, GID: 33, User: "asterisk", Group: "www-data"},
			SHA256: hex.EncodeToString(sum[:]), StoredBytes: 401233 + int64(i),
		}
		if i%4 == 0 {
			if packed%2500 == 0 {
				offset = 0
			}
			f.Size, f.StoredBytes = 512, 301
			f.Pack = &archive.FilePack{Index: packed / 2500, Offset: offset}
			packed++
			offset += f.StoredBytes
		}
		files[i] = f
	}
	return files
}

// BenchmarkEncodeFileEntry: the CPU a snapshot's file workers spend per entry
// turning it into its list line.
func BenchmarkEncodeFileEntry(b *testing.B) {
	files := benchFiles(benchEntries)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := archive.EncodeFileEntry(files[i%len(files)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileListWrite: a whole list of 42k entries, encoded and compressed.
func BenchmarkFileListWrite(b *testing.B) {
	files := benchFiles(benchEntries)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w, err := archive.NewFileListWriter(&bytes.Buffer{}, 3)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			if err := w.Add(f); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(files)), "ns/entry")
}

// BenchmarkReadFileList: one read of a 42k-entry list (a restore reads it several
// times).
func BenchmarkReadFileList(b *testing.B) {
	files := benchFiles(benchEntries)
	var buf bytes.Buffer
	w, err := archive.NewFileListWriter(&buf, 3)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range files {
		if err := w.Add(f); err != nil {
			b.Fatal(err)
		}
	}
	l, err := w.Close()
	if err != nil {
		b.Fatal(err)
	}
	l.Key = archive.FileListKey(tenantA, snapA)
	m := validManifest()
	m.Files = []archive.File{}
	m.FileList = &l
	m.Packs = benchPacks(files)
	if err := m.Validate(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := archive.ReadFileList(bytes.NewReader(data), m, func(archive.File) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != len(files) {
			b.Fatalf("read %d entries, want %d", n, len(files))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(files)), "ns/entry")
}

// benchPacks returns the packs files' entries name.
func benchPacks(files []archive.File) []archive.Pack {
	var packs []archive.Pack
	for _, f := range files {
		if f.Pack == nil {
			continue
		}
		for len(packs) <= f.Pack.Index {
			packs = append(packs, archive.Pack{Key: archive.PackKey(tenantA, snapA, len(packs)), SHA256: sumHex(fmt.Sprint(len(packs)))})
		}
		p := &packs[f.Pack.Index]
		p.Entries++
		p.StoredBytes = f.Pack.Offset + f.StoredBytes
	}
	return packs
}
