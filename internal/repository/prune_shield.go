package repository

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// DefaultLossKeep is how long a loss record keeps its blob live: the file shield's
// default keep.
const DefaultLossKeep = 30 * 24 * time.Hour

// markShield marks the blobs the file shield needs: every digest of every shield's
// live list (files present, and lost files whose link it still keeps), and every
// blob a loss record of the last lossKeep names (the content files restore takes
// once the link is gone).
func markShield(ctx context.Context, s storage.Store, now time.Time, lossKeep time.Duration, mark func([32]byte)) error {
	err := s.List(ctx, archive.ShieldPrefix, func(i storage.Info) error {
		if !archive.IsShieldLiveKey(i.Key) {
			return nil
		}
		return markLiveList(ctx, s, i.Key, mark)
	})
	if err != nil {
		return fmt.Errorf("prune: shield live lists: %w", err)
	}
	from := now.Add(-lossKeep).UTC().Truncate(24 * time.Hour)
	for d := from; !d.After(now.UTC()); d = d.Add(24 * time.Hour) {
		prefix := fmt.Sprintf("%s%04d/%02d/%02d/", archive.AuditPrefix, d.Year(), d.Month(), d.Day())
		err := s.List(ctx, prefix, func(i storage.Info) error { return markLoss(ctx, s, i.Key, now.Add(-lossKeep), mark) })
		if err != nil {
			return fmt.Errorf("prune: loss records: %w", err)
		}
	}
	return nil
}

func markLiveList(ctx context.Context, s storage.Store, key string, mark func([32]byte)) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	dec, err := archive.NewBlobDecoder()
	if err != nil {
		return err
	}
	defer dec.Close()
	if err := dec.Reset(rc); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	sc := bufio.NewScanner(dec)
	for sc.Scan() {
		sum, err := archive.ParseDigestHex(sc.Text())
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		mark(sum)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func markLoss(ctx context.Context, s storage.Store, key string, since time.Time, mark func([32]byte)) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	var a archive.Audit
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&a); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if a.Kind != archive.AuditLoss {
		return nil
	}
	var l struct {
		SHA256 string    `json:"sha256"`
		LostAt time.Time `json:"lost_at"`
	}
	if err := json.Unmarshal(a.Detail, &l); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if l.LostAt.Before(since) {
		return nil
	}
	if sum, err := archive.ParseDigestHex(l.SHA256); err == nil {
		mark(sum)
	}
	return nil
}
