package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
)

// tree is a directory missing from its files root when the run first stages a file
// under it: the run makes it whole in its staging directory (its mirror, with the
// recorded modes and owners) and creates its files there under their own names,
// and the commit places them all with one rename. A restore after a purge finds a
// tenant's directories gone; a rename per file cost about as much as writing it
// (850k recordings in one directory: 18 s of renames after the rows committed).
type tree struct {
	root   place.Root
	real   string // the missing directory, in place
	mirror string // its copy: <stage>/d<n>
	placed bool   // renamed into place by the commit
}

// placement is where the files of one directory are staged.
type placement struct {
	// stage is the run's staging directory, for a directory that exists: files get
	// temporary names there and are renamed one by one. nil: beside their targets.
	stage *place.Dir
	// tree, for a missing directory: its files go under their own names into
	// mirrorDir, the directory's copy in the tree's mirror.
	tree      *tree
	mirrorDir string
}

// treeFor returns the placement in a tree of dir's files when dir is missing and a
// rename from the run's staging directory can place it; ok false otherwise (dir
// exists, or its deepest existing ancestor is on another mount). The caller holds
// fr.mu.
func (fr *fileRun) treeFor(root place.Root, j *journal, dir string) (p placement, ok bool, err error) {
	top := ""
	for d := dir; d != root.Dir() && archive.Within(root.Dir(), d); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return p, false, err
		}
		top = d
	}
	if top == "" {
		return p, false, nil
	}
	stage, err := fr.stagingDir(root, j)
	if err != nil {
		return p, false, err
	}
	t := fr.trees[top]
	if t == nil {
		same, err := onMountOf(root, stage, filepath.Dir(top))
		if err != nil {
			return p, false, err
		}
		if !same {
			return p, false, nil
		}
		t = &tree{root: root, real: top, mirror: filepath.Join(stage.Path(), fmt.Sprintf("d%d", len(fr.trees)+1))}
		fr.trees[top], fr.mirrors[t.mirror] = t, t
	}
	rel, err := filepath.Rel(top, dir)
	if err != nil {
		return p, false, err
	}
	mirrorDir := filepath.Join(t.mirror, rel)
	// Each directory of the copy gets what MkdirAll would give it in place: its
	// recorded mode and owner, else its parent's (the real parent's, for the top).
	_, err = place.NewRoot(stage.Path()).MkdirAll(mirrorDir, func(m string) (place.DirAttr, bool) {
		r, _ := filepath.Rel(t.mirror, m)
		if a, ok := fr.dirAttr(filepath.Join(top, r)); ok {
			return a, true
		}
		if m != t.mirror {
			return place.DirAttr{}, false
		}
		fi, err := os.Stat(filepath.Dir(top))
		if err != nil {
			return place.DirAttr{}, false
		}
		return place.DirAttr{Mode: fi.Mode().Perm(), Owner: place.OwnerOf(fi, nil)}, true
	})
	if err != nil {
		return p, false, fmt.Errorf("restore: directory %s: %w", dir, err)
	}
	return placement{tree: t, mirrorDir: mirrorDir}, true, nil
}

// treeOf returns the tree a staged file was created in (nil: none), checking, for
// a tree not placed whole, that the file lies in the tree's mirror where its
// target lies in the tree (it is then renamed by those paths).
func (fr *fileRun) treeOf(s stagedFile) (*tree, error) {
	stage := fr.stages[s.Root]
	if stage == nil || !strings.HasPrefix(s.Temp, stage.Path()+string(filepath.Separator)) || filepath.Dir(s.Temp) == stage.Path() {
		return nil, nil
	}
	first, _, _ := strings.Cut(s.Temp[len(stage.Path())+1:], string(filepath.Separator))
	t := fr.mirrors[filepath.Join(stage.Path(), first)]
	if t == nil {
		return nil, fmt.Errorf("staged at %s, in no directory of the run's", s.Temp)
	}
	if t.placed {
		return t, nil // placed whole: nothing is done with the file by its paths
	}
	r1, err1 := filepath.Rel(t.mirror, s.Temp)
	r2, err2 := filepath.Rel(t.real, s.Target)
	if err1 != nil || err2 != nil || r1 != r2 || !archive.Within(t.real, s.Target) {
		return nil, fmt.Errorf("staged at %s, not where its target %s lies in %s", s.Temp, s.Target, t.real)
	}
	return t, nil
}

// placeTrees renames every tree into place, without replacing what appeared there
// meanwhile (the files of such a tree are then renamed one by one, by commit). It
// returns the directories renamed into, to sync.
func (fr *fileRun) placeTrees() []string {
	var into []string
	for _, t := range fr.trees {
		stage := fr.stages[t.root.Dir()]
		parent, err := t.root.OpenDir(filepath.Dir(t.real))
		if err == nil {
			err = parent.RenameFrom(stage, filepath.Base(t.mirror), filepath.Base(t.real), false)
			parent.Close()
		}
		if err != nil {
			fr.o.Log.Warn("directory not placed whole: its files are placed one by one", "dir", t.real, "err", err)
			continue
		}
		t.placed = true
		into = append(into, filepath.Dir(t.real))
	}
	return into
}
