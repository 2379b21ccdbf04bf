// Package layers states which package of purgeguard may import which, and checks a
// source tree against it. The rule is the house plan: every arrow points down,
//
//	cmd → {guard, undo} → {snapshot, restore, shield, fence} → internal foundations → {storage, policy, profile}
//
// and no product package imports the development tools under internal/devtools.
// Test files are not product: they may import anything.
package layers

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Module is purgeguard's module path.
const Module = "github.com/purgeguard/purgeguard"

// rank orders the product's rooms: a package may import only packages of a lower
// rank, the engines of rank 2 not each other, and the orchestrators of rank 3
// (guard runs a purge, undo reverses one) not each other.
func rank(pkg string) (int, bool) {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, Module), "/")
	top, _, _ := strings.Cut(rel, "/")
	switch {
	case rel == "internal/devtools" || strings.HasPrefix(rel, "internal/devtools/"):
		return 0, false // not product
	case top == "storage", top == "policy", top == "profile":
		return 0, true
	case top == "internal":
		return 1, true
	case top == "snapshot", top == "restore", top == "shield", top == "fence":
		return 2, true
	case top == "guard", top == "undo":
		return 3, true
	case top == "cmd":
		return 4, true
	case rel == "testdata":
		return 0, true // embedded fixtures: data, no logic
	}
	return 0, false
}

// thirdParty lists, for the bottom packages, the only modules outside the standard
// library they may use: they must stay small enough for anyone to import.
var thirdParty = map[string][]string{
	"storage": {"github.com/minio/minio-go/v7"},
	"policy":  {"github.com/google/uuid"},
	"profile": {"github.com/jackc/pgx/v5"},
}

// Check returns why pkg may not import imp, or "" when it may.
func Check(pkg, imp string) string {
	from, product := rank(pkg)
	if !product {
		return ""
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, Module), "/")
	top, _, _ := strings.Cut(rel, "/")
	if !strings.HasPrefix(imp, Module+"/") && imp != Module {
		allowed, limited := thirdParty[top]
		if !limited || isStd(imp) || slices.ContainsFunc(allowed, func(m string) bool { return imp == m || strings.HasPrefix(imp, m+"/") }) {
			return ""
		}
		return fmt.Sprintf("%s may import only the standard library and %s", top, strings.Join(allowed, ", "))
	}
	irel := strings.TrimPrefix(imp, Module+"/")
	if irel == "internal/devtools" || strings.HasPrefix(irel, "internal/devtools/") {
		return "the product never imports the development tools"
	}
	if top == "storage" && strings.HasPrefix(irel, "storage") {
		return "" // storage/storagetest is storage's own suite
	}
	to, _ := rank(imp)
	itop, _, _ := strings.Cut(irel, "/")
	switch {
	case to > from:
		return fmt.Sprintf("%s (rank %d) imports %s (rank %d): arrows point down", top, from, itop, to)
	case to == from && from == 2 && itop != top:
		return fmt.Sprintf("the engines stay apart: %s imports %s", top, itop)
	case to == from && from == 3 && itop != top:
		return fmt.Sprintf("the orchestrators stay apart: %s imports %s", top, itop)
	case to == from && from == 0 && itop != top:
		return fmt.Sprintf("the bottom packages stay apart: %s imports %s", top, itop)
	}
	return ""
}

func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// Violation is one import against the plan.
type Violation struct {
	File, Package, Import, Why string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s imports %s: %s", v.File, v.Package, v.Import, v.Why)
}

// Scan checks every non-test Go file under root, the module's directory.
func Scan(root string) ([]Violation, error) {
	var out []Violation
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" && filepath.Dir(path) != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := Module
		if rel != "." {
			pkg += "/" + filepath.ToSlash(rel)
		}
		for _, is := range f.Imports {
			imp := strings.Trim(is.Path.Value, `"`)
			if why := Check(pkg, imp); why != "" {
				out = append(out, Violation{File: path, Package: pkg, Import: imp, Why: why})
			}
		}
		return nil
	})
	return out, err
}

// ModuleRoot finds the directory holding go.mod, from dir upward.
func ModuleRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("layers: no go.mod above %s", dir)
		}
		dir = parent
	}
}
