package archive_test

import (
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		name       string
		root, path string
		want       bool
	}{
		{"root itself", "/a/b", "/a/b", true},
		{"root with trailing slash", "/a/b/", "/a/b", true},
		{"path with trailing slash", "/a/b", "/a/b/", true},
		{"root with dot", "/a/b/.", "/a/b", true},
		{"child", "/a/b", "/a/b/c", true},
		{"child under root with trailing slash", "/a/b/", "/a/b/c", true},
		{"grandchild", "/a/b", "/a/b/c/d.wav", true},
		{"child with trailing slash", "/a/b", "/a/b/c/", true},
		{"doubled slashes", "/a/b", "//a//b//c", true},
		{"dot segments", "/a/b", "/a/b/./c/.", true},
		{"dot dot staying inside", "/a/b", "/a/b/c/../d", true},
		{"dot dot back to root", "/a/b", "/a/b/c/..", true},
		{"out and back in", "/a/b", "/a/b/../b/c", true},
		{"dot dot in root", "/a/b/..", "/a/c", true},
		{"file name starting with dots", "/a/b", "/a/b/..c", true},
		{"sibling with common prefix", "/a/b", "/a/bc", false},
		{"sibling with common prefix and child", "/a/b", "/a/bc/d", false},
		{"sibling with common prefix, root with trailing slash", "/a/b/", "/a/bc", false},
		{"sibling with dot suffix", "/a/b", "/a/b.c", false},
		{"parent", "/a/b", "/a", false},
		{"filesystem root", "/a/b", "/", false},
		{"dot dot escapes", "/a/b", "/a/b/..", false},
		{"dot dot to sibling", "/a/b", "/a/b/../c", false},
		{"dot dot to sibling with common prefix", "/a/b", "/a/b/../bc", false},
		{"many dot dots", "/a/b", "/a/b/c/../../../etc/passwd", false},
		{"relative path, absolute root", "/a/b", "a/b/c", false},
		{"empty path", "/a/b", "", false},
		{"unrelated", "/var/lib/wazo/sounds/tenants", "/etc/passwd", false},
		{"root /: itself", "/", "/", true},
		{"root /: any absolute path", "/", "/a/b", true},
		{"root /: dot dot above / is /", "/", "/../etc", true},
		{"root /: relative path", "/", "a", false},
		{"root //", "//", "/a", true},
		{"relative root: child", "a", "a/b", true},
		{"relative root: sibling with common prefix", "a", "ab", false},
		{"relative root: dot dot", "a", "a/../b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := archive.Within(tt.root, tt.path); got != tt.want {
				t.Errorf("Within(%q, %q): got %v, want %v", tt.root, tt.path, got, tt.want)
			}
		})
	}
}
