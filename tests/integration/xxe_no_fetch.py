#!/usr/bin/env python3
"""xxe_no_fetch.py - a report that points the XML parser at the network
makes no connection: proven with a listener, not assumed.

Prints TAP. A TCP listener on 127.0.0.1 (a free port) answers any HTTP
request with 200 and a canary text, and records every connection and its
request line. Each case is a report whose XML points at
http://127.0.0.1:PORT/CASE:

* an external entity (<!ENTITY xxe SYSTEM "http://...">, used in
  <org_name>), plain, in gzip and in a zip;
* an external DTD (<!DOCTYPE feedback SYSTEM "http://.../x.dtd">);
* an external parameter entity (<!ENTITY % p SYSTEM "http://..."> %p;);
* an XInclude (<xi:include href="http://..."/> in <feedback>);
* an entity on a local file holding the canary (file://, no network).

`dmarcd parse` on each: the DOCTYPE cases exit 65 with the DTD error;
the XInclude is an unknown element, ignored with a warning, nothing
included (exit 0); the canary appears nowhere in the output; and after a
wait of 0.5 s the listener has seen no connection for the case. With
PostgreSQL, `dmarcd ingest` of each case is checked the same way (exit
65, or 0 for the XInclude; no connection); without it those points are
skipped.

The control: xmllint (libxml2's own tool, when installed) with
--loaddtd --noent on the entity case does connect to the listener, so a
parser that loads entities or lacks NONET is seen; dmarcd must not be.
"""
import gzip
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

CANARY = "xxe-canary-4b1d9e"
WAIT = 0.5          # seconds after a run for a late connection
DTD_ERROR = (r"the document has a DOCTYPE declaration: DTDs and entities "
             r"are refused")


class Listener:
    """Accepts on 127.0.0.1:port in a thread; records each connection's
    request line; answers 200 with the canary."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            line = b""
            try:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                line = data.split(b"\r\n", 1)[0]
                body = CANARY.encode()
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain"
                             b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                             + body)
            except OSError:
                pass
            finally:
                conn.close()
            with self.lock:
                self.requests.append(line.decode("latin-1"))

    def seen(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.sock.close()


def report(head="", feedback_attrs="", org="adversary.example",
           first_child=""):
    return ("""<?xml version="1.0"?>
%s<feedback%s>%s
  <version>1.0</version>
  <report_metadata>
    <org_name>%s</org_name>
    <email>noreply-dmarc@adversary.example</email>
    <report_id>xxe-0001</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf>
    <p>none</p><sp>none</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.1</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"""
            """<spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results>
      <spf><domain>example.com</domain><result>pass</result></spf>
    </auth_results>
  </record>
</feedback>
""" % (head, feedback_attrs, first_child, org)).encode()


def zip_of(name, data):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(name, (2023, 11, 15, 0, 0, 0)), data)
    return out.getvalue()


def cases(port, canary_file):
    """(name, file name, bytes, expected exit, expected error or
    warning regex)."""
    url = "http://127.0.0.1:%d/" % port
    entity = report(head='<!DOCTYPE feedback [\n  <!ENTITY xxe SYSTEM '
                    '"%sentity">\n]>\n' % url, org="&xxe;")
    return [
        ("http-entity", "entity.xml", entity, 65, DTD_ERROR),
        ("http-entity in gzip", "entity.xml.gz",
         gzip.compress(report(head='<!DOCTYPE feedback [\n  <!ENTITY xxe '
                              'SYSTEM "%sgzip-entity">\n]>\n' % url,
                              org="&xxe;"), mtime=0), 65, DTD_ERROR),
        ("http-entity in zip", "entity.zip",
         zip_of("report.xml",
                report(head='<!DOCTYPE feedback [\n  <!ENTITY xxe SYSTEM '
                       '"%szip-entity">\n]>\n' % url, org="&xxe;")),
         65, DTD_ERROR),
        ("external DTD", "dtd.xml",
         report(head='<!DOCTYPE feedback SYSTEM "%sx.dtd">\n' % url),
         65, DTD_ERROR),
        ("external parameter entity", "param.xml",
         report(head='<!DOCTYPE feedback [\n  <!ENTITY %% p SYSTEM '
                '"%sparam.dtd">\n  %%p;\n]>\n' % url),
         65, DTD_ERROR),
        ("XInclude", "xinclude.xml",
         report(feedback_attrs=' xmlns:xi="http://www.w3.org/2001/XInclude"',
                first_child='\n  <xi:include href="%sxinclude.xml" '
                'parse="text"/>' % url),
         0, r"unknown element <include> in <feedback> ignored"),
        ("file:// entity", "file-entity.xml",
         report(head='<!DOCTYPE feedback [\n  <!ENTITY xxe SYSTEM '
                '"file://%s">\n]>\n' % canary_file, org="&xxe;"),
         65, DTD_ERROR),
    ]


def wait_for(listener, before):
    time.sleep(WAIT)
    return listener.seen()[before:]


def check_parse(tap, env, listener, name, path, want_exit, want_re):
    before = len(listener.seen())
    r = h.run([env.dmarcd, "parse", "--format", "summary", path])
    full = h.run([env.dmarcd, "parse", path])
    new = wait_for(listener, before)
    problems = []
    if r.rc != want_exit:
        problems.append("exit %s, expected %d" % (r.rc, want_exit))
    if not re.search(want_re, r.out + r.err):
        problems.append("no /%s/ in the output" % want_re)
    for res in (r, full):
        if CANARY in res.out or CANARY in res.err:
            problems.append("the canary text is in the output: fetched")
    if new:
        problems.append("the listener got %d connection(s): %s"
                        % (len(new), "; ".join(new)))
    if problems:
        problems.append(r.describe())
    tap.check("parse, %s: exit %d, %s, no connection to 127.0.0.1:%d"
              % (name, want_exit, "refused" if want_exit else "ignored",
                 listener.port), problems)


def main(tap):
    env = h.setup(postgres=False)
    listener = Listener()
    work = os.path.join(env.work, "xxe")
    os.makedirs(work)
    canary_file = os.path.join(work, "canary.txt")
    with open(canary_file, "w") as f:
        f.write(CANARY + "\n")
    all_cases = cases(listener.port, canary_file)
    paths = {}
    for name, fname, data, _, _ in all_cases:
        paths[name] = os.path.join(work, fname)
        with open(paths[name], "wb") as f:
            f.write(data)

    # The control: a parser that loads entities is seen by the listener.
    xmllint = shutil.which("xmllint")
    if xmllint is None:
        tap.skip("control: xmllint --loaddtd --noent connects to the "
                 "listener", "no xmllint")
    else:
        before = len(listener.seen())
        subprocess.run([xmllint, "--noout", "--loaddtd", "--noent",
                        paths["http-entity"]], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        new = wait_for(listener, before)
        if new or "HTTP" not in subprocess.run(
                [xmllint, "--version"], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT).stdout.decode("utf-8", "replace"):
            tap.check("control: xmllint --loaddtd --noent connects to the "
                      "listener (%d connection(s)): a fetch is seen"
                      % len(new), [] if new else ["no connection"])
        else:
            tap.skip("control: xmllint --loaddtd --noent connects to the "
                     "listener", "this libxml2 has no HTTP")

    for name, fname, data, want_exit, want_re in all_cases:
        check_parse(tap, env, listener, name, paths[name], want_exit,
                    want_re)

    if not env.postgres:
        for name, _, _, _, _ in all_cases:
            tap.skip("ingest, %s: no connection" % name, "no PostgreSQL")
    else:
        cluster = h.Cluster(env)
        db = cluster.new_db()
        for name, _, data, want_exit, _ in all_cases:
            before = len(listener.seen())
            r = db.dmarcd("ingest", paths[name])
            new = wait_for(listener, before)
            problems = []
            if r.rc != want_exit:
                problems.append("exit %s, expected %d" % (r.rc, want_exit))
            if new:
                problems.append("the listener got %d connection(s): %s"
                                % (len(new), "; ".join(new)))
            names = db.rows("SELECT org_name FROM dmarcd.reports "
                            "UNION ALL SELECT org_name FROM dmarcd.reporters")
            stored = [row for row in names if CANARY in (row[0] or "")]
            if stored:
                problems.append("the canary was stored: %r" % stored)
            if problems:
                problems.append(r.describe())
            tap.check("ingest, %s: exit %d, no connection" % (name,
                                                             want_exit),
                      problems)
        tap.check("the database is consistent", db.consistency())
    tap.note("connections seen by the listener in all: %d (the control's "
             "included)" % len(listener.seen()))
    listener.close()


if __name__ == "__main__":
    h.run_main(main)
