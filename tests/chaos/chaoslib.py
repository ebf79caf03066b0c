"""chaoslib.py - what the fault-injection tests (tests/chaos) share.

Built on tests/integration/pgharness.py (a private PostgreSQL, TAP,
consistency()) and imapharness.py (a private Dovecot, Running): nothing
here starts a server of its own, and only the PIDs a test started are
ever signalled.

    import chaoslib as c

    def main(tap):
        env = c.h.setup()
        n, rng, fig = c.iterations(), c.rng(tap), c.Figures("kill9")
        ...
        fig.kill("mid-run"); fig.rerun(seconds)
        fig.report(tap, n)         # the '#' lines make check prints

    c.h.run_main(main)

* iterations(): CHAOS_ITERATIONS (default 10; `make chaos` gives 100);
* rng(tap): a random.Random seeded from CHAOS_SEED (or DMARCD_TEST_SEED),
  else at random; the seed is printed so that a run can be replayed (the
  timing of a run still varies);
* the inputs: aggregate reports (shared/tools/gen_aggregate.py when
  ../shared is there, else written here), failure reports (variants of
  contrib/samples/failure-report.eml) and one input that is no report;
* digest(db): a canonical dump of the data tables without ids, times and
  the reports' source (a file name for ingest, ACCOUNT/MAILBOX#UID for
  fetch), rollup_daily as sums by key (compaction may merge rows); and
  its sha256; digest_problems(ref, got) says where two differ;
* Template: one migrated database, copied (CREATE DATABASE ... TEMPLATE)
  for every iteration, which is much faster than migrating each;
* pg_ctl(): pg_ctl on the harness's own cluster (restart -m fast or
  immediate), terminate(): pg_terminate_backend() of a database's
  sessions from a superuser connection;
* phase(): where in a run a fault landed, from what the run printed.

Python 3 standard library only.
"""
import collections
import hashlib
import os
import random
import re
import statistics
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgharness as h  # noqa: E402,F401
import imapharness as ih  # noqa: E402,F401

DAY = 86400
JAN1 = 1767225600
FAULT_TIMEOUT = 120     # seconds for a faulted run to end


def iterations():
    text = os.environ.get("CHAOS_ITERATIONS") or "10"
    try:
        n = int(text)
    except ValueError:
        raise RuntimeError("CHAOS_ITERATIONS=%r is no number" % text)
    return max(1, n)


def rng(tap):
    seed = int(os.environ.get("CHAOS_SEED") or
               os.environ.get("DMARCD_TEST_SEED") or
               random.SystemRandom().randrange(1 << 30))
    tap.note("seed %d (CHAOS_SEED=%d replays the fault points)"
             % (seed, seed))
    r = random.Random(seed)
    r.seed_value = seed
    return r


class Figures:
    """What a chaos test prints at its end, as '#' lines."""

    def __init__(self, name):
        self.name = name
        self.kills = collections.Counter()
        self.rerun_seconds = []
        self.clean_seconds = None
        self.extra = []

    def kill(self, phase):
        self.kills[phase] += 1

    def rerun(self, seconds):
        self.rerun_seconds.append(seconds)

    def note(self, text):
        self.extra.append(text)

    def report(self, tap, n, seed):
        tap.note("figures %s: iterations %d, seed %d" % (self.name, n,
                                                          seed))
        tap.note("figures %s: faults by phase: %s" % (
            self.name, ", ".join("%s %d" % kv for kv in
                                 sorted(self.kills.items())) or "none"))
        if self.clean_seconds is not None:
            tap.note("figures %s: clean run %.2f s" % (self.name,
                                                      self.clean_seconds))
        if self.rerun_seconds:
            tap.note("figures %s: reruns %d, mean rerun %.2f s, longest "
                     "%.2f s" % (self.name, len(self.rerun_seconds),
                                 statistics.mean(self.rerun_seconds),
                                 max(self.rerun_seconds)))
        else:
            tap.note("figures %s: reruns 0" % self.name)
        for text in self.extra:
            tap.note("figures %s: %s" % (self.name, text))


def phase(printed, total, ended_before):
    """Where a fault landed: before the first commit, mid-run, after the
    last, or after the run had ended (nothing to interrupt)."""
    if ended_before:
        return "after exit"
    if printed == 0:
        return "before first commit"
    if printed >= total:
        return "after last commit"
    return "mid-run"


# ---- inputs ----

RECORD = ("<record><row><source_ip>%s</source_ip><count>%d</count>"
          "<policy_evaluated><disposition>%s</disposition><dkim>%s</dkim>"
          "<spf>%s</spf></policy_evaluated></row><identifiers>"
          "<header_from>%s</header_from></identifiers><auth_results><dkim>"
          "<domain>%s</domain><result>%s</result></dkim><spf><domain>%s"
          "</domain><result>%s</result></spf></auth_results></record>\n")


def write_aggregate(path, report_id, domain, begin, records, seed,
                    distinct_sources=False):
    """An aggregate report written here (no generator needed): records
    rows, from distinct IPv4 addresses when distinct_sources (one rollup
    key each), else from a few dozen."""
    r = random.Random(seed)
    parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
             "<report_metadata><org_name>chaos.example</org_name><email>"
             "dmarc@chaos.example</email><report_id>%s</report_id>"
             "<date_range><begin>%d</begin><end>%d</end></date_range>"
             "</report_metadata>\n<policy_published><domain>%s</domain>"
             "<adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>"
             "100</pct></policy_published>\n" % (report_id, begin,
                                                 begin + DAY - 1, domain)]
    for i in range(records):
        if distinct_sources:
            ip = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
        else:
            ip = "192.0.2.%d" % r.randrange(1, 40)
        dkim = r.choice(("pass", "fail"))
        spf = r.choice(("pass", "fail"))
        disp = "none" if "pass" in (dkim, spf) else r.choice(
            ("none", "quarantine", "reject"))
        parts.append(RECORD % (ip, r.randint(1, 500), disp, dkim, spf,
                               domain, domain, dkim, domain, spf))
    parts.append("</feedback>\n")
    with open(path, "w") as f:
        f.write("".join(parts))


def make_aggregates(env, directory, count, tag, seed, records=(1, 40)):
    """count aggregate reports in directory (gen_aggregate.py when
    ../shared has it, else written here; plain or gzip): [path]."""
    os.makedirs(directory, exist_ok=True)
    gen = h.generator(env)
    r = random.Random(seed)
    out = []
    for i in range(count):
        begin = JAN1 + r.randrange(0, 60) * DAY
        domain = "%s%d.example" % (tag, i % 4)
        n = r.randint(*records)
        if gen is not None:
            gz = i % 2 == 1
            path = os.path.join(directory, "%s%03d.xml%s" % (
                tag, i, ".gz" if gz else ""))
            options = ["--domain", domain, "--begin", begin, "--end",
                       begin + DAY - 1, "--senders", 30]
            if gz:
                options.append("--gzip")
            if i % 5 == 4:
                options.append("--quirks")
            gen(path, n, seed * 1000 + i, *options)
        else:
            path = os.path.join(directory, "%s%03d.xml" % (tag, i))
            write_aggregate(path, "%s-%d-%d" % (tag, seed, i), domain,
                            begin, n, seed * 1000 + i)
        out.append(path)
    return out


def make_failures(env, directory, count, tag):
    """count failure reports (ARF), variants of the sample: [path]."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(env.samples, "failure-report.eml"), "rb") as f:
        sample = f.read()
    out = []
    for i in range(count):
        data = sample.replace(b"<ruf-2026-0001@receiver.example>",
                              b"<ruf-%s-%d@receiver.example>"
                              % (tag.encode(), i))
        data = data.replace(b"198.51.100.7", b"198.51.100.%d" % (10 + i))
        path = os.path.join(directory, "%s-ruf%02d.eml" % (tag, i))
        with open(path, "wb") as f:
            f.write(data)
        out.append(path)
    return out


def make_bad(directory, tag):
    """An input that is no report (XML cut short): rejected, its raw
    bytes kept."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "%s-bad.xml" % tag)
    with open(path, "w") as f:
        f.write("<?xml version=\"1.0\"?>\n<feedback><report_metadata>"
                "<org_name>broken.example</org_name><report_id>%s-bad"
                "</report_id><date_range><begin>1767225600" % tag)
    return path


def as_mail(path, message_id):
    """A mail carrying the report at path (an aggregate report as a
    receiver sends it); a .eml file as it is, with the Message-ID set."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".eml"):
        return data
    name = os.path.basename(path)
    return ih.report_mail(data, name, message_id=message_id,
                          gzip_it=not name.endswith(".gz"))


def write_mails(paths, directory, tag):
    """The inputs as mails in directory: [(mail path, Message-ID)]."""
    os.makedirs(directory, exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        mid = "<%s-%d@chaos.test>" % (tag, i)
        data = as_mail(p, mid)
        if p.endswith(".eml"):
            m = re.search(rb"(?im)^Message-ID:\s*(\S+)", data)
            mid = m.group(1).decode() if m else None
        mp = os.path.join(directory, "%s-%03d.eml" % (tag, i))
        with open(mp, "wb") as f:
            f.write(data)
        out.append((mp, mid))
    return out


# ---- the digest ----

def _digest_dumps():
    out = []
    for name, sql in h.DUMPS:
        if name == "reports":
            new = sql.replace("encode(raw_sha256, 'hex'), source, location",
                              "encode(raw_sha256, 'hex'), location")
            assert new != sql
            sql = new
        elif name == "rollup_daily":
            sql = ("SELECT domain, day, source_ip, header_from, "
                   "dkim_aligned, spf_aligned, disposition, auth, "
                   "dkim_domain, spf_domain, override, sum(messages) FROM "
                   "dmarcd.rollup_daily GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, "
                   "9, 10, 11 HAVING sum(messages) <> 0")
            name = "rollup sums"
        out.append((name, sql))
    return out


DIGEST_DUMPS = _digest_dumps()


def rows_many(db, queries):
    """{name: rows} of several queries in one psql session (as
    pgharness.Db.rows gives them: tuples of str or None)."""
    marker = "\\echo '@@chaos %s'\n"
    script = "".join(marker % name + "COPY (%s) TO STDOUT;\n" % sql
                     for name, sql in queries)
    r = h.run([db.env.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
               db.conninfo, "-f", "-"], input=script.encode())
    if r.rc != 0:
        raise RuntimeError("the digest queries: " + r.describe())
    out = dict((name, []) for name, _ in queries)
    current = None
    for line in r.out.split("\n"):
        if line.startswith("@@chaos "):
            current = line[len("@@chaos "):]
        elif line and current is not None:
            out[current].append(tuple(h._unescape_copy(f)
                                      for f in line.split("\t")))
    return out


def digest(db):
    """(sha256 hex, {table: sorted rows}) of db's data."""
    tables = {}
    hsh = hashlib.sha256()
    dumped = rows_many(db, DIGEST_DUMPS)
    for name, _ in DIGEST_DUMPS:
        rows = sorted(dumped[name], key=lambda row: tuple(
            "" if v is None else v for v in row))
        tables[name] = rows
        hsh.update(name.encode() + b"\0")
        for row in rows:
            hsh.update(repr(row).encode() + b"\n")
    return hsh.hexdigest(), tables


def digest_problems(ref, got, what):
    """[] when got's digest is ref's, else where they differ."""
    if ref[0] == got[0]:
        return []
    problems = ["%s: digest %s, the reference %s" % (what, got[0][:16],
                                                     ref[0][:16])]
    for name, _ in DIGEST_DUMPS:
        a, b = ref[1][name], got[1][name]
        if a == b:
            continue
        problems.append("%s: %d rows, the reference %d" % (name, len(b),
                                                          len(a)))
        sa, sb = set(a), set(b)
        for row in sorted(sa - sb, key=str)[:3]:
            problems.append("  missing: %r" % (row,))
        for row in sorted(sb - sa, key=str)[:3]:
            problems.append("  extra: %r" % (row,))
        if sa == sb:
            problems.append("  the same rows, some stored twice")
    return problems


def counts_line(tables):
    return ", ".join("%s %d" % (k, len(v)) for k, v in tables.items())


# ---- PostgreSQL ----

class Template:
    """One migrated database; copy() gives a fresh one in a fraction of a
    migrate."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.db = cluster.new_db()
        self.n = 0

    def copy(self):
        self.n += 1
        name = "%s_c%d" % (self.db.name, self.n)
        r = self.cluster.psql("CREATE DATABASE %s TEMPLATE %s"
                              % (name, self.db.name))
        if r.rc != 0:
            raise RuntimeError("CREATE DATABASE: " + r.describe())
        return h.Db(self.cluster, name)

    def drop(self, db):
        self.cluster.psql("DROP DATABASE IF EXISTS %s" % db.name)


def pg_ctl(cluster, *args, timeout=120):
    """pg_ctl -D on the harness's own cluster (as user postgres when
    root, as pg.sh does), the server's output to its server.log (else
    the new server would hold our pipe open): e.g. pg_ctl(c, "restart",
    "-m", "fast")."""
    argv = [os.path.join(cluster.env.bindir, "pg_ctl"), "-D", cluster.data,
            "-l", os.path.join(cluster.dir, "server.log"), "-w", "-t",
            "60"] + list(args)
    if os.getuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    r = h.run(argv, timeout=timeout)
    if r.rc != 0:
        raise RuntimeError("pg_ctl %s: %s" % (" ".join(args),
                                              r.describe()))
    return r


def terminate(cluster, dbname):
    """pg_terminate_backend() of every session of dbname, from a
    superuser connection: the number terminated."""
    r = h.run([cluster.env.psql, "-X", "-q", "-At", "-d",
               cluster.conninfo_for("postgres"), "-c",
               "SELECT count(pg_terminate_backend(pid)) FROM "
               "pg_stat_activity WHERE datname = '%s' AND pid <> "
               "pg_backend_pid()" % dbname])
    if r.rc != 0:
        raise RuntimeError("pg_terminate_backend: " + r.describe())
    return int(r.out.strip() or 0)


def wait_pg(cluster, timeout=60):
    """Until the cluster answers (after a restart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.psql("SELECT 1").rc == 0:
            return True
        time.sleep(0.2)
    return False


# ---- runs ----

def start(db, *args, config=None):
    """dmarcd SUBCOMMAND in the background (imapharness.Running)."""
    return ih.running_dmarcd(db, *args, config=config)


def printed(run, prefixes):
    """The input lines a run printed (each is printed once its batch is
    committed)."""
    return sum(1 for l in run.lines() if any(l.startswith(p)
                                             for p in prefixes))


def fault_at(run, delay, fault, prefixes=()):
    """Sleep delay seconds, note whether run still runs and how many
    input lines it printed, then fault(): (True when the fault landed
    while it ran, those lines)."""
    time.sleep(delay)
    alive = run.running()
    lines = printed(run, prefixes) if prefixes else 0
    fault()
    return alive, lines


def mailbox_problems(dc, delivered, folders, allow_twice=False):
    """No mail lost: every delivered Message-ID is in one of folders
    (INBOX, the processed and rejected folders). Twice is a problem
    unless allow_twice (Dovecot killed in the middle of its MOVE, a copy
    then an expunge on maildir): (problems, twice)."""
    seen = []
    for folder in folders:
        seen += dc.message_ids(folder)
    problems = []
    lost = set(delivered) - set(seen)
    if lost:
        problems.append("%d mails lost (in none of %s), e.g. %s"
                        % (len(lost), ", ".join(folders), sorted(lost)[0]))
    twice = len(seen) - len(set(seen))
    if twice and not allow_twice:
        problems.append("%d mails in two places" % twice)
    return problems, twice


def reset_mailbox(dc, source, folders):
    """Empty folders, then the mails of source copied into INBOX (new
    UIDs, the same bytes)."""
    for folder in folders:
        if dc.count(folder) is not None:
            r = dc.doveadm("expunge", "-u", dc.user, "mailbox", folder,
                           "all")
            if r.rc != 0:
                raise RuntimeError("doveadm expunge: " + r.describe())
    r = dc.doveadm("copy", "-u", dc.user, "INBOX", "mailbox", source,
                   "all")
    if r.rc != 0:
        raise RuntimeError("doveadm copy: " + r.describe())


# ---- the workload kill9.py and pgfault.py share ----

FOLDERS = ("INBOX", ih.PROCESSED, ih.REJECTED)


class Workload:
    """Files for ingest (aggregate and failure reports, one bad input)
    and, when Dovecot is there, mails for fetch (kept in folder Source,
    copied into INBOX for each run). batch_reports = 3 and fetch_batch =
    4: a fault lands between and inside batches.

    run_clean(db, what) runs ingest or fetch to its end (a Result);
    start(db, what) starts it in the background (a Running, the number of
    inputs it will print and the prefixes of those lines); expected[what]
    is the exit status of a clean run."""

    def __init__(self, tap, env, tag, files=24, mails=16):
        self.env = env
        work = os.path.join(env.work, tag)
        self.files = os.path.join(work, "files")
        self.inputs = make_aggregates(env, self.files, files, tag + "f", 3)
        self.inputs += make_failures(env, self.files, 3, tag + "f")
        self.inputs.append(make_bad(self.files, tag + "f"))
        self.config = os.path.join(work, "ingest.conf")
        with open(self.config, "w") as f:
            f.write("[ingest]\nbatch_reports = 3\nbatch_ms = 60000\n")
        self.expected = {"ingest": 65}
        self.dc = None
        self.mails = []
        why = ih.dovecot_missing()
        if why is not None:
            tap.note("no fetch: %s" % why)
            self.what = ["ingest"]
        else:
            self.what = ["ingest", "fetch"]
            self.dc = ih.Dovecot(env)
            mreports = os.path.join(work, "mreports")
            reports = make_aggregates(env, mreports, mails, tag + "m", 4)
            reports += make_failures(env, mreports, 2, tag + "m")
            self.mails = write_mails(reports, os.path.join(work, "mails"),
                                     tag + "m")
            self.dc.doveadm("mailbox", "create", "-u", self.dc.user,
                            "Source")
            for path, _ in self.mails:
                self.dc.deliver(path, "Source")
            self.fetch_conf = ih.write_config(
                env, tag + "-fetch.conf", self.dc, fetch_batch=4,
                sections={"ingest": {"batch_reports": 3,
                                     "batch_ms": 60000}})
            self.expected["fetch"] = 0
        self.delivered = [mid for _, mid in self.mails]

    def reset_mailbox(self):
        if self.dc is not None:
            reset_mailbox(self.dc, "Source", FOLDERS)

    def run_clean(self, db, what):
        if what == "ingest":
            return db.dmarcd("ingest", "--quiet", self.files,
                             config=self.config)
        return db.dmarcd("fetch", config=self.fetch_conf)

    def start(self, db, what):
        if what == "ingest":
            return (start(db, "ingest", "--no-progress", self.files,
                          config=self.config), len(self.inputs),
                    (self.files,))
        return (start(db, "fetch", config=self.fetch_conf),
                len(self.mails), ("test/INBOX#",))

    def reference(self, db):
        """Both runs to their end in db: problems."""
        problems = []
        self.clean = {}
        self.reset_mailbox()
        for what in self.what:
            r = self.run_clean(db, what)
            self.clean[what] = r.seconds
            if r.rc != self.expected[what]:
                problems.append("%s: exit %s, expected %d: %s" % (
                    what, r.rc, self.expected[what], r.describe()))
        problems += db.consistency()
        return problems

    def mail_problems(self, allow_twice=False):
        """No mail lost (and, unless allow_twice, none twice)."""
        if self.dc is None:
            return []
        problems, twice = mailbox_problems(self.dc, self.delivered,
                                           FOLDERS, allow_twice)
        self.twice = twice
        return problems

    def before_fault(self, db, victim, where):
        """The mailbox as delivered, and every run but victim's to its end
        in db: the problems."""
        problems = []
        self.reset_mailbox()
        for other in self.what:
            if other != victim:
                r = self.run_clean(db, other)
                if r.rc != self.expected[other]:
                    problems.append("%s: %s before: %s"
                                    % (where, other, r.describe()))
        return problems

    def after_fault(self, db, victim, where, ref, fig):
        """After a fault in the run of victim: db consistent and no mail
        lost, then a clean rerun with the expected exit that gives the
        reference digest and empties INBOX. The problems."""
        problems = ["%s: after the fault: %s" % (where, p)
                    for p in db.consistency() + self.mail_problems()]
        r = self.run_clean(db, victim)
        fig.rerun(r.seconds)
        if r.rc != self.expected[victim]:
            problems.append("%s: the rerun: exit %s, expected %d: %s"
                            % (where, r.rc, self.expected[victim],
                               r.describe()))
        problems += ["%s: after the rerun: %s" % (where, p)
                     for p in db.consistency() + self.mail_problems()]
        problems += ["%s: %s" % (where, p) for p in
                     digest_problems(ref, digest(db), "the rerun")]
        if self.dc is not None and self.dc.count("INBOX"):
            problems.append("%s: INBOX holds %d mails after the rerun"
                            % (where, self.dc.count("INBOX")))
        return problems

    def describe(self):
        return "ingest of %d files%s" % (
            len(self.inputs), ", fetch of %d mails" % len(self.mails)
            if self.dc is not None else "")

    def stop(self):
        if self.dc is not None:
            self.dc.stop()
