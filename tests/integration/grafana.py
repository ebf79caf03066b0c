#!/usr/bin/env python3
"""grafana.py - every panel of contrib/grafana runs against a seeded
database, as the role Grafana uses (issue 8).

Prints TAP; skipped without PostgreSQL. A real PostgreSQL and `dmarcd
migrate`; the database is seeded through dmarcd itself: `dmarcd ingest`
of contrib/samples, of 30 days of aggregate reports this test writes for
domain grafana.example (an aligned ESP, a platform part of whose mail is
unaligned, a forwarder, a spoofer: so readiness has blockers), of a
failure report that arrived yesterday and of an input that is refused;
and one report mail fetched over IMAPS by `dmarcd fetch` from a real
Dovecot (when Dovecot is installed; otherwise the mailbox row is written
by SQL, and a note says so), so that every panel has data.

Checked:
* the provisioning files: the datasource's uid and type, sslmode, the
  password from an environment variable (no literal secret), the
  dashboards provider's path;
* each dashboard's JSON: uid and title unique, schemaVersion, panels with
  unique ids and a gridPos inside the 24 columns, every panel, target
  and template variable naming the provisioned datasource by uid, every
  target a raw SQL query of format time_series or table, every panel of
  a type Grafana 11 has built in; a query may use only the variables its
  own dashboard defines;
* every panel's SQL and every templating query, with Grafana's variables
  and PostgreSQL macros expanded the way Grafana does (the expander
  below: variables first, as Grafana's frontend does, then the
  datasource's macros, pkg/tsdb/grafana-postgresql-datasource/macros.go),
  run as a login role that has nothing but dmarcd_grafana: no SQL error,
  and data (a row with a value that is not NULL, empty nor 0); a
  time_series query returns a "time" column; nothing is left unexpanded;
* the same queries with a hostile domain value (quotes, a statement
  after it) run without an SQL error: the variable is quoted, never
  spliced;
* dmarcd_grafana reads the views and nothing of schema dmarcd (tables,
  raw mail, functions): permission denied;
* what the views say matches dmarcd: domain_days adds up to the rollup,
  sender_days and source_days to dmarcd.sources() and the source_days
  view of 0008, readiness to `dmarcd readiness --format json`, the
  domains view to `dmarcd summary`, failure_reports, reports,
  rejected_inputs and mailboxes to their tables.
"""
import csv
import datetime
import glob
import io
import json
import os
import random
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DAY = 86400
UTC = datetime.timezone.utc
DOMAIN = "grafana.example"
ROLE = "t_grafana"


# Seeding ----------------------------------------------------------------

def record(ip, count, hf, dkim=(), spf=(), pe=("fail", "fail"),
           disposition="none"):
    out = ["<record><row><source_ip>%s</source_ip><count>%d</count>"
           "<policy_evaluated><disposition>%s</disposition><dkim>%s</dkim>"
           "<spf>%s</spf></policy_evaluated></row><identifiers>"
           "<header_from>%s</header_from></identifiers><auth_results>"
           % (ip, count, disposition, pe[0], pe[1], hf)]
    for d, res in dkim:
        out.append("<dkim><domain>%s</domain><selector>s1</selector>"
                   "<result>%s</result></dkim>" % (d, res))
    for d, res in spf:
        out.append("<spf><domain>%s</domain><scope>mfrom</scope>"
                   "<result>%s</result></spf>" % (d, res))
    out.append("</auth_results></record>")
    return "".join(out)


def report(org, report_id, begin, records):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>"
            "<version>1.0</version><report_metadata><org_name>%s</org_name>"
            "<email>dmarc@%s</email><report_id>%s</report_id><date_range>"
            "<begin>%d</begin><end>%d</end></date_range></report_metadata>"
            "<policy_published><domain>%s</domain><adkim>r</adkim>"
            "<aspf>r</aspf><p>none</p></policy_published>\n%s\n</feedback>\n"
            % (org, org, report_id, begin, begin + DAY - 1, DOMAIN,
               "\n".join(records))).encode()


def day_records(rng):
    """One day of DOMAIN's mail: an aligned ESP, a platform (SendGrid's
    d= and envelope, in dmarcd's built-in sender map) part of whose
    mail is unaligned, a forwarder, a spoofer."""
    own = [(DOMAIN, "pass")]
    recs = [record("192.0.2.10", rng.randint(150, 250), DOMAIN, dkim=own,
                   spf=[("bounce." + DOMAIN, "pass")], pe=("pass", "pass")),
            record("149.72.1.1", rng.randint(40, 60), DOMAIN,
                   dkim=own + [("sendgrid.net", "pass")],
                   spf=[("em.sendgrid.net", "pass")], pe=("pass", "fail")),
            record("149.72.1.2", rng.randint(3, 8), DOMAIN,
                   dkim=[("sendgrid.net", "pass")],
                   spf=[("em.sendgrid.net", "pass")]),
            record("203.0.113.25", rng.randint(10, 30), DOMAIN, dkim=own,
                   spf=[(DOMAIN, "fail")], pe=("pass", "fail"))]
    if rng.random() < 0.7:
        recs.append(record("185.220.101.%d" % rng.randint(1, 40),
                           rng.randint(5, 40), DOMAIN,
                           spf=[(DOMAIN, "fail")], disposition="none"))
    return recs


def failure_mail(sample, arrival):
    """The sample failure report, for DOMAIN, arrived at `arrival`."""
    with open(sample, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    stamp = arrival.strftime("%a, %d %b %Y %H:%M:%S +0000")
    text = re.sub(r"(?m)^(Arrival-Date|Date): .*$",
                  lambda m: "%s: %s" % (m.group(1), stamp), text)
    text = text.replace("example.com", DOMAIN)
    return text.encode()


def seed(tap, env, cluster, db, work):
    problems = []
    today = datetime.datetime.now(UTC).date()
    rng = random.Random(8)
    paths = []
    last = None
    for n in range(30, 0, -1):
        day = today - datetime.timedelta(days=n)
        begin = int(datetime.datetime(day.year, day.month, day.day,
                                      tzinfo=UTC).timestamp())
        recs = day_records(rng)
        for i, org in enumerate(("google.example", "yahoo.example")):
            data = report(org, "%s-%s" % (org, day), begin, recs[i::2])
            if n == 1 and i == 1:
                last = data     # fetched over IMAP below
                continue
            p = os.path.join(work, "%s-%s.xml" % (day, org))
            with open(p, "wb") as f:
                f.write(data)
            paths.append(p)
    arrival = datetime.datetime.now(UTC) - datetime.timedelta(days=1)
    fpath = os.path.join(work, "failure.eml")
    with open(fpath, "wb") as f:
        f.write(failure_mail(os.path.join(env.samples, "failure-report.eml"),
                             arrival))
    r = db.dmarcd("ingest", "--quiet", "--recursive", env.samples, fpath,
                  *paths)
    if r.rc != 0:
        problems.append("ingest: " + r.describe())
    bad = os.path.join(env.adversarial, "html-instead-of-xml.html")
    r = db.dmarcd("ingest", "--quiet", bad)
    if r.rc != 65:
        problems.append("ingest of a refused input: exit %s, expected 65\n"
                        % r.rc + r.describe())

    # The last report over IMAPS, from a real Dovecot, when there is one.
    import imapharness as ih
    why = ih.dovecot_missing()
    if why is None:
        dc = ih.Dovecot(env)
        dc.deliver_bytes(ih.report_mail(last, "last.xml"))
        conf = ih.write_config(env, "grafana.conf", dc, db.conninfo)
        r = db.dmarcd("fetch", config=conf)
        if r.rc != 0:
            problems.append("dmarcd fetch: " + r.describe())
        dc.stop()
    else:
        tap.note("%s: the mailbox row is written by SQL, and the last "
                 "report ingested as a file" % why)
        p = os.path.join(work, "last.xml")
        with open(p, "wb") as f:
            f.write(last)
        r = db.dmarcd("ingest", "--quiet", p)
        if r.rc != 0:
            problems.append("ingest: " + r.describe())
        r = db.psql("INSERT INTO dmarcd.imap_mailboxes (account, mailbox, "
                    "uidvalidity, last_uid, last_fetch_at) VALUES "
                    "('test', 'INBOX', 1, 1, now())")
        if r.rc != 0:
            problems.append(r.describe())
    r = db.dmarcd("compact")
    if r.rc != 0:
        problems.append("dmarcd compact: " + r.describe())
    r = cluster.psql("CREATE ROLE %s LOGIN IN ROLE dmarcd_grafana" % ROLE)
    if r.rc != 0:
        problems.append("CREATE ROLE: " + r.describe())
    tap.check("seeded: the samples, 30 days of %s, a failure report, a "
              "refused input, a report fetched over IMAP; a login role "
              "in dmarcd_grafana only" % DOMAIN, problems)
    return not problems


# Grafana's expansion ------------------------------------------------------

def quote_literal(v):
    return "'" + v.replace("'", "''") + "'"


def format_variable(values, fmt, multi):
    """A variable's values as Grafana writes them into a PostgreSQL query:
    with no format, the datasource's interpolateVariable (a multi-value or
    All variable: each value a quoted literal, comma separated); else
    Grafana's named formats."""
    if fmt is None:
        if multi:
            return ",".join(quote_literal(v) for v in values)
        return values[0]
    if fmt == "sqlstring":
        return ",".join(v.replace("'", "''") for v in values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "raw":
        return ",".join(values)
    raise ValueError("variable format %r not handled by the test" % fmt)


VAR_RE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|"
                    r"\$(\w+)")
MACRO_RE = re.compile(r"\$(\w+)\(([^)]*)\)")
INTERVALS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def rfc3339(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(sql, variables, time_from, time_to, interval="1h"):
    """Grafana's frontend replaces the template variables, then the
    datasource's macro engine replaces $__name(args)."""
    builtins = {"__interval": interval,
                "__interval_ms": str(INTERVALS[interval[-1]] *
                                     int(interval[:-1]) * 1000),
                "__range_s": str(int((time_to - time_from).total_seconds()))}

    def var(m):
        name = m.group(1) or m.group(3) or m.group(5)
        fmt = m.group(2) or m.group(4)
        if name in builtins:
            return builtins[name]
        if name in variables:
            values, multi = variables[name]
            return format_variable(values, fmt, multi)
        return m.group(0)       # a macro, or left for the check

    out = VAR_RE.sub(var, sql)

    def macro(m):
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        # Grafana before 5.3: $__timeGroup(...) followed by a comma was
        # the aliased form; the datasource still reads it so.
        if name == "__timeGroup" and m.string[m.end():m.end() + 1] == ",":
            name = "__timeGroupAlias"
        if name == "__timeFilter":
            return "%s BETWEEN '%s' AND '%s'" % (args[0], rfc3339(time_from),
                                                 rfc3339(time_to))
        if name == "__timeFrom":
            return "'%s'" % rfc3339(time_from)
        if name == "__timeTo":
            return "'%s'" % rfc3339(time_to)
        if name == "__time":
            return '%s AS "time"' % args[0]
        if name == "__timeEpoch":
            return 'extract(epoch from %s) as "time"' % args[0]
        if name in ("__timeGroup", "__timeGroupAlias"):
            iv = args[1].strip("'")
            secs = INTERVALS[iv[-1]] * int(iv[:-1])
            g = "floor(extract(epoch from %s)/%d)*%d" % (args[0], secs, secs)
            return g + (' AS "time"' if name == "__timeGroupAlias" else "")
        if name == "__unixEpochFilter":
            return "%s >= %d AND %s <= %d" % (
                args[0], time_from.timestamp(), args[0], time_to.timestamp())
        raise ValueError("unknown macro $%s" % name)

    return MACRO_RE.sub(macro, out)


def check_expander(tap):
    """The expander against what Grafana makes of the same text (its
    macros_test.go and the datasource's variable quoting): the test's
    own tool must be right before it judges the dashboards."""
    t0 = datetime.datetime(2018, 4, 12, 18, 0, 0, tzinfo=UTC)
    t1 = t0 + datetime.timedelta(minutes=5)
    v = {"domain": (["a.example", "it's"], True), "one": (["x"], False)}
    cases = [
        ("WHERE $__timeFilter(time_column)", "WHERE time_column BETWEEN "
         "'2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        ("SELECT $__timeGroup(time_column,'5m')",
         "SELECT floor(extract(epoch from time_column)/300)*300"),
        ("SELECT $__timeGroupAlias(time_column , '5m')",
         'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"'),
        ("SELECT $__timeGroup(time_column,'5m'), value",
         'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", '
         'value'),
        ("SELECT $__timeGroupAlias(time, $__interval)",
         'SELECT floor(extract(epoch from time)/3600)*3600 AS "time"'),
        ("select $__unixEpochFilter(time)",
         "select time >= 1523556000 AND time <= 1523556300"),
        ("d IN ($domain)", "d IN ('a.example','it''s')"),
        ("d IN (${domain})", "d IN ('a.example','it''s')"),
        ("d IN ([[domain]])", "d IN ('a.example','it''s')"),
        ("d = '${domain:sqlstring}'", "d = 'a.example,it''s'"),
        ("d IN (${domain:singlequote})", "d IN ('a.example','it\\'s')"),
        ("d = '$one'", "d = 'x'"),
        ("d = '$nosuch'", "d = '$nosuch'"),
    ]
    problems = []
    for text, want in cases:
        got = expand(text, v, t0, t1)
        if got != want:
            problems.append("%r -> %r, Grafana makes %r" % (text, got, want))
    if unexpanded("d = '$nosuch' AND ${x} AND [[y]]") != \
            ["$nosuch", "${x", "[[y"]:
        problems.append("unexpanded() misses what is left")
    tap.check("the test's expander makes what Grafana makes of macros and "
              "variables (%d cases)" % len(cases), problems)


def unexpanded(sql):
    """What looks like a variable or macro left in the SQL."""
    return re.findall(r"\$\{?\w+|\[\[\w+", sql)


# Queries as the Grafana role ----------------------------------------------

def run_as(env, conninfo, sql):
    """(rows with the header first, error or None)."""
    r = h.run([env.psql, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1",
               "-d", conninfo, "-c", sql])
    if r.rc != 0:
        return None, (r.err.strip() or "exit %s" % r.rc)
    return list(csv.reader(io.StringIO(r.out))), None


def has_data(rows):
    if not rows or len(rows) < 2:
        return False
    header = rows[0]
    for row in rows[1:]:
        for name, v in zip(header, row):
            if name == "time":
                continue
            if v not in ("", "0", "0.0", "0.0000", "false", "f"):
                return True
    return False


# The provisioning files and the dashboards' structure -------------------

def yaml_value(text, key):
    """The first `key: value` of a small YAML file (no YAML library in
    Python's standard library; the files are ours and flat enough)."""
    m = re.search(r"(?m)^\s*-?\s*%s:\s*(\S.*?)\s*$" % re.escape(key), text)
    return m.group(1).strip("'\"") if m else None


def check_provisioning(tap, env):
    base = os.path.join(env.top_srcdir, "contrib", "grafana")
    problems = []
    with open(os.path.join(base, "provisioning", "datasources",
                           "dmarcd.yaml")) as f:
        ds = f.read()
    uid, kind = yaml_value(ds, "uid"), yaml_value(ds, "type")
    if not uid:
        problems.append("the datasource has no uid")
    if kind not in ("grafana-postgresql-datasource", "postgres"):
        problems.append("the datasource type is %r, not PostgreSQL" % kind)
    if yaml_value(ds, "sslmode") not in ("verify-full", "verify-ca",
                                         "require"):
        problems.append("sslmode is %r" % yaml_value(ds, "sslmode"))
    password = yaml_value(ds, "password")
    if not password or not re.fullmatch(r"\$\{?\w+\}?|\$__env\{\w+\}",
                                        password):
        problems.append("the password is not taken from an environment "
                        "variable: %r" % password)
    user = yaml_value(ds, "user")
    if user in (None, "postgres", "dmarcd_ingest"):
        problems.append("the datasource logs in as %r" % user)
    with open(os.path.join(base, "provisioning", "dashboards",
                           "dmarcd.yaml")) as f:
        prov = f.read()
    if yaml_value(prov, "type") != "file" or not yaml_value(prov, "path"):
        problems.append("the dashboards provider is not a file provider "
                        "with a path")
    tap.check("provisioning: datasource uid %s, type %s, sslmode, password "
              "from the environment; a file provider for the dashboards"
              % (uid, kind), problems)
    return uid, kind


def check_structure(tap, dashboards, uid, kind):
    problems = []
    uids, titles = set(), set()
    for path, d in dashboards:
        name = os.path.basename(path)
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in d:
                problems.append("%s: no %s" % (name, key))
        if d.get("uid") in uids:
            problems.append("%s: uid %s used twice" % (name, d.get("uid")))
        if d.get("title") in titles:
            problems.append("%s: title used twice" % name)
        uids.add(d.get("uid"))
        titles.add(d.get("title"))
        if not isinstance(d.get("schemaVersion"), int) or \
                not 36 <= d["schemaVersion"] <= 41:
            problems.append("%s: schemaVersion %r" % (name,
                                                      d.get("schemaVersion")))
        ids = set()
        for p in d.get("panels", []):
            where = "%s, panel %r" % (name, p.get("title"))
            if not isinstance(p.get("id"), int) or p["id"] in ids:
                problems.append("%s: id %r missing or used twice"
                                % (where, p.get("id")))
            ids.add(p.get("id"))
            if p.get("type") not in ("timeseries", "table", "stat",
                                     "piechart", "barchart", "bargauge",
                                     "gauge", "text"):
                problems.append("%s: type %r is no core panel of Grafana "
                                "11" % (where, p.get("type")))
            g = p.get("gridPos") or {}
            if not all(isinstance(g.get(k), int) for k in "hwxy") or \
                    g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24 or \
                    g["h"] < 1:
                problems.append("%s: gridPos %r" % (where, g))
            for holder in [p] + list(p.get("targets", [])):
                ds = holder.get("datasource") or {}
                if ds.get("uid") != uid or ds.get("type") != kind:
                    problems.append("%s: datasource %r, not uid %s" % (
                        where, ds, uid))
            if not p.get("targets"):
                problems.append("%s: no query" % where)
            for t in p.get("targets", []):
                if not t.get("rawSql") or t.get("rawQuery") is not True or \
                        t.get("format") not in ("time_series", "table"):
                    problems.append("%s: target %s is not raw SQL of format "
                                    "time_series or table" % (
                                        where, t.get("refId")))
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                ds = v.get("datasource") or {}
                if ds.get("uid") != uid:
                    problems.append("%s: variable %s: datasource %r"
                                    % (name, v.get("name"), ds))
    tap.check("%d dashboards: unique uids and titles, schemaVersion, unique "
              "panel ids, gridPos, the provisioned datasource everywhere, "
              "raw SQL targets" % len(dashboards), problems)


def queries(dashboards):
    """(dashboard file, what, sql, format, the dashboard's variables) of
    every panel target and every templating query."""
    out = []
    for path, d in dashboards:
        name = os.path.basename(path)
        names = {v.get("name") for v in
                 d.get("templating", {}).get("list", [])}
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v.get("query")
                if isinstance(q, dict):
                    q = q.get("rawSql") or q.get("query")
                out.append((name, "variable $%s" % v["name"], q, "table",
                            names))
        for p in d.get("panels", []):
            for t in p.get("targets", []):
                out.append((name, "panel %d %r, query %s" % (
                    p.get("id"), p.get("title"), t.get("refId")),
                    t.get("rawSql") or "", t.get("format"), names))
    return out


# What the views say, against dmarcd ---------------------------------------

def check_meaning(tap, env, db, grafana):
    problems = []
    q = grafana.rows

    got = q("SELECT domain, sum(messages), sum(dmarc_pass), "
            "sum(dkim_aligned), sum(spf_aligned) FROM dmarcd_v1.domain_days "
            "GROUP BY 1 ORDER BY 1")
    want = db.rows("SELECT domain, sum(messages), sum(messages) FILTER "
                   "(WHERE auth & 3 <> 0), sum(messages) FILTER (WHERE "
                   "auth & 1 <> 0), sum(messages) FILTER (WHERE auth & 2 "
                   "<> 0) FROM dmarcd.rollup_daily GROUP BY 1 ORDER BY 1")
    if got != want:
        problems.append("domain_days %r, the rollup %r" % (got, want))

    got = q("SELECT sender, class, messages, dmarc_pass FROM (SELECT sender, "
            "dmarcd_v1.sender_class(sum(aligned)::bigint, "
            "sum(forwarded)::bigint, sum(unaligned)::bigint, "
            "sum(unauthorised)::bigint) AS class, sum(messages) AS "
            "messages, sum(dmarc_pass) AS dmarc_pass FROM "
            "dmarcd_v1.sender_days WHERE domain = '%s' GROUP BY sender) s "
            "ORDER BY 1" % DOMAIN)
    src = json.loads(db.value(
        "SELECT dmarcd.sources('%s', '2000-01-01', now() + interval "
        "'1 day')::text" % DOMAIN))
    want = sorted((s["sender"], s["class"], str(s["messages"]),
                   str(s["dmarc_pass"])) for s in src["senders"])
    if got != want:
        problems.append("sender_days %r, dmarcd.sources() %r" % (got, want))
    if len(want) < 3:
        problems.append("only %d senders for %s" % (len(want), DOMAIN))

    got = q("SELECT domain, day, sender, class, host(source_ip), "
            "dmarc_pass, sum(messages) FROM dmarcd_v1.source_days GROUP BY "
            "1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6")
    want = db.rows("SELECT domain, day, sender, class, host(source_ip), "
                   "dmarc_pass, sum(messages) FROM dmarcd.source_days GROUP "
                   "BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6")
    if got != want or not got:
        problems.append("source_days: %d rows, dmarcd.source_days %d"
                        % (len(got), len(want)))

    r = db.dmarcd("readiness", DOMAIN, "--format", "json")
    rd = json.loads(r.out) if r.rc == 0 else {}
    got = q("SELECT status, legitimate, legitimate_aligned, blockers, "
            "data_days FROM dmarcd_v1.readiness WHERE domain = '%s'"
            % DOMAIN)
    want = [(rd.get("verdict", {}).get("status"),
             str(rd.get("legitimate", {}).get("messages")),
             str(rd.get("legitimate", {}).get("aligned")),
             str(len(rd.get("blockers", []))), str(rd.get("data_days")))]
    if got != want:
        problems.append("readiness view %r, dmarcd readiness %r (%s)"
                        % (got, want, r.describe()[:300]))
    got = q("SELECT day, legitimate, aligned FROM dmarcd_v1.readiness_days "
            "WHERE domain = '%s' ORDER BY day" % DOMAIN)
    want = [(t["day"], str(t["legitimate"]), str(t["aligned"]))
            for t in rd.get("trend", [])]
    if got != want or not got:
        problems.append("readiness_days %r, the trend %r" % (got[:3],
                                                             want[:3]))
    got = sorted(x[0] for x in q("SELECT sender FROM "
                                 "dmarcd_v1.readiness_blockers WHERE domain "
                                 "= '%s' AND NOT minor" % DOMAIN))
    want = sorted(b["sender"] for b in rd.get("blockers", []))
    if got != want or not got:
        problems.append("readiness_blockers %r, the blockers %r"
                        % (got, want))

    r = db.dmarcd("summary", DOMAIN, "--since", "2000-01-01", "--format",
                  "json")
    sm = json.loads(r.out) if r.rc == 0 else {}
    got = q("SELECT messages, dmarc_pass, reporters, p FROM "
            "dmarcd_v1.domains WHERE domain = '%s'" % DOMAIN)
    want = [(str(sm.get("messages")), str(sm.get("dmarc_pass")),
             str(len(sm.get("reporters", []))),
             (sm.get("policy") or {}).get("p"))]
    if got != want:
        problems.append("domains %r, dmarcd summary %r" % (got, want))

    for view, table in (("failure_reports", "failure_reports"),
                        ("rejected_inputs", "rejected_inputs"),
                        ("ingest_log", "ingest_log"),
                        ("mailboxes", "imap_mailboxes")):
        a = q("SELECT count(*) FROM dmarcd_v1.%s" % view)
        b = db.rows("SELECT count(*) FROM dmarcd.%s" % table)
        if a != b or a == [("0",)]:
            problems.append("%s: %r rows, dmarcd.%s %r" % (view, a, table, b))
    a = q("SELECT count(*) FILTER (WHERE latest), sum(message_count) "
          "FILTER (WHERE latest) FROM dmarcd_v1.reports")
    b = db.rows("SELECT count(*), sum(message_count) FROM (SELECT DISTINCT "
                "ON (domain, org_name, report_id, begin_time, end_time) * "
                "FROM dmarcd.reports ORDER BY domain, org_name, report_id, "
                "begin_time, end_time, revision DESC) x")
    if a != b:
        problems.append("reports (latest) %r, dmarcd.reports %r" % (a, b))
    tap.check("the views say what dmarcd says: rollup sums, senders and "
              "classes (sources), source_days, readiness and its trend and "
              "blockers, summary, failure reports, reports, rejected "
              "inputs, ingest log, mailboxes", problems)


def check_documented(tap, env, db):
    """docs/views.md lists each view of dmarcd_v1 with its columns, in
    order, with their types: the stable interface and its description
    cannot drift apart."""
    with open(os.path.join(env.top_srcdir, "docs", "views.md"),
              encoding="utf-8") as f:
        text = f.read()
    documented = {}
    for m in re.finditer(r"(?m)^## (\w+)\n(.*?)(?=^## |\Z)", text, re.S):
        cols = re.findall(r"(?m)^\| (\w+) \| ([\w\[\] ]+?) \|",
                          m.group(2))
        cols = [c for c in cols if c[0] != "column"]
        if "| column | type | meaning |" in m.group(2):
            documented[m.group(1)] = cols
    types = {"timestamp with time zone": "timestamptz"}
    actual = {}
    for view, col, dtype, udt in db.rows(
            "SELECT table_name, column_name, data_type, udt_name FROM "
            "information_schema.columns WHERE table_schema = 'dmarcd_v1' "
            "ORDER BY table_name, ordinal_position"):
        t = udt.lstrip("_") + "[]" if dtype == "ARRAY" else \
            types.get(dtype, dtype)
        actual.setdefault(view, []).append((col, t))
    problems = []
    for view in sorted(set(actual) | set(documented)):
        if actual.get(view) != documented.get(view):
            problems.append("%s: the view has %r, docs/views.md %r" % (
                view, actual.get(view), documented.get(view)))
    if len(actual) < 12:
        problems.append("%d views in dmarcd_v1" % len(actual))
    tap.check("docs/views.md documents every view of dmarcd_v1, every "
              "column in order with its type (%d views)" % len(actual),
              problems)


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    work = os.path.join(env.work, "grafana")
    os.makedirs(work)
    check_expander(tap)
    uid, kind = check_provisioning(tap, env)
    paths = sorted(glob.glob(os.path.join(env.top_srcdir, "contrib",
                                          "grafana", "dashboards",
                                          "*.json")))
    dashboards = []
    problems = []
    for p in paths:
        try:
            with open(p, encoding="utf-8") as f:
                dashboards.append((p, json.load(f)))
        except ValueError as e:
            problems.append("%s: %s" % (p, e))
    if len(paths) < 6:
        problems.append("%d dashboards, expected 6" % len(paths))
    tap.check("contrib/grafana/dashboards: %d JSON files that parse"
              % len(paths), problems)
    check_structure(tap, dashboards, uid, kind)
    check_documented(tap, env, db)
    if not seed(tap, env, cluster, db, work):
        return
    grafana = h.Db(cluster, db.name)
    grafana.conninfo = cluster.conninfo_for(db.name, user=ROLE)

    # Least privilege: the views, nothing of schema dmarcd.
    problems = []
    for sql in ("SELECT count(*) FROM dmarcd.reports",
                "SELECT count(*) FROM dmarcd.rollup_daily",
                "SELECT count(*) FROM dmarcd.raw_chunks",
                "SELECT dmarcd.readiness('%s', 30, now())" % DOMAIN,
                "SELECT * FROM dmarcd.v1_readiness('%s')" % DOMAIN,
                "SELECT count(*) FROM dmarcd.source_days",
                "DELETE FROM dmarcd_v1.domains",
                "CREATE TABLE dmarcd_v1.x (a int)"):
        r = grafana.psql(sql)
        if r.rc == 0 or not re.search("permission denied|cannot delete",
                                      r.err):
            problems.append("%s: exit %s, %s" % (sql, r.rc, r.err.strip()
                                                 or "no error"))
    tap.check("dmarcd_grafana: nothing of schema dmarcd (tables, raw mail, "
              "functions), no writes", problems)

    # Every panel and variable.
    domains = [x[0] for x in db.rows("SELECT DISTINCT domain FROM "
                                     "dmarcd.reports ORDER BY 1")]
    time_to = datetime.datetime.now(UTC).replace(microsecond=0)
    time_from = datetime.datetime(2025, 12, 1, tzinfo=UTC)
    cases = [("the seeded domain %s" % DOMAIN, [DOMAIN]),
             ("All (%d domains)" % len(domains), domains)]
    allq = queries(dashboards)
    for label, values in cases:
        problems = []
        for name, what, sql, fmt, names in allq:
            # Only the variables the dashboard defines.
            x = expand(sql, {"domain": (values, True)} if "domain" in names
                       else {}, time_from, time_to)
            left = unexpanded(x)
            if left:
                problems.append("%s, %s: left unexpanded: %s" % (
                    name, what, ", ".join(left)))
                continue
            rows, err = run_as(env, grafana.conninfo, x)
            if err:
                problems.append("%s, %s: %s\n%s" % (name, what, err, x))
            elif not has_data(rows):
                problems.append("%s, %s: no data (%r)" % (name, what,
                                                          rows[:3]))
            elif fmt == "time_series" and "time" not in rows[0]:
                problems.append("%s, %s: a time series without a time "
                                "column: %r" % (name, what, rows[0]))
        tap.check("%d queries (every panel and variable) as %s, domain = %s: "
                  "no SQL error, data, nothing unexpanded" % (
                      len(allq), ROLE, label), problems)

    problems = []
    hostile = ["x'); DELETE FROM dmarcd_v1.domains; --", "a''b\\'c"]
    for fmt_values in (hostile, hostile[:1]):
        for name, what, sql, fmt, names in allq:
            x = expand(sql, {"domain": (fmt_values, True)} if "domain" in
                       names else {}, time_from, time_to)
            _, err = run_as(env, grafana.conninfo, x)
            if err:
                problems.append("%s, %s: %s" % (name, what, err))
    tap.check("hostile domain values are quoted, never spliced: every query "
              "runs without an SQL error", problems)

    check_meaning(tap, env, db, grafana)


if __name__ == "__main__":
    h.run_main(main)
