// Package archive is purgeguard's on-storage format (version 1): where every object
// lives, what a manifest says, and how both are checked. It does no I/O of its own
// beyond the readers and writers it is handed, so every rule is unit-tested.
//
//	snapshots/<tenant-uuid>/<snapshot-id>/tables/<schema>.<table>.copy.zst
//	snapshots/<tenant-uuid>/<snapshot-id>/files.jsonl.zst  (format 3: the files, one JSON entry a line)
//	snapshots/<tenant-uuid>/<snapshot-id>/packs/<n>.pack   (format 4: small files' zstd frames, appended)
//	snapshots/<tenant-uuid>/<snapshot-id>/manifest.json   (written last: the commit marker)
//	blobs/sha256/<aa>/<hex>.zst                            (file contents, content-addressed)
//	audit/<yyyy>/<mm>/<dd>/<time>-<id>.json                (one record per decision, snapshot, restore)
//	id                                                     (the store's identity, StoreIDKey)
//
// Keys are relative to the store's root (a directory or an S3 bucket prefix).
package archive

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FormatVersion is the version of the layout and manifest written by this build.
// A reader refuses a manifest with a greater version rather than guess at it, and
// reads every older one: version 2 added files' and directories' owners (Owner,
// Manifest.Dirs) and the trash scope (ScopeTrash, Scope.Transactions); a version 1
// manifest simply has none. Version 3 lists a snapshot's files in an object of their
// own (Manifest.FileList, filelist.go) instead of inline, and is the first whose
// readers all know File.Recovered (a file saved from the file shield): a reader
// decodes strictly, so a version 2 reader refuses a manifest naming one as newer
// rather than stopping at an unknown field. Version 2 manifests already written
// with it (before version 3) are read as they are. Version 4 stores small files in
// packs of the snapshot's own (Manifest.Packs, File.Pack, pack.go).
const FormatVersion = 4

// Top-level key prefixes.
const (
	SnapshotsPrefix = "snapshots/"
	BlobsPrefix     = "blobs/sha256/"
	AuditPrefix     = "audit/"
	manifestName    = "manifest.json"
	tablesDir       = "tables/"
	tableSuffix     = ".copy.zst"
	blobSuffix      = ".zst"
)

// StoreIDKey holds the store's identity: 32 lower-case hex digits (16 random bytes)
// and a newline, written once by the first file shield that uploads there. The
// shield puts a tag of it in every file's XattrBlob value, so that a snapshot into
// another store (a copy to a directory, a new bucket) does not take a blob the
// shield stored elsewhere for one its own store holds.
const StoreIDKey = "id"

// TenantPrefix is the key prefix under which every snapshot of tenant lives.
func TenantPrefix(tenant uuid.UUID) string {
	return SnapshotsPrefix + tenant.String() + "/"
}

// SnapshotPrefix is the key prefix of one snapshot's objects.
func SnapshotPrefix(tenant, id uuid.UUID) string {
	return TenantPrefix(tenant) + id.String() + "/"
}

// ManifestKey is the key of a snapshot's manifest, whose presence commits the snapshot.
func ManifestKey(tenant, id uuid.UUID) string {
	return SnapshotPrefix(tenant, id) + manifestName
}

// TableKey is the key of one table's rows in a snapshot, as zstd-compressed COPY text.
func TableKey(tenant, id uuid.UUID, schema, table string) string {
	return SnapshotPrefix(tenant, id) + tablesDir + tableFileName(schema, table)
}

// tableFileName escapes the characters that would make a key ambiguous or invalid:
// PostgreSQL identifiers may hold '/', '.', '%' or control characters, and, in a
// database whose encoding is not UTF-8 (SQL_ASCII), bytes that are not UTF-8.
func tableFileName(schema, table string) string {
	return escapeIdent(schema) + "." + escapeIdent(table) + tableSuffix
}

func escapeIdent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// A byte that is not UTF-8 is escaped on its own: ranging over the string
			// would turn every such byte into U+FFFD, so "\xff" and "\xfe" (and a real
			// U+FFFD) would share one key, and the key would not round-trip.
			fmt.Fprintf(&b, "%%%02X", s[i])
		case r == '/' || r == '.' || r == '%' || r == '\\' || r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "%%%02X", r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// BlobKey is the key of a file's content, named by the SHA-256 of the raw content.
func BlobKey(sum [32]byte) string {
	// One allocation: validateFile asks for a key per entry of a file list.
	var b [len(BlobsPrefix) + 3 + 64 + len(blobSuffix)]byte
	n := copy(b[:], BlobsPrefix)
	hex.Encode(b[n+3:], sum[:])
	b[n], b[n+1], b[n+2] = b[n+3], b[n+4], '/'
	copy(b[n+3+64:], blobSuffix)
	return string(b[:])
}

// BlobKeyHex is BlobKey for a hex digest as found in a manifest: 64 lower-case hex
// digits, as Digest.Hex writes them. Upper case is refused: Digest.Check compares the
// strings, so a manifest holding it would pass Validate and then fail every verify.
func BlobKeyHex(hexSum string) (string, error) {
	sum, err := ParseDigestHex(hexSum)
	if err != nil {
		return "", err
	}
	return BlobKey(sum), nil
}

// lowerHex maps a lower-case hex digit to its value, any other byte to 0xff.
var lowerHex = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// ParseDigestHex parses a manifest's hex digest, held to the same form as BlobKeyHex.
func ParseDigestHex(hexSum string) (sum [32]byte, err error) {
	// 64 lower-case hex digits, checked without allocating: a file list has one
	// digest per entry.
	if len(hexSum) != 2*len(sum) {
		return sum, fmt.Errorf("archive: bad sha256 %q", hexSum)
	}
	for i := range len(sum) {
		hi, lo := lowerHex[hexSum[2*i]], lowerHex[hexSum[2*i+1]]
		if hi|lo > 0xf {
			return [32]byte{}, fmt.Errorf("archive: bad sha256 %q", hexSum)
		}
		sum[i] = hi<<4 | lo
	}
	return sum, nil
}

// ParseBlobKey returns the digest named by a blob key. Only the key BlobKey writes is
// accepted: upper-case hex names no blob this build stores.
func ParseBlobKey(key string) (sum [32]byte, ok bool) {
	rest, found := strings.CutPrefix(key, BlobsPrefix)
	if !found || !strings.HasSuffix(rest, blobSuffix) {
		return sum, false
	}
	rest = strings.TrimSuffix(rest, blobSuffix)
	dir, h, found := strings.Cut(rest, "/")
	if !found || len(h) != 64 || dir != h[:2] {
		return sum, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || hex.EncodeToString(b) != h {
		return sum, false
	}
	return [32]byte(b), true
}

// AuditKey is the key of one audit record. Keys sort by time.
func AuditKey(at time.Time, id uuid.UUID) string {
	at = at.UTC()
	return fmt.Sprintf("%s%04d/%02d/%02d/%s-%s.json", AuditPrefix,
		at.Year(), at.Month(), at.Day(), at.Format("150405.000000000Z"), id)
}

// SnapshotRef names one snapshot by where it is stored.
type SnapshotRef struct {
	Tenant uuid.UUID `json:"tenant"`
	ID     uuid.UUID `json:"id"`
}

// ParseSnapshotKey splits a key under snapshots/ into the snapshot it belongs to and
// the rest of the key ("manifest.json", "tables/…").
func ParseSnapshotKey(key string) (ref SnapshotRef, rest string, ok bool) {
	s, found := strings.CutPrefix(key, SnapshotsPrefix)
	if !found {
		return ref, "", false
	}
	parts := strings.SplitN(s, "/", 3)
	if len(parts) != 3 {
		return ref, "", false
	}
	t, err := uuid.Parse(parts[0])
	if err != nil || t.String() != parts[0] {
		return ref, "", false
	}
	id, err := uuid.Parse(parts[1])
	if err != nil || id.String() != parts[1] {
		return ref, "", false
	}
	return SnapshotRef{Tenant: t, ID: id}, parts[2], true
}

// IsManifest reports whether rest (from ParseSnapshotKey) is the manifest.
func IsManifest(rest string) bool { return rest == manifestName }

// ShieldPrefix holds what file shields keep in storage besides blobs and audit
// records: each shield's list of the blobs it vouches for (files present, and lost
// files within their keep), which prune keeps live.
//
//	shield/<shield-id>/live.zst   sorted lower-case hex digests, one a line, zstd
const ShieldPrefix = "shield/"

const shieldLiveName = "live.zst"

// ShieldLiveKey is the key of one shield's live list.
func ShieldLiveKey(id string) string { return ShieldPrefix + id + "/" + shieldLiveName }

// IsShieldLiveKey reports whether key is a shield's live list.
func IsShieldLiveKey(key string) bool {
	rest, ok := strings.CutPrefix(key, ShieldPrefix)
	id, name, found := strings.Cut(rest, "/")
	return ok && found && id != "" && name == shieldLiveName
}
