package main

import "github.com/urfave/cli/v2"

var cmdTables = &cli.Command{
	Name:  "tables",
	Usage: "show the tenant graph: every table a tenant purge reaches, how, and the restore order",
	Description: `Reads pg_catalog from the tenant root (tenants.table, tenants.key): every table whose
foreign keys reach it through ON DELETE CASCADE, every table a purge changes through
SET NULL / SET DEFAULT, and tenants.extra_tables. Nothing else is ever read.`,
	Flags:  []cli.Flag{flagDatabaseURL, &cli.BoolFlag{Name: "sql", Usage: "also print the SELECT used for each table"}},
	Action: notImplemented("tables"),
}

// flagDatabaseURL overrides database.url and PURGEGUARD_DATABASE_URL for one run.
var flagDatabaseURL = &cli.StringFlag{
	Name:  "database-url",
	Usage: "PostgreSQL connection `URL` (default: database.url, $PURGEGUARD_DATABASE_URL, libpq PG* variables)",
}
