package tenantlist

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
)

type jsonFormat int

const (
	arrayList    jsonFormat = iota // ["…", …]
	wazoAuthList                   // {"items":[{"uuid":"…"}, …], …}
)

// jsonDoc is a validated JSON input, with what is needed to name lines in errors.
type jsonDoc struct {
	data []byte
	name string
	line int // line of data[0] in the input
}

// value is a raw JSON value and where it starts in the document.
type value struct {
	raw json.RawMessage
	off int64
}

func parseJSON(br *bufio.Reader, name string, line int, f jsonFormat) ([]uuid.UUID, error) {
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, err // reported by Parse from the limitReader
	}
	doc := &jsonDoc{data: data, name: name, line: line}
	// Validate the whole input first: it rejects trailing garbage after the value
	// and gives syntax errors an offset, hence a line.
	var whole json.RawMessage
	if err := json.Unmarshal(data, &whole); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &ParseError{Source: name, Line: doc.lineAt(se.Offset), Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
		}
		return nil, &ParseError{Source: name, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
	}
	if f == arrayList {
		return doc.array(value{raw: data})
	}
	return doc.wazoAuth(value{raw: data})
}

// array reads ["…", …].
func (d *jsonDoc) array(v value) ([]uuid.UUID, error) {
	elems, err := d.elements(v, "")
	if err != nil {
		return nil, err
	}
	out := newCollector()
	for i, e := range elems {
		id, err := d.id(e, fmt.Sprintf("[%d]", i))
		if err != nil {
			return nil, err
		}
		out.add(id)
	}
	return out.ids, nil
}

// wazoAuth reads wazo-auth's GET /tenants response.
func (d *jsonDoc) wazoAuth(v value) ([]uuid.UUID, error) {
	fields, err := d.fields(v, "")
	if err != nil {
		return nil, err
	}
	items, ok := fields["items"]
	if !ok {
		return nil, &ParseError{Source: d.name, Index: "items", Err: fmt.Errorf("%w (want wazo-auth's {\"items\":[{\"uuid\":…}]})", ErrMissing)}
	}
	elems, err := d.elements(items, "items")
	if err != nil {
		return nil, err
	}
	out := newCollector()
	for i, e := range elems {
		at := fmt.Sprintf("items[%d]", i)
		item, err := d.fields(e, at)
		if err != nil {
			return nil, err
		}
		u, ok := item["uuid"]
		if !ok {
			return nil, &ParseError{Source: d.name, Line: d.lineAt(e.off), Index: at + ".uuid", Err: ErrMissing}
		}
		id, err := d.id(u, at+".uuid")
		if err != nil {
			return nil, err
		}
		out.add(id)
	}
	// wazo-auth paginates (limit, offset) and searches (search): items then holds
	// fewer tenants than "filtered" or "total" say, and the missing ones would
	// look deleted.
	for _, key := range []string{"filtered", "total"} {
		count, ok := fields[key]
		if !ok || kind(count.raw) != "number" {
			continue // absent or not a number: ignored like any other key
		}
		var n float64
		if err := json.Unmarshal(count.raw, &n); err != nil || n != float64(len(elems)) {
			return nil, &ParseError{Source: d.name, Line: d.lineAt(count.off), Index: key, Err: fmt.Errorf(
				"%w: %s tenants, but items holds %d (a paginated or searched listing is not a source of truth)",
				ErrInconsistentListing, count.raw, len(elems))}
		}
	}
	return out.ids, nil
}

// id parses a JSON string holding a tenant ID.
func (d *jsonDoc) id(v value, at string) (uuid.UUID, error) {
	if err := d.expect(v, at, "string"); err != nil {
		return uuid.Nil, err
	}
	var s string
	if err := json.Unmarshal(v.raw, &s); err != nil {
		return uuid.Nil, &ParseError{Source: d.name, Line: d.lineAt(v.off), Index: at, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
	}
	id, err := parseID(s)
	if err != nil {
		return uuid.Nil, &ParseError{Source: d.name, Line: d.lineAt(v.off), Index: at, Input: echo(s), Err: err}
	}
	return id, nil
}

// elements splits a JSON array into its values.
func (d *jsonDoc) elements(v value, at string) ([]value, error) {
	if err := d.expect(v, at, "array"); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(v.raw))
	if _, err := dec.Token(); err != nil {
		return nil, d.syntax(v, at, err)
	}
	var out []value
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, d.syntax(v, at, err)
		}
		out = append(out, value{raw: raw, off: v.off + dec.InputOffset() - int64(len(raw))})
	}
	return out, nil
}

// fields splits a JSON object into its values by key. Keys are matched exactly,
// unlike encoding/json's struct decoding, and a repeated key is an error: which of
// two "uuid"s is the tenant is not a guess to make.
func (d *jsonDoc) fields(v value, at string) (map[string]value, error) {
	if err := d.expect(v, at, "object"); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(v.raw))
	if _, err := dec.Token(); err != nil {
		return nil, d.syntax(v, at, err)
	}
	out := map[string]value{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, d.syntax(v, at, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, d.syntax(v, at, err)
		}
		if _, dup := out[key]; dup {
			return nil, &ParseError{Source: d.name, Line: d.lineAt(v.off), Index: at, Err: fmt.Errorf("%w %q", ErrDuplicateKey, key)}
		}
		out[key] = value{raw: raw, off: v.off + dec.InputOffset() - int64(len(raw))}
	}
	return out, nil
}

// expect checks the JSON type of v from its first byte.
func (d *jsonDoc) expect(v value, at, want string) error {
	if got := kind(v.raw); got != want {
		return &ParseError{Source: d.name, Line: d.lineAt(v.off), Index: at, Err: fmt.Errorf("%w: want %s, got %s", ErrJSONType, want, got)}
	}
	return nil
}

// syntax reports a decoding error in a value already validated: it should not happen.
func (d *jsonDoc) syntax(v value, at string, err error) error {
	return &ParseError{Source: d.name, Line: d.lineAt(v.off), Index: at, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
}

// lineAt is the input line of byte off of the document.
func (d *jsonDoc) lineAt(off int64) int {
	off = min(max(off, 0), int64(len(d.data)))
	return d.line + bytes.Count(d.data[:off], []byte{'\n'})
}

func kind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
