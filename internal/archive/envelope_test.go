package archive_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func sampleEnvelope() (archive.Envelope, []archive.SealedObject) {
	tenant := uuid.MustParse("6d1e4a4e-8f2c-4f4a-9a57-1c2d3e4f5a6b")
	id := uuid.MustParse("01937b6e-0000-7000-8000-000000000001")
	e := archive.Envelope{Version: archive.EnvelopeVersion, Snapshot: id, Tenant: tenant,
		CreatedAt: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC), Kind: archive.ScopeTenant,
		Manifest: archive.SealedObject{Key: archive.ManifestKey(tenant, id), Size: 900, SHA256: strings.Repeat("ab", 32)}}
	objs := []archive.SealedObject{
		{Key: archive.TableKey(tenant, id, "public", "b"), Size: 20, SHA256: strings.Repeat("02", 32)},
		{Key: archive.TableKey(tenant, id, "public", "a"), Size: 10, SHA256: strings.Repeat("01", 32)},
		{Key: "blobs/x/aa/aa01", Size: 0, SHA256: strings.Repeat("03", 32)},
	}
	return e, objs
}

func TestEnvelope_RoundTrip(t *testing.T) {
	e, objs := sampleEnvelope()
	var buf bytes.Buffer
	if err := archive.EncodeEnvelope(&buf, e, objs); err != nil {
		t.Fatal(err)
	}
	var got []archive.SealedObject
	d, err := archive.DecodeEnvelope(&buf, func(o archive.SealedObject) error { got = append(got, o); return nil })
	if err != nil {
		t.Fatal(err)
	}
	e.Objects = 3
	if *d != e {
		t.Errorf("header: got %+v, want %+v", *d, e)
	}
	if len(got) != 3 || got[0].Key != "blobs/x/aa/aa01" || got[1] != objs[1] || got[2] != objs[0] {
		t.Errorf("objects: got %+v, want all three in key order", got)
	}
}

func TestEnvelope_NoSecretsOfTheTenant(t *testing.T) {
	// What a bucket reader learns from an envelope: ids, time, kind, keys, sizes,
	// digests of ciphertext. Not the reason, not a table's row count.
	e, objs := sampleEnvelope()
	var buf bytes.Buffer
	if err := archive.EncodeEnvelope(&buf, e, objs); err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"reason", "rows", "path", "columns"} {
		if strings.Contains(buf.String(), word) {
			t.Errorf("envelope holds %q:\n%s", word, buf.String())
		}
	}
}

func TestEncodeEnvelope_Refuses(t *testing.T) {
	e, objs := sampleEnvelope()
	tests := []struct {
		name string
		edit func(*archive.Envelope, *[]archive.SealedObject)
		want string
	}{
		{"duplicate", func(_ *archive.Envelope, o *[]archive.SealedObject) { *o = append(*o, (*o)[0]) }, "listed twice"},
		{"bad digest", func(_ *archive.Envelope, o *[]archive.SealedObject) { (*o)[1].SHA256 = "AB" }, "sha256"},
		{"negative size", func(_ *archive.Envelope, o *[]archive.SealedObject) { (*o)[1].Size = -1 }, "negative size"},
		{"no tenant", func(e *archive.Envelope, _ *[]archive.SealedObject) { e.Tenant = uuid.Nil }, "no tenant"},
		{"bad kind", func(e *archive.Envelope, _ *[]archive.SealedObject) { e.Kind = "all" }, "kind"},
		{"no manifest", func(e *archive.Envelope, _ *[]archive.SealedObject) { e.Manifest = archive.SealedObject{} }, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e2, o2 := e, append([]archive.SealedObject(nil), objs...)
			tt.edit(&e2, &o2)
			if err := archive.EncodeEnvelope(&bytes.Buffer{}, e2, o2); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeEnvelope_Refuses(t *testing.T) {
	e, objs := sampleEnvelope()
	var buf bytes.Buffer
	if err := archive.EncodeEnvelope(&buf, e, objs); err != nil {
		t.Fatal(err)
	}
	good := strings.SplitAfter(buf.String(), "\n") // header, 3 objects, ""
	tests := []struct {
		name string
		text string
		want string
	}{
		{"empty", "", "empty"},
		{"cut short", strings.Join(good[:3], ""), "lists 2 objects, says 3"},
		{"a line too many", strings.Join(good[:4], "") + good[3], "after its 3 objects"},
		{"reordered", good[0] + good[2] + good[1] + good[3], "not after"},
		{"duplicate", good[0] + good[1] + good[1] + good[2], "not after"},
		{"unknown field", strings.Replace(good[0], `"kind"`, `"colour":1,"kind"`, 1) + strings.Join(good[1:], ""), "unknown field"},
		{"newer format", `{"envelope_format":3,"whatever":true}` + "\n", "newer"},
		{"bad digest", good[0] + strings.Replace(good[1], `"sha256":"`, `"sha256":"x`, 1), "sha256"},
		{"two values on a line", good[0] + strings.TrimSuffix(good[1], "\n") + " {}\n", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := archive.DecodeEnvelope(strings.NewReader(tt.text), func(archive.SealedObject) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			if tt.name == "newer format" && !errors.Is(err, archive.ErrNewerFormat) {
				t.Errorf("got %v, want ErrNewerFormat", err)
			}
		})
	}
	stop := errors.New("stop")
	if _, err := archive.DecodeEnvelope(strings.NewReader(buf.String()), func(archive.SealedObject) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("an error from fn: got %v, want it returned", err)
	}
}
