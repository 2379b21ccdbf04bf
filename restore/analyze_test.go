package restore

import (
	"reflect"
	"testing"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/profile"
)

// freshen analyses only the columns restore's counts and checks join on: the
// primary key, both sides of the graph's foreign keys, the root's tenant key, an
// extra table's tenant columns and the file columns, in the table's order; a table
// without a primary key (matched on every column) is analysed whole.
func TestJoinColumns(t *testing.T) {
	name := func(n string) catalog.Name { return catalog.Name{Schema: "public", Table: n} }
	cols := func(names ...string) []catalog.Column {
		out := make([]catalog.Column, len(names))
		for i, n := range names {
			out[i] = catalog.Column{Name: n}
		}
		return out
	}
	tenant := &catalog.Table{Name: name("tenant"), Columns: cols("uuid", "name"), PrimaryKey: []string{"uuid"}}
	callLog := &catalog.Table{Name: name("call_log"), PrimaryKey: []string{"id"},
		Columns: cols("id", "date", "source_name", "tenant_uuid", "destination_name", "parent_id")}
	recording := &catalog.Table{Name: name("recording"), PrimaryKey: []string{"uuid"},
		Columns: cols("uuid", "start_time", "path", "call_log_id")}
	export := &catalog.Table{Name: name("export"), PrimaryKey: []string{"uuid"}, ExtraColumns: []string{"tenant_uuid"},
		Columns: cols("uuid", "requested_at", "tenant_uuid", "path", "status")}
	noKey := &catalog.Table{Name: name("transcription"), Columns: cols("call_log_id", "text")}
	l := &loader{
		g: &catalog.Graph{Root: tenant.Name, Key: "uuid", FKs: []catalog.FK{
			{Child: callLog.Name, Columns: []string{"tenant_uuid"}, Parent: tenant.Name, RefColumns: []string{"uuid"}},
			{Child: callLog.Name, Columns: []string{"parent_id"}, Parent: callLog.Name, RefColumns: []string{"id"}},
			{Child: recording.Name, Columns: []string{"call_log_id"}, Parent: callLog.Name, RefColumns: []string{"id"}},
			{Child: noKey.Name, Columns: []string{"call_log_id"}, Parent: callLog.Name, RefColumns: []string{"id"}},
		}},
		o: Options{Files: []profile.FileColumn{{Table: recording.Name, Column: "path"}, {Table: export.Name, Column: "path"}}},
	}
	for _, tc := range []struct {
		t    *catalog.Table
		want []string
	}{
		{tenant, []string{"uuid"}},
		{callLog, []string{"id", "tenant_uuid", "parent_id"}},
		{recording, []string{"uuid", "path", "call_log_id"}},
		{export, []string{"uuid", "tenant_uuid", "path"}},
		{noKey, nil},
	} {
		if got := l.joinColumns(&plan{live: tc.t}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: analysed %q, want %q", tc.t.Name, got, tc.want)
		}
	}
}
