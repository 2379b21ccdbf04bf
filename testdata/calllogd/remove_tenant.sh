#!/bin/sh
# A stand-in for call-logd's remove_tenant() (behind the tenant sync and the
# auth_tenant_deleted bus handler), for tests and the bench: what it does, in its
# order, outside any guard. Every purger runs for the tenant with 0 days to keep —
# recording files removed and their paths emptied, call logs deleted (cascading to
# participants, destinations and recordings), export zips removed and exports
# deleted — then the tenant row goes. Each step commits on its own, as the purgers'
# sessions do.
#   DATABASE_URL  the database
#   TENANT        the tenant's UUID
#   STEPS         "files" stops once the files are gone (the rows still there, as a
#                 capturing fence or a refused DELETE leaves them); default: all
#   PGBIN         where psql is, if not on PATH
set -eu
PSQL="${PGBIN:+$PGBIN/}psql"
case "${TENANT:-}" in
[0-9a-f]*-*-*-*-*) ;;
*) echo "remove_tenant.sh: TENANT=${TENANT:-} is not a tenant UUID" >&2; exit 2 ;;
esac
q() { "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -v tenant="$TENANT" -f - "$@"; }

q <<'SQL' | while IFS= read -r path; do rm -f -- "$path"; done
SELECT rec.path FROM call_logd_recording rec JOIN call_logd_call_log c ON c.id = rec.call_log_id
WHERE c.tenant_uuid = :'tenant' AND rec.path IS NOT NULL
UNION ALL
SELECT e.path FROM call_logd_export e WHERE e.tenant_uuid = :'tenant' AND e.path IS NOT NULL;
SQL
[ "${STEPS:-all}" = files ] && exit 0
q <<'SQL'
UPDATE call_logd_recording SET path = NULL
WHERE call_log_id IN (SELECT id FROM call_logd_call_log WHERE tenant_uuid = :'tenant' AND date < now());
SQL
q <<'SQL'
DELETE FROM call_logd_call_log WHERE tenant_uuid = :'tenant' AND date < now();
SQL
q <<'SQL'
DELETE FROM call_logd_export WHERE tenant_uuid = :'tenant' AND requested_at < now();
SQL
q <<'SQL'
DELETE FROM call_logd_tenant WHERE uuid = :'tenant';
SQL
