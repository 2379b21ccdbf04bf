package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// env is a generated call-logd database with its files, and a store.
type env struct {
	dsn        string
	conn       *pgx.Conn
	res        *fixture.Result
	recordings string
	exports    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := testenv.Context(t)
	e := &env{dsn: testenv.Postgres(t), recordings: t.TempDir(), exports: t.TempDir()}
	e.conn = testenv.Connect(t, e.dsn)
	if err := fixture.CreateSchema(ctx, e.conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, e.conn, fixture.Options{Seed: 7, Tenants: 4, CallLogsPerTenant: 60,
		BigTenantCallLogs: 200, RecordingsRoot: e.recordings, ExportsRoot: e.exports})
	if err != nil {
		t.Fatal(err)
	}
	e.res = res
	return e
}

func (e *env) options(tenants ...uuid.UUID) snapshot.Options {
	root, _ := catalog.ParseName("public.call_logd_tenant")
	rec, _ := catalog.ParseName("public.call_logd_recording")
	exp, _ := catalog.ParseName("public.call_logd_export")
	return snapshot.Options{
		Tenants: tenants, Reason: "test", Jobs: 2, Level: 3, ToolVersion: "test",
		Graph: catalog.Options{Root: root, Key: "uuid"},
		Files: []profile.FileColumn{
			{Table: rec, Column: "path", Root: e.recordings},
			{Table: exp, Column: "path", Root: e.exports},
		},
	}
}

func (e *env) run(t *testing.T, s storage.Store, o snapshot.Options) []*archive.Manifest {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := snapshot.Run(testenv.Context(t), cfg, s, o)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return manifests(t, s, ms)
}

func fileStore(t *testing.T) storage.Store { return testenv.FileStore(t) }

func s3Store(t *testing.T) storage.Store { return testenv.S3Store(t, "pg") }

var backends = []struct {
	name string
	open func(t *testing.T) storage.Store
}{{"file", fileStore}, {"s3", s3Store}}

// tableLines returns the COPY text lines of a whole table, with the manifest's columns.
func tableLines(t *testing.T, q interface {
	Conn() *pgx.Conn
}, tb archive.Table) []string {
	t.Helper()
	cols := make([]string, len(tb.Columns))
	for i, c := range tb.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	var buf bytes.Buffer
	sql := "COPY (SELECT " + strings.Join(cols, ", ") + " FROM " + pgx.Identifier{tb.Schema, tb.Name}.Sanitize() + ") TO STDOUT"
	if _, err := q.Conn().PgConn().CopyTo(testenv.Context(t), &buf, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return splitLines(buf.String())
}

func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	slices.Sort(lines)
	return lines
}

// minus returns the lines of a not in b, as multisets; both sorted.
func minus(a, b []string) []string {
	var out []string
	i, j := 0, 0
	for i < len(a) {
		switch {
		case j >= len(b) || a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			j++
		default:
			i++
			j++
		}
	}
	return out
}

func storedLines(t *testing.T, s storage.Store, key string) []string {
	t.Helper()
	rc, err := s.Get(testenv.Context(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dec, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return splitLines(string(b))
}

// The property that matters: for every table, the rows DELETE of the tenant removes
// are exactly the rows the snapshot holds, and every file those rows name is stored.
func TestRun_SnapshotHoldsWhatDeleteRemoves(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t)
			s := b.open(t)
			tenant := e.res.Tenants[0]
			ms := e.run(t, s, e.options(tenant))
			if len(ms) != 1 || ms[0].Tenant != tenant {
				t.Fatalf("got %d manifests, want 1 of %s", len(ms), tenant)
			}
			m := ms[0]
			ctx := testenv.Context(t)
			tx, err := e.conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			before := map[string][]string{}
			for _, tb := range m.Tables {
				before[tb.Key] = tableLines(t, tx, tb)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant); err != nil {
				t.Fatal(err)
			}
			if got := len(m.Tables); got != 8 {
				t.Errorf("tables in manifest: got %d, want the 8 call-logd tenant tables", got)
			}
			var total int64
			for _, tb := range m.Tables {
				removed := minus(before[tb.Key], tableLines(t, tx, tb))
				held := storedLines(t, s, tb.Key)
				if !slices.Equal(removed, held) {
					t.Errorf("%s.%s: DELETE removed %d rows, snapshot holds %d, and they differ", tb.Schema, tb.Name, len(removed), len(held))
				}
				if tb.Rows != int64(len(held)) {
					t.Errorf("%s.%s: manifest says %d rows, object holds %d", tb.Schema, tb.Name, tb.Rows, len(held))
				}
				total += tb.Rows
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if total < 200*4 {
				t.Errorf("snapshot holds %d rows in all, want the big tenant's (>= 800)", total)
			}
			checkFiles(t, s, m, e)
			chk, err := repository.NewChecker(s)
			if err != nil {
				t.Fatal(err)
			}
			defer chk.Close()
			probs, err := chk.Verify(ctx, m, nil)
			if err != nil || len(probs) != 0 {
				t.Errorf("verify of a fresh snapshot: %v, %v", probs, err)
			}
			listed, err := repository.List(ctx, s, tenant)
			if err != nil || len(listed) != 1 || listed[0].ID != m.ID {
				t.Errorf("list: got %v, %v; want the snapshot", listed, err)
			}
		})
	}
}

// checkFiles: every path the tenant's rows name is in the manifest; present files
// are stored byte for byte; the deliberately missing ones are marked missing.
func checkFiles(t *testing.T, s storage.Store, m *archive.Manifest, e *env) {
	t.Helper()
	ctx := testenv.Context(t)
	rows, err := e.conn.Query(ctx, `SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = $1 AND r.path IS NOT NULL
		UNION SELECT path FROM call_logd_export WHERE tenant_uuid = $1 AND path IS NOT NULL ORDER BY 1`, m.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var missing int
	for _, f := range m.Files {
		got = append(got, f.Path)
		if f.OutsideRoot {
			t.Errorf("%s: outside_root, want inside", f.Path)
		}
		content, err := os.ReadFile(f.Path)
		if f.Missing {
			missing++
			if err == nil {
				t.Errorf("%s: marked missing but it exists", f.Path)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := fileContent(t, s, m, f); !bytes.Equal(got, content) {
			t.Errorf("%s: stored content differs from the file (%d vs %d bytes)", f.Path, len(got), len(content))
		}
		if f.Size != int64(len(content)) || f.Mode != 0o640 || f.ModTime.IsZero() {
			t.Errorf("%s: size %d mode %o mtime %v; want %d, 0640, set", f.Path, f.Size, f.Mode, f.ModTime, len(content))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("files in manifest: got %d paths, want the %d the rows name", len(got), len(want))
	}
	if missing == 0 {
		t.Errorf("no file marked missing: the fixture names some that do not exist")
	}
}

// loose is o storing every file as a loose blob, as files too large for a pack
// are: for the tests of blobs (their sharing, their sizes, their locks).
func loose(o snapshot.Options) snapshot.Options {
	o.PackMax = -1
	return o
}

// fileContent is a saved file's content as stored: its blob, or its frame in a pack.
func fileContent(t *testing.T, s storage.Store, m *archive.Manifest, f archive.File) []byte {
	t.Helper()
	rc, err := repository.FileContent(testenv.Context(t), s, m, f)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every worker reads the same instant: rows committed after the coordinator
// exported its snapshot are in no table, whichever connection reads it.
func TestRun_OneConsistentRead(t *testing.T) {
	e := newEnv(t)
	s := fileStore(t)
	tenant := e.res.Tenants[1]
	ctx := testenv.Context(t)
	var want int64
	if err := e.conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1)
		+ (SELECT count(*) FROM call_logd_call_log_participant p JOIN call_logd_call_log c ON c.id = p.call_log_id WHERE c.tenant_uuid = $1)
		+ (SELECT count(*) FROM call_logd_voicemail_transcription WHERE tenant_uuid = $1)
		+ (SELECT count(*) FROM call_logd_export WHERE tenant_uuid = $1)`, tenant).Scan(&want); err != nil {
		t.Fatal(err)
	}
	writer := testenv.Connect(t, e.dsn)
	defer snapshot.SetAfterExportHook(func() {
		// One row in each of four tables, committed after the export: with eight
		// connections, most tables are read by workers that import the snapshot.
		_, err := writer.Exec(ctx, `WITH c AS (INSERT INTO call_logd_call_log (date, tenant_uuid) VALUES (now(), $1) RETURNING id)
			INSERT INTO call_logd_call_log_participant (call_log_id, user_uuid, role) SELECT id, gen_random_uuid(), 'source' FROM c`, tenant)
		if err == nil {
			_, err = writer.Exec(ctx, `INSERT INTO call_logd_voicemail_transcription (uuid, message_id, tenant_uuid, transcription_text)
				VALUES (gen_random_uuid(), 'late', $1, 'late')`, tenant)
		}
		if err == nil {
			_, err = writer.Exec(ctx, `INSERT INTO call_logd_export (uuid, tenant_uuid, user_uuid, requested_at, status)
				VALUES (gen_random_uuid(), $1, gen_random_uuid(), now(), 'pending')`, tenant)
		}
		if err != nil {
			t.Errorf("concurrent insert: %v", err)
		}
	})()
	o := e.options(tenant)
	o.Jobs = 8
	m := e.run(t, s, o)[0]
	var got int64
	for _, tb := range m.Tables {
		switch tb.Name {
		case "call_logd_call_log", "call_logd_call_log_participant", "call_logd_voicemail_transcription", "call_logd_export":
			got += tb.Rows
		}
	}
	if got != want {
		t.Errorf("snapshot holds %d rows of the four tables, want %d: rows committed after the export leaked in", got, want)
	}
}

// A second snapshot of the same tenant uploads no file twice.
func TestRun_BlobsStoredOnce(t *testing.T) {
	e := newEnv(t)
	s := fileStore(t)
	tenant := e.res.Tenants[0]
	countBlobs := func() int {
		n := 0
		if err := s.List(testenv.Context(t), archive.BlobsPrefix, func(storage.Info) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := e.run(t, s, loose(e.options(tenant)))[0]
	blobs := countBlobs()
	if want := first.Totals().Files; blobs == 0 || blobs > want {
		t.Fatalf("blobs after one snapshot: %d, want 1..%d", blobs, want)
	}
	var uploaded int64
	var mu sync.Mutex
	o := loose(e.options(tenant))
	o.Progress = func(ev snapshot.Event) {
		if ev.File != "" {
			mu.Lock()
			uploaded += ev.Stored
			mu.Unlock()
		}
	}
	second := e.run(t, s, o)[0]
	if uploaded != 0 || countBlobs() != blobs {
		t.Errorf("second snapshot uploaded %d file bytes, blobs %d -> %d; want none", uploaded, blobs, countBlobs())
	}
	if second.ID == first.ID || second.Totals().Files != first.Totals().Files {
		t.Errorf("second snapshot %s: %+v; want a new id with the same files as %+v", second.ID, second.Totals(), first.Totals())
	}
	if second.Totals().StoredBytes != first.Totals().StoredBytes {
		t.Errorf("stored bytes: %d then %d; a shared blob still counts for each snapshot", first.Totals().StoredBytes, second.Totals().StoredBytes)
	}
}

// Under Object Lock, a snapshot that reuses blobs stored earlier extends their
// retention to its own: a blob must not become deletable while a manifest naming
// it is still locked.
func TestRun_ReusedBlobsLockedAsLong(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t)
	b := testenv.MinIOWithLock(t)
	store := func(days int) storage.Store {
		s, err := storage.NewS3(ctx, b.Bucket, "pg", storage.S3Options{Endpoint: b.Endpoint, Region: b.Region,
			AccessKeyID: b.AccessKey, SecretAccessKey: b.SecretKey, Insecure: true,
			ObjectLock: storage.ObjectLock{Mode: "GOVERNANCE", Days: days}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tenant := e.res.Tenants[0]
	c := b.Client(t)
	type version struct {
		id    string
		until time.Time
	}
	// Every version of every blob: a re-upload would add a version with the new
	// retention, and must not pass for an extension.
	blobsUntil := func() map[string]version {
		out := map[string]version{}
		for o := range c.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Prefix: "pg/" + archive.BlobsPrefix, Recursive: true, WithVersions: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if o.VersionID == "" {
				t.Fatalf("%s: no version id: a bucket with Object Lock is versioned", o.Key)
			}
			if _, dup := out[o.Key]; dup {
				t.Fatalf("%s: more than one version: the blob was uploaded again", o.Key)
			}
			_, until, err := c.GetObjectRetention(ctx, b.Bucket, o.Key, o.VersionID)
			if err != nil {
				t.Fatalf("%s: %v", o.Key, err)
			}
			out[o.Key] = version{o.VersionID, *until}
		}
		return out
	}
	first := e.run(t, store(1), loose(e.options(tenant)))[0]
	before := blobsUntil()
	if len(before) == 0 || first.Totals().Files == 0 {
		t.Fatalf("first snapshot stored %d blobs for %d files: the test needs some", len(before), first.Totals().Files)
	}
	start := time.Now()
	e.run(t, store(3), loose(e.options(tenant)))
	after := blobsUntil()
	if len(after) != len(before) {
		t.Fatalf("blobs: %d then %d; the second snapshot should upload none", len(before), len(after))
	}
	for key, v := range after {
		if v.id != before[key].id {
			t.Errorf("%s: version %s, was %s: the blob was uploaded again", key, v.id, before[key].id)
		}
		if want := start.AddDate(0, 0, 3).Add(-time.Second); v.until.Before(want) {
			t.Errorf("%s: locked until %v after the second snapshot (was %v), want at least %v", key, v.until, before[key].until, want)
		}
	}
}

// Paths that leave their root, literally or through a link, are recorded and never read.
func TestRun_PathsOutsideRoot(t *testing.T) {
	e := newEnv(t)
	s := fileStore(t)
	tenant := e.res.Tenants[2]
	ctx := testenv.Context(t)
	secret := filepath.Join(t.TempDir(), "secret.wav")
	if err := os.WriteFile(secret, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.recordings, tenant.String(), "monitor", "link.wav")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	dotdot := e.recordings + "/../" + filepath.Base(filepath.Dir(secret)) + "/secret.wav"
	paths := []string{secret, link, dotdot, "relative/x.wav"}
	for i, p := range paths {
		_, err := e.conn.Exec(ctx, `INSERT INTO call_logd_recording (uuid, start_time, end_time, path, call_log_id)
			SELECT gen_random_uuid(), now(), now(), $1, min(id) FROM call_logd_call_log WHERE tenant_uuid = $2`, p, tenant)
		if err != nil {
			t.Fatalf("insert path %d: %v", i, err)
		}
	}
	m := e.run(t, s, e.options(tenant))[0]
	for _, p := range paths {
		i := slices.IndexFunc(m.Files, func(f archive.File) bool { return f.Path == p })
		if i < 0 {
			t.Errorf("%s: not in the manifest", p)
			continue
		}
		if f := m.Files[i]; !f.OutsideRoot || f.SHA256 != "" {
			t.Errorf("%s: got %+v, want outside_root and not read", p, f)
		}
	}
	if tot := m.Totals(); tot.OutsideRoot != len(paths) {
		t.Errorf("outside_root files: got %d, want %d", tot.OutsideRoot, len(paths))
	}
}

func TestRun_AbsentTenant(t *testing.T) {
	e := newEnv(t)
	cfg, _ := pgx.ParseConfig(e.dsn)
	s := fileStore(t)
	nobody := uuid.MustParse("00000000-0000-4000-8000-0000000000aa")
	_, err := snapshot.Run(testenv.Context(t), cfg, s, e.options(e.res.Tenants[0], nobody))
	if !errors.Is(err, snapshot.ErrTenantAbsent) || !strings.Contains(err.Error(), nobody.String()) {
		t.Errorf("got %v, want ErrTenantAbsent naming %s", err, nobody)
	}
	if ms, _ := repository.List(testenv.Context(t), s, uuid.Nil); len(ms) != 0 {
		t.Errorf("a refused run committed %d snapshots", len(ms))
	}
}

// Storage dying mid-snapshot: the run fails, and once storage is back no snapshot
// of that run exists.
func TestRun_StorageDiesMidway(t *testing.T) {
	e := newEnv(t)
	srv := testenv.StartMinIO(t)
	ctx := testenv.Context(t)
	s, err := storage.NewS3(ctx, srv.Bucket, "", storage.S3Options{Endpoint: srv.Endpoint, Region: srv.Region,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Insecure: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := pgx.ParseConfig(e.dsn)
	o := e.options(e.res.Tenants[0])
	var once sync.Once
	o.Progress = func(snapshot.Event) { once.Do(srv.Kill) }
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := snapshot.Run(runCtx, cfg, s, o); err == nil {
		t.Fatal("snapshot with storage killed midway: got nil error")
	}
	srv.Restart()
	ms, err := repository.List(ctx, s, uuid.Nil)
	if err != nil || len(ms) != 0 {
		t.Errorf("after a failed run: %d snapshots listed (%v), want none", len(ms), err)
	}
}

// Storage that hangs mid-snapshot (MinIO paused: connections accepted, nothing
// answers): through a bounded store the run ends with an error saying the store
// made no progress, instead of waiting for as long as the storage hangs.
func TestRun_StorageHangsMidway(t *testing.T) {
	e := newEnv(t)
	srv := testenv.StartMinIO(t)
	ctx := testenv.Context(t)
	raw, err := storage.NewS3(ctx, srv.Bucket, "", storage.S3Options{Endpoint: srv.Endpoint, Region: srv.Region,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Insecure: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := storage.Bound(raw, storage.Bounds{Timeout: time.Second, Retries: 1})
	cfg, _ := pgx.ParseConfig(e.dsn)
	o := e.options(e.res.Tenants[0])
	var once sync.Once
	o.Progress = func(snapshot.Event) { once.Do(srv.Pause) }
	_, err = snapshot.Run(ctx, cfg, s, o)
	if !errors.Is(err, storage.ErrStalled) {
		t.Fatalf("snapshot with storage hung midway: %v, want ErrStalled", err)
	}
	srv.Resume()
	ms, err := repository.List(ctx, s, uuid.Nil)
	if err != nil || len(ms) != 0 {
		t.Errorf("after a failed run: %d snapshots listed (%v), want none", len(ms), err)
	}
}

// A database that cannot be reached is an error, not a crash.
func TestRun_Unreachable(t *testing.T) {
	cfg, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := catalog.ParseName("public.call_logd_tenant")
	_, err = snapshot.Run(context.Background(), cfg, fileStore(t), snapshot.Options{Tenants: []uuid.UUID{uuid.New()},
		Graph: catalog.Options{Root: root, Key: "uuid"}})
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("got %v, want a connection error", err)
	}
}
