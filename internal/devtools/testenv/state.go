package testenv

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// TableState is the md5 and row count of every table of the database's user schemas,
// rows ordered by their text: equal states mean identical contents, whoever's rows
// they are. Partitions are read through their parent.
func TableState(t testing.TB, conn *pgx.Conn) map[string]string {
	t.Helper()
	ctx := Context(t)
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var h string
		if err := conn.QueryRow(ctx, "SELECT coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') || ':' || count(*) FROM "+tb+" x").Scan(&h); err != nil {
			t.Fatal(err)
		}
		out["table "+tb] = h
	}
	return out
}

// FileState is every regular file under the roots: its content's SHA-256, mode,
// owner, group and mtime (to the nanosecond).
func FileState(t testing.TB, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			sum := archive.NewDigest()
			sum.Write(b)
			out["file "+p] = fmt.Sprintf("%s %s %d:%d %s", sum.Hex(), fi.Mode(), st.Uid, st.Gid, fi.ModTime().UTC().Format(time.RFC3339Nano))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// SameState reports every entry of two states that differs (the first ten, and how
// many in all).
func SameState(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := 0
	for _, k := range keys {
		if want[k] != got[k] {
			if n++; n <= 10 {
				t.Errorf("%s: %s: got %q, want %q", what, k, got[k], want[k])
			}
		}
	}
	if n > 10 {
		t.Errorf("%s: … %d differences in all", what, n)
	}
}
