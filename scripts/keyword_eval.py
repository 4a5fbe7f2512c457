#!/usr/bin/env python3
"""What keywords cost and whether they hold, measured with the shiren binary.

For each of the four forms it writes COUNT poems for one title under `--tones strict`,
once with the keywords and once without, and prints a Markdown table:

- how many keyword poems contain every keyword (the writer promises all of them);
- the five tone rules and the rhyme as `shiren check --summary` reads the poems
  (not the writer's own report);
- the mean log-probability per character of the kept poems (`score` in
  `shiren write --json`), with and without the keywords, same title, same seed.

    python3 scripts/keyword_eval.py                        # models/tang-small, 200 poems a form
    python3 scripts/keyword_eval.py --count 50 --keywords 月,霜 --title 秋夜

scripts/regen_docs.sh keywords puts its table into docs/evaluation.md.
"""

import argparse
import json
import subprocess
import sys
import tempfile

FORMS = [("wujue", "五绝"), ("qijue", "七绝"), ("wulv", "五律"), ("qilv", "七律")]


def run(cmd, ok=(0,)):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in ok:
        sys.exit(f"keyword_eval.py: `{' '.join(cmd)}` failed: {done.stderr.strip()}")
    return done.stdout


def write(args, form, keywords):
    cmd = [args.bin, "write", "--model", args.model, "--form", form, "--title", args.title,
           "--tones", "strict", "--count", str(args.count), "--seed", str(args.seed), "--json"]
    if keywords:
        cmd += ["--keywords", keywords]
    return json.loads(run(cmd))["poems"]


def check(args, poems):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as f:
        f.write("\n\n".join(p["text"] for p in poems) + "\n")
        f.flush()
        # exit 1 says a rule is broken somewhere; the counts say which
        cmd = [args.bin, "check", "--summary", "--json", "--file", f.name]
        return json.loads(run(cmd, ok=(0, 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/shiren")
    ap.add_argument("--model", default="models/tang-small")
    ap.add_argument("--title", default="秋夜")
    ap.add_argument("--keywords", default="明月,江")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    words = [w for w in args.keywords.split(",") if w]

    print(f"`shiren write --form F --title {args.title} --keywords {args.keywords} --tones strict "
          f"--count {args.count} --seed {args.seed}`, against the same without `--keywords`; "
          "tones and rhyme as `shiren check --summary` reads the keyword poems:\n")
    print("| form | poems with every keyword | five tone rules kept | 出韵 / 重韵 | 孤平 "
          "| log-prob per char, keywords / none |")
    print("|---|---:|---:|---:|---:|---:|")
    total = every = 0
    for form, zh in FORMS:
        with_kw = write(args, form, args.keywords)
        without = write(args, form, None)
        has_all = sum(all(w in p["text"] for w in words) for p in with_kw)
        summary = check(args, with_kw)
        checked = summary["poems"] - summary["not_checked"]
        broken = summary["broken"]
        mean = lambda ps: sum(p["score"] for p in ps) / len(ps)
        print(f"| {zh} | {has_all}/{len(with_kw)} | {summary['tones_ok']}/{checked} "
              f"| {broken.get('出韵', 0)} / {broken.get('重韵', 0)} | {broken.get('孤平', 0)} "
              f"| {mean(with_kw):.3f} / {mean(without):.3f} |")
        total += len(with_kw)
        every += has_all
    print(f"\nEvery keyword in {every} of {total} poems. 孤平 is not one of the five tone rules "
          "that `--tones strict` keeps (`shiren check` reports it as well).")


if __name__ == "__main__":
    main()
