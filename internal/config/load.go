package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/purgeguard/purgeguard/internal/seal"
)

// Error is a configuration error. It names the file, the line and the key so that an
// operator can go straight to it.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
	err  error // the cause, when there is one to branch on (fs.ErrNotExist)
}

func (e *Error) Unwrap() error { return e.err }

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return "config: " + b.String()
}

// Environment variables that override the file.
const (
	EnvDatabaseURL = "PURGEGUARD_DATABASE_URL"
	EnvStorageURL  = "PURGEGUARD_STORAGE_URL"
	EnvS3Endpoint  = "PURGEGUARD_S3_ENDPOINT"
	EnvAccessKey   = "AWS_ACCESS_KEY_ID"
	EnvSecretKey   = "AWS_SECRET_ACCESS_KEY"
	EnvRegion      = "AWS_REGION"
)

// Load reads the file at path (none when path is ""), then the environment.
func Load(path string, getenv func(string) string) (*Config, error) {
	cfg := Default()
	var doc *yaml.Node
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, &Error{File: path, Msg: err.Error()}
		}
		defer f.Close()
		cfg, doc, err = parse(f, path)
		if err != nil {
			return nil, err
		}
	}
	cfg.ApplyEnv(getenv)
	if err := cfg.validate(path, doc); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse reads YAML over the defaults and validates the result (without the
// environment). name labels errors.
func Parse(r io.Reader, name string) (*Config, error) {
	cfg, doc, err := parse(r, name)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(name, doc); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parse(r io.Reader, name string) (*Config, *yaml.Node, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, nil, &Error{File: name, Msg: err.Error()}
	}
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 { // an empty file: the defaults
		return cfg, nil, nil
	}
	root := doc.Content[0]
	if err := checkKeys(root, reflect.TypeOf(*cfg), ""); err != nil {
		err.File = name
		return nil, nil, err
	}
	if err := root.Decode(cfg); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = name
			ce.Key = keyAtLine(root, "", ce.Line)
			return nil, nil, ce
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			line := lineOf(te.Errors[0])
			return nil, nil, &Error{File: name, Line: line, Key: keyAtLine(root, "", line), Msg: typeErrorMsg(te.Errors[0])}
		}
		return nil, nil, &Error{File: name, Msg: err.Error()}
	}
	return cfg, root, nil
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys refuses keys the configuration does not have, with their full dotted
// path: yaml.v3's KnownFields reports only the Go type, not where it sits.
func checkKeys(n *yaml.Node, t reflect.Type, path string) *Error {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &Error{Line: n.Line, Key: path, Msg: "must be a mapping of keys"}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				return &Error{Line: k.Line, Key: join(path, k.Value), Msg: "unknown key" + suggest(t, k.Value)}
			}
			if err := checkKeys(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func suggest(t reflect.Type, key string) string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		names = append(names, name)
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyAtLine finds the dotted key whose value sits at line, to name it in an error.
func keyAtLine(n *yaml.Node, path string, line int) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if v.Line == line && v.Kind == yaml.ScalarNode || k.Line == line && v.Kind == yaml.ScalarNode {
				return p
			}
			if s := keyAtLine(v, p, line); s != "" {
				return s
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c.Kind == yaml.ScalarNode && c.Line == line {
				return p
			}
			if s := keyAtLine(c, p, line); s != "" {
				return s
			}
		}
	}
	return ""
}

// lineOf reads the line number yaml.v3 puts at the head of a type error message.
func lineOf(msg string) int {
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(num)
	return n
}

func typeErrorMsg(msg string) string {
	if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
		return rest
	}
	return msg
}

// findNode returns the node at a dotted path ("policy.max_fraction", "files[1].root").
func findNode(root *yaml.Node, path string) *yaml.Node {
	n := root
	for part := range strings.SplitSeq(path, ".") {
		if n == nil {
			return nil
		}
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == name {
					next = n.Content[i+1]
				}
			}
		}
		n = next
		if n != nil && idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil
			}
			n = n.Content[idx]
		}
	}
	return n
}

// ApplyEnv lets the environment override the file: the usual way to hand a sidecar
// its database and credentials without writing them to disk.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	if v := getenv(EnvDatabaseURL); v != "" {
		c.Database.URL = DSN(v)
	}
	if v := getenv(EnvStorageURL); v != "" {
		c.Storage.URL = v
	}
	if v := getenv(EnvS3Endpoint); v != "" {
		c.Storage.S3.Endpoint = v
	}
	if v := getenv(EnvAccessKey); v != "" {
		c.Storage.S3.AccessKeyID = v
	}
	if v := getenv(EnvSecretKey); v != "" {
		c.Storage.S3.SecretAccessKey = Secret(v)
	}
	if v := getenv(EnvRegion); v != "" {
		c.Storage.S3.Region = v
	}
}

// Validate checks values that decoding alone cannot (ranges, names, paths).
func (c *Config) Validate() error { return c.validate("", nil) }

func (c *Config) validate(file string, doc *yaml.Node) error {
	bad := func(key, format string, args ...any) error {
		e := &Error{File: file, Key: key, Msg: fmt.Sprintf(format, args...)}
		// A key left out (object_lock.days under a mode) is pointed at by its
		// nearest written parent.
		for k := key; doc != nil && k != ""; {
			if n := findNode(doc, k); n != nil {
				e.Line = n.Line
				break
			}
			i := strings.LastIndexByte(k, '.')
			if i < 0 {
				break
			}
			k = k[:i]
		}
		return e
	}
	if u := c.Storage.URL; u != "" {
		p, err := url.Parse(u)
		switch {
		case err != nil:
			return bad("storage.url", "not a URL")
		case p.Scheme == "file" && (p.Path == "" || !filepath.IsAbs(p.Path) || p.Host != ""):
			return bad("storage.url", "%q: want file:///absolute/path", u)
		case p.Scheme == "s3" && p.Host == "":
			return bad("storage.url", "%q: want s3://bucket/prefix", u)
		case p.Scheme != "file" && p.Scheme != "s3":
			return bad("storage.url", "%q: scheme must be file or s3", u)
		}
	} else {
		return bad("storage.url", "must be set (file:///path or s3://bucket/prefix)")
	}
	if d := time.Duration(c.Storage.RequestTimeout); d < time.Second {
		return bad("storage.request_timeout", "%s: must be at least 1s", d)
	}
	if n := c.Storage.Retries; n < 0 || n > 20 {
		return bad("storage.retries", "%d: must be between 0 and 20", n)
	}
	if ps := c.Storage.S3.PartSize; ps < 5<<20 || ps > 5<<30 {
		return bad("storage.s3.part_size", "%s: must be between 5MiB and 5GiB", ps)
	}
	if l := c.Storage.S3.ObjectLock; l.Mode != "" || l.Days != 0 {
		switch {
		case l.Mode == "":
			return bad("storage.s3.object_lock.mode", "must be GOVERNANCE or COMPLIANCE when days is set")
		case l.Mode != ObjectLockGovernance && l.Mode != ObjectLockCompliance:
			return bad("storage.s3.object_lock.mode", "%q: must be GOVERNANCE or COMPLIANCE (empty: no object lock)", l.Mode)
		case l.Days < 1:
			return bad("storage.s3.object_lock.days", "%d: must be at least 1 with a mode", l.Days)
		case strings.HasPrefix(c.Storage.URL, "file:"):
			return bad("storage.s3.object_lock.mode", "object lock is an S3 feature: storage.url must be s3://")
		}
	}
	if _, _, err := TableName(c.Tenants.Table); err != nil {
		return bad("tenants.table", "%v", err)
	}
	if c.Tenants.Key == "" {
		return bad("tenants.key", "must be set")
	}
	for i, x := range c.Tenants.ExtraTables {
		key := fmt.Sprintf("tenants.extra_tables[%d]", i)
		if _, _, err := TableName(x.Table); err != nil {
			return bad(key+".table", "%v", err)
		}
		if x.Column == "" {
			return bad(key+".column", "must be set")
		}
	}
	for i, f := range c.Files {
		key := fmt.Sprintf("files[%d]", i)
		if _, _, err := TableName(f.Table); err != nil {
			return bad(key+".table", "%v", err)
		}
		if f.Column == "" {
			return bad(key+".column", "must be set")
		}
		if !filepath.IsAbs(f.Root) {
			return bad(key+".root", "%q: must be an absolute directory", f.Root)
		}
	}
	if j := c.Snapshot.Jobs; j < 1 || j > 64 {
		return bad("snapshot.jobs", "%d: must be between 1 and 64", j)
	}
	if l := c.Snapshot.CompressionLevel; l < 1 || l > 22 {
		return bad("snapshot.compression_level", "%d: must be between 1 and 22 (zstd levels)", l)
	}
	if f := c.Policy.MaxFraction; f < 0 || f > 1 {
		return bad("policy.max_fraction", "%v: must be between 0 and 1", f)
	}
	if r := c.Policy.MinSourceRatio; r < 0 || r > 1 {
		return bad("policy.min_source_ratio", "%v: must be between 0 and 1", r)
	}
	if f := c.Policy.Retention.MaxFraction; !(f >= 0 && f <= 1) {
		return bad("policy.retention.max_fraction", "%v: must be between 0 and 1", f)
	}
	if f := c.Policy.Retention.MaxTenantFraction; !(f >= 0 && f <= 1) {
		return bad("policy.retention.max_tenant_fraction", "%v: must be between 0 and 1", f)
	}
	if n := c.Policy.Retention.MinRows; n < 0 {
		return bad("policy.retention.min_rows", "%d: must be 0 or more", n)
	}
	if a := c.Policy.Activity; a.Table != "" {
		if _, _, err := TableName(a.Table); err != nil {
			return bad("policy.activity.table", "%v", err)
		}
		if a.TenantColumn == "" || a.TimeColumn == "" {
			return bad("policy.activity", "tenant_column and time_column must be set with table")
		}
	}
	if err := c.Shield.validate(c.Files, bad); err != nil {
		return err
	}
	if err := c.Retention.validate(bad); err != nil {
		return err
	}
	return c.Encryption.validate(bad)
}

func (e Encryption) validate(bad func(key, format string, args ...any) error) error {
	for i, r := range e.Recipients {
		key := fmt.Sprintf("encryption.recipients[%d]", i)
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(r)), "AGE-SECRET-KEY") {
			// Never echo it: the error would print a secret.
			return bad(key, "a private identity, not a public recipient: keep it out of the configuration (identity_file names where it lives), and give its age1… recipient here")
		}
		if _, err := seal.ParseRecipients(strings.NewReader(r)); err != nil || strings.Contains(r, "\n") {
			return bad(key, "%q: not an age recipient (age1…; `purgeguard keys init` makes one)", r)
		}
	}
	for _, f := range []struct{ key, path string }{{"encryption.recipients_file", e.RecipientsFile}, {"encryption.identity_file", e.IdentityFile}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			return bad(f.key, "%q: must be an absolute path", f.path)
		}
	}
	if u := e.KeysURL; u != "" {
		p, err := url.Parse(u)
		switch {
		case err != nil:
			return bad("encryption.keys_url", "not a URL")
		case p.Scheme == "file" && (p.Path == "" || !filepath.IsAbs(p.Path) || p.Host != ""):
			return bad("encryption.keys_url", "%q: want file:///absolute/path", u)
		case p.Scheme == "s3" && p.Host == "":
			return bad("encryption.keys_url", "%q: want s3://bucket/prefix", u)
		case p.Scheme != "file" && p.Scheme != "s3":
			return bad("encryption.keys_url", "%q: scheme must be file or s3", u)
		}
	}
	return nil
}

func (s *Shield) validate(files []FileColumn, bad func(key, format string, args ...any) error) error {
	for i, d := range s.Dirs {
		key := fmt.Sprintf("shield.dirs[%d]", i)
		if !filepath.IsAbs(d.Root) {
			return bad(key+".root", "%q: must be an absolute directory", d.Root)
		}
		if !filepath.IsAbs(d.Dir) {
			return bad(key+".dir", "%q: must be an absolute directory", d.Dir)
		}
		known := false
		for _, f := range files {
			known = known || filepath.Clean(f.Root) == filepath.Clean(d.Root)
		}
		if !known {
			return bad(key+".root", "%q: not the root of any files[] entry", d.Root)
		}
	}
	if !filepath.IsAbs(s.Index) {
		return bad("shield.index", "%q: must be an absolute path", s.Index)
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{{"shield.settle", s.Settle}, {"shield.rescan", s.Rescan}, {"shield.keep", s.Keep}} {
		if d.d <= 0 {
			return bad(d.key, "%s: must be positive", d.d)
		}
	}
	if s.Jobs < 1 || s.Jobs > 64 {
		return bad("shield.jobs", "%d: must be between 1 and 64", s.Jobs)
	}
	return nil
}
