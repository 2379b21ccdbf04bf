package catalog_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// A graph built by hand, as one decoded from a manifest would be: awkward names
// everywhere, a child cascading from the root and from itself, and a set-null table.
func awkwardGraph(keyType string) *catalog.Graph {
	root := name(`we"ird`, "org.x")
	child := name("s", `ta"ble.y`)
	other := name("public", "z")
	toRoot := catalog.FK{Constraint: "c1", Child: child, Columns: []string{"pa.rent"}, Parent: root, RefColumns: []string{`i"d`}, OnDelete: catalog.OnDeleteCascade}
	self := catalog.FK{Constraint: "c2", Child: child, Columns: []string{"up"}, Parent: child, RefColumns: []string{"n"}, OnDelete: catalog.OnDeleteCascade}
	setNull := catalog.FK{Constraint: "c3", Child: other, Columns: []string{"ref"}, Parent: child, RefColumns: []string{"n"},
		OnDelete: catalog.OnDeleteSetNull, SetColumns: []string{"ref"}}
	return &catalog.Graph{
		Root: root, Key: `i"d`, KeyType: keyType,
		Tables: []*catalog.Table{
			{Name: root, Reach: catalog.ReachRoot, Columns: []catalog.Column{{Name: `i"d`, Type: keyType}, {Name: "x; DROP TABLE y; --", Type: "text"}}},
			{Name: child, Reach: catalog.ReachCascade, Columns: []catalog.Column{{Name: "n", Type: "int"}, {Name: "pa.rent", Type: keyType}, {Name: "up", Type: "int"}},
				Via: []catalog.FK{toRoot, self}},
			{Name: other, Reach: catalog.ReachSetNull, Partitioned: true, Columns: []catalog.Column{{Name: "ref", Type: "int"}}, Changed: []string{"ref"},
				Via: []catalog.FK{setNull}},
		},
		FKs: []catalog.FK{toRoot, self, setNull},
	}
}

func TestSelectSQL(t *testing.T) {
	// Any spelling of the uuid renders the canonical lower-case form.
	tenant := uuid.MustParse("{AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE}")
	const lit = `'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'`
	closure := `WITH RECURSIVE d1 ("n") AS (SELECT t0."n" FROM ONLY "s"."ta""ble.y" t0 WHERE ` +
		`EXISTS (SELECT 1 FROM ONLY "we""ird"."org.x" t1 WHERE t1."i""d" = t0."pa.rent" AND t1."i""d" = ` + lit + `::uuid) ` +
		`UNION SELECT t0."n" FROM ONLY "s"."ta""ble.y" t0 JOIN d1 ON (d1."n" = t0."up")) `
	cases := []struct {
		name    string
		keyType string
		table   int
		cols    []string
		want    string
	}{
		{"root", "uuid", 0, nil,
			`SELECT t0."i""d", t0."x; DROP TABLE y; --" FROM ONLY "we""ird"."org.x" t0 WHERE t0."i""d" = ` + lit + `::uuid`},
		{"root, text key", "text", 0, nil,
			`SELECT t0."i""d", t0."x; DROP TABLE y; --" FROM ONLY "we""ird"."org.x" t0 WHERE t0."i""d" = ` + lit + `::text`},
		{"self reference", "uuid", 1, nil,
			closure + `SELECT t0."n", t0."pa.rent", t0."up" FROM ONLY "s"."ta""ble.y" t0 WHERE ` +
				`EXISTS (SELECT 1 FROM ONLY "we""ird"."org.x" t1 WHERE t1."i""d" = t0."pa.rent" AND t1."i""d" = ` + lit + `::uuid) ` +
				`OR EXISTS (SELECT 1 FROM d1 WHERE d1."n" = t0."up")`},
		{"set null, partitioned, chosen columns", "uuid", 2, []string{"ref", `odd"col`},
			closure + `SELECT t0."ref", t0."odd""col" FROM "public"."z" t0 WHERE ` +
				`EXISTS (SELECT 1 FROM ONLY "s"."ta""ble.y" t1 WHERE t1."n" = t0."ref" AND ` +
				`(EXISTS (SELECT 1 FROM ONLY "we""ird"."org.x" t2 WHERE t2."i""d" = t1."pa.rent" AND t2."i""d" = ` + lit + `::uuid) ` +
				`OR EXISTS (SELECT 1 FROM d1 WHERE d1."n" = t1."up")))`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := awkwardGraph(c.keyType)
			tb := g.Tables[c.table]
			var got string
			if c.cols == nil {
				got = g.Select(tb, tenant)
			} else {
				got = g.SelectColumns(tb, tenant, c.cols)
			}
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			if c.cols == nil && g.Select(tb, tenant) != got {
				t.Error("Select is not deterministic")
			}
			if strings.Contains(got, "AAAA") {
				t.Error("tenant not in canonical form")
			}
		})
	}
	if got := awkwardGraph("uuid").TenantLiteral(tenant); got != lit+"::uuid" {
		t.Errorf("TenantLiteral = %s", got)
	}
}

func TestName(t *testing.T) {
	cases := []struct {
		in       string
		want     catalog.Name
		err      bool
		sanitize string
	}{
		{"public.call_logd_tenant", name("public", "call_logd_tenant"), false, `"public"."call_logd_tenant"`},
		{"call_logd_tenant", name("public", "call_logd_tenant"), false, `"public"."call_logd_tenant"`},
		{"app.Org", name("app", "Org"), false, `"app"."Org"`},
		{`app.we"ird.name`, name("app", `we"ird.name`), false, `"app"."we""ird.name"`},
		{"", catalog.Name{}, true, ""},
		{".x", catalog.Name{}, true, ""},
		{"app.", catalog.Name{}, true, ""},
	}
	for _, c := range cases {
		got, err := catalog.ParseName(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseName(%q) = %+v, %v", c.in, got, err)
			continue
		}
		if err != nil {
			continue
		}
		if got.Sanitize() != c.sanitize {
			t.Errorf("%+v.Sanitize() = %s, want %s", got, got.Sanitize(), c.sanitize)
		}
		if c.in != "call_logd_tenant" && got.String() != c.in {
			t.Errorf("%+v.String() = %s, want %s", got, got.String(), c.in)
		}
	}
}
