package main

// Helpers every command shares: how a command reaches the database and the store,
// reads tenant arguments and deletion sets, builds the engines' options from the
// configuration, records an audit, and formats sizes and summaries. Flags are in
// flags.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/internal/tenantlist"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// connConfig is the database to work on: --database-url, else database.url (which
// PURGEGUARD_DATABASE_URL overrides), else libpq's PG* variables, which pgx reads
// itself from an empty string.
func connConfig(c *cli.Context, e *env) (*pgx.ConnConfig, error) {
	dsn := e.cfg.Database.URL.Reveal()
	if c.IsSet(flagDatabaseURL) {
		dsn = c.String(flagDatabaseURL)
	}
	return parseDSN(dsn)
}

func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the string: never show it, it can hold a password.
		return nil, usagef("database URL %s: cannot be parsed", config.RedactDSN(dsn))
	}
	// Named in pg_stat_activity, so that a guard waiting for the lock (and an
	// operator) can tell who holds it.
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "purgeguard"
	}
	return cfg, nil
}

// connect opens the database a command works on, with the tenant graph's start of the
// configuration: the start of every command that reads the tenant graph.
func connect(c *cli.Context, e *env) (*pgx.Conn, profile.Tenants, error) {
	cfg, err := connConfig(c, e)
	if err != nil {
		return nil, e.prof.Tenants, err
	}
	conn, err := pgx.ConnectConfig(c.Context, cfg)
	if err != nil {
		return nil, e.prof.Tenants, fmt.Errorf("connect: %w", err)
	}
	return conn, e.prof.Tenants, nil
}

func openStore(ctx context.Context, e *env) (storage.Store, error) {
	s, err := storage.Open(ctx, e.cfg.Storage.URL, e.cfg.StorageOptions())
	if err != nil {
		return nil, err
	}
	// A dead or hung storage ends the command within the retry budget (#18).
	return storage.Bound(s, storage.Bounds{Timeout: time.Duration(e.cfg.Storage.RequestTimeout), Retries: e.cfg.Storage.Retries}), nil
}

// tenantArgs reads --tenant (repeated or comma-separated) and --tenants-file.
// Every ID is typed from here on; a bad one names the flag or the file line.
func tenantArgs(c *cli.Context) ([]uuid.UUID, error) {
	var out []uuid.UUID
	seen := map[uuid.UUID]bool{}
	add := func(id uuid.UUID) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, s := range splitList(c.StringSlice(flagTenant)) {
		id, err := parseTenantFlag("--tenant", s)
		if err != nil {
			return nil, err
		}
		add(id)
	}
	if name := c.String(flagTenantsFile); name != "" {
		ids, err := readTenantsFile(c, name)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			add(id)
		}
	}
	return out, nil
}

// readTenantsFile reads a list of tenant IDs given on the command line; a list that
// does not parse is a usage error (exit 2) naming the file and line.
func readTenantsFile(c *cli.Context, name string) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	var err error
	if name == "-" {
		ids, err = tenantlist.Parse(c.App.Reader, "stdin")
	} else {
		var f *os.File
		if f, err = os.Open(name); err != nil {
			return nil, usagef("tenants file: %v", err)
		}
		defer f.Close()
		ids, err = tenantlist.Parse(f, name)
	}
	var pe *tenantlist.ParseError
	if errors.As(err, &pe) {
		return nil, &usageError{msg: err.Error()}
	}
	return ids, err
}

func parseTenantFlag(flag, s string) (uuid.UUID, error) {
	id, err := tenantlist.ParseID(s)
	if err != nil {
		return uuid.Nil, usagef("%s: %v", flag, err)
	}
	return id, nil
}

// retentionOptions is the configuration's retention purge with the purge job's days
// from wazo-purge-db's own configuration (retention.purge_config), --purge-days
// standing for its -d option, and --margin.
func retentionOptions(c *cli.Context, e *env) (*profile.Retention, error) {
	o := e.prof.Retention
	o.Kinds = slices.Clone(o.Kinds)
	var err error
	if c.IsSet(flagMargin) {
		if o.Margin, err = config.ParseDuration(c.String(flagMargin)); err != nil || o.Margin < 0 {
			return nil, usagef("--margin %q: want a duration such as 24h or 2d", c.String(flagMargin))
		}
	}
	var override *int
	if c.IsSet(flagPurgeDays) {
		d := c.Int(flagPurgeDays)
		if d < 0 {
			return nil, usagef("--purge-days %d: must be 0 or more", d)
		}
		override = &d
	}
	if err := e.cfg.ApplyPurgeConfig(&o, override); err != nil {
		return nil, err
	}
	if len(o.Kinds) == 0 {
		return nil, &config.Error{Key: "retention.kinds", Msg: "no kind: nothing to save"}
	}
	return &o, nil
}

// decisionSetup opens the store (it keeps the previous source of truth's size) and
// reads the deletion set and where activity is read: what check and guard both
// decide from.
func decisionSetup(c *cli.Context, e *env) (storage.Store, guard.Input, *profile.Activity, error) {
	store, err := openStore(c.Context, e)
	if err != nil {
		return nil, guard.Input{}, nil, err
	}
	in, err := decisionInput(c, store)
	if err != nil {
		return nil, guard.Input{}, nil, err
	}
	return store, in, activity(e), nil
}

// decisionInput reads --delete and --source-of-truth into typed sets.
func decisionInput(c *cli.Context, store storage.Store) (guard.Input, error) {
	var in guard.Input
	if !c.IsSet(flagDelete) && !c.IsSet(flagSource) {
		return in, usagef("give --delete FILE, --source-of-truth FILE|URL, or both")
	}
	if name := c.String(flagDelete); name != "" {
		ids, err := readTenantsFile(c, name)
		if err != nil {
			return in, err
		}
		in.Targets = ids
		if in.Targets == nil {
			in.Targets = []uuid.UUID{}
		}
	}
	if src := c.String(flagSource); src != "" {
		ids, err := readSource(c, src)
		if err != nil {
			return in, err
		}
		in.SourceOfTruth, in.HasSourceOfTruth = ids, true
		st, err := repository.GetState(c.Context, store)
		if err != nil {
			return in, fmt.Errorf("previous run's state: %w", err)
		}
		in.PreviousSourceSize = st.SourceOfTruthSize
	}
	return in, nil
}

// readSource reads the source of truth from a file, stdin or an http(s) URL.
func readSource(c *cli.Context, src string) ([]uuid.UUID, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return readTenantsFile(c, src)
	}
	u, err := url.Parse(src)
	if err != nil {
		return nil, usagef("--source-of-truth: not a URL")
	}
	shown := u.Scheme + "://" + u.Host + u.Path // a query may hold a token: never shown
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, usagef("--source-of-truth %s: %v", shown, err)
	}
	req.Header.Set("Accept", "application/json")
	for _, h := range c.StringSlice(flagHeader) {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, usagef("--source-of-truth-header: want 'Name: value' (got a value without a name)")
		}
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("source of truth %s: %w", shown, redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("source of truth %s: HTTP %s", shown, resp.Status)
	}
	return tenantlist.Parse(resp.Body, shown)
}

// redactURLError drops the URL (and its query) from a transport error.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// activity is where the policy reads the targets' last activity; nil: nowhere.
func activity(e *env) *profile.Activity {
	if e.prof.Activity.Table.IsZero() {
		return nil
	}
	a := e.prof.Activity
	return &a
}

// snapshotSummary is one committed snapshot as commands print it.
type snapshotSummary struct {
	Tenant    uuid.UUID     `json:"tenant"`
	Snapshot  uuid.UUID     `json:"snapshot"`
	Reason    string        `json:"reason,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	Scope     archive.Scope `json:"scope"`
	// Encrypted: its counts and reason are inside its sealed manifest (list shows
	// what the plaintext envelope says).
	Encrypted bool `json:"encrypted,omitempty"`
	archive.Totals
}

func summarize(s snapshot.Snapshot) snapshotSummary {
	return snapshotSummary{Tenant: s.Tenant, Snapshot: s.ID, Reason: s.Reason, CreatedAt: s.CreatedAt,
		Scope: archive.Scope{Kind: s.Scope.Kind, Cutoffs: s.Scope.Cutoffs, Days: s.Scope.Days}, Totals: archive.Totals(s.Totals)}
}

func summaryOf(s repository.Summary) snapshotSummary {
	return snapshotSummary{Tenant: s.Tenant, Snapshot: s.ID, Reason: s.Reason, CreatedAt: s.CreatedAt, Scope: s.Scope, Totals: s.Totals, Encrypted: s.Sealed}
}

// snapshotOptions is the snapshot configuration shared by snapshot and guard: the
// catalog, the file columns, --jobs and the progress display (done by the caller).
func snapshotOptions(c *cli.Context, e *env) (snapshot.Options, *progress, error) {
	jobs := e.cfg.Snapshot.Jobs
	if c.IsSet("jobs") {
		if jobs = c.Int("jobs"); jobs < 1 || jobs > 64 {
			return snapshot.Options{}, nil, usagef("--jobs %d: must be between 1 and 64", jobs)
		}
	}
	prog := newProgress(e, "snapshot", 0)
	return snapshot.Options{
		Jobs: jobs, Level: e.cfg.Snapshot.CompressionLevel, Graph: e.prof.Tenants, Files: e.prof.Files,
		ToolVersion: toolVersion(), Log: e.log,
		Progress: func(ev snapshot.Event) {
			if ev.File != "" {
				prog.minor(ev.Bytes)
				return
			}
			prog.item(ev.Table, ev.Rows, ev.Bytes, "tenant", ev.Tenant, "stored_bytes", ev.Stored)
		},
	}, prog, nil
}

// scopeText renders a retention scope: "cdr 30d (before 2026-10-26), ...".
// scopeText describes a retention scope: each kind's days and cut-off.
func scopeText(cutoffs map[string]time.Time, days map[string]int) string {
	kinds := make([]string, 0, len(cutoffs))
	for k := range cutoffs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %dd (before %s)", k, days[k], cutoffs[k].Format(time.RFC3339))
	}
	return strings.Join(parts, ", ")
}

// newAudit starts an audit record: who ran what, where. Never a credential.
func newAudit(kind string, tenants []uuid.UUID) *archive.Audit {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	a := &archive.Audit{ID: id, Kind: kind, Time: time.Now().UTC(), ToolVersion: toolVersion(), Tenants: tenants}
	if u, err := user.Current(); err == nil {
		a.User = u.Username
	}
	a.Host, _ = os.Hostname()
	return a
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// splitList accepts repeated flags and comma-separated values alike.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// jsonDetail marshals an audit record's detail; a value that cannot be marshalled
// is a programming error, recorded rather than lost.
func jsonDetail(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	return b
}

// redactCommand is a purge command as an audit record keeps it: a value that may be
// a secret (a URL's password, the value of a flag named like a password, token,
// secret or key) reads REDACTED.
func redactCommand(args []string) []string {
	out := make([]string, len(args))
	secretFlag := false
	for i, a := range args {
		switch {
		case secretFlag:
			a = "REDACTED"
			secretFlag = false
		case strings.HasPrefix(a, "-") && looksSecret(a):
			if name, _, ok := strings.Cut(a, "="); ok {
				a = name + "=REDACTED"
			} else {
				secretFlag = true
			}
		case strings.Contains(a, "://"):
			if u, err := url.Parse(a); err != nil {
				a = "REDACTED"
			} else if _, has := u.User.Password(); has || u.RawQuery != "" {
				u.User, u.RawQuery = nil, ""
				a = u.String() + " (credentials REDACTED)"
			}
		}
		out[i] = a
	}
	return out
}

func looksSecret(flag string) bool {
	name, _, _ := strings.Cut(strings.ToLower(flag), "=")
	for _, w := range []string{"password", "passwd", "token", "secret", "key"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// keyring is the encryption the configuration gives (issue 15): the tenant key
// store (encryption.keys_url, else the store's keys/ area), the operators'
// recipients (encryption.recipients and recipients_file: new snapshots are sealed)
// and an operator identity (encryption.identity_file: sealed snapshots can be
// opened). Nil when the configuration has no encryption section.
func keyring(ctx context.Context, e *env, store storage.Store) (*seal.Keyring, error) {
	enc := e.cfg.Encryption
	if !enc.Enabled() {
		return nil, nil
	}
	ks, err := keyStore(ctx, e, store)
	if err != nil {
		return nil, err
	}
	lines := strings.Join(enc.Recipients, "\n")
	if enc.RecipientsFile != "" {
		b, err := os.ReadFile(enc.RecipientsFile)
		if err != nil {
			return nil, &config.Error{Key: "encryption.recipients_file", Msg: err.Error()}
		}
		lines += "\n" + string(b)
	}
	var to seal.Recipients
	if strings.TrimSpace(lines) != "" {
		if to, err = seal.ParseRecipients(strings.NewReader(lines)); err != nil {
			return nil, &config.Error{Key: "encryption.recipients", Msg: err.Error()}
		}
	}
	var ids *seal.Identities
	if enc.IdentityFile != "" {
		f, err := os.Open(enc.IdentityFile)
		if err != nil {
			return nil, &config.Error{Key: "encryption.identity_file", Msg: err.Error()}
		}
		ids, err = seal.ParseIdentities(f)
		f.Close()
		if err != nil {
			return nil, &config.Error{Key: "encryption.identity_file", Msg: err.Error()}
		}
	}
	return seal.NewKeyring(ks, to, ids), nil
}

// keyStore is the tenant keys' store: encryption.keys_url, else the store's keys/.
func keyStore(ctx context.Context, e *env, store storage.Store) (*seal.KeyStore, error) {
	keys := store
	if u := e.cfg.Encryption.KeysURL; u != "" {
		s, err := storage.Open(ctx, u, e.cfg.StorageOptions())
		if err != nil {
			return nil, fmt.Errorf("encryption.keys_url: %w", err)
		}
		keys = storage.Bound(s, storage.Bounds{Timeout: time.Duration(e.cfg.Storage.RequestTimeout), Retries: e.cfg.Storage.Retries})
	}
	return seal.NewKeyStore(keys)
}

// snapshotsTo completes so for snapshots written to store: files the service
// removed before their rows went (remove_tenant() unlinks the recordings first) are
// taken from the shield's link or blob, and the snapshots are encrypted when the
// configuration names recipients; writing plaintext to s3:// is warned about, once.
func snapshotsTo(ctx context.Context, e *env, store storage.Store, so *snapshot.Options) error {
	so.Shield = snapshotShield(ctx, e, store)
	kr, err := keyring(ctx, e, store)
	if err != nil {
		return err
	}
	if kr.Sealing() {
		so.Sealer = kr
		return nil
	}
	if strings.HasPrefix(e.cfg.Storage.URL, "s3://") {
		e.log.Warn("snapshots are written to S3 unencrypted: anyone who can read the bucket reads every tenant's data (set encryption.recipients; purgeguard keys init makes a key)")
	}
	return nil
}

// opener is what reads encrypted snapshots in a command: nil (no interface value)
// without an encryption section.
func opener(ctx context.Context, e *env, store storage.Store) (restore.Opener, error) {
	kr, err := keyring(ctx, e, store)
	if err != nil || kr == nil {
		return nil, err
	}
	return kr, nil
}
