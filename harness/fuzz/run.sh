#!/usr/bin/env bash
# Builds the harness libFuzzer target (safetensors reader and config parser)
# with clang (ASan+UBSan) and runs it for $1 seconds (default 600). Seeds:
# valid weights of harness/fuzz/tiny.json (from `harness init`, prefixed with
# the selector byte 0), two near misses of them (overlapping tensors, a NaN
# weight) and the shipped model configs (selector byte 1).
#   make && bash harness/fuzz/run.sh 600
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-600}
out=${FUZZ_OUT:-build/fuzz-harness}
mkdir -p "$out/corpus" "$out/seeds" "$out/artifacts"
clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -fopenmp \
  harness/fuzz/fuzz_weights.c harness/model.c harness/safetensors.c \
  common/error.c common/atomic_file.c common/hash.c \
  -lopenblas -ljansson -lcrypto -lm -o "$out/fuzz_weights"
bin/harness init --model harness/fuzz/tiny.json --random-init 1 --out "$out/tiny.safetensors"
{ printf '\0'; cat "$out/tiny.safetensors"; } > "$out/seeds/weights"
# near misses the reader must refuse: two tensors on the same bytes, a NaN weight
/usr/bin/python3 - "$out/tiny.safetensors" "$out/seeds" <<'EOF'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
h, body = json.loads(data[8:8 + n]), data[8 + n:]
def write(name, header, payload):
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    open(f"{sys.argv[2]}/{name}", "wb").write(b"\0" + struct.pack("<Q", len(hb)) + hb + payload)
o = json.loads(json.dumps(h))
o["ln_f.bias"]["data_offsets"] = o["ln_f.weight"]["data_offsets"]
write("weights-overlap", o, body)
nan = bytearray(body)
b = h["tok_emb.weight"]["data_offsets"][0]
nan[b:b + 4] = struct.pack("<f", float("nan"))
write("weights-nan", h, bytes(nan))
EOF
for c in models/*.json harness/fuzz/tiny.json; do
  { printf '\1'; cat "$c"; } > "$out/seeds/config-$(basename "$c")"
done
"$out/fuzz_weights" -max_total_time="$secs" -max_len=8192 -timeout=10 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" "$out/seeds"
