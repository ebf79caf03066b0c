#!/bin/sh
# pg.sh - a throwaway PostgreSQL cluster for the integration tests.
#
#   dir=$(mktemp -d); conn=$(sh pg.sh start "$dir")   # prints a libpq conninfo
#   psql "$conn" -c 'select 1'
#   sh pg.sh kill "$dir"      # stop -m immediate, keep everything (a crash)
#   sh pg.sh restart "$dir"   # start it again: same data, same port
#   sh pg.sh stop "$dir"      # stop it (-m immediate) and remove $dir
#
# initdb with trust authentication, fsync off, on 127.0.0.1 and a free
# port, the Unix socket inside $dir. As root, the server runs as user
# postgres through runuser (initdb and postgres refuse to run as root).
# Only the server of $dir is ever stopped: pg_ctl -D $dir/data reads the
# PID that this cluster's postmaster wrote.
#
# PG_SYNCHRONOUS_COMMIT=on at start keeps synchronous_commit on (default
# off): a commit acknowledged then survives `kill` (not the machine
# crashing: fsync stays off). `restart` uses the options of `start`.
#
# The binaries: $PG_BINDIR, else the newest /usr/lib/postgresql/*/bin,
# else the directory of initdb on PATH. `sh pg.sh bindir` prints it (exit
# 1 when there is none).
set -eu
cmd=${1:?usage: pg.sh start|stop|kill|restart|bindir DIR}

find_bindir() {
	if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then
		echo "$PG_BINDIR"
		return 0
	fi
	best=
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] || continue
		best=$(printf '%s\n%s\n' "$best" "$d" | sed '/^$/d' | sort -V |
		    tail -n 1)
	done
	if [ -z "$best" ] && command -v initdb >/dev/null 2>&1; then
		best=$(dirname "$(command -v initdb)")
	fi
	[ -n "$best" ] || return 1
	echo "$best"
}

if [ "$cmd" = bindir ]; then
	find_bindir
	exit $?
fi
dir=${2:?usage: pg.sh start|stop|kill|restart DIR}
bindir=$(find_bindir) || { echo "pg.sh: no PostgreSQL binaries" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A port nothing listens on: the kernel picks one (bind to port 0).
free_port() {
	"${PYTHON3:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

server_start() {
	as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	    start -o "-c listen_addresses=127.0.0.1 -p $1 -k $dir/sock \
	    -c fsync=off -c synchronous_commit=$(cat "$dir/sync") \
	    -c full_page_writes=off -c max_connections=60" >/dev/null
}

case $cmd in
start)
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
	    --no-sync --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
	    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust \
	    -E UTF8 --no-sync --locale=C >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	mkdir -p "$dir/sock"
	case ${PG_SYNCHRONOUS_COMMIT:-off} in
	on) echo on >"$dir/sync" ;;
	*) echo off >"$dir/sync" ;;
	esac
	[ "$(id -u)" = 0 ] && chown postgres: "$dir/sock"
	# Between choosing the port and binding it another process may take
	# it: try a few.
	tries=0
	while :; do
		port=$(free_port)
		if server_start "$port" 2>"$dir/start.err"; then
			break
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 5 ]; then
			cat "$dir/start.err" "$dir/server.log" >&2
			exit 1
		fi
	done
	echo "$port" >"$dir/port"
	echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" |
	    tee "$dir/conninfo"
	;;
kill)
	as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
	;;
restart)
	server_start "$(cat "$dir/port")"
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop \
		    >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: pg.sh start|stop|kill|restart|bindir DIR" >&2
	exit 2
	;;
esac
