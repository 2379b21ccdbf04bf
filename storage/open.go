package storage

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Options carries what a URL cannot: credentials and tuning.
type Options struct {
	S3 S3Options
}

// Open opens the store a URL names: file:///absolute/path or s3://bucket/prefix.
func Open(ctx context.Context, rawURL string, o Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("storage: URL %q: want file:///absolute/path", rawURL)
		}
		if o.S3.ObjectLock.Mode != "" {
			// Ignoring it would promise immutability that a directory cannot keep.
			return nil, fmt.Errorf("storage: URL %q: object lock is an S3 feature; a file:// store cannot hold it", rawURL)
		}
		return NewFile(u.Path)
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("storage: URL %q: want s3://bucket/prefix", rawURL)
		}
		return NewS3(ctx, u.Host, strings.Trim(u.Path, "/"), o.S3)
	default:
		return nil, fmt.Errorf("storage: URL %q: scheme must be file or s3", rawURL)
	}
}
