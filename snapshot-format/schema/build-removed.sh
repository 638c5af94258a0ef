#!/bin/sh
# Rebuilds kubernetes-api-removed.binpb from removed/*.proto (see README.md).
# Needs protoc; `pip install grpcio-tools` provides one as `python3 -m grpc_tools.protoc`.
# Each file is compiled on its own (a file that adds fields to a message of the main schema
# must not import the file defining it), then the sets are concatenated: concatenated
# FileDescriptorSets are one FileDescriptorSet.
set -eu
cd "$(dirname "$0")"
PROTOC=${PROTOC:-"python3 -m grpc_tools.protoc"}
out=kubernetes-api-removed.binpb
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in removed/*.proto; do
  $PROTOC --descriptor_set_in=kubernetes-api.binpb -Iremoved \
    --descriptor_set_out="$tmp/$(basename "$f" .proto).binpb" "$(basename "$f")"
done
cat "$tmp"/*.binpb > "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
