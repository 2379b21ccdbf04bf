package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/metrics"
	"github.com/purgeguard/purgeguard/profile"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise the
// module version the binary was built from.
var version = ""

func toolVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// env is what every command receives: the loaded configuration, a logger and where
// to write results.
type env struct {
	cfg    *config.Config
	prof   profile.Profile // the service as the configuration describes it
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
	json   bool
	// rows and bytes are what the command saved, restored or freed, for --metrics-file.
	rows, bytes int64
	// trash is the trash's size and age after a trash command, for --metrics-file.
	trash *metrics.Trash
}

// output is the result format of one run: set by --output (before or after the
// command) and read by report once the app has returned.
type output struct{ json bool }

const (
	envKey     = "purgeguard.env"
	outputKey  = "purgeguard.output"
	unknownKey = "purgeguard.unknown-command"
)

func getEnv(c *cli.Context) *env { return c.App.Metadata[envKey].(*env) }

func getOutput(app *cli.App) *output {
	if o, ok := app.Metadata[outputKey].(*output); ok {
		return o
	}
	return &output{}
}

// newApp builds the command line afresh: every command and flag is made by a
// function, so two apps (tests run many) share nothing.
func newApp() *cli.App {
	app := &cli.App{
		Name:  "purgeguard",
		Usage: "make tenant purges safe: refuse wrong deletion sets, snapshot before, restore after",
		Description: `purgeguard runs beside a multi-tenant PostgreSQL service that purges tenants.
Before a purge it checks the deletion set against policy, snapshots every row and file
the purge would destroy (one consistent read, zstd, to S3 or a directory), and later
restores one tenant exactly. Wrap the purge job with 'purgeguard guard -- COMMAND'.

Exit codes: 0 done or allowed, 1 error, 2 usage, 3 refused by policy,
4 verification failed (integrity or blast radius).

Environment: PURGEGUARD_DATABASE_URL (else libpq PG* variables), PURGEGUARD_STORAGE_URL,
PURGEGUARD_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
PURGEGUARD_CONFIG (--config), PURGEGUARD_METRICS_FILE (--metrics-file).`,
		Version:              toolVersion(),
		HideVersion:          true,
		EnableBashCompletion: true,
		Flags:                []cli.Flag{newConfigFlag(), newLogFormatFlag(), newLogLevelFlag(), newOutputFlag(), newMetricsFlag()},
		Before:               setup,
		OnUsageError:         onUsageError,
		Metadata:             map[string]any{outputKey: &output{}},
		Commands: []*cli.Command{
			newTablesCommand(), newSnapshotCommand(), newListCommand(), newVerifyCommand(), newCheckCommand(), newGuardCommand(),
			newFenceCommand(), newRestoreCommand(), newUndoCommand(), newHistoryCommand(), newPruneCommand(), newVersionCommand(),
			newTrashCommand(), newShieldCommand(), newFilesCommand(), newKeysCommand(), newForgetCommand(),
		},
		// urfave/cli cannot return an error from here: run turns the mark into one.
		CommandNotFound: func(c *cli.Context, name string) { c.App.Metadata[unknownKey] = name },
		ExitErrHandler:  func(*cli.Context, error) {}, // exit codes are decided in report
	}
	for _, cmd := range app.Commands {
		setUsageHandler(cmd)
		var before cli.BeforeFunc
		if _, ok := measured[cmd.Name]; ok {
			before = markMeasured
		}
		addOutputFlag(cmd, before)
	}
	return app
}

func setUsageHandler(cmd *cli.Command) {
	cmd.OnUsageError = onUsageError
	for _, sub := range cmd.Subcommands {
		setUsageHandler(sub)
	}
}

// addOutputFlag lets --output follow the command as well as precede it, as the
// examples of --help write it ("purgeguard verify --all -o json").
func addOutputFlag(cmd *cli.Command, before cli.BeforeFunc) {
	global := newOutputFlag()
	cmd.Flags = append(cmd.Flags, &cli.StringFlag{Name: flagOutput, Aliases: global.Aliases, Usage: global.Usage})
	cmd.Before = func(c *cli.Context) error {
		// The command's own flag, "" when not given there: the global one stands.
		out := getOutput(c.App)
		if err := out.set(c.String(flagOutput)); err != nil {
			return err
		}
		if e, ok := c.App.Metadata[envKey].(*env); ok {
			e.json = out.json
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	for _, sub := range cmd.Subcommands {
		addOutputFlag(sub, nil)
	}
}

// set applies an --output value; "" changes nothing.
func (out *output) set(o string) error {
	switch o {
	case "":
	case "text":
		out.json = false
	case "json":
		out.json = true
	default:
		return usagef("--output %q: want text or json", o)
	}
	return nil
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return &usageError{msg: err.Error()} }

// setup loads the configuration and builds the logger before any command runs, so a
// bad file fails every command the same way, naming the key and line.
func setup(c *cli.Context) error {
	out := getOutput(c.App)
	if err := out.set(c.String(flagOutput)); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String(flagLogLevel))); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", c.String(flagLogLevel))
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f := c.String(flagLogFormat); f {
	case "text":
		h = slog.NewTextHandler(c.App.ErrWriter, opts)
	case "json":
		h = slog.NewJSONHandler(c.App.ErrWriter, opts)
	default:
		return usagef("--log-format %q: want text or json", f)
	}
	cfg, err := config.Load(c.String(flagConfig), os.Getenv)
	if err != nil {
		return err
	}
	prof, err := cfg.Profile()
	if err != nil {
		return err
	}
	c.App.Metadata[envKey] = &env{
		cfg: cfg, prof: prof, log: slog.New(h), stdout: c.App.Writer, stderr: c.App.ErrWriter, json: out.json,
	}
	return nil
}

// emit writes a command's result: v as JSON under --output json, else text().
func (e *env) emit(v any, text func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(e.stdout)
	return nil
}
