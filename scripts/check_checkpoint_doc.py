#!/usr/bin/env python3
"""Checks docs/checkpoints.md against shiren itself: reads a checkpoint exactly as
that page describes it (tensor names and shapes, position rows, tied head,
two-level softmax), in plain Python with no PyTorch or NumPy, computes the
log-probability of every next token of one poem, and compares them with what
shiren's own model gives (`cargo run --release --example log_probs`).

    scripts/check_checkpoint_doc.py [CHECKPOINT] [POEM] [TAG] [TITLE]

Defaults: models/tang-small, 白日依山尽…, tag 五绝, and (for a model with a title
vector) the title 登鹳雀楼. Covers LSTM checkpoints, as the shipped model is. Exits 1 when a log-probability differs by more than 1e-4.
"""
import json, math, operator, struct, subprocess, sys

ckpt = sys.argv[1] if len(sys.argv) > 1 else "models/tang-small"
poem = sys.argv[2] if len(sys.argv) > 2 else "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
tag = sys.argv[3] if len(sys.argv) > 3 else "五绝"

cfg = json.load(open(f"{ckpt}/config.json", encoding="utf-8"))["model"]
titled = (cfg.get("positions") or {}).get("title", False)
title = sys.argv[4] if len(sys.argv) > 4 else ("登鹳雀楼" if titled else None)

ref = json.loads(subprocess.run(
    ["cargo", "run", "--quiet", "--release", "--example", "log_probs", "--", ckpt, poem, tag]
    + ([title] if title else []),
    check=True, capture_output=True, text=True).stdout)

if cfg["cell"] != "lstm":
    sys.exit(f"{ckpt}: a {cfg['cell']} checkpoint; this check covers lstm")

# model.safetensors: 8 bytes of header length, the JSON header, then the data.
raw = open(f"{ckpt}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
assert header["__metadata__"]["format"] == "shiren-checkpoint/1"

def tensor(name):
    h = header[name]
    a, b = h["data_offsets"]
    code, size = {"F16": ("e", 2), "F32": ("f", 4)}[h["dtype"]]
    flat = struct.unpack(f"<{(b - a) // size}{code}", raw[8 + n + a:8 + n + b])
    if len(h["shape"]) == 1:
        return list(flat)
    cols = h["shape"][1]
    return [list(flat[r * cols:(r + 1) * cols]) for r in range(h["shape"][0])]

w = {k: tensor(k) for k in header if k != "__metadata__"}
V, H, L = cfg["vocab"], cfg["hidden"], cfg["layers"]
S, P, tied = cfg.get("shortlist", 0), cfg.get("positions"), cfg.get("tied", False)

def dot(a, b):
    return sum(map(operator.mul, a, b))

def sigmoid(x):
    return 1 / (1 + math.exp(-x))

def logsumexp(v):
    m = max(v)
    return m + math.log(sum(math.exp(x - m) for x in v))

# Position rows: the token being read counts toward its own line and column.
def rows(ids):
    line = col = form = 0
    for t in ids:
        if t in P.get("resets", []):
            line, col = 0, 0
        elif t in P["forms"]:
            form = P["forms"].index(t) + 1
        elif t in P["line_ends"]:
            line, col = line + 1, 0
        elif t not in P["silent"]:
            col += 1
        yield min(line, P["size"] - 1), min(col, P["size"] - 1), form

# The title vector: the characters before the first reset that follows one are the
# title; from that reset on, title.weight · (their mean embedding row) joins the input.
def is_char(t):
    return not (t in P.get("resets", []) or t in P["forms"] or t in P["line_ends"] or t in P["silent"])

ids, targets = ref["ids"], ref["targets"]
places = list(rows(ids)) if P else [None] * len(ids)
h = [[0.0] * H for _ in range(L)]
c = [[0.0] * H for _ in range(L)]
worst = 0.0
title_chars, u = [], None
for t, (tok, place) in enumerate(zip(ids, places)):
    x = list(w["embedding.weight"][tok])
    if P:
        tables = ["line_embedding.weight", "column_embedding.weight"]
        if P.get("forms"):
            tables.append("form_embedding.weight")
        for name, row in zip(tables, place):
            x = [a + b for a, b in zip(x, w[name][row])]
    if P and P.get("title") and u is None:
        if is_char(tok):
            title_chars.append(tok)
        elif tok in P.get("resets", []) and title_chars:
            rows_ = [w["embedding.weight"][k] for k in title_chars]
            mean = [sum(col) / len(rows_) for col in zip(*rows_)]
            u = [dot(r, mean) for r in w["title.weight"]]
    if u is not None:
        x = [a + b for a, b in zip(x, u)]
    for l in range(L):
        wi, wh = w[f"rnn.weight_ih_l{l}"], w[f"rnn.weight_hh_l{l}"]
        bi, bh = w[f"rnn.bias_ih_l{l}"], w[f"rnn.bias_hh_l{l}"]
        g = [dot(wi[r], x) + dot(wh[r], h[l]) + bi[r] + bh[r] for r in range(4 * H)]
        gi, gf, gg, go = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]  # i, f, g, o
        c[l] = [sigmoid(f) * cc + sigmoid(i) * math.tanh(gv) for i, f, gv, cc in zip(gi, gf, gg, c[l])]
        h[l] = [sigmoid(o) * math.tanh(cc) for o, cc in zip(go, c[l])]
        x = h[l]
    if tied:
        x = [dot(r, x) for r in w["bottleneck.weight"]]
        proj = w["embedding.weight"]
    else:
        proj = w["proj.weight"]
    logits = [dot(r, x) + b for r, b in zip(proj, w["proj.bias"])]
    y = targets[t]
    if S:
        rare = dot(w["rare.weight"][0], x) + w["rare.bias"][0]
        first = logsumexp(logits[:S] + [rare])
        lp = logits[y] - first if y < S else (rare - first) + (logits[y] - logsumexp(logits[S:]))
    else:
        lp = logits[y] - logsumexp(logits)
    diff = abs(lp - ref["log_probs"][t])
    worst = max(worst, diff)
    print(f"step {t:2}  target {y:5}  docs {lp:11.6f}  shiren {ref['log_probs'][t]:11.6f}  diff {diff:.1e}")
print(f"{len(ids)} steps, largest difference {worst:.1e} nats")
sys.exit(0 if worst <= 1e-4 else 1)
