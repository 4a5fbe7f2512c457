"""Trains shiren's architecture in PyTorch on a corpus from `shiren corpus export`,
on one process or many (torchrun: DDP, gloo on CPU, nccl on GPU), and saves
what `shiren import` reads.

    shiren corpus export --corpus tang --min-count 2 --out data/tang
    torchrun --nproc-per-node 2 scripts/torch_train.py --data data/tang --out runs/torch-tang
    shiren import runs/torch-tang --out runs/torch-tang-ckpt     # or: shiren score/write --model runs/torch-tang

The model is python/modeling_shiren.py's ShirenLM. Each process reads every
world-size-th batch of a shuffled, length-bucketed epoch (the same order on
every rank, from --seed), DDP averages the gradients, Adam steps. At the end
rank 0 measures the loss per token over the validation part (no dropout,
untagged poems, END included, as `shiren score` counts) and saves it in
config.json (`val_loss`) and torch_eval.json. Not here: sampling, prosody.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from modeling_shiren import BEGIN, END, PAD, ShirenConfig, ShirenLM  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
# I/O
p.add_argument("--data", required=True, help="folder written by `shiren corpus export`")
p.add_argument("--out", required=True, help="folder to save model.safetensors, config.json, vocab.json")
p.add_argument("--init-from", help="start from this model folder (a `shiren export --torch` or an earlier --out)")
# model (ignored with --init-from)
p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
p.add_argument("--layers", type=int, default=2)
p.add_argument("--embed", type=int, default=128)
p.add_argument("--hidden", type=int, default=256)
p.add_argument("--dropout", type=float, default=0.0)
p.add_argument("--positions", type=int, default=16, help="rows of the line and column tables (0: none)")
p.add_argument("--tied", type=int, default=1, help="1: the output weights are the embedding's")
p.add_argument("--shortlist", type=int, default=0, help="two-level softmax over ids below this (0: one softmax)")
# optimizer
p.add_argument("--steps", type=int, default=1000)
p.add_argument("--batch", type=int, default=32, help="poems per batch per process")
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--log-interval", type=int, default=20)
args = p.parse_args()

# --- system ---
ddp = "RANK" in os.environ
if ddp:
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local}" if backend == "nccl" else "cpu")
else:
    rank, world = 0, 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
master = rank == 0
torch.manual_seed(args.seed)

# --- data ---
with open(os.path.join(args.data, "corpus.json"), encoding="utf-8") as f:
    info = json.load(f)
data = load_file(os.path.join(args.data, "data.safetensors"))


def poems(part):
    tokens, offsets = data[f"{part}.tokens"].long(), data[f"{part}.offsets"].tolist()
    return [tokens[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


train, valid = poems("train"), poems("valid")


def batch_of(seqs):
    """inputs BEGIN ids, targets ids END, PAD after; (B, T) each."""
    t = max(len(s) for s in seqs) + 1
    x = torch.full((len(seqs), t), PAD, dtype=torch.long)
    y = torch.full((len(seqs), t), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, 0] = BEGIN
        x[i, 1 : len(s) + 1] = s
        y[i, : len(s)] = s
        y[i, len(s)] = END
    return x.to(device), y.to(device)


def epoch_batches(epoch):
    """Length-bucketed batches in a shuffled order, the same on every rank."""
    g = torch.Generator().manual_seed(args.seed * 1000 + epoch)
    order = sorted(torch.randperm(len(train), generator=g).tolist(), key=lambda i: len(train[i]))
    cuts = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
    return [cuts[i] for i in torch.randperm(len(cuts), generator=g).tolist()]


# --- model ---
if args.init_from:
    model = ShirenLM.from_pretrained(args.init_from)
    assert model.config.vocab == info["vocab"], (
        f"{args.init_from} has a vocabulary of {model.config.vocab}, the data {info['vocab']}: "
        f"export the corpus with --vocab {args.init_from}/vocab.json"
    )
else:
    positions = None
    if args.positions:
        positions = dict(size=args.positions, line_ends=info["line_ends"], silent=info["silent"], forms=info["forms"])
    cfg = ShirenConfig(cell=args.cell, layers=args.layers, embed=args.embed, hidden=args.hidden,
                       vocab=info["vocab"], dropout=args.dropout, tied=bool(args.tied),
                       shortlist=args.shortlist, positions=positions)
    model = ShirenLM(cfg)
model.to(device)
net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
opt = torch.optim.Adam(model.parameters(), lr=args.lr)
if master:
    n = sum(p.numel() for p in model.parameters())
    print(f"torch_train: {n} parameters, {world} process(es) on {device}, {len(train)} training poems")

# --- training ---
model.train()
step, epoch, t0 = 0, 0, time.time()
while step < args.steps:
    batches = epoch_batches(epoch)
    for k in range(rank, len(batches) - (len(batches) % world), world):
        x, y = batch_of([train[i] for i in batches[k]])
        _, loss, _ = net(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        if master and (step % args.log_interval == 0 or step == args.steps):
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.1f} s)", flush=True)
        if step >= args.steps:
            break
    epoch += 1

# --- evaluation and saving (rank 0) ---
if master:
    model.eval()
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(valid), 64):
            x, y = batch_of(valid[i : i + 64])
            logp, _, _ = model(x)
            lp = logp.gather(-1, y[..., None])[..., 0]
            mask = y != PAD
            nll -= lp[mask].double().sum().item()
            tokens += int(mask.sum())
    val_loss = nll / tokens
    print(f"valid loss {val_loss:.6f} nats per token over {len(valid)} poems, {tokens} tokens (ppl {math.exp(val_loss):.2f})")
    model.save_pretrained(args.out, vocab=os.path.join(args.data, "vocab.json"),
                          script=info.get("script", "simplified"),
                          corpus=f"{info.get('corpus', args.data)} (PyTorch, {world} process(es))",
                          step=step, val_loss=val_loss)
    with open(os.path.join(args.out, "torch_eval.json"), "w") as f:
        json.dump({"valid_loss": val_loss, "tokens": tokens, "poems": len(valid), "steps": step}, f)
if ddp:
    dist.barrier()
    dist.destroy_process_group()
