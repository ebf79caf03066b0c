#!/usr/bin/env python3
"""privileges.py - each PostgreSQL role can do what it needs and no more.

Prints TAP; skipped without PostgreSQL. A throwaway cluster, `dmarcd
migrate`, the samples ingested, and four login roles: one with
dmarcd_reader only (what the API uses), one with dmarcd_ingest only (what
ingest, fetch and the daemon use), one with dmarcd_grafana only, one with
dmarcd_admin only (what dmarcd token uses).

Checked, with the names docs/security.md cites:
  reader: write: KIND      connected as the API's role, INSERT, UPDATE,
        DELETE and TRUNCATE on every table of schemas dmarcd and
        dmarcd_v1 (read from pg_class: a new table is covered), and
        CREATE in each schema, all fail with permission denied (tried in
        a transaction rolled back, so a hole would change nothing);
        has_table_privilege agrees for the views too.
  reader: no function that writes   no VOLATILE SECURITY DEFINER function
        (one that writes with its owner's rights) is executable.
  reader: no raw bytes     raw_inputs and raw_chunks are not readable.
  ingest: ...              no DELETE of reports, records, raw inputs; no
        TRUNCATE, no CREATE, no write to schema_migrations; UPDATE of a
        report's origin (org_name, report_id, begin_time, domain) or a
        record's content denied (sql/0017_least_privilege.sql); and yet
        dmarcd ingest (the samples, adversarial inputs, a duplicate, a
        failure report) and compact run as that role.
  ingest: no write to the API's tokens   INSERT, UPDATE, DELETE of
        api_tokens, and any write of the sender map (platforms,
        sender_rules), DELETE of rejected_inputs: permission denied
        (sql/0018_admin_role.sql).
  ingest: dmarcd token add fails   as the ingest role (--db, or conninfo
        with no admin_conninfo): exit 77, a message naming the role, GRANT
        dmarcd_admin and admin_conninfo; no token printed, no row added.
  admin: ...               writes api_tokens, the sender map, deletes a
        refused input, runs refresh_platforms(); writes nothing else;
        dmarcd token add, list and revoke run as that role, through
        [database] admin_conninfo while conninfo is the ingest role's.
  grafana: ...             no USAGE on schema dmarcd, every dmarcd_v1 view
        readable, nothing writable.
  migrate: ...             0018 on a cluster where dmarcd_admin exists
        already, run by a database owner without CREATEROLE: it works;
        with the role missing, it fails naming dmarcd_admin and
        CREATEROLE, leaving the schema before 0018; a superuser's migrate
        then makes the role.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

READER = "dmarcd_priv_reader"
INGEST = "dmarcd_priv_ingest"
GRAFANA = "dmarcd_priv_grafana"
ADMIN = "dmarcd_priv_admin"
# What only dmarcd_admin may write (sql/0018_admin_role.sql).
ADMIN_TABLES = ["dmarcd.api_tokens", "dmarcd.platforms",
                "dmarcd.sender_rules"]

# Every write, tried on every table as the given role; each outcome is a
# row "kind<TAB>table<TAB>sqlstate" (42501: insufficient_privilege).
PROBE = r"""
BEGIN;
CREATE TEMP TABLE probe_out (kind text, rel text, state text);
DO $$
DECLARE
	t record;
	col text;
	stmt text;
	kind text;
BEGIN
	FOR t IN SELECT c.oid, n.nspname, c.relname FROM pg_class c
	    JOIN pg_namespace n ON n.oid = c.relnamespace
	    WHERE n.nspname IN ('dmarcd', 'dmarcd_v1') AND c.relkind IN ('r', 'p')
	    AND NOT c.relispartition ORDER BY 1, 2
	LOOP
		SELECT attname INTO col FROM pg_attribute WHERE attrelid = t.oid
		    AND attnum > 0
		    AND NOT attisdropped AND attidentity = '' AND attgenerated = ''
		    ORDER BY attnum LIMIT 1;
		FOREACH kind IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']
		LOOP
			stmt := CASE kind
			    WHEN 'INSERT' THEN format('INSERT INTO %%I.%%I DEFAULT VALUES',
				t.nspname, t.relname)
			    WHEN 'UPDATE' THEN format('UPDATE %%I.%%I SET %%I = %%I',
				t.nspname, t.relname, col, col)
			    WHEN 'DELETE' THEN format('DELETE FROM %%I.%%I',
				t.nspname, t.relname)
			    ELSE format('TRUNCATE %%I.%%I', t.nspname, t.relname) END;
			BEGIN
				EXECUTE stmt;
				INSERT INTO probe_out VALUES (kind,
				    t.nspname || '.' || t.relname, '00000');
			EXCEPTION WHEN OTHERS THEN
				INSERT INTO probe_out VALUES (kind,
				    t.nspname || '.' || t.relname, SQLSTATE);
			END;
		END LOOP;
	END LOOP;
	FOREACH kind IN ARRAY ARRAY['dmarcd', 'dmarcd_v1', 'public'] LOOP
		BEGIN
			EXECUTE format('CREATE TABLE %%I.probe_%%s (x int)', kind,
			    md5(random()::text));
			INSERT INTO probe_out VALUES ('CREATE', kind, '00000');
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO probe_out VALUES ('CREATE', kind, SQLSTATE);
		END;
	END LOOP;
END $$;
COPY (SELECT * FROM probe_out ORDER BY 1, 2) TO STDOUT;
ROLLBACK;
"""


def as_role(db, role, sql):
    return db.psql(sql, conninfo=db.cluster.conninfo_for(db.name,
                                                         user=role))


def probe(db, role):
    """{(kind, table): sqlstate} of every write tried as role."""
    r = db.psql("SET ROLE %s;\n" % role + PROBE.replace("%%", "%"))
    if r.rc != 0:
        raise RuntimeError(r.describe())
    out = {}
    for line in r.out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            out[(parts[0], parts[1])] = parts[2]
    if not out:
        raise RuntimeError("the probe tried nothing: " + r.describe())
    return out


def denied(results, kinds=None, tables=None):
    """The probes that did not end in permission denied (42501)."""
    return ["%s %s: SQLSTATE %s" % (k, t, s) for (k, t), s in
            sorted(results.items()) if s != "42501" and
            (kinds is None or k in kinds) and
            (tables is None or t in tables)]


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    for role, group in ((READER, "dmarcd_reader"),
                        (INGEST, "dmarcd_ingest"),
                        (GRAFANA, "dmarcd_grafana"),
                        (ADMIN, "dmarcd_admin")):
        r = db.psql("CREATE ROLE %s LOGIN IN ROLE %s" % (role, group))
        if r.rc != 0 and role == ADMIN:
            # No dmarcd_admin (0018 missing): a login with no rights, so
            # that each check of it fails on its own.
            tap.note("no role dmarcd_admin: " + r.err.strip())
            r = db.psql("CREATE ROLE %s LOGIN" % role)
        if r.rc != 0:
            raise RuntimeError(r.describe())

    # The ingest role does its work: this is what the tighter grants of
    # 0017 must still allow.
    ingest_db = cluster.conninfo_for(db.name, user=INGEST)
    problems = []
    for path in (env.samples, os.path.join(env.samples,
                                           "google-example.com.xml"),
                 os.path.join(env.adversarial, "missing-report-id.xml"),
                 os.path.join(env.samples, "failure-report.eml"),
                 os.path.join(env.samples, "failure-report.eml")):
        r = db.dmarcd("ingest", path, db=ingest_db)
        if r.rc not in (0, 65) or "permission denied" in r.err:
            problems.append(r.describe())
    if db.int("SELECT count(*) FROM dmarcd.reports") < 3:
        problems.append("the reports were not stored")
    if db.int("SELECT sum(duplicates) FROM dmarcd.reports") < 1:
        problems.append("the duplicate was not counted")
    tap.check("ingest: dmarcd ingest runs as the ingest role (samples, "
              "a duplicate, a rejected input, a failure report twice)",
              problems)
    r = db.dmarcd("compact", db=ingest_db)
    tap.check("ingest: dmarcd compact runs as the ingest role",
              [] if r.rc == 0 else [r.describe()])
    token_checks(tap, db, cluster, env, ingest_db)
    reports_before = db.rows("SELECT domain, id, org_name, report_id, "
                             "begin_time FROM dmarcd.reports ORDER BY 2")

    # -- the API's role
    results = probe(db, READER)
    tap.check("reader: write: INSERT, UPDATE, DELETE, TRUNCATE on every "
              "table (%d tried): permission denied" % len(results),
              denied(results, ("INSERT", "UPDATE", "DELETE", "TRUNCATE")))
    tap.check("reader: write: CREATE in dmarcd, dmarcd_v1, public: "
              "permission denied", denied(results, ("CREATE",)))
    rows = db.rows(
        "SELECT n.nspname || '.' || c.relname, p FROM pg_class c JOIN "
        "pg_namespace n ON n.oid = c.relnamespace, unnest(ARRAY['INSERT', "
        "'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p WHERE "
        "n.nspname IN ('dmarcd', 'dmarcd_v1') AND c.relkind IN ('r', 'p', "
        "'v', 'm') AND has_table_privilege('%s', c.oid, p)" % READER)
    tap.check("reader: write: has_table_privilege, views included", [
        "%s on %s" % (p, t) for t, p in rows])
    rows = db.rows(
        "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON "
        "n.oid = p.pronamespace WHERE n.nspname IN ('dmarcd', 'dmarcd_v1') "
        "AND p.prosecdef AND p.provolatile = 'v' AND "
        "has_function_privilege('%s', p.oid, 'EXECUTE')" % READER)
    tap.check("reader: no function that writes (VOLATILE SECURITY "
              "DEFINER) is executable", [r[0] for r in rows])
    r = as_role(db, READER, "SELECT count(*) FROM dmarcd.raw_chunks")
    r2 = as_role(db, READER, "SELECT count(*) FROM dmarcd.raw_inputs")
    tap.check("reader: no raw bytes (raw_chunks, raw_inputs)",
              [] if r.rc != 0 and "permission denied" in r.err and
              r2.rc != 0 and "permission denied" in r2.err else
              [r.describe(), r2.describe()])
    r = as_role(db, READER, "SELECT count(*) FROM dmarcd.reports")
    tap.check("reader: reads the reports",
              [] if r.rc == 0 else [r.describe()])

    # -- the ingest role
    results = probe(db, INGEST)
    core = ["dmarcd.reports", "dmarcd.records", "dmarcd.raw_inputs",
            "dmarcd.raw_chunks", "dmarcd.policy_published",
            "dmarcd.dkim_results", "dmarcd.spf_results",
            "dmarcd.failure_reports", "dmarcd.ingest_log"]
    tap.check("ingest: no DELETE of reports, records, raw inputs, results",
              denied(results, ("DELETE",), core))
    tap.check("ingest: no TRUNCATE of any table",
              denied(results, ("TRUNCATE",)))
    tap.check("ingest: no CREATE in dmarcd, dmarcd_v1, public",
              denied(results, ("CREATE",)))
    tap.check("ingest: no write to schema_migrations",
              denied(results, ("INSERT", "UPDATE", "DELETE"),
                     ["dmarcd.schema_migrations"]))
    tap.check("ingest: no UPDATE of the raw bytes, results, warnings, "
              "log, reporters",
              denied(results, ("UPDATE",), [
                  "dmarcd.raw_chunks", "dmarcd.dkim_results",
                  "dmarcd.spf_results", "dmarcd.report_warnings",
                  "dmarcd.ingest_log", "dmarcd.reporters"]))
    problems = []
    for stmt in ("UPDATE dmarcd.reports SET org_name = 'forged'",
                 "UPDATE dmarcd.reports SET report_id = 'forged'",
                 "UPDATE dmarcd.reports SET begin_time = now()",
                 "UPDATE dmarcd.reports SET domain = 'forged.example'",
                 "UPDATE dmarcd.records SET source_ip = '192.0.2.1'",
                 "UPDATE dmarcd.records SET count = 0",
                 "UPDATE dmarcd.raw_inputs SET sha256 = sha256",
                 "UPDATE dmarcd.policy_published SET p = 'none'",
                 "UPDATE dmarcd.rollup_daily SET messages = 0",
                 "UPDATE dmarcd.failure_reports SET source_ip = "
                 "'192.0.2.1'"):
        r = as_role(db, INGEST, stmt)
        if r.rc == 0 or "permission denied" not in r.err:
            problems.append("%s: %s" % (stmt, r.describe()))
    tap.check("ingest: no UPDATE of a report's origin, a record's or a "
              "failure report's content, nor of the rollup's sums (0017)",
              problems)
    tap.check("ingest: the reports are unchanged after the attempts",
              [] if db.rows("SELECT domain, id, org_name, report_id, "
                            "begin_time FROM dmarcd.reports ORDER BY 2") ==
              reports_before else ["the reports changed"])

    problems = []
    for stmt in ("INSERT INTO dmarcd.api_tokens (name, sha256) VALUES "
                 "('forged', '\\x00')",
                 "UPDATE dmarcd.api_tokens SET revoked_at = NULL",
                 "UPDATE dmarcd.api_tokens SET domains = NULL",
                 "DELETE FROM dmarcd.api_tokens",
                 "UPDATE dmarcd.platforms SET url = 'https://forged.example'",
                 "INSERT INTO dmarcd.sender_rules (kind, suffix, platform) "
                 "SELECT 'ptr', 'forged.example', name FROM dmarcd.platforms "
                 "LIMIT 1",
                 "DELETE FROM dmarcd.rejected_inputs"):
        r = as_role(db, INGEST, stmt)
        if r.rc == 0 or "permission denied" not in r.err:
            problems.append("%s: %s" % (stmt, r.describe()))
    problems += denied(results, ("INSERT", "UPDATE", "DELETE"),
                       ADMIN_TABLES)
    problems += denied(results, ("DELETE",), ["dmarcd.rejected_inputs"])
    tap.check("ingest: no write to the API's tokens, the sender map, no "
              "DELETE of refused inputs (0018)", problems)
    r = as_role(db, INGEST, "SELECT count(*) FROM dmarcd.api_tokens")
    tap.check("ingest: still reads the tokens (dmarcd run's API)",
              [] if r.rc == 0 else [r.describe()])

    # -- the admin role
    results = probe(db, ADMIN)
    allowed = ["%s %s: SQLSTATE %s" % (k, t, s) for (k, t), s in
               sorted(results.items()) if t in ADMIN_TABLES and
               k in ("INSERT", "UPDATE", "DELETE") and s == "42501"]
    tap.check("admin: INSERT, UPDATE, DELETE of api_tokens, platforms, "
              "sender_rules allowed", allowed)
    problems = []
    for stmt in ("SELECT dmarcd.refresh_platforms()",
                 "BEGIN; DELETE FROM dmarcd.rejected_inputs; ROLLBACK"):
        r = as_role(db, ADMIN, stmt)
        if r.rc != 0:
            problems.append("%s: %s" % (stmt, r.describe()))
    tap.check("admin: refresh_platforms() and DELETE of refused inputs",
              problems)
    mine = set((k, t) for t in ADMIN_TABLES
               for k in ("INSERT", "UPDATE", "DELETE"))
    mine.add(("DELETE", "dmarcd.rejected_inputs"))
    others = dict((kt, st) for kt, st in results.items() if kt not in mine)
    tap.check("admin: no other write (%d tried), no TRUNCATE, no CREATE"
              % len(others), denied(others))

    # -- Grafana's role
    rows = db.rows("SELECT has_schema_privilege('%s', 'dmarcd', 'USAGE'), "
                   "has_schema_privilege('%s', 'dmarcd_v1', 'USAGE')"
                   % (GRAFANA, GRAFANA))
    r = as_role(db, GRAFANA, "SELECT count(*) FROM dmarcd.reports")
    tap.check("grafana: no USAGE on schema dmarcd, USAGE on dmarcd_v1",
              [] if rows == [("f", "t")] and r.rc != 0 and
              "permission denied" in r.err else [repr(rows), r.describe()])
    views = db.rows("SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = "
                    "'dmarcd_v1' AND c.relkind IN ('v', 'm', 'r', 'p')")
    problems = [] if views else ["no view in dmarcd_v1"]
    for (v,) in views:
        r = as_role(db, GRAFANA, "SELECT * FROM dmarcd_v1.%s LIMIT 1" % v)
        if r.rc != 0:
            problems.append(r.describe())
    tap.check("grafana: every dmarcd_v1 view (%d) readable" % len(views),
              problems)
    rows = db.rows(
        "SELECT n.nspname || '.' || c.relname, p FROM pg_class c JOIN "
        "pg_namespace n ON n.oid = c.relnamespace, unnest(ARRAY['INSERT', "
        "'UPDATE', 'DELETE', 'TRUNCATE']) p WHERE n.nspname IN ('dmarcd', "
        "'dmarcd_v1') AND c.relkind IN ('r', 'p', 'v', 'm') AND "
        "has_table_privilege('%s', c.oid, p)" % GRAFANA)
    results = probe(db, GRAFANA)
    tap.check("grafana: nothing writable",
              ["%s on %s" % (p, t) for t, p in rows] +
              denied(results))

    migrate_checks(tap, db, cluster, env)


def migrate_checks(tap, db, cluster, env):
    """0018's role on a cluster where it exists, or not, migrated by a
    database owner without CREATEROLE. Last: it drops dmarcd_admin."""
    owner = "dmarcd_priv_owner"
    for sql in ("CREATE ROLE %s LOGIN NOCREATEROLE" % owner,
                "CREATE DATABASE priv_owned1 OWNER %s" % owner,
                "CREATE DATABASE priv_owned2 OWNER %s" % owner):
        r = cluster.psql(sql)
        if r.rc != 0:
            raise RuntimeError(r.describe())

    def migrate(dbname, user):
        return h.run([env.dmarcd, "migrate", "--db",
                      cluster.conninfo_for(dbname, user=user)])

    def version(dbname):
        r = cluster.psql("COPY (SELECT max(version) FROM "
                         "dmarcd.schema_migrations) TO STDOUT", dbname)
        return r.out.strip() if r.rc == 0 else r.describe()

    r = migrate("priv_owned1", owner)
    tap.check("migrate: 0018 by a database owner without CREATEROLE, "
              "dmarcd_admin existing already (another database)",
              [] if r.rc == 0 and version("priv_owned1") == "18" else
              [r.describe(), version("priv_owned1")])

    # Without the role: drop it (and what it was granted) everywhere.
    for dbname in (db.name, "priv_owned1"):
        r = cluster.psql("DROP OWNED BY dmarcd_admin", dbname)
        if r.rc != 0:
            raise RuntimeError(r.describe())
    r = cluster.psql("DROP ROLE %s" % ADMIN)
    r2 = cluster.psql("DROP ROLE dmarcd_admin")
    if r.rc != 0 or r2.rc != 0:
        raise RuntimeError(r.describe() + r2.describe())
    r = migrate("priv_owned2", owner)
    problems = []
    if r.rc == 0:
        problems.append("migrate succeeded")
    for want in ("dmarcd_admin", "CREATEROLE"):
        if want not in r.err:
            problems.append("no %r in the message" % want)
    if version("priv_owned2") != "17":
        problems.append("schema at %s, not 17" % version("priv_owned2"))
    tap.check("migrate: without dmarcd_admin and without CREATEROLE it "
              "fails naming the role and CREATEROLE; the schema stays at 17",
              problems + ([] if not problems else [r.describe()]))
    tap.note("the message: " + r.err.strip())
    r = migrate("priv_owned2", "postgres")
    rows = cluster.psql("COPY (SELECT rolcanlogin FROM pg_roles WHERE "
                        "rolname = 'dmarcd_admin') TO STDOUT")
    tap.check("migrate: a superuser's migrate then makes dmarcd_admin, "
              "NOLOGIN",
              [] if r.rc == 0 and rows.out.strip() == "f" and
              version("priv_owned2") == "18" else
              [r.describe(), rows.describe()])


def token_checks(tap, db, cluster, env, ingest_db):
    """dmarcd token as the ingest role (refused, exit 77) and as the
    admin role, by --db and by [database] admin_conninfo."""
    before = db.int("SELECT count(*) FROM dmarcd.api_tokens")
    r = db.dmarcd("token", "add", "probe", db=ingest_db)
    problems = []
    if r.rc != 77:
        problems.append("exit %r, not 77 (EX_NOPERM)" % r.rc)
    for want in ("role %s may not write" % INGEST,
                 "GRANT dmarcd_admin TO %s" % INGEST, "admin_conninfo"):
        if want not in r.err:
            problems.append("no %r in the message" % want)
    if r.out.strip() != "":
        problems.append("a token printed: %r" % r.out)
    if db.int("SELECT count(*) FROM dmarcd.api_tokens") != before:
        problems.append("a token row was added")
    tap.check("ingest: dmarcd token add as the ingest role: exit 77, the "
              "role, GRANT dmarcd_admin and admin_conninfo named",
              problems + ([] if not problems else [r.describe()]))
    tap.note("the message: " + r.err.strip())

    admin_db = cluster.conninfo_for(db.name, user=ADMIN)
    conf = os.path.join(env.work, "privileges-admin.conf")
    with open(conf, "w") as f:
        f.write("[database]\nconninfo = %s\nadmin_conninfo = %s\n" %
                (ingest_db, admin_db))
    ingest_conf = os.path.join(env.work, "privileges-ingest.conf")
    with open(ingest_conf, "w") as f:
        f.write("[database]\nconninfo = %s\n" % ingest_db)

    def token(*args, config):
        return h.run([env.dmarcd, "token"] + list(args) +
                     ["--config", config])

    r = token("add", "probe", config=ingest_conf)
    tap.check("ingest: dmarcd token add with conninfo the ingest role's "
              "and no admin_conninfo: exit 77",
              [] if r.rc == 77 and r.out.strip() == "" else [r.describe()])

    problems = []
    r = db.dmarcd("token", "add", "by-db", db=admin_db)
    if r.rc != 0 or len(r.out.strip()) < 20:
        problems.append(r.describe())
    r = token("add", "by-config", "--domain", "example.net", config=conf)
    if r.rc != 0 or len(r.out.strip()) < 20:
        problems.append(r.describe())
    r = token("revoke", "by-db", config=conf)
    if r.rc != 0:
        problems.append(r.describe())
    r = token("list", config=conf)
    if r.rc != 0 or "by-config" not in r.out or not any(
            line.startswith("by-db ") and "revoked" in line
            for line in r.out.splitlines()):
        problems.append(r.describe())
    rows = db.rows("SELECT name, revoked_at IS NOT NULL FROM "
                   "dmarcd.api_tokens WHERE name LIKE 'by-%' ORDER BY 1")
    if rows != [("by-config", "f"), ("by-db", "t")]:
        problems.append("api_tokens: %r" % rows)
    tap.check("admin: dmarcd token add, revoke, list as the admin role "
              "(--db, and [database] admin_conninfo beside an ingest "
              "conninfo)", problems)


if __name__ == "__main__":
    h.run_main(main)
