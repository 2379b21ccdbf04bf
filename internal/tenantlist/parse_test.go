package tenantlist_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/tenantlist"
)

func TestParseFormats(t *testing.T) {
	abc := []uuid.UUID{uuidA, uuidB, uuidC}
	for _, tc := range []struct {
		name, in string
		want     []uuid.UUID
	}{
		{"empty input", "", []uuid.UUID{}},
		{"whitespace only", " \n\t\r\n ", []uuid.UUID{}},
		{"comments only", "# nothing to delete\n\n#\n", []uuid.UUID{}},
		{"byte order mark only", "\xef\xbb\xbf", []uuid.UUID{}},
		{"empty JSON array", "[]", []uuid.UUID{}},
		{"empty wazo-auth listing", `{"items": [], "total": 0, "filtered": 0}`, []uuid.UUID{}},

		{"lines", idA + "\n" + idB + "\n" + idC + "\n", abc},
		{"lines without final newline", idA + "\n" + idB + "\n" + idC, abc},
		{"lines CRLF", idA + "\r\n" + idB + "\r\n" + idC + "\r\n", abc},
		{"lines any case, braces, urn, whitespace", strings.ToUpper(idA) + "\n  {" + idB + "}\t\nurn:uuid:" + idC, abc},
		{"first line braced", "{" + idA + "}\n" + idB + "\n" + idC, abc},
		{"first line braced upper", "{" + strings.ToUpper(idA) + "}\n" + idB + "\n" + idC, abc},
		{"lines with comments and blanks", "# header\n\n" + idA + "\n   # indented comment\n" + idB + "\n\n\n" + idC + "\n#", abc},
		{"lines after leading blank lines", "\n\n  \n" + idA + "\n" + idB + "\n" + idC, abc},
		{"lines after byte order mark", "\xef\xbb\xbf" + idA + "\n" + idB + "\n" + idC, abc},
		{"lines deduplicated in order of first appearance", idC + "\n" + idA + "\n" + strings.ToUpper(idC) + "\n{" + idA + "}\n" + idB, []uuid.UUID{uuidC, uuidA, uuidB}},
		{"nil uuid parses", "00000000-0000-0000-0000-000000000000", []uuid.UUID{uuid.Nil}},

		{"JSON array", `["` + idA + `", "` + idB + `", "` + idC + `"]`, abc},
		{"JSON array indented", "\n  [\n\t\"" + idA + "\",\n\"{" + strings.ToUpper(idB) + "}\",\n \"urn:uuid:" + idC + "\"\n]\n\n", abc},
		{"JSON array deduplicated", `["` + idB + `", "` + idA + `", "` + idB + `"]`, []uuid.UUID{uuidB, uuidA}},
		{"JSON array with whitespace in strings", `[" ` + idA + `\t"]`, []uuid.UUID{uuidA}},

		{"wazo-auth", `{"items": [{"uuid": "` + idA + `", "name": "a"}, {"name": "b", "uuid": "` + idB + `"}, {"uuid": "` + idC + `"}], "total": 3, "filtered": 3}`, abc},
		{"wazo-auth without counts", `{"items": [{"uuid": "` + idA + `"}]}`, []uuid.UUID{uuidA}},
		{"wazo-auth counts not numbers are ignored", `{"items": [{"uuid": "` + idA + `"}], "total": "many", "filtered": null}`, []uuid.UUID{uuidA}},
		{"wazo-auth other keys ignored", `{"links": {"next": null}, "items": [{"uuid": "` + idA + `", "UUID": "nope", "tenant": {"uuid": "nope"}}]}`, []uuid.UUID{uuidA}},
		{"wazo-auth deduplicated", `{"items": [{"uuid": "` + idA + `"}, {"uuid": "` + strings.ToUpper(idA) + `"}], "total": 2}`, []uuid.UUID{uuidA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tenantlist.Parse(strings.NewReader(tc.in), "in")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("Parse: got %#v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		wantErr   string
		wantIs    error
		wantLine  int
		wantIndex string
	}{
		{"bad line", idA + "\n\n# c\n" + idB + "\nabc\n" + idC, `in:5: "abc": not a UUID`, tenantlist.ErrNotUUID, 5, ""},
		{"bad line after leading blanks", "\n\n\r\n  abc\n", `in:4: "  abc": not a UUID`, tenantlist.ErrNotUUID, 4, ""},
		{"bad CRLF line has no CR in its echo", idA + "\r\nabc\r\n", `in:2: "abc": not a UUID`, tenantlist.ErrNotUUID, 2, ""},
		{"bad first line", "tenant_uuid\n" + idA, `in:1: "tenant_uuid": not a UUID`, tenantlist.ErrNotUUID, 1, ""},
		{"inline comment", idA + " # acme\n", `in:1: "` + idA + ` # acme": not a UUID`, tenantlist.ErrNotUUID, 1, ""},
		{"32 hex digits line", idA + "\n" + strings.ReplaceAll(idB, "-", ""), `in:2: "c3a1f2e49b7d4e6f8a5c2d1b0e9f8a03": not a UUID: 32 hex digits without dashes are not accepted`, tenantlist.ErrNotUUID, 2, ""},
		{"CSV line", idA + ",acme", `in:1: "` + idA + `,acme": not a UUID`, tenantlist.ErrNotUUID, 1, ""},
		{"long bad line echo truncated", strings.Repeat("z", 1000), `in:1: "` + strings.Repeat("z", 80) + `…": not a UUID`, tenantlist.ErrNotUUID, 1, ""},

		{"JSON non-string element", `["` + idA + `", 42]`, `in:1: [1]: unexpected JSON type: want string, got number`, tenantlist.ErrJSONType, 1, "[1]"},
		{"JSON null element", "[\n\"" + idA + "\",\nnull]", `in:3: [1]: unexpected JSON type: want string, got null`, tenantlist.ErrJSONType, 3, "[1]"},
		{"JSON object element", `[{"uuid": "` + idA + `"}]`, `in:1: [0]: unexpected JSON type: want string, got object`, tenantlist.ErrJSONType, 1, "[0]"},
		{"JSON bad string", "[\n  \"" + idA + "\",\n  \"" + idB + "\",\n  \"abc\"\n]", `in:4: [2]: "abc": not a UUID`, tenantlist.ErrNotUUID, 4, "[2]"},
		{"JSON empty string", `[""]`, `in:1: [0]: not a UUID: empty`, tenantlist.ErrNotUUID, 1, "[0]"},
		{"JSON trailing garbage", `["` + idA + `"] x`, `in:1: invalid JSON: invalid character 'x' after top-level value`, tenantlist.ErrSyntax, 1, ""},
		{"JSON second document", "[\"" + idA + "\"]\n[\"" + idB + "\"]", `in:2: invalid JSON: invalid character '[' after top-level value`, tenantlist.ErrSyntax, 2, ""},
		{"JSON unterminated", "\n[\"" + idA + "\",\n", `in:3: invalid JSON: unexpected end of JSON input`, tenantlist.ErrSyntax, 3, ""},
		{"JSON trailing comma", `["` + idA + `",]`, `in:1: invalid JSON: invalid character ']' looking for beginning of value`, tenantlist.ErrSyntax, 1, ""},

		{"wazo-auth item without uuid", "{\"items\": [\n{\"uuid\": \"" + idA + "\"},\n{\"uuid\": \"" + idB + "\"},\n{\"uuid\": \"" + idC + "\"},\n{\"name\": \"ghost\", \"slug\": \"ghost\"}\n]}", `in:5: items[3].uuid: missing`, tenantlist.ErrMissing, 5, "items[3].uuid"},
		{"wazo-auth uuid key in another case", `{"items": [{"UUID": "` + idA + `"}]}`, `in:1: items[0].uuid: missing`, tenantlist.ErrMissing, 1, "items[0].uuid"},
		{"wazo-auth bad uuid", `{"items": [{"uuid": "` + idA + `"}, {"uuid": "acme"}]}`, `in:1: items[1].uuid: "acme": not a UUID`, tenantlist.ErrNotUUID, 1, "items[1].uuid"},
		{"wazo-auth uuid not a string", `{"items": [{"uuid": null}]}`, `in:1: items[0].uuid: unexpected JSON type: want string, got null`, tenantlist.ErrJSONType, 1, "items[0].uuid"},
		{"wazo-auth item not an object", `{"items": ["` + idA + `"]}`, `in:1: items[0]: unexpected JSON type: want object, got string`, tenantlist.ErrJSONType, 1, "items[0]"},
		{"wazo-auth duplicate uuid key", `{"items": [{"uuid": "` + idA + `", "uuid": "` + idB + `"}]}`, `in:1: items[0]: duplicate key "uuid"`, tenantlist.ErrDuplicateKey, 1, "items[0]"},
		{"wazo-auth duplicate items key", `{"items": [], "items": [{"uuid": "` + idA + `"}]}`, `in:1: duplicate key "items"`, tenantlist.ErrDuplicateKey, 1, ""},
		{"wazo-auth without items", `{"total": 0}`, `in: items: missing (want wazo-auth's {"items":[{"uuid":…}]})`, tenantlist.ErrMissing, 0, "items"},
		{"empty object", `{}`, `in: items: missing (want wazo-auth's {"items":[{"uuid":…}]})`, tenantlist.ErrMissing, 0, "items"},
		{"wazo-auth items not an array", `{"items": {"uuid": "` + idA + `"}}`, `in:1: items: unexpected JSON type: want array, got object`, tenantlist.ErrJSONType, 1, "items"},
		{"wazo-auth paginated", `{"items": [{"uuid": "` + idA + `"}], "filtered": 250, "total": 250}`, `in:1: filtered: inconsistent listing: 250 tenants, but items holds 1 (a paginated or searched listing is not a source of truth)`, tenantlist.ErrInconsistentListing, 1, "filtered"},
		{"wazo-auth searched", `{"items": [{"uuid": "` + idA + `"}], "filtered": 1, "total": 3}`, `in:1: total: inconsistent listing: 3 tenants, but items holds 1 (a paginated or searched listing is not a source of truth)`, tenantlist.ErrInconsistentListing, 1, "total"},
		{"wazo-auth count below items", `{"items": [{"uuid": "` + idA + `"}, {"uuid": "` + idB + `"}], "total": 1}`, `in:1: total: inconsistent listing: 1 tenants, but items holds 2 (a paginated or searched listing is not a source of truth)`, tenantlist.ErrInconsistentListing, 1, "total"},
		{"wazo-auth trailing garbage", `{"items": []}}`, `in:1: invalid JSON: invalid character '}' after top-level value`, tenantlist.ErrSyntax, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tenantlist.Parse(strings.NewReader(tc.in), "in")
			if err == nil {
				t.Fatalf("Parse: got %v, want an error", got)
			}
			if got != nil {
				t.Errorf("Parse: got %v with the error, want nil", got)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Parse: got error\n\t%s\nwant\n\t%s", err, tc.wantErr)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("Parse: got error %v, want one wrapping %v", err, tc.wantIs)
			}
			var pe *tenantlist.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse: got error %T, want *tenantlist.ParseError", err)
			}
			if pe.Source != "in" || pe.Line != tc.wantLine || pe.Index != tc.wantIndex {
				t.Errorf("Parse: got source %q line %d index %q, want %q line %d index %q", pe.Source, pe.Line, pe.Index, "in", tc.wantLine, tc.wantIndex)
			}
		})
	}
}

func TestParseFixtures(t *testing.T) {
	master := uuid.MustParse("6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01")
	for _, tc := range []struct {
		file string
		want []uuid.UUID
	}{
		{"wazo-auth-tenants.json", []uuid.UUID{master, uuidA, uuidB, uuidC}},
		{"tenants.json", []uuid.UUID{uuidA, uuidB, uuidC}},
		{"tenants-crlf.txt", []uuid.UUID{uuidA, uuidB, uuidC}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := parseFile(t, "testdata/"+tc.file)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Parse(%s): got %v, want %v", tc.file, got, tc.want)
			}
		})
	}
}

func TestParsePaginatedFixture(t *testing.T) {
	f, err := os.Open("testdata/wazo-auth-paginated.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = tenantlist.Parse(f, f.Name())
	want := `testdata/wazo-auth-paginated.json:1: filtered: inconsistent listing: 250 tenants, but items holds 2 (a paginated or searched listing is not a source of truth)`
	if err == nil || err.Error() != want {
		t.Errorf("Parse: got error %v, want %s", err, want)
	}
}

func parseFile(t *testing.T, path string) []uuid.UUID {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := tenantlist.Parse(f, path)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return ids
}
