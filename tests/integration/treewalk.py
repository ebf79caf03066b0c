#!/usr/bin/env python3
"""treewalk.py - the DMARCbis tree walk of `dmarcd resolve` against a real
DNS server (NSD) and a real PostgreSQL.

Prints TAP; skipped without PostgreSQL or NSD. tests/integration/dns.sh
serves fixture zones where the tree walk and the Public Suffix List
disagree: a private registry reg.example publishes
`_dmarc.reg.example TXT "v=DMARC1; p=reject; psd=y"`, so a.reg.example and
b.reg.example are two organizations for the walk, one (reg.example, by
the PSL's default "*" rule) for libpsl; corp.example publishes a record
in two character-strings ("v=DMAR" "C1; p=reject") and mail.corp.example
none, so mail.corp.example aligns with corp.example both ways (the walk
goes on to _dmarc.example, which has nothing). Two reports with the same
two records (From a.reg.example signed d=b.reg.example, SPF
b.reg.example softfail, 10 messages; From mail.corp.example signed
d=corp.example, SPF mail.corp.example pass, 5 messages) are ingested,
one saying discovery_method=treewalk (for a.reg.example), one psl (for
reg.example):

* before `dmarcd resolve`: both aligned by the PSL (records.auth 53 and
  63), dmarcd.summary's dmarc_pass 15 for each;
* after it: dmarcd.treewalk_orgs holds the four domains of the treewalk
  report (none of the psl one) with the walk's and the PSL's orgs, ok,
  kept a day; the treewalk report's first record is unaligned (auth 4:
  a DKIM pass, nothing aligned), its second unchanged, its rollup_daily
  and summary dmarc_pass 5 of 15; the psl report unchanged; the summary
  line counts it all;
* a second resolve walks nothing and changes nothing; with the answers
  expired it walks again and realigns nothing (the orgs did not change);
* a revision of the treewalk report replaces it in the rollup with the
  PSL's verdict and is realigned by the next resolve; the one it
  replaced stays out of the rollup;
* a DNS server that never answers: the walk's answers kept, status
  timeout, walked again in 15 minutes, verdicts unchanged, exit 69;
* on a fresh database, a dead server first: status timeout with no org,
  the PSL verdict stays, the report is not marked realigned; the server
  back: the verdict changes.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import dnsharness as dh  # noqa: E402

ZONES = {
    "example": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
""",
    "reg.example": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
_dmarc TXT "v=DMARC1; p=reject; psd=y"
_dmarc.b TXT "v=DMARC1; p=none"
_dmarc.b TXT "google-site-verification=not-dmarc"
""",
    "corp.example": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
_dmarc TXT "v=DMAR" "C1; p=reject"
mail A 192.0.2.1
""",
}

# domain: (walk's org, PSL's org)
WALKED = {
    "a.reg.example": ("a.reg.example", "reg.example"),
    "b.reg.example": ("b.reg.example", "reg.example"),
    "corp.example": ("corp.example", "corp.example"),
    "mail.corp.example": ("corp.example", "corp.example"),
}

PSL_AUTH = [53, 63]     # 1|4|16|32 and all six bits
WALK_AUTH = [4, 63]


def report_xml(report_id, domain, method, day, first_count=10):
    recs = (
        ("192.0.2.10", first_count, "a.reg.example", "b.reg.example", "pass",
         "b.reg.example", "softfail"),
        ("192.0.2.11", 5, "mail.corp.example", "corp.example", "pass",
         "mail.corp.example", "pass"))
    out = []
    for ip, count, hf, d, dres, spf, sres in recs:
        out.append(
            "<record><row><source_ip>%s</source_ip><count>%d</count>"
            "<policy_evaluated><disposition>none</disposition>"
            "<dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
            "<identifiers><header_from>%s</header_from></identifiers>"
            "<auth_results><dkim><domain>%s</domain><selector>s</selector>"
            "<result>%s</result></dkim><spf><domain>%s</domain>"
            "<scope>mfrom</scope><result>%s</result></spf></auth_results>"
            "</record>" % (ip, count, hf, d, dres, spf, sres))
    begin = 1767225600 + 86400 * day
    return ("<?xml version=\"1.0\"?><feedback xmlns=\"urn:ietf:params:xml:"
            "ns:dmarc-2.0\"><version>1.0</version><report_metadata>"
            "<org_name>walk.test</org_name><email>r@walk.test</email>"
            "<report_id>%s</report_id><date_range><begin>%d</begin>"
            "<end>%d</end></date_range></report_metadata>"
            "<policy_published><domain>%s</domain><adkim>r</adkim>"
            "<aspf>r</aspf><p>reject</p><discovery_method>%s"
            "</discovery_method></policy_published>%s</feedback>\n"
            % (report_id, begin, begin + 86399, domain, method,
               "".join(out))).encode()


def config(env, name, **keys):
    path = os.path.join(env.work, name)
    with open(path, "w") as f:
        f.write("[resolve]\n")
        for k, v in keys.items():
            f.write("%s = %s\n" % (k, v))
    return path


def auths(db, domain):
    return [int(r[0]) if r[0] is not None else None for r in db.rows(
        "SELECT auth FROM dmarcd.records WHERE domain = '%s' ORDER BY idx"
        % domain)]


def summary(db, domain):
    return json.loads(db.value(
        "SELECT dmarcd.summary('%s', '2026-01-01', '2026-01-04')::text"
        % domain))


def rollup(db):
    """(domain, auth) -> messages, zero rows left out."""
    return {(r[0], int(r[1])): int(r[2]) for r in db.rows(
        "SELECT domain, auth, sum(messages) FROM dmarcd.rollup_daily "
        "GROUP BY 1, 2 HAVING sum(messages) <> 0")}


def walk_rows(db):
    return {r[0]: (r[1], r[2], r[3], int(r[4])) for r in db.rows(
        "SELECT domain, org, psl_org, status, extract(epoch FROM "
        "expires_at - walked_at)::bigint FROM dmarcd.treewalk_orgs")}


def snapshot(db):
    return (db.rows("SELECT domain, report, idx, auth, dkim_domain, "
                    "spf_domain FROM dmarcd.records ORDER BY 1, 2, 3"),
            db.rows("SELECT domain, day, auth, messages FROM "
                    "dmarcd.rollup_daily ORDER BY 1, 2, 3, 4"),
            db.rows("SELECT domain, report, realigned_at FROM "
                    "dmarcd.policy_published ORDER BY 1, 2"))


def ingest(env, db):
    for name, domain, method, day in (
            ("tw-1", "a.reg.example", "treewalk", 0),
            ("psl-1", "reg.example", "psl", 0)):
        path = os.path.join(env.work, name + ".xml")
        with open(path, "wb") as f:
            f.write(report_xml(name, domain, method, day))
        r = db.dmarcd("ingest", path)
        if r.rc != 0:
            raise RuntimeError("ingest: " + r.describe())


def check_verdicts(db, tw_auth, problems):
    for domain, want, dpass in (("a.reg.example", tw_auth,
                                 5 if tw_auth == WALK_AUTH else 15),
                                ("reg.example", PSL_AUTH, 15)):
        got = auths(db, domain)
        if got != want:
            problems.append("%s: records.auth %r, expected %r"
                            % (domain, got, want))
        s = summary(db, domain)
        if s.get("dmarc_pass") != dpass or s.get("messages") != 15:
            problems.append("%s: summary dmarc_pass %r of %r, expected "
                            "%d of 15" % (domain, s.get("dmarc_pass"),
                                          s.get("messages"), dpass))
        ru = {a: m for (d, a), m in rollup(db).items() if d == domain}
        want_ru = {want[0]: 10, want[1]: 5} if want[0] != want[1] else \
            {want[0]: 15}
        if ru != want_ru:
            problems.append("%s: rollup_daily by auth %r, expected %r"
                            % (domain, ru, want_ru))
    # Realigned rows are appended (the old ones' negative, the new):
    # compacted, the sums stay and nothing negative is left.
    before = rollup(db)
    r = db.dmarcd("compact")
    if r.rc != 0:
        problems.append("compact: " + r.describe())
    if rollup(db) != before:
        problems.append("compaction changed the rollup: %r -> %r"
                        % (before, rollup(db)))
    neg = db.int("SELECT count(*) FROM dmarcd.rollup_daily "
                 "WHERE messages <= 0")
    if neg:
        problems.append("%d rollup rows with 0 or negative messages after "
                        "dmarcd compact" % neg)


def main(tap):
    env = h.setup()
    if not dh.have_nsd(env):
        h.skip_all("no nsd (apt-get install nsd)")
    nsd = dh.Nsd(env, ZONES)
    server = "127.0.0.1:%d" % nsd.port
    cluster = h.Cluster(env)
    db = cluster.new_db()
    ingest(env, db)
    conf = config(env, "fast.conf", timeout=2, deadline=30)

    problems = []
    check_verdicts(db, PSL_AUTH, problems)
    tap.check("before resolve: both reports aligned by the PSL", problems)

    r = db.dmarcd("resolve", "--server", server, config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    want = ("tree walk: 4 domains walked (2 differ from the PSL, 0 failed, "
            "0 left for the next run), 1 treewalk report realigned "
            "(1 record changed, 0 waiting for a walk)\n")
    if want not in r.out:
        problems.append("summary %r, expected a line %r" % (r.out, want))
    got = walk_rows(db)
    want_rows = {d: (o, p, "ok", 86400) for d, (o, p) in WALKED.items()}
    if got != want_rows:
        problems.append("treewalk_orgs %r, expected %r" % (got, want_rows))
    check_verdicts(db, WALK_AUTH, problems)
    row = db.rows("SELECT dkim_domain, spf_domain FROM dmarcd.records "
                  "WHERE domain = 'a.reg.example' AND idx = 1")
    if row != [("b.reg.example", "b.reg.example")]:
        problems.append("dkim_domain, spf_domain %r" % row)
    marks = dict(db.rows("SELECT domain, (realigned_at IS NOT NULL)::text "
                         "FROM dmarcd.policy_published"))
    if marks != {"a.reg.example": "true", "reg.example": "false"}:
        problems.append("realigned_at set: %r" % marks)
    tap.check("resolve: the walk's orgs stored, the treewalk report "
              "realigned (rollup and summary), the psl report unchanged",
              problems)

    before = snapshot(db)
    r = db.dmarcd("resolve", "--server", server, config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    if "tree walk: 0 domains walked" not in r.out or \
            "0 treewalk reports realigned" not in r.out:
        problems.append("summary %r" % r.out)
    if snapshot(db) != before:
        problems.append("records, rollup or realigned_at changed")
    tap.check("a second resolve walks nothing and changes nothing",
              problems)

    db.psql("UPDATE dmarcd.treewalk_orgs SET expires_at = now()")
    r = db.dmarcd("resolve", "--server", server, config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    if "tree walk: 4 domains walked" not in r.out or \
            "0 treewalk reports realigned" not in r.out:
        problems.append("summary %r" % r.out)
    if snapshot(db) != before:
        problems.append("records, rollup or realigned_at changed")
    if walk_rows(db) != want_rows:
        problems.append("treewalk_orgs %r" % walk_rows(db))
    tap.check("expired: walked again, the same orgs, nothing realigned",
              problems)

    # A revision of the treewalk report (20 messages instead of 10): it
    # replaces the realigned one in the rollup, comes in by the PSL, and
    # is realigned in turn; the one it replaced is left alone.
    path = os.path.join(env.work, "tw-1-rev.xml")
    with open(path, "wb") as f:
        f.write(report_xml("tw-1", "a.reg.example", "treewalk", 0, 20))
    r = db.dmarcd("ingest", path)
    problems = [] if r.rc == 0 else [r.describe()]
    s = summary(db, "a.reg.example")
    if (s.get("messages"), s.get("dmarc_pass")) != (25, 25):
        problems.append("after the revision: summary messages, dmarc_pass "
                        "%r, expected 25, 25 (the PSL)"
                        % ((s.get("messages"), s.get("dmarc_pass")),))
    r = db.dmarcd("resolve", "--server", server, config=conf)
    if r.rc != 0:
        problems.append(r.describe())
    if "1 treewalk report realigned (1 record changed" not in r.out:
        problems.append("summary %r" % r.out)
    s = summary(db, "a.reg.example")
    if (s.get("messages"), s.get("dmarc_pass")) != (25, 5):
        problems.append("summary messages, dmarc_pass %r, expected 25, 5"
                        % ((s.get("messages"), s.get("dmarc_pass")),))
    ru = {a: m for (d, a), m in rollup(db).items() if d == "a.reg.example"}
    if ru != {4: 20, 63: 5}:
        problems.append("rollup_daily by auth %r, expected {4: 20, 63: 5}"
                        % ru)
    got = db.rows("SELECT rp.revision, r.auth FROM dmarcd.records r JOIN "
                  "dmarcd.reports rp ON rp.domain = r.domain AND "
                  "rp.id = r.report WHERE r.domain = 'a.reg.example' "
                  "ORDER BY 1, r.idx")
    if got != [("1", "4"), ("1", "63"), ("2", "4"), ("2", "63")]:
        problems.append("(revision, auth) %r" % got)
    tap.check("a revision of the treewalk report: PSL at ingest, realigned "
              "by resolve, the replaced one left out of the rollup",
              problems)
    before = snapshot(db)

    silent = dh.dead_server()
    try:
        dead = "127.0.0.1:%d" % silent.getsockname()[1]
        db.psql("UPDATE dmarcd.treewalk_orgs SET expires_at = now()")
        db.psql("UPDATE dmarcd.ip_names SET expires_at = now()")
        r = db.dmarcd("resolve", "--server", dead, config=conf, timeout=60)
        problems = []
        if r.rc != 69:
            problems.append("exit %s, expected 69: %s" % (r.rc,
                                                         r.describe()))
        got = walk_rows(db)
        want_dead = {d: (o, p, "timeout", 900)
                     for d, (o, p) in WALKED.items()}
        if got != want_dead:
            problems.append("treewalk_orgs %r, expected %r"
                            % (got, want_dead))
        if snapshot(db) != before:
            problems.append("records, rollup or realigned_at changed")
        tap.check("DNS down after a walk: status timeout for 15 min, the "
                  "orgs and verdicts kept, exit 69 (%.1f s)" % r.seconds,
                  problems)

        db2 = cluster.new_db()
        ingest(env, db2)
        r = db2.dmarcd("resolve", "--server", dead, config=conf,
                       timeout=60)
        problems = []
        if r.rc != 69:
            problems.append("exit %s, expected 69: %s" % (r.rc,
                                                         r.describe()))
        got = walk_rows(db2)
        want_dead = {d: ("", p, "timeout", 900)
                     for d, (o, p) in WALKED.items()}
        if got != want_dead:
            problems.append("treewalk_orgs %r, expected %r"
                            % (got, want_dead))
        check_verdicts(db2, PSL_AUTH, problems)
        if db2.int("SELECT count(*) FROM dmarcd.policy_published "
                   "WHERE realigned_at IS NOT NULL"):
            problems.append("a report marked realigned")
        tap.check("DNS down before any walk: status timeout, the PSL "
                  "verdict stays, exit 69", problems)
    finally:
        silent.close()

    db2.psql("UPDATE dmarcd.treewalk_orgs SET expires_at = now()")
    r = db2.dmarcd("resolve", "--server", server, config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    check_verdicts(db2, WALK_AUTH, problems)
    tap.check("the server back: walked, realigned", problems)


h.run_main(main)
