#!/usr/bin/env python3
"""dovecot.py - Dovecot killed and restarted in the middle of a FETCH
(`dmarcd fetch`) and of an IDLE (`dmarcd run`): fetch exits 75 and a
rerun completes; run reconnects by itself and collects the mail
delivered after the restart; no mail lost, the reference digest.

Prints TAP; skipped without PostgreSQL or Dovecot.

* mid-FETCH: 2 mails of about 2 MiB (plain XML attached, fetched in
  parts of 1 MiB) and 4 small ones. The reference is a clean fetch into
  a fresh database (its time T). CHAOS_ITERATIONS times (default 10):
  the mails copied into INBOX again, a fetch into a fresh copy of the
  migrated database, Dovecot killed (SIGKILL to its master and every
  session) after a delay drawn from 0 to T by the seeded RNG: fetch ends
  with 75 (0 when it had stored and moved all), nothing half-stored, no mail lost;
  Dovecot restarted, a rerun exits 0 and gives the reference digest,
  INBOX empty. A mail in two places is counted, not failed: Dovecot's
  MOVE on a maildir is a copy then an expunge, and the kill may fall
  between (docs/imap.md, "What is known not to be exactly once").
* mid-IDLE: one `dmarcd run` (poll_interval 60, reconnect_max 2);
  CHAOS_ITERATIONS / 2 times (at least 2): once it waits in IDLE (the
  last command of its session in Dovecot's rawlog), Dovecot killed and
  restarted, one more mail delivered: it is stored within 30 s and moved
  out of INBOX, the daemon still running. Then SIGTERM: exit 0; the
  database's digest equals a clean fetch of the same mails.

Figures: iterations, seed, kills by phase, reruns and their mean time,
reconnect times, mails found twice.
"""
import os
import signal
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as c  # noqa: E402

h, ih = c.h, c.ih
BIG = 2
BIG_RECORDS = 4000


def big_mails(env, work):
    directory = os.path.join(work, "big")
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in range(BIG):
        path = os.path.join(directory, "big%d.xml" % i)
        c.write_aggregate(path, "dc-big-%d" % i, "big%d.example" % (i % 2),
                          c.JAN1 + i * c.DAY, BIG_RECORDS, 900 + i)
        paths.append(path)
    out = []
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            data = f.read()
        mid = "<dc-big-%d@chaos.test>" % i
        mail = ih.report_mail(data, os.path.basename(path),
                              message_id=mid, gzip_it=False)
        mp = os.path.join(directory, "big%d.eml" % i)
        with open(mp, "wb") as f:
            f.write(mail)
        out.append((mp, mid))
    return out


def in_idle(dc):
    sessions = dc.sessions()
    return bool(sessions) and bool(sessions[-1]) and \
        sessions[-1][-1].split(" ", 1)[-1].upper() == "IDLE"


def main(tap):
    env = ih.setup()
    n = c.iterations()
    rng = c.rng(tap)
    fig = c.Figures("dovecot")
    work = os.path.join(env.work, "dovecot")
    mails = big_mails(env, work)
    small = c.make_aggregates(env, os.path.join(work, "small"), 4, "dcs", 5)
    mails += c.write_mails(small, os.path.join(work, "smallmail"), "dcs")
    delivered = [mid for _, mid in mails]
    dc = ih.Dovecot(env)
    dc.doveadm("mailbox", "create", "-u", dc.user, "Source")
    for path, _ in mails:
        dc.deliver(path, "Source")
    conf = ih.write_config(env, "dovecot.conf", dc, fetch_batch=4,
                           sections={"ingest": {"batch_reports": 2,
                                                "batch_ms": 60000}})
    cluster = h.Cluster(env)
    template = c.Template(cluster)

    ref_db = template.copy()
    c.reset_mailbox(dc, "Source", c.FOLDERS)
    r = ref_db.dmarcd("fetch", config=conf)
    clean = r.seconds
    fig.clean_seconds = clean
    problems = [] if r.rc == 0 else [r.describe()]
    problems += ref_db.consistency()
    ref = c.digest(ref_db)
    sizes = [os.path.getsize(p) for p, _ in mails[:BIG]]
    if min(sizes) < 3 << 19:
        problems.append("the big mails are only %d bytes" % min(sizes))
    tap.check("the reference: a clean fetch of %d mails (%d of %.1f MiB), "
              "%.2f s; %s" % (len(mails), BIG, min(sizes) / 1048576.0, clean,
                              c.counts_line(ref[1])), problems)

    problems = []
    landed = 0
    twice = 0
    for k in range(n):
        delay = rng.uniform(0, clean)
        where = "mid-FETCH %d (Dovecot killed after %.3f s)" % (k + 1,
                                                                delay)
        db = template.copy()
        c.reset_mailbox(dc, "Source", c.FOLDERS)
        run = c.start(db, "fetch", config=conf)
        alive, before = c.fault_at(run, delay, dc.kill, ("test/INBOX#",))
        rc = run.wait(c.FAULT_TIMEOUT)
        landed += alive
        fig.kill("fetch " + c.phase(before, len(mails), not alive))
        if rc is None:
            problems.append("%s: still running %d s after the kill"
                            % (where, c.FAULT_TIMEOUT))
            run.signal(signal.SIGKILL)
            run.wait(30)
        elif rc != 75 and not (rc == 0 and (not alive or c.printed(
                run, ("test/INBOX#",)) == len(mails))):
            problems.append("%s: exit %s, expected 75: %s"
                            % (where, rc, run.describe()))
        dc.restart()
        lost, _ = c.mailbox_problems(dc, delivered, c.FOLDERS, True)
        problems += ["%s: after the kill: %s" % (where, p)
                     for p in db.consistency() + lost]
        r = db.dmarcd("fetch", config=conf)
        fig.rerun(r.seconds)
        if r.rc != 0:
            problems.append("%s: the rerun: %s" % (where, r.describe()))
        lost, two = c.mailbox_problems(dc, delivered, c.FOLDERS, True)
        twice += two
        problems += ["%s: after the rerun: %s" % (where, p)
                     for p in db.consistency() + lost]
        problems += ["%s: %s" % (where, p) for p in
                     c.digest_problems(ref, c.digest(db), "the rerun")]
        if dc.count("INBOX"):
            problems.append("%s: INBOX holds %d mails after the rerun"
                            % (where, dc.count("INBOX")))
        template.drop(db)
    fig.note("mid-FETCH: %d of %d kills landed while fetch ran; %d mails "
             "found in two places (a MOVE cut by the kill)"
             % (landed, n, twice))
    if n >= 4 and landed < n // 2:
        problems.append("only %d of %d kills landed while fetch ran"
                        % (landed, n))
    tap.check("%d fetches with Dovecot killed mid-FETCH: exit 75, nothing "
              "half-stored, no mail lost; restarted, the rerun exits 0 "
              "with the reference digest" % n, problems)

    # mid-IDLE
    idles = max(2, n // 2)
    idle_reports = c.make_aggregates(env, os.path.join(work, "idle"), idles,
                                     "dci", 6)
    idle_mails = c.write_mails(idle_reports, os.path.join(work,
                                                          "idlemail"),
                               "dci")
    dc.doveadm("mailbox", "create", "-u", dc.user, "IdleSource")
    for path, _ in idle_mails:
        dc.deliver(path, "IdleSource")
    idle_ref = template.copy()
    c.reset_mailbox(dc, "IdleSource", c.FOLDERS)
    r = idle_ref.dmarcd("fetch", config=conf)
    if r.rc != 0:
        raise RuntimeError("the mid-IDLE reference: " + r.describe())
    iref = c.digest(idle_ref)
    c.reset_mailbox(dc, "Source", c.FOLDERS)
    dc.doveadm("expunge", "-u", dc.user, "mailbox", "INBOX", "all")

    db = template.copy()
    run_conf = ih.write_config(env, "idle.conf", dc, sections={
        "daemon": {"poll_interval": 60, "reconnect_max": 2}})
    dc.clear_rawlog()
    run = c.start(db, "run", config=run_conf)
    problems = []
    reconnects = []
    in_idle_kills = 0
    try:
        for k in range(idles):
            where = "mid-IDLE %d" % (k + 1)
            idle = ih.wait_for(lambda: in_idle(dc), 20, 0.1)
            time.sleep(rng.uniform(0, 0.5))
            in_idle_kills += bool(idle)
            fig.kill("run in IDLE" if idle else "run not yet in IDLE")
            dc.kill()
            dc.clear_rawlog()       # no session left to write to it
            dc.restart()
            dc.deliver(idle_mails[k][0])
            t0 = time.monotonic()
            stored = ih.wait_for(lambda: db.int(
                "SELECT count(*) FROM dmarcd.raw_inputs") >= k + 1 and
                dc.count("INBOX") == 0, 30, 0.1)
            took = time.monotonic() - t0
            reconnects.append(took)
            if not stored:
                problems.append("%s: the mail delivered after the restart "
                                "not stored and moved within 30 s" % where)
            if not run.running():
                problems.append("%s: dmarcd run ended: %s"
                                % (where, run.describe()))
                break
    finally:
        run.signal(signal.SIGTERM)
        rc = run.wait(15)
    if rc != 0:
        problems.append("SIGTERM: exit %s: %s" % (rc, run.describe()))
    if "event=imap_error" not in run.stderr():
        problems.append("no event=imap_error logged: %r"
                        % run.stderr()[-500:])
    problems += db.consistency()
    problems += c.digest_problems(iref, c.digest(db), "dmarcd run")
    lost, _ = c.mailbox_problems(dc, [m for _, m in idle_mails], c.FOLDERS,
                                 True)
    problems += lost
    if in_idle_kills < idles // 2:
        problems.append("only %d of %d kills while dmarcd run was in IDLE"
                        % (in_idle_kills, idles))
    if reconnects:
        fig.note("mid-IDLE: %d kills (%d in IDLE); mail stored after the "
                 "restart in %.2f s mean, %.2f s longest"
                 % (idles, in_idle_kills, statistics.mean(reconnects),
                    max(reconnects)))
    tap.check("dmarcd run: Dovecot killed and restarted mid-IDLE %d times: "
              "it reconnects by itself, collects each mail delivered "
              "after the restart, SIGTERM exit 0, the reference digest"
              % idles, problems)
    fig.report(tap, n, rng.seed_value)
    dc.stop()


if __name__ == "__main__":
    h.run_main(main)
