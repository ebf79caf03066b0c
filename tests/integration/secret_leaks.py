#!/usr/bin/env python3
"""secret_leaks.py - no secret ever leaves in a log line, and secret files
that others could read (or, for root, that another user owns) are
refused.

Not named secrets.py: this directory is on sys.path, and the standard
library's secrets module (imapharness uses it) must stay reachable.

Prints TAP; skipped without PostgreSQL (the Dovecot part without
Dovecot). Distinctive secrets are planted everywhere dmarcd takes one:
the password of [database] conninfo and --db, of [api] database, the
IMAP password (a wrong one, in password_file), the webhook URL (in
webhook_file) and the webhook key (secret_file). Every command runs with
[log] level = debug and syslog = true, inside a private mount namespace
(unshare -m) where /dev/log is a socket of this test, so that what goes
to syslog is read too; without unshare (not root) syslog is not checked
and says so.

Checked, with the names docs/security.md cites:
  no secret: COMMAND       parse, ingest, fetch and run (Dovecot: one
        account with a wrong password, one with the right one), serve
        (requests with a good, a wrong and a mangled token, SIGTERM),
        check, alerts (a webhook answering 500), migrate (a database
        that does not exist, with a password): none of the secrets in
        stdout, stderr or a syslog line; for run, the command that logs
        to syslog, the lines looked for came (so that the absence of a
        secret is no accident).
  webhook: signed, key not sent   the webhook got the HMAC signature
        header, never the key.
  secret file: mode NNNN   a secret file readable or writable by group
        or others (0640, 0604, 0620) is refused: exit 64 (EX_USAGE, the
        exit of every configuration error in dmarcd), a message naming
        the file and its mode, never its content.
  secret file: owner       run as root, a secret file of mode 0600 owned
        by another user is refused, naming the file.
  inline secret: KEY, mode NNNN   a secret written in the configuration
        itself ([account] password, oauth2_client_secret,
        oauth2_refresh_token, [alerts] webhook, a [database] conninfo,
        api_conninfo or [api] database with a password) in a file of mode
        0644 or 0640 is refused: exit 64, the message names the file, the
        key and the fix (chmod 600, or the key's _file / a passfile), never
        the value; the same file at 0600 is accepted.
  inline secret: none, 0644  a configuration with no secret in it (a
        conninfo without a password, *_file keys) is accepted at 0644.
  as root: ...   run as root: a secret file reached through a symbolic
        link, a configuration that is a symbolic link, one another user
        owns (pointing at root's secret file: what it would read is never
        shown) and one that group may write are refused (exit 64, naming
        the file); root's own 0644 configuration is accepted.
"""
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

SECRETS = {
    "db": "dbpw-Zq7x9SecretDb",
    "api_db": "apidbpw-Zq7x9SecretApi",
    "imap": "imappw-Zq7x9SecretImap",
    "hook_url": "hookurl-Zq7x9SecretPath",
    "hook_key": "hookkey-Zq7x9SecretKey",
    "oauth_secret": "oauthsecret-Zq7x9Client",
    "oauth_refresh": "oauthrefresh-Zq7x9Token",
}


SANITIZER_REPORT = re.compile(r"AddressSanitizer|LeakSanitizer|"
                              r"runtime error:|ThreadSanitizer")


def write_secret(path, value, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, mode)
    return path


class Syslog:
    """A datagram socket standing in for /dev/log in a private mount
    namespace; lines() is everything it received."""

    def __init__(self, work):
        self.path = os.path.join(work, "log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.received = []
        self.stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.works = self._probe()

    def _read(self):
        while not self.stop:
            try:
                self.received.append(self.sock.recv(65536))
            except socket.timeout:
                continue
            except OSError:
                return

    def wrap(self, argv):
        """argv run with this socket as /dev/log (its real target, a
        tmpfs over the top directory when /dev/log is a link)."""
        target = os.path.realpath("/dev/log")
        if target == "/dev/log":
            script = 'mount --bind "$0" /dev/log && exec "$@"'
        else:
            top = "/" + target.strip("/").split("/")[0]
            script = ('mount -t tmpfs tmpfs %s && mkdir -p %s && '
                      ': > %s && mount --bind "$0" %s && exec "$@"'
                      % (top, os.path.dirname(target), target, target))
        return ["unshare", "-m", "sh", "-c", script, self.path] + \
            [str(a) for a in argv]

    def _probe(self):
        if os.getuid() != 0 or not any(
                os.access(os.path.join(d, "unshare"), os.X_OK)
                for d in os.environ.get("PATH", "").split(":")):
            return False
        r = h.run(self.wrap(["logger", "-t", "dmarcd-probe", "probe"]),
                  timeout=30)
        time.sleep(0.3)
        return r.rc == 0 and any(b"dmarcd-probe" in x for x in
                                 self.received)

    def text(self):
        time.sleep(0.3)
        return b"\n".join(self.received).decode("utf-8", "replace")

    def clear(self):
        self.received = []


class Hook(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hook.seen.append((self.path, dict(self.headers), body))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def f_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def leaks(*texts):
    """The names of the secrets found in any of texts."""
    found = []
    for name, value in SECRETS.items():
        for t in texts:
            if t and value in t:
                found.append(name)
                break
    return found


def load(d, conf, db):
    """A command that reads conf and connects (with --db): 0 or 1 when
    the configuration is accepted (migrate --status: 1 is pending)."""
    return h.run([d, "migrate", "--status", "--config", conf, "--db", db],
                 timeout=60)


def inline_secrets(tap, env, d, sdir, db, conninfo, api_conninfo):
    """Each key that holds a secret, written in the configuration: refused
    in a file group or others may read, accepted at 0600."""
    token = write_secret(os.path.join(sdir, "oauth.refresh"),
                         SECRETS["oauth_refresh"])
    account = ("[account a]\nhost = imap.example.com\nuser = u\n")
    oauth = (account + "oauth2_token_url = https://oauth.example.com/t\n"
             "oauth2_client_id = client-id\n")
    cases = [
        ("[account a] password", account + "password = %s\n"
         % SECRETS["imap"], "password_file"),
        ("[account a] oauth2_client_secret", oauth +
         "oauth2_client_secret = %s\noauth2_refresh_token_file = %s\n"
         % (SECRETS["oauth_secret"], token), "oauth2_client_secret_file"),
        ("[account a] oauth2_refresh_token", oauth +
         "oauth2_refresh_token = %s\n" % SECRETS["oauth_refresh"],
         "oauth2_refresh_token_file"),
        ("[alerts] webhook", "[alerts]\nwebhook = http://127.0.0.1:9/%s\n"
         % SECRETS["hook_url"], "webhook_file"),
        ("[database] conninfo", "[database]\nconninfo = %s\n" % conninfo,
         "passfile"),
        ("[database] api_conninfo", "[database]\napi_conninfo = %s\n"
         % api_conninfo, "passfile"),
        ("[api] database", "[api]\ndatabase = %s\n" % api_conninfo,
         "passfile"),
    ]
    for n, (key, text, fix) in enumerate(cases):
        conf = os.path.join(env.work, "inline%d.conf" % n)
        with open(conf, "w") as f:
            f.write(text)
        for mode in (0o644, 0o640):
            os.chmod(conf, mode)
            r = load(d, conf, db)
            problems = []
            if r.rc != 64:
                problems.append("exit %s, not 64" % r.rc)
            for want in (conf + ":", key + ":", "(mode %04o)" % mode,
                         "chmod 600 " + conf, fix):
                if want not in r.err:
                    problems.append("stderr lacks %r" % want)
            problems += ["%s in the output" % s for s in leaks(r.out,
                                                                r.err)]
            tap.check("inline secret: %s, mode %04o refused (exit 64, the "
                      "file, the key and the fix named, not the value)"
                      % (key, mode),
                      problems + ([r.describe()] if problems else []))
        os.chmod(conf, 0o600)
        r = load(d, conf, db)
        tap.check("inline secret: %s, mode 0600 accepted" % key,
                  [] if r.rc in (0, 1) and not leaks(r.out, r.err) else
                  [r.describe()])
    # No secret in the file: 0644 is fine.
    conf = os.path.join(env.work, "inline-none.conf")
    with open(conf, "w") as f:
        f.write("[database]\nconninfo = %s\n\n" % db + account +
                "password_file = %s\n" % write_secret(
                    os.path.join(sdir, "inline.pass"), SECRETS["imap"]))
    os.chmod(conf, 0o644)
    r = load(d, conf, db)
    tap.check("inline secret: none, 0644 accepted (a conninfo without a "
              "password, a password_file)",
              [] if r.rc in (0, 1) else [r.describe()])


def root_rules(tap, env, d, sdir, db):
    """As root: no link at the end of a path, the configuration root's
    and writable by root only."""
    names = ["as root: a secret file through a symbolic link refused",
             "as root: a configuration that is a symbolic link refused",
             "as root: a configuration another user owns refused",
             "as root: a configuration group may write refused",
             "as root: root's own configuration, mode 0644, accepted"]
    if os.geteuid() != 0:
        for name in names:
            tap.skip(name, "not running as root")
        return
    key = write_secret(os.path.join(sdir, "root.key"), SECRETS["hook_key"])
    url = write_secret(os.path.join(sdir, "root.url"),
                       "http://127.0.0.1:9/%s" % SECRETS["hook_url"])
    key_link = os.path.join(sdir, "root-link.key")
    os.symlink(key, key_link)

    def conf_with(name, secret_path, mode=0o644):
        path = os.path.join(env.work, name)
        with open(path, "w") as f:
            f.write("[alerts]\nwebhook_file = %s\nsecret_file = %s\n"
                    % (url, secret_path))
        os.chmod(path, mode)
        return path

    def refused(name, r, *wants):
        problems = [] if r.rc == 64 else ["exit %s, not 64" % r.rc]
        problems += ["stderr lacks %r" % w for w in wants if w not in r.err]
        problems += ["%s in the output" % s for s in leaks(r.out, r.err)]
        tap.check(name, problems + ([r.describe()] if problems else []))

    conf = conf_with("root-linked-key.conf", key_link)
    refused(names[0], load(d, conf, db), key_link, "symbolic link",
            "secret_file")
    real = conf_with("root-real.conf", key)
    conf_link = os.path.join(env.work, "root-link.conf")
    os.symlink(real, conf_link)
    refused(names[1], load(d, conf_link, db), conf_link, "symbolic link")
    # Another user's configuration pointing at root's secret: refused
    # before that file is read.
    other = conf_with("root-other.conf", key)
    os.chown(other, 65534, 65534)
    refused(names[2], load(d, other, db), other, "uid 65534",
            "chown root")
    writable = conf_with("root-writable.conf", key, 0o664)
    refused(names[3], load(d, writable, db), writable, "writable by group",
            "chmod go-w")
    r = load(d, real, db)
    tap.check(names[4], [] if r.rc in (0, 1) and not leaks(r.out, r.err)
              else [r.describe()])


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.psql("CREATE ROLE dmarcd_secret_api LOGIN IN ROLE dmarcd_reader")
    if r.rc != 0:
        raise RuntimeError(r.describe())
    log = Syslog(env.work)
    tap.note("syslog captured: %s" % ("yes (unshare -m, /dev/log)"
                                      if log.works else "no"))

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    sdir = os.path.join(env.work, "secrets")
    os.makedirs(sdir)
    files = {
        "url": write_secret(os.path.join(sdir, "hook.url"),
                            "http://127.0.0.1:%d/%s" % (
                                hook.server_address[1],
                                SECRETS["hook_url"])),
        "key": write_secret(os.path.join(sdir, "hook.key"),
                            SECRETS["hook_key"]),
        "imap": write_secret(os.path.join(sdir, "imap.pass"),
                             SECRETS["imap"]),
    }
    conninfo = cluster.conninfo_for(db.name, extra="password=%s"
                                    % SECRETS["db"])
    api_conninfo = cluster.conninfo_for(db.name, user="dmarcd_secret_api",
                                        extra="password=%s"
                                        % SECRETS["api_db"])
    base = ("[database]\nconninfo = %s\n\n[log]\nlevel = debug\n"
            "syslog = true\n\n[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n"
            "\n[alerts]\nwebhook_file = %s\nsecret_file = %s\n"
            "min_messages = 1\n\n" % (conninfo, api_conninfo,
                                      files["url"], files["key"]))
    config = os.path.join(env.work, "secrets.conf")
    with open(config, "w") as f:
        f.write(base)
    os.chmod(config, 0o600)

    def run(name, argv, expect_rc=None, logs=False):
        log.clear()
        wrapped = log.wrap(argv) if log.works else argv
        r = h.run(wrapped, timeout=120)
        syslog = log.text()
        problems = ["%s in the output or the log" % s
                    for s in leaks(r.out, r.err, syslog)]
        if SANITIZER_REPORT.search(r.err):
            problems.append("a sanitizer report")
        if expect_rc is not None and r.rc not in expect_rc:
            problems.append("exit %s" % r.rc)
        if logs and log.works and "dmarcd" not in syslog:
            problems.append("no syslog line at all (is the check blind?)")
        tap.check("no secret: %s" % name,
                  problems + ([r.describe(), syslog[-2000:]]
                              if problems else []))
        return r

    d = env.dmarcd
    sample = os.path.join(env.samples, "google-example.com.xml")
    run("parse", [d, "parse", sample], (0,))
    run("ingest", [d, "ingest", "--config", config, "--db", conninfo,
                   env.samples], (0, 65))
    run("migrate: a database that does not exist",
        [d, "migrate", "--config", config, "--db",
         cluster.conninfo_for("nosuch", extra="password=%s"
                              % SECRETS["db"])], None)
    run("check", [d, "check", "example.com", "--config", config,
                  "--resolver", "127.0.0.1:9", "--timeout", "2",
                  "--no-reports"], None)
    # An alert waiting to be sent (the samples are too old to raise one).
    r = db.psql("INSERT INTO dmarcd.alerts (domain, kind, key, detail) "
                "VALUES ('example.com', 'new_reporter', 'probe.example', "
                "'{\"org_name\": \"probe.example\"}')")
    if r.rc != 0:
        raise RuntimeError(r.describe())
    Hook.seen = []
    run("alerts: the webhook answers 500", [d, "alerts", "--config",
                                            config], None)
    tap.check("webhook: signed, key not sent",
              [] if Hook.seen and all(
                  any(k.lower() == "x-dmarcd-signature" for k in hd) and
                  not leaks(str(hd), body.decode("utf-8", "replace"))
                  for _, hd, body in Hook.seen) else
              ["requests: %r" % Hook.seen[:2]])

    # serve: requests with a bad and a good token, then SIGTERM.
    tok = db.dmarcd("token", "add", "secrets-test")
    if tok.rc != 0:
        raise RuntimeError(tok.describe())
    SECRETS["token"] = tok.out.strip()
    log.clear()
    err_path = os.path.join(env.work, "serve.err")
    with open(err_path, "wb") as err:
        argv = [d, "serve", "--config", config]
        p = subprocess.Popen(log.wrap(argv) if log.works else argv,
                             stdout=err, stderr=err,
                             stdin=subprocess.DEVNULL, env=h.clean_env())
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            time.sleep(0.1)
            with open(err_path, "rb") as f:
                m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", f.read())
            m = m or re.search(r"listening on 127\.0\.0\.1:(\d+)",
                               log.text())
            if m:
                port = int(m.group(1))
        if port is None:
            raise RuntimeError("serve did not start: %s %s" % (
                open(err_path, "rb").read(), log.text()))
        for t in (SECRETS["token"], "dmarcd_" + "C" * 43,
                  SECRETS["token"] + "x"):
            req = urllib.request.Request(
                "http://127.0.0.1:%d/v1/domains" % port,
                headers={"Authorization": "Bearer " + t})
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except Exception:
                pass
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(err_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    syslog = log.text()
    tap.check("no secret: serve (a good, a wrong and a mangled token)",
              ["%s in the output or the log" % s
               for s in leaks(out, syslog)] +
              (["a sanitizer report"] if SANITIZER_REPORT.search(out)
               else []) +
              ([] if "listening" in out + syslog else ["no log at all"]))

    # fetch, against Dovecot with a wrong password.
    try:
        import imapharness as ih
        why = ih.dovecot_missing()
    except Exception as ex:
        why = repr(ex)
    if why:
        tap.skip("no secret: fetch (a wrong IMAP password)", why)
    else:
        dc = ih.Dovecot(env)
        with open(sample, "rb") as f:
            dc.deliver_bytes(ih.report_mail(f.read(), "secrets.xml"))
        # Account good logs in and stores (so that syslog has lines to
        # look at), account bad has the wrong password.
        os.makedirs(os.path.join(sdir, "good"))
        good = ih.account_settings(dc, os.path.join(sdir, "good"))
        conf = ih.write_config(env, "fetch.conf", dc, conninfo,
                               account="bad", password_file=files["imap"],
                               accounts={"good": good},
                               sections={"log": {"level": "debug",
                                                 "syslog": "true"}})
        r = run("fetch (a wrong IMAP password, and a right one)",
                [d, "fetch", "--config", conf], None)
        tap.check("fetch: the wrong password is refused, the right one "
                  "logs in",
                  [] if r.rc not in (0, None) and "refused" in r.err and
                  "good/INBOX" in r.out else [r.describe()])
        # dmarcd run, the daemon, is what logs to syslog: both accounts,
        # the API and the alerts, a few seconds, then SIGTERM.
        dc.deliver_bytes(ih.report_mail(f_bytes(sample), "secrets2.xml"))
        with open(conf, "a") as f:
            f.write("\n[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n"
                    "\n[alerts]\nwebhook_file = %s\nsecret_file = %s\n"
                    % (api_conninfo, files["url"], files["key"]))
        log.clear()
        err_path = os.path.join(env.work, "run.err")
        with open(err_path, "wb") as err:
            p = subprocess.Popen(log.wrap([d, "run", "--config", conf])
                                 if log.works else [d, "run", "--config",
                                                    conf],
                                 stdout=err, stderr=err,
                                 stdin=subprocess.DEVNULL,
                                 env=h.clean_env())
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (
                    "imap_error" in log.text() and
                    "connected" in log.text()):
                time.sleep(0.5)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        with open(err_path, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        syslog = log.text()
        problems = ["%s in the output or the log" % s
                    for s in leaks(out, syslog)]
        if SANITIZER_REPORT.search(out):
            problems.append("a sanitizer report")
        if log.works and not ("imap_error" in syslog and
                              "connected" in syslog):
            problems.append("syslog lacks the lines looked for "
                            "(imap_error, connected): is the check blind?")
        tap.note("dmarcd run: %d syslog lines" % len(log.received))
        tap.check("no secret: run (the daemon: a wrong IMAP password, a "
                  "right one, the API, alerts; syslog at debug)",
                  problems + ([out[-2000:], syslog[-3000:]]
                              if problems else []))

    # Secret files others may use are refused, naming the file.
    for mode in (0o640, 0o604, 0o620):
        bad = write_secret(os.path.join(sdir, "bad-%o.key" % mode),
                           SECRETS["hook_key"], mode)
        conf = os.path.join(env.work, "bad-%o.conf" % mode)
        with open(conf, "w") as f:
            f.write("[alerts]\nwebhook = http://127.0.0.1:9/\n"
                    "secret_file = %s\n" % bad)
        os.chmod(conf, 0o600)   # the webhook, written here, is a secret
        r = h.run([d, "alerts", "--dry-run", "--config", conf, "--db",
                   conninfo], timeout=60)
        tap.check("secret file: mode %04o refused (exit 64, naming the "
                  "file and its mode)" % mode,
                  [] if r.rc == 64 and bad in r.err and
                  ("%04o" % mode) in r.err and not leaks(r.out, r.err) else
                  [r.describe()])
    if os.getuid() == 0:
        other = write_secret(os.path.join(sdir, "other.key"),
                             SECRETS["hook_key"])
        os.chown(other, 65534, 65534)
        conf = os.path.join(env.work, "other.conf")
        with open(conf, "w") as f:
            f.write("[alerts]\nwebhook = http://127.0.0.1:9/\n"
                    "secret_file = %s\n" % other)
        os.chmod(conf, 0o600)
        r = h.run([d, "alerts", "--dry-run", "--config", conf, "--db",
                   conninfo], timeout=60)
        tap.check("secret file: owner, root refuses another user's file",
                  [] if r.rc == 64 and other in r.err and
                  "uid 65534" in r.err and not leaks(r.out, r.err) else
                  [r.describe()])
    else:
        tap.skip("secret file: owner, root refuses another user's file",
                 "not running as root")
    inline_secrets(tap, env, d, sdir, cluster.conninfo_for(db.name),
                   conninfo, api_conninfo)
    root_rules(tap, env, d, sdir, cluster.conninfo_for(db.name))
    hook.shutdown()
    log.stop = True


if __name__ == "__main__":
    h.run_main(main)
