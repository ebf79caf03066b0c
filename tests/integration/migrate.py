#!/usr/bin/env python3
"""migrate.py - `dmarcd migrate` and the roles, against a real PostgreSQL.

Prints TAP; skipped ("1..0 # SKIP") without PostgreSQL binaries.

* migrate --status on an empty database lists every migration pending
  and exits 1;
* migrate from empty exits 0 and applies every sql/NNNN_name.sql; then
  --status lists each applied and exits 0;
* migrate again changes nothing: pg_dump --schema-only and the rows of
  dmarcd.schema_migrations are the same before and after;
* several migrate processes started at once on an empty database all exit
  0, each migration is recorded once, and the schema is exactly the one a
  single migrate makes;
* commands other than migrate refuse a database that is not (fully)
  migrated, saying to run 'dmarcd migrate', storing nothing;
* the roles: dmarcd_ingest and dmarcd_reader exist; the reader may read
  the reports but not insert, nor read the raw mail; a login role that is
  only a member of dmarcd_ingest can run dmarcd ingest (a new month's
  partition, a duplicate, a revision, a rejection, stats) but cannot
  change the schema or the migration records (least privilege).
"""
import glob
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402


def expected_migrations(env):
    out = []
    for path in sorted(glob.glob(os.path.join(env.top_srcdir, "sql",
                                              "[0-9]*_*.sql"))):
        m = re.match(r"(\d+)_(.+)\.sql$", os.path.basename(path))
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out


def status_lines(text):
    """{version: line} of `migrate --status`."""
    got = {}
    for line in text.splitlines():
        m = re.match(r"(\d+)\s+(\S+)\s+(.*)$", line)
        if m:
            got[int(m.group(1))] = (m.group(2), m.group(3))
    return got


def schema_dump(env, db):
    r = h.run([env.pg_dump, "--schema-only", "--no-owner", "-d",
               db.conninfo])
    if r.rc != 0:
        raise RuntimeError("pg_dump: " + r.describe())
    # Comments, blank lines and pg_dump's random \restrict keys carry
    # nothing of the schema.
    return "\n".join(l for l in r.out.splitlines()
                     if l and not l.startswith("--") and
                     not l.startswith("\\restrict") and
                     not l.startswith("\\unrestrict"))


def migrations_rows(db):
    return db.rows("SELECT version, name, checksum, applied_at::text "
                   "FROM dmarcd.schema_migrations ORDER BY version")


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    want = expected_migrations(env)
    if not want:
        tap.check("sql/NNNN_*.sql migrations found", ["none in %s/sql"
                                                      % env.top_srcdir])
        return

    # --status on an empty database
    db = cluster.new_db(migrate=False)
    r = db.dmarcd("migrate", "--status")
    got = status_lines(r.out)
    problems = []
    if r.rc != 1:
        problems.append("exit %s, expected 1\n%s" % (r.rc, r.describe()))
    for v, name in want:
        if v not in got or got[v][0] != name or \
                not got[v][1].startswith("pending"):
            problems.append("migration %04d %s not listed as pending: %r"
                            % (v, name, got.get(v)))
    tap.check("migrate --status on an empty database: every migration "
              "pending, exit 1", problems)

    # ingest on the empty database: refused, nothing created
    sample = os.path.join(env.samples, "google-example.com.xml")
    r = db.dmarcd("ingest", sample)
    problems = []
    if r.rc not in (64, 75):
        problems.append("exit %s, expected 75 or 64 (the schema needs "
                        "'dmarcd migrate')" % r.rc)
    if "dmarcd migrate" not in r.err:
        problems.append("stderr does not say to run 'dmarcd migrate'")
    if db.value("SELECT to_regclass('dmarcd.reports')::text") is not None:
        problems.append("dmarcd.reports exists: ingest created schema")
    if problems:
        problems.append(r.describe())
    tap.check("ingest on a database never migrated: refused with "
              "'run dmarcd migrate', nothing created", problems)

    # migrate from empty
    r = db.dmarcd("migrate")
    problems = []
    if r.rc != 0:
        problems.append(r.describe())
    for v, name in want:
        if "%04d_%s" % (v, name) not in r.out:
            problems.append("output does not name %04d_%s as applied"
                            % (v, name))
    tap.check("migrate from empty: exit 0, every migration applied",
              problems)

    r = db.dmarcd("migrate", "--status")
    got = status_lines(r.out)
    problems = []
    if r.rc != 0:
        problems.append("exit %s, expected 0\n%s" % (r.rc, r.describe()))
    for v, name in want:
        if v not in got or not got[v][1].startswith("applied") or \
                "differs" in got[v][1] or "unknown" in got[v][1]:
            problems.append("migration %04d %s: %r" % (v, name,
                                                       got.get(v)))
    if len(got) != len(want):
        problems.append("%d lines for %d migrations:\n%s"
                        % (len(got), len(want), r.out))
    tap.check("migrate --status after migrate: every migration applied, "
              "exit 0", problems)

    rows = migrations_rows(db)
    tap.check("dmarcd.schema_migrations records each migration once",
              [] if [(int(v), n) for v, n, _, _ in rows] == want else
              ["rows %r, expected %r" % (rows, want)])

    # migrate again: nothing changes
    dump1, rows1 = schema_dump(env, db), migrations_rows(db)
    r = db.dmarcd("migrate")
    dump2, rows2 = schema_dump(env, db), migrations_rows(db)
    problems = []
    if r.rc != 0:
        problems.append(r.describe())
    if dump1 != dump2:
        import difflib
        problems.append("schema changed:\n" + "\n".join(list(
            difflib.unified_diff(dump1.splitlines(), dump2.splitlines(),
                                 lineterm=""))[:40]))
    if rows1 != rows2:
        problems.append("schema_migrations changed: %r -> %r"
                        % (rows1, rows2))
    tap.check("migrate again: exit 0, schema dump and schema_migrations "
              "unchanged", problems)
    reference_dump = dump2

    # concurrent migrates on empty databases
    problems = []
    for attempt in range(3):
        cdb = cluster.new_db(migrate=False)
        argv = [env.dmarcd, "migrate", "--db", cdb.conninfo, "--config",
                env.empty_config]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL,
                                  env=h.clean_env()) for _ in range(4)]
        for i, p in enumerate(procs):
            try:
                out, err = p.communicate(timeout=h.TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                problems.append("database %s, migrate %d: hung"
                                % (cdb.name, i))
                continue
            if p.returncode != 0:
                problems.append("database %s, migrate %d: exit %d: %s"
                                % (cdb.name, i, p.returncode,
                                   err.decode(errors="replace")))
        rows = cdb.rows("SELECT version, name, count(*) OVER "
                        "(PARTITION BY version) FROM "
                        "dmarcd.schema_migrations ORDER BY version") if \
            cdb.value("SELECT to_regclass('dmarcd.schema_migrations')"
                      "::text") else []
        if [(int(v), n) for v, n, _ in rows] != want or \
                any(c != "1" for _, _, c in rows):
            problems.append("database %s: schema_migrations %r, expected "
                            "%r once each" % (cdb.name, rows, want))
        if schema_dump(env, cdb) != reference_dump:
            problems.append("database %s: the schema differs from the one "
                            "a single migrate makes" % cdb.name)
    tap.check("4 concurrent migrates on an empty database (3 times): all "
              "exit 0, each migration recorded once, same schema",
              problems)

    # a database migrated by an older dmarcd (the last migration missing)
    if len(want) >= 2:
        odb = cluster.new_db()
        odb.psql("DELETE FROM dmarcd.schema_migrations WHERE version = %d"
                 % want[-1][0])
        r = odb.dmarcd("ingest", sample)
        st = odb.dmarcd("migrate", "--status")
        problems = []
        if r.rc not in (64, 75):
            problems.append("ingest: exit %s, expected 75 or 64" % r.rc)
        if "dmarcd migrate" not in r.err:
            problems.append("ingest: stderr does not say to run 'dmarcd "
                            "migrate'")
        if odb.int("SELECT count(*) FROM dmarcd.reports") != 0:
            problems.append("ingest stored a report anyway")
        if st.rc != 1 or "pending" not in st.out:
            problems.append("migrate --status: exit %s, expected 1 with "
                            "the last one pending\n%s" % (st.rc, st.out))
        if problems:
            problems.append(r.describe())
        tap.check("schema behind this dmarcd: ingest refuses ('run dmarcd "
                  "migrate'), --status exits 1", problems)

    # roles
    roles = [r[0] for r in db.rows(
        "SELECT rolname FROM pg_roles WHERE rolname IN ('dmarcd_ingest', "
        "'dmarcd_reader') ORDER BY 1")]
    tap.check("roles dmarcd_ingest and dmarcd_reader exist",
              [] if roles == ["dmarcd_ingest", "dmarcd_reader"] else
              ["found %r" % roles])

    # Every SECURITY DEFINER function has a fixed search_path with
    # pg_temp last (else the caller's temporary tables come first).
    loose = db.rows(
        "SELECT p.oid::regprocedure::text, coalesce(array_to_string("
        "p.proconfig, ' '), '') FROM pg_proc p JOIN pg_namespace n ON "
        "n.oid = p.pronamespace WHERE p.prosecdef AND n.nspname LIKE "
        "'dmarcd%' AND NOT coalesce(array_to_string(p.proconfig, ' '), '') "
        "~ '(^| )search_path=pg_catalog, dmarcd, pg_temp( |$)'")
    ndef = db.int("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON "
                  "n.oid = p.pronamespace WHERE p.prosecdef AND "
                  "n.nspname LIKE 'dmarcd%'")
    tap.check("every SECURITY DEFINER function (%d) has search_path "
              "pg_catalog, dmarcd, pg_temp" % ndef,
              ["%s: %s" % (f, c) for f, c in loose] +
              ([] if ndef >= 6 else ["only %d found" % ndef]))

    r = db.dmarcd("ingest", sample)
    if r.rc != 0:
        tap.note("setup: ingest as postgres failed: " + r.describe())

    def as_role(role, sql):
        return db.psql("SET ROLE %s; %s" % (role, sql))

    problems = []
    rr = as_role("dmarcd_reader", "SELECT count(*) FROM dmarcd.reports; "
                 "SELECT count(*) FROM dmarcd.records; "
                 "SELECT count(*) FROM dmarcd.rollup_daily")
    if rr.rc != 0:
        problems.append("the reader cannot read the reports: " + rr.err)
    rr = as_role("dmarcd_reader",
                 "INSERT INTO dmarcd.reports (domain, reporter_id, "
                 "org_name, report_id, begin_time, end_time, schema) VALUES "
                 "('x.example', 1, 'o', 'r', now(), now(), 'rfc7489')")
    if rr.rc == 0 or "permission denied" not in rr.err:
        problems.append("INSERT INTO dmarcd.reports as dmarcd_reader: exit "
                        "%s, %s" % (rr.rc, rr.err.strip() or "no error"))
    for sql in ("UPDATE dmarcd.reports SET duplicates = 7",
                "DELETE FROM dmarcd.records",
                "SELECT count(*) FROM dmarcd.raw_chunks"):
        rr = as_role("dmarcd_reader", sql)
        if rr.rc == 0 or "permission denied" not in rr.err:
            problems.append("%s as dmarcd_reader: exit %s, %s"
                            % (sql, rr.rc, rr.err.strip() or "no error"))
    tap.check("dmarcd_reader reads the reports but cannot INSERT, UPDATE, "
              "DELETE, nor read the raw mail (permission denied)", problems)

    # a login role with dmarcd_ingest only
    r = cluster.psql("CREATE ROLE alice LOGIN IN ROLE dmarcd_ingest")
    alice = cluster.conninfo_for(db.name, user="alice")
    problems = []
    if r.rc != 0:
        problems.append("CREATE ROLE alice: " + r.err)
    work = os.path.join(env.work, "alice")
    os.makedirs(work)
    # A report in a month no report has been stored in yet (a partition
    # must be made), and a revision of the sample (one count changed).
    with open(sample, encoding="utf-8") as f:
        text = f.read()
    begin = re.search(r"<begin>\s*(\d+)\s*</begin>", text).group(1)
    end = re.search(r"<end>\s*(\d+)\s*</end>", text).group(1)
    shift = 86400 * 200
    moved = text.replace("<begin>%s</begin>" % begin,
                         "<begin>%d</begin>" % (int(begin) - shift)) \
        .replace("<end>%s</end>" % end, "<end>%d</end>" % (int(end) - shift))
    revised = re.sub(r"<count>(\d+)</count>",
                     lambda m: "<count>%d</count>" % (int(m.group(1)) + 1),
                     text, count=1)
    files = {"moved.xml": moved, "revised.xml": revised}
    for name, body in files.items():
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.write(body)
    before = db.int("SELECT count(*) FROM dmarcd.reports")
    months_before = db.int("SELECT count(*) FROM pg_inherits WHERE "
                           "inhparent = 'dmarcd.records'::regclass")
    r1 = db.dmarcd("ingest", os.path.join(work, "moved.xml"),
                   os.path.join(work, "revised.xml"), sample,
                   os.path.join(env.samples, "failure-report.eml"), db=alice)
    if r1.rc != 0:
        problems.append("ingest as alice: " + r1.describe())
    after = db.int("SELECT count(*) FROM dmarcd.reports")
    if after != before + 2:
        problems.append("%d reports stored as alice, expected 2 (a new "
                        "month and a revision)" % (after - before))
    if db.int("SELECT count(*) FROM pg_inherits WHERE inhparent = "
              "'dmarcd.records'::regclass") <= months_before:
        problems.append("no new partition of dmarcd.records was made")
    if db.int("SELECT max(revision) FROM dmarcd.reports") != 2:
        problems.append("the revision was not stored as revision 2")
    if db.int("SELECT sum(duplicates) FROM dmarcd.reports") != 1:
        problems.append("the duplicate was not counted")
    bad = os.path.join(env.adversarial, "html-instead-of-xml.html")
    r2 = db.dmarcd("ingest", bad, db=alice)
    if r2.rc != 65:
        problems.append("ingest of a bad file as alice: exit %s, expected "
                        "65\n%s" % (r2.rc, r2.describe()))
    rid = db.value("SELECT max(id) FROM dmarcd.rejected_inputs")
    if rid is None:
        problems.append("no rejected_inputs row for the bad file")
    else:
        r3 = db.dmarcd("rejected", "show", rid, "--raw", db=alice,
                       binary=True)
        with open(bad, "rb") as f:
            if r3.rc != 0 or r3.out != f.read():
                problems.append("rejected show --raw as alice: exit %s, "
                                "%r" % (r3.rc, r3.err))
    for cmd in (("stats",), ("stats", "--format", "json"), ("summary",),
                ("rejected", "list"), ("migrate", "--status")):
        r4 = db.dmarcd(*cmd, db=alice)
        if r4.rc != 0:
            problems.append("%s as alice: %s" % (" ".join(cmd),
                                                 r4.describe()))
    tap.check("a login role with only dmarcd_ingest: ingest (new month's "
              "partition, revision, duplicate, failure report, rejection), "
              "rejected show --raw, stats, summary", problems)

    problems = []
    for sql in ("CREATE TABLE dmarcd.x (a int)",
                "DROP TABLE dmarcd.reports",
                "ALTER TABLE dmarcd.reports ADD COLUMN x int",
                "INSERT INTO dmarcd.schema_migrations (version, name, "
                "checksum) VALUES (9999, 'x', 'x')",
                "UPDATE dmarcd.schema_migrations SET name = 'x'",
                "DELETE FROM dmarcd.reports",
                "CREATE FUNCTION dmarcd.f() RETURNS int LANGUAGE sql AS "
                "'SELECT 1'"):
        rr = db.psql(sql, conninfo=alice)
        if rr.rc == 0 or not re.search("permission denied|must be owner",
                                       rr.err):
            problems.append("%s as alice: exit %s, %s"
                            % (sql, rr.rc, rr.err.strip() or "no error"))
    tap.check("dmarcd_ingest cannot change the schema, the migration "
              "records, or delete reports", problems)

    # a refused login, and a password that must never be printed
    r = db.dmarcd("ingest", sample, db=cluster.conninfo_for(
        db.name, user="nosuch_role", extra="password=s3cret"))
    problems = []
    if r.rc in (0, 65, 70) or r.rc is None:
        problems.append("exit %s, expected 64 or 75" % r.rc)
    if "nosuch_role" not in r.err:
        problems.append("stderr does not say which role was refused")
    if "s3cret" in r.err + r.out:
        problems.append("the password appears in the output")
    if problems:
        problems.append(r.describe())
    tap.check("a refused login: an error naming the role, no password "
              "printed", problems)


if __name__ == "__main__":
    h.run_main(main)
