package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

// buildBinary builds the purgeguard binary once per test binary, for tests that must
// kill a real process; TestMain removes it.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "purgeguard-bin-")
	if err != nil {
		return "", err
	}
	binaryDir.Store(&dir)
	bin := filepath.Join(dir, "purgeguard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// binaryDir is where buildBinary put the binary, once it did.
var binaryDir atomic.Pointer[string]

// TestMain removes the binary buildBinary built (33 MB a run, left in /tmp).
func TestMain(m *testing.M) {
	code := m.Run()
	if d := binaryDir.Load(); d != nil {
		os.RemoveAll(*d)
	}
	os.Exit(code)
}

func purgeguardBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// shieldEnv writes a configuration with one files root and returns the environment
// of a purgeguard process using it and a MinIO bucket.
func shieldEnv(t *testing.T, b testenv.S3, root, index, settle string) []string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "purgeguard.yaml")
	yaml := fmt.Sprintf("storage:\n  s3:\n    insecure: true\nfiles:\n  - table: public.call_logd_recording\n    column: path\n    root: %s\nshield:\n  index: %s\n  settle: %s\n  jobs: 2\n",
		root, index, settle)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PURGEGUARD_CONFIG="+cfg, "PURGEGUARD_STORAGE_URL="+b.URL("s"),
		"PURGEGUARD_S3_ENDPOINT="+b.Endpoint, "AWS_ACCESS_KEY_ID="+b.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+b.SecretKey, "AWS_REGION="+b.Region)
}

var uploadedLine = regexp.MustCompile(`msg="shield: blob uploaded".* sha256=([0-9a-f]{64})`)

// kill -9 of the shield in the middle of its uploads, then a restart: the queue
// resumes where it was, no object in storage is partial, and no blob is uploaded
// twice (each digest's upload is logged at most once over both runs).
func TestShield_Kill9DuringUploads(t *testing.T) {
	bin := purgeguardBinary(t)
	b := testenv.MinIO(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "tenants")
	const n, size = 120, 1 << 20
	want := map[string]bool{}
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("44444444-4444-4444-8444-%012d", i%3), "monitor", fmt.Sprintf("r%03d.wav", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		want[hex.EncodeToString(sum[:])] = true
	}
	env := shieldEnv(t, b, root, filepath.Join(dir, "state", "index.db"), "1s")

	// Run 1: killed once a few uploads are done.
	cmd := exec.Command(bin, "--log-level", "debug", "shield")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var first []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := uploadedLine.FindStringSubmatch(sc.Text()); m != nil {
			first = append(first, m[1])
			if len(first) == 10 {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	go io.Copy(io.Discard, stderr)
	_ = cmd.Wait()
	if len(first) < 10 {
		t.Fatalf("shield ended before 10 uploads (%d)", len(first))
	}

	// Run 2: one pass resumes the queue and empties it. A file the killed run saw
	// last settles (1s) only after the pass starts: the pass waits for it.
	var out, errb bytes.Buffer
	cmd = exec.Command(bin, "--log-level", "debug", "-o", "json", "shield", "--once")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("shield --once after kill -9: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), `"Queue": 0`) {
		t.Fatalf("queue not empty after the resumed pass: %s", out.String())
	}
	count := map[string]int{}
	for _, d := range first {
		count[d]++
	}
	second := 0
	for _, line := range strings.Split(errb.String(), "\n") {
		if m := uploadedLine.FindStringSubmatch(line); m != nil {
			count[m[1]]++
			second++
		}
	}
	for d, c := range count {
		if c > 1 {
			t.Errorf("blob %s uploaded %d times", d, c)
		}
	}
	if second == 0 || second >= n {
		t.Errorf("resumed pass uploaded %d blobs: want the rest of the %d, not none, not all again", second, n)
	}

	// Every object under blobs/ is whole: it decompresses to content named by its key.
	ctx := testenv.Context(t)
	c := b.Client(t)
	got := 0
	for obj := range c.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Prefix: "s/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if !strings.Contains(obj.Key, "blobs/sha256/") {
			continue
		}
		got++
		o, err := c.GetObject(ctx, b.Bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := zstd.NewReader(o)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, dec)
		dec.Close()
		o.Close()
		digest := hex.EncodeToString(h.Sum(nil))
		if err != nil || !strings.HasSuffix(obj.Key, digest+".zst") || !want[digest] {
			t.Errorf("object %s: partial or foreign (sha256 %s, %v)", obj.Key, digest, err)
		}
	}
	if got != n {
		t.Errorf("blobs in storage: got %d, want %d", got, n)
	}
}
