// Package testdata holds the SQL schemas and fixtures that tests, benchmarks and the demo
// load into a throwaway database. It is data, not product: the purgeguard binary never
// imports it.
//
// Each directory is one schema: schema.sql creates it, and optional files beside it
// (data.sql, retention_purge.sql, ...) are named by the tests that use them.
package testdata

import (
	"embed"
	"fmt"
)

//go:embed calllogd graph
var files embed.FS

// SQL returns the text of name, e.g. "calllogd/schema.sql".
func SQL(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("testdata: %w", err)
	}
	return string(b), nil
}

// MustSQL is SQL for tests and tools, which cannot go on without their fixture.
func MustSQL(name string) string {
	s, err := SQL(name)
	if err != nil {
		panic(err)
	}
	return s
}
