"""TLS record-layer scenarios against the gateway's HTTPS listener, with Python's own ssl module driven through memory
BIOs, so the test decides exactly which records leave in which TCP write.

    tls_records.py PORT SCENARIO [TLSVERSION]

Scenarios (each prints what it saw; the exit code is 0 when the gateway behaved):
  coalesced   the client's last handshake flight (Finished) and its first request leave in one write
  pipelined   three requests, each its own record, in one write: three answers
  split       one request record sent a byte at a time: one answer
  truncated   half of a request record, then FIN: the gateway closes without an answer
  corrupt     a request record with one byte flipped: the gateway sends its fatal bad_record_mac alert and closes
              without an answer
  overflow    a record header announcing 28,672 bytes, over every version's limit: the gateway sends its fatal
              record_overflow alert and closes
  alert       the client fails to authenticate an answer and sends its fatal alert: the gateway closes
  keyupdate   openssl s_client updates its keys before each of two requests, asking the gateway to update too
              ("K"; "k" with TLSVERSION "noreq" asks nothing): both answered
  renegotiate openssl s_client asks to renegotiate a TLS 1.2 connection ("R"): the gateway closes it
  onesend     the request with the client's Finished, on a full handshake and then a resumed one: the gateway's
              session ticket comes with the answer, in one TCP segment (two data segments in all: its first flight,
              then ticket and answer)
  idleticket  the handshake and nothing else: the gateway's ticket (TLS 1.3), or its last flight (TLS 1.2, which the
              client waits for), still comes without a request to carry it; a second connection resumes with it
TLSVERSION: "1.3" (default) or "1.2".
"""
import select
import socket
import ssl
import subprocess
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
LAST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


class Client:
    contexts = {}  # one per version: a session resumes only through the context that made it

    def __init__(self, port, version, session=None):
        ctx = Client.contexts.get(version)
        if ctx is None:
            ctx = Client.contexts[version] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
            ctx.minimum_version = ctx.maximum_version = v
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost", session=session)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def handshake(self, send_last_flight=True):
        """Runs the handshake; the client's last flight stays in the outgoing BIO unless send_last_flight."""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                if not data:
                    raise RuntimeError("connection closed during the handshake")
                self.incoming.write(data)
        if send_last_flight:
            self.flush()

    def pending(self):
        return self.outgoing.read()

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def read_all(self):
        """Decrypts everything until the gateway closes; returns (plaintext, how it ended)."""
        out = b""
        while True:
            try:
                chunk = self.tls.read(65536)
                if not chunk:
                    return out, "close_notify"
                out += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                return out, "tls error " + (e.reason or str(e))
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return out, "reset"
            if not data:
                return out, "eof"
            self.incoming.write(data)


def data_segments_in(sock):
    """TCP segments with data this socket received (Linux tcp_info.tcpi_data_segs_in, at byte 152)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int.from_bytes(info[152:156], "little")


def one_send(port, session):
    c = Client(port, "1.3", session)
    c.handshake(send_last_flight=False)
    c.tls.write(LAST)
    c.sock.sendall(c.pending())  # Finished and the request in one write
    text, end = c.read_all()
    segments = data_segments_in(c.sock)
    print(f"reused={c.tls.session_reused} answers={answers(text)} end={end} ticket={c.tls.session.has_ticket} data_segments_in={segments}")
    ok = answers(text) == 1 and c.tls.session.has_ticket and segments == 2 and c.tls.session_reused == (session is not None)
    return ok, c.tls.session


def idle_ticket(port, version):
    c = Client(port, version)
    c.handshake()  # TLS 1.2: returns only once the gateway's last flight came
    c.sock.settimeout(5)
    while not (c.tls.session is not None and c.tls.session.has_ticket):
        try:
            c.tls.read(1)  # takes the NewSessionTicket, then wants more
        except ssl.SSLWantReadError:
            pass
        if c.tls.session is not None and c.tls.session.has_ticket:
            break
        data = c.sock.recv(65536)  # socket.timeout if the ticket never comes
        if not data:
            raise RuntimeError("the gateway closed the connection")
        c.incoming.write(data)
    session = c.tls.session
    again = Client(port, version, session)
    again.handshake()
    again.tls.write(LAST)
    again.flush()
    text, end = again.read_all()
    print(f"ticket=True reused={again.tls.session_reused} answers={answers(text)} end={end}")
    return 0 if again.tls.session_reused and answers(text) == 1 else 1


def answers(plaintext):
    return plaintext.count(b"HTTP/1.1 200 OK")


class SClient:
    """openssl s_client reading commands from stdin: a line "K" (or "k") updates its keys and prints KEYUPDATE,
    a line "R" renegotiates (TLS 1.2) and prints RENEGOTIATING; other lines are sent (-crlf: with CRLF ends)."""

    def __init__(self, port, version):
        self.p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                                   "-crlf", version, "-alpn", "http/1.1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = b""

    def wait_for(self, token, count=1):
        """True once token was printed count times; False if s_client ended first."""
        while self.out.count(token) < count:
            ready, _, _ = select.select([self.p.stdout], [], [], 10)
            if not ready:
                raise RuntimeError("timed out waiting for %r; s_client printed %r" % (token, self.out[-400:]))
            chunk = self.p.stdout.read1(65536)
            if not chunk:
                return False
            self.out += chunk
        return True

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close(self):
        self.p.kill()
        self.p.wait()


def key_update(port, letter):
    c = SClient(port, "-tls1_3")
    try:
        ok = c.wait_for(b"Verify return code")  # the handshake is over
        for i in (1, 2):
            c.send(letter + b"\n")
            ok = ok and c.wait_for(b"KEYUPDATE", i)
            c.send(b"GET / HTTP/1.1\nHost: localhost\n\n")
            ok = ok and c.wait_for(b"Hello, World!", i)
    finally:
        c.close()
    print(f"answers={answers(c.out)}")
    return 0 if ok and answers(c.out) == 2 else 1


def renegotiate(port):
    c = SClient(port, "-tls1_2")
    try:
        if not c.wait_for(b"Verify return code"):
            raise RuntimeError("no handshake: %r" % c.out[-400:])
        c.send(b"R\n")
        ended = not c.wait_for(b"never printed")  # the gateway closes the connection
    finally:
        c.close()
    print(f"ended={ended} answers={answers(c.out)}")
    return 0 if ended and answers(c.out) == 0 else 1


def main():
    port, scenario = int(sys.argv[1]), sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else "1.3"
    if scenario == "keyupdate":
        return key_update(port, b"k" if version == "noreq" else b"K")
    if scenario == "renegotiate":
        return renegotiate(port)
    if scenario == "onesend":
        full, session = one_send(port, None)
        resumed, _ = one_send(port, session)
        return 0 if full and resumed else 1
    if scenario == "idleticket":
        return idle_ticket(port, version)
    c = Client(port, version)
    if scenario == "coalesced":
        c.handshake(send_last_flight=False)
        c.tls.write(LAST)
        c.sock.sendall(c.pending())  # Finished and the request in one write
        text, end = c.read_all()
        print(f"answers={answers(text)} end={end}")
        return 0 if answers(text) == 1 and text.endswith(b"Hello, World!") else 1
    if scenario == "pipelined":
        c.handshake()
        for r in (REQUEST, REQUEST, LAST):
            c.tls.write(r)  # a record each
        c.sock.sendall(c.pending())
        text, end = c.read_all()
        print(f"answers={answers(text)} end={end}")
        return 0 if answers(text) == 3 else 1
    if scenario == "split":
        c.handshake()
        c.tls.write(LAST)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in c.pending():
            c.sock.sendall(bytes([b]))
        text, end = c.read_all()
        print(f"answers={answers(text)} end={end}")
        return 0 if answers(text) == 1 else 1
    if scenario in ("truncated", "corrupt"):
        c.handshake()
        c.tls.write(LAST)
        record = bytearray(c.pending())
        if scenario == "truncated":
            c.sock.sendall(bytes(record[: len(record) // 2]))
            c.sock.shutdown(socket.SHUT_WR)
        else:
            record[len(record) // 2] ^= 0x40
            c.sock.sendall(bytes(record))
        text, end = c.read_all()
        print(f"answers={answers(text)} end={end} bytes={len(text)}")
        expected = ("eof", "reset") if scenario == "truncated" else ("tls error SSLV3_ALERT_BAD_RECORD_MAC",)
        return 0 if not text and end in expected else 1
    if scenario == "overflow":
        c.handshake()
        c.sock.sendall(bytes([23, 3, 3, 0x70, 0x00]) + bytes(64))
        text, end = c.read_all()
        print(f"answers={answers(text)} end={end} bytes={len(text)}")
        return 0 if not text and end == "tls error TLSV1_ALERT_RECORD_OVERFLOW" else 1
    if scenario == "alert":
        c.handshake()
        c.tls.write(REQUEST)
        c.flush()
        plain = b""
        while b"Hello, World!" not in plain:  # the first answer (and any session tickets before it), read properly
            try:
                plain += c.tls.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            c.incoming.write(c.sock.recv(65536))
        c.tls.write(REQUEST)
        c.flush()
        data = b""
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):  # the second answer's record
            more = c.sock.recv(65536)
            if not more:
                raise RuntimeError("no second answer")
            data += more
        forged = bytearray(data[: 5 + int.from_bytes(data[3:5], "big")])
        forged[-1] ^= 0x40  # a byte of its tag
        c.incoming.write(bytes(forged))
        try:
            c.tls.read(65536)
            print("the forged answer was accepted")
            return 1
        except ssl.SSLError:
            pass
        c.flush()  # the client's fatal alert (bad_record_mac); its TLS state is over, so read the socket itself
        received = 0
        while True:
            try:
                more = c.sock.recv(65536)
            except ConnectionResetError:
                break
            if not more:
                break
            received += len(more)
        print(f"after the alert: bytes={received}, then the gateway closed")
        return 0 if received == 0 else 1
    print("unknown scenario " + scenario)
    return 2


if __name__ == "__main__":
    sys.exit(main())
