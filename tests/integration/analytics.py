#!/usr/bin/env python3
"""analytics.py - dmarcd's alignment analytics end to end (issue 6).

Prints TAP; skipped without PostgreSQL. A real PostgreSQL, `dmarcd
migrate` and `dmarcd ingest` of aggregate reports this test writes; the
analytics (dmarcd.summary, dmarcd.sources, dmarcd.readiness and the view
dmarcd.source_days) are read as a login role that has nothing but
dmarcd_reader, and the names `dmarcd resolve` would store (ip_names,
domain_orgs) are written as a role that has nothing but dmarcd_ingest.
The platforms and sender rules are the test's own (the tables are
emptied first), so nothing depends on sql/platforms.tsv.

Part 1, one small report per case, each for a domain of its own, with
the auth bits, the deciding DKIM and SPF domains, the override, the
class, the sender and its platform written down by hand: aligned by DKIM
only, by SPF only, by both; forwarded by override (forwarded,
mailing_list, trusted_forwarder), with DKIM intact and SPF for the own
domain failing, with the own signature broken; unaligned with DKIM
passing for a platform's d= (sendgrid.net), with SPF passing for a
platform's envelope (amazonses.com), with both, and for a sender that is
no known platform; unauthorised; adkim=s and aspf=s turning a relaxed
pass into a fail; the receiver saying pass where dmarcd does not, and
the reverse; senders whose mail is half one class, half another (the
tie goes aligned, unaligned, forwarded, unauthorised). Checked: dmarcd.records (auth, dkim_domain, spf_domain,
override), dmarcd.rollup_daily, dmarcd.source_days, and the JSON of
summary (totals, classes, disagreements, policy) and sources (senders,
classes, fix steps and their mechanism, the platform's instructions and
url). A revision of a report replaces its rollup rows (the SQL
rollup_add path, key for key), and a report over 1 MiB (the path that
adds the rollup up while parsing) gives the rollup its records give.

Part 2, sender grouping: an address with a forward-confirmed PTR groups
under its organizational domain, or under the platform of the PTR; an
unconfirmed PTR counts as none; two addresses of one /24 without names
group under the network (an IPv6 /48 likewise); two d= of one
organization group as one sender once domain_orgs knows them.

Part 3, 30 days generated with python's random, seeded, from senders of
known behaviour (an aligned ESP, a platform of which part of the mail is
DKIM-unaligned, a forwarder, a spoofer, a platform sending for a
subdomain unaligned, a sporadic sender that blocks by its share alone,
a tiny unaligned sender, a day without reports):
the expected legitimate volume, aligned share, trend per day, impact per
day over the last 7 days (in total and per sender), blockers, minor
senders, subdomain failures and verdict are worked out here, from what
each sender was made to do, and compared with dmarcd.readiness(domain,
30, until). Then the verdicts: ready (next step per policy: p=none,
p=quarantine pct=25, p=quarantine, p=reject -> enforced), at_risk,
not_ready by a sender failing a message a day under 0.1% of the volume,
not_ready by 41 minor senders (spam with SPF for its own domain counts
as legitimate) keeping the share under 98%, ready and enforced for a
domain that has no legitimate mail at all (a well-formed advice),
collecting (fewer than 7 days), no_data (never seen, or only before the
window), the 7-day window and an earlier until, and days out of range
refused.
"""
import datetime
import json
import os
import random
import sys
from decimal import Decimal, ROUND_HALF_UP
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DAY = 86400
UTC = datetime.timezone.utc

# The auth bits (common/align.h).
DKIM_AL, SPF_AL, DKIM_PASS, SPF_PASS, SPF_OWN, DKIM_OWN = 1, 2, 4, 8, 16, 32

# The test's own platforms and sender rules.
PLATFORMS = [
    ("testgrid", "esp", "SPF-TESTGRID: CNAME em.<domain> to testgrid",
     "DKIM-TESTGRID: publish s1._domainkey.<domain> for testgrid",
     "https://testgrid.invalid/dmarc"),
    ("testses", "esp", "SPF-TESTSES: custom MAIL FROM mail.<domain>",
     "DKIM-TESTSES: Easy DKIM for <domain>", ""),
]
RULES = [
    ("dkim", "sendgrid.net", "testgrid"), ("spf", "sendgrid.net", "testgrid"),
    ("ptr", "sendgrid.net", "testgrid"), ("dkim", "amazonses.com", "testses"),
    ("spf", "amazonses.com", "testses"),
]


def sql_str(s):
    """A literal for the test's own fixed strings (never outside input)."""
    return "'" + s.replace("'", "''") + "'"


# Reports ---------------------------------------------------------------

def rec(ip, count, hf, dkim=(), spf=(), pe=("fail", "fail"),
        disposition="none", reasons=(), **expect):
    """One <record>: dkim [(d, result)], spf [(domain, scope, result)]
    (scope None: no <scope>), pe the receiver's (dkim, spf) verdict,
    reasons [type]. expect: what dmarcd must make of it."""
    r = dict(ip=ip, count=count, hf=hf, dkim=list(dkim), spf=list(spf),
             pe=pe, disposition=disposition, reasons=list(reasons))
    r.update(expect)
    return r


def record_xml(r):
    out = ["<record><row><source_ip>%s</source_ip><count>%d</count>"
           "<policy_evaluated><disposition>%s</disposition><dkim>%s</dkim>"
           "<spf>%s</spf>" % (r["ip"], r["count"], r["disposition"],
                              r["pe"][0], r["pe"][1])]
    for t in r["reasons"]:
        out.append("<reason><type>%s</type><comment>test</comment></reason>"
                   % t)
    out.append("</policy_evaluated></row><identifiers>")
    if r["hf"] is not None:
        out.append("<header_from>%s</header_from>" % escape(r["hf"]))
    out.append("</identifiers><auth_results>")
    for d, res in r["dkim"]:
        out.append("<dkim><domain>%s</domain><selector>s1</selector>"
                   "<result>%s</result></dkim>" % (escape(d), res))
    for d, scope, res in r["spf"]:
        out.append("<spf><domain>%s</domain>%s<result>%s</result></spf>" % (
            escape(d), "<scope>%s</scope>" % scope if scope else "", res))
    out.append("</auth_results></record>")
    return "".join(out)


def report_xml(domain, org, report_id, begin, records, policy=None,
               end=None):
    pol = {"adkim": "r", "aspf": "r", "p": "none"}
    pol.update(policy or {})
    pp = "".join("<%s>%s</%s>" % (k, v, k) for k, v in
                 (("domain", domain), ("adkim", pol["adkim"]),
                  ("aspf", pol["aspf"]), ("p", pol["p"]),
                  ("sp", pol.get("sp")), ("pct", pol.get("pct")),
                  ("np", pol.get("np"))) if v is not None)
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>"
            "<version>1.0</version><report_metadata><org_name>%s</org_name>"
            "<email>dmarc@%s</email><report_id>%s</report_id><date_range>"
            "<begin>%d</begin><end>%d</end></date_range></report_metadata>"
            "<policy_published>%s</policy_published>\n%s\n</feedback>\n" % (
                org, org, report_id, begin,
                end if end is not None else begin + DAY - 1, pp,
                "\n".join(record_xml(r) for r in records))).encode()


def epoch(day):
    return int(datetime.datetime(day.year, day.month, day.day,
                                 tzinfo=UTC).timestamp())


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def ingest(db, *paths):
    r = db.dmarcd("ingest", "--quiet", "--recursive", *paths)
    return [] if r.rc == 0 else ["ingest: " + r.describe()]


# The model: what the analytics must say, worked out here ----------------

def dq(x, places):
    """SQL round(numeric, places): half away from zero."""
    return Decimal(x).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def div(a, b):
    return Decimal(a) / Decimal(b)


def sender_stats(rows):
    """rows: dicts with sender, platform, class, auth, rpass, messages.
    Per sender: its sums and its class (the class of most of its mail;
    ties: aligned, unaligned, forwarded, unauthorised)."""
    out = {}
    for r in rows:
        s = out.setdefault(r["sender"], dict(
            sender=r["sender"], platform=None, messages=0, dpass=0,
            rpass=0, dk_al=0, sp_al=0, dk_un=0, sp_un=0, days=set(),
            ips=set(), by_class=dict(aligned=0, forwarded=0, unaligned=0,
                                     unauthorised=0)))
        m = r["messages"]
        s["messages"] += m
        s["by_class"][r["class"]] += m
        if r["auth"] & 3:
            s["dpass"] += m
        if r["rpass"]:
            s["rpass"] += m
        if r["auth"] & DKIM_AL:
            s["dk_al"] += m
        if r["auth"] & SPF_AL:
            s["sp_al"] += m
        if r["auth"] & DKIM_PASS and not r["auth"] & DKIM_AL:
            s["dk_un"] += m
        if r["auth"] & SPF_PASS and not r["auth"] & SPF_AL:
            s["sp_un"] += m
        if r.get("platform"):
            s["platform"] = max(s["platform"] or "", r["platform"])
        s["days"].add(r["day"])
        s["ips"].add(r["ip"])
    for s in out.values():
        c = s["by_class"]
        top = max(c.values())
        s["class"] = next(k for k in ("aligned", "unaligned", "forwarded",
                                      "unauthorised") if c[k] == top)
        s["failing"] = s["messages"] - s["dpass"]
    return out


def fix_problems(where, fix, s, domain):
    """What sources/readiness say a sender must fix, against what its mail
    did: nothing for a sender whose mail all passes; for unauthorised and
    forwarded senders a summary without steps; otherwise a DKIM step when
    no mail of it aligned by DKIM and an SPF step when none by SPF, each
    saying whether the mechanism passed for another domain, with the
    platform's own instructions (and url) when the platform is known."""
    p = []
    if s["class"] == "unauthorised":
        if not fix or not fix.get("summary", "").startswith(
                "Nothing authenticates") or fix.get("steps") != []:
            p.append("%s: fix %r, expected 'Nothing authenticates', no "
                     "steps" % (where, fix))
        return p
    if s["class"] == "forwarded":
        if not fix or not fix.get("summary", "").startswith("Forwarded") or \
                fix.get("steps") != []:
            p.append("%s: fix %r, expected the forwarding advice, no steps"
                     % (where, fix))
        return p
    if s["failing"] == 0:
        if fix is not None:
            p.append("%s: fix %r for a sender whose mail all passes"
                     % (where, fix))
        return p
    if not fix:
        return ["%s: no fix for a sender with %d failing messages"
                % (where, s["failing"])]
    if not fix.get("summary", "").startswith("%d of %d messages" % (
            s["failing"], s["messages"])):
        p.append("%s: fix summary %r, expected '%d of %d messages ...'"
                 % (where, fix.get("summary"), s["failing"], s["messages"]))
    pf = {x[0]: x for x in PLATFORMS}.get(s["platform"])
    want = []
    # A step for each mechanism that does not align all the sender's mail.
    if s["dk_al"] < s["messages"]:
        want.append(("dkim", "DKIM passes, but for the platform's domain"
                     if s["dk_un"] else "no DKIM signature of %s passes"
                     % domain, pf[3].replace("<domain>", domain) if pf else
                     "Have %s sign with your domain" % s["sender"]))
    if s["sp_al"] < s["messages"]:
        want.append(("spf", "SPF passes, but for the envelope domain"
                     if s["sp_un"] else "SPF does not pass for %s" % domain,
                     pf[2].replace("<domain>", domain) if pf else
                     "Use a custom MAIL FROM (return path) on a subdomain "
                     "of %s" % domain))
    steps = fix.get("steps") or []
    if [x.get("mechanism") for x in steps] != [w[0] for w in want]:
        p.append("%s: fix steps %r, expected the mechanisms %r" % (
            where, steps, [w[0] for w in want]))
    else:
        for st, (mech, problem, action) in zip(steps, want):
            if not st.get("problem", "").startswith(problem):
                p.append("%s: %s step problem %r, expected %r..." % (
                    where, mech, st.get("problem"), problem))
            if not st.get("action", "").startswith(action) or \
                    "<domain>" in st.get("action", ""):
                p.append("%s: %s step action %r, expected %r..." % (
                    where, mech, st.get("action"), action))
    url = pf[4] if pf and pf[4] else None
    if fix.get("url") != url:
        p.append("%s: fix url %r, expected %r" % (where, fix.get("url"), url))
    return p


def diff(what, got, want):
    if got == want:
        return []
    return ["%s:\n  got      %r\n  expected %r" % (what, got, want)]


# Part 1: one case per domain ---------------------------------------------

CASE_DAY = datetime.date(2026, 1, 10)


def cases():
    """(domain, policy, records) with each record's expected auth,
    dkim_domain (dd), spf_domain (sd), override (ov), class, sender and
    platform (pf)."""
    c = []
    d = "dkim-only.example"
    c.append((d, {}, [
        rec("192.0.2.1", 11, d, dkim=[("mail.dkim-only.example", "pass")],
            spf=[("mailer-a.example", "mfrom", "pass")], pe=("pass", "fail"),
            auth=DKIM_AL | DKIM_PASS | DKIM_OWN | SPF_PASS,
            dd="mail.dkim-only.example", sd="mailer-a.example", ov="",
            cls="aligned", sender="mail.dkim-only.example", pf=None)]))
    d = "spf-only.example"
    c.append((d, {}, [
        rec("192.0.2.2", 12, d, spf=[("bounce.spf-only.example", "mfrom",
                                      "pass")], pe=("fail", "pass"),
            auth=SPF_AL | SPF_PASS | SPF_OWN, dd="",
            sd="bounce.spf-only.example", ov="", cls="aligned",
            sender="bounce.spf-only.example", pf=None)]))
    d = "both.example"
    c.append((d, {}, [
        rec("192.0.2.3", 13, d, dkim=[("both.example", "pass")],
            spf=[("both.example", None, "pass")], pe=("pass", "pass"),
            auth=63, dd="both.example", sd="both.example", ov="",
            cls="aligned", sender="both.example", pf=None)]))
    d = "override.example"
    c.append((d, {}, [
        rec("198.18.7.1", 3, d, spf=[("fwd.example", "mfrom", "pass")],
            reasons=["forwarded"], auth=SPF_PASS, dd="", sd="fwd.example",
            ov="forwarded", cls="forwarded", sender="fwd.example", pf=None),
        rec("198.18.8.1", 4, d, dkim=[("override.example", "fail")],
            spf=[("lists.example", "mfrom", "softfail")],
            reasons=["local_policy", "mailing_list"], auth=DKIM_OWN,
            dd="override.example", sd="lists.example", ov="mailing_list",
            cls="forwarded", sender="198.18.8.0/24", pf=None),
        rec("198.18.8.2", 5, d, spf=[("relay.example", "mfrom", "fail")],
            reasons=["trusted_forwarder"], auth=0, dd="",
            sd="relay.example", ov="trusted_forwarder", cls="forwarded",
            sender="198.18.8.0/24", pf=None)]))
    d = "fwd-intact.example"
    c.append((d, {}, [
        rec("198.18.9.1", 14, d, dkim=[("fwd-intact.example", "pass")],
            spf=[("fwd-intact.example", "mfrom", "fail")],
            pe=("pass", "fail"), auth=DKIM_AL | DKIM_PASS | DKIM_OWN |
            SPF_OWN, dd="fwd-intact.example", sd="fwd-intact.example",
            ov="", cls="forwarded", sender="fwd-intact.example", pf=None)]))
    d = "fwd-broken.example"
    c.append((d, {}, [
        rec("198.18.10.1", 15, d, dkim=[("fwd-broken.example", "fail")],
            spf=[("srs.forwarder.example", "mfrom", "pass")],
            auth=DKIM_OWN | SPF_PASS, dd="fwd-broken.example",
            sd="srs.forwarder.example", ov="", cls="forwarded",
            sender="srs.forwarder.example", pf=None),
        rec("198.18.11.1", 2, d, dkim=[("fwd-broken.example", "fail")],
            spf=[("fwd-broken.example", "mfrom", "fail")],
            auth=DKIM_OWN | SPF_OWN, dd="fwd-broken.example",
            sd="fwd-broken.example", ov="", cls="forwarded",
            sender="198.18.11.0/24", pf=None)]))
    d = "un-dkim.example"
    c.append((d, {}, [
        rec("149.72.1.1", 16, d, dkim=[("sendgrid.net", "pass")],
            spf=[("un-dkim.example", "mfrom", "softfail")],
            auth=DKIM_PASS | SPF_OWN, dd="sendgrid.net",
            sd="un-dkim.example", ov="", cls="unaligned", sender="testgrid",
            pf="testgrid")]))
    d = "un-spf.example"
    c.append((d, {}, [
        rec("54.240.1.1", 17, d, spf=[("a1.bounces.amazonses.com", "mfrom",
                                       "pass")],
            auth=SPF_PASS, dd="", sd="a1.bounces.amazonses.com", ov="",
            cls="unaligned", sender="testses", pf="testses")]))
    d = "un-both.example"
    c.append((d, {}, [
        rec("149.72.1.2", 18, d, dkim=[("sendgrid.net", "pass")],
            spf=[("em123.sendgrid.net", "mfrom", "pass")],
            auth=DKIM_PASS | SPF_PASS, dd="sendgrid.net",
            sd="em123.sendgrid.net", ov="", cls="unaligned",
            sender="testgrid", pf="testgrid")]))
    d = "un-unknown.example"
    c.append((d, {}, [
        rec("198.18.12.1", 19, d, dkim=[("crm-tool.example", "pass")],
            spf=[("crm-tool.example", "mfrom", "pass")],
            auth=DKIM_PASS | SPF_PASS, dd="crm-tool.example",
            sd="crm-tool.example", ov="", cls="unaligned",
            sender="crm-tool.example", pf=None)]))
    d = "spoofed.example"
    c.append((d, {}, [
        rec("185.220.101.5", 20, d, dkim=[("evil.example", "fail")],
            spf=[("evil.example", "mfrom", "fail")], disposition="none",
            auth=0, dd="evil.example", sd="evil.example", ov="",
            cls="unauthorised", sender="185.220.101.0/24", pf=None),
        rec("185.220.101.6", 1, d, auth=0, dd="", sd="", ov="",
            cls="unauthorised", sender="185.220.101.0/24", pf=None)]))
    # Strict: the same subdomain d= and envelope as relaxed passes; the
    # receiver said pass (it ignored adkim=s), dmarcd does not.
    d = "strict.example"
    c.append((d, {"adkim": "s", "aspf": "s", "p": "quarantine"}, [
        rec("192.0.2.20", 21, d, dkim=[("mail.strict.example", "pass")],
            spf=[("bounce.strict.example", "mfrom", "pass")],
            pe=("pass", "pass"), disposition="none",
            auth=DKIM_PASS | SPF_PASS, dd="mail.strict.example",
            sd="bounce.strict.example", ov="", cls="unaligned",
            sender="mail.strict.example", pf=None),
        rec("192.0.2.21", 22, d, dkim=[("strict.example", "pass")],
            spf=[("bounce.strict.example", "mfrom", "pass")],
            pe=("pass", "pass"), auth=DKIM_AL | DKIM_PASS | DKIM_OWN |
            SPF_PASS, dd="strict.example", sd="bounce.strict.example",
            ov="", cls="aligned", sender="strict.example", pf=None)]))
    d = "relaxed.example"
    c.append((d, {"adkim": "r", "aspf": "r"}, [
        rec("192.0.2.22", 21, d, dkim=[("mail.relaxed.example", "pass")],
            spf=[("bounce.relaxed.example", "mfrom", "pass")],
            pe=("pass", "pass"), auth=63, dd="mail.relaxed.example",
            sd="bounce.relaxed.example", ov="", cls="aligned",
            sender="mail.relaxed.example", pf=None)]))
    # Ties in a sender's mail: unaligned beats forwarded, aligned beats
    # forwarded (the class of most of its mail, in that order).
    d = "tie.example"
    c.append((d, {}, [
        rec("192.0.2.50", 5, d, spf=[("mixed.example", "mfrom", "pass")],
            auth=SPF_PASS, dd="", sd="mixed.example", ov="",
            cls="unaligned", sender="mixed.example", pf=None),
        rec("192.0.2.51", 5, d, spf=[("mixed.example", "mfrom", "pass")],
            reasons=["forwarded"], auth=SPF_PASS, dd="", sd="mixed.example",
            ov="forwarded", cls="forwarded", sender="mixed.example",
            pf=None),
        rec("192.0.2.52", 6, d, dkim=[(d, "pass")],
            spf=[(d, "mfrom", "pass")], pe=("pass", "pass"), auth=63, dd=d,
            sd=d, ov="", cls="aligned", sender=d, pf=None),
        rec("192.0.2.53", 6, d, dkim=[(d, "pass")],
            spf=[(d, "mfrom", "pass")], pe=("pass", "pass"),
            reasons=["mailing_list"], auth=63, dd=d, sd=d,
            ov="mailing_list", cls="forwarded", sender=d, pf=None)]))
    # The receiver says pass, the auth results align nowhere; and the
    # receiver says fail where a signature of the domain passed.
    d = "disagree.example"
    c.append((d, {}, [
        rec("192.0.2.30", 23, d, dkim=[("other.example", "pass")],
            spf=[("other.example", "mfrom", "pass")], pe=("pass", "pass"),
            auth=DKIM_PASS | SPF_PASS, dd="other.example",
            sd="other.example", ov="", cls="unaligned",
            sender="other.example", pf=None),
        rec("192.0.2.31", 24, d, dkim=[("disagree.example", "pass")],
            spf=[("disagree.example", "mfrom", "pass")],
            pe=("fail", "fail"), disposition="quarantine", auth=63,
            dd="disagree.example", sd="disagree.example", ov="",
            cls="aligned", sender="disagree.example", pf=None)]))
    return c


def model_rows(domain, records, day):
    rows = []
    for r in records:
        rows.append(dict(day=day, ip=r["ip"], hf=(r["hf"] or "").lower(),
                         auth=r["auth"], messages=r["count"],
                         rpass=r["pe"][0] == "pass" or r["pe"][1] == "pass",
                         cls=r["cls"], sender=r["sender"], platform=r["pf"],
                         dd=r["dd"], sd=r["sd"], ov=r["ov"],
                         disposition=r["disposition"]))
        rows[-1]["class"] = r["cls"]
    return rows


def check_case(tap, db, reader, domain, policy, records, day):
    rows = model_rows(domain, records, day)
    since, until = day.isoformat() + " 00:00:00+00", \
        (day + datetime.timedelta(1)).isoformat() + " 00:00:00+00"
    p = []
    got = db.rows("SELECT idx, auth, dkim_domain, spf_domain, override "
                  "FROM dmarcd.records WHERE domain = %s ORDER BY idx"
                  % sql_str(domain))
    want = [(str(i + 1), str(r["auth"]), r["dd"], r["sd"], r["ov"])
            for i, r in enumerate(records)]
    p += diff("records (idx, auth, dkim_domain, spf_domain, override)",
              got, want)
    got = sorted(db.rows(
        "SELECT day::text, host(source_ip), header_from, dkim_aligned::text, "
        "spf_aligned::text, auth, dkim_domain, spf_domain, override, "
        "messages FROM dmarcd.rollup_daily WHERE domain = %s"
        % sql_str(domain)))
    want = sorted((day.isoformat(), r["ip"], r["hf"], str(
        rr["pe"][0] == "pass").lower(), str(rr["pe"][1] == "pass").lower(),
        str(r["auth"]), r["dd"], r["sd"], r["ov"], str(r["messages"]))
        for r, rr in zip(rows, records))
    p += diff("rollup_daily (day, ip, header_from, receiver dkim, spf, "
              "auth, dkim_domain, spf_domain, override, messages)", got, want)
    got = sorted(reader.rows(
        "SELECT day::text, host(source_ip), sender, coalesce(platform, '-'), "
        "class, dmarc_pass::text, receiver_pass::text, messages FROM "
        "dmarcd.source_days WHERE domain = %s" % sql_str(domain)))
    want = sorted((day.isoformat(), r["ip"], r["sender"], r["platform"] or
                   "-", r["class"], str(bool(r["auth"] & 3)).lower(),
                   str(r["rpass"]).lower(), str(r["messages"]))
                  for r in rows)
    p += diff("source_days (day, ip, sender, platform, class, dmarc_pass, "
              "receiver_pass, messages)", got, want)
    tap.check("%s: records, rollup_daily and source_days hold dmarcd's "
              "verdict (auth %s), the class and the sender" % (
                  domain, ",".join(str(r["auth"]) for r in records)), p)

    # summary
    p = []
    ss = sender_stats(rows)
    try:
        s = json.loads(reader.value(
            "SELECT dmarcd.summary(%s, %s, %s)::text" % (
                sql_str(domain), sql_str(since), sql_str(until))))
    except (RuntimeError, TypeError, ValueError) as ex:
        s = {}
        p.append("summary: %s" % ex)
    tot = sum(r["messages"] for r in rows)
    dpass = sum(r["messages"] for r in rows if r["auth"] & 3)
    rpass = sum(r["messages"] for r in rows if r["rpass"])
    ours = sum(r["messages"] for r in rows if r["auth"] & 3 and
               not r["rpass"])
    theirs = sum(r["messages"] for r in rows if not r["auth"] & 3 and
                 r["rpass"])

    def bits(b):
        return sum(r["messages"] for r in rows if r["auth"] & b)
    want = {
        "messages": tot, "days": 1, "dmarc_pass": dpass,
        "receiver_pass": rpass,
        "disagreements": {"messages": ours + theirs,
                          "dmarcd_pass_receiver_fail": ours,
                          "dmarcd_fail_receiver_pass": theirs,
                          "not_recomputed": 0},
        "dkim": {"aligned": bits(DKIM_AL), "pass": bits(DKIM_PASS)},
        "spf": {"aligned": bits(SPF_AL), "pass": bits(SPF_PASS)},
        "sources": len({r["ip"] for r in rows}),
        "senders": len(ss),
        "classes": {k: {"messages": sum(x["messages"] for x in ss.values()
                                        if x["class"] == k),
                        "senders": sum(1 for x in ss.values()
                                       if x["class"] == k)}
                    for k in ("aligned", "forwarded", "unaligned",
                              "unauthorised")},
        "reports": 1,
    }
    for k, v in want.items():
        p += diff("summary %s" % k, s.get(k), v)
    if s.get("dmarc_pass_share") is None or \
            abs(s["dmarc_pass_share"] - dpass / tot) > 0.0001:
        p.append("summary dmarc_pass_share %r, expected %.4f" % (
            s.get("dmarc_pass_share"), dpass / tot))
    pol = s.get("policy") or {}
    for k in ("p", "adkim", "aspf"):
        wantp = policy.get(k, "none" if k == "p" else "r")
        if pol.get(k) != wantp:
            p.append("summary policy %s = %r, expected %r" % (
                k, pol.get(k), wantp))
    disp = {}
    for r in rows:
        disp[r["disposition"]] = disp.get(r["disposition"], 0) + \
            r["messages"]
    p += diff("summary disposition", s.get("disposition"), disp)
    tap.check("%s: summary's totals, disagreements (%d+%d), classes and "
              "policy" % (domain, ours, theirs), p)

    # sources
    p = []
    try:
        src = json.loads(reader.value(
            "SELECT dmarcd.sources(%s, %s, %s)::text" % (
                sql_str(domain), sql_str(since), sql_str(until))))
    except (RuntimeError, TypeError, ValueError) as ex:
        src = {}
        p.append("sources: %s" % ex)
    got = {x.get("sender"): x for x in src.get("senders", [])}
    p += diff("sources senders", sorted(got), sorted(ss))
    order = [x.get("sender") for x in src.get("senders", [])]
    want_order = [k for k, _ in sorted(ss.items(), key=lambda kv: (
        -kv[1]["messages"], kv[0]))]
    p += diff("sources order (most mail first)", order, want_order)
    for name, st in ss.items():
        g = got.get(name)
        if g is None:
            continue
        want = {"platform": st["platform"], "class": st["class"],
                "messages": st["messages"], "dmarc_pass": st["dpass"],
                "receiver_pass": st["rpass"], "failing": st["failing"],
                "classes": st["by_class"], "dkim_aligned": st["dk_al"],
                "spf_aligned": st["sp_al"], "ips": len(st["ips"]),
                "days": 1}
        for k, v in want.items():
            p += diff("sources %s %s" % (name, k), g.get(k), v)
        p += fix_problems("sources %s" % name, g.get("fix"), st, domain)
    tap.check("%s: sources: sender%s %s, class%s %s, and the fix each "
              "needs" % (domain, "s" if len(ss) > 1 else "",
                         ", ".join(sorted(ss)), "es" if len(ss) > 1 else "",
                         ", ".join(sorted({x["class"] for x in
                                           ss.values()}))), p)


def setup_roles(cluster, db):
    """A login role for each of dmarcd_reader and dmarcd_ingest, and the
    test's own platforms and sender rules. (reader, ingest) Db objects."""
    r = db.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
        "'t_reader') THEN CREATE ROLE t_reader LOGIN IN ROLE dmarcd_reader; "
        "END IF; IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
        "'t_ingest') THEN CREATE ROLE t_ingest LOGIN IN ROLE dmarcd_ingest; "
        "END IF; END $$; "
        "DELETE FROM dmarcd.sender_rules; DELETE FROM dmarcd.platforms; " +
        "".join("INSERT INTO dmarcd.platforms VALUES (%s); " % ", ".join(
            sql_str(x) for x in p) for p in PLATFORMS) +
        "".join("INSERT INTO dmarcd.sender_rules VALUES (%s); " % ", ".join(
            sql_str(x) for x in p) for p in RULES))
    if r.rc != 0:
        raise RuntimeError("roles, platforms: " + r.describe())
    reader = h.Db(cluster, db.name)
    reader.conninfo = cluster.conninfo_for(db.name, user="t_reader")
    writer = h.Db(cluster, db.name)
    writer.conninfo = cluster.conninfo_for(db.name, user="t_ingest")
    return reader, writer


def summary_json(reader, domain):
    """The domain's summary and sources around CASE_DAY, as text."""
    since = CASE_DAY - datetime.timedelta(days=1)
    until = CASE_DAY + datetime.timedelta(days=2)
    return [reader.value("SELECT dmarcd.%s(%s, %s, %s)::text" % (
        f, sql_str(domain), sql_str(str(since)), sql_str(str(until))))
        for f in ("summary", "sources")]


def part_cases(tap, env, cluster):
    db = cluster.new_db()
    reader, _ = setup_roles(cluster, db)
    work = os.path.join(env.work, "cases")
    all_cases = cases()
    paths = []
    for n, (domain, policy, records) in enumerate(all_cases):
        paths.append(write(os.path.join(work, "%02d-%s.xml" % (n, domain)),
                           report_xml(domain, "receiver.example",
                                      "case-%d" % n, epoch(CASE_DAY),
                                      records, policy)))
    p = ingest(db, work)
    tap.check("%d case reports ingested" % len(paths), p)
    if p:
        return
    for domain, policy, records in all_cases:
        check_case(tap, db, reader, domain, policy, records, CASE_DAY)

    # A revision: the same report with every count doubled replaces the
    # rollup (rollup_add(-1) must meet the rows ingest wrote, key for key).
    domain, policy, records = all_cases[3]     # override.example, 3 rows
    doubled = [dict(r, count=2 * r["count"]) for r in records]
    write(os.path.join(env.work, "rev", "rev.xml"), report_xml(
        domain, "receiver.example", "case-3", epoch(CASE_DAY), doubled,
        policy))
    p = ingest(db, os.path.join(env.work, "rev"))
    want = sorted((r["ip"], str(r["auth"]), r["ov"], str(r["count"]))
                  for r in doubled)
    # Appended (sql/0014_rollup_append.sql): the earlier rows, taken away
    # by rows of their negative, beside the new; by key they add up.
    got = sorted(db.rows(
        "SELECT host(source_ip), auth, override, sum(messages) FROM "
        "dmarcd.rollup_daily WHERE domain = %s GROUP BY 1, 2, 3 "
        "HAVING sum(messages) <> 0" % sql_str(domain)))
    p += diff("rollup_daily after the revision, added up by key (ip, "
              "auth, override, messages)", got, want)
    before = summary_json(reader, domain)
    r = db.dmarcd("compact")
    if r.rc != 0 or "rows merged" not in r.out:
        p.append("compact: " + r.describe())
    got = sorted(db.rows(
        "SELECT host(source_ip), auth, override, messages FROM "
        "dmarcd.rollup_daily WHERE domain = %s" % sql_str(domain)))
    p += diff("rollup_daily after the revision and dmarcd compact (ip, "
              "auth, override, messages)", got, want)
    if summary_json(reader, domain) != before:
        p.append("the summary changed with compaction: %r" % before)
    p += db.consistency()
    tap.check("a revision replaces the rollup rows with dmarcd's verdict, "
              "key for key: added up before dmarcd compact, row for row "
              "after it (no leftover or negative rows), the summary the "
              "same", p)

    # Over 1 MiB: the rollup is added up while parsing (not by SQL).
    big = "big.example"
    rng = random.Random(7)
    kinds = [
        (dict(dkim=[(big, "pass")], spf=[(big, "mfrom", "pass")]), 63),
        (dict(dkim=[("sendgrid.net", "pass")],
              spf=[("sendgrid.net", "mfrom", "pass")]), 12),
        (dict(dkim=[("s.big.example", "pass")],
              spf=[(big, "mfrom", "fail")]), 53),
        (dict(spf=[("x.example", "mfrom", "fail")]), 0),
    ]
    bigrecs = []
    for i in range(3200):
        kw, auth = kinds[i % 4]
        bigrecs.append(rec("10.%d.%d.%d" % (i % 7, i // 256 % 256, i % 256),
                           rng.randint(1, 50), big if i % 5 else
                           "News.Big.Example", auth=auth, **kw))
    data = report_xml(big, "receiver.example", "big-1",
                      epoch(CASE_DAY) + 3600, bigrecs,
                      end=epoch(CASE_DAY) + DAY + 3600)
    write(os.path.join(env.work, "big", "big.xml"), data)
    p = [] if len(data) > 1024 * 1024 else [
        "the big report is only %d bytes" % len(data)]
    p += ingest(db, os.path.join(env.work, "big"))
    got = db.rows("SELECT auth, count(*) FROM dmarcd.records WHERE "
                  "domain = 'big.example' GROUP BY 1 ORDER BY 1")
    want = sorted([(str(a), str(sum(1 for i in range(len(bigrecs))
                                    if kinds[i % 4][1] == a)))
                   for a in (0, 12, 53, 63)], key=lambda x: int(x[0]))
    p += diff("records by auth", got, want)
    # The rollup ingest added up, against the one the records give.
    mismatch = db.rows(
        "WITH d AS (SELECT day, sum(messages) m FROM dmarcd.rollup_daily "
        "WHERE domain = 'big.example' GROUP BY 1), k AS (SELECT source_ip, "
        "header_from, auth, dkim_domain, spf_domain, override, "
        "sum(messages) m FROM dmarcd.rollup_daily WHERE domain = "
        "'big.example' GROUP BY 1, 2, 3, 4, 5, 6), r AS (SELECT source_ip, "
        "lower(header_from) header_from, auth, dkim_domain, spf_domain, "
        "override, sum(count) m FROM dmarcd.records WHERE domain = "
        "'big.example' GROUP BY 1, 2, 3, 4, 5, 6) "
        "SELECT 'key', count(*) FROM k FULL JOIN r USING (source_ip, "
        "header_from, auth, dkim_domain, spf_domain, override) "
        "WHERE k.m IS DISTINCT FROM r.m UNION ALL "
        "SELECT 'days', count(*) FROM d HAVING count(*) <> 2")
    if mismatch != [("key", "0")]:
        p.append("rollup_daily against the records (key mismatches, "
                 "days other than 2): %r" % mismatch)
    p += db.consistency()
    tap.check("a report over 1 MiB: records carry auth, and the rollup "
              "added up while parsing (over two days) matches them key for "
              "key", p)
    return db


# Part 2: sender grouping -------------------------------------------------

def part_grouping(tap, env, cluster):
    db = cluster.new_db()
    reader, writer = setup_roles(cluster, db)
    d = "grouping.example"
    nothing = dict(spf=[(d, "mfrom", "fail")])
    records = [
        # A confirmed PTR: its organizational domain.
        rec("198.51.100.10", 10, d, **nothing),
        # The same /24, an unconfirmed PTR and none: the network.
        rec("198.51.100.11", 11, d, **nothing),
        rec("198.51.100.12", 12, d, **nothing),
        # A confirmed PTR of a platform, nothing passing: the platform.
        rec("203.0.113.7", 13, d, **nothing),
        # IPv6, two addresses of one /48.
        rec("2001:db8:1:2::5", 14, d, **nothing),
        rec("2001:db8:1:3::6", 15, d, **nothing),
        # Two d= of one organization, from two networks.
        rec("192.0.2.40", 16, d, dkim=[("o1.em.mailer.example", "pass")]),
        rec("198.18.0.41", 17, d, dkim=[("o2.em.mailer.example", "pass")]),
    ]
    write(os.path.join(env.work, "grouping", "g.xml"), report_xml(
        d, "receiver.example", "g-1", epoch(CASE_DAY), records))
    p = ingest(db, os.path.join(env.work, "grouping"))
    since, until = CASE_DAY.isoformat() + " 00:00:00+00", \
        (CASE_DAY + datetime.timedelta(1)).isoformat() + " 00:00:00+00"

    def senders():
        src = json.loads(reader.value(
            "SELECT dmarcd.sources(%s, %s, %s)::text" % (
                sql_str(d), sql_str(since), sql_str(until))))
        return sorted((x["sender"], x.get("platform"), x["ips"],
                       x["messages"]) for x in src["senders"])

    before = senders()
    want = sorted([("198.51.100.0/24", None, 3, 33),
                   ("203.0.113.0/24", None, 1, 13),
                   ("2001:db8:1::/48", None, 2, 29),
                   ("o1.em.mailer.example", None, 1, 16),
                   ("o2.em.mailer.example", None, 1, 17)])
    p += diff("senders before any name is known (sender, platform, ips, "
              "messages)", before, want)
    tap.check("without names: the /24 and /48 networks, or the passing d= "
              "itself", p)

    # What dmarcd resolve would store, as the ingest role.
    r = writer.psql(
        "INSERT INTO dmarcd.ip_names (ip, ptr, names, confirmed, org, "
        "status, expires_at) VALUES "
        "('198.51.100.10', 'mta1.out.bigcorp.example', "
        "'{mta1.out.bigcorp.example}', true, 'bigcorp.example', 'ok', "
        "now() + interval '1 day'), "
        "('198.51.100.11', '', '{spoof.bigcorp.example}', false, '', "
        "'unconfirmed', now() + interval '1 day'), "
        "('203.0.113.7', 'o1.ptr1234.sendgrid.net', "
        "'{o1.ptr1234.sendgrid.net}', true, 'sendgrid.net', 'ok', "
        "now() + interval '1 day'); "
        "INSERT INTO dmarcd.domain_orgs (domain, org) VALUES "
        "('o1.em.mailer.example', 'mailer.example'), "
        "('o2.em.mailer.example', 'mailer.example')")
    p = [] if r.rc == 0 else ["as dmarcd_ingest: " + r.describe()]
    after = senders()
    want = sorted([("bigcorp.example", None, 1, 10),
                   ("198.51.100.0/24", None, 2, 23),
                   ("testgrid", "testgrid", 1, 13),
                   ("2001:db8:1::/48", None, 2, 29),
                   ("mailer.example", None, 2, 33)])
    p += diff("senders with names (sender, platform, ips, messages)",
              after, want)
    ptr = reader.rows("SELECT host(source_ip), ptr FROM dmarcd.source_days "
                      "WHERE domain = %s AND ptr IS NOT NULL ORDER BY 1"
                      % sql_str(d))
    p += diff("source_days ptr (confirmed only)", ptr, [
        ("198.51.100.10", "mta1.out.bigcorp.example"),
        ("203.0.113.7", "o1.ptr1234.sendgrid.net")])
    tap.check("with names: a confirmed PTR groups under its organization "
              "(not its /24) or its platform, an unconfirmed one counts as "
              "none, two d= of one organization are one sender", p)


# Part 3: 30 days, and the verdicts ---------------------------------------

UNTIL = datetime.date(2026, 3, 1)


class Sender:
    """One sender of known behaviour: kinds [(weight, record keywords,
    auth, class)] drawn each day it sends."""

    def __init__(self, name, platform, ips, kinds, per_day, hf=None,
                 days=None, ptr=None):
        self.name, self.platform, self.ips = name, platform, ips
        self.kinds, self.per_day, self.hf = kinds, per_day, hf
        self.days, self.ptr = days, ptr


def senders_for(domain, kind, rng):
    """The senders of a domain. kind "fails": with the platforms'
    unaligned mail, a subdomain's failing platform and a sporadic sender
    that blocks by its share (0.1%) alone; "ready": none of it; "bulk":
    20 times the volume and a steady sender that blocks by its messages
    a day alone; "noisy": 40 tiny unaligned senders (spam with SPF for
    its own domain) that block nothing each, but together keep the
    aligned share under 98%."""
    legit_fails = kind == "fails"
    own = [(domain, "pass")]
    spoofer = Sender("185.220.101.0/24", None,
                     ["185.220.101.%d" % i for i in range(1, 40)],
                     [(1, dict(spf=[(domain, "mfrom", "fail")],
                               disposition="none"), 16, "unauthorised")],
                     lambda: rng.randint(5, 40) if rng.random() < 0.6
                     else 0)
    if kind == "parked":
        return [spoofer]
    esp = {"bulk": lambda: rng.randint(3000, 5000),
           "noisy": lambda: rng.randint(40, 60)}.get(
               kind, lambda: rng.randint(150, 250))
    s = [Sender("esp-one.example", None, ["192.0.2.10", "192.0.2.11"],
                [(1, dict(dkim=own, spf=[("bounce." + domain, "mfrom",
                                          "pass")], pe=("pass", "pass")),
                  63, "aligned")],
                esp,
                ptr=[("192.0.2.10", "o1.esp-one.example", "esp-one.example"),
                     ("192.0.2.11", "o2.esp-one.example",
                      "esp-one.example")]),
         Sender("forwarder.example", None, ["203.0.113.25"],
                [(3, dict(dkim=own, spf=[(domain, "mfrom", "fail")],
                          pe=("pass", "fail")), 53, "forwarded"),
                 (1, dict(dkim=[(domain, "fail")],
                          spf=[("lists.forwarder.example", "mfrom", "pass")],
                          reasons=["mailing_list"]), 40, "forwarded")],
                lambda: rng.randint(10, 30),
                ptr=[("203.0.113.25", "mx.lists.forwarder.example",
                      "forwarder.example")]),
         spoofer,
         # A minor sender: one message, twice, early in the window.
         Sender("crm-tool.example", None, ["198.51.100.77"],
                [(1, dict(spf=[("crm-tool.example", "mfrom", "pass")]), 8,
                  "unaligned")], lambda: 1, days={2, 5})]
    grid = [(1, dict(dkim=own + [("sendgrid.net", "pass")],
                     spf=[("em.sendgrid.net", "mfrom", "pass")],
                     pe=("pass", "fail")), 45, "aligned")]
    if legit_fails:
        grid.append((0, dict(dkim=[("sendgrid.net", "pass")],
                             spf=[("em.sendgrid.net", "mfrom", "pass")]),
                     12, "unaligned"))
    s.append(Sender("testgrid", "testgrid", ["149.72.1.1", "149.72.1.2"],
                    grid, lambda: rng.randint(40, 60)))
    if legit_fails:
        s.append(Sender("testses", "testses", ["54.240.1.1"],
                        [(1, dict(dkim=[("amazonses.com", "pass")],
                                  spf=[("b.amazonses.com", "mfrom",
                                        "pass")]), 12, "unaligned")],
                        lambda: rng.randint(10, 20), hf="news." + domain))
        s.append(Sender("helpdesk-saas.example", None, ["198.51.100.88"],
                        [(1, dict(spf=[("helpdesk-saas.example", "mfrom",
                                        "pass")]), 8, "unaligned")],
                        lambda: 5, days={3, 8, 15, 21}))
    if kind == "bulk":
        s.append(Sender("ticket-app.example", None, ["198.51.100.99"],
                        [(1, dict(spf=[("ticket-app.example", "mfrom",
                                        "pass")]), 8, "unaligned")],
                        lambda: rng.randint(1, 2)))
    if kind == "noisy":
        for i in range(40):
            s.append(Sender("spam%d.example" % i, None,
                            ["100.64.%d.1" % i],
                            [(1, dict(spf=[("spam%d.example" % i, "mfrom",
                                            "pass")]), 8, "unaligned")],
                            lambda: 1, days={i % 29, (i + 7) % 29}))
    return s


def generate(work, domain, policy, seed, days, kind, skip=()):
    """Write one report per reporter and day for domain over days (dates);
    the rows as the model has them, and the ip_names rows."""
    rng = random.Random(seed)
    senders = senders_for(domain, kind, rng)
    rows, names = [], []
    for s in senders:
        names.extend(s.ptr or [])
    for n, day in enumerate(days):
        if n in skip:
            continue
        per_reporter = {"google.example": [], "yahoo.example": []}
        for s in senders:
            if s.days is not None and n not in s.days:
                continue
            total = s.per_day()
            if total == 0:
                continue
            parts = []
            if len(s.kinds) > 1 and s.kinds[-1][0] == 0:
                # the platform's unaligned share: 3 to 8 a day
                bad = rng.randint(3, 8)
                parts = [(s.kinds[0], total - bad), (s.kinds[-1], bad)]
            elif len(s.kinds) > 1:
                w = sum(k[0] for k in s.kinds)
                first = total * s.kinds[0][0] // w
                parts = [(s.kinds[0], first), (s.kinds[1], total - first)]
            else:
                parts = [(s.kinds[0], total)]
            for (w, kw, auth, cls), count in parts:
                while count > 0:
                    c = min(count, rng.randint(1, max(1, count)))
                    count -= c
                    ip = rng.choice(s.ips)
                    rep = rng.choice(sorted(per_reporter))
                    hf = s.hf or domain
                    r = rec(ip, c, hf, **kw)
                    per_reporter[rep].append(r)
                    rows.append(dict(day=day, ip=ip, hf=hf, auth=auth,
                                     messages=c, rpass="pass" in r["pe"],
                                     sender=s.name, platform=s.platform,
                                     cls=cls, **{"class": cls}))
        for rep, recs in per_reporter.items():
            if recs:
                write(os.path.join(work, domain, "%s-%s.xml" % (
                    day.isoformat(), rep)),
                    report_xml(domain, rep, "%s-%s" % (domain, day),
                               epoch(day), recs, policy))
    return rows, names


STEPS = ["p=none", "p=quarantine; pct=25; t=y", "p=quarantine",
         "p=reject; pct=25; t=y", "p=reject"]


def model_readiness(domain, policy, rows, ndays, until):
    """readiness(domain, ndays, until) from the rows the senders made."""
    hi = until
    lo = hi - datetime.timedelta(ndays)
    rows = [r for r in rows if lo <= r["day"] < hi]
    # The impact's basis: the last 7 days of the window that have reports.
    days_with_data = sorted({r["day"] for r in rows}, reverse=True)
    basis_lo = days_with_data[:7][-1] if days_with_data else hi
    ss = sender_stats(rows)
    legit_senders = {k for k, v in ss.items()
                     if v["class"] in ("aligned", "unaligned")}
    legit = sum(ss[k]["messages"] for k in legit_senders)
    legit_pass = sum(ss[k]["dpass"] for k in legit_senders)
    fwd = [v for v in ss.values() if v["class"] == "forwarded"]
    unauth = sum(v["messages"] for v in ss.values()
                 if v["class"] == "unauthorised")
    data_days = len({r["day"] for r in rows})
    basis_days = len({r["day"] for r in rows if r["day"] >= basis_lo})
    share = dq(div(legit_pass, legit), 4) if legit else None
    trend = []
    for day in sorted({r["day"] for r in rows}):
        dr = [r for r in rows if r["day"] == day]
        lg = sum(r["messages"] for r in dr if r["sender"] in legit_senders)
        ps = sum(r["messages"] for r in dr if r["sender"] in legit_senders
                 and r["auth"] & 3)
        t = {"day": day.isoformat(), "legitimate": lg, "aligned": ps,
             "unauthorised": sum(r["messages"] for r in dr
                                 if ss[r["sender"]]["class"] ==
                                 "unauthorised")}
        if lg:
            t["share"] = dq(div(ps, lg), 4)
        trend.append(t)
    fail7 = {}
    for r in rows:
        if r["sender"] in legit_senders and r["day"] >= basis_lo and \
                not r["auth"] & 3:
            fail7[r["sender"]] = fail7.get(r["sender"], 0) + r["messages"]
    impact = sorted(((k, v) for k, v in fail7.items() if v > 0),
                    key=lambda kv: -kv[1])
    impact_day = div(sum(fail7.values()), max(basis_days, 1))
    blockers, minor = [], []
    for k in legit_senders:
        v = ss[k]
        if v["failing"] <= 0:
            continue
        big = div(v["failing"], max(data_days, 1)) >= 1 or \
            v["failing"] >= Decimal("0.001") * legit
        (blockers if big else minor).append(
            (k, v["failing"], dq(div(v["failing"], max(data_days, 1)), 1)))
    blockers.sort(key=lambda x: -x[1])
    minor.sort(key=lambda x: -x[1])
    sub_rows = [r for r in rows if r["hf"] != domain]
    sub_failing = sum(r["messages"] for r in sub_rows
                      if r["sender"] in legit_senders and not r["auth"] & 3)
    p = policy.get("p", "none")
    pct = int(policy.get("pct", 100))
    step = {"reject": 3 if pct < 100 else 4,
            "quarantine": 1 if pct < 100 else 2}.get(p, 0)
    if legit + sum(v["messages"] for v in fwd) + unauth == 0:
        status, nxt = "no_data", None
    elif data_days < 7:
        status, nxt = "collecting", None
    elif blockers or (share is not None and share < Decimal("0.98")):
        status, nxt = ("at_risk" if step > 0 else "not_ready"), None
    elif step == 4:
        status, nxt = "enforced", None
    else:
        status, nxt = "ready", STEPS[step + 1]
    return dict(
        since=lo.isoformat(), until=hi.isoformat(), data_days=data_days,
        current=STEPS[step], status=status, next=nxt,
        legitimate={"messages": legit, "aligned": legit_pass,
                    "share": share},
        forwarded={"messages": sum(v["messages"] for v in fwd),
                   "failing": sum(v["failing"] for v in fwd)},
        unauthorised={"messages": unauth},
        basis_days=basis_days, impact_day=dq(impact_day, 1),
        impact=[(k, ss[k]["platform"], dq(div(v, max(basis_days, 1)), 1))
                for k, v in impact],
        blockers=blockers, minor=minor, trend=trend,
        sub={"messages": sum(r["messages"] for r in sub_rows),
             "failing": sub_failing}, stats=ss)


def readiness(reader, domain, ndays, until):
    return json.loads(reader.value(
        "SELECT dmarcd.readiness(%s, %d, %s)::text" % (
            sql_str(domain), ndays, sql_str(until.isoformat() +
                                            " 00:00:00+00"))),
        parse_float=Decimal)


def ties(items, key):
    """items ordered by item[key] descending, as given; equals by name."""
    for i in range(len(items) - 1):
        if items[i][key] is None or items[i + 1][key] is None or \
                items[i][key] < items[i + 1][key]:
            return items    # out of order: left as it is, to be seen
    return sorted(items, key=lambda x: (-x[key], x[0]))


def compare_readiness(got, want, domain):
    p = []
    for k in ("since", "until", "data_days", "current", "legitimate",
              "forwarded", "unauthorised"):
        w = want[k]
        if isinstance(w, dict):
            w = {a: b for a, b in w.items() if b is not None}
        p += diff(k, got.get(k), w)
    v = got.get("verdict") or {}
    p += diff("verdict status", v.get("status"), want["status"])
    p += diff("verdict next", v.get("next"), want["next"])
    p += diff("verdict path", v.get("path"), STEPS)
    advice = v.get("advice") or ""
    if not advice or advice != advice.strip() or "  " in advice or \
            "%" in advice.replace("%.", "").replace("%)", "").replace(
                "% ", ""):
        p.append("advice %r: not a sentence" % advice)
    imp = got.get("impact") or {}
    p += diff("impact basis_days", imp.get("basis_days"), want["basis_days"])
    for k in ("messages_per_day", "at_quarantine", "at_reject"):
        p += diff("impact " + k, imp.get(k), want["impact_day"])
    # Most failing first; the order of equals is not defined.
    p += diff("impact senders (sender, platform, messages_per_day)",
              ties([(x.get("sender"), x.get("platform"),
                     x.get("messages_per_day"))
                    for x in imp.get("senders", [])], 2),
              ties(want["impact"], 2))
    for k in ("blockers", "minor"):
        p += diff(k + " (sender, failing, failing_per_day)",
                  ties([(x.get("sender"), x.get("failing"),
                         x.get("failing_per_day")) for x in got.get(k, [])],
                       1), ties(want[k], 1))
        for x in got.get(k, []):
            st = want["stats"].get(x.get("sender"))
            if st is None:
                continue
            p += diff("%s %s class" % (k, x.get("sender")), x.get("class"),
                      st["class"])
            p += fix_problems("%s %s" % (k, x.get("sender")), x.get("fix"),
                              st, domain)
    p += diff("trend", got.get("trend"), want["trend"])
    sub = got.get("subdomains") or {}
    p += diff("subdomains messages, failing",
              (sub.get("messages"), sub.get("failing")),
              (want["sub"]["messages"], want["sub"]["failing"]))
    advice = " ".join(sub.get("advice", []))
    if (want["sub"]["failing"] > 0) != ("subdomains fails DMARC" in advice):
        p.append("subdomain advice %r with %d failing subdomain messages"
                 % (advice, want["sub"]["failing"]))
    return p


def part_readiness(tap, env, cluster):
    db = cluster.new_db()
    reader, writer = setup_roles(cluster, db)
    work = os.path.join(env.work, "days")
    days30 = [UNTIL - datetime.timedelta(30 - i) for i in range(30)]
    sets = [
        # domain, policy, seed, days, kind, skipped day indexes
        ("acme.example", {"p": "none"}, 1, days30, "fails", {12}),
        ("acme-q.example", {"p": "quarantine"}, 2, days30, "fails", ()),
        ("ready-none.example", {"p": "none", "sp": "none"}, 3, days30,
         "ready", {20}),
        ("ready-q25.example", {"p": "quarantine", "pct": "25"}, 4, days30,
         "ready", ()),
        ("ready-q.example", {"p": "quarantine", "np": "reject"}, 5, days30,
         "ready", ()),
        ("ready-r.example", {"p": "reject"}, 6, days30, "ready", ()),
        ("new.example", {"p": "none"}, 7, days30[-5:], "ready", ()),
        ("bulk.example", {"p": "none"}, 8, days30, "bulk", ()),
        ("noisy.example", {"p": "none"}, 9, days30, "noisy", ()),
        # No legitimate mail at all, only spoofing: nothing to block.
        ("parked.example", {"p": "none"}, 10, days30, "parked", ()),
        ("parked-r.example", {"p": "reject"}, 11, days30, "parked", ()),
    ]
    models, names = {}, set()
    for domain, policy, seed, days, fails, skip in sets:
        rows, nm = generate(work, domain, policy, seed, days, fails, skip)
        models[domain] = (policy, rows)
        names.update(nm)
    # Out of the window: the until day itself and 40 days before.
    for domain, day in (("acme.example", UNTIL),
                        ("old.example", UNTIL - datetime.timedelta(40))):
        write(os.path.join(work, "out", "%s.xml" % domain), report_xml(
            domain, "google.example", "out-%s" % domain, epoch(day),
            [rec("192.0.2.99", 1000, domain)]))
    p = ingest(db, work)
    r = writer.psql("INSERT INTO dmarcd.ip_names (ip, ptr, names, "
                    "confirmed, org, status, expires_at) VALUES %s" %
                    ", ".join("(%s, %s, ARRAY[%s], true, %s, 'ok', "
                              "now() + interval '1 day')" % (
                                  sql_str(ip), sql_str(ptr), sql_str(ptr),
                                  sql_str(org))
                              for ip, ptr, org in sorted(names)))
    if r.rc != 0:
        p.append("ip_names: " + r.describe())
    tap.check("30 days of generated reports for %d domains ingested, PTR "
              "names stored" % len(sets), p)
    if p:
        return

    expect_status = {"acme.example": "not_ready", "acme-q.example": "at_risk",
                     "ready-none.example": "ready",
                     "ready-q25.example": "ready",
                     "ready-q.example": "ready", "ready-r.example": "enforced",
                     "new.example": "collecting",
                     "bulk.example": "not_ready",
                     "noisy.example": "not_ready",
                     "parked.example": "ready",
                     "parked-r.example": "enforced"}
    for domain, (policy, rows) in models.items():
        want = model_readiness(domain, policy, rows, 30, UNTIL)
        p = []
        if want["status"] != expect_status[domain]:
            # The generator did not make what the case is about.
            p.append("the model says %s, the data set was made for %s" % (
                want["status"], expect_status[domain]))
        try:
            got = readiness(reader, domain, 30, UNTIL)
        except (RuntimeError, TypeError, ValueError) as ex:
            tap.check("%s: readiness" % domain, [str(ex)])
            continue
        p += compare_readiness(got, want, domain)
        extra = ""
        if domain == "acme.example":
            if want["sub"]["failing"] == 0 or [b[0] for b in
                                               want["blockers"]] != [
                    "testses", "testgrid", "helpdesk-saas.example"] or \
                    len(want["minor"]) != 1 or want["data_days"] != 29 or \
                    want["stats"]["helpdesk-saas.example"]["failing"] >= \
                    want["data_days"]:
                p.append("the data set lacks a subdomain failure, the "
                         "three blockers (one by share alone), a minor "
                         "sender or the missing day")
            extra = ": %d legitimate, share %s, %s/day blocked, blockers " \
                "%s, minor %s, subdomain advice" % (
                    want["legitimate"]["messages"],
                    want["legitimate"]["share"], want["impact_day"],
                    "+".join(b[0] for b in want["blockers"]),
                    "+".join(b[0] for b in want["minor"]))
        elif want["next"]:
            extra = ", next %s" % want["next"]
        elif domain == "bulk.example":
            b = want["blockers"]
            if [x[0] for x in b] != ["ticket-app.example"] or \
                    b[0][1] >= Decimal("0.001") * \
                    want["legitimate"]["messages"]:
                p.append("the data set lacks a blocker by messages a day "
                         "alone: %r" % b)
            extra = ", a blocker by messages a day alone"
        elif domain == "noisy.example":
            if want["blockers"] or len(want["minor"]) != 41 or \
                    want["legitimate"]["share"] >= Decimal("0.98"):
                p.append("the data set lacks 41 minor senders without "
                         "a blocker, under 98%")
            extra = ", no blocker but a share of %s" % \
                want["legitimate"]["share"]
        tap.check("%s (%s): readiness(30 days) as worked out from the "
                  "senders: %s%s" % (domain, STEPS[0] if not policy else
                                     "; ".join("%s=%s" % kv for kv in
                                               policy.items()),
                                     want["status"], extra), p)

    # The 7-day window: readiness(7) sees only the last 7 days.
    policy, rows = models["acme.example"]
    want = model_readiness("acme.example", policy, rows, 7, UNTIL)
    try:
        p = compare_readiness(readiness(reader, "acme.example", 7, UNTIL),
                              want, "acme.example")
    except (RuntimeError, TypeError, ValueError) as ex:
        p = [str(ex)]
    tap.check("acme.example: readiness over 7 days", p)

    # Until a day earlier: the window moves (and the day after is out).
    want = model_readiness("acme.example", policy, rows, 30,
                           UNTIL - datetime.timedelta(1))
    try:
        got = readiness(reader, "acme.example", 30,
                        UNTIL - datetime.timedelta(1))
        p = diff("data_days, legitimate", (got.get("data_days"),
                                           got.get("legitimate")),
                 (want["data_days"], {k: v for k, v in
                                      want["legitimate"].items()
                                      if v is not None}))
        p += diff("trend", got.get("trend"), want["trend"])
    except (RuntimeError, TypeError, ValueError) as ex:
        p = [str(ex)]
    tap.check("acme.example: readiness until a day earlier", p)

    # no_data: a domain never seen, and one seen only long ago.
    p = []
    for domain in ("silent.example", "old.example"):
        try:
            got = readiness(reader, domain, 30, UNTIL)
        except (RuntimeError, TypeError, ValueError) as ex:
            p.append(str(ex))
            continue
        p += diff("%s status" % domain, (got.get("verdict") or {}).get(
            "status"), "no_data")
        p += diff("%s data_days, legitimate" % domain,
                  (got.get("data_days"), got.get("legitimate")),
                  (0, {"messages": 0, "aligned": 0}))
        p += diff("%s trend" % domain, got.get("trend"), [])
    tap.check("no_data: a domain without reports, and one whose reports "
              "are older than the window", p)

    # days out of range: refused, as invalid_parameter_value.
    p = []
    for n in (0, -1, 367):
        r = reader.psql("SELECT dmarcd.readiness('acme.example', %d, "
                        "'2026-03-01')" % n)
        if r.rc == 0 or "days must be between 1 and 366" not in r.err:
            p.append("days %d: %s" % (n, r.describe()))
    tap.check("readiness refuses days outside 1..366 with a message", p)


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    part_cases(tap, env, cluster)
    part_grouping(tap, env, cluster)
    part_readiness(tap, env, cluster)


h.run_main(main)
