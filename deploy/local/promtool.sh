#!/usr/bin/env bash
# Checks the Prometheus alerting rules (deploy/prometheus/alerts.yml) and the
# compose Prometheus config (prometheus.yml), and runs the rules' unit tests
# (alerts_test.yml) with promtool. Installs promtool from Debian's prometheus
# package (apt) when it is missing; the package's server is left stopped and
# disabled, since only promtool is needed.
set -euo pipefail
cd "$(dirname "$0")/../prometheus"
if ! command -v promtool >/dev/null; then
  echo "installing promtool (Debian package prometheus) for the alert rule checks ..."
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if ! apt-cache show prometheus >/dev/null 2>&1; then
    $SUDO apt-get update -qq
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
promtool check rules alerts.yml
promtool check config prometheus.yml
promtool test rules alerts_test.yml
