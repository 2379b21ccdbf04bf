package archive_test

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// Fixed identifiers: every expected key in these tests is a literal string built from them.
var (
	tenantA = uuid.MustParse("6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11")
	tenantB = uuid.MustParse("a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d")
	snapA   = uuid.MustParse("0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d")
	snapB   = uuid.MustParse("0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7e")
)

// sumHex is the lower-case SHA-256 of s, as a manifest holds it.
func sumHex(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

// validManifest returns a fresh manifest that passes Validate: two tables, one stored
// file, one missing file and one outside its root. Tests mutate their own copy.
func validManifest() *archive.Manifest {
	tbl := func(name string, rows int64) archive.Table {
		return archive.Table{
			Schema:      "public",
			Name:        name,
			Reach:       "cascade",
			Columns:     []archive.Column{{Name: "id", Type: "integer"}, {Name: "tenant_uuid", Type: "uuid"}},
			PrimaryKey:  []string{"id"},
			Rows:        rows,
			RawBytes:    rows * 100,
			StoredBytes: rows * 10,
			SHA256:      sumHex(name),
			Key:         archive.TableKey(tenantA, snapA, "public", name),
		}
	}
	return &archive.Manifest{
		FormatVersion: archive.FormatVersion,
		ID:            snapA,
		Tenant:        tenantA,
		Reason:        "test",
		CreatedAt:     time.Date(2026, 3, 1, 3, 0, 12, 345678000, time.UTC),
		ToolVersion:   "purgeguard test",
		ServerVersion: "16.4",
		Scope:         archive.Scope{Kind: archive.ScopeTenant},
		Root:          archive.Root{Schema: "public", Table: "call_logd_tenant", Key: "uuid"},
		Tables:        []archive.Table{tbl("call_logd_call_log", 3), tbl("call_logd_recording", 2)},
		Files: []archive.File{
			{
				Table: "public.call_logd_recording", Column: "path", Path: "/rec/a.wav",
				Size: 1000, Mode: 0o644, ModTime: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
				SHA256: sumHex("a.wav"), StoredBytes: 900,
			},
			{Table: "public.call_logd_recording", Column: "path", Path: "/rec/gone.wav", Missing: true},
			{Table: "public.call_logd_recording", Column: "path", Path: "/etc/passwd", OutsideRoot: true},
		},
	}
}
