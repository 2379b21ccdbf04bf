package archive_test

import (
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// packedManifest is validManifest with three packed files in two packs.
func packedManifest() *archive.Manifest {
	m := validManifest()
	m.Packs = []archive.Pack{
		{Key: archive.PackKey(tenantA, snapA, 0), Entries: 2, StoredBytes: 300, SHA256: sumHex("pack0")},
		{Key: archive.PackKey(tenantA, snapA, 1), Entries: 1, StoredBytes: 100, SHA256: sumHex("pack1")},
	}
	f := func(path string, index int, off, n int64) archive.File {
		return archive.File{Table: "public.call_logd_recording", Column: "path", Path: path, Size: 200,
			SHA256: sumHex(path), StoredBytes: n, Pack: &archive.FilePack{Index: index, Offset: off}}
	}
	m.Files = append(m.Files, f("/rec/p1.wav", 0, 0, 100), f("/rec/p2.wav", 0, 150, 150), f("/rec/p3.wav", 1, 0, 100))
	return m
}

// Packs and packed entries: each entry in a listed pack, within it, after the one
// before it in the list (packs in order, frames in increasing offset, none
// overlapping), every pack's entry count as the manifest says; and only from
// format 4.
func TestValidate_Packs(t *testing.T) {
	last := func(m *archive.Manifest) *archive.File { return &m.Files[len(m.Files)-1] }
	tests := []struct {
		name   string
		mutate func(m *archive.Manifest)
		errHas string
	}{
		{"valid", func(m *archive.Manifest) {}, ""},
		{"format 3 with packs", func(m *archive.Manifest) { m.FormatVersion = 3 }, "has no packs"},
		{"pack key of another snapshot", func(m *archive.Manifest) { m.Packs[1].Key = archive.PackKey(tenantA, snapB, 1) }, "packs[1]: key"},
		{"pack keys out of order", func(m *archive.Manifest) { m.Packs[0].Key, m.Packs[1].Key = m.Packs[1].Key, m.Packs[0].Key }, "packs[0]: key"},
		{"empty pack", func(m *archive.Manifest) { m.Packs[1].StoredBytes = 0 }, "empty or negative"},
		{"bad pack digest", func(m *archive.Manifest) { m.Packs[0].SHA256 = "xyz" }, "bad sha256"},
		{"pack index out of range", func(m *archive.Manifest) { last(m).Pack.Index = 2 }, "pack 2 of 2"},
		{"negative pack index", func(m *archive.Manifest) { last(m).Pack.Index = -1 }, "pack -1 of 2"},
		{"negative offset", func(m *archive.Manifest) { m.Files[3].Pack.Offset = -1 }, "negative offset"},
		{"empty frame", func(m *archive.Manifest) { m.Files[3].StoredBytes = 0 }, "empty frame"},
		{"frame larger than a packed file's", func(m *archive.Manifest) {
			m.Packs[0].StoredBytes = 4 << 30
			m.Files[3].StoredBytes = archive.MaxPackedFrame + 1
		}, "more than a packed file's"},
		{"frame past the pack's end", func(m *archive.Manifest) { m.Files[4].Pack.Offset = 151 }, "past the end"},
		{"overlapping frames", func(m *archive.Manifest) { m.Files[4].Pack.Offset = 99 }, "before or over"},
		{"frames out of order", func(m *archive.Manifest) { m.Files[3], m.Files[4] = m.Files[4], m.Files[3] }, "before or over"},
		{"packs out of order", func(m *archive.Manifest) { m.Files[4], m.Files[5] = m.Files[5], m.Files[4] }, "before or over"},
		{"entry count", func(m *archive.Manifest) { m.Packs[0].Entries = 3 }, "entries mismatch"},
		{"missing file packed", func(m *archive.Manifest) { m.Files[1].Pack = &archive.FilePack{Index: 0} }, "cannot be packed"},
		{"packed file in format 3", func(m *archive.Manifest) {
			m.FormatVersion, m.Packs = 3, nil
		}, "has no packs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := packedManifest()
			tt.mutate(m)
			err := m.Validate()
			switch {
			case tt.errHas == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.errHas)
			}
		})
	}
}

// A listed manifest's packed entries are checked as the list is read, the counts
// once it is read whole.
func TestReadFileList_Packs(t *testing.T) {
	pm := packedManifest()
	m, data := listManifest(t, pm.Files)
	m.Packs = pm.Packs
	if _, err := readAll(m, data); err != nil {
		t.Fatalf("read: %v", err)
	}
	m.Packs[1].Entries = 2
	if _, err := readAll(m, data); err == nil || !strings.Contains(err.Error(), "entries mismatch") {
		t.Fatalf("read with a pack's count wrong: %v, want an entries mismatch", err)
	}
	swapped := packedManifest()
	swapped.Files[3], swapped.Files[4] = swapped.Files[4], swapped.Files[3]
	m, data = listManifest(t, swapped.Files)
	m.Packs = pm.Packs
	if _, err := readAll(m, data); err == nil || !strings.Contains(err.Error(), "before or over") {
		t.Fatalf("read with frames out of order: %v, want them refused", err)
	}
}
