#!/usr/bin/env python3
"""The PyTorch twin of lockstep's GPT (nn/gpt.h): the same names, the same forward.

Model: nanoGPT's layout without its "transformer." prefix: wte, wpe (nn.Embedding),
h.<i>.ln_1, h.<i>.attn.c_attn (Linear C -> 3C: q, k, v), h.<i>.attn.c_proj, h.<i>.ln_2,
h.<i>.mlp.c_fc (C -> 4C), GELU (tanh form), h.<i>.mlp.c_proj, ln_f (LayerNorm eps 1e-5),
and the head tied to wte (logits = ln_f(x) wte^T, no bias). The configuration and the
vocabulary come from the checkpoint's metadata (user.context, n_layer, n_head, n_embd, vocab).

check: loads a `lockstep train --model gpt` checkpoint (safetensors, tensors "model.<name>")
by name, runs the prompts and tokens of a `lockstep generate --logits-out` file through
the full causal forward, and compares every logits row lockstep chose a token from with
PyTorch's: |a - b| <= atol + rtol |b| (float32 rounding of two different operation orders),
and the greedy tokens. Exit 0 when within, 1 otherwise.

bench: tokens/s of one training step (forward, backward, AdamW; batch B x T) at the given
thread counts, and of batch-1 greedy generation with a KV cache (eager PyTorch), one JSON
line each.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_io  # noqa: E402


def read_metadata(path):
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen).decode("utf-8"))
    return header.get("__metadata__", {})


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.n_head = h
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(c, 3 * c)
        self.attn.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(c, 4 * c)
        self.mlp.c_proj = nn.Linear(4 * c, c)

    def attention(self, x, cache=None):
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        q, k, v = self.attn.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # one new token over the cached keys and values
            if cache:
                k = torch.cat([cache[0], k], dim=2)
                v = torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
            y = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn.c_proj(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x, cache=None):
        x = x + self.attention(self.ln_1(x), cache)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab, context, n_layer, n_head, n_embd):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(context, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)

    def forward(self, ids, start=0, caches=None):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(start, start + T))
        for i, b in enumerate(self.h):
            x = b(x, None if caches is None else caches[i])
        return F.linear(self.ln_f(x), self.wte.weight)  # tied head


def load(checkpoint):
    meta = read_metadata(checkpoint)
    if meta.get("user.recipe") != "gpt-char":
        raise SystemExit(f"{checkpoint}: not a lockstep GPT checkpoint (user.recipe = {meta.get('user.recipe')})")
    vocab = [int(h, 16) for h in meta["user.vocab"].split(",")]
    cfg = {k: int(meta["user." + k]) for k in ("context", "n_layer", "n_head", "n_embd")}
    model = Gpt(len(vocab), **cfg)
    tensors = peer_io.read_safetensors(checkpoint)
    sd = {k[len("model."):]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"{checkpoint}: names differ: missing {missing}, unexpected {unexpected}")
    return model.eval(), cfg, vocab


def latest(path):
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.startswith("ckpt-") and f.endswith(".safetensors"))
        return os.path.join(path, files[-1])
    return path


def check(a):
    model, cfg, vocab = load(latest(a.checkpoint))
    got = peer_io.read_safetensors(a.logits)
    worst, rows, bad, greedy_same, greedy_all = 0.0, 0, 0, 0, 0
    i = 0
    while f"prompt.{i}" in got:
        prompt, tokens = list(got[f"prompt.{i}"]), list(got[f"tokens.{i}"])
        theirs = np.array(got[f"logits.{i}"], dtype=np.float32)
        seq = (prompt + tokens[:-1])[: cfg["context"]]
        with torch.no_grad():
            ours = model(torch.tensor([seq], dtype=torch.int64))[0].numpy()
        ours = ours[len(prompt) - 1: len(prompt) - 1 + len(theirs)]
        scale = np.maximum(np.abs(ours), 1.0)
        err = np.abs(ours - theirs[: len(ours)]) / scale
        worst = max(worst, float(err.max()))
        rows += len(ours)
        bad += int((np.abs(ours - theirs[: len(ours)]) > a.atol + a.rtol * np.abs(ours)).any(axis=1).sum())
        greedy_all += len(ours)
        greedy_same += int((ours.argmax(axis=1) == theirs[: len(ours)].argmax(axis=1)).sum())
        i += 1
    ok = rows > 0 and bad == 0
    print(json.dumps({"requests": i, "rows": rows, "rows_outside_tolerance": bad, "max_rel_err": worst,
                      "greedy_same": greedy_same, "greedy_rows": greedy_all, "rtol": a.rtol, "atol": a.atol,
                      "ok": ok}))
    return 0 if ok else 1


def bench(a):
    cfg = dict(context=a.context, n_layer=a.layers, n_head=a.heads, n_embd=a.width)
    out = []
    for threads in a.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = Gpt(a.vocab, **cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        x = torch.randint(0, a.vocab, (a.batch, a.context))
        y = torch.randint(0, a.vocab, (a.batch * a.context,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x).reshape(-1, a.vocab), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        dt = time.perf_counter() - t0
        out.append({"what": "train", "threads": threads, "tokens_per_sec": a.steps * a.batch * a.context / dt})
        # batch-1 greedy generation with a KV cache, eager
        model.eval()
        with torch.no_grad():
            caches = [[] for _ in model.h]
            tok = torch.zeros((1, 1), dtype=torch.int64)
            n = min(a.gen_tokens, a.context)
            model(tok, 0, caches)
            t0 = time.perf_counter()
            for pos in range(1, n):
                tok = model(tok, pos, caches)[:, -1].argmax(-1, keepdim=True)
            dt = time.perf_counter() - t0
        out.append({"what": "generate", "threads": threads, "tokens_per_sec": (n - 1) / dt})
    for o in out:
        o["torch"] = torch.__version__
        print(json.dumps(o))
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--logits", required=True, help="lockstep generate --logits-out file")
    c.add_argument("--rtol", type=float, default=1e-4)
    c.add_argument("--atol", type=float, default=1e-5)
    b = sub.add_parser("bench")
    b.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    b.add_argument("--vocab", type=int, default=80)
    b.add_argument("--context", type=int, default=128)
    b.add_argument("--layers", type=int, default=4)
    b.add_argument("--heads", type=int, default=4)
    b.add_argument("--width", type=int, default=128)
    b.add_argument("--batch", type=int, default=16)
    b.add_argument("--steps", type=int, default=5)
    b.add_argument("--gen-tokens", type=int, default=128)
    a = p.parse_args(argv)
    return check(a) if a.cmd == "check" else bench(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
