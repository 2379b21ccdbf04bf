package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/config"
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

// outputJSON is read by report, which runs after the app has returned.
var outputJSON bool

// Global flags.
var (
	flagConfig = &cli.StringFlag{
		Name: "config", Aliases: []string{"c"}, EnvVars: []string{"PURGEGUARD_CONFIG"},
		Usage: "YAML configuration `FILE` (see config.example.yaml); defaults are the call-logd profile",
	}
	flagLogFormat = &cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format on stderr: text or json"}
	flagLogLevel  = &cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"}
	flagOutput    = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"}
	flagMetrics   = &cli.StringFlag{
		Name: "metrics-file", EnvVars: []string{"PURGEGUARD_METRICS_FILE"},
		Usage: "write Prometheus metrics of the run to `FILE` (*.prom, for node_exporter's textfile collector)",
	}
)

// env is what every command receives: the loaded configuration, a logger and where
// to write results.
type env struct {
	cfg    *config.Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
	json   bool
	// rows and bytes are what the command saved, restored or freed, for --metrics-file.
	rows, bytes int64
}

const (
	envKey     = "purgeguard.env"
	unknownKey = "purgeguard.unknown-command"
)

func getEnv(c *cli.Context) *env { return c.App.Metadata[envKey].(*env) }

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
		Flags:                []cli.Flag{flagConfig, flagLogFormat, flagLogLevel, flagOutput, flagMetrics},
		Before:               setup,
		OnUsageError:         onUsageError,
		Metadata:             map[string]any{},
		Commands: []*cli.Command{
			cmdTables, cmdSnapshot, cmdList, cmdVerify, cmdCheck, cmdGuard,
			cmdFence, cmdRestore, cmdPrune, cmdVersion,
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
// The commands are package variables: a second app (tests) must not add it twice.
func addOutputFlag(cmd *cli.Command, before cli.BeforeFunc) {
	if !slices.ContainsFunc(cmd.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), flagOutput.Name) }) {
		cmd.Flags = append(cmd.Flags, &cli.StringFlag{Name: flagOutput.Name, Aliases: flagOutput.Aliases, Usage: flagOutput.Usage})
	}
	cmd.Before = func(c *cli.Context) error {
		// The command's own flag, "" when not given there: the global one stands.
		if err := setOutput(c.String(flagOutput.Name)); err != nil {
			return err
		}
		if e, ok := c.App.Metadata[envKey].(*env); ok {
			e.json = outputJSON
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

// setOutput applies an --output value; "" changes nothing.
func setOutput(o string) error {
	switch o {
	case "":
	case "text":
		outputJSON = false
	case "json":
		outputJSON = true
	default:
		return usagef("--output %q: want text or json", o)
	}
	return nil
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return &usageError{msg: err.Error()} }

// setup loads the configuration and builds the logger before any command runs, so a
// bad file fails every command the same way, naming the key and line.
func setup(c *cli.Context) error {
	outputJSON = false
	if err := setOutput(c.String(flagOutput.Name)); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String(flagLogLevel.Name))); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", c.String(flagLogLevel.Name))
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f := c.String(flagLogFormat.Name); f {
	case "text":
		h = slog.NewTextHandler(c.App.ErrWriter, opts)
	case "json":
		h = slog.NewJSONHandler(c.App.ErrWriter, opts)
	default:
		return usagef("--log-format %q: want text or json", f)
	}
	cfg, err := config.Load(c.String(flagConfig.Name), os.Getenv)
	if err != nil {
		return err
	}
	c.App.Metadata[envKey] = &env{
		cfg: cfg, log: slog.New(h), stdout: c.App.Writer, stderr: c.App.ErrWriter, json: outputJSON,
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
