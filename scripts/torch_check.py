"""PyTorch side of scripts/torch_interop_test.sh: compares python/modeling_shiren.py
with shiren's own numbers and exits non-zero, naming the worst poem, when they
differ by more than --tol nats.

    torch_check.py vectors DIR              # DIR from `shiren export --torch`: its test_vectors.json
    torch_check.py score DIR SCORE.json     # each poem of `shiren score --json --model DIR`
    torch_check.py loss SCORE.json EVAL.json  # shiren's mean loss against torch_train.py's
"""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))

TOL = 1e-4


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def model_of(d):
    from modeling_shiren import ShirenLM

    return ShirenLM.from_pretrained(d)


def vectors(d):
    import torch

    m = model_of(d)
    worst, at = 0.0, None
    for p in load(os.path.join(d, "test_vectors.json"))["poems"]:
        ids = torch.tensor(p["ids"])
        if p["places"]:
            line, col, form = m.places(ids[None, :-1])
            got = torch.stack([line[0], col[0], form[0]], -1).tolist()
            if got != p["places"]:
                sys.exit(f"torch_check: places of {p['text']} differ: {got} vs {p['places']}")
        lp = m.token_log_probs(ids).double()
        diff = (lp - torch.tensor(p["log_probs"], dtype=torch.float64)).abs().max().item()
        if diff > worst:
            worst, at = diff, p["text"]
    report("test vectors (per token)", worst, at)


def score(d, score_json):
    import torch

    m = model_of(d)
    out = load(score_json)
    worst, at = 0.0, None
    for p in out["poems"]:
        ids = m.vocab.encode(p["text"])
        got = m.token_log_probs(ids).double().sum().item()
        diff = abs(got - p["log_prob"])
        if diff > worst:
            worst, at = diff, f"poem {p['index']} ({p['source']}): torch {got:.6f}, shiren {p['log_prob']:.6f}"
    report(f"{len(out['poems'])} poems of shiren score (per poem)", worst, at)


def loss(score_json, eval_json):
    s, e = load(score_json)["total"], load(eval_json)
    if s["tokens"] != e["tokens"]:
        sys.exit(f"torch_check: shiren scored {s['tokens']} tokens, torch {e['tokens']}")
    report("mean validation loss, shiren score vs torch_train.py", abs(s["loss"] - e["valid_loss"]),
           f"shiren {s['loss']:.8f}, torch {e['valid_loss']:.8f}")


def report(what, worst, at):
    ok = worst <= TOL
    print(f"torch_check: {what}: largest difference {worst:.2e} nats ({'OK' if ok else 'NOT OK'}, tolerance {TOL:g}){'' if ok else ': ' + str(at)}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    {"vectors": vectors, "score": score, "loss": loss}[cmd](*rest)
