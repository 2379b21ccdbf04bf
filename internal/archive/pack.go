package archive

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

const packsDir = "packs/"

// PackKey is the key of a format-4 snapshot's pack number n (from 0): small files'
// contents, each its own zstd frame, one after the other.
func PackKey(tenant, id uuid.UUID, n int) string {
	return fmt.Sprintf("%s%s%06d.pack", SnapshotPrefix(tenant, id), packsDir, n)
}

// Pack is one pack object of a snapshot (format 4): small files' contents, each an
// independent zstd frame, appended in the order the file list names them. A pack
// lives under its snapshot's prefix and shares its life: prune deletes it with the
// snapshot, a sealed snapshot seals it with the tenant's key as its tables. Small
// files in packs are stored once per snapshot, never shared with another: a
// tenant's thousands of short recordings cost one object per 16 MiB, not one each.
type Pack struct {
	Key         string `json:"key"`
	Entries     int64  `json:"entries"`      // files whose frame it holds
	StoredBytes int64  `json:"stored_bytes"` // of the stream written (sealed: before sealing)
	SHA256      string `json:"sha256"`       // of the same stream
}

// FilePack is where a packed file's content is: the frame of File.StoredBytes bytes
// at Offset in the stream of pack Index of the manifest's Packs.
type FilePack struct {
	Index  int   `json:"index"`
	Offset int64 `json:"offset"`
}

func (p *Pack) validate(m *Manifest, i int) error {
	if want := PackKey(m.Tenant, m.ID, i); p.Key != want {
		return fmt.Errorf("packs[%d]: key %q, want %q", i, p.Key, want)
	}
	if p.Entries < 1 || p.StoredBytes < 1 {
		return fmt.Errorf("pack %s: empty or negative counts", p.Key)
	}
	if _, err := ParseDigestHex(p.SHA256); err != nil {
		return fmt.Errorf("pack %s: %w", p.Key, err)
	}
	return nil
}

// packOrder checks the packed entries of a manifest as they come, in file list
// order: each in a pack the manifest lists, within it, and after the entry before
// it (packs in increasing index, frames in increasing offset, none overlapping),
// which lets every reader stream each pack once, from its start. end then checks
// every pack's entry count.
type packOrder struct {
	packs   []Pack
	counts  []int64
	idx     int   // pack of the last packed entry
	end     int64 // where its frame ended
	started bool
}

// MaxPackedFrame bounds a packed file's frame: readers take a frame whole into
// memory, so a manifest naming a larger one (forged: a snapshot packs files of at
// most 256 KiB, whose frames zstd keeps within a few bytes of that) must not make
// a restore allocate what it says.
const MaxPackedFrame = 1 << 20

func newPackOrder(m *Manifest) *packOrder {
	return &packOrder{packs: m.Packs, counts: make([]int64, len(m.Packs))}
}

// check takes the next entry of the list.
func (o *packOrder) check(f *File) error {
	p := f.Pack
	if p == nil {
		return nil
	}
	switch {
	case p.Index < 0 || p.Index >= len(o.packs):
		return fmt.Errorf("file %s: pack %d of %d", f.Path, p.Index, len(o.packs))
	case p.Offset < 0 || f.StoredBytes < 1:
		return fmt.Errorf("file %s: negative offset or empty frame in pack %d", f.Path, p.Index)
	case f.StoredBytes > MaxPackedFrame:
		return fmt.Errorf("file %s: frame of %d bytes in pack %d, more than a packed file's %d", f.Path, f.StoredBytes, p.Index, MaxPackedFrame)
	case p.Offset > o.packs[p.Index].StoredBytes-f.StoredBytes:
		return fmt.Errorf("file %s: frame past the end of pack %s", f.Path, o.packs[p.Index].Key)
	case o.started && (p.Index < o.idx || p.Index == o.idx && p.Offset < o.end):
		return fmt.Errorf("file %s: frame at pack %d offset %d, before or over the one listed before it", f.Path, p.Index, p.Offset)
	}
	o.started, o.idx, o.end = true, p.Index, p.Offset+f.StoredBytes
	o.counts[p.Index]++
	return nil
}

// finish checks that each pack holds as many entries as the manifest says.
func (o *packOrder) finish() error {
	for i, n := range o.counts {
		if n != o.packs[i].Entries {
			return &VerifyError{Key: o.packs[i].Key, What: "entries", Want: fmt.Sprint(o.packs[i].Entries), Got: fmt.Sprint(n)}
		}
	}
	return nil
}

var errPackedMissing = errors.New("a missing or unread file cannot be packed")
