package archive_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// FuzzParseSnapshotKey: never panics, and a key it accepts is canonical: rendering the
// parsed snapshot back gives the input.
func FuzzParseSnapshotKey(f *testing.F) {
	for _, s := range []string{
		"",
		"snapshots/",
		archive.ManifestKey(tenantA, snapA),
		archive.TableKey(tenantA, snapA, "public", "call_logd_call_log"),
		archive.TableKey(tenantA, snapA, "a/b", "c.d%"),
		archive.SnapshotPrefix(tenantA, snapA),
		archive.TenantPrefix(tenantA),
		"snapshots/" + strings.ToUpper(tenantA.String()) + "/" + snapA.String() + "/manifest.json",
		"snapshots/{" + tenantA.String() + "}/" + snapA.String() + "/manifest.json",
		"snapshots/urn:uuid:" + tenantA.String() + "/" + snapA.String() + "/x",
		"snapshots/" + strings.ReplaceAll(tenantA.String(), "-", "") + "/" + snapA.String() + "/x",
		archive.BlobKey([32]byte{1}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ref, rest, ok := archive.ParseSnapshotKey(key)
		if !ok {
			if ref != (archive.SnapshotRef{}) || rest != "" {
				t.Fatalf("ParseSnapshotKey(%q) refused: got %v %q, want zero values", key, ref, rest)
			}
			return
		}
		if got := archive.SnapshotPrefix(ref.Tenant, ref.ID) + rest; got != key {
			t.Fatalf("ParseSnapshotKey(%q) = %v %q: re-rendered got %q, want %q", key, ref, rest, got, key)
		}
		if archive.IsManifest(rest) {
			if got := archive.ManifestKey(ref.Tenant, ref.ID); got != key {
				t.Fatalf("ManifestKey: got %v, want %v", got, key)
			}
		}
	})
}

// FuzzParseBlobKey: never panics, and a key it accepts is canonical: BlobKey of the
// parsed digest gives the input, and so does BlobKeyHex of its hex.
func FuzzParseBlobKey(f *testing.F) {
	good := archive.BlobKey([32]byte{0x2c, 0xf2})
	for _, s := range []string{
		"",
		archive.BlobsPrefix,
		good,
		strings.ToUpper(good),
		strings.Replace(good, "/2c/", "/2C/", 1),
		archive.BlobsPrefix + strings.ToUpper(strings.TrimSuffix(good[len(archive.BlobsPrefix):], ".zst")) + ".zst",
		strings.TrimSuffix(good, ".zst"),
		good + ".zst",
		"blobs/sha256/2c/zz" + strings.Repeat("0", 62) + ".zst",
		archive.ManifestKey(tenantA, snapA),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		sum, ok := archive.ParseBlobKey(key)
		if !ok {
			if sum != ([32]byte{}) {
				t.Fatalf("ParseBlobKey(%q) refused: got %x, want zero", key, sum)
			}
			return
		}
		if got := archive.BlobKey(sum); got != key {
			t.Fatalf("ParseBlobKey(%q) = %x: re-rendered got %q, want %q", key, sum, got, key)
		}
		h := strings.TrimSuffix(key[len("blobs/sha256/xx/"):], ".zst")
		if got, err := archive.BlobKeyHex(h); err != nil || got != key {
			t.Fatalf("BlobKeyHex(%q): got %q, %v, want %q, nil", h, got, err, key)
		}
	})
}

// FuzzTableKey: two different (schema, table) pairs never give the same key, and the
// file name never holds a '/' (it would be a directory on a file store).
func FuzzTableKey(f *testing.F) {
	f.Add("public", "a.b", "public.a", "b")
	f.Add("a%2Eb", "c", "a.b", "c")
	f.Add("\xff", "x", "\ufffd", "x")
	f.Add("a/b", "c", "a", "b/c")
	f.Add("", "", ".", "")
	f.Fuzz(func(t *testing.T, s1, t1, s2, t2 string) {
		k1 := archive.TableKey(tenantA, snapA, s1, t1)
		k2 := archive.TableKey(tenantA, snapA, s2, t2)
		if (s1 != s2 || t1 != t2) && k1 == k2 {
			t.Fatalf("TableKey(%q, %q) and TableKey(%q, %q): got the same key %q, want distinct keys", s1, t1, s2, t2, k1)
		}
		name := strings.TrimPrefix(k1, archive.SnapshotPrefix(tenantA, snapA)+"tables/")
		if strings.Contains(name, "/") {
			t.Fatalf("TableKey(%q, %q): got file name %q with a '/', want none", s1, t1, name)
		}
	})
}

// FuzzParseDigestHex: ParseDigestHex takes exactly what decodes as 32 bytes of hex and
// encodes back to itself (lower case), and gives those bytes.
func FuzzParseDigestHex(f *testing.F) {
	f.Add(sumHex("a"))
	f.Add(strings.ToUpper(sumHex("a")))
	f.Add(sumHex("a")[:63] + "g")
	f.Add(sumHex("a") + "00")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := archive.ParseDigestHex(s)
		b, herr := hex.DecodeString(s)
		want := herr == nil && len(b) == 32 && hex.EncodeToString(b) == s
		if (err == nil) != want || want && !bytes.Equal(got[:], b) {
			t.Fatalf("ParseDigestHex(%q): got %x, %v; want accepted %v", s, got, err, want)
		}
	})
}
