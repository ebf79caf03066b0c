#!/usr/bin/env python3
"""adversarial_store.py - every adversarial input through `dmarcd ingest`:
refused, kept byte for byte with its reason, nothing half-stored.

Prints TAP; skipped without PostgreSQL.

Each case of tests/data/adversarial (NAME.EXT + NAME.expect, see
make-cases.py) is ingested on its own into one database, with the case's
`dmarcd parse` arguments turned into a [limits] configuration. For a case
the parser refuses (exit: 65):

* `dmarcd ingest` exits 65 and its line for the file says "rejected";
* dmarcd.rejected_inputs has a row for the file whose location and error,
  joined as `dmarcd parse` joins them ("LOCATION: ERROR"), match the
  case's error regex: the kept reason is the specific one;
* the raw bytes are kept identical: rejected_inputs.raw_sha256 is the
  file's SHA-256, raw_inputs holds the file's size under domain '', and
  `dmarcd rejected show --raw ID` gives back the same bytes (SHA-256);
* no report is stored from it beyond the records the case expects (a zip
  with one good member and one bad one stores the good one).

Cases the parser accepts (exit: 0) are stored with the case's records.

There is no raw-size cap in the store (store/ingest.c keeps any input in
1 MiB chunks, whatever its size): no input is too big to keep, so no
reason says "not kept". The test checks that rather than assume it: an
input over the parse budget ([limits] max_input_bytes) is still kept in
full with the budget as its reason, and a 3 MiB binary input, made at test
time, is kept across several chunks, byte-identical.

The cases that store records (the control, a zip with one good member)
each get a database of their own, as they share one report. At the end
every database is consistent (pgharness consistency()) and the counts add
up: one refused input per refused case in the shared database.
"""
import hashlib
import os
import random
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402

# `dmarcd parse` arguments of the cases, as [limits] keys.
OPTIONS = {"--max-bytes": "max_input_bytes", "--max-ratio": "max_ratio",
           "--max-message": "max_message_bytes"}


def read_expect(path):
    expect = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition(":")
            expect[key.strip()] = value.strip()
    return expect


def cases(adversarial):
    """(name, data path, expect) for every case, sorted by name."""
    out = []
    names = sorted(os.listdir(adversarial))
    for n in names:
        if not n.endswith(".expect"):
            continue
        name = n[:-len(".expect")]
        # Case names hold no dot: NAME.EXT is the one data file.
        data = [d for d in names if d != n and d.split(".", 1)[0] == name]
        if len(data) != 1:
            raise RuntimeError("%s: %d data files" % (name, len(data)))
        out.append((name, os.path.join(adversarial, data[0]),
                    read_expect(os.path.join(adversarial, n))))
    return out


def config_for(env, name, args):
    """A configuration file with the case's limits; None without any."""
    words = args.split()
    lines = []
    for i in range(0, len(words), 2):
        if words[i] not in OPTIONS or i + 1 >= len(words):
            raise RuntimeError("%s: unknown args %r" % (name, args))
        lines.append("%s = %s" % (OPTIONS[words[i]], words[i + 1]))
    if not lines:
        return None
    path = os.path.join(env.work, name + ".conf")
    with open(path, "w") as f:
        f.write("[limits]\n" + "\n".join(lines) + "\n")
    return path


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def check_kept(db, path, data, reason, records, r):
    """Problems with how a refused input was kept."""
    problems = []
    if r.rc != 65:
        problems.append("exit %s, expected 65" % r.rc)
    lines = [l for l in r.out.splitlines() if l.startswith(path + ":")]
    if len(lines) < 1 or not any("rejected" in l for l in lines):
        problems.append("no 'rejected' line names it: %r" % lines)
    rows = db.rows("SELECT id, encode(raw_sha256, 'hex'), location, "
                   "error_code, error FROM dmarcd.rejected_inputs "
                   "WHERE source = '%s' ORDER BY id"
                   % path.replace("'", "''"))
    if not rows:
        problems.append("no rejected_inputs row")
        return problems
    joined = ["%s: %s" % (loc, err) if loc else err
              for _, _, loc, _, err in rows]
    if reason is not None and not any(re.search(reason, j, re.S | re.M)
                                      for j in joined):
        problems.append("no kept reason matches /%s/: %r" % (reason,
                                                             joined))
    want = sha256_hex(data)
    for rid, sha, _, _, _ in rows:
        if sha != want:
            problems.append("row %s: raw_sha256 %s, the file's is %s"
                            % (rid, sha, want))
    raw = db.rows("SELECT size FROM dmarcd.raw_inputs WHERE domain = '' "
                  "AND sha256 = '\\x%s'" % want)
    if raw != [(str(len(data)),)]:
        problems.append("raw_inputs under domain '': %r, expected size %d"
                        % (raw, len(data)))
    back = db.dmarcd("rejected", "show", rows[0][0], "--raw", binary=True)
    if back.rc != 0 or sha256_hex(back.out) != want:
        problems.append("rejected show %s --raw: exit %s, %d bytes (%d "
                        "expected), sha256 %s" % (
                            rows[0][0], back.rc, len(back.out), len(data),
                            "equal" if sha256_hex(back.out) == want
                            else "different"))
    stored = db.rows("SELECT count(*), coalesce(sum(record_count), 0) FROM "
                     "dmarcd.reports WHERE raw_sha256 = '\\x%s'" % want)
    if records == 0 and stored[0][0] != "0":
        problems.append("stored as a report: %r" % stored)
    if records > 0 and stored[0][1] != str(records):
        problems.append("reports (count, records) %r, expected %d "
                        "records" % (stored, records))
    return problems


def main(tap):
    env = h.setup()
    cluster = h.Cluster(env)
    db = cluster.new_db()
    work = os.path.join(env.work, "in")
    os.makedirs(work)
    refused = 0
    others = []
    for name, src, expect in cases(env.adversarial):
        want_exit = int(expect.get("exit", "65"))
        records = int(expect.get("records", "0"))
        # A copy under a name of our own: the source names the file.
        path = os.path.join(work, os.path.basename(src))
        with open(src, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data)
        config = config_for(env, name, expect.get("args", ""))
        # Cases that store records share the same template report: each
        # in a database of its own, or it is a duplicate of the first.
        target = db
        if records:
            target = cluster.new_db()
            others.append(target)
        r = target.dmarcd("ingest", path, config=config)
        if want_exit == 65:
            refused += target is db
            problems = check_kept(target, path, data, expect.get("error"),
                                  records, r)
            if problems:
                problems.append(r.describe())
            tap.check("%s: exit 65, the reason kept, the raw bytes kept "
                      "identical, no report stored%s" % (
                          name, " (but its %d good records)" % records
                          if records else ""), problems)
        else:
            sha = sha256_hex(data)
            got = target.rows("SELECT coalesce(sum(record_count), 0) FROM "
                          "dmarcd.reports WHERE raw_sha256 = '\\x%s'" % sha)
            problems = []
            if r.rc != want_exit:
                problems.append(r.describe())
            if got != [(str(records),)]:
                problems.append("records stored %r, expected %d"
                                % (got, records))
            tap.check("%s: accepted (exit %d), %d records stored"
                      % (name, want_exit, records), problems)

    # No raw-size cap: what is over the parse budget is kept all the same.
    big = random.Random(9).randbytes(3 << 20)
    path = os.path.join(work, "random-3mib.bin")
    with open(path, "wb") as f:
        f.write(big)
    limited = os.path.join(env.work, "limited.conf")
    with open(limited, "w") as f:
        f.write("[limits]\nmax_input_bytes = 1M\n")
    r = db.dmarcd("ingest", path, config=limited)
    refused += 1
    problems = check_kept(db, path, big, r"binary data", 0, r)
    chunks = db.rows("SELECT count(*), sum(length(data)) FROM "
                     "dmarcd.raw_chunks WHERE domain = '' AND sha256 = "
                     "'\\x%s'" % sha256_hex(big))
    if not chunks or int(chunks[0][0]) < 3:
        problems.append("raw_chunks (rows, bytes) %r: expected 3 or more "
                        "rows of at most 1 MiB" % chunks)
    if problems:
        problems.append(r.describe())
    tap.check("3 MiB of random bytes under max_input_bytes = 1M: refused, "
              "kept in full over %s chunks (no raw-size cap), identical"
              % (chunks[0][0] if chunks else "?"), problems)

    problems = db.consistency()
    for other in others:
        problems += ["%s: %s" % (other.name, p) for p in other.consistency()]
    n = db.int("SELECT count(DISTINCT source) FROM dmarcd.rejected_inputs")
    if n != refused:
        problems.append("rejected_inputs name %d inputs, %d were refused"
                        % (n, refused))
    tap.check("the database is consistent; one refused input per refused "
              "case (%d)" % refused, problems)


if __name__ == "__main__":
    h.run_main(main)
