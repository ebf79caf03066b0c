#!/usr/bin/env python3
"""
corpus.py - `dmarcd parse` against every file of the shared report corpus.

Prints TAP. Exit 0 when every test point passed, 1 otherwise. Skipped (plan
"1..0 # SKIP") when the corpus is absent: it lives beside the checkout in
../shared/corpus (or $DMARCD_SHARED_DIR/corpus) and is not distributed,
because part of it may not be redistributed.

Environment: top_srcdir, top_builddir, DMARCD (the binary; default
$top_builddir/collector/dmarcd), DMARCD_SHARED_DIR (default
$top_srcdir/../shared). Python 3 standard library only.

What is checked (the contract is docs/parse-output.md)
------------------------------------------------------
1. Every row of corpus/INDEX.csv, one file per `dmarcd parse` run:
   * never a crash: the exit status is 0 or 65, nothing else, no signal;
   * exit 65 if and only if the summary's "errors" is non-empty, and then
     standard error carries at least one "dmarcd: " line;
   * one summary line, naming the file as given;
   * "kind" is the INDEX kind mapped to ours: aggregate and
     email-with-aggregate -> "aggregate", failure and email-with-failure ->
     "failure", tlsrpt -> "tlsrpt", other -> "unknown". A 0-byte file is
     expected as "unknown" whatever INDEX says: input is recognised by its
     bytes only, and there are none;
   * "records" equals INDEX's records column when that is non-empty (for a
     deliberately invalid file only when dmarcd accepted it: a rejected
     report's record count is not defined by the contract);
   * for aggregate and failure kinds, --format ndjson agrees: the same exit
     status, one "rejected" line per rejected aggregate report in the
     summary's details (the "record" lines of that report printed before it
     are void), one valid "record" line per summary record (so INDEX's
     count again),
     sum of "count" = summary "messages", index running 1..n, one "failure"
     line per failure report, every line naming the file.

   Expected exit status:
   * kind other (not a report: plain text, the oracle JSON files) -> 65;
   * tlsrpt -> 65 (the contract lists a TLS-RPT part as a detail with
     status "rejected", and any rejected part makes the exit 65);
   * aggregate / failure -> 0, unless the file is DELIBERATELY INVALID, in
     which case 0 and 65 are both right (a parser may repair or reject; the
     checks above still hold). The rule, decided from INDEX only:
       - its path contains "invalid" (any case): qt_dmarc_parser
         invalid-*, parsedmarc invalid_utf_8 / invalid_xml /
         aggregate_invalid/*, communitales report_invalid_mindate; or
       - its INDEX notes record a DEFECT: "XML parse error",
         "invalid UTF-8", "empty file (", "zero <record> elements",
         "missing <report_metadata>", "missing <policy_published>",
         "record without <count>", "lacks <" (a required report_metadata
         child is absent), "Nx <" (a singleton element repeated),
         "non-integer".
     Everything else INDEX notes is a QUIRK that real reporters send and
     that must be accepted (exit 0): no xmlns / no <version>, CRLF, BOM,
     windows-1252, no XML declaration, out-of-order or unexpected
     elements, <extension>, dmarcbis elements without the namespace,
     IPv6, upper-case results, double gzip, trailing bytes after gzip, zip
     directory entries or an empty member name, base64 feedback-report
     part, text/html part, mbox From_ line, octet-stream attachment, a
     plain-text failure notice without ARF part, Feedback-Type: abuse.
     No file is special-cased by name beyond this rule.

2. Oracles: stalwartlabs__mail-auth ships its parser's expected output
   (*.json) beside resources/dmarc-feedback/*.{xml,eml} and
   resources/arf/*.eml. Each is mapped field by field to our model
   (agg_expected / arf_expected below) and compared with our output:
   report and policy fields with the summary's "details" entry, records
   and failure reports with the ndjson lines. TLS-RPT files
   (resources/tlsrpt/*) are only checked for kind "tlsrpt".

3. All corpus files in ONE invocation give, line for line, the same
   summaries as the one-file runs (and the same ndjson), and exit 65 iff
   some one-file run did.
"""

import csv
import email.parser
import email.policy
import json
import os
import re
import sys

from parse_harness import Run, Tap, locate


# --------------------------------------------------------------------------
# The INDEX rules

KIND_MAP = {
    "aggregate": "aggregate",
    "email-with-aggregate": "aggregate",
    "failure": "failure",
    "email-with-failure": "failure",
    "tlsrpt": "tlsrpt",
    "other": "unknown",
}

DEFECT_NOTES = [
    "XML parse error", "invalid UTF-8", "empty file (",
    "zero <record> elements", "missing <report_metadata>",
    "missing <policy_published>", "record without <count>", "lacks <",
    "non-integer",
]
DEFECT_NOTE_RE = re.compile(r"\b\d+x <")  # "2x <report_metadata>"


def deliberately_invalid(row):
    if "invalid" in row["file"].lower():
        return True
    notes = row["notes"]
    return any(d in notes for d in DEFECT_NOTES) or \
        bool(DEFECT_NOTE_RE.search(notes))


def expected_kind(row, size):
    if size == 0:
        return "unknown"
    return KIND_MAP.get(row["kind"])


def expected_rc(row):
    """0, 65, or None when both are acceptable."""
    if row["kind"] in ("other", "tlsrpt"):
        return 65
    if deliberately_invalid(row):
        return None
    return 0


def check_summary(row, size, run):
    """Problems with the one-file summary run of INDEX row."""
    problems = list(run.problems)
    path = row["file"]
    if run.rc is None:
        return problems
    if len(run.objects) != 1:
        problems.append("%d summary lines, expected 1" % len(run.objects))
        return problems
    s = run.objects[0]
    if not isinstance(s, dict):
        return problems + ["summary is not an object: %.200r" % s]
    if s.get("file") != path:
        problems.append("file: expected %r, got %r" % (path, s.get("file")))
    kind = expected_kind(row, size)
    if kind is None:
        problems.append("INDEX kind %r has no mapping" % row["kind"])
    elif s.get("kind") != kind:
        problems.append("kind: expected %r (INDEX %s), got %r"
                        % (kind, row["kind"], s.get("kind")))
    errors = s.get("errors")
    if not isinstance(errors, list) or not isinstance(s.get("warnings"), list):
        problems.append("errors/warnings are not lists")
        errors = []
    if run.rc in (0, 65) and (run.rc == 65) != bool(errors):
        problems.append("exit %d but errors=%s" % (run.rc, json.dumps(errors)))
    want_rc = expected_rc(row)
    if want_rc is not None and run.rc != want_rc:
        problems.append("exit: expected %d, got %d (errors: %s)"
                        % (want_rc, run.rc, json.dumps(errors)[:600]))
    strict = want_rc == 0
    if row["records"] != "" and (strict or run.rc == 0):
        if s.get("records") != int(row["records"]):
            problems.append("records: expected %s (INDEX), got %r"
                            % (row["records"], s.get("records")))
    if strict and kind in ("aggregate", "failure") and s.get("reports") != 1:
        problems.append("reports: expected 1, got %r" % s.get("reports"))
    return problems


def check_ndjson(row, summary_run, run):
    """Problems with the ndjson run, measured against the summary run."""
    problems = list(run.problems)
    if run.rc is None or summary_run.rc is None or \
            len(summary_run.objects) != 1:
        return problems
    s = summary_run.objects[0]
    if run.rc != summary_run.rc:
        problems.append("exit %d, but %d with --format summary"
                        % (run.rc, summary_run.rc))
    # A "rejected" line voids the record lines of its report before it.
    records, pending = [], {}
    rejected = []
    for o in run.objects:
        if o.get("type") == "record":
            pending.setdefault(o.get("where"), []).append(o)
        elif o.get("type") == "rejected":
            rejected.append(o)
            pending.pop(o.get("where"), None)
    for where_records in pending.values():
        records.extend(where_records)
    rejected_details = [d for d in s.get("details") or []
                        if d.get("kind") == "aggregate"
                        and d.get("status") == "rejected"]
    if len(rejected) != len(rejected_details):
        problems.append("%d rejected lines, summary details list %d rejected "
                        "aggregate reports" % (len(rejected),
                                               len(rejected_details)))
    failures = [o for o in run.objects if o.get("type") == "failure"]
    others = [o.get("type") for o in run.objects
              if o.get("type") not in ("record", "failure", "rejected")]
    if others:
        problems.append("lines of unknown type: %r" % others[:5])
    for o in run.objects:
        if o.get("file") != row["file"]:
            problems.append("a line names file %r" % o.get("file"))
            break
    if len(records) != s.get("records"):
        problems.append("%d record lines, summary says records=%r"
                        % (len(records), s.get("records")))
    if row["records"] != "" and (expected_rc(row) == 0 or run.rc == 0) and \
            len(records) != int(row["records"]):
        problems.append("%d record lines, INDEX says %s"
                        % (len(records), row["records"]))
    messages = sum(o.get("count") or 0 for o in records)
    if messages != s.get("messages"):
        problems.append("sum of count %d, summary says messages=%r"
                        % (messages, s.get("messages")))
    if s.get("reports") == 1 and records:
        indexes = [o.get("index") for o in records]
        if indexes != list(range(1, len(records) + 1)):
            problems.append("index does not run 1..%d: %r..."
                            % (len(records), indexes[:10]))
    failure_reports = [d for d in s.get("details") or []
                       if d.get("kind") == "failure"]
    if len(failures) != len(failure_reports):
        problems.append("%d failure lines, summary details list %d failure"
                        " reports" % (len(failures), len(failure_reports)))
    if expected_kind(row, 1) == "failure" and expected_rc(row) == 0 and \
            len(failures) != 1:
        problems.append("%d failure lines, expected 1" % len(failures))
    return problems


# --------------------------------------------------------------------------
# Comparing with an expectation

class OneOf:
    """The oracle's value maps to any of several of ours."""

    def __init__(self, *values):
        self.values = values

    def match(self, got):
        return any(same(v, got) for v in self.values)

    def __repr__(self):
        return " or ".join(json.dumps(v) for v in self.values)


class Pred:
    def __init__(self, description, test):
        self.description = description
        self.test = test

    def match(self, got):
        try:
            return bool(self.test(got))
        except (TypeError, ValueError, AttributeError):
            return False

    def __repr__(self):
        return self.description


class Unmapped:
    """An oracle value this script has no mapping for: always a failure,
    so that a new value is looked at rather than skipped."""

    def __init__(self, table, value):
        self.text = "(oracle value %r has no %s mapping)" % (value, table)

    def match(self, got):
        return False

    def __repr__(self):
        return self.text


def same(want, got):
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return want == got
    return type(want) is type(got) and want == got


def compare(want, got, path, problems):
    if isinstance(want, (OneOf, Pred, Unmapped)):
        if not want.match(got):
            problems.append("%s: expected %r, got %s"
                            % (path, want, json.dumps(got)[:300]))
    elif isinstance(want, dict):
        if not isinstance(got, dict):
            problems.append("%s: expected an object, got %s"
                            % (path, json.dumps(got)[:300]))
            return
        for key, value in want.items():
            if key not in got:
                problems.append("%s.%s: missing (expected %s)"
                                % (path, key, show(value)))
            else:
                compare(value, got[key], "%s.%s" % (path, key), problems)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            problems.append("%s: expected %d items %s, got %s"
                            % (path, len(want), show(want),
                               json.dumps(got)[:300]))
            return
        for i, (w, g) in enumerate(zip(want, got)):
            compare(w, g, "%s[%d]" % (path, i), problems)
    elif not same(want, got):
        problems.append("%s: expected %s, got %s"
                        % (path, json.dumps(want), json.dumps(got)[:300]))


def show(value):
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def enum(table_name, table, value):
    if value in table:
        return table[value]
    return Unmapped(table_name, value)


def domain(value):
    """Contract: domains are lower case without a trailing dot."""
    return value.lower().rstrip(".") if isinstance(value, str) else value


def unfolded(value):
    """A header value compared modulo folding and runs of white space: the
    contract does not say how a folded field is unfolded."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\s+", " ", value).strip()


def same_text(value):
    want = unfolded(value)
    if want is None:
        return None
    return Pred(json.dumps(want) + " (white space folded)",
                lambda got: unfolded(got) == want)


# --------------------------------------------------------------------------
# stalwart's aggregate model -> ours
#
# Field by field (stalwart mail-auth Report / ReportMetadata /
# PolicyPublished / Record, serialised with serde):
#   version               -> details.version; stalwart writes 0.0 when
#                            <version> is absent, ours is null; otherwise
#                            the same number (ours is the text).
#   report_metadata.org_name, email, extra_contact_info, report_id,
#       date_range.begin/end, error[] -> details org_name, email,
#       extra_contact_info, report_id, begin, end, report_errors.
#   report_metadata.generator (newer oracles only) -> details.generator.
#   policy_published.domain -> policy_published.domain (lower case).
#   adkim/aspf: Relaxed -> "r", Strict/Simple -> "s", Unspecified -> null.
#   p/sp/np: None/Quarantine/Reject -> lower case, Unspecified -> null.
#   testing: a bool, true only for "y". false is both "absent" and "n", so
#       it maps to null or "n".
#   discovery_method (newer oracles): Psl/Treewalk -> lower, Unspecified
#       -> null.
#   fo -> fo, the same string or null.
#   record[] -> the ndjson "record" lines, in order, their number and the
#       sum of their counts also -> details.records / details.messages.
#   row.source_ip, row.count -> source_ip, count.
#   policy_evaluated.disposition: None/Pass/Quarantine/Reject -> lower,
#       Unspecified -> null. dkim/spf: Pass/Fail -> lower, Unspecified ->
#       null.
#   policy_evaluated.reason[] -> reasons[]: type_ Forwarded -> forwarded,
#       SampledOut -> sampled_out, TrustedForwarder -> trusted_forwarder,
#       MailingList -> mailing_list, LocalPolicy -> local_policy,
#       PolicyTestMode -> policy_test_mode, Other -> "other" or
#       "sampled_out" (stalwart follows RFC 9990, which dropped
#       sampled_out, and files RFC 7489's sampled_out under Other);
#       comment -> comment.
#   identifiers.header_from, envelope_to -> same (domains: lower case).
#   identifiers.envelope_from: stalwart's type is a plain String, absent
#       is written ""; ours is null when absent: "" matches null or "".
#   auth_results.dkim[] -> auth_dkim[]: domain (lower case), selector (a
#       plain String too: "" matches null or ""), result None/Pass/Fail/
#       Policy/Neutral/TempError/PermError -> lower case, human_result.
#   auth_results.spf[] -> auth_spf[]: domain, scope Helo -> helo,
#       MailFrom -> mfrom, Unspecified -> null, result (as dkim plus
#       SoftFail -> softfail), human_result.
#   Every record line's "report" -> org_name, email, report_id,
#       policy_domain, begin, end of the oracle (metadata precedes the
#       records in every oracle file).
# Not mapped, with the reason:
#   policy_published.version_published: our model has no such field.
#   pct: stalwart's model has no pct (RFC 9990 dropped it), so the oracle
#       says nothing about it.
#   extensions (report and record): our model keeps no extensions.

ALIGN = {"Relaxed": "r", "Strict": "s", "Simple": "s", "Unspecified": None}
POLICY = {"None": "none", "Quarantine": "quarantine", "Reject": "reject",
          "Unspecified": None}
DISPOSITION = {"None": "none", "Pass": "pass", "Quarantine": "quarantine",
               "Reject": "reject", "Unspecified": None}
VERDICT = {"Pass": "pass", "Fail": "fail", "Unspecified": None}
DKIM_RESULT = {"None": "none", "Pass": "pass", "Fail": "fail",
               "Policy": "policy", "Neutral": "neutral",
               "TempError": "temperror", "PermError": "permerror"}
SPF_RESULT = dict(DKIM_RESULT, SoftFail="softfail")
SCOPE = {"Helo": "helo", "MailFrom": "mfrom", "Unspecified": None}
REASON = {"Forwarded": "forwarded", "SampledOut": "sampled_out",
          "TrustedForwarder": "trusted_forwarder",
          "MailingList": "mailing_list", "LocalPolicy": "local_policy",
          "PolicyTestMode": "policy_test_mode",
          "Other": OneOf("other", "sampled_out")}
DISCOVERY = {"Psl": "psl", "Treewalk": "treewalk", "Unspecified": None}


def absent_is_empty(value):
    """For stalwart's plain String fields written "" when absent."""
    return OneOf(None, "") if value == "" else value


def version_expected(version):
    if version in (0, 0.0, None):
        return None
    return Pred("a version text equal to %s" % version,
                lambda got: float(got) == float(version))


def agg_expected(o):
    """(expected details entry, expected ndjson record lines)"""
    rm = o["report_metadata"]
    pp = o["policy_published"]
    testing = "y" if pp["testing"] is True else OneOf(None, "n")
    policy = {
        "domain": domain(pp["domain"]),
        "adkim": enum("alignment", ALIGN, pp["adkim"]),
        "aspf": enum("alignment", ALIGN, pp["aspf"]),
        "p": enum("policy", POLICY, pp["p"]),
        "sp": enum("policy", POLICY, pp["sp"]),
        "testing": testing,
        "fo": pp["fo"],
    }
    if "np" in pp:
        policy["np"] = enum("policy", POLICY, pp["np"])
    if "discovery_method" in pp:
        policy["discovery_method"] = enum("discovery", DISCOVERY,
                                          pp["discovery_method"])
    details = {
        "kind": "aggregate",
        "status": "ok",
        "version": version_expected(o.get("version")),
        "org_name": rm["org_name"],
        "email": rm["email"],
        "extra_contact_info": rm["extra_contact_info"],
        "report_id": rm["report_id"],
        "begin": rm["date_range"]["begin"],
        "end": rm["date_range"]["end"],
        "report_errors": rm["error"],
        "policy_published": policy,
        "records": len(o["record"]),
        "messages": sum(r["row"]["count"] for r in o["record"]),
    }
    if "generator" in rm:
        details["generator"] = rm["generator"]
    report = {
        "org_name": rm["org_name"], "email": rm["email"],
        "report_id": rm["report_id"], "policy_domain": domain(pp["domain"]),
        "begin": rm["date_range"]["begin"], "end": rm["date_range"]["end"],
    }
    records = []
    for i, r in enumerate(o["record"]):
        row, ids, auth = r["row"], r["identifiers"], r["auth_results"]
        pe = row["policy_evaluated"]
        reasons = []
        for reason in pe["reason"]:
            kind = reason.get("type_", reason.get("type", reason.get("kind")))
            reasons.append({"type": enum("reason", REASON, kind),
                            "comment": reason["comment"]})
        records.append({
            "type": "record",
            "report": report,
            "index": i + 1,
            "source_ip": row["source_ip"],
            "count": row["count"],
            "disposition": enum("disposition", DISPOSITION,
                                pe["disposition"]),
            "dkim": enum("verdict", VERDICT, pe["dkim"]),
            "spf": enum("verdict", VERDICT, pe["spf"]),
            "reasons": reasons,
            "header_from": domain(ids["header_from"]),
            "envelope_from": absent_is_empty(domain(ids["envelope_from"])),
            "envelope_to": domain(ids["envelope_to"]),
            "auth_dkim": [{
                "domain": domain(d["domain"]),
                "selector": absent_is_empty(d["selector"]),
                "result": enum("dkim result", DKIM_RESULT, d["result"]),
                "human_result": d["human_result"],
            } for d in auth["dkim"]],
            "auth_spf": [{
                "domain": domain(s["domain"]),
                "scope": enum("spf scope", SCOPE, s["scope"]),
                "result": enum("spf result", SPF_RESULT, s["result"]),
                "human_result": s["human_result"],
            } for s in auth["spf"]],
        })
    return details, records


# --------------------------------------------------------------------------
# stalwart's ARF model -> ours (one ndjson "failure" line)
#
#   feedback_type: Abuse -> abuse, AuthFailure -> auth-failure, Fraud ->
#       fraud, NotSpam -> not-spam, Other -> other, Virus -> virus.
#   arrival_date: stalwart's UTC timestamp of Arrival-Date (or the legacy
#       Received-Date) -> our arrival_date is present and our
#       arrival_time is that timestamp; null -> both null.
#   authentication_results[] -> authentication_results[], compared with
#       white space folded (stalwart keeps the folded text).
#   incidents, original_envelope_id, reported_uri[], source_ip,
#       user_agent, dkim_identity, dkim_selector, spf_dns -> the same.
#   original_mail_from -> the same address; stalwart keeps the field's
#       text, "<a@b>" (RFC 5965 reverse-path), the contract does not say
#       whether the brackets stay, so both sides are compared without one
#       enclosing pair of angle brackets.
#   original_rcpt_to: stalwart keeps one value (null when absent) ->
#       our list: [] or [that address], angle brackets as above.
#   reported_domain[], dkim_domain -> the same, lower case (domains).
#   reporting_mta: stalwart strips the "dns;" type -> ours is compared
#       with an "<type>;" prefix removed too.
#   source_port: stalwart writes 0 when absent -> null; else the number.
#   version: stalwart's integer (0 when absent) -> our text "1" or null.
#   auth_failure: Adsp/BodyHash/Revoked/Signature/Spf/Dmarc -> lower
#       case, Unspecified -> null.
#   delivery_result: Delivered/Spam/Policy/Reject/Other -> lower case,
#       Unspecified -> null.
#   identity_alignment: Unspecified -> null, None -> "none", Dkim ->
#       "dkim", Spf -> "spf", DkimSpf -> "dkim,spf".
#   headers: stalwart's raw text/rfc822-headers part -> our headers
#       object: from, to, subject, date, message_id (one field each, null
#       when absent), dkim_signature[] and authentication_results[] (every
#       field), white space folded. When stalwart's is null the original
#       came as message/rfc822 (or not at all) and it says nothing.
#   arf: stalwart only produces an oracle from a message/feedback-report
#       part, so ours is true.
# Not mapped, with the reason:
#   dkim_adsp_dns, dkim_canonicalized_body, dkim_canonicalized_header,
#       dkim_selector_dns: our model has no such fields.
#   message: stalwart's test harness sets it to null before comparing, so
#       the oracle never carries it.

FEEDBACK_TYPE = {"Abuse": "abuse", "AuthFailure": "auth-failure",
                 "Fraud": "fraud", "NotSpam": "not-spam", "Other": "other",
                 "Virus": "virus"}
AUTH_FAILURE = {"Adsp": "adsp", "BodyHash": "bodyhash",
                "Revoked": "revoked", "Signature": "signature", "Spf": "spf",
                "Dmarc": "dmarc", "Unspecified": None}
DELIVERY_RESULT = {"Delivered": "delivered", "Spam": "spam",
                   "Policy": "policy", "Reject": "reject", "Other": "other",
                   "Unspecified": None}
IDENTITY_ALIGNMENT = {"Unspecified": None, "None": "none", "Dkim": "dkim",
                      "Spf": "spf", "DkimSpf": "dkim,spf"}


def mta_name(value):
    if isinstance(value, str) and ";" in value:
        return value.split(";", 1)[1].strip()
    return value


def bare_address(value):
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1].strip()
    return value


def same_address(value):
    want = bare_address(value)
    if want is None:
        return None
    return Pred(json.dumps(want) + " (angle brackets aside)",
                lambda got: bare_address(got) == want)


def headers_expected(raw):
    msg = email.parser.HeaderParser(policy=email.policy.compat32) \
        .parsestr(raw)

    def one(name):
        return same_text(msg.get(name))

    def every(name):
        return [same_text(v) for v in msg.get_all(name) or []]

    return {
        "from": one("From"), "to": one("To"), "subject": one("Subject"),
        "date": one("Date"), "message_id": one("Message-ID"),
        "dkim_signature": every("DKIM-Signature"),
        "authentication_results": every("Authentication-Results"),
    }


def arf_expected(o):
    arrival = o["arrival_date"]
    if arrival is None:
        arrival_date, arrival_time = None, None
    else:
        arrival_date = Pred("present", lambda got: isinstance(got, str)
                            and got.strip() != "")
        arrival_time = arrival
    mta = o["reporting_mta"]
    want = {
        "type": "failure",
        "arf": True,
        "feedback_type": enum("feedback type", FEEDBACK_TYPE,
                              o["feedback_type"]),
        "arrival_date": arrival_date,
        "arrival_time": arrival_time,
        "authentication_results": [same_text(v) for v in
                                   o["authentication_results"]],
        "incidents": o["incidents"],
        "original_envelope_id": o["original_envelope_id"],
        "original_mail_from": same_address(o["original_mail_from"]),
        "original_rcpt_to": [] if o["original_rcpt_to"] is None
        else [same_address(o["original_rcpt_to"])],
        "reported_domain": [domain(d) for d in o["reported_domain"]],
        "reported_uri": o["reported_uri"],
        "reporting_mta": None if mta is None else
        Pred(json.dumps(mta) + " (after any '<type>;')",
             lambda got: mta_name(got) == mta),
        "source_ip": o["source_ip"],
        "source_port": o["source_port"] or None,
        "user_agent": o["user_agent"],
        "version": str(o["version"]) if o["version"] else None,
        "auth_failure": enum("auth failure", AUTH_FAILURE,
                             o["auth_failure"]),
        "delivery_result": enum("delivery result", DELIVERY_RESULT,
                                o["delivery_result"]),
        "dkim_domain": domain(o["dkim_domain"]),
        "dkim_identity": o["dkim_identity"],
        "dkim_selector": o["dkim_selector"],
        "spf_dns": o["spf_dns"],
        "identity_alignment": enum("identity alignment", IDENTITY_ALIGNMENT,
                                   o["identity_alignment"]),
    }
    if o.get("headers") is not None:
        want["headers"] = headers_expected(o["headers"])
    return want


def oracle_problems(oracle_kind, oracle, summary_run, ndjson_run):
    problems = []
    if summary_run.rc != 0 or len(summary_run.objects) != 1:
        problems.append("the report was not parsed cleanly (exit %r)"
                        % summary_run.rc)
    if ndjson_run.rc != 0:
        problems.append("--format ndjson exit %r" % ndjson_run.rc)
    if problems:
        return problems
    s = summary_run.objects[0]
    if oracle_kind == "aggregate":
        want_details, want_records = agg_expected(oracle)
        details = [d for d in s.get("details") or []
                   if d.get("kind") == "aggregate"]
        if len(details) != 1:
            problems.append("%d aggregate details, expected 1"
                            % len(details))
        else:
            compare(want_details, details[0], "details", problems)
        records = [o for o in ndjson_run.objects
                   if o.get("type") == "record"]
        compare(want_records, records, "records", problems)
    else:
        failures = [o for o in ndjson_run.objects
                    if o.get("type") == "failure"]
        compare([arf_expected(oracle)], failures, "failure", problems)
    return problems


# --------------------------------------------------------------------------

def main():
    shared, dmarcd = locate()
    corpus = os.path.join(shared, "corpus")
    index_path = os.path.join(corpus, "INDEX.csv")
    if not os.path.isfile(index_path):
        print("1..0 # SKIP ../shared/corpus not present")
        return 0
    if not os.access(dmarcd, os.X_OK):
        print("Bail out! dmarcd not found or not executable: %s" % dmarcd)
        return 1
    with open(index_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tap = Tap()
    if not rows:
        tap.check("INDEX.csv lists files", ["INDEX.csv has no rows"])
        return tap.done()

    summaries, ndjsons = {}, {}
    for row in rows:
        path = row["file"]
        full = os.path.join(corpus, path)
        if not os.path.isfile(full):
            tap.check("summary %s" % path, ["listed in INDEX, not on disk"])
            continue
        size = os.path.getsize(full)
        run = Run(dmarcd, ["--format", "summary", path], corpus)
        summaries[path] = run
        tap.check("summary %s (%s%s)" % (path, expected_kind(row, size),
                                          ", invalid on purpose"
                                          if expected_rc(row) is None
                                          else ""),
                  check_summary(row, size, run))
        if expected_kind(row, size) in ("aggregate", "failure"):
            nd = Run(dmarcd, ["--format", "ndjson", path], corpus)
            ndjsons[path] = nd
            tap.check("ndjson %s" % path, check_ndjson(row, run, nd))

    # Oracles.
    by_path = {row["file"]: row for row in rows}
    for row in rows:
        path = row["file"]
        m = re.match(r"(stalwartlabs__mail-auth/resources__"
                     r"(dmarc-feedback|arf|tlsrpt)__[^/]+)\.json$", path)
        if not m:
            continue
        stem, family = m.group(1), m.group(2)
        sources = [stem + ext for ext in (".xml", ".eml")
                   if stem + ext in by_path]
        if family == "tlsrpt":
            for source in sources:
                run = summaries.get(source)
                got = run.objects[0].get("kind") \
                    if run and len(run.objects) == 1 else None
                tap.check("oracle %s: kind of %s" % (path, source),
                          [] if got == "tlsrpt" else
                          ["kind: expected 'tlsrpt', got %r" % got])
            continue
        if len(sources) != 1:
            tap.check("oracle %s" % path,
                      ["%d report files beside it, expected 1"
                       % len(sources)])
            continue
        source = sources[0]
        try:
            with open(os.path.join(corpus, path), encoding="utf-8") as f:
                oracle = json.load(f)
            if source not in summaries:
                raise KeyError("%s was not parsed" % source)
            if source not in ndjsons:
                ndjsons[source] = Run(dmarcd, ["--format", "ndjson", source],
                                      corpus)
            problems = oracle_problems(
                "aggregate" if family == "dmarc-feedback" else "arf",
                oracle, summaries[source], ndjsons[source])
        except (KeyError, TypeError, ValueError) as e:
            problems = ["oracle could not be mapped: %s: %s"
                        % (type(e).__name__, e)]
        tap.check("oracle %s against %s" % (path, source), problems)

    # Every file in one invocation.
    paths = [row["file"] for row in rows if row["file"] in summaries]
    one_by_one_rc = [summaries[p].rc for p in paths]
    want_rc = 65 if 65 in one_by_one_rc else 0
    for fmt, single in (("summary", summaries), ("ndjson", None)):
        batch = Run(dmarcd, ["--format", fmt] + paths, corpus)
        problems = list(batch.problems)
        if batch.rc is not None and batch.rc != want_rc:
            problems.append("exit %r, expected %d (one-file runs: %s)"
                            % (batch.rc, want_rc,
                               "some 65" if want_rc else "all 0"))
        if fmt == "summary":
            if len(batch.objects) != len(paths):
                problems.append("%d summary lines for %d inputs"
                                % (len(batch.objects), len(paths)))
            for p, got in zip(paths, batch.objects):
                alone = single[p].objects[0] \
                    if len(single[p].objects) == 1 else None
                if got != alone:
                    keys = sorted(k for k in set(got) | set(alone or {})
                                  if got.get(k) != (alone or {}).get(k))
                    problems.append("%s: differs from its one-file run in %s"
                                    % (p, ", ".join(keys)))
        else:
            want = []
            for p in paths:
                if p not in ndjsons:
                    ndjsons[p] = Run(dmarcd, ["--format", "ndjson", p],
                                     corpus)
                want.extend(ndjsons[p].objects)
            if batch.objects != want:
                problems.append("%d lines, %d from the one-file runs"
                                % (len(batch.objects), len(want)))
                for i, (g, w) in enumerate(zip(batch.objects, want)):
                    if g != w:
                        problems.append("first difference at line %d: "
                                        "%.300s" % (i + 1, json.dumps(g)))
                        break
        tap.check("all %d files in one invocation, --format %s: same as "
                  "one by one" % (len(paths), fmt), problems)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
