package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// The oracles: what the file list's entries were written and read with before
// appendFileJSON and fileEntryReader, and what they must stay identical to.

func marshalOracle(f *File) ([]byte, error) { return json.Marshal(f) }

// decodeOracle reads every value of data as ReadFileList read them with
// encoding/json, up to the first error (io.EOF at the end).
func decodeOracle(data []byte) ([]File, error) {
	jd := json.NewDecoder(bytes.NewReader(data))
	jd.DisallowUnknownFields()
	var got []File
	for {
		var f File
		if err := jd.Decode(&f); err != nil {
			return got, err
		}
		got = append(got, f)
	}
}

// decodeFast reads data as ReadFileList does, from r.
func decodeFast(r io.Reader) ([]File, error) {
	er := newFileEntryReader(r)
	var got []File
	for {
		var f File
		if err := er.next(&f); err != nil {
			return got, err
		}
		got = append(got, f)
	}
}

func checkMarshal(t *testing.T, f *File) {
	t.Helper()
	want, wantErr := marshalOracle(f)
	got, err := appendFileJSON(nil, f)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("appendFileJSON(%+v): error %v, json.Marshal: %v", f, err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendFileJSON(%+v):\n got %s\nwant %s", f, got, want)
	}
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := decodeOracle(data)
	for _, r := range []struct {
		name string
		r    io.Reader
	}{
		{"whole", bytes.NewReader(data)},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data))},
		{"halves", iotest.HalfReader(bytes.NewReader(data))},
		{"data and error", iotest.DataErrReader(bytes.NewReader(data))},
	} {
		got, err := decodeFast(r.r)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %q:\n got %+v\nwant %+v", r.name, data, got, want)
		}
		if !sameError(err, wantErr) {
			t.Fatalf("%s: %q: error %#v, want %#v", r.name, data, err, wantErr)
		}
	}
}

// sameError: the same message, and for a syntax error the same offset in the stream.
func sameError(err, want error) bool {
	if err == nil || want == nil {
		return err == want
	}
	if err.Error() != want.Error() || reflect.TypeOf(err) != reflect.TypeOf(want) {
		return false
	}
	var se, wse *json.SyntaxError
	if errors.As(want, &wse) {
		return errors.As(err, &se) && se.Offset == wse.Offset
	}
	var te, wte *json.UnmarshalTypeError
	if errors.As(want, &wte) {
		return errors.As(err, &te) && te.Offset == wte.Offset && te.Field == wte.Field
	}
	return true
}

var (
	tzPlus   = time.FixedZone("", 5*3600+30*60)
	tzMinus  = time.FixedZone("X", -(9*3600 + 30*60))
	tzSecs   = time.FixedZone("LMT", 561)
	tzDay    = time.FixedZone("", 24*3600)
	tzBig    = time.FixedZone("", 99*3600)
	fullFile = File{
		Table: "public.call_logd_recording", Column: "path",
		Path: "/var/lib/wazo/sounds/tenants/6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11/monitor/0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d.wav",
		Size: 480044, Mode: 0o640, ModTime: time.Date(2026, 2, 1, 10, 4, 5, 123456789, time.UTC),
		Owner:  &Owner{UID: 998, GID: 33, User: "asterisk", Group: "www-data"},
		SHA256: strings.Repeat("ab", 32), StoredBytes: 401233, Recovered: true,
		Pack: &FilePack{Index: 3, Offset: 1 << 40},
	}
)

// appendFileJSON writes what json.Marshal writes, byte for byte, errors included.
func TestAppendFileJSON(t *testing.T) {
	with := func(edit func(f *File)) File {
		f := fullFile
		o, p := *f.Owner, *f.Pack
		f.Owner, f.Pack = &o, &p
		edit(&f)
		return f
	}
	tests := []struct {
		name string
		f    File
	}{
		{"zero", File{}},
		{"full", fullFile},
		{"missing", File{Table: "t", Column: "c", Path: "/p", Missing: true}},
		{"outside root", File{Table: "t", Column: "c", Path: "/p", OutsideRoot: true}},
		{"every flag", with(func(f *File) { f.Missing, f.OutsideRoot, f.Recovered = true, true, true })},
		{"html", with(func(f *File) { f.Path = "/a<b>&c/d&amp;e<script>" })},
		{"quotes and backslashes", with(func(f *File) { f.Path = `/a"b\c\\"` })},
		{"control characters", with(func(f *File) { f.Path = "\x00\x01\b\f\n\r\t\x1f\x7f end" })},
		{"line and paragraph separators", with(func(f *File) { f.Path = "a\u2028b\u2029c\u2027d\u202a" })},
		{"invalid utf-8", with(func(f *File) { f.Path = "a\xffb\xc3\x28c\xe2\x82d\xed\xa0\x80e\xf4\x90\x80\x80" })},
		{"valid multibyte", with(func(f *File) { f.Path = "/enregistrements/été/日本/😀.wav" })},
		{"escapes in every string", with(func(f *File) {
			f.Table, f.Column, f.SHA256, f.Owner.User, f.Owner.Group = "<", ">", "&", "\n", "\u2028"
		})},
		{"negative numbers", with(func(f *File) { f.Size, f.StoredBytes, f.Pack.Index, f.Pack.Offset = -1, -42, -3, -7 })},
		{"extreme numbers", with(func(f *File) {
			f.Size, f.StoredBytes, f.Pack.Index, f.Pack.Offset = math.MinInt64, math.MaxInt64, math.MaxInt, math.MinInt64
			f.Mode, f.Owner.UID, f.Owner.GID = math.MaxUint32, math.MaxUint32, 0
		})},
		{"zero owner and pack", with(func(f *File) { f.Owner, f.Pack = &Owner{}, &FilePack{} })},
		{"owner without names", with(func(f *File) { f.Owner.User, f.Owner.Group = "", "" })},
		{"owner with a group only", with(func(f *File) { f.Owner.User = "" })},
		{"no mtime", with(func(f *File) { f.ModTime = time.Time{} })},
		{"zero time in a zone", with(func(f *File) { f.ModTime = time.Time{}.In(tzPlus) })},
		{"unix epoch", with(func(f *File) { f.ModTime = time.Unix(0, 0).UTC() })},
		{"local time", with(func(f *File) { f.ModTime = time.Unix(1700000000, 5).Local() })},
		{"whole seconds", with(func(f *File) { f.ModTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })},
		{"trailing zeros in nanoseconds", with(func(f *File) { f.ModTime = time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC) })},
		{"positive offset", with(func(f *File) { f.ModTime = time.Date(2026, 1, 2, 3, 4, 5, 1, tzPlus) })},
		{"negative offset", with(func(f *File) { f.ModTime = time.Date(2026, 1, 2, 3, 4, 5, 1, tzMinus) })},
		{"offset with seconds", with(func(f *File) { f.ModTime = time.Date(1850, 1, 2, 3, 4, 5, 0, tzSecs) })},
		{"offset of a day", with(func(f *File) { f.ModTime = time.Date(2026, 1, 2, 3, 4, 5, 0, tzDay) })},
		{"offset of 99 hours", with(func(f *File) { f.ModTime = time.Date(2026, 1, 2, 3, 4, 5, 0, tzBig) })},
		{"year 0", with(func(f *File) { f.ModTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"year 9999", with(func(f *File) { f.ModTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) })},
		{"year 10000", with(func(f *File) { f.ModTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"year -1", with(func(f *File) { f.ModTime = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"year 10000 in a zone", with(func(f *File) { f.ModTime = time.Date(10000, 1, 1, 0, 0, 0, 0, tzMinus) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMarshal(t, &tt.f) })
	}
}

// FuzzAppendFileJSON: for any entry, appendFileJSON writes json.Marshal's bytes, or
// fails with its error.
func FuzzAppendFileJSON(f *testing.F) {
	f.Add("public.t", "path", "/rec/a.wav", "asterisk", "www-data", strings.Repeat("0f", 32),
		int64(1000), uint32(0o644), int64(1700000000), int64(123), 0, int64(900), uint32(998), uint32(33), 2, int64(4096), uint8(0xff))
	f.Add("<", ">", "&\u2028\u2029\xff\x00\"\\", "", "", "", int64(-1), uint32(0), int64(-62135596800), int64(0), 0, int64(0), uint32(0), uint32(0), 0, int64(0), uint8(0))
	f.Add("a", "b", "c", "d", "e", "f", int64(math.MaxInt64), uint32(math.MaxUint32), int64(253402300800), int64(999999999), 561, int64(math.MinInt64), uint32(1), uint32(2), -1, int64(-1), uint8(0x55))
	f.Add("a", "b", "c", "d", "e", "f", int64(0), uint32(0), int64(-62167219200-1), int64(0), -86400, int64(0), uint32(1), uint32(2), 0, int64(0), uint8(0xaa))
	f.Fuzz(func(t *testing.T, table, column, path, user, group, sum string, size int64, mode uint32,
		sec, nsec int64, zone int, stored int64, uid, gid uint32, index int, offset int64, flags uint8) {
		file := File{
			Table: table, Column: column, Path: path, Size: size, Mode: mode, SHA256: sum, StoredBytes: stored,
			Missing: flags&1 != 0, OutsideRoot: flags&2 != 0, Recovered: flags&4 != 0,
		}
		switch flags >> 6 {
		case 1:
			file.ModTime = time.Unix(sec, nsec).UTC()
		case 2:
			file.ModTime = time.Unix(sec, nsec).In(time.FixedZone("", zone))
		case 3:
			file.ModTime = time.Unix(sec, nsec).Local()
		}
		if flags&8 != 0 {
			file.Owner = &Owner{UID: uid, GID: gid, User: user, Group: group}
		}
		if flags&16 != 0 {
			file.Pack = &FilePack{Index: index, Offset: offset}
		}
		checkMarshal(t, &file)
	})
}

// fileLines are entries in and out of the form fileEntryReader parses itself.
var fileLines = []string{
	`{"table":"public.call_logd_recording","column":"path","path":"/rec/a.wav","size":1000,"mode":420,"mtime":"2026-02-01T10:04:05.123456789Z","owner":{"uid":998,"gid":33,"user":"asterisk","group":"www-data"},"sha256":"` + strings.Repeat("ab", 32) + `","stored_bytes":900,"recovered":true,"pack":{"index":3,"offset":1099511627776}}`,
	`{"table":"t","column":"c","path":"/p","missing":true}`,
	`{"table":"t","column":"c","path":"/p","outside_root":true,"missing":false,"recovered":false}`,
	`{"table":"t","column":"c","path":"/p","missing":false,"outside_root":true,"recovered":false}`,
	`{}`,
	`{"table":"t"}`,
	`{"path":"/p","table":"t"}`,
	`{"table":"t","table":"u"}`,
	`{"Table":"t","column":"c","path":"/p"}`,
	`{"table":"t","column":"c","path":"/p","extra":1}`,
	`{"table":"t","column":"c","path":"/p","owner":{"uid":1,"gid":2,"name":"x"}}`,
	`{"table":"t","column":"c","path":"/p","owner":{"gid":2,"uid":1}}`,
	`{"table":"t","column":"c","path":"/p","owner":{}}`,
	`{"table":"t","column":"c","path":"/p","owner":null}`,
	`{"table":"t","column":"c","path":"/p","pack":{}}`,
	`{"table":"t","column":"c","path":"/p","pack":{"offset":1,"index":2}}`,
	`{"table":"t","column":"c","path":"/p","pack":{"index":1.0}}`,
	`{"table":"t","column":"c","path":"/p","pack":{"index":9223372036854775807}}`,
	`{"table":"t","column":"c","path":"/p","pack":{"index":9223372036854775808}}`,
	`{"table":"t","column":"c","path":"/p","pack":{"index":-9223372036854775808}}`,
	`{"table":"t","column":"c","path":"/p","size":-0}`,
	`{"table":"t","column":"c","path":"/p","mode":-0}`,
	`{"table":"t","column":"c","path":"/p","mode":-1}`,
	`{"table":"t","column":"c","path":"/p","mode":4294967295}`,
	`{"table":"t","column":"c","path":"/p","mode":4294967296}`,
	`{"table":"t","column":"c","path":"/p","size":01}`,
	`{"table":"t","column":"c","path":"/p","size":1e3}`,
	`{"table":"t","column":"c","path":"/p","size":1.5}`,
	`{"table":"t","column":"c","path":"/p","size":"1"}`,
	`{"table":"t","column":"c","path":"/p","size":999999999999999999}`,
	`{"table":"t","column":"c","path":"/p","size":-999999999999999999}`,
	`{"table":"t","column":"c","path":"/p","size":null}`,
	`{"table":"t","column":"c","path":"/p","missing":"true"}`,
	`{"table":"t","column":"c","path":"/p","missing":tru}`,
	`{"table":"t","column":"c","path":"/p","missing":truex}`,
	`{"table":"t","column":"c","path":"/a\u003cb\u0026c\u2028\ufffd"}`,
	`{"table":"t","column":"c","path":"/a\"b\\c\/d\n"}`,
	`{"table":"t","column":"c","path":"/été/日本"}`,
	"{\"table\":\"t\",\"column\":\"c\",\"path\":\"/a\xffb\"}",
	"{\"table\":\"t\",\"column\":\"c\",\"path\":\"/a\tb\"}",
	`{"table":"t","column":"c","path":"/p","mtime":"2026-02-01T10:04:05+05:30"}`,
	`{"table":"t","column":"c","path":"/p","mtime":"2026-02-01T10:04:05.5-09:30"}`,
	`{"table":"t","column":"c","path":"/p","mtime":"2026-02-01T10:04:05z"}`,
	`{"table":"t","column":"c","path":"/p","mtime":"2026-02-01 10:04:05Z"}`,
	`{"table":"t","column":"c","path":"/p","mtime":"2026-02-01T10:04:05+24:00"}`,
	`{"table":"t","column":"c","path":"/p","mtime":"10000-02-01T10:04:05Z"}`,
	`{"table":"t","column":"c","path":"/p","mtime":null}`,
	`{"table":"t","column":"c","path":"/p","mtime":""}`,
	`{"table":"t","column":"c","path":"/p","mtime":1}`,
	`{"table":"t","column":"c","path":"/p","mtime":"2026-02-01T10:04:05\u005a"}`,
	`{"table":"t", "column":"c"}`,
	` {"table":"t"}`,
	`{"table":"t"} `,
	`{"table":"t"}{"table":"u"}`,
	`{"table":"t"}x`,
	`{"table":"t",}`,
	`{"table":"t"`,
	`[]`,
	`null`,
	`1`,
	`"x"`,
	``,
	`{"table":"t","column":"c","path":"/p","pack":{"index":1,"offset":2},"pack":{"index":3}}`,
	`{"table":"t","column":"c","path":"/p","pack":{"index":1,"offset":2,"index":5}}`,
	`{"table":"t","column":"c","path":"/p","owner":{"uid":1,"gid":2,"user":"u","group":"g","uid":3}}`,
	`{"table":"t","column":"c","path":"/p","owner":{"uid":1,"gid":2,"user":"u","group":"g"},}`,
}

// fileEntryReader reads any stream as encoding/json does: the same entries, and the
// same error at the same place, whatever the reads' sizes.
func TestFileEntryReader(t *testing.T) {
	for i, l := range fileLines {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkDecode(t, []byte(l))
			checkDecode(t, []byte(l+"\n"))
			checkDecode(t, []byte(fileLines[0]+"\n"+l+"\n"+fileLines[1]+"\n"))
			checkDecode(t, []byte(fileLines[1]+"\n"+l+fileLines[0]+"\n\n"))
			checkDecode(t, []byte(strings.Replace(l, ",", ",\n", 1)+"\n"+fileLines[0]+"\n"))
		})
	}
	var all bytes.Buffer
	for range 3000 { // past a buffer's 64 KiB, with entries astride it
		for _, l := range fileLines[:4] {
			all.WriteString(l + "\n")
		}
	}
	checkDecode(t, all.Bytes())
	long := `{"table":"t","column":"c","path":"/` + strings.Repeat("x", maxFastEntry+10) + `"}`
	checkDecode(t, []byte(long+"\n"+fileLines[0]+"\n"+long+"\n"))
	checkDecode(t, []byte(fileLines[0]+"\n"+long+"\n"+fileLines[0]))
}

// The form fileEntryReader parses itself is what appendFileJSON writes: every
// entry a snapshot writes is read without encoding/json.
func TestFileParser_TakesWhatIsWritten(t *testing.T) {
	for _, f := range []File{fullFile, {Table: "t", Column: "c", Path: "/é", Missing: true}, {}} {
		line, err := appendFileJSON(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		var p fileParser
		var got File
		if !p.parse(line, &got) {
			t.Fatalf("parse(%s): refused, want taken", line)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("parse(%s): got %+v, want %+v", line, got, f)
		}
	}
}

// A list as a snapshot writes it is read without encoding/json but at its end.
func TestFileEntryReader_FastOnWhatIsWritten(t *testing.T) {
	var data []byte
	files := []File{fullFile, {Table: "t", Column: "c", Path: "/é", Missing: true}, {}}
	for range 5000 { // past a buffer
		for _, f := range files {
			var err error
			if data, err = appendFileJSON(data, &f); err != nil {
				t.Fatal(err)
			}
			data = append(data, '\n')
		}
	}
	er := newFileEntryReader(iotest.HalfReader(bytes.NewReader(data)))
	n := 0
	for {
		var f File
		err := er.next(&f)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, files[n%len(files)]) {
			t.Fatalf("entry %d: got %+v, want %+v", n, f, files[n%len(files)])
		}
		n++
	}
	if n != 5000*len(files) || er.decoded != 1 {
		t.Errorf("read %d entries, %d of them by encoding/json; want %d, and only the end", n, er.decoded-1, 5000*len(files))
	}
}

// FuzzFileEntryReader: on any bytes, fileEntryReader gives what encoding/json gives,
// entries and error; and a line the fast parser takes is one encoding/json decodes
// alone to the same entry.
func FuzzFileEntryReader(f *testing.F) {
	for _, l := range fileLines {
		f.Add([]byte(l + "\n"))
	}
	f.Add([]byte(fileLines[0] + "\n" + fileLines[1] + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		line, _, _ := bytes.Cut(data, []byte("\n"))
		var p fileParser
		var got File
		if !p.parse(line, &got) {
			return
		}
		want, err := decodeOracle(line)
		if err != io.EOF || len(want) != 1 || !reflect.DeepEqual(got, want[0]) {
			t.Fatalf("parse(%q) took %+v; encoding/json: %+v, %v", line, got, want, err)
		}
	})
}
