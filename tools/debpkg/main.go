// Command debpkg builds purgeguard's Debian package with nfpm as a library (make deb):
// the binary, the configuration as a conffile, the systemd units, and the cron
// drop-in that runs wazo-purge-db's nightly purge under guard --retention, with the
// maintainer scripts that divert wazo-purge-db's own cron file (deploy/debian).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	var (
		version = flag.String("version", "", "the package's Debian version, e.g. 0.1.0 or 0~git20261128.f9a2cef")
		binary  = flag.String("binary", "bin/purgeguard", "the purgeguard binary to package")
		root    = flag.String("root", ".", "the repository's root")
		arch    = flag.String("arch", runtime.GOARCH, "the Debian architecture")
		out     = flag.String("out", "dist", "the directory the .deb is written to")
	)
	flag.Parse()
	path, err := build(*root, *binary, *version, *arch, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "debpkg:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

func build(root, binary, version, arch, out string) (string, error) {
	if version == "" {
		return "", fmt.Errorf("no -version")
	}
	src := func(p string) string { return filepath.Join(root, p) }
	file := func(from, to string, mode os.FileMode) *files.Content {
		return &files.Content{Source: from, Destination: to, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	conf := func(from, to string, mode os.FileMode) *files.Content {
		c := file(from, to, mode)
		c.Type = files.TypeConfigNoReplace
		return c
	}
	doc := "/usr/share/doc/purgeguard/"
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "purgeguard",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "purgeguard maintainers <purgeguard@localhost>",
		Description: "safety sidecar for multi-tenant PostgreSQL purges\n" +
			"Snapshots every row and file a tenant or retention purge would destroy,\n" +
			"refuses wrong deletion sets, restores one tenant exactly. On a Wazo host\n" +
			"it runs wazo-purge-db's nightly purge under guard --retention.",
		Homepage: "https://github.com/purgeguard/purgeguard",
		License:  "proprietary",
		// Reproducible: the files' times are the package's, not the build's.
		MTime: time.Unix(0, 0).UTC(),
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				file(binary, "/usr/bin/purgeguard", 0o755),
				{Destination: "/etc/purgeguard", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o700}},
				conf(src("config.example.yaml"), "/etc/purgeguard/config.yaml", 0o600),
				conf(src("deploy/debian/cron.d-purgeguard"), "/etc/cron.d/purgeguard", 0o644),
				file(src("deploy/debian/guard-wazo-purge-db"), "/usr/lib/purgeguard/guard-wazo-purge-db", 0o755),
				file(src("deploy/systemd/purgeguard-retention.service"), "/lib/systemd/system/purgeguard-retention.service", 0o644),
				file(src("deploy/systemd/purgeguard-retention.timer"), "/lib/systemd/system/purgeguard-retention.timer", 0o644),
				file(src("config.example.yaml"), doc+"config.example.yaml", 0o644),
				file(src("deploy/systemd/env.example"), doc+"env.example", 0o644),
				file(src("README.md"), doc+"README.md", 0o644),
				file(src("deploy/README.md"), doc+"deploy.md", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: src("deploy/debian/postinst"),
				PostRemove:  src("deploy/debian/postrm"),
			},
		},
	})
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(out, pkg.ConventionalFileName(info))
	tmp, err := os.CreateTemp(out, ".purgeguard-*.deb")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := pkg.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("package %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
