#!/usr/bin/env python3
"""compact.py - the daily rollup appended at ingest, compacted after
(sql/0014_rollup_append.sql, store_compact(), dmarcd compact).

Prints TAP; skipped without PostgreSQL. A real PostgreSQL, `dmarcd
migrate`, `dmarcd ingest` of reports this test writes, `dmarcd compact`.

* two reporters' reports of one day with the same three sources: six
  rollup rows (each report's own), the (domain, day) marked; summary and
  sources read them added up;
* `dmarcd compact --older-than 1h` leaves marks made now alone;
  `dmarcd compact` merges the six rows into three with the sums, clears
  the marks, and summary and sources give the same answers as before;
* ingest compacts at its end what was marked an hour ago or more (the
  marks are moved back two hours), the rows of its own report in those
  days included;
* a revision that drops a record: the old rows' negative appended; once
  compacted, the record's key has no row (it added up to 0) and nothing
  is negative;
* two compactions racing step by step (one holds its transaction open
  while a report of the same key comes in and the other waits): the one
  that finds rows taken marks the pair again and merges it (sql/0016);
* concurrency: two ingest processes (--jobs 2) of 60 reports sharing
  keys while three `dmarcd compact` run in a loop beside them: every
  process exits 0, and once compacted again each key has one row holding
  the sum the reports give (worked out here), nothing negative, and
  pgharness's consistency holds;
* a report over 1 MiB with more keys than dmarcd's table holds (20,000
  sources, each twice, far apart, over two days): one row per key and
  day right after ingest (what was spilled to the temporary files is
  added up again when read back), the sums those of the records;
* the ingest role may append to the rollup and run dmarcd.rollup_compact()
  but may not delete rollup rows itself;
* --older-than 5x is a usage error (exit 64).
"""
import datetime
import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DOMAIN = "compact.example"
DAY = datetime.datetime(2026, 3, 2, tzinfo=datetime.timezone.utc)
KEY = ("day, host(source_ip), header_from, dkim_aligned, spf_aligned, "
       "disposition, auth, dkim_domain, spf_domain, override")


def report_xml(org, report_id, records, day=DAY):
    """records: (ip, count, dkim pass?, spf pass?)."""
    begin = int(day.timestamp())
    rows = "".join(
        "<record><row><source_ip>%s</source_ip><count>%d</count>"
        "<policy_evaluated><disposition>none</disposition><dkim>%s</dkim>"
        "<spf>%s</spf></policy_evaluated></row><identifiers>"
        "<header_from>%s</header_from></identifiers><auth_results>"
        "<dkim><domain>%s</domain><result>%s</result></dkim>"
        "<spf><domain>%s</domain><result>%s</result></spf>"
        "</auth_results></record>" % (
            ip, n, "pass" if dk else "fail", "pass" if sp else "fail",
            DOMAIN.upper() if n % 2 else DOMAIN, DOMAIN,
            "pass" if dk else "fail", DOMAIN, "pass" if sp else "fail")
        for ip, n, dk, sp in records)
    return ("<?xml version=\"1.0\"?><feedback><report_metadata>"
            "<org_name>%s</org_name><email>d@%s</email>"
            "<report_id>%s</report_id><date_range><begin>%d</begin>"
            "<end>%d</end></date_range></report_metadata>"
            "<policy_published><domain>%s</domain><p>none</p>"
            "</policy_published>%s</feedback>\n" % (
                org, org, report_id, begin, begin + 86399, DOMAIN,
                rows)).encode()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def answers(db):
    return [db.value("SELECT dmarcd.%s('%s', '2026-03-01', "
                     "'2026-03-04')::text" % (f, DOMAIN))
            for f in ("summary", "sources")]


def rollup_rows(db):
    return sorted(db.rows("SELECT %s, messages FROM dmarcd.rollup_daily "
                          "WHERE domain = '%s'" % (KEY, DOMAIN)))


def rollup_sums(db):
    return sorted(db.rows("SELECT %s, sum(messages) FROM "
                          "dmarcd.rollup_daily WHERE domain = '%s' "
                          "GROUP BY %s HAVING sum(messages) <> 0"
                          % (KEY, DOMAIN, KEY)))


def by_ip(db):
    return {r[0]: int(r[1]) for r in db.rows(
        "SELECT host(source_ip), messages FROM dmarcd.rollup_daily "
        "WHERE domain = '%s'" % DOMAIN)}


def compact_argv(env, db):
    return [env.dmarcd, "compact", "--quiet", "--db", db.conninfo,
            "--config", env.empty_config]


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    work = os.path.join(env.work, "compact")
    db = cluster.new_db()
    recs = [("192.0.2.1", 10, True, True), ("192.0.2.2", 4, False, True),
            ("192.0.2.3", 3, False, False)]
    paths = [write(os.path.join(work, "a", "%s.xml" % org),
                   report_xml(org, "r-" + org, [(ip, n * k, dk, sp)
                                                for ip, n, dk, sp in recs]))
             for k, org in ((1, "one.example"), (2, "two.example"))]
    problems = []
    for p in paths:
        r = db.dmarcd("ingest", p)
        if r.rc != 0:
            problems.append(r.describe())
    rows = rollup_rows(db)
    marks = db.rows("SELECT DISTINCT domain, day FROM dmarcd.rollup_dirty")
    if len(rows) != 6:
        problems.append("%d rollup rows, expected 6 (two per key): %r"
                        % (len(rows), rows))
    if marks != [(DOMAIN, "2026-03-02")]:
        problems.append("marks %r" % marks)
    sums = {r[1]: int(r[-1]) for r in rollup_sums(db)}
    if sums != {"192.0.2.1": 30, "192.0.2.2": 12, "192.0.2.3": 9}:
        problems.append("sums by key %r" % sums)
    before = answers(db)
    if '"messages": 51' not in before[0]:
        problems.append("summary %r" % before[0])
    tap.check("two reports of one day, same sources: each report's rows "
              "appended (6), the day marked, the sums by key right",
              problems)

    r = db.dmarcd("compact", "--older-than", "1h")
    problems = [] if r.rc == 0 else [r.describe()]
    if "0 days" not in r.out or len(rollup_rows(db)) != 6:
        problems.append("compact --older-than 1h: %r, %d rows"
                        % (r.out, len(rollup_rows(db))))
    tap.check("compact --older-than 1h leaves marks made now alone",
              problems)

    r = db.dmarcd("compact")
    problems = [] if r.rc == 0 else [r.describe()]
    if "1 day of a domain, 6 rows merged into 3" not in r.out:
        problems.append("output %r" % r.out)
    if by_ip(db) != {"192.0.2.1": 30, "192.0.2.2": 12, "192.0.2.3": 9}:
        problems.append("rows %r" % by_ip(db))
    if db.int("SELECT count(*) FROM dmarcd.rollup_dirty") != 0:
        problems.append("marks left")
    after = answers(db)
    if after != before:
        problems.append("answers changed: %r -> %r" % (before, after))
    problems += db.consistency()
    tap.check("dmarcd compact: 6 rows merged into 3 with the sums, marks "
              "cleared, summary and sources the same", problems)

    # Ingest compacts what was marked an hour ago or more.
    p3 = write(os.path.join(work, "b", "three.xml"),
               report_xml("three.example", "r-three.example", recs))
    r = db.dmarcd("ingest", p3)
    problems = [] if r.rc == 0 else [r.describe()]
    if len(rollup_rows(db)) != 6:
        problems.append("after a third report: %d rows, expected 6 (its "
                        "marks are new: not compacted)"
                        % len(rollup_rows(db)))
    db.psql("UPDATE dmarcd.rollup_dirty SET marked_at = now() - "
            "interval '2 hours'")
    p4 = write(os.path.join(work, "c", "four.xml"),
               report_xml("four.example", "r-four", recs))
    r = db.dmarcd("ingest", p4)
    if r.rc != 0:
        problems.append(r.describe())
    if by_ip(db) != {"192.0.2.1": 50, "192.0.2.2": 20, "192.0.2.3": 15}:
        problems.append("after ingest of a fourth: rows %r, expected one a "
                        "key" % by_ip(db))
    if db.int("SELECT count(*) FROM dmarcd.rollup_dirty") != 0:
        problems.append("marks left")
    tap.check("ingest compacts at its end the days marked an hour ago or "
              "more, its own report's rows in them too", problems)

    # A revision of four.example without 192.0.2.3.
    p5 = write(os.path.join(work, "d", "four.xml"),
               report_xml("four.example", "r-four", recs[:2]))
    r = db.dmarcd("ingest", p5)
    problems = [] if r.rc == 0 else [r.describe()]
    if "revision" not in r.out:
        problems.append("not a revision: %r" % r.out)
    neg = db.int("SELECT count(*) FROM dmarcd.rollup_daily WHERE "
                 "messages < 0")
    if not neg:
        problems.append("no negative row appended for the revision")
    sums = {r[1]: int(r[-1]) for r in rollup_sums(db)}
    if sums != {"192.0.2.1": 50, "192.0.2.2": 20, "192.0.2.3": 12}:
        problems.append("sums by key %r" % sums)
    before = answers(db)
    r = db.dmarcd("compact")
    if r.rc != 0:
        problems.append(r.describe())
    if by_ip(db) != {"192.0.2.1": 50, "192.0.2.2": 20, "192.0.2.3": 12}:
        problems.append("rows %r" % by_ip(db))
    if db.int("SELECT count(*) FROM dmarcd.rollup_daily WHERE "
              "messages <= 0") != 0:
        problems.append("rows of 0 or less left")
    if answers(db) != before:
        problems.append("answers changed with compaction")
    problems += db.consistency()
    tap.check("a revision dropping a record: negative rows appended, the "
              "sums right; compacted, one row a key and none negative",
              problems)

    # A key that adds up to 0 goes: a revision of three.example without
    # 192.0.2.3 either... and of one and two: then 192.0.2.3 is four's 0.
    for org, k in (("one.example", 1), ("two.example", 2),
                   ("three.example", 1)):
        write(os.path.join(work, "e", "%s.xml" % org), report_xml(
            org, "r-" + org, [(ip, n * k, dk, sp)
                              for ip, n, dk, sp in recs[:2]]))
    r = db.dmarcd("ingest", os.path.join(work, "e"))
    problems = [] if r.rc == 0 else [r.describe()]
    r = db.dmarcd("compact")
    if r.rc != 0:
        problems.append(r.describe())
    if by_ip(db) != {"192.0.2.1": 50, "192.0.2.2": 20}:
        problems.append("rows %r: 192.0.2.3 added up to 0, expected gone"
                        % by_ip(db))
    problems += db.consistency()
    tap.check("a key whose rows add up to 0 has no row once compacted",
              problems)

    # The race of two compactions, step by step (sql/0016): A holds its
    # compaction open; a report of the same key is ingested; B starts,
    # takes the new mark and waits for A; A commits. B skips A's rows,
    # so B marks the pair again and merges A's row with its own.
    db = cluster.new_db()
    problems = []
    for org, k in (("ra.example", 1), ("rb.example", 2)):
        r = db.dmarcd("ingest", write(os.path.join(
            work, "race", "%s.xml" % org),
            report_xml(org, "r-" + org, [(ip, n * k, dk, sp)
                                         for ip, n, dk, sp in recs[:1]])))
        if r.rc != 0:
            problems.append(r.describe())
    a = subprocess.Popen([env.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-d", db.conninfo], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=h.clean_env())
    a.stdin.write("BEGIN;\nSELECT pairs FROM dmarcd.rollup_compact();\n"
                  "\\echo A-held\n")
    a.stdin.flush()
    line = ""
    while line not in ("A-held\n", ""):
        line = a.stdout.readline()
    r = db.dmarcd("ingest", write(os.path.join(work, "race", "rc.xml"),
                                  report_xml("rc.example", "r-rc",
                                             [recs[0]])))
    if r.rc != 0:
        problems.append(r.describe())
    b = subprocess.Popen(compact_argv(env, db), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=h.clean_env())
    deadline = time.monotonic() + h.TIMEOUT
    waiting = 0
    while b.poll() is None and time.monotonic() < deadline:
        waiting = db.int("SELECT count(*) FROM pg_locks WHERE NOT granted")
        if waiting:
            break
        time.sleep(0.05)
    if not waiting:
        problems.append("the second compaction did not wait for the first "
                        "(exit %r)" % b.poll())
    a.stdin.write("COMMIT;\n")
    a.stdin.close()
    a.wait(timeout=h.TIMEOUT)
    out, err = b.communicate(timeout=h.TIMEOUT)
    if b.returncode != 0:
        problems.append("compact exit %d: %s" % (b.returncode, err))
    rows = db.rows("SELECT host(source_ip), messages FROM "
                   "dmarcd.rollup_daily")
    if rows != [("192.0.2.1", "40")]:
        problems.append("rows %r, expected one row of 40 (10 + 20 merged "
                        "by A, 10 by B)" % rows)
    if db.int("SELECT count(*) FROM dmarcd.rollup_dirty") != 0:
        problems.append("marks left")
    problems += db.consistency()
    tap.check("two compactions racing for a key (one holding its rows, "
              "the other waiting): the loser marks the pair again and "
              "merges it, one row with the sum", problems)

    # Concurrency: ingest --jobs 2 beside three compactions in a loop.
    db = cluster.new_db()
    rng = random.Random(6)
    ips = ["198.51.100.%d" % i for i in range(1, 41)]
    want = {}
    cdir = os.path.join(work, "many")
    for n in range(60):
        day = DAY + datetime.timedelta(days=n % 3)
        recs_n = []
        for ip in rng.sample(ips, 12):
            c = rng.randint(1, 9)
            dk = ips.index(ip) % 2 == 0
            recs_n.append((ip, c, dk, not dk))
            key = (day.date().isoformat(), ip)
            want[key] = want.get(key, 0) + c
        write(os.path.join(cdir, "r%02d.xml" % n),
              report_xml("org%02d.example" % n, "m-%d" % n, recs_n, day))
    argv = [env.dmarcd, "ingest", "--db", db.conninfo, "--config",
            env.empty_config, "--quiet", "--jobs", "2", cdir]
    ing = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=h.clean_env())
    cargv = compact_argv(env, db)
    problems = []
    compactions = 0
    deadline = time.monotonic() + h.TIMEOUT
    while ing.poll() is None and time.monotonic() < deadline:
        cs = [subprocess.Popen(cargv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=h.clean_env())
              for _ in range(3)]
        for c in cs:
            out, err = c.communicate(timeout=h.TIMEOUT)
            compactions += 1
            if c.returncode != 0:
                problems.append("compact exit %d: %s" % (
                    c.returncode, err.decode(errors="replace")))
    out, err = ing.communicate(timeout=h.TIMEOUT)
    if ing.returncode != 0:
        problems.append("ingest exit %d: %s" % (
            ing.returncode, err.decode(errors="replace")))
    r = db.dmarcd("compact")
    if r.rc != 0:
        problems.append(r.describe())
    got = {(d, ip): int(m) for d, ip, m in db.rows(
        "SELECT day, host(source_ip), sum(messages) FROM "
        "dmarcd.rollup_daily GROUP BY 1, 2")}
    if got != want:
        problems.append("sums by (day, ip) differ from the reports': %r"
                        % sorted(set(got.items()) ^ set(want.items()))[:6])
    dup = db.int("SELECT count(*) FROM (SELECT 1 FROM dmarcd.rollup_daily "
                 "GROUP BY domain, %s HAVING count(*) > 1) d" % KEY)
    if dup:
        problems.append("%d keys with more than one row after the last "
                        "compaction" % dup)
    problems += db.consistency()
    tap.check("ingest --jobs 2 of 60 reports beside %d compactions (3 at "
              "a time): all exit 0, then one row a key with the reports' "
              "sums" % compactions, problems)

    # A big report whose keys overflow the table (store/rollup.c).
    db2 = cluster.new_db()
    begin = DAY + datetime.timedelta(hours=1)
    n = 20000
    recs_b = [("10.%d.%d.%d" % (i // 65536, i // 256 % 256, i % 256),
               1 + i % 7, i % 3 == 0, i % 2 == 0) for i in range(n)]
    recs_b = recs_b + [(ip, c + 1, dk, sp) for ip, c, dk, sp in recs_b]
    data = report_xml("big.example", "big-1", recs_b, begin)
    data = data.replace(b"<end>%d</end>" % (int(begin.timestamp()) + 86399),
                        b"<end>%d</end>" % (int(begin.timestamp()) + 86400))
    path = write(os.path.join(work, "big", "big.xml"), data)
    r = db2.dmarcd("ingest", path)
    problems = [] if r.rc == 0 else [r.describe()]
    if len(data) <= 1024 * 1024:
        problems.append("the report is only %d bytes" % len(data))
    want_b = {}
    for ip, c, dk, sp in recs_b:
        first = c * 82800 // 86400
        for day, part in (("2026-03-02", first), ("2026-03-03", c - first)):
            if part:
                want_b[(day, ip)] = want_b.get((day, ip), 0) + part
    rows = db2.rows("SELECT day, host(source_ip), messages FROM "
                    "dmarcd.rollup_daily")
    got_b = {}
    for day, ip, m in rows:
        got_b[(day, ip)] = got_b.get((day, ip), 0) + int(m)
    if len(rows) != len(want_b):
        problems.append("%d rollup rows for %d keys and days"
                        % (len(rows), len(want_b)))
    if got_b != want_b:
        problems.append("sums differ: %r" % sorted(
            set(got_b.items()) ^ set(want_b.items()))[:6])
    problems += db2.consistency()
    tap.check("a report over 1 MiB with more keys than the table holds "
              "(%d sources twice, two days): one row per key and day, the "
              "records' sums" % n, problems)

    # The ingest role: appends, compacts, does not delete.
    r = db.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                "rolname = 't_ingest') THEN CREATE ROLE t_ingest LOGIN IN "
                "ROLE dmarcd_ingest; END IF; END $$")
    problems = [] if r.rc == 0 else [r.describe()]
    ci = cluster.conninfo_for(db.name, user="t_ingest")
    r = db.psql("DELETE FROM dmarcd.rollup_daily", conninfo=ci)
    if r.rc == 0 or "permission denied" not in r.err:
        problems.append("the ingest role deleted rollup rows: %s"
                        % r.describe())
    r = db.psql("SELECT * FROM dmarcd.rollup_compact()", conninfo=ci)
    if r.rc != 0:
        problems.append("the ingest role cannot compact: %s"
                        % r.describe())
    r = db.dmarcd("compact", db=ci)
    if r.rc != 0:
        problems.append("dmarcd compact as the ingest role: %s"
                        % r.describe())
    tap.check("the ingest role appends and compacts, and cannot delete "
              "rollup rows itself", problems)

    r = db.dmarcd("compact", "--older-than", "5x")
    tap.check("compact --older-than 5x: a usage error (exit 64)",
              [] if r.rc == 64 and "--older-than" in r.err else
              [r.describe()])


if __name__ == "__main__":
    h.run_main(main)
