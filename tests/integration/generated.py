#!/usr/bin/env python3
"""generated.py - generated reports against their ground truth, stored.

Prints TAP; skipped without PostgreSQL, or without the generator
($top_srcdir/../shared/tools/gen_aggregate.py, or $DMARCD_SHARED_DIR).

gen_aggregate.py --stats writes each report's ground truth. Variants,
each under its own policy domain: plain XML, --gzip, --zip, --dmarcbis,
--quirks, and --dmarcbis --quirks --gzip together, a few thousand records
each, and three reports spanning three days or more (one starting at
midnight UTC, two in the middle of a day, so over four UTC days; the last
of 6000 records, over 1 MiB, so that its rollup is added up while it is
copied, with more keys than dmarcd holds in memory). One `dmarcd ingest
DIR`, then per domain the database must hold the ground truth:

* records (rows of dmarcd.records) and messages (sum of count), and the
  reports row's record_count / message_count / report_id / schema;
* messages per policy_evaluated disposition, dkim and spf value;
* DMARC pass messages (dkim or spf pass); distinct source IPs; the
  messages and records of the top ten source IPs;
* `stats --format json`: the domain's records and messages;
* dmarcd.rollup_daily: sum(messages) equals messages; its aligned
  (dkim or spf) messages equal the DMARC pass messages, and per
  disposition the ground truth;
* for the multi-day reports: the messages per day in rollup_daily equal
  the apportioning computed here, independently, from the records of the
  XML: a record of count c in a report [begin, end) gives a day whose
  overlap with [begin, end) is [lo, hi) seconds from begin the share
  floor(c * hi / total) - floor(c * lo / total), total = end - begin;
* `dmarcd summary`: each domain with its messages and DMARC pass rate.
"""
import collections
import datetime
import os
import re
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DAY = 86400
JAN1 = 1767225600  # 2026-01-01T00:00:00Z

VARIANTS = [
    # domain, records, seed, options
    ("plain.example", 3000, 101, []),
    ("gzip.example", 2500, 102, ["--gzip"]),
    ("zip.example", 2500, 103, ["--zip"]),
    ("bis.example", 2500, 104, ["--dmarcbis"]),
    ("quirks.example", 2500, 105, ["--quirks"]),
    ("mix.example", 1500, 106, ["--dmarcbis", "--quirks", "--gzip"]),
    ("days.example", 1500, 107, ["--begin", JAN1 + 10 * DAY,
                                 "--end", JAN1 + 13 * DAY - 1]),
    ("odd.example", 1500, 108, ["--begin", JAN1 + 20 * DAY + 7 * 3600 + 13,
                                "--end", JAN1 + 23 * DAY + 7 * 3600 + 12]),
    # Under 1 MiB: stored at its end, its rollup rows merged with the
    # batch's (the two above are over 1 MiB).
    ("smalldays.example", 1000, 110, ["--begin", JAN1 + 30 * DAY + 3 * 3600
                                      + 7, "--end", JAN1 + 33 * DAY + 11 *
                                      3600 + 5]),
    # Over 1 MiB: copied as parsed, its rollup added up on the way, with
    # more keys than the table holds (4 days x 6000 records).
    ("bigdays.example", 6000, 109, ["--begin", JAN1 + 25 * DAY + 5 * 3600,
                                    "--end", JAN1 + 28 * DAY + 9 * 3600]),
]


def apportion(counts, begin, end):
    """{date: messages} of records with these counts over [begin, end)."""
    total = end - begin
    per_day = collections.Counter()
    t = begin - begin % DAY
    while t < end:
        lo = max(t, begin) - begin
        hi = min(t + DAY, end) - begin
        day = datetime.datetime.fromtimestamp(
            t, datetime.timezone.utc).strftime("%Y-%m-%d")
        for c in counts:
            per_day[day] += c * hi // total - c * lo // total
        t += DAY
    return dict(per_day)


def record_counts(path):
    counts = []
    for rec in ET.parse(path).getroot().iter("record"):
        counts.append(int(rec.find("row").find("count").text.strip()))
    return counts


def as_dict(rows):
    return {k if k is not None else "(null)": int(v) for k, v in rows}


def main(tap):
    env, gen, work = h.setup_with_generator("generated")
    truths = {}
    paths = {}
    for domain, records, seed, options in VARIANTS:
        ext = ".xml.gz" if "--gzip" in options else \
            ".zip" if "--zip" in options else ".xml"
        path = os.path.join(work, domain + ext)
        truths[domain] = gen(path, records, seed, "--domain", domain,
                             *options, stats=True)
        paths[domain] = path

    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.dmarcd("ingest", work)
    tap.check("ingest of %d generated reports: exit 0" % len(VARIANTS),
              [] if r.rc == 0 else [r.describe()])
    stats = {d["domain"]: d for d in db.stats().get("domains", [])}

    for domain, records, seed, options in VARIANTS:
        t = truths[domain]
        flags = [o for o in options if isinstance(o, str) and
                 o not in ("--begin", "--end")]
        what = "%s (%s records)" % (domain, " ".join(flags + [str(records)]))
        q = "FROM dmarcd.records WHERE domain = '%s'" % domain
        problems = []

        rep = db.rows("SELECT report_id, org_name, record_count, "
                      "message_count, schema, "
                      "extract(epoch FROM begin_time)::bigint, "
                      "extract(epoch FROM end_time)::bigint "
                      "FROM dmarcd.reports WHERE domain = '%s'" % domain)
        want = (t["report"]["report_id"], t["report"]["org_name"],
                str(t["records"]), str(t["messages"]), t["report"]["schema"],
                str(t["report"]["begin"]), str(t["report"]["end"]))
        if rep != [want]:
            problems.append("reports rows %r, expected [%r]" % (rep, want))
        n, m = (int(x) for x in db.rows(
            "SELECT count(*), coalesce(sum(count), 0) " + q)[0])
        if (n, m) != (t["records"], t["messages"]):
            problems.append("records, messages: stored %d, %d; truth %d, %d"
                            % (n, m, t["records"], t["messages"]))
        s = stats.get(domain, {})
        if (s.get("records"), s.get("messages")) != (t["records"],
                                                     t["messages"]):
            problems.append("stats --format json: records %r, messages %r"
                            % (s.get("records"), s.get("messages")))
        tap.check("%s: reports row, records and messages, stats" % what,
                  problems)

        problems = []
        for column in ("disposition", "dkim", "spf"):
            got = as_dict(db.rows("SELECT %s, sum(count) %s GROUP BY %s"
                                  % (column, q, column)))
            if got != t[column]:
                problems.append("messages per %s: stored %r, truth %r"
                                % (column, got, t[column]))
        dmarc_pass = db.int("SELECT coalesce(sum(count), 0) %s AND "
                            "(dkim = 'pass' OR spf = 'pass')" % q)
        if dmarc_pass != t["dmarc_pass_messages"]:
            problems.append("DMARC pass messages: stored %d, truth %d"
                            % (dmarc_pass, t["dmarc_pass_messages"]))
        ips = db.int("SELECT count(DISTINCT coalesce(host(source_ip), "
                     "source_ip_raw)) " + q)
        if ips != t["distinct_source_ips"]:
            problems.append("distinct source IPs: stored %d, truth %d"
                            % (ips, t["distinct_source_ips"]))
        for top in t["source_ip_top10"]:
            got = db.rows("SELECT coalesce(sum(count), 0), count(*) %s AND "
                          "source_ip = '%s'::inet" % (q, top["ip"]))[0]
            if (int(got[0]), int(got[1])) != (top["messages"],
                                              top["records"]):
                problems.append("source %s: stored %s messages in %s "
                                "records; truth %d in %d" % (
                                    top["ip"], got[0], got[1],
                                    top["messages"], top["records"]))
        tap.check("%s: messages per disposition, dkim, spf; DMARC pass; "
                  "distinct and top source IPs" % what, problems)

        problems = []
        g = "FROM dmarcd.rollup_daily WHERE domain = '%s'" % domain
        total = db.int("SELECT coalesce(sum(messages), 0) " + g)
        if total != t["messages"]:
            problems.append("rollup_daily: %d messages, truth %d"
                            % (total, t["messages"]))
        aligned = db.int("SELECT coalesce(sum(messages), 0) %s AND "
                         "(dkim_aligned OR spf_aligned)" % g)
        if aligned != t["dmarc_pass_messages"]:
            problems.append("rollup_daily: %d DKIM or SPF aligned "
                            "messages, truth %d DMARC pass"
                            % (aligned, t["dmarc_pass_messages"]))
        got = as_dict(db.rows("SELECT disposition, sum(messages) %s GROUP "
                              "BY disposition" % g))
        if got != t["disposition"]:
            problems.append("rollup_daily per disposition: %r, truth %r"
                            % (got, t["disposition"]))
        if t["report"]["end"] - t["report"]["begin"] > DAY:
            want = apportion(record_counts(paths[domain]),
                             t["report"]["begin"], t["report"]["end"])
            got = as_dict(db.rows("SELECT day::text, sum(messages) %s "
                                  "GROUP BY day ORDER BY day" % g))
            if got != want:
                problems.append("messages per day: stored %r, apportioned "
                                "%r" % (got, want))
            tap.check("%s: rollup_daily total, aligned, per disposition; "
                      "per day as apportioned over %d days"
                      % (what, len(want)), problems)
        else:
            tap.check("%s: rollup_daily total, aligned and per disposition"
                      % what, problems)

    r = db.dmarcd("summary")
    problems = [] if r.rc == 0 else [r.describe()]
    got = {}
    for m in re.finditer(r"^(\S+): (\d+) messages from \S+ to \S+, "
                         r"([\d.]+)% pass DMARC", r.out, re.M):
        got[m.group(1)] = (int(m.group(2)), m.group(3))
    for domain, _, _, _ in VARIANTS:
        t = truths[domain]
        want = (t["messages"], "%.1f" % (100.0 * t["dmarc_pass_messages"] /
                                         t["messages"]))
        if got.get(domain) != want:
            problems.append("%s: summary says (messages, %% pass) %r, "
                            "truth %r" % (domain, got.get(domain), want))
    tap.check("dmarcd summary: each domain's messages and DMARC pass rate",
              problems)
    many_keys(tap, db, work)
    tap.check("nothing half-stored", db.consistency())


def many_keys(tap, db, work):
    """A report of 20000 records, each from its own address, over three
    UTC days: 60000 rollup keys, more than dmarcd adds up in memory (the
    rest goes through a temporary file); header_from in two spellings that
    the rollup merges."""
    n = 20000
    begin = JAN1 + 40 * DAY + 11 * 3600
    end = begin + 2 * DAY
    recs, counts = [], []
    for i in range(n):
        count = i % 97 + 1
        counts.append(count)
        recs.append(
            "<record><row><source_ip>10.%d.%d.%d</source_ip><count>%d"
            "</count><policy_evaluated><disposition>none</disposition>"
            "<dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
            "<identifiers><header_from>%s</header_from></identifiers>"
            "<auth_results><spf><domain>keys.example</domain><result>fail"
            "</result></spf></auth_results></record>"
            % (i >> 16, (i >> 8) & 255, i & 255, count,
               "Keys.Example" if i % 2 else "keys.example"))
    doc = ("<?xml version=\"1.0\"?><feedback><report_metadata><org_name>"
           "keys test</org_name><email>k@example.org</email><report_id>"
           "many-keys</report_id><date_range><begin>%d</begin><end>%d</end>"
           "</date_range></report_metadata><policy_published><domain>"
           "keys.example</domain><p>none</p></policy_published>%s"
           "</feedback>" % (begin, end, "".join(recs)))
    path = os.path.join(work, "keys", "many-keys.xml")
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)
    r = db.dmarcd("ingest", path)
    problems = [] if r.rc == 0 else [r.describe()]
    want = apportion(counts, begin, end)
    got = as_dict(db.rows("SELECT day::text, sum(messages) FROM "
                          "dmarcd.rollup_daily WHERE domain = 'keys.example' "
                          "GROUP BY day ORDER BY day"))
    if got != want:
        problems.append("messages per day: stored %r, apportioned %r"
                        % (got, want))
    rows = db.rows("SELECT count(*), count(DISTINCT header_from), "
                   "bool_and(dkim_aligned AND NOT spf_aligned) FROM "
                   "dmarcd.rollup_daily WHERE domain = 'keys.example'")
    want_rows = sum(1 for c in counts for d in range(3)
                    if (c * min((d + 1) * DAY - 11 * 3600, 2 * DAY)
                        // (2 * DAY)) - (c * max(d * DAY - 11 * 3600, 0)
                                          // (2 * DAY)) > 0)
    if rows != [(str(want_rows), "1", "t")]:
        problems.append("rollup rows (count, header_from spellings, "
                        "aligned as sent) %r, want %r"
                        % (rows, [(str(want_rows), "1", "t")]))
    tap.check("a report of %d records over 3 days (%d rollup rows, more "
              "than held in memory): per day as apportioned, header_from "
              "merged" % (n, want_rows), problems)


if __name__ == "__main__":
    h.run_main(main)
