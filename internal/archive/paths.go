package archive

import (
	"path/filepath"
	"strings"
)

// Within reports whether path, both cleaned, is root or lies under it. It is purely
// lexical: callers resolve symbolic links first. Every file purgeguard reads or
// writes passes this test against its configured root.
func Within(root, path string) bool {
	root, path = filepath.Clean(root), filepath.Clean(path)
	if root == path {
		return true
	}
	if root == string(filepath.Separator) {
		return strings.HasPrefix(path, root)
	}
	// Without root+"/": a concatenation per call, for every file of a restore.
	return len(path) > len(root) && path[len(root)] == filepath.Separator && strings.HasPrefix(path, root)
}
