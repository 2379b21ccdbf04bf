package trash

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// Rows kept with other columns than their table has now are rewritten, batch after
// batch, into records the table reads back as the rows they would be: a dropped
// column's field gone, an added column's value the one live rows got (quoted as
// record_out quotes it; an array's element read out of its missing value, read
// once for the three transactions that need it) or NULL. Transactions whose rows
// of a relation were kept with the same columns are rewritten together.
// Left as they are: rows of another transaction kept with the columns the table
// has; a row of the same transaction kept after its migration; rows of a table
// made again since (another OID, its columns renumbered) whose columns' names are
// those they were kept with. A shape whose rows are gone is forgotten.
func TestReshape(t *testing.T) {
	defer func(n int) { reshapeBatch = n }(reshapeBatch)
	reshapeBatch = 2 // five rows: three batches
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, testenv.Postgres(t))
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%.120s: %v", sql, err)
		}
	}
	// The trash's columns that Reshape reads, as fence creates them.
	exec(`CREATE SCHEMA purgeguard;
CREATE TABLE purgeguard.trash (id bigint GENERATED ALWAYS AS IDENTITY, table_schema text NOT NULL, table_name text NOT NULL,
	rel_schema text, rel_name text, xid xid8 NOT NULL, row text NOT NULL);
CREATE TABLE purgeguard.trash_shape (xid xid8 NOT NULL, rel_schema text NOT NULL, rel_name text NOT NULL, attnums int2[] NOT NULL,
	relid oid, attnames text[], mixed boolean NOT NULL DEFAULT false, PRIMARY KEY (xid, rel_schema, rel_name));
CREATE TABLE public.t (a int, gone text, b text);
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row)
	SELECT 'public', 't', '10', format('(%s,"x, %s",b%s)', i, i, i) FROM generate_series(1, 5) i;
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 't', '10', '(7,b7,x,{})');
CREATE TABLE public.u (a int, b text);
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 'u', '20', '(1,"u b")');
INSERT INTO purgeguard.trash_shape VALUES ('20', 'public', 'u', '{1,3}', 1, '{a,b}');
UPDATE purgeguard.trash_shape SET mixed = true WHERE xid = '10';
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 't', '11', '(6,,"c d",{7})');
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 't', '13', '(8,x,b8)');
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 't', '14', '(9,y,b9)');
INSERT INTO purgeguard.trash_shape VALUES ('10', 'public', 't', '{1,2,3}'), ('12', 'public', 't', '{1,2,3}'), ('13', 'public', 't', '{1,2,3}'),
	('14', 'public', 't', '{1,2,3}');
ALTER TABLE public.t DROP COLUMN gone;
ALTER TABLE public.t ADD COLUMN c text NOT NULL DEFAULT 'it''s (a) "c"';
ALTER TABLE public.t ADD COLUMN d int[] DEFAULT '{"1",2}';
INSERT INTO purgeguard.trash_shape SELECT '11', 'public', 't', array_agg(attnum ORDER BY attnum)
	FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attnum > 0 AND NOT attisdropped;`)
	var n int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) (err error) {
		n, err = Reshape(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("rewrote %d rows, want the 5 of transaction 10 kept before its migration, and transaction 13's and 14's", n)
	}
	rows, err := conn.Query(ctx, `SELECT row, CASE table_name WHEN 't' THEN (row::public.t)::text = row ELSE (row::public.u)::text = row END
		FROM purgeguard.trash ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type kept struct {
		Row   string
		Reads bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[kept])
	if err != nil {
		t.Fatal(err)
	}
	c := `"it's (a) ""c"""`
	want := []string{`(1,b1,` + c + `,"{1,2}")`, `(2,b2,` + c + `,"{1,2}")`, `(3,b3,` + c + `,"{1,2}")`,
		`(4,b4,` + c + `,"{1,2}")`, `(5,b5,` + c + `,"{1,2}")`, `(7,b7,x,{})`, `(1,"u b")`, `(6,,"c d",{7})`, `(8,b8,` + c + `,"{1,2}")`,
		`(9,b9,` + c + `,"{1,2}")`}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i, k := range got {
		if k.Row != want[i] {
			t.Errorf("row %d: %s, want %s", i+1, k.Row, want[i])
		}
		if !k.Reads {
			t.Errorf("row %d: %s does not read back as a row of the table as it is", i+1, k.Row)
		}
	}
	var shapes []string
	rows, err = conn.Query(ctx, "SELECT xid::text || ' ' || attnums::text FROM purgeguard.trash_shape ORDER BY xid")
	if err != nil {
		t.Fatal(err)
	}
	if shapes, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if want := "10 {1,3,4,5}|11 {1,3,4,5}|13 {1,3,4,5}|14 {1,3,4,5}|20 {1,2}"; strings.Join(shapes, "|") != want {
		t.Errorf("shapes %v, want transactions 10, 11, 13, 14 and 20 with their table's columns now (%s), 12's forgotten", shapes, want)
	}
}

// A transaction that kept a relation's rows both before and after a migration that
// left it as many columns (one dropped, one added) cannot have its rows told apart:
// Reshape fails, naming the relation, and rewrites none of them.
func TestReshape_MixedAmbiguous(t *testing.T) {
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, testenv.Postgres(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA purgeguard;
CREATE TABLE purgeguard.trash (id bigint GENERATED ALWAYS AS IDENTITY, table_schema text NOT NULL, table_name text NOT NULL,
	rel_schema text, rel_name text, xid xid8 NOT NULL, row text NOT NULL);
CREATE TABLE purgeguard.trash_shape (xid xid8 NOT NULL, rel_schema text NOT NULL, rel_name text NOT NULL, attnums int2[] NOT NULL,
	relid oid, attnames text[], mixed boolean NOT NULL DEFAULT false, PRIMARY KEY (xid, rel_schema, rel_name));
CREATE TABLE public.v (a int, x text, b text);
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 'v', '30', '(1,x1,b1)');
INSERT INTO purgeguard.trash_shape VALUES ('30', 'public', 'v', '{1,2,3}', NULL, NULL, true);
ALTER TABLE public.v DROP COLUMN x;
ALTER TABLE public.v ADD COLUMN c text;
INSERT INTO purgeguard.trash (table_schema, table_name, xid, row) VALUES ('public', 'v', '30', '(2,b2,c2)');`); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := Reshape(ctx, tx)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), `"public"."v"`) || !strings.Contains(err.Error(), "cannot be told") {
		t.Fatalf("Reshape of a mixed shape with as many columns: %v, want an error naming public.v", err)
	}
	var rows []string
	r, err := conn.Query(ctx, "SELECT row FROM purgeguard.trash ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if rows, err = pgx.CollectRows(r, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0] != "(1,x1,b1)" || rows[1] != "(2,b2,c2)" {
		t.Errorf("rows %v: want both as they were kept", rows)
	}
}

// In a numbered trash, a shape whose rows are gone (removed by an earlier
// version's save) is forgotten before it is planned, even one that could not be
// planned (its table made again, its columns' names not recorded); the shape of a
// transaction with rows is rewritten as before.
func TestReshape_ForgetsShapesWithoutRows(t *testing.T) {
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, testenv.Postgres(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA purgeguard;
CREATE TABLE purgeguard.trash (id bigint GENERATED ALWAYS AS IDENTITY, table_schema text NOT NULL, table_name text NOT NULL,
	rel_schema text, rel_name text, xid xid8 NOT NULL, xn bigint NOT NULL, row text NOT NULL);
CREATE TABLE purgeguard.trash_shape (xid xid8 NOT NULL, rel_schema text NOT NULL, rel_name text NOT NULL, attnums int2[] NOT NULL,
	relid oid, attnames text[], mixed boolean NOT NULL DEFAULT false, PRIMARY KEY (xid, rel_schema, rel_name));
CREATE TABLE public.w (a int, gone text, b text);
INSERT INTO purgeguard.trash_shape VALUES ('40', 'public', 'w', '{1,2,3}', 1, NULL);
INSERT INTO purgeguard.trash_shape SELECT '41', 'public', 'w', '{1,2,3}', 'public.w'::regclass, '{a,gone,b}';
INSERT INTO purgeguard.trash (table_schema, table_name, xid, xn, row) VALUES ('public', 'w', '41', 41, '(1,x,b1)');
ALTER TABLE public.w DROP COLUMN gone;`); err != nil {
		t.Fatal(err)
	}
	var n int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) (err error) {
		n, err = Reshape(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatalf("Reshape: %v, want the shape without rows forgotten", err)
	}
	var shapes, row string
	if err := conn.QueryRow(ctx, "SELECT string_agg(xid::text || ' ' || attnums::text, '|' ORDER BY xid) FROM purgeguard.trash_shape").Scan(&shapes); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT row FROM purgeguard.trash").Scan(&row); err != nil {
		t.Fatal(err)
	}
	if n != 1 || shapes != "41 {1,3}" || row != "(1,b1)" {
		t.Errorf("rewrote %d rows, shapes %q, row %q; want 1, \"41 {1,3}\", \"(1,b1)\"", n, shapes, row)
	}
}
