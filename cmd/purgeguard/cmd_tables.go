package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

func newTablesCommand() *cli.Command {
	return &cli.Command{
		Name:  "tables",
		Usage: "show the tenant graph: every table a tenant purge reaches, how, and the restore order",
		Description: `Reads pg_catalog from the tenant root (tenants.table, tenants.key): every table whose
foreign keys reach it through ON DELETE CASCADE, every table a purge changes through
SET NULL / SET DEFAULT, and tenants.extra_tables. Nothing else is ever read.
Tables are listed in restore load order (parents first).

Examples:
   purgeguard tables
   purgeguard tables --sql --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71
   purgeguard tables -o json`,
		Flags: []cli.Flag{
			newDatabaseURLFlag(),
			&cli.BoolFlag{Name: "sql", Usage: "also print the SELECT used for each table"},
			&cli.StringFlag{Name: "tenant", Aliases: []string{"t"}, Usage: "tenant `UUID` to render in --sql (default: the nil UUID)"},
		},
		Action: runTables,
	}
}

func runTables(c *cli.Context) error {
	e := getEnv(c)
	tenant := uuid.Nil
	if s := c.String("tenant"); s != "" {
		id, err := parseTenantFlag("--tenant", s)
		if err != nil {
			return err
		}
		tenant = id
	}
	conn, copts, err := connect(c, e)
	if err != nil {
		return err
	}
	defer conn.Close(c.Context)
	tx, err := conn.BeginTx(c.Context, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(c.Context)
	g, err := catalog.Load(c.Context, tx, copts)
	if err != nil {
		return err
	}
	withSQL := c.Bool("sql")
	type tableOut struct {
		*catalog.Table
		SQL string `json:"sql,omitempty"`
		// SelectedByParent is the parent column whose saved ids select the table's rows in
		// a snapshot, instead of SQL's join back to the parent.
		SelectedByParent string `json:"selected_by_parent,omitempty"`
	}
	out := struct {
		Root   catalog.Name    `json:"root"`
		Key    string          `json:"key"`
		Tables []tableOut      `json:"tables"`
		Cycles []catalog.Cycle `json:"cycles"`
	}{Root: g.Root, Key: g.Key, Tables: []tableOut{}, Cycles: g.Cycles}
	if out.Cycles == nil {
		out.Cycles = []catalog.Cycle{}
	}
	for _, t := range g.Tables {
		to := tableOut{Table: t}
		if ref, ok := g.SelectedByParent(t); ok {
			to.SelectedByParent = ref.Parent.Name.String() + "." + ref.Column
		}
		if withSQL {
			to.SQL = g.Select(t, tenant)
		}
		out.Tables = append(out.Tables, to)
	}
	return e.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "tenant root %s (%s): %d tables, in restore order\n", g.Root, g.Key, len(g.Tables))
		for i, t := range out.Tables {
			via := make([]string, 0, len(t.Via))
			for _, fk := range t.Via {
				via = append(via, fmt.Sprintf("%s(%s) -> %s on delete %s", fk.Constraint, strings.Join(fk.Columns, ","), fk.Parent, fk.OnDelete))
			}
			fmt.Fprintf(w, "%3d. %-45s %-11s %2d columns", i+1, t.Name, t.Reach, len(t.Columns))
			if t.Partitioned {
				fmt.Fprint(w, ", partitioned")
			}
			if len(t.Changed) > 0 {
				fmt.Fprintf(w, ", purge changes %s", strings.Join(t.Changed, ","))
			}
			fmt.Fprintln(w)
			for _, v := range via {
				fmt.Fprintf(w, "       via %s\n", v)
			}
			if t.SelectedByParent != "" {
				fmt.Fprintf(w, "       snapshot selects by the saved ids of %s (no second scan of the parent)\n", t.SelectedByParent)
			}
			if t.SQL != "" {
				fmt.Fprintf(w, "       %s\n", t.SQL)
			}
		}
		for _, cy := range out.Cycles {
			names := make([]string, len(cy.Tables))
			for i, n := range cy.Tables {
				names[i] = n.String()
			}
			fmt.Fprintf(w, "cycle %s: broken by %s.%s (loaded NULL, set after)\n",
				strings.Join(names, " -> "), cy.Break.Child, strings.Join(cy.Break.Columns, ","))
		}
	})
}
