#!/usr/bin/env bash
# Debian packages the test suite and benchmarks use: promtool/prometheus (metrics and alert checks), wrk (cross-check),
# chromium (the console's browser tests drive it through playwright-core; Playwright cannot download browsers here).
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  echo "tools present: promtool $(promtool --version 2>&1 | head -n1 | awk '{print $3}'), wrk, redis-server, $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "missing ${missing[*]} and not root: install them with apt-get" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package may start a system Prometheus; the tests start their own on free ports.
(pkill -x prometheus || true) 2>/dev/null
