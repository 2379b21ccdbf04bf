package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options configures the s3:// backend.
type S3Options struct {
	Endpoint        string // host:port; empty: AWS S3
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	Insecure        bool // plain HTTP
	CreateBucket    bool
	// PartSize is the multipart part size: an upload holds one part buffer (two past
	// the first part, minio-go keeping its own). Objects
	// can be at most 10 000 parts. Default 8 MiB, at least 5 MiB (S3's minimum).
	PartSize int64
}

const (
	defaultPartSize = 8 << 20
	minPartSize     = 5 << 20
)

// S3Store keeps objects in a bucket, under a prefix.
type S3Store struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize uint64
	bufs     *sync.Pool // *[]byte of partSize: the first part of each upload
}

var _ Store = (*S3Store)(nil)

// NewS3 connects to a bucket and checks it exists (creating it when asked).
func NewS3(ctx context.Context, bucket, prefix string, o S3Options) (*S3Store, error) {
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	ps := o.PartSize
	if ps == 0 {
		ps = defaultPartSize
	}
	if ps < minPartSize {
		return nil, fmt.Errorf("s3: part size %d below the 5 MiB minimum", ps)
	}
	var creds *credentials.Credentials
	if o.AccessKeyID != "" {
		creds = credentials.NewStaticV4(o.AccessKeyID, o.SecretAccessKey, "")
	} else {
		// No key configured: the usual chain (environment, shared files, instance role).
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	client, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: !o.Insecure, Region: o.Region})
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %s: %w", endpoint, err)
	}
	exists, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %s at %s: %w", bucket, endpoint, err)
	}
	if !exists {
		if !o.CreateBucket {
			return nil, fmt.Errorf("s3: bucket %s does not exist at %s (create it, or set storage.s3.create_bucket)", bucket, endpoint)
		}
		if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: o.Region}); err != nil {
			return nil, fmt.Errorf("s3: create bucket %s: %w", bucket, err)
		}
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	bufs := &sync.Pool{New: func() any { b := make([]byte, ps); return &b }}
	return &S3Store{client: client, bucket: bucket, prefix: prefix, partSize: uint64(ps), bufs: bufs}, nil
}

func (s *S3Store) object(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// isNotExist matches S3's not-found answers, wrapped or not (minio.ToErrorResponse
// does not unwrap).
func isNotExist(err error) bool {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code == "NoSuchKey" || er.Code == "NotFound" || er.StatusCode == 404 && er.Code != "NoSuchBucket"
	}
	return false
}

// sized is the optional capability of a reader that knows its length: the upload
// then needs no part buffer of its own.
type sized interface{ Len() int }

// Put uploads the stream. A reader that knows its length is sent as is. Otherwise
// the first part is read into a pooled buffer: most objects (a small table, a
// recording) end within it and go up in one sized request; minio-go would
// otherwise allocate a fresh PartSize buffer for every upload of unknown length.
// Longer streams continue as a multipart upload of PartSize parts, which is
// aborted on failure so no parts are left behind.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	size := int64(-1)
	if l, ok := r.(sized); ok {
		size = int64(l.Len())
		r = ctxReader{ctx, r}
	} else {
		r = ctxReader{ctx, r}
		bp := s.bufs.Get().(*[]byte)
		defer s.bufs.Put(bp)
		n, rerr := io.ReadFull(r, *bp)
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			r, size = bytes.NewReader((*bp)[:n]), int64(n)
		case rerr != nil:
			return fmt.Errorf("s3: put %s: %w", key, rerr)
		default:
			r = io.MultiReader(bytes.NewReader(*bp), r)
		}
	}
	_, err = s.client.PutObject(ctx, s.bucket, obj, r, size, minio.PutObjectOptions{
		PartSize:    s.partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		// The upload's own context may be what ended: abort with one of our own.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.client.RemoveIncompleteUpload(actx, s.bucket, obj)
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	return nil
}

// Get opens the object; its absence is found at once, not on the first Read.
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	o, err := s.client.GetObject(ctx, s.bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	if _, err := o.Stat(); err != nil {
		o.Close()
		if isNotExist(err) {
			return nil, &NotExistError{Key: key}
		}
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	return o, nil
}

// Stat describes the object.
func (s *S3Store) Stat(ctx context.Context, key string) (Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		if isNotExist(err) {
			return Info{}, &NotExistError{Key: key}
		}
		return Info{}, fmt.Errorf("s3: stat %s: %w", key, err)
	}
	return Info{Key: key, Size: st.Size, ModTime: st.LastModified}, nil
}

// List lists the objects under the store's prefix; S3 returns them in key order.
func (s *S3Store) List(ctx context.Context, prefix string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn returns early
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("s3: list %s: %w", prefix, o.Err)
		}
		key := strings.TrimPrefix(o.Key, s.prefix)
		if strings.HasSuffix(key, "/") || path.Clean(key) != key {
			continue // directory markers and keys this store never writes
		}
		if err := fn(Info{Key: key, Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete removes the object; S3 answers success for a missing key.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{}); err != nil && !isNotExist(err) {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// String names the store without credentials.
func (s *S3Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}
