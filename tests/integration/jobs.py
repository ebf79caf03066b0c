#!/usr/bin/env python3
"""jobs.py - `dmarcd ingest --jobs N`: several processes share the files.

Prints TAP; skipped without PostgreSQL or the generator.

* 150 generated reports (plain and gzip, 1-50 records, several domains
  and days), ingested with --jobs 3 into one database and with one
  process into another: both exit 0; the two databases hold the same
  rows (reports, records, results, rollups, raw bytes...), nothing
  half-stored; stdout has one well-formed line per input, each input
  once (the jobs' lines do not mix), and one last line summing them up;
* the same again with --jobs 3: every report a duplicate, exit 0;
* with --jobs 3, an input that is no report and a path that does not
  exist: the rejected input has its one line, the missing path its one
  error (not one per job), the status is the worse of the two (66);
* --jobs with standard input, --jobs 0 and --jobs 65: usage errors (64);
* --jobs 2 with PostgreSQL unreachable: 75;
* SIGTERM to the parent while its jobs run: it reaches the jobs, the
  parent exits 75, no job is left behind (no connection stays), nothing
  is half-stored.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DAY = 86400
JAN1 = 1767225600
REPORTS = 150


def make_reports(gen, directory):
    for i in range(REPORTS):
        begin = JAN1 + (i % 40) * DAY + (3600 * (i % 7) if i % 3 else 0)
        end = begin + (2 * DAY - 1 if i % 9 == 0 else DAY - 1)
        gz = i % 2 == 0
        path = os.path.join(directory, "j%03d.xml%s" % (i, ".gz" if gz
                                                        else ""))
        options = ["--domain", "j%d.example" % (i % 4), "--begin", begin,
                   "--end", end, "--senders", 30]
        if gz:
            options.append("--gzip")
        gen(path, 1 + (i * 7) % 50, 7000 + i, *options)


LINE = re.compile(r"^(\S+): (1 report stored \(\d+ records, \d+ messages\)"
                  r"|1 duplicate|.*rejected.*)$")
TOTAL = re.compile(r"^dmarcd ingest: (\d+) inputs: (\d+) reports stored, "
                   r"(\d+) revisions, (\d+) failure reports, (\d+) "
                   r"duplicates, (\d+) rejected; (\d+) records")


def lines_per_input(out, prefix):
    """{input: [lines]} of the lines naming an input under prefix."""
    seen = {}
    for line in out.splitlines():
        if line.startswith(prefix):
            m = LINE.match(line)
            name = m.group(1) if m else line.split(":", 1)[0]
            seen.setdefault(name, []).append(line)
    return seen


def main(tap):
    env, gen, directory = h.setup_with_generator("reports")
    make_reports(gen, directory)
    names = sorted(os.path.join(directory, n) for n in os.listdir(directory))

    cluster = h.Cluster(env)
    a = cluster.new_db()
    ra = a.dmarcd("ingest", "--quiet", directory)
    b = cluster.new_db()
    rb = b.dmarcd("ingest", "--jobs", "3", directory)
    problems = []
    for who, r in (("one process", ra), ("--jobs 3", rb)):
        if r.rc != 0:
            problems.append("%s: %s" % (who, r.describe()))
    stored = b.int("SELECT count(*) FROM dmarcd.reports")
    if stored != REPORTS:
        problems.append("--jobs 3 stored %s reports, expected %d"
                        % (stored, REPORTS))
    problems += ["--jobs 3: " + p for p in b.consistency()]
    tap.check("%d reports with --jobs 3 and with one process: both exit 0, "
              "all stored, nothing half-stored" % REPORTS, problems)

    problems = []
    for table, rows, diffs in h.compare_databases(a, b):
        problems += ["%s: %s" % (table, d) for d in diffs]
    tap.check("--jobs 3 stores the same rows as one process (reports, "
              "records, results, rollups, raw bytes...)", problems)

    problems = []
    seen = lines_per_input(rb.out, directory)
    if sorted(seen) != names:
        problems.append("lines for %d inputs, expected %d (missing %r, "
                        "unexpected %r)" % (
                            len(seen), len(names),
                            sorted(set(names) - set(seen))[:3],
                            sorted(set(seen) - set(names))[:3]))
    for name, ls in sorted(seen.items()):
        if len(ls) != 1 or not LINE.match(ls[0]) or \
                "report stored" not in ls[0]:
            problems.append("%s: lines %r" % (name, ls))
    totals = [TOTAL.match(line) for line in rb.out.splitlines()]
    totals = [m for m in totals if m]
    records = a.int("SELECT count(*) FROM dmarcd.records")
    if len(totals) != 1:
        problems.append("%d totals lines, expected 1: %r" % (len(totals),
                                                              rb.out[-300:]))
    elif [int(x) for x in totals[0].groups()] != [REPORTS, REPORTS, 0, 0,
                                                   0, 0, records]:
        problems.append("totals %r, expected %d inputs and reports, %d "
                        "records" % (totals[0].group(0), REPORTS, records))
    if not TOTAL.match((rb.out.splitlines() or [""])[-1]):
        problems.append("the totals line is not the last one")
    tap.check("--jobs 3: one well-formed line per input, each once; one "
              "last line with the sums", problems)

    r = b.dmarcd("ingest", "--jobs", "3", directory)
    m = [TOTAL.match(line) for line in r.out.splitlines()]
    m = [x for x in m if x]
    problems = [] if r.rc == 0 else [r.describe()]
    if not m or [int(x) for x in m[0].groups()[:6]] != [REPORTS, 0, 0, 0,
                                                        REPORTS, 0]:
        problems.append("totals %r, expected %d duplicates"
                        % (m[0].group(0) if m else None, REPORTS))
    if b.int("SELECT count(*) FROM dmarcd.reports") != REPORTS:
        problems.append("reports stored twice")
    tap.check("the same again with --jobs 3: every report a duplicate, "
              "exit 0", problems)

    bad_dir = os.path.join(env.work, "bad")
    os.makedirs(bad_dir)
    for name in names[:5]:
        shutil.copy(name, bad_dir)
    bad = os.path.join(bad_dir, "not-a-report.xml")
    with open(bad, "w") as f:
        f.write("<html><body>no report here</body></html>\n")
    missing = os.path.join(env.work, "no-such-file.xml")
    c = cluster.new_db()
    r = c.dmarcd("ingest", "--jobs", "3", bad_dir, missing)
    problems = []
    if r.rc != 66:
        problems.append("exit %d, expected 66 (a path missing, an input "
                        "rejected): %s" % (r.rc, r.describe()))
    if r.err.count(missing) != 1:
        problems.append("the missing path named %d times on stderr, "
                        "expected once: %r" % (r.err.count(missing),
                                               r.err))
    seen = lines_per_input(r.out, bad_dir)
    if len(seen.get(bad, [])) != 1 or "rejected" not in seen[bad][0]:
        problems.append("the rejected input's lines: %r" % seen.get(bad))
    if len(seen) != 6 or any(len(v) != 1 for v in seen.values()):
        problems.append("lines per input %r, expected one each for 6"
                        % {k: len(v) for k, v in seen.items()})
    if c.int("SELECT count(*) FROM dmarcd.rejected_inputs") != 1 or \
            c.int("SELECT count(*) FROM dmarcd.reports") != 5:
        problems.append("stored %r, expected 5 reports and 1 rejected "
                        "input" % c.counts())
    tap.check("--jobs 3, an input that is no report and a missing path: "
              "one line or error each (not one per job), exit 66", problems)

    problems = []
    for args, why in ((["--jobs", "2", "-"], "standard input"),
                      (["--jobs", "0", directory], "--jobs 0"),
                      (["--jobs", "65", directory], "--jobs 65"),
                      (["--jobs", "x", directory], "--jobs x")):
        r = c.dmarcd("ingest", *args, input=b"")
        if r.rc != 64 or "jobs" not in r.err:
            problems.append("%s: %s" % (why, r.describe()))
    tap.check("--jobs with standard input, 0, 65 or not a number: usage "
              "error (64), saying so", problems)

    # Port 1 on loopback: nothing listens there.
    r = h.run([env.dmarcd, "ingest", "--jobs", "2", "--config",
               env.empty_config, "--db",
               "host=127.0.0.1 port=1 dbname=x connect_timeout=3",
               directory])
    tap.check("--jobs 2 with PostgreSQL unreachable: exit 75",
              [] if r.rc == 75 else [r.describe()])

    d = cluster.new_db()
    name = d.conninfo.split("dbname=")[1].split()[0]
    config = os.path.join(env.work, "slow.conf")
    with open(config, "w") as f:
        f.write("[ingest]\nbatch_reports = 3\n")
    p = subprocess.Popen([env.dmarcd, "ingest", "--jobs", "2", "--db",
                          d.conninfo, "--config", config, directory],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=h.clean_env())
    p.stdout.readline()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=h.TIMEOUT)
    problems = []
    if p.returncode != 75:
        problems.append("exit %d, expected 75: %s" % (
            p.returncode, err.decode(errors="replace").strip()))
    left = None
    for _ in range(100):
        left = d.int("SELECT count(*) FROM pg_stat_activity WHERE datname "
                     "= '%s' AND pid <> pg_backend_pid()" % name)
        if left == 0:
            break
        time.sleep(0.1)
    if left:
        problems.append("%d connections of the jobs still open 10 s after "
                        "the parent ended" % left)
    stored = d.int("SELECT count(*) FROM dmarcd.reports")
    if stored >= REPORTS:
        problems.append("all %d reports stored: the signal came too late "
                        "to test anything" % stored)
    problems += d.consistency()
    tap.check("SIGTERM to the parent of --jobs 2: passed on, exit 75, no "
              "job left running, nothing half-stored (%s of %d reports "
              "stored)" % (stored, REPORTS), problems)


if __name__ == "__main__":
    h.run_main(main)
