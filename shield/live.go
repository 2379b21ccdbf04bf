package shield

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// shieldID names this shield in storage: its host and its index, so two shields
// on one host (two indexes) keep two lists.
func shieldID(index string) string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "host"
	}
	h := fnv.New64a()
	h.Write([]byte(index))
	return fmt.Sprintf("%s-%016x", host, h.Sum64())
}

// writeLive stores the list of blobs the shield vouches for (every blob an entry
// names: files present, lost files until their link is swept), sorted as the index
// holds them, streamed from one read transaction. prune keeps every blob of every
// shield's list: without it, a blob no snapshot names yet would be swept.
func (s *Shield) writeLive(ctx context.Context) error {
	enc, err := archive.NewBlobEncoder(s.o.Level)
	if err != nil {
		return err
	}
	defer enc.Close()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc.Reset(pw)
		bw := bufio.NewWriter(enc)
		err := s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bBlobs).ForEach(func(k, _ []byte) error {
				if _, err := bw.WriteString(hex.EncodeToString(k)); err != nil {
					return err
				}
				return bw.WriteByte('\n')
			})
		})
		err = errors.Join(err, bw.Flush())
		pw.CloseWithError(errors.Join(err, enc.Close()))
	}()
	err = s.o.Store.Put(ctx, archive.ShieldLiveKey(s.id), pr)
	pr.CloseWithError(err) // the writer stops if the upload did
	<-done
	if err != nil {
		return fmt.Errorf("shield: live list: %w", err)
	}
	return nil
}
