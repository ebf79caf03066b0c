#!/bin/sh
# dovecot.sh - a throwaway Dovecot IMAP server for the integration tests.
#
#   dir=$(mktemp -d); eval "$(sh dovecot.sh start "$dir")"
#	-> IMAP_PORT (STARTTLS) IMAPS_PORT IMAP_HOST IMAP_ALT_HOST
#	   IMAP_USER IMAP_PASS IMAP_CA OTHER_CA DOVECOT_CONF DOVECOT_LOG
#	   DOVECOT_RAWLOG DOVECOT_LOGIN_RAWLOG DOVECOT_PID
#   sh dovecot.sh deliver "$dir" msg.eml [FOLDER]  # doveadm save, user test
#   sh dovecot.sh kill "$dir"      # SIGKILL Dovecot: gone mid-fetch
#   sh dovecot.sh restart "$dir"   # start again in place: same ports, cert
#   sh dovecot.sh stop "$dir"      # stop it and remove $dir
#
# kill is SIGKILL to the master and every process it started: an imap
# process goes on serving its client when only the master dies. deliver
# (doveadm) needs Dovecot running: doveadm asks its auth process for the
# user.
#
# Dovecot 2.3 with its own configuration file (nothing of /etc/dovecot is
# read): IMAP with STARTTLS and IMAPS on two free ports of 127.0.0.1, and
# the same two ports on 127.0.0.2 (IMAP_ALT_HOST: a loopback address the
# certificate does not name, for the host name check). base_dir,
# state_dir, the log and the maildirs all live in $dir. User test,
# password secret (passwd-file). The mail processes may not run as root:
# as root they run as nobody (internal user dovecot, login user dovenull),
# and $dir is made 0755 so that nobody can reach the maildir.
#
# TLS: a small CA (ca.pem, EC P-256, 2 days) signs the server's
# certificate (CN localhost, SAN DNS:localhost and IP:127.0.0.1):
# IMAP_CA is that CA. OTHER_CA is a second, unrelated CA (other-ca.pem):
# it must not verify the server.
#
# Every IMAP session after login is written to $DOVECOT_RAWLOG (rawlog_dir:
# one *.in and *.out file per session), so a test can see which commands
# a client sent (UID MOVE, IDLE...). What comes before (CAPABILITY,
# STARTTLS, LOGIN or AUTHENTICATE) goes to $DOVECOT_LOGIN_RAWLOG
# (imap-login -R) as it was on the wire: the commands can be read only
# without TLS, but a ClientHello (with its SNI) is in the clear. Logins
# are logged ("imap-login: Info: Login: user=<test>, method=..."; the
# LOGIN command is method=PLAIN in Dovecot 2.3.19, as AUTHENTICATE PLAIN
# is). A failed login is answered at once: auth_failure_delay = 0 and no
# anvil auth penalty (which would otherwise delay the next logins from
# 127.0.0.1 by 2, 4, 8... s).
#
# Options, read by start (and kept by restart):
#   DOVECOT_NOMOVE=1	MOVE is not advertised (imap_capability without it;
#			UIDPLUS stays). Dovecot still accepts the command:
#			look for it in the rawlog.
#   DOVECOT_NOIDLE=1	IDLE is not advertised.
#   DOVECOT_OAUTH2_URL=http://127.0.0.1:PORT/introspect
#			XOAUTH2 and OAUTHBEARER are offered: a passdb oauth2
#			posts the token (introspection_mode = post) to that
#			URL and wants {"active": true, "username": "test"}.
#			PLAIN and LOGIN still use the passwd-file.
#   DOVECOT_SNI=1	the certificate is chosen by SNI: the default
#			ssl_cert names only wrong.example (signed by the same
#			CA), and a local_name localhost block serves the
#			right one. A client that sends no SNI, or another
#			name, gets the wrong certificate.
#
# Only the master this script started is ever signalled: its PID is read
# from $dir/run/master.pid. PID 1 of a container may not reap it: a
# zombie counts as gone. Exit status: 0, or 1 with the reason on stderr.
set -eu
cmd=${1:?usage: dovecot.sh start|deliver|kill|restart|stop DIR}
dir=${2:?usage: dovecot.sh start|deliver|kill|restart|stop DIR}
conf=$dir/dovecot.conf
alt_host=127.0.0.2

# A port nothing listens on: the kernel picks one (bind to port 0).
free_port() {
	"${PYTHON3:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s at most).
wait_port() {
	"${PYTHON3:-python3}" -c 'import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)' "$1"
}

master_pid() {
	cat "$dir/run/master.pid" 2>/dev/null || true
}

# gone PID: the process has exited (or is a zombie nobody reaps).
gone() {
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	case $st in
	Z*) return 0 ;;
	esac
	return 1
}

# descendants PID: the processes PID started, and theirs.
descendants() {
	ps -e -o pid= -o ppid= | awk -v root="$1" '
	{ parent[$1] = $2 }
	END {
		found[root] = 1
		do {
			more = 0
			for (p in parent)
				if (!(p in found) && (parent[p] in found)) {
					found[p] = 1
					more = 1
				}
		} while (more)
		for (p in found)
			if (p != root)
				print p
	}'
}

# wait_gone PID: 10 s at most.
wait_gone() {
	i=0
	while [ $i -lt 100 ]; do
		gone "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

make_ca() {	# make_ca NAME CN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 2 -subj "/CN=$2" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -addext "subjectKeyIdentifier=hash" \
	    -keyout "$dir/$1.key" -out "$dir/$1.pem" 2>"$dir/openssl.err"
}

# make_cert CERT KEY CN SAN: a server certificate signed by ca.pem.
make_cert() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -subj "/CN=$3" -keyout "$dir/$2" \
	    -out "$dir/cert.csr" 2>"$dir/openssl.err" || return 1
	cat >"$dir/cert.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $4
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" \
	    -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
	    -extfile "$dir/cert.ext" -out "$dir/$1" 2>"$dir/openssl.err" ||
	    return 1
	rm -f "$dir/cert.csr" "$dir/ca.srl"
	chmod 600 "$dir/$2"
}

make_certs() {
	make_ca ca "dmarcd test CA $$" || return 1
	make_ca other-ca "dmarcd unrelated CA $$" || return 1
	rm -f "$dir/other-ca.key"
	chmod 600 "$dir/ca.key"
	make_cert cert.pem key.pem localhost DNS:localhost,IP:127.0.0.1 ||
	    return 1
	if [ "${DOVECOT_SNI:-}" = 1 ]; then
		make_cert wrong.pem wrong.key wrong.example DNS:wrong.example ||
		    return 1
	fi
}

# The certificate: the one, or with DOVECOT_SNI wrong.example unless the
# client asked for localhost.
ssl_cert_setting() {
	if [ "${DOVECOT_SNI:-}" = 1 ]; then
		cat <<EOF
ssl_cert = <$dir/wrong.pem
ssl_key = <$dir/wrong.key
local_name localhost {
  ssl_cert = <$dir/cert.pem
  ssl_key = <$dir/key.pem
}
EOF
	else
		cat <<EOF
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
EOF
	fi
}

# The capabilities Dovecot 2.3.19 advertises after login, less those the
# options take away. imap_capability replaces the whole list.
capability() {
	cap="IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT"
	cap="$cap SORT=DISPLAY THREAD=REFERENCES THREAD=REFS"
	cap="$cap THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE"
	cap="$cap UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED"
	cap="$cap I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES"
	cap="$cap WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY"
	cap="$cap PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
	cap="$cap SPECIAL-USE"
	[ "${DOVECOT_NOMOVE:-}" = 1 ] && cap=$(echo "$cap" | sed 's/ MOVE / /')
	[ "${DOVECOT_NOIDLE:-}" = 1 ] && cap=$(echo "$cap" | sed 's/ IDLE / /')
	echo "$cap"
}

# Without options Dovecot's own list stays.
capability_setting() {
	if [ "${DOVECOT_NOMOVE:-}" = 1 ] || [ "${DOVECOT_NOIDLE:-}" = 1 ]; then
		echo "imap_capability = $(capability)"
	fi
}

write_config() {	# write_config PORT SPORT
	if [ "$(id -u)" = 0 ]; then
		mu=nobody
		mg=$(id -gn nobody)
		iu=dovecot
		lu=dovenull
	else
		mu=$(id -un)
		mg=$(id -gn)
		iu=$mu
		lu=$mu
	fi
	mkdir -p "$dir/home/test" "$dir/rawlog" "$dir/run/login/rawlog"
	chown -R "$mu:$mg" "$dir/home" "$dir/rawlog"
	chown "$lu" "$dir/run/login/rawlog"
	chmod 700 "$dir/run/login/rawlog"
	echo "test:{PLAIN}secret::::" >"$dir/users"
	mechanisms="plain login"
	oauth2_passdb=
	if [ -n "${DOVECOT_OAUTH2_URL:-}" ]; then
		mechanisms="plain login xoauth2 oauthbearer"
		cat >"$dir/oauth2.conf.ext" <<EOF
introspection_url = $DOVECOT_OAUTH2_URL
introspection_mode = post
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
EOF
		oauth2_passdb="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $dir/oauth2.conf.ext
}"
	fi
	cat >"$conf" <<EOF
# Written by tests/integration/dovecot.sh; options: NOMOVE=${DOVECOT_NOMOVE:-}
# NOIDLE=${DOVECOT_NOIDLE:-} OAUTH2_URL=${DOVECOT_OAUTH2_URL:-}
# SNI=${DOVECOT_SNI:-}
protocols = imap
listen = 127.0.0.1, $alt_host
base_dir = $dir/run
state_dir = $dir/state
instance_name = dovecot-test-$1
log_path = $dir/dovecot.log
default_internal_user = $iu
default_login_user = $lu
ssl = yes
$(ssl_cert_setting)
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = $mechanisms
auth_verbose = yes
# No delay after a failed login: the tests fail logins on purpose.
auth_failure_delay = 0
# Nor the growing penalty (2, 4, 8... s) anvil imposes on the next login
# from the same address (login_trusted_networks does not lift it in 2.3.19).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
$(capability_setting)
rawlog_dir = $dir/rawlog
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN $dir/users
}
$oauth2_passdb
userdb {
  driver = passwd-file
  args = $dir/users
  default_fields = uid=$mu gid=$mg home=$dir/home/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
service imap-login {
  # The pre-login rawlog: relative to the login process's chroot,
  # $dir/run/login.
  executable = imap-login -R rawlog
  inet_listener imap {
    address = 127.0.0.1, $alt_host
    port = $1
  }
  inet_listener imaps {
    address = 127.0.0.1, $alt_host
    port = $2
    ssl = yes
  }
}
EOF
}

print_env() {
	port=$(cut -d' ' -f1 "$dir/ports")
	sport=$(cut -d' ' -f2 "$dir/ports")
	cat <<EOF
IMAP_HOST=localhost
IMAP_ALT_HOST=$alt_host
IMAP_PORT=$port
IMAPS_PORT=$sport
IMAP_USER=test
IMAP_PASS=secret
IMAP_CA=$dir/ca.pem
OTHER_CA=$dir/other-ca.pem
DOVECOT_CONF=$conf
DOVECOT_LOG=$dir/dovecot.log
DOVECOT_RAWLOG=$dir/rawlog
DOVECOT_LOGIN_RAWLOG=$dir/run/login/rawlog
DOVECOT_PID=$(master_pid)
EOF
}

# run_master: start the master on the ports of the configuration, wait
# until both listen.
run_master() {
	rm -f "$dir/run/master.pid"
	dovecot -c "$conf" 2>"$dir/start.err" || return 1
	wait_port "$(cut -d' ' -f1 "$dir/ports")" &&
	    wait_port "$(cut -d' ' -f2 "$dir/ports")"
}

case $cmd in
start)
	command -v dovecot >/dev/null 2>&1 || {
		echo "dovecot.sh: no dovecot binary" >&2
		exit 1
	}
	chmod 755 "$dir"
	make_certs || {
		cat "$dir/openssl.err" >&2
		exit 1
	}
	# Between choosing the ports and binding them another process may
	# take one: try a few.
	tries=0
	while :; do
		port=$(free_port)
		sport=$(free_port)
		echo "$port $sport" >"$dir/ports"
		write_config "$port" "$sport"
		if run_master; then
			break
		fi
		pid=$(master_pid)
		[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait_gone "$pid"
		tries=$((tries + 1))
		if [ "$tries" -ge 5 ]; then
			cat "$dir/start.err" >&2
			tail -n 20 "$dir/dovecot.log" >&2 2>/dev/null
			exit 1
		fi
	done
	print_env | tee "$dir/env"
	;;
deliver)
	doveadm -c "$conf" save -u test -m "${4:-INBOX}" \
	    <"${3:?usage: dovecot.sh deliver DIR FILE [FOLDER]}"
	;;
kill)
	# Sessions outlive a killed master (their imap process goes on
	# serving its client): stop the master so that it forks no more,
	# then SIGKILL it with every process it started.
	pid=$(master_pid)
	[ -n "$pid" ] || {
		echo "dovecot.sh: no master.pid in $dir/run" >&2
		exit 1
	}
	kill -STOP "$pid" 2>/dev/null || true
	pids="$pid $(descendants "$pid")"
	# shellcheck disable=SC2086 # a list of PIDs
	kill -KILL $pids 2>/dev/null || true
	for p in $pids; do
		wait_gone "$p" || true
	done
	# A process killed while it held a dotlock (dovecot-uidlist.lock)
	# leaves the file. Dovecot takes it for stale only once its PID is
	# gone, and a zombie nobody reaps keeps the PID: every later access
	# to that mailbox would wait two minutes for it. Every process of
	# this Dovecot is dead now, so each lock left is stale.
	find "$dir/home" -name '*.lock' -type f -exec rm -f {} + \
	    2>/dev/null || true
	gone "$pid"
	;;
restart)
	pid=$(master_pid)
	if [ -n "$pid" ] && ! gone "$pid"; then
		echo "dovecot.sh: Dovecot $pid still runs" >&2
		exit 1
	fi
	run_master || {
		cat "$dir/start.err" >&2
		tail -n 20 "$dir/dovecot.log" >&2 2>/dev/null
		exit 1
	}
	print_env | tee "$dir/env"
	;;
stop)
	pid=$(master_pid)
	if [ -n "$pid" ] && ! gone "$pid"; then
		kill "$pid" 2>/dev/null || true
		wait_gone "$pid" || {
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" || true
		}
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: dovecot.sh start|deliver|kill|restart|stop DIR" >&2
	exit 2
	;;
esac
