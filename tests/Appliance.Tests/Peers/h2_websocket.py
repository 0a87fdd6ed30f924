#!/usr/bin/python3
"""WebSocket over HTTP/2 (RFC 8441) against the gateway, with Debian's python3-h2.

Usage: h2_websocket.py PORT tls|plain PATH

Waits for SETTINGS_ENABLE_CONNECT_PROTOCOL, opens an extended CONNECT stream (:protocol websocket), sends masked
WebSocket frames (RFC 6455) in DATA, reads the echoes, then closes with 1000 and expects the close echo and
END_STREAM. Prints one JSON line: {"ok": true, "status": 200, "echo": [...], "closeCode": 1000, "ended": true}.
"""
import json
import os
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

import h2_socket


def frame(opcode, payload):
    """A client frame: FIN, opcode, masked payload (RFC 6455 §5.2-5.3)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse(buf):
    """Server frames (unmasked). Returns (frames, rest)."""
    frames = []
    while len(buf) >= 2:
        opcode = buf[0] & 0x0F
        n = buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                break
            n = struct.unpack("!H", buf[2:4])[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                break
            n = struct.unpack("!Q", buf[2:10])[0]
            pos = 10
        if len(buf) < pos + n:
            break
        frames.append((opcode, buf[pos:pos + n]))
        buf = buf[pos + n:]
    return frames, buf


def main():
    port, mode, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    tls = mode == "tls"
    sock = h2_socket.connect(port, tls, timeout=20)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    result = {"ok": False, "status": None, "echo": [], "closeCode": None, "ended": False, "connectProtocol": None}
    deadline = time.monotonic() + 20
    buf = b""
    stream_id = None
    sent = ["hello over h2", "x" * 70000]
    closing = False

    def pump():
        nonlocal buf, stream_id, closing
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                s = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                if s is not None:
                    result["connectProtocol"] = s.new_value
            elif isinstance(event, h2.events.ResponseReceived):
                result["status"] = int(dict(event.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                buf += event.data
                frames, buf = parse(buf)
                for opcode, payload in frames:
                    if opcode == 8:
                        result["closeCode"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    else:
                        result["echo"].append(payload.decode())
            elif isinstance(event, h2.events.StreamEnded):
                result["ended"] = True
            elif isinstance(event, h2.events.StreamReset):
                result["reset"] = int(event.error_code)
                result["ended"] = True
        out = conn.data_to_send()
        if out:
            sock.sendall(out)

    while result["connectProtocol"] is None and time.monotonic() < deadline:
        pump()
    if result["connectProtocol"] != 1:
        print(json.dumps(result))
        return 1

    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https" if tls else "http"),
                                  (":path", path), (":authority", "localhost"), ("sec-websocket-version", "13")])
    sock.sendall(conn.data_to_send())
    while result["status"] is None and not result["ended"] and time.monotonic() < deadline:
        pump()
    if result["status"] != 200:
        print(json.dumps(result))
        return 1

    for text in sent:
        payload = frame(1, text.encode())
        while payload:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                pump()
                continue
            conn.send_data(stream_id, payload[:window])
            payload = payload[window:]
            sock.sendall(conn.data_to_send())
    while len(result["echo"]) < len(sent) and not result["ended"] and time.monotonic() < deadline:
        pump()
    conn.send_data(stream_id, frame(8, struct.pack("!H", 1000)))
    sock.sendall(conn.data_to_send())
    while not result["ended"] and time.monotonic() < deadline:
        pump()
    result["echo"] = [e if len(e) < 100 else f"<{len(e)} chars>" for e in result["echo"]]
    result["ok"] = result["echo"] == ["hello over h2", "<70000 chars>"] and result["closeCode"] == 1000 and result["ended"]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
