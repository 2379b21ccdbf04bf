#!/bin/bash
# make deb-check: installs the package `make deb` built on this machine (dpkg -i),
# runs `purgeguard version`, checks the diversion of wazo-purge-db's cron file, then
# purges the package (dpkg --purge) and checks that the cron file is back and that
# the snapshots under /var/lib/purgeguard are left alone. Root only; it refuses to
# run where purgeguard is already installed, and removes only what it created.
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
made_cron= made_store=
# wazo-purge-db's cron line as its package ships it, unless this host has the real one.
if [ ! -e "$cron" ]; then
	printf '#\n# cron jobs for wazo-purge-db\n#\n\n25 3 * * * root /usr/bin/wazo-purge-db > /dev/null\n' >"$cron"
	made_cron=1
fi
[ -e "$store" ] || made_store=1
snap=$store/snapshots/6e2d2b0c-5c0b-4b7e-9a3e-1f6c2d9b8a01/deb-check-$$
cleanup() {
	dpkg --purge purgeguard >/dev/null 2>&1 || true
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

# A snapshot in the default storage: the purge of the package must leave it.
mkdir -p "$snap/tables"
printf '{"format_version":1}\n' >"$snap/manifest.json"
head -c 4096 /dev/urandom >"$snap/tables/public.call_logd_call_log.copy.zst"
snap_sum=$(cd "$snap" && find . -type f -exec sha256sum {} + | sort)

dpkg --purge purgeguard
[ ! -e /usr/bin/purgeguard ] || fail "/usr/bin/purgeguard is still there after dpkg --purge"
[ ! -e /etc/purgeguard/config.yaml ] || fail "/etc/purgeguard/config.yaml is still there after dpkg --purge"
[ ! -e /etc/cron.d/purgeguard ] || fail "/etc/cron.d/purgeguard is still there after dpkg --purge"
[ "$(sha256sum <"$cron")" = "$cron_sum" ] || fail "$cron is not back as it was"
! dpkg-divert --list "$cron" | grep -q purgeguard || fail "the diversion of $cron is still there"
[ "$(cd "$snap" && find . -type f -exec sha256sum {} + | sort)" = "$snap_sum" ] || fail "dpkg --purge touched the snapshots in $store"
echo "deb-check: ok: installed, ran, purged; $cron back as it was, snapshots in $store untouched"
