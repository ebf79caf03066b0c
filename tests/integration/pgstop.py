#!/usr/bin/env python3
"""pgstop.py - PostgreSQL going away under `dmarcd ingest`, or not there.

Prints TAP; skipped without PostgreSQL.

300 reports made from contrib/samples/google-example.com.xml (each its
own report id, dates and counts; records repeated to 100 per report; half
gzipped), batch_reports = 5 (and batch_ms = 60000, so that every batch is
5 inputs):

* database A: a clean ingest, the reference;
* database B: ingest, and once 30 of its inputs are committed (their
  lines printed) the cluster is stopped with pg_ctl stop -m immediate (a
  crash) while it runs: ingest exits 75 and says so on stderr; the cluster
  restarted (same data, same port; synchronous_commit on), every input
  ingest printed (it prints an input once its batch is committed) is
  stored, and nothing is half-stored (no NULL
  payload_sha256, each report's record_count equals its rows in
  dmarcd.records, rollup sum equals the reports' messages, raw bytes
  kept); a re-run exits 0 and B then equals A row for row
  (pgharness.compare_databases) with the same stats;
* no PostgreSQL at all (a port nothing listens on): ingest, stats and
  migrate exit 75 with a message saying they cannot connect, and the
  password of the connection string (given with --db or in the [database]
  conninfo of a configuration file) is printed nowhere.
"""
import gzip
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

REPORTS = 300
DAY = 86400


def make_reports(env, directory):
    with open(os.path.join(env.samples, "google-example.com.xml"),
              encoding="utf-8") as f:
        text = f.read()
    begin = int(re.search(r"<begin>\s*(\d+)\s*</begin>", text).group(1))
    end = int(re.search(r"<end>\s*(\d+)\s*</end>", text).group(1))
    report_id = re.search(r"<report_id>([^<]*)</report_id>", text).group(1)
    first = text.index("<record>")
    last = text.rindex("</record>") + len("</record>")
    records = text[first:last]
    os.makedirs(directory)
    for i in range(REPORTS):
        factor = i % 7 + 1
        body = (records + "\n") * 4
        body = re.sub(r"<count>(\d+)</count>", lambda m: "<count>%d</count>"
                      % (int(m.group(1)) * factor), body)
        shift = (i % 120) * DAY
        doc = text[:first] + body + text[last:]
        doc = doc.replace("<report_id>%s</report_id>" % report_id,
                          "<report_id>stop-%d</report_id>" % i) \
            .replace("<begin>%d</begin>" % begin,
                     "<begin>%d</begin>" % (begin + shift)) \
            .replace("<end>%d</end>" % end, "<end>%d</end>" % (end + shift))
        data = doc.encode("utf-8")
        name = "s%03d.xml" % i
        if i % 2:
            data = gzip.compress(data, mtime=0)
            name += ".gz"
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(tap):
    env = h.setup()
    directory = os.path.join(env.work, "reports")
    make_reports(env, directory)
    config = os.path.join(env.work, "dmarcd.conf")
    with open(config, "w") as f:
        # batch_ms high: a batch is always 5 inputs, never cut by time.
        f.write("[ingest]\nbatch_reports = 5\nbatch_ms = 60000\n")
    # synchronous_commit on: what ingest says it stored must survive the
    # crash.
    cluster = h.Cluster(env, synchronous_commit=True)

    a = cluster.new_db()
    r = a.dmarcd("ingest", "--quiet", directory, config=config)
    n = a.int("SELECT count(*) FROM dmarcd.reports")
    problems = [] if r.rc == 0 else [r.describe()]
    if n != REPORTS:
        problems.append("%s reports stored, expected %d" % (n, REPORTS))
    tap.check("database A: a clean ingest of %d reports: exit 0 (%.2f s)"
              % (REPORTS, r.seconds), problems)

    b = cluster.new_db()
    argv = [env.dmarcd, "ingest", "--db", b.conninfo, "--config", config,
            "--no-progress", directory]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=h.clean_env())
    lines = 0
    said_stored = []
    while lines < 30:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith(directory.encode()):
            lines += 1
            said_stored.append(line)
    running = p.poll() is None
    t0 = time.monotonic()
    cluster.kill()
    stopped_in = time.monotonic() - t0
    try:
        out, err = p.communicate(timeout=120)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = "none (hung for 120 s after PostgreSQL stopped)"
    err = err.decode("utf-8", "replace")
    said_stored += [l for l in out.split(b"\n")
                    if l.startswith(directory.encode())]
    finished = len(said_stored) - lines
    tap.note("PostgreSQL stopped after %d committed inputs (in %.2f s); "
             "ingest had printed %d input lines when it ended"
             % (lines, stopped_in, finished))
    problems = []
    if not running or finished >= REPORTS:
        problems.append("ingest was not running any more when PostgreSQL "
                        "stopped: nothing tested")
    if rc != 75:
        problems.append("exit %s, expected 75\nstderr: %s" % (rc, err))
    elif "PostgreSQL" not in err and "postgres" not in err.lower():
        problems.append("stderr does not mention PostgreSQL: %s" % err)
    tap.check("PostgreSQL stopped (-m immediate) during ingest: exit 75",
              problems)

    cluster.restart()
    tap.check("after the restart: nothing half-stored", b.consistency())
    stored = b.int("SELECT count(*) FROM dmarcd.reports")
    problems = []
    if not 0 < stored < REPORTS:
        problems.append("%d reports stored before the crash" % stored)
    if stored % 5:
        problems.append("%d reports stored: not whole batches of 5"
                        % stored)
    sources = set(s for (s,) in b.rows("SELECT source FROM dmarcd.reports"))
    lost = [l.decode(errors="replace") for l in said_stored
            if l.decode(errors="replace").partition(": ")[0] not in sources]
    if lost:
        problems.append("%d inputs printed as stored are not in the "
                        "database, e.g. %s" % (len(lost), lost[0]))
    tap.check("after the restart: only whole batches stored (%d reports), "
              "every input printed as stored is there" % stored, problems)

    r = b.dmarcd("ingest", "--quiet", directory, config=config)
    tap.check("re-run after the restart: exit 0",
              [] if r.rc == 0 else [r.describe()])
    tap.check("re-run: nothing half-stored", b.consistency())
    for name, rows, problems in h.compare_databases(a, b):
        tap.check("re-run: equals the clean run: %s (%d rows)"
                  % (name, rows), problems)
    sa, sb = a.stats(), b.stats()
    problems = []
    for k in ("reports", "records", "messages", "revisions",
              "failure_reports", "rejected"):
        if sa.get(k) != sb.get(k):
            problems.append("stats %s: clean %r, after the crash %r"
                            % (k, sa.get(k), sb.get(k)))
    if sb.get("duplicates") != stored:
        problems.append("stats duplicates %r, expected %d (the reports "
                        "stored before the crash, seen again)"
                        % (sb.get("duplicates"), stored))
    tap.check("re-run: stats equal the clean run's; duplicates are the "
              "reports stored before the crash", problems)

    # No PostgreSQL at all.
    port = free_port()
    dead = "host=127.0.0.1 port=%d user=postgres password=s3cret " \
        "dbname=dmarcd connect_timeout=5" % port
    sample = os.path.join(env.samples, "google-example.com.xml")
    problems = []
    for args in (("ingest", sample), ("stats",), ("migrate",),
                 ("migrate", "--status"), ("rejected", "list")):
        r = b.dmarcd(*args, db=dead)
        if r.rc != 75:
            problems.append("%s: exit %s, expected 75" % (args[0], r.rc))
        if "connect" not in r.err:
            problems.append("%s: stderr does not say it cannot connect: %r"
                            % (" ".join(args), r.err))
        if "s3cret" in r.out + r.err:
            problems.append("%s: the password is printed: %r"
                            % (" ".join(args), r.out + r.err))
    tap.check("PostgreSQL not running, --db with a password: exit 75, "
              "'cannot connect', no password printed", problems)

    conf = os.path.join(env.work, "dead.conf")
    with open(conf, "w") as f:
        f.write("[database]\nconninfo = %s\n" % dead)
    # A password in the file: only its owner may read it (0600), or
    # dmarcd refuses the file before it tries to connect.
    os.chmod(conf, 0o600)
    argv = [env.dmarcd, "ingest", "--config", conf, sample]
    r = h.run(argv)
    problems = []
    if r.rc != 75:
        problems.append("exit %s, expected 75" % r.rc)
    if "connect" not in r.err:
        problems.append("stderr does not say it cannot connect: %r" % r.err)
    if "s3cret" in r.out + r.err:
        problems.append("the password is printed: %r" % (r.out + r.err))
    tap.check("PostgreSQL not running, conninfo with a password in the "
              "configuration file: exit 75, no password printed", problems)

    # A URI with the password in it.
    r = b.dmarcd("ingest", sample, db="postgresql://postgres:s3cret@"
                 "127.0.0.1:%d/dmarcd?connect_timeout=5" % port)
    problems = []
    if r.rc != 75:
        problems.append("exit %s, expected 75" % r.rc)
    if "s3cret" in r.out + r.err:
        problems.append("the password is printed: %r" % (r.out + r.err))
    tap.check("PostgreSQL not running, a postgresql:// URI with a "
              "password: exit 75, no password printed", problems)


if __name__ == "__main__":
    h.run_main(main)
