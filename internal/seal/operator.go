package seal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
)

// Recipients are the operators' public keys every tenant identity is sealed to:
// any one of their identities opens every tenant. They are public: they print.
type Recipients struct {
	list []age.Recipient
	text []string // as given, sorted: what a key record lists
}

// ParseRecipients reads age recipients, one per line ("age1…", X25519 or the
// post-quantum hybrid kind); empty lines and "#" comments are skipped. Mixing the
// hybrid kind with X25519 is refused by age when sealing: use one kind.
func ParseRecipients(r io.Reader) (Recipients, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Recipients{}, fmt.Errorf("seal: read recipients: %w", err)
	}
	var rs Recipients
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "AGE-SECRET-KEY") {
			// Never echo it: that would print a secret into an error.
			return Recipients{}, fmt.Errorf("seal: recipients line %d: a private identity, not a public recipient (age1…)", i+1)
		}
		parsed, err := age.ParseRecipients(strings.NewReader(line))
		if err != nil || len(parsed) != 1 {
			return Recipients{}, fmt.Errorf("seal: recipients line %d: not an age recipient (age1…)", i+1)
		}
		rs.list = append(rs.list, parsed[0])
		rs.text = append(rs.text, line)
	}
	if len(rs.list) == 0 {
		return Recipients{}, errors.New("seal: no recipients")
	}
	slices.Sort(rs.text)
	rs.text = slices.Compact(rs.text)
	return rs, nil
}

// String lists the recipients, which are public keys.
func (rs Recipients) String() string { return strings.Join(rs.text, ",") }

// List returns the recipients, sorted.
func (rs Recipients) List() []string { return slices.Clone(rs.text) }

// Len is how many recipients there are.
func (rs Recipients) Len() int { return len(rs.text) }

// Identities are an operator's private keys (an age identity file): they open the
// tenant identities sealed to the matching recipients. They never print.
type Identities struct {
	redactor
	list []age.Identity
}

// ParseIdentities reads an age identity file (AGE-SECRET-KEY-1… lines, "#"
// comments). Its errors never quote the file.
func ParseIdentities(r io.Reader) (*Identities, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		// age's messages name a line number and a reason, not the key; still, say
		// it in our own words rather than carry any of the text along.
		return nil, errors.New("seal: not an age identity file (AGE-SECRET-KEY-1… lines)")
	}
	return &Identities{redactor: redactor{"seal.Identities"}, list: ids}, nil
}

// OperatorKey is a new operator identity, made by `purgeguard keys init`.
type OperatorKey struct {
	redactor
	id *age.X25519Identity
}

// GenerateOperatorKey makes a new X25519 operator identity.
func GenerateOperatorKey() (*OperatorKey, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("seal: generate an identity: %w", err)
	}
	return &OperatorKey{redactor: redactor{"seal.OperatorKey"}, id: id}, nil
}

// Recipient is the identity's public key, for encryption.recipients.
func (k *OperatorKey) Recipient() string { return k.id.Recipient().String() }

// WriteIdentityFile writes the identity in age-keygen's format (the file
// encryption.identity_file names, and age -d -i reads).
func (k *OperatorKey) WriteIdentityFile(w io.Writer, now time.Time) error {
	_, err := fmt.Fprintf(w, "# created: %s\n# public key: %s\n%s\n", now.UTC().Format(time.RFC3339), k.Recipient(), k.id.String())
	return err
}

// Save writes the identity file at path, mode 0600, whole or not at all, and never
// over an existing file (an operator identity overwritten is every tenant lost):
// a temporary file beside it is written, synced, and hard-linked to the name,
// which fails if the name is taken.
func (k *OperatorKey) Save(path string, now time.Time) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-identity-*")
	if err != nil {
		return fmt.Errorf("seal: write %s: %w", path, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("seal: write %s: %w", path, err)
	}
	if err := k.WriteIdentityFile(tmp, now); err != nil {
		return fmt.Errorf("seal: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("seal: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("seal: %s already exists: not overwriting an identity (move it away first)", path)
		}
		return fmt.Errorf("seal: write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("seal: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("seal: sync %s: %w", dir, err)
	}
	return nil
}
