#!/usr/bin/env python3
"""api_security.py - the API refuses whoever it should, and hostile
clients cannot take it down or make it grow.

Prints TAP; skipped without PostgreSQL. A throwaway cluster with the
samples ingested, a login role with dmarcd_reader only, and the real
`dmarcd serve` on 127.0.0.1. Python's standard library, and wrk(1) when
it is installed.

Checked, with the names docs/security.md cites:
  auth: METHOD PATH: CASE   every path of api/openapi.yaml (read from the
        file: a new endpoint is covered without touching this test) and
        every method (GET HEAD POST PUT DELETE PATCH OPTIONS), each with
        no token, a wrong one, an expired one and one scoped to another
        domain: 401/403 (405 for a method the API does not serve), never
        200 with data, never a byte of the reports in the answer. The
        paths documented with `security: []` (/healthz, /readyz) are
        public: only their methods are checked. Paths without a domain
        that answer a domain token (/, /v1/domains) must answer it with
        none of the other domain's data.
  oversized: ...            a 64 KiB header, 2000 headers, a 64 KiB
        request line: 431/414/400/413 and the server answers afterwards;
        a body on GET and a chunked one: 413; a 100 MiB body announced:
        refused before it is sent.
  slowloris: ...            a client sending its headers one byte a
        second is cut within [api] header_timeout (printed), although
        request_timeout (the idle timeout) is far longer.
  slow clients: ...         40 connections from 127.0.0.2, each with
        half a request head: the server closes exactly those over [api]
        max_connections_per_ip (each close waited for, no fixed sleep),
        a client from 127.0.0.1 is served meanwhile, and those under the
        cap are served once their heads are complete.
  slow reader: ...          a client asks for a 16 MiB raw report through
        a 4 KiB receive buffer and reads a byte per 0.5 s: cut within
        [api] answer_timeout (3 s here; printed), although each byte read
        keeps the connection from being idle; a kept-alive connection
        whose requests span twice answer_timeout is served throughout.
  memory: ...               100,000 requests (wrk, or a keep-alive loop
        without it): VmRSS of dmarcd serve after a 10,000 request
        warm-up (a keep-alive loop) and at the end, printed; fails over
        2 MiB of growth (the bound is skipped in a sanitizer build, whose
        shadow memory says nothing about ours). Then the same with 20,000
        requests each on a new connection (Connection: close; wrk, or a
        loop of sockets) after a warm-up of 2,000.
"""
import http.client
import json
import os
import re
import select
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
from api import Server  # noqa: E402

READER = "dmarcd_apisec_test"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
HEADER_TIMEOUT = 3
ROLE_WARNING = "warning: the API's database role may write"
PER_IP = 8
RSS_GROWTH_MAX = 2 * 1024 * 1024
ANSWER_TIMEOUT = 3
# The raw report a slow reader asks for: far more than the socket buffers
# on both sides hold (the sender's grows to tcp_wmem's 4 MiB at most).
BIG_REPORT_BYTES = 16 * 1024 * 1024
BIG_REPORT_ID = "apisec-big-answer"
TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8
CLOSE_REQUESTS = 20000


def sanitized(binary):
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__msan_init" in data


SANITIZER_REPORT = re.compile(r"AddressSanitizer|LeakSanitizer|"
                              r"runtime error:|ThreadSanitizer")


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def request(port, method, path, headers=None, body=None, timeout=15):
    """(status, headers, body bytes) or (None, None, reason)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=False,
                        skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    except (OSError, http.client.HTTPException) as ex:
        return None, None, repr(ex)
    finally:
        conn.close()


def raw_exchange(port, data, timeout=15, source=None):
    """Send bytes as they are; the status of the answer (or None) and its
    bytes, read until the server closes."""
    s = socket.socket()
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    got = b""
    try:
        s.sendall(data)
    except OSError:
        pass    # the server answered and closed before reading it all
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return (int(m.group(1)) if m else None), got


def alive(port):
    st, _, _ = request(port, "GET", "/healthz")
    return st == 200


def load_paths(env, ids):
    """[(template, concrete path, public, answers 403)] from openapi.yaml.

    PyYAML when there is one; else the few lines of the file this needs
    (paths at two spaces, their security: [] and their "403" answers),
    so that the test never skips an endpoint for want of a parser."""
    path = os.path.join(env.top_srcdir, "api", "openapi.yaml")
    spec = None
    try:
        import yaml
        with open(path) as f:
            spec = yaml.safe_load(f)
    except ImportError:
        pass
    out = []
    if spec is not None:
        for tpl, item in spec["paths"].items():
            for method, op in item.items():
                if method != "get":
                    continue
                public = op.get("security", spec.get("security")) == []
                forbids = "403" in (op.get("responses") or {})
                out.append((tpl, public, forbids))
    else:
        with open(path) as f:
            text = f.read()
        body = text.split("\npaths:\n", 1)[1].split("\ncomponents:\n")[0]
        blocks = re.split(r"\n(?=  /)", "\n" + body)
        for b in blocks:
            m = re.match(r"\s*(/[^:]*):", b)
            if not m:
                continue
            # The anchors (*analytics, *list) all include 403.
            forbids = '"403"' in b or "*analytics" in b or "*list" in b
            out.append((m.group(1), "security: []" in b, forbids))
    paths = []
    for tpl, public, forbids in out:
        concrete = tpl.replace("{domain}", "example.com").replace(
            "{id}", str(ids[0]))
        paths.append((tpl, concrete, public, forbids))
    return paths


def check_auth(tap, port, paths, tokens, markers):
    cases = (("no token", None), ("wrong token", "dmarcd_" + "B" * 43),
             ("expired token", tokens["expired"]),
             ("revoked token", tokens["revoked"]),
             ("token of another domain", tokens["other"]))
    for tpl, path, public, forbids in paths:
        for method in METHODS:
            serves = method in ("GET", "HEAD")
            if public:
                if serves:
                    continue    # no token by design: api.py checks them
                st, hd, body = request(port, method, path,
                                       body=b"" if method != "OPTIONS"
                                       else None)
                tap.check("auth: %s %s: public path, other methods 405"
                          % (method, tpl),
                          [] if st == 405 else [repr((st, body[:200]))])
                continue
            for case, tok in cases:
                hdrs = {}
                if tok is not None:
                    hdrs["Authorization"] = "Bearer " + tok
                st, hd, body = request(port, method, path, headers=hdrs)
                problems = []
                if not isinstance(body, bytes):
                    problems.append("no answer: %s" % body)
                elif not serves:
                    if st not in (401, 403, 405):
                        problems.append("status %s" % st)
                elif case == "token of another domain" and not forbids:
                    # /, /v1/domains: they answer, with none of ours.
                    if st != 200:
                        problems.append("status %s, want 200" % st)
                elif st not in (401, 403):
                    problems.append("status %s, want 401 or 403" % st)
                if isinstance(body, bytes):
                    for m in markers:
                        if m in body:
                            problems.append("the answer holds %r" % m)
                    if serves and st != 200 and body and \
                            body.lstrip().startswith(b"{"):
                        try:
                            doc = json.loads(body)
                        except ValueError:
                            doc = {}
                        if "data" in doc:
                            problems.append("data in an error answer")
                tap.check("auth: %s %s: %s" % (method, tpl, case),
                          problems + ([repr((st, body[:300]))]
                                      if problems else []))
        # Basic authentication, what a browser sends to the page.
        if tpl == "/":
            for case, tok in cases[1:3]:
                import base64
                cred = base64.b64encode(b"x:" + tok.encode()).decode()
                st, hd, body = request(port, "GET", path, headers={
                    "Authorization": "Basic " + cred})
                tap.check("auth: GET / with Basic: %s" % case,
                          [] if st == 401 and not any(
                              m in body for m in markers) else
                          [repr((st, body[:300]))])


def check_oversized(tap, port):
    big = b"a" * 65536
    st, got = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                           b"X-Big: " + big + b"\r\n\r\n")
    tap.check("oversized: a 64 KiB header: 431/413/400, the server lives",
              [] if st in (400, 413, 431) and alive(port) else
              [repr((st, got[:200]))])
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    st, got = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                           many + b"\r\n")
    tap.check("oversized: 2000 headers: 431/413/400, the server lives",
              [] if st in (400, 413, 431) and alive(port) else
              [repr((st, got[:200]))])
    st, got = raw_exchange(port, b"GET /v1/domains?x=" + big +
                           b" HTTP/1.1\r\nHost: x\r\n\r\n")
    tap.check("oversized: a 64 KiB request line: 414/431/400, the server "
              "lives",
              [] if st in (400, 414, 431) and alive(port) else
              [repr((st, got[:200]))])
    st, hd, body = request(port, "GET", "/healthz", body=b"hello")
    tap.check("oversized: a body on GET: 413",
              [] if st == 413 else [repr((st, body))])
    st, got = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n0\r\n\r\n")
    tap.check("oversized: a chunked body on GET: 413",
              [] if st == 413 else [repr((st, got[:200]))])
    # 100 MiB announced, 1 MiB sent: the answer must come without the rest.
    s = socket.socket()
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    t0 = time.monotonic()
    s.sendall(b"POST /v1/domains HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 104857600\r\n\r\n")
    try:
        s.sendall(b"x" * (1024 * 1024))
    except OSError:
        pass
    got = b""
    try:
        while not got.endswith(b"}") and len(got) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as ex:
        got += repr(ex).encode()
    s.close()
    took = time.monotonic() - t0
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    tap.note("a 100 MiB body announced: answered in %.2f s" % took)
    tap.check("oversized: a 100 MiB body: refused (413/405) unread",
              [] if m and int(m.group(1)) in (405, 413) and took < 10 and
              alive(port) else [repr((took, got[:200]))])


def slowloris(port, source, stop, result):
    """Send a request's head a byte a second; result["closed"]: seconds
    until the server cut it (None: still open when stop was set)."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
    s = socket.socket()
    s.settimeout(2)
    t0 = time.monotonic()
    try:
        if source:
            s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        result["connected"] = True
        for b in head:
            if stop.is_set():
                break
            s.sendall(bytes([b]))
            # Wait a second, noticing a close at once.
            try:
                s.settimeout(1.0)
                if s.recv(1) == b"":
                    raise ConnectionResetError("closed")
            except socket.timeout:
                pass
    except OSError:
        result["closed"] = time.monotonic() - t0
    finally:
        s.close()


def check_slowloris(tap, env, config_base):
    config = os.path.join(env.work, "slow.conf")
    with open(config, "w") as f:
        f.write(config_base + "request_timeout = 60\nheader_timeout = %d\n"
                % HEADER_TIMEOUT)
    srv = Server(env, config)
    try:
        stop = threading.Event()
        one = {}
        t = threading.Thread(target=slowloris, args=(srv.port, None,
                                                     stop, one))
        t.start()
        t.join(HEADER_TIMEOUT + 10)
        stop.set()
        t.join()
        cut = one.get("closed")
        tap.note("slowloris: cut after %s s (header_timeout %d s, "
                 "request_timeout 60 s)" % (
                     "%.1f" % cut if cut is not None else "never",
                     HEADER_TIMEOUT))
        tap.check("slowloris: one byte a second, cut within header_timeout",
                  [] if cut is not None and HEADER_TIMEOUT - 1 <= cut <=
                  HEADER_TIMEOUT + 2 else ["cut after %r s" % cut])
        tap.check("slowloris: the server lives, no sanitizer report",
                  [] if srv.p.poll() is None and alive(srv.port) and
                  not SANITIZER_REPORT.search(srv.log()) else
                  [srv.log()[-2000:]])
    finally:
        srv.kill()


def closed_by_peer(s):
    """Whether the server closed s (EOF or reset), without waiting."""
    try:
        return s.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def check_per_ip(tap, env, config_base, tokens):
    """40 connections from 127.0.0.2, each with half a request head: the
    server closes exactly those over max_connections_per_ip (waited for,
    each, with a generous deadline), a client from 127.0.0.1 is served
    meanwhile, and the ones under the cap are served once their head is
    complete. header_timeout is long, so that no close here is its."""
    config = os.path.join(env.work, "per-ip.conf")
    with open(config, "w") as f:
        f.write(config_base + "request_timeout = 60\nheader_timeout = 60\n"
                "max_connections_per_ip = %d\nmax_connections = 20\n"
                % PER_IP)
    srv = Server(env, config)
    socks = []
    try:
        half = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        for _ in range(40):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", srv.port))
            try:
                s.sendall(half)
            except OSError:
                pass    # already closed: found below
            socks.append(s)
        # Wait until the server has closed all those over the cap; the
        # deadline only bounds a failure.
        t0 = time.monotonic()
        deadline = t0 + 30
        closed = set()
        while len(closed) < 40 - PER_IP and time.monotonic() < deadline:
            rl, _, _ = select.select([s for s in socks if s not in closed],
                                     [], [], 0.5)
            for s in rl:
                if closed_by_peer(s):
                    closed.add(s)
        waited = time.monotonic() - t0
        t1 = time.monotonic()
        st1, _, _ = request(srv.port, "GET", "/healthz", timeout=10)
        st2, _, body = request(srv.port, "GET", "/v1/domains", headers={
            "Authorization": "Bearer " + tokens["admin"]}, timeout=10)
        took = time.monotonic() - t1
        # The held ones: complete the head, each must be answered.
        held = [s for s in socks if s not in closed]
        served = 0
        for s in held:
            s.settimeout(15)
            try:
                s.sendall(b"Connection: close\r\n\r\n")
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                continue
            if re.match(rb"HTTP/1\.1 200 ", got):
                served += 1
        tap.note("slow clients: %d of 40 closed by the server in %.2f s "
                 "(cap %d per address), %d held ones served; a client "
                 "from 127.0.0.1 served in %.3f s"
                 % (len(closed), waited, PER_IP, served, took))
        tap.check("slow clients: a normal client is served while 40 hold "
                  "connections",
                  [] if st1 == 200 and st2 == 200 and took < 5 else
                  [repr((st1, st2, took, body[:200]))])
        tap.check("slow clients: max_connections_per_ip caps one address "
                  "(those over it closed, those under it served)",
                  [] if len(closed) == 40 - PER_IP and served == PER_IP
                  else ["%d closed, %d of %d held served"
                        % (len(closed), served, len(held))])
        tap.check("slow clients: the server lives, no sanitizer report",
                  [] if srv.p.poll() is None and alive(srv.port) and
                  not SANITIZER_REPORT.search(srv.log()) else
                  [srv.log()[-2000:]])
    finally:
        for s in socks:
            s.close()
        srv.kill()


def big_report(env, path, size):
    """The sample of example.com with its records repeated until the file
    holds size bytes, under a report_id of its own."""
    with open(os.path.join(env.samples, "google-example.com.xml")) as f:
        sample = f.read()
    head, rest = sample.split("<record>", 1)
    records, tail = rest.rsplit("</record>", 1)
    records = "<record>" + records + "</record>"
    head = re.sub(r"<report_id>[^<]*</report_id>",
                  "<report_id>%s</report_id>" % BIG_REPORT_ID, head)
    with open(path, "w") as f:
        f.write(head)
        written = len(head)
        while written < size:
            f.write(records)
            written += len(records)
        f.write(tail)


def tcp_state(s):
    """The socket's TCP state (Linux tcp_info.tcpi_state)."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def slow_reader(port, path, token, give_up):
    """Ask for path, then read the answer a byte per 0.5 s through a small
    receive buffer. (seconds until the server cut the connection or None,
    bytes read)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    t0 = time.monotonic()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
               "\r\n\r\n" % (path, token)).encode())
    got = b""
    cut = None
    try:
        while time.monotonic() - t0 < give_up:
            # A reset or a FIN: the server is done with us, although
            # bytes may still wait in our buffer.
            if tcp_state(s) in (TCP_CLOSE, TCP_CLOSE_WAIT):
                cut = time.monotonic() - t0
                break
            s.settimeout(0.5)
            try:
                b = s.recv(1)
            except socket.timeout:
                continue
            if b == b"":
                cut = time.monotonic() - t0
                break
            got += b
            time.sleep(0.5)
    except OSError:
        cut = time.monotonic() - t0
    finally:
        s.close()
    return cut, len(got)


def check_slow_reader(tap, env, db, config_base, tokens):
    """A client asking for a large raw report and reading it a byte per
    0.5 s: each byte it reads keeps the connection from being idle, so
    only [api] answer_timeout cuts it. header_timeout and request_timeout
    are far longer, so that a cut in time is answer_timeout's."""
    xml = os.path.join(env.work, "big-report.xml")
    big_report(env, xml, BIG_REPORT_BYTES)
    r = db.dmarcd("ingest", xml)
    if r.rc != 0:
        raise RuntimeError(r.describe())
    rows = db.rows("SELECT id FROM dmarcd.reports WHERE report_id = '%s'"
                   % BIG_REPORT_ID)
    if not rows:
        raise RuntimeError("the big report was not stored")
    path = "/v1/reports/example.com/%s/raw" % rows[0][0]
    config = os.path.join(env.work, "answer.conf")
    with open(config, "w") as f:
        f.write(config_base + "request_timeout = 60\nheader_timeout = 30\n"
                "answer_timeout = %d\n" % ANSWER_TIMEOUT)
    srv = Server(env, config)
    try:
        st, hd, _ = request(srv.port, "HEAD", path, headers={
            "Authorization": "Bearer " + tokens["admin"]})
        length = int((hd or {}).get("content-length", 0))
        tap.check("slow reader: the raw report is larger than the socket "
                  "buffers (%d bytes)" % length,
                  [] if st == 200 and length >= BIG_REPORT_BYTES else
                  [repr((st, hd))])
        cut, read = slow_reader(srv.port, path, tokens["admin"],
                                ANSWER_TIMEOUT + 15)
        tap.note("slow reader: cut after %s s (answer_timeout %d s, "
                 "header_timeout 30 s, request_timeout 60 s); %d bytes "
                 "read of an answer of %d"
                 % ("%.2f" % cut if cut is not None else "never",
                    ANSWER_TIMEOUT, read, length))
        tap.check("slow reader: a byte per 0.5 s of a large answer, cut "
                  "within answer_timeout",
                  [] if cut is not None and ANSWER_TIMEOUT - 0.5 <= cut <=
                  ANSWER_TIMEOUT + 3 else
                  ["cut after %r s, %d bytes read" % (cut, read)])
        # The deadline is per request: a keep-alive connection whose
        # requests span twice answer_timeout is served throughout.
        conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                          timeout=10)
        statuses = []
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 2 * ANSWER_TIMEOUT:
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
                time.sleep(0.5)
        except (OSError, http.client.HTTPException) as ex:
            statuses.append(repr(ex))
        finally:
            conn.close()
        tap.check("slow reader: requests over twice answer_timeout on one "
                  "kept-alive connection are all served (%d)"
                  % len(statuses),
                  [] if statuses and all(x == 200 for x in statuses) else
                  [repr(statuses)])
        tap.check("slow reader: the server lives, no sanitizer report",
                  [] if srv.p.poll() is None and alive(srv.port) and
                  not SANITIZER_REPORT.search(srv.log()) else
                  [srv.log()[-2000:]])
    finally:
        srv.kill()


WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def loop_requests(port, count, token, paths):
    """Exactly count requests on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(count):
        conn.request("GET", paths[i % len(paths)], headers={
            "Authorization": "Bearer " + token})
        conn.getresponse().read()
    conn.close()
    return count


def close_requests(port, count, token, paths):
    """Exactly count requests, each on a new connection with Connection:
    close, each read until the server closes it; how many were 200."""
    ok = 0
    for i in range(count):
        st, _ = raw_exchange(port, ("GET %s HTTP/1.1\r\nHost: x\r\n"
                                    "Authorization: Bearer %s\r\n"
                                    "Connection: close\r\n\r\n"
                                    % (paths[i % len(paths)], token))
                             .encode(), timeout=30)
        ok += st is not None
    return ok


def run_requests(port, count, token, paths, close=False):
    """At least count requests, with wrk (runs of 2 s, 8 connections, kept
    alive or, with close, a new one per request) when there is one; how
    many were answered."""
    wrk = shutil.which("wrk")
    if not wrk:
        return (close_requests if close else loop_requests)(
            port, count, token, paths)
    fd, script = tempfile.mkstemp(prefix="dmarcd-apisec.", suffix=".lua")
    with os.fdopen(fd, "w") as f:
        f.write(WRK_SCRIPT % ", ".join('"%s"' % p for p in paths))
    done = 0
    try:
        while done < count:
            r = h.run([wrk, "-t2", "-c8", "-d2s", "-s", script, "-H",
                       "Authorization: Bearer " + token] +
                      (["-H", "Connection: close"] if close else []) +
                      ["http://127.0.0.1:%d/" % port], timeout=60)
            m = re.search(r"(\d+) requests in", r.out)
            if r.rc != 0 or not m or int(m.group(1)) == 0:
                raise RuntimeError("wrk: " + r.describe())
            done += int(m.group(1))
    finally:
        os.unlink(script)
    return done


def check_memory(tap, env, srv, tokens):
    paths = ["/healthz", "/v1/domains", "/v1/domains/example.com/summary",
             "/v1/domains/example.com/reports?limit=5",
             "/v1/domains/example.org/summary", "/nosuch",
             "/v1/domains/example.com/readiness"]
    tool = "wrk" if shutil.which("wrk") else "a keep-alive loop"
    t0 = time.monotonic()
    warm = loop_requests(srv.port, 10000, tokens["admin"], paths)
    before = vm_rss(srv.p.pid)
    rest = run_requests(srv.port, 100000 - warm, tokens["admin"], paths)
    after = vm_rss(srv.p.pid)
    took = time.monotonic() - t0
    growth = after - before
    tap.note("memory: %d requests (%s) in %.1f s; VmRSS %.1f MiB after "
             "the %d warm-up, %.1f MiB at the end: %+d KiB"
             % (warm + rest, tool, took, before / 1048576.0, warm,
                after / 1048576.0, growth // 1024))
    rss_verdict(tap, env, srv, "100,000 requests", growth,
                warm + rest >= 100000, "%d requests answered" % (warm + rest),
                "memory: the server lives")


def rss_verdict(tap, env, srv, what, growth, enough, answered, lives):
    """The memory checks: VmRSS grew under RSS_GROWTH_MAX over what (not
    judged under sanitizers), enough requests were answered, and the
    server still answers."""
    if sanitized(env.dmarcd):
        tap.skip("memory: %s leave VmRSS flat" % what, "sanitizer build")
    else:
        tap.check("memory: %s leave VmRSS flat (under 2 MiB of growth)"
                  % what,
                  [] if growth <= RSS_GROWTH_MAX and enough else
                  ["grew %d bytes, %s" % (growth, answered)])
    tap.check(lives, [] if srv.p.poll() is None and alive(srv.port) else
              [srv.log()[-2000:]])


def check_memory_close(tap, env, srv, tokens):
    """The same with a new connection per request: what a connection
    costs (libmicrohttpd's 32 KiB pool, the watchdog's entry) must go
    with it."""
    paths = ["/healthz", "/v1/domains", "/v1/domains/example.com/summary",
             "/nosuch"]
    # Connection: close is obeyed, so that each request below is one
    # connection: the server ends this one after its answer.
    st, got = raw_exchange(srv.port, ("GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n").encode(),
                           timeout=10)
    tap.check("memory: Connection: close, the server closes after the "
              "answer", [] if st == 200 else [repr(got[:200])])
    tool = "wrk -H 'Connection: close'" if shutil.which("wrk") else \
        "a loop of sockets"
    t0 = time.monotonic()
    warm = close_requests(srv.port, 2000, tokens["admin"], paths)
    before = vm_rss(srv.p.pid)
    rest = run_requests(srv.port, CLOSE_REQUESTS, tokens["admin"], paths,
                        close=True)
    after = vm_rss(srv.p.pid)
    took = time.monotonic() - t0
    growth = after - before
    tap.note("memory: %d requests each on a new connection (%s) in %.1f s; "
             "VmRSS %.1f MiB after the %d warm-up, %.1f MiB at the end: "
             "%+d KiB" % (warm + rest, tool, took, before / 1048576.0, warm,
                          after / 1048576.0, growth // 1024))
    rss_verdict(tap, env, srv, "20,000 connections", growth,
                warm == 2000 and rest >= CLOSE_REQUESTS,
                "%d + %d requests answered" % (warm, rest),
                "memory: the server lives after 20,000 connections")


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.psql("CREATE ROLE %s LOGIN IN ROLE dmarcd_reader" % READER)
    if r.rc != 0:
        raise RuntimeError(r.describe())
    r = db.dmarcd("ingest", env.samples)
    if r.rc not in (0, 65):
        raise RuntimeError(r.describe())
    ids = [int(x[0]) for x in db.rows(
        "SELECT id FROM dmarcd.reports WHERE domain = 'example.com' "
        "ORDER BY id")]
    if not ids:
        raise RuntimeError("no report of example.com")
    # What must never leave for a wrong token: example.com's report id and
    # the addresses of its records.
    with open(os.path.join(env.samples, "google-example.com.xml")) as f:
        sample = f.read()
    markers = [m.encode() for m in re.findall(
        r"<(?:report_id|source_ip)>([^<]+)<", sample)]
    tokens = {}
    for name, args in (("admin", []), ("other", ["--domain",
                                                   "other.example"]),
                       ("expired", ["--expires", "1h"]),
                       ("revoked", [])):
        r = db.dmarcd("token", "add", name, *args)
        if r.rc != 0:
            raise RuntimeError(r.describe())
        tokens[name] = r.out.strip()
    r = db.dmarcd("token", "revoke", "revoked")
    if r.rc != 0:
        raise RuntimeError(r.describe())
    r = db.psql("UPDATE dmarcd.api_tokens SET expires_at = now() - "
                "interval '1 minute' WHERE name = 'expired'")
    if r.rc != 0:
        raise RuntimeError(r.describe())

    config_base = "[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n" \
        "threads = 4\n" % cluster.conninfo_for(db.name, user=READER)
    config = os.path.join(env.work, "api.conf")
    with open(config, "w") as f:
        f.write(config_base + "token_cache = 0\n")
    srv = Server(env, config)
    try:
        st, hd, body = request(srv.port, "GET", "/v1/domains/example.com/"
                               "reports?since=2000-01-01", headers={
                                   "Authorization": "Bearer " +
                                   tokens["admin"]})
        tap.check("the markers are in what a good token gets (so their "
                  "absence means something)",
                  [] if st == 200 and markers[0] in body else
                  [repr((st, body[:300]))])
        paths = load_paths(env, ids)
        tap.check("api/openapi.yaml lists the endpoints (%d)" % len(paths),
                  [] if len(paths) >= 12 and any(
                      p[0] == "/v1/reports/{domain}/{id}/raw"
                      for p in paths) else [repr(paths)])
        check_auth(tap, srv.port, paths, tokens, markers)
        check_oversized(tap, srv.port)
        check_memory(tap, env, srv, tokens)
        check_memory_close(tap, env, srv, tokens)
        tap.check("no token in the server's output",
                  [n for n, t in tokens.items() if t in srv.log()])
        tap.check("no sanitizer report in the server's output",
                  [srv.log()[-3000:]] if SANITIZER_REPORT.search(srv.log())
                  else [])
        tap.check("serve as a reader role: no warning about its role",
                  [srv.log()[-600:]] if ROLE_WARNING in srv.log() else [])
    finally:
        srv.kill()
    # The same with a role that can write (the superuser): a warning.
    config_w = os.path.join(env.work, "api-writer.conf")
    with open(config_w, "w") as f:
        f.write("[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n"
                % cluster.conninfo_for(db.name))
    srv = Server(env, config_w)
    try:
        alive(srv.port)
        tap.check("serve as a role that can write: a warning on stderr "
                  "naming dmarcd_reader",
                  [] if ROLE_WARNING in srv.log() and "dmarcd_reader" in
                  srv.log() else [srv.log()[-600:]])
    finally:
        srv.kill()
    check_slowloris(tap, env, config_base)
    check_per_ip(tap, env, config_base, tokens)
    check_slow_reader(tap, env, db, config_base, tokens)


if __name__ == "__main__":
    h.run_main(main)
