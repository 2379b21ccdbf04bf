package fence_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// weirdSchema names everything with double quotes, a single quote, a backslash and
// the dollar-quote tag of the trigger functions: none of it may reach SQL unquoted.
const weirdSchema = `
CREATE SCHEMA "we""ird $fence$";
CREATE TABLE "we""ird $fence$"."ten""ant'" ("k""e'y\ $fence$" text PRIMARY KEY);
CREATE TABLE "we""ird $fence$"."ch""ild" (
	id serial PRIMARY KEY,
	tenant text NOT NULL REFERENCES "we""ird $fence$"."ten""ant'" ON DELETE CASCADE
);
INSERT INTO "we""ird $fence$"."ten""ant'" VALUES ('t1'), ('t''2');
INSERT INTO "we""ird $fence$"."ch""ild" (tenant) VALUES ('t1'), ('t''2');`

func TestQuotedRootKeyAndTableNames(t *testing.T) {
	e := newEnv(t, weirdSchema)
	root := catalog.Name{Schema: `we"ird $fence$`, Table: `ten"ant'`}
	const rootSQL = `"we""ird $fence$"."ten""ant'"`
	g := e.load(t, catalog.Options{Root: root, Key: `k"e'y\ $fence$`})
	if len(g.Tables) != 2 {
		t.Fatalf("graph tables %v, want the root and its child", g.Tables)
	}
	catalogBefore := e.catalogState(t)
	e.install(t, g)

	e.refused(t, "DELETE FROM "+rootSQL, "delete of tenant", rootSQL)
	e.refused(t, "DELETE FROM "+rootSQL+` WHERE "k""e'y\ $fence$" = 't''2'`, "tenant t'2")
	e.refused(t, `TRUNCATE "we""ird $fence$"."ch""ild"`, `truncate of "we""ird $fence$"."ch""ild"`)

	e.arm(t, uuid.New(), time.Now().Add(time.Hour), "t1")
	if n := e.deleted(t, "DELETE FROM "+rootSQL+` WHERE "k""e'y\ $fence$" = 't1'`); n != 1 {
		t.Fatalf("approved delete removed %d rows, want 1", n)
	}
	if got := e.counts(t)[`"we""ird $fence$"."ch""ild"`]; got != 1 {
		t.Errorf("child rows after the approved delete: %d, want 1 (the cascade)", got)
	}

	e.uninstall(t, g)
	if after := e.catalogState(t); !slices.Equal(catalogBefore, after) {
		t.Errorf("catalog after Uninstall differs:\nbefore %q\nafter  %q", catalogBefore, after)
	}
}
