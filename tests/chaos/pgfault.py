#!/usr/bin/env python3
"""pgfault.py - PostgreSQL restarted, or the connection dropped, in the
middle of `dmarcd ingest` and `dmarcd fetch`: exit 75 (docs: PostgreSQL
unreachable is a temporary failure, nothing half-stored, run again), and
the rerun ends with the database of a clean run, no mail lost.

Prints TAP; skipped without PostgreSQL. Without Dovecot only ingest is
faulted (noted). The workload is kill9.py's (chaoslib.Workload), the
cluster runs with synchronous_commit on (what dmarcd was told is
committed survives an immediate restart).

CHAOS_ITERATIONS times (default 10), in a fresh copy of the migrated
database, alternately ingest or fetch runs (the other one has run to its
end before), and after a delay drawn from 0 to its clean run time one
fault, drawn by the seeded RNG:

* pg_ctl restart -m fast (sessions terminated, a clean shutdown);
* pg_ctl restart -m immediate (a crash, recovery at start);
* pg_terminate_backend() of the database's sessions from a superuser
  connection (the connection dropped mid-transaction).

The run must end within 120 s with 75, or with a clean run's status
when it had finished its work before the fault; nothing is half-stored,
no mail lost, and a rerun to completion gives the reference digest.
Figures: iterations, seed, faults by kind and phase, exit statuses,
reruns and their mean time.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as c  # noqa: E402

h = c.h
FAULTS = ("restart -m fast", "restart -m immediate", "terminate")


def main(tap):
    env = h.setup()
    n = c.iterations()
    rng = c.rng(tap)
    fig = c.Figures("pgfault")
    w = c.Workload(tap, env, "pf")
    cluster = h.Cluster(env, synchronous_commit=True)
    template = c.Template(cluster)
    ref_db = template.copy()
    problems = w.reference(ref_db)
    ref = c.digest(ref_db)
    tap.check("the reference: %s; %s" % (w.describe(),
                                         c.counts_line(ref[1])), problems)
    fig.clean_seconds = sum(w.clean.values())

    def fault(kind, db):
        if kind == "terminate":
            return c.terminate(cluster, db.name)
        c.pg_ctl(cluster, "restart", "-m", kind.split()[-1])
        return 0

    problems = []
    statuses = {}
    landed = 0
    for k in range(n):
        victim = w.what[k % len(w.what)]
        kind = FAULTS[rng.randrange(len(FAULTS))]
        delay = rng.uniform(0, w.clean[victim])
        db = template.copy()
        where = "iteration %d (%s, %s after %.3f s)" % (k + 1, victim,
                                                         kind, delay)
        problems += w.before_fault(db, victim, where)
        run, total, prefixes = w.start(db, victim)
        alive, before = c.fault_at(run, delay, lambda: fault(kind, db),
                                   prefixes)
        rc = run.wait(c.FAULT_TIMEOUT)
        if rc is None:
            problems.append("%s: still running %d s after the fault"
                            % (where, c.FAULT_TIMEOUT))
            run.signal(9)
            run.wait(30)
        if not c.wait_pg(cluster):
            raise RuntimeError("%s: PostgreSQL did not come back" % where)
        ph = c.phase(before, total, not alive)
        fig.kill("%s %s" % (kind, ph))
        landed += alive
        statuses["%s exit %s" % (victim, rc)] = \
            statuses.get("%s exit %s" % (victim, rc), 0) + 1
        if alive and rc not in (75, w.expected[victim]):
            problems.append("%s: exit %s, expected 75: %s"
                            % (where, rc, run.describe()))
        elif not alive and rc != w.expected[victim]:
            problems.append("%s: exit %s before the fault: %s"
                            % (where, rc, run.describe()))
        if rc == 75 and "postgres" not in run.stderr().lower() and \
                "database" not in run.stderr().lower():
            problems.append("%s: exit 75, but stderr does not name "
                            "PostgreSQL: %r" % (where, run.stderr()[-500:]))
        problems += w.after_fault(db, victim, where, ref, fig)
        template.drop(db)
    fig.note("exit statuses: %s" % ", ".join(
        "%s %d" % kv for kv in sorted(statuses.items())))
    fig.note("%d of %d faults landed while the run ran" % (landed, n))
    if n >= 4 and landed < n // 2:
        problems.append("only %d of %d faults landed while the run ran: "
                        "the test did not test much" % (landed, n))
    tap.check("%d runs (%s) with PostgreSQL restarted (-m fast, -m "
              "immediate) or their connection terminated at random points: "
              "exit 75, nothing half-stored, no mail lost, the rerun gives "
              "the reference digest" % (n, " and ".join(w.what)), problems)
    fig.report(tap, n, rng.seed_value)
    w.stop()


if __name__ == "__main__":
    h.run_main(main)
