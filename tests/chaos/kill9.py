#!/usr/bin/env python3
"""kill9.py - kill -9 of `dmarcd ingest` and `dmarcd fetch` at random
points: the rerun ends with the database of a clean run, no mail lost.

Prints TAP; skipped without PostgreSQL. Without Dovecot only ingest is
killed (noted).

The inputs: aggregate reports (gen_aggregate.py when ../shared is there,
else written by chaoslib), failure reports and one input that is no
report, as files for ingest; more aggregate and failure reports as mails
in Dovecot for fetch. batch_reports = 3 (batch_ms 60000) and fetch_batch
= 4, so that a kill lands between and inside batches.

* the reference: a fresh database, `dmarcd ingest` of the files (exit
  65: the bad input is rejected, its bytes kept) and `dmarcd fetch`
  (exit 0); its digest (chaoslib.digest: reports, records, DKIM and SPF
  results, rollup sums by key, raw inputs and bytes, failure reports,
  rejected inputs; no ids, times or sources) and each run's time;
* CHAOS_ITERATIONS times (default 10; `make chaos`: 100), in a fresh
  copy of the migrated database, alternately ingest or fetch is killed:
  the other one runs to its end, the victim is started and SIGKILLed
  after a delay drawn from 0 to its clean run time (the seeded RNG);
  then nothing is half-stored (pgharness consistency), no mail is lost
  (every Message-ID in INBOX, dmarcd-processed or dmarcd-rejected), and
  a rerun to completion gives the reference digest, INBOX empty, each
  mail once.

Figures ('#' lines): iterations, seed, kills by phase (what the victim
had printed when it was killed), reruns and their mean time.
"""
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as c  # noqa: E402

h = c.h


def main(tap):
    env = h.setup()
    n = c.iterations()
    rng = c.rng(tap)
    fig = c.Figures("kill9")
    w = c.Workload(tap, env, "ki")
    cluster = h.Cluster(env)
    template = c.Template(cluster)
    ref_db = template.copy()
    problems = w.reference(ref_db)
    ref = c.digest(ref_db)
    if not ref[1]["rejected_inputs"] or not ref[1]["failure_reports"]:
        problems.append("the reference holds no rejected input or no "
                        "failure report: %s" % c.counts_line(ref[1]))
    tap.check("the reference: %s; %s; clean runs %s"
              % (w.describe(), c.counts_line(ref[1]), ", ".join(
                  "%s %.2f s" % kv for kv in sorted(w.clean.items()))),
              problems)
    fig.clean_seconds = sum(w.clean.values())

    problems = []
    landed = {}
    tries = {}
    for k in range(n):
        victim = w.what[k % len(w.what)]
        delay = rng.uniform(0, w.clean[victim])
        db = template.copy()
        where = "iteration %d (%s killed after %.3f s)" % (k + 1, victim,
                                                           delay)
        problems += w.before_fault(db, victim, where)
        run, total, prefixes = w.start(db, victim)
        alive, before = c.fault_at(run, delay,
                                   lambda: run.signal(signal.SIGKILL),
                                   prefixes)
        run.wait(60)
        fig.kill("%s %s" % (victim, c.phase(before, total, not alive)))
        tries[victim] = tries.get(victim, 0) + 1
        landed[victim] = landed.get(victim, 0) + (1 if alive else 0)
        problems += w.after_fault(db, victim, where, ref, fig)
        template.drop(db)
    for victim in w.what:
        fig.note("%s: %d of %d kills landed while it ran"
                 % (victim, landed.get(victim, 0), tries.get(victim, 0)))
        if tries.get(victim, 0) >= 4 and \
                landed.get(victim, 0) < tries[victim] // 2:
            problems.append("only %d of %d kills of %s landed while it "
                            "ran: the test did not test much"
                            % (landed.get(victim, 0), tries[victim],
                               victim))
    tap.check("%d runs (%s) killed with SIGKILL at random points: nothing "
              "half-stored, no mail lost, the rerun gives the reference "
              "digest" % (n, " and ".join(w.what)), problems)
    fig.report(tap, n, rng.seed_value)
    w.stop()


if __name__ == "__main__":
    h.run_main(main)
