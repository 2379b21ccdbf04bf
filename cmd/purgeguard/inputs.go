package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/tenantlist"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/storage"
)

// Flags shared by check and guard.
var (
	flagDelete = &cli.StringFlag{Name: "delete", Usage: "`FILE` of tenant UUIDs the purge will delete (- for stdin): one per line, a JSON array, or wazo-auth's {\"items\":[…]}"}
	flagSource = &cli.StringFlag{Name: "source-of-truth", Usage: "`FILE` or http(s) URL listing the tenants that must exist (e.g. wazo-auth's /tenants)"}
	flagHeader = &cli.StringSliceFlag{Name: "source-of-truth-header", Usage: "HTTP header for the source of truth, 'Name: value' (repeatable; the value is never logged)"}
)

// decisionInput reads --delete and --source-of-truth into typed sets.
// decisionSetup opens the store (it keeps the previous source of truth's size) and
// reads the deletion set and where activity is read: what check and guard both
// decide from.
func decisionSetup(c *cli.Context, e *env) (storage.Store, guard.Input, *guard.Activity, error) {
	store, err := openStore(c.Context, e)
	if err != nil {
		return nil, guard.Input{}, nil, err
	}
	in, err := decisionInput(c, store)
	if err != nil {
		return nil, guard.Input{}, nil, err
	}
	act, err := activity(e.cfg)
	if err != nil {
		return nil, guard.Input{}, nil, err
	}
	return store, in, act, nil
}

func decisionInput(c *cli.Context, store storage.Store) (guard.Input, error) {
	var in guard.Input
	if !c.IsSet(flagDelete.Name) && !c.IsSet(flagSource.Name) {
		return in, usagef("give --delete FILE, --source-of-truth FILE|URL, or both")
	}
	if name := c.String(flagDelete.Name); name != "" {
		ids, err := readTenantsFile(c, name)
		if err != nil {
			return in, err
		}
		in.Targets = ids
		if in.Targets == nil {
			in.Targets = []uuid.UUID{}
		}
	}
	if src := c.String(flagSource.Name); src != "" {
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
	for _, h := range c.StringSlice(flagHeader.Name) {
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

// policyRules turns the policy section into rules.
func policyRules(cfg *config.Config) policy.Rules {
	p := cfg.Policy
	return policy.Rules{MaxTenants: p.MaxTenants, MaxFraction: p.MaxFraction, MinSourceRatio: p.MinSourceRatio,
		Protected: []uuid.UUID(p.Protected), ActiveWithin: time.Duration(p.ActiveWithin)}
}

func activity(cfg *config.Config) (*guard.Activity, error) {
	a := cfg.Policy.Activity
	if a.Table == "" {
		return nil, nil
	}
	n, err := catalog.ParseName(a.Table)
	if err != nil {
		return nil, &config.Error{Key: "policy.activity.table", Msg: err.Error()}
	}
	return &guard.Activity{Table: n, Tenant: a.TenantColumn, Time: a.TimeColumn}, nil
}
