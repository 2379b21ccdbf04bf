package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultPurgeConfig is where wazo-purge-db reads its configuration, and the default
// of retention.purge_config.
const DefaultPurgeConfig = "/etc/wazo-purge-db/config.yml"

// defaultPurgeConfDir is wazo-purge-db's extra_config_files when its main file does
// not set one.
const defaultPurgeConfDir = "/etc/wazo-purge-db/conf.d/"

// wazoPurgeDBDays is wazo-purge-db's built-in days_to_keep.
const wazoPurgeDBDays = 365

// PurgeDB is the part of wazo-purge-db's configuration that decides what its
// purgers delete: days_to_keep, and days_to_keep_per_plugin, which wins for the
// plugins it names. wazo-purge-db hands each purger
// days_to_keep_per_plugin.get(plugin, days_to_keep) (wazo_purge_db/cli.py), and
// its -d option replaces days_to_keep only.
type PurgeDB struct {
	DaysToKeep int
	PerPlugin  map[string]int
	// Files are the files read, highest priority first (conf.d in name order, then
	// the main file), for messages.
	Files []string
}

// DaysFor returns the days wazo-purge-db hands the purger of plugin. override, when
// not nil, is its -d option.
func (p PurgeDB) DaysFor(plugin string, override *int) int {
	if d, ok := p.PerPlugin[plugin]; ok && plugin != "" {
		return d
	}
	if override != nil {
		return *override
	}
	return p.DaysToKeep
}

// LoadPurgeDB reads wazo-purge-db's configuration the way wazo-purge-db does
// (xivo.config_helper.read_config_file_hierarchy and xivo.chain_map.ChainMap): the
// main file, then every *.yml file not starting with "." in its extra_config_files
// directory (default /etc/wazo-purge-db/conf.d/); the conf.d files in name order
// come before the main file, and the first file that sets a key wins, mappings
// merged key by key (days_to_keep_per_plugin in 10-a.yml beats the same plugin in
// 50-b.yml, which beats config.yml; plugins only one file names are kept).
//
// path "" reads nothing: days_to_keep 365. A missing file at DefaultPurgeConfig is
// not an error (a host without wazo-purge-db); a missing file elsewhere is, and so
// is a file that cannot be read or parsed, or a value that is not a whole number of
// days of at least 0 — also in conf.d, where wazo-purge-db would skip a file it
// cannot parse: purgeguard then could not say what the purge keeps, so it refuses
// to guess.
func LoadPurgeDB(path string) (PurgeDB, error) {
	out := PurgeDB{DaysToKeep: wazoPurgeDBDays, PerPlugin: map[string]int{}}
	if path == "" {
		return out, nil
	}
	main, err := readPurgeFile(path)
	if errors.Is(err, fs.ErrNotExist) && path == DefaultPurgeConfig {
		main, err = nil, nil
	}
	if err != nil {
		return out, err
	}
	dir := defaultPurgeConfDir
	if n := mapValue(main, "extra_config_files"); n != nil {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return out, &Error{File: path, Line: n.Line, Key: "extra_config_files", Msg: "must be a directory"}
		}
		dir = n.Value
	}
	type doc struct {
		file string
		root *yaml.Node
	}
	var docs []doc
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, &Error{File: dir, Msg: err.Error()}
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n := e.Name(); !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".yml") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		file := filepath.Join(dir, n)
		root, err := readPurgeFile(file)
		if err != nil {
			return out, err
		}
		docs = append(docs, doc{file, root})
	}
	if main != nil || path != DefaultPurgeConfig {
		docs = append(docs, doc{path, main})
	}
	daysSet := false
	for _, d := range docs {
		out.Files = append(out.Files, d.file)
		if n := mapValue(d.root, "days_to_keep"); n != nil && !daysSet {
			if out.DaysToKeep, err = purgeDays(d.file, "days_to_keep", n); err != nil {
				return out, err
			}
			daysSet = true
		}
		n := mapValue(d.root, "days_to_keep_per_plugin")
		if n == nil {
			continue
		}
		if n.Kind != yaml.MappingNode {
			// ChainMap keeps a first value that is not a mapping whole; wazo-purge-db
			// then fails on it. Refuse it here, where its line is known.
			return out, &Error{File: d.file, Line: n.Line, Key: "days_to_keep_per_plugin", Msg: "must be a mapping of plugin: days"}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if _, ok := out.PerPlugin[k.Value]; ok {
				continue
			}
			days, err := purgeDays(d.file, "days_to_keep_per_plugin."+k.Value, v)
			if err != nil {
				return out, err
			}
			out.PerPlugin[k.Value] = days
		}
	}
	return out, nil
}

// readPurgeFile parses one YAML file; an empty file is an empty mapping, as
// wazo-purge-db takes it.
func readPurgeFile(path string) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: path, Msg: "wazo-purge-db configuration: " + err.Error(), err: err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := lineOf(msg)
		return nil, &Error{File: path, Line: line, Msg: typeErrorMsg(msg)}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Msg: "wazo-purge-db configuration must be a mapping of keys"}
	}
	return root, nil
}

// mapValue is the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// purgeDays reads a number of days: a YAML integer of at least 0 (0 is legal:
// wazo-purge-db -d 0 purges everything up to now).
func purgeDays(file, key string, n *yaml.Node) (int, error) {
	bad := &Error{File: file, Line: n.Line, Key: key}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		bad.Msg = fmt.Sprintf("%q: want a whole number of days", n.Value)
		return 0, bad
	}
	d, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil || d < 0 {
		bad.Msg = fmt.Sprintf("%s: want a whole number of days, 0 or more", n.Value)
		return 0, bad
	}
	return int(d), nil
}
