#!/usr/bin/env python3
"""status_page.py - the HTML status page at / against the JSON API, over
real HTTP, a real PostgreSQL and a real browser.

Prints TAP; skipped without PostgreSQL. A throwaway cluster; the samples
(contrib/samples) and reports this test writes: status.example over the
last 12 complete days (one missing) with an aligned sender, a platform
(SendGrid), seven unauthorised senders and two with hostile names (a
forward-confirmed PTR whose organizational domain is
<script>alert(1)</script>.example in dmarcd.ip_names, and a header_from
that is HTML; the HTML DKIM d= beside it is dropped by the parser), 24
small domains (so that there are more domains than the page shows) and a
policy domain with HTML in its name.
`dmarcd serve` runs as a role that has only dmarcd_reader.

Checked: / without credentials is 401 with WWW-Authenticate: Basic
realm="dmarcd" and tells nothing; wrong, revoked, malformed Basic
credentials are 401; the token as the Basic password (any user) or as a
bearer token is 200; the JSON API still wants Bearer. The answer is
text/html; charset=utf-8 with a Content-Security-Policy of default-src
'none' whose style hash is the page's style element, nosniff, no-store,
and no script. Parsed with html.parser, for two windows (the default 30
days, and the samples' January): the window, the domains shown (the 25
with the most messages, in the order of /v1/domains' counts, with a note
saying so), and for each domain the messages and DMARC pass share
(/summary), the aligned share, verdict, advice and policy (/readiness),
the largest senders of each class with their counts (/sources, at most
5 with a note), and one bar per day of the readiness trend whose height
is its share. Hostile names appear escaped, never as markup, and read
back equal to the JSON. A token for one domain sees only that domain.
A second page load is served from the kept answers (/metrics hits).
Bad days/until are 400 pages, POST is 405. With [api] status_public the
page needs no token, the JSON API still does.

Then headless Chromium (skipped when it is not installed) opens the page
with the token in the URL: its screenshot is a PNG of the window's size,
not of one colour, with the chart's bar colour in it; --dump-dom shows
the same numbers as the API. The screenshot stays in the test's temporary
directory, whose path is printed.
"""
import base64
import datetime
import hashlib
import html.parser
import os
import re
import shutil
import struct
import sys
import tempfile
import urllib.parse
import zlib
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import api  # noqa: E402

DAY = 86400
MAX_DOMAINS = 25
MAX_SENDERS = 5
CLASSES = ("aligned", "unaligned", "unauthorised", "forwarded")
PTR_ORG = "<script>alert(1)</script>.example"
DKIM_EVIL = "\"><img src=x onerror=alert(1)>.test"
FROM_EVIL = "<script>alert(\"hf\")</script>"
DOMAIN_EVIL = "evil<b>.example"
BAR_COLOURS = ((0xbf, 0x87, 0x00), (0x2d, 0xa4, 0x4e))


# ---- reports -----------------------------------------------------------

def rec(ip, count, hf, dkim=(), spf=()):
    out = ["<record><row><source_ip>%s</source_ip><count>%d</count>"
           "<policy_evaluated><disposition>none</disposition><dkim>fail"
           "</dkim><spf>fail</spf></policy_evaluated></row><identifiers>"
           "<header_from>%s</header_from></identifiers><auth_results>"
           % (ip, count, escape(hf))]
    for d, result in dkim:
        out.append("<dkim><domain>%s</domain><selector>s1</selector>"
                   "<result>%s</result></dkim>" % (escape(d), result))
    for d, result in spf:
        out.append("<spf><domain>%s</domain><result>%s</result></spf>"
                   % (escape(d), result))
    out.append("</auth_results></record>")
    return "".join(out)


def report(domain, report_id, begin, records):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>"
            "<report_metadata><org_name>receiver.test</org_name><email>"
            "dmarc@receiver.test</email><report_id>%s</report_id>"
            "<date_range><begin>%d</begin><end>%d</end></date_range>"
            "</report_metadata><policy_published><domain>%s</domain>"
            "<adkim>r</adkim><aspf>r</aspf><p>none</p></policy_published>\n"
            "%s\n</feedback>\n" % (report_id, begin, begin + DAY - 1,
                                   escape(domain), "\n".join(records))
            ).encode()


def write_reports(directory, today):
    """The test's own reports, relative to today (UTC midnight)."""
    os.makedirs(directory)
    n = 0

    def put(domain, begin, records):
        nonlocal n
        n += 1
        with open(os.path.join(directory, "r%03d.xml" % n), "wb") as f:
            f.write(report(domain, "status-%d" % n, begin, records))

    for k in range(1, 13):
        if k == 5:
            continue        # a day without reports: no bar
        records = [
            rec("192.0.2.10", 100 + 7 * k, "status.example",
                dkim=[("status.example", "pass")],
                spf=[("status.example", "pass")]),
            rec("167.89.64.124", 20 + 30 * (k % 4), "status.example",
                dkim=[("sendgrid.net", "pass")],
                spf=[("sendgrid.net", "pass")]),
            rec("203.0.113.5", 7, "status.example",
                spf=[("status.example", "fail")]),
            rec("198.51.100.7", 4, FROM_EVIL, dkim=[(DKIM_EVIL, "pass")],
                spf=[("x.test", "fail")]),
        ]
        for net in range(1, 7):
            records.append(rec("100.64.%d.9" % net, net, "status.example",
                               spf=[("status.example", "fail")]))
        put("status.example", today - k * DAY, records)
    for i in range(1, 25):
        put("bulk%02d.example" % i, today - DAY, [
            rec("192.0.2.30", i, "bulk%02d.example" % i,
                dkim=[("bulk%02d.example" % i, "pass")])])
    put(DOMAIN_EVIL, today - DAY, [
        rec("192.0.2.40", 50, DOMAIN_EVIL, spf=[("x.test", "pass")])])


# ---- a small DOM from html.parser --------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input",
        "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.children = []
        self.parent = parent

    def text(self):
        return "".join(c if isinstance(c, str) else c.text()
                       for c in self.children)

    def all(self, pred):
        out = []
        for c in self.children:
            if isinstance(c, Node):
                if pred(c):
                    out.append(c)
                out.extend(c.all(pred))
        return out

    def first(self, pred):
        found = self.all(pred)
        return found[0] if found else None

    def own_text(self, tag):
        """The text of the first direct child tag (title, desc)."""
        for c in self.children:
            if isinstance(c, Node) and c.tag == tag:
                return c.text()
        return None


class Dom(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def k(node, key):
    """The text of the element with data-k=key inside node, or None."""
    found = node.first(lambda n: n.attrs.get("data-k") == key)
    return None if found is None else found.text()


def has_class(node, name):
    return name in (node.attrs.get("class") or "").split()


# ---- what the page must say, from the JSON -----------------------------

def pct(share):
    return "\u2013" if share is None else "%.2f%%" % (share * 100)


def top_senders(sources, cls):
    mine = [s for s in sources["senders"] if s["class"] == cls]
    mine.sort(key=lambda s: (-s["messages"], s["sender"].encode()))
    return mine


def from_text(names):
    shown = ", ".join(names[:3])
    if len(names) > 3:
        shown += " and %d more" % (len(names) - 3)
    return shown


def page_window(dom):
    w = dom.root.first(lambda n: n.attrs.get("id") == "window")
    if w is None:
        raise RuntimeError("no #window on the page")
    since = w.attrs["data-since"]
    last = datetime.date.fromisoformat(w.attrs["data-until"])
    until = (last + datetime.timedelta(days=1)).isoformat()
    return since, until, int(w.attrs["data-days"])


def expected_domains(c, token):
    st, _, doc = c.json("/v1/domains", token)
    if st != 200:
        raise RuntimeError("/v1/domains: %s %r" % (st, doc))
    rows = sorted(doc["data"], key=lambda d: (-d["messages"],
                                              d["domain"].encode()))
    return [d["domain"] for d in rows], len(rows)


def compare_page(c, token, dom, what):
    """Every number of the page against the JSON API: problems."""
    problems = []
    since, until, days = page_window(dom)
    names, total = expected_domains(c, token)
    want = names[:MAX_DOMAINS]
    rows = dom.root.all(lambda n: n.tag == "tr" and "data-domain" in
                        n.attrs)
    got = [r.attrs["data-domain"] for r in rows]
    if got != want:
        problems.append("%s: domains %r, want %r" % (what, got, want))
    cut = dom.root.first(lambda n: n.attrs.get("id") == "cut")
    if total > MAX_DOMAINS:
        if cut is None or "%d domains with the most messages of %d" % (
                MAX_DOMAINS, total) not in cut.text():
            problems.append("%s: no note that %d of %d domains are shown"
                            % (what, MAX_DOMAINS, total))
    elif cut is not None:
        problems.append("%s: a cut note with %d domains" % (what, total))
    sections = {s.attrs["data-domain"]: s for s in dom.root.all(
        lambda n: n.tag == "section" and has_class(n, "domain"))}
    compared = 0
    for row in rows:
        d = row.attrs["data-domain"]
        if k(row, "domain") != d:
            problems.append("%s: link text %r for %r" % (what, k(row,
                                                                 "domain"),
                                                         d))
        q = urllib.parse.quote(d, safe="")
        st1, _, summ = c.json("/v1/domains/%s/summary?since=%s&until=%s"
                              % (q, since, until), token)
        st2, _, srcs = c.json("/v1/domains/%s/sources?since=%s&until=%s"
                              % (q, since, until), token)
        st3, _, rdy = c.json("/v1/domains/%s/readiness?days=%d&until=%s"
                             % (q, days, until), token)
        if d == DOMAIN_EVIL:
            # The API refuses the name in a path (400): only escaping is
            # checked for it (below).
            if st1 != 400:
                problems.append("%s: the API answers %s for %r" % (
                    what, st1, d))
            continue
        if (st1, st2, st3) != (200, 200, 200):
            problems.append("%s: %s: API %s %s %s" % (what, d, st1, st2,
                                                      st3))
            continue
        summ, srcs, rdy = summ["data"], srcs["data"], rdy["data"]
        compared += 1
        want_cells = {
            "messages": str(summ["messages"]),
            "dmarc_pass_share": pct(summ.get("dmarc_pass_share")),
            "aligned_share": pct(rdy["legitimate"].get("share")),
            "verdict": rdy["verdict"]["status"].replace("_", " "),
            "policy": rdy.get("current") or "",
        }
        for key, value in want_cells.items():
            if k(row, key) != value:
                problems.append("%s: %s %s: page %r, API %r" % (
                    what, d, key, k(row, key), value))
        sec = sections.get(d)
        if sec is None:
            problems.append("%s: no section for %s" % (what, d))
            continue
        if k(sec, "advice") != rdy["verdict"]["advice"]:
            problems.append("%s: %s advice %r, API %r" % (
                what, d, k(sec, "advice"), rdy["verdict"]["advice"]))
        if k(sec, "verdict") != want_cells["verdict"]:
            problems.append("%s: %s section verdict %r" % (
                what, d, k(sec, "verdict")))
        if rdy["verdict"].get("next") is not None and \
                k(sec, "next") != rdy["verdict"]["next"]:
            problems.append("%s: %s next %r, API %r" % (
                what, d, k(sec, "next"), rdy["verdict"]["next"]))
        problems += compare_senders(what, d, sec, summ, srcs)
        problems += compare_chart(what, d, sec, rdy)
    if compared == 0:
        problems.append("%s: no domain compared" % what)
    return problems


def compare_senders(what, d, sec, summ, srcs):
    problems = []
    for cls in CLASSES:
        mine = top_senders(srcs, cls)
        head = sec.first(lambda n: n.tag == "h4" and
                         n.attrs.get("data-class") == cls)
        want_head = "%s: %d sender%s, %d messages" % (
            cls.capitalize(), len(mine), "" if len(mine) == 1 else "s",
            summ["classes"][cls]["messages"])
        if head is None or head.text() != want_head:
            problems.append("%s: %s %s heading %r, want %r" % (
                what, d, cls, head and head.text(), want_head))
        if summ["classes"][cls]["senders"] != len(mine):
            problems.append("%s: %s %s: summary says %d senders, sources "
                            "%d" % (what, d, cls,
                                    summ["classes"][cls]["senders"],
                                    len(mine)))
        table = sec.first(lambda n: n.tag == "table" and
                          n.attrs.get("data-class") == cls)
        rows = [] if table is None else table.all(
            lambda n: n.tag == "tr" and n.first(
                lambda m: m.attrs.get("data-k") == "sender") is not None)
        got = [(k(r, "sender"), k(r, "platform"), k(r, "messages"),
                k(r, "dmarc_pass"), k(r, "failing"), k(r, "from"))
               for r in rows]
        want = [(s["sender"], s.get("platform") or "", str(s["messages"]),
                 str(s["dmarc_pass"]), str(s["failing"]),
                 from_text(s.get("header_from") or []))
                for s in mine[:MAX_SENDERS]]
        if got != want:
            problems.append("%s: %s %s senders %r, want %r" % (
                what, d, cls, got, want))
        note = "The %d largest of %d senders." % (MAX_SENDERS, len(mine))
        if len(mine) > MAX_SENDERS and (table is None or note not in
                                        sec.text()):
            problems.append("%s: %s %s: no note %r" % (what, d, cls, note))
    return problems


def compare_chart(what, d, sec, rdy):
    problems = []
    svg = sec.first(lambda n: n.tag == "svg")
    if svg is None:
        return ["%s: %s: no chart" % (what, d)]
    if svg.attrs.get("role") != "img":
        problems.append("%s: %s chart without role=img" % (what, d))
    labels = (svg.attrs.get("aria-labelledby") or "").split()
    ids = {n.attrs.get("id"): n for n in svg.all(lambda n: True)}
    title = svg.own_text("title")
    desc = svg.own_text("desc")
    if len(labels) != 2 or any(x not in ids for x in labels) or \
            not title or d not in title or not desc:
        problems.append("%s: %s chart title/desc/aria %r %r %r" % (
            what, d, labels, title, desc))
    for label in ("0%", "100%", "Day (UTC)", "Aligned share"):
        if svg.first(lambda n: n.tag == "text" and n.text() == label) \
                is None:
            problems.append("%s: %s chart has no %r label" % (what, d,
                                                              label))
    y0 = svg.first(lambda n: n.tag == "text" and n.text() == "0%")
    y100 = svg.first(lambda n: n.tag == "text" and n.text() == "100%")
    plot_h = float(y0.attrs["y"]) - float(y100.attrs["y"]) if y0 and \
        y100 else None
    want = {t["day"]: "%.4f" % t["share"] for t in rdy["trend"]
            if t.get("share") is not None and t["legitimate"] > 0}
    bars = svg.all(lambda n: n.tag == "rect" and has_class(n, "bar"))
    got = {b.attrs["data-day"]: b.attrs["data-share"] for b in bars}
    if got != want or len(bars) != len(want):
        problems.append("%s: %s bars %r, trend %r" % (what, d, got, want))
    bases = set()
    for b in bars:
        height = float(b.attrs["height"])
        bases.add(round(float(b.attrs["y"]) + height, 1))
        share = float(b.attrs["data-share"])
        if plot_h is None or abs(height - share * plot_h) > 0.05:
            problems.append("%s: %s bar %s: height %s for share %s "
                            "(plot %s)" % (what, d, b.attrs["data-day"],
                                           height, share, plot_h))
        t = b.own_text("title") or ""
        if not t.startswith(b.attrs["data-day"] + ": " + pct(share)):
            problems.append("%s: %s bar title %r" % (what, d, t))
    if len(bases) > 1:
        problems.append("%s: %s bars on different baselines %r" % (
            what, d, bases))
    return problems


# ---- HTTP helpers ------------------------------------------------------

def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


def page(c, path="/", headers=None, method="GET"):
    st, hd, body = c.request(path, headers=headers, method=method)
    return st, hd, body.decode("utf-8", "replace")


def metric(c, token, name):
    st, _, body = c.request("/metrics", token)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# ---- PNG ---------------------------------------------------------------

def png_pixels(data):
    """(width, height, set of RGB colours) of an 8-bit RGB/RGBA PNG;
    raises ValueError when it is not one."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(kind + body) & 0xffffffff != crc:
            raise ValueError("bad CRC in %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or not idat:
        raise ValueError("no IHDR or IDAT")
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        raise ValueError("not 8-bit RGB(A), non-interlaced: %r" % (ihdr,))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ValueError("IDAT holds %d bytes, want %d" % (
            len(raw), height * (stride + 1)))
    prev = bytearray(stride)
    colours = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xff
            elif f != 0:
                raise ValueError("filter type %d" % f)
        for i in range(0, stride, bpp):
            colours.add(bytes(line[i:i + 3]))
        prev = line
    return width, height, colours


def chromium_checks(tap, env, c, port, admin):
    exe = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) \
        else shutil.which("chromium")
    if exe is None:
        tap.skip("headless Chromium: screenshot and DOM", "no chromium")
        return
    shots = tempfile.mkdtemp(prefix="status_page.")
    shot = os.path.join(shots, "status.png")
    url = "http://status:%s@127.0.0.1:%d/" % (admin, port)
    base = [exe, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=" + os.path.join(shots, "profile")]
    r = h.run(base + ["--window-size=1280,2000", "--screenshot=" + shot,
                      url], timeout=120, binary=True)
    problems = []
    tap.note("screenshot: %s" % shot)
    try:
        with open(shot, "rb") as f:
            width, height, colours = png_pixels(f.read())
        if (width, height) != (1280, 2000):
            problems.append("screenshot %dx%d, want 1280x2000" % (
                width, height))
        if len(colours) < 3:
            problems.append("the screenshot has %d colour(s): blank"
                            % len(colours))
        if not any(bytes(col) in colours for col in BAR_COLOURS):
            problems.append("no pixel of a chart bar's colour: the chart "
                            "did not render")
    except (OSError, ValueError) as e:
        problems.append("screenshot: %s (chromium exit %s: %s)" % (
            e, r.rc, r.err[-500:].decode("utf-8", "replace")))
    tap.check("Chromium: the screenshot is a PNG of 1280x2000, not blank, "
              "with the chart's bars", problems)
    r = h.run(base + ["--dump-dom", url], timeout=120)
    problems = []
    if r.rc != 0 or "dmarcd status" not in r.out:
        problems.append("dump-dom: " + r.describe()[-1500:])
    else:
        problems = compare_page(c, admin, Dom(r.out), "chromium")
        if "<script" in r.out.lower():
            problems.append("a script element in the browser's DOM")
    shutil.rmtree(os.path.join(shots, "profile"), True)
    tap.check("Chromium: the DOM the browser built shows the API's numbers "
              "(domains, shares, verdicts, senders, bars)", problems[:10])


# ---- the test ----------------------------------------------------------

def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.psql("CREATE ROLE %s LOGIN IN ROLE dmarcd_reader" % api.READER)
    if r.rc != 0:
        raise RuntimeError(r.describe())
    now = datetime.datetime.now(datetime.timezone.utc)
    today = int(datetime.datetime(now.year, now.month, now.day,
                                  tzinfo=datetime.timezone.utc).timestamp())
    mine = os.path.join(env.work, "reports")
    write_reports(mine, today)
    for path in (env.samples, mine):
        r = db.dmarcd("ingest", "--quiet", path)
        if r.rc != 0:
            raise RuntimeError(r.describe())
    # What dmarcd resolve would store for a forward-confirmed PTR.
    r = db.psql("INSERT INTO dmarcd.ip_names (ip, ptr, names, confirmed, "
                "org, status, expires_at) VALUES ('203.0.113.5', "
                "'mx.' || $t$%s$t$, ARRAY['mx.' || $t$%s$t$], true, "
                "$t$%s$t$, 'ok', now() + interval '1 day')"
                % (PTR_ORG, PTR_ORG, PTR_ORG))
    if r.rc != 0:
        raise RuntimeError(r.describe())
    tokens = {}
    for name, args in (("admin", []), ("com", ["--domain", "example.com"]),
                       ("revoked", [])):
        r = db.dmarcd("token", "add", name, *args)
        if r.rc != 0:
            raise RuntimeError(r.describe())
        tokens[name] = r.out.strip()
    db.dmarcd("token", "revoke", "revoked")
    admin = tokens["admin"]

    config = os.path.join(env.work, "api.conf")
    with open(config, "w") as f:
        f.write("[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n"
                "answer_cache = 3600\n" % cluster.conninfo_for(
                    db.name, user=api.READER))
    srv = api.Server(env, config)
    c = api.Client(srv.port)

    # -- authentication
    st, hd, body = page(c)
    tap.check("/ without credentials: 401, WWW-Authenticate: Basic "
              "realm=\"dmarcd\", an HTML page that tells nothing",
              [] if st == 401 and hd.get("www-authenticate", "")
              .startswith("Basic realm=\"dmarcd\"") and
              hd.get("content-type", "").startswith("text/html") and
              "example.com" not in body and "status.example" not in body
              else [repr((st, hd, body[:300]))])
    problems = []
    for what, hdrs in (
            ("an unknown token", basic("admin", "dmarcd_" + "A" * 43)),
            ("a revoked token", basic("x", tokens["revoked"])),
            ("no password", {"Authorization": "Basic " + base64.b64encode(
                b"justauser").decode()}),
            ("not base64", {"Authorization": "Basic !!!%%%"}),
            ("an empty password", basic("x", "")),
            ("a huge header", {"Authorization": "Basic " + "QUFB" * 2000}),
            ("a NUL in it", {"Authorization": "Basic " + base64.b64encode(
                b"x:dmarcd_\x00abc").decode()}),
            ("an unknown bearer", {"Authorization": "Bearer nope"})):
        st, hd, body = page(c, headers=hdrs)
        if st != 401 or "status.example" in body:
            problems.append("%s: %s %r" % (what, st, body[:200]))
    tap.check("/ with wrong, revoked or malformed credentials: 401",
              problems)
    st_basic, hd, body = page(c, headers=basic("anyone", admin))
    st_bearer, _, body2 = page(c, headers={"Authorization":
                                           "Bearer " + admin})
    tap.check("/ with the token as the Basic password (any user) or as a "
              "bearer token: 200",
              [] if st_basic == 200 and st_bearer == 200 and
              "status.example" in body and "status.example" in body2 else
              [repr((st_basic, st_bearer, body[:300]))])
    got = c.json("/v1/domains", None, headers=basic("x", admin))
    tap.check("the JSON API is unchanged: Basic is no token there (401)",
              [] if got[0] == 401 and api.error_code(got[2]) == "no_token"
              else [repr(got)])

    # -- headers
    problems = []
    if hd.get("content-type") != "text/html; charset=utf-8":
        problems.append("content-type %r" % hd.get("content-type"))
    csp = hd.get("content-security-policy", "")
    directives = dict((d.strip().split(" ", 1) + [""])[:2]
                      for d in csp.split(";") if d.strip())
    m = re.search(r"<style>(.*?)</style>", body, re.S)
    want_hash = "'sha256-%s'" % base64.b64encode(hashlib.sha256(
        m.group(1).encode()).digest()).decode() if m else None
    if directives.get("default-src") != "'none'":
        problems.append("CSP default-src: %r" % csp)
    if directives.get("style-src") not in (want_hash, "'unsafe-inline'"):
        problems.append("CSP style-src %r, the style element's hash is %s"
                        % (directives.get("style-src"), want_hash))
    if directives.get("img-src") not in (None, "data:"):
        problems.append("CSP img-src %r" % directives.get("img-src"))
    if "script-src" in directives or re.search(r"<script", body, re.I):
        problems.append("a script is allowed or present")
    if hd.get("x-content-type-options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if "no-store" not in hd.get("cache-control", ""):
        problems.append("cacheable: %r" % hd.get("cache-control"))
    if re.search(r"(src|href)=\"(https?:)?//", body):
        problems.append("an external asset")
    tap.check("headers: text/html; charset=utf-8, CSP default-src 'none' "
              "with the style's hash, nosniff, no-store; no script, no "
              "external asset", problems)
    st, hd2, hbody = page(c, headers=basic("x", admin), method="HEAD")
    tap.check("HEAD /: 200, the same type, no body",
              [] if st == 200 and hbody == "" and
              hd2.get("content-type") == hd.get("content-type") else
              [repr((st, hd2, hbody[:100]))])

    # -- the numbers, in the default window and in the samples' January
    dom = Dom(body)
    problems = compare_page(c, admin, dom, "default window")
    since, until, days = page_window(dom)
    # Today as the page was made: the day the test started, or the next
    # one if UTC midnight passed since.
    start_day = datetime.datetime.fromtimestamp(
        today, datetime.timezone.utc).date()
    want = {start_day.isoformat(),
            (start_day + datetime.timedelta(days=1)).isoformat()}
    want_until = start_day.isoformat()
    if days != 30 or until not in want:
        problems.append("window %s..%s, %d days; want 30 days until %s" % (
            since, until, days, want_until))
    tap.check("default window (30 days before today): every domain's "
              "numbers, verdict, advice, top senders and bars equal the "
              "JSON API's", problems[:10])
    st, _, jan = page(c, "/?days=30&until=2026-01-10",
                      headers=basic("x", admin))
    problems = [] if st == 200 else ["status %s" % st]
    if st == 200:
        problems += compare_page(c, admin, Dom(jan), "January")
        shown = [k(r, "messages") for r in Dom(jan).root.all(
            lambda n: n.tag == "tr" and n.attrs.get("data-domain") in
            ("example.com", "example.net", "example.org"))]
        if len(shown) != 3 or "0" in shown:
            problems.append("the samples' messages are not on the page: "
                            "%r" % shown)
    tap.check("the samples' window (?days=30&until=2026-01-10): the same",
              problems[:10])

    # -- hostile names
    problems = []
    for evil in (PTR_ORG, DKIM_EVIL, FROM_EVIL, DOMAIN_EVIL):
        if evil in body:
            problems.append("%r appears unescaped" % evil)
    for tag in ("<script", "<img", "<b>"):
        if tag in body.lower():
            problems.append("markup %r in the page" % tag)
    texts = [n.text() for n in dom.root.all(
        lambda n: n.attrs.get("data-k") in ("sender", "from", "domain"))]
    # (The DKIM d= is dropped by the parser, not a domain name: shown
    # nowhere.)
    for evil in (PTR_ORG, FROM_EVIL, DOMAIN_EVIL):
        if not any(evil in t for t in texts):
            problems.append("%r is not shown as text" % evil)
    if "&lt;script&gt;alert(1)&lt;/script&gt;.example" not in body:
        problems.append("the PTR name is not escaped as &lt;script&gt;")
    tap.check("hostile PTR, From and domain names: escaped, shown as the "
              "text they are", problems)

    # -- a token for one domain
    st, _, com = page(c, headers=basic("x", tokens["com"]))
    rows = [r.attrs["data-domain"] for r in Dom(com).root.all(
        lambda n: n.tag == "tr" and "data-domain" in n.attrs)]
    tap.check("a token for example.com: only example.com on the page",
              [] if st == 200 and rows == ["example.com"] and
              "status.example" not in com else [repr((st, rows))])

    # -- kept answers: the second load asks PostgreSQL nothing new
    hits0 = metric(c, admin, "dmarcd_api_answers_total{result=\"hit\"}")
    misses0 = metric(c, admin, "dmarcd_api_answers_total{result=\"miss\"}")
    page(c, headers=basic("x", admin))
    hits1 = metric(c, admin, "dmarcd_api_answers_total{result=\"hit\"}")
    misses1 = metric(c, admin, "dmarcd_api_answers_total{result=\"miss\"}")
    tap.check("a second load is served from the kept answers (hits, no "
              "miss)",
              [] if None not in (hits0, hits1, misses0, misses1) and
              hits1 >= hits0 + 3 * MAX_DOMAINS and misses1 == misses0 else
              ["hits %r -> %r, misses %r -> %r" % (hits0, hits1, misses0,
                                                   misses1)])

    # -- bad requests
    problems = []
    for q in ("days=0", "days=367", "days=x", "until=garbage",
              "days=%00", "until=" + "9" * 300):
        st, hd, b = page(c, "/?" + q, headers=basic("x", admin))
        if st != 400 or not hd.get("content-type", "").startswith(
                "text/html") or "content-security-policy" not in hd:
            problems.append("%s: %s %r" % (q, st, b[:200]))
    st, hd, b = page(c, headers=basic("x", admin), method="POST")
    if st != 405 or "GET" not in hd.get("allow", ""):
        problems.append("POST: %s %r" % (st, hd))
    st, _, b = page(c, "/?days=1", headers=basic("x", admin))
    if st != 200:
        problems.append("days=1: %s" % st)
    tap.check("bad days/until: 400 HTML pages; POST 405; days=1 fine",
              problems)

    log = srv.log()
    tap.check("no token in the server's output",
              [] if not any(t in log for t in tokens.values()) else
              ["a token in: " + log[-500:]])

    chromium_checks(tap, env, c, srv.port, admin)
    srv.kill()

    # -- status_public
    public = os.path.join(env.work, "public.conf")
    with open(public, "w") as f:
        f.write("[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n"
                "status_public = true\n" % cluster.conninfo_for(
                    db.name, user=api.READER))
    srv = api.Server(env, public)
    c = api.Client(srv.port)
    st, hd, body = page(c)
    got = c.json("/v1/domains")
    tap.check("[api] status_public = true: / without a token (every "
              "domain), the JSON API still 401",
              [] if st == 200 and "status.example" in body and
              "example.com" in body and got[0] == 401 else
              [repr((st, body[:200], got[:1]))])
    problems = []
    for path, want in (("/?days=90", 200), ("/?days=365", 200),
                       ("/?days=12", 400), ("/?days=366", 400),
                       ("/?days=30&until=2026-01-10", 400)):
        st, hd, body = page(c, path)
        if st != want:
            problems.append("%s: %s, not %s" % (path, st, want))
    tap.check("public page: only the windows it links to, up to today "
              "(anonymous clients cannot ask for any window)", problems)
    srv.kill()


if __name__ == "__main__":
    h.run_main(main)
