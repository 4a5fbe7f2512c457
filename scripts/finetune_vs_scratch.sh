#!/usr/bin/env bash
# Fine-tuning the shipped Tang model on Song ci against training the same
# architecture from scratch for the same wall-clock time, scored with
# `shiren score` on the Song ci validation part (docs/pytorch.md quotes it).
#
#   scripts/finetune_vs_scratch.sh [MINUTES]   # default 2 minutes per run
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-2}
OUT=${OUT:-runs/songci-compare}
cargo build --release --quiet --bin shiren
BIN=target/release/shiren
mkdir -p "$OUT"
"$BIN" corpus export --corpus songci --min-count 2 --out "$OUT/data"
common=(--corpus songci --minutes "$MIN" --warmup 20 --eval-interval 100000)
"$BIN" train --init-from models/tang-small "${common[@]}" --lr 0.001 --out "$OUT/finetune"
"$BIN" train "${common[@]}" --min-count 2 --embed 256 --hidden 384 --shortlist 1000 --out "$OUT/scratch"
for run in finetune scratch; do
  echo "$run: $("$BIN" score "$OUT/data/valid.txt" --no-convert --model "$OUT/$run/last" | tail -1)"
done
