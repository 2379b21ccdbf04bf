package repository_test

import (
	"encoding/json"

	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// prune keeps the file shield's blobs: those its live list names and those a loss
// record within the keep names; a blob of a loss past the keep, and one nothing
// names, go.
func TestPrune_ShieldBlobsLive(t *testing.T) {
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	blob := func(name string) string {
		d := archive.NewDigest()
		d.Write([]byte(name))
		put(t, s, archive.BlobKey(d.Sum()), compress(t, []byte(name)))
		return d.Hex()
	}
	live, lostRecently, lostLongAgo, orphan := blob("live"), blob("lost recently"), blob("lost long ago"), blob("orphan")
	put(t, s, archive.ShieldLiveKey("host-1"), compress(t, []byte(live+"\n")))
	loss := func(digest string, at time.Time) {
		detail, _ := json.Marshal(map[string]any{"path": "/r/x", "sha256": digest, "lost_at": at})
		a := &archive.Audit{ID: uuid.Must(uuid.NewV7()), Kind: archive.AuditLoss, Time: at, Outcome: "lost", Detail: detail}
		if err := repository.PutAudit(t.Context(), s, a); err != nil {
			t.Fatal(err)
		}
	}
	loss(lostRecently, now.Add(-24*time.Hour))
	loss(lostLongAgo, now.Add(-40*24*time.Hour))
	writeSnapshot(t, s, uuid.New(), now, nil)
	rep, err := repository.Prune(t.Context(), s, repository.PruneOptions{KeepLast: 1, Now: now.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blobs != 2 {
		t.Errorf("blobs removed: got %d, want 2 (the orphan and the loss past its keep)", rep.Blobs)
	}
	for name, digest := range map[string]string{"live": live, "lost recently": lostRecently, "lost long ago": lostLongAgo, "orphan": orphan} {
		key, _ := archive.BlobKeyHex(digest)
		_, err := s.Stat(t.Context(), key)
		kept := err == nil
		if want := !strings.Contains(name, "ago") && name != "orphan"; kept != want {
			t.Errorf("blob %q: kept %v, want %v", name, kept, want)
		}
	}

}
