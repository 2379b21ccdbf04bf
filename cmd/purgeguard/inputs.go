package main

import (
	"github.com/purgeguard/purgeguard/profile"

	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/tenantlist"
	"github.com/purgeguard/purgeguard/storage"
)

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
