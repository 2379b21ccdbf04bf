package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/fence"
)

func newFenceCommand() *cli.Command {
	return &cli.Command{
		Name:  "fence",
		Usage: "database triggers that refuse (or, in capture mode, keep in a trash) any tenant delete the guard did not approve",
		Description: `The fence is a purgeguard schema (approvals) and two kinds of trigger: a row trigger
on the tenant root refusing the DELETE of a tenant that has no live approval, and a
TRUNCATE trigger on every table of the tenant graph. 'guard' approves exactly the
tenants it has snapshotted, for the time of the purge.

With the fence on, any other tenant delete fails and removes nothing — including
call-logd's own delete on wazo-auth's auth_tenant_deleted event: that tenant then
waits for the next guarded sync run, which snapshots it first. That is the point.

With --mode capture the fence refuses nothing but keeps instead: a row trigger on every
table of the tenant graph saves each row a statement deletes (and the old row when a
statement empties a file column, a retention column or a column a purge sets to NULL)
into the purgeguard schema's trash, unless guard approved it. The service keeps
working, whichever code path deletes; 'purgeguard trash save' turns the trash into
snapshots. TRUNCATE stays refused in both modes. Installing again switches modes in
place and keeps the approvals and the trash; uninstall refuses while the trash holds
rows unless --force.

Installed by a superuser, the fence also gets a DDL guard: event triggers that refuse
the tables' owner (any role but a superuser) an ALTER TABLE ... DISABLE TRIGGER or a
DROP TRIGGER of the fence's triggers. Installed by another role it has none, and
'fence status' says so.`,
		Action: func(c *cli.Context) error {
			return usagef("fence: give a subcommand: install, status or uninstall (purgeguard fence --help)")
		},
		Subcommands: []*cli.Command{
			{Name: "install", Usage: "create the purgeguard schema and triggers (idempotent; switches modes in place)", Flags: []cli.Flag{newDatabaseURLFlag(), newFenceModeFlag()}, Action: runFence("install")},
			{Name: "status", Usage: "show whether the fence is installed, its mode, the trash's size and the live approvals", Flags: []cli.Flag{newDatabaseURLFlag()}, Action: runFence("status")},
			{Name: "uninstall", Usage: "remove the triggers and the purgeguard schema (refused while the trash holds rows)", Flags: []cli.Flag{newDatabaseURLFlag(), newFenceForceFlag()}, Action: runFence("uninstall")},
		},
	}
}

func runFence(verb string) cli.ActionFunc {
	return func(c *cli.Context) error {
		e := getEnv(c)
		conn, tenants, err := connect(c, e)
		if err != nil {
			return err
		}
		defer conn.Close(c.Context)
		if verb != "status" {
			var graphErr *fence.GraphError
			force := c.Bool(flagFenceForce)
			if verb == "install" {
				err = installFence(c, e, conn, tenants)
			} else if err = fence.Uninstall(c.Context, conn, &tenants, force); errors.As(err, &graphErr) {
				// The root may be gone: uninstall still finds its triggers by function.
				e.log.Warn("tenant graph unreadable; uninstalling from the fence's own records", "err", graphErr.Err)
				err = fence.Uninstall(c.Context, conn, nil, force)
			}
			if err != nil {
				return err
			}
			e.log.Info("fence " + verb + "ed")
		}
		st, err := fence.Status(c.Context, conn)
		if err != nil {
			return err
		}
		return e.emit(st, func(w io.Writer) {
			if !st.Installed {
				fmt.Fprintln(w, "fence: not installed")
				return
			}
			fmt.Fprintf(w, "fence: installed in %s mode on %d tables, %d live approvals, %d rows in the trash\n", st.Mode, len(st.Tables), len(st.Approvals), st.TrashRows)
			if st.DDLGuard {
				fmt.Fprintln(w, "DDL guard: on (only a superuser may disable or drop the fence's triggers)")
			} else {
				fmt.Fprintln(w, "DDL guard: off (the tables' owner may disable the fence's triggers; install the fence as a superuser to refuse that)")
			}
			if !st.NewPartitions {
				fmt.Fprintln(w, "partitions created or attached later: not fenced until `fence install` runs again (installed by a superuser, an event trigger fences them)")
			}
			for _, a := range st.Approvals {
				fmt.Fprintf(w, "  tenant %s approved until %s (snapshot %s, run %s)\n", a.Tenant, a.ExpiresAt.Format("2006-01-02 15:04:05Z07:00"), a.Snapshot, a.Run)
			}
		})
	}
}
