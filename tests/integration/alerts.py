#!/usr/bin/env python3
"""alerts.py - dmarcd alerts against a real PostgreSQL and a webhook
listener of the test's own (http.server on 127.0.0.1, a free port), which
records every request and answers as each case says.

Prints TAP; skipped without PostgreSQL. Reports are written here as
small XML files, their dates relative to today so that the windows hold:

* a new reporter beside a known one is alerted once: one request, the
  JSON form ({"alerts": [{domain, kind, key, detail, raised_at}],
  "source": "dmarcd"}), the HMAC-SHA256 signature of the body checked
  with the key; a second run raises and sends nothing; a domain whose
  reporters are all new alerts nothing; --dry-run shows and changes
  nothing; the webhook's secret path is never printed;
* the Slack form: {"text": one sentence}, with &, < and > escaped;
* max_per_hour 3 with 5 alerts: 3 requests, 2 held; none in the same
  hour; the 2 once the first 3 are over an hour old, oldest first;
* a webhook answering 500 then 200: delivered by the second request of
  the same run, once;
* 410: three requests, given up, recorded (attempts, last_error), exit
  75; not tried again;
* a webhook that never answers: timeout, exit 75, the alert still
  waiting and held back (a run at once sends nothing), delivered once
  due again; a closed port: exit 75;
* two dmarcd alerts at once: each alert sent once;
* unauthorised senders (min_messages 100): one new sender with 100
  messages in the window (over two days) is alerted, with its network as
  the key; one with 99 is not (but is with min_messages 99), nor one
  seen 30 days ago, nor one outside the window;
* the aligned share (share_drop 5): a domain from 100% over the 30 days
  before to 80% over the last 7 is alerted, keyed by the ISO week, in
  the Slack form; one down 4 points is not, nor one whose last 7 days
  hold fewer than min_messages legitimate messages; the drop is not
  raised again (under another key) while the first is under 30 days old,
  and is once that one is older;
* dmarcd run (with a Dovecot of the test's own; skipped without one):
  the pass that stores a report from a new reporter posts its alert;
* no webhook, a webhook refused by the configuration: exit 64, the URL
  not quoted; PostgreSQL unreachable: exit 75.
"""
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DAY = 86400
TODAY = int(time.time()) // DAY * DAY
DOMAIN = "example.com"
HOOK_PATH = "/hook/T0/B0/Zq9HookSecret"
SECRET = "k3y-for-the-HMAC"


class Listener:
    """A webhook: records each request; answers with the next of
    answers (a status, or "hang": no answer at all), then default."""

    def __init__(self, answers=(), default=200, delay=0.0):
        self.requests = []
        self.answers = list(answers)
        self.default = default
        self.delay = delay
        self.lock = threading.Lock()
        self.release = threading.Event()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with listener.lock:
                    listener.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in
                                    self.headers.items()},
                        "body": body, "at": time.time()})
                    answer = listener.answers.pop(0) if \
                        listener.answers else listener.default
                if answer == "hang":
                    listener.release.wait(60)
                    return
                if listener.delay:
                    time.sleep(listener.delay)
                text = b"gone" if answer == 410 else b"ok"
                self.send_response(answer)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d%s" % (self.port, HOOK_PATH)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def bodies(self):
        return [json.loads(r["body"]) for r in self.requests]


def record(ip, count, dkim="pass", spf="pass", header_from=DOMAIN,
           dkim_domain=DOMAIN, spf_domain=DOMAIN):
    return {"ip": ip, "count": count, "dkim": dkim, "spf": spf,
            "header_from": header_from, "dkim_domain": dkim_domain,
            "spf_domain": spf_domain}


def report_xml(org, report_id, domain, day, records):
    """An aggregate report on one UTC day (day: days before today)."""
    begin = TODAY - day * DAY
    rows = []
    for r in records:
        aligned_dkim = r["dkim"] == "pass" and r["dkim_domain"] == domain
        aligned_spf = r["spf"] == "pass" and r["spf_domain"] == domain
        rows.append("""  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>%s</dkim>
        <spf>%s</spf>
      </policy_evaluated>
    </row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results>
      <dkim><domain>%s</domain><selector>s1</selector><result>%s</result></dkim>
      <spf><domain>%s</domain><scope>mfrom</scope><result>%s</result></spf>
    </auth_results>
  </record>""" % (r["ip"], r["count"], "pass" if aligned_dkim else "fail",
                  "pass" if aligned_spf else "fail", r["header_from"],
                  r["dkim_domain"], r["dkim"], r["spf_domain"], r["spf"]))
    return """<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>%s</org_name>
    <email>dmarc@%s</email>
    <report_id>%s</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>
  </policy_published>
%s
</feedback>
""" % (xml_escape(org), "reporter.example", report_id, begin,
       begin + DAY - 1, domain, "\n".join(rows))


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Case:
    """A fresh database and a directory for its reports and config."""
    n = 0

    def __init__(self, env, cluster):
        Case.n += 1
        self.env = env
        self.db = cluster.new_db()
        self.dir = os.path.join(env.work, "case%d" % Case.n)
        os.makedirs(self.dir)
        self.files = 0

    def ingest(self, reports):
        """reports: (org, day, records) or (org, day, records, domain)."""
        d = os.path.join(self.dir, "in%d" % self.files)
        os.makedirs(d)
        for i, rep in enumerate(reports):
            org, day, records = rep[:3]
            domain = rep[3] if len(rep) > 3 else DOMAIN
            self.files += 1
            with open(os.path.join(d, "r%d.xml" % i), "w") as f:
                f.write(report_xml(org, "id-%d" % self.files, domain, day,
                                   records))
        r = self.db.dmarcd("ingest", "--quiet", d)
        if r.rc != 0:
            raise RuntimeError("ingest: " + r.describe())

    def config(self, url, **keys):
        path = os.path.join(self.dir, "dmarcd.conf")
        lines = ["[alerts]"]
        if url is not None:
            lines.append("webhook = %s" % url)
        for k, v in keys.items():
            lines.append("%s = %s" % (k, v))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)   # a webhook written in it is a secret
        return path

    def alerts(self, config, *args, timeout=120):
        return self.db.dmarcd("alerts", *args, config=config,
                              timeout=timeout)

    def rows(self):
        return self.db.rows(
            "SELECT id, domain, kind, key, sent_at IS NOT NULL, attempts, "
            "coalesce(last_error, ''), given_up_at IS NOT NULL, "
            "coalesce(next_attempt_at > now(), false) FROM dmarcd.alerts "
            "ORDER BY id")


def old_and_new(case, new_orgs, domain=DOMAIN):
    """A reporter known for weeks, and new ones since two days."""
    reps = [("known.example", 20, [record("192.0.2.1", 10)], domain),
            ("known.example", 2, [record("192.0.2.1", 10)], domain)]
    for i, org in enumerate(new_orgs):
        reps.append((org, 2, [record("192.0.2.%d" % (10 + i), 5)], domain))
    case.ingest(reps)


def secret_file(case):
    path = os.path.join(case.dir, "alerts.key")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(path, 0o600)
    return path


def no_secret(r):
    """The webhook's path is never printed."""
    if "Zq9HookSecret" in r.out + r.err:
        return ["the webhook's secret path was printed:\n" + r.describe()]
    return []


def expect_rc(r, rc):
    return [] if r.rc == rc else ["expected exit %d: %s" % (rc,
                                                            r.describe())]


def case_new_reporter(tap, env, cluster):
    c = Case(env, cluster)
    old_and_new(c, ["new.example"])
    # A domain whose reporters are all new: its first reports, no news.
    c.ingest([("a.example", 1, [record("192.0.2.50", 3,
                                       header_from="fresh.example",
                                       dkim_domain="fresh.example",
                                       spf_domain="fresh.example")],
               "fresh.example")])
    hook = Listener()
    try:
        conf = c.config(hook.url, secret_file=secret_file(c))
        dry = c.alerts(conf, "--dry-run")
        problems = expect_rc(dry, 0) + no_secret(dry)
        if "would raise example.com new_reporter new.example" not in \
                dry.out:
            problems.append("--dry-run does not show the alert:\n" +
                            dry.out)
        if hook.requests or c.db.int("SELECT count(*) FROM dmarcd.alerts"):
            problems.append("--dry-run sent or stored something")
        tap.check("--dry-run shows the new reporter, stores and sends "
                  "nothing", problems)

        r = c.alerts(conf)
        problems = expect_rc(r, 0) + no_secret(r)
        if len(hook.requests) != 1:
            problems.append("%d requests, expected 1" % len(hook.requests))
        tap.check("a new reporter: one request", problems)
        if not hook.requests:
            return
        req = hook.requests[0]
        body = json.loads(req["body"])
        problems = []
        if set(body) != {"alerts", "source"} or body["source"] != "dmarcd":
            problems.append("body keys: %r" % body)
        alerts = body.get("alerts", [])
        if len(alerts) != 1:
            problems.append("%d alerts in the body" % len(alerts))
        else:
            a = alerts[0]
            if set(a) != {"domain", "kind", "key", "detail", "raised_at"}:
                problems.append("alert keys: %r" % sorted(a))
            if (a.get("domain"), a.get("kind"), a.get("key")) != \
                    (DOMAIN, "new_reporter", "new.example"):
                problems.append("alert: %r" % a)
            d = a.get("detail", {})
            if d.get("org_name") != "new.example" or d.get("reports") != 1 \
                    or d.get("messages") != 5:
                problems.append("detail: %r" % d)
            if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                            a.get("raised_at", "")):
                problems.append("raised_at: %r" % a.get("raised_at"))
        if req["path"] != HOOK_PATH:
            problems.append("path %s" % req["path"])
        if not req["headers"].get("content-type", "").startswith(
                "application/json"):
            problems.append("content-type %r" %
                            req["headers"].get("content-type"))
        tap.check("the JSON form: domain, kind, key, detail, raised_at",
                  problems)

        want = "sha256=" + hmac.new(SECRET.encode(), req["body"],
                                    hashlib.sha256).hexdigest()
        got = req["headers"].get("x-dmarcd-signature")
        wrong = "sha256=" + hmac.new(b"another key", req["body"],
                                     hashlib.sha256).hexdigest()
        tap.check("X-Dmarcd-Signature is the HMAC-SHA256 of the body",
                  [] if got == want and got != wrong else
                  ["got %r, want %r" % (got, want)])

        rows = c.rows()
        problems = []
        if len(rows) != 1 or rows[0][1:6] != (DOMAIN, "new_reporter",
                                              "new.example", "t", "1"):
            problems.append("alerts: %r" % rows)
        if req["headers"].get("x-dmarcd-alert-id") != (rows[0][0] if rows
                                                        else None):
            problems.append("X-Dmarcd-Alert-Id %r" %
                            req["headers"].get("x-dmarcd-alert-id"))
        tap.check("recorded as sent after one attempt", problems)

        r = c.alerts(conf)
        problems = expect_rc(r, 0)
        if len(hook.requests) != 1:
            problems.append("%d requests after the second run" %
                            len(hook.requests))
        if not r.out.startswith("0 raised, 0 sent"):
            problems.append("stdout: " + r.out)
        if c.db.int("SELECT count(*) FROM dmarcd.alerts") != 1:
            problems.append("alerts: %r" % c.rows())
        tap.check("a second run raises and sends nothing", problems)
    finally:
        hook.close()


def case_slack(tap, env, cluster):
    c = Case(env, cluster)
    old_and_new(c, ["Mail & Co <m>"])
    hook = Listener()
    try:
        r = c.alerts(c.config(hook.url, format="slack"))
        problems = expect_rc(r, 0) + no_secret(r)
        bodies = hook.bodies()
        if len(bodies) != 1:
            problems.append("%d requests" % len(bodies))
        else:
            b = bodies[0]
            text = b.get("text", "")
            if set(b) != {"text"}:
                problems.append("keys %r" % sorted(b))
            if "example.com has a new reporter: Mail &amp; Co &lt;m&gt;" \
                    not in text:
                problems.append("text: %r" % text)
            if "signature" in str(hook.requests[0]["headers"]).lower():
                problems.append("a signature without secret_file")
        tap.check("the Slack form: {\"text\": a sentence}, escaped",
                  problems)
    finally:
        hook.close()


def case_rate_limit(tap, env, cluster):
    c = Case(env, cluster)
    orgs = ["new%d.example" % i for i in range(5)]
    old_and_new(c, orgs)
    hook = Listener()
    try:
        conf = c.config(hook.url, max_per_hour=3)
        r = c.alerts(conf)
        problems = expect_rc(r, 0)
        keys = [b["alerts"][0]["key"] for b in hook.bodies()]
        if len(keys) != 3:
            problems.append("%d requests, expected 3" % len(keys))
        if "2 held by max_per_hour" not in r.out:
            problems.append("stdout: " + r.out)
        sent = c.db.int("SELECT count(*) FROM dmarcd.alerts WHERE sent_at "
                        "IS NOT NULL")
        if sent != 3:
            problems.append("%s sent in the table" % sent)
        tap.check("max_per_hour 3, 5 alerts: 3 requests, 2 held",
                  problems)

        r = c.alerts(conf)
        tap.check("the same hour: nothing more sent",
                  expect_rc(r, 0) + ([] if len(hook.requests) == 3 else
                                     ["%d requests" % len(hook.requests)]))

        c.db.psql("UPDATE dmarcd.alerts SET sent_at = now() - "
                  "interval '61 minutes' WHERE sent_at IS NOT NULL")
        r = c.alerts(conf)
        keys = [b["alerts"][0]["key"] for b in hook.bodies()]
        ids = [int(x["headers"]["x-dmarcd-alert-id"])
               for x in hook.requests]
        problems = expect_rc(r, 0)
        if len(keys) != 5 or sorted(keys) != sorted(orgs):
            problems.append("keys sent: %r" % keys)
        if ids != sorted(ids):
            problems.append("not oldest first: %r" % ids)
        tap.check("an hour later: the other 2, oldest first, each alert "
                  "once", problems)
    finally:
        hook.close()


def case_retry(tap, env, cluster):
    c = Case(env, cluster)
    old_and_new(c, ["new.example"])
    hook = Listener(answers=[500])
    try:
        r = c.alerts(c.config(hook.url))
        problems = expect_rc(r, 0) + no_secret(r)
        if len(hook.requests) != 2:
            problems.append("%d requests, expected 2" % len(hook.requests))
        elif hook.requests[0]["body"] != hook.requests[1]["body"]:
            problems.append("the retry's body differs")
        rows = c.rows()
        if len(rows) != 1 or rows[0][4:6] != ("t", "2"):
            problems.append("alerts: %r" % rows)
        tap.check("500 then 200: sent by the retry, once", problems)
    finally:
        hook.close()


def case_gone(tap, env, cluster):
    c = Case(env, cluster)
    old_and_new(c, ["new.example"])
    hook = Listener(default=410)
    try:
        conf = c.config(hook.url)
        r = c.alerts(conf)
        problems = expect_rc(r, 75) + no_secret(r)
        if len(hook.requests) != 3:
            problems.append("%d requests, expected 3" % len(hook.requests))
        rows = c.rows()
        if len(rows) != 1 or rows[0][4] != "f" or rows[0][5] != "3" or \
                rows[0][7] != "t" or "HTTP 410: gone" not in rows[0][6]:
            problems.append("alerts: %r" % rows)
        if "given up" not in r.err or "http://127.0.0.1:%d/..." % \
                hook.port not in r.err:
            problems.append("stderr: " + r.err)
        tap.check("410: three requests, given up, recorded, exit 75",
                  problems)
        r = c.alerts(conf)
        tap.check("a given up alert is not tried again",
                  expect_rc(r, 0) + ([] if len(hook.requests) == 3 else
                                     ["%d requests" % len(hook.requests)]))
    finally:
        hook.close()


def case_timeout(tap, env, cluster):
    c = Case(env, cluster)
    old_and_new(c, ["new.example"])
    hook = Listener(answers=["hang"])
    try:
        conf = c.config(hook.url, timeout=1)
        t0 = time.monotonic()
        r = c.alerts(conf, timeout=60)
        seconds = time.monotonic() - t0
        problems = expect_rc(r, 75) + no_secret(r)
        if len(hook.requests) != 1:
            problems.append("%d requests, expected 1" % len(hook.requests))
        if seconds > 20:
            problems.append("took %.1f s" % seconds)
        rows = c.rows()
        if len(rows) != 1 or rows[0][4] != "f" or rows[0][7] != "f" or \
                rows[0][8] != "t" or "timed out" not in rows[0][6].lower():
            problems.append("alerts: %r" % rows)
        tap.check("no answer: timeout, exit 75, the alert waiting and held "
                  "back", problems)

        r = c.alerts(conf)
        problems = expect_rc(r, 0)
        if len(hook.requests) != 1:
            problems.append("%d requests" % len(hook.requests))
        if "1 waiting" not in r.out:
            problems.append("stdout: " + r.out)
        tap.check("held back: a run at once sends nothing", problems)

        c.db.psql("UPDATE dmarcd.alerts SET next_attempt_at = now() - "
                  "interval '1 second'")
        r = c.alerts(conf)
        rows = c.rows()
        problems = expect_rc(r, 0)
        if len(hook.requests) != 2 or rows[0][4] != "t" or \
                rows[0][5] != "2":
            problems.append("%d requests; alerts %r" % (len(hook.requests),
                                                         rows))
        tap.check("due again: delivered", problems)
    finally:
        hook.close()

    # A closed port.
    c2 = Case(env, cluster)
    old_and_new(c2, ["new.example"])
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = c2.alerts(c2.config("http://127.0.0.1:%d%s" % (port, HOOK_PATH)))
    rows = c2.rows()
    problems = expect_rc(r, 75) + no_secret(r)
    if len(rows) != 1 or rows[0][4] != "f" or rows[0][7] != "f":
        problems.append("alerts: %r" % rows)
    tap.check("a closed port: exit 75, the alert waiting", problems)


def case_two_processes(tap, env, cluster):
    c = Case(env, cluster)
    orgs = ["new%d.example" % i for i in range(6)]
    old_and_new(c, orgs)
    hook = Listener(delay=0.3)
    try:
        conf = c.config(hook.url, max_per_hour=100)
        argv = [env.dmarcd, "alerts", "--db", c.db.conninfo, "--config",
                conf]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  env=h.clean_env()) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        problems = []
        for p, (out, err) in zip(procs, outs):
            if p.returncode != 0:
                problems.append("exit %d: %s %s" % (p.returncode, out,
                                                     err))
        keys = [b["alerts"][0]["key"] for b in hook.bodies()]
        if sorted(keys) != sorted(orgs):
            problems.append("keys sent: %r" % sorted(keys))
        if c.db.int("SELECT count(*) FROM dmarcd.alerts WHERE sent_at IS "
                    "NOT NULL") != 6:
            problems.append("alerts: %r" % c.rows())
        tap.check("two dmarcd alerts at once: each alert sent once",
                  problems)
    finally:
        hook.close()


def bad(ip, count):
    """Mail that passes nothing: unauthorised."""
    return record(ip, count, dkim="fail", spf="fail",
                  dkim_domain="spam.example", spf_domain="spam.example")


def case_unauthorised(tap, env, cluster):
    c = Case(env, cluster)
    k = "known.example"
    c.ingest([(k, 20, [record("192.0.2.1", 10)]),
              (k, 3, [record("192.0.2.1", 10), bad("198.51.100.7", 40)]),
              (k, 2, [record("192.0.2.1", 10), bad("198.51.100.7", 60),
                      bad("203.0.113.9", 99), bad("100.64.1.5", 150)]),
              (k, 30, [bad("100.64.1.5", 5)]),
              (k, 10, [bad("198.18.0.1", 500)])])
    hook = Listener()
    try:
        conf = c.config(hook.url, min_messages=100)
        r = c.alerts(conf)
        problems = expect_rc(r, 0)
        bodies = hook.bodies()
        got = [(b["alerts"][0]["kind"], b["alerts"][0]["key"])
               for b in bodies]
        if got != [("unauthorised_sender", "198.51.100.0/24")]:
            problems.append("alerts sent: %r" % got)
        else:
            d = bodies[0]["alerts"][0]["detail"]
            if d.get("messages") != 100 or d.get("sender") != \
                    "198.51.100.0/24" or d.get("window_days") != 7:
                problems.append("detail: %r" % d)
        tap.check("an unauthorised sender with 100 messages (min 100) is "
                  "alerted; 99, seen before, or outside the window: not",
                  problems)

        r = c.alerts(conf)
        tap.check("the sender is alerted once",
                  expect_rc(r, 0) + ([] if len(hook.requests) == 1 else
                                     ["%d requests" % len(hook.requests)]))

        r = c.alerts(c.config(hook.url, min_messages=99), "--dry-run")
        problems = expect_rc(r, 0)
        if "would raise example.com unauthorised_sender 203.0.113.0/24" \
                not in r.out or "100.64.1.0/24" in r.out or \
                "198.18.0.0/24" in r.out:
            problems.append("stdout: " + r.out)
        tap.check("with min_messages 99 the sender of 99 would be raised",
                  problems)
    finally:
        hook.close()


def daily(c, domain, days, records_of):
    """One report a day on days (days before today)."""
    c.ingest([("known.example", day, records_of(day), domain)
              for day in days])


def mail(domain, ip, aligned, unaligned):
    """aligned messages passing DKIM for the domain; unaligned ones
    passing DKIM for another domain only (a legitimate sender that does
    not align)."""
    out = [record(ip, aligned, spf="fail", header_from=domain,
                  dkim_domain=domain, spf_domain="esp.example")]
    if unaligned:
        out.append(record(ip, unaligned, spf="fail", header_from=domain,
                          dkim_domain="esp.example",
                          spf_domain="esp.example"))
    return out


def case_share_drop(tap, env, cluster):
    c = Case(env, cluster)
    before, last7 = range(8, 38), range(1, 8)
    daily(c, "drop.example", before,
          lambda d: mail("drop.example", "192.0.2.20", 200, 0))
    daily(c, "drop.example", last7,
          lambda d: mail("drop.example", "192.0.2.20", 160, 40))
    daily(c, "steady.example", before,
          lambda d: mail("steady.example", "192.0.2.30", 200, 0))
    daily(c, "steady.example", last7,
          lambda d: mail("steady.example", "192.0.2.30", 192, 8))
    daily(c, "small.example", before,
          lambda d: mail("small.example", "192.0.2.40", 10, 0))
    daily(c, "small.example", last7,
          lambda d: mail("small.example", "192.0.2.40", 5, 5))
    yesterday = datetime.datetime.fromtimestamp(TODAY - DAY,
                                                datetime.timezone.utc)
    week = "%d-W%02d" % yesterday.isocalendar()[:2]
    hook = Listener()
    try:
        conf = c.config(hook.url, format="slack", share_drop=5,
                        min_messages=100)
        r = c.alerts(conf)
        problems = expect_rc(r, 0)
        rows = c.db.rows("SELECT domain, kind, key, detail->>'recent_share', "
                         "detail->>'previous_share', "
                         "detail->>'drop_points' FROM dmarcd.alerts")
        if rows != [("drop.example", "aligned_share_drop", week, "80.0",
                     "100.0", "20.0")]:
            problems.append("alerts: %r" % rows)
        texts = [b.get("text", "") for b in hook.bodies()]
        if len(texts) != 1 or "drop.example: the aligned share of " \
                "legitimate mail fell to 80.0% over the last 7 days, from " \
                "100.0% over the 30 days before (20.0 points down)" \
                not in texts[0]:
            problems.append("sent: %r" % texts)
        tap.check("the aligned share from 100% to 80%: alerted once, keyed "
                  "by the week; 4 points or too little mail: not",
                  problems)

        c.db.psql("UPDATE dmarcd.alerts SET key = '2000-W01'")
        r = c.alerts(conf)
        n = c.db.int("SELECT count(*) FROM dmarcd.alerts")
        tap.check("the same drop is not raised again within 30 days",
                  expect_rc(r, 0) + ([] if n == 1 else
                                     ["%d alerts: %r" % (n, c.db.rows(
                                         "SELECT * FROM dmarcd.alerts"))]))

        c.db.psql("UPDATE dmarcd.alerts SET raised_at = now() - "
                  "interval '31 days'")
        r = c.alerts(conf)
        n = c.db.int("SELECT count(*) FROM dmarcd.alerts WHERE key = '%s'"
                     % week)
        tap.check("once the earlier alert is 30 days old, it is",
                  expect_rc(r, 0) + ([] if n == 1 else
                                     ["%d alerts for %s" % (n, week)]))
    finally:
        hook.close()


def case_daemon(tap, env, cluster):
    import imapharness as ih
    why = ih.dovecot_missing()
    if why:
        tap.skip("dmarcd run posts the alert of a pass", why)
        return
    c = Case(env, cluster)
    c.ingest([("known.example", 20, [record("192.0.2.1", 10)])])
    hook = Listener()
    dc = ih.Dovecot(env)
    run = None
    try:
        report = report_xml("new.example", "daemon-1", DOMAIN, 2,
                            [record("192.0.2.2", 7)]).encode()
        dc.deliver_bytes(ih.report_mail(report, "new.xml"))
        conf = ih.write_config(env, "daemon.conf", dc, sections={
            "alerts": {"webhook": hook.url}})
        run = ih.running_dmarcd(c.db, "run", config=conf)
        got = ih.wait_for(lambda: len(hook.requests) > 0, 60, 0.2)
        problems = [] if got else ["no request within 60 s: " +
                                   run.describe()]
        keys = [(b["alerts"][0]["kind"], b["alerts"][0]["key"])
                for b in hook.bodies()]
        if got and keys != [("new_reporter", "new.example")]:
            problems.append("sent: %r" % keys)
        run.signal(signal.SIGTERM)
        if run.wait(10) != 0:
            problems.append("dmarcd run: " + run.describe())
        elif "Zq9HookSecret" in run.describe():
            problems.append("the webhook's secret path was logged")
        elif "event=alerts raised=1 sent=1" not in run.describe():
            problems.append("no event=alerts line: " + run.describe())
        tap.check("dmarcd run posts the alert of the pass that stored a "
                  "new reporter's report", problems)
    finally:
        if run is not None:
            run.signal(signal.SIGKILL)
            run.wait(10)
        dc.stop()
        hook.close()


def case_config(tap, env, cluster):
    c = Case(env, cluster)
    r = c.alerts(c.config(None))
    problems = expect_rc(r, 64)
    if "no webhook" not in r.err:
        problems.append("stderr: " + r.err)
    tap.check("no webhook: exit 64", problems)

    r = c.alerts(c.config("http://192.0.2.7" + HOOK_PATH))
    problems = expect_rc(r, 64) + no_secret(r)
    if "[alerts] webhook: not an https:// URL" not in r.err:
        problems.append("stderr: " + r.err)
    tap.check("plain http to a remote host: exit 64, the URL not quoted",
              problems)

    hook = Listener()
    try:
        r = c.db.dmarcd("alerts", config=c.config(hook.url),
                        db="host=127.0.0.1 port=1 dbname=x user=x "
                        "connect_timeout=5")
        problems = expect_rc(r, 75) + no_secret(r)
        if hook.requests:
            problems.append("requests were made")
        tap.check("PostgreSQL unreachable: exit 75", problems)
    finally:
        hook.close()


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    case_new_reporter(tap, env, cluster)
    case_slack(tap, env, cluster)
    case_rate_limit(tap, env, cluster)
    case_retry(tap, env, cluster)
    case_gone(tap, env, cluster)
    case_timeout(tap, env, cluster)
    case_two_processes(tap, env, cluster)
    case_unauthorised(tap, env, cluster)
    case_share_drop(tap, env, cluster)
    case_daemon(tap, env, cluster)
    case_config(tap, env, cluster)


if __name__ == "__main__":
    h.run_main(main)
