#!/usr/bin/env python3
"""dnsquery.py - rdns_query() (collector/rdns.c) against a real DNS server
(NSD), through tests/integration/dnsquery_cli.

Prints TAP; skipped without NSD or the test program. tests/integration/
dns.sh serves the fixture zones below on 127.0.0.1, and each question is
answered as they say, exactly (status, records, CNAMEs followed):

* a 2048-bit DKIM key in one TXT record of three character-strings
  (more than 255 bytes): joined, with its count and the longest;
* a 4096-bit key (an answer over 512 bytes): whole. No EDNS is sent
  (rdns_new() does not set ARES_FLAG_EDNS): NSD answers over UDP with TC
  set (checked here with a raw UDP query) and c-ares asks again over TCP;
* two TXT records at one name; a TXT holding a NUL byte (txt_len 3);
* a selector CNAME to a key in another zone, itself delegated from its
  parent: the key, the CNAME in cnames; a CNAME question gets the CNAME;
* a dangling CNAME: nxdomain with the CNAME listed;
* MX records by preference then name, names lower case;
* A (two) and AAAA; an A through a CNAME; a PTR;
* an empty non-terminal and a name with records of another type only:
  nodata; a name that does not exist: nxdomain; a zone NSD does not
  serve: refused; a type not listed or a name over 253 bytes: error;
* a UDP socket that never answers: timeout, after the query's timeout
  when it is shorter than the deadline, else at the deadline.
"""
import atexit
import base64
import hashlib
import json
import os
import socket
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as h  # noqa: E402
import dnsharness as dh  # noqa: E402


def fake_key(bits):
    """A base64 key the length of an RSA key of that size (its SPKI)."""
    der = {2048: 294, 4096: 550}[bits]
    raw = b""
    while len(raw) < der:
        raw += hashlib.sha256(b"%d-%d" % (bits, len(raw))).digest()
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(raw[:der]).decode()


KEY2048 = fake_key(2048)    # 410 bytes
KEY4096 = fake_key(4096)    # 754 bytes
K2048 = [KEY2048[:255], KEY2048[255:355], KEY2048[355:]]
K4096 = [KEY4096[:255], KEY4096[255:510], KEY4096[510:]]
ED25519 = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


def txt(strings):
    return " ".join('"%s"' % s for s in strings)


ZONES = {
    "example.com": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
@ MX 20 mx2.example.com.
@ MX 10 mx1.example.com.
@ MX 30 Backup.Example.NET.
@ MX 10 mx0.example.com.
s2048._domainkey 3600 TXT %s
s4096._domainkey TXT %s
two TXT "first record"
two TXT "second" " record"
nul TXT "a\\000b"
sel._domainkey 600 CNAME key1._domainkey.dkim.example.org.
dangling CNAME gone.example.org.
www A 192.0.2.1
www A 192.0.2.2
www AAAA 2001:db8::1
alias CNAME www
a.b.ent A 192.0.2.3
""" % (txt(K2048), txt(K4096)),
    "example.org": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
dkim NS ns1.example.net.
""",
    "dkim.example.org": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
key1._domainkey 900 TXT "%s"
""" % ED25519,
    "2.0.192.in-addr.arpa": """$TTL 300
@ SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ NS ns1.example.net.
1 PTR WWW.example.com.
""",
}

# name, type: status, records (as dnsquery_cli prints them), cnames
EXPECTED = [
    ("s2048._domainkey.example.com", "TXT", "ok",
     [{"type": 16, "ttl": 3600, "txt": KEY2048, "txt_len": 410,
       "strings": 3, "longest": 255}], []),
    ("S4096._DomainKey.Example.COM.", "TXT", "ok",
     [{"type": 16, "ttl": 300, "txt": KEY4096, "txt_len": 754,
       "strings": 3, "longest": 255}], []),
    ("two.example.com", "TXT", "ok",
     [{"type": 16, "ttl": 300, "txt": "first record", "txt_len": 12,
       "strings": 1, "longest": 12},
      {"type": 16, "ttl": 300, "txt": "second record", "txt_len": 13,
       "strings": 2, "longest": 7}], []),
    ("nul.example.com", "TXT", "ok",
     [{"type": 16, "ttl": 300, "txt": "a\0b", "txt_len": 3,
       "strings": 1, "longest": 3}], []),
    ("sel._domainkey.example.com", "TXT", "ok",
     [{"type": 16, "ttl": 900,
       "txt": ED25519, "txt_len": 66, "strings": 1, "longest": 66}],
     ["key1._domainkey.dkim.example.org"]),
    ("sel._domainkey.example.com", "CNAME", "ok",
     [{"type": 5, "ttl": 600, "name": "key1._domainkey.dkim.example.org"}],
     ["key1._domainkey.dkim.example.org"]),
    ("dangling.example.com", "TXT", "nxdomain", [], ["gone.example.org"]),
    ("example.com", "MX", "ok",
     [{"type": 15, "ttl": 300, "pref": 10, "name": "mx0.example.com"},
      {"type": 15, "ttl": 300, "pref": 10, "name": "mx1.example.com"},
      {"type": 15, "ttl": 300, "pref": 20, "name": "mx2.example.com"},
      {"type": 15, "ttl": 300, "pref": 30, "name": "backup.example.net"}],
     []),
    ("www.example.com", "A", "ok",
     [{"type": 1, "ttl": 300, "addr": "192.0.2.1"},
      {"type": 1, "ttl": 300, "addr": "192.0.2.2"}], []),
    ("www.example.com", "AAAA", "ok",
     [{"type": 28, "ttl": 300, "addr": "2001:db8::1"}], []),
    ("alias.example.com", "AAAA", "ok",
     [{"type": 28, "ttl": 300, "addr": "2001:db8::1"}],
     ["www.example.com"]),
    ("1.2.0.192.in-addr.arpa", "PTR", "ok",
     [{"type": 12, "ttl": 300, "name": "www.example.com"}], []),
    ("b.ent.example.com", "A", "nodata", [], []),
    ("www.example.com", "MX", "nodata", [], []),
    ("nothere.example.com", "A", "nxdomain", [], []),
    ("example.invalid", "A", "refused", [], []),
    # Not asked: a type rdns_query() does not read, a name too long.
    ("example.com", "99", "error", [], []),
    (".".join(["a" * 63] * 4), "A", "error", [], []),
]


def udp_tc(port, name, qtype):
    """Whether NSD's UDP answer (no EDNS) to name/qtype has TC set."""
    q = struct.pack(">HHHHHH", 0x4242, 0, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(q, ("127.0.0.1", port))
        a = s.recv(65535)
    finally:
        s.close()
    return len(a), bool(a[2] & 0x02)


def query(cli, server, name, qtype, *opts):
    r = h.run([cli, "--server", server] + list(opts) + [name, qtype],
              timeout=60)
    if r.rc != 0:
        return r, None
    try:
        return r, json.loads(r.out)
    except ValueError:
        return r, None


def main(tap):
    top_builddir = os.path.abspath(os.environ.get("top_builddir") or
                                   os.path.join(os.path.dirname(
                                       os.path.abspath(__file__)), "..",
                                       ".."))
    cli = os.path.join(top_builddir, "tests", "integration", "dnsquery_cli")
    if not os.access(cli, os.X_OK):
        h.skip_all("%s not built" % cli)
    if not dh.have_nsd():
        h.skip_all("no nsd (apt-get install nsd)")
    import shutil
    import tempfile
    work = tempfile.mkdtemp(prefix="dmarcd-dnsquery.")
    atexit.register(shutil.rmtree, work, True)
    nsd = dh.Nsd(work, ZONES)
    server = "127.0.0.1:%d" % nsd.port

    for name, qtype, status, records, cnames in EXPECTED:
        r, got = query(cli, server, name, qtype)
        want = {"status": status, "truncated": False, "cnames": cnames,
                "records": records}
        problems = []
        if got is None:
            problems.append(r.describe())
        elif got != want:
            problems.append("got  %s" % json.dumps(got, sort_keys=True))
            problems.append("want %s" % json.dumps(want, sort_keys=True))
        tap.check("%s %s: %s, %d record%s%s" % (
            name, qtype, status, len(records),
            "" if len(records) == 1 else "s",
            ", through " + " ".join(cnames) if cnames else ""), problems)

    # The 4096-bit key's answer does not fit in 512 bytes: TC over UDP,
    # so the whole key above came over TCP.
    size, tc = udp_tc(nsd.port, "s4096._domainkey.example.com", 16)
    tap.check("the 4096-bit key's UDP answer is truncated (TC, %d bytes): "
              "rdns_query() got it over TCP" % size,
              [] if tc else ["no TC over UDP (%d bytes): the TCP fallback "
                             "was not exercised" % size])

    # A server that never answers.
    silent = dh.dead_server()
    dead = "127.0.0.1:%d" % silent.getsockname()[1]
    try:
        for what, opts, lo, hi in (
                ("the query's timeout (1 s) before the deadline (10 s)",
                 ["--timeout", "1000", "--deadline", "10000"], 0.8, 4.0),
                ("the deadline (1.5 s) before the timeout (30 s)",
                 ["--timeout", "30000", "--deadline", "1500"], 1.4, 4.0)):
            r, got = query(cli, dead, "www.example.com", "A", *opts)
            problems = []
            if got is None:
                problems.append(r.describe())
            elif got != {"status": "timeout", "truncated": False,
                         "cnames": [], "records": []}:
                problems.append("got %r" % got)
            if not lo <= r.seconds <= hi:
                problems.append("took %.2f s, expected %.1f to %.1f s"
                                % (r.seconds, lo, hi))
            tap.check("a UDP socket that never answers: timeout at %s "
                      "(%.2f s)" % (what, r.seconds), problems)
    finally:
        silent.close()


h.run_main(main)
