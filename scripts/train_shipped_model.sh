#!/usr/bin/env bash
# Trains the model shipped in models/tang-small: 2×LSTM-256, embedding 128, on the Tang
# poems in simplified characters (characters seen once become the unknown token), then
# copies its best checkpoint, stored as f16 (≈ 6.5 MB), into models/tang-small.
#
#   scripts/train_shipped_model.sh            # about 45 minutes on 2 quiet cores (4,800–5,300 tok/s)
#   EPOCHS=1 scripts/train_shipped_model.sh   # a quicker, weaker model
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/tang-small
cargo build --release --quiet
./target/release/shiren train --corpus tang --min-count 2 \
  --cell lstm --layers 2 --embed 128 --hidden 256 --dropout 0 --positions 16 --tied false --shortlist 0 \
  --batch 32 --warmup 400 --lr 4e-3 --epochs "${EPOCHS:-5}" --eval-interval 1000 --eval-iters 20 \
  --half --out "$out"
rm -rf models/tang-small
mkdir -p models
cp -r "$out/best" models/tang-small
echo "models/tang-small: $(du -sh models/tang-small | cut -f1)"
