#!/usr/bin/python3
"""model_ref.py: an independent PyTorch reference of the Llama / Qwen2 / Qwen3 / Gemma 3 forward pass
on GGUF files.

Usage (run with Debian's interpreter, /usr/bin/python3, which has torch and numpy):
  model_ref.py logits MODEL.gguf OUT TOKEN...
      writes the logits of every position of the prompt, n_tokens x n_vocab little-endian float32
      (computed in float64, rounded once at the end)
  model_ref.py greedy MODEL.gguf N OUT TOKEN...
      greedy decoding of N tokens after the prompt; writes the N ids, one per line, and on each
      line also the top-1 minus top-2 logit margin of that step ("id margin")
  model_ref.py hidden MODEL.gguf OUT TOKEN...
      writes the final normed hidden states of every position, n_tokens x n_embd float32
  --act-quant anywhere on the line: also quantize the input of every product with a quantized
      weight matrix the way the engine's kernels do (engine/cpu/kernels.h: Q8_0 and Q4_0 weights
      meet activations quantized in blocks of 32, Q4_K and Q6_K in blocks of 256; per block, in
      float32, d = max|x| / 127, q = round-half-even(clamp(x * (1/d), -127, 127)), x' = q * d,
      with d rounded to fp16 in blocks of 32, as llama.cpp stores the scale of Q8_0 activations).
      The engine's quantized products are then the reference's up to float rounding, so the
      comparison can be tight; without the option the reference shows the whole error of the
      engine against exact arithmetic on the same weights.

Written from the model definitions (the Llama papers, Meta's and Qwen's reference code as
published in papers and model cards) and GGUF's conventions, not from the C engine:

  x = token_embd[token]                                    (row of the embedding table)
  per layer:
    h = rmsnorm(x) * attn_norm           rmsnorm(v) = v / sqrt(mean(v^2) + eps)
    q = h Wq^T (+ bq), k = h Wk^T (+ bk), v = h Wv^T (+ bv)   (biases: qwen2 only)
    q, k rotated by RoPE at the token's position (see below)
    per head: softmax(q k^T / sqrt(head_dim), causal) v; query head j reads key/value head
      j // (n_head / n_head_kv) (grouped-query attention)
    x = x + concat(heads) Wo^T
    h = rmsnorm(x) * ffn_norm
    x = x + (silu(h Wgate^T) * (h Wup^T)) Wdown^T
  logits = (rmsnorm(x) * output_norm) Wout^T, Wout = output.weight, or token_embd.weight when the
  file has no output.weight (tied embeddings)

Qwen3 (the Qwen3 model card and reference code): Llama with NeoX RoPE, no biases, the head size
from attention.key_length (so q is n_head * head_dim wide, not n_embd), and each head of q and k
RMS-normalised (weights attn_q_norm / attn_k_norm [head_dim]) before RoPE.

Gemma 3 (Google's gemma_pytorch reference and the Gemma 3 report): as Qwen3's attention, plus
  x = token_embd[token] * sqrt(n_embd)
  per layer: x = x + rmsnorm(attention(...)) * post_attention_norm
             x = x + rmsnorm(ffn(...)) * post_ffw_norm,  ffn = (gelu_tanh(h Wgate^T) * h Wup^T) Wdown^T
  scores scaled by 1 / sqrt(head_dim) (query_pre_attn_scalar = head_dim for every size but 27B);
  local layers (all but every sliding_window_pattern-th, default 6) attend only to the last
  sliding_window positions (j > p - window) and use RoPE base rope.freq_base_swa (default
  10000); global layers use rope.freq_base; optional final_logit_softcapping c: c tanh(l / c).
  GGUF stores Gemma's norm weights with the 1 already added (HF computes x * (1 + w)).

A GGUF tensor with ne = [n_in, n_out] is a row-major matrix of n_out rows of n_in (gguf_ref gives
it shape [n_out, n_in]), so a linear layer is h @ W.T.

RoPE. Frequencies theta_i = base^(-2i / n_rot), i < n_rot/2, at position p angle p * theta_i.
llama.cpp's converter permutes the rows of Wq and Wk of "llama" models so that the pairs rotated
together are ADJACENT: (x[2i], x[2i+1]). "qwen2" files are not permuted and use the NeoX layout:
pairs (x[i], x[i + n_rot/2]). Dimensions past n_rot are not rotated. Llama 3.1's scaling
(rope.scaling.type "llama3") changes each frequency by its wavelength 2 pi / theta:
  wavelen < orig_ctx / high_freq_factor  -> unchanged
  wavelen > orig_ctx / low_freq_factor   -> theta / factor
  otherwise, with s = (orig_ctx / wavelen - low) / (high - low): (1 - s) theta / factor + s theta
A file may instead (as llama.cpp's converter writes them) carry the divisors in the tensor
rope_freqs.weight [n_rot/2]: theta_i / rope_freqs[i]; when present it takes precedence.

Weights are dequantized by gguf_ref / quant_ref (exact) and the model runs in float64, so the
reference is as exact as the file's weights allow.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402

torch.set_num_threads(os.cpu_count())
DT = torch.float64


# Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL; Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS
QUANT_ACT_BLOCK = {2: 32, 3: 32, 6: 32, 7: 32, 8: 32, 20: 32,
                   10: 256, 11: 256, 12: 256, 13: 256, 14: 256, 23: 256}


def quant_act(h, block):
    """h [T, n] float64 -> the same rounded through 8-bit codes in blocks (float32 rule)."""
    x = h.to(torch.float32).numpy().reshape(h.shape[0], -1, block)
    amax = np.abs(x).max(axis=-1, keepdims=True)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.rint(np.clip(x * inv, np.float32(-127), np.float32(127)))
    if block == 32:  # Q8_0/Q4_0 partners keep the scale as fp16 (as GGUF's Q8_0 blocks do)
        d = d.astype(np.float16).astype(np.float32)
    out = q.astype(np.float64) * d.astype(np.float64)
    return torch.from_numpy(out.reshape(h.shape))


class Model:
    def __init__(self, path, act_quant=False, kv_f16=False):
        self.kv_f16 = kv_f16
        g = gguf_ref.GGUF(path)
        kv = g.kv
        self.arch = arch = kv["general.architecture"]
        if arch not in ("llama", "qwen2", "qwen3", "gemma3"):
            raise ValueError("unsupported architecture %r" % arch)
        gemma = arch == "gemma3"
        self.gemma = gemma
        self.n_embd = kv[arch + ".embedding_length"]
        self.n_layer = kv[arch + ".block_count"]
        self.n_head = kv[arch + ".attention.head_count"]
        self.n_head_kv = kv.get(arch + ".attention.head_count_kv", self.n_head)
        self.head_dim = kv.get(arch + ".attention.key_length", self.n_embd // self.n_head)
        self.n_rot = kv.get(arch + ".rope.dimension_count", self.head_dim)
        self.eps = float(kv.get(arch + ".attention.layer_norm_rms_epsilon", 1e-6 if gemma else 1e-5))
        base = float(kv.get(arch + ".rope.freq_base", 10000.0))
        self.neox = arch != "llama"
        self.scale = 1.0 / math.sqrt(self.head_dim)
        if gemma and self.n_layer == 62:
            self.scale = 1.0 / math.sqrt(self.n_embd // self.n_head)
        self.embed_scale = math.sqrt(self.n_embd) if gemma else 1.0
        self.softcap = float(kv.get(arch + ".final_logit_softcapping", 0.0))
        self.window = kv.get(arch + ".attention.sliding_window", 0) if gemma else 0
        period = kv.get(arch + ".attention.sliding_window_pattern", 6)
        self.is_swa = [bool(self.window) and (period == 0 or i % period != period - 1)
                       for i in range(self.n_layer)]
        base_swa = float(kv.get(arch + ".rope.freq_base_swa", 10000.0))

        def t(name):
            return torch.from_numpy(g.array(name).astype(np.float64))

        self.act_quant = act_quant
        self.block = {}  # id(weight tensor) -> activation block when act_quant applies

        self.embd = t("token_embd.weight")                       # [n_vocab, n_embd]
        self.n_vocab = self.embd.shape[0]
        self.out = t("output.weight") if "output.weight" in g.tensors else self.embd
        self._note(g, "output.weight" if "output.weight" in g.tensors else "token_embd.weight",
                   self.out)
        self.out_norm = t("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = "blk.%d." % i
            L = {k: t(p + k + ".weight") for k in
                 ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                  "ffn_gate", "ffn_up", "ffn_down")}
            for k in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                      "ffn_down"):
                self._note(g, p + k + ".weight", L[k])
            for k in ("attn_q", "attn_k", "attn_v"):
                name = p + k + ".bias"
                L[k + "_b"] = t(name) if name in g.tensors else None
            for k in ("attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm"):
                name = p + k + ".weight"
                L[k] = t(name) if name in g.tensors else None
            self.layers.append(L)

        # rotary frequencies, [n_rot/2]
        i = torch.arange(0, self.n_rot // 2, dtype=DT)
        theta = base ** (-2.0 * i / self.n_rot)
        if "rope_freqs.weight" in g.tensors:
            theta = theta / t("rope_freqs.weight")
        elif kv.get(arch + ".rope.scaling.type", "none") == "llama3":
            factor = float(kv[arch + ".rope.scaling.factor"])
            low = float(kv[arch + ".rope.scaling.low_freq_factor"])
            high = float(kv[arch + ".rope.scaling.high_freq_factor"])
            orig = float(kv[arch + ".rope.scaling.original_context_length"])
            out = []
            for th in theta.tolist():
                wavelen = 2 * math.pi / th
                if wavelen < orig / high:
                    out.append(th)
                elif wavelen > orig / low:
                    out.append(th / factor)
                else:
                    s = (orig / wavelen - low) / (high - low)
                    out.append((1 - s) * th / factor + s * th)
            theta = torch.tensor(out, dtype=DT)
        self.theta = theta
        self.theta_swa = base_swa ** (-2.0 * i / self.n_rot)

    def _note(self, g, name, w):
        b = QUANT_ACT_BLOCK.get(g.tensors[name].type)
        if b:
            self.block[id(w)] = b

    def lin(self, h, w):
        """h [T, n_in] times the matrix w [n_out, n_in]: h w^T."""
        b = self.block.get(id(w)) if self.act_quant else None
        if b:
            h = quant_act(h, b)
        return h @ w.T

    def rmsnorm(self, x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, pos, theta):
        """x [T, H, head_dim], pos [T]: rotate the first n_rot dimensions."""
        ang = pos.to(DT)[:, None] * theta[None, :]               # [T, n_rot/2]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        x = x.clone()
        r = self.n_rot
        if self.neox:
            a, b = x[..., : r // 2].clone(), x[..., r // 2: r].clone()
            x[..., : r // 2] = a * c - b * s
            x[..., r // 2: r] = a * s + b * c
        else:
            a, b = x[..., 0:r:2].clone(), x[..., 1:r:2].clone()
            x[..., 0:r:2] = a * c - b * s
            x[..., 1:r:2] = a * s + b * c
        return x

    def forward(self, tokens):
        """All positions of one sequence starting at position 0: (logits [T, n_vocab],
        hidden [T, n_embd])."""
        T = len(tokens)
        x = self.embd[torch.tensor(tokens, dtype=torch.long)] * self.embed_scale  # [T, n_embd]
        pos = torch.arange(T)
        hd, H, Hkv = self.head_dim, self.n_head, self.n_head_kv
        mask = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
        if self.window:
            # local layers: also -inf where j <= p - window
            far = torch.full((T, T), float("-inf"), dtype=DT).tril(-self.window)
            mask_swa = mask + far
        for il, L in enumerate(self.layers):
            swa = self.is_swa[il]
            theta = self.theta_swa if swa else self.theta
            h = self.rmsnorm(x, L["attn_norm"])
            q, k, v = self.lin(h, L["attn_q"]), self.lin(h, L["attn_k"]), self.lin(h, L["attn_v"])
            if L["attn_q_b"] is not None:
                q, k, v = q + L["attn_q_b"], k + L["attn_k_b"], v + L["attn_v_b"]
            q, k = q.view(T, H, hd), k.view(T, Hkv, hd)
            if L["attn_q_norm"] is not None:
                q, k = self.rmsnorm(q, L["attn_q_norm"]), self.rmsnorm(k, L["attn_k_norm"])
            q = self.rope(q, pos, theta)
            k = self.rope(k, pos, theta)
            v = v.view(T, Hkv, hd)
            if self.kv_f16:
                k, v = k.to(torch.float16).to(DT), v.to(torch.float16).to(DT)
            rep = H // Hkv
            k = k.repeat_interleave(rep, dim=1)                  # [T, H, hd]
            v = v.repeat_interleave(rep, dim=1)
            att = torch.einsum("thd,shd->hts", q, k) * self.scale + (mask_swa if swa else mask)
            att = torch.softmax(att, dim=-1)
            o = torch.einsum("hts,shd->thd", att, v).reshape(T, H * hd)
            a = self.lin(o, L["attn_output"])
            if L["post_attention_norm"] is not None:
                a = self.rmsnorm(a, L["post_attention_norm"])
            x = x + a
            h = self.rmsnorm(x, L["ffn_norm"])
            gate, up = self.lin(h, L["ffn_gate"]), self.lin(h, L["ffn_up"])
            act = (torch.nn.functional.gelu(gate, approximate="tanh") if self.gemma
                   else torch.nn.functional.silu(gate))
            f = self.lin(act * up, L["ffn_down"])
            if L["post_ffw_norm"] is not None:
                f = self.rmsnorm(f, L["post_ffw_norm"])
            x = x + f
        hidden = self.rmsnorm(x, self.out_norm)
        logits = self.lin(hidden, self.out)
        if self.softcap > 0:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits, hidden


def main(argv):
    act_quant = "--act-quant" in argv
    kv_f16 = "--kv-f16" in argv
    argv = [a for a in argv if a not in ("--act-quant", "--kv-f16")]
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    mode, path = argv[1], argv[2]
    m = Model(path, act_quant, kv_f16)
    with torch.no_grad():
        if mode in ("logits", "hidden"):
            out, toks = argv[3], [int(t) for t in argv[4:]]
            logits, hidden = m.forward(toks)
            a = logits if mode == "logits" else hidden
            a.to(torch.float32).numpy().astype("<f4").tofile(out)
            return 0
        if mode == "greedy":
            n, out, toks = int(argv[3]), argv[4], [int(t) for t in argv[5:]]
            lines = []
            for _ in range(n):
                logits, _ = m.forward(toks)
                last = logits[-1]
                top = torch.topk(last, 2)
                nxt = int(top.indices[0])
                lines.append("%d %.9g" % (nxt, float(top.values[0] - top.values[1])))
                toks.append(nxt)
            with open(out, "w") as f:
                f.write("\n".join(lines) + "\n")
            return 0
    sys.stderr.write("unknown mode %r\n" % mode)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
