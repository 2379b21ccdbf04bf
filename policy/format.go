package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// maxNamed bounds the tenants a Detail names: a refusal of 100 tenants must stay a
// readable line. Violation.Tenants has them all.
const maxNamed = 5

// tenantList names the first tenants of ids: "a, b, c and 2 more".
func tenantList(ids []uuid.UUID) string {
	names := make([]string, 0, maxNamed)
	for _, id := range ids[:min(len(ids), maxNamed)] {
		names = append(names, id.String())
	}
	s := strings.Join(names, ", ")
	if more := len(ids) - len(names); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// plural writes "1 target", "7 targets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// formatRatio writes got with 4 significant digits, or all of them when 4 would
// print the limit it is being compared with ("0.1 > limit 0.1").
func formatRatio(got, limit float64) string {
	s := strconv.FormatFloat(got, 'g', 4, 64)
	if s == formatFloat(limit) && got != limit {
		return formatFloat(got)
	}
	return s
}

func ptr(f float64) *float64 { return &f }
