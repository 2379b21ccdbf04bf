package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// MinIOServer is a MinIO server owned by one test, for faults that must not disturb the
// shared server: killing the storage in the middle of an upload.
type MinIOServer struct {
	S3
	t    testing.TB
	args []string
	env  []string
	bin  string
	cmd  *exec.Cmd
	once *sync.Once
	done chan struct{}
}

// StartMinIO starts a private MinIO server on a free loopback port with one empty
// bucket. It is killed when the test ends, if the test has not killed it first.
func StartMinIO(t testing.TB) *MinIOServer {
	t.Helper()
	bin := MinIOBinary(t)
	port, cport := freePort(t), freePort(t)
	s := &MinIOServer{
		S3: S3{
			Endpoint:  fmt.Sprintf("127.0.0.1:%d", port),
			AccessKey: "private-test",
			SecretKey: "private-test-" + RandomName(""),
			Bucket:    RandomName("pgtest-"),
			Region:    "us-east-1",
		},
		t:   t,
		bin: bin,
		args: []string{"server", "--quiet",
			"--address", fmt.Sprintf("127.0.0.1:%d", port), "--console-address", fmt.Sprintf("127.0.0.1:%d", cport),
			filepath.Join(t.TempDir(), "data")},
		env: append(os.Environ(), "MINIO_BROWSER=off", "MINIO_UPDATE=off"),
	}
	s.env = append(s.env, "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey)
	s.start()
	t.Cleanup(s.Kill)
	makeBucketNoCleanup(t, s.S3)
	return s
}

// Restart starts the killed server again on the same address and data: what a crashed
// storage looks like once it is back.
func (s *MinIOServer) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

func (s *MinIOServer) start() {
	t := s.t
	t.Helper()
	s.done = make(chan struct{})
	s.once = &sync.Once{}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = s.env
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start minio: %v", err)
	}
	s.cmd = cmd
	done := s.done
	go func() { _ = cmd.Wait(); close(done) }()

	ctx := Context(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+"/minio/health/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-s.done:
			t.Fatalf("testenv: private minio exited during start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: private minio not ready after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func makeBucketNoCleanup(t testing.TB, s S3) {
	t.Helper()
	if err := s.Client(t).MakeBucket(Context(t), s.Bucket, minioMakeBucketOptions(s.Region)); err != nil {
		t.Fatalf("testenv: make bucket %s: %v", s.Bucket, err)
	}
}

// Kill stops the server at once (SIGKILL), as a crash or a network cut would.
func (s *MinIOServer) Kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	})
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func minioMakeBucketOptions(region string) minio.MakeBucketOptions {
	return minio.MakeBucketOptions{Region: region}
}

// Pause stops the server's process (SIGSTOP): connections are still accepted by the
// kernel but nothing answers, as with a hung storage. Resume undoes it; the test's
// end resumes it before killing.
func (s *MinIOServer) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("testenv: pause minio: %v", err)
	}
	s.t.Cleanup(s.Resume)
}

// Resume continues a paused server (SIGCONT).
func (s *MinIOServer) Resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }
