#!/usr/bin/env bash
# make bench: generates a call-logd database of 100 tenants where one tenant has
# 200k call logs, then measures on the same data, in one run: purgeguard snapshot of
# that tenant, the raw `psql COPY | zstd -3` pipeline for the same selects, and
# pg_dump -Fc of the whole database (internal/devtools/benchrun prints the figures).
#
# Tenant #1 has 10k call logs (peak RSS is compared with #0's), the other 98 have as
# many as tenant #0, so that it is one tenant of 100 as the pg_dump target says (about
# 104M rows and ~25 GB of disk: generating them is most of the bench's time, loaded
# with fixturegen -bulk, indexes and keys made after the rows); only tenant #0's
# recording files are written to disk. It also prints 1 tenant vs 20
# tenants in one run, and the guard's overhead with an empty deletion set on a database
# of 10k small tenants.
#
#   BENCH_BIG=200000 BENCH_TENANTS=100 BENCH_CALL_LOGS=$BENCH_BIG BENCH_RUNS=3 make bench
#
# BENCH_CALL_LOGS=20000 is a quicker run in which tenant #0 is 9% of the
# database: every target but the pg_dump one is measured as well there.
#
# Then the capturing fence's costs (issue 13), on a database of its own (tenant #0
# with $BENCH_BIG call logs, 3 small tenants), copied afresh for every run: the
# tenant's DELETE with no fence, with the capturing fence unapproved and approved,
# and trash save of the kept rows against a snapshot of the tenant.
# BENCH_PART=trash runs that part alone (a few minutes instead of hours).
#
# The file shield's figures come last; BENCH_PART=shield runs them alone.
# The undo part (always run; BENCH_PART=undo runs it alone) generates its own database
# of BENCH_UNDO_TENANTS (20) tenants of BENCH_UNDO_CALL_LOGS (20000) call logs plus two
# kept, purges the 20 with one guarded run, then measures `purgeguard undo --run ID
# --jobs 2` against 20 sequential `purgeguard restore` of the same snapshots, each
# run from the tenants purged.
#
#   BENCH_PART=undo BENCH_RUNS=1 make bench
#
# BENCH_PART=files and BENCH_PART=layouts run issue 17's parts (see below; not part
# of a full run).
#
# BENCH_PART=seal runs encryption's cost alone (issue 15): on a database of
# BENCH_TENANTS (default 5) tenants, tenant #0 with $BENCH_BIG call logs and its files,
# purgeguard snapshot (rows and files) into a fresh store plaintext and encrypted, and
# restore of the rows from each into an empty schema (the files still on disk, kept),
# then the same restore with every file written into an empty --files-root; BENCH_RUNS
# pairs, alternating which goes first; medians, each pair's ratios, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
	# zstd for the raw baseline; GNU time for every peak RSS (internal/devtools/benchrun/rss.go).
	for pkg in zstd time; do
		bin=$pkg; [ $pkg = time ] && bin=/usr/bin/time
		if ! command -v $bin >/dev/null; then
			echo "bench: installing Debian's $pkg" >&2
			if [ "$(id -u)" = 0 ]; then apt-get install -y -qq $pkg >/dev/null; else sudo apt-get install -y -qq $pkg >/dev/null; fi
		fi
	done
	exec scripts/with-servers.sh --pg-only -- "$0" --inside
fi

PART=${BENCH_PART:-}
case "$PART" in
"" | all | undo | trash | shield | files | layouts | seal) ;;
*) echo "bench: BENCH_PART=$PART: want undo, trash, shield, files, layouts or seal, or nothing for every part" >&2; exit 2 ;;
esac
BIG=${BENCH_BIG:-200000}
TENANTS=${BENCH_TENANTS:-100}
CALL_LOGS=${BENCH_CALL_LOGS:-$BIG}
RUNS=${BENCH_RUNS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/purgeguard-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

go build -o "$W/purgeguard" ./cmd/purgeguard
go build -o "$W/fixturegen" ./internal/devtools/fixture/fixturegen
go build -o "$W/benchrun" ./internal/devtools/benchrun
printf 'files: []\n' >"$W/tables.yaml"

trash_part() {
	"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE bench_trash"
	local dsn="${PURGEGUARD_TEST_DATABASE_URL%/*}/bench_trash?sslmode=disable"
	echo "bench: generating tenant #0 with $BIG call logs and 3 small tenants for the capturing fence..." >&2
	"$W/fixturegen" -database-url "$dsn" -create-schema -bulk -tenants 4 -call-logs 1000 \
		-big-tenant-call-logs "$BIG" -file-tenants 0 >"$W/fixture-trash.json"
	"$PGBIN/psql" "$dsn" -qAtX -c "VACUUM ANALYZE"
	local tenant
	tenant=$(sed -n 's/.*"tenants":\["\([^"]*\)".*/\1/p' "$W/fixture-trash.json")
	"$W/benchrun" -part trash -database-url "$dsn" -purgeguard "$W/purgeguard" -tenant "$tenant" \
		-work "$W" -tables-config "$W/tables.yaml" -runs "$RUNS"
}
if [ "${BENCH_PART:-all}" = trash ]; then
	trash_part
	exit
fi
MACHINE_SHORT="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"

# BENCH_PART=layouts (issue 17, run alone): the snapshot and the restore of tenant #0
# against the raw pipelines and pg_dump -Fc on three layouts, tables only, where the
# measured tenant is 1%, 9% and 50% of the database: BENCH_LAYOUT_BIG (20000) call logs
# for tenant #0, and 99 tenants of as many, 10 of as many, 100 of a hundredth as many.
# Each database is dropped once measured. (The standard bench above is the 1% layout
# at 200k.)
if [ "$PART" = layouts ]; then
	LBIG=${BENCH_LAYOUT_BIG:-20000}
	echo "machine: $MACHINE_SHORT; load: $(uptime)"
	for layout in "1%:100:$LBIG" "9%:11:$LBIG" "50%:101:$((LBIG / 100))"; do
		IFS=: read -r name tenants calls <<<"$layout"
		db="bench_layout_${name%\%}"
		"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE $db"
		dsn="${PURGEGUARD_TEST_DATABASE_URL%/*}/$db?sslmode=disable"
		echo "bench: layout $name: tenant #0 with $LBIG call logs, $((tenants - 1)) others of $calls..." >&2
		"$W/fixturegen" -database-url "$dsn" -create-schema -layout scrambled -bulk -tenants "$tenants" -call-logs "$calls" \
			-big-tenant-call-logs "$LBIG" >"$W/fixture-layout.json"
		"$PGBIN/psql" "$dsn" -qAtX -c "VACUUM ANALYZE"
		tenant=$(sed -n 's/.*"tenants":\["\([^"]*\)".*/\1/p' "$W/fixture-layout.json")
		"$W/benchrun" -part layout -layout "$name" -database-url "$dsn" -purgeguard "$W/purgeguard" -pgbin "$PGBIN" \
			-tenant "$tenant" -work "$W" -tables-config "$W/tables.yaml" -runs "$RUNS" -machine "$MACHINE_SHORT, load $(uptime | sed 's/.*load average: //')"
		"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "DROP DATABASE $db"
	done
	echo "load after: $(uptime)"
	exit
fi

# BENCH_PART=files (issue 17, run alone): one tenant whose call logs each name a
# recording of BENCH_FILE_SIZE (512) bytes, BENCH_FILES (1000000) of them, plus 3 small
# tenants without files: peak RSS of snapshot, verify, restore (into an empty
# --files-root) and prune, and the files' throughput against tar | zstd -3 and back.
# BENCH_FILES=100000 is a quicker look (a million takes a long while on 2 cores).
# BENCH_RUNS pairs of each (full and tables-only, alternating which goes first): the
# files' own time is the difference; BENCH_RUNS=1 for a million.
if [ "$PART" = files ]; then
	FILES=${BENCH_FILES:-1000000}
	"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE bench_files"
	dsn="${PURGEGUARD_TEST_DATABASE_URL%/*}/bench_files?sslmode=disable"
	echo "bench: files part; generating a tenant with $FILES recordings of ${BENCH_FILE_SIZE:-512} bytes..." >&2
	"$W/fixturegen" -database-url "$dsn" -create-schema -bulk -tenants 4 -call-logs 100 -big-tenant-call-logs "$FILES" \
		-recording-every 1 -file-size "${BENCH_FILE_SIZE:-512}" -file-tenants 1 \
		-recordings-root "$W/recordings" -exports-root "$W/exports" >"$W/fixture-files.json"
	"$PGBIN/psql" "$dsn" -qAtX -c "VACUUM ANALYZE"
	cat >"$W/files.yaml" <<YAML
files:
  - table: public.call_logd_recording
    column: path
    root: $W/recordings
  - table: public.call_logd_export
    column: path
    root: $W/exports
YAML
	tenant=$(sed -n 's/.*"tenants":\["\([^"]*\)".*/\1/p' "$W/fixture-files.json")
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load: $(uptime)"
	"$W/benchrun" -part files -database-url "$dsn" -purgeguard "$W/purgeguard" -tenant "$tenant" -work "$W" \
		-full-config "$W/files.yaml" -tables-config "$W/tables.yaml" -recordings "$W/recordings" -files "$FILES" -runs "$RUNS"
	echo "load after: $(uptime)"
	exit
fi

if [ "$PART" = seal ]; then
	"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE bench"
	DSN="${PURGEGUARD_TEST_DATABASE_URL%/*}/bench?sslmode=disable"
	echo "bench: seal part; generating ${BENCH_TENANTS:-5} tenants, tenant #0 with $BIG call logs and its files..." >&2
	"$W/fixturegen" -database-url "$DSN" -create-schema -layout scrambled -bulk -tenants "${BENCH_TENANTS:-5}" -call-logs "${BENCH_CALL_LOGS:-20000}" \
		-big-tenant-call-logs "$BIG" -file-tenants 1 -recordings-root "$W/recordings" -exports-root "$W/exports" >"$W/fixture.json"
	"$PGBIN/psql" "$DSN" -qAtX -c "VACUUM ANALYZE"
	cat >"$W/full.yaml" <<YAML
files:
  - table: public.call_logd_recording
    column: path
    root: $W/recordings
  - table: public.call_logd_export
    column: path
    root: $W/exports
YAML
	TENANT=$(sed -n 's/.*"tenants":\["\([^"]*\)".*/\1/p' "$W/fixture.json")
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); $(uptime)"
	"$W/benchrun" -part seal -database-url "$DSN" -purgeguard "$W/purgeguard" -pgbin "$PGBIN" -tenant "$TENANT" -work "$W" \
		-tables-config "$W/tables.yaml" -full-config "$W/full.yaml" -runs "$RUNS"
	exit
fi

MACHINE="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), zstd $(zstd --version | grep -o 'v[0-9.]*' | head -1)"

UNDO_ARGS=()
if [ "${BENCH_PART:-all}" != shield ]; then
UNDO_TENANTS=${BENCH_UNDO_TENANTS:-20}
UNDO_CALL_LOGS=${BENCH_UNDO_CALL_LOGS:-20000}
"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE bench_undo"
UNDO_DSN="${PURGEGUARD_TEST_DATABASE_URL%/*}/bench_undo?sslmode=disable"
echo "bench: generating $((UNDO_TENANTS + 2)) tenants of $UNDO_CALL_LOGS call logs for the undo part..." >&2
"$W/fixturegen" -database-url "$UNDO_DSN" -create-schema -bulk -tenants $((UNDO_TENANTS + 2)) -call-logs "$UNDO_CALL_LOGS" >"$W/undo-fixture.json"
"$PGBIN/psql" "$UNDO_DSN" -qAtX -c "VACUUM ANALYZE"
UNDO_IDS=$(sed -n 's/.*"tenants":\[\([^]]*\)\].*/\1/p' "$W/undo-fixture.json" | tr -d '"' | tr ',' '\n' | head -n "$UNDO_TENANTS" | paste -sd, -)
# The guarded run purges 20 of 22 tenants: a policy loosened for the bench.
cat >"$W/undo.yaml" <<YAML
files: []
policy:
  max_tenants: -1
  max_fraction: 1
  active_within: 0s
YAML
UNDO_ARGS=(-undo-database-url "$UNDO_DSN" -undo-tenants "$UNDO_IDS" -undo-config "$W/undo.yaml" -undo-jobs 2)
fi
if [ "$PART" = undo ]; then
	"$W/benchrun" -part undo -purgeguard "$W/purgeguard" -pgbin "$PGBIN" -work "$W" -runs "$RUNS" -machine "$MACHINE" "${UNDO_ARGS[@]}"
	exit
fi

"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE bench"
DSN="${PURGEGUARD_TEST_DATABASE_URL%/*}/bench?sslmode=disable"

# BENCH_PART=shield: only the file shield's figures (initial scans of
# BENCH_SHIELD_SCANS files, link and upload latencies, a snapshot of tenant #0's
# 42k recordings uploaded by the shield against tables only), on a smaller database
# of BENCH_TENANTS (default 5) tenants, tenant #0 with $BIG call logs and its files;
# the snapshot against tables only in BENCH_RUNS pairs, alternating which goes first.
if [ "${BENCH_PART:-all}" = shield ]; then
	echo "bench: shield part; generating ${BENCH_TENANTS:-5} tenants, tenant #0 with $BIG call logs and its files..." >&2
	"$W/fixturegen" -database-url "$DSN" -create-schema -bulk -tenants "${BENCH_TENANTS:-5}" -call-logs "${BENCH_CALL_LOGS:-20000}" \
		-big-tenant-call-logs "$BIG" -file-tenants 1 -recordings-root "$W/recordings" -exports-root "$W/exports" >"$W/fixture.json"
	"$PGBIN/psql" "$DSN" -qAtX -c "VACUUM ANALYZE"
	printf 'files: []\n' >"$W/tables.yaml"
	TENANT=$(sed -n 's/.*"tenants":\["\([^"]*\)".*/\1/p' "$W/fixture.json")
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
	"$W/benchrun" -part shield -database-url "$DSN" -purgeguard "$W/purgeguard" -tenant "$TENANT" -work "$W" \
		-tables-config "$W/tables.yaml" -recordings "$W/recordings" -exports "$W/exports" \
		-shield-scans "${BENCH_SHIELD_SCANS:-100000,1000000}" -runs "$RUNS"
	exit
fi
echo "bench: generating $TENANTS tenants, tenant #0 with $BIG call logs, the others $CALL_LOGS each..." >&2
"$W/fixturegen" -database-url "$DSN" -create-schema -layout scrambled -bulk -tenants "$TENANTS" -call-logs "$CALL_LOGS" \
	-big-tenant-call-logs "$BIG" -second-tenant-call-logs 10000 -file-tenants 1 -recordings-root "$W/recordings" -exports-root "$W/exports" >"$W/fixture.json"
"$PGBIN/psql" "$DSN" -qAtX -c "VACUUM ANALYZE"
GUARD_TENANTS=${BENCH_GUARD_TENANTS:-10000}
"$PGBIN/psql" "$PURGEGUARD_TEST_DATABASE_URL" -qAtX -c "CREATE DATABASE bench_guard"
GUARD_DSN="${PURGEGUARD_TEST_DATABASE_URL%/*}/bench_guard?sslmode=disable"
echo "bench: generating $GUARD_TENANTS small tenants for the guard overhead..." >&2
"$W/fixturegen" -database-url "$GUARD_DSN" -create-schema -layout scrambled -bulk -tenants "$GUARD_TENANTS" -call-logs 3 >/dev/null
TENANT=$(sed -n 's/.*"tenants":\["\([^"]*\)".*/\1/p' "$W/fixture.json")
OTHERS=$(sed -n 's/.*"tenants":\["[^"]*",\([^]]*\)\].*/\1/p' "$W/fixture.json" | tr -d '"')

cat >"$W/full.yaml" <<YAML
files:
  - table: public.call_logd_recording
    column: path
    root: $W/recordings
  - table: public.call_logd_export
    column: path
    root: $W/exports
YAML

"$W/benchrun" -database-url "$DSN" -purgeguard "$W/purgeguard" -pgbin "$PGBIN" -tenant "$TENANT" \
	-work "$W" -tables-config "$W/tables.yaml" -full-config "$W/full.yaml" -runs "$RUNS" -machine "$MACHINE" \
	-guard-database-url "$GUARD_DSN" -guard-tenants "$GUARD_TENANTS" -other-tenants "$OTHERS" "${UNDO_ARGS[@]}" \
	-recordings "$W/recordings" -exports "$W/exports" -shield-scans "${BENCH_SHIELD_SCANS:-100000,1000000}" -runs "$RUNS"
trash_part
