"""Shared by the python3-h2 peer scripts: a TCP or TLS (ALPN h2, certificate not verified) socket to the gateway."""
import socket
import ssl


def connect(port, tls, timeout):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            raise RuntimeError("ALPN did not select h2")
    return sock
