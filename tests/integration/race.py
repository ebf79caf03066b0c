#!/usr/bin/env python3
"""race.py - two collectors storing versions of one report at once.

Prints TAP; skipped without PostgreSQL or the generator.

The reporter and the month's partitions are stored first. Collector A
stores a report, then reads a named pipe: its transaction
stays open until the test writes to the pipe. Collector B meanwhile
stores the same report, or another version of it (the same key, one
count changed). B is seen waiting for A (pg_stat_activity: a lock); then
the pipe is fed, A commits, B goes on. For a small report (stored at its
end, one statement) and for one over 1 MiB (its row inserted when it
begins, its records copied as they come):

* another version: both exit 0; A's is revision 1, B's revision 2 with
  revision_of A's; rollup_daily holds the newest revision's messages only;
* the same payload: both exit 0; one row, B counted a duplicate.

And a database from before migration 0004, where such a race left two
rows of one report as revision 1, both counted in rollup_daily:
migrating numbers them 1 and 2 (in the order they were stored), makes
the second a revision of the first, counts only the newest in the rollup
and adds the key.
"""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

JAN1 = 1767225600
DAY = 86400


def bumped(path, out):
    """out: the report at path with its first <count> one higher."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"<count>(\d+)</count>", text)
    text = text[:m.start(1)] + str(int(m.group(1)) + 1) + text[m.end(1):]
    with open(out, "w") as f:
        f.write(text)


def wait_for(db, sql, what, timeout=30):
    """Poll until sql returns a true value; False after timeout."""
    end = time.time() + timeout
    while time.time() < end:
        if db.int(sql):
            return True
        time.sleep(0.05)
    return False


def scenario(tap, env, cluster, config, x1, x2, filler, warm):
    db = cluster.new_db()
    name = db.conninfo.split("dbname=")[1].split()[0]
    # The reporter and the month's partitions exist beforehand: B would
    # wait on A's new reporter row or partitions otherwise, before its
    # report.
    r = db.dmarcd("ingest", warm)
    if r.rc != 0:
        return db, ["warming up: " + r.describe()], ""
    fifo = os.path.join(env.work, "pipe-%s" % name)
    os.mkfifo(fifo)
    base = [env.dmarcd, "ingest", "--db", db.conninfo, "--config", config,
            "--no-progress"]
    a = subprocess.Popen(base + [x1, fifo], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=h.clean_env())
    problems = []
    b = None
    try:
        if not wait_for(db, "SELECT count(*) FROM pg_stat_activity WHERE "
                        "datname = '%s' AND state = 'idle in transaction' "
                        "AND backend_type = 'client backend'" % name,
                        "A's open transaction"):
            problems.append("A never held its transaction open")
        b = subprocess.Popen(base + [x2], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=h.clean_env())
        if not wait_for(db, "SELECT count(*) FROM pg_stat_activity WHERE "
                        "datname = '%s' AND wait_event_type = 'Lock'"
                        % name, "B waiting"):
            problems.append("B was never seen waiting for A")
    finally:
        with open(fifo, "wb") as f, open(filler, "rb") as src:
            f.write(src.read())
    out_a, err_a = a.communicate(timeout=h.TIMEOUT)
    out_b, err_b = b.communicate(timeout=h.TIMEOUT) if b else (b"", b"")
    for who, p, err in (("A", a, err_a), ("B", b, err_b)):
        if p is None or p.returncode != 0:
            problems.append("%s: exit %s: %s" % (
                who, p.returncode if p else None,
                err.decode(errors="replace").strip()))
    return db, problems, out_b.decode(errors="replace")


def main(tap):
    env, gen, work = h.setup_with_generator("race")
    config = os.path.join(env.work, "race.conf")
    with open(config, "w") as f:
        f.write("[ingest]\nbatch_reports = 1000\nbatch_ms = 60000\n")
    filler = os.path.join(work, "filler.xml")
    gen(filler, 5, 31, "--domain", "filler.example")
    warm = os.path.join(work, "warm.xml")
    gen(warm, 3, 32, "--domain", "warm.example", "--begin", JAN1 + 2 * DAY,
        "--end", JAN1 + 3 * DAY - 1)
    cluster = h.Cluster(env)
    for size, records in (("small", 40), ("over 1 MiB", 1500)):
        x1 = os.path.join(work, "x1-%d.xml" % records)
        x2 = os.path.join(work, "x2-%d.xml" % records)
        gen(x1, records, 41, "--domain", "race.example", "--begin",
            JAN1 + 5 * DAY, "--end", JAN1 + 6 * DAY - 1)
        bumped(x1, x2)
        if size == "small" and os.path.getsize(x1) > 1 << 20 or \
                size != "small" and os.path.getsize(x1) <= 1 << 20:
            raise RuntimeError("%s is %d bytes" % (x1, os.path.getsize(x1)))

        db, problems, out_b = scenario(tap, env, cluster, config, x1, x2,
                                       filler, warm)
        rows = db.rows("SELECT revision, revision_of, message_count, id "
                       "FROM dmarcd.reports WHERE domain = 'race.example' "
                       "ORDER BY revision")
        if [r[0] for r in rows] != ["1", "2"] or rows[0][1] is not None \
                or rows[1][1] != rows[0][3]:
            problems.append("reports (revision, revision_of, messages, "
                            "id): %r, expected revisions 1 and 2, 2 a "
                            "revision of 1" % rows)
        else:
            rollup = db.int("SELECT sum(messages) FROM dmarcd.rollup_daily "
                            "WHERE domain = 'race.example'")
            if rollup != int(rows[1][2]):
                problems.append("rollup_daily holds %s messages, the "
                                "newest revision %s (both: %d)" % (
                                    rollup, rows[1][2],
                                    int(rows[0][2]) + int(rows[1][2])))
        if "revision" not in out_b:
            problems.append("B said %r" % out_b)
        problems += db.consistency()
        tap.check("%s report, another version stored at the same moment: "
                  "revisions 1 and 2, rollup_daily counts the newest only"
                  % size, problems)

        db, problems, out_b = scenario(tap, env, cluster, config, x1, x1,
                                       filler, warm)
        rows = db.rows("SELECT revision, duplicates FROM dmarcd.reports "
                       "WHERE domain = 'race.example'")
        if rows != [("1", "1")]:
            problems.append("reports (revision, duplicates): %r, expected "
                            "one row, one duplicate" % rows)
        if "duplicate" not in out_b:
            problems.append("B said %r" % out_b)
        problems += db.consistency()
        tap.check("%s report, the same payload stored at the same moment: "
                  "one row, a duplicate" % size, problems)

    # Before 0004: two versions both stored as revision 1.
    db = cluster.new_db()
    x1 = os.path.join(work, "x1-40.xml")
    x2 = os.path.join(work, "x2-40.xml")
    r = db.dmarcd("ingest", x1, x2)
    problems = [] if r.rc == 0 else [r.describe()]
    # As the race left them: both revision 1, neither a revision of the
    # other, both counted in the rollup (the first one added back).
    r = db.psql("ALTER TABLE dmarcd.reports DROP CONSTRAINT "
                "reports_revision_key; UPDATE dmarcd.reports SET revision "
                "= 1, revision_of = NULL; SELECT dmarcd.rollup_add("
                "array_agg(domain), array_agg(id), array_agg(begin_time)) "
                "FROM (SELECT * FROM dmarcd.reports WHERE domain = "
                "'race.example' ORDER BY id LIMIT 1) f; DELETE FROM "
                "dmarcd.schema_migrations WHERE version = 4")
    both = db.int("SELECT sum(message_count) FROM dmarcd.reports WHERE "
                  "domain = 'race.example'")
    if r.rc != 0:
        problems.append("going back to before 0004: " + r.describe())
    elif db.rows("SELECT revision FROM dmarcd.reports WHERE domain = "
                 "'race.example'") != [("1",), ("1",)] or \
            db.int("SELECT sum(messages) FROM dmarcd.rollup_daily WHERE "
                   "domain = 'race.example'") != both:
        problems.append("going back to before 0004: revisions not both 1, "
                        "or the rollup not counting both")
    r = db.dmarcd("migrate")
    if r.rc != 0:
        problems.append("migrate: " + r.describe())
    rows = db.rows("SELECT revision, revision_of, id, message_count FROM "
                   "dmarcd.reports WHERE domain = 'race.example' ORDER BY "
                   "id")
    if [x[:2] for x in rows] != [("1", None), ("2", rows[0][2])]:
        problems.append("(revision, revision_of) after migrating %r, "
                        "expected (1, None), (2, the first's id %s)"
                        % ([x[:2] for x in rows], rows[0][2]))
    else:
        rollup = db.int("SELECT sum(messages) FROM dmarcd.rollup_daily "
                        "WHERE domain = 'race.example'")
        if rollup != int(rows[1][3]):
            problems.append("rollup_daily holds %s messages after "
                            "migrating, the newest revision %s"
                            % (rollup, rows[1][3]))
    # The other domains' rollups are as they were.
    problems += db.consistency()
    if not db.int("SELECT count(*) FROM pg_constraint WHERE conname = "
                  "'reports_revision_key'"):
        problems.append("no reports_revision_key after migrating")
    tap.check("migration 0004 on two rows of one report both revision 1 "
              "and both in the rollup: numbered 1 and 2, the second a "
              "revision of the first, the rollup counts the newest only, "
              "the key added", problems)


if __name__ == "__main__":
    h.run_main(main)
