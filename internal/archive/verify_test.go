package archive_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func TestDigest(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
	}{
		{"nothing", nil},
		{"empty write", []string{""}},
		{"one write", []string{"hello"}},
		{"split writes", []string{"he", "", "l", "lo"}},
		{"binary", []string{"\x00\xff\n", "\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := archive.NewDigest()
			for _, w := range tt.writes {
				n, err := d.Write([]byte(w))
				if n != len(w) || err != nil {
					t.Fatalf("Write: got %v, %v, want %v, nil", n, err, len(w))
				}
			}
			all := strings.Join(tt.writes, "")
			if got, want := d.Size(), int64(len(all)); got != want {
				t.Errorf("Size: got %v, want %v", got, want)
			}
			if got, want := d.Sum(), sha256.Sum256([]byte(all)); got != want {
				t.Errorf("Sum: got %x, want %x", got, want)
			}
			if got, want := d.Hex(), sumHex(all); got != want {
				t.Errorf("Hex: got %v, want %v", got, want)
			}
			if err := d.Check("k", sumHex(all), int64(len(all))); err != nil {
				t.Errorf("Check: got %v, want nil", err)
			}
		})
	}
	t.Run("known hex", func(t *testing.T) {
		d := archive.NewDigest()
		if _, err := io.Copy(d, strings.NewReader("hello")); err != nil {
			t.Fatal(err)
		}
		if got, want := d.Hex(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("reading the sum does not end the digest", func(t *testing.T) {
		d := archive.NewDigest()
		d.Write([]byte("hel"))
		_ = d.Hex()
		if got, want := d.Hex(), sumHex("hel"); got != want {
			t.Errorf("Hex twice: got %v, want %v", got, want)
		}
		d.Write([]byte("lo"))
		if got, want := d.Hex(), sumHex("hello"); got != want {
			t.Errorf("Hex after more writes: got %v, want %v", got, want)
		}
	})
}

func TestDigestCheck(t *testing.T) {
	const key = "blobs/sha256/2c/x.zst"
	good := sumHex("hello")
	bad := sumHex("world")
	tests := []struct {
		name     string
		wantHex  string
		wantSize int64
		what     string // "" for no error
		want     string // VerifyError.Want
		got      string // VerifyError.Got
	}{
		{"match", good, 5, "", "", ""},
		{"size -1 skips size", good, -1, "", "", ""},
		{"any negative size skips size", good, -5, "", "", ""},
		{"size mismatch", good, 6, "size", "6", "5"},
		{"size zero is checked", good, 0, "size", "0", "5"},
		{"size mismatch wins over sha mismatch", bad, 4, "size", "4", "5"},
		{"sha mismatch", bad, 5, "sha256", bad, good},
		{"sha mismatch with size skipped", bad, -1, "sha256", bad, good},
		{"empty want sha", "", 5, "sha256", "", good},
		{"upper-case want sha is a mismatch", strings.ToUpper(good), 5, "sha256", strings.ToUpper(good), good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := archive.NewDigest()
			d.Write([]byte("hello"))
			err := d.Check(key, tt.wantHex, tt.wantSize)
			if tt.what == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var ve *archive.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("errors.As(%v, *VerifyError): got %v, want %v", err, false, true)
			}
			want := archive.VerifyError{Key: key, What: tt.what, Want: tt.want, Got: tt.got}
			if *ve != want {
				t.Errorf("got %+v, want %+v", *ve, want)
			}
		})
	}
}

func TestVerifyErrorError(t *testing.T) {
	boom := errors.New("zstd: corrupt input")
	tests := []struct {
		name string
		err  *archive.VerifyError
		want string
	}{
		{"mismatch", &archive.VerifyError{Key: "k", What: "rows", Want: "3", Got: "2"},
			"verify k: rows mismatch: want 3, got 2"},
		{"mismatch with empty got", &archive.VerifyError{Key: "k", What: "sha256", Want: "ab"},
			"verify k: sha256 mismatch: want ab, got "},
		{"mismatch with empty want", &archive.VerifyError{Key: "k", What: "sha256", Got: "ab"},
			"verify k: sha256 mismatch: want , got ab"},
		{"no values", &archive.VerifyError{Key: "snapshots/t/s/manifest.json", What: "missing"},
			"verify snapshots/t/s/manifest.json: missing"},
		{"reason", &archive.VerifyError{Key: "k", What: "decompress", Reason: boom},
			"verify k: decompress: zstd: corrupt input"},
		{"reason wins over values", &archive.VerifyError{Key: "k", What: "decompress", Want: "1", Got: "2", Reason: boom},
			"verify k: decompress: zstd: corrupt input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyErrorUnwrap(t *testing.T) {
	boom := errors.New("boom")
	withReason := &archive.VerifyError{Key: "k", What: "decompress", Reason: boom}
	if got := withReason.Unwrap(); got != boom {
		t.Errorf("Unwrap: got %v, want %v", got, boom)
	}
	if got := (&archive.VerifyError{Key: "k", What: "missing"}).Unwrap(); got != nil {
		t.Errorf("Unwrap without reason: got %v, want %v", got, nil)
	}
	if got := errors.Is(withReason, boom); !got {
		t.Errorf("errors.Is(VerifyError, reason): got %v, want %v", got, true)
	}
	if got := errors.Is(withReason, io.EOF); got {
		t.Errorf("errors.Is(VerifyError, io.EOF): got %v, want %v", got, false)
	}

	wrappers := []struct {
		name string
		wrap func(error) error
	}{
		{"bare", func(e error) error { return e }},
		{"fmt %w", func(e error) error { return fmt.Errorf("restore %s: %w", "t", e) }},
		{"fmt %w twice", func(e error) error { return fmt.Errorf("cmd: %w", fmt.Errorf("restore: %w", e)) }},
		{"errors.Join", func(e error) error { return errors.Join(io.ErrUnexpectedEOF, e) }},
	}
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			err := w.wrap(withReason)
			var ve *archive.VerifyError
			if got := errors.As(err, &ve); !got {
				t.Fatalf("errors.As: got %v, want %v", got, true)
			}
			if ve != withReason {
				t.Errorf("errors.As target: got %v, want %v", ve, withReason)
			}
			if got := errors.Is(err, boom); !got {
				t.Errorf("errors.Is(reason): got %v, want %v", got, true)
			}
		})
	}
	t.Run("fmt %v does not wrap", func(t *testing.T) {
		var ve *archive.VerifyError
		if got := errors.As(fmt.Errorf("x: %v", withReason), &ve); got {
			t.Errorf("errors.As: got %v, want %v", got, false)
		}
	})
}

// copyText is COPY text as PostgreSQL writes it: newlines inside values are escaped, so
// every raw newline ends a row.
const copyText = "1\t2026-03-01 03:00:12+00\tAlice\\nSmith\t\\N\n" +
	"2\t2026-03-01 03:00:13+00\ttab\\there\t{a,b}\n" +
	"3\t2026-03-01 03:00:14+00\t\\\\\t\n" +
	"4\t\\N\t\\N\t\\N\n"

func TestRowCounterSplits(t *testing.T) {
	count := func(writes ...string) archive.RowCounter {
		var c archive.RowCounter
		for _, w := range writes {
			if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write: got %v, %v, want %v, nil", n, err, len(w))
			}
		}
		return c
	}
	inputs := []struct {
		name     string
		text     string
		rows     int64
		complete bool
	}{
		{"complete", copyText, 4, true},
		{"truncated mid-row", copyText[:len(copyText)-5], 3, false},
		{"truncated before last newline", copyText[:len(copyText)-1], 3, false},
		{"blank rows", "\n\n\n", 3, true},
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			want := count(in.text)
			if want.Rows != in.rows || want.Bytes != int64(len(in.text)) || want.Complete() != in.complete {
				t.Fatalf("one write: got rows %v bytes %v complete %v, want %v %v %v",
					want.Rows, want.Bytes, want.Complete(), in.rows, len(in.text), in.complete)
			}
			same := func(t *testing.T, c archive.RowCounter, how string) {
				t.Helper()
				if c.Rows != want.Rows || c.Bytes != want.Bytes || c.Complete() != want.Complete() {
					t.Fatalf("%s: got rows %v bytes %v complete %v, want %v %v %v",
						how, c.Rows, c.Bytes, c.Complete(), want.Rows, want.Bytes, want.Complete())
				}
			}
			for i := 0; i <= len(in.text); i++ {
				same(t, count(in.text[:i], in.text[i:]), fmt.Sprintf("split at %d", i))
				for j := i; j <= len(in.text); j++ {
					same(t, count(in.text[:i], "", in.text[i:j], in.text[j:], ""), fmt.Sprintf("split at %d and %d", i, j))
				}
			}
			bytewise := make([]string, len(in.text))
			for i := range in.text {
				bytewise[i] = in.text[i : i+1]
			}
			same(t, count(bytewise...), "byte at a time")
		})
	}
}

func TestRowCounterComplete(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		rows   int64
		want   bool
	}{
		{"no writes", nil, 0, true},
		{"empty write", []string{""}, 0, true},
		{"one newline", []string{"\n"}, 1, true},
		{"ends with newline", []string{"a\tb\n"}, 1, true},
		{"truncated", []string{"a\tb\nc"}, 1, false},
		{"no newline at all", []string{"abc"}, 0, false},
		{"newline then empty write", []string{"a\n", ""}, 1, true},
		{"partial then empty write", []string{"a", ""}, 0, false},
		{"newline arrives last", []string{"a", "\n"}, 1, true},
		{"escaped newline is not a row end", []string{"a\\n"}, 0, false},
		{"carriage return is not a row end", []string{"a\r"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c archive.RowCounter
			for _, w := range tt.writes {
				c.Write([]byte(w))
			}
			if got := c.Complete(); got != tt.want {
				t.Errorf("Complete: got %v, want %v", got, tt.want)
			}
			if got := c.Rows; got != tt.rows {
				t.Errorf("Rows: got %v, want %v", got, tt.rows)
			}
		})
	}
}
