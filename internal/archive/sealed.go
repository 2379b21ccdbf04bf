package archive

import (
	"strings"

	"github.com/google/uuid"
)

// The layout of an encrypted ("sealed") snapshot (issue 15). Its objects are where a
// plaintext snapshot's are, their bytes sealed with the tenant's key, except:
//
//	snapshots/<tenant>/<id>/manifest.age        the manifest, sealed
//	snapshots/<tenant>/<id>/envelope.jsonl      plaintext, written last: the commit marker
//	blobs/tenant/<tenant>/<aa>/<address>.zst    file contents, sealed, named by the
//	                                            tenant's keyed address of their SHA-256
//
// A snapshot is committed by its manifest.json (plaintext) or its envelope.jsonl
// (sealed), never both.
const (
	SealedBlobsPrefix = "blobs/tenant/"
	// SealedManifestName is a sealed manifest's name in its snapshot's prefix.
	SealedManifestName = "manifest.age"
)

// SealedManifestKey is the key of a sealed snapshot's manifest.
func SealedManifestKey(tenant, id uuid.UUID) string {
	return SnapshotPrefix(tenant, id) + SealedManifestName
}

// TenantBlobsPrefix is where a tenant's sealed blobs live.
func TenantBlobsPrefix(tenant uuid.UUID) string { return SealedBlobsPrefix + tenant.String() + "/" }

// SealedBlobKey is the key of a tenant's sealed blob at a keyed address (64 hex
// digits, as seal.TenantRecipient.BlobAddress gives it).
func SealedBlobKey(tenant uuid.UUID, address string) string {
	return TenantBlobsPrefix(tenant) + address[:2] + "/" + address + blobSuffix
}

// ParseSealedBlobKey returns the tenant of a sealed blob key.
func ParseSealedBlobKey(key string) (tenant uuid.UUID, ok bool) {
	rest, found := strings.CutPrefix(key, SealedBlobsPrefix)
	if !found {
		return uuid.Nil, false
	}
	dir, _, found := strings.Cut(rest, "/")
	t, err := uuid.Parse(dir)
	if !found || err != nil || t.String() != dir {
		return uuid.Nil, false
	}
	return t, true
}

// IsEnvelope reports whether rest (from ParseSnapshotKey) is a sealed snapshot's
// envelope, its commit marker.
func IsEnvelope(rest string) bool { return rest == envelopeName }

// IsCommit reports whether rest (from ParseSnapshotKey) commits its snapshot: the
// manifest of a plaintext one, the envelope of a sealed one.
func IsCommit(rest string) bool { return IsManifest(rest) || IsEnvelope(rest) }
