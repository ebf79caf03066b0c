"""imapharness.py - what the IMAP integration tests share.

A real Dovecot, no mocks: Dovecot() runs tests/integration/dovecot.sh to
start a throwaway Dovecot 2.3 (IMAP with STARTTLS and IMAPS on free ports
of 127.0.0.1, its own CA, user test / secret, maildirs in a temporary
directory). It is always stopped and its directory removed: atexit, also
on SIGTERM, SIGINT and SIGHUP. OAuthServer() is a small OAuth 2.0
authorization server on 127.0.0.1 (the refresh_token grant at /token, and
the RFC 7662 introspection Dovecot asks at /introspect), so that XOAUTH2
is tested end to end.

    import pgharness as h
    import imapharness as ih

    def main(tap):
        env = ih.setup()          # pgharness.setup(), skips without Dovecot
        cluster = h.Cluster(env)
        db = cluster.new_db()
        dc = ih.Dovecot(env)      # or Dovecot(env, nomove=True, ...)
        dc.deliver(path)          # a mail file into INBOX
        conf = ih.write_config(env, "a.conf", dc, db.conninfo)
        r = db.dmarcd("fetch", config=conf)
        dc.count("dmarcd-processed"), dc.folders(), dc.commands()

    h.run_main(main)

Dovecot options (see dovecot.sh): nomove (MOVE not advertised), noidle
(IDLE not advertised), oauth2_url (XOAUTH2 and OAUTHBEARER through that
introspection URL), sni (the certificate chosen by SNI: without SNI for
localhost, Dovecot serves one for wrong.example). kill() is SIGKILL to
Dovecot's master and every process it started (a session would outlive
the master alone), restart() starts it again in place: same ports, same
certificate, same mail. deliver(), count(), status(), folders(),
message_ids() and uids() go through doveadm, which needs Dovecot running
(it asks the auth process for the user); messages() logs in over IMAPS
and returns each message as IMAP serves it. What the server saw:
login_lines() (Dovecot's log) and commands() (every command a client
sent after login, from rawlog_dir); before login, login_sessions() (the
bytes each client sent, from imap-login's rawlog: text without TLS, else
the TLS records), login_commands() (their text lines before any TLS) and
client_hello_sni() (the server name a TLS ClientHello asked for);
served_names() is what certificate Dovecot serves to a handshake with or
without SNI.

write_config() writes a dmarcd.conf with an [account] for that Dovecot
(docs/imap.md), password or OAuth2 secrets in files of mode 0600;
report_mail() wraps a report in a mail as receivers send it; Running
runs `dmarcd run` (or a fetch to be killed) in the background and
collects its output.

Environment: as pgharness, plus DOVECOT (the binary; default: dovecot on
PATH, else /usr/sbin/dovecot). Python 3 standard library only.
"""
import atexit
import base64
import email.mime.application
import email.mime.multipart
import email.mime.text
import email.utils
import glob
import gzip
import http.server
import imaplib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DOVECOT_SH = os.path.join(HERE, "dovecot.sh")
PROCESSED = "dmarcd-processed"
REJECTED = "dmarcd-rejected"


def _quote(mailbox):
    return '"%s"' % mailbox.replace("\\", "\\\\").replace('"', '\\"')


def _find(name):
    for path in (shutil.which(name), "/usr/sbin/" + name,
                 "/usr/bin/" + name):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _on_signal(signum, frame):
    # SystemExit runs the atexit handlers: Dovecot is stopped.
    raise SystemExit(128 + signum)


def _handle_signals():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(s, _on_signal)


def dovecot_missing():
    """Why Dovecot cannot run here, or None."""
    dovecot = os.environ.get("DOVECOT") or _find("dovecot")
    if not dovecot or not os.access(dovecot, os.X_OK):
        return "no dovecot binary (Debian: dovecot-core, dovecot-imapd)"
    if not os.path.exists("/usr/lib/dovecot/imap") and \
            not glob.glob("/usr/lib*/dovecot/imap") and \
            not glob.glob("/usr/libexec/dovecot/imap"):
        return "no Dovecot IMAP server (Debian: dovecot-imapd)"
    if not _find("doveadm"):
        return "no doveadm binary"
    if not _find("openssl"):
        return "no openssl binary (to make the test certificates)"
    if os.getuid() == 0:
        import pwd
        for user in ("nobody", "dovecot", "dovenull"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return "running as root without user %s for Dovecot" % user
    return None


def setup(need_fetch=True):
    """pgharness.setup(), then skip the whole test file (exit 0) when
    Dovecot is missing, or (need_fetch) when this dmarcd has no `fetch`
    command."""
    env = h.setup()
    why = dovecot_missing()
    if why:
        h.skip_all(why)
    if need_fetch:
        r = h.run([env.dmarcd, "help", "fetch"], timeout=30)
        if r.rc != 0:
            h.skip_all("this dmarcd has no fetch command (dmarcd help "
                       "fetch: exit %s)" % r.rc)
    _handle_signals()
    return env


class Dovecot:
    """A throwaway Dovecot, stopped at exit. Attributes after start: port
    (STARTTLS), imaps_port, host ("localhost"), alt_host (127.0.0.2: a
    loopback address the certificate does not name), user, password, ca
    (the CA that signed the server's certificate), other_ca (an unrelated
    CA), conf, log_path, rawlog and login_rawlog (directories), pid,
    dir."""

    def __init__(self, env=None, nomove=False, noidle=False,
                 oauth2_url=None, sni=False):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="dmarcd-dovecot.")
        self.stopped = False
        atexit.register(self.stop)
        _handle_signals()
        self.options = {}
        if nomove:
            self.options["DOVECOT_NOMOVE"] = "1"
        if noidle:
            self.options["DOVECOT_NOIDLE"] = "1"
        if oauth2_url:
            self.options["DOVECOT_OAUTH2_URL"] = oauth2_url
        if sni:
            self.options["DOVECOT_SNI"] = "1"
        self._read_env(self._sh("start"))

    def _sh(self, *args, input_path=None, check=True):
        env = h.clean_env()
        for k in ("DOVECOT_NOMOVE", "DOVECOT_NOIDLE", "DOVECOT_OAUTH2_URL",
                  "DOVECOT_SNI"):
            env.pop(k, None)
        env.update(self.options)
        env["PYTHON3"] = sys.executable
        dovecot = os.environ.get("DOVECOT")
        if dovecot:
            env["PATH"] = os.path.dirname(dovecot) + ":" + env["PATH"]
        elif not shutil.which("dovecot", path=env.get("PATH")):
            env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        stdin = open(input_path, "rb") if input_path else subprocess.DEVNULL
        try:
            p = subprocess.run(["sh", DOVECOT_SH, args[0], self.dir] +
                               list(args[1:]), stdin=stdin,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=120)
        finally:
            if input_path:
                stdin.close()
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise RuntimeError("dovecot.sh %s: exit %d: %s" % (
                " ".join(args), p.returncode, err.strip()))
        return out

    def _read_env(self, out):
        v = {}
        for line in out.splitlines():
            k, sep, val = line.partition("=")
            if sep:
                v[k] = val
        self.vars = v
        self.host = v["IMAP_HOST"]
        self.alt_host = v["IMAP_ALT_HOST"]
        self.port = int(v["IMAP_PORT"])
        self.imaps_port = int(v["IMAPS_PORT"])
        self.user = v["IMAP_USER"]
        self.password = v["IMAP_PASS"]
        self.ca = v["IMAP_CA"]
        self.other_ca = v["OTHER_CA"]
        self.conf = v["DOVECOT_CONF"]
        self.log_path = v["DOVECOT_LOG"]
        self.rawlog = v["DOVECOT_RAWLOG"]
        self.login_rawlog = v["DOVECOT_LOGIN_RAWLOG"]
        self.pid = int(v["DOVECOT_PID"])

    # Mail.
    def deliver(self, path, folder="INBOX"):
        """Save the mail file at path into folder (doveadm save)."""
        self._sh("deliver", path, folder, input_path=path)

    def deliver_bytes(self, data, folder="INBOX"):
        fd, path = tempfile.mkstemp(prefix="mail.", dir=self.dir)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            self.deliver(path, folder)
        finally:
            os.unlink(path)

    def doveadm(self, *args):
        return h.run([_find("doveadm") or "doveadm", "-c", self.conf] +
                     list(args), timeout=60)

    def count(self, folder="INBOX"):
        """Messages in folder; None when the folder does not exist."""
        return self.status("messages", folder)

    def status(self, field, folder="INBOX"):
        """A number of doveadm mailbox status (messages, uidvalidity,
        uidnext...); None when the folder does not exist."""
        r = self.doveadm("mailbox", "status", "-u", self.user, field,
                         folder)
        if r.rc != 0:
            if "not exist" in r.err or "Mailbox doesn't exist" in r.err:
                return None
            raise RuntimeError("doveadm mailbox status: " + r.describe())
        m = re.search(r"%s=(\d+)" % re.escape(field), r.out)
        if not m:
            raise RuntimeError("doveadm mailbox status: " + r.describe())
        return int(m.group(1))

    def folders(self):
        r = self.doveadm("mailbox", "list", "-u", self.user)
        if r.rc != 0:
            raise RuntimeError("doveadm mailbox list: " + r.describe())
        return sorted(line.strip() for line in r.out.splitlines()
                      if line.strip())

    def counts(self, *folders):
        """{folder: messages or None} of INBOX, the processed and the
        rejected folder, and any more named."""
        names = ("INBOX", PROCESSED, REJECTED) + folders
        return dict((f, self.count(f)) for f in names)

    def message_ids(self, folder="INBOX"):
        """The Message-ID headers of the mails in folder, sorted (a list:
        the same id twice shows)."""
        r = self.doveadm("fetch", "-u", self.user, "hdr.message-id",
                         "mailbox", folder, "all")
        if r.rc != 0:
            if "not exist" in r.err:
                return []
            raise RuntimeError("doveadm fetch: " + r.describe())
        return sorted(m.strip() for m in re.findall(
            r"(?im)^hdr\.message-id:\s*(.*)$", r.out) if m.strip())

    def uids(self, folder="INBOX"):
        r = self.doveadm("search", "-u", self.user, "mailbox", folder, "all")
        if r.rc != 0:
            return []
        return sorted(int(line.split()[1]) for line in r.out.splitlines()
                      if len(line.split()) == 2)

    def imap(self):
        """A logged-in imaplib session (IMAPS, the test CA verified)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        m = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=ctx,
                              timeout=30)
        m.login(self.user, self.password)
        return m

    def messages(self, folder="INBOX"):
        """[(uid, bytes, flags)] of the mails in folder, in UID order, as
        IMAP serves them (BODY.PEEK[]: nothing is marked \\Seen); [] when
        the folder does not exist. Logs in once (a line in log())."""
        m = self.imap()
        try:
            typ, _ = m.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            out = []
            for item in data or []:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode("ascii", "replace")
                uid = re.search(r"UID (\d+)", head)
                flags = re.search(r"FLAGS \(([^)]*)\)", head)
                if uid:
                    out.append((int(uid.group(1)), item[1],
                                flags.group(1).split() if flags else []))
            return sorted(out, key=lambda x: x[0])
        finally:
            try:
                m.logout()
            except Exception:
                pass

    # What the server saw.
    def log(self):
        try:
            with open(self.log_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def login_lines(self, since=0):
        """The log lines of successful logins, after the log's first
        `since` characters: "... Login: user=<test>, method=PLAIN, rip=...,
        lip=..., mpid=..., TLS, session=<...>"."""
        return [line for line in self.log()[since:].splitlines()
                if "imap-login: Info: Login: user=<" in line]

    def logins(self, user=None, since=0):
        """Successful logins of user (default: test) in the log, after
        its first `since` characters."""
        tag = "Login: user=<%s>," % (user or self.user)
        return sum(1 for line in self.login_lines(since) if tag in line)

    def log_size(self):
        return len(self.log())

    def sessions(self):
        """The client side of each logged-in IMAP session (rawlog *.in
        files), oldest first: a list of lists of command lines without the
        timestamp."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.rawlog, "*.in")),
                           key=os.path.getmtime):
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            lines = []
            for line in text.splitlines():
                parts = line.split(" ", 1)
                if len(parts) == 2 and re.match(r"^\d+\.\d+$", parts[0]):
                    lines.append(parts[1])
            out.append(lines)
        return out

    def commands(self):
        """Every command clients sent after login, upper-cased, without
        the tag: ["SELECT INBOX", "UID FETCH 1:* (...)", ...]."""
        out = []
        for session in self.sessions():
            for line in session:
                parts = line.split(" ", 1)
                if len(parts) == 2:
                    out.append(parts[1].upper())
                elif parts and parts[0].upper() == "DONE":
                    out.append("DONE")
        return out

    def clear_rawlog(self):
        for path in glob.glob(os.path.join(self.rawlog, "*")):
            try:
                os.unlink(path)
            except OSError:
                pass

    def login_sessions(self):
        """The bytes each client sent before login (imap-login's rawlog
        *.in files, the timestamps taken out), oldest first; with TLS
        from its ClientHello on as it was on the wire. Connections that
        sent nothing are left out."""
        paths = glob.glob(os.path.join(self.login_rawlog, "*.in"))
        out = []
        for path in sorted(paths, key=lambda p: (os.path.getmtime(p), p)):
            with open(path, "rb") as f:
                data = _unrawlog(f.read())
            if data:
                out.append(data)
        return out

    def login_commands(self):
        """The command lines clients sent before login, without the tag
        (["CAPABILITY", "LOGIN test \"secret\"", "AUTHENTICATE PLAIN",
        ...]): of each session what comes before its TLS. Untagged lines
        (the client's SASL responses) are left out."""
        out = []
        for data in self.login_sessions():
            text = data[:_tls_start(data)].decode("utf-8", "replace")
            for line in text.split("\r\n"):
                parts = line.split(" ", 1)
                if len(parts) == 2:
                    out.append(parts[1])
        return out

    def client_hello_sni(self):
        """For each session of login_sessions() that started TLS (IMAPS,
        or after STARTTLS): the host name its ClientHello asked for, or
        None when it sent no SNI."""
        out = []
        for data in self.login_sessions():
            start = _tls_start(data)
            if start < len(data):
                out.append(_sni(data[start:]))
        return out

    def clear_login_rawlog(self):
        for path in glob.glob(os.path.join(self.login_rawlog, "*")):
            try:
                os.unlink(path)
            except OSError:
                pass

    def served_names(self, sni=None, starttls=False):
        """The DNS names (subjectAltName) of the certificate Dovecot
        serves to a TLS handshake that asks for sni (None: no SNI) over
        IMAPS or STARTTLS; the chain is verified against the test CA, the
        name is not."""
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        port = self.port if starttls else self.imaps_port
        with socket.create_connection(("127.0.0.1", port), 10) as sock:
            if starttls:
                f = sock.makefile("rb")
                f.readline()
                sock.sendall(b"s STARTTLS\r\n")
                while True:
                    line = f.readline()
                    if not line or line.startswith(b"s "):
                        break
                if not line.startswith(b"s OK"):
                    raise RuntimeError("STARTTLS: %r" % line)
            with ctx.wrap_socket(sock, server_hostname=sni) as tls:
                cert = tls.getpeercert()
        return sorted(v for k, v in cert.get("subjectAltName", ())
                      if k == "DNS")

    # Life.
    def kill(self):
        """SIGKILL to the master: every session ends, nothing listens."""
        self._sh("kill")

    def restart(self):
        self._read_env(self._sh("restart"))

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        try:
            self._sh("stop", check=False)
        except Exception:
            pass
        shutil.rmtree(self.dir, True)


_RAWLOG_STAMP = re.compile(rb"^\d+\.\d{6} ")


def _unrawlog(data):
    """A rawlog file (Dovecot's iostream-rawlog: "SECONDS.MICROS " at
    the start and after every LF of the data) as the bytes that were
    sent."""
    lines = data.split(b"\n")
    return b"\n".join(_RAWLOG_STAMP.sub(b"", line, count=1)
                      for line in lines)


def _tls_start(data):
    """Where the first TLS handshake record starts in a client's bytes
    (at the start of a line), len(data) when none does."""
    for m in re.finditer(rb"(?:^|\n)\x16\x03[\x01-\x04]", data):
        return m.start() + (data[m.start():m.start() + 1] == b"\n")
    return len(data)


def _sni(record):
    """The server_name (RFC 6066) of the ClientHello at the start of
    record, None when it has none."""
    def u(data, at, n):
        if at + n > len(data):
            raise ValueError("truncated ClientHello")
        return int.from_bytes(data[at:at + n], "big"), at + n

    if record[:1] != b"\x16" or record[5:6] != b"\x01":
        raise ValueError("no ClientHello: %r" % record[:8])
    at = 5 + 4 + 2 + 32                 # header, type+length, version, random
    n, at = u(record, at, 1)            # session id
    at += n
    n, at = u(record, at, 2)            # cipher suites
    at += n
    n, at = u(record, at, 1)            # compression methods
    at += n
    if at == len(record):
        return None
    total, at = u(record, at, 2)
    end = at + total
    while at + 4 <= end:
        kind, at = u(record, at, 2)
        n, at = u(record, at, 2)
        if kind == 0:                   # server_name
            _, p = u(record, at, 2)     # the list's length
            name_type, p = u(record, p, 1)
            length, p = u(record, p, 2)
            if name_type == 0:
                return record[p:p + length].decode("ascii", "replace")
        at += n
    return None


class OAuthServer:
    """An OAuth 2.0 authorization server on 127.0.0.1, in a thread, stopped
    at exit.

    POST /token, form grant_type=refresh_token, refresh_token, client_id,
    client_secret (or HTTP Basic): {"access_token", "expires_in",
    "token_type": "Bearer"}; a wrong refresh token gives 400
    {"error": "invalid_grant"}, a wrong client 401 {"error":
    "invalid_client"}. POST /introspect, form token=... (Dovecot's
    introspection_mode = post): {"active": true, "username": USER, ...}
    for a token it issued and has not expired, else {"active": false}.

    token_requests, introspections: how often each was called;
    issued: the access tokens handed out. url, token_url,
    introspect_url."""

    def __init__(self, username="test", client_id="dmarcd-test",
                 client_secret=None, refresh_token=None, expires_in=3600):
        self.username = username
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_hex(12)
        self.refresh_token = refresh_token or "1//" + secrets.token_hex(16)
        self.expires_in = expires_in
        self.issued = {}        # token -> expiry (time.time())
        self.token_requests = 0
        self.bad_token_requests = 0
        self.introspections = 0
        self.requests = []      # (time.monotonic(), path, form) of each
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self.reply(405, {"error": "invalid_request"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length > 65536:
                    self.reply(413, {"error": "invalid_request"})
                    return
                raw = self.rfile.read(length).decode("utf-8", "replace")
                form = dict(urllib.parse.parse_qsl(raw,
                                                   keep_blank_values=True))
                path = urllib.parse.urlsplit(self.path).path
                with server.lock:
                    server.requests.append((time.monotonic(), path, form))
                if path == "/token":
                    status, obj = server._token(form, self.headers)
                elif path == "/introspect":
                    status, obj = server._introspect(form)
                else:
                    status, obj = 404, {"error": "not_found"}
                self.reply(status, obj)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.token_url = self.url + "/token"
        self.introspect_url = self.url + "/introspect"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.stopped = False
        atexit.register(self.stop)

    def _token(self, form, headers):
        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                pair = base64.b64decode(auth[6:].strip()).decode()
                client_id, _, client_secret = pair.partition(":")
                client_id = urllib.parse.unquote_plus(client_id)
                client_secret = urllib.parse.unquote_plus(client_secret)
            except Exception:
                client_id = client_secret = None
        with self.lock:
            self.token_requests += 1
            if form.get("grant_type") != "refresh_token":
                self.bad_token_requests += 1
                return 400, {"error": "unsupported_grant_type"}
            if client_id != self.client_id or \
                    client_secret != self.client_secret:
                self.bad_token_requests += 1
                return 401, {"error": "invalid_client"}
            if form.get("refresh_token") != self.refresh_token:
                self.bad_token_requests += 1
                return 400, {"error": "invalid_grant",
                             "error_description": "Token has been "
                             "expired or revoked."}
            token = "ya29." + secrets.token_urlsafe(24)
            self.issued[token] = time.time() + self.expires_in
        return 200, {"access_token": token, "expires_in": self.expires_in,
                     "token_type": "Bearer", "scope": "https://mail."
                     "google.com/"}

    def _introspect(self, form):
        token = form.get("token", "")
        with self.lock:
            self.introspections += 1
            expiry = self.issued.get(token)
        if expiry is None or expiry < time.time():
            return 200, {"active": False}
        return 200, {"active": True, "username": self.username,
                     "client_id": self.client_id, "token_type": "Bearer",
                     "exp": int(expiry), "scope": "https://mail.google.com/"}

    def new_token(self):
        """An access token, as the token endpoint gives one (not counted
        as a token request)."""
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.issued[token] = time.time() + self.expires_in
        return token

    def revoke_all(self):
        with self.lock:
            self.issued.clear()

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self.httpd.shutdown()
        self.httpd.server_close()


def _ini_value(v):
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)


def write_secret(path, text):
    """A file only its owner may read (dmarcd refuses others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def account_settings(dc, directory, tls="imaps", oauth=None, **settings):
    """The keys of an [account] section for Dovecot dc (docs/imap.md):
    host localhost, the port of tls (imaps or starttls), ca_file the test
    CA, user test and a password_file (chmod 600) in directory; with
    oauth (an OAuthServer), auth = xoauth2 and the oauth2_* keys instead
    of the password, each secret in its file. settings override or add
    keys; a key given as None is left out."""
    s = {"host": dc.host,
         "port": dc.imaps_port if tls == "imaps" else dc.port,
         "tls": tls,
         "tls_verify": "yes",
         "ca_file": dc.ca,
         "user": dc.user}
    if oauth is None:
        s["password_file"] = write_secret(
            os.path.join(directory, "imap.pass"), dc.password)
    else:
        s["auth"] = "xoauth2"
        s["oauth2_token_url"] = oauth.token_url
        s["oauth2_client_id"] = oauth.client_id
        s["oauth2_client_secret_file"] = write_secret(
            os.path.join(directory, "client.secret"), oauth.client_secret)
        s["oauth2_refresh_token_file"] = write_secret(
            os.path.join(directory, "refresh.token"), oauth.refresh_token)
    s["mailboxes"] = "INBOX"
    s["processed_folder"] = PROCESSED
    s["rejected_folder"] = REJECTED
    s["timeout"] = 10
    s.update(settings)
    return dict((k, v) for k, v in s.items() if v is not None)


def write_config(env, name, dc, conninfo=None, account="test", tls="imaps",
                 oauth=None, sections=None, accounts=None, **settings):
    """Write $work/NAME, a dmarcd.conf with [database] conninfo (when
    given), one [account ACCOUNT] for Dovecot dc (account_settings) and
    more sections: sections = {"daemon": {"poll_interval": 1}, ...};
    accounts = {NAME: {key: value}} adds more accounts as they are.
    Returns its path."""
    directory = os.path.join(env.work, name + ".d")
    os.makedirs(directory, exist_ok=True)
    lines = []
    if conninfo:
        lines += ["[database]", "conninfo = %s" % conninfo, ""]
    acc = account_settings(dc, directory, tls=tls, oauth=oauth, **settings)
    all_accounts = [(account, acc)] + list((accounts or {}).items())
    for acc_name, keys in all_accounts:
        lines.append("[account %s]" % acc_name)
        for k, v in keys.items():
            if v is not None:
                lines.append("%s = %s" % (k, _ini_value(v)))
        lines.append("")
    for section, keys in (sections or {}).items():
        lines.append("[%s]" % section)
        for k, v in keys.items():
            if v is not None:
                lines.append("%s = %s" % (k, _ini_value(v)))
        lines.append("")
    path = os.path.join(env.work, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, 0o600)
    return path


def report_mail(report, filename, subject=None, message_id=None,
                gzip_it=True, date=None, sender="noreply-dmarc@"
                "receiver.example"):
    """A DMARC aggregate report mail as a receiver sends it: a text part
    and the report (bytes) as an attachment, gzipped unless gzip_it is
    false or it already is. Bytes of the whole mail (CRLF line ends)."""
    msg = email.mime.multipart.MIMEMultipart()
    msg["From"] = sender
    msg["To"] = "dmarc@example.com"
    msg["Subject"] = subject or "Report Domain: example.com Submitter: " \
        "receiver.example Report-ID: %s" % filename
    msg["Date"] = date or email.utils.formatdate(1767225600 + 3600,
                                                 usegmt=True)
    msg["Message-ID"] = message_id or email.utils.make_msgid(
        "dmarcd-test", "receiver.example")
    msg.attach(email.mime.text.MIMEText("This is a DMARC aggregate "
                                        "report.\n", "plain", "us-ascii"))
    data = report
    if gzip_it and not data.startswith(b"\x1f\x8b"):
        data = gzip.compress(data, mtime=0)
        if not filename.endswith(".gz"):
            filename += ".gz"
    if data.startswith(b"\x1f\x8b"):
        subtype = "gzip"
    elif data.startswith(b"PK\x03\x04"):
        subtype = "zip"
    else:
        subtype = "xml"
    part = email.mime.application.MIMEApplication(data, subtype)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    msg.attach(part)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def wait_for(predicate, timeout, step=0.1):
    """Call predicate until it is true or timeout seconds pass: its last
    value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


class Running:
    """A command in the background (dmarcd run, a fetch to be killed):
    threads collect its stdout lines and its stderr as they come, so that
    it never blocks on a full pipe."""

    def __init__(self, argv):
        self.argv = [str(a) for a in argv]
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=h.clean_env())
        self.pid = self.p.pid
        self.out = []
        self.err = []
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._read,
                                         args=(self.p.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._read,
                                         args=(self.p.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()
        atexit.register(self._kill_quietly)

    def _read(self, stream, into):
        for line in iter(stream.readline, b""):
            with self.cond:
                into.append(line.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        stream.close()
        with self.cond:
            self.cond.notify_all()

    def lines(self, prefix=""):
        with self.cond:
            return [l for l in self.out if l.startswith(prefix)]

    def stderr(self):
        with self.cond:
            return "\n".join(self.err)

    def wait_lines(self, prefix, count, timeout):
        """Until count stdout lines start with prefix, the process ends or
        timeout seconds pass: the number of such lines."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                n = sum(1 for l in self.out if l.startswith(prefix))
                left = deadline - time.monotonic()
                if n >= count or left <= 0 or (
                        self.p.poll() is not None and
                        not any(t.is_alive() for t in self.threads)):
                    return n
                self.cond.wait(min(left, 0.2))

    def running(self):
        return self.p.poll() is None

    def signal(self, signum):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, signum)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """The exit status, or None if it still runs after timeout
        seconds; the output is then read to its end."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self.threads:
            t.join(10)
        return rc

    def describe(self):
        return "%s: exit %s\nstdout: %s\nstderr: %s" % (
            " ".join(self.argv), self.p.returncode,
            "\n".join(self.lines())[-2000:], self.stderr()[-2000:])

    def _kill_quietly(self):
        if self.p.poll() is None:
            try:
                self.p.kill()
                self.p.wait(10)
            except Exception:
                pass


def running_dmarcd(db, *args, config=None):
    """dmarcd SUBCOMMAND --db CONNINFO --config FILE ARGS... in the
    background: a Running."""
    return Running([db.env.dmarcd, args[0], "--db", db.conninfo, "--config",
                    config or db.env.empty_config] + list(args[1:]))
