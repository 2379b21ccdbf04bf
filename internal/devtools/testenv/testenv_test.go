package testenv_test

import (
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// The harness itself: a fresh database answers, a fresh bucket exists and is empty.
func TestHarness(t *testing.T) {
	dsn := testenv.Postgres(t)
	conn := testenv.Connect(t, dsn)
	var one int
	if err := conn.QueryRow(testenv.Context(t), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v; want 1, nil", one, err)
	}
	s3 := testenv.MinIO(t)
	ok, err := s3.Client(t).BucketExists(testenv.Context(t), s3.Bucket)
	if err != nil || !ok {
		t.Fatalf("bucket %s exists = %v, %v; want true, nil", s3.Bucket, ok, err)
	}
}
