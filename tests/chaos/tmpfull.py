#!/usr/bin/env python3
"""tmpfull.py - a full temporary directory under `dmarcd ingest`: exit 75
(temporary: run again once there is space) with an error naming the
directory, nothing half-stored, and a rerun with space gives the
database of a clean run.

Prints TAP; skipped without PostgreSQL, when not root, or without
`unshare -m` and tmpfs mounts (a container without CAP_SYS_ADMIN).

A small tmpfs is mounted in a private mount namespace (unshare -m: no
other process sees it) and is both TMPDIR and [ingest] tmpdir of the
run. Every other run reads the big report on standard input instead,
which ingest spools to the temporary directory before anything else
(collector/inputs.c). The inputs: small aggregate reports, then one report of 18000
records from distinct addresses, big enough for the store to spill: its
COPY lines pass the 1 MiB kept in memory (store/ingest.c, the spool) and
its rollup keys the 16384 held before spilling (store/rollup.c), both to
temporary files. The reference is a clean ingest with space.

CHAOS_ITERATIONS times (default 10), into a fresh copy of the migrated
database, with a tmpfs of a size drawn by the seeded RNG (16 KiB to 1
MiB, all too small), sometimes half filled beforehand: exit 75, stderr
names the temporary directory and says it is full, nothing half-stored
(pgharness consistency), the big report not stored and not kept as a
rejected input (a full disk is not the input's fault); then a rerun with
space exits 0 (the standard input first, then the files) and gives the
reference digest.

Once: a zip inside gzip, which the parser spools to TMPDIR to read it
(parser/unpack.c), with TMPDIR full: exit 75 naming it; then stored.

When Dovecot is there, once: `dmarcd fetch` of a 2 MiB mail with its
spool ([ingest] tmpdir) on a tmpfs of 256 KiB: exit 75 naming the full
directory, nothing stored, the mail still in INBOX; with space, exit 0,
stored and moved.

Figures: iterations, seed, sizes tried, exit statuses, reruns and their
mean time.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as c  # noqa: E402

h, ih = c.h, c.ih
BIG_RECORDS = 18000
SIZES_K = (16, 64, 128, 256, 512, 1024)

# Mount a tmpfs of $1 at $2 in this private namespace, fill $3 KiB of
# it, then run the rest.
MOUNT = ('mount -t tmpfs -o size="$1" chaos-tmp "$2" || exit 71; '
         'if [ "$3" -gt 0 ]; then dd if=/dev/zero of="$2/filler" bs=1k '
         'count="$3" 2>/dev/null; fi; shift 3; exec "$@"')


def can_mount(env):
    if os.getuid() != 0:
        return "not root (a tmpfs needs a mount in a private namespace)"
    probe = os.path.join(env.work, "probe")
    os.makedirs(probe)
    r = h.run(["unshare", "-m", "sh", "-c", MOUNT, "sh", "16k", probe, "0",
               "true"], timeout=30)
    if r.rc != 0:
        return "unshare -m with a tmpfs mount fails here: %s" % (
            r.err.strip() or "exit %s" % r.rc)
    return None


def write_config(path, tmpdir):
    with open(path, "w") as f:
        f.write("[ingest]\nbatch_reports = 3\nbatch_ms = 60000\n"
                "tmpdir = %s\n" % tmpdir)


def main(tap):
    env = h.setup()
    why = can_mount(env)
    if why:
        h.skip_all(why)
    n = c.iterations()
    rng = c.rng(tap)
    fig = c.Figures("tmpfull")
    work = os.path.join(env.work, "tmpfull")
    files = os.path.join(work, "files")
    c.make_aggregates(env, files, 6, "tf", 7)
    big = os.path.join(files, "zz-big.xml")
    c.write_aggregate(big, "tf-big", "big.example", c.JAN1, BIG_RECORDS,
                      77, distinct_sources=True)
    roomy = os.path.join(work, "roomy")
    os.makedirs(roomy)
    tight = os.path.join(work, "tight")
    os.makedirs(tight)
    roomy_conf = os.path.join(work, "roomy.conf")
    write_config(roomy_conf, roomy)
    tight_conf = os.path.join(work, "tight.conf")
    write_config(tight_conf, tight)

    cluster = h.Cluster(env)
    template = c.Template(cluster)
    ref_db = template.copy()
    r = ref_db.dmarcd("ingest", "--quiet", files, config=roomy_conf)
    fig.clean_seconds = r.seconds
    problems = [] if r.rc == 0 else [r.describe()]
    problems += ref_db.consistency()
    ref = c.digest(ref_db)
    keys = ref_db.int("SELECT count(*) FROM (SELECT DISTINCT source_ip "
                      "FROM dmarcd.rollup_daily WHERE domain = "
                      "'big.example') k")
    if (keys or 0) <= 16384:
        problems.append("the big report has only %s rollup keys: the "
                        "rollup would not spill" % keys)
    tap.check("the reference: a clean ingest with space (%.2f s), the big "
              "report %d records; %s" % (r.seconds, BIG_RECORDS,
                                         c.counts_line(ref[1])), problems)

    problems = []
    statuses = {}
    with open(big, "rb") as f:
        big_bytes = f.read()
    for k in range(n):
        size = rng.choice(SIZES_K)
        filled = rng.choice((0, 0, size // 2))
        # Every other run reads the big report on standard input, which
        # is spooled to the temporary directory first (collector/inputs.c).
        stdin = k % 2 == 1
        where = "iteration %d (%s, a tmpfs of %d KiB, %d KiB filled)" % (
            k + 1, "stdin" if stdin else "files", size, filled)
        fig.kill("%s %d KiB%s" % ("stdin" if stdin else "files", size,
                                  " half filled" if filled else ""))
        db = template.copy()
        argv = ["unshare", "-m", "sh", "-c", MOUNT, "sh", "%dk" % size,
                tight, str(filled), "env", "TMPDIR=" + tight, env.dmarcd,
                "ingest", "--db", db.conninfo, "--config", tight_conf,
                "--quiet", "-" if stdin else files]
        r = h.run(argv, input=big_bytes if stdin else None)
        statuses[r.rc] = statuses.get(r.rc, 0) + 1
        if r.rc != 75:
            problems.append("%s: exit %s, expected 75: %s"
                            % (where, r.rc, r.describe()))
        elif not fig.extra:
            fig.note("the error: %s" % r.err.strip().splitlines()[0])
        if r.rc == 75 and (tight not in r.err or "full" not in r.err):
            problems.append("%s: stderr does not name %s as full: %r"
                            % (where, tight, r.err[-600:]))
        problems += ["%s: %s" % (where, p) for p in db.consistency()]
        stored = db.int("SELECT count(*) FROM dmarcd.reports WHERE domain "
                        "= 'big.example'")
        rejected = db.rows("SELECT error FROM dmarcd.rejected_inputs")
        if stored:
            problems.append("%s: the big report stored" % where)
        if rejected:
            problems.append("%s: kept as rejected: %r" % (where, rejected))
        if os.listdir(tight):
            problems.append("%s: %s holds %r outside the namespace"
                            % (where, tight, os.listdir(tight)))
        took = 0
        if stdin:
            r = db.dmarcd("ingest", "--quiet", "-", config=roomy_conf,
                          input=big_bytes)
            took = r.seconds
            if r.rc != 0 or db.int("SELECT count(*) FROM dmarcd.reports "
                                   "WHERE domain = 'big.example'") != 1:
                problems.append("%s: the rerun of stdin: %s"
                                % (where, r.describe()))
        r = db.dmarcd("ingest", "--quiet", files, config=roomy_conf)
        fig.rerun(took + r.seconds)
        if r.rc != 0:
            problems.append("%s: the rerun: %s" % (where, r.describe()))
        problems += ["%s: after the rerun: %s" % (where, p)
                     for p in db.consistency()]
        problems += ["%s: %s" % (where, p) for p in
                     c.digest_problems(ref, c.digest(db), "the rerun")]
        template.drop(db)
    if os.listdir(roomy):
        problems.append("temporary files left in %s: %r"
                        % (roomy, os.listdir(roomy)))
    fig.note("exit statuses: %s" % ", ".join(
        "%s %d" % (k, v) for k, v in sorted(statuses.items(),
                                            key=lambda kv: str(kv[0]))))
    tap.check("%d ingests with a full temporary directory: exit 75 naming "
              "it, nothing half-stored, nothing kept as rejected; the "
              "rerun with space gives the reference digest" % n, problems)
    zip_in_gzip_full(tap, env, template, work, tight, tight_conf,
                     roomy_conf, big_bytes)
    fetch_full(tap, env, template, work, tight)
    fig.report(tap, n, rng.seed_value)


def zip_in_gzip_full(tap, env, template, work, tight, tight_conf,
                     roomy_conf, report):
    """A zip inside gzip is read through a spool file of the parser's
    (parser/unpack.c: a zip needs seeking, an inflated stream cannot):
    with TMPDIR full, exit 75 naming it; with space, stored."""
    import gzip
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.example!tf-big.xml", report)
    path = os.path.join(work, "zipgz", "big.zip.gz")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(gzip.compress(buf.getvalue()))
    db = template.copy()
    r = h.run(["unshare", "-m", "sh", "-c", MOUNT, "sh", "16k", tight, "0",
               "env", "TMPDIR=" + tight, env.dmarcd, "ingest", "--db",
               db.conninfo, "--config", tight_conf, "--quiet", path])
    problems = []
    if r.rc != 75:
        problems.append("exit %s, expected 75: %s" % (r.rc, r.describe()))
    elif "zip" not in r.err or tight not in r.err or "full" not in r.err:
        problems.append("stderr does not say the zip's spool in %s is "
                        "full: %r" % (tight, r.err[-600:]))
    if db.int("SELECT count(*) FROM dmarcd.reports") or db.rows(
            "SELECT error FROM dmarcd.rejected_inputs"):
        problems.append("something stored or kept as rejected")
    problems += db.consistency()
    r = db.dmarcd("ingest", "--quiet", path, config=roomy_conf)
    if r.rc != 0 or db.int("SELECT count(*) FROM dmarcd.reports WHERE "
                           "domain = 'big.example'") != 1:
        problems.append("with space: %s" % r.describe())
    template.drop(db)
    tap.check("a zip of %d KiB inside gzip with TMPDIR full (the parser's "
              "spool): exit 75 naming it, nothing stored; with space, "
              "stored" % (len(buf.getvalue()) // 1024), problems)


def fetch_full(tap, env, template, work, tight):
    """dmarcd fetch with its spool on a full tmpfs, then with space."""
    why = ih.dovecot_missing()
    if why:
        tap.skip("fetch with a full temporary directory", why)
        return
    path = os.path.join(work, "fetch-big.xml")
    c.write_aggregate(path, "tf-fetch", "fetch.example", c.JAN1, 4000, 78)
    with open(path, "rb") as f:
        mail = ih.report_mail(f.read(), "fetch-big.xml",
                              message_id="<tf-fetch@chaos.test>",
                              gzip_it=False)
    dc = ih.Dovecot(env)
    try:
        dc.deliver_bytes(mail)
        db = template.copy()
        conf = ih.write_config(env, "tmpfull-fetch.conf", dc,
                               sections={"ingest": {"tmpdir": tight}})
        r = h.run(["unshare", "-m", "sh", "-c", MOUNT, "sh", "256k", tight,
                   "0", "env", "TMPDIR=" + tight, env.dmarcd, "fetch",
                   "--db", db.conninfo, "--config", conf])
        problems = []
        if r.rc != 75:
            problems.append("exit %s, expected 75: %s" % (r.rc,
                                                         r.describe()))
        elif tight not in r.err or "full" not in r.err:
            problems.append("stderr does not name %s as full: %r"
                            % (tight, r.err[-600:]))
        problems += db.consistency()
        if db.int("SELECT count(*) FROM dmarcd.raw_inputs"):
            problems.append("something stored")
        if dc.count("INBOX") != 1:
            problems.append("INBOX holds %s mails, expected 1"
                            % dc.count("INBOX"))
        tap.check("fetch of a %d KiB mail with its spool on a full tmpfs: "
                  "exit 75 naming the directory, nothing stored, the mail "
                  "still in INBOX" % (len(mail) // 1024), problems)
        roomy = ih.write_config(env, "tmpfull-fetch2.conf", dc)
        r = db.dmarcd("fetch", config=roomy)
        problems = [] if r.rc == 0 else [r.describe()]
        problems += db.consistency()
        if db.int("SELECT count(*) FROM dmarcd.reports WHERE domain = "
                  "'fetch.example'") != 1:
            problems.append("the report not stored")
        if dc.count("INBOX") != 0 or dc.count(ih.PROCESSED) != 1:
            problems.append("INBOX %s, processed %s" % (
                dc.count("INBOX"), dc.count(ih.PROCESSED)))
        tap.check("then with space: exit 0, stored, moved", problems)
    finally:
        dc.stop()


if __name__ == "__main__":
    h.run_main(main)
