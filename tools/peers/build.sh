#!/usr/bin/env bash
# Builds the peer tools Salvor is compared with, from Debian's packages only:
#   target/peers/bbolt-check   `bbolt check` (bbolt 1.3.6, golang-github-coreos-bbolt-dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/bbolt ] || need+=(golang-github-coreos-bbolt-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
mkdir -p target/peers
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="${GOCACHE:-$PWD/target/peers/go-cache}" \
  go build -o target/peers/bbolt-check ./tools/peers/bbolt-check
echo "built target/peers/bbolt-check"
