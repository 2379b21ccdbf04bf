#!/bin/sh
# What call-logd's sync_db.remove_tenant() does (wazo-call-logd, the function behind
# its tenant sync and its auth_tenant_deleted bus handler), outside guard, for tests:
# every purger runs with 0 days to keep -- the recordings' files and the export zips
# are removed from disk (os.remove), the call logs and exports deleted -- and only
# then the tenant row is deleted. Each step commits on its own, as the purgers do.
#   DATABASE_URL  the database
#   TENANT        the tenant's uuid
#   STEPS         "files" stops once the files are gone (the rows still there, as a
#                 capturing fence or a refused DELETE leaves them); default: all
#   PGBIN         where psql is, if not on PATH
set -eu
PSQL="${PGBIN:+$PGBIN/}psql"
q() { "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -v tenant="$TENANT" -f -; }
q <<'SQL' | while IFS= read -r path; do rm -f -- "$path"; done
SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
WHERE c.tenant_uuid = :'tenant' AND r.path IS NOT NULL
UNION ALL
SELECT e.path FROM call_logd_export e WHERE e.tenant_uuid = :'tenant' AND e.path IS NOT NULL;
SQL
[ "${STEPS:-all}" = files ] && exit 0
q <<'SQL'
DELETE FROM call_logd_call_log WHERE tenant_uuid = :'tenant';
DELETE FROM call_logd_export WHERE tenant_uuid = :'tenant';
DELETE FROM call_logd_tenant WHERE uuid = :'tenant';
SQL
