package archive_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestValidate(t *testing.T) {
	newer := fmt.Sprintf("format_version %d > %d", archive.FormatVersion+1, archive.FormatVersion)
	tests := []struct {
		name   string
		mutate func(m *archive.Manifest)
		errHas string // "" when the manifest must pass
		is     error  // a sentinel the error must match, or nil
	}{
		{"valid tenant scope", func(m *archive.Manifest) {}, "", nil},
		{"valid retention scope", func(m *archive.Manifest) {
			m.Scope = archive.Scope{Kind: archive.ScopeRetention, Cutoffs: map[string]time.Time{
				"cdr": time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}}
		}, "", nil},
		{"retention scope without cutoffs", func(m *archive.Manifest) { m.Scope.Kind = archive.ScopeRetention }, "", nil},
		{"no tables and no files", func(m *archive.Manifest) { m.Tables, m.Files = nil, nil }, "", nil},
		{"escaped table names", func(m *archive.Manifest) {
			m.Tables[0].Schema, m.Tables[0].Name = "my.schema", "a/b%"
			m.Tables[0].Key = archive.TableKey(m.Tenant, m.ID, "my.schema", "a/b%")
		}, "", nil},
		{"stored file of zero bytes", func(m *archive.Manifest) {
			m.Files[0].Size, m.Files[0].StoredBytes, m.Files[0].SHA256 = 0, 9, sumHex("")
		}, "", nil},

		{"format_version 0", func(m *archive.Manifest) { m.FormatVersion = 0 }, "format_version 0", nil},
		{"format_version negative", func(m *archive.Manifest) { m.FormatVersion = -1 }, "format_version -1", nil},
		{"format_version newer", func(m *archive.Manifest) { m.FormatVersion = archive.FormatVersion + 1 },
			newer, archive.ErrNewerFormat},
		{"format_version much newer", func(m *archive.Manifest) { m.FormatVersion = 1 << 30 }, "", archive.ErrNewerFormat},
		{"newer format checked before anything else", func(m *archive.Manifest) {
			m.FormatVersion, m.ID, m.Scope.Kind = archive.FormatVersion+1, uuid.Nil, "future"
		}, "", archive.ErrNewerFormat},

		{"nil id", func(m *archive.Manifest) { m.ID = uuid.Nil }, "id and tenant must be set", nil},
		{"nil tenant", func(m *archive.Manifest) { m.Tenant = uuid.Nil }, "id and tenant must be set", nil},

		{"empty scope", func(m *archive.Manifest) { m.Scope.Kind = "" }, `unknown scope ""`, nil},
		{"unknown scope", func(m *archive.Manifest) { m.Scope.Kind = "everything" }, `unknown scope "everything"`, nil},
		{"trash scope", func(m *archive.Manifest) {
			m.Scope = archive.Scope{Kind: archive.ScopeTrash, Transactions: []archive.Transaction{{Xid: 751, Rows: 3}}}
		}, "", nil},
		{"trash scope without transactions", func(m *archive.Manifest) { m.Scope = archive.Scope{Kind: archive.ScopeTrash} },
			"trash scope without transactions", nil},
		{"trash scope in format 1", func(m *archive.Manifest) {
			m.FormatVersion = 1
			m.Scope = archive.Scope{Kind: archive.ScopeTrash, Transactions: []archive.Transaction{{Xid: 751, Rows: 3}}}
		}, `scope "trash" in format_version 1`, nil},
		{"scope is case-sensitive", func(m *archive.Manifest) { m.Scope.Kind = "Tenant" }, `unknown scope "Tenant"`, nil},

		{"empty schema", func(m *archive.Manifest) { m.Tables[1].Schema = "" }, "tables[1]: schema and name must be set", nil},
		{"empty table name", func(m *archive.Manifest) { m.Tables[0].Name = "" }, "tables[0]: schema and name must be set", nil},

		{"empty key", func(m *archive.Manifest) { m.Tables[0].Key = "" }, "key \"\", want", nil},
		{"key of another snapshot", func(m *archive.Manifest) {
			m.Tables[0].Key = archive.TableKey(m.Tenant, snapB, "public", m.Tables[0].Name)
		}, "key ", nil},
		{"key of another tenant", func(m *archive.Manifest) {
			m.Tables[0].Key = archive.TableKey(tenantB, m.ID, "public", m.Tables[0].Name)
		}, "key ", nil},
		{"key of another table", func(m *archive.Manifest) { m.Tables[0].Key = m.Tables[1].Key }, "key ", nil},
		{"key not escaped", func(m *archive.Manifest) {
			m.Tables[0].Name = "a.b"
			m.Tables[0].Key = archive.SnapshotPrefix(m.Tenant, m.ID) + "tables/public.a.b.copy.zst"
		}, "key ", nil},
		{"key leading outside the snapshot", func(m *archive.Manifest) {
			m.Tables[0].Key = archive.SnapshotPrefix(m.Tenant, m.ID) + "tables/../../x/tables/public.call_logd_call_log.copy.zst"
		}, "key ", nil},

		{"duplicate table", func(m *archive.Manifest) { m.Tables = append(m.Tables, m.Tables[0]) },
			"table public.call_logd_call_log listed twice", nil},

		{"nil columns", func(m *archive.Manifest) { m.Tables[1].Columns = nil }, "call_logd_recording: no columns", nil},
		{"empty columns", func(m *archive.Manifest) { m.Tables[1].Columns = []archive.Column{} }, "no columns", nil},

		{"negative rows", func(m *archive.Manifest) { m.Tables[0].Rows = -1 }, "negative count", nil},
		{"negative raw bytes", func(m *archive.Manifest) { m.Tables[0].RawBytes = -1 }, "negative count", nil},
		{"negative stored bytes", func(m *archive.Manifest) { m.Tables[0].StoredBytes = -1 }, "negative count", nil},

		{"table without sha256", func(m *archive.Manifest) { m.Tables[0].SHA256 = "" }, "bad sha256", nil},
		{"table sha256 short", func(m *archive.Manifest) { m.Tables[0].SHA256 = m.Tables[0].SHA256[:62] }, "bad sha256", nil},
		{"table sha256 long", func(m *archive.Manifest) { m.Tables[0].SHA256 += "00" }, "bad sha256", nil},
		{"table sha256 not hex", func(m *archive.Manifest) { m.Tables[0].SHA256 = strings.Repeat("g", 64) }, "bad sha256", nil},
		{"table sha256 upper case", func(m *archive.Manifest) {
			m.Tables[0].SHA256 = strings.ToUpper(m.Tables[0].SHA256)
		}, "bad sha256", nil},

		{"file with empty path", func(m *archive.Manifest) { m.Files[0].Path = "" }, "files[0]: empty path", nil},
		{"missing file with empty path", func(m *archive.Manifest) { m.Files[1].Path = "" }, "files[1]: empty path", nil},
		{"outside-root file with empty path", func(m *archive.Manifest) { m.Files[2].Path = "" }, "files[2]: empty path", nil},
		{"missing file needs no sha256", func(m *archive.Manifest) { m.Files[1].SHA256 = "" }, "", nil},
		{"missing file's sha256 is not checked", func(m *archive.Manifest) { m.Files[1].SHA256 = "junk" }, "", nil},
		{"outside-root file needs no sha256", func(m *archive.Manifest) { m.Files[2].SHA256 = "" }, "", nil},
		{"file without sha256", func(m *archive.Manifest) { m.Files[0].SHA256 = "" }, "file /rec/a.wav: archive: bad sha256", nil},
		{"file sha256 short", func(m *archive.Manifest) { m.Files[0].SHA256 = "abcd" }, "bad sha256", nil},
		{"file sha256 not hex", func(m *archive.Manifest) { m.Files[0].SHA256 = strings.Repeat("z", 64) }, "bad sha256", nil},
		{"file sha256 upper case", func(m *archive.Manifest) {
			m.Files[0].SHA256 = strings.ToUpper(m.Files[0].SHA256)
		}, "bad sha256", nil},
		{"file negative size", func(m *archive.Manifest) { m.Files[0].Size = -1 }, "file /rec/a.wav: negative size", nil},
		{"file negative stored bytes", func(m *archive.Manifest) { m.Files[0].StoredBytes = -1 }, "negative size", nil},
		{"missing file negative size", func(m *archive.Manifest) { m.Files[1].Size = -1 }, "negative size", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.mutate(m)
			err := m.Validate()
			if tt.errHas == "" && tt.is == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", err)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an error containing %q", err, tt.errHas)
			}
			if !strings.HasPrefix(err.Error(), "archive: manifest") {
				t.Errorf("got %v, want an error starting %q", err, "archive: manifest")
			}
			if got := errors.Is(err, archive.ErrNewerFormat); got != (tt.is == archive.ErrNewerFormat) {
				t.Errorf("errors.Is(%v, ErrNewerFormat): got %v, want %v", err, got, tt.is == archive.ErrNewerFormat)
			}
		})
	}
}

func TestRef(t *testing.T) {
	m := validManifest()
	if got, want := m.Ref(), (archive.SnapshotRef{Tenant: tenantA, ID: snapA}); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	ref, rest, ok := archive.ParseSnapshotKey(archive.ManifestKey(m.Tenant, m.ID))
	if !ok || ref != m.Ref() || !archive.IsManifest(rest) {
		t.Errorf("ParseSnapshotKey(ManifestKey): got %v %q %v, want %v %q %v", ref, rest, ok, m.Ref(), "manifest.json", true)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    *archive.Manifest
	}{
		{"tenant scope", validManifest()},
		{"retention scope", func() *archive.Manifest {
			m := validManifest()
			m.Scope = archive.Scope{Kind: archive.ScopeRetention, Cutoffs: map[string]time.Time{
				"cdr":       time.Date(2025, 3, 1, 3, 0, 12, 345678000, time.UTC),
				"recording": time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC),
			}}
			return m
		}()},
		{"empty", func() *archive.Manifest {
			m := validManifest()
			m.Reason, m.Tables, m.Files = "", nil, nil
			return m
		}()},
		{"escaped and unicode names", func() *archive.Manifest {
			m := validManifest()
			m.Tables[0].Schema, m.Tables[0].Name = "données", "a/b.c%\t"
			m.Tables[0].Key = archive.TableKey(m.Tenant, m.ID, m.Tables[0].Schema, m.Tables[0].Name)
			m.Tables[1].Columns = append(m.Tables[1].Columns, archive.Column{Name: `we"ird`, Type: "character varying(128)[]"})
			m.Files[0].Path = "/rec/é <&> \"q\".wav"
			return m
		}()},
		{"golden", goldenManifest()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := archive.Encode(&buf, tt.m); err != nil {
				t.Fatalf("Encode: got %v, want nil", err)
			}
			enc := buf.String()
			if !strings.HasPrefix(enc, "{\n  \"format_version\": "+strconv.Itoa(tt.m.FormatVersion)+",\n") || !strings.HasSuffix(enc, "}\n") {
				t.Errorf("Encode: got %q, want indented JSON beginning with format_version and ending in a newline", enc)
			}
			// Streamed file by file, it is byte for byte what encoding/json writes.
			var whole bytes.Buffer
			je := json.NewEncoder(&whole)
			je.SetIndent("", "  ")
			if tt.m.Files == nil {
				tt.m.Files = []archive.File{} // Encode writes [] for none, as Run's manifests hold
			}
			if err := je.Encode(tt.m); err != nil {
				t.Fatal(err)
			}
			if enc != whole.String() {
				t.Errorf("Encode differs from encoding/json:\n got %s\nwant %s", enc, whole.String())
			}
			got, err := archive.Decode(&buf)
			if err != nil {
				t.Fatalf("Decode: got %v, want nil", err)
			}
			if !reflect.DeepEqual(got, tt.m) {
				t.Errorf("got %+v, want %+v", got, tt.m)
			}
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	m := validManifest()
	m.Tables[0].SHA256 = ""
	var buf bytes.Buffer
	err := archive.Encode(&buf, m)
	if err == nil || !strings.Contains(err.Error(), "bad sha256") {
		t.Errorf("got %v, want a bad sha256 error", err)
	}
	if got := buf.Len(); got != 0 {
		t.Errorf("bytes written: got %v, want %v", got, 0)
	}
	m = validManifest()
	m.FormatVersion = archive.FormatVersion + 1
	if err := archive.Encode(&buf, m); !errors.Is(err, archive.ErrNewerFormat) {
		t.Errorf("got %v, want %v", err, archive.ErrNewerFormat)
	}
}

func TestEncodeWriteError(t *testing.T) {
	boom := errors.New("disk full")
	err := archive.Encode(errWriter{boom}, validManifest())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "archive: encode manifest "+snapA.String()) {
		t.Errorf("got %v, want an encode error wrapping %v", err, boom)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// manifestJSON is the encoded validManifest, changed by edit on its generic JSON form.
func manifestJSON(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Encode(&buf, validManifest()); err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return buf.String()
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecode(t *testing.T) {
	newer := fmt.Sprintf("format_version %d > %d", archive.FormatVersion+1, archive.FormatVersion)
	table0 := func(m map[string]any) map[string]any { return m["tables"].([]any)[0].(map[string]any) }
	valid := manifestJSON(t, nil)
	tests := []struct {
		name    string
		in      string
		errHas  string // "" when Decode must succeed
		notHas  string // text the error must not hold
		isNewer bool
	}{
		{"valid", valid, "", "", false},
		{"valid, compact", manifestJSON(t, func(map[string]any) {}), "", "", false},
		{"trailing whitespace", valid + "\n \t\r\n", "", "", false},
		{"leading whitespace", "\n  " + valid, "", "", false},

		{"empty", "", "archive: decode manifest", "", false},
		{"not JSON", "nope", "archive: decode manifest", "", false},
		{"array", "[]", "archive: decode manifest", "", false},
		{"null", "null", "format_version 0", "", false},
		{"empty object", "{}", "format_version 0", "", false},
		{"truncated", valid[:len(valid)/2], "archive: decode manifest", "", false},
		{"trailing garbage", valid + "x", "archive: decode manifest", "", false},
		{"two manifests", valid + valid, "archive: decode manifest", "", false},

		{"unknown top-level field", manifestJSON(t, func(m map[string]any) { m["signature"] = "x" }),
			`unknown field "signature"`, "", false},
		{"unknown table field", manifestJSON(t, func(m map[string]any) { table0(m)["compression"] = "lz4" }),
			`unknown field "compression"`, "", false},
		{"unknown file field", manifestJSON(t, func(m map[string]any) {
			m["files"].([]any)[0].(map[string]any)["acl"] = "asterisk"
		}), `unknown field "acl"`, "", false},
		{"unknown scope field", manifestJSON(t, func(m map[string]any) {
			m["scope"].(map[string]any)["tables"] = []string{"x"}
		}), `unknown field "tables"`, "", false},
		{"unknown column field", manifestJSON(t, func(m map[string]any) {
			table0(m)["columns"].([]any)[0].(map[string]any)["collation"] = "C"
		}), `unknown field "collation"`, "", false},

		{"missing format_version", manifestJSON(t, func(m map[string]any) { delete(m, "format_version") }),
			"format_version 0", "", false},
		{"format_version as string", manifestJSON(t, func(m map[string]any) { m["format_version"] = "1" }),
			"archive: decode manifest", "", false},
		{"format_version fractional", manifestJSON(t, func(m map[string]any) { m["format_version"] = 1.5 }),
			"archive: decode manifest", "", false},
		{"format_version overflows int", strings.Replace(valid, fmt.Sprintf(`"format_version": %d,`, archive.FormatVersion), `"format_version": 1e100,`, 1),
			"archive: decode manifest", "", false},

		{"newer format", manifestJSON(t, func(m map[string]any) { m["format_version"] = archive.FormatVersion + 1 }),
			newer, "", true},
		{"newer format with unknown fields", manifestJSON(t, func(m map[string]any) {
			m["format_version"] = archive.FormatVersion + 1
			m["encryption"] = map[string]any{"alg": "age"}
			table0(m)["chunks"] = []string{"a", "b"}
		}), newer, "unknown field", true},
		{"newer format with changed types", manifestJSON(t, func(m map[string]any) {
			m["format_version"] = 7
			m["tables"] = "elsewhere"
			m["id"] = 42
		}), fmt.Sprintf("format_version 7 > %d", archive.FormatVersion), "cannot unmarshal", true},
		{"newer format, nothing else", fmt.Sprintf(`{"format_version": %d}`, archive.FormatVersion+1), "", "", true},
		{"owner in a format 1 manifest", manifestJSON(t, func(m map[string]any) {
			m["format_version"] = 1
			m["files"].([]any)[0].(map[string]any)["owner"] = map[string]any{"uid": 33, "gid": 33}
		}), "format_version 1 has no owners", "", false},

		{"valid JSON, invalid manifest", manifestJSON(t, func(m map[string]any) { table0(m)["sha256"] = "00" }),
			"bad sha256", "", false},
		{"valid JSON, unknown scope", manifestJSON(t, func(m map[string]any) { m["scope"] = map[string]any{"kind": "all"} }),
			`unknown scope "all"`, "", false},
		{"bad uuid", manifestJSON(t, func(m map[string]any) { m["tenant"] = "tenant-1" }),
			"archive: decode manifest", "", false},
		{"rows as string", manifestJSON(t, func(m map[string]any) { table0(m)["rows"] = "3" }),
			"archive: decode manifest", "", false},
		{"bad time", manifestJSON(t, func(m map[string]any) { m["created_at"] = "yesterday" }),
			"archive: decode manifest", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := archive.Decode(strings.NewReader(tt.in))
			if tt.errHas == "" && !tt.isNewer {
				if err != nil || m == nil {
					t.Fatalf("got %v, %v, want a manifest, nil", m, err)
				}
				return
			}
			if err == nil || m != nil {
				t.Fatalf("got %v, %v, want nil, an error", m, err)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an error containing %q", err, tt.errHas)
			}
			if tt.notHas != "" && strings.Contains(err.Error(), tt.notHas) {
				t.Errorf("got %v, want an error without %q", err, tt.notHas)
			}
			if got := errors.Is(err, archive.ErrNewerFormat); got != tt.isNewer {
				t.Errorf("errors.Is(%v, ErrNewerFormat): got %v, want %v", err, got, tt.isNewer)
			}
		})
	}
}

func TestDecodeReaders(t *testing.T) {
	valid := manifestJSON(t, nil)
	boom := errors.New("connection reset")
	t.Run("one byte at a time", func(t *testing.T) {
		m, err := archive.Decode(iotest.OneByteReader(strings.NewReader(valid)))
		if err != nil || !reflect.DeepEqual(m, validManifest()) {
			t.Errorf("got %v, %v, want %v, nil", m, err, validManifest())
		}
	})
	t.Run("read error", func(t *testing.T) {
		m, err := archive.Decode(iotest.ErrReader(boom))
		if m != nil || !errors.Is(err, boom) || !strings.Contains(err.Error(), "archive: read manifest") {
			t.Errorf("got %v, %v, want nil, a read error wrapping %v", m, err, boom)
		}
	})
	t.Run("read error after data", func(t *testing.T) {
		m, err := archive.Decode(io.MultiReader(strings.NewReader(valid[:100]), iotest.ErrReader(boom)))
		if m != nil || !errors.Is(err, boom) {
			t.Errorf("got %v, %v, want nil, a read error wrapping %v", m, err, boom)
		}
	})
	t.Run("read error after a whole manifest", func(t *testing.T) {
		m, err := archive.Decode(io.MultiReader(strings.NewReader(valid), iotest.ErrReader(boom)))
		if m != nil || !errors.Is(err, boom) {
			t.Errorf("got %v, %v, want nil, a read error wrapping %v", m, err, boom)
		}
	})
}

// padReader yields pad spaces, then tail, then trail spaces, without holding the
// padding in memory.
type padReader struct {
	pad   int64
	tail  []byte
	trail int64
}

var spaces = bytes.Repeat([]byte{' '}, 64<<10)

func (r *padReader) Read(p []byte) (int, error) {
	switch {
	case r.pad > 0:
		n := copy(p[:min(int64(len(p)), r.pad)], spaces)
		r.pad -= int64(n)
		return n, nil
	case len(r.tail) > 0:
		n := copy(p, r.tail)
		r.tail = r.tail[n:]
		return n, nil
	case r.trail > 0:
		n := copy(p[:min(int64(len(p)), r.trail)], spaces)
		r.trail -= int64(n)
		return n, nil
	}
	return 0, io.EOF
}

// TestDecodeTooLarge: a manifest one byte over the limit is refused even though, being a
// valid manifest after leading whitespace, it would otherwise decode; and Decode stops
// reading one byte past the limit. Neither the test reader nor Decode holds the
// padding (it streams, whitespace cut), so this runs in a fraction of a second.
func TestDecodeTooLarge(t *testing.T) {
	const maxManifestBytes = 256 << 20 // archive.maxManifestBytes
	const trail = 1 << 20
	tail := []byte(manifestJSON(t, nil))
	r := &padReader{pad: maxManifestBytes + 1 - int64(len(tail)), tail: tail, trail: trail}
	m, err := archive.Decode(r)
	if m != nil || err == nil || !strings.Contains(err.Error(), "manifest larger than 268435456 bytes") {
		t.Errorf("got %v, %v, want nil, a size error", m, err)
	}
	if got, want := r.pad+int64(len(r.tail))+r.trail, int64(trail); got != want {
		t.Errorf("bytes left unread: got %v, want %v", got, want)
	}
}

func TestTotals(t *testing.T) {
	tests := []struct {
		name string
		m    *archive.Manifest
		want archive.Totals
	}{
		{"empty", &archive.Manifest{}, archive.Totals{}},
		{"valid manifest", validManifest(), archive.Totals{
			Tables: 2, Rows: 5, Files: 1, FilesBytes: 1000, RawBytes: 500, StoredBytes: 50 + 900, Missing: 1, OutsideRoot: 1,
		}},
		{"missing and outside-root files are not stored files", &archive.Manifest{
			Tables: []archive.Table{{Rows: 7, RawBytes: 70, StoredBytes: 7}},
			Files: []archive.File{
				{Path: "/a", Size: 10, StoredBytes: 5, SHA256: sumHex("a")},
				{Path: "/b", Size: 20, StoredBytes: 15, SHA256: sumHex("b")},
				{Path: "/c", Size: 1 << 40, StoredBytes: 1 << 40, Missing: true},
				{Path: "/d", Size: 1 << 41, StoredBytes: 1 << 41, OutsideRoot: true},
				{Path: "/e", Size: 1 << 42, StoredBytes: 1 << 42, Missing: true, OutsideRoot: true},
			},
		}, archive.Totals{
			Tables: 1, Rows: 7, Files: 2, FilesBytes: 30, RawBytes: 70, StoredBytes: 7 + 5 + 15, Missing: 2, OutsideRoot: 1,
		}},
		{"files only", &archive.Manifest{Files: []archive.File{{Path: "/a", Size: 3, StoredBytes: 4}}},
			archive.Totals{Files: 1, FilesBytes: 3, StoredBytes: 4}},
		{"golden", goldenManifest(), archive.Totals{
			Tables: 5, Rows: 1842 + 3120 + 2210 + 2 + 1, Files: 1, FilesBytes: 482604,
			RawBytes: 612345 + 401877 + 187321 + 391 + 143, StoredBytes: 98765 + 61234 + 20187 + 318 + 197 + 401233,
			Missing: 1, OutsideRoot: 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Totals(); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// goldenManifest is what testdata/manifest-v1.json holds: a retention snapshot of a
// call-logd tenant, with one recording saved, one the database names but the disk lost,
// and one export whose path resolves outside its root.
func goldenManifest() *archive.Manifest {
	tenant := uuid.MustParse("2b7f3e1a-9c4d-4e8f-a1b2-c3d4e5f60718")
	id := uuid.MustParse("01955a7e-3c00-7d2a-8b9e-4f1a2c3d4e5f")
	created := time.Date(2026, 3, 1, 3, 0, 12, 345678000, time.UTC)
	cols := func(nameType ...string) []archive.Column {
		var c []archive.Column
		for i := 0; i < len(nameType); i += 2 {
			c = append(c, archive.Column{Name: nameType[i], Type: nameType[i+1]})
		}
		return c
	}
	const (
		tstz    = "timestamp with time zone"
		vc255   = "character varying(255)"
		recRoot = "/var/lib/wazo/sounds/tenants/2b7f3e1a-9c4d-4e8f-a1b2-c3d4e5f60718/monitor/"
	)
	table := func(name string, columns []archive.Column, pk string, rows, raw, stored int64) archive.Table {
		return archive.Table{
			Schema: "public", Name: name, Reach: "cascade", Columns: columns, PrimaryKey: []string{pk},
			Rows: rows, RawBytes: raw, StoredBytes: stored,
			SHA256: sumHex("golden " + name), Key: archive.TableKey(tenant, id, "public", name),
		}
	}
	return &archive.Manifest{
		FormatVersion: 1,
		ID:            id,
		Tenant:        tenant,
		Reason:        "retention purge: cdr 365d, recording 180d, export 2d",
		CreatedAt:     created,
		ToolVersion:   "purgeguard 0.1.0",
		ServerVersion: "15.10 (Debian 15.10-1.pgdg120+1)",
		Scope: archive.Scope{Kind: archive.ScopeRetention, Cutoffs: map[string]time.Time{
			"cdr":       created.AddDate(0, 0, -365),
			"recording": created.AddDate(0, 0, -180),
			"export":    created.AddDate(0, 0, -2),
		}},
		Root: archive.Root{Schema: "public", Table: "call_logd_tenant", Key: "uuid"},
		Tables: []archive.Table{
			table("call_logd_call_log", cols(
				"id", "integer", "date", tstz, "date_answer", tstz, "date_end", tstz,
				"source_name", vc255, "source_exten", vc255, "source_line_identity", vc255,
				"source_internal_exten", "text", "source_internal_context", "text", "source_internal_name", "text",
				"requested_name", "text", "requested_exten", vc255, "requested_context", vc255,
				"requested_internal_exten", "text", "requested_internal_context", "text",
				"destination_name", vc255, "destination_exten", vc255, "destination_line_identity", vc255,
				"destination_internal_exten", "text", "destination_internal_context", "text",
				"direction", vc255, "user_field", vc255, "tenant_uuid", "uuid", "conversation_id", vc255,
				"blocked", "boolean", "reached_voicemail", "boolean",
			), "id", 1842, 612345, 98765),
			table("call_logd_call_log_participant", cols(
				"uuid", "uuid", "call_log_id", "integer", "user_uuid", "uuid", "line_id", "integer",
				"role", "call_logd_call_log_participant_role", "tags", "character varying(128)[]",
				"answered", "boolean", "requested", "boolean",
			), "uuid", 3120, 401877, 61234),
			table("call_logd_call_log_destination", cols(
				"uuid", "uuid", "destination_details_key", "character varying(32)",
				"destination_details_value", vc255, "call_log_id", "integer",
			), "uuid", 2210, 187321, 20187),
			table("call_logd_recording", cols(
				"uuid", "uuid", "start_time", tstz, "end_time", tstz, "path", "text", "call_log_id", "integer",
			), "uuid", 2, 391, 318),
			table("call_logd_export", cols(
				"uuid", "uuid", "tenant_uuid", "uuid", "user_uuid", "uuid", "requested_at", tstz,
				"status", "character varying(32)", "path", "text",
			), "uuid", 1, 143, 197),
		},
		Files: []archive.File{
			{
				Table: "public.call_logd_recording", Column: "path",
				Path: recRoot + "5e0c9a1b-2d3f-4a5b-8c6d-7e8f9a0b1c2d.wav",
				Size: 482604, Mode: 0o640, ModTime: time.Date(2025, 8, 14, 9, 12, 44, 0, time.UTC),
				SHA256: sumHex("golden recording"), StoredBytes: 401233,
			},
			{
				Table: "public.call_logd_recording", Column: "path",
				Path: recRoot + "9b8a7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d.wav", Missing: true,
			},
			{
				Table: "public.call_logd_export", Column: "path",
				Path: "/var/lib/wazo-call-logd/exports/../../../../tmp/c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f.zip", OutsideRoot: true,
			},
		},
	}
}

func TestGoldenManifest(t *testing.T) {
	path := filepath.Join("testdata", "manifest-v1.json")
	want := goldenManifest()
	if *update {
		var buf bytes.Buffer
		if err := archive.Encode(&buf, want); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	m, err := archive.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Decode: got %v, want nil", err)
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"format_version", m.FormatVersion, 1},
		{"id", m.ID.String(), "01955a7e-3c00-7d2a-8b9e-4f1a2c3d4e5f"},
		{"tenant", m.Tenant.String(), "2b7f3e1a-9c4d-4e8f-a1b2-c3d4e5f60718"},
		{"created_at", m.CreatedAt.Format(time.RFC3339Nano), "2026-03-01T03:00:12.345678Z"},
		{"scope kind", m.Scope.Kind, archive.ScopeRetention},
		{"cutoffs", len(m.Scope.Cutoffs), 3},
		{"cdr cutoff", m.Scope.Cutoffs["cdr"].Format(time.RFC3339Nano), "2025-03-01T03:00:12.345678Z"},
		{"recording cutoff", m.Scope.Cutoffs["recording"].Format(time.RFC3339Nano), "2025-09-02T03:00:12.345678Z"},
		{"export cutoff", m.Scope.Cutoffs["export"].Format(time.RFC3339Nano), "2026-02-27T03:00:12.345678Z"},
		{"root", m.Root, archive.Root{Schema: "public", Table: "call_logd_tenant", Key: "uuid"}},
		{"tables", len(m.Tables), 5},
		{"first table", m.Tables[0].Schema + "." + m.Tables[0].Name, "public.call_logd_call_log"},
		{"first table columns", len(m.Tables[0].Columns), 26},
		{"first table key", m.Tables[0].Key, "snapshots/2b7f3e1a-9c4d-4e8f-a1b2-c3d4e5f60718/" +
			"01955a7e-3c00-7d2a-8b9e-4f1a2c3d4e5f/tables/public.call_logd_call_log.copy.zst"},
		{"first table rows", m.Tables[0].Rows, int64(1842)},
		{"files", len(m.Files), 3},
		{"stored file blob", func() string { k, _ := archive.BlobKeyHex(m.Files[0].SHA256); return k }(),
			archive.BlobKey([32]byte(mustHex(t, sumHex("golden recording"))))},
		{"stored file mode", m.Files[0].Mode, uint32(0o640)},
		{"missing file", m.Files[1].Missing, true},
		{"missing file has no sha256", m.Files[1].SHA256, ""},
		{"outside-root file", m.Files[2].OutsideRoot, true},
		{"totals", m.Totals().Files, 1},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("decoded golden file: got %+v, want %+v (run go test -update after a deliberate change)", m, want)
	}

	var buf bytes.Buffer
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("re-encoded golden file differs:\ngot\n%s\nwant\n%s", buf.Bytes(), data)
	}
	// Fields left out when empty stay out: a missing file is only its row and path.
	for _, s := range []string{`"mtime": "2025-08-14T09:12:44Z"`, `"missing": true`, `"outside_root": true`,
		`"format_version": 1`, `"kind": "retention"`} {
		if got := bytes.Contains(data, []byte(s)); !got {
			t.Errorf("golden file holds %s: got %v, want %v", s, got, true)
		}
	}
	if got, want := bytes.Count(data, []byte(`"mtime"`)), 1; got != want {
		t.Errorf("mtime fields: got %v, want %v", got, want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// Whitespace between tokens is cut to one byte; inside strings, escaped quotes and
// backslashes included, nothing changes; and the manifest decodes the same.
func TestDecodeWhitespace(t *testing.T) {
	m := validManifest()
	m.Reason = `two  spaces, "quoted  \"  words", a backslash \ and \\" end  `
	m.Files[0].Path = "/rec/a  b\\  c\t\n  .wav"
	var buf bytes.Buffer
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	// Runs of whitespace of every kind between tokens, at the start and the end.
	padded := "\n\t \r  " + strings.NewReplacer(",\n", ",   \n\t\t  \r\n", ": ", " :\t \t ").Replace(buf.String()) + " \n\n\t "
	for _, in := range []string{buf.String(), padded} {
		got, err := archive.Decode(iotest.HalfReader(strings.NewReader(in)))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("got %+v\nwant %+v", got, m)
		}
	}
}

// goldenManifestV2 is what testdata/manifest-v2.json holds: the v1 golden snapshot
// with format 2's owners of its saved recording and of its directories.
func goldenManifestV2() *archive.Manifest {
	m := goldenManifest()
	m.FormatVersion = 2
	m.Files[0].Owner = &archive.Owner{UID: 33, GID: 33, User: "www-data", Group: "www-data"}
	m.Dirs = []archive.Dir{
		{Path: "/var/lib/wazo/sounds/tenants/2b7f3e1a-9c4d-4e8f-a1b2-c3d4e5f60718", Mode: 0o750, Owner: archive.Owner{UID: 33, GID: 33, User: "www-data", Group: "www-data"}},
		{Path: "/var/lib/wazo/sounds/tenants/2b7f3e1a-9c4d-4e8f-a1b2-c3d4e5f60718/monitor", Mode: 0o750, Owner: archive.Owner{UID: 1001, GID: 33}},
	}
	return m
}

// Both formats stay readable: the v1 file (TestGoldenManifest) and the v2 one,
// each decoding to what it holds and encoding back byte for byte.
func TestGoldenManifestV2(t *testing.T) {
	path := filepath.Join("testdata", "manifest-v2.json")
	want := goldenManifestV2()
	if *update {
		var buf bytes.Buffer
		if err := archive.Encode(&buf, want); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	m, err := archive.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("decoded golden file: got %+v, want %+v", m, want)
	}
	if m.Files[0].Owner == nil || m.Files[0].Owner.UID != 33 || m.Files[1].Owner != nil || m.Dirs[1].Owner.UID != 1001 {
		t.Errorf("owners: file %+v, missing file %+v, dir %+v", m.Files[0].Owner, m.Files[1].Owner, m.Dirs[1])
	}
	var buf bytes.Buffer
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("re-encoded golden file differs:\ngot\n%s\nwant\n%s", buf.Bytes(), data)
	}
	for _, s := range []string{`"format_version": 2`, `"uid": 33`, `"group": "www-data"`, `"dirs": [`} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("golden file does not hold %s", s)
		}
	}
}

// lastWithoutRecovered is the last format whose readers do not know File.Recovered.
const lastWithoutRecovered = 2

// A manifest naming a file recovered from the shield is of a format that a reader
// of format 2 refuses as newer (ErrNewerFormat: its strict decoder would otherwise
// stop at an unknown field, a garbled manifest rather than a newer one); the format
// 2 manifests written with the field before the bump still read, as does the
// golden format 2 file (TestGoldenManifestV2).
func TestManifest_RecoveredNeedsFormat3(t *testing.T) {
	m := goldenManifestV2()
	m.FormatVersion = archive.FormatVersion
	m.Files[0].Recovered = true
	var buf bytes.Buffer
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"recovered": true`) {
		t.Fatalf("encoded manifest lacks the field:\n%s", buf.String())
	}
	var head struct {
		FormatVersion int `json:"format_version"`
	}
	if err := json.Unmarshal(buf.Bytes(), &head); err != nil {
		t.Fatal(err)
	}
	if head.FormatVersion <= lastWithoutRecovered {
		t.Errorf("a manifest with recovered files written as format %d: a format %d reader would refuse it as garbled, not as newer",
			head.FormatVersion, lastWithoutRecovered)
	}
	got, err := archive.Decode(&buf)
	if err != nil || !got.Files[0].Recovered {
		t.Fatalf("read back: %v, recovered %v", err, got != nil && got.Files[0].Recovered)
	}
	m.FormatVersion = 2
	buf.Reset()
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if got, err := archive.Decode(&buf); err != nil || !got.Files[0].Recovered {
		t.Errorf("a format 2 manifest with the field, written before the bump: %v", err)
	}
}
