// Package testenv gives integration tests a real PostgreSQL database and a real MinIO
// bucket of their own. The servers are started by scripts/with-servers.sh (make test),
// which exports their addresses; a plain `go test` without them skips the integration
// tests, unless PURGEGUARD_REQUIRE_INTEGRATION=1, in which case they fail instead.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables read by this package.
const (
	EnvDatabaseURL = "PURGEGUARD_TEST_DATABASE_URL"
	EnvS3Endpoint  = "PURGEGUARD_TEST_S3_ENDPOINT"
	EnvS3AccessKey = "PURGEGUARD_TEST_S3_ACCESS_KEY"
	EnvS3SecretKey = "PURGEGUARD_TEST_S3_SECRET_KEY"
	EnvMinIOBin    = "PURGEGUARD_TEST_MINIO_BIN"
	EnvRequire     = "PURGEGUARD_REQUIRE_INTEGRATION"
)

// Required reports whether missing integration servers are a failure rather than a skip.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

func need(t testing.TB, vars ...string) {
	t.Helper()
	var missing []string
	for _, v := range vars {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("integration test needs %s (run `make test`)", strings.Join(missing, ", "))
	if Required() {
		t.Fatalf("%s: %s=1 forbids skipping", msg, EnvRequire)
	}
	t.Skip(msg)
}

// Context returns a context that ends before the test's own deadline, so that a hung
// server turns into a failed test with a message rather than a killed binary.
func Context(t testing.TB) context.Context {
	t.Helper()
	timeout := 5 * time.Minute
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			if left := time.Until(dl) - 10*time.Second; left < timeout && left > 0 {
				timeout = left
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// RandomName returns prefix followed by 12 random hex digits: a valid lower-case
// identifier for a database and a valid bucket name.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// Postgres creates an empty database for this test and returns its connection URL.
// The database is dropped when the test ends (connections to it are terminated first).
func Postgres(t testing.TB) string {
	t.Helper()
	need(t, EnvDatabaseURL)
	admin := os.Getenv(EnvDatabaseURL)
	ctx := Context(t)
	name := RandomName("pgtest_")

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	return WithDatabase(t, admin, name)
}

// WithDatabase returns dsn with its database name replaced.
func WithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("testenv: parse %s: %v", EnvDatabaseURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Connect opens a connection to dsn that is closed when the test ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx := Context(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// S3 names a bucket on the test MinIO server.
type S3 struct {
	Endpoint  string // host:port, plain HTTP
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
}

// URL returns the storage URL of the bucket with the given prefix: s3://bucket/prefix.
func (s S3) URL(prefix string) string {
	return "s3://" + s.Bucket + "/" + strings.Trim(prefix, "/")
}

// Client returns a minio client for direct inspection of the bucket in tests.
func (s S3) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
		Region: s.Region,
	})
	if err != nil {
		t.Fatalf("testenv: minio client: %v", err)
	}
	return c
}

// MinIO creates an empty bucket for this test on the shared test server. The bucket
// and everything in it is removed when the test ends.
func MinIO(t testing.TB) S3 {
	t.Helper()
	need(t, EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey)
	s := S3{
		Endpoint:  os.Getenv(EnvS3Endpoint),
		AccessKey: os.Getenv(EnvS3AccessKey),
		SecretKey: os.Getenv(EnvS3SecretKey),
		Bucket:    RandomName("pgtest-"),
		Region:    "us-east-1",
	}
	makeBucket(t, s, false)
	return s
}

// MinIOWithLock is MinIO with S3 Object Lock enabled on the bucket. Locked objects
// cannot be removed by the cleanup; the bucket is left behind on the throwaway server.
func MinIOWithLock(t testing.TB) S3 {
	t.Helper()
	need(t, EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey)
	s := S3{
		Endpoint:  os.Getenv(EnvS3Endpoint),
		AccessKey: os.Getenv(EnvS3AccessKey),
		SecretKey: os.Getenv(EnvS3SecretKey),
		Bucket:    RandomName("pgtest-lock-"),
		Region:    "us-east-1",
	}
	makeBucket(t, s, true)
	return s
}

func makeBucket(t testing.TB, s S3, lock bool) {
	t.Helper()
	ctx := Context(t)
	c := s.Client(t)
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region, ObjectLocking: lock}); err != nil {
		t.Fatalf("testenv: make bucket %s: %v", s.Bucket, err)
	}
	if lock {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		objs := c.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Recursive: true})
		for e := range c.RemoveObjects(ctx, s.Bucket, objs, minio.RemoveObjectsOptions{}) {
			t.Errorf("testenv: remove %s/%s: %v", s.Bucket, e.ObjectName, e.Err)
		}
		if err := c.RemoveBucket(ctx, s.Bucket); err != nil {
			t.Errorf("testenv: remove bucket %s: %v", s.Bucket, err)
		}
	})
}

// MinIOBinary returns the path of the MinIO server binary, for tests that start (and
// kill) a server of their own.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	need(t, EnvMinIOBin)
	return os.Getenv(EnvMinIOBin)
}
