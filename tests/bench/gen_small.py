#!/usr/bin/env python3
"""gen_small.py - a maildir of small DMARC aggregate report mails.

    gen_small.py DIR N [SEED]

Writes DIR/new/NNNNNN.eml (and empty DIR/cur, DIR/tmp): N mails, each with
one gzipped aggregate report of 1 to 50 records as a base64 attachment, the
way receivers send them. Deterministic for a given SEED. Prints the ground
truth as JSON: reports, records, messages.
"""
import base64
import gzip
import json
import os
import random
import sys

ORGS = ["google.com", "Yahoo", "Mail.Ru", "Outlook.com", "receiver.example"]
DOMAINS = ["example.com", "example.org", "example.net", "shop.example"]


def report(rng, i):
    org = rng.choice(ORGS)
    dom = rng.choice(DOMAINS)
    begin = 1767225600 + 86400 * rng.randrange(30)
    nrec = rng.randint(1, 50)
    recs, msgs = [], 0
    for _ in range(nrec):
        ip = "%d.%d.%d.%d" % (rng.randrange(1, 224), rng.randrange(256),
                              rng.randrange(256), rng.randrange(1, 255))
        count = rng.randint(1, 200)
        msgs += count
        dk = rng.choice(["pass", "fail"])
        sp = rng.choice(["pass", "fail"])
        disp = "none" if dk == "pass" or sp == "pass" else \
            rng.choice(["none", "quarantine", "reject"])
        recs.append(
            "<record><row><source_ip>%s</source_ip><count>%d</count>"
            "<policy_evaluated><disposition>%s</disposition><dkim>%s</dkim>"
            "<spf>%s</spf></policy_evaluated></row><identifiers>"
            "<header_from>%s</header_from></identifiers><auth_results>"
            "<dkim><domain>%s</domain><selector>s1</selector>"
            "<result>%s</result></dkim><spf><domain>%s</domain>"
            "<result>%s</result></spf></auth_results></record>"
            % (ip, count, disp, dk, sp, dom, dom, dk, dom, sp))
    xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>"
           "<report_metadata><org_name>%s</org_name><email>noreply@%s"
           "</email><report_id>bench-%d-%d</report_id><date_range><begin>%d"
           "</begin><end>%d</end></date_range></report_metadata>"
           "<policy_published><domain>%s</domain><adkim>r</adkim><aspf>r"
           "</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>"
           "%s</feedback>\n" % (org, org.lower(), i, rng.randrange(1 << 30),
                                begin, begin + 86399, dom, "".join(recs)))
    name = "%s!%s!%d!%d.xml.gz" % (org.lower(), dom, begin, begin + 86399)
    return xml, name, dom, nrec, msgs


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    records = messages = 0
    for i in range(n):
        xml, name, dom, nrec, msgs = report(rng, i)
        records += nrec
        messages += msgs
        gz = gzip.compress(xml.encode(), 6, mtime=0)
        b64 = base64.encodebytes(gz).decode()
        mail = ("From: noreply-dmarc@receiver.example\r\nTo: dmarc@%s\r\n"
                "Subject: Report domain: %s\r\nMessage-ID: <bench-%d@"
                "receiver.example>\r\nDate: Thu, 01 Jan 2026 12:00:00 +0000"
                "\r\nMIME-Version: 1.0\r\nContent-Type: application/gzip; "
                "name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
                "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n%s"
                % (dom, dom, i, name, name, b64.replace("\n", "\r\n")))
        with open(os.path.join(out, "new", "%06d.eml" % i), "w") as f:
            f.write(mail)
    json.dump({"reports": n, "records": records, "messages": messages},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
