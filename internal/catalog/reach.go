package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// builder turns catalog rows into a Graph. Tables are keyed by the oid of the table a
// purge is read through: a partition counts as its partitioned table.
type builder struct {
	root     uint32
	extras   map[uint32][]string
	cons     []constraint
	rels     map[uint32]relation
	reached  map[uint32]string // reach kind
	deleting map[uint32]bool   // tables whose rows the purge deletes
	attrs    map[uint32][]attribute
	pks      map[uint32][]int16
}

var reachRank = map[string]int{
	ReachRoot: 5, ReachCascade: 4, ReachSetNull: 3, ReachSetDefault: 2, ReachExtra: 1,
}

var onDelete = map[string]string{
	"c": OnDeleteCascade, "n": OnDeleteSetNull, "d": OnDeleteSetDefault,
	"r": OnDeleteRestrict, "a": OnDeleteNoAction,
}

// reach follows foreign keys from the deleted tables until nothing new is reached.
// Restrict and no action keys are not followed: they make a purge fail, not spread.
func (b *builder) reach() error {
	b.reached = map[uint32]string{b.root: ReachRoot}
	b.deleting = map[uint32]bool{b.root: true}
	for oid := range b.extras {
		// The purge removes extra rows too, so what cascades from them is reached.
		b.deleting[oid] = true
		if b.reached[oid] == "" {
			b.reached[oid] = ReachExtra
		}
	}
	for changed := true; changed; {
		changed = false
		for _, c := range b.cons {
			if !b.deleting[c.parentTop] {
				continue
			}
			var kind string
			switch onDelete[c.action] {
			case OnDeleteCascade:
				kind = ReachCascade
			case OnDeleteSetNull:
				kind = ReachSetNull
			case OnDeleteSetDefault:
				kind = ReachSetDefault
			default:
				continue
			}
			if reachRank[kind] > reachRank[b.reached[c.childTop]] {
				b.reached[c.childTop] = kind
				changed = true
			}
			if kind == ReachCascade && !b.deleting[c.childTop] {
				b.deleting[c.childTop] = true
				changed = true
			}
		}
	}
	for _, c := range b.cons {
		if b.reached[c.childTop] == "" || b.reached[c.parentTop] == "" {
			continue
		}
		// A key of one partition acts on that partition's rows only; reading through
		// the partitioned table would select rows of its other partitions too.
		if c.child != c.childTop {
			return fmt.Errorf("catalog: foreign key %s on partition %s of %s: %w",
				c.name, b.rels[c.child].name, b.rels[c.child].topName, ErrUnsupported)
		}
		if c.parent != c.parentTop {
			return fmt.Errorf("catalog: foreign key %s of %s references partition %s of %s: %w",
				c.name, b.rels[c.child].name, b.rels[c.parent].name, b.rels[c.parent].topName, ErrUnsupported)
		}
	}
	return nil
}

// included returns the reached tables' oids, sorted.
func (b *builder) included() []uint32 {
	oids := make([]uint32, 0, len(b.reached))
	for oid := range b.reached {
		oids = append(oids, oid)
	}
	slices.Sort(oids)
	return oids
}

func (b *builder) graph(key, keyType string) (*Graph, error) {
	g := &Graph{Root: b.rels[b.root].name, Key: key, KeyType: keyType}
	tables := map[uint32]*Table{}
	for _, oid := range b.included() {
		r := b.rels[oid]
		t := &Table{Name: r.name, Reach: b.reached[oid], Partitioned: r.kind == "p", ExtraColumns: b.extras[oid]}
		for _, a := range b.attrs[oid] {
			if a.generated {
				continue
			}
			c := Column{Name: a.name, Type: a.typ, NotNull: a.notNull, HasDefault: a.hasDef}
			switch a.identity {
			case "a":
				c.Identity = IdentityAlways
			case "d":
				c.Identity = IdentityByDefault
			}
			t.Columns = append(t.Columns, c)
		}
		t.PrimaryKey = b.names(oid, b.pks[oid])
		t.NoPrimaryKey = len(t.PrimaryKey) == 0
		tables[oid] = t
		g.Tables = append(g.Tables, t)
	}

	changed := map[uint32]map[string]bool{}
	for _, c := range b.cons {
		if tables[c.childTop] == nil || tables[c.parentTop] == nil {
			continue
		}
		fk := FK{
			Constraint: c.name,
			Child:      tables[c.childTop].Name,
			Columns:    b.names(c.child, c.cols),
			Parent:     tables[c.parentTop].Name,
			RefColumns: b.names(c.parent, c.refCols),
			OnDelete:   onDelete[c.action],
		}
		if fk.OnDelete == OnDeleteSetNull || fk.OnDelete == OnDeleteSetDefault {
			fk.SetColumns = fk.Columns
			if len(c.setCols) > 0 {
				fk.SetColumns = b.names(c.child, c.setCols)
			}
		}
		g.FKs = append(g.FKs, fk)
		if !b.deleting[c.parentTop] || fk.OnDelete == OnDeleteRestrict || fk.OnDelete == OnDeleteNoAction {
			continue
		}
		t := tables[c.childTop]
		t.Via = append(t.Via, fk)
		if changed[c.childTop] == nil {
			changed[c.childTop] = map[string]bool{}
		}
		for _, col := range fk.SetColumns {
			changed[c.childTop][col] = true
		}
	}
	slices.SortFunc(g.FKs, compareFKs)
	for oid, t := range tables {
		slices.SortFunc(t.Via, compareFKs)
		for _, a := range b.attrs[oid] {
			if changed[oid][a.name] {
				t.Changed = append(t.Changed, a.name)
			}
		}
	}
	if err := g.checkCascadeCycles(); err != nil {
		return nil, err
	}
	return g, nil
}

// names maps attnums of table oid to column names.
func (b *builder) names(oid uint32, nums []int16) []string {
	if len(nums) == 0 {
		return nil
	}
	names := make([]string, len(nums))
	for i, n := range nums {
		if a := attrByNum(b.attrs[oid], n); a != nil {
			names[i] = a.name
		}
	}
	return names
}

// checkCascadeCycles refuses a cascade cycle through several tables: selecting its
// rows would need one recursive query over all of them, which Select does not write.
// A table cascading from itself is fine.
func (g *Graph) checkCascadeCycles() error {
	var nodes []Name
	edges := map[Name][]Name{}
	for _, t := range g.Tables {
		if !t.deletes() {
			continue
		}
		nodes = append(nodes, t.Name)
		for _, fk := range t.Via {
			if fk.OnDelete == OnDeleteCascade && fk.Parent != t.Name {
				edges[t.Name] = append(edges[t.Name], fk.Parent)
			}
		}
	}
	for _, comp := range components(nodes, edges) {
		if len(comp) > 1 {
			s := make([]string, len(comp))
			for i, n := range comp {
				s[i] = n.String()
			}
			return fmt.Errorf("catalog: cascade cycle through %s: %w", strings.Join(s, ", "), ErrUnsupported)
		}
	}
	return nil
}

func compareNames(a, b Name) int {
	return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Table, b.Table))
}

func compareFKs(a, b FK) int {
	return cmp.Or(compareNames(a.Child, b.Child), cmp.Compare(a.Constraint, b.Constraint), compareNames(a.Parent, b.Parent))
}
