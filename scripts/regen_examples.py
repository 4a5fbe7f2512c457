#!/usr/bin/env python3
"""Rewrites the example poems in README.md and docs/*.md with what the shipped
models write now, so that no example is typed by hand.

Each `$ shiren write … --seed N` line of a page (not --json or --verbose, as the
test `the_example_poems_in_the_docs_are_what_the_shipped_models_write` reads
them) is run with target/release/shiren, and the lines below it, up to the next
`$ ` line or the end of the code block (less trailing blank lines), become
its output. Each `$ shiren check --suggest "…"` has its `→` lines (the
model's suggestions) rewritten, the other lines of its block, which may be
elided, kept. A line
holding two commands sets the two poems side by side, the second starting at
the display column where its command starts. A `(rhyme: 第六部平)` note after
a command is rewritten from the poem's rhyme group, and a column after the
poem's lines (a tune's tone pattern) is kept beside the new lines.

Usage: cargo build --release && python3 scripts/regen_examples.py
"""
import pathlib
import re
import shlex
import subprocess
import sys
import unicodedata
import json

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIREN = ROOT / "target" / "release" / "shiren"


def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def commands(line):
    """(display column, argument list or None) of each command on a `$ shiren` line."""
    out = []
    for m in re.finditer(r"\$ shiren (.*?)(?=\s{2,}\$ shiren |$)", line):
        cmd = m.group(1).split("  (")[0].strip()
        args = shlex.split(cmd)
        runs = "--seed" in args and not {"--json", "--verbose", "-v"} & set(args)
        out.append((width(line[: m.start()]), args if runs else None))
    return out


def run(args):
    p = subprocess.run([str(SHIREN), *args], cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        return None  # an example of an error: left as it is
    return p.stdout.rstrip("\n").split("\n")


def keep_columns(new, old):
    """The new poem's lines, each followed by the old line's annotation (a
    tune's tone pattern, set in a column after two or more spaces) when every
    old line has one: the pattern belongs to the tune, not to the poem."""
    parts = [re.match(r"^(\S+)(\s{2,})(\S.*)$", o) for o in old]
    if len(old) != len(new) or not all(parts):
        return new
    col = width(parts[0].group(1)) + len(parts[0].group(2))
    return [n + " " * max(2, col - width(n)) + p.group(3) for n, p in zip(new, parts)]


def renote(line, args):
    """A `(rhyme: …)` note after the command, rewritten from the poem's rhyme group."""
    m = re.search(r"\(rhyme: [^)]*\)", line)
    if not m:
        return line
    p = subprocess.run([str(SHIREN), *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    group = json.loads(p.stdout)["poems"][0].get("rhyme_group") or "none"
    return line[: m.start()] + f"(rhyme: {group})" + line[m.end() :]


def block_end(lines, i):
    """The index of the line after a command's output: the next `$ ` line or fence."""
    while i < len(lines) and not lines[i].startswith(("$ ", "```")):
        i += 1
    return i


def resuggest(line, block):
    """The block under a `check --suggest` line with its `→` lines rewritten."""
    p = subprocess.run([str(SHIREN), *shlex.split(line[len("$ shiren ") :])], cwd=ROOT, capture_output=True, text=True)
    new = [l for l in p.stdout.split("\n") if "→" in l]
    old = [k for k, l in enumerate(block) if "→" in l]
    if not new or not old:
        return block
    return block[: old[0]] + new + block[old[-1] + 1 :]


def regen(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    out, i, changed = [], 0, 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line.startswith("$ shiren check --suggest"):
            end = block_end(lines, i)
            new = resuggest(line, lines[i:end])
            changed += new != lines[i:end]
            out.extend(new)
            i = end
            continue
        if not line.startswith("$ shiren write"):
            continue
        cmds = commands(line)
        end = block_end(lines, i)
        while end > i and not lines[end - 1].strip():
            end -= 1  # blank lines before the next command stay
        outputs = [run(a) if a else None for _, a in cmds]
        if not any(outputs) or any(o is None for o in outputs):
            continue
        if len(cmds) == 1:
            new = keep_columns(outputs[0], lines[i:end])
            out[-1] = renote(line, cmds[0][1])
        else:
            col = cmds[1][0]
            # a poem twice as long as its neighbour is set in couplets
            short = min(len(o) for o in outputs)
            outputs = [
                [o[k] + o[k + 1] for k in range(0, len(o) - 1, 2)] if len(o) == 2 * short else o
                for o in outputs
            ]
            n = max(len(o) for o in outputs)
            new = []
            for k in range(n):
                left = outputs[0][k] if k < len(outputs[0]) else ""
                right = outputs[1][k] if k < len(outputs[1]) else ""
                new.append((left + " " * max(1, col - width(left)) + right).rstrip())
        if new != lines[i:end]:
            changed += 1
        out.extend(new)
        i = end
    path.write_text("\n".join(out), encoding="utf-8")
    return changed


if not SHIREN.exists():
    sys.exit("regen_examples.py: build first (cargo build --release)")
for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
    n = regen(page)
    if n:
        print(f"{page.relative_to(ROOT)}: rewrote {n} example(s)")
