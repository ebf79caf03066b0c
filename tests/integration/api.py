#!/usr/bin/env python3
"""api.py - dmarcd serve over real HTTP against a real PostgreSQL.

Prints TAP; skipped without PostgreSQL. A throwaway cluster, the samples
and 7 more reports of example.com ingested, a login role that only has
dmarcd_reader (what the API must use), tokens made with dmarcd token, and
the real `dmarcd serve` process on 127.0.0.1 (port 0: the one it prints).
Python's http.client only.

Checked: /healthz, /readyz, keep-alive; 401 without a token, with a wrong,
a revoked and an expired one (WWW-Authenticate); 403 for a domain the
token does not cover, the same answer whether the domain has data or not,
and for /metrics and /v1/rejected with a domain token; 400 (never 500)
for garbage dates, bad limits, cursors and days, percent-encoded junk and
NUL bytes; 404, 405, 413, 414; SQL injection strings in every parameter
and in the domain and id segments (400/403/404, the data unchanged);
keyset pagination of reports and records (empty, exactly one page, last
page, cursor past the end, pages that add up to the whole list); raw
downloads byte for byte equal to the ingested files; /metrics as
Prometheus text whose counters follow an ingest; every path of
api/openapi.yaml answering with the status codes and top-level keys it
documents; 32 concurrent clients; readyz 503 while PostgreSQL is down and
200 after its restart; SIGTERM; no token ever in the server's output.
"""
import atexit
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

READER = "dmarcd_api_test"


class Server:
    """dmarcd serve, stopped at exit (only this PID)."""

    def __init__(self, env, config):
        self.errpath = os.path.join(env.work, "serve.err")
        self.err = open(self.errpath, "wb")
        self.p = subprocess.Popen([env.dmarcd, "serve", "--config", config],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=self.err, env=h.clean_env())
        atexit.register(self.kill)
        self.port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.p.poll() is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("dmarcd serve did not start: " + self.log())

    def log(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Client:
    def __init__(self, port):
        self.port = port

    def request(self, path, token=None, method="GET", body=None,
                headers=None, conn=None):
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=30)
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        if own:
            conn.close()
        return out

    def json(self, path, token=None, **kw):
        status, headers, data = self.request(path, token, **kw)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = {"unparsable": data[:200].decode("latin-1")}
        return status, headers, doc


def make_reports(env, directory, n):
    """n more reports of example.com: the google sample with its own
    report_id and dates, one day apart."""
    with open(os.path.join(env.samples, "google-example.com.xml"),
              encoding="utf-8") as f:
        text = f.read()
    begin = int(re.search(r"<begin>\s*(\d+)\s*</begin>", text).group(1))
    end = int(re.search(r"<end>\s*(\d+)\s*</end>", text).group(1))
    os.makedirs(directory)
    for i in range(n):
        shift = (i + 1) * 86400
        doc = re.sub(r"<report_id>([^<]*)</report_id>",
                     lambda m: "<report_id>%s-page%d</report_id>"
                     % (m.group(1), i), text)
        doc = re.sub(r"<begin>\s*\d+\s*</begin>",
                     "<begin>%d</begin>" % (begin + shift), doc)
        doc = re.sub(r"<end>\s*\d+\s*</end>",
                     "<end>%d</end>" % (end + shift), doc)
        with open(os.path.join(directory, "r%d.xml" % i), "w") as f:
            f.write(doc)


def error_code(doc):
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return doc["error"].get("code")
    return None


def expect(tap, what, got, status, code=None):
    """got: (status, headers, doc) of Client.json."""
    problems = []
    if got[0] != status:
        problems.append("status %s, want %s: %r" % (got[0], status, got[2]))
    elif code is not None and error_code(got[2]) != code:
        problems.append("error code %r, want %r: %r" % (
            error_code(got[2]), code, got[2]))
    tap.check(what, problems)


METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? '
    r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def parse_metrics(text):
    """{name or name{labels}: float}, or raise ValueError on a bad line."""
    out = {}
    types = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) != 4 or parts[3] not in ("counter", "gauge",
                                                    "untyped", "summary",
                                                    "histogram"):
                raise ValueError("bad TYPE line: %r" % line)
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        if m.group(1) not in types:
            raise ValueError("no TYPE for %s" % m.group(1))
        out[m.group(1) + (m.group(2) or "")] = float(m.group(7))
    return out


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.psql("CREATE ROLE %s LOGIN IN ROLE dmarcd_reader" % READER)
    if r.rc != 0:
        raise RuntimeError(r.describe())
    more = os.path.join(env.work, "more")
    make_reports(env, more, 7)
    for path in (env.samples, more,
                 os.path.join(env.adversarial, "missing-report-id.xml")):
        r = db.dmarcd("ingest", path)
        if r.rc not in (0, 65):
            raise RuntimeError(r.describe())

    tokens = {}
    for name, args in (("admin", []), ("com", ["--domain", "EXAMPLE.com"]),
                       ("org", ["--domain", "example.org"]),
                       ("revoked", []), ("expired", ["--expires", "1h"])):
        r = db.dmarcd("token", "add", name, *args)
        tap.check("token add %s prints one token" % name,
                  [] if r.rc == 0 and re.fullmatch(
                      r"dmarcd_[A-Za-z0-9_-]{43}\n", r.out) else
                  [r.describe()])
        tokens[name] = r.out.strip()
    r = db.dmarcd("token", "add", "admin")
    tap.check("token add with a name in use: exit 65",
              [] if r.rc == 65 and "exists already" in r.err else
              [r.describe()])
    r = db.dmarcd("token", "revoke", "revoked")
    tap.check("token revoke", [] if r.rc == 0 else [r.describe()])
    r = db.dmarcd("token", "revoke", "nosuch")
    tap.check("token revoke of an unknown name: exit 66",
              [] if r.rc == 66 else [r.describe()])
    db.psql("UPDATE dmarcd.api_tokens SET expires_at = now() - "
            "interval '1 minute' WHERE name = 'expired'")
    r = db.dmarcd("token", "list")
    want = {"admin": "valid", "revoked": "revoked", "expired": "expired"}
    problems = [] if r.rc == 0 else [r.describe()]
    for name, state in want.items():
        if not re.search(r"^%s\s+%s\s" % (name, state), r.out, re.M):
            problems.append("%s is not %s in: %s" % (name, state, r.out))
    for t in tokens.values():
        if t in r.out:
            problems.append("token list shows a token")
    if db.int("SELECT count(*) FROM dmarcd.api_tokens WHERE "
              "domains = '{example.com}'") != 1:
        problems.append("--domain EXAMPLE.com not stored as example.com")
    tap.check("token list: states, never a token", problems)

    config = os.path.join(env.work, "api.conf")
    with open(config, "w") as f:
        f.write("[api]\nlisten = 127.0.0.1:0\ndatabase = %s\nthreads = 4\n"
                "request_timeout = 10\n" % cluster.conninfo_for(
                    db.name, user=READER))
    srv = Server(env, config)
    c = Client(srv.port)
    admin, com = tokens["admin"], tokens["com"]

    # A second server on the same address: in use, which may pass (the
    # other one stops): exit 75 (temporary), so systemd restarts it,
    # not 64, after which it would give up.
    taken = os.path.join(env.work, "taken.conf")
    with open(taken, "w") as f:
        f.write("[api]\nlisten = 127.0.0.1:%d\ndatabase = %s\n" % (
            srv.port, cluster.conninfo_for(db.name, user=READER)))
    r = h.run([env.dmarcd, "serve", "--config", taken], timeout=30)
    tap.check("serve on an address in use: exit 75, saying so",
              [] if r.rc == 75 and "in use" in r.err else [r.describe()])

    # -- health, keep-alive
    st, hd, doc = c.json("/healthz")
    expect(tap, "healthz: 200 without a token", (st, hd, doc), 200)
    st, hd, doc = c.json("/readyz")
    tap.check("readyz: 200, ready, the schema version",
              [] if st == 200 and doc["data"]["status"] == "ready" else
              [repr((st, doc))])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    a = c.request("/healthz", conn=conn)
    b = c.request("/v1/domains", admin, conn=conn)
    conn.close()
    tap.check("two requests on one connection (keep-alive)",
              [] if a[0] == 200 and b[0] == 200 and
              a[1].get("connection", "").lower() != "close" else
              [repr((a[:2], b[:2]))])
    st, hd, body = c.request("/healthz", method="HEAD")
    tap.check("HEAD: 200 without a body",
              [] if st == 200 and body == b"" else [repr((st, body))])

    # -- authentication
    for path in ("/v1/domains", "/v1/domains/example.com/reports",
                 "/v1/reports/example.com/1", "/metrics", "/v1/rejected"):
        st, hd, doc = c.json(path)
        tap.check("no token: 401 with WWW-Authenticate: %s" % path,
                  [] if st == 401 and error_code(doc) == "no_token" and
                  hd.get("www-authenticate", "").startswith("Bearer") else
                  [repr((st, hd, doc))])
    for what, tok in (("wrong", "dmarcd_" + "A" * 43), ("revoked",
                      tokens["revoked"]), ("expired", tokens["expired"]),
                      ("empty", ""), ("overlong", "x" * 600)):
        got = c.json("/v1/domains", tok)
        expect(tap, "%s token: 401" % what, got, 401, "invalid_token")
    got = c.json("/v1/domains", None, headers={"Authorization": "Basic "
                                                "YWRtaW46YWRtaW4="})
    expect(tap, "Basic instead of Bearer: 401", got, 401, "no_token")

    # -- scopes
    a = c.json("/v1/domains/example.org/reports", com)
    b = c.json("/v1/domains/nosuch.example/reports", com)
    d = c.json("/v1/domains/example.org/reports", tokens["org"])
    tap.check("a token for another domain: 403, the same answer whether "
              "the domain has data or not",
              [] if a[0] == b[0] == 403 and a[2] == b[2] and
              d[0] == 200 else [repr((a, b, d))])
    st, hd, doc = c.json("/v1/domains/EXAMPLE.COM/reports?since=2020-01-01",
                         com)
    tap.check("the domain segment is case-insensitive",
              [] if st == 200 and len(doc["data"]) == 8 else
              [repr((st, doc))])
    st, hd, doc = c.json("/v1/domains", com)
    tap.check("/v1/domains: only the token's domains",
              [] if st == 200 and [x["domain"] for x in doc["data"]] ==
              ["example.com"] else [repr(doc)])
    st, hd, doc = c.json("/v1/domains", admin)
    tap.check("/v1/domains: every domain for an every-domain token",
              [] if st == 200 and [x["domain"] for x in doc["data"]] ==
              ["example.com", "example.net", "example.org"] else
              [repr(doc)])
    expect(tap, "/metrics with a domain token: 403",
           c.json("/metrics", com), 403, "forbidden")
    expect(tap, "/v1/rejected with a domain token: 403",
           c.json("/v1/rejected", com), 403, "forbidden")
    st, hd, doc = c.json("/v1/rejected?since=2000-01-01", admin)
    tap.check("/v1/rejected: the rejected input",
              [] if st == 200 and len(doc["data"]) == 1 and
              doc["data"][0]["error"] else [repr(doc)])

    # -- bad parameters: 400, never 500
    bad = ["since=yesterday", "since=2026-13-01", "until=2026-02-30",
           "since=2026-01-01T25:00:00Z", "since=1969-12-31",
           "until=99999999w", "since=2027-01-01&until=2026-01-01",
           "limit=0", "limit=-1", "limit=1001", "limit=abc",
           "limit=99999999999999999999999", "limit=1e3", "limit=",
           "cursor=garbage", "cursor=1_2_3", "cursor=1_-2", "cursor=_",
           "since=%ZZ", "since=%00", "since=2026-01-01%00",
           "limit=1%00", "since=%FF%FE", "cursor=" + "9" * 300]
    problems = []
    for q in bad:
        st, hd, doc = c.json("/v1/domains/example.com/reports?" + q, admin)
        if st != 400 or error_code(doc) != "bad_parameter":
            problems.append("%s: %s %r" % (q, st, doc))
    for q in ("days=0", "days=3651", "days=x", "until=x"):
        st, hd, doc = c.json("/v1/domains/example.com/readiness?" + q,
                             admin)
        if st != 400:
            problems.append("readiness %s: %s %r" % (q, st, doc))
    for q in ("limit=0", "cursor=5_1", "cursor=x"):
        st, hd, doc = c.json("/v1/reports/example.com/1?" + q, admin)
        if st != 400:
            problems.append("report %s: %s %r" % (q, st, doc))
    tap.check("bad parameters: 400 bad_parameter", problems)

    problems = []
    for path, want in (("/nope", 404), ("/v1/domains/", 404),
                       ("/v1//domains", 404), ("/v1/domains/example.com",
                                               404),
                       ("/v1/domains/example.com/reports/x", 404),
                       ("/v2/domains", 404),
                       ("/v1/domains/exa%00mple.com/reports", 400),
                       ("/v1/domains/%2e%2e/reports", 400),
                       ("/v1/domains/a%2fb/reports", 404),
                       ("/v1/reports/example.com/abc", 404),
                       ("/v1/reports/example.com/0", 404),
                       ("/v1/reports/example.com/99999999999999999999",
                        404),
                       ("/v1/reports/example.com/999999", 404),
                       ("/v1/reports/example.com/999999/raw", 404),
                       ("/" + "a" * 2000, 414)):
        st, hd, doc = c.json(path, admin)
        if st != want or error_code(doc) is None:
            problems.append("%s: %s %r, want %d" % (path[:80], st, doc,
                                                     want))
    try:
        st = c.request("/" + "a" * 100000, admin)[0]
    except (OSError, http.client.HTTPException):
        st = "closed"       # refused before any answer: fine too
    if st not in (414, 431, "closed"):
        problems.append("a 100 KB path: %s" % st)
    st, hd, doc = c.json("/v1/domains", admin, method="POST")
    if st != 405 or "GET" not in hd.get("allow", ""):
        problems.append("POST: %s %r" % (st, hd))
    st, hd, doc = c.json("/v1/domains", admin, method="DELETE")
    if st != 405:
        problems.append("DELETE: %s" % st)
    st, hd, doc = c.json("/nope", admin, method="POST")
    if st != 404:
        problems.append("POST to an unknown path: %s" % st)
    st, hd, doc = c.json("/v1/domains", admin, method="POST", body=b"x=1")
    if st != 413 or error_code(doc) != "body_not_allowed":
        problems.append("POST with a body: %s %r" % (st, doc))
    st, hd, doc = c.json("/healthz")
    if st != 200:
        problems.append("alive after all that: %s" % st)
    tap.check("404, 405, 413, 414 with JSON error codes", problems)

    # -- SQL injection everywhere
    before = db.counts()
    tokens_before = db.int("SELECT count(*) FROM dmarcd.api_tokens")
    evil = ["' OR '1'='1", "1; DROP TABLE dmarcd.reports; --",
            "example.com' UNION SELECT sha256::text FROM "
            "dmarcd.api_tokens --", "1)) OR ((1=1", "$1", "\\x00",
            "'; DELETE FROM dmarcd.api_tokens; --"]
    problems = []
    for e in evil:
        q = urllib.parse.quote(e, safe="")
        paths = ["/v1/domains/%s/reports" % q, "/v1/domains/%s/summary" % q,
                 "/v1/reports/%s/1" % q, "/v1/reports/example.com/%s" % q,
                 "/v1/reports/example.com/%s/raw" % q]
        for p in ("since", "until", "limit", "cursor"):
            paths.append("/v1/domains/example.com/reports?%s=%s" % (p, q))
            paths.append("/v1/domains/example.com/failures?%s=%s" % (p, q))
            paths.append("/v1/rejected?%s=%s" % (p, q))
        paths.append("/v1/domains/example.com/readiness?days=%s" % q)
        paths.append("/v1/reports/example.com/1?cursor=%s" % q)
        for p in paths:
            for tok in (admin, com):
                st, hd, doc = c.json(p, tok)
                if st not in (400, 403, 404) or error_code(doc) is None:
                    problems.append("%s: %s %r" % (p, st, doc))
    if db.counts() != before:
        problems.append("the data changed: %r -> %r" % (before, db.counts()))
    if db.int("SELECT count(*) FROM dmarcd.api_tokens") != tokens_before:
        problems.append("api_tokens changed")
    tap.check("SQL injection in every parameter and segment: 400/403/404, "
              "data intact", problems[:10])

    # -- pagination
    base = "/v1/domains/example.com/reports?since=2020-01-01"
    st, hd, doc = c.json(base + "&limit=1000", admin)
    every = [x["id"] for x in doc["data"]]
    begins = [x["begin"] for x in doc["data"]]
    problems = []
    if len(every) != 8 or doc["next_cursor"] is not None:
        problems.append("all: %r" % doc)
    if begins != sorted(begins, reverse=True):
        problems.append("not newest first: %r" % begins)
    for limit in (1, 3, 7, 8):
        seen, cursor, pages = [], None, 0
        while True:
            url = base + "&limit=%d" % limit + (
                "&cursor=" + cursor if cursor else "")
            st, hd, page = c.json(url, admin)
            pages += 1
            if st != 200 or len(page["data"]) > limit or pages > 20:
                problems.append("limit %d: %s %r" % (limit, st, page))
                break
            seen += [x["id"] for x in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if seen != every:
            problems.append("limit %d: pages give %r, want %r" % (
                limit, seen, every))
        want_pages = -(-8 // limit)
        if pages != want_pages:
            problems.append("limit %d: %d pages, want %d" % (
                limit, pages, want_pages))
    st, hd, page = c.json(base + "&limit=8", admin)
    if len(page["data"]) != 8 or page["next_cursor"] is not None:
        problems.append("exactly one page: %r" % page)
    st, hd, page = c.json("/v1/domains/example.com/reports?since=2000-01-01"
                          "&until=2000-02-01", admin)
    if st != 200 or page != {"data": [], "next_cursor": None}:
        problems.append("empty: %r" % page)
    st, hd, page = c.json(base + "&cursor=0_1", admin)
    if st != 200 or page != {"data": [], "next_cursor": None}:
        problems.append("cursor past the end: %r" % page)
    tap.check("reports: keyset pages add up to the list; empty, one page, "
              "last page, past the end", problems)

    rid = every[-1]
    problems = []
    idx, cursor, pages = [], None, 0
    while pages < 10:
        st, hd, page = c.json("/v1/reports/example.com/%d?limit=10%s" % (
            rid, "&cursor=" + cursor if cursor else ""), admin)
        pages += 1
        if st != 200:
            problems.append("%s %r" % (st, page))
            break
        if page["data"]["report"]["id"] != rid:
            problems.append("report %r" % page["data"]["report"])
        idx += [x["idx"] for x in page["data"]["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if idx != list(range(1, 26)) or pages != 3:
        problems.append("records %r in %d pages" % (idx, pages))
    tap.check("a report's 25 records in pages of 10", problems)

    # -- raw downloads
    problems = []
    ids = {}
    for domain in ("example.com", "example.net", "example.org"):
        st, hd, doc = c.json("/v1/domains/%s/reports?since=2020-01-01"
                             "&until=2026-01-02" % domain, admin)
        ids[domain] = doc["data"][-1]["id"]
    for domain, name, ctype in (
            ("example.com", "google-example.com.xml", "application/xml"),
            ("example.net", "mailru-example.net.zip", "application/zip"),
            ("example.org", "aggregate-report-mail.eml", "message/rfc822")):
        st, hd, body = c.request("/v1/reports/%s/%d/raw" % (
            domain, ids[domain]), admin)
        with open(os.path.join(env.samples, name), "rb") as f:
            want = f.read()
        if st != 200 or body != want:
            problems.append("%s: %s, %d bytes, want %d" % (
                name, st, len(body), len(want)))
        if hd.get("content-type") != ctype or "attachment" not in \
                hd.get("content-disposition", ""):
            problems.append("%s: headers %r" % (name, hd))
    st, hd, doc = c.json("/v1/reports/example.org/%d/raw" % ids["example.org"],
                         com)
    if st != 403:
        problems.append("raw with a token for another domain: %s" % st)
    tap.check("raw downloads equal the ingested files", problems)

    # -- metrics
    st, hd, body = c.request("/metrics", admin)
    problems = []
    try:
        m1 = parse_metrics(body.decode())
    except ValueError as ex:
        m1 = {}
        problems.append(str(ex))
    if st != 200 or not hd.get("content-type", "").startswith("text/plain"):
        problems.append("status %s, %r" % (st, hd))
    if m1.get("dmarcd_reports_ingested_total") != 10:
        problems.append("reports %r" % m1.get(
            "dmarcd_reports_ingested_total"))
    if not m1.get('dmarcd_api_requests_total{code="200"}'):
        problems.append("no API request counter for 200")
    tap.check("/metrics parses as Prometheus text", problems)
    extra = os.path.join(env.work, "extra")
    make_reports(env, extra, 9)
    os.unlink(os.path.join(extra, "r%d.xml" % 0))
    for i in range(1, 7):
        os.unlink(os.path.join(extra, "r%d.xml" % i))
    r = db.dmarcd("ingest", extra)
    db.psql("INSERT INTO dmarcd.imap_mailboxes (account, mailbox, "
            "uidvalidity, last_uid, last_fetch_at) VALUES "
            "('acct\"1', 'INBOX', 1, 1, to_timestamp(1767225600))")
    st, hd, body = c.request("/metrics", admin)
    m2 = parse_metrics(body.decode())
    problems = [] if r.rc == 0 else [r.describe()]
    if m2.get("dmarcd_reports_ingested_total", 0) != \
            m1.get("dmarcd_reports_ingested_total", 0) + 2:
        problems.append("reports %r -> %r" % (
            m1.get("dmarcd_reports_ingested_total"),
            m2.get("dmarcd_reports_ingested_total")))
    if m2.get("dmarcd_records_ingested_total", 0) != \
            m1.get("dmarcd_records_ingested_total", 0) + 50:
        problems.append("records did not grow by 50")
    if m2.get('dmarcd_mailbox_last_fetch_timestamp_seconds{account='
              '"acct\\"1",mailbox="INBOX"}') != 1767225600:
        problems.append("last fetch: %r" % [k for k in m2 if "mailbox" in k])
    if m2.get('dmarcd_api_requests_total{code="401"}', 0) < 5:
        problems.append("401s not counted")
    tap.check("/metrics: counters follow an ingest; last fetch per mailbox",
              problems)

    # -- every documented path answers as documented
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is None:
        tap.skip("api/openapi.yaml: every path as documented",
                 "no PyYAML (python3-yaml)")
    else:
        with open(os.path.join(env.top_srcdir, "api", "openapi.yaml")) as f:
            spec = yaml.safe_load(f)
        tap.check("api/openapi.yaml: every path as documented",
                  check_openapi(spec, c, admin, com, ids))

    # -- 32 concurrent clients
    times, failures = [], []
    lock = threading.Lock()

    def worker(n):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        for i in range(25):
            path = ("/v1/domains/example.com/reports?since=2020-01-01"
                    "&limit=5", "/v1/domains", "/v1/reports/example.com/%d"
                    "?limit=5" % rid)[i % 3]
            t0 = time.monotonic()
            try:
                st, hd, body = c.request(path, admin, conn=conn)
            except Exception as ex:  # noqa: BLE001
                st = repr(ex)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                                  timeout=30)
            with lock:
                times.append(time.monotonic() - t0)
                if st != 200:
                    failures.append(st)
        conn.close()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1] * 1000
    tap.note("32 clients x 25 requests: %.0f requests/s, p50 %.1f ms, "
             "p99 %.1f ms" % (len(times) / wall,
                              times[len(times) // 2] * 1000, p99))
    tap.check("32 concurrent clients: every answer 200",
              [] if not failures and len(times) == 800 else
              ["%d failures: %r" % (len(failures), failures[:5])])

    # -- PostgreSQL away and back
    cluster.kill()
    st, hd, doc = c.json("/readyz")
    st2, hd2, doc2 = c.json("/v1/domains/example.com/reports", admin)
    st3, hd3, doc3 = c.json("/healthz")
    tap.check("PostgreSQL stopped: readyz 503, a query 503, healthz 200",
              [] if st == 503 and error_code(doc) == "not_ready" and
              st2 == 503 and st3 == 200 else
              [repr(((st, doc), (st2, doc2), st3))])
    cluster.restart()
    ok = []
    for _ in range(50):
        st, hd, doc = c.json("/readyz")
        ok.append(st)
        if st == 200:
            break
        time.sleep(0.2)
    st2, hd2, doc2 = c.json("/v1/domains/example.com/reports?limit=1",
                            admin)
    tap.check("PostgreSQL restarted: readyz 200 again, queries answer",
              [] if ok[-1] == 200 and st2 == 200 else [repr((ok, st2,
                                                               doc2))])

    # -- HTTPS and IPv6: a second server with tls_cert and tls_key
    check_tls(tap, env, cluster, db)

    # -- stop
    srv.p.send_signal(signal.SIGTERM)
    try:
        rc = srv.p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    log = srv.log()
    tap.check("SIGTERM: exit 0", [] if rc == 0 else ["rc %r: %s" % (
        rc, log[-500:])])
    leaks = [n for n, t in tokens.items() if t and t in log]
    tap.check("no token in the server's output",
              ["%s appears" % n for n in leaks])


def check_tls(tap, env, cluster, db):
    import shutil
    import ssl
    if shutil.which("openssl") is None:
        tap.skip("HTTPS with tls_cert and tls_key", "no openssl")
        return
    cert = os.path.join(env.work, "api.crt")
    key = os.path.join(env.work, "api.key")
    r = h.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
               "-keyout", key, "-out", cert, "-days", "2", "-subj",
               "/CN=localhost", "-addext",
               "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"])
    if r.rc != 0:
        tap.skip("HTTPS with tls_cert and tls_key", "openssl: " + r.err)
        return
    config = os.path.join(env.work, "tls.conf")
    with open(config, "w") as f:
        f.write("[api]\nlisten = 127.0.0.1:0, [::1]:0\ndatabase = %s\n"
                "tls_cert = %s\ntls_key = %s\n" % (
                    cluster.conninfo_for(db.name, user=READER), cert, key))
    try:
        srv = Server(env, config)
    except RuntimeError as ex:
        tap.check("HTTPS with tls_cert and tls_key", [str(ex)])
        return
    ctx = ssl.create_default_context(cafile=cert)
    problems = []
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port,
                                           context=ctx, timeout=10)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        if resp.status != 200 or b"ok" not in resp.read():
            problems.append("HTTPS /healthz: %s" % resp.status)
        conn.close()
    except (OSError, ssl.SSLError) as ex:
        problems.append("HTTPS: %r" % ex)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/healthz")
        st = conn.getresponse().status
        problems.append("plain HTTP to the HTTPS port answered %s" % st)
    except (OSError, http.client.HTTPException):
        pass
    m = re.search(r"\[::1\]:(\d+)", srv.log())
    if m is None:
        problems.append("no [::1] address in: %s" % srv.log())
    else:
        try:
            conn = http.client.HTTPSConnection("::1", int(m.group(1)),
                                               context=ctx, timeout=10)
            conn.request("GET", "/healthz")
            if conn.getresponse().status != 200:
                problems.append("HTTPS over IPv6 failed")
            conn.close()
        except OSError as ex:
            problems.append("IPv6: %r" % ex)
    srv.p.send_signal(signal.SIGTERM)
    srv.p.wait(timeout=15)
    tap.check("HTTPS with tls_cert and tls_key, on IPv4 and IPv6",
              problems)


def check_openapi(spec, c, admin, com, ids):
    """Each path: with valid values, without a token, another domain's
    token, a bad limit, POST; every status got must be documented, and
    JSON answers carry their schema's required top-level keys."""
    comps = spec["components"]

    def resolve(obj):
        while isinstance(obj, dict) and "$ref" in obj:
            node = spec
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part]
            obj = node
        return obj

    problems = []
    for path, item in spec["paths"].items():
        op = item["get"]
        responses = {int(k): resolve(v) for k, v in op["responses"].items()}
        params = [resolve(p)["name"] for p in op.get("parameters", [])]
        secured = op.get("security", spec.get("security")) != []
        url = path.replace("{domain}", "example.org").replace(
            "{id}", str(ids["example.org"]))
        if "since" in params:
            url += "?since=2020-01-01"
        tries = [("valid", url, admin, "GET", None)]
        if secured:
            tries.append(("no token", url, None, "GET", 401))
        if "{domain}" in path:
            tries.append(("other domain", url, com, "GET", 403))
        if "limit" in params:
            tries.append(("bad limit", url + ("&" if "?" in url else "?") +
                          "limit=0", admin, "GET", 400))
        tries.append(("POST", url, admin, "POST", 405))
        for what, u, tok, method, want in tries:
            st, hd, body = c.request(u, tok, method=method)
            if st not in responses:
                problems.append("%s %s (%s): %d is not documented" % (
                    method, path, what, st))
                continue
            if want is not None and st != want:
                problems.append("%s (%s): %d, want %d" % (path, what, st,
                                                          want))
            if want is None and not 200 <= st < 300:
                problems.append("%s (%s): %d" % (path, what, st))
            content = responses[st].get("content", {})
            if "application/json" in content:
                schema = resolve(content["application/json"]["schema"])
                try:
                    doc = json.loads(body)
                except ValueError:
                    problems.append("%s (%s): not JSON" % (path, what))
                    continue
                for key in schema.get("required", []):
                    if key not in doc:
                        problems.append("%s (%s): no %r in %r" % (
                            path, what, key, body[:200]))
                if "error" in schema.get("required", []):
                    codes = resolve(comps["schemas"]["Error"])[
                        "properties"]["error"]["properties"]["code"]["enum"]
                    if error_code(doc) not in codes:
                        problems.append("%s (%s): code %r undocumented" % (
                            path, what, error_code(doc)))
    return problems


if __name__ == "__main__":
    h.run_main(main)
