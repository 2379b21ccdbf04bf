package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
)

// fileWorker is what one file worker keeps between files: its encoder, and the
// frame of the last file saved, when it goes to a pack rather than to a blob.
type fileWorker struct {
	enc   *zstd.Encoder
	small *zstd.Encoder // for files of at most archive.SmallBlobMax bytes
	dh    *dirHandle    // the directory of the last file looked at by name (shieldStoredAt)
	dirs  dirsMemo
	frame []byte         // set by saveSmall for a file to pack; taken by the worker
	lines []byte         // the file list lines of the batch being saved (saveJob)
	st    place.StatInfo // shieldStoredAt's stat, not kept past the file
	col   *fileColumn    // the column of the file being saved (shieldSaid)
}

// encoderFor returns the encoder for a file read whole, raw.
func (fw *fileWorker) encoderFor(raw []byte) *zstd.Encoder {
	if len(raw) <= archive.SmallBlobMax {
		return fw.small
	}
	return fw.enc
}

// DefaultPackMax is the largest file stored in a pack by default: every file the
// snapshot holds in memory to store it (a recording of a few seconds, a voicemail
// greeting). A call's recording of minutes is larger and stays a content-addressed
// blob, shared between snapshots and with the file shield.
const DefaultPackMax = smallBlob

// packMax is o's largest file to pack; negative: none.
func packMax(o Options) int64 {
	if o.PackMax == 0 {
		return DefaultPackMax
	}
	return min(o.PackMax, smallBlob)
}

// packTarget is the size at which a pack is closed and the next one begun: large
// enough that a tenant's small files cost a few objects, small enough that a
// restore of a few files reads little past them.
const packTarget = 16 << 20

// packBuffer is the write buffer of an open pack: frames of a few hundred bytes
// are written to the upload in runs.
const packBuffer = 1 << 20

// packJob is a saved small file on its way to its snapshot's pack, or (end) the
// mark that every file of m was handed over: m's open pack is closed.
type packJob struct {
	m     *archive.Manifest
	f     archive.File
	ev    Event
	dirs  []archive.Dir
	frame []byte
	end   bool
}

// packWriter appends small files' frames to their snapshot's packs, one goroutine
// for the run: it alone writes the file list entries of packed files, so that a
// snapshot's list names its packed files in the order of their frames, and a
// restore reads each pack once, from its start. A pack is streamed into its upload
// as it is written (a pipe, as table objects are): nothing of it is held but the
// write buffer.
type packWriter struct {
	e    *exporter
	open map[*archive.Manifest]*openPack
}

// openPack is one pack being uploaded.
type openPack struct {
	key     string
	index   int
	pw      *io.PipeWriter
	bw      *bufio.Writer
	sum     *archive.Digest
	size    int64
	entries int64
	putDone chan error
}

func newPackWriter(e *exporter) *packWriter {
	return &packWriter{e: e, open: map[*archive.Manifest]*openPack{}}
}

// add appends j's frame to its snapshot's open pack (opening one) and records the
// file's entry; a pack past packTarget is closed.
func (w *packWriter) add(ctx context.Context, j packJob) error {
	if j.end {
		return w.finish(j.m)
	}
	p := w.open[j.m]
	if p == nil {
		p = w.start(ctx, j.m)
	}
	off := p.size
	if _, err := p.bw.Write(j.frame); err != nil {
		return fmt.Errorf("snapshot: pack %s: %w", p.key, err)
	}
	p.size += int64(len(j.frame))
	p.entries++
	j.f.Pack = &archive.FilePack{Index: p.index, Offset: off}
	entry, err := archive.EncodeFileEntry(j.f)
	if err != nil {
		return fmt.Errorf("snapshot: file %s of tenant %s: %w", j.f.Path, j.m.Tenant, err)
	}
	if err := w.e.recordFiles([]savedFile{{m: j.m, entry: entry, ev: j.ev, dirs: j.dirs}}); err != nil {
		return err
	}
	if p.size >= packTarget {
		return w.finish(j.m)
	}
	return nil
}

// start opens m's next pack: its upload runs while frames are written to it.
func (w *packWriter) start(ctx context.Context, m *archive.Manifest) *openPack {
	w.e.mu.Lock()
	index := len(w.e.packs[m]) // one pack of m open at a time: the last recorded is done
	w.e.mu.Unlock()
	key := archive.PackKey(m.Tenant, m.ID, index)
	pr, pw := io.Pipe()
	p := &openPack{key: key, index: index, pw: pw, sum: archive.NewDigest(), putDone: make(chan error, 1)}
	p.bw = bufio.NewWriterSize(io.MultiWriter(pw, p.sum), packBuffer)
	store := w.e.storeOf(m)
	go func() {
		err := store.Put(ctx, key, pr)
		if err == nil {
			err = errUploadEnded // a writer still writing has nowhere to go
		}
		pr.CloseWithError(err)
		p.putDone <- err
	}()
	w.open[m] = p
	return p
}

// finish completes m's open pack, if any: once its upload returns, the pack is
// stored whole (the store's Put is atomic) and recorded for m's manifest.
func (w *packWriter) finish(m *archive.Manifest) error {
	p := w.open[m]
	if p == nil {
		return nil
	}
	delete(w.open, m)
	err := p.bw.Flush()
	p.pw.CloseWithError(err) // nil: the upload sees the end and completes
	perr := <-p.putDone
	if errors.Is(perr, errUploadEnded) {
		perr = nil
	}
	if err = errors.Join(err, perr); err != nil {
		return fmt.Errorf("snapshot: pack %s: %w", p.key, err)
	}
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	w.e.packs[m] = append(w.e.packs[m], archive.Pack{Key: p.key, Entries: p.entries, StoredBytes: p.size, SHA256: p.sum.Hex()})
	return nil
}

// abandon ends every open pack's upload with err: nothing of them is stored.
func (w *packWriter) abandon(err error) {
	for m, p := range w.open {
		p.pw.CloseWithError(err)
		<-p.putDone
		delete(w.open, m)
	}
}

// run takes jobs until ch is closed, then closes the packs still open. After an
// error it only drains ch (the senders must never block), abandoning the packs.
func (w *packWriter) run(ctx context.Context, ch <-chan packJob, fail func(error)) {
	var failed error
	for j := range ch {
		if failed != nil || ctx.Err() != nil {
			continue
		}
		if err := w.add(ctx, j); err != nil {
			failed = err
			fail(err)
		}
	}
	if failed == nil && ctx.Err() == nil {
		for m := range w.open {
			if err := w.finish(m); err != nil {
				failed = err
				fail(err)
				break
			}
		}
	}
	if len(w.open) > 0 {
		w.abandon(errors.Join(failed, context.Cause(ctx), errors.New("snapshot failed")))
	}
}
