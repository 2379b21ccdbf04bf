package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI_Check(t *testing.T) {
	env, res, _ := cliEnv(t)
	dir := t.TempDir()
	appendConfig(t, env, thirdOfTenants)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := make([]string, len(res.Tenants))
	for i, id := range res.Tenants {
		all[i] = strings.ToUpper(id.String())
	}
	// wazo-auth's answer lists every tenant but the last, in upper case: the IDs are
	// parsed, so case does not matter.
	authJSON := `{"items":[{"uuid":"` + strings.Join(all[:len(all)-1], `"},{"uuid":"`) + `"}],"total":` +
		itoa(len(all)-1) + `,"filtered":` + itoa(len(all)-1) + `}`
	auth := write("auth.json", authJSON)
	const token = "tok-3f9a1c77"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != token {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(authJSON))
	}))
	defer srv.Close()

	tests := []struct {
		name     string
		args     []string
		code     int
		targets  int
		rules    []string
		noSecret bool
	}{
		{"derived: the one tenant auth dropped", []string{"--source-of-truth", auth}, exitOK, 1, nil, false},
		{"the caller's whole database, auth lists them", []string{"--delete", write("all.txt", strings.Join(all, "\n")), "--source-of-truth", auth},
			exitRefused, 3, []string{"listed_by_source_of_truth", "max_fraction"}, false},
		{"empty source of truth", []string{"--source-of-truth", write("empty.json", `{"items":[],"total":0,"filtered":0}`)},
			exitRefused, 3, []string{"empty_source_of_truth"}, false},
		{"from a URL with a token", []string{"--source-of-truth", srv.URL + "/tenants?secret=q", "--source-of-truth-header", "X-Auth-Token: " + token},
			exitOK, 1, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, env, append([]string{"-o", "json", "--log-level", "debug", "check"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			var d struct {
				Allowed    bool     `json:"allowed"`
				Targets    []string `json:"targets"`
				Violations []struct {
					Rule   string `json:"rule"`
					Detail string `json:"detail"`
				} `json:"violations"`
			}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if d.Allowed != (tt.code == exitOK) || (tt.targets < 3 && len(d.Targets) != tt.targets) {
				t.Errorf("decision %+v: want allowed=%v with %d targets", d, tt.code == exitOK, tt.targets)
			}
			for _, rule := range tt.rules {
				found := false
				for _, v := range d.Violations {
					found = found || v.Rule == rule && v.Detail != ""
				}
				if !found {
					t.Errorf("violations %+v lack %s", d.Violations, rule)
				}
			}
			if tt.noSecret && strings.Contains(out+errOut, token) {
				t.Errorf("the header value was printed:\n%s%s", out, errOut)
			}
			if strings.Contains(out+errOut, "secret=q") {
				t.Errorf("the URL's query was printed")
			}
		})
	}
	code, _, errOut := runCLI(t, env, "check")
	if code != exitUsage || !strings.Contains(errOut, "--delete") {
		t.Errorf("check without input: exit %d, want %d naming the flags: %s", code, exitUsage, errOut)
	}
	code, _, errOut = runCLI(t, env, "check", "--delete", write("bad.txt", all[0]+"\nnot-a-uuid\n"))
	if code == exitOK || !strings.Contains(errOut, "bad.txt:2") {
		t.Errorf("check with a bad line: exit %d, want an error naming bad.txt:2: %s", code, errOut)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
