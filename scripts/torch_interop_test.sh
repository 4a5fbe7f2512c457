#!/usr/bin/env bash
# PyTorch interop checks (called by .ci/run), on the CPU:
#  1. `shiren export --torch` of the shipped model: python/modeling_shiren.py
#     reproduces its test vectors and `shiren score` of 300 Tang validation
#     poems, per poem, to 1e-4 nats.
#  2. `shiren corpus export` → `torchrun --nproc-per-node 2` (DDP, gloo) trains
#     a tiny model a few steps with scripts/torch_train.py → `shiren import`
#     reads it → `shiren score` of the validation part agrees with PyTorch's
#     loss to 1e-4 nats per token.
#
#   scripts/torch_interop_test.sh       # creates target/torch-venv (pip install torch safetensors) when missing
#   SHIREN_TORCH_VENV=DIR scripts/torch_interop_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "torch_interop_test: $*" >&2; }

VENV=${SHIREN_TORCH_VENV:-target/torch-venv}
PY=$VENV/bin/python
if ! "$PY" -c "import torch, safetensors" 2>/dev/null; then
  say "installing torch and safetensors into $VENV (a few GB, once)"
  start=$(date +%s)
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch safetensors numpy
  say "installed in $(($(date +%s) - start)) s"
fi

# The test profile shares its build with `cargo test`, which .ci/run has just run.
cargo build --quiet --profile test --bin shiren
BIN=target/debug/shiren
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. the shipped model, exported
"$BIN" export --torch "$TMP/tang" >/dev/null
"$BIN" corpus export --corpus tang --min-count 2 --out "$TMP/data" >/dev/null
awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 300' "$TMP/data/valid.txt" >"$TMP/some.txt"
"$BIN" score "$TMP/some.txt" --json --model "$TMP/tang" >"$TMP/tang-score.json"
"$PY" scripts/torch_check.py vectors "$TMP/tang"
"$PY" scripts/torch_check.py score "$TMP/tang" "$TMP/tang-score.json"

# 2. trained by torchrun on two processes, read back by shiren
"$VENV/bin/torchrun" --nproc-per-node 2 scripts/torch_train.py --data "$TMP/data" --out "$TMP/torch" \
  --embed 32 --hidden 48 --shortlist 500 --steps 8 --log-interval 4 2>&1 | grep -v '^W\|\*\*\*\*' >&2
"$BIN" import "$TMP/torch" --out "$TMP/imported" >&2
"$BIN" score "$TMP/data/valid.txt" --no-convert --json --model "$TMP/imported" >"$TMP/torch-score.json"
"$PY" scripts/torch_check.py loss "$TMP/torch-score.json" "$TMP/torch/torch_eval.json"
say "OK"
