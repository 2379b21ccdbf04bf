#!/usr/bin/env bash
# make demo: purgeguard's main job on embedded defaults, end to end, on a throwaway
# PostgreSQL with generated call-logd data and file:// storage in a temp directory.
# Nothing outside that directory is touched; everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
	exec scripts/with-servers.sh --pg-only -- "$0" --inside
fi

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/purgeguard-demo.XXXXXX")
trap 'rm -rf "$DEMO"' EXIT
go build -o "$DEMO/purgeguard" ./cmd/purgeguard
go build -o "$DEMO/fixturegen" ./internal/fixture/fixturegen

DB=purgeguard_demo
psql_admin() { "$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_admin -c "CREATE DATABASE $DB"
export PURGEGUARD_DATABASE_URL="${PURGEGUARD_TEST_DATABASE_URL%/*}/$DB?sslmode=disable"
export PURGEGUARD_STORAGE_URL="file://$DEMO/backups"

# The call-logd profile, with the files roots moved into the demo directory.
cat >"$DEMO/purgeguard.yaml" <<YAML
files:
  - table: public.call_logd_recording
    column: path
    root: $DEMO/recordings
  - table: public.call_logd_export
    column: path
    root: $DEMO/exports
YAML
export PURGEGUARD_CONFIG="$DEMO/purgeguard.yaml"
pg() { "$DEMO/purgeguard" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n$ purgeguard %s\n' "$1" "${*:2}"; }

echo "Generating call-logd data: 20 tenants, 500 call logs each, recordings on disk..."
"$DEMO/fixturegen" -database-url "$PURGEGUARD_DATABASE_URL" -create-schema -tenants 20 -call-logs 500 \
	-recordings-root "$DEMO/recordings" -exports-root "$DEMO/exports" >"$DEMO/fixture.json"
TENANT=$("$PGBIN/psql" "$PURGEGUARD_DATABASE_URL" -qAtX -c "SELECT uuid FROM call_logd_tenant ORDER BY uuid LIMIT 1")

step "What a purge of one tenant reaches" tables
pg tables

step "Snapshot one tenant before purging it" snapshot --tenant "$TENANT" --reason demo
pg snapshot --tenant "$TENANT" --reason "demo: before purge"

step "Committed snapshots" list
pg list

step "Read every object back and check it" verify --tenant "$TENANT"
pg verify --tenant "$TENANT"

echo
echo "Storage layout under $PURGEGUARD_STORAGE_URL:"
(cd "$DEMO/backups" && find . -type f -not -path './blobs/*' | sed 's|^\./|  |' | sort)
echo "  blobs/sha256/…: $(find "$DEMO/backups/blobs" -type f | wc -l) file blobs"
echo
echo "demo done."
