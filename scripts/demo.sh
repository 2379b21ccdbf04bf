#!/usr/bin/env bash
# make demo: the call-logd incident and how purgeguard stops it, end to end, on the
# embedded defaults: a throwaway PostgreSQL, generated call-logd data with recording
# files, and file:// storage in a temp directory. Nothing outside that directory is
# touched; everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
	exec scripts/with-servers.sh --pg-only -- "$0" --inside
fi

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/purgeguard-demo.XXXXXX")
trap 'rm -rf "$DEMO"' EXIT
go build -o "$DEMO/purgeguard" ./cmd/purgeguard
go build -o "$DEMO/fixturegen" ./internal/devtools/fixture/fixturegen
SYNC="$PWD/testdata/incident/sync.sh"

"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE purgeguard_demo"
export DATABASE_URL="${PURGEGUARD_TEST_DATABASE_URL%/*}/purgeguard_demo?sslmode=disable"
export PURGEGUARD_DATABASE_URL="$DATABASE_URL"
export PURGEGUARD_STORAGE_URL="file://$DEMO/backups"
cat >"$DEMO/purgeguard.yaml" <<YAML
# The call-logd profile, with the files roots moved into the demo directory.
files:
  - table: public.call_logd_recording
    column: path
    root: $DEMO/recordings
  - table: public.call_logd_export
    column: path
    root: $DEMO/exports
YAML
export PURGEGUARD_CONFIG="$DEMO/purgeguard.yaml"
pg() { "$DEMO/purgeguard" --log-level warn "$@"; }
# Snapshots are encrypted: this host (the purge host) holds the operator's public
# key only; the identity that opens them is the on-call's, used below to restore.
RECIPIENT=$("$DEMO/purgeguard" keys init --out "$DEMO/operator.key")
cp "$DEMO/purgeguard.yaml" "$DEMO/restore.yaml"
printf 'encryption:\n  recipients: [%s]\n' "$RECIPIENT" >>"$DEMO/purgeguard.yaml"
printf 'encryption:\n  identity_file: %s\n' "$DEMO/operator.key" >>"$DEMO/restore.yaml"
oncall() { PURGEGUARD_CONFIG="$DEMO/restore.yaml" pg "$@"; }
sql() { "$PGBIN/psql" "$DATABASE_URL" -qAtX -c "$1"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
counts() { sql "SELECT (SELECT count(*) FROM call_logd_tenant) || ' tenants, ' || (SELECT count(*) FROM call_logd_call_log) || ' call logs, ' || (SELECT count(*) FROM call_logd_recording) || ' recordings'"; }

step "Encryption: purgeguard keys init made the on-call's identity; this host has only its recipient"
echo "encryption.recipients: [$RECIPIENT]   (the identity file stays with on-call: $DEMO/operator.key)"

step "A call-logd database: 20 tenants, their call logs and recording files"
"$DEMO/fixturegen" -database-url "$DATABASE_URL" -create-schema -tenants 20 -call-logs 400 -idle 720h \
	-recordings-root "$DEMO/recordings" -exports-root "$DEMO/exports" >/dev/null
BEFORE=$(counts)
echo "$BEFORE; $(find "$DEMO/recordings" -type f | wc -l) files on disk"
# wazo-auth has deleted one tenant: its list holds the other 19.
DROPPED=$(sql "SELECT uuid FROM call_logd_tenant ORDER BY uuid LIMIT 1")
sql "SELECT uuid FROM call_logd_tenant WHERE uuid <> '$DROPPED'" >"$DEMO/auth.txt"
echo "wazo-auth lists 19 tenants; it deleted $DROPPED"
echo "(as in real call-logd data, a few recording rows name files that are not on disk: the snapshots record them as missing, and say so)"
DROPPED_EXPORTS=$(sql "SELECT path FROM call_logd_export WHERE tenant_uuid = '$DROPPED' AND path IS NOT NULL")

step "The buggy sync compares str with uuid: every tenant looks deleted"
"$SYNC" targets buggy "$DEMO/auth.txt" >"$DEMO/buggy.txt"
echo "the buggy sync would delete $(wc -l <"$DEMO/buggy.txt") tenants"
show purgeguard check --delete buggy.txt --source-of-truth auth.txt
pg check --delete "$DEMO/buggy.txt" --source-of-truth "$DEMO/auth.txt" || echo "(exit $?: refused by policy)"

step "Through guard, the buggy deletion set is refused and the job never runs"
show purgeguard guard --delete buggy.txt --source-of-truth auth.txt -- sync.sh delete buggy.txt
pg guard --delete "$DEMO/buggy.txt" --source-of-truth "$DEMO/auth.txt" -- "$SYNC" delete "$DEMO/buggy.txt" || echo "(exit $?)"
echo "database: $(counts)"

step "With the fence installed, even the buggy job run WITHOUT guard deletes nothing"
show purgeguard fence install
pg fence install
show sync.sh run buggy auth.txt
"$SYNC" run buggy "$DEMO/auth.txt" 2>&1 | sed 's/^/  /' || true
echo "database: $(counts)"

step "The fixed sync through guard: the dropped tenant alone is snapshotted, then purged"
"$SYNC" targets fixed "$DEMO/auth.txt" >"$DEMO/fixed.txt"
show purgeguard guard --delete fixed.txt --source-of-truth auth.txt -- sync.sh delete fixed.txt
pg guard --delete "$DEMO/fixed.txt" --source-of-truth "$DEMO/auth.txt" --reason "tenant sync" -- "$SYNC" delete "$DEMO/fixed.txt"
AFTER=$(counts)
echo "database: $AFTER"
show purgeguard list
pg list
echo "(encrypted: row counts and reason are inside the sealed manifest)"
show purgeguard verify --tenant "$DROPPED"
pg verify --tenant "$DROPPED"
echo "(without a key: every sealed object is there, with the size and SHA-256 written)"

step "Oops, that tenant was wanted after all: restore it (dry run first)"
# call-logd removes the tenant's recordings and export zips with it.
rm -rf "$DEMO/recordings/$DROPPED"
for f in $DROPPED_EXPORTS; do rm -f "$f"; done
echo "its recordings and exports are gone from disk too"
show purgeguard restore --tenant "$DROPPED" --dry-run "   # on the purge host: no identity"
pg restore --tenant "$DROPPED" --dry-run 2>&1 | sed 's/^/  /' || true
echo "# on-call's host, whose configuration names the identity file:"
show purgeguard verify --tenant "$DROPPED" --contents
oncall verify --tenant "$DROPPED" --contents
show purgeguard restore --tenant "$DROPPED" --dry-run
oncall restore --tenant "$DROPPED" --dry-run
show purgeguard restore --tenant "$DROPPED"
oncall restore --tenant "$DROPPED"
RESTORED=$(counts)
echo "# again: restore is safe to run twice, the second inserts nothing"
show purgeguard restore --tenant "$DROPPED"
oncall restore --tenant "$DROPPED" | tail -1

step "Summary"
printf '%-16s %s\n' "before:" "$BEFORE" "after purge:" "$AFTER" "after restore:" "$RESTORED"
printf '%-16s %s\n' "snapshots:" "$(pg -o json list | grep -c '"snapshot"')" "recordings:" "$(find "$DEMO/recordings" -type f | wc -l) files on disk"
[ "$BEFORE" = "$RESTORED" ] && echo "restored: identical counts to before the purge" || { echo "restore did not bring everything back"; exit 1; }
