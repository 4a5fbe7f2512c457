#!/usr/bin/env bash
# Trains the model shipped in models/tang-small, in one run from scratch: 2×LSTM-384,
# embedding 256, output tied to the embedding through a 256 × 384 map, two-level softmax
# (shortlist 1,000), dropout 0.2, on the Tang poems in simplified characters (characters
# seen once become the unknown token), each poem read after its cleaned title and the
# title vector (a fifth of the poems without their title, a different fifth each epoch),
# and stores the best checkpoint by titleless validation loss as f16 (≈ 8 MB) in
# models/tang-small.
#
#   scripts/train_shipped_model.sh                 # STEPS steps: about 85 minutes on 2 cores
#   STEPS=7000 scripts/train_shipped_model.sh      # a quicker, weaker model
#
# The shipped model came from the same command with `--minutes 85` in place of
# `--max-steps`: the time budget re-fitted the run at each evaluation and it ended at
# 23719 steps. This script runs that many as a fixed-length run, which repeats bit for
# bit on any machine; its learning-rate decay is set for the whole run from the start,
# where the budget's end moved by a few percent at each evaluation, so it makes a model
# of the same recipe, not these exact weights.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/tang-small
cargo build --release --quiet
./target/release/shiren train --corpus tang --min-count 2 \
  --cell lstm --layers 2 --embed 256 --hidden 384 --tied true --shortlist 1000 \
  --dropout 0.2 --dropout-in 0 --dropout-out 0 --positions 16 \
  --batch 32 --warmup 400 --lr 3e-3 --min-lr 3e-4 --clip 1 --seed 1 \
  --titles --max-steps "${STEPS:-23719}" --epochs 0 --eval-interval 1000 \
  --half --out "$out"
rm -rf models/tang-small
mkdir -p models
./target/release/shiren import "$out/best" --out models/tang-small --f16
echo "models/tang-small: $(du -sh models/tang-small | cut -f1)"
