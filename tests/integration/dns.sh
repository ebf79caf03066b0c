#!/bin/sh
# dns.sh - a throwaway authoritative DNS server (NSD) for the integration
# tests.
#
#   dir=$(mktemp -d); mkdir "$dir/zones"
#   cp example.net.zone 2.0.192.in-addr.arpa.zone "$dir/zones/"
#   port=$(sh dns.sh start "$dir")    # NSD on 127.0.0.1:$port, UDP and TCP
#   sh dns.sh stop "$dir"             # stop it and remove $dir
#   sh dns.sh check                   # exit 1 when nsd is not installed
#
# Each $dir/zones/NAME.zone is served as zone NAME (its $ORIGIN). NSD runs
# with a configuration of its own (nothing of /etc/nsd is read): on
# 127.0.0.1 only, on a port the kernel says is free for UDP and TCP, no
# privilege drop, no chroot, no zone database (zones are read as text),
# no remote control, no response rate limiting (a test asks thousands of
# names at once); its PID file, log and state all in $dir. start waits
# until the server answers a SOA query for the first zone (python3), and
# tries another port if NSD could not bind the one chosen.
#
# Only the NSD this script started is ever signalled: its PID is read from
# $dir/nsd.pid, which that NSD wrote.
set -eu
cmd=${1:?usage: dns.sh start|stop DIR, or dns.sh check}
PY=${PYTHON3:-python3}

find_nsd() {
	for d in /usr/sbin /usr/local/sbin /sbin; do
		if [ -x "$d/nsd" ]; then
			echo "$d/nsd"
			return 0
		fi
	done
	command -v nsd 2>/dev/null
}

if [ "$cmd" = check ]; then
	find_nsd >/dev/null
	exit $?
fi
dir=${2:?usage: dns.sh start|stop DIR}
nsd=$(find_nsd) || { echo "dns.sh: nsd not found" >&2; exit 1; }

# A port free for both UDP and TCP on 127.0.0.1.
free_port() {
	"$PY" -c 'import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        u.close()
        continue
    print(port)
    break'
}

# wait_answer PORT ZONE: a SOA query over UDP until NSD answers (5 s).
wait_answer() {
	"$PY" - "$1" "$2" <<'PY'
import socket, struct, sys, time
port, zone = int(sys.argv[1]), sys.argv[2]
q = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0)
for label in zone.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", 6, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
end = time.monotonic() + 5
while time.monotonic() < end:
    try:
        s.sendto(q, ("127.0.0.1", port))
        a = s.recv(4096)
        if a[:2] == q[:2]:
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

write_conf() {
	{
		cat <<CONF
server:
	ip-address: 127.0.0.1
	port: $1
	do-ip6: no
	username: ""
	chroot: ""
	server-count: 1
	verbosity: 1
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
	zonesdir: "$dir/zones"
	database: ""
	zonelistfile: "$dir/zone.list"
	xfrdfile: "$dir/xfrd.state"
	xfrdir: "$dir"
	pidfile: "$dir/nsd.pid"
	logfile: "$dir/nsd.log"
remote-control:
	control-enable: no
CONF
		for z in "$dir"/zones/*.zone; do
			n=$(basename "$z" .zone)
			printf 'zone:\n\tname: "%s"\n\tzonefile: "%s.zone"\n' \
			    "$n" "$n"
		done
	} >"$dir/nsd.conf"
}

stop_nsd() {
	[ -f "$dir/nsd.pid" ] || return 0
	pid=$(cat "$dir/nsd.pid")
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	kill "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null || true
}

case $cmd in
start)
	set -- "$dir"/zones/*.zone
	[ -f "$1" ] || { echo "dns.sh: no zone in $dir/zones" >&2; exit 1; }
	first=$(basename "$1" .zone)
	tries=0
	while :; do
		port=$(free_port)
		write_conf "$port"
		if [ -x "$nsd-checkconf" ]; then
			"$nsd-checkconf" "$dir/nsd.conf" >&2
		fi
		rm -f "$dir/nsd.pid"
		if "$nsd" -c "$dir/nsd.conf" 2>"$dir/start.err" &&
		    wait_answer "$port" "$first"; then
			break
		fi
		stop_nsd
		tries=$((tries + 1))
		if [ $tries -ge 5 ]; then
			cat "$dir/start.err" "$dir/nsd.log" >&2 2>/dev/null
			exit 1
		fi
	done
	echo "$port" >"$dir/port"
	echo "$port"
	;;
stop)
	stop_nsd
	rm -rf "$dir"
	;;
*)
	echo "usage: dns.sh start|stop DIR, or dns.sh check" >&2
	exit 2
	;;
esac
