package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
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
	// ObjectLock puts S3 Object Lock retention on every object written, so that no
	// one (purgeguard's own prune included) can delete a snapshot before it expires.
	ObjectLock ObjectLock
}

// ObjectLock is the retention set on every object written. The zero value is off.
type ObjectLock struct {
	Mode string // GOVERNANCE (removable by a user allowed to bypass it) or COMPLIANCE (by no one)
	Days int    // retention from the moment of writing, at least 1
}

// Validate checks the mode and the days.
func (l ObjectLock) Validate() error {
	if l.Mode == "" {
		return nil
	}
	if !minio.RetentionMode(l.Mode).IsValid() {
		return fmt.Errorf("object lock mode %q: want GOVERNANCE or COMPLIANCE", l.Mode)
	}
	if l.Days < 1 {
		return fmt.Errorf("object lock days %d: want at least 1", l.Days)
	}
	return nil
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
	lock     ObjectLock
	// lockable: the bucket has Object Lock, so any object may be under retention
	// (ours, or a bucket default rule's). Delete must then look before it removes:
	// a plain DELETE on such a bucket (always versioned) does not fail on a locked
	// object, it succeeds by adding a delete marker, and the object vanishes from
	// listings while its locked version stays behind, out of reach of purgeguard.
	lockable bool
	// defaultRetention: the bucket's own rule gives every new object a retention,
	// so no object written there can be erased before it ends.
	defaultRetention bool
}

var (
	_ Store    = (*S3Store)(nil)
	_ Locker   = (*S3Store)(nil)
	_ Erasable = (*S3Store)(nil)
)

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
	if err := o.ObjectLock.Validate(); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
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
		// Object Lock can only be switched on when a bucket is made (on MinIO).
		mo := minio.MakeBucketOptions{Region: o.Region, ObjectLocking: o.ObjectLock.Mode != ""}
		if err := client.MakeBucket(ctx, bucket, mo); err != nil {
			return nil, fmt.Errorf("s3: create bucket %s: %w", bucket, err)
		}
	}
	lockable, defaultRetention, err := bucketLockable(ctx, client, bucket)
	switch {
	case o.ObjectLock.Mode != "" && err != nil:
		return nil, fmt.Errorf("s3: bucket %s: read its object lock configuration: %w", bucket, err)
	case o.ObjectLock.Mode != "" && !lockable:
		// Found now rather than at the first write, which would fail mid-snapshot.
		return nil, fmt.Errorf("s3: bucket %s does not have object lock enabled, which storage.s3.object_lock needs (create the bucket with object locking)", bucket)
	case err != nil:
		lockable = true // cannot tell: look before every delete rather than risk a hidden one
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	bufs := &sync.Pool{New: func() any { b := make([]byte, ps); return &b }}
	return &S3Store{client: client, bucket: bucket, prefix: prefix, partSize: uint64(ps), bufs: bufs,
		lock: o.ObjectLock, lockable: lockable, defaultRetention: defaultRetention}, nil
}

// bucketLockable reports whether the bucket has Object Lock enabled, and whether
// its own rule puts a default retention on every new object.
func bucketLockable(ctx context.Context, c *minio.Client, bucket string) (lockable, defaultRetention bool, err error) {
	enabled, mode, _, _, err := c.GetObjectLockConfig(ctx, bucket)
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == "ObjectLockConfigurationNotFoundError" || er.Code == "NotImplemented") {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return enabled == "Enabled", enabled == "Enabled" && mode != nil && *mode != "", nil
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
	po := minio.PutObjectOptions{}
	if s.lock.Mode != "" {
		po.Mode = minio.RetentionMode(s.lock.Mode)
		po.RetainUntilDate = time.Now().AddDate(0, 0, s.lock.Days)
	}
	_, err := s.put(ctx, key, r, po, false)
	return err
}

// put uploads with the given options; single refuses a stream longer than one part
// (a conditional write must be one request).
func (s *S3Store) put(ctx context.Context, key string, r io.Reader, po minio.PutObjectOptions, single bool) (minio.UploadInfo, error) {
	obj, err := s.object(key)
	if err != nil {
		return minio.UploadInfo{}, err
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
			return minio.UploadInfo{}, fmt.Errorf("s3: put %s: %w", key, rerr)
		default:
			r = io.MultiReader(bytes.NewReader(*bp), r)
		}
	}
	if single && (size < 0 || uint64(size) > s.partSize) {
		return minio.UploadInfo{}, fmt.Errorf("s3: put %s: longer than one part (%d bytes), which a conditional write needs", key, s.partSize)
	}
	po.PartSize = s.partSize
	po.ContentType = "application/octet-stream"
	info, err := s.client.PutObject(ctx, s.bucket, obj, r, size, po)
	if err != nil && size >= 0 && uint64(size) <= s.partSize {
		// One plain PUT: no multipart upload to abort (and asking a stalled server
		// to abort one would wait the abort's whole timeout).
		return minio.UploadInfo{}, fmt.Errorf("s3: put %s: %w", key, err)
	}
	if err != nil {
		// The upload's own context may be what ended: abort with one of our own.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.client.RemoveIncompleteUpload(actx, s.bucket, obj)
		return minio.UploadInfo{}, fmt.Errorf("s3: put %s: %w", key, err)
	}
	return info, nil
}

// erasable refuses a bucket whose own rule would lock what we mean to erase.
func (s *S3Store) erasable(key string) error {
	if s.defaultRetention {
		return fmt.Errorf("s3: put %s: bucket %s gives every new object a default retention (its Object Lock rule), so nothing stored there can be erased: keep such objects in another bucket: %w", key, s.bucket, ErrNotErasable)
	}
	return nil
}

// CreateErasable uploads the object without retention and with If-None-Match: *,
// which S3 and MinIO answer 412 when the key exists: the check and the write are
// one request, so two writers cannot both create it.
func (s *S3Store) CreateErasable(ctx context.Context, key string, r io.Reader) error {
	if err := s.erasable(key); err != nil {
		return err
	}
	po := minio.PutObjectOptions{}
	po.SetMatchETagExcept("*")
	_, err := s.put(ctx, key, r, po, true)
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed) {
		return &ExistError{Key: key}
	}
	return err
}

// ReplaceErasable uploads the object without retention, then destroys every version
// older than the one it wrote: on a versioned bucket the replaced content would
// otherwise stay readable as a noncurrent version. A newer version written by
// someone else meanwhile is left alone.
func (s *S3Store) ReplaceErasable(ctx context.Context, key string, r io.Reader) error {
	if err := s.erasable(key); err != nil {
		return err
	}
	info, err := s.put(ctx, key, r, minio.PutObjectOptions{}, false)
	if err != nil {
		return err
	}
	ours := false
	return s.eachVersion(ctx, key, func(v minio.ObjectInfo) error {
		if !ours {
			// Versions come newest first: everything after ours is older.
			ours = v.VersionID == info.VersionID || info.VersionID == "" && v.IsLatest
			return nil
		}
		return s.removeVersion(ctx, key, v)
	})
}

// Erase destroys every version of the object and every delete marker, so that
// nothing of it can be read back. A version under retention (a default rule's) is
// refused by S3, and the error says so.
func (s *S3Store) Erase(ctx context.Context, key string) error {
	return s.eachVersion(ctx, key, func(v minio.ObjectInfo) error { return s.removeVersion(ctx, key, v) })
}

// eachVersion lists the versions of exactly key, newest first (S3's order). The
// listing is read whole first: it is a handful of versions, and removing while
// listing would race the listing's own pages.
func (s *S3Store) eachVersion(ctx context.Context, key string, fn func(minio.ObjectInfo) error) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var versions []minio.ObjectInfo
	for v := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: obj, WithVersions: true}) {
		if v.Err != nil {
			return fmt.Errorf("s3: list the versions of %s: %w", key, v.Err)
		}
		if v.Key == obj {
			versions = append(versions, v)
		}
	}
	for _, v := range versions {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

func (s *S3Store) removeVersion(ctx context.Context, key string, v minio.ObjectInfo) error {
	err := s.client.RemoveObject(ctx, s.bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID})
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("s3: erase %s (version %s): %w", key, v.VersionID, err)
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

// Delete removes the object; S3 answers success for a missing key. On a bucket with
// Object Lock, an object under retention or legal hold is refused with a
// *LockedError, before anything is sent that would hide it behind a delete marker.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if s.lockable {
		if err := s.checkLock(ctx, key, obj); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
	}
	if err := s.client.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{}); err != nil && !isNotExist(err) {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// CheckLock answers what Delete would about the lock: a *LockedError when the
// object is under retention or legal hold, nil when it is not (or the bucket has no
// Object Lock). It removes nothing: a dry run uses it.
func (s *S3Store) CheckLock(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if !s.lockable {
		return nil
	}
	return s.checkLock(ctx, key, obj)
}

func (s *S3Store) checkLock(ctx context.Context, key, obj string) error {
	st, err := s.client.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		if isNotExist(err) {
			return &NotExistError{Key: key}
		}
		return fmt.Errorf("s3: delete %s: read its lock: %w", key, err)
	}
	return lockOf(key, st.Metadata, time.Now())
}

// ExtendLock keeps an object stored earlier at least as long as one written now
// (now + object_lock days). A blob is uploaded once and keeps the retention of that
// upload: a later snapshot naming it again extends it, or the blob could be deleted
// while the newer manifest naming it is still locked. A retention is only ever
// lengthened (S3 refuses to shorten one, or to change the mode of one in force
// without the bypass permission purgeguard never uses), so an object already retained
// longer, and a store without object_lock, are left as they are, and a GOVERNANCE
// retention in force stays GOVERNANCE under a COMPLIANCE store. A missing object is
// an error that Is fs.ErrNotExist.
func (s *S3Store) ExtendLock(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	retained := func() (*minio.ObjectInfo, *LockedError, error) {
		st, err := s.client.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
		if err != nil {
			if isNotExist(err) {
				return nil, nil, &NotExistError{Key: key}
			}
			return nil, nil, fmt.Errorf("s3: extend the lock of %s: %w", key, err)
		}
		var le *LockedError
		if err := lockOf(key, st.Metadata, time.Now()); errors.As(err, &le) && le.Mode != "" {
			return &st, le, nil
		}
		return &st, nil, nil
	}
	st, le, err := retained()
	if err != nil || s.lock.Mode == "" {
		return err
	}
	until := time.Now().AddDate(0, 0, s.lock.Days)
	longEnough := func(le *LockedError) bool { return le != nil && !le.Until.IsZero() && !le.Until.Before(until) }
	if longEnough(le) {
		return nil
	}
	mode := minio.RetentionMode(s.lock.Mode)
	if le != nil {
		mode = minio.RetentionMode(le.Mode)
	}
	err = s.client.PutObjectRetention(ctx, s.bucket, obj, minio.PutObjectRetentionOptions{
		Mode: &mode, RetainUntilDate: &until, VersionID: st.VersionID})
	if err != nil {
		// A concurrent snapshot naming the same blob may have extended it further
		// between our read and our write, and S3 refuses to shorten that: enough.
		if _, le, rerr := retained(); rerr == nil && longEnough(le) {
			return nil
		}
		return fmt.Errorf("s3: extend the lock of %s to %s: %w", key, until.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// lockOf reads an object's retention and legal hold from its HEAD headers.
func lockOf(key string, h http.Header, now time.Time) error {
	e := &LockedError{Key: key, Mode: h.Get("X-Amz-Object-Lock-Mode"),
		LegalHold: strings.EqualFold(h.Get("X-Amz-Object-Lock-Legal-Hold"), "ON")}
	retained := false
	if until := h.Get("X-Amz-Object-Lock-Retain-Until-Date"); e.Mode != "" && until != "" {
		t, err := time.Parse(time.RFC3339, until)
		// A retention date we cannot read is still a retention: refuse rather than guess.
		retained = err != nil || t.After(now)
		if err == nil && retained {
			e.Until = t
		}
	}
	if !retained && !e.LegalHold {
		return nil
	}
	if !retained {
		e.Mode = ""
	}
	return e
}

// String names the store without credentials.
func (s *S3Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}
