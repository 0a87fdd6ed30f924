#!/usr/bin/env bash
# How many TLS 1.3 session tickets a server sends after a full handshake and after a resumed one (openssl s_client
# -msg counts the NewSessionTicket messages). Explains part of S5: a server that sends none on resumption
# saves a ticket's sealing and its record on every resumed handshake.
#   perf/tls-tickets.sh PORT [HOST]        e.g. against perf/bench-start.sh or a bench contestant
set -euo pipefail
port=${1:?usage: perf/tls-tickets.sh PORT [HOST]}
host=${2:-127.0.0.1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
req=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
exchange() { # $1 = -sess_out|-sess_in; the request, then a moment for the tickets that follow the handshake
  (printf '%s' "$req"; sleep 0.5) | openssl s_client -connect "$host:$port" -servername localhost -tls1_3 "$1" "$dir/sess" -msg -ign_eof 2>/dev/null || true
}
full=$(exchange -sess_out)
resumed=$(exchange -sess_in)
grep -q '^Reused' <<<"$resumed" || { echo "tls-tickets: the second connection did not resume" >&2; exit 1; }
echo "full handshake: $(grep -c 'NewSessionTicket' <<<"$full") tickets; resumed handshake: $(grep -c 'NewSessionTicket' <<<"$resumed") tickets"
