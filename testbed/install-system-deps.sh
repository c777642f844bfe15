#!/usr/bin/env bash
# Installs the Debian packages the test bed runs (Prometheus). Needs root or sudo.
set -euo pipefail
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends prometheus curl >/dev/null
prometheus --version | head -1
