package archive

import (
	"bytes"
	"testing"
)

// A small blob is compressed by the fastest encoder at the default level and below,
// and by the level's own above it (a level chosen for size is kept); either way it
// decodes to its bytes.
func TestNewSmallBlobEncoder(t *testing.T) {
	// Text with matches near and far, where encoders' choices differ.
	words := []string{"call ", "tenant ", "recording ", "2026-11-29 ", "wav ", "answered ", "queue ", "agent "}
	var b bytes.Buffer
	for x := uint32(1); b.Len() < 12000; x = x*1664525 + 1013904223 {
		b.WriteString(words[x>>29])
		b.WriteByte(byte('a' + x>>24%26))
	}
	raw := b.Bytes()
	dec, err := NewBlobDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	// The cases below tell the encoders apart only if their output differs.
	l1, _ := NewBlobEncoder(1)
	l3, _ := NewBlobEncoder(3)
	if bytes.Equal(l1.EncodeAll(raw, nil), l3.EncodeAll(raw, nil)) {
		t.Fatal("levels 1 and 3 store the sample alike: the test cannot tell them apart")
	}
	for _, tc := range []struct{ level, like int }{{1, 1}, {3, 1}, {4, 4}, {9, 9}, {19, 19}} {
		small, err := NewSmallBlobEncoder(tc.level)
		if err != nil {
			t.Fatal(err)
		}
		like, err := NewBlobEncoder(tc.like)
		if err != nil {
			t.Fatal(err)
		}
		got, want := small.EncodeAll(raw, nil), like.EncodeAll(raw, nil)
		if !bytes.Equal(got, want) {
			t.Errorf("level %d: small blob stored as by level %d's encoder? %d bytes against %d", tc.level, tc.like, len(got), len(want))
		}
		back, err := dec.DecodeAll(got, nil)
		if err != nil || !bytes.Equal(back, raw) {
			t.Errorf("level %d: decoded %d bytes, %v; want the %d raw", tc.level, len(back), err, len(raw))
		}
	}
}
