#!/bin/sh
# call-logd's nightly retention purge (what wazo-purge-db runs), for tests and the
# demo: removes the files first, as the real purge does before it commits, then
# deletes and empties rows (see retention_days.sql).
#   DATABASE_URL  the database
#   PURGE_DAYS    the purge job's own days (wazo-purge-db's days_to_keep), default 365
#   PGBIN         where psql is, if not on PATH
set -eu
dir=$(dirname "$0")
PSQL="${PGBIN:+$PGBIN/}psql"
days=${PURGE_DAYS:-365}
case "$days" in *[!0-9]*|'') echo "retention_purge.sh: PURGE_DAYS=$days is not a number of days" >&2; exit 2 ;; esac
q() { "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "SET purge.days = '$days'" -f "$dir/retention_days.sql" "$@"; }
q -f "$dir/retention_files.sql" | while IFS= read -r path; do rm -f -- "$path"; done
q -f "$dir/retention_purge.sql"
