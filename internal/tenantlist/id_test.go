package tenantlist_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/tenantlist"
)

const (
	idA = "0b0e5f3a-7d41-4c55-8e0f-3a9d6c2b1e02"
	idB = "c3a1f2e4-9b7d-4e6f-8a5c-2d1b0e9f8a03"
	idC = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
)

var (
	uuidA = uuid.MustParse(idA)
	uuidB = uuid.MustParse(idB)
	uuidC = uuid.MustParse(idC)
)

func TestParseIDAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uuid.UUID
	}{
		{"canonical", idA, uuidA},
		{"upper case", strings.ToUpper(idB), uuidB},
		{"mixed case", "C3a1F2e4-9B7d-4E6f-8A5c-2D1b0E9f8A03", uuidB},
		{"braces", "{" + idC + "}", uuidC},
		{"braces upper", "{" + strings.ToUpper(idC) + "}", uuidC},
		{"urn", "urn:uuid:" + idA, uuidA},
		{"urn upper prefix", "URN:UUID:" + idA, uuidA},
		{"surrounding whitespace", " \t" + idA + " \r\n", uuidA},
		{"whitespace around braces", "  {" + idA + "}  ", uuidA},
		{"nil uuid", "00000000-0000-0000-0000-000000000000", uuid.Nil},
		{"max uuid", "ffffffff-ffff-ffff-ffff-ffffffffffff", uuid.Max},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tenantlist.ParseID(tc.in)
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseID(%q): got %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseIDRejects(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"empty", "", "not a UUID: empty"},
		{"blank", "  \t", `"  \t": not a UUID: empty`},
		{"word", "abc", `"abc": not a UUID`},
		{"no dashes", strings.ReplaceAll(idA, "-", ""), `"0b0e5f3a7d414c558e0f3a9d6c2b1e02": not a UUID: 32 hex digits without dashes are not accepted`},
		{"no dashes in braces", "{" + strings.ReplaceAll(idA, "-", "") + "}", `"{0b0e5f3a7d414c558e0f3a9d6c2b1e02}": not a UUID: 32 hex digits without dashes are not accepted`},
		{"open brace only", "{" + idA, `"{` + idA + `": not a UUID: unbalanced brace`},
		{"close brace only", idA + "}", `"` + idA + `}": not a UUID`},
		{"other brackets", "(" + idA + ")", `"(` + idA + `)": not a UUID`},
		{"lone brace", "{", `"{": not a UUID: unbalanced brace`},
		{"empty braces", "{}", `"{}": not a UUID`},
		{"space inside braces", "{ " + idA + " }", `"{ ` + idA + ` }": not a UUID`},
		{"urn in braces", "{urn:uuid:" + idA + "}", `"{urn:uuid:` + idA + `}": not a UUID`},
		{"braces in urn", "urn:uuid:{" + idA + "}", `"urn:uuid:{` + idA + `}": not a UUID`},
		{"other urn", "urn:isbn:" + idA, `"urn:isbn:` + idA + `": not a UUID`},
		{"non-hex digit", "0b0e5f3a-7d41-4c55-8e0f-3a9d6c2b1e0g", `"0b0e5f3a-7d41-4c55-8e0f-3a9d6c2b1e0g": not a UUID`},
		{"dash misplaced", "0b0e5f3a7-d41-4c55-8e0f-3a9d6c2b1e02", `"0b0e5f3a7-d41-4c55-8e0f-3a9d6c2b1e02": not a UUID`},
		{"too short", idA[:35], `"` + idA[:35] + `": not a UUID`},
		{"too long", idA + "0", `"` + idA + `0": not a UUID`},
		{"two ids", idA + " " + idB, `"` + idA + " " + idB + `": not a UUID`},
		{"inline comment", idA + " # acme", `"` + idA + ` # acme": not a UUID`},
		{"python repr", "UUID('" + idA + "')", `"UUID('` + idA + `')": not a UUID`},
		{"quoted", `"` + idA + `"`, `"\"` + idA + `\"": not a UUID`},
		{"truncated echo", long, `"` + strings.Repeat("x", 80) + `…": not a UUID`},
		{"truncated echo on a rune boundary", strings.Repeat("x", 79) + "éé" + long, `"` + strings.Repeat("x", 79) + `…": not a UUID`},
		{"invalid utf-8", "\xff\xfe", `"\xff\xfe": not a UUID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tenantlist.ParseID(tc.in)
			if err == nil {
				t.Fatalf("ParseID(%q): got %v, want an error", tc.in, got)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("ParseID(%q): got error %s, want %s", tc.in, err, tc.wantErr)
			}
			var pe *tenantlist.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, tenantlist.ErrNotUUID) {
				t.Errorf("ParseID(%q): got error %#v, want a *ParseError wrapping ErrNotUUID", tc.in, err)
			}
			if got != uuid.Nil {
				t.Errorf("ParseID(%q): got %v with the error, want the nil UUID", tc.in, got)
			}
		})
	}
}
