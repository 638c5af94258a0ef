#!/usr/bin/env bash
# Builds the peer tools Salvor is compared with, from Debian's packages only:
#   target/peers/bbolt-check      `bbolt check` (bbolt 1.3.6, golang-github-coreos-bbolt-dev)
# With --etcd-tools also (for benchmarks; adds a deb-src entry and runs `apt-get source etcd`):
#   target/peers/etcd-dump-logs   etcd 3.4.23's tools/etcd-dump-logs
#   target/peers/etcd-dump-db     etcd 3.4.23's tools/etcd-dump-db
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/bbolt ] || need+=(golang-github-coreos-bbolt-dev)
if [ "${1:-}" = "--etcd-tools" ]; then
  [ -d /usr/share/gocode/src/go.etcd.io/etcd ] || need+=(golang-etcd-server-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
mkdir -p target/peers
export GOCACHE="${GOCACHE:-$root/target/peers/go-cache}"
GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/peers/bbolt-check ./tools/peers/bbolt-check
echo "built target/peers/bbolt-check"

if [ "${1:-}" = "--etcd-tools" ]; then
  src=target/peers/src
  if [ ! -d "$src/etcd-3.4.23" ]; then
    if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        | $sudo_cmd tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
      $sudo_cmd apt-get update -qq
    fi
    mkdir -p "$src" && (cd "$src" && apt-get source -qq etcd)
  fi
  gopath="$root/target/peers/gopath"
  mkdir -p "$gopath/src/go.etcd.io"
  ln -sfn "$root/$src/etcd-3.4.23" "$gopath/src/go.etcd.io/etcd"
  for tool in etcd-dump-logs etcd-dump-db; do
    (cd "$gopath/src/go.etcd.io/etcd" && GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" \
      go build -o "$root/target/peers/$tool" "./tools/$tool")
    echo "built target/peers/$tool"
  done
fi
