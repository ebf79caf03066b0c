#!/bin/sh
# man.sh - the man pages and the example configuration say what the code
# does: nothing missing, nothing stale.
#
# One TAP line each:
#   lint PAGE        mandoc -Tlint -W warning prints nothing
#   command CMD      dmarcd(8) has a subsection for CMD, a command of
#                    'dmarcd help', and the options (-x, --long) of
#                    'dmarcd help CMD' are exactly those (.Fl) of that
#                    subsection, read from mandoc's markdown output;
#                    the exit statuses its usage lists are there too
#   commands         no subsection of COMMANDS is a command dmarcd lacks
#   conf5 SECTION    every key common/config.c accepts in SECTION is an
#                    item (.It Ic KEY) of dmarcd.conf(5)'s subsection
#                    [SECTION], and every item there is such a key
#   example SECTION  the same for contrib/dmarcd.conf.example, whose keys
#                    are commented out (;key = value)
#   accepted as-is   dmarcd migrate --status --config EXAMPLE, against a
#                    throwaway PostgreSQL (tests/integration/pg.sh), does
#                    not refuse the configuration
#   accepted all     the same with every example key uncommented (secret
#                    files made on the spot, mode 0600; of two keys that
#                    exclude each other, dmarcd's message names the one
#                    left commented)
#   accepted: dmarcd.conf.5 example N
#                    the same for each configuration in dmarcd.conf(5)
#   refused          a key dmarcd does not know, a password_file of
#                    mode 0644 and a password written in a configuration
#                    of mode 0644 are refused (exit 64, naming file and
#                    line; the password itself never shown); the latter
#                    is accepted at mode 0600
#
# The keys come from the keys[] and account_keys[] tables of
# common/config.c (KEY("section", "name", ...) and AKEY("name", ...)), so
# that a key added there must be documented in both places.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
LC_ALL=C
export LC_ALL

man8=$top_srcdir/man/dmarcd.8
man5=$top_srcdir/man/dmarcd.conf.5
example=$top_srcdir/contrib/dmarcd.conf.example
config_c=$top_srcdir/common/config.c

if [ ! -x "$DMARCD" ]; then
	echo "1..0 # SKIP $DMARCD not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-man.XXXXXX") || exit 1
pgdir=
cleanup() {
	[ -n "$pgdir" ] && sh "$top_srcdir/tests/integration/pg.sh" stop \
	    "$pgdir" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

have_mandoc=0
command -v mandoc >/dev/null 2>&1 && have_mandoc=1

# options FILE - the options named in a usage text, one a line, sorted:
# --long and -x, cut at the characters around them in a usage.
options() {
	tr -s " \t[](),|=;:.'\"\`" '\n' <"$1" |
	    grep -E -x -e '--[a-z][a-z0-9-]*' -e '-[A-Za-z]' | sort -u
}

# ---- mandoc -Tlint ----

for page in "$man8" "$man5"; do
	name=${page##*/}
	if [ "$have_mandoc" = 0 ]; then
		skip "lint $name: mandoc is not installed"
	elif mandoc -Tlint -W warning "$page" >"$tmp/lint" 2>&1 &&
	    [ ! -s "$tmp/lint" ]; then
		ok "lint $name: mandoc -Tlint -W warning is clean"
	else
		not_ok "lint $name: $(tr '\n' ' ' <"$tmp/lint")"
	fi
done

# ---- dmarcd(8) against 'dmarcd help' ----

"$DMARCD" help >"$tmp/help" 2>&1
awk '/^commands:/ { on = 1; next }
    on && /^  [a-z]/ { print $1 }
    on && /^$/ { on = 0 }' "$tmp/help" >"$tmp/commands"
if [ ! -s "$tmp/commands" ]; then
	not_ok "dmarcd help lists commands: $(head -c 300 "$tmp/help")"
fi

if [ "$have_mandoc" = 1 ]; then
	mandoc -Tmarkdown "$man8" >"$tmp/man8.md" 2>"$tmp/man8.err"
	# The subsections (## NAME) of COMMANDS, up to the next section.
	awk '/^# / { on = ($0 == "# COMMANDS") }
	    on && /^## / { print $2 }' "$tmp/man8.md" >"$tmp/man_commands"
fi

while read -r cmd; do
	if [ "$have_mandoc" = 0 ]; then
		skip "command $cmd: mandoc is not installed"
		continue
	fi
	if ! grep -q -x "$cmd" "$tmp/man_commands"; then
		not_ok "command $cmd: no subsection '$cmd' under COMMANDS in dmarcd.8"
		continue
	fi
	"$DMARCD" help "$cmd" >"$tmp/usage" 2>&1
	options "$tmp/usage" >"$tmp/usage_opts"
	# The subsection's text; options are bold (**--x**) there.
	awk -v want="## $cmd" '/^#/ { on = ($0 == want); next } on' \
	    "$tmp/man8.md" >"$tmp/entry"
	grep -o -E '\*\*--?[A-Za-z0-9][A-Za-z0-9-]*\*\*' "$tmp/entry" |
	    tr -d '*' | sort -u >"$tmp/man_opts"
	missing=$(comm -23 "$tmp/usage_opts" "$tmp/man_opts" | tr '\n' ' ')
	extra=$(comm -13 "$tmp/usage_opts" "$tmp/man_opts" | tr '\n' ' ')
	# The exit statuses its usage lists: dmarcd.8 names them too.
	codes=$(sed -n '/Exit status/,$p' "$tmp/usage" | tr -s ' \t\n,.:;()' '\n' |
	    grep -E -x '[0-9]{1,3}' | sort -u)
	for code in $codes; do
		tr -s ' \t\n,.:;()*' '\n' <"$tmp/entry" | grep -q -x "$code" ||
		    missing="$missing(exit status $code) "
	done
	if [ -z "$missing$extra" ]; then
		ok "command $cmd: dmarcd.8 documents its $(wc -l <"$tmp/usage_opts" | tr -d ' ') options: $(tr '\n' ' ' <"$tmp/usage_opts")"
	else
		not_ok "command $cmd: in 'dmarcd help $cmd' but not in dmarcd.8: [${missing}]; in dmarcd.8 but not in its usage: [${extra}]"
	fi
done <"$tmp/commands"

if [ "$have_mandoc" = 0 ]; then
	skip "commands: mandoc is not installed"
else
	stale=$(grep -v -x -F -f "$tmp/commands" "$tmp/man_commands" |
	    tr '\n' ' ')
	if [ -z "$stale" ]; then
		ok "commands: every command in dmarcd.8 is one of 'dmarcd help'"
	else
		not_ok "commands: dmarcd.8 documents commands dmarcd lacks: $stale"
	fi
fi

# ---- configuration keys: common/config.c, dmarcd.conf(5), the example ----

# "section key" pairs the code accepts; [account NAME] is "account".
sed -n -e 's/^[[:space:]]*KEY("\([a-z_]*\)", "\([a-z0-9_]*\)".*/\1 \2/p' \
    -e 's/^[[:space:]]*AKEY("\([a-z0-9_]*\)".*/account \1/p' "$config_c" |
    sort -u >"$tmp/code_keys"
cut -d' ' -f1 "$tmp/code_keys" | sort -u >"$tmp/sections"
if [ "$(wc -l <"$tmp/code_keys")" -lt 20 ] ||
    ! grep -q -x account "$tmp/sections"; then
	not_ok "config keys read from common/config.c: only $(wc -l <"$tmp/code_keys")"
fi

# dmarcd.conf.5: ".Ss \&[section]\&" (".Ss \&[account Ar name \&]")
# starts a section; ".It Ic key" is one of its keys.
awk '/^\.S[hs] / {
		sec = ""
		name = $2
		gsub(/\\&/, "", name)
		if ($1 == ".Ss" && name ~ /^\[/) {
			sec = name
			gsub(/[][]/, "", sec)
		}
		next
	}
	sec != "" && /^\.It Ic [a-z0-9_]+/ { print sec, $3 }' "$man5" |
    sort -u >"$tmp/man5_keys"

# The example: "[section]" or ";[account NAME]" starts a section;
# "key = value" or ";key = value" is one of its keys.
awk '/^;?\[[a-z]+( [^]]*)?\]/ {
		sec = $0
		sub(/^;?\[/, "", sec)
		sub(/[] ].*/, "", sec)
		next
	}
	sec != "" && /^;?[a-z0-9_]+ *=/ {
		key = $0
		sub(/^;/, "", key)
		sub(/ *=.*/, "", key)
		print sec, key
	}' "$example" | sort -u >"$tmp/example_keys"

check_keys() {	# LABEL FILE-OF-PAIRS
	while read -r sec; do
		grep "^$sec " "$tmp/code_keys" >"$tmp/want"
		grep "^$sec " "$2" >"$tmp/have"
		missing=$(comm -23 "$tmp/want" "$tmp/have" | cut -d' ' -f2 |
		    tr '\n' ' ')
		extra=$(comm -13 "$tmp/want" "$tmp/have" | cut -d' ' -f2 |
		    tr '\n' ' ')
		if [ -z "$missing$extra" ]; then
			ok "$1 [$sec]: all $(wc -l <"$tmp/want" | tr -d ' ') keys documented, none unknown"
		else
			not_ok "$1 [$sec]: keys not documented: [${missing}]; keys dmarcd does not accept: [${extra}]"
		fi
	done <"$tmp/sections"
	extra=$(cut -d' ' -f1 "$2" | sort -u | grep -v -x -F -f "$tmp/sections" |
	    tr '\n' ' ')
	if [ -z "$extra" ]; then
		ok "$1: no section dmarcd does not know"
	else
		not_ok "$1: sections dmarcd does not know: $extra"
	fi
}
check_keys conf5 "$tmp/man5_keys"
check_keys example "$tmp/example_keys"

# ---- dmarcd accepts the example ----

# A directory of its own: the server (user postgres) cannot enter $tmp.
conn=
if ! sh "$top_srcdir/tests/integration/pg.sh" bindir >/dev/null 2>&1; then
	:
elif ! pgdir=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-man-pg.XXXXXX"); then
	not_ok "mktemp for PostgreSQL"
elif ! conn=$(sh "$top_srcdir/tests/integration/pg.sh" start "$pgdir" \
    2>"$tmp/pg.err"); then
	not_ok "a throwaway PostgreSQL starts: $(tail -n 5 "$tmp/pg.err" | tr '\n' ' ')"
	conn=
fi

# load FILE - run a command that reads FILE and connects; its status.
load() {
	"$DMARCD" migrate --status --config "$1" --db "$conn" \
	    >"$tmp/load.out" 2>"$tmp/load.err"
}

# accepted LABEL FILE: the configuration is read and the command runs
# (migrate --status: 0 all applied, 1 some pending).
accepted() {
	if [ -z "$conn" ]; then
		skip "$1: no PostgreSQL"
		return
	fi
	load "$2"
	rc=$?
	if { [ "$rc" = 0 ] || [ "$rc" = 1 ]; } && [ -s "$tmp/load.out" ]; then
		ok "$1: migrate --status ran with it (exit $rc)"
	else
		not_ok "$1: exit $rc: $(head -c 400 "$tmp/load.err")"
	fi
}

accepted "accepted as-is: contrib/dmarcd.conf.example" "$example"

# Every key uncommented with its example value; a *_file gets a private
# file of its own holding a line every such key takes.
if [ -n "$conn" ]; then
	n=0
	: >"$tmp/all.conf"
	while IFS= read -r line; do
		case $line in
		";["[a-z]*"]"*)
			line=${line#;} ;;
		";"[a-z]*" = "?*)
			line=${line#;}
			case ${line%% =*} in
			*_file)
				n=$((n + 1))
				echo "https://hooks.example.com/secret$n" \
				    >"$tmp/secret$n"
				chmod 600 "$tmp/secret$n"
				line="${line%% =*} = $tmp/secret$n" ;;
			esac ;;
		esac
		printf '%s\n' "$line" >>"$tmp/all.conf"
	done <"$example"
	# A key set twice keeps its first value; of two keys that exclude
	# each other, the one dmarcd names goes back to a comment.
	awk '/^\[/ { delete seen }
	    /^[a-z0-9_]+ = / { k = $1; if (k in seen) $0 = ";" $0; seen[k] = 1 }
	    { print }' "$tmp/all.conf" >"$tmp/all2.conf"
	mv "$tmp/all2.conf" "$tmp/all.conf"
	# The example's webhook and secrets, written in it: private.
	chmod 600 "$tmp/all.conf"
	tries=0
	while load "$tmp/all.conf"; [ $? = 64 ] &&
	    line=$(sed -n 's/^.*all\.conf:\([0-9]*\): .*give one of them$/\1/p' \
	    "$tmp/load.err") && [ -n "$line" ] && [ "$tries" -lt 10 ]; do
		sed -i "${line}s/^/;/" "$tmp/all.conf"
		tries=$((tries + 1))
	done
	set_keys=$(grep -c -E '^[a-z0-9_]+ = ' "$tmp/all.conf")
	accepted "accepted all: the example with $set_keys keys set" \
	    "$tmp/all.conf"
else
	skip "accepted all: no PostgreSQL"
fi

# The configurations in dmarcd.conf(5)'s EXAMPLES (literal blocks that
# start with a [section]), their /etc/dmarcd files made private here.
if [ -n "$conn" ]; then
	awk -v dir="$tmp" '
	    /^\.Bd -literal/ { n++; first = 1; next }
	    /^\.Ed/ { first = 0; in_conf = 0; next }
	    first { in_conf = /^\[/; first = 0 }
	    in_conf { print > (dir "/man5_example" n ".conf") }' "$man5"
	found=0
	for f in "$tmp"/man5_example*.conf; do
		[ -f "$f" ] || continue
		found=$((found + 1))
		for path in $(grep -o '/etc/dmarcd/[A-Za-z0-9._-]*' "$f" |
		    sort -u); do
			private=$tmp/etc_${path##*/}
			echo "https://hooks.example.com/x" >"$private"
			chmod 600 "$private"
			sed -i "s|$path|$private|g" "$f"
		done
		accepted "accepted: dmarcd.conf.5 example ${f##*/man5_example}" "$f"
	done
	[ "$found" -gt 0 ] || not_ok "dmarcd.conf.5 has configuration examples"
else
	skip "accepted: dmarcd.conf.5 examples: no PostgreSQL"
fi

# refused LABEL FILE PATTERN: exit 64 and a message matching PATTERN.
refused() {
	if [ -z "$conn" ]; then
		skip "$1: no PostgreSQL"
		return
	fi
	load "$2"
	rc=$?
	if [ "$rc" = 64 ] && grep -q -E "$3" "$tmp/load.err"; then
		ok "$1: exit 64: $(head -n 1 "$tmp/load.err")"
	else
		not_ok "$1: exit $rc, wanted 64 and /$3/: $(head -c 400 "$tmp/load.err")"
	fi
}

{ cat "$example"; printf '[ingest]\nno_such_key = 1\n'; } >"$tmp/bad.conf"
refused "refused: an unknown key" "$tmp/bad.conf" \
    "bad\\.conf:[0-9]+: \\[ingest\\] no_such_key: unknown key"
echo secret >"$tmp/open.pass"
chmod 644 "$tmp/open.pass"
{ cat "$example"; printf '[account open]\nhost = imap.example.com\nuser = u\npassword_file = %s\n' "$tmp/open.pass"; } >"$tmp/open.conf"
refused "refused: a password_file of mode 0644" "$tmp/open.conf" \
    "open\\.conf:[0-9]+: .*password_file: .*chmod 600"
# A password written in the configuration: only in a private file.
inline_pw=Zq7-inline-password
{ cat "$example"; printf '[account inline]\nhost = imap.example.com\nuser = u\npassword = %s\n' "$inline_pw"; } >"$tmp/inline.conf"
chmod 644 "$tmp/inline.conf"
refused "refused: a password written in a configuration of mode 0644" \
    "$tmp/inline.conf" \
    "inline\\.conf:[0-9]+: \\[account inline\\] password: .*\\(mode 0644\\): chmod 600 .*inline\\.conf.*password_file"
if [ -n "$conn" ] && grep -q -F "$inline_pw" "$tmp/load.err"; then
	not_ok "refused: the message shows the password"
fi
chmod 600 "$tmp/inline.conf"
accepted "accepted: the same configuration at mode 0600" "$tmp/inline.conf"

tap_done
