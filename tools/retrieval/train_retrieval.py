#!/usr/bin/env python3
"""Train the project's own retrieval model: a ~10M-parameter byte-level Llama that answers
LongEval line-retrieval questions, sized for about 15 minutes of one H100.

    python3 tools/retrieval/train_retrieval.py --out runs/retrieval          # CUDA, the real run
    python3 tools/retrieval/train_retrieval.py --device cpu --smoke --out D  # a few CPU steps (tests)

Architecture (exactly what `zipcache` runs after `zipcache convert`): Llama with RMSNorm
(normalization in fp32, then times the weight), RoPE in the Hugging Face "rotate-half" convention
(channel i of a head rotates with channel i + head_dim/2 by angle pos * theta^(-2i/head_dim);
`zipcache convert` permutes Q/K rows into GGUF's adjacent pairs, as llama.cpp's converter does),
SwiGLU feed-forward, grouped-query attention (kv head of query head h: h // (n_heads/n_kv_heads)),
no biases, untied input and output embeddings. head_dim is 64 so that every KV-cache policy,
the 32-element block formats included, applies to it.

Vocabulary: the 256 bytes (id = byte value), BOS 256, EOS 257, PAD 258 (export.py writes the
matching tokenizer.json). A training sequence is BOS + prompt bytes + answer + EOS, where the
answer is "<N>" as the document writes the number; `zipcache eval lines` prepends the same BOS
and scores the first number generated.

Data: documents from gen_lines.py's "train" split, generated on the fly (document i of the run
from its own seeded generator); held-out accuracy on the "test" split. Curriculum: the most lines
a document may have grows geometrically from --start-lines to the most that fit in the context,
reached at --ramp of the run; each batch draws its line count uniformly up to that bound, so
short documents stay in the mix. Every step holds about --tokens-per-step tokens (more rows for
shorter documents), so steps cost about the same.

Loss: cross-entropy on the answer tokens (digits, brackets, EOS), plus --doc-loss-weight times the
mean cross-entropy on the document tokens (the keys repeated in the question are an induction
task that helps retrieval form; the random numbers themselves cannot be predicted).

Held-out accuracy is measured teacher-forced: the answer is right under greedy decoding exactly
when the argmax at every answer position is the answer token, so one forward pass gives the
accuracy `zipcache eval lines` would report with an fp32 cache (up to the engine's fp32 vs bf16).

Everything except the model and the training loop (the plan, the curriculum, the batches) uses
only numpy, so that the tests can check it where torch is not installed.
"""
import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import gen_lines  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # the plan, curriculum and batches work without torch
    torch = F = nn = None

IGNORE = -1  # target id of padding positions
# Assumed sustained bf16 throughput of an H100 on this small model (eager PyTorch, flash
# attention through SDPA): used only for the time estimate in the plan; the run prints the
# measured rate as it goes.
ASSUMED_FLOPS_PER_S = 25e12


@dataclasses.dataclass
class ModelConfig:
    dim: int = 384
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int = 2
    head_dim: int = 64
    ffn_dim: int = 1024
    max_seq_len: int = 4096
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def check(self):
        # dim and ffn_dim: rows of whole 32-element blocks (q8_0/q4_0 weights); max_seq_len: batches
        # are padded to multiples of 64 (make_batch) and must still fit.
        if (self.n_heads % self.n_kv_heads or self.head_dim % 2 or self.dim % 32 or self.ffn_dim % 32
                or self.max_seq_len % 64):
            raise ValueError(f"inconsistent model config {self}")

    def n_params(self):
        return sum(int(np.prod(s)) for s in export.tensor_shapes(dataclasses.asdict(self)).values())


@dataclasses.dataclass
class TrainConfig:
    steps: int = 2000
    tokens_per_step: int = 1 << 17   # 32 rows of 4096 at full length
    lr: float = 1e-3
    min_lr_frac: float = 0.1         # cosine decays to lr * this
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    start_lines: int = 2
    ramp: float = 0.6                # fraction of the run at which the full length is reached
    doc_loss_weight: float = 0.1
    seed: int = 0
    eval_every: int = 250
    eval_docs: int = 64              # held-out documents per line count
    max_minutes: float = 8.5         # per call: stop, export and save the state past this (the device
                                     # tool runs one command for at most 10 minutes)


SMOKE_MODEL = ModelConfig(dim=128, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=64, ffn_dim=256, max_seq_len=1024)
SMOKE_TRAIN = TrainConfig(steps=4, tokens_per_step=4096, warmup=1, eval_every=2, eval_docs=4, lr=3e-3)


# ---- data -------------------------------------------------------------------------------

def _longest(words):
    return max(len(w) for w in words)


def doc_bytes_bound(num_lines):
    """The most tokens (BOS + prompt + answer + EOS) a document of num_lines can have."""
    key = _longest(gen_lines.ADJECTIVES) + 1 + _longest(gen_lines.NOUNS)
    line = len(gen_lines.line_text("k" * key, gen_lines.MAX_NUMBER))
    question = len(gen_lines.QUESTION.format(key="k" * key))
    answer = len(f"<{gen_lines.MAX_NUMBER}>")
    return 1 + len(gen_lines.HEADER) + num_lines * line + question + answer + 1


def max_lines_for(seq_len):
    """The most lines whose longest possible document fits in seq_len tokens."""
    n = 0
    while doc_bytes_bound(n + 1) <= seq_len:
        n += 1
    if n == 0:
        raise ValueError(f"a context of {seq_len} tokens holds no document")
    return n


def lines_bound(step, tc, full):
    """Curriculum: the most lines a document may have at this step (geometric growth)."""
    p = min(1.0, step / max(1.0, tc.ramp * tc.steps))
    return max(1, min(full, round(tc.start_lines * (full / tc.start_lines) ** p)))


def encode_record(rec):
    """Token ids of BOS + prompt + answer + EOS and where the answer starts."""
    prompt = [export.BOS] + export.encode(rec["prompt"])
    return prompt + export.encode(gen_lines.answer_text(rec)) + [export.EOS], len(prompt)


def make_batch(records, pad_to=64):
    """Rows padded (with PAD) to a common length, a multiple of pad_to.
    Returns inputs [B][T] int64, targets [B][T] int64 (IGNORE at padding) and
    is_answer [B][T] bool (targets that are answer tokens; the rest, unless IGNORE, are document)."""
    enc = [encode_record(r) for r in records]
    t = max(len(ids) - 1 for ids, _ in enc)
    t = -(-t // pad_to) * pad_to
    inputs = np.full((len(enc), t), export.PAD, dtype=np.int64)
    targets = np.full((len(enc), t), IGNORE, dtype=np.int64)
    is_answer = np.zeros((len(enc), t), dtype=bool)
    for b, (ids, n_prompt) in enumerate(enc):
        n = len(ids) - 1
        inputs[b, :n] = ids[:-1]
        targets[b, :n] = ids[1:]
        is_answer[b, n_prompt - 1:n] = True  # target j is ids[j + 1]: the answer from j = n_prompt - 1
    return inputs, targets, is_answer


class TrainStream:
    """Batches of the train split: document i of the run comes from gen_lines.doc_rng("train",
    seed, num_lines, i), the line count of each batch from a generator seeded by (seed, step)."""

    def __init__(self, tc, mc):
        self.tc, self.full = tc, max_lines_for(mc.max_seq_len)
        self.n_docs = 0

    def batch(self, step):
        bound = lines_bound(step, self.tc, self.full)
        n_lines = random.Random(f"zipcache-train-lines/{self.tc.seed}/{step}").randint(1, bound)
        rows = max(1, self.tc.tokens_per_step // doc_bytes_bound(n_lines))
        recs = [gen_lines.document(gen_lines.doc_rng("train", self.tc.seed, n_lines, self.n_docs + i), n_lines)
                for i in range(rows)]
        self.n_docs += rows
        return n_lines, make_batch(recs)


def eval_line_counts(full):
    """Held-out lengths: a few points up to the longest that fits."""
    return sorted({max(1, full // 8), max(1, full // 4), max(1, full // 2), full})


# ---- the plan -----------------------------------------------------------------------------

def flops_per_token(mc):
    """Training FLOPs per token as (fixed, per_position): 6 per matmul weight (forward and
    backward), plus for attention scores and values 2 matmuls x 2 FLOPs x n_heads*head_dim per
    layer per key attended (seq_len/2 on average under the causal mask), x3 for the backward.
    Total = fixed + per_position * seq_len."""
    n_matmul = mc.n_params() - 2 * mc.n_layers * mc.dim - mc.dim - export.VOCAB_SIZE * mc.dim  # no norms, no lookup
    return 6 * n_matmul, 3 * 2 * 2 * 0.5 * mc.n_heads * mc.head_dim * mc.n_layers


def steps_flops(mc, tc, steps):
    """Planned FLOPs of the given steps: every step holds tokens_per_step tokens in documents of
    the curriculum's mean length at that step (line count uniform in 1..bound)."""
    full = max_lines_for(mc.max_seq_len)
    lens = np.array([doc_bytes_bound(n) for n in range(1, full + 1)], dtype=np.float64)
    mean_len = np.concatenate([[0.0], np.cumsum(lens) / np.arange(1, full + 1)])  # [full+1], by bound
    fixed, per_pos = flops_per_token(mc)
    steps = list(steps)
    return tc.tokens_per_step * (fixed * len(steps) + per_pos * sum(mean_len[lines_bound(s, tc, full)] for s in steps))


def plan(mc, tc):
    """What the run will do, from the configs alone."""
    full = max_lines_for(mc.max_seq_len)
    flops = steps_flops(mc, tc, range(tc.steps))
    return {"params": mc.n_params(), "max_lines": full, "steps": tc.steps, "tokens": float(tc.steps * tc.tokens_per_step),
            "flops": flops, "est_minutes": flops / ASSUMED_FLOPS_PER_S / 60, "eval_lines": eval_line_counts(full)}


def print_plan(p, mc, tc, device):
    print(f"model: {p['params'] / 1e6:.2f}M parameters, {mc.n_layers} layers, dim {mc.dim}, "
          f"{mc.n_heads}/{mc.n_kv_heads} heads x {mc.head_dim}, ffn {mc.ffn_dim}, context {mc.max_seq_len} byte tokens "
          f"(up to {p['max_lines']} lines a document)", flush=True)
    print(f"plan: {tc.steps} steps x ~{tc.tokens_per_step} tokens = {p['tokens'] / 1e6:.3g}M tokens, "
          f"{p['flops']:.3g} FLOPs; at an assumed {ASSUMED_FLOPS_PER_S / 1e12:.0f} TFLOP/s about "
          f"{p['est_minutes']:.1f} min on {device} (each call stops at {tc.max_minutes:g} min, --resume goes on); "
          f"held-out at {p['eval_lines']} lines", flush=True)


# ---- the model (torch) --------------------------------------------------------------------

_Module = nn.Module if nn is not None else object


class RMSNorm(_Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rope_tables(mc, seq_len, device):
    """cos, sin [seq_len][head_dim] in fp32: angle pos * theta^(-2i/head_dim) for i < head_dim/2,
    repeated for the second half (rotate-half)."""
    inv = 1.0 / (mc.rope_theta ** (torch.arange(0, mc.head_dim, 2, device=device, dtype=torch.float64) / mc.head_dim))
    ang = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float64), inv)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin):
    """x [B][heads][T][head_dim]: x*cos + rotate_half(x)*sin, rotate_half(x) = [-x2, x1]."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)


class Attention(_Module):
    def __init__(self, mc):
        super().__init__()
        self.mc = mc
        self.q_proj = nn.Linear(mc.dim, mc.n_heads * mc.head_dim, bias=False)
        self.k_proj = nn.Linear(mc.dim, mc.n_kv_heads * mc.head_dim, bias=False)
        self.v_proj = nn.Linear(mc.dim, mc.n_kv_heads * mc.head_dim, bias=False)
        self.o_proj = nn.Linear(mc.n_heads * mc.head_dim, mc.dim, bias=False)

    def forward(self, x, cos, sin):
        mc, (b, t, _) = self.mc, x.shape
        q = self.q_proj(x).view(b, t, mc.n_heads, mc.head_dim).transpose(1, 2)     # [B][H][T][hd]
        k = self.k_proj(x).view(b, t, mc.n_kv_heads, mc.head_dim).transpose(1, 2)  # [B][KV][T][hd]
        v = self.v_proj(x).view(b, t, mc.n_kv_heads, mc.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = mc.n_heads // mc.n_kv_heads  # query head h reads kv head h // rep
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B][H][T][hd]
        return self.o_proj(o.transpose(1, 2).reshape(b, t, mc.n_heads * mc.head_dim))


class MLP(_Module):
    def __init__(self, mc):
        super().__init__()
        self.gate_proj = nn.Linear(mc.dim, mc.ffn_dim, bias=False)
        self.up_proj = nn.Linear(mc.dim, mc.ffn_dim, bias=False)
        self.down_proj = nn.Linear(mc.ffn_dim, mc.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(_Module):
    def __init__(self, mc):
        super().__init__()
        self.input_layernorm = RMSNorm(mc.dim, mc.norm_eps)
        self.self_attn = Attention(mc)
        self.post_attention_layernorm = RMSNorm(mc.dim, mc.norm_eps)
        self.mlp = MLP(mc)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class RetrievalLM(_Module):
    """Parameter names are the HF ones without the "model." prefix (see hf_name)."""

    def __init__(self, mc):
        super().__init__()
        self.mc = mc
        self.embed_tokens = nn.Embedding(export.VOCAB_SIZE, mc.dim)
        self.layers = nn.ModuleList(Block(mc) for _ in range(mc.n_layers))
        self.norm = RMSNorm(mc.dim, mc.norm_eps)
        self.lm_head = nn.Linear(mc.dim, export.VOCAB_SIZE, bias=False)
        cos, sin = rope_tables(mc, mc.max_seq_len, "cpu")  # [max_seq_len][head_dim], moved by .to()
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def init_weights(self, generator):
        # GPT-2 style: N(0, 0.02), the projections into the residual stream scaled by 1/sqrt(2 L).
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:
                    p.fill_(1.0)
                else:
                    residual = name.endswith(("o_proj.weight", "down_proj.weight"))
                    p.normal_(0.0, 0.02 / math.sqrt(2 * self.mc.n_layers) if residual else 0.02, generator=generator)

    def forward(self, ids):
        """ids [B][T] -> logits [B][T][vocab]."""
        t = ids.shape[1]
        if t > self.mc.max_seq_len:
            raise ValueError(f"{t} tokens exceed the context of {self.mc.max_seq_len}")
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))


def hf_name(name):
    return name if name.startswith("lm_head.") else "model." + name


def export_tensors(model):
    """HF name -> fp32 numpy array of every parameter."""
    return {hf_name(n): p.detach().float().cpu().numpy() for n, p in model.named_parameters()}


def load_tensors(model, tensors):
    """Inverse of export_tensors (tests load an exported checkpoint back)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(tensors[hf_name(n)], dtype=np.float32)))


# ---- training -----------------------------------------------------------------------------

def losses(model, batch, device, autocast):
    """(answer loss, document loss, per-row exact answer [B] bool) of one batch."""
    inputs, targets, is_answer = (torch.from_numpy(a).to(device, non_blocking=True) for a in batch)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(inputs)
    logits = logits.float()
    ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=IGNORE,
                         reduction="none").view(targets.shape)
    is_doc = (targets != IGNORE) & ~is_answer
    ans = (ce * is_answer).sum() / is_answer.sum().clamp(min=1)
    doc = (ce * is_doc).sum() / is_doc.sum().clamp(min=1)
    right = ((logits.argmax(-1) == targets) | ~is_answer).all(dim=1)
    return ans, doc, right


def held_out(model, tc, device, autocast, counts):
    """Teacher-forced exact-answer accuracy on the test split at each line count."""
    model.eval()
    out = {}
    rows = max(1, (1 << 15) // doc_bytes_bound(max(counts)))  # bound activation memory
    with torch.no_grad():
        for n in counts:
            recs = gen_lines.documents("test", tc.seed, n, tc.eval_docs)
            right = 0
            for i in range(0, len(recs), rows):
                right += int(losses(model, make_batch(recs[i:i + rows]), device, autocast)[2].sum())
            out[n] = right / len(recs)
    model.train()
    return out


def lr_at(step, tc):
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    p = (step - tc.warmup) / max(1, tc.steps - tc.warmup)
    return tc.lr * (tc.min_lr_frac + (1 - tc.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def fit_steps(mc, tc, flops_per_s, minutes):
    """The most steps whose planned FLOPs take at most `minutes` at flops_per_s (the curriculum
    stretches with the step count, so this searches rather than divides)."""
    lo, hi = 1, 1
    while plan(mc, dataclasses.replace(tc, steps=hi * 2))["flops"] / flops_per_s <= minutes * 60:
        hi *= 2
        if hi > 1 << 20:
            return hi
    hi *= 2
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if plan(mc, dataclasses.replace(tc, steps=mid))["flops"] / flops_per_s <= minutes * 60:
            lo = mid
        else:
            hi = mid
    return lo


STATE = "train_state.pt"
CALIBRATE = (10, 40)  # steps timed for --fit-minutes (after the first kernels are warm)


def train(mc, tc, device, out_dir, resume=False, fit_minutes=None, log=print):
    """Train (or continue a stopped run from out_dir/train_state.pt with resume), export the
    HF checkpoint and train_report.json to out_dir, and save the state for a later --resume.
    fit_minutes: after CALIBRATE steps, set tc.steps so that the whole run's planned FLOPs take
    that long at the measured rate. Returns (model, report)."""
    mc.check()
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(tc.seed)
    autocast = device.type == "cuda"
    if autocast:
        torch.backends.cuda.matmul.allow_tf32 = True
    model = RetrievalLM(mc)
    model.init_weights(torch.Generator().manual_seed(tc.seed))  # on the CPU: the same start on any device
    model.to(device)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tc.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")
    stream = TrainStream(tc, mc)
    report = {"model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc), "device": str(device),
              "log": [], "held_out": {}, "minutes": 0.0, "tokens": 0, "steps_run": 0, "finished": False}
    state_path = os.path.join(out_dir, STATE)
    if resume and os.path.exists(state_path):
        st = torch.load(state_path, map_location=device, weights_only=False)
        if st["model_config"] != dataclasses.asdict(mc):
            raise ValueError(f"{state_path}: saved for model {st['model_config']}, not {dataclasses.asdict(mc)}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        report, stream.n_docs = st["report"], st["n_docs"]
        tc.steps = report["train"]["steps"]  # as fixed when the run began (or was fitted)
        log(f"resuming {state_path} at step {report['steps_run']} of {tc.steps}")
    elif resume:
        log(f"no {state_path}: starting a new run")
    counts = eval_line_counts(stream.full)
    first = report["steps_run"]
    t0, minutes0, tokens, t_cal = time.time(), report["minutes"], report["tokens"], None
    step = first
    while step < tc.steps:
        n_lines, batch = stream.batch(step)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        ans, doc, right = losses(model, batch, device, autocast)
        loss = ans + tc.doc_loss_weight * doc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        tokens += int((batch[1] != IGNORE).sum())
        step += 1
        el = time.time() - t0
        if fit_minutes and first == 0 and step in CALIBRATE:
            if device.type == "cuda":
                torch.cuda.synchronize()
                el = time.time() - t0
            if step == CALIBRATE[0]:
                t_cal = el
            else:
                rate = steps_flops(mc, tc, range(*CALIBRATE)) / max(el - t_cal, 1e-9)
                tc.steps = max(step + 1, fit_steps(mc, tc, rate, fit_minutes))
                report["train"]["steps"] = tc.steps
                log(f"measured {rate / 1e12:.1f} TFLOP/s: {tc.steps} steps fit --fit-minutes {fit_minutes:g}")
        last = step == tc.steps
        if step % 10 == 1 or last:
            rec = {"step": step, "lines": n_lines, "rows": len(batch[0]), "loss_answer": float(ans),
                   "loss_doc": float(doc), "train_exact": float(right.float().mean()), "grad_norm": float(gnorm),
                   "lr": lr_at(step - 1, tc), "tokens": tokens, "minutes": minutes0 + el / 60}
            report["log"].append(rec)
            log(f"step {step:5d}/{tc.steps}  lines {n_lines:3d} x{len(batch[0]):3d}  answer {rec['loss_answer']:.3f}  "
                f"doc {rec['loss_doc']:.3f}  exact {rec['train_exact']:.2f}  |g| {rec['grad_norm']:.2f}  "
                f"lr {rec['lr']:.2e}  {(tokens - report['tokens']) / max(el, 1e-9) / 1e3:.0f}k tok/s  "
                f"{rec['minutes']:.1f} min")
            if not math.isfinite(rec["loss_answer"]) or not math.isfinite(rec["loss_doc"]):
                raise RuntimeError(f"step {step}: loss is not finite")
        out_of_time = el / 60 > tc.max_minutes and not last
        if step % tc.eval_every == 0 or last or out_of_time:
            acc = held_out(model, tc, device, autocast, counts)
            report["held_out"][str(step)] = acc
            log(f"held-out exact answer at step {step}: " + ", ".join(f"{n} lines {a:.2f}" for n, a in acc.items()))
        if out_of_time:
            log(f"stopping at step {step} of {tc.steps}: past --max-minutes {tc.max_minutes:g} in this call; "
                "run the same command with --resume to go on")
            break
    report.update({"steps_run": step, "minutes": minutes0 + (time.time() - t0) / 60, "tokens": tokens,
                   "finished": step >= tc.steps})
    export.write_hf(out_dir, dataclasses.asdict(mc), export_tensors(model))
    with open(os.path.join(out_dir, "train_report.json"), "w") as fp:
        json.dump(report, fp, indent=1)
    torch.save({"model_config": dataclasses.asdict(mc), "model": model.state_dict(), "opt": opt.state_dict(),
                "report": report, "n_docs": stream.n_docs}, state_path)
    log(f"wrote {out_dir}: HF checkpoint, train_report.json, {STATE} "
        f"({'finished' if report['finished'] else 'not finished'}: {step} of {tc.steps} steps, "
        f"{report['minutes']:.1f} min)")
    return model, report


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the byte-level retrieval model (see the module docstring).")
    ap.add_argument("--out", required=True, help="output directory: the HF checkpoint and train_report.json")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--smoke", action="store_true", help="a tiny model for a few steps (the CPU test)")
    ap.add_argument("--plan-only", action="store_true", help="print the plan and exit")
    ap.add_argument("--random-weights", action="store_true",
                    help="write the untrained architecture with random weights (numpy, no torch) instead of "
                         "training: for the tests and for timing zipcache at this exact shape")
    for f in dataclasses.fields(TrainConfig):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    ap.add_argument("--ctx", type=int, default=None, help="context (max_seq_len) in tokens")
    ap.add_argument("--resume", action="store_true", help=f"continue from OUT/{STATE} if it exists")
    ap.add_argument("--fit-minutes", type=float, default=None,
                    help="after a few timed steps, set --steps so that the whole run takes about this long")
    a = ap.parse_args(argv)
    mc = dataclasses.replace(SMOKE_MODEL if a.smoke else ModelConfig())
    tc = dataclasses.replace(SMOKE_TRAIN if a.smoke else TrainConfig(),
                             **{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)
                                if getattr(a, f.name) is not None})
    if a.ctx:
        mc.max_seq_len = a.ctx
    try:
        mc.check()
    except ValueError as e:
        ap.error(f"{e} (--ctx must be a multiple of 64)")
    print_plan(plan(mc, tc), mc, tc, a.device)
    if a.plan_only:
        return 0
    if a.random_weights:
        export.write_hf(a.out, dataclasses.asdict(mc), export.random_tensors(dataclasses.asdict(mc), tc.seed))
        print(f"wrote {a.out} (random weights)")
        return 0
    if torch is None:
        print("train_retrieval: torch is not installed", file=sys.stderr)
        return 2
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("train_retrieval: CUDA is not available (use --device cpu --smoke for a CPU check)", file=sys.stderr)
        return 2
    _, report = train(mc, tc, device, a.out, resume=a.resume, fit_minutes=a.fit_minutes,
                      log=lambda s: print(s, flush=True))
    return 0 if report["finished"] else 3


if __name__ == "__main__":
    sys.exit(main())
