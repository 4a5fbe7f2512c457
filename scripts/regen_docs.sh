#!/usr/bin/env bash
# Regenerates the figures in README.md and docs/ that shiren itself prints, so that
# none of them is typed by hand. Each figure sits in a block
#
#   <!-- BEGIN generated: NAME -->
#   …
#   <!-- END generated -->
#
# and this script rewrites the blocks of the kinds named on its command line
# (default: eval), leaving everything outside the markers alone:
#
#   eval   shiren eval --model models/tang-small --json --report …   (~30 s on 2 quiet cores)
#          → README.md `eval-summary` (one table) and docs/evaluation.md `eval-card` (all of it)
#   bench  shiren bench --cfg all --cell lstm --steps 5 --warmup 1 --reps 3   (minutes)
#          → docs/performance.md `bench`; PyTorch side by side when $SHIREN_TORCH_PYTHON
#          names a Python with torch. Run it on a quiet machine.
#   keywords  python3 scripts/keyword_eval.py   (~1 min)
#          → docs/evaluation.md `keywords`: keywords present, tones and rhyme, log-prob
#
# Usage: scripts/regen_docs.sh [eval] [bench] [keywords]
set -euo pipefail
cd "$(dirname "$0")/.."

kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(eval)
for k in "${kinds[@]}"; do
  case $k in
    eval | bench | keywords) ;;
    *) echo "regen_docs.sh: unknown block kind \`$k\` (expected eval, bench or keywords)" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet
shiren=target/release/shiren
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# replace FILE NAME CONTENT_FILE: puts CONTENT_FILE between the markers of block NAME in FILE.
replace() {
  python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
path, name, content = sys.argv[1], sys.argv[2], open(sys.argv[3], encoding="utf-8").read()
text = open(path, encoding="utf-8").read()
begin, end = f"<!-- BEGIN generated: {name} -->\n", "<!-- END generated -->"
i = text.find(begin)
if i < 0:
    sys.exit(f"regen_docs.sh: {path} has no `{begin.strip()}` block (add the two markers where it goes)")
j = text.find(end, i)
if j < 0:
    sys.exit(f"regen_docs.sh: {path}: block `{name}` has no `{end}`")
text = text[: i + len(begin)] + content.rstrip("\n") + "\n" + text[j:]
open(path, "w", encoding="utf-8").write(text)
print(f"{path}: rewrote block `{name}`")
EOF
}

for k in "${kinds[@]}"; do
  case $k in
  eval)
    cmd=(eval --model models/tang-small)
    echo "running: shiren ${cmd[*]} --json --report …" >&2
    "$shiren" "${cmd[@]}" --json --report "$tmp/card.md" >"$tmp/card.json"
    # The README's table: one row per form, the columns a reader asks about first.
    python3 - "$tmp/card.json" >"$tmp/summary.md" <<'EOF'
import json, sys
card = json.load(open(sys.argv[1], encoding="utf-8"))
zh = {"wujue": "五绝", "qijue": "七绝", "wulv": "五律", "qilv": "七律"}
row = {(r["form"], r["kind"]): r for r in card["rows"]}
test = next(p for p in card["perplexity"] if p["part"] == "test")
kn = dict((n, x) for n, x in test["ngram"])
line = f"Test perplexity **{test['model']:.1f}** per character"
if 3 in kn:
    line += f", {test['model'] / kn[3]:.2f}× the Kneser–Ney trigram's ({kn[3]:.1f})"
if 5 in kn:
    line += f" and {test['model'] / kn[5]:.2f}× the 5-gram's ({kn[5]:.1f})"
print(line + f"; {card['samples']:,} poems per form and kind, sampled at temperature 1:\n")
print("| form | kept the form, free-running | rhyme% / tones%, form forced | with `--tones strict` | real poems, rhyme% / tones% | lines copied, model / real | distinct-2, model / real |")
print("|---|---:|---:|---:|---:|---:|---:|")
def rt(r):
    return f"{r['rhyme_pct']:.1f} / {r['tones_pct']:.1f}"
for f in ["wujue", "qijue", "wulv", "qilv"]:
    run, free, strict, real = (row.get((f, k)) for k in ["running", "free", "strict", "real"])
    if not (run and free and strict and real):
        continue
    print(f"| {zh[f]} | {run['form_pct']:.1f}% | {rt(free)} | {rt(strict)} | {rt(real)} "
          f"| {free['copied_lines_pct']:.1f}% / {real['copied_lines_pct']:.1f}% "
          f"| {free['distinct2']:.3f} / {real['distinct2']:.3f} |")
EOF
    # docs/evaluation.md: the whole markdown report, its headings moved under the page's own
    # and its plots left out (they are files beside the report, not part of the page).
    sed -e 's/^#/###/' -e '/^!\[/d' "$tmp/card.md" | cat -s >"$tmp/card-doc.md"
    replace README.md eval-summary "$tmp/summary.md"
    replace docs/evaluation.md eval-card "$tmp/card-doc.md"
    ;;
  bench)
    cmd=(bench --cfg all --cell lstm --steps 5 --warmup 1 --reps 3)
    [ -z "${SHIREN_TORCH_PYTHON:-}" ] && cmd+=(--no-torch)
    echo "running: shiren ${cmd[*]}" >&2
    "$shiren" "${cmd[@]}" >"$tmp/bench.txt"
    {
      echo "\`shiren ${cmd[*]}\` on $(date -u +%Y-%m-%d), $(nproc) cores of $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'):"
      echo
      echo '```text'
      cat "$tmp/bench.txt"
      echo '```'
    } >"$tmp/bench.md"
    replace docs/performance.md bench "$tmp/bench.md"
    ;;
  keywords)
    echo "running: python3 scripts/keyword_eval.py --bin $shiren" >&2
    python3 scripts/keyword_eval.py --bin "$shiren" >"$tmp/keywords.md"
    replace docs/evaluation.md keywords "$tmp/keywords.md"
    ;;
  esac
done
