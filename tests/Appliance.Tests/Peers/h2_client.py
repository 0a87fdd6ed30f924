#!/usr/bin/python3
"""HTTP/2 client scenarios against the appliance, driven by Debian's python3-h2 (run with /usr/bin/python3).

Usage: h2_client.py SCENARIO --port PORT [--tls]
Prints one JSON object with what was observed and exits 0; any protocol error raised by h2 (a frame past a
flow-control window, an HPACK table the server did not shrink, ...) exits non-zero with the traceback.
Every wait is bounded (socket timeout and an overall deadline).
"""

import argparse
import h2_socket
import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

DEADLINE_SECONDS = 60


class Client:
    def __init__(self, port, tls, settings=None):
        sock = h2_socket.connect(port, tls, timeout=20)
        self.sock = sock
        self.scheme = "https" if tls else "http"
        self.port = port
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.streams = {}
        self.ping_acks = []
        self.window_updates = []
        self.remote_settings_seen = False
        self.settings_acks = 0
        self.auto_ack = True
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def stream(self, stream_id):
        return self.streams.setdefault(stream_id, {
            "status": None, "headers": [], "body": b"", "frames": [], "trailers": None, "ended": False, "reset": None})

    def pump(self, done):
        while not done():
            if time.monotonic() > self.deadline:
                raise TimeoutError("scenario deadline passed")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            for event in self.conn.receive_data(data):
                self.handle(event)
            self.flush()

    def handle(self, event):
        if isinstance(event, h2.events.ResponseReceived):
            s = self.stream(event.stream_id)
            s["headers"] = list(event.headers)
            s["status"] = int(dict(event.headers)[":status"])
        elif isinstance(event, h2.events.DataReceived):
            s = self.stream(event.stream_id)
            s["body"] += event.data
            s["frames"].append(event.flow_controlled_length)
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.stream(event.stream_id)["trailers"] = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self.stream(event.stream_id)["ended"] = True
        elif isinstance(event, h2.events.StreamReset):
            self.stream(event.stream_id)["reset"] = int(event.error_code)
        elif isinstance(event, h2.events.PingAckReceived):
            self.ping_acks.append(event.ping_data)
        elif isinstance(event, h2.events.WindowUpdated):
            self.window_updates.append((event.stream_id, event.delta))
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acks += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise ConnectionError("GOAWAY %s: %r" % (event.error_code, event.additional_data))

    def finished(self, stream_id):
        s = self.streams.get(stream_id)
        return s is not None and (s["ended"] or s["reset"] is not None)

    def request(self, method, path, end_stream=True, extra=()):
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", self.scheme), (":path", path),
                   (":authority", "localhost:%d" % self.port)] + list(extra)
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.flush()
        self.stream(stream_id)
        return stream_id

    def send_body(self, stream_id, body, end_stream=True):
        """Sends body as the windows allow, waiting for WINDOW_UPDATE when they are spent."""
        sent = 0
        while sent < len(body):
            window = self.conn.local_flow_control_window(stream_id)
            if window <= 0:
                before = len(self.window_updates)
                self.pump(lambda: len(self.window_updates) > before)
                continue
            n = min(window, self.conn.max_outbound_frame_size, len(body) - sent)
            self.conn.send_data(stream_id, body[sent:sent + n], end_stream=end_stream and sent + n == len(body))
            self.flush()
            sent += n
        if not body and end_stream:
            self.conn.end_stream(stream_id)
            self.flush()

    def summary(self, stream_id):
        s = self.streams[stream_id]
        return {"status": s["status"], "body": s["body"].decode("latin-1"), "frames": s["frames"],
                "ended": s["ended"], "reset": s["reset"], "headers": s["headers"], "trailers": s["trailers"]}


def concurrent(args):
    c = Client(args.port, args.tls)
    c.pump(lambda: c.remote_settings_seen)
    limit = c.conn.remote_settings.max_concurrent_streams
    statuses, bodies_ok, rounds = [], 0, 3
    for _ in range(rounds):
        ids = []
        for i in range(min(limit, 100)):
            path = "/" if i % 3 else "/users/%d" % i
            ids.append((c.request("GET", path), path))
        c.pump(lambda: all(c.finished(i) for i, _ in ids))
        for i, path in ids:
            s = c.streams[i]
            statuses.append(s["status"])
            expected = b"Hello, World!" if path == "/" else b"user"
            bodies_ok += s["body"] == expected
    return {"max_concurrent_streams": limit, "statuses": statuses, "bodies_ok": bodies_ok}


def large_post(args):
    c = Client(args.port, args.tls)
    c.pump(lambda: c.remote_settings_seen)
    body = bytes(i % 251 for i in range(args.size))
    sid = c.request("POST", "/upload", end_stream=False, extra=[("content-length", str(len(body)))])
    c.send_body(sid, body)
    c.pump(lambda: c.finished(sid))
    result = c.summary(sid)
    result["stream_window_updates"] = sum(1 for s, _ in c.window_updates if s == sid)
    result["connection_window_updates"] = sum(1 for s, _ in c.window_updates if s == 0)
    result["initial_window"] = c.conn.remote_settings.initial_window_size
    result["sent"] = len(body)
    return result


def trailers(args):
    c = Client(args.port, args.tls)
    sid = c.request("POST", "/upload", end_stream=False, extra=[("te", "trailers")])
    c.send_body(sid, b"x" * 1000, end_stream=False)
    c.conn.send_headers(sid, [("x-checksum", "abc"), ("x-count", "1000")], end_stream=True)
    c.flush()
    c.pump(lambda: c.finished(sid))
    return c.summary(sid)


def ping(args):
    c = Client(args.port, args.tls)
    c.conn.ping(b"appl1anc")
    c.flush()
    c.pump(lambda: b"appl1anc" in c.ping_acks)
    sid = c.request("GET", "/")
    c.pump(lambda: c.finished(sid))
    return {"ping_acks": [p.decode("latin-1") for p in c.ping_acks], "status": c.streams[sid]["status"]}


def header_table_size_zero(args):
    c = Client(args.port, args.tls, settings={h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    c.pump(lambda: c.settings_acks >= 2)
    statuses = []
    for i in range(4):
        sid = c.request("GET", "/users/%d" % i)
        c.pump(lambda: c.finished(sid))
        statuses.append(c.streams[sid]["status"])
    # hpack's decoder raises if the encoder did not shrink its table below the maximum we set (RFC 7541 §4.2).
    return {"statuses": statuses, "decoder_table_size": c.conn.decoder.header_table_size,
            "dynamic_entries": len(c.conn.decoder.header_table.dynamic_entries)}


def small_window(args):
    c = Client(args.port, args.tls, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: args.window})
    c.auto_ack = False
    c.pump(lambda: c.settings_acks >= 2)
    sid = c.request("GET", args.path)
    # The first frames can only fill the window; h2 raises FlowControlError if the server sends more.
    c.pump(lambda: sum(c.stream(sid)["frames"]) >= args.window or c.finished(sid))
    first = list(c.stream(sid)["frames"])
    # Then open the window a little at a time until the body is complete.
    while not c.finished(sid):
        received = sum(c.streams[sid]["frames"])
        c.conn.increment_flow_control_window(100, stream_id=sid)
        c.conn.increment_flow_control_window(100)
        c.flush()
        c.pump(lambda: sum(c.streams[sid]["frames"]) > received or c.finished(sid))
    result = c.summary(sid)
    result["first_frames"] = first
    return result


def max_frame_size(args):
    c = Client(args.port, args.tls, settings={h2.settings.SettingCodes.MAX_FRAME_SIZE: args.frame_size,
                                              h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4 * 1024 * 1024})
    c.conn.increment_flow_control_window(4 * 1024 * 1024)
    c.flush()
    c.pump(lambda: c.settings_acks >= 2)
    first = c.request("GET", "/big")
    c.pump(lambda: c.finished(first))
    # Back to the default: later frames must shrink again.
    c.conn.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384})
    c.flush()
    c.pump(lambda: c.settings_acks >= 3)
    second = c.request("GET", "/big")
    c.pump(lambda: c.finished(second))
    return {"large": c.summary(first)["frames"], "default": c.summary(second)["frames"],
            "lengths": [len(c.streams[first]["body"]), len(c.streams[second]["body"])]}


def indexed_headers(args):
    """Requests repeating large custom fields, which h2's encoder puts in the dynamic table and then refers to."""
    c = Client(args.port, args.tls)
    c.pump(lambda: c.settings_acks >= 1 and c.remote_settings_seen)
    fields = [("x-field-%d" % i, chr(ord("a") + i) * 150) for i in range(6)]
    statuses = []
    for _ in range(8):
        sid = c.request("GET", "/", extra=fields)
        c.pump(lambda: c.finished(sid))
        statuses.append(c.streams[sid]["status"])
        statuses[-1] = statuses[-1] if c.streams[sid]["reset"] is None else "reset %d" % c.streams[sid]["reset"]
    return {"statuses": statuses, "server_header_table_size": c.conn.remote_settings.header_table_size,
            "encoder_table_size": c.conn.encoder.header_table_size}


SCENARIOS = {
    "concurrent": concurrent,
    "large-post": large_post,
    "trailers": trailers,
    "ping": ping,
    "header-table-size-0": header_table_size_zero,
    "small-window": small_window,
    "max-frame-size": max_frame_size,
    "indexed-headers": indexed_headers,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--size", type=int, default=3_000_000)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--path", default="/medium")
    parser.add_argument("--frame-size", type=int, default=65536)
    args = parser.parse_args()
    result = SCENARIOS[args.scenario](args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
