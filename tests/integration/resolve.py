#!/usr/bin/env python3
"""resolve.py - dmarcd resolve against a real DNS server (NSD) and a real
PostgreSQL.

Prints TAP; skipped without PostgreSQL or NSD. tests/integration/dns.sh
serves fixture zones on 127.0.0.1; a small report (written here) whose
source addresses are the fixture's is ingested, then:

* `dmarcd resolve --server 127.0.0.1:PORT`: every ip_names row as the
  zones say: a PTR that resolves back (IPv4, IPv6, through an RFC 2317
  CNAME) is ok with its org; a PTR name without an address, one that
  resolves to another address (a spoofed PTR), an IPv6 PTR whose AAAA is
  another address are unconfirmed; of two PTR names only the second
  confirms: it is ptr; NXDOMAIN and NODATA; a name with bad characters is
  dropped (alone: unconfirmed without names; beside a good name: the good
  one confirms); a zone NSD does not serve is refused and a zone it could
  not load servfail; names under platform-like suffixes
  (o1.ptr1234.sendgrid.net, ...amazonses.com, a .co.uk) get their
  organizational domain, and the first two their platform (sql/
  sender_rules.tsv, by the ip_names trigger of sql/0008_views.sql); expires_at - resolved_at is the TTL of the
  answer clamped to [1 h, 7 d], the negative TTL (min of the SOA's TTL
  and minimum) clamped to [15 min, 1 d], or 15 min for a failure;
* domain_orgs holds each DKIM and SPF domain of the rollup with its
  organizational domain;
* --since after the report: nothing is due;
* run again: nothing is resolved (cached), no row changes;
* a row made expired (and wrong) is asked again, and only it;
* a server that is down (a port nothing listens on; a UDP socket this
  test holds open and never reads): timeout statuses within the
  deadline, retry in 15 min, what was known before kept; exit 69;
* a deadline shorter than the timeout: the command ends at the deadline,
  exit 0, nothing stored;
* 2,500 addresses (three batches of at most 1000) in one run, each
  stored once;
* PostgreSQL unreachable: exit 75; a bad --server or --since: exit 64;
* `dmarcd run` (with Dovecot; skipped without it): the report mailed,
  fetched and stored, and its sources resolved after the pass as
  `dmarcd resolve` does ([resolve] servers in the configuration), logged
  as event=resolved; SIGTERM still ends it at once.
"""
import ipaddress
import os
import sys
import signal
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import dnsharness as dh  # noqa: E402
import imapharness as ih  # noqa: E402

V6_ZONE = "8.b.d.0.1.0.0.2.ip6.arpa"

# The summary's second line: no report here says discovery_method=treewalk
# (tests/integration/treewalk.py covers the walk).
NO_WALK = ("tree walk: 0 domains walked (0 differ from the PSL, 0 failed, "
           "0 left for the next run), 0 treewalk reports realigned "
           "(0 records changed, 0 waiting for a walk)\n")


def rev(ip):
    """The owner name of ip's PTR, relative to its reverse zone."""
    name = ipaddress.ip_address(ip).reverse_pointer
    zone = V6_ZONE if ":" in ip else ".".join(name.split(".")[1:])
    return name[:-len(zone) - 1]


ZONES = {
    # SOA TTL 3000, minimum 1200: negative answers live 1200 s.
    "2.0.192.in-addr.arpa": """$TTL 7200
@ 3000 SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 1200
@ NS ns1.example.net.
10 PTR mail.example.net.
11 60 PTR noaddr.example.net.
12 2592000 PTR spoof.example.net.
13 86400 PTR first.example.net.
13 86400 PTR second.example.net.
15 PTR bad!name.example.net.
16 PTR x\\032y.example.net.
16 PTR good16.example.net.
17 PTR o1.ptr1234.sendgrid.net.
18 PTR a48-30.smtp-out.eu-west-1.amazonses.com.
19 PTR mx.mail.example.co.uk.
20 5000 CNAME 20.sub
20.sub 9000 PTR cname.example.net.
21 TXT "no PTR here"
""",
    # SOA minimum 60: clamped up to 900.
    "113.0.203.in-addr.arpa": """$TTL 3600
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 60
@ NS ns1.example.net.
""",
    # SOA minimum and TTL above a day: clamped down to 86400.
    V6_ZONE: """$TTL 3600
@ 200000 SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 100000
@ NS ns1.example.net.
%s PTR mail6.example.net.
%s PTR mail6.example.net.
""" % (rev("2001:db8::25"), rev("2001:db8::26")),
    # Not a zone file: NSD serves the zone as SERVFAIL.
    "0.18.198.in-addr.arpa": """$TTL 3600
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
1 PTR a..b.example.net.
""",
    "example.net": """$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 127.0.0.1
mail A 192.0.2.10
noaddr TXT "no address"
spoof A 192.0.2.99
first A 192.0.2.200
second A 192.0.2.13
good16 A 192.0.2.16
cname A 192.0.2.20
mail6 AAAA 2001:db8::25
""",
    "sendgrid.net": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
o1.ptr1234 A 192.0.2.17
""",
    "amazonses.com": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
a48-30.smtp-out.eu-west-1 A 192.0.2.18
""",
    "example.co.uk": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
mx.mail A 192.0.2.19
""",
}

# ip: (status, ptr, names, org, seconds kept)
EXPECTED = {
    "192.0.2.10": ("ok", "mail.example.net", ["mail.example.net"],
                   "example.net", 7200),
    "192.0.2.11": ("unconfirmed", "", ["noaddr.example.net"], "", 3600),
    "192.0.2.12": ("unconfirmed", "", ["spoof.example.net"], "", 604800),
    "192.0.2.13": ("ok", "second.example.net",
                   ["first.example.net", "second.example.net"],
                   "example.net", 86400),
    "192.0.2.14": ("nxdomain", "", [], "", 1200),
    "192.0.2.15": ("unconfirmed", "", [], "", 7200),
    "192.0.2.16": ("ok", "good16.example.net", ["good16.example.net"],
                   "example.net", 7200),
    "192.0.2.17": ("ok", "o1.ptr1234.sendgrid.net",
                   ["o1.ptr1234.sendgrid.net"], "sendgrid.net", 7200),
    "192.0.2.18": ("ok", "a48-30.smtp-out.eu-west-1.amazonses.com",
                   ["a48-30.smtp-out.eu-west-1.amazonses.com"],
                   "amazonses.com", 7200),
    "192.0.2.19": ("ok", "mx.mail.example.co.uk", ["mx.mail.example.co.uk"],
                   "example.co.uk", 7200),
    "192.0.2.20": ("ok", "cname.example.net", ["cname.example.net"],
                   "example.net", 5000),
    "192.0.2.21": ("nodata", "", [], "", 1200),
    "203.0.113.5": ("nxdomain", "", [], "", 900),
    "198.51.100.7": ("refused", "", [], "", 900),
    "198.18.0.1": ("servfail", "", [], "", 900),
    "2001:db8::25": ("ok", "mail6.example.net", ["mail6.example.net"],
                     "example.net", 3600),
    "2001:db8::26": ("unconfirmed", "", ["mail6.example.net"], "", 3600),
    "2001:db8::99": ("nxdomain", "", [], "", 86400),
}

# DKIM and SPF domains of the records, and their organizational domains.
DOMAINS = {
    "mail.example.com": "example.com",
    "news.example.co.uk": "example.co.uk",
    "em1234.sendgrid.net": "sendgrid.net",
    "eu-west-1.amazonses.com": "amazonses.com",
    "Bounce.Example.ORG": "example.org",
}


def report_xml():
    dkim = sorted(DOMAINS)
    recs = []
    for i, ip in enumerate(sorted(EXPECTED)):
        recs.append(
            "<record><row><source_ip>%s</source_ip><count>%d</count>"
            "<policy_evaluated><disposition>none</disposition>"
            "<dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>"
            "<identifiers><header_from>example.com</header_from>"
            "</identifiers><auth_results><dkim><domain>%s</domain>"
            "<result>pass</result></dkim><spf><domain>%s</domain>"
            "<result>pass</result></spf></auth_results></record>"
            % (ip, i + 1, dkim[i % len(dkim)],
               dkim[(i + 2) % len(dkim)]))
    return ("<?xml version=\"1.0\"?><feedback><report_metadata>"
            "<org_name>resolve.test</org_name><email>r@resolve.test</email>"
            "<report_id>resolve-1</report_id><date_range>"
            "<begin>1767225600</begin><end>1767311999</end></date_range>"
            "</report_metadata><policy_published><domain>example.com"
            "</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>"
            "<pct>100</pct></policy_published>%s</feedback>\n"
            % "".join(recs)).encode()


def rows(db):
    """ip -> (status, ptr, names, confirmed, org, seconds kept,
    resolved_at epoch)"""
    out = {}
    for r in db.rows(
            "SELECT host(ip), status, ptr, array_to_string(names, ' '), "
            "confirmed, org, extract(epoch FROM expires_at - resolved_at)"
            "::bigint, extract(epoch FROM resolved_at) FROM dmarcd.ip_names"):
        out[r[0]] = (r[1], r[2], r[3].split() if r[3] else [], r[4] == "t",
                     r[5], int(r[6]), float(r[7]))
    return out


def config(env, name, **keys):
    path = os.path.join(env.work, name)
    with open(path, "w") as f:
        f.write("[resolve]\n")
        for k, v in keys.items():
            f.write("%s = %s\n" % (k, v))
    return path


def check_rows(got, ips, problems):
    for ip in ips:
        status, ptr, names, org, ttl = EXPECTED[ip]
        if ip not in got:
            problems.append("%s: no ip_names row" % ip)
            continue
        g = got[ip]
        want = (status, ptr, sorted(names), status == "ok", org, ttl)
        have = (g[0], g[1], sorted(g[2]), g[3], g[4], g[5])
        if want != have:
            problems.append("%s: (status, ptr, names, confirmed, org, "
                            "seconds kept) is %r, expected %r"
                            % (ip, have, want))


def main(tap):
    env = h.setup()
    if not dh.have_nsd(env):
        h.skip_all("no nsd (apt-get install nsd)")
    nsd = dh.Nsd(env, ZONES)
    server = "127.0.0.1:%d" % nsd.port
    cluster = h.Cluster(env)
    db = cluster.new_db()
    report = os.path.join(env.work, "report.xml")
    with open(report, "wb") as f:
        f.write(report_xml())
    r = db.dmarcd("ingest", report)
    if r.rc != 0:
        raise RuntimeError("ingest: " + r.describe())
    conf = config(env, "fast.conf", timeout=3, deadline=60)

    r = db.dmarcd("resolve", "--since", "2026-01-02", "--server", server,
                  config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    n = db.int("SELECT count(*) FROM dmarcd.ip_names") + \
        db.int("SELECT count(*) FROM dmarcd.domain_orgs")
    if n != 0:
        problems.append("%d rows written for a report of 2026-01-01" % n)
    if "resolved 0 addresses" not in r.out:
        problems.append("summary: %r" % r.out)
    tap.check("--since after the report's day: nothing is due", problems)

    before = float(db.value("SELECT extract(epoch FROM now())"))
    r = db.dmarcd("resolve", "--server", server, config=conf)
    after = float(db.value("SELECT extract(epoch FROM now())"))
    problems = [] if r.rc == 0 else [r.describe()]
    confirmed = sum(1 for e in EXPECTED.values() if e[0] == "ok")
    failed = sum(1 for e in EXPECTED.values()
                 if e[0] in ("refused", "servfail"))
    want = ("resolved %d addresses (%d confirmed, %d failed, 0 left for "
            "the next run), %d domains\n" % (len(EXPECTED), confirmed,
                                              failed, len(DOMAINS)))
    want += NO_WALK
    if r.out != want:
        problems.append("summary %r, expected %r" % (r.out, want))
    if r.seconds > 20:
        problems.append("took %.1f s" % r.seconds)
    got = rows(db)
    check_rows(got, sorted(EXPECTED), problems)
    extra = sorted(set(got) - set(EXPECTED))
    if extra:
        problems.append("rows for addresses not in the report: %r" % extra)
    for ip, g in got.items():
        if not before - 1 <= g[6] <= after + 1:
            problems.append("%s: resolved_at %.0f not within the run "
                            "(%.0f..%.0f)" % (ip, g[6], before, after))
    platforms = dict(db.rows("SELECT host(ip), coalesce(platform, '') "
                             "FROM dmarcd.ip_names"))
    want = {"192.0.2.17": "SendGrid", "192.0.2.18": "Amazon SES"}
    for ip, p in sorted(platforms.items()):
        if p != want.get(ip, ""):
            problems.append("%s: platform %r, expected %r (the sender "
                            "rules of its confirmed ptr)"
                            % (ip, p, want.get(ip, "")))
    tap.check("dmarcd resolve: each address as the zones say (ok, "
              "unconfirmed, spoofed, second name, junk, nxdomain, nodata, "
              "refused, servfail, CNAME, IPv6, platform suffixes), "
              "expires_at from the TTLs, clamped (%.2f s)" % r.seconds,
              problems)

    problems = []
    seen = dict(db.rows("SELECT domain, org FROM dmarcd.domain_orgs"))
    rollup = set(x[0] for x in db.rows(
        "SELECT dkim_domain FROM dmarcd.rollup_daily UNION "
        "SELECT spf_domain FROM dmarcd.rollup_daily"))
    rollup.discard("")
    want = {d.lower(): o for d, o in DOMAINS.items()}
    if set(seen) != rollup:
        problems.append("domain_orgs has %r, the rollup %r"
                        % (sorted(seen), sorted(rollup)))
    for d, o in seen.items():
        if want.get(d.lower()) != o:
            problems.append("%s: org %r, expected %r"
                            % (d, o, want.get(d.lower())))
    if len(seen) != len(DOMAINS):
        problems.append("%d domains, expected %d" % (len(seen),
                                                     len(DOMAINS)))
    tap.check("domain_orgs: every DKIM and SPF domain of the rollup with "
              "its organizational domain", problems)

    r = db.dmarcd("resolve", "--server", server, config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    if not r.out.startswith("resolved 0 addresses") or \
            not r.out.endswith(", 0 domains\n" + NO_WALK):
        problems.append("summary: %r" % r.out)
    again = rows(db)
    if again != got:
        problems.append("rows changed: %r"
                        % sorted(set(again.items()) ^ set(got.items())))
    tap.check("run again: nothing due, nothing asked, no row changed",
              problems)

    db.psql("UPDATE dmarcd.ip_names SET ptr = 'stale.example', "
            "names = '{stale.example}', expires_at = now() - interval '1 s'"
            " WHERE ip = '192.0.2.13'")
    r = db.dmarcd("resolve", "--server", server, config=conf)
    problems = [] if r.rc == 0 else [r.describe()]
    if not r.out.startswith("resolved 1 address (1 confirmed"):
        problems.append("summary: %r" % r.out)
    again = rows(db)
    check_rows(again, ["192.0.2.13"], problems)
    if again["192.0.2.13"][6] <= got["192.0.2.13"][6]:
        problems.append("resolved_at did not move on")
    changed = sorted(ip for ip in again if ip != "192.0.2.13" and
                     again[ip] != got[ip])
    if changed:
        problems.append("other rows changed: %r" % changed)
    tap.check("an expired row is asked again, and only it", problems)

    # Servers that never answer.
    silent = dh.dead_server()
    try:
        for what, port in (("a port nothing listens on",
                            dh.free_udp_port()),
                           ("a UDP socket that never answers",
                            silent.getsockname()[1])):
            db.psql("UPDATE dmarcd.ip_names SET expires_at = now()")
            down = config(env, "down.conf", timeout=2, deadline=20)
            r = db.dmarcd("resolve", "--server", "127.0.0.1:%d" % port,
                          config=down, timeout=60)
            problems = []
            if r.rc != 69:
                problems.append("exit %s, expected 69: %s"
                                % (r.rc, r.describe()))
            if r.seconds > 2 * 2 + 3:
                problems.append("took %.1f s with a timeout of 2 s"
                                % r.seconds)
            if "no DNS server answered (127.0.0.1:%d)" % port not in r.err:
                problems.append("stderr: %r" % r.err)
            now = rows(db)
            for ip, g in now.items():
                if g[0] != "timeout" or g[5] != 900:
                    problems.append("%s: status %s kept %d s, expected "
                                    "timeout for 900 s" % (ip, g[0], g[5]))
                if g[1:5] != got[ip][1:5] and ip != "192.0.2.13":
                    problems.append("%s: what was known changed: %r -> %r"
                                    % (ip, got[ip][1:5], g[1:5]))
            if len(now) != len(EXPECTED):
                problems.append("%d rows" % len(now))
            tap.check("DNS down (%s): every address timeout, retried in "
                      "15 min, names kept, exit 69 (%.2f s)"
                      % (what, r.seconds), problems)

        db.psql("UPDATE dmarcd.ip_names SET expires_at = now()")
        snapshot = rows(db)
        slow = config(env, "deadline.conf", timeout=30, deadline=2)
        r = db.dmarcd("resolve", "--server", "127.0.0.1:%d"
                      % silent.getsockname()[1], config=slow, timeout=60)
        problems = [] if r.rc == 0 else [r.describe()]
        if r.seconds > 5:
            problems.append("took %.1f s with a deadline of 2 s"
                            % r.seconds)
        want = "resolved 0 addresses (0 confirmed, 0 failed, %d left for " \
            "the next run), 0 domains\n" % len(EXPECTED) + NO_WALK
        if r.out != want:
            problems.append("summary %r, expected %r" % (r.out, want))
        if rows(db) != snapshot:
            problems.append("rows changed")
        tap.check("a deadline shorter than the timeout: ends at the "
                  "deadline (%.2f s), nothing stored, exit 0" % r.seconds,
                  problems)
    finally:
        silent.close()

    dead = "host=127.0.0.1 port=%d dbname=x user=postgres connect_timeout=5" \
        % dh.free_udp_port()
    r = db.dmarcd("resolve", "--server", server, db=dead, config=conf)
    tap.check("PostgreSQL unreachable: exit 75",
              [] if r.rc == 75 else [r.describe()])
    problems = []
    for args in (("--server", "ns1.example.net"),
                 ("--server", "127.0.0.1:99999"),
                 ("--since", "2026-02-30"), ("--since", "yesterday"),
                 ("extra",)):
        r = db.dmarcd("resolve", *args, config=conf)
        if r.rc != 64 or not r.err:
            problems.append(r.describe())
    tap.check("a bad --server or --since: exit 64 with a message", problems)

    many(tap, cluster, server, conf)
    daemon(tap, env, cluster, server)


def many(tap, cluster, server, conf):
    """2,500 addresses NSD refuses (no zone for 10/8): the batches."""
    db = cluster.new_db()
    r = db.psql("INSERT INTO dmarcd.rollup_daily (domain, day, source_ip, "
                "header_from, dkim_aligned, spf_aligned, disposition, "
                "messages) SELECT 'example.com', date '2026-01-01', "
                "'10.0.0.0'::inet + g, 'example.com', false, false, 'none', "
                "1 FROM generate_series(1, 2500) g")
    if r.rc != 0:
        raise RuntimeError(r.describe())
    r = db.dmarcd("resolve", "--server", server, config=conf, timeout=120)
    problems = [] if r.rc == 0 else [r.describe()]
    want = "resolved 2500 addresses (0 confirmed, 2500 failed, 0 left " \
        "for the next run), 0 domains\n" + NO_WALK
    if r.out != want:
        problems.append("summary %r, expected %r" % (r.out, want))
    counts = db.rows("SELECT count(*), count(DISTINCT ip), "
                     "count(*) FILTER (WHERE status = 'refused') "
                     "FROM dmarcd.ip_names")[0]
    if counts != ("2500", "2500", "2500"):
        problems.append("ip_names rows, distinct, refused: %r"
                        % (counts,))
    tap.check("2,500 addresses in one run, 1000 at a time: each stored "
              "once (%.2f s)" % r.seconds, problems)


def daemon(tap, env, cluster, server):
    what = "dmarcd run: a report fetched, its sources resolved after the pass"
    why = ih.dovecot_missing()
    if why:
        tap.skip(what, why)
        return
    db = cluster.new_db()
    dc = ih.Dovecot(env)
    run = None
    try:
        dc.deliver_bytes(ih.report_mail(report_xml(), "resolve-1.xml"))
        conf = ih.write_config(env, "run.conf", dc, sections={
            "resolve": {"servers": server, "timeout": 3}})
        run = ih.running_dmarcd(db, "run", config=conf)
        done = ih.wait_for(lambda: db.int(
            "SELECT count(*) FROM dmarcd.ip_names") == len(EXPECTED), 30,
            0.2)
        problems = [] if done else [
            "%s ip_names rows after 30 s, expected %d: %s" % (
                db.int("SELECT count(*) FROM dmarcd.ip_names"),
                len(EXPECTED), run.stderr()[-1500:])]
        if db.int("SELECT count(*) FROM dmarcd.reports") != 1:
            problems.append("the report was not stored")
        check_rows(rows(db), sorted(EXPECTED), problems)
        if done and not ih.wait_for(
                lambda: "event=resolved" in run.stderr(), 10, 0.1):
            problems.append("no event=resolved logged: %r"
                            % run.stderr()[-1500:])
        if db.int("SELECT count(*) FROM dmarcd.domain_orgs") != \
                len(DOMAINS):
            problems.append("domain_orgs not filled")
        if not run.running():
            problems.append("dmarcd run ended: " + run.describe())
        t0 = time.monotonic()
        run.signal(signal.SIGTERM)
        rc = run.wait(10)
        if rc != 0 or time.monotonic() - t0 > 5:
            problems.append("SIGTERM: exit %s after %.1f s"
                            % (rc, time.monotonic() - t0))
        tap.check(what, problems)
    finally:
        if run is not None:
            run.signal(signal.SIGKILL)
            run.wait(10)
        dc.stop()


h.run_main(main)
