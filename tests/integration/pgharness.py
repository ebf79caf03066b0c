"""pgharness.py - what the PostgreSQL integration tests share.

A real PostgreSQL, no mocks: Cluster() runs tests/integration/pg.sh to
initdb and start a throwaway cluster (trust authentication, fsync off,
127.0.0.1 on a free port, the socket inside its temporary directory),
once per test file; new_db() creates a fresh database per test case
(CREATE DATABASE tN) and, by default, runs `dmarcd migrate` on it. The
cluster is always stopped (pg_ctl -m immediate on its own data directory)
and its directory removed: atexit, also on SIGTERM, SIGINT and SIGHUP.

    import pgharness as h

    def main(tap):
        env = h.setup()              # skips the whole file without PostgreSQL
        cluster = h.Cluster(env)
        db = cluster.new_db()
        r = db.dmarcd("ingest", path)    # r.rc, r.out, r.err (text)
        rows = db.rows("SELECT ...")     # tuples of str / None
        tap.check("description", problems)   # problems: list of strings

    h.run_main(main)                 # prints the plan, exits 1 on failure

Environment: top_srcdir, top_builddir, DMARCD (the binary; default
$top_builddir/collector/dmarcd), DMARCD_SHARED_DIR (default
$top_srcdir/../shared), PG_BINDIR (default: the newest
/usr/lib/postgresql/*/bin). Python 3 standard library only.
"""
import atexit
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

TIMEOUT = 300  # seconds per command; a hang is a failure, not a wait


# TAP output as the parser tests print it, plus skips and notes.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "parse"))
import parse_harness  # noqa: E402


class Tap(parse_harness.Tap):
    def skip(self, description, reason):
        self.count += 1
        print("ok %d - %s # SKIP %s" % (self.count,
                                        description.replace("#", "\\#"),
                                        reason))
        sys.stdout.flush()

    def note(self, text):
        for line in str(text).splitlines():
            print("# " + line)
        sys.stdout.flush()


def run_main(main):
    """main(tap): an unexpected exception is a failed test point, and the
    plan is printed whatever happens."""
    tap = Tap()
    try:
        main(tap)
    except Exception:
        tap.check("the test ran to its end", [traceback.format_exc()])
    sys.exit(tap.done())


def skip_all(reason):
    print("1..0 # SKIP %s" % reason)
    sys.stdout.flush()
    sys.exit(0)


class Env:
    pass


def _on_signal(signum, frame):
    # SystemExit runs the atexit handlers: the cluster is stopped.
    raise SystemExit(128 + signum)


def setup(postgres=True):
    """Locate everything; skip the whole test file (exit 0) when
    PostgreSQL or the dmarcd binary is missing. With postgres=False a
    missing PostgreSQL is no reason to skip: e.postgres says whether it
    is there."""
    here = os.path.dirname(os.path.abspath(__file__))
    e = Env()
    e.here = here
    e.top_srcdir = os.path.abspath(os.environ.get("top_srcdir") or
                                   os.path.join(here, "..", ".."))
    e.top_builddir = os.path.abspath(os.environ.get("top_builddir") or
                                     e.top_srcdir)
    e.dmarcd = os.path.abspath(os.environ.get("DMARCD") or
                               os.path.join(e.top_builddir, "collector",
                                            "dmarcd"))
    e.shared = os.path.abspath(os.environ.get("DMARCD_SHARED_DIR") or
                               os.path.join(e.top_srcdir, "..", "shared"))
    e.pg_sh = os.path.join(e.top_srcdir, "tests", "integration", "pg.sh")
    e.samples = os.path.join(e.top_srcdir, "contrib", "samples")
    e.adversarial = os.path.join(e.top_srcdir, "tests", "data",
                                 "adversarial")
    if not os.access(e.dmarcd, os.X_OK):
        skip_all("%s not built" % e.dmarcd)
    e.postgres = True
    why = None
    p = subprocess.run(["sh", e.pg_sh, "bindir"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    e.bindir = p.stdout.decode().strip()
    e.psql = e.pg_dump = None
    if p.returncode != 0 or not e.bindir:
        why = "no PostgreSQL"
    elif os.getuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            why = ("no PostgreSQL (running as root without a postgres "
                   "user to run the server)")
    if why is None:
        psql = os.path.join(e.bindir, "psql")
        e.psql = psql if os.access(psql, os.X_OK) else shutil.which("psql")
        pg_dump = os.path.join(e.bindir, "pg_dump")
        e.pg_dump = pg_dump if os.access(pg_dump, os.X_OK) else \
            shutil.which("pg_dump")
        if e.psql is None:
            why = "no PostgreSQL (psql not found)"
    if why is not None:
        if postgres:
            skip_all(why)
        e.postgres = False
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    e.work = tempfile.mkdtemp(prefix="dmarcd-it-work.")
    atexit.register(shutil.rmtree, e.work, True)
    e.empty_config = os.path.join(e.work, "empty.conf")
    open(e.empty_config, "w").close()
    return e


def clean_env():
    """The environment for dmarcd and psql: nothing of the caller's
    database settings leaks in."""
    env = dict(os.environ)
    for k in list(env):
        # libpq's PGHOST, PGUSER, PGPASSWORD...; not pg.sh's PG_BINDIR.
        if (k.startswith("PG") and not k.startswith("PG_")) or \
                k in ("DMARCD_DB", "DMARCD_CONFIG"):
            del env[k]
    env["LC_ALL"] = "C"
    return env


class Result:
    def __init__(self, args, rc, out, err, seconds):
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err
        self.seconds = seconds

    def describe(self):
        return "%s: exit %s\nstdout: %s\nstderr: %s" % (
            " ".join(self.args), self.rc, self.out[-2000:], self.err[-2000:])


def run(args, input=None, timeout=TIMEOUT, binary=False):
    """Run a command; a Result with text (or bytes) stdout/stderr. A
    timeout gives rc None."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=clean_env(),
                           timeout=timeout,
                           stdin=None if input is not None else
                           subprocess.DEVNULL)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as ex:
        rc, out, err = None, ex.stdout or b"", (ex.stderr or b"") + \
            b"\n(no exit within %d s)" % timeout
    if not binary:
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
    return Result([str(a) for a in args], rc, out, err,
                  time.monotonic() - t0)


def _unescape_copy(field):
    """One field of COPY ... TO STDOUT (text format)."""
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            n = field[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r", "b": "\b",
                        "f": "\f", "v": "\v", "\\": "\\"}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Cluster:
    """A throwaway PostgreSQL cluster, stopped at exit. With
    synchronous_commit, a commit acknowledged survives kill() (a crash of
    the server)."""

    def __init__(self, env, synchronous_commit=False):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="dmarcd-pg.")
        self.stopped = False
        atexit.register(self.stop)
        r = run(["env", "PG_SYNCHRONOUS_COMMIT=%s" % (
            "on" if synchronous_commit else "off"), "sh", env.pg_sh,
            "start", self.dir], timeout=120)
        if r.rc != 0:
            raise RuntimeError("cannot start PostgreSQL: " + r.describe())
        self.conninfo = r.out.strip().splitlines()[-1]
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read().strip())
        self.data = os.path.join(self.dir, "data")
        self.n = 0

    def conninfo_for(self, dbname, user="postgres", extra=""):
        return "host=127.0.0.1 port=%d user=%s dbname=%s%s" % (
            self.port, user, dbname, (" " + extra) if extra else "")

    def psql(self, sql, dbname="postgres"):
        return run([self.env.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", self.conninfo_for(dbname), "-c", sql])

    def new_db(self, migrate=True):
        self.n += 1
        name = "t%d" % self.n
        r = self.psql("CREATE DATABASE %s" % name)
        if r.rc != 0:
            raise RuntimeError("CREATE DATABASE: " + r.describe())
        db = Db(self, name)
        if migrate:
            r = db.dmarcd("migrate")
            if r.rc != 0:
                raise RuntimeError("dmarcd migrate: " + r.describe())
        return db

    def kill(self):
        """pg_ctl stop -m immediate: a crash of this cluster only."""
        r = run(["sh", self.env.pg_sh, "kill", self.dir], timeout=120)
        if r.rc != 0:
            raise RuntimeError("pg.sh kill: " + r.describe())

    def restart(self):
        r = run(["sh", self.env.pg_sh, "restart", self.dir], timeout=120)
        if r.rc != 0:
            raise RuntimeError("pg.sh restart: " + r.describe())

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        subprocess.run(["sh", self.env.pg_sh, "stop", self.dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=clean_env())


class Db:
    """One database of the cluster."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.env = cluster.env
        self.name = name
        self.conninfo = cluster.conninfo_for(name)

    def psql(self, sql, conninfo=None):
        """psql -c SQL: a Result (no exception on error)."""
        return run([self.env.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", conninfo or self.conninfo, "-c", sql])

    def rows(self, sql):
        """The rows of a query, each a tuple of str or None (NULL)."""
        r = run([self.env.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                 "-d", self.conninfo, "-c",
                 "COPY (%s) TO STDOUT" % sql.strip().rstrip(";")])
        if r.rc != 0:
            raise RuntimeError("query failed: %s\n%s" % (sql, r.err))
        out = r.out
        if out.endswith("\n"):
            out = out[:-1]
        if out == "":
            return []
        return [tuple(_unescape_copy(f) for f in line.split("\t"))
                for line in out.split("\n")]

    def value(self, sql):
        rows = self.rows(sql)
        return rows[0][0] if rows else None

    def int(self, sql):
        v = self.value(sql)
        return int(v) if v is not None else None

    def dmarcd(self, *args, config=None, db=None, input=None,
               timeout=TIMEOUT, binary=False):
        """dmarcd SUBCOMMAND --db CONNINFO --config FILE ARGS..."""
        argv = [self.env.dmarcd, args[0], "--db", db or self.conninfo,
                "--config", config or self.env.empty_config] + \
            [str(a) for a in args[1:]]
        return run(argv, input=input, timeout=timeout, binary=binary)

    def stats(self):
        r = self.dmarcd("stats", "--format", "json")
        if r.rc != 0:
            raise RuntimeError("dmarcd stats: " + r.describe())
        return json.loads(r.out)

    def counts(self):
        """Row counts of the data tables."""
        return dict(zip(
            ("reports", "records", "failure_reports", "rejected_inputs",
             "raw_inputs", "dkim_results", "spf_results", "rollup_daily"),
            (int(x) for x in self.rows(
                "SELECT (SELECT count(*) FROM dmarcd.reports), "
                "(SELECT count(*) FROM dmarcd.records), "
                "(SELECT count(*) FROM dmarcd.failure_reports), "
                "(SELECT count(*) FROM dmarcd.rejected_inputs), "
                "(SELECT count(*) FROM dmarcd.raw_inputs), "
                "(SELECT count(*) FROM dmarcd.dkim_results), "
                "(SELECT count(*) FROM dmarcd.spf_results), "
                "(SELECT count(*) FROM dmarcd.rollup_daily)")[0])))

    def consistency(self):
        """What must hold whatever happened to a run (kill -9, a
        PostgreSQL crash): nothing half-stored. A list of problems.

        No report row with payload_sha256 NULL; each report's record_count
        and message_count equal its rows in dmarcd.records; no record
        without its report; rollup_daily holds the messages of the
        reports, counting only the newest revision of each (a revision
        replaces the earlier one in the rollup), and no key of it adds up
        to less than 0 (rows not compacted yet may be negative: a revision
        taking the earlier one's away); every report's raw input is kept,
        with its bytes."""
        row = self.rows(
            "SELECT (SELECT count(*) FROM dmarcd.reports "
            " WHERE payload_sha256 IS NULL), "
            "(SELECT count(*) FROM (SELECT r.id FROM dmarcd.reports r "
            " LEFT JOIN dmarcd.records x ON x.domain = r.domain AND "
            " x.report = r.id AND x.report_begin = r.begin_time "
            " GROUP BY r.domain, r.id HAVING r.record_count <> count(x.idx) "
            " OR r.message_count <> coalesce(sum(x.count), 0)) b), "
            "(SELECT count(*) FROM dmarcd.records x WHERE NOT EXISTS "
            " (SELECT 1 FROM dmarcd.reports r WHERE r.domain = x.domain "
            " AND r.id = x.report)), "
            "(SELECT coalesce(sum(messages), 0) FROM dmarcd.rollup_daily), "
            # a revision replaces the earlier one in the rollup
            "(SELECT coalesce(sum(message_count), 0) FROM (SELECT DISTINCT "
            " ON (domain, org_name, report_id, begin_time, end_time) "
            " message_count FROM dmarcd.reports ORDER BY domain, org_name, "
            " report_id, begin_time, end_time, revision DESC) n), "
            "(SELECT count(*) FROM dmarcd.reports r WHERE NOT EXISTS "
            " (SELECT 1 FROM dmarcd.raw_inputs w WHERE w.domain = r.domain "
            " AND w.sha256 = r.raw_sha256)), "
            "(SELECT count(*) FROM dmarcd.raw_inputs w WHERE NOT EXISTS "
            " (SELECT 1 FROM dmarcd.raw_chunks c WHERE c.domain = w.domain "
            " AND c.sha256 = w.sha256) AND w.size > 0), "
            "(SELECT count(*) FROM (SELECT 1 FROM dmarcd.rollup_daily "
            " GROUP BY domain, day, source_ip, header_from, dkim_aligned, "
            " spf_aligned, disposition, auth, dkim_domain, spf_domain, "
            " override HAVING sum(messages) < 0) k)")[0]
        (null_sha, bad_counts, orphans, rollup, messages, no_raw,
         no_chunks, negative) = (int(x) for x in row)
        problems = []
        if null_sha:
            problems.append("%d report rows with payload_sha256 NULL "
                            "(half-stored)" % null_sha)
        if bad_counts:
            problems.append("%d reports whose record_count or "
                            "message_count differ from their rows in "
                            "dmarcd.records" % bad_counts)
        if orphans:
            problems.append("%d records without their report" % orphans)
        if rollup != messages:
            problems.append("rollup_daily holds %d messages, the reports "
                            "(the newest revision of each) %d"
                            % (rollup, messages))
        if negative:
            problems.append("%d rollup_daily keys add up to less than 0"
                            % negative)
        if no_raw:
            problems.append("%d reports whose raw input is not kept"
                            % no_raw)
        if no_chunks:
            problems.append("%d raw_inputs rows without their bytes"
                            % no_chunks)
        return problems


# The data tables, row for row, without what legitimately differs between
# two databases holding the same reports: ids (reports are joined to their
# key instead), duplicates, ingest times, the ingest log.
KEY = ("r.domain, r.org_name, r.report_id, r.begin_time, r.end_time, "
       "encode(r.payload_sha256, 'hex')")
JOIN = ("JOIN dmarcd.reports r ON r.domain = x.domain AND r.id = x.report")

DUMPS = [
    ("reports",
     "SELECT domain, org_name, report_id, begin_time, end_time, "
     "encode(payload_sha256, 'hex'), payload_bytes, schema, namespace, "
     "version, email, extra_contact_info, generator, errors, record_count, "
     "message_count, warning_count, revision, revision_of IS NULL, "
     "encode(raw_sha256, 'hex'), source, location FROM dmarcd.reports"),
    ("policy_published",
     "SELECT %s, x.adkim, x.aspf, x.p, x.sp, x.np, x.pct, x.fo, x.testing, "
     "x.discovery_method, x.raw FROM dmarcd.policy_published x %s"
     % (KEY, JOIN)),
    ("records",
     "SELECT %s, x.report_begin, x.idx, x.source_ip, x.source_ip_raw, "
     "x.count, x.disposition, x.dkim, x.spf, x.reasons, x.reason_comments, "
     "x.header_from, x.envelope_from, x.envelope_to FROM dmarcd.records x "
     "%s" % (KEY, JOIN)),
    ("dkim_results",
     "SELECT %s, x.idx, x.n, x.auth_domain, x.selector, x.result, "
     "x.human_result FROM dmarcd.dkim_results x %s" % (KEY, JOIN)),
    ("spf_results",
     "SELECT %s, x.idx, x.n, x.auth_domain, x.scope, x.result, "
     "x.human_result FROM dmarcd.spf_results x %s" % (KEY, JOIN)),
    ("report_warnings",
     "SELECT %s, x.n, x.line, x.text, x.count FROM dmarcd.report_warnings "
     "x %s" % (KEY, JOIN)),
    ("rollup_daily",
     "SELECT domain, day, source_ip, header_from, dkim_aligned, "
     "spf_aligned, disposition, messages FROM dmarcd.rollup_daily"),
    ("reporters",
     "SELECT org_name, email, extra_contact_info FROM dmarcd.reporters"),
    ("raw_inputs",
     "SELECT domain, encode(sha256, 'hex'), size, encoding FROM "
     "dmarcd.raw_inputs"),
    ("raw bytes",
     "SELECT domain, encode(sha256, 'hex'), md5(string_agg(data, ''::bytea "
     "ORDER BY seq)), count(*) FROM dmarcd.raw_chunks GROUP BY 1, 2"),
    ("failure_reports", "SELECT domain, encode(raw_sha256, 'hex'), location "
     "FROM dmarcd.failure_reports"),
    ("rejected_inputs", "SELECT encode(raw_sha256, 'hex'), location, "
     "error FROM dmarcd.rejected_inputs"),
]


def _dump(db, sql):
    return sorted(db.rows(sql), key=lambda row: tuple(
        "" if v is None else v for v in row))


def compare_databases(a, b):
    """[(table, rows in a, problems)] comparing the data of a and b."""
    out = []
    for name, sql in DUMPS:
        da, db_ = _dump(a, sql), _dump(b, sql)
        problems = []
        if da != db_:
            sa, sb = set(da), set(db_)
            problems.append("%d rows in %s, %d in %s" % (
                len(da), a.name, len(db_), b.name))
            for row in sorted(sa - sb, key=str)[:5]:
                problems.append("only in %s: %r" % (a.name, row))
            for row in sorted(sb - sa, key=str)[:5]:
                problems.append("only in %s: %r" % (b.name, row))
            if sa == sb:
                problems.append("the same rows, but some more often in "
                                "one of them (stored twice)")
        out.append((name, len(da), problems))
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Generator:
    """$shared/tools/gen_aggregate.py, loaded once and run in this
    process (starting Python 200 times would take longer than the
    tests)."""

    def __init__(self, path):
        spec = importlib.util.spec_from_file_location("gen_aggregate", path)
        self.mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.mod)

    def __call__(self, out, records, seed, *options, stats=None):
        """Write one report to out; its ground truth (a dict) when
        stats is true."""
        argv = ["gen_aggregate.py", "--records", str(records), "--seed",
                str(seed), "--out", out] + [str(o) for o in options]
        stats_path = None
        if stats:
            stats_path = out + ".stats.json"
            argv += ["--stats", stats_path]
        saved = sys.argv
        sys.argv = argv
        try:
            self.mod.main()
        finally:
            sys.argv = saved
        if stats_path is None:
            return None
        with open(stats_path) as f:
            truth = json.load(f)
        os.unlink(stats_path)
        return truth


def setup_with_generator(name):
    """setup(), the report generator (the whole test skipped without it)
    and a new work directory of that name: (env, gen, directory)."""
    env = setup()
    gen = generator(env)
    if gen is None:
        skip_all("no gen_aggregate.py in %s/tools" % env.shared)
    work = os.path.join(env.work, name)
    os.makedirs(work)
    return env, gen, work


def generator(env):
    path = os.path.join(env.shared, "tools", "gen_aggregate.py")
    if not os.path.isfile(path):
        return None
    return Generator(path)
