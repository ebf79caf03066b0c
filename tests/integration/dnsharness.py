"""dnsharness.py - a throwaway NSD serving fixture zones, for the tests
that ask a real authoritative DNS server (check.py, resolve.py,
treewalk.py).

    nsd = Nsd(env, {"example.net": "$TTL 300\\n@ SOA ...\\n..."})
    server = "127.0.0.1:%d" % nsd.port
    ...
    nsd.stop()          # also at exit

Zones are written as ZONE.zone with $ORIGIN ZONE. in a directory of the
test's work dir; tests/integration/dns.sh starts NSD on 127.0.0.1 and a
free port, and stops only the NSD it started (its PID file).
"""
import atexit
import os
import socket

import pgharness as h


HERE = os.path.dirname(os.path.abspath(__file__))


def have_nsd(env=None):
    return h.run(["sh", os.path.join(HERE, "dns.sh"), "check"]).rc == 0


class Nsd:
    """env: pgharness's (its work dir), or the work dir itself."""

    def __init__(self, env, zones, name="nsd"):
        work = env if isinstance(env, str) else env.work
        self.sh = os.path.join(HERE, "dns.sh")
        self.dir = os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "zones"))
        for zone, text in zones.items():
            with open(os.path.join(self.dir, "zones", zone + ".zone"),
                      "w") as f:
                f.write("$ORIGIN %s.\n%s" % (zone, text))
        self.started = False
        r = h.run(["sh", self.sh, "start", self.dir], timeout=60)
        if r.rc != 0:
            raise RuntimeError("dns.sh start: " + r.describe())
        self.started = True
        self.port = int(r.out.strip().splitlines()[-1])
        atexit.register(self.stop)

    def stop(self):
        if self.started:
            self.started = False
            h.run(["sh", self.sh, "stop", self.dir], timeout=60)


def dead_server():
    """A UDP socket that is never read: queries to it time out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def free_udp_port():
    """A UDP port nothing listens on (free when asked)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def txt_strings(value, size=255):
    """A TXT value as the quoted character-strings of one record."""
    return " ".join('"%s"' % value[i:i + size]
                    for i in range(0, len(value), size))
