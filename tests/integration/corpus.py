#!/usr/bin/env python3
"""corpus.py - the shared report corpus through `dmarcd ingest`, twice.

Prints TAP; skipped without PostgreSQL, or without the corpus
($top_srcdir/../shared/corpus, or $DMARCD_SHARED_DIR/corpus: it is not
distributed).

`dmarcd parse --format summary` on every file is the reference:

* the first `dmarcd ingest --recursive CORPUS` handles every file (one
  dmarcd.ingest_log row each) and exits 65 (some files are no report);
* what is stored equals what the parser accepts: the same report may be
  in several files (the parser counts it each time, the store once), so
  reports are compared per distinct (org_name, report_id, policy domain,
  begin, end, payload sha256), with their records and messages, and the
  totals are the sums over those;
* the files the store rejected are the files the parser rejects (and
  dmarcd.rejected_inputs holds exactly their raw bytes' hashes); the
  failure reports stored are the ones the parser accepts, per (raw input
  hash, where);
* nothing is half-stored (see pgharness.Db.consistency);
* the second run stores nothing new: the row counts and `stats --format
  json` reports / records / messages / failure_reports are unchanged, and
  its duplicates grew by exactly the number of reports (aggregate and
  failure) the parser accepts in the whole corpus.
"""
import collections
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402


def corpus_files(root):
    """The files dmarcd ingest --recursive takes: hidden names skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


def parse_all(env, files):
    """{file: summary} from one `dmarcd parse --format summary` run."""
    r = h.run([env.dmarcd, "parse", "--format", "summary"] + files)
    summaries = {}
    for line in r.out.splitlines():
        if line.strip():
            obj = json.loads(line)
            summaries[obj["file"]] = obj
    return r, summaries


def base_name(source):
    """An mbox message 'path#3' is part of the file 'path'."""
    if source is not None and "#" in source:
        head, _, tail = source.rpartition("#")
        if tail.isdigit():
            return head
    return source


def main(tap):
    env = h.setup()
    root = os.path.join(env.shared, "corpus")
    if not os.path.isdir(root):
        h.skip_all("no corpus at %s" % root)
    files = corpus_files(root)
    pr, summaries = parse_all(env, files)
    problems = []
    if pr.rc not in (0, 65) or set(summaries) != set(files):
        problems.append("dmarcd parse: exit %s, %d summaries for %d files"
                        % (pr.rc, len(summaries), len(files)))
    tap.check("dmarcd parse --format summary over the %d corpus files "
              "(the reference)" % len(files), problems)

    # The parser's view.
    expected = {}           # distinct report -> (records, messages)
    accepted_occurrences = 0
    parser_rejects = set()
    failures = set()        # (sha256 of the file, where)
    file_sha = {f: h.sha256_file(f) for f in files}
    for f in files:
        s = summaries.get(f)
        if s is None:
            continue
        if s.get("errors"):
            parser_rejects.add(f)
        for d in s.get("details") or []:
            if d.get("status") != "ok":
                continue
            if d.get("kind") == "aggregate":
                accepted_occurrences += 1
                key = (d["org_name"], d["report_id"],
                       (d["policy_published"]["domain"] or "").lower(),
                       str(d["begin"]), str(d["end"]), d["sha256"])
                expected[key] = (str(d["records"]), str(d["messages"]))
            elif d.get("kind") == "failure":
                accepted_occurrences += 1
                failures.add((file_sha[f], d.get("where") or ""))

    cluster = h.Cluster(env)
    db = cluster.new_db()

    r1 = db.dmarcd("ingest", "--recursive", "--quiet", root)
    problems = []
    want_rc = 65 if parser_rejects else 0
    if r1.rc != want_rc:
        problems.append("exit %s, expected %d\n%s" % (r1.rc, want_rc,
                                                      r1.describe()))
    tap.check("first ingest --recursive of the corpus: exit %d" % want_rc,
              problems)

    logged = collections.Counter(
        base_name(s) for (s,) in db.rows("SELECT source FROM "
                                         "dmarcd.ingest_log"))
    missing = sorted(set(files) - set(logged))
    extra = sorted(set(logged) - set(files))
    problems = []
    if missing:
        problems.append("%d files never ingested (no ingest_log row), "
                        "e.g.:\n  %s" % (len(missing),
                                         "\n  ".join(missing[:10])))
    if extra:
        problems.append("ingest_log names files not in the corpus: %r"
                        % extra[:10])
    tap.check("every corpus file was ingested (one ingest_log row each)",
              problems)

    stored = {}
    for row in db.rows(
            "SELECT org_name, report_id, domain, "
            "extract(epoch FROM begin_time)::bigint::text, "
            "extract(epoch FROM end_time)::bigint::text, "
            "encode(payload_sha256, 'hex'), record_count::text, "
            "message_count::text FROM dmarcd.reports"):
        stored[tuple(row[:6])] = tuple(row[6:])
    problems = []
    only_parser = sorted(set(expected) - set(stored), key=str)
    only_db = sorted(set(stored) - set(expected), key=str)
    differ = sorted((k for k in set(expected) & set(stored)
                     if expected[k] != stored[k]), key=str)
    for k in only_parser[:10]:
        problems.append("accepted by the parser, not stored: %r" % (k,))
    for k in only_db[:10]:
        problems.append("stored, not accepted by the parser: %r" % (k,))
    for k in differ[:10]:
        problems.append("%r: parser (records, messages) %r, stored %r"
                        % (k, expected[k], stored[k]))
    if len(only_parser) + len(only_db) + len(differ) > 10:
        problems.append("(%d, %d and %d in all)" % (
            len(only_parser), len(only_db), len(differ)))
    tap.check("the distinct reports stored are the %d the parser accepts, "
              "with their record and message counts" % len(expected),
              problems)

    totals = (sum(int(v[0]) for v in expected.values()),
              sum(int(v[1]) for v in expected.values()))
    got = tuple(int(x) for x in db.rows(
        "SELECT (SELECT count(*) FROM dmarcd.records), "
        "(SELECT coalesce(sum(count), 0) FROM dmarcd.records)")[0])
    tap.check("records and messages in dmarcd.records equal the parser's "
              "totals over distinct reports (%d, %d)" % totals,
              [] if got == totals else ["stored %r" % (got,)])

    problems = []
    db_rejects = set(base_name(s) for (s,) in db.rows(
        "SELECT DISTINCT source FROM dmarcd.ingest_log WHERE rejected > 0"))
    for f in sorted(parser_rejects - db_rejects)[:10]:
        problems.append("rejected by the parser, not by ingest: %s" % f)
    for f in sorted(db_rejects - parser_rejects)[:10]:
        problems.append("rejected by ingest, not by the parser: %s" % f)
    want_sha = set(file_sha[f] for f in parser_rejects)
    got_sha = set(x for (x,) in db.rows(
        "SELECT DISTINCT encode(raw_sha256, 'hex') FROM "
        "dmarcd.rejected_inputs"))
    if want_sha != got_sha:
        problems.append("rejected_inputs holds %d distinct inputs, the "
                        "parser rejects %d distinct ones (%d missing, %d "
                        "extra)" % (len(got_sha), len(want_sha),
                                    len(want_sha - got_sha),
                                    len(got_sha - want_sha)))
    tap.check("the inputs ingest rejected are the %d the parser rejects"
              % len(parser_rejects), problems)

    got_f = set(db.rows("SELECT encode(raw_sha256, 'hex'), location FROM "
                        "dmarcd.failure_reports"))
    problems = []
    if got_f != failures:
        problems.append("%d failure reports stored, the parser accepts %d "
                        "(%d missing, %d extra)" % (
                            len(got_f), len(failures),
                            len(failures - got_f), len(got_f - failures)))
    tap.check("the failure reports stored are the ones the parser accepts",
              problems)

    tap.check("nothing half-stored after the first run", db.consistency())

    counts1, stats1 = db.counts(), db.stats()
    r2 = db.dmarcd("ingest", "--recursive", "--quiet", root)
    counts2, stats2 = db.counts(), db.stats()
    problems = []
    if r2.rc != r1.rc:
        problems.append("exit %s, the first run's was %s\n%s"
                        % (r2.rc, r1.rc, r2.describe()))
    for k in ("reports", "records", "failure_reports", "rejected_inputs",
              "raw_inputs", "dkim_results", "spf_results", "rollup_daily"):
        if counts1[k] != counts2[k]:
            problems.append("%s rows: %d, then %d" % (k, counts1[k],
                                                      counts2[k]))
    tap.check("second run: no new rows in any data table", problems)

    problems = []
    for k in ("reports", "records", "messages", "revisions",
              "failure_reports"):
        if stats1.get(k) != stats2.get(k):
            problems.append("stats %s: %r, then %r" % (k, stats1.get(k),
                                                       stats2.get(k)))
    grew = (stats2.get("duplicates") or 0) - (stats1.get("duplicates") or 0)
    if grew != accepted_occurrences:
        problems.append("stats duplicates grew by %d, expected %d (every "
                        "accepted report of the corpus seen again)"
                        % (grew, accepted_occurrences))
    tap.check("second run: stats unchanged but duplicates, which grew by "
              "the %d accepted reports" % accepted_occurrences, problems)
    tap.check("nothing half-stored after the second run", db.consistency())


if __name__ == "__main__":
    h.run_main(main)
