// Package exampledb gives the public packages' Example tests a call-logd database to
// work on: a fresh database on the test server with generated tenants and recording
// files, removed by the returned function. It also keeps those examples out of a
// plain `go test` without servers, where they could not run (Main).
package exampledb

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/profile"
)

// Main runs a package's tests. Without a test server (and without
// PURGEGUARD_REQUIRE_INTEGRATION=1, under which they fail instead), the examples
// that need one are left out, as the integration tests skip.
func Main(m *testing.M) {
	flag.Parse()
	if os.Getenv(testenv.EnvDatabaseURL) == "" && !testenv.Required() {
		if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" {
			_ = f.Value.Set("^(Test|Fuzz)")
		}
	}
	os.Exit(m.Run())
}

// DB is a call-logd database for an example.
type DB struct {
	URL     string          // connection string
	Tenants []uuid.UUID     // generated tenants, 3 of them
	Profile profile.Profile // call-logd's, with the files roots under Dir
	Dir     string          // a temporary directory: files roots, snapshots
	drop    func()
}

// Close drops the database and removes Dir.
func (d *DB) Close() { d.drop() }

// Open makes the database; it panics when it cannot (an example has no *testing.T).
func Open() *DB {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := os.Getenv(testenv.EnvDatabaseURL)
	if admin == "" {
		panic("exampledb: " + testenv.EnvDatabaseURL + " is not set: run under scripts/with-servers.sh or make test")
	}
	name := testenv.RandomName("example_")
	must(exec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()))
	u, err := url.Parse(admin)
	must(err)
	u.Path = "/" + name
	dir, err := os.MkdirTemp("", "purgeguard-example-")
	must(err)
	d := &DB{URL: u.String(), Dir: dir, Profile: profile.CallLogd()}
	d.drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = exec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		os.RemoveAll(dir)
	}
	d.Profile.Files[0].Root, d.Profile.Files[1].Root = dir+"/recordings", dir+"/exports"
	conn, err := pgx.Connect(ctx, d.URL)
	must(err)
	defer conn.Close(ctx)
	must(fixture.CreateSchema(ctx, conn))
	res, err := fixture.Generate(ctx, conn, fixture.Options{Seed: 1, Tenants: 3, CallLogsPerTenant: 20,
		RecordingsRoot: d.Profile.Files[0].Root, ExportsRoot: d.Profile.Files[1].Root,
		Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	must(err)
	d.Tenants = res.Tenants
	return d
}

func exec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("exampledb: %v", err))
	}
}
