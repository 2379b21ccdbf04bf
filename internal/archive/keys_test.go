package archive_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func TestPrefixesAndKeys(t *testing.T) {
	const (
		tp = "snapshots/6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11/"
		sp = tp + "0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d/"
	)
	tests := []struct {
		name, got, want string
	}{
		{"SnapshotsPrefix", archive.SnapshotsPrefix, "snapshots/"},
		{"BlobsPrefix", archive.BlobsPrefix, "blobs/sha256/"},
		{"AuditPrefix", archive.AuditPrefix, "audit/"},
		{"TenantPrefix", archive.TenantPrefix(tenantA), tp},
		{"SnapshotPrefix", archive.SnapshotPrefix(tenantA, snapA), sp},
		{"ManifestKey", archive.ManifestKey(tenantA, snapA), sp + "manifest.json"},
		{"TableKey", archive.TableKey(tenantA, snapA, "public", "call_logd_call_log"),
			sp + "tables/public.call_logd_call_log.copy.zst"},
		{"TableKey other tenant", archive.TableKey(tenantB, snapA, "public", "t"),
			"snapshots/a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d/0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d/tables/public.t.copy.zst"},
		{"TableKey other snapshot", archive.TableKey(tenantA, snapB, "public", "t"),
			tp + "0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7e/tables/public.t.copy.zst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	// Every snapshot key lies under its tenant's prefix, so listing a tenant finds them.
	for _, k := range []string{archive.SnapshotPrefix(tenantA, snapA), archive.ManifestKey(tenantA, snapA),
		archive.TableKey(tenantA, snapA, "s", "t")} {
		if got := strings.HasPrefix(k, archive.TenantPrefix(tenantA)); !got {
			t.Errorf("HasPrefix(%q, TenantPrefix): got %v, want %v", k, got, true)
		}
	}
}

func TestTableKeyEscaping(t *testing.T) {
	prefix := archive.SnapshotPrefix(tenantA, snapA) + "tables/"
	tests := []struct {
		name          string
		schema, table string
		want          string // the file name after tables/
	}{
		{"plain", "public", "call_logd_call_log", "public.call_logd_call_log.copy.zst"},
		{"slash", "a/b", "c/d", "a%2Fb.c%2Fd.copy.zst"},
		{"dot in schema", "a.b", "c", "a%2Eb.c.copy.zst"},
		{"dot in table", "a", "b.c", "a.b%2Ec.copy.zst"},
		{"dot dot", "..", ".", "%2E%2E.%2E.copy.zst"},
		{"percent", "100%", "%41", "100%25.%2541.copy.zst"},
		{"backslash", `back\slash`, `\`, "back%5Cslash.%5C.copy.zst"},
		{"NUL", "a\x00", "b", "a%00.b.copy.zst"},
		{"tab and newline", "t\tab", "new\nline\r", "t%09ab.new%0Aline%0D.copy.zst"},
		{"unit separator", "\x1f", "x", "%1F.x.copy.zst"},
		{"DEL", "del\x7f", "x", "del%7F.x.copy.zst"},
		{"space and quotes kept", `my schema`, `"Quoted" 'T'`, `my schema."Quoted" 'T'.copy.zst`},
		{"upper case kept", "Public", "CallLog", "Public.CallLog.copy.zst"},
		{"unicode kept", "données", "表_é", "données.表_é.copy.zst"},
		{"combining mark kept", "e\u0301", "x", "e\u0301.x.copy.zst"},
		{"emoji kept", "🐘", "📞", "🐘.📞.copy.zst"},
		{"C1 control kept", "a\u0085", "x", "a\u0085.x.copy.zst"},
		{"replacement char kept", "\ufffd", "x", "\ufffd.x.copy.zst"},
		{"invalid UTF-8 byte", "\xff", "x", "%FF.x.copy.zst"},
		{"invalid UTF-8 sequence", "a\xe2\x82", "\xc3", "a%E2%82.%C3.copy.zst"},
		{"empty", "", "", "..copy.zst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := archive.TableKey(tenantA, snapA, tt.schema, tt.table)
			if got, want := key, prefix+tt.want; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			name := strings.TrimPrefix(key, prefix)
			if got := strings.Count(name, "/"); got != 0 {
				t.Errorf("slashes in file name %q: got %v, want %v", name, got, 0)
			}
			if got := utf8.ValidString(key); !got {
				t.Errorf("utf8.ValidString(%q): got %v, want %v", key, got, true)
			}
			// Exactly one unescaped '.' separates schema from table before the suffix.
			if got := strings.Count(strings.TrimSuffix(name, ".copy.zst"), "."); got != 1 {
				t.Errorf("dots in %q: got %v, want %v", name, got, 1)
			}
			ref, rest, ok := archive.ParseSnapshotKey(key)
			if !ok || ref != (archive.SnapshotRef{Tenant: tenantA, ID: snapA}) || rest != "tables/"+tt.want {
				t.Errorf("ParseSnapshotKey: got %v %q %v, want %v %q %v", ref, rest, ok,
					archive.SnapshotRef{Tenant: tenantA, ID: snapA}, "tables/"+tt.want, true)
			}
		})
	}
}

// trickyIdents are identifiers whose escaped forms could collide under a careless scheme.
var trickyIdents = []string{
	"", "a", "b", "ab", "a.b", "a..b", ".a", "a.", ".", "..", "...",
	"%", "%%", "%2E", "%2e", "a%2Eb", "%25", "%2F", "%5C", "%00", "%FF", "%EF%BF%BD",
	"/", "a/b", "\\", "a\\b", "\x00", "\n", "\x1f", "\x7f", " ", "A",
	"\ufffd", "\xff", "\xfe", "\xef\xbf", "\xc3", "é", "e\u0301", "\u0085", "表",
	"public", "call_logd_call_log", "public.call_logd_call_log",
}

// TestTableKeyUnambiguous: two different (schema, table) pairs never give the same key.
func TestTableKeyUnambiguous(t *testing.T) {
	checkInjective := func(t *testing.T, names []string) {
		t.Helper()
		seen := make(map[string][2]string, len(names)*len(names))
		for _, s := range names {
			for _, tb := range names {
				k := archive.TableKey(tenantA, snapA, s, tb)
				if prev, dup := seen[k]; dup {
					t.Fatalf("TableKey(%q, %q) = TableKey(%q, %q) = %q: got a collision, want distinct keys",
						s, tb, prev[0], prev[1], k)
				}
				seen[k] = [2]string{s, tb}
			}
		}
	}
	t.Run("tricky names", func(t *testing.T) { checkInjective(t, trickyIdents) })
	t.Run("all short strings", func(t *testing.T) {
		// Every concatenation of up to two pieces of this alphabet: escapes, separators,
		// and the bytes of U+FFFD both as valid and as broken UTF-8.
		alphabet := []string{"a", ".", "%", "2E", "25", "/", "\\", "\n", "\xff", "\xef", "\xbf\xbd", "\ufffd", "F"}
		names := []string{""}
		for _, x := range alphabet {
			names = append(names, x)
			for _, y := range alphabet {
				names = append(names, x+y)
			}
		}
		slices.Sort(names) // "\xef"+"\xbf\xbd" is "\ufffd": the same name twice is not a collision
		checkInjective(t, slices.Compact(names))
	})
	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		pieces := []byte("a.%/\\\n\x00\x7f\xff\xc3\xa9E2")
		gen := func() string {
			b := make([]byte, r.IntN(6))
			for i := range b {
				b[i] = pieces[r.IntN(len(pieces))]
			}
			return string(b)
		}
		seen := make(map[string][2]string)
		for range 20000 {
			s, tb := gen(), gen()
			k := archive.TableKey(tenantA, snapA, s, tb)
			if prev, dup := seen[k]; dup && prev != [2]string{s, tb} {
				t.Fatalf("TableKey(%q, %q) = TableKey(%q, %q): got a collision, want distinct keys", s, tb, prev[0], prev[1])
			}
			seen[k] = [2]string{s, tb}
		}
	})
}

func TestBlobKey(t *testing.T) {
	hello := sha256.Sum256([]byte("hello"))
	empty := sha256.Sum256(nil)
	var zero, ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	tests := []struct {
		name string
		sum  [32]byte
		want string
	}{
		{"hello", hello, "blobs/sha256/2c/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zst"},
		{"empty content", empty, "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.zst"},
		{"zero", zero, "blobs/sha256/00/" + strings.Repeat("0", 64) + ".zst"},
		{"all ones", ones, "blobs/sha256/ff/" + strings.Repeat("f", 64) + ".zst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := archive.BlobKey(tt.sum); got != tt.want {
				t.Errorf("BlobKey: got %v, want %v", got, tt.want)
			}
			h := strings.TrimSuffix(tt.want[len("blobs/sha256/xx/"):], ".zst")
			got, err := archive.BlobKeyHex(h)
			if err != nil || got != tt.want {
				t.Errorf("BlobKeyHex: got %v, %v, want %v, nil", got, err, tt.want)
			}
			sum, ok := archive.ParseBlobKey(tt.want)
			if !ok || sum != tt.sum {
				t.Errorf("ParseBlobKey: got %x, %v, want %x, %v", sum, ok, tt.sum, true)
			}
		})
	}
}

func TestBlobKeyHexRejects(t *testing.T) {
	h := sumHex("hello")
	tests := []struct{ name, hex string }{
		{"empty", ""},
		{"short", h[:62]},
		{"odd length", h[:63]},
		{"long by one digit", h + "0"},
		{"33 bytes", h + "00"},
		{"non-hex", "zz" + h[2:]},
		{"upper case", strings.ToUpper(h)},
		{"mixed case", "2C" + h[2:]},
		{"0x prefix", "0x" + h[2:]},
		{"space", " " + h[1:]},
		{"trailing newline", h[:62] + "0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := archive.BlobKeyHex(tt.hex)
			if err == nil || got != "" {
				t.Errorf("BlobKeyHex(%q): got %q, %v, want \"\", an error", tt.hex, got, err)
			}
		})
	}
}

func TestParseBlobKeyRejects(t *testing.T) {
	h := sumHex("hello")
	good := "blobs/sha256/2c/" + h + ".zst"
	if _, ok := archive.ParseBlobKey(good); !ok {
		t.Fatalf("ParseBlobKey(%q): got %v, want %v", good, ok, true)
	}
	tests := []struct{ name, key string }{
		{"empty", ""},
		{"prefix only", "blobs/sha256/"},
		{"wrong algorithm", "blobs/sha1/2c/" + h + ".zst"},
		{"wrong prefix", "blob/sha256/2c/" + h + ".zst"},
		{"leading slash", "/" + good},
		{"snapshot key", archive.ManifestKey(tenantA, snapA)},
		{"wrong dir", "blobs/sha256/2d/" + h + ".zst"},
		{"dir too long", "blobs/sha256/2cf/" + h + ".zst"},
		{"dir too short", "blobs/sha256/2/" + h + ".zst"},
		{"no dir", "blobs/sha256/" + h + ".zst"},
		{"empty dir", "blobs/sha256//" + h + ".zst"},
		{"extra dir", "blobs/sha256/2c/x/" + h + ".zst"},
		{"short hex", "blobs/sha256/2c/" + h[:62] + ".zst"},
		{"long hex", "blobs/sha256/2c/" + h + "00.zst"},
		{"upper case", "blobs/sha256/2C/" + strings.ToUpper(h) + ".zst"},
		{"upper case hex, lower dir", "blobs/sha256/2c/" + "2c" + strings.ToUpper(h[2:]) + ".zst"},
		{"non-hex", "blobs/sha256/zz/zz" + h[2:] + ".zst"},
		{"missing suffix", "blobs/sha256/2c/" + h},
		{"wrong suffix", "blobs/sha256/2c/" + h + ".gz"},
		{"double suffix", "blobs/sha256/2c/" + h + ".zst.zst"},
		{"suffix only", "blobs/sha256/2c/.zst"},
		{"trailing slash", good + "/"},
		{"temporary name", good + ".tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, ok := archive.ParseBlobKey(tt.key)
			if ok || sum != ([32]byte{}) {
				t.Errorf("ParseBlobKey(%q): got %x, %v, want zero, %v", tt.key, sum, ok, false)
			}
		})
	}
}

func TestAuditKey(t *testing.T) {
	id := uuid.MustParse("3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d")
	plus11 := time.FixedZone("+11", 11*3600)
	minus5 := time.FixedZone("-05", -5*3600)
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"UTC", time.Date(2026, 3, 9, 14, 5, 7, 123456789, time.UTC),
			"audit/2026/03/09/140507.123456789Z-3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d.json"},
		{"whole second keeps nine digits", time.Date(2026, 3, 9, 14, 5, 7, 0, time.UTC),
			"audit/2026/03/09/140507.000000000Z-3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d.json"},
		{"east of UTC is the previous UTC day", time.Date(2026, 3, 10, 1, 5, 7, 1, plus11),
			"audit/2026/03/09/140507.000000001Z-3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d.json"},
		{"west of UTC is the next UTC day", time.Date(2026, 12, 31, 22, 0, 0, 0, minus5),
			"audit/2027/01/01/030000.000000000Z-3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d.json"},
		{"year before 1000 is padded", time.Date(999, 1, 2, 3, 4, 5, 6, time.UTC),
			"audit/0999/01/02/030405.000000006Z-3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := archive.AuditKey(tt.at, id); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAuditKeySortsByTime: listing audit/ in key order is listing records in time order,
// whatever zone the times were taken in.
func TestAuditKeySortsByTime(t *testing.T) {
	id := uuid.MustParse("ffffffff-ffff-4fff-bfff-ffffffffffff") // the largest id: ties on time must not matter
	low := uuid.MustParse("00000000-0000-4000-8000-000000000000")
	plus14 := time.FixedZone("+14", 14*3600)
	minus12 := time.FixedZone("-12", -12*3600)
	base := time.Date(2026, 3, 9, 23, 59, 59, 999999999, time.UTC)
	times := []time.Time{
		time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 13, 0, 0, 0, plus14), // 2025-12-31T23:00Z: local date is later, UTC earlier
		time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		base.Add(-time.Second),
		base.Add(-100 * time.Millisecond),
		base.Add(-10 * time.Nanosecond),
		base.Add(-time.Nanosecond),
		base,
		base.Add(time.Nanosecond), // next day
		base.Add(time.Nanosecond).Add(-12 * time.Hour).In(minus12),
		time.Date(2026, 3, 9, 12, 0, 0, 5, minus12), // 2026-03-10T00:00:00.000000005Z: local date is the 9th
		time.Date(2026, 3, 10, 9, 59, 59, 0, time.UTC).In(plus14),
		time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).In(time.Local),
		time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	type rec struct {
		at  time.Time
		key string
	}
	recs := make([]rec, 0, 2*len(times))
	for i, at := range times {
		recs = append(recs, rec{at, archive.AuditKey(at, id)})
		if i%3 == 0 { // an earlier instant with a smaller id, to show time dominates id
			recs = append(recs, rec{at.Add(-time.Nanosecond), archive.AuditKey(at.Add(-time.Nanosecond), low)})
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		r.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		byKey := slices.Clone(recs)
		slices.SortStableFunc(byKey, func(a, b rec) int { return strings.Compare(a.key, b.key) })
		for i := 1; i < len(byKey); i++ {
			if byKey[i-1].at.After(byKey[i].at) {
				t.Fatalf("round %d: %s sorts before %s: got %v before %v, want time order",
					round, byKey[i-1].key, byKey[i].key, byKey[i-1].at.UTC(), byKey[i].at.UTC())
			}
		}
	}
}

func TestParseSnapshotKey(t *testing.T) {
	ref := archive.SnapshotRef{Tenant: tenantA, ID: snapA}
	tests := []struct {
		name     string
		key      string
		rest     string
		manifest bool
	}{
		{"manifest", archive.ManifestKey(tenantA, snapA), "manifest.json", true},
		{"table", archive.TableKey(tenantA, snapA, "public", "call_logd_call_log"),
			"tables/public.call_logd_call_log.copy.zst", false},
		{"escaped table", archive.TableKey(tenantA, snapA, "a/b", "c.d"), "tables/a%2Fb.c%2Ed.copy.zst", false},
		{"snapshot prefix itself", archive.SnapshotPrefix(tenantA, snapA), "", false},
		{"deeper rest kept whole", archive.SnapshotPrefix(tenantA, snapA) + "a/b/c", "a/b/c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, ok := archive.ParseSnapshotKey(tt.key)
			if !ok || got != ref || rest != tt.rest {
				t.Errorf("got %v %q %v, want %v %q %v", got, rest, ok, ref, tt.rest, true)
			}
			if got := archive.IsManifest(rest); got != tt.manifest {
				t.Errorf("IsManifest(%q): got %v, want %v", rest, got, tt.manifest)
			}
		})
	}
}

func TestParseSnapshotKeyRejects(t *testing.T) {
	ts, is := tenantA.String(), snapA.String()
	tests := []struct{ name, key string }{
		{"empty", ""},
		{"prefix only", "snapshots/"},
		{"tenant prefix", archive.TenantPrefix(tenantA)},
		{"tenant without slash", "snapshots/" + ts},
		{"snapshot without slash", "snapshots/" + ts + "/" + is},
		{"wrong prefix", "snapshot/" + ts + "/" + is + "/manifest.json"},
		{"leading slash", "/" + archive.ManifestKey(tenantA, snapA)},
		{"blob key", archive.BlobKey([32]byte{})},
		{"audit key", archive.AuditKey(time.Unix(0, 0), snapA)},
		{"empty tenant", "snapshots//" + is + "/manifest.json"},
		{"empty id", "snapshots/" + ts + "//manifest.json"},
		{"swapped order missing part", "snapshots/" + is + "/manifest.json"},
		{"upper-case tenant", "snapshots/" + strings.ToUpper(ts) + "/" + is + "/manifest.json"},
		{"upper-case id", "snapshots/" + ts + "/" + strings.ToUpper(is) + "/manifest.json"},
		{"braced tenant", "snapshots/{" + ts + "}/" + is + "/manifest.json"},
		{"braced id", "snapshots/" + ts + "/{" + is + "}/manifest.json"},
		{"urn id", "snapshots/" + ts + "/urn:uuid:" + is + "/manifest.json"},
		{"no hyphens", "snapshots/" + strings.ReplaceAll(ts, "-", "") + "/" + is + "/manifest.json"},
		{"short uuid", "snapshots/" + ts[:35] + "/" + is + "/manifest.json"},
		{"not a uuid", "snapshots/tenant/" + is + "/manifest.json"},
		{"space", "snapshots/ " + ts + "/" + is + "/manifest.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, rest, ok := archive.ParseSnapshotKey(tt.key)
			if ok || ref != (archive.SnapshotRef{}) || rest != "" {
				t.Errorf("ParseSnapshotKey(%q): got %v %q %v, want zero \"\" %v", tt.key, ref, rest, ok, false)
			}
		})
	}
}

func TestIsManifest(t *testing.T) {
	tests := []struct {
		rest string
		want bool
	}{
		{"manifest.json", true},
		{"", false},
		{"Manifest.json", false},
		{"manifest.json/", false},
		{"manifest.json.tmp", false},
		{"/manifest.json", false},
		{"tables/manifest.json", false},
		{"manifest", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.rest), func(t *testing.T) {
			if got := archive.IsManifest(tt.rest); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
