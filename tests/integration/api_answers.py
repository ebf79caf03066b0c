#!/usr/bin/env python3
"""api_answers.py - the API keeps summary, sources and readiness answers
until their data changes (api/answers.c), against a real PostgreSQL and
the real dmarcd serve.

Prints TAP; skipped ("1..0 # SKIP") without PostgreSQL binaries.

* the same question twice gives the same answer, the second from memory
  (/metrics counts a hit);
* a report of the domain stored meanwhile (dmarcd ingest, NOTIFY
  dmarcd_data) is in an answer within moments (the notification comes
  milliseconds after the commit), not after answer_cache;
* so is a change every domain's answers depend on: a source's name
  written to dmarcd.ip_names as dmarcd resolve does (NOTIFY '*');
* another domain's report does not drop the domain's answer;
* with answer_cache = 0 nothing is kept (every answer is a miss);
* spans are rounded to whole UTC days: since=30d asked at two moments of
  one day is one question.
"""
import datetime
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import api  # noqa: E402

DOMAIN = "kept.example"
OTHER = "other.example"


def report(domain, report_id, begin, ip, count):
    return ("<?xml version=\"1.0\"?><feedback><report_metadata>"
            "<org_name>receiver.example</org_name>"
            "<email>r@receiver.example</email><report_id>%s</report_id>"
            "<date_range><begin>%d</begin><end>%d</end></date_range>"
            "</report_metadata><policy_published><domain>%s</domain>"
            "<p>none</p></policy_published><record><row>"
            "<source_ip>%s</source_ip><count>%d</count><policy_evaluated>"
            "<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>"
            "</policy_evaluated></row><identifiers><header_from>%s"
            "</header_from></identifiers><auth_results><dkim><domain>%s"
            "</domain><result>pass</result></dkim><spf><domain>%s</domain>"
            "<result>pass</result></spf></auth_results></record></feedback>\n"
            % (report_id, begin, begin + 86399, domain, ip, count, domain,
               domain, domain))


def metric(c, token, name):
    st, _, body = c.request("/metrics", token)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    r = db.psql("CREATE ROLE %s LOGIN IN ROLE dmarcd_reader" % api.READER)
    if r.rc != 0:
        raise RuntimeError(r.describe())
    tmp = tempfile.mkdtemp(prefix="api_answers.")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    day = today - datetime.timedelta(days=2)
    begin = int(datetime.datetime(day.year, day.month, day.day,
                                  tzinfo=datetime.timezone.utc).timestamp())

    def ingest(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        r = db.dmarcd("ingest", path)
        if r.rc != 0:
            raise RuntimeError(r.describe())

    ingest("a.xml", report(DOMAIN, "a", begin, "192.0.2.10", 10))
    ingest("o.xml", report(OTHER, "o", begin, "192.0.2.20", 4))
    r = db.dmarcd("token", "add", "t")
    token = r.out.strip()

    def serve(cache):
        config = os.path.join(tmp, "api%d.conf" % cache)
        with open(config, "w") as f:
            f.write("[api]\nlisten = 127.0.0.1:0\ndatabase = %s\n"
                    "answer_cache = %d\n" % (cluster.conninfo_for(
                        db.name, user=api.READER), cache))
        return api.Server(env, config)

    srv = serve(3600)
    c = api.Client(srv.port)
    path = "/v1/domains/%s/summary?since=30d" % DOMAIN
    # The listener connects in its own time: until it has, nothing is
    # kept. Ask until an answer is a hit.
    deadline = time.monotonic() + 10
    hits0 = metric(c, token, "dmarcd_api_answers_total{result=\"hit\"}")
    while time.monotonic() < deadline:
        st, _, first = c.json(path, token)
        st2, _, second = c.json(path, token)
        hits = metric(c, token, "dmarcd_api_answers_total{result=\"hit\"}")
        if hits is not None and hits0 is not None and hits > hits0:
            break
        time.sleep(0.1)
    problems = []
    if st != 200 or st2 != 200 or first != second:
        problems.append("answers differ: %r %r" % (first, second))
    if hits is None or hits0 is None or not hits > hits0:
        problems.append("no hit counted in /metrics: %r -> %r"
                        % (hits0, hits))
    if (first or {}).get("data", {}).get("messages") != 10:
        problems.append("summary %r" % first)
    tap.check("the same question twice: the same answer, the second kept "
              "(a hit in /metrics)", problems)

    # The notification reaches the API's listener a few milliseconds after
    # the commit, not before it: ask again for a while (far less than
    # answer_cache, 3600 s) until the answer changes.
    def eventually(ask, done, seconds=5):
        end = time.monotonic() + seconds
        while True:
            got = ask()
            if done(got) or time.monotonic() > end:
                return got
            time.sleep(0.05)

    ingest("b.xml", report(DOMAIN, "b", begin, "192.0.2.11", 5))
    st, _, doc = eventually(lambda: c.json(path, token),
                            lambda r: r[0] == 200 and
                            r[2]["data"]["messages"] == 15)
    tap.check("a report of the domain stored: the next answer counts it "
              "(15 messages), not after answer_cache",
              [] if st == 200 and doc["data"]["messages"] == 15 else
              [repr((st, doc))])

    spath = "/v1/domains/%s/sources?since=30d" % DOMAIN
    st, _, before = c.json(spath, token)
    st, _, again = c.json(spath, token)
    db.psql("INSERT INTO dmarcd.ip_names (ip, ptr, names, confirmed, org, "
            "status, expires_at) VALUES ('192.0.2.10', 'mta.sender.example',"
            " '{mta.sender.example}', true, 'sender.example', 'ok', "
            "now() + interval '1 day')")
    def senders(r):
        return sorted(x["sender"] for x in r[2]["data"]["senders"])
    st, _, after = eventually(lambda: c.json(spath, token),
                              lambda r: r[0] == 200 and
                              "sender.example" in senders(r))
    names = sorted(x["sender"] for x in after["data"]["senders"])
    tap.check("a source's name stored (as dmarcd resolve does): the next "
              "sources answer has the sender sender.example",
              [] if before == again and "sender.example" in names else
              [repr((before, names))])

    h1 = metric(c, token, "dmarcd_api_answers_total{result=\"hit\"}")
    c.json(path, token)
    ingest("o2.xml", report(OTHER, "o2", begin, "192.0.2.21", 1))
    time.sleep(0.5)
    st, _, doc = c.json(path, token)
    h2 = metric(c, token, "dmarcd_api_answers_total{result=\"hit\"}")
    tap.check("another domain's report keeps the domain's answer (a hit)",
              [] if h2 is not None and h1 is not None and h2 > h1 and
              doc["data"]["messages"] == 15 else [repr((h1, h2, doc))])

    # Two moments of one day: one question (since=30d rounded to days).
    st, _, d1 = c.json(path, token)
    time.sleep(1.1)
    st, _, d2 = c.json(path, token)
    tap.check("since=30d a second later is the same question: the same "
              "answer, its span in whole days",
              [] if d1 == d2 and d1["data"]["since"].endswith(
                  "T00:00:00+00:00") else [repr((d1, d2))])
    srv.kill()

    srv = serve(0)
    c = api.Client(srv.port)
    for _ in range(3):
        c.json(path, token)
    hits = metric(c, token, "dmarcd_api_answers_total{result=\"hit\"}")
    tap.check("answer_cache = 0: nothing kept (no hit)",
              [] if not hits else [repr(hits)])
    srv.kill()


if __name__ == "__main__":
    h.run_main(main)
