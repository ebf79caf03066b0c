#!/usr/bin/env python3
"""cli_report.py - dmarcd summary|sources|readiness DOMAIN, against a real
PostgreSQL.

Prints TAP; skipped ("1..0 # SKIP") without PostgreSQL binaries.

* --format json prints exactly what the SQL functions the API serves give
  (dmarcd.summary / sources / readiness over the same span);
* the numbers of a small hand-built report: 10 messages aligned, 5
  authenticated for sendgrid.net only (SendGrid, unaligned, with a DKIM and an SPF
  fix), 3 from a source where nothing passes (unauthorised);
* csv: one row per sender with the columns named in its header; table:
  the domain, the classes and the fix;
* bad usage exits 64 (no domain, an unknown format, a --since that is no
  time or comes after --until), PostgreSQL unreachable exits 75;
* a domain argument made of SQL is only a name that has no mail.
"""
import csv
import datetime
import io
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DOMAIN = "cli.example"


def record(ip, count, dkim, spf, dkim_pv, spf_pv, disp="none"):
    auth = ""
    for d, r in dkim:
        auth += ("<dkim><domain>%s</domain><selector>s1</selector>"
                 "<result>%s</result></dkim>" % (d, r))
    for d, r in spf:
        auth += ("<spf><domain>%s</domain><scope>mfrom</scope>"
                 "<result>%s</result></spf>" % (d, r))
    return ("<record><row><source_ip>%s</source_ip><count>%d</count>"
            "<policy_evaluated><disposition>%s</disposition><dkim>%s</dkim>"
            "<spf>%s</spf></policy_evaluated></row><identifiers>"
            "<header_from>%s</header_from></identifiers><auth_results>%s"
            "</auth_results></record>" % (ip, count, disp, dkim_pv, spf_pv,
                                         DOMAIN, auth))


def report(begin):
    recs = [
        record("192.0.2.1", 10, [(DOMAIN, "pass")], [(DOMAIN, "pass")],
               "pass", "pass"),
        record("192.0.2.2", 5, [("sendgrid.net", "pass")],
               [("sendgrid.net", "pass")], "fail", "fail"),
        record("198.51.100.7", 3, [], [("spoofer.example", "fail")],
               "fail", "fail", "none"),
    ]
    return ("<?xml version=\"1.0\"?><feedback><report_metadata>"
            "<org_name>receiver.example</org_name>"
            "<email>r@receiver.example</email><report_id>cli-1</report_id>"
            "<date_range><begin>%d</begin><end>%d</end></date_range>"
            "</report_metadata><policy_published><domain>%s</domain>"
            "<adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp>"
            "<pct>100</pct></policy_published>%s</feedback>\n"
            % (begin, begin + 86399, DOMAIN, "".join(recs)))


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    tmp = tempfile.mkdtemp(prefix="cli_report.")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    day = today - datetime.timedelta(days=2)
    begin = int(datetime.datetime(day.year, day.month, day.day,
                                  tzinfo=datetime.timezone.utc).timestamp())
    path = os.path.join(tmp, "r.xml")
    with open(path, "w") as f:
        f.write(report(begin))
    r = db.dmarcd("ingest", path)
    tap.check("ingest of the hand-built report: exit 0",
              [] if r.rc == 0 else [r.describe()])

    since = (today - datetime.timedelta(days=30)).isoformat()
    until = today.isoformat() + "T00:00:00Z"
    span = ["--since", since, "--until", until]

    # json: what the SQL functions say, as they say it.
    problems = []
    outs = {}
    for cmd, sql in (
            ("summary", "SELECT dmarcd.summary('%s', '%s', '%s')"
             % (DOMAIN, since, until)),
            ("sources", "SELECT dmarcd.sources('%s', '%s', '%s')"
             % (DOMAIN, since, until)),
            ("readiness", "SELECT dmarcd.readiness('%s', 30, '%s')"
             % (DOMAIN, until))):
        r = db.dmarcd(cmd, DOMAIN, *span, "--format", "json")
        if r.rc != 0:
            problems.append(r.describe())
            continue
        got = json.loads(r.out)
        want = json.loads(db.value(sql))
        outs[cmd] = got
        if got != want:
            problems.append("%s: the CLI's JSON differs from %s"
                            % (cmd, sql))
    tap.check("--format json is what dmarcd.summary/sources/readiness give",
              problems)

    problems = []
    s = outs.get("summary", {})
    want = {"messages": 18, "dmarc_pass": 10, "receiver_pass": 10,
            "days": 1, "sources": 3}
    for k, v in want.items():
        if s.get(k) != v:
            problems.append("summary %s: %r, not %r" % (k, s.get(k), v))
    classes = s.get("classes", {})
    for k, v in (("aligned", 10), ("unaligned", 5), ("unauthorised", 3),
                 ("forwarded", 0)):
        got = classes.get(k, {}).get("messages")
        if got != v:
            problems.append("class %s: %r messages, not %d" % (k, got, v))
    if s.get("policy", {}).get("p") != "none":
        problems.append("policy p: %r" % s.get("policy"))
    tap.check("summary: 18 messages, 10 pass, classes 10/0/5/3, p=none",
              problems)

    problems = []
    senders = {x["sender"]: x for x in outs.get("sources", {})
               .get("senders", [])}
    sg = senders.get("SendGrid")
    if sg is None:
        problems.append("no sender SendGrid: %r" % sorted(senders))
    else:
        if sg["class"] != "unaligned" or sg["failing"] != 5:
            problems.append("SendGrid: %r" % sg)
        mech = sorted(x["mechanism"] for x in sg.get("fix", {})
                      .get("steps", []))
        if mech != ["dkim", "spf"]:
            problems.append("SendGrid fix steps: %r" % mech)
    if senders.get(DOMAIN, {}).get("class") != "aligned":
        problems.append("%s not an aligned sender: %r" % (DOMAIN, senders))
    if senders.get("198.51.100.0/24", {}).get("class") != "unauthorised":
        problems.append("the spoofer is not unauthorised under its /24: %r"
                        % sorted(senders))
    tap.check("sources: the domain aligned, SendGrid (by its d= and SPF domain) unaligned with a "
              "DKIM and an SPF fix, the spoofer's /24 unauthorised", problems)

    problems = []
    rd = outs.get("readiness", {})
    if rd.get("verdict", {}).get("status") != "collecting":
        problems.append("status %r" % rd.get("verdict"))
    imp = {x["sender"]: x["messages_per_day"]
           for x in rd.get("impact", {}).get("senders", [])}
    if imp != {"SendGrid": 5.0}:
        problems.append("impact senders %r" % imp)
    if rd.get("legitimate", {}).get("messages") != 15:
        problems.append("legitimate %r" % rd.get("legitimate"))
    tap.check("readiness: collecting (one day), 5 messages a day of "
              "SendGrid would be blocked, 15 legitimate", problems)

    # The same mail under p=reject, one day of reports: legitimate mail
    # is being rejected now, which is no time to wait for 7 days.
    rej = report(begin).replace(DOMAIN, "rej.example").replace(
        "<p>none</p>", "<p>reject</p>").replace("cli-1", "rej-1")
    path2 = os.path.join(tmp, "rej.xml")
    with open(path2, "w") as f:
        f.write(rej)
    r = db.dmarcd("ingest", path2)
    r2 = db.dmarcd("readiness", "rej.example", *span, "--format", "json")
    doc = json.loads(r2.out) if r2.rc == 0 else {}
    tap.check("readiness under p=reject with a failing legitimate sender "
              "on one day: at_risk, not collecting",
              [] if r.rc == 0 and doc.get("verdict", {}).get("status") ==
              "at_risk" else [r.describe(), r2.describe()])

    problems = []
    r = db.dmarcd("sources", DOMAIN, *span, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.out))) if r.rc == 0 else []
    if r.rc != 0:
        problems.append(r.describe())
    elif sorted(x["sender"] for x in rows) != sorted(senders):
        problems.append("csv senders %r" % [x["sender"] for x in rows])
    else:
        for x in rows:
            if int(x["messages"]) != senders[x["sender"]]["messages"]:
                problems.append("csv %r" % x)
        if "dkim" not in [x for x in rows
                          if x["sender"] == "SendGrid"][0]["fix"]:
            problems.append("csv fix of SendGrid: %r" % rows)
    r = db.dmarcd("summary", DOMAIN, *span, "--format", "csv")
    kv = dict(tuple(x) for x in csv.reader(io.StringIO(r.out)) if len(x) == 2)
    if kv.get("messages") != "18" or kv.get("class_unaligned") != "5":
        problems.append("summary csv %r" % kv)
    r = db.dmarcd("readiness", DOMAIN, *span, "--format", "csv")
    lines = r.out.splitlines()
    if r.rc != 0 or len(lines) != 2 or not lines[1].startswith(
            day.isoformat() + ",15,10,"):
        problems.append("readiness csv %r" % r.out)
    tap.check("csv: sources one row per sender, summary metric,value, "
              "readiness one row per day", problems)

    problems = []
    r = db.dmarcd("sources", DOMAIN, *span, "--format", "table")
    for want in ("SendGrid", "unaligned", "unauthorised", "dkim:",
                 "spf:"):
        if want not in r.out:
            problems.append("sources table lacks %r:\n%s" % (want, r.out))
    r = db.dmarcd("readiness", DOMAIN, *span, "--format", "table")
    for want in (DOMAIN, "collecting", "blockers", "SendGrid"):
        if want not in r.out:
            problems.append("readiness table lacks %r:\n%s" % (want, r.out))
    tap.check("table: the senders, classes, blockers and fix steps",
              problems)

    problems = []
    for args in (("sources",), ("readiness", DOMAIN, "--format", "xml"),
                 ("summary", DOMAIN, "--since", "yesterday"),
                 ("sources", DOMAIN, "--since", "2026-13-45"),
                 ("readiness", DOMAIN, "--since", "2030-01-01",
                  "--until", "2029-01-01"),
                 ("sources", DOMAIN, "other.example"),
                 ("sources", "a/b")):
        r = db.dmarcd(*args)
        if r.rc != 64:
            problems.append("%r: exit %d, not 64" % (args, r.rc))
    tap.check("bad usage exits 64", problems)

    r = db.dmarcd("summary", DOMAIN, db="host=127.0.0.1 port=1 "
                  "dbname=x user=x connect_timeout=2")
    tap.check("PostgreSQL unreachable: exit 75",
              [] if r.rc == 75 else [r.describe()])

    problems = []
    evil = "x'; DROP TABLE dmarcd.reports; --"
    for cmd in ("summary", "sources", "readiness"):
        r = db.dmarcd(cmd, evil, "--format", "json")
        if r.rc != 0:
            problems.append(r.describe())
    if db.int("SELECT count(*) FROM dmarcd.reports") != 2:
        problems.append("reports changed")
    tap.check("SQL in the domain argument is only a name without mail",
              problems)


h.run_main(main)
