#!/usr/bin/env bash
# `pocket pull` against curl on the same blob over loopback (issue 16's target: pull at
# least 80 % of curl's rate, hashing included). Starts Debian's docker-registry on a free
# 127.0.0.1 port with storage in a temp dir, uploads one blob of SIZE_MB random bytes with
# curl (POST + PUT) plus a manifest naming it as a GGUF layer, then, ROUNDS times,
# alternating the order: curl -o FILE of the blob, and `pocket pull` into an empty store
# (which streams, hashes, fsyncs and renames). Prints MB/s of each (median) and the ratio.
#   bash bench/registry/pull_bench.sh [POCKET] [SIZE_MB] [ROUNDS]
# Defaults: build/release/pocket, 1024, 3. Needs docker-registry, curl, sha256sum.
set -euo pipefail
pocket=$(realpath "${1:-build/release/pocket}")
size_mb=${2:-1024}
rounds=${3:-3}
for tool in docker-registry curl sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "pull_bench: $tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d)
reg_pid=""
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/v2/" >/dev/null && break; sleep 0.1; done

upload() {  # FILE -> prints its digest
  local file=$1 digest loc
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  loc=$(curl -sf -D - -o /dev/null -X POST "$base/v2/bench/model/blobs/uploads/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc="$base$loc" ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" \
    "$loc${sep}digest=$digest" >/dev/null
  echo "$digest"
}
head -c $((size_mb << 20)) /dev/urandom >"$work/layer"
printf '{"architecture":"bench"}' >"$work/config"
layer=$(upload "$work/layer")
config=$(upload "$work/config")
layer_size=$(stat -c %s "$work/layer")
config_size=$(stat -c %s "$work/config")
rm -f "$work/layer"
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.pocket.model.v1","config":{"mediaType":"application/vnd.pocket.model.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.pocket.model.gguf.v1","digest":"%s","size":%d}]}' \
  "$config" "$config_size" "$layer" "$layer_size")
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary "$manifest" "$base/v2/bench/model/manifests/v1" >/dev/null

now() { date +%s.%N; }
curl_s=() pocket_s=()
for r in $(seq "$rounds"); do
  order="curl pocket"
  ((r % 2 == 0)) && order="pocket curl"
  for which in $order; do
    rm -rf "$work/out" "$work/store"
    t0=$(now)
    if [ "$which" = curl ]; then
      curl -sf -o "$work/out" "$base/v2/bench/model/blobs/$layer"
      sync "$work/out"
    else
      POCKET_HOME="$work/store" "$pocket" pull -q "127.0.0.1:$port/bench/model:v1" >/dev/null
    fi
    t1=$(now)
    s=$(echo "$t1 - $t0" | bc -l)
    if [ "$which" = curl ]; then curl_s+=("$s"); else pocket_s+=("$s"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(median "${curl_s[@]}")
mp=$(median "${pocket_s[@]}")
mb=$(echo "$layer_size / 1000000" | bc -l)
printf 'blob %d MB over loopback, %d rounds (median)\n' "$((layer_size / 1000000))" "$rounds"
printf 'curl -o FILE (+ sync)   %8.1f MB/s  (%.2f s)\n' "$(echo "$mb / $mc" | bc -l)" "$mc"
printf 'pocket pull             %8.1f MB/s  (%.2f s)\n' "$(echo "$mb / $mp" | bc -l)" "$mp"
printf 'pocket / curl           %8.2f\n' "$(echo "$mc / $mp" | bc -l)"
