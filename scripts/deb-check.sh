#!/bin/bash
# make deb-check: installs the package `make deb` built on this machine (dpkg -i),
# runs `purgeguard version`, checks the diversion of wazo-purge-db's cron file, runs
# the cron job's wrapper: under with-servers.sh (PURGEGUARD_TEST_DATABASE_URL) it
# guards a real purge, testdata's retention purge standing in for wazo-purge-db, into
# the default storage /var/lib/purgeguard. Then it purges the package (dpkg --purge)
# and checks that the cron file is back and that the snapshots are left alone. Root
# only; it refuses to run where purgeguard is already installed, and removes only
# what it created.
set -euo pipefail
deb=${1:?usage: deb-check.sh PACKAGE.deb}
version=${2:-}
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "deb-check: needs root (dpkg -i)" >&2; exit 2; }
if dpkg-query -W -f '${Status}' purgeguard 2>/dev/null | grep -q installed; then
	echo "deb-check: purgeguard is installed on this machine already: dpkg --purge purgeguard first" >&2
	exit 2
fi

cron=/etc/cron.d/wazo-purge-db
diverted=$cron.purgeguard-diverted
store=/var/lib/purgeguard
made_cron= made_store= made_purge= db=
repo=$(cd "$(dirname "$0")/.." && pwd)
# wazo-purge-db's cron line as its package ships it, unless this host has the real one.
if [ ! -e "$cron" ]; then
	printf '#\n# cron jobs for wazo-purge-db\n#\n\n25 3 * * * root /usr/bin/wazo-purge-db > /dev/null\n' >"$cron"
	made_cron=1
fi
[ -e "$store" ] || made_store=1
snap=$store/snapshots/6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01/deb-check-$$
psql() { command "${PGBIN:+$PGBIN/}psql" -qAtX -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
	dpkg --purge purgeguard >/dev/null 2>&1 || true
	rm -f /etc/purgeguard/env /var/log/purgeguard-retention.log
	rmdir /etc/purgeguard 2>/dev/null || true
	if [ -n "$made_purge" ]; then rm -f /usr/bin/wazo-purge-db; fi
	if [ -n "$db" ]; then psql "$PURGEGUARD_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; fi
	rm -rf "$store/snapshots/6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01/deb-check-$$"
	if [ -n "$made_store" ]; then rm -rf "$store"; fi
	if [ -n "$made_cron" ]; then rm -f "$cron" "$diverted"; fi
}
trap cleanup EXIT
cron_sum=$(sha256sum <"$cron")

dpkg -i "$deb"
out=$(/usr/bin/purgeguard version)
echo "deb-check: $out"
[ -z "$version" ] || [[ $out == "purgeguard $version "* ]] || fail "purgeguard version says '$out', want version $version"
/usr/bin/purgeguard --config /etc/purgeguard/config.yaml version >/dev/null || fail "the packaged /etc/purgeguard/config.yaml does not load"
[ ! -e "$cron" ] || fail "$cron is still there: cron would run the purge unguarded"
[ "$(sha256sum <"$diverted")" = "$cron_sum" ] || fail "$diverted is not wazo-purge-db's cron file"
dpkg-divert --list "$cron" | grep -q 'by purgeguard' || fail "no diversion of $cron by purgeguard"
grep -q 'guard-wazo-purge-db' /etc/cron.d/purgeguard || fail "/etc/cron.d/purgeguard does not run the guarded purge"
[ "$(stat -c %a "$store")" = 700 ] || fail "$store is not mode 0700"
[ -f /lib/systemd/system/purgeguard-retention.service ] || fail "no systemd unit"
# Without wazo-purge-db the cron job has nothing to guard and does nothing.
if [ ! -x /usr/bin/wazo-purge-db ]; then
	/usr/lib/purgeguard/guard-wazo-purge-db || fail "the cron wrapper fails on a host without wazo-purge-db"
fi

# Only into a store this script made: it never writes into snapshots it did not make.
if [ -n "${PURGEGUARD_TEST_DATABASE_URL:-}" ] && [ ! -e /usr/bin/wazo-purge-db ] && [ -n "$made_store" ]; then
	# The nightly job for real: call-logd's schema with a call log past its year and
	# one from yesterday, testdata's purge as wazo-purge-db, the wrapper as cron runs it.
	db=debcheck_$$
	dsn="${PURGEGUARD_TEST_DATABASE_URL%/*}/$db?sslmode=disable"
	psql "$PURGEGUARD_TEST_DATABASE_URL" -c "CREATE DATABASE $db"
	psql "$dsn" -f "$repo/testdata/calllogd/schema.sql"
	psql "$dsn" -c "INSERT INTO call_logd_tenant VALUES ('6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01');
		INSERT INTO call_logd_call_log (date, tenant_uuid) VALUES
			(now() - interval '400 days', '6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01'),
			(now() - interval '1 day', '6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01')"
	printf '#!/bin/sh\nexec %s/testdata/calllogd/retention_purge.sh\n' "$repo" >/usr/bin/wazo-purge-db
	chmod 0755 /usr/bin/wazo-purge-db
	made_purge=1
	printf '# deb-check\nPURGEGUARD_DATABASE_URL=%s\nDATABASE_URL=%s\nPGBIN=%s\n' "$dsn" "$dsn" "${PGBIN:-}" >/etc/purgeguard/env
	chmod 0600 /etc/purgeguard/env
	/usr/lib/purgeguard/guard-wazo-purge-db || { cat /var/log/purgeguard-retention.log >&2; fail "the guarded nightly purge failed"; }
	[ "$(psql "$dsn" -c 'SELECT count(*) FROM call_logd_call_log')" = 1 ] || fail "the guarded purge did not take the old call log, or took the new one"
	grep -q '"snapshots"\|snapshot' /var/log/purgeguard-retention.log || fail "no report in /var/log/purgeguard-retention.log"
	list=$(PURGEGUARD_CONFIG=/etc/purgeguard/config.yaml /usr/bin/purgeguard list)
	echo "deb-check: $list"
	grep -q 6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01 <<<"$list" || fail "purgeguard list shows no snapshot of the guarded purge"
else
	# No database: a stand-in snapshot in the default storage.
	mkdir -p "$snap/tables"
	printf '{"format_version":1}\n' >"$snap/manifest.json"
	head -c 4096 /dev/urandom >"$snap/tables/public.call_logd_call_log.copy.zst"
fi
# The purge of the package must leave the snapshots.
snap_sum=$(cd "$store" && find . -type f -exec sha256sum {} + | sort)
[ -n "$snap_sum" ] || fail "no snapshot in $store to check"

dpkg --purge purgeguard
[ ! -e /usr/bin/purgeguard ] || fail "/usr/bin/purgeguard is still there after dpkg --purge"
[ ! -e /etc/purgeguard/config.yaml ] || fail "/etc/purgeguard/config.yaml is still there after dpkg --purge"
[ ! -e /etc/cron.d/purgeguard ] || fail "/etc/cron.d/purgeguard is still there after dpkg --purge"
[ "$(sha256sum <"$cron")" = "$cron_sum" ] || fail "$cron is not back as it was"
! dpkg-divert --list "$cron" | grep -q purgeguard || fail "the diversion of $cron is still there"
[ "$(cd "$store" && find . -type f -exec sha256sum {} + | sort)" = "$snap_sum" ] || fail "dpkg --purge touched the snapshots in $store"
echo "deb-check: ok: installed, ran, purged; $cron back as it was, snapshots in $store untouched"
