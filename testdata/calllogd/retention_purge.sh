#!/bin/sh
# call-logd's nightly retention purge (what wazo-purge-db runs), for tests and the
# demo: removes the files first, as the real purge does before it commits, then
# deletes and empties rows (see retention_days.sql).
#   DATABASE_URL            the database
#   PURGE_DAYS              wazo-purge-db's days_to_keep (or -d), default 365
#   PURGE_DAYS_CALL_LOGS    its days_to_keep_per_plugin for call-logs, recordings
#   PURGE_DAYS_RECORDINGS   and exports, each PURGE_DAYS when unset
#   PURGE_DAYS_EXPORTS
#   PGBIN                   where psql is, if not on PATH
set -eu
dir=$(dirname "$0")
PSQL="${PGBIN:+$PGBIN/}psql"
days=${PURGE_DAYS:-365}
for v in "PURGE_DAYS=$days" "PURGE_DAYS_CALL_LOGS=${PURGE_DAYS_CALL_LOGS-}" \
	"PURGE_DAYS_RECORDINGS=${PURGE_DAYS_RECORDINGS-}" "PURGE_DAYS_EXPORTS=${PURGE_DAYS_EXPORTS-}"; do
	case "${v#*=}" in *[!0-9]*) echo "retention_purge.sh: $v is not a number of days" >&2; exit 2 ;; esac
done
case "$days" in '') echo "retention_purge.sh: PURGE_DAYS is empty" >&2; exit 2 ;; esac
q() {
	"$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "SET purge.days = '$days'" \
		-c "SET purge.call_logs_days = '${PURGE_DAYS_CALL_LOGS-}'" \
		-c "SET purge.recordings_days = '${PURGE_DAYS_RECORDINGS-}'" \
		-c "SET purge.exports_days = '${PURGE_DAYS_EXPORTS-}'" \
		-f "$dir/retention_days.sql" "$@"
}
q -f "$dir/retention_files.sql" | while IFS= read -r path; do rm -f -- "$path"; done
q -f "$dir/retention_purge.sql"
