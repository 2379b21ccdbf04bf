package tenantlist_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/tenantlist"
)

// maxErrorLen bounds error messages: whatever the input, an error must stay a
// readable line, which is what echo truncation is for.
const maxErrorLen = 1024

func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		idA, strings.ToUpper(idB), "{" + idC + "}", "urn:uuid:" + idA, " " + idA + "\r\n",
		"", "{", "{}", "abc", strings.ReplaceAll(idA, "-", ""), "{urn:uuid:" + idA + "}",
		"urn:uuid:{" + idA + "}", "x" + idA[1:], idA[:35] + "}", "\xff" + idA[1:],
		"00000000-0000-0000-0000-000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := tenantlist.ParseID(s)
		if err != nil {
			var pe *tenantlist.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, tenantlist.ErrNotUUID) {
				t.Fatalf("ParseID(%q): got error %#v, want a *ParseError wrapping ErrNotUUID", s, err)
			}
			if id != uuid.Nil {
				t.Fatalf("ParseID(%q): got %v with an error, want the nil UUID", s, id)
			}
			if len(err.Error()) > maxErrorLen {
				t.Fatalf("ParseID(%q): got a %d-byte error, want at most %d", s, len(err.Error()), maxErrorLen)
			}
			return
		}
		// Whatever was accepted is one of the documented forms of exactly this ID.
		canon := id.String()
		core := strings.ToLower(strings.TrimSpace(s))
		if core != canon && core != "{"+canon+"}" && core != "urn:uuid:"+canon {
			t.Fatalf("ParseID(%q): got %v, but the input is not a documented form of it", s, id)
		}
		for _, form := range []string{canon, strings.ToUpper(canon), "{" + canon + "}", "urn:uuid:" + canon} {
			again, err := tenantlist.ParseID(form)
			if err != nil || again != id {
				t.Fatalf("ParseID(%q): got %v, %v, want %v", form, again, err, id)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.*")
	for _, path := range seeds {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"", "\n", "#", "[]", "{}", "[", "{", `[""]`, `[null]`, `["` + idA + `", 1]`, `["` + idA + `"] x`,
		`{"items":[{"uuid":"` + idA + `"}],"total":1}`, `{"items":[{"name":"x"}]}`, `{"items":null}`,
		`{"items":[],"filtered":1e400}`, "{" + idA + "}\n" + idB, "\xef\xbb\xbf" + idA, idA + "\r\n\r\n" + idB,
		"  abc\n", idA + " # c",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := tenantlist.Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			var pe *tenantlist.ParseError
			if !errors.As(err, &pe) || pe.Source != "fuzz" {
				t.Fatalf("Parse: got error %#v, want a *ParseError from %q", err, "fuzz")
			}
			if ids != nil {
				t.Fatalf("Parse: got %v with an error, want nil", ids)
			}
			if len(err.Error()) > maxErrorLen {
				t.Fatalf("Parse: got a %d-byte error, want at most %d", len(err.Error()), maxErrorLen)
			}
			return
		}
		if ids == nil {
			t.Fatal("Parse: got a nil list, want an empty one")
		}
		lines := make([]string, len(ids))
		seen := map[uuid.UUID]bool{}
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("Parse: got %v twice in %v, want it deduplicated", id, ids)
			}
			seen[id] = true
			again, err := tenantlist.ParseID(id.String())
			if err != nil || again != id {
				t.Fatalf("ParseID(%q): got %v, %v, want %v", id.String(), again, err, id)
			}
			lines[i] = id.String()
		}
		// Rendering the list and reading it back is the identity, in both formats
		// a caller might write.
		quoted := make([]string, len(lines))
		for i, l := range lines {
			quoted[i] = `"` + l + `"`
		}
		for _, rendered := range []string{
			strings.Join(lines, "\n"),
			"[" + strings.Join(quoted, ",") + "]",
		} {
			again, err := tenantlist.Parse(strings.NewReader(rendered), "rendered")
			if err != nil || !slices.Equal(again, ids) {
				t.Fatalf("Parse(%q): got %v, %v, want %v", rendered, again, err, ids)
			}
		}
	})
}
