package main

import (
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/profile"
)

// Flag names of fence install and uninstall.
const (
	flagFenceMode  = "mode"
	flagFenceForce = "force"
)

func newFenceModeFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagFenceMode, Value: fence.ModeRefuse,
		Usage: "refuse: fail every tenant DELETE guard did not approve; capture: let it through and keep every row it deletes in the trash (see 'purgeguard trash')"}
}

func newFenceForceFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagFenceForce, Usage: "uninstall even though the trash holds rows (they are dropped)"}
}

// installFence installs the fence in the mode asked for. In capture mode the
// watched columns are the configured file columns and the columns the retention
// purge empties.
func installFence(c *cli.Context, e *env, conn *pgx.Conn, tenants profile.Tenants) error {
	switch mode := c.String(flagFenceMode); mode {
	case fence.ModeRefuse:
		return fence.Install(c.Context, conn, tenants)
	case fence.ModeCapture:
		return fence.InstallCapture(c.Context, conn, tenants, fenceWatch(e.prof))
	default:
		return usagef("--mode %q: want %s or %s", mode, fence.ModeRefuse, fence.ModeCapture)
	}
}

// fenceWatch lists the columns whose emptying the capturing fence keeps: the file
// columns and the columns the retention purge empties.
func fenceWatch(p profile.Profile) []fence.Column {
	var out []fence.Column
	for _, f := range p.Files {
		out = append(out, fence.Column{Table: f.Table, Column: f.Column})
	}
	for _, r := range p.Retention.Rules() {
		if r.NullTable.IsZero() {
			continue
		}
		for _, col := range r.NullColumns {
			out = append(out, fence.Column{Table: r.NullTable, Column: col})
		}
	}
	return out
}
