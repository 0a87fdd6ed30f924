#!/bin/sh
# Runs inside the booted system (nspawn container or VM) as appliance-smoke.service, after boot: checks the
# installed appliance as an operator would, writes one "ok: …" or "FAIL: …" line per check to $OUT (and the
# console), then powers the system off. The host reads the lines.
OUT=${OUT:-/results/smoke.txt}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
pass() { echo "ok: $*" | tee -a "$OUT" > /dev/console; }
fail() { echo "FAIL: $*" | tee -a "$OUT" > /dev/console; }
check() { desc=$1; shift; if "$@" >/dev/null 2>&1; then pass "$desc"; else fail "$desc"; fi; }

# Type=notify: start returns once READY=1 came (the sockets may have started it already).
check "appliance.service starts (READY=1)" systemctl start appliance.service
check "appliance.service is active/running" sh -c '[ "$(systemctl show -P SubState appliance.service)" = running ]'
pid=$(systemctl show -P MainPID appliance.service)
uid=$(awk '/^Uid:/ {print $2}' /proc/$pid/status)
check "runs as the appliance user" sh -c "[ '$uid' = '$(id -u appliance)' ]"
capeff=$(awk '/^CapEff:/ {print $2}' /proc/$pid/status)
check "only CAP_NET_BIND_SERVICE is effective (CapEff=$capeff)" sh -c "[ '$capeff' = 0000000000000400 ]"
check "the admin socket is 0660, group appliance-admin" sh -c \
  '[ "$(stat -c %a:%G /run/appliance/admin.sock)" = 660:appliance-admin ]'
check "appliance ctl status answers over the socket" appliance ctl status
check "HTTPS answers on :443 (socket from systemd)" sh -c 'curl -sk https://localhost/healthz | grep -q "\"ok\""'
check "HTTP on :80 redirects" sh -c '[ "$(curl -s -o /dev/null -w %{http_code} http://localhost/x)" = 308 ]'
check "the first start made the self-signed certificate" test -s /var/lib/appliance/tls/default.crt
check "the state database exists, mode 0600" sh -c '[ "$(stat -c %a /var/lib/appliance/state.db)" = 600 ]'
status=$(systemctl show -P StatusText appliance.service)
check "STATUS= reports the revision ($status)" sh -c "echo '$status' | grep -q 'config revision'"

# Reload: a config change through the file and systemctl reload is applied hot.
sed -i 's#"id": "health"#"id": "health2"#' /etc/appliance/appliance.json
check "systemctl reload" systemctl reload appliance.service
for i in $(seq 50); do appliance ctl routes 2>/dev/null | grep -q health2 && break; sleep 0.2; done
check "the reloaded config is served (route health2)" sh -c 'appliance ctl routes | grep -q health2'
check "same main process after reload" sh -c "[ '$(systemctl show -P MainPID appliance.service)' = '$pid' ]"

# Upgrade under load: reinstalling the package restarts the service behind systemd's sockets.
if [ -f /debs/appliance.deb ]; then
  (for i in $(seq 400); do curl -sk -o /dev/null -w '%{http_code}\n' --max-time 10 https://localhost/healthz; done > /tmp/codes.txt) &
  load=$!
  sleep 0.5
  check "dpkg -i (upgrade) succeeds" dpkg -i /debs/appliance.deb
  wait $load
  bad=$(grep -vc '^200$' /tmp/codes.txt)
  codes=$(grep -v '^200$' /tmp/codes.txt | sort | uniq -c | tr -s ' \n' ' ')
  check "no request failed through the upgrade ($(wc -l < /tmp/codes.txt) requests, $bad failed${codes:+: $codes})" test "$bad" = 0
  check "a new main process after the upgrade" sh -c "[ '$(systemctl show -P MainPID appliance.service)' != '$pid' ]"
fi

# In a VM (not a container): the kernel TLS module that modules-load.d names is loaded, and the host reaches
# HTTPS through its forwarded port (it watches the console for the line below, then makes one request).
if ! systemd-detect-virt --quiet --container; then
  check "the kernel TLS module is loaded (modules-load.d)" test -d /sys/module/tls
  handshakes() { appliance ctl metrics | awk -F' ' '/^tls_handshakes_total\{result="full"\}/ {print $2}'; }
  before=$(handshakes)
  echo "smoke: waiting for the host" | tee -a "$OUT" > /dev/console
  for i in $(seq 600); do [ "$(handshakes)" -gt "$before" ] && break; sleep 0.5; done
  check "the host reached HTTPS through the forwarded port" sh -c "[ '$(handshakes)' -gt '$before' ]"
fi

# Stop drains and exits cleanly.
check "systemctl stop" systemctl stop appliance.service
check "stopped cleanly (Result=success)" sh -c '[ "$(systemctl show -P Result appliance.service)" = success ]'

# Purge removes the package, its units and its state (where the test brought the package along to reinstall).
if [ -f /debs/appliance.deb ]; then
  check "dpkg --purge" sh -c 'DEBIAN_FRONTEND=noninteractive dpkg --purge appliance'
  check "purge removed the binary, units and state" sh -c '! [ -e /usr/lib/appliance/appliance ] && ! [ -e /lib/systemd/system/appliance.service ] && ! [ -e /var/lib/appliance ]'
fi

echo "smoke: done" | tee -a "$OUT" > /dev/console
systemctl poweroff
