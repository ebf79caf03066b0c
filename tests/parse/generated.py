#!/usr/bin/env python3
"""
generated.py - `dmarcd parse` against generated reports with known totals.

Prints TAP. Exit 0 when every test point passed, 1 otherwise. Skipped (plan
"1..0 # SKIP") when the shared folder with tools/gen_aggregate.py is absent
(../shared beside the checkout, or $DMARCD_SHARED_DIR).

gen_aggregate.py writes a deterministic aggregate report and, with
--stats, its ground truth. For each case below the report is parsed with
--format ndjson and --format summary, and:
  * exit 0 and no errors (every generated report is valid; --quirks only
    adds deviations real reporters send, which must be repaired), except
    the 0-record report, see below;
  * the summary: kind "aggregate", one report with status "ok", records
    and messages, and the report's org_name, report_id, begin, end,
    policy domain and schema equal the stats' "report"; a zip's member
    name appears in "where";
  * from the ndjson lines, recomputed exactly as gen_aggregate.py counts
    (policy_evaluated values, lower case, trimmed; source IPs canonical):
    records, messages (sum of count), disposition / dkim / spf messages
    and records per value, dmarc_pass_records / dmarc_pass_messages (dkim
    or spf evaluated "pass"), distinct_source_ips, source_ip_top10 (by
    messages, then by the address text), each equal to the stats; every
    line's "report" identifiers equal the stats' metadata; index runs 1..n.
  * plain, gzip and zip output of one seed give the same records.
A report with 0 records (the generator allows it; RFC 7489's schema wants
at least one <record>) may be accepted or rejected: exit 0 or 65, 65 iff
errors, and either way no record lines, records 0 and messages 0.

Environment: top_srcdir, top_builddir, DMARCD, DMARCD_SHARED_DIR.
Python 3 standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from parse_harness import TIMEOUT, Run, Tap, locate
DAY = 86400
BEGIN = 1767225600  # the generator's default, 2026-01-01 UTC

# (name, generator arguments, seed). Records must be given explicitly.
CASES = [
    ("plain", ["--records", "2000"], 1),
    ("plain-seed2", ["--records", "2000"], 2),
    ("gzip", ["--records", "2000", "--gzip"], 1),
    ("zip", ["--records", "2000", "--zip"], 1),
    ("dmarcbis", ["--records", "2000", "--dmarcbis"], 3),
    ("quirks", ["--records", "2000", "--quirks"], 4),
    ("quirks-gzip", ["--records", "2000", "--quirks", "--gzip"], 5),
    ("dmarcbis-quirks-zip",
     ["--records", "2000", "--dmarcbis", "--quirks", "--zip"], 6),
    ("multi-day", ["--records", "1500", "--begin", str(BEGIN),
                   "--end", str(BEGIN + 3 * DAY - 1)], 8),
    ("few-senders", ["--records", "300", "--senders", "3"], 9),
    ("zero-records", ["--records", "0"], 7),
]
# Cases that must give the same records: same seed and report, other
# container.
SAME_RECORDS = ["plain", "gzip", "zip"]


def find_generator(shared):
    preferred = os.path.join(shared, "tools", "gen_aggregate.py")
    if os.path.isfile(preferred):
        return preferred
    if not os.path.isdir(shared):
        return None
    for directory, subdirs, files in os.walk(shared):
        subdirs.sort()
        if "gen_aggregate.py" in files:
            return os.path.join(directory, "gen_aggregate.py")
    return None


def stats_from_records(records):
    """Recompute gen_aggregate.py's stats from ndjson record lines."""
    st = {"records": len(records), "messages": 0,
          "disposition": {}, "disposition_records": {},
          "dkim": {}, "dkim_records": {}, "spf": {}, "spf_records": {},
          "dmarc_pass_records": 0, "dmarc_pass_messages": 0}
    per_ip = {}
    for r in records:
        count = r.get("count")
        if not isinstance(count, int):
            count = 0
        st["messages"] += count
        for field in ("disposition", "dkim", "spf"):
            value = r.get(field)
            st[field][value] = st[field].get(value, 0) + count
            st[field + "_records"][value] = \
                st[field + "_records"].get(value, 0) + 1
        if r.get("dkim") == "pass" or r.get("spf") == "pass":
            st["dmarc_pass_records"] += 1
            st["dmarc_pass_messages"] += count
        ip = r.get("source_ip")
        entry = per_ip.setdefault(ip, [0, 0])
        entry[0] += count
        entry[1] += 1
    st["distinct_source_ips"] = len(per_ip)
    top = sorted(per_ip.items(), key=lambda kv: (-kv[1][0], str(kv[0])))[:10]
    st["source_ip_top10"] = [{"ip": ip, "messages": v[0], "records": v[1]}
                             for ip, v in top]
    return st


STAT_KEYS = ["records", "messages", "disposition", "disposition_records",
             "dkim", "dkim_records", "spf", "spf_records",
             "dmarc_pass_records", "dmarc_pass_messages",
             "distinct_source_ips", "source_ip_top10"]


def check_ndjson(run, stats, name):
    problems = list(run.problems)
    records = [o for o in run.objects if o.get("type") == "record"]
    # A rejected report (only the zero-record case may be) ends with one
    # "rejected" line; the exit status must then say so.
    others = [o for o in run.objects if o.get("type") != "record" and
              not (o.get("type") == "rejected" and run.rc == 65 and
                   o.get("records") == 0)]
    if others:
        problems.append("%d lines that are not records, first: %.300s"
                        % (len(others), json.dumps(others[0])))
    for o in run.objects:
        if o.get("file") != name:
            problems.append("a line names file %r, expected %r"
                            % (o.get("file"), name))
            break
    got = stats_from_records(records)
    for key in STAT_KEYS:
        if got[key] != stats[key]:
            problems.append("%s: stats say %s, ndjson gives %s"
                            % (key, json.dumps(stats[key], sort_keys=True),
                               json.dumps(got[key], sort_keys=True)))
    meta = stats["report"]
    want_report = {"org_name": meta["org_name"],
                   "report_id": meta["report_id"],
                   "policy_domain": meta["domain"],
                   "begin": meta["begin"], "end": meta["end"]}
    bad = 0
    for o in records:
        report = o.get("report") or {}
        diff = {k: report.get(k) for k in want_report
                if report.get(k) != want_report[k]}
        if diff:
            if bad == 0:
                problems.append("record %r report identifiers %s, expected %s"
                                % (o.get("index"), json.dumps(diff),
                                   json.dumps(want_report)))
            bad += 1
    if bad > 1:
        problems.append("... %d records with wrong report identifiers" % bad)
    indexes = [o.get("index") for o in records]
    if indexes != list(range(1, len(records) + 1)):
        problems.append("index does not run 1..%d" % len(records))
    return problems, records


def check_summary(run, stats, name, ndjson_rc):
    problems = list(run.problems)
    if run.rc is None:
        return problems
    if len(run.objects) != 1:
        return problems + ["%d summary lines, expected 1" % len(run.objects)]
    s = run.objects[0]
    meta = stats["report"]
    zero = stats["records"] == 0
    errors = s.get("errors")
    if run.rc != ndjson_rc:
        problems.append("exit %r, but %r with --format ndjson"
                        % (run.rc, ndjson_rc))
    if zero:
        if run.rc in (0, 65) and (run.rc == 65) != bool(errors):
            problems.append("exit %d but errors=%s"
                            % (run.rc, json.dumps(errors)))
    elif run.rc != 0 or errors:
        problems.append("exit %r, errors %s: a generated report is valid"
                        % (run.rc, json.dumps(errors)[:600]))
    want = {"file": name, "kind": "aggregate", "reports": 1,
            "records": stats["records"], "messages": stats["messages"]}
    for key, value in want.items():
        if s.get(key) != value:
            problems.append("%s: expected %s, got %s"
                            % (key, json.dumps(value), json.dumps(s.get(key))))
    details = s.get("details") or []
    if len(details) != 1:
        return problems + ["%d details, expected 1" % len(details)]
    d = details[0]
    if zero and d.get("status") != "ok":
        return problems  # rejected: its metadata is not promised
    policy = d.get("policy_published") or {}
    want = {"kind": "aggregate", "status": "ok",
            "org_name": meta["org_name"], "report_id": meta["report_id"],
            "begin": meta["begin"], "end": meta["end"],
            "schema": meta["schema"],
            "records": stats["records"], "messages": stats["messages"]}
    for key, value in want.items():
        if d.get(key) != value:
            problems.append("details.%s: expected %s, got %s"
                            % (key, json.dumps(value), json.dumps(d.get(key))))
    if policy.get("domain") != meta["domain"]:
        problems.append("details.policy_published.domain: expected %s, got %s"
                        % (json.dumps(meta["domain"]),
                           json.dumps(policy.get("domain"))))
    if meta.get("member") and meta["member"] not in str(d.get("where")):
        problems.append("details.where %s does not name the zip member %s"
                        % (json.dumps(d.get("where")),
                           json.dumps(meta["member"])))
    return problems


def strip_location(record):
    return {k: v for k, v in record.items() if k not in ("file", "where")}


def main():
    shared, dmarcd = locate()
    generator = find_generator(shared)
    if generator is None:
        print("1..0 # SKIP ../shared/tools/gen_aggregate.py not present")
        return 0
    if not os.access(dmarcd, os.X_OK):
        print("Bail out! dmarcd not found or not executable: %s" % dmarcd)
        return 1
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="dmarcd-generated-")
    try:
        records_of = {}
        for name, args, seed in CASES:
            ext = ".xml.gz" if "--gzip" in args else \
                ".zip" if "--zip" in args else ".xml"
            report = name + ext
            stats_path = os.path.join(tmp, name + ".stats.json")
            gen = subprocess.run(
                [sys.executable, generator, "--seed", str(seed),
                 "--out", os.path.join(tmp, report), "--stats", stats_path]
                + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                timeout=TIMEOUT)
            label = "%s (%s --seed %d)" % (name, " ".join(args), seed)
            if gen.returncode != 0:
                tap.check("generate " + label,
                          ["gen_aggregate.py exit %d: %s"
                           % (gen.returncode,
                              gen.stderr.decode("utf-8", "replace"))])
                continue
            with open(stats_path, encoding="utf-8") as f:
                stats = json.load(f)
            nd = Run(dmarcd, ["--format", "ndjson", report], tmp)
            problems, records = check_ndjson(nd, stats, report)
            tap.check("ndjson %s: counts equal the ground truth" % label,
                      problems)
            records_of[name] = records
            summary = Run(dmarcd, ["--format", "summary", report], tmp)
            tap.check("summary %s: totals and metadata" % label,
                      check_summary(summary, stats, report, nd.rc))
        base = SAME_RECORDS[0]
        for other in SAME_RECORDS[1:]:
            problems = []
            if base not in records_of or other not in records_of:
                problems.append("not generated")
            else:
                a = [strip_location(r) for r in records_of[base]]
                b = [strip_location(r) for r in records_of[other]]
                if len(a) != len(b):
                    problems.append("%d records against %d"
                                    % (len(a), len(b)))
                for i, (x, y) in enumerate(zip(a, b)):
                    if x != y:
                        problems.append("record %d differs: %s / %s"
                                        % (i + 1, json.dumps(x)[:300],
                                           json.dumps(y)[:300]))
                        break
            tap.check("%s and %s of one seed give the same records"
                      % (base, other), problems)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
