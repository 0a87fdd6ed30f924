#!/usr/bin/python3
"""Hostile HTTP/2 frame sequences against the appliance (Debian's python3-h2, hyperframe and hpack; /usr/bin/python3).

Usage: h2_hostile.py CASE --port PORT [--tls]
The handshake goes through h2.connection (preface, SETTINGS, ACKs); the hostile part is built with hyperframe and
hpack by hand, since h2 refuses to send any of it. Prints one JSON object, the server's first answer that settles
the case, and exits 0:
  {"frame": "GOAWAY", "error": "PROTOCOL_ERROR", "last_stream": 1, "debug": "..."}
  {"frame": "RST_STREAM", "stream": 1, "error": "STREAM_CLOSED"}
  {"frame": "HEADERS", "stream": 1, "status": 431}
  {"frame": "CLOSED"} when the server closed without a GOAWAY, {"frame": "TIMEOUT"} when nothing came.
Then "closed" (after a GOAWAY: the server closed the connection) or "alive" (after a stream error or a response: a
PING is still answered) is added.
Every wait is bounded (socket timeout and a deadline).
"""

import argparse
import h2_socket
import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import hpack
from hpack import NeverIndexedHeaderTuple
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, PriorityFrame,
                              PushPromiseFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

DEADLINE_SECONDS = 15
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def error_name(code):
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return "0x%x" % code


class Hostile:
    def __init__(self, port, tls):
        sock = h2_socket.connect(port, tls, timeout=10)
        self.sock = sock
        self.scheme = "https" if tls else "http"
        self.buffer = b""
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    # ---- handshake with h2 ----

    def handshake(self):
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        self.sock.sendall(conn.data_to_send())
        remote, acked = False, False
        while not (remote and acked):
            data = self.recv()
            if not data:
                raise ConnectionError("closed during the handshake")
            for event in conn.receive_data(data):
                remote |= isinstance(event, h2.events.RemoteSettingsChanged)
                acked |= isinstance(event, h2.events.SettingsAcknowledged)
            self.sock.sendall(conn.data_to_send())  # our SETTINGS ACK
        return self

    # ---- raw writing ----

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() if isinstance(f, Frame) else f for f in frames))

    def request_fields(self, method="GET", path="/", extra=()):
        return [(":method", method), (":scheme", self.scheme), (":path", path), (":authority", "localhost")] + list(extra)

    @staticmethod
    def block(fields):
        """A stateless field block: never-indexed literals leave the server's dynamic table alone, and names go out
        exactly as given (uppercase included)."""
        return hpack.Encoder().encode([NeverIndexedHeaderTuple(n, v) for n, v in fields], huffman=False)

    def headers(self, stream_id, fields, end_stream=True, end_headers=True):
        f = HeadersFrame(stream_id, self.block(fields))
        f.flags = set()
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        return f

    @staticmethod
    def data(stream_id, payload=b"", end_stream=False):
        f = DataFrame(stream_id, payload)
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    @staticmethod
    def raw_frame(frame_type, flags, stream_id, payload):
        n = len(payload)
        return bytes([(n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, frame_type, flags]) + stream_id.to_bytes(4, "big") + payload

    # ---- reading ----

    def recv(self):
        if time.monotonic() > self.deadline:
            raise TimeoutError("deadline passed")
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def frames(self):
        """Yields frames until the connection closes; decodes every field block in order (the server's HPACK state)."""
        block = None
        while True:
            while len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) < 9 + length:
                    break
                frame.parse_body(memoryview(self.buffer[9:9 + length]))
                self.buffer = self.buffer[9 + length:]
                if isinstance(frame, (HeadersFrame, ContinuationFrame)):
                    block = (block or b"") + frame.data
                    if "END_HEADERS" in frame.flags:
                        frame.fields = self.decoder.decode(block, raw=False)
                        block = None
                    else:
                        frame.fields = None
                yield frame
            try:
                data = self.recv()
            except socket.timeout:
                return
            if not data:
                yield None
                return
            self.buffer += data

    def answer(self, accept=lambda f: True):
        """The first GOAWAY, RST_STREAM or final response HEADERS that <accept> takes (SETTINGS, PING ACKs, DATA
        and WINDOW_UPDATE pass by)."""
        for f in self.frames():
            if f is None:
                return {"frame": "CLOSED"}
            if isinstance(f, GoAwayFrame):
                result = {"frame": "GOAWAY", "error": error_name(f.error_code), "last_stream": f.last_stream_id,
                          "debug": f.additional_data.decode("latin-1")}
            elif isinstance(f, RstStreamFrame):
                result = {"frame": "RST_STREAM", "stream": f.stream_id, "error": error_name(f.error_code)}
            elif isinstance(f, HeadersFrame) and f.fields is not None and dict(f.fields).get(":status", "100")[0] != "1":
                result = {"frame": "HEADERS", "stream": f.stream_id, "status": int(dict(f.fields)[":status"]),
                          "end_stream": "END_STREAM" in f.flags}
            else:
                continue
            if accept(result):
                return result
        return {"frame": "TIMEOUT"}

    def follow_up(self, result):
        """After a connection error the server must close the connection; after a stream error (or a response) the
        connection must still work: a PING is answered, and no GOAWAY comes first."""
        if result["frame"] == "GOAWAY":
            result["closed"] = any(f is None for f in self.frames())
        elif result["frame"] in ("RST_STREAM", "HEADERS"):
            self.send(PingFrame(0, b"alive!!!"))
            result["alive"] = False
            for f in self.frames():
                if f is None or isinstance(f, GoAwayFrame):
                    break
                if isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == b"alive!!!":
                    result["alive"] = True
                    break
        return result

    def response(self, stream_id):
        """Waits for the end of the response on <stream_id> (its END_STREAM)."""
        for f in self.frames():
            if f is None:
                raise ConnectionError("closed while waiting for the response on stream %d" % stream_id)
            if f.stream_id == stream_id and isinstance(f, (HeadersFrame, DataFrame)) and "END_STREAM" in f.flags:
                return
            if isinstance(f, (GoAwayFrame, RstStreamFrame)):
                raise ConnectionError("unexpected %r" % f)
        raise TimeoutError("no response on stream %d" % stream_id)


# ---------------- cases: each sends its sequence and returns the server's answer ----------------

def data_on_stream_0(c):
    c.send(c.raw_frame(0x0, 0, 0, b"hello"))  # hyperframe will not build it
    return c.answer()


def even_stream_id(c):
    c.send(c.headers(2, c.request_fields()))
    return c.answer()


def data_after_end_stream(c):
    # §5.1: after END_STREAM both ways the stream is closed; a DATA frame on it is a STREAM_CLOSED connection error.
    c.send(c.headers(1, c.request_fields()))
    c.response(1)
    c.send(c.data(1, b"late", end_stream=True))
    return c.answer()


def data_on_idle_stream(c):
    c.send(c.data(5, b"never opened"))
    return c.answer()


def window_update_overflow_connection(c):
    c.send(WindowUpdateFrame(0, 2 ** 31 - 1))  # on top of 65,535: above 2^31-1 (§6.9.1)
    return c.answer()


def window_update_overflow_stream(c):
    # An open stream (its handler waits for the body), whose send window then overflows: a stream error.
    c.send(c.headers(1, c.request_fields("POST", "/upload"), end_stream=False), WindowUpdateFrame(1, 2 ** 31 - 1))
    return c.answer()


def window_update_zero(c):
    c.send(c.headers(1, c.request_fields("POST", "/upload"), end_stream=False), WindowUpdateFrame(1, 0))
    return c.answer()


def oversized_frame(c):
    # 16,385 bytes: one more than the SETTINGS_MAX_FRAME_SIZE we were told.
    c.send(c.headers(1, c.request_fields("POST", "/upload"), end_stream=False), c.data(1, b"x" * 16385))
    return c.answer()


def bad_preface(c):
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", SettingsFrame(0))
    return c.answer()


def missing_path(c):
    c.send(c.headers(1, [(":method", "GET"), (":scheme", c.scheme), (":authority", "localhost")]))
    return c.answer()


def unknown_pseudo_header(c):
    c.send(c.headers(1, c.request_fields(extra=[(":foo", "bar")])))
    return c.answer()


def pseudo_header_after_regular(c):
    c.send(c.headers(1, [(":method", "GET"), (":scheme", c.scheme), ("x-a", "1"), (":path", "/"), (":authority", "localhost")]))
    return c.answer()


def uppercase_header_name(c):
    c.send(c.headers(1, c.request_fields(extra=[("X-Upper", "1")])))
    return c.answer()


def connection_specific_header(c):
    c.send(c.headers(1, c.request_fields(extra=[("connection", "keep-alive")])))
    return c.answer()


def te_gzip(c):
    c.send(c.headers(1, c.request_fields(extra=[("te", "gzip")])))
    return c.answer()


def content_length_mismatch(c):
    c.send(c.headers(1, c.request_fields("POST", "/upload", [("content-length", "10")]), end_stream=False),
           c.data(1, b"12345", end_stream=True))
    return c.answer()


def continuation_flood(c):
    frames = [c.headers(1, c.request_fields(), end_headers=False)]
    frames += [c.raw_frame(0x9, 0, 1, b"") for _ in range(100)]  # empty CONTINUATIONs, never END_HEADERS
    c.send(*frames)
    return c.answer()


def rapid_reset(c):
    frames = []
    for i in range(300):
        sid = 1 + 2 * i
        frames += [c.headers(sid, c.request_fields("POST", "/upload"), end_stream=False), RstStreamFrame(sid, 8)]
    c.send(*frames)
    return c.answer(lambda r: r["frame"] == "GOAWAY")


def ping_flood(c):
    c.send(*[PingFrame(0, i.to_bytes(8, "big")) for i in range(1100)])
    return c.answer()


def settings_flood(c):
    c.send(*[SettingsFrame(0) for _ in range(1100)])
    return c.answer()


def hpack_bomb(c):
    # One 4 KB field indexed into the server's table, then referred to 1,000 times in one block: 4 MB of fields
    # decoded from 5 KB on the wire (RFC 9113 §10.5.1: answer 431 or reset).
    encoder = hpack.Encoder()
    first = encoder.encode([("x-bomb", "b" * 4000)], huffman=False)
    block = first + bytes([0x80 | 62]) * 1000  # static table has 61 entries: 62 is our field
    c.send(c.raw_frame(0x1, 0x5, 1, c.block(c.request_fields()) + block))
    return c.answer()


def empty_data_flood(c):
    frames = [c.headers(1, c.request_fields("POST", "/upload"), end_stream=False)]
    frames += [c.data(1, b"") for _ in range(150)]
    c.send(*frames)
    return c.answer()


def push_promise_from_client(c):
    f = PushPromiseFrame(1, promised_stream_id=2, data=c.block(c.request_fields()))
    f.flags.add("END_HEADERS")
    c.send(c.headers(1, c.request_fields("POST", "/upload"), end_stream=False), f)
    return c.answer()


def headers_on_closed_stream(c):
    c.send(c.headers(1, c.request_fields()))
    c.response(1)
    c.send(c.headers(1, c.request_fields()))
    return c.answer()


def lower_stream_id(c):
    c.send(c.headers(5, c.request_fields()))
    c.response(5)
    c.send(c.headers(3, c.request_fields()))
    return c.answer()


def self_dependency(c):
    c.send(PriorityFrame(1, depends_on=1, stream_weight=15), c.headers(3, c.request_fields()))
    return c.answer()


def invalid_hpack(c):
    c.send(c.raw_frame(0x1, 0x5, 1, bytes([0x80 | 0x7F, 0xFF, 0xFF, 0xFF, 0x7F])))  # an index far past both tables
    return c.answer()


def settings_initial_window_too_large(c):
    c.send(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2 ** 31}))
    return c.answer()


def settings_ack_with_payload(c):
    c.send(c.raw_frame(0x4, 0x1, 0, b"\x00\x04\x00\x00\x10\x00"))
    return c.answer()


def ping_wrong_length(c):
    c.send(c.raw_frame(0x6, 0, 0, b"1234567"))
    return c.answer()


def rst_stream_on_idle(c):
    c.send(RstStreamFrame(7, 8))
    return c.answer()


CASES = {
    "data-on-stream-0": data_on_stream_0,
    "even-stream-id": even_stream_id,
    "data-after-end-stream": data_after_end_stream,
    "data-on-idle-stream": data_on_idle_stream,
    "window-update-overflow-connection": window_update_overflow_connection,
    "window-update-overflow-stream": window_update_overflow_stream,
    "window-update-zero": window_update_zero,
    "oversized-frame": oversized_frame,
    "bad-preface": bad_preface,
    "missing-path": missing_path,
    "unknown-pseudo-header": unknown_pseudo_header,
    "pseudo-header-after-regular": pseudo_header_after_regular,
    "uppercase-header-name": uppercase_header_name,
    "connection-specific-header": connection_specific_header,
    "te-gzip": te_gzip,
    "content-length-mismatch": content_length_mismatch,
    "continuation-flood": continuation_flood,
    "rapid-reset": rapid_reset,
    "ping-flood": ping_flood,
    "settings-flood": settings_flood,
    "hpack-bomb": hpack_bomb,
    "empty-data-flood": empty_data_flood,
    "push-promise-from-client": push_promise_from_client,
    "headers-on-closed-stream": headers_on_closed_stream,
    "lower-stream-id": lower_stream_id,
    "self-dependency": self_dependency,
    "invalid-hpack": invalid_hpack,
    "settings-initial-window-too-large": settings_initial_window_too_large,
    "settings-ack-with-payload": settings_ack_with_payload,
    "ping-wrong-length": ping_wrong_length,
    "rst-stream-on-idle": rst_stream_on_idle,
}

# Cases that start before the handshake: they write the preface themselves.
RAW_START = {"bad-preface"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args()
    client = Hostile(args.port, args.tls)
    if args.case not in RAW_START:
        client.handshake()
    result = client.follow_up(CASES[args.case](client))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
