#!/usr/bin/env python3
"""check.py - `dmarcd check DOMAIN` against a real authoritative DNS server
(issue 7).

Prints TAP; skipped without NSD (tests/integration/dns.sh); the part
with stored reports is skipped without PostgreSQL. NSD serves
fixture zones written here: for each of the five platform setups of
../shared/seeds (Repro, Eploy, Altcraft, Catglobe, PORTERS) a customer
domain set up as the guide says (*-ok.example) and one with the mistakes
the guide warns about and the usual ones (*-bad.example), and the
platforms' own zones (amazonses.com, outlook.com, sendgrid.net,
porterscloud.com, catglobe.example...). DKIM keys are made here with
openssl. `dmarcd check --resolver 127.0.0.1:PORT --no-reports --format
json` is run on each, and every finding expected is asserted (code and
severity), with the fix where there is one; a correct setup has no
failure. Then: the SPF lookup limit, an include loop, a resolver that
never answers (exit 75 within the timeout), and the join with stored
reports (addresses not covered by SPF, selectors seen
in the reports, the next policy step).
"""
import base64
import calendar
import datetime
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import dnsharness as dh  # noqa: E402

# Altcraft's guide's sample "DKIM key": an SSH public key, not one.
GUIDE_KEY = ("v=DKIM1; k=rsa; p=AAAAB3NzaC1yc2EAAAADAQABAAABAQDLWvAVr5k+4nn"
             "eMRKhUeb/yGjRBlpGu9CLXx4LJJb1dUZeNWBCbjpjN0P5hlXD3tyml8aBJdHWtu"
             "deBvauUmxoxIfrkQW6XNwiplAXB/2bsECd1k5lPRnWzGAt8WOVI/ztOITmykZGL"
             "z9BHFIQ8i+Zte6ORlwfNiFyTLE9VE4ubzwIaOWr95MTXwtqC+zXIVwPqjZ0FYs7"
             "Ij0PnUAx805AK0I+I/4Fb58HJ9hdMeMiMsVb3Sz+AWby208QQubkAVfm4Zf4/Rj"
             "W6uBlc1pSwYKy0fq13fHb6VltVXE+Q+Cbj8tYLJHStTT8bCepOcgGsvBkw+8Wiu"
             "YZBHOX6gn3L/+5")

SOA = ("$TTL 300\n@ SOA ns1.example.net. hostmaster.example.net. "
       "1 3600 600 86400 300\n@ NS ns1.example.net.\n")


def rsa_key(bits):
    pem = subprocess.run(["openssl", "genrsa", str(bits)],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"],
                         input=pem, capture_output=True, check=True).stdout
    return base64.b64encode(der).decode()


def zones(k2048, k1024):
    """The fixture zones, name -> text."""
    key = "v=DKIM1; k=rsa; p=" + k2048
    half = len(key) // 2
    z = {}
    z["amazonses.com"] = SOA + """
@ TXT "v=spf1 ip4:199.255.192.0/22 ip4:54.240.0.0/18 ~all"
feedback-smtp.ap-northeast-1 A 192.0.2.200
feedback-smtp.eu-west-1 A 192.0.2.201
abcdef.dkim TXT %s
""" % dh.txt_strings(key)
    z["outlook.com"] = SOA + """
spf.protection TXT "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 -all"
catglobe-ok-example.mail.protection A 192.0.2.30
"""
    z["sendgrid.net"] = SOA + '@ TXT "v=spf1 ip4:167.89.0.0/17 ~all"\n'
    z["porterscloud.com"] = SOA + """
@ TXT "v=spf1 ip4:203.0.113.0/24 -all"
@ MX 10 mx
mx A 192.0.2.40
"""
    z["porters.jp"] = SOA + '@ A 192.0.2.41\n'
    z["catglobe.example"] = SOA + """
spf TXT "v=spf1 ip4:198.51.100.0/24 -all"
cg.dkim TXT %s
""" % dh.txt_strings(key)
    z["dmarc-vendor.example"] = SOA + """
@ MX 10 mx
mx A 192.0.2.50
eploy-ok.example._report._dmarc TXT "v=DMARC1"
extauth.example._report._dmarc TXT "v=DMARC1"
"""
    z["2.0.192.in-addr.arpa"] = SOA + """
4 PTR mta-1.altcraft-ok.example.
5 PTR mta-2.altcraft-bad.example.
10 PTR mx.repro-ok.example.
11 PTR nothere.repro-bad.example.
12 PTR mx.eploy-ok.example.
30 PTR catglobe-ok-example.mail.protection.outlook.com.
40 PTR mx.porterscloud.com.
6 PTR ghost.mtas.example.
7 PTR out.mtas.example.
"""

    # Repro (Amazon SES, Tokyo): bounce host rprmail, a long DKIM key in
    # one record of several strings, DMARC with rua.
    z["repro-ok.example"] = SOA + """
@ MX 10 mx
@ TXT "v=spf1 mx -all"
mx A 192.0.2.10
rprmail MX 10 feedback-smtp.ap-northeast-1.amazonses.com.
rprmail TXT "v=spf1 include:amazonses.com ~all"
1234rpr._domainkey TXT %s
_dmarc TXT "v=DMARC1; p=none; rua=mailto:dmarc@repro-ok.example"
""" % dh.txt_strings(key)
    # The guide's own DMARC record (no rua), the key split into two
    # records, the bounce host without its MX, a second SPF record at the
    # apex, an MX whose PTR does not resolve back.
    z["repro-bad.example"] = SOA + """
@ MX 10 mx
@ TXT "v=spf1 include:amazonses.com ~all"
@ TXT "v=spf1 mx -all"
mx A 192.0.2.11
rprmail TXT "v=spf1 include:amazonses.com ~all"
1234rpr._domainkey TXT "%s"
1234rpr._domainkey TXT "%s"
_dmarc TXT "v=DMARC1; p=none;"
""" % (key[:half][:255], key[half:][:255])

    # Eploy (own domain through SES): eploymail bounce host, SES DKIM
    # delegated by CNAME.
    z["eploy-ok.example"] = SOA + """
@ MX 10 mx
@ TXT "v=spf1 mx -all"
@ TXT "amazonses:Zm9vYmFyYmF6"
mx A 192.0.2.12
eploymail MX 10 feedback-smtp.eu-west-1.amazonses.com.
eploymail TXT "v=spf1 include:amazonses.com ~all"
abcdef._domainkey CNAME abcdef.dkim.amazonses.com.
_dmarc TXT "v=DMARC1; p=none; rua=mailto:dmarc@eploy-ok.example,mailto:ext@dmarc-vendor.example"
"""
    # The bounce MX on the main domain, a dangling DKIM CNAME, reports
    # to an outside address that has not authorized them.
    z["eploy-bad.example"] = SOA + """
@ MX 10 feedback-smtp.eu-west-1.amazonses.com.
@ TXT "v=spf1 include:amazonses.com ~all"
xyz._domainkey CNAME xyz.dkim.amazonses.com.
_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:reports@dmarc-vendor.example"
"""

    # Altcraft (own MTA): A, MX, PTR matching, one SPF, legacy records,
    # DKIM, DMARC reject, BIMI.
    z["altcraft-ok.example"] = SOA + """
@ MX 10 mta-1
@ TXT "v=spf1 ip4:192.0.2.4 -all"
@ TXT "spf2.0/pra ip4:192.0.2.4 ~all"
mta-1 A 192.0.2.4
_domainkey TXT "o=-;"
altcraft._domainkey TXT %s
_dmarc TXT "v=DMARC1; p=reject; sp=reject; rua=mailto:report@altcraft-ok.example"
default._bimi TXT "v=BIMI1; l=https://altcraft-ok.example/bimi/bimi.svg"
""" % dh.txt_strings(key)
    # A second SPF record instead of a merged one, the guide's sample
    # "key" (an SSH key, not a DKIM key), PTR not matching the A, BIMI
    # without an enforcing policy.
    z["altcraft-bad.example"] = SOA + """
@ MX 10 mta-1
@ TXT "v=spf1 include:sendgrid.net ~all"
@ TXT "v=spf1 ip4:192.0.2.5 -all"
mta-1 A 192.0.2.5
mta-2 A 192.0.2.99
altcraft._domainkey TXT %s
_dmarc TXT "v=DMARC1; p=none; sp=reject; rua=mailto:report@altcraft-bad.example"
default._bimi TXT "v=BIMI1; l=https://altcraft-bad.example/bimi.svg"
""" % dh.txt_strings(GUIDE_KEY)

    # Catglobe: one SPF record with Catglobe's and Office 365's, -all;
    # DKIM by CNAME to a Catglobe-hosted key.
    z["catglobe-ok.example"] = SOA + """
@ MX 10 catglobe-ok-example.mail.protection.outlook.com.
@ TXT "v=spf1 include:spf.catglobe.example include:spf.protection.outlook.com -all"
cg._domainkey CNAME cg.dkim.catglobe.example.
_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@catglobe-ok.example"
"""
    # The CNAME points at a key not published (yet), and no DMARC.
    z["catglobe-bad.example"] = SOA + """
@ TXT "v=spf1 include:spf.catglobe.example include:spf.protection.outlook.com -all"
cg._domainkey CNAME cg2.dkim.catglobe.example.
"""

    # PORTERS: envelope at porterscloud.com (SPF can never align); the
    # author-domain signature on application, 2048 bits.
    z["porters-ok.example"] = SOA + """
@ TXT "v=spf1 include:spf.protection.outlook.com include:porterscloud.com -all"
porters._domainkey TXT %s
_dmarc TXT "v=DMARC1; p=none; rua=mailto:dmarc@porters-ok.example"
""" % dh.txt_strings(key)
    # The table of contents' porters.jp (no SPF there), a 1024-bit key.
    z["porters-bad.example"] = SOA + """
@ TXT "v=spf1 include:porters.jp -all"
porters._domainkey TXT "v=DKIM1; k=rsa; p=%s"
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@porters-bad.example"
""" % k1024

    # The TLD, so that the tree walk is answered (NXDOMAIN) up to it.
    z["example"] = SOA
    # The tree walk (DMARCbis) finds _dmarc.b.walk.example for
    # a.b.walk.example; RFC 7489 takes the organizational domain's.
    z["walk.example"] = SOA + """
_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@walk.example"
_dmarc.b TXT "v=DMARC1; p=reject; rua=mailto:d@walk.example"
a.b TXT "v=spf1 -all"
"""
    # A subdomain inheriting a policy whose reports go outside, with the
    # authorization published for the policy domain.
    z["extauth.example"] = SOA + """
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:x@dmarc-vendor.example"
sub TXT "v=spf1 -all"
"""
    # 40 verification records beside the SPF record.
    z["manytxt.example"] = SOA + "".join(
        '@ TXT "site-verification=%040d"\n' % i for i in range(40)) + """
@ TXT "v=spf1 -all"
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:d@manytxt.example"
"""
    # Sending MTAs named by SPF: an address whose PTR names a host
    # without an address, a host whose PTR resolves back.
    z["mtas.example"] = SOA + """
@ TXT "v=spf1 ip4:192.0.2.6 a:out.mtas.example -all"
out A 192.0.2.7
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:d@mtas.example"
"""
    # v= not first: receivers ignore it.
    z["badv.example"] = SOA + ('_dmarc TXT "p=reject; v=DMARC1"\n'
                               '@ TXT "v=spf1 -all"\n')

    # SPF over the limit (11 DNS-querying terms), and a loop.
    z["limits.example"] = SOA + "".join(
        'i%d TXT "v=spf1 ip4:198.51.100.%d -all"\n' % (i, i)
        for i in range(1, 12)) + """
many TXT %s
ten TXT %s
loop TXT "v=spf1 include:loop2.limits.example -all"
loop2 TXT "v=spf1 include:loop.limits.example -all"
_dmarc TXT "v=DMARC1; p=none; rua=mailto:dmarc@limits.example"
""" % tuple(dh.txt_strings("v=spf1 %s -all" % " ".join(
        "include:i%d.limits.example" % i for i in range(1, n)))
        for n in (12, 11))
    return z


CASES = [
    # (domain, extra args, {code: severity} that must be there, fixes:
    #  {code: text the fix must hold}, failures allowed)
    ("repro-ok.example", ["--selector", "1234rpr",
                          "--sender", "rprmail.repro-ok.example"],
     {"sender.mx": "ok", "sender.aligned": "ok", "dkim.ok": "ok",
      "ptr.confirmed": "ok"}, {}, False),
    ("repro-bad.example", ["--selector", "1234rpr",
                           "--sender", "rprmail.repro-bad.example"],
     {"dmarc.no_rua": "warn", "dkim.multiple_records": "fail",
      "spf.multiple": "fail", "sender.no_mx": "warn",
      "ptr.unconfirmed": "warn"},
     {"dmarc.no_rua": "rua=mailto:", "dkim.multiple_records":
      "IDAQAB\""}, True),
    ("eploy-ok.example", ["--selector", "abcdef",
                          "--sender", "eploymail.eploy-ok.example"],
     {"dkim.delegated": "info", "sender.mx": "ok",
      "dmarc.external_authorized": "ok"}, {}, False),
    ("eploy-bad.example", ["--selector", "xyz"],
     {"dkim.dangling_cname": "fail", "dmarc.external_unauthorized": "fail",
      "mx.platform_feedback": "fail"},
     {"dmarc.external_unauthorized":
      "eploy-bad.example._report._dmarc.dmarc-vendor.example. TXT "
      "\"v=DMARC1\""}, True),
    ("altcraft-ok.example", ["--selector", "altcraft"],
     {"ptr.confirmed": "ok", "spf.spf2": "info", "dkim.ok": "ok",
      "bimi.ok": "ok", "dmarc.ok": "ok"}, {}, False),
    ("altcraft-bad.example", ["--selector", "altcraft"],
     {"spf.multiple": "fail", "bimi.no_enforcement": "warn",
      "ptr.unconfirmed": "warn", "dkim.key": "fail"},
     {"ptr.unconfirmed": "5.2.0.192.in-addr.arpa. PTR "
      "mta-1.altcraft-bad.example."}, True),
    ("catglobe-ok.example", ["--selector", "cg"],
     {"dkim.delegated": "info"}, {}, False),
    ("catglobe-bad.example", ["--selector", "cg"],
     {"dkim.dangling_cname": "fail", "dmarc.missing": "fail"},
     {"dmarc.missing": "_dmarc.catglobe-bad.example. TXT \"v=DMARC1; "
      "p=none; rua=mailto:"}, True),
    ("porters-ok.example", ["--selector", "porters",
                            "--sender", "porterscloud.com"],
     {"sender.unaligned": "warn"}, {}, False),
    ("porters-bad.example", ["--selector", "porters"],
     {"spf.include_none": "fail", "dkim.short_key": "warn"}, {}, True),
    ("many.limits.example", [], {"spf.lookups": "fail",
                                 "dmarc.inherited": "info"}, {}, True),
    ("loop.limits.example", [], {"spf.loop": "fail"}, {}, True),
    ("ten.limits.example", [], {"spf.ok": "ok"}, {}, False),
    ("a.b.walk.example", [], {"dmarc.inherited": "info",
                              "dmarc.walk_differs": "warn"}, {}, False),
    ("sub.extauth.example", [], {"dmarc.inherited": "info",
                                 "dmarc.external_authorized": "ok"},
     {}, False),
    ("manytxt.example", [], {"spf.ok": "ok"}, {}, False),
    ("mtas.example", [], {"ptr.unconfirmed": "warn",
                          "ptr.confirmed": "ok"},
     {"ptr.unconfirmed": "ghost.mtas.example. A 192.0.2.6"}, False),
    ("badv.example", [], {"dmarc.version": "fail", "dmarc.missing": "fail"},
     {}, True),
]


def report_xml(domain, day, records):
    """records: (ip, count, spf domain, spf result, dkim d=, selector,
    dkim result)."""
    begin = calendar.timegm(day.timetuple())
    rows = "".join(
        "<record><row><source_ip>%s</source_ip><count>%d</count>"
        "<policy_evaluated><disposition>none</disposition><dkim>%s</dkim>"
        "<spf>%s</spf></policy_evaluated></row><identifiers>"
        "<header_from>%s</header_from></identifiers><auth_results>"
        "%s<spf><domain>%s</domain><scope>mfrom</scope><result>%s</result>"
        "</spf></auth_results></record>" % (
            ip, n, dres if dd == domain else "fail",
            sres if sd == domain else "fail", domain,
            "<dkim><domain>%s</domain><selector>%s</selector><result>%s"
            "</result></dkim>" % (dd, sel, dres) if dd else "", sd, sres)
        for ip, n, sd, sres, dd, sel, dres in records)
    return ("<?xml version=\"1.0\"?><feedback><report_metadata>"
            "<org_name>receiver.example</org_name><email>d@receiver.example"
            "</email><report_id>check-1</report_id><date_range><begin>%d"
            "</begin><end>%d</end></date_range></report_metadata>"
            "<policy_published><domain>%s</domain><p>none</p>"
            "</policy_published>%s</feedback>\n" % (
                begin, begin + 86399, domain, rows)).encode()


def with_reports(tap, env, server):
    """The DNS joined with stored reports (PostgreSQL)."""
    cluster = h.Cluster(env)
    db = cluster.new_db()
    day = datetime.date.today() - datetime.timedelta(days=1)
    path = os.path.join(env.work, "check-report.xml")
    with open(path, "wb") as f:
        f.write(report_xml("repro-ok.example", day, [
            # its MX, covered by "v=spf1 mx -all", signed by 1234rpr
            ("192.0.2.10", 40, "repro-ok.example", "pass",
             "repro-ok.example", "1234rpr", "pass"),
            # MAIL FROM the domain, from an address SPF does not cover
            ("192.0.2.77", 7, "repro-ok.example", "fail", "", "", ""),
            # Repro through SES with the bounce host rprmail
            ("54.240.0.5", 30, "rprmail.repro-ok.example", "pass",
             "repro-ok.example", "1234rpr", "pass"),
            # PORTERS: envelope at porterscloud.com, SPF passes for it
            ("203.0.113.9", 12, "porterscloud.com", "pass",
             "porterscloud.com", "pc1", "pass"),
        ]))
    r = db.dmarcd("ingest", path)
    if r.rc != 0:
        raise RuntimeError("ingest: " + r.describe())
    argv = [env.dmarcd, "check", "repro-ok.example", "--resolver", server,
            "--format", "json", "--db", db.conninfo, "--config",
            env.empty_config]
    r = h.run(argv)
    problems = []
    try:
        doc = json.loads(r.out)
    except ValueError:
        tap.check("with reports: findings", ["no JSON: " + r.describe()])
        return
    found = {}
    for f in doc["findings"]:
        found.setdefault(f["code"], []).append(f)
    unc = found.get("spf.uncovered", [])
    if not unc or "192.0.2.77 (7 messages: fail)" not in unc[0]["what"] \
            or "192.0.2.10" in unc[0]["what"]:
        problems.append("spf.uncovered %r" % unc)
    sel = [f for f in found.get("dkim.ok", [])
           if f["subject"] == "1234rpr._domainkey.repro-ok.example"]
    if not sel:
        problems.append("selector 1234rpr from the reports not checked: "
                        "%r" % found.get("dkim.ok"))
    if not any(f["subject"] == "rprmail.repro-ok.example"
               for f in found.get("sender.mx", [])):
        problems.append("bounce host rprmail from the reports not "
                        "checked: %r" % found.get("sender.mx"))
    pu = found.get("sender.platform_unaligned", [])
    if not pu or pu[0]["subject"] != "porterscloud.com" or \
            "PORTERS" not in (pu[0].get("fix") or ""):
        problems.append("sender.platform_unaligned %r" % pu)
    if "dmarc.readiness" not in found and "dmarc.next_step" not in found:
        problems.append("no readiness finding")
    if "reports.none" in found:
        problems.append("reports not read: %r" % found["reports.none"])
    tap.check("with reports: the address not covered by SPF (192.0.2.77), "
              "the selector and the bounce host seen, PORTERS' envelope "
              "unaligned with its fix, the readiness", problems)


def run_check(env, server, domain, args, timeout=60):
    argv = [env.dmarcd, "check", domain, "--resolver", server,
            "--no-reports", "--format", "json", "--config",
            env.empty_config] + args
    t0 = time.monotonic()
    r = h.run(argv, timeout=timeout)
    r.elapsed = time.monotonic() - t0
    try:
        r.doc = json.loads(r.out)
    except ValueError:
        r.doc = None
    return r


def main(tap):
    env = h.setup(postgres=False)
    if not dh.have_nsd(env):
        h.skip_all("no nsd (apt-get install nsd)")
    nsd = dh.Nsd(env, zones(rsa_key(2048), rsa_key(1024)))
    server = "127.0.0.1:%d" % nsd.port

    for domain, args, want, fixes, may_fail in CASES:
        r = run_check(env, server, domain, args)
        problems = []
        if r.doc is None:
            problems.append("no JSON: " + r.describe())
            tap.check("%s: findings" % domain, problems)
            continue
        found = {}
        for f in r.doc["findings"]:
            found.setdefault(f["code"], []).append(f)
        for code, sev in want.items():
            sevs = [f["severity"] for f in found.get(code, [])]
            if sev not in sevs:
                problems.append("%s: expected %s, got %r" % (code, sev,
                                                            sevs))
        # Every warning and failure, exactly: none missing, none more.
        got_bad = sorted({(f["code"], f["severity"]) for f in
                          r.doc["findings"]
                          if f["severity"] in ("warn", "fail")})
        want_bad = sorted((c, v) for c, v in want.items()
                          if v in ("warn", "fail"))
        if got_bad != want_bad:
            problems.append("warnings and failures %r, expected %r"
                            % (got_bad, want_bad))
        for code, text in fixes.items():
            if not any(text in (f.get("fix") or "")
                       for f in found.get(code, [])):
                problems.append("%s: no fix holding %r: %r" % (
                    code, text, [f.get("fix") for f in
                                 found.get(code, [])]))
        worst = r.doc.get("worst")
        want_rc = {"fail": 2, "warn": 1, "info": 0, "ok": 0}.get(worst)
        if r.rc != want_rc:
            problems.append("exit %s for worst %s" % (r.rc, worst))
        if not may_fail and worst == "fail":
            problems.append("failures in a correct setup: %r" % [
                (f["code"], f["what"]) for f in r.doc["findings"]
                if f["severity"] == "fail"])
        if may_fail and worst != "fail":
            problems.append("a broken setup without a failure")
        tap.check("%s: %s" % (domain, ", ".join(
            "%s %s" % (c, s) for c, s in sorted(want.items()))), problems)

    # Table output, the same findings.
    r = h.run([env.dmarcd, "check", "repro-bad.example", "--resolver",
               server, "--no-reports", "--format", "table", "--selector",
               "1234rpr", "--config", env.empty_config])
    problems = []
    for text in ("FAIL  dkim.multiple_records", "fix: ", "repro-bad.example:"
                 " "):
        if text not in r.out:
            problems.append("no %r in the table" % text)
    if r.rc != 2:
        problems.append("exit %s" % r.rc)
    tap.check("--format table: the findings, their fixes, the counts; "
              "exit 2", problems)

    # The address the fixes put in rua=.
    r = run_check(env, server, "repro-bad.example", ["--rua",
                                                     "dmarc@collect.example"])
    fixes = [f.get("fix") or "" for f in (r.doc or {}).get("findings", [])
             if f["code"] == "dmarc.no_rua"]
    tap.check("--rua dmarc@collect.example: the fix adds that address",
              [] if fixes and "rua=mailto:dmarc@collect.example\"" in
              fixes[0] and "dmarc-reports@" not in fixes[0] else
              ["fixes %r" % fixes])
    r = h.run([env.dmarcd, "check", "repro-bad.example", "--rua",
               "not an address", "--resolver", server])
    tap.check("--rua without an address: usage error (exit 64)",
              [] if r.rc == 64 else [r.describe()])

    # A resolver that never answers: exit 75, within the timeout.
    dead = dh.dead_server()
    r = run_check(env, "127.0.0.1:%d" % dead.getsockname()[1],
                  "repro-ok.example", ["--timeout", "5"], timeout=60)
    problems = []
    if r.rc != 75:
        problems.append("exit %s, expected 75: %s" % (r.rc, r.describe()))
    if r.elapsed > 15:
        problems.append("took %.1f s for --timeout 5" % r.elapsed)
    if "no DNS server answered" not in r.err:
        problems.append("stderr %r" % r.err)
    tap.check("a resolver that never answers: exit 75 in %.1f s "
              "(--timeout 5)" % r.elapsed, problems)
    dead.close()

    if env.postgres:
        with_reports(tap, env, server)
    else:
        tap.skip("with reports: the DNS joined with stored reports",
                 "no PostgreSQL")

    r = h.run([env.dmarcd, "check", "not a domain", "--resolver", server])
    tap.check("a bad domain: usage error (exit 64)",
              [] if r.rc == 64 else [r.describe()])


if __name__ == "__main__":
    h.run_main(main)
