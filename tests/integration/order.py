#!/usr/bin/env python3
"""order.py - reports whose parts come in an unusual order are stored as
the parser reads them; and a DMARCbis report's policy in full.

Prints TAP; skipped without PostgreSQL. Built from contrib/samples.

Real reporters send <record> elements before <policy_published> or before
<report_metadata>; the parser accepts these (with a warning) and knows the
report's identifiers only at its end. Each variant of the google sample
(its own report_id) must be stored exactly as `dmarcd parse` gives it:
ingest exits 0, and the reports row has the parser's policy domain,
org_name, report_id, begin, end, payload sha256, records and messages;
policy_published has the parser's p, sp, np, adkim, aspf, pct, testing,
discovery_method; the records and the rollup are under that domain.

The same for a DMARCbis (urn:ietf:params:xml:ns:dmarc-2.0) variant with
<np>, <testing>, <discovery_method> and <adkim>R</adkim>, once small (its
rows copied with its batch) and once over 1 MiB (its records copied while
it is parsed): policy_published.raw keeps {"adkim": "R"}, the spelling
that differs from the normalised value.
"""
import json
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402


def variants(env):
    with open(os.path.join(env.samples, "google-example.com.xml"),
              encoding="utf-8") as f:
        text = f.read()
    meta = re.search(r"\s*<report_metadata>.*?</report_metadata>", text,
                     re.S).group(0)
    policy = re.search(r"\s*<policy_published>.*?</policy_published>", text,
                       re.S).group(0)

    def move(doc, *parts):
        for p in parts:
            doc = doc.replace(p, "")
        return doc.replace("</feedback>", "".join(parts) + "\n</feedback>")

    def rid(doc, name):
        return re.sub(r"<report_id>[^<]*</report_id>",
                      "<report_id>order-%s</report_id>" % name, doc, count=1)

    bis = text.replace("<feedback>", '<feedback xmlns="urn:ietf:params:'
                       'xml:ns:dmarc-2.0">', 1)
    bis = bis.replace("<adkim>r</adkim>", "<adkim>R</adkim>")
    bis = bis.replace("</policy_published>", "<np>reject</np><testing>y"
                      "</testing><discovery_method>treewalk"
                      "</discovery_method></policy_published>")
    pad = "".join("<!-- %s -->\n" % ("x" * 1000) for _ in range(1200))
    return [
        ("dmarcbis", "a DMARCbis report (np, testing, discovery_method)",
         rid(bis, "dmarcbis")),
        ("dmarcbis-big", "a DMARCbis report of over 1 MiB",
         rid(bis.replace("</version>", "</version>\n" + pad, 1),
             "dmarcbis-big")),
        ("policy-last", "<policy_published> after the records",
         rid(move(text, policy), "policy-last")),
        ("metadata-last", "<report_metadata> after the records",
         rid(move(text, meta), "metadata-last")),
        ("both-last", "<report_metadata> and <policy_published> after the "
         "records", rid(move(text, meta, policy), "both-last")),
    ]


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    work = os.path.join(env.work, "order")
    os.makedirs(work)
    for slug, what, doc in variants(env):
        path = os.path.join(work, slug + ".xml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(doc)
        summary = json.loads(h.run([env.dmarcd, "parse", path]).out)
        details = [d for d in summary["details"] if d["status"] == "ok"]
        db = cluster.new_db()
        r = db.dmarcd("ingest", path)
        problems = []
        if len(details) != 1:
            problems.append("the parser does not accept it: %r" % summary)
            tap.check("%s: stored as parsed" % what, problems)
            continue
        d = details[0]
        pp = d["policy_published"]
        if r.rc != 0:
            problems.append(r.describe())
        rows = db.rows("SELECT domain, org_name, report_id, "
                       "extract(epoch FROM begin_time)::bigint, "
                       "extract(epoch FROM end_time)::bigint, "
                       "encode(payload_sha256, 'hex'), record_count, "
                       "message_count FROM dmarcd.reports")
        want = (pp["domain"], d["org_name"], d["report_id"], str(d["begin"]),
                str(d["end"]), d["sha256"], str(d["records"]),
                str(d["messages"]))
        if rows != [want]:
            problems.append("reports %r, parsed %r" % (rows, [want]))
        rows = db.rows("SELECT p, sp, np, adkim, aspf, pct, testing, "
                       "discovery_method, raw::text FROM "
                       "dmarcd.policy_published")
        want = (pp["p"], pp["sp"], pp.get("np"), pp["adkim"], pp["aspf"],
                None if pp["pct"] is None else str(pp["pct"]),
                pp.get("testing"), pp.get("discovery_method"),
                '{"adkim": "R"}' if slug.startswith("dmarcbis") else None)
        if rows != [want]:
            problems.append("policy_published %r, parsed %r" % (rows,
                                                                [want]))
        rows = db.rows("SELECT domain, count(*), sum(count) FROM "
                       "dmarcd.records GROUP BY domain")
        want = (pp["domain"], str(d["records"]), str(d["messages"]))
        if rows != [want]:
            problems.append("records (domain, rows, messages) %r, parsed %r"
                            % (rows, [want]))
        rows = db.rows("SELECT domain, sum(messages) FROM "
                       "dmarcd.rollup_daily GROUP BY domain")
        if rows != [(pp["domain"], str(d["messages"]))]:
            problems.append("rollup_daily (domain, messages) %r" % rows)
        tap.check("%s: exit 0, stored as parsed (domain %s, %d records)"
                  % (what, pp["domain"], d["records"]), problems)


if __name__ == "__main__":
    h.run_main(main)
