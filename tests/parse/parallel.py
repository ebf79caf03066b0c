#!/usr/bin/env python3
"""
parallel.py - `dmarcd parse` with worker threads gives the serial output.

Prints TAP. Exit 0 when every test point passed, 1 otherwise.

Why: once the first <record> under <feedback> has closed, dmarcd cuts the
following bytes at </record> into chunks of about --chunk bytes, parses
them with --threads worker threads and commits them in order. A worker
gives a chunk back (and the main parser reads that chunk and everything
after it itself) when the chunk holds anything but plain records: bytes
outside printable ASCII/TAB/LF/CR, a comment, CDATA, a processing
instruction, an XML error, a rejection, a limit, another element beside
the records. The promise is that none of this shows: stdout and the exit
status are byte for byte those of a serial parse (--threads 1), for every
input and every chunk size. Line numbers and columns in warnings and
errors, record indexes, totals and rejections must all come out the same.

What is checked
---------------
1. Equivalence, one test point per input: `--format ndjson` and
   `--format summary` with --threads 1, then with --threads 2 and --chunk
   1, 150 and 4096 (and --threads 3 --chunk 1 for the reports built here,
   and the default chunk size for those over 1 MB): the same exit status
   and byte-identical stdout. Inputs:
   * reports built here, in a temporary directory: a valid RFC 7489
     report of 60 varied records, and variants of it with each reason to
     fall back placed in the middle of the records (after record 30, or in
     record 40); namespace and layout variants (prefixed elements, the
     DMARCbis namespace, xsi attributes, CRLF, CR, one line, `</record >`,
     record attributes); limits (150 <dkim> results, text over 64 KiB, a
     count sum past 2^63-1, a record over 1 MiB); a wrapper root; truncated
     documents; warnings repeated in every record or distinct in each;
     gzip and zip containers; 1500 records;
   * every tests/data/adversarial/*.xml and contrib/samples/* file;
   * every file of the shared corpus's INDEX.csv when ../shared/corpus (or
     $DMARCD_SHARED_DIR/corpus) is present; skipped otherwise. The files
     INDEX gives fewer than two records (no chunk can be made: most of the
     corpus) go in one invocation per format and variant, every process
     start costing more than such a parse; the exit statuses are compared
     for the whole and each file's lines on their own (the summary has
     its "errors", which decide a file's exit status).
2. The parallel path is really taken, or the equivalence above would prove
   nothing: for the reports built here, `--verbose --threads 2 --chunk 1`
   prints "note: N chunks of records parsed by worker threads" on stderr.
   With --chunk 1 every record after the first is a chunk of its own, so:
   * a report that needs no fallback ("full"): N >= records - 2;
   * a fallback after record K (the first K records are plain): the
     chunks before it are parallel, none after: 0 < N <= K - 1, and N is
     below the clean report's count;
   * a report where no parallel parse can happen ("none": a wrapper root,
     a refused DOCTYPE): no note at all.

The runs of one input go concurrently (each is mostly process start-up).

Environment: top_srcdir, top_builddir, DMARCD, DMARCD_SHARED_DIR.
Python 3 standard library only.
"""

import concurrent.futures
import csv
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile

from parse_harness import TIMEOUT, Tap, locate, run_parse

SERIAL = ["--threads", "1"]
PARALLEL = [["--threads", "2", "--chunk", "1"],
            ["--threads", "2", "--chunk", "150"],
            ["--threads", "2", "--chunk", "4096"]]
PARALLEL_BUILT = PARALLEL + [["--threads", "3", "--chunk", "1"]]
# big reports: the default chunk size too
PARALLEL_BIG = PARALLEL_BUILT + [["--threads", "2"]]
FORMATS = ["ndjson", "summary"]
NOTE_RE = re.compile(r"note: (\d+) chunks of records parsed by worker "
                     r"threads")
JOBS = max(2, min(8, os.cpu_count() or 2))

NS_BIS = "urn:ietf:params:xml:ns:dmarc-2.0"
RECORDS = 60
MIDDLE = 30     # fallbacks go right after this record ...
BAD = 40        # ... or into this one


# --------------------------------------------------------------------------
# Running dmarcd

class RawRun:
    """One `dmarcd parse` run: its exit status and raw output."""

    def __init__(self, dmarcd, args, cwd):
        self.args = args
        proc = run_parse(dmarcd, args, cwd)
        if proc is None:
            self.rc, self.stdout, self.stderr = None, b"", ""
            return
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr.decode("utf-8", "replace")

    def trouble(self):
        """A hang or a crash, else None."""
        if self.rc is None:
            return "no exit within %d s (hang)" % TIMEOUT
        if self.rc < 0:
            return "killed by signal %d (crash)" % -self.rc
        return None


def run_all(pool, dmarcd, cwd, arg_lists):
    """RawRuns of every argument list, concurrently, in order."""
    futures = [pool.submit(RawRun, dmarcd, args, cwd) for args in arg_lists]
    return [f.result() for f in futures]


def first_difference(want, got):
    """(where the first difference of two outputs is, the two lines shown
    around its byte)."""
    a, b = want.split(b"\n"), got.split(b"\n")
    for number, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            col = next((i for i, (c, d) in enumerate(zip(x, y)) if c != d),
                       min(len(x), len(y)))
            start = max(0, col - 80)
            return ("line %d, byte %d" % (number, col),
                    ["    serial:   %r" % x[start:col + 120],
                     "    parallel: %r" % y[start:col + 120]])
    return ("%d lines serially, %d in parallel" % (len(a), len(b)), [])


READ_SO_FAR = re.compile(rb'"payload_bytes":[0-9]+,"sha256":null')


def unread(stdout):
    """payload_bytes of rejected reports (sha256 null) made '?'."""
    return READ_SO_FAR.sub(b'"payload_bytes":"?","sha256":null', stdout)


class Differences:
    """The variants that differ from the serial run; the lines that differ
    are shown for the first of them only."""

    def __init__(self):
        self.problems = []
        self.shown = False

    def compare(self, label, serial, run):
        """serial and run: (exit status, stdout) or a RawRun."""
        if isinstance(run, RawRun) and run.trouble():
            self.problems.append("%s: %s" % (label, run.trouble()))
            return
        want_rc, want = (serial.rc, serial.stdout) \
            if isinstance(serial, RawRun) else serial
        rc, got = (run.rc, run.stdout) if isinstance(run, RawRun) else run
        # How far a rejected report was read before its parse stopped
        # depends on buffering (docs/parse-output.md): not compared.
        want, got = unread(want), unread(got)
        if rc != want_rc:
            self.problems.append("%s: exit %s, serially %s"
                                 % (label, rc, want_rc))
        elif got != want:
            where, lines = first_difference(want, got)
            self.problems.append("%s: stdout differs from --threads 1 at %s"
                                 % (label, where))
            if not self.shown:
                self.problems.extend(lines)
                self.shown = True


def check_equivalence(pool, dmarcd, cwd, name, variants):
    """Problems: a parallel variant whose exit status or stdout differs
    from the serial parse's, in either format."""
    arg_lists = [["--format", fmt] + args + [name]
                 for fmt in FORMATS for args in [SERIAL] + variants]
    runs = iter(run_all(pool, dmarcd, cwd, arg_lists))
    diff = Differences()
    for fmt in FORMATS:
        serial = next(runs)
        parallel = [next(runs) for _ in variants]
        if serial.trouble():
            diff.problems.append("--format %s %s: %s"
                                 % (fmt, " ".join(SERIAL), serial.trouble()))
            continue
        for variant, run in zip(variants, parallel):
            diff.compare("--format %s %s" % (fmt, " ".join(variant)),
                         serial, run)
    return diff.problems


def split_by_file(fmt, stdout, paths):
    """A batch run's stdout, {path: its lines}: the summary has one line
    per input in order, ndjson lines name their file."""
    lines = [line for line in stdout.split(b"\n") if line]
    if fmt == "summary":
        if len(lines) != len(paths):
            return None
        return {p: line + b"\n" for p, line in zip(paths, lines)}
    by_file = {p: b"" for p in paths}
    for line in lines:
        try:
            path = json.loads(line.decode("utf-8")).get("file")
        except (ValueError, AttributeError):
            return None
        if path not in by_file:
            return None
        by_file[path] += line + b"\n"
    return by_file


def check_batch(pool, dmarcd, cwd, paths, variants):
    """All paths in one invocation per format and variant. Returns the
    problems of the invocations themselves (exit status, crash, output
    that cannot be split) and {path: problems} from comparing each
    file's lines."""
    arg_lists = [["--format", fmt] + args + paths
                 for fmt in FORMATS for args in [SERIAL] + variants]
    runs = iter(run_all(pool, dmarcd, cwd, arg_lists))
    batch = Differences()
    per_file = {p: Differences() for p in paths}
    for fmt in FORMATS:
        serial = next(runs)
        parallel = [next(runs) for _ in variants]
        label = "--format %s %s" % (fmt, " ".join(SERIAL))
        want = None if serial.trouble() else \
            split_by_file(fmt, serial.stdout, paths)
        if want is None:
            batch.problems.append("%s: %s" % (label, serial.trouble() or
                                              "stdout not split by file"))
            continue
        for variant, run in zip(variants, parallel):
            label = "--format %s %s" % (fmt, " ".join(variant))
            got = None if run.trouble() else \
                split_by_file(fmt, run.stdout, paths)
            if got is None:
                batch.problems.append("%s: %s" % (label, run.trouble() or
                                                  "stdout not split by file"))
                continue
            batch.compare(label, (serial.rc, b""), (run.rc, b""))
            for p in paths:
                per_file[p].compare(label, (0, want[p]), (0, got[p]))
    return batch.problems, {p: d.problems for p, d in per_file.items()}


def parallel_chunks(dmarcd, cwd, name, variant):
    """(the note's chunk count or None when there is none, a problem with
    the run or None)."""
    run = RawRun(dmarcd, ["--verbose", "--format", "summary"] + variant +
                 [name], cwd)
    if run.trouble():
        return None, run.trouble()
    counts = [int(m.group(1)) for m in NOTE_RE.finditer(run.stderr)]
    if len(counts) > 1:
        return None, "%d notes on stderr" % len(counts)
    return (counts[0] if counts else None), None


def check_chunks(got, expect, clean_count, records_total):
    """Problems with the note's count against the expectation."""
    if expect == "none":
        return [] if got is None else \
            ["%d chunks parsed by workers, expected none" % got]
    if got is None:
        return ["no note: nothing was parsed by worker threads"]
    if expect == "full":
        want = records_total - 2
        return [] if got >= want else \
            ["%d chunks, expected at least %d (records - 2)" % (got, want)]
    problems = []
    if not 0 < got <= expect - 1:
        problems.append("%d chunks, expected 1..%d: the fallback comes "
                        "after record %d" % (got, expect - 1, expect))
    if clean_count is not None and records_total <= RECORDS and \
            got >= clean_count:
        problems.append("%d chunks, not fewer than the clean report's %d"
                        % (got, clean_count))
    return problems


# --------------------------------------------------------------------------
# The reports built here

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
{root}
  <version>1.0</version>
"""

METADATA = """  <report_metadata>
    <org_name>example.net</org_name>
    <email>dmarc-reports@example.net</email>
    <extra_contact_info>https://example.net/dmarc</extra_contact_info>
    <report_id>parallel-1767225600</report_id>
    <date_range>
      <begin>1767225600</begin>
      <end>1767311999</end>
    </date_range>{generator}
  </report_metadata>
"""

POLICY = """  <policy_published>
    <domain>example.com</domain>
    <adkim>r</adkim>
    <aspf>s</aspf>
    <p>reject</p>
    <sp>quarantine</sp>
    <pct>100</pct>
    <fo>1</fo>
  </policy_published>
"""

POLICY_BIS = """  <policy_published>
    <domain>example.com</domain>
    <p>reject</p>
    <sp>quarantine</sp>
    <np>reject</np>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <discovery_method>treewalk</discovery_method>
    <testing>n</testing>
  </policy_published>
"""

BIS_ROOT = '<feedback xmlns="%s">' % NS_BIS


def dkim_result(domain, selector, result, human=None):
    return ("        <dkim>\n          <domain>%s</domain>\n"
            "          <selector>%s</selector>\n"
            "          <result>%s</result>\n%s        </dkim>\n"
            % (domain, selector, result,
               "          <human_result>%s</human_result>\n" % human
               if human else ""))


def spf_result(domain, result):
    return ("        <spf>\n          <domain>%s</domain>\n"
            "          <scope>mfrom</scope>\n"
            "          <result>%s</result>\n        </spf>\n"
            % (domain, result))


def reason(kind, comment=None):
    comment = "" if comment is None else \
        "          <comment>%s</comment>\n" % comment
    return ("        <reason>\n          <type>%s</type>\n%s"
            "        </reason>\n" % (kind, comment))


def count_of(i):
    """The count record(i) has."""
    return 10000 + i if i % 10 == 0 else (i * 37) % 97 + 1


def record(i, bis=False, comment=None, dkim_results=None, verdict=None):
    """Record i (1-based), varied by i: IPv4 or IPv6, count, verdicts,
    reasons, identifiers, one or two DKIM results. comment: a reason with
    that comment; dkim_results: that many DKIM results; verdict: the DKIM
    verdict and result, as written."""
    ip = "2001:db8:%x::%x" % (i, i * 7) if i % 3 == 0 \
        else "198.51.100.%d" % (i % 250 + 1)
    disposition = ("pass" if bis else "none") if i % 2 else \
        ["quarantine", "reject", "none"][i % 3]
    dkim = verdict or ("pass" if i % 2 else "fail")
    reasons = ""
    if comment is not None or i % 4 == 0:
        reasons += reason("local_policy" if bis else "forwarded",
                          "list %d" % i if comment is None else comment)
    if i % 7 == 0:
        reasons += reason("mailing_list")
    sender = "news.example.com" if i % 2 else "example.com"
    ids = "      <envelope_to>example.org</envelope_to>\n" if i % 9 == 0 \
        else ""
    if i % 6 or bis:
        ids += "      <envelope_from>%s</envelope_from>\n" % sender
    ids += "      <header_from>%s</header_from>\n" % sender
    human = "body hash did not verify" if bis and dkim != "pass" else None
    if dkim_results is not None:
        auth = "".join(dkim_result("d%d.example.com" % k, "sel%d" % k,
                                   "pass" if k % 2 else "fail")
                       for k in range(dkim_results))
    else:
        auth = dkim_result(sender, "s%d" % (i % 3), dkim, human)
        if i % 4 == 1:
            auth += dkim_result("esp.example.net", "k1", "fail", human)
    auth += spf_result(sender, "pass" if i % 5 else "softfail")
    return ("  <record>\n    <row>\n      <source_ip>%s</source_ip>\n"
            "      <count>%d</count>\n      <policy_evaluated>\n"
            "        <disposition>%s</disposition>\n"
            "        <dkim>%s</dkim>\n        <spf>%s</spf>\n%s"
            "      </policy_evaluated>\n    </row>\n"
            "    <identifiers>\n%s    </identifiers>\n"
            "    <auth_results>\n%s    </auth_results>\n  </record>\n"
            % (ip, count_of(i), disposition, dkim,
               "pass" if i % 5 else "fail", reasons, ids, auth))


def records(n=RECORDS, **kwargs):
    return [record(i, **kwargs) for i in range(1, n + 1)]


def report(recs, root="<feedback>", bis=False, head=None, tail=""):
    """The document: declaration, root, version, head (metadata and
    policy), records, tail, end of the root (named after root)."""
    name = root[1:].split()[0].rstrip(">")
    if head is None:
        head = metadata(bis) + (POLICY_BIS if bis else POLICY)
    return (HEAD.format(root=root) + head + "".join(recs) + tail +
            "</%s>\n" % name)


def metadata(bis=False):
    return METADATA.format(generator="\n    <generator>parallel.py 1.0"
                           "</generator>" if bis else "")


def after(k, text, recs=None):
    """The report with text right after record k."""
    recs = list(recs or records())
    recs[k - 1] += text
    return report(recs)


def edit(k, old, new, recs=None):
    """The report with old replaced by new in record k (which has it)."""
    recs = list(recs or records())
    assert old in recs[k - 1], (k, old)
    recs[k - 1] = recs[k - 1].replace(old, new, 1)
    return report(recs)


def with_comment(k, comment):
    """The report with a reason of that comment in record k."""
    recs = records()
    recs[k - 1] = record(k, comment=comment)
    return report(recs)


def after_declaration(xml, text):
    """text right after the XML declaration's line."""
    declaration, rest = xml.split("\n", 1)
    return declaration + "\n" + text + rest


def prefixed(xml, prefix="d"):
    """Every element with the prefix, declared on the root."""
    xml = re.sub(r"<(/?)(?=[A-Za-z_])", r"<\1%s:" % prefix, xml)
    return xml.replace("<%s:feedback>" % prefix, '<%s:feedback xmlns:%s="%s">'
                       % (prefix, prefix, NS_BIS), 1)


def one_line(xml):
    return re.sub(r">\s+<", "><", xml)


def crlf(xml):
    return xml.replace("\n", "\r\n")


def cr(xml):
    return xml.replace("\n", "\r")


def mismatched():
    """Record 40 closes <count> with </cnt>: an XML error."""
    return edit(BAD, "</count>", "</cnt>")


def truncated(k=57):
    """The first k records, then half of the next: the end is lost."""
    recs = records()
    doc = report(recs[:k] + [recs[k][:len(recs[k]) // 2]])
    return doc[:doc.rindex("</feedback>")]


def record_ends(xml):
    """</record> with white space before '>', three ways in turn."""
    ends = iter([" >", "\n  >", "\t>"] * 1000)
    return re.sub(r"</record>", lambda m: "</record%s" % next(ends), xml)


def record_attributes(xml):
    numbers = iter(range(1, 10000))
    return re.sub(r"<record>", lambda m: '<record id="r%d" xml:lang="en">'
                  % next(numbers), xml)


def prefix_per_record():
    """Default namespace on the root; from record 31 on, each record
    declares a prefix of its own for the same namespace and uses it."""
    recs = records(bis=True)
    for k in range(MIDDLE, RECORDS):
        recs[k] = prefixed(recs[k], "r").replace(
            "<r:record>", '<r:record xmlns:r="%s">' % NS_BIS, 1)
    return report(recs, root=BIS_ROOT, bis=True)


def head_after_records(policy_too):
    """<report_metadata> (and <policy_published>) after the records."""
    head = metadata() + POLICY
    return report(records(), head="" if policy_too else POLICY,
                  tail=head if policy_too else metadata())


def long_text(k, n):
    """Record k with n newlines after </row>: text past the 64 KiB limit,
    a rejection."""
    return edit(k, "    </row>\n", "    </row>\n" + "\n" * n)


def huge_record():
    """A valid record of 1.1 MiB (white space in runs under the 64 KiB
    text limit, between unknown elements): more than 8 chunks and 1 MiB
    with no </record>, so the unsent bytes are drained and parsed
    serially."""
    run = "\n" * (60 * 1024)
    return edit(MIDDLE + 1, "    </row>\n",
                "    </row>\n" + "<x/>".join([run] * 19))


def distinct_warnings():
    """100 records, each with two unknown elements of its own: more
    distinct warnings than the list keeps."""
    return report([r.replace("    </row>\n", "    </row>\n    <vendor_%d/>\n"
                             "    <other_%d/>\n" % (i, i), 1)
                   for i, r in enumerate(records(100), 1)])


def many_results():
    """Record 31 with 40 reasons and 120 SPF results: past both caps."""
    recs = records()
    recs[MIDDLE] = recs[MIDDLE].replace(
        "    </auth_results>", spf_result("x.example", "pass") * 120 +
        "    </auth_results>", 1).replace(
        "      </policy_evaluated>", reason("other", "r") * 40 +
        "      </policy_evaluated>", 1)
    return report(recs)


def many_namespaces():
    """A root tag longer than the 4096 bytes kept for the workers."""
    return report(records(), root="<feedback %s>" % " ".join(
        'xmlns:p%d="urn:example:namespace:%d"' % (i, i) for i in range(200)))


# Each case: (name, document as text or bytes, expectation[, variants]).
# The expectation for the chunk count note: "full" (no fallback), K (a
# fallback after the first K records), "none" (no parallel parse), None
# (only the equivalence is checked).
def built_cases():
    clean = report(records())
    bis = report(records(bis=True), root=BIS_ROOT, bis=True)
    return [
        ("clean", clean, "full"),
        # what a worker gives back, after record 30 or in record 40
        ("comment-between", after(MIDDLE, "  <!-- between records -->\n"),
         MIDDLE),
        ("comment-fake-record-end",
         after(MIDDLE, "  <!-- not a boundary: </record> -->\n"), MIDDLE),
        ("cdata-in-comment",
         with_comment(MIDDLE + 1, "<![CDATA[a < b </record> & c]]>"),
         MIDDLE),
        ("pi-between", after(MIDDLE, '  <?dmarcd hint="x"?>\n'), MIDDLE),
        ("utf8-comment", with_comment(
            MIDDLE + 1, "r\u00e9exp\u00e9di\u00e9 \u2713 \U0001f600"),
         MIDDLE),
        ("invalid-utf8", with_comment(MIDDLE + 1, "caf\udce9 x"), MIDDLE),
        ("control-char", with_comment(MIDDLE + 1, "a\x01b"), MIDDLE),
        ("mismatched-tag", mismatched(), BAD - 1),
        ("no-count", edit(BAD, "<count>%d</count>" % count_of(BAD), ""),
         BAD - 1),
        ("negative-count", edit(BAD, "<count>%d</count>" % count_of(BAD),
                                "<count>-5</count>"), BAD - 1),
        ("count-sum-overflow", edit(55, "<count>%d</count>" % count_of(55),
                                    "<count>%d</count>" % (2 ** 63 - 1)),
         54),
        ("missing-record-end", edit(MIDDLE + 1, "  </record>\n", ""),
         MIDDLE),
        ("record-in-record", edit(MIDDLE + 1, "    </row>\n",
                                  "    <record>x</record>\n    </row>\n"),
         MIDDLE),
        ("empty-record-element", after(MIDDLE, "  <record/>\n"), MIDDLE),
        ("extension-between", after(
            MIDDLE, '  <extension><x:y xmlns:x="urn:x">v</x:y></extension>\n'),
         MIDDLE),
        ("record-in-extension-between", after(
            MIDDLE, "  <extension>\n%s  </extension>\n" % record(99)),
         MIDDLE),
        ("policy-between-records",
         report(records()[:MIDDLE], head=metadata(),
                tail=POLICY + "".join(records()[MIDDLE:])), MIDDLE),
        ("version-between", after(MIDDLE, "  <version>1.0</version>\n"),
         MIDDLE),
        ("second-feedback-between", after(MIDDLE, "  <feedback/>\n"),
         MIDDLE),
        ("unknown-element-between",
         after(MIDDLE, "  <vendor_stats><n>1</n></vendor_stats>\n"), MIDDLE),
        ("capitalised-Record-between",
         after(MIDDLE, "  <Record><row/></Record>\n"), MIDDLE),
        ("white-space-over-64k", long_text(MIDDLE + 1, 140000), MIDDLE),
        ("comment-over-64k", with_comment(MIDDLE + 1, "x" * 140000),
         MIDDLE),
        ("attribute-over-4k", edit(MIDDLE + 1, "<record>",
                                   '<record a="%s">' % ("z" * 5000)),
         MIDDLE),
        ("huge-record", huge_record(), MIDDLE, PARALLEL_BIG),
        # parallel all along
        ("prefixed", prefixed(clean), "full"),
        ("dmarc-2.0", bis, "full"),
        ("prefix-declared-per-record", prefix_per_record(), "full"),
        ("record-in-other-namespace",
         edit(MIDDLE + 1, "<record>", '<record xmlns="urn:other">'),
         "full"),
        ("dmarc-2.0-record-without-namespace", report(
            [r.replace("<record>", '<record xmlns="">') for r in
             records(bis=True)], root=BIS_ROOT, bis=True), "full"),
        ("xsi-schema-location", report(records(), root=(
            '<feedback xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            ' xsi:schemaLocation="http://dmarc.org/dmarc-xml/0.1 '
            'rua.xsd">')), "full"),
        ("namespace-with-ampersand",
         report(records(), root='<feedback xmlns="urn:dmarc:x&amp;y">'),
         "full"),
        ("record-end-white-space", record_ends(clean), "full"),
        ("prefixed-record-end-white-space", prefixed(record_ends(clean)),
         "full"),
        ("crlf", crlf(clean), "full"),
        ("cr", cr(clean), "full"),
        ("one-line", one_line(clean), "full"),
        ("bom", "\ufeff" + clean, "full"),
        ("record-attributes", record_attributes(clean), "full"),
        ("char-references", with_comment(
            MIDDLE + 1, "caf&#xE9; &amp; &lt;/record&gt; &#128512;"),
         "full"),
        ("upper-case-PASS-everywhere", report(records(verdict="PASS")),
         "full"),
        ("distinct-warnings-100-records", distinct_warnings(), "full"),
        ("dkim-150-results", report(
            [record(i, dkim_results=150 if i == MIDDLE + 1 else None)
             for i in range(1, RECORDS + 1)]), "full"),
        ("reasons-40-spf-120", many_results(), "full"),
        ("bad-source-ip", edit(MIDDLE + 1, "<source_ip>198.51.100.32<",
                               "<source_ip>999.1.1.1<"), "full"),
        ("record-in-extension-first", report(records(), head=(
            metadata() + POLICY + "  <extension>\n%s  </extension>\n"
            % record(99))), "full"),
        ("metadata-after-records", head_after_records(False), "full"),
        ("metadata-policy-after-records", head_after_records(True),
         "full"),
        ("text-in-feedback", after(MIDDLE, "  stray text\n"), None),
        ("record-after-root-end", clean + record(61), None),
        # errors after, or positions through, parallel chunks
        ("bad-end-tag", clean.replace("</feedback>", "</feedbak>"), "full"),
        ("truncated", truncated(), 57),
        ("crlf-mismatched-tag", crlf(mismatched()), BAD - 1),
        ("cr-mismatched-tag", cr(mismatched()), BAD - 1),
        ("one-line-mismatched-tag", one_line(mismatched()), BAD - 1),
        ("one-line-truncated", one_line(truncated()), 57),
        ("cr-truncated", cr(truncated()), 57),
        # no parallel parse, or not known to
        ("wrapper-root", after_declaration(clean, "<wrapper>\n") +
         "</wrapper>\n", "none"),
        ("internal-entity", after_declaration(
            with_comment(MIDDLE + 1, "&who;"),
            '<!DOCTYPE feedback [<!ENTITY who "list x">]>\n'), "none"),
        ("root-tag-over-4k", many_namespaces(), None),
        ("latin1-declared", clean.replace('encoding="UTF-8"',
                                          'encoding="ISO-8859-1"'), None),
        ("utf-16", clean.replace('encoding="UTF-8"', 'encoding="UTF-16"')
         .encode("utf-16"), None),
        # many chunks in flight, a fallback late
        ("1500-records", report(records(1500)), "full", PARALLEL_BIG),
        ("1500-records-comment-at-1400",
         after(1400, "  <!-- late -->\n", records(1500)), 1400,
         PARALLEL_BIG),
    ]


def encode(doc):
    """Bytes of a document; a lone surrogate (\\udce9) is that byte."""
    return doc if isinstance(doc, bytes) else \
        doc.encode("utf-8", "surrogateescape")


def count_elements(data):
    """How many <count> elements (any prefix) a document has."""
    return len(re.findall(rb"<(?:[\w.-]+:)?count>", data))


def write_built(tmp):
    """Writes the reports, some gzip'ed and zipped too; returns (file
    name, expectation, records, parallel variants) of each."""
    written = []
    for case in built_cases():
        name, doc, expect = case[:3]
        data = encode(doc)
        with open(os.path.join(tmp, name + ".xml"), "wb") as f:
            f.write(data)
        written.append((name + ".xml", expect, count_elements(data),
                        case[3] if len(case) > 3 else PARALLEL_BUILT))
    for name, expect in (("clean", "full"), ("comment-between", MIDDLE)):
        with open(os.path.join(tmp, name + ".xml"), "rb") as f:
            data = f.read()
        with gzip.open(os.path.join(tmp, name + ".xml.gz"), "wb") as f:
            f.write(data)
        written.append((name + ".xml.gz", expect, RECORDS, PARALLEL_BUILT))
    with zipfile.ZipFile(os.path.join(tmp, "two-reports.zip"), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for name in ("clean", "comment-between"):
            z.write(os.path.join(tmp, name + ".xml"), name + ".xml")
    written.append(("two-reports.zip", None, 2 * RECORDS, PARALLEL_BUILT))
    return written


def describe(expect):
    if expect in ("full", "none"):
        return expect
    return "fallback after record %d" % expect


def check_built(tap, pool, dmarcd, tmp):
    clean_count = None
    for name, expect, total, variants in write_built(tmp):
        tap.check("built %s: parallel output = serial output" % name,
                  check_equivalence(pool, dmarcd, tmp, name, variants))
        if expect is None:
            continue
        # the smallest chunks: one record each
        got, trouble = parallel_chunks(dmarcd, tmp, name, variants[0])
        if name == "clean.xml":
            clean_count = got
        tap.check("built %s: %s: note says %s chunk(s) by workers (%s)"
                  % (name, " ".join(variants[0]), got, describe(expect)),
                  [trouble] if trouble else
                  check_chunks(got, expect, clean_count, total))


# --------------------------------------------------------------------------
# Files on disk

def tree_files(top_srcdir):
    """tests/data/adversarial/*.xml and contrib/samples/*, relative."""
    found = []
    for directory, suffix in (("tests/data/adversarial", ".xml"),
                              ("contrib/samples", "")):
        full = os.path.join(top_srcdir, directory)
        for name in sorted(os.listdir(full)):
            if name.endswith(suffix) and \
                    os.path.isfile(os.path.join(full, name)):
                found.append(directory + "/" + name)
    return found


def corpus_rows(corpus):
    """The rows of INDEX.csv, or None without a corpus."""
    index = os.path.join(corpus, "INDEX.csv")
    if not os.path.isfile(index):
        return None
    with open(index, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def may_go_parallel(row):
    """Whether INDEX allows two records or more: only then can a chunk be
    made. Unknown counts are taken as maybe."""
    return row["records"] == "" and "aggregate" in row["kind"] or \
        row["records"] != "" and int(row["records"]) >= 2


def check_corpus(tap, pool, dmarcd, corpus, rows):
    """The files with two records or more one by one, the others in one
    invocation per format and variant (each run starts a process, and
    they are most of the corpus)."""
    present = [r for r in rows
               if os.path.isfile(os.path.join(corpus, r["file"]))]
    for row in rows:
        if row not in present:
            tap.check("corpus %s" % row["file"],
                      ["listed in INDEX, not on disk"])
    batched = [r["file"] for r in present if not may_go_parallel(r)]
    batch_problems, per_file = check_batch(pool, dmarcd, corpus, batched,
                                           PARALLEL)
    tap.check("corpus: %d files of fewer than two records in one "
              "invocation: same exit status, output split by file"
              % len(batched), batch_problems)
    for row in present:
        path = row["file"]
        if path in per_file:
            tap.check("corpus %s (in the batch): parallel output = serial "
                      "output" % path, per_file[path])
        else:
            tap.check("corpus %s: parallel output = serial output" % path,
                      check_equivalence(pool, dmarcd, corpus, path,
                                        PARALLEL))


def skip(tap, description, reason):
    """A skipped test point (Tap.check would escape the '#')."""
    tap.count += 1
    print("ok %d - %s # SKIP %s" % (tap.count, description, reason))
    sys.stdout.flush()


def main():
    shared, dmarcd = locate()
    if not os.access(dmarcd, os.X_OK):
        print("Bail out! dmarcd not found or not executable: %s" % dmarcd)
        return 1
    top_srcdir = os.path.abspath(
        os.environ.get("top_srcdir") or
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="dmarcd-parallel-")
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        try:
            check_built(tap, pool, dmarcd, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

        for path in tree_files(top_srcdir):
            tap.check("%s: parallel output = serial output" % path,
                      check_equivalence(pool, dmarcd, top_srcdir, path,
                                        PARALLEL))

        corpus = os.path.join(shared, "corpus")
        rows = corpus_rows(corpus)
        if rows is None:
            skip(tap, "shared corpus", "%s/INDEX.csv not present" % corpus)
        else:
            check_corpus(tap, pool, dmarcd, corpus, rows)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
