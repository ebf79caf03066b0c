#!/usr/bin/env python3
"""kill.py - kill -9 of `dmarcd ingest` at random moments loses nothing and
stores nothing twice.

Prints TAP; skipped without PostgreSQL, or without the generator
($top_srcdir/../shared/tools/gen_aggregate.py).

200 small generated reports (1 to 50 records, plain or gzip, five policy
domains, begin dates over three months so partitions are made during the
run, some spanning two days) in one directory; batch_reports = 7 and
batch_ms = 60000 (a --config file): batches of 7 inputs, so that kills land
inside batches.

* database A: one clean `dmarcd ingest DIR`, the reference;
* database B: 20 times `dmarcd ingest DIR`, killed with SIGKILL at a
  random moment, each run continuing where the last left off: after a
  random number of committed inputs (ingest prints an input's line once
  its batch is committed) within the next ones to store, then a random
  delay of up to a batch and a half, so that kills land everywhere in a
  batch and the 20 kills spread over the whole set; after every kill
  nothing is half-stored (pgharness.Db.consistency: no NULL
  payload_sha256, record counts match the rows, rollup = messages, raw
  bytes kept); then one run to completion (exit 0);
* then B equals A row for row: reports (without id, duplicates,
  ingested_at, last_duplicate_at), policy_published, records, DKIM and SPF
  results and warnings (joined to their report's key instead of its id),
  rollup_daily exactly, reporters, raw_inputs (domain, sha256, size,
  encoding) and the raw bytes themselves (md5 of the chunks in order).

The random seed is printed; DMARCD_TEST_SEED=N chooses the same kill
points again (the timing of a run still varies).
"""
import os
import random
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

DAY = 86400
JAN1 = 1767225600
REPORTS = 200
KILLS = 20

def make_reports(gen, directory, rng):
    for i in range(REPORTS):
        begin = JAN1 + rng.randrange(0, 90) * DAY + rng.choice(
            (0, 0, 0, 3600 * rng.randrange(1, 23)))
        end = begin + (2 * DAY - 1 if rng.random() < 0.15 else DAY - 1)
        gz = rng.random() < 0.5
        path = os.path.join(directory, "r%03d.xml%s" % (i, ".gz" if gz
                                                        else ""))
        options = ["--domain", "k%d.example" % (i % 5),
                   "--begin", begin, "--end", end, "--senders", 40]
        if gz:
            options.append("--gzip")
        if rng.random() < 0.2:
            options.append("--quirks")
        gen(path, rng.randint(1, 50), 5000 + i, *options)


def main(tap):
    env, gen, directory = h.setup_with_generator("reports")
    seed = int(os.environ.get("DMARCD_TEST_SEED") or
               random.SystemRandom().randrange(1 << 30))
    tap.note("random seed %d (DMARCD_TEST_SEED=%d replays it)"
             % (seed, seed))
    rng = random.Random(seed)
    # The reports themselves do not depend on the seed.
    make_reports(gen, directory, random.Random(1))
    config = os.path.join(env.work, "dmarcd.conf")
    with open(config, "w") as f:
        f.write("[ingest]\nbatch_reports = 7\nbatch_ms = 60000\n")

    cluster = h.Cluster(env)
    a = cluster.new_db()
    r = a.dmarcd("ingest", "--quiet", directory, config=config)
    clean = r.seconds
    n = a.int("SELECT count(*) FROM dmarcd.reports")
    problems = [] if r.rc == 0 else [r.describe()]
    if n != REPORTS:
        problems.append("%s reports stored, expected %d" % (n, REPORTS))
    tap.check("database A: a clean ingest of %d reports (batch_reports = "
              "7): exit 0, all stored (%.2f s)" % (REPORTS, clean), problems)

    b = cluster.new_db()
    argv = [env.dmarcd, "ingest", "--db", b.conninfo, "--config", config,
            "--no-progress", directory]
    per_batch = clean / REPORTS * 7
    step = max(3, 2 * REPORTS // KILLS)
    landed = 0
    progress = []
    problems = []
    for k in range(KILLS):
        # Where to kill: after a random number of inputs committed (each
        # committed input prints its line), among the next ones to store
        # while some remain, anywhere (duplicates) afterwards; then a
        # random delay of up to a batch and a half, to land mid-batch.
        stored = progress[-1] if progress else 0
        if stored < REPORTS:
            target = rng.randint(stored, min(REPORTS - 1, stored + step))
        else:
            target = rng.randint(0, REPORTS - 1)
        delay = rng.uniform(0, 1.5 * per_batch)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=h.clean_env())
        lines = 0
        while lines < target:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(directory.encode()):
                lines += 1
        time.sleep(delay)
        if p.poll() is None:
            landed += 1
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.stdout.close()
        p.wait()
        progress.append(b.int("SELECT count(*) FROM dmarcd.reports"))
        for problem in b.consistency():
            problems.append("after kill %d (%d inputs, then %.3f s): %s"
                            % (k + 1, target, delay, problem))
    tap.note("%d of %d kills landed while ingest ran; reports stored after "
             "each kill: %s" % (landed, KILLS, " ".join(map(str, progress))))
    if landed < KILLS * 3 // 4:
        problems.append("only %d of %d kills landed during a run: the test "
                        "did not test much" % (landed, KILLS))
    tap.check("database B: %d runs killed with SIGKILL at random moments; "
              "after each, nothing half-stored" % KILLS, problems)

    r = b.dmarcd("ingest", "--quiet", directory, config=config)
    tap.check("database B: the final run completes, exit 0",
              [] if r.rc == 0 else [r.describe()])
    tap.check("database B: nothing half-stored", b.consistency())

    for name, rows, problems in h.compare_databases(a, b):
        tap.check("B equals A: %s (%d rows)" % (name, rows), problems)

    sa, sb = a.stats(), b.stats()
    problems = []
    for k in ("reports", "records", "messages", "revisions",
              "failure_reports", "rejected"):
        if sa.get(k) != sb.get(k):
            problems.append("stats %s: A %r, B %r" % (k, sa.get(k),
                                                      sb.get(k)))
    tap.check("stats of B equal those of A (but duplicates)", problems)


if __name__ == "__main__":
    h.run_main(main)
