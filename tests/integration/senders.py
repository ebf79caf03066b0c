#!/usr/bin/env python3
"""senders.py - the sender map loaded by `dmarcd migrate`, and
dmarcd.platform_of(), against a real PostgreSQL.

Prints TAP; skipped ("1..0 # SKIP") without PostgreSQL binaries.

* migrate on an empty database loads dmarcd.platforms and
  dmarcd.sender_rules with exactly the rows of sql/platforms.tsv and
  sql/sender_rules.tsv (read here on their own), marked source 'dmarcd',
  and says how many on its output;
* the platforms issue 6 names are there, each with its fixes;
* platform_of() gives the platform of the longest matching suffix for
  real-looking PTR names, DKIM d= and SPF domains, and NULL for a user's
  own domain, a bare TLD, '', NULL and an over-long name;
* migrate again brings back what a user changed in dmarcd's rows (a fix
  edited, a rule deleted), removes dmarcd's rows that are no longer built
  in, keeps every local row as it was (a local rule of the same kind and
  suffix as a built-in one wins), duplicates nothing, recomputes the
  platform stored with a PTR name (ip_names.platform), and a third run
  changes nothing;
* dmarcd_reader and dmarcd_ingest may call platform_of(); the reader may
  not change the map;
* with thousands of rules, platform_of() looks suffixes up in the primary
  key (its query plan uses sender_rules_pkey, no sequential scan).
"""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

PLATFORMS_NAMED = [
    "Amazon SES", "SendGrid", "Mailchimp", "Mandrill", "Mailgun",
    "SparkPost", "Postmark", "Google Workspace", "Microsoft 365",
    "Salesforce", "Zendesk", "HubSpot", "Repro", "Eploy", "Altcraft",
    "Catglobe", "PORTERS",
]

# (kind, name, expected platform or None)
LOOKUPS = [
    ("ptr", "o1.ptr1234.sendgrid.net", "SendGrid"),
    ("ptr", "a8-31.smtp-out.amazonses.com", "Amazon SES"),
    ("dkim", "amazonses.com", "Amazon SES"),
    ("spf", "eu-west-1.amazonses.com", "Amazon SES"),
    ("ptr", "mail-sor-f41.google.com", "Google Workspace"),
    ("ptr", "MAIL-SOR-F41.Google.COM.", "Google Workspace"),
    ("dkim", "example-com.20230601.gappssmtp.com", "Google Workspace"),
    ("ptr", "contoso-com.mail.protection.outlook.com", "Microsoft 365"),
    ("ptr", "mail-db8eur05on2071.outbound.protection.outlook.com",
     "Microsoft 365"),
    ("dkim", "contoso.onmicrosoft.com", "Microsoft 365"),
    ("spf", "porterscloud.com", "PORTERS"),
    ("dkim", "porterscloud.com", "PORTERS"),
    ("spf", "mail236.atl61.mcsv.net", "Mailchimp"),
    ("spf", "pm.mtasv.net", "Postmark"),
    ("spf", "bounce.sparkpostmail.com", "SparkPost"),
    ("spf", "12345.spf05.hubspotemail.net", "HubSpot"),
    ("spf", "example.com", None),
    ("dkim", "example.com", None),
    ("ptr", "mail.example.com", None),
    ("ptr", "notsendgrid.net", None),
    ("spf", "amazonses.com.evil.example", None),
    ("spf", "com", None),
    ("dkim", "", None),
    ("ptr", "a." * 200 + "sendgrid.net", None),
    # a name of kind spf is not looked up among the ptr rules
    ("spf", "mail-sor-f41.google.com", None),
]


def read_tsv(path, fields):
    """The records of a sender map file, header checked."""
    rows = []
    header = None
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            if line == "" or line.startswith("#"):
                continue
            cols = line.split("\t")
            if header is None:
                header = cols
                if header != fields:
                    raise RuntimeError("%s: header %r" % (path, header))
                continue
            if len(cols) != len(fields):
                raise RuntimeError("%s: %r" % (path, line))
            rows.append(tuple(cols))
    return rows


def sql_str(s):
    return "NULL" if s is None else "'" + s.replace("'", "''") + "'"


def lookups(db, cases):
    problems = []
    for kind, name, want in cases:
        got = db.value("SELECT dmarcd.platform_of(%s, %s)"
                       % (sql_str(kind), sql_str(name)))
        if got != want:
            problems.append("platform_of(%r, %r) = %r, expected %r"
                            % (kind, name[:60], got, want))
    return problems


def snapshot(db):
    return (db.rows("SELECT name, kind, spf_fix, dkim_fix, url, source "
                    "FROM dmarcd.platforms ORDER BY name"),
            db.rows("SELECT kind, suffix, platform, source "
                    "FROM dmarcd.sender_rules ORDER BY kind, suffix"))


def sender_line(out):
    m = re.search(r"^sender map: (\d+) platforms, (\d+) rules built in "
                  r"\((\d+) platforms new or changed, (\d+) rules added, "
                  r"(\d+) removed\); kept (\d+) local platforms, (\d+) "
                  r"local rules(.*)$", out, re.M)
    return m


def main(tap):
    env = h.setup()
    platforms = read_tsv(os.path.join(env.top_srcdir, "sql",
                                      "platforms.tsv"),
                         ["name", "kind", "spf_fix", "dkim_fix", "url"])
    rules = read_tsv(os.path.join(env.top_srcdir, "sql",
                                  "sender_rules.tsv"),
                     ["kind", "suffix", "platform"])
    cluster = h.Cluster(env)
    db = cluster.new_db(migrate=False)

    # 1. migrate loads the files
    r = db.dmarcd("migrate")
    problems = []
    if r.rc != 0:
        problems.append(r.describe())
    m = sender_line(r.out)
    if m is None:
        problems.append("no 'sender map: ...' line in the output:\n"
                        + r.out)
    elif (int(m.group(1)), int(m.group(2)), int(m.group(3)),
          int(m.group(4)), int(m.group(5))) != \
            (len(platforms), len(rules), len(platforms), len(rules), 0):
        problems.append("counts %r, expected %d platforms and %d rules "
                        "all new" % (m.groups(), len(platforms),
                                     len(rules)))
    got_p, got_r = snapshot(db)
    want_p = sorted(p + ("dmarcd",) for p in platforms)
    want_r = sorted(x + ("dmarcd",) for x in rules)
    if got_p != want_p:
        problems.append("dmarcd.platforms differs from sql/platforms.tsv: "
                        "%d rows, expected %d" % (len(got_p), len(want_p)))
    if got_r != want_r:
        problems.append("dmarcd.sender_rules differs from "
                        "sql/sender_rules.tsv: %r" % sorted(
                            set(got_r) ^ set(want_r))[:5])
    tap.check("migrate loads platforms.tsv (%d) and sender_rules.tsv (%d) "
              "as they are, source 'dmarcd', and prints the counts"
              % (len(platforms), len(rules)), problems)

    # 2. the platforms named in issue 6
    rows = {x[0]: x for x in db.rows(
        "SELECT name, kind, spf_fix, dkim_fix FROM dmarcd.platforms")}
    problems = []
    for name in PLATFORMS_NAMED:
        if name not in rows:
            problems.append("%s missing" % name)
        elif not rows[name][1] or len(rows[name][2] or "") < 20 or \
                len(rows[name][3] or "") < 20:
            problems.append("%s: kind or a fix is empty: %r"
                            % (name, rows[name]))
    tap.check("the %d platforms of issue 6 are there with a kind, an SPF "
              "fix and a DKIM fix" % len(PLATFORMS_NAMED), problems)

    # 3. platform_of
    tap.check("platform_of(): longest suffix of the right kind, case and "
              "trailing dot ignored; NULL for other names, '', an "
              "over-long name", lookups(db, LOOKUPS))
    tap.check("platform_of(kind, NULL) and platform_of(NULL, name) are "
              "NULL", [] if db.rows(
                  "SELECT dmarcd.platform_of('ptr', NULL) IS NULL AND "
                  "dmarcd.platform_of(NULL, 'x.sendgrid.net') IS NULL")
              == [("t",)] else ["not NULL"])

    # 4. local rows and upgrades
    setup = """
    INSERT INTO dmarcd.platforms (name, kind, spf_fix, dkim_fix)
      VALUES ('Acme Relay', 'esp', 'Use bounce.<domain>.', 'Sign.'),
             ('Gone2', 'esp', 'x', 'y');
    INSERT INTO dmarcd.sender_rules (kind, suffix, platform) VALUES
      ('ptr', 'relay.acme.example', 'Acme Relay'),
      ('dkim', 'mail.example.net', 'Amazon SES'),
      ('ptr', 'gone2.example', 'Gone2');
    UPDATE dmarcd.sender_rules SET platform = 'Acme Relay',
      source = 'local' WHERE kind = 'spf' AND suffix = 'sendgrid.net';
    UPDATE dmarcd.platforms SET source = 'dmarcd' WHERE name = 'Gone2';
    INSERT INTO dmarcd.platforms (name, kind, spf_fix, dkim_fix, source)
      VALUES ('Gone', 'esp', 'x', 'y', 'dmarcd');
    INSERT INTO dmarcd.sender_rules (kind, suffix, platform, source)
      VALUES ('ptr', 'stale.example', 'Gone', 'dmarcd'),
             ('dkim', 'stale.example', 'SendGrid', 'dmarcd');
    UPDATE dmarcd.platforms SET spf_fix = 'an old text', url = ''
      WHERE name = 'Amazon SES';
    DELETE FROM dmarcd.sender_rules WHERE kind = 'ptr'
      AND suffix = 'amazonses.com';
    INSERT INTO dmarcd.ip_names (ip, ptr, confirmed, status, expires_at)
      VALUES ('192.0.2.7', 'a8-31.smtp-out.amazonses.com', true, 'ok',
              now() + interval '1 day');
    """
    problems = []
    r = db.psql(setup)
    if r.rc != 0:
        problems.append("setup: " + r.err)
    local_before = db.rows("SELECT kind, suffix, platform FROM "
                           "dmarcd.sender_rules WHERE source = 'local' "
                           "ORDER BY 1, 2")
    r = db.dmarcd("migrate")
    if r.rc != 0:
        problems.append(r.describe())
    m = sender_line(r.out)
    if m is None:
        problems.append("no 'sender map' line:\n" + r.out)
    else:
        # Amazon SES changed; ptr amazonses.com added back; the two
        # stale rules removed; spf sendgrid.net held by a local rule.
        if int(m.group(3)) != 1:
            problems.append("%s platforms new or changed, expected 1 "
                            "(Amazon SES)" % m.group(3))
        if int(m.group(4)) != 1:
            problems.append("%s rules added, expected 1 (ptr "
                            "amazonses.com)" % m.group(4))
        if int(m.group(5)) != 2:
            problems.append("%s rules removed, expected 2 (the stale "
                            "ones)" % m.group(5))
        if (m.group(6), m.group(7)) != ("2", "4"):
            problems.append("kept %s local platforms, %s local rules, "
                            "expected 2 and 4" % (m.group(6), m.group(7)))
        if "1 built-in rules left out" not in m.group(8):
            problems.append("the shadowed built-in rule is not reported: "
                            + m.group(0))
    ipp = db.value("SELECT platform FROM dmarcd.ip_names WHERE "
                   "ip = '192.0.2.7'")
    if ipp != "Amazon SES":
        problems.append("ip_names.platform of a8-31.smtp-out.amazonses.com "
                        "is %r after the rule came back, expected Amazon "
                        "SES (refresh_platforms not run)" % ipp)
    local_after = db.rows("SELECT kind, suffix, platform FROM "
                          "dmarcd.sender_rules WHERE source = 'local' "
                          "ORDER BY 1, 2")
    if local_after != local_before:
        problems.append("local rules changed: %r -> %r"
                        % (local_before, local_after))
    ses = db.rows("SELECT spf_fix, url, source FROM dmarcd.platforms "
                  "WHERE name = 'Amazon SES'")
    want_ses = [p for p in platforms if p[0] == "Amazon SES"][0]
    if ses != [(want_ses[2], want_ses[4], "dmarcd")]:
        problems.append("Amazon SES not brought back: %r" % ses)
    names = {x[0]: x[1] for x in db.rows(
        "SELECT name, source FROM dmarcd.platforms")}
    if "Gone" in names:
        problems.append("the platform dmarcd no longer ships (no rule "
                        "left) was not removed")
    if names.get("Gone2") != "local":
        problems.append("a platform dmarcd no longer ships that a local "
                        "rule names should stay, as local: %r"
                        % names.get("Gone2"))
    if names.get("Acme Relay") != "local":
        problems.append("the local platform: %r" % names.get("Acme Relay"))
    if db.int("SELECT count(*) FROM dmarcd.sender_rules WHERE "
              "suffix = 'stale.example'") != 0:
        problems.append("dmarcd's stale rules were not removed")
    counts = db.rows("SELECT (SELECT count(*) FROM dmarcd.sender_rules "
                     "WHERE source = 'dmarcd'), (SELECT count(*) FROM "
                     "dmarcd.platforms WHERE source = 'dmarcd')")[0]
    if (int(counts[0]), int(counts[1])) != (len(rules) - 1,
                                           len(platforms)):
        problems.append("dmarcd rows: %r, expected %d rules (one held "
                        "by a local rule) and %d platforms"
                        % (counts, len(rules) - 1, len(platforms)))
    problems += lookups(db, [
        ("spf", "o1.sendgrid.net", "Acme Relay"),
        ("ptr", "o1.sendgrid.net", "SendGrid"),
        ("ptr", "mx1.relay.acme.example", "Acme Relay"),
        ("dkim", "mail.example.net", "Amazon SES"),
        ("ptr", "a8-31.smtp-out.amazonses.com", "Amazon SES"),
        ("ptr", "x.stale.example", None),
    ])
    snap1 = snapshot(db)
    r = db.dmarcd("migrate")
    m = sender_line(r.out)
    if r.rc != 0 or m is None or m.group(3, 4, 5) != ("0", "0", "0"):
        problems.append("a third migrate still changed something: "
                        + r.describe())
    if snapshot(db) != snap1:
        problems.append("a third migrate changed the tables")
    tap.check("migrate again: dmarcd's rows brought back to the built-in "
              "map, stale ones removed, local rows kept as they were (a "
              "local rule wins over a built-in one), nothing duplicated; "
              "a third run changes nothing", problems)

    # 5. roles
    problems = []
    for role in ("dmarcd_reader", "dmarcd_ingest"):
        rr = db.psql("SET ROLE %s; SELECT dmarcd.platform_of('ptr', "
                     "'o1.ptr1234.sendgrid.net')" % role)
        if rr.rc != 0 or "SendGrid" not in rr.out:
            problems.append("%s: exit %s %s %s" % (role, rr.rc,
                                                   rr.out.strip(),
                                                   rr.err.strip()))
    for sql in ("INSERT INTO dmarcd.sender_rules (kind, suffix, platform) "
                "VALUES ('ptr', 'x.example', 'SendGrid')",
                "UPDATE dmarcd.platforms SET spf_fix = 'x'",
                "DELETE FROM dmarcd.sender_rules"):
        rr = db.psql("SET ROLE dmarcd_reader; " + sql)
        if rr.rc == 0 or "permission denied" not in rr.err:
            problems.append("%s as dmarcd_reader: exit %s %s"
                            % (sql, rr.rc, rr.err.strip()))
    tap.check("dmarcd_reader and dmarcd_ingest can call platform_of(); "
              "the reader cannot change the map", problems)

    # 6. index-friendly
    problems = []
    r = db.psql("INSERT INTO dmarcd.platforms (name, kind, spf_fix, "
                "dkim_fix) VALUES ('Bulk', 'esp', 'x', 'y'); "
                "INSERT INTO dmarcd.sender_rules (kind, suffix, platform) "
                "SELECT k, 'host' || i || '.bulk' || (i % 97) || '.example', "
                "'Bulk' FROM generate_series(1, 20000) AS i, "
                "unnest(ARRAY['ptr', 'dkim', 'spf']) AS k; "
                "ANALYZE dmarcd.sender_rules")
    if r.rc != 0:
        problems.append("bulk rules: " + r.err)
    src = db.value("SELECT prosrc FROM pg_proc WHERE proname = "
                   "'platform_of' AND pronamespace = 'dmarcd'::regnamespace")
    if src is None:
        problems.append("no dmarcd.platform_of in pg_proc")
    else:
        if re.search(r"\bLIKE\b|~", src, re.I):
            problems.append("platform_of() matches with LIKE or a regular "
                            "expression: " + src)
        query = src.replace("$1", "'ptr'").replace(
            "$2", "'o1.ptr1234.sendgrid.net'")
        plan = db.psql("EXPLAIN " + query)
        if plan.rc != 0:
            problems.append("EXPLAIN: " + plan.err)
        elif "sender_rules_pkey" not in plan.out or \
                re.search(r"Seq Scan on sender_rules", plan.out):
            problems.append("the plan does not probe the primary key:\n"
                            + plan.out)
    problems += lookups(db, [
        ("ptr", "host77.bulk77.example", "Bulk"),
        ("ptr", "o1.ptr1234.sendgrid.net", "SendGrid"),
        ("spf", "example.com", None),
    ])
    tap.check("with 60000 rules platform_of() probes sender_rules_pkey "
              "(no sequential scan, no LIKE) and still answers right",
              problems)


if __name__ == "__main__":
    h.run_main(main)
