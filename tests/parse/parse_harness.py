"""parse_harness.py - what the dmarcd parse script tests share: TAP
output, locating the binary and ../shared, and one checked `dmarcd parse`
run (exit status, JSON lines, crash, hang, the stderr line on exit 65).
"""
import json
import os
import subprocess
import sys

TIMEOUT = 300  # seconds per dmarcd run; a hang is a failure, not a wait


class Tap:
    def __init__(self):
        self.count = 0
        self.failed = 0

    def check(self, description, problems):
        """One test point: ok when problems is empty, else each is a
        diagnostic line."""
        self.count += 1
        if problems:
            self.failed += 1
        # a '#' in the description would start a TAP directive
        description = description.replace("#", "\\#")
        print("%s %d - %s" % ("not ok" if problems else "ok", self.count,
                              description))
        for problem in problems:
            for line in str(problem).splitlines() or [""]:
                print("#   " + line)
        sys.stdout.flush()
        return not problems

    def done(self):
        print("1..%d" % self.count)
        sys.stdout.flush()
        return 1 if self.failed else 0


def locate():
    here = os.path.dirname(os.path.abspath(__file__))
    top_srcdir = os.environ.get("top_srcdir") or \
        os.path.normpath(os.path.join(here, "..", ".."))
    top_builddir = os.environ.get("top_builddir") or top_srcdir
    shared = os.environ.get("DMARCD_SHARED_DIR") or \
        os.path.join(top_srcdir, "..", "shared")
    dmarcd = os.environ.get("DMARCD") or \
        os.path.join(top_builddir, "collector", "dmarcd")
    return os.path.abspath(shared), os.path.abspath(dmarcd)


def run_parse(dmarcd, args, cwd):
    """`dmarcd parse ARGS` in cwd: the CompletedProcess (stdout and stderr
    as bytes), or None when it did not exit within TIMEOUT."""
    try:
        return subprocess.run([dmarcd, "parse"] + args, cwd=cwd,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None


class Run:
    """One `dmarcd parse` run: exit status, parsed stdout lines, problems
    with the output itself (bad JSON, bad UTF-8, crash)."""

    def __init__(self, dmarcd, args, cwd):
        self.args = args
        self.objects = []
        self.problems = []
        self.stderr = ""
        proc = run_parse(dmarcd, args, cwd)
        if proc is None:
            self.rc = None
            self.problems.append("no exit within %d s (hang)" % TIMEOUT)
            return
        self.rc = proc.returncode
        self.stderr = proc.stderr.decode("utf-8", "replace")
        if self.rc < 0:
            self.problems.append("killed by signal %d (crash)" % -self.rc)
        elif self.rc not in (0, 65):
            self.problems.append("exit status %d: only 0 or 65 are allowed"
                                 % self.rc)
        for number, line in enumerate(proc.stdout.split(b"\n"), 1):
            if not line:
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                self.problems.append("stdout line %d is not UTF-8: %s"
                                     % (number, e))
                continue
            except ValueError as e:
                self.problems.append("stdout line %d is not JSON (%s): %.200r"
                                     % (number, e, line))
                continue
            if isinstance(obj, dict):
                self.objects.append(obj)
            else:
                self.problems.append("stdout line %d is not a JSON object"
                                     % number)
        if self.rc is not None and self.rc >= 0:
            self.check_stderr()

    def check_stderr(self):
        lines = [l for l in self.stderr.splitlines() if l.strip()]
        if self.rc == 65 and not any(l.startswith("dmarcd: ") for l in lines):
            self.problems.append("exit 65 but no 'dmarcd: ' line on stderr")
