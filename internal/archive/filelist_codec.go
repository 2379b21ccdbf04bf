package archive

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// A file list has one entry per file of a tenant, a million for a call centre:
// encoding/json's reflection costs more per entry than the rest of saving a small
// file (issues #12 and #17). appendFileJSON writes what json.Marshal(&f) writes,
// byte for byte, and parseFileJSON reads that form, and only that form, giving what
// encoding/json gives; anything else goes through encoding/json. The tests hold
// both to encoding/json (FuzzAppendFileJSON, FuzzFileEntryReader).

// appendFileJSON appends json.Marshal(f) to b, with its error for an mtime that
// RFC 3339 cannot write.
func appendFileJSON(b []byte, f *File) ([]byte, error) {
	b = append(b, `{"table":`...)
	b = appendJSONString(b, f.Table)
	b = append(b, `,"column":`...)
	b = appendJSONString(b, f.Column)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, f.Path)
	if f.Size != 0 {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, f.Size, 10)
	}
	if f.Mode != 0 {
		b = append(b, `,"mode":`...)
		b = strconv.AppendUint(b, uint64(f.Mode), 10)
	}
	if !f.ModTime.IsZero() {
		b = append(b, `,"mtime":`...)
		var err error
		if b, err = appendJSONTime(b, f.ModTime); err != nil {
			return nil, err
		}
	}
	if o := f.Owner; o != nil {
		b = append(b, `,"owner":{"uid":`...)
		b = strconv.AppendUint(b, uint64(o.UID), 10)
		b = append(b, `,"gid":`...)
		b = strconv.AppendUint(b, uint64(o.GID), 10)
		if o.User != "" {
			b = append(b, `,"user":`...)
			b = appendJSONString(b, o.User)
		}
		if o.Group != "" {
			b = append(b, `,"group":`...)
			b = appendJSONString(b, o.Group)
		}
		b = append(b, '}')
	}
	if f.SHA256 != "" {
		b = append(b, `,"sha256":`...)
		b = appendJSONString(b, f.SHA256)
	}
	if f.StoredBytes != 0 {
		b = append(b, `,"stored_bytes":`...)
		b = strconv.AppendInt(b, f.StoredBytes, 10)
	}
	if f.Missing {
		b = append(b, `,"missing":true`...)
	}
	if f.OutsideRoot {
		b = append(b, `,"outside_root":true`...)
	}
	if f.Recovered {
		b = append(b, `,"recovered":true`...)
	}
	if p := f.Pack; p != nil {
		b = append(b, `,"pack":{"index":`...)
		b = strconv.AppendInt(b, int64(p.Index), 10)
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, p.Offset, 10)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendJSONTime appends t as time.Time.MarshalJSON does, and fails as
// json.Marshal does on a time it refuses.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	n := len(b)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano) // appendFormatRFC3339(b, true), as MarshalJSON
	s := b[n+1:]
	// MarshalJSON's strict checks: a year of four digits, a zone offset of whole
	// minutes under 24 hours.
	strict := len(s) > 4 && s[4] == '-'
	if strict && s[len(s)-1] != 'Z' {
		c := s[len(s)-len("Z07:00")]
		strict = (c < '0' || c > '9') && 10*(s[len(s)-5]-'0')+(s[len(s)-4]-'0') < 24
	}
	if !strict {
		// MarshalJSON says why, as json.Marshal would.
		j, err := t.MarshalJSON()
		if err != nil {
			return nil, &json.MarshalerError{Type: reflect.TypeFor[time.Time](), Err: err}
		}
		return append(b[:n], j...), nil
	}
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// jsonPlain holds the ASCII bytes encoding/json writes as they are (its htmlSafeSet).
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s quoted as encoding/json quotes a string (with its HTML
// escaping): <, >, & and control characters as \u00XX (\b \f \n \r \t \" \\ short),
// U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		} else {
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// fileKeys are File's JSON names in the order of its fields, json.Marshal's order.
var fileKeys = [...]string{"table", "column", "path", "size", "mode", "mtime", "owner", "sha256",
	"stored_bytes", "missing", "outside_root", "recovered", "pack"}

// fileParser reads one entry in json.Marshal's form: no space, fields in order,
// strings without escapes. Its methods report false at the first byte outside that
// form, and the caller then leaves the entry to encoding/json.
type fileParser struct {
	b []byte
	i int
	// the last table, column, user and group read: every entry of a list names one
	// of a few, and reusing them saves four strings per entry.
	table, column, user, group string
}

// parse reads line, an entry without its newline, into f, as
// json.Decoder.Decode(f) with DisallowUnknownFields would; false when line is not
// in the form parse knows, and f is then to be decoded again.
func (p *fileParser) parse(line []byte, f *File) bool {
	*f = File{}
	p.b, p.i = line, 0
	if !p.skip('{') {
		return false
	}
	if p.skip('}') {
		return p.i == len(p.b)
	}
	next := 0
	for {
		k, ok := p.key(fileKeys[next:])
		if !ok {
			return false
		}
		k += next
		next = k + 1
		switch k {
		case 0:
			f.Table, ok = p.reuse(&p.table)
		case 1:
			f.Column, ok = p.reuse(&p.column)
		case 2:
			f.Path, ok = p.str()
		case 3:
			f.Size, ok = p.int()
		case 4:
			f.Mode, ok = p.uint32()
		case 5:
			ok = p.time(&f.ModTime)
		case 6:
			f.Owner, ok = p.owner()
		case 7:
			f.SHA256, ok = p.str()
		case 8:
			f.StoredBytes, ok = p.int()
		case 9:
			f.Missing, ok = p.bool()
		case 10:
			f.OutsideRoot, ok = p.bool()
		case 11:
			f.Recovered, ok = p.bool()
		case 12:
			f.Pack, ok = p.pack()
		}
		if !ok {
			return false
		}
		if p.skip('}') {
			return p.i == len(p.b)
		}
		if !p.skip(',') || next == len(fileKeys) {
			return false
		}
	}
}

func (p *fileParser) owner() (*Owner, bool) {
	if !p.skip('{') {
		return nil, false
	}
	o := &Owner{}
	if p.skip('}') {
		return o, true
	}
	keys := [...]string{"uid", "gid", "user", "group"}
	for next := 0; next < len(keys); {
		k, ok := p.key(keys[next:])
		if !ok {
			return nil, false
		}
		k += next
		next = k + 1
		switch k {
		case 0:
			o.UID, ok = p.uint32()
		case 1:
			o.GID, ok = p.uint32()
		case 2:
			o.User, ok = p.reuse(&p.user)
		case 3:
			o.Group, ok = p.reuse(&p.group)
		}
		if !ok {
			return nil, false
		}
		if p.skip('}') {
			return o, true
		}
		if !p.skip(',') {
			return nil, false
		}
	}
	return nil, false
}

func (p *fileParser) pack() (*FilePack, bool) {
	if !p.skip('{') {
		return nil, false
	}
	fp := &FilePack{}
	if p.skip('}') {
		return fp, true
	}
	keys := [...]string{"index", "offset"}
	for next := 0; next < len(keys); {
		k, ok := p.key(keys[next:])
		if !ok {
			return nil, false
		}
		k += next
		next = k + 1
		var v int64
		v, ok = p.int()
		if !ok {
			return nil, false
		}
		if k == 0 {
			fp.Index = int(v) // at most 18 digits: an int of 64 bits (a 32-bit int would need a check)
			if int64(fp.Index) != v {
				return nil, false
			}
		} else {
			fp.Offset = v
		}
		if p.skip('}') {
			return fp, true
		}
		if !p.skip(',') {
			return nil, false
		}
	}
	return nil, false
}

func (p *fileParser) skip(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// key reads `"name":` and returns the index of name in keys.
func (p *fileParser) key(keys []string) (int, bool) {
	s, ok := p.raw()
	if !ok || !p.skip(':') {
		return 0, false
	}
	for i, k := range keys {
		if string(s) == k {
			return i, true
		}
	}
	return 0, false
}

// raw reads a string without escapes or control characters and returns its bytes
// between the quotes.
func (p *fileParser) raw() ([]byte, bool) {
	if !p.skip('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) && jsonPlainRead[p.b[p.i]] {
		p.i++
	}
	if p.i == len(p.b) || p.b[p.i] != '"' { // the end, an escape or a control character
		return nil, false
	}
	p.i++
	return p.b[start : p.i-1], true
}

// jsonPlainRead holds the bytes a JSON string holds as they are.
var jsonPlainRead = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

// str reads a string: encoding/json gives its bytes as they are when they are valid
// UTF-8 and hold no escape.
func (p *fileParser) str() (string, bool) {
	s, ok := p.raw()
	if !ok || !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

// reuse reads a string into last unless it holds it already.
func (p *fileParser) reuse(last *string) (string, bool) {
	s, ok := p.raw()
	if !ok || !utf8.Valid(s) {
		return "", false
	}
	if string(s) != *last {
		*last = string(s)
	}
	return *last, true
}

// digits reads a JSON integer of at most 18 digits (which no int64 overflows), as
// its sign and magnitude.
func (p *fileParser) digits() (neg bool, v int64, ok bool) {
	neg = p.skip('-')
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		v = 10*v + int64(p.b[p.i]-'0')
		p.i++
	}
	n := p.i - start
	// JSON allows no leading zero; a fraction or an exponent stops at the caller's
	// next byte.
	if n == 0 || n > 18 || n > 1 && p.b[start] == '0' {
		return false, 0, false
	}
	return neg, v, true
}

func (p *fileParser) int() (int64, bool) {
	neg, v, ok := p.digits()
	if neg {
		v = -v
	}
	return v, ok
}

func (p *fileParser) uint32() (uint32, bool) {
	neg, v, ok := p.digits()
	if !ok || neg || v > 1<<32-1 { // strconv.ParseUint refuses "-0" too
		return 0, false
	}
	return uint32(v), true
}

func (p *fileParser) bool() (bool, bool) {
	rest := p.b[p.i:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(rest, []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// time reads an mtime: encoding/json hands time.Time.UnmarshalJSON the quoted
// literal, which has no escape here.
func (p *fileParser) time(t *time.Time) bool {
	start := p.i
	if _, ok := p.raw(); !ok {
		return false
	}
	return t.UnmarshalJSON(p.b[start:p.i]) == nil
}

// maxFastEntry bounds the bytes fileEntryReader looks through for an entry's
// newline; a longer entry is left to encoding/json, which reads it whole as before.
const maxFastEntry = 64 << 10

// fileEntryReader reads a file list's entries from r, as a json.Decoder with
// DisallowUnknownFields calling Decode in turn does: the same entries, the same
// errors. An entry alone on its line in json.Marshal's form is parsed here; from
// anything else on (another order of fields, an escape, a space, a value over
// several lines or several on one line, the end) one value is decoded by a
// json.Decoder fed what is buffered and then r, and what that decoder read beyond
// the value is buffered again.
type fileEntryReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	off        int64 // of buf[start] in the stream
	rerr       error // of r, once it returned one
	err        error // returned from then on
	p          fileParser
	decoded    int // values left to encoding/json, for the tests
}

func newFileEntryReader(r io.Reader) *fileEntryReader {
	return &fileEntryReader{r: r, buf: make([]byte, 64<<10)}
}

// next reads the next entry into f; io.EOF after the last.
func (er *fileEntryReader) next(f *File) error {
	if er.err != nil {
		return er.err
	}
	// The reader stops right after an entry, before its newline, where a
	// json.Decoder stops: an error of encoding/json then counts from where it would.
	lead := 0
	if er.off > 0 {
		lead = 1
	}
	scanned := 0
	for {
		if avail := er.buf[er.start:er.end]; len(avail) > lead {
			if lead == 1 && avail[0] != '\n' {
				return er.decode(f)
			}
			if i := bytes.IndexByte(avail[lead+scanned:], '\n'); i >= 0 {
				if !er.p.parse(avail[lead:lead+scanned+i], f) {
					return er.decode(f)
				}
				n := lead + scanned + i
				er.start += n
				er.off += int64(n)
				return nil
			}
			scanned = len(avail) - lead
		}
		if er.rerr != nil || scanned >= maxFastEntry {
			return er.decode(f)
		}
		er.fill()
	}
}

// fill reads once from r after what is buffered.
func (er *fileEntryReader) fill() {
	if er.start > 0 {
		er.end = copy(er.buf, er.buf[er.start:er.end])
		er.start = 0
	}
	if er.end == len(er.buf) {
		er.buf = append(er.buf, make([]byte, len(er.buf))...)
	}
	n, err := er.r.Read(er.buf[er.end:])
	er.end += n
	if err != nil {
		er.rerr = err
	}
}

// decode reads one value with encoding/json.
func (er *fileEntryReader) decode(f *File) error {
	er.decoded++
	*f = File{}
	rest := er.r
	if er.rerr != nil {
		rest = errReader{er.rerr}
	}
	buffered := bytes.NewReader(er.buf[er.start:er.end])
	jd := json.NewDecoder(io.MultiReader(buffered, rest))
	jd.DisallowUnknownFields()
	if err := jd.Decode(f); err != nil {
		if se, ok := err.(*json.SyntaxError); ok {
			se.Offset += er.off // a single decoder's offset is in the whole stream
		}
		er.err = err
		return err
	}
	er.off += jd.InputOffset()
	// Buffer again what the decoder read and did not use, and what it did not read
	// of the buffer.
	over, _ := io.ReadAll(jd.Buffered())
	left := er.buf[er.end-buffered.Len() : er.end]
	keep := make([]byte, 0, max(len(er.buf), len(over)+len(left)))
	keep = append(append(keep, over...), left...)
	er.buf, er.start, er.end = keep[:cap(keep)], 0, len(keep)
	return nil
}

// errReader returns err from every Read: what r returned once, for the decoder
// that reads on.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
