package catalog_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/testdata"
)

// Both layouts of call-logd's tables: its migrations' (tenant_uuid 5th) and the
// scrambled one (tenant_uuid 23rd) load into the same graph, columns in their
// physical order.
func TestLoadCallLogd(t *testing.T) {
	for _, tt := range []struct {
		file   string
		tenant int // tenant_uuid's place in call_logd_call_log
	}{
		{"calllogd/schema.sql", 4},
		{"calllogd/schema_scrambled.sql", 22},
	} {
		t.Run(tt.file, func(t *testing.T) { testLoadCallLogd(t, tt.file, tt.tenant) })
	}
}

func testLoadCallLogd(t *testing.T, file string, tenantCol int) {
	ctx, conn := database(t, testdata.MustSQL(file))
	g := load(t, ctx, conn, catalog.Options{Root: name("public", "call_logd_tenant"), Key: "uuid"})

	want := map[string]string{
		"public.call_logd_tenant":                  catalog.ReachRoot,
		"public.call_logd_call_log":                catalog.ReachCascade,
		"public.call_logd_call_log_participant":    catalog.ReachCascade,
		"public.call_logd_call_log_destination":    catalog.ReachCascade,
		"public.call_logd_recording":               catalog.ReachCascade,
		"public.call_logd_export":                  catalog.ReachCascade,
		"public.call_logd_retention":               catalog.ReachCascade,
		"public.call_logd_voicemail_transcription": catalog.ReachCascade,
	}
	got := map[string]string{}
	for _, tb := range g.Tables {
		got[tb.Name.String()] = tb.Reach
	}
	if !maps.Equal(got, want) {
		t.Errorf("tables = %v, want %v", got, want)
	}
	for _, absent := range []string{"call_logd_config", "cel", "queue_log"} {
		if g.Table(name("public", absent)) != nil {
			t.Errorf("%s is in the graph", absent)
		}
	}
	checkOrder(t, g)
	if len(g.Cycles) != 0 {
		t.Errorf("cycles = %v, want none", g.Cycles)
	}
	if g.KeyType != "uuid" {
		t.Errorf("key type = %q, want uuid", g.KeyType)
	}

	cl := g.Table(name("public", "call_logd_call_log"))
	if cl == nil {
		t.Fatal("no call_log")
	}
	// Physical order, reached_voicemail last (added by ALTER TABLE).
	cols := cl.ColumnNames()
	if cols[0] != "id" || cols[tenantCol] != "tenant_uuid" || cols[len(cols)-1] != "reached_voicemail" || len(cols) != 26 {
		t.Errorf("call_log columns = %v", cols)
	}
	if id := cl.Column("id"); id == nil || !id.HasDefault || !id.NotNull || id.Type != "integer" {
		t.Errorf("call_log.id = %+v", id)
	}
	if c := cl.Column("source_name"); c == nil || c.Type != "character varying(255)" || c.NotNull {
		t.Errorf("call_log.source_name = %+v", c)
	}
	if !slices.Equal(cl.PrimaryKey, []string{"id"}) {
		t.Errorf("call_log primary key = %v", cl.PrimaryKey)
	}
	p := g.Table(name("public", "call_logd_call_log_participant"))
	if len(p.Via) != 1 || p.Via[0].Parent != cl.Name || !slices.Equal(p.Via[0].Columns, []string{"call_log_id"}) ||
		p.Via[0].OnDelete != catalog.OnDeleteCascade {
		t.Errorf("participant via = %+v", p.Via)
	}
	if c := p.Column("tags"); c == nil || c.Type != "character varying(128)[]" {
		t.Errorf("participant.tags = %+v", c)
	}
}

func TestLoadGraph(t *testing.T) {
	ctx, conn := graphDatabase(t)
	g := load(t, ctx, conn, graphOptions())

	type want struct {
		reach   string
		changed []string
		pk      []string
		via     []string
	}
	wants := map[string]want{
		"app.org":                   {catalog.ReachRoot, nil, []string{"id"}, nil},
		"app.project":               {catalog.ReachCascade, []string{"lead_member_id"}, []string{"id"}, []string{"project_lead_fk", "project_org_fk"}},
		"app.member":                {catalog.ReachCascade, nil, []string{"id"}, []string{"member_org_fk", "member_project_fk"}},
		"app.task":                  {catalog.ReachCascade, []string{"blocked_by_task_no", "assignee_id"}, []string{"project_id", "task_no"}, []string{"task_assignee_fk", "task_blocked_by_fk", "task_parent_fk", "task_project_fk"}},
		"app.comment":               {catalog.ReachCascade, nil, []string{"id"}, []string{"comment_org_fk", "comment_task_fk"}},
		`app.attachment "v2".files`: {catalog.ReachCascade, nil, []string{"id"}, []string{"attachment_comment_fk"}},
		"app.audit_log":             {catalog.ReachCascade, []string{"project_id"}, []string{"id", "at"}, []string{"audit_log_org_fk", "audit_log_project_fk"}},
		"app.audit_note":            {catalog.ReachCascade, nil, []string{"audit_id", "audit_at"}, []string{"audit_note_audit_fk"}},
		"app.bookmark":              {catalog.ReachSetNull, []string{"member_id"}, []string{"id"}, []string{"bookmark_member_fk"}},
		"app.external_link":         {catalog.ReachSetDefault, []string{"owner_id"}, []string{"id"}, []string{"external_link_owner_fk"}},
		"app.usage":                 {catalog.ReachExtra, nil, nil, nil},
	}
	var wantNames []string
	for n := range wants {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if got := tableNames(g); !slices.Equal(got, wantNames) {
		t.Fatalf("tables = %q\nwant %q", got, wantNames)
	}
	for _, tb := range g.Tables {
		w := wants[tb.Name.String()]
		var via []string
		for _, fk := range tb.Via {
			via = append(via, fk.Constraint)
		}
		if tb.Reach != w.reach || !slices.Equal(tb.Changed, w.changed) || !slices.Equal(tb.PrimaryKey, w.pk) ||
			tb.NoPrimaryKey != (w.pk == nil) || !slices.Equal(via, w.via) {
			t.Errorf("%s: reach %s, changed %q, pk %q (none: %v), via %q\nwant reach %s, changed %q, pk %q, via %q",
				tb.Name, tb.Reach, tb.Changed, tb.PrimaryKey, tb.NoPrimaryKey, via, w.reach, w.changed, w.pk, w.via)
		}
	}
	checkOrder(t, g)
	if g.KeyType != "uuid" || g.Key != "id" || g.Root != name("app", "org") {
		t.Errorf("root %s key %s type %s", g.Root, g.Key, g.KeyType)
	}

	t.Run("cycle", func(t *testing.T) {
		if len(g.Cycles) != 1 {
			t.Fatalf("cycles = %+v, want one", g.Cycles)
		}
		c := g.Cycles[0]
		if !slices.Equal(c.Tables, []catalog.Name{name("app", "member"), name("app", "project")}) ||
			c.Break.Constraint != "project_lead_fk" || c.Break.Child != name("app", "project") ||
			!slices.Equal(c.Break.Columns, []string{"lead_member_id"}) || c.Break.Parent != name("app", "member") {
			t.Errorf("cycle = %+v", c)
		}
	})
	t.Run("partitions", func(t *testing.T) {
		for _, p := range []string{"audit_log_2025", "audit_log_2026"} {
			if g.Table(name("app", p)) != nil {
				t.Errorf("partition %s is listed", p)
			}
		}
		for _, fk := range g.FKs {
			if slices.Contains([]string{"audit_log_2025", "audit_log_2026"}, fk.Child.Table) ||
				slices.Contains([]string{"audit_log_2025", "audit_log_2026"}, fk.Parent.Table) {
				t.Errorf("foreign key of a partition: %+v", fk)
			}
		}
		for _, n := range []string{"audit_log", "org", "audit_note"} {
			if got, want := g.Table(name("app", n)).Partitioned, n == "audit_log"; got != want {
				t.Errorf("%s partitioned = %v", n, got)
			}
		}
	})
	t.Run("columns", func(t *testing.T) {
		cases := []struct {
			table, column string
			want          *catalog.Column
		}{
			{"project", "name_key", nil}, // generated
			{"project", "name", &catalog.Column{Name: "name", Type: "text", NotNull: true}},
			{"member", "id", &catalog.Column{Name: "id", Type: "bigint", NotNull: true, Identity: catalog.IdentityAlways}},
			{"comment", "id", &catalog.Column{Name: "id", Type: "bigint", NotNull: true, Identity: catalog.IdentityByDefault}},
			{"audit_log", "id", &catalog.Column{Name: "id", Type: "bigint", NotNull: true, Identity: catalog.IdentityAlways}},
			{"audit_log", "at", &catalog.Column{Name: "at", Type: "timestamp with time zone", NotNull: true}},
			{"org", "created_at", &catalog.Column{Name: "created_at", Type: "timestamp with time zone", NotNull: true, HasDefault: true}},
			{"bookmark", "id", &catalog.Column{Name: "id", Type: "integer", NotNull: true, HasDefault: true}},
			{`attachment "v2".files`, `Size "bytes"`, &catalog.Column{Name: `Size "bytes"`, Type: "bigint"}},
		}
		for _, c := range cases {
			got := g.Table(name("app", c.table)).Column(c.column)
			if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
				t.Errorf("%s.%s = %+v, want %+v", c.table, c.column, got, c.want)
			}
		}
		if got := g.Table(name("app", "project")).ColumnNames(); !slices.Equal(got, []string{"id", "org_id", "name", "lead_member_id"}) {
			t.Errorf("project columns = %q", got)
		}
	})
	t.Run("foreign keys", func(t *testing.T) {
		byName := map[string]catalog.FK{}
		for _, fk := range g.FKs {
			byName[fk.Constraint] = fk
		}
		if _, ok := byName["stuff_org_fk"]; ok {
			t.Error("other.stuff's restrict foreign key is listed")
		}
		a := byName["task_assignee_fk"]
		if !slices.Equal(a.Columns, []string{"assignee_org_id", "assignee_id"}) || !slices.Equal(a.RefColumns, []string{"org_id", "id"}) ||
			!slices.Equal(a.SetColumns, []string{"assignee_id"}) || a.OnDelete != catalog.OnDeleteSetNull {
			t.Errorf("task_assignee_fk = %+v", a)
		}
		if b := byName["bookmark_member_fk"]; !slices.Equal(b.SetColumns, []string{"member_id"}) {
			t.Errorf("bookmark_member_fk = %+v", b)
		}
		// No action: orders comment after member, reaches nothing.
		if c := byName["comment_author_fk"]; c.OnDelete != catalog.OnDeleteNoAction || c.SetColumns != nil {
			t.Errorf("comment_author_fk = %+v", c)
		}
		if c := byName["task_parent_fk"]; c.OnDelete != catalog.OnDeleteCascade || c.Child != c.Parent {
			t.Errorf("task_parent_fk = %+v", c)
		}
		if len(g.FKs) != 17 {
			t.Errorf("%d foreign keys, want 17: %+v", len(g.FKs), g.FKs)
		}
	})
	t.Run("without extra table", func(t *testing.T) {
		o := graphOptions()
		o.ExtraTables = nil
		g := load(t, ctx, conn, o)
		if g.Table(name("app", "usage")) != nil || len(g.Tables) != len(wants)-1 {
			t.Errorf("tables = %q", tableNames(g))
		}
	})
}

func TestLoadErrors(t *testing.T) {
	ctx, conn := database(t, testdata.MustSQL("graph/schema.sql"), `CREATE VIEW app.org_view AS SELECT * FROM app.org`)
	extra := func(table catalog.Name, column string) catalog.Options {
		o := graphOptions()
		o.ExtraTables = append(o.ExtraTables, catalog.Extra{Table: table, Column: column})
		return o
	}
	cases := []struct {
		name     string
		opts     catalog.Options
		notFound bool
		msg      string
	}{
		{"missing root", catalog.Options{Root: name("app", "nope"), Key: "id"}, true,
			"catalog: tenant root app.nope: table does not exist"},
		{"missing schema", catalog.Options{Root: name("nope", "org"), Key: "id"}, true,
			"catalog: tenant root nope.org: table does not exist"},
		{"names are exact", catalog.Options{Root: name("app", "ORG"), Key: "id"}, true,
			"catalog: tenant root app.ORG: table does not exist"},
		{"missing key", catalog.Options{Root: name("app", "org"), Key: "uuid"}, true,
			`catalog: tenant root app.org: column "uuid" does not exist`},
		{"key not unique", catalog.Options{Root: name("app", "org"), Key: "name"}, false,
			`catalog: tenant root app.org: column "name" is not unique (no primary key or unique constraint on it alone)`},
		{"key unique only with another column", catalog.Options{Root: name("app", "member"), Key: "org_id"}, false,
			`catalog: tenant root app.member: column "org_id" is not unique (no primary key or unique constraint on it alone)`},
		{"root is a partition", catalog.Options{Root: name("app", "audit_log_2025"), Key: "id"}, false,
			"catalog: tenant root app.audit_log_2025: is a partition of app.audit_log: name the partitioned table"},
		{"root is a view", catalog.Options{Root: name("app", "org_view"), Key: "id"}, false,
			"catalog: tenant root app.org_view: is not a table (relkind v)"},
		{"missing extra table", extra(name("app", "nope"), "org_id"), true,
			"catalog: extra table app.nope: table does not exist"},
		{"missing extra column", extra(name("app", "usage"), "tenant"), true,
			`catalog: extra table app.usage: column "tenant" does not exist`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := catalog.Load(ctx, conn, c.opts)
			if err == nil {
				t.Fatalf("no error; graph %q", tableNames(g))
			}
			if err.Error() != c.msg {
				t.Errorf("error %q\nwant  %q", err, c.msg)
			}
			if errors.Is(err, catalog.ErrNotFound) != c.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v", err, !c.notFound)
			}
		})
	}
}

func TestLoadUnsupported(t *testing.T) {
	ctx, conn := database(t, `
		CREATE SCHEMA cyc;
		CREATE TABLE cyc.root (id uuid PRIMARY KEY);
		CREATE TABLE cyc.a (id int PRIMARY KEY, root_id uuid NOT NULL REFERENCES cyc.root ON DELETE CASCADE, b_id int);
		CREATE TABLE cyc.b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES cyc.a ON DELETE CASCADE);
		ALTER TABLE cyc.a ADD FOREIGN KEY (b_id) REFERENCES cyc.b ON DELETE CASCADE;

		CREATE SCHEMA nn;
		CREATE TABLE nn.root (id uuid PRIMARY KEY);
		CREATE TABLE nn.a (id int PRIMARY KEY, root_id uuid NOT NULL REFERENCES nn.root ON DELETE CASCADE, b_id int NOT NULL);
		CREATE TABLE nn.b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES nn.a ON DELETE CASCADE);
		ALTER TABLE nn.a ADD FOREIGN KEY (b_id) REFERENCES nn.b DEFERRABLE INITIALLY DEFERRED;

		CREATE SCHEMA part;
		CREATE TABLE part.root (id uuid PRIMARY KEY);
		CREATE TABLE part.log (at date NOT NULL, root_id uuid) PARTITION BY RANGE (at);
		CREATE TABLE part.log_1 PARTITION OF part.log FOR VALUES FROM ('2020-01-01') TO ('2030-01-01');
		ALTER TABLE part.log_1 ADD CONSTRAINT log_1_root_fk FOREIGN KEY (root_id) REFERENCES part.root ON DELETE CASCADE;

		CREATE SCHEMA inh;
		CREATE TABLE inh.root (id uuid PRIMARY KEY);
		CREATE TABLE inh.child (extra text) INHERITS (inh.root);
	`)
	cases := []struct {
		schema, msg string
	}{
		{"cyc", "catalog: cascade cycle through cyc.a, cyc.b: not supported"},
		{"nn", "catalog: foreign key cycle through nn.a, nn.b has no nullable foreign key to break it: not supported"},
		{"part", "catalog: foreign key log_1_root_fk on partition part.log_1 of part.log: not supported"},
		{"inh", "catalog: tenant root inh.root: has inheritance children: not supported"},
	}
	for _, c := range cases {
		t.Run(c.schema, func(t *testing.T) {
			_, err := catalog.Load(ctx, conn, catalog.Options{Root: name(c.schema, "root"), Key: "id"})
			if err == nil || err.Error() != c.msg || !errors.Is(err, catalog.ErrUnsupported) {
				t.Errorf("error %v\nwant  %s (ErrUnsupported)", err, c.msg)
			}
		})
	}
}
