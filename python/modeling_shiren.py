"""shiren's character language model as a torch.nn.Module.

The same network as shiren's Rust engine, with the same parameter names, so a
model written by `shiren export --torch DIR` loads with
`load_state_dict(strict=True)` and one saved by `ShirenLM.save_pretrained`
is read back by `shiren import`. It needs torch and safetensors, nothing else.

    from modeling_shiren import ShirenLM
    model = ShirenLM.from_pretrained("tang-torch")     # config.json, vocab.json, model.safetensors
    ids = model.vocab.encode("床前明月光，疑是地上霜。")  # [BEGIN, 床, 前, …, END]
    logp, loss, _ = model(ids[None, :-1], ids[None, 1:])  # loss: nats per token

The network, per token:

1. Input: the token's embedding row, plus (with `positions`) three more rows
   telling where the token sits in the poem, all read from the tokens so far:
   the line (`line_embedding`), the column (`column_embedding`) and the form
   asked for (`form_embedding`). The place is the one *after reading* the
   token: a character moves the column up by 1; a line end (，。！？；)
   moves the line up by 1 and the column back to 0, so a line-ending comma is
   already on the next line, column 0; a silent token (PAD, BEGIN, END, a form
   tag) moves neither; form tag k (`forms[k]`) selects form row k + 1 from
   then on (row 0: no form asked for). A form tag is listed in both `silent`
   and `forms`: `forms` wins. A token in `resets` (BEGIN, in a model trained
   with titles, which reads `BEGIN title BEGIN poem`) puts line and column
   back to 0, so the poem's first line is counted from 0 after its title. Lines and columns from `size - 1` on share the
   last row. For `BEGIN 五绝 床 前 明 月 光 ， 疑` (五绝 = forms[0]):

       token   BEGIN 五绝  床  前  明  月  光  ，  疑
       line      0    0    0   0   0   0   0   1   1
       column    0    0    1   2   3   4   5   0   1
       form      0    1    1   1   1   1   1   1   1

   With `positions["title"]` (a model trained with titles), the title also
   reaches every step after it: the title is the characters (CHAR tokens)
   before the first reset that follows one; from that reset on, every input
   row gets `title(mean of the title characters' embedding rows)` added
   (`title`: E x E, no bias). A poem read without a title gets nothing.

2. `rnn`: L layers of nn.LSTM, nn.GRU or nn.RNN (tanh), batch_first, PyTorch's
   gate order and weights, dropout between layers; zero initial state.
3. Head: `proj` maps the top layer to one logit per token id. Tied
   (`tied: true`), the output weights are the embedding itself, reached
   through `bottleneck` (E x H, no bias): logits = embedding.weight @
   (bottleneck.weight @ h) + proj.bias; `proj` then holds only its bias.
4. Softmax: one over the whole vocabulary, or (`shortlist: S` > 0) two
   levels: ids below S and one extra "rare" class (`rare`, reading the same
   vector as `proj`) share a first softmax; ids from S on share a second one,
   and log p(y) = log p_1(rare) + log p_2(y) for them. Still a distribution
   over all V ids.

A poem is read as training reads it: inputs `BEGIN [tag] c1 ... cn`, targets
`[tag] c1 ... cn END`; PAD (id 0) targets are ignored by the loss.
"""

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

PAD, BEGIN, END, UNK = 0, 1, 2, 3
# what a token does to its place (see the module doc)
CHAR, LINE_END, SILENT, FORM, RESET = 0, 1, 2, 3, 4


@dataclass
class ShirenConfig:
    cell: str = "lstm"  # lstm, gru or rnn
    layers: int = 2
    embed: int = 128  # E
    hidden: int = 128  # H
    vocab: int = 6000  # V: 4 specials, the characters, the form tags
    dropout: float = 0.0  # between recurrent layers (PyTorch's dropout=)
    dropout_in: float = 0.0  # on the input rows (embedding + position rows)
    dropout_out: float = 0.0  # on the top layer's output
    tied: bool = False  # output weights = embedding.weight, through bottleneck
    shortlist: int = 0  # two-level softmax: ids below it are predicted directly
    # {"size": rows of the line and column tables, "line_ends": [ids],
    #  "silent": [ids], "forms": [ids], "resets": [ids], "title": bool};
    #  None: no position rows
    positions: Optional[dict] = None

    @classmethod
    def from_dict(cls, d: dict) -> "ShirenConfig":
        """From shiren's config.json (architecture under "model") or the bare fields."""
        m = d.get("model", d)
        if m.get("input", "tokens") != "tokens" or m.get("head", "every_step") != "every_step":
            raise ValueError("only token-input, every-step language models are supported here")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in m.items() if k in known})

    def to_dict(self) -> dict:
        m = {k: v for k, v in asdict(self).items() if v is not None}
        m.update(input="tokens", head="every_step")
        return m


class Vocab:
    """vocab.json: ids 0-3 specials, then the characters by frequency, then the tags."""

    def __init__(self, path_or_dict):
        d = path_or_dict
        if not isinstance(d, dict):
            with open(d, encoding="utf-8") as f:
                d = json.load(f)
        self.json = d
        self.chars = d["chars"]
        self.tags = d.get("tags", [])
        self.index = {c: i + 4 for i, c in enumerate(self.chars)}

    def __len__(self):
        return 4 + len(self.chars) + len(self.tags)

    def tag(self, name: str) -> Optional[int]:
        return 4 + len(self.chars) + self.tags.index(name) if name in self.tags else None

    def encode(self, text: str, form: Optional[str] = None) -> torch.Tensor:
        """BEGIN, the form tag (when given), the characters (unknown ones as UNK), END."""
        ids = [BEGIN] + ([self.tag(form)] if form else [])
        ids += [self.index.get(c, UNK) for c in text]
        return torch.tensor(ids + [END], dtype=torch.long)

    def decode(self, ids) -> str:
        n = len(self.chars)
        return "".join(self.chars[i - 4] for i in map(int, ids) if 4 <= i < 4 + n)


def places(ids: torch.Tensor, kinds: torch.Tensor, form_rows: torch.Tensor, size: int):
    """(line, column, form) rows of each token of ids (B, T), after reading it (see the module doc)."""
    kind = kinds[ids]
    is_end, is_reset = kind == LINE_END, kind == RESET
    n = torch.cumsum(kind == CHAR, dim=-1)  # characters read so far
    lines = torch.cumsum(is_end, dim=-1)  # line ends read so far
    zero = torch.zeros_like(n)
    # characters and line ends read when the last line end / reset was read
    at_end = torch.where(is_end, n, zero).cummax(dim=-1).values
    at_reset = torch.where(is_reset, n, zero).cummax(dim=-1).values
    lines_at_reset = torch.where(is_reset, lines, zero).cummax(dim=-1).values
    line = lines - lines_at_reset
    column = n - torch.maximum(at_end, at_reset)
    # the form row of the last form tag read
    t = torch.arange(ids.shape[-1], device=ids.device).expand_as(ids)
    last = torch.where(kind == FORM, t, torch.full_like(t, -1)).cummax(dim=-1).values
    form = torch.where(last >= 0, form_rows[ids].gather(-1, last.clamp(min=0)), 0)
    return line.clamp(max=size - 1), column.clamp(max=size - 1), form


class _Bias(nn.Module):
    """A tied head's `proj`: only the bias (the weight is `embedding.weight`)."""

    def __init__(self, n: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n))


class ShirenLM(nn.Module):
    def __init__(self, config: ShirenConfig):
        super().__init__()
        c = self.config = config
        cells = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
        if c.cell not in cells:
            raise ValueError(f"cell {c.cell!r}: expected lstm, gru or rnn")
        self.embedding = nn.Embedding(c.vocab, c.embed)
        p = c.positions
        kinds = torch.full((c.vocab,), CHAR, dtype=torch.long)
        form_rows = torch.zeros(c.vocab, dtype=torch.long)
        if p:
            self.line_embedding = nn.Embedding(p["size"], c.embed)
            self.column_embedding = nn.Embedding(p["size"], c.embed)
            # the order matters where lists overlap: forms win over silent
            kinds[torch.tensor(p["silent"], dtype=torch.long)] = SILENT
            kinds[torch.tensor(p["line_ends"], dtype=torch.long)] = LINE_END
            if p.get("forms"):
                forms = torch.tensor(p["forms"], dtype=torch.long)
                self.form_embedding = nn.Embedding(len(p["forms"]) + 1, c.embed)
                kinds[forms] = FORM
                form_rows[forms] = torch.arange(1, len(p["forms"]) + 1)
            if p.get("resets"):
                kinds[torch.tensor(p["resets"], dtype=torch.long)] = RESET
            if p.get("title"):
                self.title = nn.Linear(c.embed, c.embed, bias=False)
        self.register_buffer("kinds", kinds, persistent=False)
        self.register_buffer("form_rows", form_rows, persistent=False)
        self.rnn = cells[c.cell](
            c.embed, c.hidden, num_layers=c.layers, batch_first=True,
            dropout=c.dropout if c.layers > 1 else 0.0,
        )
        if c.tied:
            self.bottleneck = nn.Linear(c.hidden, c.embed, bias=False)
            self.proj = _Bias(c.vocab)
        else:
            self.proj = nn.Linear(c.hidden, c.vocab)
        if c.shortlist:
            self.rare = nn.Linear(c.embed if c.tied else c.hidden, 1)
        self.vocab: Optional[Vocab] = None

    def places(self, ids: torch.Tensor):
        return places(ids, self.kinds, self.form_rows, self.config.positions["size"])

    def title_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T, E): title(mean title row) from the reset that ends the title on, else 0."""
        kind = self.kinds[idx]
        t = torch.arange(idx.shape[-1], device=idx.device).expand_as(idx)
        chars_before = torch.cumsum(kind == CHAR, dim=-1)  # a reset is not a character
        ends = (kind == RESET) & (chars_before > 0)
        never = torch.full_like(t, idx.shape[-1])
        start = torch.where(ends, t, never).min(dim=-1, keepdim=True).values  # (B, 1)
        in_title = ((kind == CHAR) & (t < start)).unsqueeze(-1).float()
        rows = self.embedding(idx) * in_title
        mean = rows.sum(1) / in_title.sum(1).clamp(min=1.0)
        return self.title(mean).unsqueeze(1) * (t >= start).unsqueeze(-1).float()

    def log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """log p over all V ids from the top layer's rows h (..., H)."""
        c = self.config
        if c.tied:
            z = self.bottleneck(h)
            logits = F.linear(z, self.embedding.weight, self.proj.bias)
        else:
            z = h
            logits = self.proj(h)
        if not c.shortlist:
            return F.log_softmax(logits, dim=-1)
        s = c.shortlist
        first = F.log_softmax(torch.cat([logits[..., :s], self.rare(z)], dim=-1), dim=-1)
        second = F.log_softmax(logits[..., s:], dim=-1)
        return torch.cat([first[..., :s], first[..., s:] + second], dim=-1)

    def forward(self, idx: torch.Tensor, targets: Optional[torch.Tensor] = None, state=None):
        """idx (B, T) token ids from the start of each poem (the places count from
        idx[:, 0], and so does the title). Returns (log_probs (B, T, V), mean loss over non-PAD targets or
        None, the recurrent state)."""
        c = self.config
        x = self.embedding(idx)
        if c.positions:
            line, column, form = self.places(idx)
            x = x + self.line_embedding(line) + self.column_embedding(column)
            if c.positions.get("forms"):
                x = x + self.form_embedding(form)
            if c.positions.get("title"):
                x = x + self.title_rows(idx)
        x = F.dropout(x, c.dropout_in, self.training)
        out, state = self.rnn(x, state)
        out = F.dropout(out, c.dropout_out, self.training)
        logp = self.log_probs(out)
        loss = None
        if targets is not None:
            loss = F.nll_loss(logp.reshape(-1, c.vocab), targets.reshape(-1), ignore_index=PAD)
        return logp, loss, state

    @torch.no_grad()
    def token_log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """ln p(ids[k+1] | ids[:k+1]) for one encoded poem (BEGIN ... END): one entry per target."""
        logp, _, _ = self(ids[None, :-1])
        return logp[0].gather(-1, ids[1:, None])[:, 0]

    @classmethod
    def from_pretrained(cls, path: str, map_location="cpu") -> "ShirenLM":
        """A folder with config.json, vocab.json and model.safetensors (F32, F16 or BF16)."""
        from safetensors.torch import load_file

        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            model = cls(ShirenConfig.from_dict(json.load(f)))
        state = load_file(os.path.join(path, "model.safetensors"), device=str(map_location))
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        vocab = os.path.join(path, "vocab.json")
        if os.path.exists(vocab):
            model.vocab = Vocab(vocab)
        return model.eval()

    def save_pretrained(self, path: str, vocab=None, **extra):
        """Writes what `shiren import` reads: model.safetensors (F32), config.json
        (the architecture under "model", plus `extra` such as script, corpus, step),
        and vocab.json (this model's, or `vocab`: a Vocab, a dict or a path)."""
        from safetensors.torch import save_file

        os.makedirs(path, exist_ok=True)
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
            json.dump({"model": self.config.to_dict(), **extra}, f, ensure_ascii=False, indent=2)
        v = vocab if vocab is not None else self.vocab
        if isinstance(v, Vocab):
            v = v.json
        if isinstance(v, str):
            with open(v, encoding="utf-8") as f:
                v = json.load(f)
        if v is not None:
            with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
                json.dump(v, f, ensure_ascii=False)
