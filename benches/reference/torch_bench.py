# PyTorch CPU reference for `shiren bench`: Embedding -> nn.LSTM|GRU|RNN (2 layers) -> Linear -> CrossEntropy,
# Adam lr 0.01, random tokens. Adapted from ../shared/reference/torch_lstm_bench.py (same shapes and loop),
# with the cell as an argument. Prints one JSON line.
# usage: python torch_bench.py train <S|L> <lstm|gru|rnn> <steps> <warmup>
#        python torch_bench.py sample <S|L> <lstm|gru|rnn> <ntok> <reps>
import json, resource, sys, time
import torch
import torch.nn as nn

torch.set_num_threads(2)
V, B, T = 6000, 64, 64
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class Model(nn.Module):
    def __init__(self, cell, e, h):
        super().__init__()
        self.emb = nn.Embedding(V, e)
        self.rnn = CELLS[cell](e, h, num_layers=2, batch_first=True)
        self.proj = nn.Linear(h, V)

    def forward(self, x, state=None):
        y, state = self.rnn(self.emb(x), state)
        return self.proj(y), state


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    mode, cfg, cell, n, w = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    e, h = {"S": (128, 128), "L": (256, 512)}[cfg]
    torch.manual_seed(42)
    model = Model(cell, e, h)
    g = torch.Generator().manual_seed(42)
    if mode == "train":
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        lossf = nn.CrossEntropyLoss()
        t0 = time.perf_counter()
        for step in range(w + n):
            if step == w:
                t0 = time.perf_counter()
            d = torch.randint(0, V, (B, T + 1), generator=g)
            x, y = d[:, :T], d[:, 1:]
            logits, _ = model(x)
            loss = lossf(logits.reshape(B * T, V), y.reshape(B * T))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = loss.item()
        secs = time.perf_counter() - t0
        print(json.dumps({"fw": "pytorch", "cfg": cfg, "cell": cell, "steps": n, "step_ms": round(secs * 1000 / n, 2),
                          "tok_s": round(n * B * T / secs, 1), "loss": round(last, 4), "rss_mb": round(peak_rss_mb(), 1),
                          "version": torch.__version__}))
    else:
        model.eval()
        times = []
        with torch.inference_mode():
            for _ in range(w + 1):
                t0 = time.perf_counter()
                state = None
                tok = torch.tensor([[1]])
                for _ in range(n):
                    logits, state = model(tok, state)
                    p = torch.softmax(logits[0, -1], dim=-1)
                    tok = torch.multinomial(p, 1, generator=g).view(1, 1)
                times.append((time.perf_counter() - t0) * 1000 / n)
        m = sorted(times[1:])
        print(json.dumps({"fw": "pytorch", "cfg": cfg, "cell": cell, "sample_ms_per_tok": round(m[len(m) // 2], 4),
                          "reps": len(m), "rss_mb": round(peak_rss_mb(), 1)}))


main()
