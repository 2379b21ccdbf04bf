package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/restore"
)

// Exit codes (README, "Commands"): scripts and the guard's caller branch on them.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitRefused = 3 // refused by policy
	exitVerify  = 4 // verification failed: integrity or blast radius
)

// usageError marks a command line that cannot be run as given.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// exitCoder lets an error carry an exit code decided elsewhere: the guard passes on
// the wrapped command's own status this way.
type exitCoder interface{ ExitCode() int }

// errReported is returned when a command already printed its result (a refusal, a
// failed verification) and only the exit code is left to give.
type errReported struct {
	code int
	// command marks a guarded command's own status passed on (its 3 is no refusal).
	command bool
}

func (e *errReported) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e *errReported) ExitCode() int { return e.code }

// exitCode maps an error to the process status, in one place.
func exitCode(err error) int {
	var ue *usageError
	var ve *archive.VerifyError
	var ec exitCoder
	var ce *config.Error
	var me *profile.MismatchError
	var ie *restore.IntegrityError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &me):
		return exitUsage
	case errors.As(err, &ve), errors.As(err, &ie):
		return exitVerify
	}
	return exitError
}

// hintFor names the fix for errors a new user meets first.
func hintFor(err error) string {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return "hint: say which database with --database-url URL, $PURGEGUARD_DATABASE_URL or database.url in the config (else libpq's PG* variables are used)"
	}
	return ""
}

// report prints err (plain text on stderr, or a JSON object on stdout under
// --output json, so a script reads one document whatever happened) and returns the
// exit status.
func report(stdout, stderr io.Writer, asJSON bool, err error) int {
	code := exitCode(err)
	var rep *errReported
	if err == nil || errors.As(err, &rep) {
		return code
	}
	if asJSON {
		doc := map[string]any{"error": err.Error(), "exit_code": code}
		if hint := hintFor(err); hint != "" {
			doc["hint"] = hint
		}
		_ = json.NewEncoder(stdout).Encode(doc)
		return code
	}
	fmt.Fprintf(stderr, "purgeguard: %v\n", err)
	if hint := hintFor(err); hint != "" {
		fmt.Fprintln(stderr, hint)
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'purgeguard --help' or 'purgeguard COMMAND --help' for usage.")
	}
	return code
}
