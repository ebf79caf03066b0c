#!/usr/bin/env python3
"""dedupe.py - duplicates, revisions, the shapes of input, failure reports.

Prints TAP; skipped without PostgreSQL. Built from contrib/samples only.

* the same report twice: exit 0 both times, the second a duplicate
  (reports.duplicates = 1, stats duplicates = 1, one reports row);
* the same key (org_name, report_id, domain, begin, end) with another
  payload (one count changed): stored as a revision (revision 2,
  revision_of the first one's id; stats revisions = 1); both revisions'
  records are kept; the revision again is a duplicate of the revision; a
  third payload is revision 3 of the first; rollup_daily counts only the
  newest revision;
* three ingest processes on the same 40 reports at once: all exit 0,
  each report stored once, the other two sightings counted as duplicates;
* the same report in a mail (.eml, gzip attachment), then as .xml.gz and
  in a .zip: the second and third are duplicates;
* an mbox of 3 messages: 3 inputs (path#1..#3), 3 reports;
* a maildir: the files in new/ and cur/ are ingested, not those in tmp/;
* standard input: `cat file | dmarcd ingest -` stores it;
* the failure report sample is stored in dmarcd.failure_reports with the
  fields the parser gives (feedback type, source IP, reported domain,
  authentication results, the original headers...); again, it is a
  duplicate.
"""
import email.message
import email.policy
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402


def report_text(env, report_id=None, bump=0):
    """The google sample; with another report_id, its first count + bump."""
    with open(os.path.join(env.samples, "google-example.com.xml"),
              encoding="utf-8") as f:
        text = f.read()
    if report_id is not None:
        text = re.sub(r"<report_id>[^<]*</report_id>",
                      "<report_id>%s</report_id>" % report_id, text, count=1)
    if bump:
        text = re.sub(r"<count>(\d+)</count>", lambda m: "<count>%d</count>"
                      % (int(m.group(1)) + bump), text, count=1)
    return text.encode("utf-8")


def mail_with(xml, report_id, n=1):
    """A report mail: the XML gzipped as an attachment."""
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "noreply-dmarc-support@google.com"
    msg["To"] = "dmarc@example.com"
    msg["Subject"] = "Report domain: example.com Submitter: google.com " \
        "Report-ID: %s" % report_id
    msg["Date"] = "Fri, 02 Jan 2026 0%d:00:00 +0000" % n
    msg["Message-ID"] = "<%s-%d@google.com>" % (report_id, n)
    msg.set_content("This is an aggregate report from google.com.\n")
    msg.add_attachment(gzip.compress(xml, mtime=0), maintype="application",
                       subtype="gzip",
                       filename="google.com!example.com!%s.xml.gz"
                       % report_id)
    return msg.as_bytes()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def lines_for(result, path):
    return [l for l in result.out.splitlines()
            if l.startswith(path + ":") or l.startswith(path + "#")]


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    work = os.path.join(env.work, "dedupe")
    sample = os.path.join(env.samples, "google-example.com.xml")

    # The same report twice.
    db = cluster.new_db()
    r1 = db.dmarcd("ingest", sample)
    r2 = db.dmarcd("ingest", sample)
    problems = []
    if r1.rc != 0 or "1 report stored" not in r1.out:
        problems.append("first: " + r1.describe())
    if r2.rc != 0 or "duplicate" not in r2.out:
        problems.append("second: " + r2.describe())
    rows = db.rows("SELECT id, duplicates, revision FROM dmarcd.reports")
    if len(rows) != 1 or rows[0][1:] != ("1", "1"):
        problems.append("reports (id, duplicates, revision): %r" % rows)
    s = db.stats()
    if (s.get("reports"), s.get("duplicates"), s.get("revisions")) != \
            (1, 1, 0):
        problems.append("stats: %r" % s)
    tap.check("the same report twice: exit 0, stored once, duplicates = 1 "
              "in the row and in stats", problems)
    first_id = rows[0][0] if rows else None

    # A revision: the same key, another payload.
    rev2 = write(os.path.join(work, "rev2.xml"), report_text(env, bump=1))
    r = db.dmarcd("ingest", rev2)
    problems = []
    if r.rc != 0 or "revision" not in r.out:
        problems.append(r.describe())
    rows = db.rows("SELECT id, revision, revision_of, record_count, "
                   "message_count FROM dmarcd.reports ORDER BY id")
    if len(rows) != 2 or rows[1][1:3] != ("2", first_id) or \
            rows[0][1:3] != ("1", None):
        problems.append("reports (id, revision, revision_of, records, "
                        "messages): %r" % rows)
    elif int(rows[1][4]) != int(rows[0][4]) + 1:
        problems.append("the revision's messages %s, expected %d"
                        % (rows[1][4], int(rows[0][4]) + 1))
    kept = db.rows("SELECT report, count(*), sum(count) FROM dmarcd.records "
                   "GROUP BY report ORDER BY report")
    if len(rows) == 2 and kept != [(x[0], x[3], x[4]) for x in rows]:
        problems.append("records per report %r, expected %r" % (
            kept, [(x[0], x[3], x[4]) for x in rows]))
    s = db.stats()
    if (s.get("reports"), s.get("revisions")) != (2, 1):
        problems.append("stats: reports %r revisions %r, expected 2, 1"
                        % (s.get("reports"), s.get("revisions")))
    tap.check("same key, one count changed: a revision (revision 2, "
              "revision_of the first), both revisions' records kept, stats "
              "revisions = 1", problems)

    r = db.dmarcd("ingest", rev2)
    rev3 = write(os.path.join(work, "rev3.xml"), report_text(env, bump=2))
    r3 = db.dmarcd("ingest", rev3)
    rows = db.rows("SELECT revision, revision_of, duplicates FROM "
                   "dmarcd.reports ORDER BY id")
    problems = []
    if r.rc != 0 or "duplicate" not in r.out:
        problems.append("the revision again: " + r.describe())
    if r3.rc != 0 or "revision" not in r3.out:
        problems.append("a third payload: " + r3.describe())
    if rows != [("1", None, "1"), ("2", first_id, "1"),
                ("3", first_id, "0")]:
        problems.append("reports (revision, revision_of, duplicates): %r"
                        % rows)
    tap.check("the revision again is its duplicate; a third payload is "
              "revision 3 of the first", problems)
    rollup = db.int("SELECT sum(messages) FROM dmarcd.rollup_daily")
    newest = db.int("SELECT message_count FROM dmarcd.reports WHERE "
                    "revision = 3")
    problems = [] if rollup == newest else [
        "rollup_daily holds %s messages, revision 3 has %s (all three: %s)"
        % (rollup, newest, db.int("SELECT sum(message_count) FROM "
                                  "dmarcd.reports"))]
    tap.check("rollup_daily counts the newest revision only (a revision "
              "replaces the earlier one)", problems + db.consistency())

    # All three payloads in one run (one batch).
    db = cluster.new_db()
    r = db.dmarcd("ingest", sample, rev2, rev3)
    rows = db.rows("SELECT revision, message_count FROM dmarcd.reports "
                   "ORDER BY id")
    rollup = db.int("SELECT sum(messages) FROM dmarcd.rollup_daily")
    problems = [] if r.rc == 0 else [r.describe()]
    if [x[0] for x in rows] != ["1", "2", "3"]:
        problems.append("revisions %r" % rows)
    elif rollup != int(rows[2][1]):
        problems.append("rollup_daily holds %s messages, revision 3 has %s"
                        % (rollup, rows[2][1]))
    tap.check("three payloads of one report in one batch: revisions 1, 2, "
              "3; rollup_daily counts the newest only",
              problems + db.consistency())

    # Three ingest processes on the same reports at once.
    db = cluster.new_db()
    cdir = os.path.join(work, "concurrent")
    for n in range(40):
        write(os.path.join(cdir, "c%02d.xml" % n),
              report_text(env, report_id="concurrent-%d" % n))
    argv = [env.dmarcd, "ingest", "--db", db.conninfo, "--config",
            env.empty_config, "--quiet", cdir]
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=h.clean_env()) for _ in range(3)]
    problems = []
    for p in procs:
        out, err = p.communicate(timeout=h.TIMEOUT)
        if p.returncode != 0:
            problems.append("exit %d: %s" % (p.returncode,
                                             err.decode(errors="replace")))
    rows = db.rows("SELECT count(*), count(DISTINCT report_id), "
                   "sum(duplicates) FROM dmarcd.reports")
    if rows != [("40", "40", "80")]:
        problems.append("reports (rows, distinct, duplicates) %r, expected "
                        "40 stored once, 80 duplicates" % rows)
    tap.check("3 concurrent ingests of the same 40 reports: all exit 0, "
              "each stored once, the others counted as duplicates",
              problems + db.consistency())

    # The same report in a mail, then gzipped, then zipped.
    db = cluster.new_db()
    xml = report_text(env, report_id="eml-1")
    eml = write(os.path.join(work, "one.eml"), mail_with(xml, "eml-1"))
    gz = write(os.path.join(work, "one.xml.gz"), gzip.compress(xml, mtime=0))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("google.com!example.com!eml-1.xml", xml)
    zp = write(os.path.join(work, "one.zip"), buf.getvalue())
    results = [db.dmarcd("ingest", p) for p in (eml, gz, zp)]
    problems = []
    if results[0].rc != 0 or "1 report stored" not in results[0].out:
        problems.append("the .eml: " + results[0].describe())
    for name, rr in zip(("the .xml.gz", "the .zip"), results[1:]):
        if rr.rc != 0 or "duplicate" not in rr.out:
            problems.append("%s: %s" % (name, rr.describe()))
    rows = db.rows("SELECT duplicates FROM dmarcd.reports")
    if rows != [("2",)]:
        problems.append("reports (duplicates): %r, expected one with 2"
                        % rows)
    tap.check("a report in a .eml, then as .xml.gz and in a .zip: stored "
              "once, two duplicates", problems)

    # An mbox of three messages.
    db = cluster.new_db()
    mbox = b""
    for n in (1, 2, 3):
        rid = "mbox-%d" % n
        mbox += b"From noreply-dmarc-support@google.com Fri Jan  2 " \
            b"0%d:00:00 2026\n" % n + \
            mail_with(report_text(env, report_id=rid), rid, n) \
            .replace(b"\r\n", b"\n") + b"\n"
    path = write(os.path.join(work, "reports.mbox"), mbox)
    r = db.dmarcd("ingest", path)
    problems = []
    if r.rc != 0:
        problems.append(r.describe())
    got = sorted(x for (x,) in db.rows("SELECT report_id FROM "
                                       "dmarcd.reports"))
    if got != ["mbox-1", "mbox-2", "mbox-3"]:
        problems.append("reports: %r" % got)
    logged = sorted(x for (x,) in db.rows("SELECT source FROM "
                                          "dmarcd.ingest_log"))
    if logged != ["%s#%d" % (path, n) for n in (1, 2, 3)]:
        problems.append("inputs (ingest_log): %r" % logged)
    if len(lines_for(r, path)) != 3:
        problems.append("output lines: %r" % lines_for(r, path))
    tap.check("an mbox of 3 messages: 3 inputs, 3 reports", problems)

    # A maildir.
    db = cluster.new_db()
    md = os.path.join(work, "Maildir")
    files = {"new/1767330000.1.host": "md-new",
             "cur/1767330000.2.host:2,S": "md-cur",
             "tmp/1767330000.3.host": "md-tmp"}
    for name, rid in files.items():
        write(os.path.join(md, name), mail_with(report_text(env,
                                                            report_id=rid),
                                                rid))
    r = db.dmarcd("ingest", md)
    problems = []
    if r.rc != 0:
        problems.append(r.describe())
    got = sorted(x for (x,) in db.rows("SELECT report_id FROM "
                                       "dmarcd.reports"))
    if got != ["md-cur", "md-new"]:
        problems.append("reports %r, expected md-cur and md-new (never "
                        "tmp/)" % got)
    tap.check("a maildir: new/ and cur/ ingested, tmp/ not", problems)

    # Standard input.
    db = cluster.new_db()
    xml = report_text(env, report_id="stdin-1")
    r = db.dmarcd("ingest", "-", input=gzip.compress(xml, mtime=0))
    problems = []
    if r.rc != 0:
        problems.append(r.describe())
    rows = db.rows("SELECT report_id, source, record_count FROM "
                   "dmarcd.reports")
    if rows != [("stdin-1", "-", "25")]:
        problems.append("reports (report_id, source, records): %r" % rows)
    r = db.dmarcd("ingest", "-", input=xml)
    if r.rc != 0 or "duplicate" not in r.out:
        problems.append("the same, plain, again: " + r.describe())
    tap.check("standard input (gzip, then plain): stored, then a "
              "duplicate", problems)

    # Failure reports.
    db = cluster.new_db()
    fr = os.path.join(env.samples, "failure-report.eml")
    parsed = [json.loads(l) for l in h.run(
        [env.dmarcd, "parse", "--format", "ndjson", fr]).out.splitlines()
        if l.strip()]
    parsed = [p for p in parsed if p.get("type") == "failure"]
    r = db.dmarcd("ingest", fr)
    problems = []
    if r.rc != 0 or "1 failure report stored" not in r.out:
        problems.append(r.describe())
    cols = ["domain", "feedback_type", "user_agent", "version",
            "auth_failure", "identity_alignment", "delivery_result",
            "host(source_ip)", "source_port", "arrival_date",
            "extract(epoch FROM arrival_time)::bigint", "original_mail_from",
            "original_envelope_id", "reporting_mta", "incidents",
            "array_to_json(reported_domains)",
            "array_to_json(original_rcpt_to)",
            "array_to_json(authentication_results)",
            "array_to_json(reported_uri)", "h_from", "h_to",
            "h_subject", "h_date", "h_message_id", "arf",
            "encode(raw_sha256, 'hex')", "body"]
    rows = db.rows("SELECT %s FROM dmarcd.failure_reports" % ", ".join(cols))
    if len(parsed) != 1 or len(rows) != 1:
        problems.append("%d failure reports parsed, %d stored"
                        % (len(parsed), len(rows)))
    else:
        p, row = parsed[0], dict(zip(cols, rows[0]))

        def text(v):
            return None if v is None else str(v)

        def arr(v):
            return json.loads(v) if v is not None else []

        want = {
            "domain": p["reported_domain"][0].lower(),
            "arf": "t" if p["arf"] else "f",
            "extract(epoch FROM arrival_time)::bigint":
                text(p["arrival_time"]),
            "host(source_ip)": p["source_ip"],
            "incidents": text(p["incidents"]),
            "encode(raw_sha256, 'hex')": h.sha256_file(fr),
            "body": None,
        }
        for k in ("feedback_type", "user_agent", "version", "auth_failure",
                  "identity_alignment", "delivery_result", "source_port",
                  "arrival_date", "original_mail_from",
                  "original_envelope_id", "reporting_mta"):
            want[k] = text(p[k])
        for k in ("from", "to", "subject", "date", "message_id"):
            want["h_" + k] = text(p["headers"][k])
        for k, col in (("reported_domain", "array_to_json(reported_domains)"),
                       ("original_rcpt_to", "array_to_json(original_rcpt_to)"),
                       ("authentication_results",
                        "array_to_json(authentication_results)"),
                       ("reported_uri", "array_to_json(reported_uri)")):
            if arr(row[col]) != p[k]:
                problems.append("%s: stored %r, parsed %r" % (col, row[col],
                                                              p[k]))
        for k, v in want.items():
            if row[k] != v:
                problems.append("%s: stored %r, parsed %r" % (k, row[k], v))
        if row["feedback_type"] != "auth-failure" or \
                row["host(source_ip)"] != "198.51.100.7" or \
                row["domain"] != "example.com":
            problems.append("not the sample's auth-failure from "
                            "198.51.100.7 for example.com: %r" % row)
    s = db.stats()
    if s.get("failure_reports") != 1:
        problems.append("stats failure_reports %r" % s.get("failure_reports"))
    tap.check("the failure report sample: stored with the parser's fields "
              "(feedback type, source IP, reported domain, headers...)",
              problems)

    r = db.dmarcd("ingest", fr)
    problems = []
    if r.rc != 0 or "duplicate" not in r.out:
        problems.append(r.describe())
    rows = db.rows("SELECT duplicates FROM dmarcd.failure_reports")
    if rows != [("1",)]:
        problems.append("failure_reports (duplicates): %r" % rows)
    s = db.stats()
    if (s.get("failure_reports"), s.get("duplicates")) != (1, 1):
        problems.append("stats: %r" % s)
    tap.check("the failure report again: a duplicate (row and stats)",
              problems)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    h.run_main(main)
