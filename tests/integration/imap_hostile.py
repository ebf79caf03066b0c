#!/usr/bin/env python3
"""imap_hostile.py - `dmarcd fetch` against IMAP servers that misbehave:
bad input from the server.

Prints TAP; skipped without PostgreSQL, without the report generator
($top_srcdir/../shared/tools/gen_aggregate.py), or when this dmarcd has
no fetch command; the TLS cases are skipped without openssl.

imap_fetch.py runs a real Dovecot, and that is where what a server does
right is tested. Here each server is a small scripted IMAP4rev1 server in
this process (FakeImap: a thread per connection on 127.0.0.1, a port the
kernel picks), and it stands in only for misbehaviour a real server
cannot be made to show on demand. Each serves a few real report mails
(gen_aggregate.py, attached as receivers send them) and records every
command line it received (commands()) and every byte (received()). The
TLS ones (IMAPS, STARTTLS) use Python's ssl module with a certificate for
localhost and 127.0.0.1 signed by a throwaway CA made with openssl
(dovecot.sh's make_certs, in a temporary directory); the account's
ca_file is that CA. Where TLS makes no difference the account says
tls = none (loopback). One PostgreSQL cluster for the file, a database
per case.

* unsolicited FETCH lines: the server adds `* N FETCH (UID k FLAGS
  (\\Seen))` for every message outside the requested set, and repeats the
  first requested message's line, both in the answer to `UID FETCH ...
  (UID RFC822.SIZE)` and to the BODY.PEEK[] fetch (fetch_batch = 2, UIDs
  3 4 5 7 9): exit 0, no crash; each message stored once (one output line
  and one ingest_log row each, no duplicates); a message's body asked for
  only in a batch whose sizes it asked for, and each exactly once; each
  moved once; imap_mailboxes.last_uid 9; a second fetch finds nothing;
* a UID FETCH answered NO in part (UIDs 1 and 3 sent, 2 left out although
  UID SEARCH still finds it): exit 75, UID 2 named; UID 1 stored and
  moved, 2 and 3 neither stored nor moved, last_uid 1; against the fixed
  server a second fetch stores 2 and 3 (exit 0, last_uid 3);
* RFC822.SIZE under-reported (a 2.5 MB mail said to be 76% of that: the
  1 MiB parts, over IMAPS): the report is stored whole (its record_count
  is the generator's), its raw input has the real size, three parts were
  asked for, and the small message after it is stored too;
* a server that stops answering after SELECT (reads, never answers), with
  timeout = 2: exit 75 in under 10 s, a timeout or a broken connection
  named, nothing stored; the connection abandoned, nothing sent after the
  SELECT (a LOGOUT would wait out a second timeout);
* STARTTLS answered `OK` with `* OK injected` in the same write, before
  the handshake: exit 75; no LOGIN, AUTHENTICATE or password ever reaches
  the server (it would do the handshake and read on, so a LOGIN after it
  would show); stderr names the injection (data after the STARTTLS
  answer). The same server without the injection: exit 0, stored, LOGIN
  only after the handshake;
* neither MOVE nor UIDPLUS: stored, UID COPY and UID STORE
  +FLAGS.SILENT (\\Deleted) sent, no EXPUNGE of any kind (it would remove
  other clients' deleted mail), a warning naming UIDPLUS, exit 0; the
  messages stay in INBOX marked \\Deleted, copied once; a second fetch
  stores and copies nothing;
* a greeting of non-IMAP bytes, and a server that closes right after its
  greeting: exit 75, stderr names the server and what went wrong, no
  crash.

IMAP_HOSTILE_ONLY=WORD runs only the cases whose function name holds WORD
(unsolicited, partial_no, under_reported, hang, starttls_injection,
no_uidplus, bad_greetings).
"""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import imapharness as ih  # noqa: E402

ACCOUNT = "test"
PREFIX = ACCOUNT + "/INBOX#"
PART = 1 << 20          # dmarcd's IMAP_PART: big messages in 1 MiB parts
FETCH_TIMEOUT = 60      # seconds: a hang is a failure, not a wait
LINE = re.compile(r"^(\S+/[^#\s]+)#(\d+): (.*)$")
TOTALS = re.compile(r"^dmarcd fetch: (\d+) inputs?:")
CRASH = re.compile(r"(?i)sanitizer|segmentation|core dumped|abort|"
                   r"double free|corrupted")


# ---- the scripted server ----

def parse_set(text, top):
    """An IMAP sequence set ("1:3,5,7:*") as [(lo, hi)]; * is top."""
    out = []
    for part in text.split(","):
        a, sep, b = part.partition(":")
        lo = top if a == "*" else int(a)
        hi = lo if not sep else (top if b == "*" else int(b))
        out.append((min(lo, hi), max(lo, hi)))
    return out


def in_set(ranges, uid):
    return any(lo <= uid <= hi for lo, hi in ranges)


def set_uids(text, top=0):
    """The UIDs a set names (* as top), as a sorted list."""
    out = set()
    for lo, hi in parse_set(text, top):
        out.update(range(lo, hi + 1))
    return sorted(out)


class Closed(Exception):
    pass


class Conn:
    """One client connection: reads command lines (with literals)."""

    def __init__(self, server, sock, no):
        self.server = server
        self.sock = sock
        self.no = no
        self.buf = b""
        self.authenticated = False
        self.selected = False
        self.tls = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.server.note_bytes(self.no, data)
        self.buf += data

    def readline(self):
        while b"\n" not in self.buf:
            self._more()
        line, _, self.buf = self.buf.partition(b"\n")
        line = line.rstrip(b"\r")
        m = re.search(rb"\{(\d+)(\+?)\}$", line)
        if m:
            if not m.group(2):
                self.send(b"+ go ahead\r\n")
            n = int(m.group(1))
            while len(self.buf) < n:
                self._more()
            literal, self.buf = self.buf[:n], self.buf[n:]
            return line + b"\r\n" + literal + self.readline()
        return line

    def start_tls(self, ctx):
        self.sock.settimeout(10)
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.sock.settimeout(30)
        self.tls = True


class FakeImap:
    """A scripted IMAP4rev1 server: INBOX and folders in memory, kept
    across connections (a second fetch sees what the first left). The
    subclasses misbehave; what the server received is in commands()
    (each command line without its tag, as (connection, TLS yet?, text))
    and received() (all bytes, after TLS as decrypted)."""

    CAPS = "IMAP4rev1 LITERAL+ IDLE MOVE UIDPLUS"
    user = "test"
    password = "hostile-secret-4711"

    def __init__(self, tls=None, certs=None):
        """tls: None (plain), "imaps" or "starttls"; certs: a Certs."""
        self.tls_mode = tls
        self.ctx = None
        self.ca = None
        self.host = "127.0.0.1"
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(certs.cert, certs.key)
            self.ca = certs.ca
            self.host = "localhost"
        self.inbox = {}         # uid -> [bytes, set of flags]
        self.folders = {}       # name -> [(bytes, flags)]
        self.uidvalidity = 1700000123
        self.uidnext = 1
        self.lock = threading.Lock()
        self._commands = []
        self._bytes = {}
        self.conns = []
        self.nconn = 0
        self.stopped = threading.Event()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.imaps_port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # Mail.
    def add(self, data, uid=None):
        uid = uid or self.uidnext
        self.inbox[uid] = [data, set()]
        self.uidnext = max(self.uidnext, uid + 1)
        return uid

    def uids(self):
        return sorted(self.inbox)

    def seq(self, uid):
        return self.uids().index(uid) + 1

    def top(self):
        return max(self.inbox) if self.inbox else 0

    # What it saw.
    def note_bytes(self, no, data):
        with self.lock:
            self._bytes[no] = self._bytes.get(no, b"") + data

    def received(self):
        with self.lock:
            return b"".join(self._bytes[k] for k in sorted(self._bytes))

    def commands(self, conn=None):
        """[(connection, tls, text)], text upper-cased without the tag."""
        with self.lock:
            return [c for c in self._commands if conn is None or
                    c[0] == conn]

    def texts(self):
        return [t for _, _, t in self.commands()]

    def clear(self):
        with self.lock:
            self._commands = []
            self._bytes = {}

    # Life.
    def _accept(self):
        while not self.stopped.is_set():
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.nconn += 1
                no = self.nconn
            sock.settimeout(30)
            c = Conn(self, sock, no)
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def stop(self):
        self.stopped.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.sock.close()
            except OSError:
                pass

    def _serve(self, c):
        try:
            if self.tls_mode == "imaps":
                c.start_tls(self.ctx)
            self.session(c)
        except (Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                c.sock.close()
            except OSError:
                pass

    # The protocol.
    def caps(self, c):
        caps = self.CAPS
        if self.tls_mode == "starttls" and not c.tls:
            caps += " STARTTLS LOGINDISABLED"
        return caps

    def greeting(self, c):
        c.send("* OK [CAPABILITY %s] fake IMAP ready\r\n" % self.caps(c))

    def session(self, c):
        self.greeting(c)
        while not self.stopped.is_set():
            line = c.readline()
            text = line.decode("utf-8", "replace")
            tag, _, rest = text.partition(" ")
            with self.lock:
                self._commands.append((c.no, c.tls, rest.upper()))
            words = rest.split(" ")
            name = words[0].upper()
            if name == "UID" and len(words) > 1:
                name = "UID_" + words[1].upper()
                args = " ".join(words[2:])
            else:
                args = " ".join(words[1:])
            handler = getattr(self, "cmd_" + name.lower(), None)
            if handler is None:
                c.send("%s BAD unknown command\r\n" % tag)
                continue
            if handler(c, tag, args) == "close":
                return

    def cmd_capability(self, c, tag, args):
        c.send("* CAPABILITY %s\r\n%s OK done\r\n" % (self.caps(c), tag))

    def cmd_noop(self, c, tag, args):
        c.send("%s OK done\r\n" % tag)

    cmd_id = cmd_enable = cmd_noop

    def cmd_starttls(self, c, tag, args):
        if self.tls_mode != "starttls" or c.tls:
            c.send("%s BAD no STARTTLS here\r\n" % tag)
            return None
        self.starttls_answer(c, tag)
        c.start_tls(self.ctx)
        return None

    def starttls_answer(self, c, tag):
        c.send("%s OK Begin TLS negotiation now\r\n" % tag)

    def cmd_login(self, c, tag, args):
        words = [w.strip('"') for w in args.split(" ")]
        if len(words) == 2 and words == [self.user, self.password]:
            c.authenticated = True
            c.send("%s OK Logged in\r\n" % tag)
        else:
            c.send("%s NO [AUTHENTICATIONFAILED] wrong\r\n" % tag)

    def cmd_authenticate(self, c, tag, args):
        c.send("%s NO not here\r\n" % tag)

    def cmd_logout(self, c, tag, args):
        c.send("* BYE bye\r\n%s OK Logout completed\r\n" % tag)
        return "close"

    def cmd_list(self, c, tag, args):
        name = args.split(" ", 1)[1].strip('"') if " " in args else ""
        out = ""
        if name == "INBOX" or name in self.folders:
            out = '* LIST (\\HasNoChildren) "/" "%s"\r\n' % name
        c.send('%s%s OK done\r\n' % (out, tag))

    def cmd_create(self, c, tag, args):
        self.folders.setdefault(args.strip('"'), [])
        c.send("%s OK created\r\n" % tag)

    def cmd_select(self, c, tag, args):
        c.selected = True
        c.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
               "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] ok\r\n"
               "* %d EXISTS\r\n* 0 RECENT\r\n"
               "* OK [UIDVALIDITY %d] UIDs valid\r\n"
               "* OK [UIDNEXT %d] next\r\n"
               "%s OK [READ-WRITE] Select completed\r\n"
               % (len(self.inbox), self.uidvalidity, self.uidnext, tag))

    def cmd_uid_search(self, c, tag, args):
        m = re.search(r"(?i)\bUID\s+([0-9:*,]+)", args)
        ranges = parse_set(m.group(1), self.top()) if m else None
        found = [u for u in self.uids() if ranges is None or
                 in_set(ranges, u)]
        c.send("* SEARCH%s\r\n%s OK done\r\n"
               % ("".join(" %d" % u for u in found), tag))

    # FETCH.
    def reported_size(self, uid):
        return len(self.inbox[uid][0])

    def fetch_line(self, uid, body=False, part=None, size=True,
                   flags=False):
        items = [b"UID %d" % uid]
        if size:
            items.append(b"RFC822.SIZE %d" % self.reported_size(uid))
        if flags:
            items.append(b"FLAGS (%s)" % " ".join(
                sorted(self.inbox[uid][1])).encode())
        if body or part:
            data = self.inbox[uid][0]
            if part:
                off, length = part
                data = data[off:off + length]
                items.append(b"BODY[]<%d> {%d}\r\n" % (off, len(data)) +
                             data)
            else:
                items.append(b"BODY[] {%d}\r\n" % len(data) + data)
        return b"* %d FETCH (" % self.seq(uid) + b" ".join(items) + b")\r\n"

    def cmd_uid_fetch(self, c, tag, args):
        m = re.match(r"(\S+)\s+\((.*)\)\s*$", args)
        if not m:
            c.send("%s BAD fetch what\r\n" % tag)
            return
        ranges = parse_set(m.group(1), self.top())
        atts = m.group(2).upper()
        p = re.search(r"BODY(?:\.PEEK)?\[\]<(\d+)\.(\d+)>", atts)
        part = (int(p.group(1)), int(p.group(2))) if p else None
        body = "BODY" in atts and part is None
        uids = [u for u in self.uids() if in_set(ranges, u)]
        lines = [self.fetch_line(u, body, part) for u in uids]
        lines, answer = self.fetch_answer(c, uids, body or part, lines)
        c.send(b"".join(lines) + ("%s %s\r\n" % (tag, answer)).encode())

    def fetch_answer(self, c, uids, body, lines):
        """The FETCH lines to send and the tagged answer."""
        return lines, "OK Fetch completed"

    # Moving.
    def _move(self, args, delete):
        s, _, folder = args.partition(" ")
        folder = folder.strip('"')
        if folder not in self.folders:
            return None
        ranges = parse_set(s, self.top())
        uids = [u for u in self.uids() if in_set(ranges, u)]
        out = ""
        for u in uids:
            data, flags = self.inbox[u]
            self.folders[folder].append((data, set(flags)))
        if delete:
            for u in reversed(uids):
                out += "* %d EXPUNGE\r\n" % self.seq(u)
                del self.inbox[u]
        return out

    def cmd_uid_move(self, c, tag, args):
        if "MOVE" not in self.CAPS.split():
            c.send("%s BAD no MOVE here\r\n" % tag)
            return
        out = self._move(args, True)
        c.send("%s%s OK done\r\n" % (out or "", tag) if out is not None
               else "%s NO [TRYCREATE] no such folder\r\n" % tag)

    def cmd_uid_copy(self, c, tag, args):
        out = self._move(args, False)
        c.send("%s OK done\r\n" % tag if out is not None
               else "%s NO [TRYCREATE] no such folder\r\n" % tag)

    def cmd_uid_store(self, c, tag, args):
        m = re.match(r"(\S+)\s+([+-]?)FLAGS(\.SILENT)?\s+\(?([^)]*)\)?",
                     args, re.I)
        if not m:
            c.send("%s BAD store what\r\n" % tag)
            return
        ranges = parse_set(m.group(1), self.top())
        flags = set(m.group(4).split())
        out = ""
        for u in self.uids():
            if not in_set(ranges, u):
                continue
            have = self.inbox[u][1]
            if m.group(2) == "+":
                have |= flags
            elif m.group(2) == "-":
                have -= flags
            else:
                have.clear()
                have |= flags
            if not m.group(3):
                out += "* %d FETCH (UID %d FLAGS (%s))\r\n" % (
                    self.seq(u), u, " ".join(sorted(have)))
        c.send("%s%s OK done\r\n" % (out, tag))

    def _expunge(self, ranges):
        out = ""
        for u in reversed(self.uids()):
            if "\\Deleted" in self.inbox[u][1] and (
                    ranges is None or in_set(ranges, u)):
                out += "* %d EXPUNGE\r\n" % self.seq(u)
                del self.inbox[u]
        return out

    def cmd_expunge(self, c, tag, args):
        c.send("%s%s OK done\r\n" % (self._expunge(None), tag))

    def cmd_uid_expunge(self, c, tag, args):
        if "UIDPLUS" not in self.CAPS.split():
            c.send("%s BAD no UIDPLUS here\r\n" % tag)
            return
        c.send("%s%s OK done\r\n" % (self._expunge(
            parse_set(args.strip(), self.top())), tag))


class UnsolicitedFetch(FakeImap):
    """Adds a FETCH line with UID and FLAGS for every message outside the
    requested set, and repeats the line of the first one requested (its
    body again, in a body fetch), in every UID FETCH answer."""

    def fetch_answer(self, c, uids, body, lines):
        if not uids:
            return lines, "OK Fetch completed"
        out = [lines[0]]
        others = [u for u in self.uids() if u not in uids]
        out += [self.fetch_line(u, size=False, flags=True)
                for u in others[:len(others) // 2]]
        out += lines[1:] + [lines[0]]
        out += [self.fetch_line(u, size=False, flags=True)
                for u in others[len(others) // 2:]]
        return out, "OK Fetch completed"


class PartialNo(FakeImap):
    """While broken: a body fetch that includes `missing` leaves it out and
    is answered NO (Dovecot, Gmail: "Some messages could not be
    FETCHed"); UID SEARCH still finds it."""

    broken = True
    missing = 2

    def fetch_answer(self, c, uids, body, lines):
        if self.broken and body and self.missing in uids:
            return ([l for u, l in zip(uids, lines) if u != self.missing],
                    "NO Some messages could not be FETCHed (Failure)")
        return lines, "OK Fetch completed"


class UnderReported(FakeImap):
    """RFC822.SIZE says `ratio` of the real size (an estimate, as on
    Exchange); the parts are served as they really are."""

    ratio = 0.76

    def reported_size(self, uid):
        return int(len(self.inbox[uid][0]) * self.ratio)


class HangAfterSelect(FakeImap):
    """Answers up to SELECT, then reads (and records) but never answers."""

    def cmd_select(self, c, tag, args):
        while not self.stopped.is_set():
            line = c.readline()
            with self.lock:
                self._commands.append((c.no, c.tls, line.decode(
                    "utf-8", "replace").partition(" ")[2].upper()))


class StartTlsInjection(FakeImap):
    """Its STARTTLS answer comes with an untagged line in the same write,
    before the handshake (CVE-2011-0411 and its kin: what a man in the
    middle would slip in). It then does the handshake and serves on."""

    inject = True

    def starttls_answer(self, c, tag):
        data = "%s OK Begin TLS negotiation now\r\n" % tag
        if self.inject:
            data += "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"
        c.send(data)


class NoMoveNoUidplus(FakeImap):
    CAPS = "IMAP4rev1 LITERAL+ IDLE"


class GarbageGreeting(FakeImap):
    """Non-IMAP bytes instead of a greeting (an HTTP server, say)."""

    def greeting(self, c):
        c.send(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n"
               b"\x00\xff\xfe garbage \x1b[0m\r\n\r\n")
        while True:
            c.readline()


class CloseAfterGreeting(FakeImap):
    def greeting(self, c):
        c.send("* OK [CAPABILITY %s] ready\r\n" % self.CAPS)
        c.sock.shutdown(socket.SHUT_RDWR)
        raise Closed()


# ---- certificates (dovecot.sh's make_certs) ----

class Certs:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory)
        self.ca = os.path.join(directory, "ca.pem")
        self.cert = os.path.join(directory, "cert.pem")
        self.key = os.path.join(directory, "key.pem")
        ca_key = os.path.join(directory, "ca.key")
        csr = os.path.join(directory, "cert.csr")
        ext = os.path.join(directory, "cert.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes"]
        for argv in (
                ["openssl", "req", "-x509"] + ec + [
                    "-days", "2", "-subj", "/CN=dmarcd hostile test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-addext", "subjectKeyIdentifier=hash",
                    "-keyout", ca_key, "-out", self.ca],
                ["openssl", "req", "-new"] + ec + [
                    "-subj", "/CN=localhost", "-keyout", self.key,
                    "-out", csr],
                ["openssl", "x509", "-req", "-in", csr, "-CA", self.ca,
                 "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
                 "-extfile", ext, "-out", self.cert]):
            p = subprocess.run(argv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=directory,
                               timeout=60)
            if p.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(argv),
                                               p.stderr.decode()))


# ---- mails ----

class Mail:
    def __init__(self, data, report_id, records):
        self.data = data
        self.report_id = report_id
        self.records = records


def make_mail(gen, directory, name, records, seed, *options, gzip_it=True):
    raw = os.path.join(directory, name + ".xml")
    truth = gen(raw, records, seed, *options, stats=True)
    with open(raw, "rb") as f:
        xml = f.read()
    os.unlink(raw)
    m = re.search(rb"<report_id>\s*([^<]*?)\s*</report_id>", xml)
    data = ih.report_mail(xml, "receiver.example!%s.xml" % name,
                          message_id="<%s@dmarcd.test>" % name,
                          gzip_it=gzip_it)
    return Mail(data, m.group(1).decode(), truth["records"])


# ---- what dmarcd did ----

def fetch(db, conf, timeout=FETCH_TIMEOUT):
    return db.dmarcd("fetch", config=conf, timeout=timeout)


def write_config(c, name, server, tls="none", **settings):
    return ih.write_config(c.env, name, server, c.db_conninfo(),
                           tls=tls, **settings)


def crashed(r):
    """Problems if the run did not end by itself with an exit status."""
    if r.rc is None:
        return ["no exit within the time allowed: " + r.describe()]
    if r.rc < 0 or r.rc >= 128 or CRASH.search(r.err):
        return ["crashed: " + r.describe()]
    return []


def exit_is(r, want):
    problems = crashed(r)
    if not problems and r.rc != want:
        problems.append("exit %s, expected %d: %s" % (r.rc, want,
                                                      r.describe()))
    return problems


def message_lines(out):
    """{uid: [what...]} of the output lines ACCOUNT/MAILBOX#UID: what."""
    said = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m and line.startswith(PREFIX):
            said.setdefault(int(m.group(2)), []).append(m.group(3))
    return said


def mailbox_rows(db):
    return db.rows("SELECT account, mailbox, uidvalidity, last_uid FROM "
                   "dmarcd.imap_mailboxes ORDER BY 1, 2")


def last_uid_problems(db, server, want):
    rows = mailbox_rows(db)
    expect = [(ACCOUNT, "INBOX", str(server.uidvalidity), str(want))]
    if rows != expect:
        return ["imap_mailboxes %r, expected %r" % (rows, expect)]
    return []


def stored_ids(db):
    return sorted(r for (r,) in db.rows("SELECT report_id FROM "
                                        "dmarcd.reports"))


def log_rows(db):
    """{source: rows} of dmarcd.ingest_log."""
    return dict((s, int(n)) for s, n in db.rows(
        "SELECT source, count(*) FROM dmarcd.ingest_log GROUP BY 1"))


def body_fetches(server):
    """[(uids asked for, their sizes asked for just before)] of every
    UID FETCH with a body, and the UIDs of each size-only fetch."""
    out = []
    sizes = []
    last_sizes = None
    for _, _, t in server.commands():
        m = re.match(r"^UID FETCH (\S+) \((.*)\)$", t)
        if not m:
            continue
        uids = set_uids(m.group(1), server.uidnext - 1)
        if "BODY" in m.group(2):
            out.append((uids, last_sizes, m.group(2)))
        else:
            last_sizes = uids
            sizes.append(uids)
    return out, sizes


def moved(server, verb="UID MOVE"):
    """The UIDs named by every UID MOVE (or COPY) sent, in order."""
    out = []
    for _, _, t in server.commands():
        if t.startswith(verb + " "):
            out += set_uids(t.split(" ")[2], server.uidnext - 1)
    return out


def no_password(server):
    if server.password.encode() in server.received():
        return ["the password reached the server"]
    return []


class Context:
    pass


# ---- the cases ----

def unsolicited(tap, c):
    """1: unsolicited and repeated FETCH lines."""
    s = UnsolicitedFetch()
    try:
        uids = [3, 4, 5, 7, 9]
        for uid, m in zip(uids, c.mails):
            s.add(m.data, uid)
        db = c.new_db()
        conf = write_config(c, "unsolicited.conf", s, fetch_batch=2)
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        said = message_lines(r.out)
        lines = r.out.splitlines()
        t = TOTALS.match(lines[-1]) if lines else None
        if not t or int(t.group(1)) != len(uids) or \
                " 0 duplicates" not in lines[-1]:
            problems.append("the totals line: %r, expected %d inputs, 0 "
                            "duplicates" % (lines[-1:], len(uids)))
        for uid in uids:
            if len(said.get(uid, [])) != 1:
                problems.append("%s%d: %d output lines %r" % (
                    PREFIX, uid, len(said.get(uid, [])), said.get(uid)))
        extra = sorted(set(said) - set(uids))
        if extra:
            problems.append("output lines for UIDs %r" % extra)
        want = sorted(m.report_id for m in c.mails[:len(uids)])
        if stored_ids(db) != want:
            problems.append("reports %r, expected %r" % (stored_ids(db),
                                                         want))
        logs = log_rows(db)
        want_logs = dict(("%s%d" % (PREFIX, u), 1) for u in uids)
        if logs != want_logs:
            problems.append("ingest_log rows %r, expected one per "
                            "message %r" % (logs, want_logs))
        dups = db.int("SELECT coalesce(sum(duplicates), 0) FROM "
                      "dmarcd.ingest_log")
        if dups:
            problems.append("%d duplicates in ingest_log (a message "
                            "ingested twice)" % dups)
        tap.check("unsolicited FETCH lines (other UIDs' FLAGS, the first "
                  "line twice) in every UID FETCH answer: exit 0, no "
                  "crash, each message stored once", problems)

        bodies, sizes = body_fetches(s)
        problems = []
        asked = []
        for got, before, atts in bodies:
            asked += got
            if before is None or not set(got) <= set(before):
                problems.append("UID FETCH %r (%s): bodies of messages "
                                "whose sizes were not asked for just "
                                "before (%r)" % (got, atts, before))
            if "BODY.PEEK[]" not in atts:
                problems.append("fetched without PEEK: %s" % atts)
        if sorted(asked) != uids:
            problems.append("bodies asked for: %r, expected each of %r "
                            "once" % (sorted(asked), uids))
        seen_sizes = sorted(u for x in sizes for u in x)
        if seen_sizes != uids:
            problems.append("sizes asked for: %r, expected each of %r "
                            "once" % (seen_sizes, uids))
        if any(len(x) > 2 for x in sizes):
            problems.append("a batch over fetch_batch = 2: %r" % sizes)
        mv = moved(s)
        if sorted(mv) != uids:
            problems.append("UID MOVE of %r, expected each of %r once"
                            % (mv, uids))
        if s.uids() or len(s.folders.get(ih.PROCESSED, [])) != len(uids):
            problems.append("INBOX holds %r, %s %d messages" % (
                s.uids(), ih.PROCESSED,
                len(s.folders.get(ih.PROCESSED, []))))
        problems += last_uid_problems(db, s, 9)
        tap.check("only the requested UIDs fetched (bodies only of a "
                  "batch's own UIDs, each once), each moved once; "
                  "imap_mailboxes.last_uid 9", problems)

        # More unsolicited lines for a second pass: nothing new.
        before = db.counts()
        s.clear()
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        if message_lines(r.out):
            problems.append("message lines: %r" % r.out[-500:])
        if db.counts() != before:
            problems.append("counts %r, before %r" % (db.counts(), before))
        if body_fetches(s)[0]:
            problems.append("bodies fetched again: %r" % body_fetches(s)[0])
        problems += last_uid_problems(db, s, 9)
        tap.check("a second fetch: exit 0, nothing fetched or stored",
                  problems)
    finally:
        s.stop()


def partial_no(tap, c):
    """2: a FETCH answered NO, with part of what was asked."""
    s = PartialNo()
    try:
        mails = c.mails[:3]
        for m in mails:
            s.add(m.data)
        db = c.new_db()
        conf = write_config(c, "partialno.conf", s, fetch_batch=10)
        r = fetch(db, conf)
        problems = exit_is(r, 75)
        if not re.search(r"\bUID 2\b", r.err):
            problems.append("stderr does not name UID 2: %r" % r.err[-500:])
        if stored_ids(db) != [mails[0].report_id]:
            problems.append("reports %r, expected only UID 1's %r" % (
                stored_ids(db), mails[0].report_id))
        problems += last_uid_problems(db, s, 1)
        mv = moved(s)
        if mv != [1]:
            problems.append("UID MOVE of %r, expected [1]" % mv)
        if s.uids() != [2, 3]:
            problems.append("INBOX holds %r, expected [2, 3]" % s.uids())
        if db.int("SELECT count(*) FROM dmarcd.imap_pending_moves"):
            problems.append("moves left pending: %r" % db.rows(
                "SELECT uid, folder FROM dmarcd.imap_pending_moves"))
        tap.check("UID FETCH 1:3 answered NO with UIDs 1 and 3 (2 still "
                  "there): exit 75, UID 2 named; UID 1 stored and moved, "
                  "2 and 3 neither; last_uid 1", problems)

        s.broken = False
        s.clear()
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        want = sorted(m.report_id for m in mails)
        if stored_ids(db) != want:
            problems.append("reports %r, expected %r" % (stored_ids(db),
                                                         want))
        said = message_lines(r.out)
        if sorted(said) != [2, 3]:
            problems.append("message lines for %r, expected [2, 3]"
                            % sorted(said))
        problems += last_uid_problems(db, s, 3)
        if s.uids() or len(s.folders.get(ih.PROCESSED, [])) != 3:
            problems.append("INBOX holds %r, %s %d messages" % (
                s.uids(), ih.PROCESSED,
                len(s.folders.get(ih.PROCESSED, []))))
        problems += db.consistency()
        tap.check("the server fixed, a second fetch: exit 0, UIDs 2 and 3 "
                  "stored and moved, last_uid 3", problems)
    finally:
        s.stop()


def under_reported(tap, c):
    """3: RFC822.SIZE under-reported for a message fetched in parts."""
    if c.certs is None:
        tap.skip("RFC822.SIZE under-reported over IMAPS", c.no_certs)
        return
    s = UnderReported(tls="imaps", certs=c.certs)
    try:
        big = c.big
        small = c.mails[5]
        s.add(big.data)
        s.add(small.data)
        size = len(big.data)
        said = s.reported_size(1)
        db = c.new_db()
        conf = write_config(c, "under.conf", s, tls="imaps")
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        if not (2 * PART < size < 3 * PART and PART < said < 2 * PART):
            problems.append("the test is wrong: %d bytes said to be %d"
                            % (size, said))
        rows = db.rows("SELECT record_count FROM dmarcd.reports WHERE "
                       "report_id = '%s'" % big.report_id)
        if rows != [(str(big.records),)]:
            problems.append("the big report's record_count: %r, the "
                            "generator's %d" % (rows, big.records))
        if stored_ids(db) != sorted([big.report_id, small.report_id]):
            problems.append("reports %r" % stored_ids(db))
        raw = db.rows("SELECT w.size FROM dmarcd.raw_inputs w JOIN "
                      "dmarcd.reports r ON r.domain = w.domain AND "
                      "r.raw_sha256 = w.sha256 WHERE r.report_id = '%s'"
                      % big.report_id)
        if raw != [(str(c.big_raw_size),)]:
            problems.append("its raw input: %r bytes, really %d"
                            % (raw, c.big_raw_size))
        tap.check("RFC822.SIZE %d for a mail of %d bytes (IMAPS): exit 0, "
                  "stored whole (%d records), its raw input %d bytes"
                  % (said, size, big.records,
                     c.big_raw_size), problems)

        bodies, _ = body_fetches(s)
        parts = [re.search(r"<(\d+)\.(\d+)>", a) for u, _, a in bodies
                 if u == [1]]
        problems = []
        if [int(p.group(1)) for p in parts if p] != [0, PART, 2 * PART] or \
                any(p is None or int(p.group(2)) != PART for p in parts):
            problems.append("UID 1 fetched as %r" % [a for u, _, a in bodies
                                                     if u == [1]])
        if [u for u, _, a in bodies if u != [1]] != [[2]]:
            problems.append("other body fetches: %r" % bodies)
        problems += last_uid_problems(db, s, 2)
        if s.uids():
            problems.append("INBOX holds %r" % s.uids())
        problems += db.consistency()
        tap.check("UID 1 read in parts of 1 MiB until one came short (3), "
                  "UID 2 after it; last_uid 2", problems)
    finally:
        s.stop()


def hang(tap, c):
    """4: no answer after SELECT."""
    s = HangAfterSelect()
    try:
        s.add(c.mails[0].data)
        db = c.new_db()
        conf = write_config(c, "hang.conf", s, timeout=2)
        t0 = time.monotonic()
        r = fetch(db, conf, timeout=30)
        took = time.monotonic() - t0
        problems = exit_is(r, 75)
        if took >= 10:
            problems.append("took %.1f s with timeout = 2" % took)
        if not re.search(r"(?i)timed out|broke", r.err):
            problems.append("stderr names no timeout: %r" % r.err[-500:])
        if stored_ids(db):
            problems.append("reports stored: %r" % stored_ids(db))
        texts = s.texts()
        selects = [i for i, t in enumerate(texts) if t.startswith("SELECT")]
        if not selects:
            problems.append("no SELECT reached the server: %r" % texts)
        tap.check("no answer after SELECT, timeout = 2: exit 75 in under "
                  "10 s (%.1f s), the timeout named, nothing stored"
                  % took, problems)
        after = texts[selects[0] + 1:] if selects else []
        problems = []
        if after:
            problems.append("sent after the unanswered SELECT: %r (a LOGOUT "
                            "waits out another timeout)" % after)
        tap.check("the hung connection is abandoned: nothing sent after "
                  "the SELECT, no LOGOUT", problems)
    finally:
        s.stop()


def hang_sigterm(tap, c):
    """dmarcd run against a server that stops answering after SELECT,
    timeout = 60: SIGTERM does not wait the minute out."""
    s = HangAfterSelect()
    run = None
    try:
        s.add(c.mails[0].data)
        db = c.new_db()
        conf = write_config(c, "hang-run.conf", s, timeout=60)
        run = ih.running_dmarcd(db, "run", config=conf)
        if not ih.wait_for(lambda: any(t.startswith("SELECT")
                                       for t in s.texts()), 20, 0.05):
            tap.check("dmarcd run against a hung server: SIGTERM, exit 0 "
                      "within 5 s", ["no SELECT within 20 s: %s"
                                     % run.describe()])
            return
        time.sleep(0.5)
        t0 = time.monotonic()
        run.signal(signal.SIGTERM)
        rc = run.wait(30)
        took = time.monotonic() - t0
        problems = []
        if rc != 0:
            problems.append("exit %s: %s" % (rc, run.describe()))
        elif took > 5:
            problems.append("exit after %.1f s (timeout = 60)" % took)
        if stored_ids(db):
            problems.append("reports stored: %r" % stored_ids(db))
        tap.check("dmarcd run, server silent after SELECT, timeout = 60: "
                  "SIGTERM, exit 0 within 5 s (%.2f s)" % took, problems)
    finally:
        if run is not None:
            run.signal(signal.SIGKILL)
            run.wait(10)
        s.stop()


def starttls_injection(tap, c):
    """5: data after the STARTTLS answer, before the handshake."""
    if c.certs is None:
        tap.skip("STARTTLS injection", c.no_certs)
        return
    s = StartTlsInjection(tls="starttls", certs=c.certs)
    try:
        s.add(c.mails[0].data)
        db = c.new_db()
        conf = write_config(c, "inject.conf", s, tls="starttls")
        r = fetch(db, conf)
        problems = exit_is(r, 75)
        texts = s.texts()
        bad = [t for t in texts if re.match(r"^(LOGIN|AUTHENTICATE)\b", t)]
        if bad:
            problems.append("sent to the server: %r" % bad)
        problems += no_password(s)
        if "STARTTLS" not in texts:
            problems.append("no STARTTLS sent (so this proves nothing): %r"
                            % texts)
        if stored_ids(db) or len(s.uids()) != 1:
            problems.append("fetched: %r, INBOX %r" % (stored_ids(db),
                                                       s.uids()))
        tap.check("STARTTLS answered with `* OK injected` in the same "
                  "write: exit 75, no LOGIN and no password sent, nothing "
                  "fetched", problems)
        problems = []
        if not re.search(r"(?i)inject|after (its |the )?STARTTLS", r.err):
            problems.append("stderr does not name the injection (data "
                            "after the STARTTLS answer): %r" % r.err[-500:])
        tap.check("STARTTLS injection: stderr names it (data after the "
                  "STARTTLS answer)", problems)

        s.inject = False
        s.clear()
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        cmds = s.commands()
        logins = [(tls, t) for _, tls, t in cmds if t.startswith("LOGIN")]
        if len(logins) != 1 or not logins[0][0]:
            problems.append("LOGIN commands (over TLS?): %r" % logins)
        if stored_ids(db) != [c.mails[0].report_id]:
            problems.append("reports %r" % stored_ids(db))
        tap.check("the same server without the injection: exit 0, stored, "
                  "LOGIN only after the handshake", problems)
    finally:
        s.stop()


def no_uidplus(tap, c):
    """6: neither MOVE nor UIDPLUS."""
    s = NoMoveNoUidplus()
    try:
        mails = c.mails[:3]
        for m in mails:
            s.add(m.data)
        db = c.new_db()
        conf = write_config(c, "nouidplus.conf", s)
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        want = sorted(m.report_id for m in mails)
        if stored_ids(db) != want:
            problems.append("reports %r, expected %r" % (stored_ids(db),
                                                         want))
        texts = s.texts()
        if sorted(moved(s, "UID COPY")) != [1, 2, 3]:
            problems.append("UID COPY of %r" % moved(s, "UID COPY"))
        stores = [t for t in texts if t.startswith("UID STORE ")]
        if not stores or not all(re.search(
                r"\+FLAGS(\.SILENT)? \(\\DELETED\)", t) for t in stores):
            problems.append("UID STORE: %r" % stores)
        if sorted(moved(s, "UID STORE")) != [1, 2, 3]:
            problems.append("UID STORE of %r" % moved(s, "UID STORE"))
        exp = [t for t in texts if "EXPUNGE" in t or "MOVE" in t]
        if exp:
            problems.append("sent: %r" % exp)
        if not re.search(r"UIDPLUS", r.err):
            problems.append("no warning naming UIDPLUS: %r" % r.err[-500:])
        if s.uids() != [1, 2, 3] or any("\\Deleted" not in s.inbox[u][1]
                                        for u in s.uids()):
            problems.append("INBOX: %r" % [(u, sorted(s.inbox[u][1]))
                                           for u in s.uids()])
        if len(s.folders.get(ih.PROCESSED, [])) != 3:
            problems.append("%s holds %d messages" % (
                ih.PROCESSED, len(s.folders.get(ih.PROCESSED, []))))
        problems += last_uid_problems(db, s, 3)
        tap.check("neither MOVE nor UIDPLUS: exit 0, stored, UID COPY and "
                  "UID STORE +FLAGS.SILENT (\\Deleted), no EXPUNGE at all, "
                  "a warning naming UIDPLUS", problems)

        before = db.counts()
        s.clear()
        r = fetch(db, conf)
        problems = exit_is(r, 0)
        if message_lines(r.out):
            problems.append("message lines: %r" % r.out[-500:])
        if db.counts() != before:
            problems.append("counts %r, before %r" % (db.counts(), before))
        texts = s.texts()
        bad = [t for t in texts if re.match(
            r"^UID (COPY|STORE|EXPUNGE|MOVE)|^EXPUNGE|^UID FETCH", t)]
        if bad:
            problems.append("sent: %r" % bad)
        if len(s.folders.get(ih.PROCESSED, [])) != 3:
            problems.append("%s holds %d messages" % (
                ih.PROCESSED, len(s.folders.get(ih.PROCESSED, []))))
        problems += last_uid_problems(db, s, 3)
        tap.check("a second fetch (the messages still in INBOX, "
                  "\\Deleted): exit 0, nothing fetched, stored or copied",
                  problems)
    finally:
        s.stop()


def bad_greetings(tap, c):
    """7: garbage for a greeting; closed after the greeting."""
    for cls, what, pattern in (
            (GarbageGreeting, "non-IMAP bytes as the greeting",
             r"(?i)greeting"),
            (CloseAfterGreeting, "the connection closed right after the "
             "greeting", r"(?i)broke|closed|no answer|timed out")):
        s = cls()
        try:
            s.add(c.mails[0].data)
            db = c.new_db()
            conf = write_config(c, "greet-%s.conf" % cls.__name__, s,
                                timeout=3)
            t0 = time.monotonic()
            r = fetch(db, conf, timeout=30)
            took = time.monotonic() - t0
            problems = exit_is(r, 75)
            name = "127.0.0.1:%d" % s.port
            msgs = [l for l in r.err.splitlines() if name in l]
            if not msgs or not re.search(pattern, "\n".join(msgs)):
                problems.append("no message naming %s and what went wrong "
                                "(%s): %r" % (name, pattern, r.err[-500:]))
            bad = [t for t in s.texts() if t.startswith("LOGIN")]
            if bad:
                problems.append("LOGIN sent: %r" % bad)
            if stored_ids(db):
                problems.append("reports %r" % stored_ids(db))
            tap.note("%s: %s" % (cls.__name__, r.err.strip()))
            tap.check("%s: exit 75 (%.1f s), a message naming the server, "
                      "no crash" % (what, took), problems)
        finally:
            s.stop()


def main(tap):
    env, gen, work = h.setup_with_generator("hostile")
    r = h.run([env.dmarcd, "help", "fetch"], timeout=30)
    if r.rc != 0:
        h.skip_all("this dmarcd has no fetch command (dmarcd help fetch: "
                   "exit %s)" % r.rc)
    c = Context()
    c.env = env
    c.gen = gen
    c.certs = None
    c.no_certs = "no openssl binary (to make the test certificates)"
    if shutil.which("openssl"):
        try:
            c.certs = Certs(os.path.join(work, "certs"))
        except Exception as ex:
            c.no_certs = "cannot make the test certificates: %s" % ex
    c.mails = [make_mail(gen, work, "hostile%d" % i, 5 + 3 * i, 900 + i,
                         "--domain", "h%d.example" % i)
               for i in range(6)]
    # About 2.5 MB: plain XML, base64 in the mail.
    c.big = make_mail(gen, work, "big", 2350, 4711, "--domain",
                      "big.example", "--senders", 3000, gzip_it=False)
    c.big_raw_size = len(c.big.data)
    cluster = h.Cluster(env)
    c.db = None

    def new_db():
        c.db = cluster.new_db()
        return c.db
    c.new_db = new_db
    c.db_conninfo = lambda: c.db.conninfo
    only = os.environ.get("IMAP_HOSTILE_ONLY", "")
    for case in (unsolicited, partial_no, under_reported, hang,
                 hang_sigterm, starttls_injection, no_uidplus,
                 bad_greetings):
        if only and only not in case.__name__:
            continue
        t0 = time.monotonic()
        case(tap, c)
        tap.note("%s: %.1f s" % (case.__name__, time.monotonic() - t0))


if __name__ == "__main__":
    h.run_main(main)
