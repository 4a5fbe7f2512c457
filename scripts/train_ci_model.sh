#!/usr/bin/env bash
# Trains the ci model shipped in models/songci-small: the shipped Tang model
# (models/tang-small) trained 2,333 steps more (about 15 minutes on 2 cores) on the
# Song ci, each read after its tune's name as a title, then copies its best
# checkpoint (f16, ≈ 8 MB) into models/songci-small. `shiren write --tune` uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/songci
cargo build --release --quiet
./target/release/shiren train --init-from models/tang-small --corpus songci \
  --max-steps "${STEPS:-2333}" --epochs 0 --lr 1e-3 --min-lr 1e-4 --warmup 200 \
  --eval-interval 500 --half --out "$out"
rm -rf models/songci-small
cp -r "$out/best" models/songci-small
echo "models/songci-small: $(du -sh models/songci-small | cut -f1)"
