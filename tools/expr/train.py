#!/usr/bin/python3
"""train.py: trains the shipped models: models/expr.gguf on the expression task family (the
default) and models/coder.gguf on the code work-item family (--family coder).

    /usr/bin/python3 tools/expr/train.py [--steps N] [--seed S] [--out FILE] [--threads N]
    /usr/bin/python3 tools/expr/train.py --family coder   (context 512, batches of 32, learning
        rate 1e-3, from models/expr.gguf; models/coder.gguf was made in five runs:
        --random-names 0 --steps 700 --stop-at 400 --out stage1.gguf, then
        --init stage1.gguf --steps 500 --stop-at 400 --out stage2.gguf (names from a word list
        alone were guessed, not copied); the coordinator listing names never learned to copy
        them from a task (a run with --coordinator-share 0.6 failed too), so it is asked one
        definition at a time: --init stage2.gguf --coordinator each --coordinator-share 0.3
        --steps 400 --lr 3e-4 --out stage3.gguf, then --init stage3.gguf --coordinator each
        --coordinator-share 0.15 --steps 250 --lr 2e-4 --seed 2 --out stage4.gguf (members
        recovered), then --init stage4.gguf --coordinator each --coordinator-share 0.3 --steps 150
        --lr 1e-4 --seed 3; about 11, 8 and 6 minutes here)

A Llama-architecture model written here from the architecture's definition (RMSNorm, rotary
position embedding on adjacent pairs as GGUF llama files expect, grouped-query attention,
SwiGLU feed-forward, no biases, untied output), trained on CPU with Debian's torch from
examples drawn on the fly from tasks.py (never from the held-out split). The loss counts only the
completion (the working and the answer, tasks.working()) and its end-of-text token. Deterministic
for a given seed and thread count. The result is written as GGUF (gguf_out.py: Q8_0 matrices)
and is what `hswarm demo` runs by default. The defaults (1,200 steps of 128 examples, learning
rate 3e-3, seed 1) are what made models/expr.gguf: 2,996 s on this 2-core machine, which other
work shared (1,600 steps make a stronger model: a single attempt right 73% of the time, outside
the range the demo is about; BENCHMARKS.md).

Shape: dim 192, 4 layers, 6 heads (head 32), 2 KV heads, feed-forward 512, byte vocabulary (260),
context 192: 1.67 M parameters, about 1.8 MB of GGUF. Every prompt starts with the task's header
line (tasks.HEADER; with BOS one KV block of 32 tokens): training computes it once per batch and
every example attends to it, as a pinned prefix is shared at inference.
"""
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_out  # noqa: E402
import tasks  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "coder"))
import coder_tasks  # noqa: E402

CFG = {"dim": 192, "layers": 4, "heads": 6, "kv_heads": 2, "ffn": 512, "ctx": 192}
PAD = 256  # a filler token: never a target


class Llama(torch.nn.Module):
    def __init__(self, cfg, n_vocab):
        super().__init__()
        d, f = cfg["dim"], cfg["ffn"]
        self.cfg = cfg
        self.hd = d // cfg["heads"]
        kvd = self.hd * cfg["kv_heads"]
        self.embd = torch.nn.Parameter(torch.randn(n_vocab, d) * 0.02)
        self.layers = torch.nn.ModuleList()
        for _ in range(cfg["layers"]):
            L = torch.nn.Module()
            L.attn_norm = torch.nn.Parameter(torch.ones(d))
            L.wq = torch.nn.Linear(d, d, bias=False)
            L.wk = torch.nn.Linear(d, kvd, bias=False)
            L.wv = torch.nn.Linear(d, kvd, bias=False)
            L.wo = torch.nn.Linear(d, d, bias=False)
            L.ffn_norm = torch.nn.Parameter(torch.ones(d))
            L.w_gate = torch.nn.Linear(d, f, bias=False)
            L.w_up = torch.nn.Linear(d, f, bias=False)
            L.w_down = torch.nn.Linear(f, d, bias=False)
            scale = 0.02 / math.sqrt(2 * cfg["layers"])
            torch.nn.init.normal_(L.wo.weight, std=scale)
            torch.nn.init.normal_(L.w_down.weight, std=scale)
            self.layers.append(L)
        self.out_norm = torch.nn.Parameter(torch.ones(d))
        self.out = torch.nn.Linear(d, n_vocab, bias=False)
        i = torch.arange(0, self.hd // 2, dtype=torch.float32)
        self.register_buffer("theta", 10000.0 ** (-2.0 * i / self.hd), persistent=False)
        n = cfg["ctx"]
        self.register_buffer("causal", torch.full((n, n), float("-inf")).triu(1),
                             persistent=False)

    @staticmethod
    def rmsnorm(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x, start):
        """x [B, H, T, hd] at positions start, start+1, ...: rotates the pairs (0,1), (2,3), ..."""
        T = x.shape[2]
        pos = torch.arange(start, start + T, dtype=torch.float32, device=x.device)
        ang = pos[:, None] * self.theta[None, :]
        c, s = torch.cos(ang), torch.sin(ang)
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)

    def qkv(self, L, h, start):
        B, T, _ = h.shape
        H, Hkv, hd = self.cfg["heads"], self.cfg["kv_heads"], self.hd
        q = self.rope(L.wq(h).view(B, T, H, hd).transpose(1, 2), start)
        k = self.rope(L.wk(h).view(B, T, Hkv, hd).transpose(1, 2), start)
        v = L.wv(h).view(B, T, Hkv, hd).transpose(1, 2)
        return q, k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)

    def forward(self, head, rest):
        """head [P]: tokens every sequence starts with (computed once for the batch, as a pinned
        prefix is at inference); rest [B, R]: each sequence's own tokens. Logits [B, R, vocab]."""
        B, R = rest.shape
        P = head.shape[0]
        scale = 1.0 / math.sqrt(self.hd)
        mask = torch.cat((torch.zeros(R, P, device=rest.device), self.causal[:R, :R]), dim=1)
        xh, xr = self.embd[head][None], self.embd[rest]
        for L in self.layers:
            qh, kh, vh = self.qkv(L, self.rmsnorm(xh, L.attn_norm), 0)
            qr, kr, vr = self.qkv(L, self.rmsnorm(xr, L.attn_norm), P)
            oh = torch.softmax(qh @ kh.transpose(-1, -2) * scale + self.causal[:P, :P], -1) @ vh
            k = torch.cat((kh.expand(B, -1, -1, -1), kr), dim=2)
            v = torch.cat((vh.expand(B, -1, -1, -1), vr), dim=2)
            orr = torch.softmax(qr @ k.transpose(-1, -2) * scale + mask, -1) @ v
            xh = xh + L.wo(oh.transpose(1, 2).reshape(1, P, -1))
            xr = xr + L.wo(orr.transpose(1, 2).reshape(B, R, -1))
            xh = xh + self.ffn(L, xh)
            xr = xr + self.ffn(L, xr)
        return self.out(self.rmsnorm(xr, self.out_norm))

    def ffn(self, L, x):
        h = self.rmsnorm(x, L.ffn_norm)
        return L.w_down(F.silu(L.w_gate(h)) * L.w_up(h))

    def gguf_tensors(self):
        def a(t):
            return t.detach().float().numpy()
        out = [("token_embd.weight", a(self.embd))]
        for i, L in enumerate(self.layers):
            p = "blk.%d." % i
            out += [(p + "attn_norm.weight", a(L.attn_norm)), (p + "attn_q.weight", a(L.wq.weight)),
                    (p + "attn_k.weight", a(L.wk.weight)), (p + "attn_v.weight", a(L.wv.weight)),
                    (p + "attn_output.weight", a(L.wo.weight)),
                    (p + "ffn_norm.weight", a(L.ffn_norm)),
                    (p + "ffn_gate.weight", a(L.w_gate.weight)),
                    (p + "ffn_up.weight", a(L.w_up.weight)),
                    (p + "ffn_down.weight", a(L.w_down.weight))]
        out += [("output_norm.weight", a(self.out_norm)), ("output.weight", a(self.out.weight))]
        return out


HEAD = [gguf_out.BOS] + list(tasks.HEADER.encode())  # one KV block: 32 tokens


class ExprFamily:
    """The expression family (tasks.py): models/expr.gguf."""
    name, header, ctx, max_new = "hswarm expr", tasks.HEADER, 192, 48
    training_example = staticmethod(tasks.training_example)

    @staticmethod
    def heldout():
        return tasks.heldout_tasks(100, 99)

    @staticmethod
    def prompt(t):
        return tasks.prompt(t["line"])

    @staticmethod
    def right(t, text):
        return tasks.answer_of(text) == t["answer"]


class CoderFamily:
    """The code work-item family (tools/coder/coder_tasks.py): models/coder.gguf. Held-out
    accuracy is measured on member prompts: the answer right and the patch naming the function
    (the coordinator's output is constrained by its schema at inference)."""
    name, header, ctx, max_new = "hswarm coder", coder_tasks.HEADER, 512, 100
    training_example = staticmethod(coder_tasks.training_example)

    @staticmethod
    def heldout():
        rng = random.Random(99)
        out = []
        for _ in range(100):
            t = coder_tasks.draw_member(rng, heldout=True)
            t["answer"] = tasks.canonical(*t["poly"])
            out.append(t)
        return out

    @staticmethod
    def prompt(t):
        return coder_tasks.member_prompt(t["name"], t["line"])

    @staticmethod
    def right(t, text):
        return coder_tasks.answer_of(text) == t["answer"] and \
            ("@@ replace %s\ndef %s(x):" % (t["name"], t["name"])) in text


FAMILY = ExprFamily


def encode(prompt, answer):
    """(token ids after HEAD, loss mask): the prompt's bytes after the header, the answer's bytes,
    EOS; the loss counts the answer and EOS."""
    body = prompt.encode()
    assert body.startswith(FAMILY.header.encode())
    p = list(body[len(FAMILY.header):])
    ans = list(answer.encode()) + [gguf_out.EOS]
    return p + ans, [0] * len(p) + [1] * len(ans)


def batches(rng, n, k):
    """k batches of n examples, drawn together and grouped by length (less padding)."""
    seqs = sorted((encode(*FAMILY.training_example(rng)) for _ in range(n * k)),
                  key=lambda e: len(e[0]))
    out = []
    for j in range(k):
        group = seqs[j * n:(j + 1) * n]
        T = max(len(s) for s, _ in group)
        if len(HEAD) + T > CFG["ctx"]:
            raise RuntimeError("an example of %d tokens exceeds the context" % (len(HEAD) + T))
        tok = torch.full((n, T), PAD, dtype=torch.long)
        tgt = torch.full((n, T), -100, dtype=torch.long)
        for i, (s, m) in enumerate(group):
            tok[i, :len(s)] = torch.tensor(s)
            for t in range(1, len(s)):
                if m[t]:
                    tgt[i, t - 1] = s[t]
        out.append((tok, tgt))
    rng.shuffle(out)
    return out


@torch.no_grad()
def accuracy(model, heldout, temperature, gen_rng):
    """Share of held-out tasks answered exactly (the canonical text), overall and by level."""
    head = torch.tensor(HEAD)
    right, by_level = 0, {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one sequence, token by token: more threads only spin
    for t in heldout:
        toks, _ = encode(FAMILY.prompt(t), "")
        toks = toks[:-1]
        out = []
        for _ in range(FAMILY.max_new):
            logits = model(head, torch.tensor([toks + out]))[0, -1]
            if temperature == 0:
                nxt = int(logits.argmax())
            else:
                p = torch.softmax(logits / temperature, -1).numpy().astype(np.float64)
                nxt = int(gen_rng.choice(len(p), p=p / p.sum()))
            if nxt == gguf_out.EOS:
                break
            out.append(nxt)
        text = bytes(b for b in out if b < 256).decode(errors="replace")
        ok = FAMILY.right(t, text)
        right += ok
        n, k = by_level.get(t["level"], (0, 0))
        by_level[t["level"]] = (n + 1, k + ok)
    torch.set_num_threads(threads)
    return right / len(heldout), " ".join("L%d %.2f" % (lv, k / n)
                                          for lv, (n, k) in sorted(by_level.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", choices=("expr", "coder"), default="expr")
    ap.add_argument("--init", help="start from this GGUF file (written by this script)")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--out")
    ap.add_argument("--random-names", type=float, default=0.5,
                    help="coder: share of function names made of random letters")
    ap.add_argument("--coordinator-share", type=float, default=0.25,
                    help="coder: share of coordinator prompts")
    ap.add_argument("--coordinator", choices=("list", "each"), default="list",
                    help="coder: the coordinator's prompts: one listing the items (list) or one "
                    "per definition (each; templates/code/tiny/coordinator_each.txt)")
    ap.add_argument("--stop-at", type=int, help="stop after this step (the schedule still spans "
                    "--steps)")
    args = ap.parse_args()
    global FAMILY, HEAD
    models = os.path.join(os.path.dirname(__file__), "..", "..", "models")
    coder = args.family == "coder"
    FAMILY = CoderFamily if coder else ExprFamily
    HEAD = [gguf_out.BOS] + list(FAMILY.header.encode())
    CFG["ctx"] = FAMILY.ctx
    coder_tasks.RANDOM_NAME_P = args.random_names
    coder_tasks.COORD_P = args.coordinator_share
    coder_tasks.COORDINATOR = args.coordinator
    defaults = {"steps": 700 if coder else 1200, "batch": 32 if coder else 128,
                "lr": 1e-3 if coder else 3e-3,
                "init": os.path.join(models, "expr.gguf") if coder else None,
                "out": os.path.join(models, "coder.gguf" if coder else "expr.gguf")}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = Llama(CFG, gguf_out.N_VOCAB)
    if args.init:
        load(model, gguf_out.read(args.init))
        print("started from %s" % args.init, flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print("parameters: %d" % n_params, flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    heldout = FAMILY.heldout()
    warm = min(300, args.steps // 10)
    t0, avg = time.time(), None
    head, queue = torch.tensor(HEAD), []
    for step in range(1, (args.stop_at or args.steps) + 1):
        lr = args.lr * (step / warm if step <= warm else
                        0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warm) /
                                                          (args.steps - warm))))
        for g in opt.param_groups:
            g["lr"] = lr
        if not queue:
            queue = batches(rng, args.batch, 8)
        tok, tgt = queue.pop()
        loss = F.cross_entropy(model(head, tok).flatten(0, 1), tgt.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 100 == 0:
            print("step %d  loss %.4f  lr %.2e  %.0f s" % (step, avg, lr, time.time() - t0),
                  flush=True)
            save(args, model)
        if step % args.eval_every == 0 or step == (args.stop_at or args.steps):
            model.eval()
            g, levels = accuracy(model, heldout, 0.0, None)
            model.train()
            print("step %d  held-out exact answers, greedy: %.2f (%s)" % (step, g, levels),
                  flush=True)
            save(args, model)
    save(args, model)
    print("wrote %s (%d s)" % (args.out, time.time() - t0), flush=True)


def load(model, tensors):
    """Copies tensors (gguf_out.read) into model, by the names gguf_tensors gives them."""
    with torch.no_grad():
        for name, param in zip([n for n, _ in model.gguf_tensors()], gguf_params(model)):
            param.copy_(torch.from_numpy(tensors[name]))


def gguf_params(model):
    """The parameters in gguf_tensors' order."""
    out = [model.embd]
    for L in model.layers:
        out += [L.attn_norm, L.wq.weight, L.wk.weight, L.wv.weight, L.wo.weight, L.ffn_norm,
                L.w_gate.weight, L.w_up.weight, L.w_down.weight]
    return out + [model.out_norm, model.out.weight]


def save(args, model):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    gguf_out.write(args.out, CFG, model.gguf_tensors(), FAMILY.name,
                   [("hswarm.train.steps", gguf_out.T_U32, args.steps),
                    ("hswarm.train.seed", gguf_out.T_U32, args.seed)])


if __name__ == "__main__":
    main()
