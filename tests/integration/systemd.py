#!/usr/bin/env python3
"""systemd.py - dmarcd as `make install` installs it, run by a real systemd.

The units in contrib/systemd are checked by `systemd-analyze verify`
elsewhere (tests/ops); this test runs them. It boots systemd as PID 1 of
a PID and mount namespace of its own (unshare), with only the journal
running:

  * /etc is an overlay on the host's (its changes stay in the test's
    directory): the `dmarcd` user is made there, as the README says, and
    /etc/dmarcd/dmarcd.conf written;
  * the prefix (e.g. /usr/local) is the tree `make install DESTDIR=...`
    wrote, mounted over the real one, so the units, the binary and the
    paths in them are exactly what the install gives;
  * /run, /tmp and /var/tmp are fresh tmpfs; every unit some target
    wants is masked (no udev, no tmpfiles, no PostgreSQL or Dovecot of
    the host), but journald.

A throwaway PostgreSQL and Dovecot run outside, on loopback, as in the
other integration tests (the network namespace is shared); PostgreSQL's
socket directory is mounted at /run/postgresql, and the daemon connects
through it, as the README's configuration has it. Then:
dmarcd.service collects the mail over IMAPS into PostgreSQL inside its
sandbox (user dmarcd, no capabilities, NoNewPrivileges, seccomp), logs
to the journal, takes new mail while it runs (IDLE), reloads on `systemctl
reload` and stops cleanly; dmarcd-fetch.service does one pass, and its
timer is scheduled; user dmarcd cannot make an API token (exit 77) and
user postgres makes one as the README says; dmarcd-serve.service answers
the API and the status page as a read-only role; a broken configuration fails with 64 and is not
restarted in a loop.

Skips without root, unshare/nsenter, systemd, an overlay mount, or when
systemd does not come up in the namespace. Every process started is in
that namespace and dies with its PID 1, which the test kills (SIGKILL)
at exit; nothing of the host's is stopped.
"""
import atexit
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import imapharness as ih  # noqa: E402

BOOT_TIMEOUT = 60
SYSTEMD = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd")
                if os.access(p, os.X_OK)), None)

# Run inside the new namespaces, before systemd: $1 the test's directory,
# $2 the DESTDIR root, $3 the prefix, $4 systemd, $5 PostgreSQL's socket
# directory (seen as /run/postgresql, where Debian's is).
BOOT_SH = r'''
set -eu
T=$1 DEST=$2 PREFIX=$3
mount --make-rprivate /
mkdir -p "$T/etc-up" "$T/etc-work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc-up,workdir=$T/etc-work" /etc
mount --bind "$DEST$PREFIX" "$PREFIX"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/t /run/systemd/system /run/postgresql
mount --bind "$T" /run/t
mount --bind "$5" /run/postgresql
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
for d in /lib/systemd/system/*.wants /usr/lib/systemd/system/*.wants \
    /etc/systemd/system/*.wants; do
	for u in "$d"/*; do
		[ -e "$u" ] || [ -L "$u" ] || continue
		n=${u##*/}
		case $n in systemd-journald*) continue ;; esac
		ln -sf /dev/null "/run/systemd/system/$n"
	done
done
for n in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
    systemd-tmpfiles-clean.timer systemd-udevd.service \
    systemd-udev-trigger.service systemd-sysctl.service \
    systemd-modules-load.service systemd-remount-fs.service \
    systemd-networkd-wait-online.service NetworkManager-wait-online.service \
    getty.target console-getty.service; do
	ln -sf /dev/null "/run/systemd/system/$n"
done
# As the README: a system user and group, the configuration in /etc/dmarcd.
getent passwd dmarcd >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent \
	--shell /usr/sbin/nologin dmarcd
install -d -m 0750 -o root -g dmarcd /etc/dmarcd
exec "$4" --system --unit=basic.target --log-target=journal-or-kmsg \
    --log-level=notice </dev/null >/run/t/systemd.log 2>&1
'''


def makefile_var(builddir, name):
    with open(os.path.join(builddir, "Makefile")) as f:
        for line in f:
            m = re.match(r"^%s = (.*)$" % re.escape(name), line)
            if m:
                return m.group(1).strip()
    return None


class Namespace:
    """systemd as PID 1 of new PID and mount namespaces."""

    def __init__(self, work, dest, prefix, pg_socket):
        self.work = work
        self.pid = None
        self.proc = None
        boot = os.path.join(work, "boot.sh")
        with open(boot, "w") as f:
            f.write(BOOT_SH)
        atexit.register(self.kill)
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--mount-proc",
             "sh", boot, work, dest, prefix, SYSTEMD, pg_socket],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)

    def init_pid(self):
        """The host PID of the namespace's PID 1 (unshare's child)."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid,
                                                      self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def boot(self):
        deadline = time.time() + BOOT_TIMEOUT
        state = ""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode("utf-8", "replace")
                return "the namespace ended: %s" % out.strip()[-400:]
            self.pid = self.init_pid()
            if self.pid is not None:
                r = self.sh("systemctl is-system-running", timeout=10)
                state = r.out.strip()
                if state in ("running", "degraded"):
                    return None
            time.sleep(0.3)
        return "systemd did not come up (state %r)" % state

    def sh(self, command, timeout=60):
        return h.run(["nsenter", "-t", str(self.pid), "-m", "-p", "sh",
                      "-c", command], timeout=timeout)

    def systemctl(self, *args, timeout=120):
        return self.sh("systemctl --no-pager " + " ".join(args),
                       timeout=timeout)

    def show(self, unit, *props):
        r = self.systemctl("show", unit, "-p", ",".join(props))
        v = {}
        for line in r.out.splitlines():
            k, _, val = line.partition("=")
            v[k] = val
        return v

    def journal(self, unit):
        return self.sh("journalctl --no-pager -o cat -u %s" % unit).out

    def kill(self):
        if self.proc is None:
            return
        pid = self.pid or self.init_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)   # the namespace dies with it
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None


def wait_for(what, timeout=60, step=0.3):
    deadline = time.time() + timeout
    while True:
        v = what()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def http_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        return None, {}, str(e).encode()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(tap):
    env = ih.setup()
    if os.geteuid() != 0:
        h.skip_all("not root: systemd cannot be booted in a namespace")
    for tool in ("unshare", "nsenter", "useradd", "journalctl",
                 "systemctl"):
        if shutil.which(tool) is None:
            h.skip_all("%s not found" % tool)
    if SYSTEMD is None:
        h.skip_all("no systemd binary (/lib/systemd/systemd)")
    builddir = env.top_builddir
    prefix = makefile_var(builddir, "prefix")
    if not prefix or not (prefix.startswith("/usr/local") or
                          prefix.startswith("/opt")):
        h.skip_all("prefix %r: the test mounts the installed tree over "
                   "it, which it only does for /usr/local or /opt" % prefix)
    flags = " ".join(makefile_var(builddir, v) or "" for v in
                     ("CFLAGS", "SAN_FLAGS", "AM_CFLAGS"))
    if "-fsanitize" in flags:
        h.skip_all("a sanitizer build: the plain build runs this test "
                   "(ASan's runtime is not meant to run under the units' "
                   "system call filter)")
    if not os.path.isdir(prefix):
        h.skip_all("%s does not exist" % prefix)

    # make install, as the README says (DESTDIR: nothing of the host's).
    dest = os.path.join(env.work, "root")
    r = h.run(["make", "-s", "-C", builddir, "install", "DESTDIR=" + dest],
              timeout=600)
    tap.check("make install DESTDIR=... succeeds",
              [] if r.rc == 0 else [r.describe()])
    if r.rc != 0:
        return
    unitdir = (makefile_var(builddir, "systemdsystemunitdir") or "") \
        .replace("${prefix}", prefix).replace("$(prefix)", prefix)
    units = os.path.join(dest, unitdir.lstrip("/"))
    want = ["dmarcd.service", "dmarcd-fetch.service", "dmarcd-fetch.timer",
            "dmarcd-serve.service"]
    missing = [u for u in want
               if not os.path.exists(os.path.join(units, u))]
    tap.check("the units are installed in %s" % unitdir,
              ["%s missing" % u for u in missing])
    if missing:
        return
    installed_bin = os.path.join(prefix, "bin", "dmarcd")

    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.psql("CREATE ROLE dmarcd LOGIN IN ROLE dmarcd_ingest; "
                "CREATE ROLE dmarcd_api LOGIN IN ROLE dmarcd_reader;")
    if r.rc != 0:
        raise RuntimeError(r.describe())
    dc = ih.Dovecot(env)
    samples = sorted(os.path.join(env.samples, f)
                     for f in os.listdir(env.samples))
    mails = [ih.report_mail(open(p, "rb").read(), os.path.basename(p),
                            message_id="<s%d@systemd.test>" % i)
             for i, p in enumerate(samples)
             if p.endswith((".xml", ".gz", ".zip"))]
    dc.deliver_bytes(mails[0])

    api_port = free_port()
    ns_dir = os.path.join(env.work, "ns")
    os.makedirs(ns_dir)
    shutil.copy(dc.ca, os.path.join(ns_dir, "ca.pem"))
    conf_text = "\n".join([
        "[database]",
        # The daemon over the Unix socket, as the README has it.
        "conninfo = host=/run/postgresql port=%d dbname=%s user=dmarcd" % (
            cluster.port, db.name),
        "api_conninfo = " + cluster.conninfo_for(db.name, user="dmarcd_api"),
        "",
        "[account test]",
        "host = %s" % dc.host,
        "port = %d" % dc.imaps_port,
        "tls = imaps",
        "ca_file = /etc/dmarcd/ca.pem",
        "user = %s" % dc.user,
        "password_file = /etc/dmarcd/imap.pass",
        "mailboxes = INBOX",
        "",
        "[daemon]",
        "poll_interval = 5",
        "",
        "[api]",
        "listen = 127.0.0.1:%d" % api_port,
        ""])
    with open(os.path.join(ns_dir, "dmarcd.conf"), "w") as f:
        f.write(conf_text)
    with open(os.path.join(ns_dir, "imap.pass"), "w") as f:
        f.write(dc.password + "\n")

    # Units under the prefix are found where make install put them
    # (/usr/local/lib/systemd/system is on systemd's path); others (a
    # distribution's unit directory) are copied to /run/systemd/system.
    if unitdir.startswith(prefix.rstrip("/") + "/"):
        copy_units = ""
    else:
        shutil.copytree(units, os.path.join(ns_dir, "units"))
        copy_units = "cp /run/t/units/* /run/systemd/system/;"

    ns = Namespace(ns_dir, dest, prefix, os.path.join(cluster.dir, "sock"))
    why = ns.boot()
    if why is not None:
        ns.kill()
        tap.skip("dmarcd.service under systemd", why)
        return
    # The configuration as an administrator installs it: root-owned,
    # readable by group dmarcd; the password file the user's, 0600.
    setup = ns.sh(
        "set -e; cp /run/t/dmarcd.conf /run/t/ca.pem /etc/dmarcd/; "
        "install -m 0600 -o dmarcd -g dmarcd /run/t/imap.pass "
        "/etc/dmarcd/imap.pass; chown root:dmarcd /etc/dmarcd/dmarcd.conf; "
        "chmod 0640 /etc/dmarcd/dmarcd.conf; "
        "%s systemctl daemon-reload" % copy_units)
    tap.check("user dmarcd and /etc/dmarcd made as the README says",
              [] if setup.rc == 0 else [setup.describe()])

    # The README's `runuser -u postgres -- dmarcd migrate --db ...`: with
    # /etc/dmarcd closed to postgres, --db alone reads no configuration.
    r = ns.sh("runuser -u postgres -- %s migrate --status --db '%s'" % (
        installed_bin, cluster.conninfo_for(db.name)))
    tap.check("user postgres runs dmarcd migrate --db with /etc/dmarcd "
              "closed to it", [] if r.rc == 0 else [r.describe()])

    def stored():
        return db.int("SELECT count(*) FROM dmarcd.reports")

    # dmarcd.service: `dmarcd run`.
    r = ns.systemctl("start", "dmarcd.service")
    got = wait_for(lambda: stored() >= 1 and
                   dc.count(ih.PROCESSED) >= 1, timeout=60)
    st = ns.show("dmarcd.service", "ActiveState", "SubState", "MainPID",
                 "ExecMainStatus", "NRestarts")
    problems = []
    if r.rc != 0:
        problems.append("systemctl start: " + r.describe())
    if st.get("ActiveState") != "active":
        problems.append("dmarcd.service is %s/%s (exit %s)" % (
            st.get("ActiveState"), st.get("SubState"),
            st.get("ExecMainStatus")))
    if not got:
        problems.append("%d report(s) stored, %d mail(s) processed after "
                        "60 s" % (stored(), dc.count(ih.PROCESSED)))
    if problems:
        problems.append("journal: " + ns.journal("dmarcd.service")[-1500:])
    tap.check("dmarcd.service collects over IMAPS into PostgreSQL",
              problems)

    # Its sandbox, read in /proc of the namespace.
    pid = st.get("MainPID", "0")
    status = ns.sh("cat /proc/%s/status" % pid).out
    fields = dict(line.split(":", 1) for line in status.splitlines()
                  if ":" in line)
    uid = ns.sh("id -u dmarcd").out.strip()
    problems = []
    if fields.get("Uid", "").split()[:1] != [uid]:
        problems.append("Uid %r, not dmarcd's %s" % (fields.get("Uid"),
                                                      uid))
    if fields.get("NoNewPrivs", "").strip() != "1":
        problems.append("NoNewPrivs %r" % fields.get("NoNewPrivs"))
    if fields.get("CapEff", "").strip().strip("0") != "":
        problems.append("CapEff %r" % fields.get("CapEff"))
    if fields.get("Seccomp", "").strip() != "2":
        problems.append("Seccomp %r (2: a filter)" % fields.get("Seccomp"))
    exe = ns.sh("readlink /proc/%s/exe" % pid).out.strip()
    if exe != installed_bin:
        problems.append("runs %r, not the installed %s" % (exe,
                                                             installed_bin))
    tap.check("it runs as user dmarcd, no capabilities, NoNewPrivileges, "
              "a seccomp filter, the installed binary", problems)
    tap.note("systemd-analyze security: " + ns.sh(
        "systemd-analyze security --no-pager dmarcd.service | tail -1").out)

    # New mail while it runs (IDLE inside the sandbox).
    before = stored()
    dc.deliver_bytes(mails[1])
    got = wait_for(lambda: stored() > before, timeout=60)
    tap.check("a mail delivered while it runs is stored",
              [] if got else ["still %d report(s) after 60 s" % stored()])

    # [api] listen set: the daemon serves the API and the status page
    # itself (dmarcd-serve.service is for the timer style).
    # The README's token: the daemon's login (dmarcd_ingest) may not
    # make one (exit 77); `runuser -u postgres -- dmarcd token add NAME
    # --db ...` may, with /etc/dmarcd closed to postgres.
    r = ns.sh("runuser -u dmarcd -- %s token add by-daemon" % installed_bin)
    tap.check("user dmarcd (dmarcd_ingest) cannot make an API token: "
              "exit 77, naming dmarcd_admin",
              [] if r.rc == 77 and "dmarcd_admin" in r.err and
              r.out.strip() == "" else [r.describe()])
    r = ns.sh("runuser -u postgres -- %s token add systemd-test --db '%s'"
              % (installed_bin, cluster.conninfo_for(db.name)))
    tap.check("user postgres makes the API token as the README says",
              [] if r.rc == 0 else [r.describe()])
    token = r.out.strip().splitlines()[-1] if r.rc == 0 and r.out.strip() \
        else ""
    base = "http://127.0.0.1:%d" % api_port
    ok = wait_for(lambda: http_get(base + "/healthz")[0] == 200,
                  timeout=30)
    code, hdrs, _ = http_get(base + "/", {
        "Authorization": "Basic " + base64.b64encode(
            ("admin:" + token).encode()).decode()})
    tap.check("with [api] listen, dmarcd.service serves the API and the "
              "status page too",
              [] if ok and code == 200 else
              ["healthz %s, / %s: %s" % (ok, code, ns.journal(
                  "dmarcd.service")[-600:])])

    journal = ns.journal("dmarcd.service")
    problems = [e for e in ("event=started", "event=fetched")
                if e not in journal]
    tap.check("its log is in the journal (journalctl -u dmarcd)",
              ["no %s in: %s" % (e, journal[-800:]) for e in problems])

    r = ns.systemctl("reload", "dmarcd.service")
    got = wait_for(lambda: "event=reloaded" in ns.journal("dmarcd.service"),
                   timeout=20)
    st = ns.show("dmarcd.service", "ActiveState")
    problems = []
    if r.rc != 0:
        problems.append("systemctl reload: " + r.describe())
    if not got:
        problems.append("no event=reloaded in the journal")
    if st.get("ActiveState") != "active":
        problems.append("after reload: %s" % st.get("ActiveState"))
    tap.check("systemctl reload rereads the configuration (SIGHUP)",
              problems)

    r = ns.systemctl("stop", "dmarcd.service")
    st = ns.show("dmarcd.service", "ActiveState", "Result",
                 "ExecMainStatus")
    problems = []
    if st.get("ActiveState") != "inactive" or st.get("Result") != "success":
        problems.append("after stop: %s, result %s, exit %s" % (
            st.get("ActiveState"), st.get("Result"),
            st.get("ExecMainStatus")))
    tap.check("systemctl stop ends it cleanly (SIGTERM, exit 0)", problems)

    # The cron style: one pass, and the timer.
    before = stored()
    dc.deliver_bytes(mails[2])
    r = ns.systemctl("start", "dmarcd-fetch.service", timeout=300)
    st = ns.show("dmarcd-fetch.service", "Result", "ExecMainStatus")
    problems = []
    if r.rc != 0 or st.get("Result") != "success":
        problems.append("dmarcd-fetch.service: %s, exit %s: %s" % (
            st.get("Result"), st.get("ExecMainStatus"),
            ns.journal("dmarcd-fetch.service")[-800:]))
    if stored() <= before:
        problems.append("nothing stored by the pass")
    tap.check("dmarcd-fetch.service does one pass and succeeds", problems)

    r = ns.systemctl("start", "dmarcd-fetch.timer")
    st = ns.show("dmarcd-fetch.timer", "ActiveState",
                 "NextElapseUSecRealtime", "NextElapseUSecMonotonic")
    nxt = (st.get("NextElapseUSecRealtime") or "") + \
        (st.get("NextElapseUSecMonotonic") or "")
    tap.check("dmarcd-fetch.timer is active and has a next run",
              [] if st.get("ActiveState") == "active" and
              nxt.strip("0 ") else ["timer: %r" % st])

    # The API and the status page, as the read-only role, beside the
    # timer (dmarcd.service is stopped: it would hold the address).
    r = ns.systemctl("start", "dmarcd-serve.service")
    ok = wait_for(lambda: http_get(base + "/healthz")[0] == 200,
                  timeout=30)
    problems = []
    if not ok:
        problems.append("no 200 from /healthz: %s" %
                        ns.journal("dmarcd-serve.service")[-800:])
    else:
        code, _, body = http_get(base + "/v1/domains", {
            "Authorization": "Bearer " + token})
        if code != 200:
            problems.append("GET /v1/domains: %s %r" % (code, body[:200]))
        code, hdrs, body = http_get(base + "/", {
            "Authorization": "Basic " + base64.b64encode(
                ("admin:" + token).encode()).decode()})
        ctype = {k.lower(): v for k, v in hdrs.items()}.get(
            "content-type", "")
        if code != 200 or "text/html" not in ctype:
            problems.append("GET /: %s %s" % (code, ctype))
        code, _, _ = http_get(base + "/")
        if code != 401:
            problems.append("GET / without a token: %s, not 401" % code)
    tap.check("dmarcd-serve.service answers the API and the status page",
              problems)
    ns.systemctl("stop", "dmarcd-serve.service")

    # A broken configuration: exit 64 (EX_USAGE: the command line or its
    # configuration), not restarted in a loop.
    ns.sh("printf '\\n[database]\\nno_such_key = 1\\n' >> "
          "/etc/dmarcd/dmarcd.conf")
    ns.systemctl("reset-failed", "dmarcd.service")
    ns.systemctl("start", "dmarcd.service")
    time.sleep(3)
    st = ns.show("dmarcd.service", "ActiveState", "ExecMainStatus",
                 "NRestarts")
    problems = []
    if st.get("ActiveState") != "failed" or st.get("ExecMainStatus") != "64":
        problems.append("state %s, exit %s" % (st.get("ActiveState"),
                                               st.get("ExecMainStatus")))
    if st.get("NRestarts") not in ("0", None):
        problems.append("restarted %s times" % st.get("NRestarts"))
    journal = ns.journal("dmarcd.service")
    if "no_such_key" not in journal:
        problems.append("the journal does not name the bad key")
    tap.check("a broken configuration fails with 64, named in the "
              "journal, not restarted", problems)
    ns.kill()


if __name__ == "__main__":
    h.run_main(main)
