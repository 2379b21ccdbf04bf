package config

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

const redacted = "REDACTED"

// Secret holds a credential. Every way of printing it (fmt, JSON, YAML, slog) shows
// REDACTED, so a secret cannot leak through a log line or --output json by accident;
// only Reveal gives the value, at the one place that hands it to a client library.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue redacts.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// DSN is a PostgreSQL connection string, URL or key=value form. It may hold a
// password, so it prints with the password replaced.
type DSN string

// Reveal returns the connection string itself, for pgx.
func (d DSN) Reveal() string { return string(d) }

func (d DSN) String() string { return RedactDSN(string(d)) }

// GoString covers %#v.
func (d DSN) GoString() string { return `config.DSN("` + d.String() + `")` }

// MarshalJSON redacts the password.
func (d DSN) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalYAML redacts the password.
func (d DSN) MarshalYAML() (any, error) { return d.String(), nil }

// LogValue redacts the password.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN replaces the password of a connection string, whichever form it has.
// A string it cannot parse is redacted whole rather than risk showing a password.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return redacted
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), redacted)
			}
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				q.Set(k, redacted)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, "=") {
		return kvPassword.ReplaceAllString(dsn, "${1}"+redacted)
	}
	return redacted
}
