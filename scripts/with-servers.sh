#!/usr/bin/env bash
# with-servers.sh [--pg-only] -- COMMAND [ARGS...]
#
# Starts a throwaway PostgreSQL cluster and (unless --pg-only) a MinIO server, both on
# loopback with free ports and temporary directories, exports the variables the tests
# and tools read, runs COMMAND, and stops both servers on every exit path (success,
# failure, Ctrl-C). Nothing is left behind: run it twice in a row and it still works.
#
# Exports:
#   PURGEGUARD_TEST_DATABASE_URL   superuser URL of the throwaway cluster (database "postgres")
#   PURGEGUARD_TEST_S3_ENDPOINT    host:port of MinIO (plain HTTP)
#   PURGEGUARD_TEST_S3_ACCESS_KEY / PURGEGUARD_TEST_S3_SECRET_KEY
#   PURGEGUARD_REQUIRE_INTEGRATION=1
#   PGBIN                          the PostgreSQL server binaries used
#
# Installs what is missing: PostgreSQL from Debian's packages (when initdb is absent),
# and a pinned MinIO server with `go install` into a cache outside the repository.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE="${PURGEGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/purgeguard}"
PG_ONLY=0

while [ $# -gt 0 ]; do
	case "$1" in
	--pg-only) PG_ONLY=1; shift ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--pg-only] -- COMMAND [ARGS...]" >&2; exit 2; }

log() { printf 'with-servers: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

find_pgbin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	local i
	i=$(command -v initdb 2>/dev/null || true)
	if [ -n "$i" ] && [ -x "$(dirname "$i")/pg_ctl" ] && [ -x "$(dirname "$i")/postgres" ]; then
		dirname "$i"
		return 0
	fi
	return 1
}

PGBIN=$(find_pgbin || true)
if [ -z "$PGBIN" ]; then
	log "PostgreSQL server binaries not found: installing Debian's postgresql"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
	PGBIN=$(find_pgbin) || { log "initdb still not found after installing postgresql"; exit 1; }
fi
export PGBIN

MINIO="$CACHE/bin/minio"
if [ "$PG_ONLY" = 0 ] && [ ! -x "$MINIO" ]; then
	log "installing MinIO $MINIO_VERSION into $CACHE/bin (takes a few minutes once)"
	mkdir -p "$CACHE/bin"
	(cd / && GOBIN="$CACHE/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION")
fi

# A port nobody listens on now. Racy by nature; a clash makes the start fail loudly.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/purgeguard-servers.XXXXXX")
chmod 755 "$WORK"
PGDATA="$WORK/pg"
PG_STARTED=0
MINIO_PID=""

# initdb refuses root: run the cluster as an unprivileged user when we are root.
PGUSER_OS=""
if [ "$(id -u)" = 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
	fi
	PGUSER_OS=postgres
fi
as_pg() {
	if [ -n "$PGUSER_OS" ]; then
		su -s /bin/sh "$PGUSER_OS" -c "$(printf '%q ' "$@")"
	else
		"$@"
	fi
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$MINIO_PID" ]; then
		kill "$MINIO_PID" 2>/dev/null || true
		wait "$MINIO_PID" 2>/dev/null || true
	fi
	if [ "$PG_STARTED" = 1 ]; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$PGDATA"
[ -z "$PGUSER_OS" ] || chown "$PGUSER_OS" "$PGDATA"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U purgeguard --auth=trust --encoding=UTF8 --locale=C.UTF-8 -N >"$WORK/initdb.log" 2>&1 ||
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U purgeguard --auth=trust --encoding=UTF8 --no-locale -N >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; exit 1; }

PGPORT_FREE=""
for _ in 1 2 3 4 5; do
	PGPORT_FREE=$(free_port)
	# fsync off: a throwaway cluster; durability here is the tool's job, not the test server's.
	if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 -l "$PGDATA/server.log" \
		-o "-c listen_addresses=127.0.0.1 -p $PGPORT_FREE -k $PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB" \
		start >/dev/null; then
		PG_STARTED=1
		break
	fi
done
[ "$PG_STARTED" = 1 ] || { log "PostgreSQL did not start"; cat "$PGDATA/server.log" >&2 || true; exit 1; }
export PURGEGUARD_TEST_DATABASE_URL="postgres://purgeguard@127.0.0.1:$PGPORT_FREE/postgres?sslmode=disable"
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT_FREE"

if [ "$PG_ONLY" = 0 ]; then
	export PURGEGUARD_TEST_S3_ACCESS_KEY="purgeguard-test"
	export PURGEGUARD_TEST_S3_SECRET_KEY="purgeguard-test-secret-$RANDOM$RANDOM"
	mkdir -p "$WORK/minio"
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		cport=$(free_port)
		MINIO_ROOT_USER="$PURGEGUARD_TEST_S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$PURGEGUARD_TEST_S3_SECRET_KEY" \
			MINIO_BROWSER=off MINIO_UPDATE=off \
			"$MINIO" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" "$WORK/minio/data" \
			>"$WORK/minio/server.log" 2>&1 &
		MINIO_PID=$!
		ok=0
		for _ in $(seq 1 150); do
			if curl -fsS "http://127.0.0.1:$port/minio/health/ready" >/dev/null 2>&1; then ok=1; break; fi
			kill -0 "$MINIO_PID" 2>/dev/null || break
			sleep 0.2
		done
		if [ "$ok" = 1 ]; then break; fi
		kill "$MINIO_PID" 2>/dev/null || true
		wait "$MINIO_PID" 2>/dev/null || true
		MINIO_PID=""
	done
	[ -n "$MINIO_PID" ] || { log "MinIO did not start"; cat "$WORK/minio/server.log" >&2 || true; exit 1; }
	export PURGEGUARD_TEST_S3_ENDPOINT="127.0.0.1:$port"
	# Tests that must kill a server (storage dying mid-snapshot) start their own from this binary.
	export PURGEGUARD_TEST_MINIO_BIN="$MINIO"
	log "MinIO on $PURGEGUARD_TEST_S3_ENDPOINT"
fi

export PURGEGUARD_REQUIRE_INTEGRATION=1
set +e
"$@"
rc=$?
set -e
exit "$rc"
