#!/bin/sh
# A stand-in for call-logd's tenant sync, to replay the incident in tests and in
# make demo. It compares "tenants in our database" with "tenants in wazo-auth".
#
#   sync.sh targets buggy|fixed AUTH_FILE   print the tenants the sync would delete
#   sync.sh delete TARGETS_FILE             delete those tenants (one UUID per line)
#   sync.sh run buggy|fixed AUTH_FILE       both at once, as the real job does
#
# buggy compares the database's UUIDs as text with the auth list's upper-cased
# strings: nothing matches, so every tenant looks deleted — the shape of the
# original bug (str on one side, uuid.UUID on the other). fixed compares UUIDs.
# AUTH_FILE is one UUID per line. Reads DATABASE_URL.
set -eu
PSQL="${PGBIN:+$PGBIN/}psql"
# SQL comes on stdin: psql interpolates :'var' there, not in -c.
q() { "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
list() { tr -d '\r' <"$1" | grep -v '^[[:space:]]*$' | paste -sd, -; }

targets() {
	auth=$(list "$2")
	case "$1" in
	buggy) echo "SELECT uuid FROM call_logd_tenant WHERE uuid::text NOT IN
		(SELECT upper(a) FROM unnest(string_to_array(:'auth', ',')) a) ORDER BY 1" | q -v auth="$auth" ;;
	fixed) echo "SELECT uuid FROM call_logd_tenant WHERE uuid NOT IN
		(SELECT a::uuid FROM unnest(string_to_array(:'auth', ',')) a) ORDER BY 1" | q -v auth="$auth" ;;
	*) echo "sync.sh: buggy or fixed" >&2; exit 2 ;;
	esac
}

delete() {
	doomed=$(list "$1")
	[ -n "$doomed" ] || { echo "sync.sh: nothing to delete"; return 0; }
	echo "DELETE FROM call_logd_tenant WHERE uuid = ANY (string_to_array(:'doomed', ',')::uuid[])" | q -v doomed="$doomed"
	echo "sync.sh: deleted $(echo "$doomed" | tr ',' '\n' | wc -l) tenants"
}

case "${1:-}" in
targets) targets "$2" "$3" ;;
delete) delete "$2" ;;
run)
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	targets "$2" "$3" >"$tmp"
	delete "$tmp"
	;;
*) echo "usage: sync.sh targets|delete|run ..." >&2; exit 2 ;;
esac
