package restore

import (
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/profile"
)

// TestFileSource_Place: where each recorded path goes, with and without
// --files-root, and which paths are refused, for roots of every shape the
// slicing in place must get right (the root "/", a root written unclean).
func TestFileSource_Place(t *testing.T) {
	tenant := uuid.MustParse("6f1c2c4e-0000-4000-8000-000000000001")
	rec := profile.TableName{Schema: "public", Table: "rec"}
	cases := []struct {
		name       string
		root       string
		perTenant  bool
		filesRoot  string
		path       string
		wantRoot   string
		wantTarget string
		wantProb   bool
	}{
		{name: "in place", root: "/var/rec/", path: "/var/rec/a/b.wav", wantRoot: "/var/rec", wantTarget: "/var/rec/a/b.wav"},
		{name: "unclean path", root: "/var/rec", path: "/var/rec/a/./b.wav", wantRoot: "/var/rec", wantTarget: "/var/rec/a/b.wav"},
		{name: "files root", root: "/var/rec", filesRoot: "/srv/x/", path: "/var/rec/a/b.wav", wantRoot: "/srv/x", wantTarget: "/srv/x/a/b.wav"},
		{name: "root slash", root: "/", filesRoot: "/srv/x", path: "/a/b.wav", wantRoot: "/srv/x", wantTarget: "/srv/x/a/b.wav"},
		{name: "files root slash", root: "/var/rec", filesRoot: "/", path: "/var/rec/a/b.wav", wantRoot: "/", wantTarget: "/a/b.wav"},
		{name: "sibling prefix", root: "/var/rec", path: "/var/recx/b.wav", wantProb: true},
		{name: "the root itself", root: "/var/rec", path: "/var/rec", wantProb: true},
		{name: "leaves by dots", root: "/var/rec", path: "/var/rec/../etc/passwd", wantProb: true},
		{name: "relative", root: "/var/rec", path: "var/rec/b.wav", wantProb: true},
		{name: "per tenant", root: "/var/rec", perTenant: true, filesRoot: "/srv", path: "/var/rec/" + tenant.String() + "/m/b.wav",
			wantRoot: "/srv", wantTarget: "/srv/" + tenant.String() + "/m/b.wav"},
		{name: "another tenant's", root: "/var/rec", perTenant: true, path: "/var/rec/" + uuid.NewString() + "/b.wav", wantProb: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Files: []profile.FileColumn{{Table: rec, Column: "path", Root: c.root, PerTenant: c.perTenant}}, FilesRoot: c.filesRoot}
			s := newFileSource(nil, &archive.Manifest{Tenant: tenant}, nil, o)
			rf, prob, err := s.place(archive.File{Table: "public.rec", Column: "path", Path: c.path})
			if err != nil {
				t.Fatal(err)
			}
			if (prob != "") != c.wantProb {
				t.Fatalf("problem %q, want one: %v", prob, c.wantProb)
			}
			if !c.wantProb && (rf.root != c.wantRoot || rf.target != c.wantTarget) {
				t.Fatalf("root %q target %q, want %q %q", rf.root, rf.target, c.wantRoot, c.wantTarget)
			}
		})
	}
	t.Run("no root", func(t *testing.T) {
		s := newFileSource(nil, &archive.Manifest{Tenant: tenant}, nil, Options{})
		rf, prob, err := s.place(archive.File{Table: "public.rec", Column: "path", Path: "/var/rec/b.wav"})
		if err != nil || prob != "" || rf.noRoot == "" {
			t.Fatalf("noRoot %q, problem %q, err %v: want a file with nowhere to go", rf.noRoot, prob, err)
		}
	})
}
