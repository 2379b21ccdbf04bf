package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// order sorts g.Tables parents first, so that a restore loading them in turn never
// inserts a row before the row it references. A self reference is no constraint on
// the order: foreign keys are checked at the end of the statement loading the table.
// A cycle is broken by one of its foreign keys whose columns are all nullable.
func (g *Graph) order() error {
	nodes := make([]Name, len(g.Tables))
	for i, t := range g.Tables {
		nodes[i] = t.Name
	}
	slices.SortFunc(nodes, compareNames)
	broken := map[int]bool{}
	edges := func() map[Name][]Name {
		e := map[Name][]Name{}
		for i, fk := range g.FKs {
			if fk.Child != fk.Parent && !broken[i] && !slices.Contains(e[fk.Child], fk.Parent) {
				e[fk.Child] = append(e[fk.Child], fk.Parent)
			}
		}
		return e
	}
	for {
		found := false
		for _, comp := range components(nodes, edges()) {
			if len(comp) < 2 {
				continue
			}
			found = true
			i := g.breakable(comp, broken)
			if i < 0 {
				s := make([]string, len(comp))
				for j, n := range comp {
					s[j] = n.String()
				}
				return fmt.Errorf("catalog: foreign key cycle through %s has no nullable foreign key to break it: %w",
					strings.Join(s, ", "), ErrUnsupported)
			}
			broken[i] = true
			g.Cycles = append(g.Cycles, Cycle{Tables: comp, Break: g.FKs[i]})
		}
		if !found {
			break
		}
	}

	// Kahn's algorithm; among tables ready to load, the root goes first, then by name.
	parents := edges()
	loaded := map[Name]bool{}
	byName := map[Name]*Table{}
	for _, t := range g.Tables {
		byName[t.Name] = t
	}
	sorted := make([]*Table, 0, len(nodes))
	for len(sorted) < len(nodes) {
		next := -1
		for i, n := range nodes {
			if loaded[n] || slices.ContainsFunc(parents[n], func(p Name) bool { return !loaded[p] }) {
				continue
			}
			if next < 0 || n == g.Root {
				next = i
			}
			if n == g.Root {
				break
			}
		}
		if next < 0 {
			return fmt.Errorf("catalog: load order: cycle left unbroken (bug)")
		}
		loaded[nodes[next]] = true
		sorted = append(sorted, byName[nodes[next]])
	}
	g.Tables = sorted
	return nil
}

// breakable returns the index in g.FKs of the foreign key that breaks a cycle within
// comp: one whose columns may all be NULL, preferring those whose ON DELETE already
// nulls them, then the first by child and constraint name. -1 if there is none.
func (g *Graph) breakable(comp []Name, broken map[int]bool) int {
	best := -1
	score := func(fk FK) int {
		if fk.OnDelete == OnDeleteSetNull || fk.OnDelete == OnDeleteSetDefault {
			return 0
		}
		return 1
	}
	for i, fk := range g.FKs {
		if broken[i] || fk.Child == fk.Parent || !slices.Contains(comp, fk.Child) || !slices.Contains(comp, fk.Parent) {
			continue
		}
		if !g.nullable(fk) {
			continue
		}
		if best < 0 || cmp.Or(cmp.Compare(score(fk), score(g.FKs[best])), compareFKs(fk, g.FKs[best])) < 0 {
			best = i
		}
	}
	return best
}

func (g *Graph) nullable(fk FK) bool {
	t := g.Table(fk.Child)
	if t == nil {
		return false
	}
	for _, name := range fk.Columns {
		if c := t.Column(name); c == nil || c.NotNull {
			return false
		}
	}
	return true
}

// components returns the strongly connected components of a directed graph (Tarjan),
// each sorted by name, in a deterministic order for a given input.
func components(nodes []Name, edges map[Name][]Name) [][]Name {
	index := map[Name]int{}
	low := map[Name]int{}
	onStack := map[Name]bool{}
	var stack []Name
	var comps [][]Name
	var visit func(n Name)
	visit = func(n Name) {
		index[n] = len(index)
		low[n] = index[n]
		stack = append(stack, n)
		onStack[n] = true
		next := slices.Clone(edges[n])
		slices.SortFunc(next, compareNames)
		for _, m := range next {
			if _, seen := index[m]; !seen {
				visit(m)
				low[n] = min(low[n], low[m])
			} else if onStack[m] {
				low[n] = min(low[n], index[m])
			}
		}
		if low[n] != index[n] {
			return
		}
		var comp []Name
		for {
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[m] = false
			comp = append(comp, m)
			if m == n {
				break
			}
		}
		slices.SortFunc(comp, compareNames)
		comps = append(comps, comp)
	}
	for _, n := range nodes {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	return comps
}
