#!/usr/bin/env python3
"""badinput.py - bad input through `dmarcd ingest`, and `dmarcd rejected`.

Prints TAP; skipped without PostgreSQL.

One ingest of a directory holding bad files (HTML instead of XML, a
truncated gzip, a zip bomb, XML with a DOCTYPE and entities, an empty
file, a mail without any report, a report without <report_id>) and good
ones:

* exit 65; per bad file one output line naming it and the reason, one
  dmarcd.rejected_inputs row (its source, the reason), and `dmarcd
  rejected show ID --raw` gives its bytes back, identical; `rejected show
  ID` and `rejected list` name it; ingested again on its own, it exits 65
  and the same row counts a second attempt;
* the good files of the same run are stored;
* a report lacking metadata (<report_id>; <org_name> and <email>; all of
  <report_metadata>; with or without records) is rejected like any bad
  input (exit 65), and does not stop the run: a file after it is stored.

Retry, "fixed by an upgrade": a valid gzip report rejected under
[limits] max_input_bytes = 1K; `rejected retry ID` under the same limit
leaves it rejected (exit 65, one more attempt); with a configuration
without the limit it is stored and marked resolved (exit 0): `rejected
list` no longer shows it, `list --all` shows it resolved, `stats` counts
the report with the parser's records and messages, and its rejection no
more; retrying it again stores nothing twice.
"""
import json
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

BAD = [
    # file in tests/data/adversarial, name here, reason (regexp)
    ("html-instead-of-xml.html", "a-page.xml", r"HTML"),
    ("gzip-truncated.xml.gz", "b-truncated.xml.gz", r"truncated"),
    ("zip-bomb-200mib.zip", "c-bomb.zip", r"ratio|bomb"),
    ("xxe-system-entity.xml", "d-entity.xml", r"DOCTYPE|DTD|entit"),
    ("empty-file.xml", "e-empty.xml", r"empty"),
    ("mail-html-preview-only.eml", "f-no-report.eml",
     r"no DMARC report"),
]
GOOD = [("google-example.com.xml", "g-good.xml"),
        ("mailru-example.net.zip", "h-good.zip")]


METADATA = """<?xml version="1.0"?>
<feedback>
  <report_metadata>
    <org_name>receiver.example</org_name>
    <email>dmarc@receiver.example</email>%s
    <date_range><begin>1767225600</begin><end>1767311999</end></date_range>
  </report_metadata>%s
</feedback>
"""
POLICY = """
  <policy_published><domain>example.com</domain><p>none</p>
  </policy_published>"""
RECORD = """
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim>
        <spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>pass</result>
      </spf></auth_results>
  </record>"""


def metadata_cases(env):
    """Reports the parser rejects for missing metadata: (slug,
    description, XML)."""
    with open(os.path.join(env.samples, "google-example.com.xml"),
              encoding="utf-8") as f:
        sample = f.read()

    def without(*elements):
        text = sample
        for e in elements:
            text = re.sub(r"\s*<%s>[^<]*</%s>" % (e, e), "", text, count=1)
        return text

    return [
        ("no-id", "the sample without <report_id>", without("report_id")),
        ("no-org", "the sample without <org_name> and <email>",
         without("org_name", "email")),
        ("no-id-no-records", "a report without <report_id>, no records",
         METADATA % ("", POLICY)),
        ("no-id-no-policy",
         "a report without <report_id> and <policy_published>",
         METADATA % ("", "")),
        ("no-metadata", "a report without <report_metadata>",
         '<?xml version="1.0"?>\n<feedback>%s%s\n</feedback>\n'
         % (POLICY, RECORD)),
    ]


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    work = os.path.join(env.work, "bad")
    os.makedirs(work)
    for src, name, _ in BAD:
        shutil.copyfile(os.path.join(env.adversarial, src),
                        os.path.join(work, name))
    for src, name in GOOD:
        shutil.copyfile(os.path.join(env.samples, src),
                        os.path.join(work, name))

    r = db.dmarcd("ingest", work)
    tap.check("ingest of %d bad and %d good files: exit 65"
              % (len(BAD), len(GOOD)),
              [] if r.rc == 65 else [r.describe()])
    rejected = {}
    for row in db.rows("SELECT id, source, location, error_code, error "
                       "FROM dmarcd.rejected_inputs ORDER BY id"):
        rejected.setdefault(row[1], []).append(row)
    listing = db.dmarcd("rejected", "list")
    for src, name, reason in BAD:
        path = os.path.join(work, name)
        problems = []
        lines = [l for l in r.out.splitlines()
                 if l.startswith(path + ":")]
        if len(lines) != 1:
            problems.append("%d output lines name it: %r" % (len(lines),
                                                            lines))
        elif "rejected" not in lines[0] or not re.search(reason, lines[0]):
            problems.append("its line does not give the reason (%s): %r"
                            % (reason, lines[0]))
        rows = rejected.get(path, [])
        if len(rows) != 1:
            problems.append("%d rejected_inputs rows for it: %r"
                            % (len(rows), rows))
        else:
            rid, _, _, code, error = rows[0]
            if not re.search(reason, error):
                problems.append("rejected_inputs.error %r does not give the "
                                "reason (%s)" % (error, reason))
            raw = db.dmarcd("rejected", "show", rid, "--raw", binary=True)
            with open(path, "rb") as f:
                want = f.read()
            if raw.rc != 0 or raw.out != want:
                problems.append("rejected show %s --raw: exit %s, %d bytes "
                                "(%d expected), identical: %s; %s" % (
                                    rid, raw.rc, len(raw.out), len(want),
                                    raw.out == want,
                                    raw.err.decode(errors="replace")))
            show = db.dmarcd("rejected", "show", rid)
            if show.rc != 0 or path not in show.out or \
                    not re.search(reason, show.out):
                problems.append("rejected show %s: exit %s: %s"
                                % (rid, show.rc, show.out + show.err))
            if not re.search(r"^%s\t.*%s" % (rid, re.escape(path)),
                             listing.out, re.M):
                problems.append("rejected list does not show it")
            again = db.dmarcd("ingest", path)
            if again.rc != 65:
                problems.append("ingested alone: exit %s, expected 65"
                                % again.rc)
            rows = db.rows("SELECT id, attempts FROM dmarcd.rejected_inputs "
                           "WHERE source = '%s'" % path)
            if rows != [(rid, "2")]:
                problems.append("ingested again: rejected_inputs (id, "
                                "attempts) %r, expected [(%s, 2)]"
                                % (rows, rid))
        tap.check("%s (%s): one line with the reason, rejected_inputs row, "
                  "raw bytes back identical; alone exit 65, attempts 2"
                  % (name, src), problems)

    problems = []
    for src, name in GOOD:
        path = os.path.join(work, name)
        lines = [l for l in r.out.splitlines()
                 if l.startswith(path + ":")]
        if len(lines) != 1 or "stored" not in lines[0]:
            problems.append("%s: %r" % (name, lines))
        if path in rejected:
            problems.append("%s rejected: %r" % (name, rejected[path]))
    n = db.int("SELECT count(*) FROM dmarcd.reports")
    if n != len(GOOD):
        problems.append("%d reports stored, expected %d" % (n, len(GOOD)))
    tap.check("the good files of the same run are stored", problems)
    tap.check("nothing half-stored", db.consistency())

    # Reports lacking metadata: rejected like any bad input, the run goes
    # on.
    for slug, name, text in metadata_cases(env):
        mdb = cluster.new_db()
        mwork = os.path.join(env.work, slug)
        os.makedirs(mwork)
        bad = os.path.join(mwork, "a-%s.xml" % slug)
        with open(bad, "w", encoding="utf-8") as f:
            f.write(text)
        good = os.path.join(mwork, "b-good.zip")
        shutil.copyfile(os.path.join(env.samples, "mailru-example.net.zip"),
                        good)
        r = mdb.dmarcd("ingest", mwork)
        problems = []
        if r.rc != 65:
            problems.append("exit %s, expected 65" % r.rc)
        if mdb.int("SELECT count(*) FROM dmarcd.rejected_inputs WHERE "
                   "source = '%s'" % bad) != 1:
            problems.append("no rejected_inputs row for it")
        if mdb.int("SELECT count(*) FROM dmarcd.reports") != 1:
            problems.append("the good file after it was not stored")
        if problems:
            problems.append(r.describe())
        tap.check("%s: rejected (exit 65), the run goes on" % name,
                  problems)

    # Retry after an "upgrade": the rejection depends on a limit.
    rdb = cluster.new_db()
    limited = os.path.join(env.work, "limited.conf")
    with open(limited, "w") as f:
        f.write("[limits]\nmax_input_bytes = 1K\n")
    report = os.path.join(env.samples, "yahoo-example.org.xml.gz")
    parsed = json.loads(h.run([env.dmarcd, "parse", report]).out)
    r = rdb.dmarcd("ingest", report, config=limited)
    rows = rdb.rows("SELECT id, error FROM dmarcd.rejected_inputs")
    problems = []
    if r.rc != 65:
        problems.append("exit %s, expected 65\n%s" % (r.rc, r.describe()))
    if len(rows) != 1 or not re.search("limit|exceeds", rows[0][1]):
        problems.append("rejected_inputs: %r" % rows)
    tap.check("a valid gzip report under max_input_bytes = 1K: rejected, "
              "exit 65", problems)
    if len(rows) != 1:
        return
    rid = rows[0][0]

    r = rdb.dmarcd("rejected", "retry", rid, config=limited)
    problems = []
    if r.rc != 65 or "still rejected" not in r.out:
        problems.append(r.describe())
    att = rdb.rows("SELECT attempts, resolved_at IS NULL FROM "
                   "dmarcd.rejected_inputs WHERE id = %s" % rid)
    if att != [("2", "t")]:
        problems.append("attempts, unresolved: %r, expected 2, true" % att)
    if rdb.int("SELECT count(*) FROM dmarcd.reports"):
        problems.append("a report was stored")
    tap.check("rejected retry under the same limit: still rejected (exit "
              "65), attempts 2", problems)

    r = rdb.dmarcd("rejected", "retry", rid)
    problems = []
    if r.rc != 0 or "resolved" not in r.out:
        problems.append(r.describe())
    if rdb.value("SELECT resolved_at IS NOT NULL FROM "
                 "dmarcd.rejected_inputs WHERE id = %s" % rid) != "t":
        problems.append("not marked resolved")
    stored = rdb.rows("SELECT record_count, message_count FROM "
                      "dmarcd.reports")
    want = [(str(parsed["records"]), str(parsed["messages"]))]
    if stored != want:
        problems.append("reports %r, the parser says %r" % (stored, want))
    tap.check("rejected retry without the limit: stored, marked resolved, "
              "exit 0", problems)

    problems = []
    r = rdb.dmarcd("rejected", "list")
    if r.rc != 0 or re.search(r"^%s\t" % rid, r.out, re.M):
        problems.append("rejected list: " + r.describe())
    r = rdb.dmarcd("rejected", "list", "--all")
    if r.rc != 0 or not re.search(r"^%s\t.*resolved" % rid, r.out, re.M):
        problems.append("rejected list --all: " + r.describe())
    s = rdb.stats()
    if (s.get("reports"), s.get("records"), s.get("messages"),
            s.get("rejected")) != (1, parsed["records"], parsed["messages"],
                                   0):
        problems.append("stats: %r" % s)
    r = rdb.dmarcd("stats")
    if r.rc != 0 or not re.search(r"rejected inputs: 0 \(1 resolved", r.out):
        problems.append("stats (text): " + r.describe())
    tap.check("after the retry: not in rejected list, resolved in list "
              "--all, stats counts the report and no rejection", problems)

    problems = []
    r1 = rdb.dmarcd("rejected", "retry", rid)
    r2 = rdb.dmarcd("rejected", "retry")
    if r1.rc != 0 or r2.rc != 0:
        problems.append(r1.describe() + "\n" + r2.describe())
    if rdb.int("SELECT count(*) FROM dmarcd.reports") != 1 or \
            rdb.int("SELECT sum(duplicates) FROM dmarcd.reports") != 0:
        problems.append("reports: %r" % rdb.rows(
            "SELECT id, duplicates FROM dmarcd.reports"))
    tap.check("retrying a resolved input again (by ID and all): exit 0, "
              "nothing stored twice", problems)
    tap.check("nothing half-stored after the retries", rdb.consistency())


if __name__ == "__main__":
    h.run_main(main)
