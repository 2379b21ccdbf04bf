package seal

import (
	"fmt"
	"log/slog"
)

const redacted = "REDACTED"

// redactor is embedded in every type holding key material: whatever verb or
// flag prints the value (%v, %+v, %#v, %s, %x, %q), and slog, see REDACTED.
// fmt would otherwise print unexported byte slices, and age's identities print
// their secret key through String.
type redactor struct{ name string }

// Format implements fmt.Formatter.
func (r redactor) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "%s(%s)", r.name, redacted) }

// LogValue implements slog.LogValuer.
func (r redactor) LogValue() slog.Value { return slog.StringValue(r.name + "(" + redacted + ")") }

// String implements fmt.Stringer.
func (r redactor) String() string { return r.name + "(" + redacted + ")" }

// MarshalJSON never writes a secret into JSON output.
func (r redactor) MarshalJSON() ([]byte, error) { return []byte(`"` + r.String() + `"`), nil }
