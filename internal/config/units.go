package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/purgeguard/purgeguard/internal/tenantlist"
)

// Duration is a time.Duration that YAML writes as "168h", "30m" or, for the spans an
// operator thinks in, "7d".
type Duration time.Duration

// ParseDuration accepts Go durations and a whole number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(d, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (want e.g. 7d, 36h, 90m)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a duration (want e.g. 7d, 36h, 90m)", s)
	}
	return v, nil
}

// UnmarshalYAML parses the text form.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &Error{Line: n.Line, Msg: err.Error()}
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string {
	v := time.Duration(d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}

// MarshalJSON writes the text form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// ByteSize is a size that YAML writes as "8MiB", "16MB" or a plain number of bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1},
}

// ParseByteSize parses "8MiB", "16MB", "1048576".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (want e.g. 8MiB, 16MB, 1048576)", s)
	}
	return n, nil
}

// UnmarshalYAML parses the text form.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &Error{Line: n.Line, Msg: err.Error()}
	}
	*b = ByteSize(v)
	return nil
}

func (b ByteSize) String() string {
	v := int64(b)
	switch {
	case v > 0 && v%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v > 0 && v%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", v>>20)
	case v > 0 && v%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", v>>10)
	}
	return strconv.FormatInt(v, 10)
}

// MarshalJSON writes the text form.
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UUIDs is a list of tenant IDs, parsed where it is read so that no string tenant
// ever travels further than the configuration file.
type UUIDs []uuid.UUID

// UnmarshalYAML parses each entry, naming the line of a bad one.
func (u *UUIDs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return &Error{Line: n.Line, Msg: "must be a list of tenant UUIDs"}
	}
	out := make(UUIDs, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return &Error{Line: c.Line, Msg: "must be a tenant UUID"}
		}
		// The same parser as every other tenant input: one accepted form everywhere.
		id, err := tenantlist.ParseID(c.Value)
		if err != nil {
			return &Error{Line: c.Line, Msg: err.Error()}
		}
		out = append(out, id)
	}
	*u = out
	return nil
}
