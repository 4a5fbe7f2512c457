#!/usr/bin/env bash
# Trains the ci model shipped in models/songci-small: the Tang model shipped at the time
# (models/tang-small as of revision 1aac6c9, before its title vector; taken from git
# history, so a clone with that history is needed) trained 2,333 steps more (about 15
# minutes on 2 cores) on the Song ci, each read after its tune's name as a title, then
# copies its best checkpoint (f16, ≈ 8 MB) into models/songci-small. `shiren write
# --tune` uses it. FROM=models/tang-small starts from today's Tang model instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/songci
from=${FROM:-}
if [ -z "$from" ]; then
  rev=1aac6c9
  git cat-file -e "$rev^{commit}" 2>/dev/null || {
    echo "train_ci_model.sh: revision $rev is not in this clone (git fetch --unshallow, or set FROM=DIR)" >&2
    exit 1
  }
  from=runs/tang-small-$rev
  rm -rf "$from"
  mkdir -p "$from"
  git archive "$rev" models/tang-small | tar -x -C "$from" --strip-components=2
fi
cargo build --release --quiet
./target/release/shiren train --init-from "$from" --corpus songci --untitled-each-epoch false \
  --max-steps "${STEPS:-2333}" --epochs 0 --lr 1e-3 --min-lr 1e-4 --warmup 200 \
  --eval-interval 500 --half --out "$out"
rm -rf models/songci-small
cp -r "$out/best" models/songci-small
echo "models/songci-small: $(du -sh models/songci-small | cut -f1)"
