"""Rogue peers for the fleet end-to-end test: hand-built protocol frames
sent to a coordinator's fleet port over a hand-built NNG pair1 connection.

Python here has neither a msgpack module nor an NNG binding, and none may
be installed, so this file carries both, each as small as the test needs:

  - `pack(obj)`: a msgpack encoder (None, bool, int, str, bytes, list,
    dict; the smallest encoding of each, as msgpack-c writes it), and
    `seal()`: the frame of proto/README.md ("Frame"), byte for byte:

      0  4  magic "MCFP"
      4  1  major        5  1  minor        6  1  type
      7  1  key_id = SHA-256("mcfleet-proto-key-id" || key)[0]
      8  8  session (big-endian)            16 8  seq (big-endian)
      24 4  payload_len (big-endian)        28 n  payload (one msgpack map)
      28+n 32  HMAC-SHA256(key, bytes 0 .. 28+n-1)

    `self_check(repo_root)` reproduces the protocol 1.0 HELLO test vector
    of tests/proto_test.c (`hello_1_0`, read from that file) with this
    encoder and sealer; the rogue phase runs it first, so a drift of the
    encoder from the wire format fails loudly instead of producing frames
    that are rejected for the wrong reason.  `python3 rogue.py REPO_ROOT`
    runs it alone.

  - `SPConn`: the SP-over-TCP transport of NNG (checked against nng's
    src/sp/transport/tcp/tcp.c and src/sp/protocol/pair1/pair1_poly.c):
    each side first sends 8 bytes `00 'S' 'P' 00`, its protocol id as a
    big-endian 16-bit number (pair1: 0x11; the listener checks that our
    id is its peer id, also 0x11), and 2 zero bytes; then every message is
    a 64-bit big-endian length followed by that many bytes.  For pair1
    those bytes start with a 4-byte big-endian hop count (a cooked pair1
    sender puts 1; the receiver drops the pipe when it is above 0xff and
    the message when it is above its max TTL, 8), then the body, which is
    one of our frames.  NNG's receiver refuses (and closes the pipe on) a
    message longer than the socket's NNG_OPT_RECVMAXSZ, counted with the
    hop count; the coordinator sets it to twice its frame bound so that an
    oversize frame reaches the protocol check and is counted `too_big`,
    while a peer announcing a huge message is cut off before NNG allocates
    it.  (Debian's nng 1.5.2 defaults NNG_OPT_RECVMAXSZ to 0, no limit at
    all: without that setting NNG would allocate whatever length a peer
    announces.)
"""

import base64
import hashlib
import hmac
import os
import re
import socket
import struct
import sys
import time
import urllib.parse

MAGIC = b"MCFP"
MAJOR, MINOR = 1, 1
HDR_LEN, MAC_LEN = 28, 32
MAX_FRAME_DEFAULT = 4 * 1024 * 1024     # proto/frame.h

# Message types (proto/README.md "Messages").
HELLO, VERSION_REJECT, WELCOME, ASSIGN_SNAPSHOT, ASSIGN_DELTA, ACK, \
    STOPPED, LEAVING, HEARTBEAT, RESYNC_REQUEST, NOT_LEADER = range(1, 12)

REASONS = ("too_big", "malformed", "bad_auth", "replay", "version",
           "lower_term", "unknown_type", "unexpected")


# ---- msgpack ---------------------------------------------------------------

def pack(obj):
    """msgpack bytes of obj, each value in its smallest encoding."""
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack(o, out):
    if o is None:
        out.append(0xc0)
    elif o is True:
        out.append(0xc3)
    elif o is False:
        out.append(0xc2)
    elif isinstance(o, int):
        if 0 <= o <= 0x7f:
            out.append(o)
        elif -32 <= o < 0:
            out.append(o & 0xff)
        elif o > 0:
            for tag, fmt, lim in ((0xcc, ">B", 0xff), (0xcd, ">H", 0xffff),
                                  (0xce, ">I", 0xffffffff),
                                  (0xcf, ">Q", 0xffffffffffffffff)):
                if o <= lim:
                    out.append(tag)
                    out += struct.pack(fmt, o)
                    return
            raise ValueError("integer too large for msgpack: %d" % o)
        else:
            for tag, fmt, lim in ((0xd0, ">b", 0x80), (0xd1, ">h", 0x8000),
                                  (0xd2, ">i", 0x80000000),
                                  (0xd3, ">q", 0x8000000000000000)):
                if o >= -lim:
                    out.append(tag)
                    out += struct.pack(fmt, o)
                    return
            raise ValueError("integer too small for msgpack: %d" % o)
    elif isinstance(o, str):
        b = o.encode("utf-8")
        n = len(b)
        if n <= 31:
            out.append(0xa0 | n)
        elif n <= 0xff:
            out += bytes((0xd9, n))
        elif n <= 0xffff:
            out.append(0xda)
            out += struct.pack(">H", n)
        else:
            out.append(0xdb)
            out += struct.pack(">I", n)
        out += b
    elif isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n <= 0xff:
            out += bytes((0xc4, n))
        elif n <= 0xffff:
            out.append(0xc5)
            out += struct.pack(">H", n)
        else:
            out.append(0xc6)
            out += struct.pack(">I", n)
        out += o
    elif isinstance(o, (list, tuple)):
        n = len(o)
        if n <= 15:
            out.append(0x90 | n)
        elif n <= 0xffff:
            out.append(0xdc)
            out += struct.pack(">H", n)
        else:
            out.append(0xdd)
            out += struct.pack(">I", n)
        for v in o:
            _pack(v, out)
    elif isinstance(o, dict):
        n = len(o)
        if n <= 15:
            out.append(0x80 | n)
        elif n <= 0xffff:
            out.append(0xde)
            out += struct.pack(">H", n)
        else:
            out.append(0xdf)
            out += struct.pack(">I", n)
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError("cannot msgpack %r" % type(o))


# ---- frames ----------------------------------------------------------------

def key_id(key):
    return hashlib.sha256(b"mcfleet-proto-key-id" + key).digest()[0]


def seal(key, mtype, payload, session, seq, major=MAJOR, minor=MINOR,
         kid=None):
    """One frame: header, payload, HMAC-SHA256 under `key`."""
    hdr = MAGIC + bytes((major, minor, mtype,
                         key_id(key) if kid is None else kid)) + \
        struct.pack(">QQI", session, seq, len(payload))
    body = hdr + payload
    return body + hmac.new(key, body, hashlib.sha256).digest()


def new_session():
    while True:
        s = struct.unpack(">Q", os.urandom(8))[0]
        if s:
            return s


def read_key(path):
    """The current key of a key file (proto/README.md "Authentication and
    keys"): the first line that is neither blank nor a comment."""
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            line = raw.strip(b" \t\r")
            if not line or line.startswith(b"#"):
                continue
            if line.startswith(b"hex:"):
                return bytes.fromhex(line[4:].decode())
            if line.startswith(b"base64:"):
                return base64.b64decode(line[7:])
            return line
    raise ValueError("%s: no key" % path)


def term(uid, transitions):
    return {"uid": uid, "transitions": transitions}


def heartbeat(seq, t=None, **extra):
    """A worker's HEARTBEAT payload (a dict; pack() it)."""
    m = {"time_ms": int(time.time() * 1000), "seq": seq}
    if t is not None:
        m["term"] = t
    m.update(extra)
    return m


# ---- the 1.0 test vector ---------------------------------------------------

TEST_KEY = b"mcfleet-test-key-0123456789abcdef"


def vector_from_source(repo_root, name="hello_1_0"):
    path = os.path.join(repo_root, "tests", "proto_test.c")
    with open(path) as f:
        src = f.read()
    m = re.search(r"static const uint8_t %s\[\] = \{(.*?)\};" % name, src,
                  re.S)
    if m is None:
        raise AssertionError("%s: no array %s" % (path, name))
    return bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})",
                                                m.group(1)))


def self_check(repo_root):
    """Raises AssertionError unless pack() and seal() reproduce the 1.0
    HELLO vector of tests/proto_test.c byte for byte."""
    want = vector_from_source(repo_root)
    assert key_id(TEST_KEY) == 0xaa, "key id of the test key"
    payload = pack({"major": 1, "minor": 0, "name": "mcfleet-worker-0",
                    "incarnation": "6f1c9e2a", "weight": 1,
                    "term": term("0b3c6a2e-5d1f-4c8e-9a7b-2f4e6d8c0a1b", 3),
                    "applied": 42})
    got = seal(TEST_KEY, HELLO, payload, 0x0102030405060708, 1, 1, 0)
    if got != want:
        at = next((i for i in range(min(len(got), len(want)))
                   if got[i] != want[i]), min(len(got), len(want)))
        raise AssertionError(
            "encoder differs from tests/proto_test.c hello_1_0 at byte %d "
            "(lengths %d, %d):\n  got  %s\n  want %s"
            % (at, len(got), len(want), got[at:at + 16].hex(),
               want[at:at + 16].hex()))
    # A few encodings the vector does not cover.
    for obj, enc in ((None, "c0"), (True, "c3"), (128, "cc80"),
                     (65536, "ce00010000"), (-1, "ff"), (-33, "d0df"),
                     ("a" * 32, "d920" + "61" * 32), ([1, 2], "920102"),
                     (b"\x00", "c40100"), (2 ** 32, "cf0000000100000000")):
        assert pack(obj).hex() == enc, "pack(%r) = %s, want %s" % (
            obj, pack(obj).hex(), enc)
    return len(want)


# ---- NNG pair1 over TCP ----------------------------------------------------

PAIR1 = 0x11


class SPConn:
    """One pair1 pipe to an NNG listener, by hand."""

    def __init__(self, url, timeout=10.0):
        u = urllib.parse.urlparse(url)
        if u.scheme != "tcp":
            raise ValueError("only tcp:// URLs: %s" % url)
        self.sock = socket.create_connection((u.hostname, u.port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"\x00SP\x00" + struct.pack(">H", PAIR1) +
                          b"\x00\x00")
        peer = self._recv_exact(8)
        if peer[:4] != b"\x00SP\x00" or peer[6:] != b"\x00\x00" or \
                struct.unpack(">H", peer[4:6])[0] != PAIR1:
            self.close()
            raise ConnectionError("%s: not an SP pair1 peer: header %s"
                                  % (url, peer.hex()))

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the peer")
            buf += chunk
        return buf

    def send(self, body, hops=1):
        msg = struct.pack(">I", hops) + body
        self.sock.sendall(struct.pack(">Q", len(msg)) + msg)

    def announce(self, length, hops=1):
        """Sends only a message's length header (and the hop count), as
        a peer about to send `length` bytes would."""
        self.sock.sendall(struct.pack(">QI", length, hops))

    def closed_by_peer(self, timeout):
        """True once the peer closed the connection (EOF or reset) within
        `timeout` seconds; anything it sends meanwhile is discarded."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(min(left, 0.5))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                continue
            except OSError:       # ECONNRESET and the like
                return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- counters --------------------------------------------------------------

_METRIC = re.compile(r'^mcfleet_proto_frames_(rejected|accepted)_total'
                     r'(?:\{reason="(\w+)"\})? (\S+)$')


def parse_counters(text):
    """{reason: count, ..., "accepted": count} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            key = m.group(2) if m.group(1) == "rejected" else "accepted"
            out[key] = int(float(m.group(3)))
    return out


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    n = self_check(root)
    print("ok rogue self-check: the 1.0 HELLO vector (%d bytes) "
          "reproduced" % n)
