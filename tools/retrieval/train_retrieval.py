#!/usr/bin/env python3
"""Train the line-retrieval model on the CPU (Debian's torch 1.13 with OpenBLAS), resumably.

The task is LongEval's: a record of N lines "line <adjective>-<noun>: REGISTER_CONTENT is <number>",
then "Tell me what is the <REGISTER_CONTENT> in line <key>? I need the number. ", answered "<number>".
Documents come from gen_lines.py (train split); held-out accuracy uses the test split.

What makes the lookup learnable in CPU hours (see README.md for the tries that did not):
  * word tokens (wordtok.py): a key is two tokens, a number two, a line ~11, so 4096 tokens hold
    ~360 lines and a step of 16K tokens is many documents;
  * tied embeddings: copying a number token is "say what you read", shared by every token;
  * dense supervision: after the first answer the same sequence asks up to --questions more
    questions about other lines (keys drawn without replacement, so "repeat the last answer" or
    "copy the only number" never pays), each answer "<N>" scored; the document tokens are not;
  * a length curriculum driven by measured held-out accuracy, not the clock: the longest
    document grows by --grow when greedy accuracy at the current longest reaches --grow-at.

A sequence is BOS + tokens(header + lines + question_1) + tokens("<n_1>") + tokens(question_2)
+ tokens("<n_2>") ... + EOS. The prompt and each answer are tokenized separately, exactly as the
engine sees them (`zipcache eval lines` tokenizes the prompt, whose last token is the space after
"number.", then generates).

    train_retrieval.py --out out/retrieval --minutes 120          # trains, resumable (--resume)
    train_retrieval.py --out DIR --smoke                           # a tiny run (the CI test)

Every --eval-every steps it prints a progress line and saves OUT/train_state.pt; at the end (or at
--minutes) it writes the Hugging Face checkpoint (export.py) and OUT/train_report.json.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
import gen_lines  # noqa: E402
import wordtok  # noqa: E402

STATE = "train_state.pt"


@dataclasses.dataclass
class ModelConfig:
    dim: int = 128
    ffn_dim: int = 384
    n_layers: int = 3
    n_heads: int = 2
    n_kv_heads: int = 1
    head_dim: int = 64
    max_seq_len: int = 4096
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    vocab_size: int = 0  # set from the tokenizer


@dataclasses.dataclass
class TrainConfig:
    seed: int = 0
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.0
    clip: float = 1.0
    tokens_per_step: int = 8192
    questions: int = 16         # questions per training document, at most half its lines: asking about
                                # every line lets the last answers follow by elimination, not by lookup
    start_lines: int = 4        # the curriculum's first longest document
    grow: float = 1.5           # longest *= grow when held-out accuracy there >= grow_at
    grow_at: float = 0.9
    max_lines: int = 0          # the curriculum's cap (0: as many lines as the context holds)
    eval_every: int = 50
    eval_docs: int = 64
    eval_seed: int = 100        # test-split seed of the held-out checks during training
    max_steps: int = 0          # stop after this many steps in all (0: only the clock stops it)
    aux_weight: float = 0.2     # weight of the next-token loss on the non-answer tokens
    aux_fraction: float = 0.1   # the share of those tokens it is computed on
    recall: float = 0.0         # share of the further queries that repeat a line up to its number
    probe_weight: float = 1.0   # deep supervision: layer 0's output must name the key (see annotate)
    attn_weight: float = 1.0    # deep supervision: layer 1 head 0 at an answer digit attends to its source
    attn_start: int = 1300      # ... from this step on: with both from step 0 the probes never learned
                                # (run sB); by step 1300 they have (probe loss ~0.02)


def max_lines_for(tok, ctx):
    """The most lines whose longest sequence (BOS, prompt, answer, EOS) fits in ctx tokens: every
    key word is one token and a 5-digit number two, so a line of 12345 is as long as any."""
    line = len(tok.encode(gen_lines.line_text("amber-acorn", 12345)))
    one = len(tok.encode(gen_lines.HEADER + gen_lines.line_text("amber-acorn", 12345) +
                         gen_lines.QUESTION.format(key="amber-acorn")))
    fixed = 1 + one - line + len(tok.encode("<12345>")) + 1
    return (ctx - fixed) // line


def encode_doc(tok, rng, n_lines, n_questions, rec=None, recall=0.0):
    """(ids, targets) of one training sequence; targets[i] is the token at i+1 when it is part of
    an answer, -1 elsewhere. After the first (LongEval) question, each further query is, with
    probability `recall`, a line of the record repeated up to its "<" and scored on its number
    (an induction task with the same key-to-number offset on both sides, a stepping stone to the
    question's lookup), else another question."""
    rec = rec or gen_lines.document(rng, n_lines)
    prompt = rec["prompt"]
    body = prompt[len(gen_lines.HEADER):]
    lines = body.split("\n")[:n_lines]
    keys = [ln[5:ln.index(":")] for ln in lines]
    nums = [int(ln[ln.index("<") + 1:-1]) for ln in lines]
    first = rec["random_idx"][1]
    others = [i for i in range(n_lines) if i != first]
    rng.shuffle(others)
    order = [first] + others[:max(0, n_questions - 1)]
    ids, tgt = [wordtok.BOS], []
    for qi, li in enumerate(order):
        if qi > 0 and recall > 0 and rng.random() < recall:
            q = tok.encode(gen_lines.line_text(keys[li], nums[li]).split("<")[0] + "<")
            a = tok.encode(f"{nums[li]}>\n")
        else:
            q = tok.encode(prompt if qi == 0 else gen_lines.QUESTION.format(key=keys[li]))
            a = tok.encode(f"<{nums[li]}>")
        # the token before q (BOS or the previous answer's last) and q[:-1] predict question
        # tokens: not scored; q[-1] predicts a[0], ..., a[-2] predicts a[-1]
        tgt += [-1] * len(q) + a
        ids += q + a
    ids.append(wordtok.EOS)
    tgt += [-1, -1]       # the last answer token predicts EOS, EOS predicts nothing: not scored
    return ids, tgt


def make_batch(seqs, pad=wordtok.PAD):
    n = max(len(s[0]) for s in seqs)
    ids = np.full((len(seqs), n), pad, dtype=np.int64)
    tgt = np.full((len(seqs), n), -1, dtype=np.int64)
    for b, (i, t) in enumerate(seqs):
        ids[b, :len(i)] = i
        tgt[b, :len(t)] = t
    return ids, tgt


class KeyTokens:
    """Token ids of the key words and digits, for annotate()."""

    def __init__(self, tok):
        self.adj, self.noun = {}, {}
        for i, a in enumerate(gen_lines.ADJECTIVES):
            for j, n in ((0, gen_lines.NOUNS[0]),):
                ids = tok.encode(f" {a}-{n}")
                assert len(ids) == 2, (a, ids)
                self.adj[ids[0]] = i
        for j, n in enumerate(gen_lines.NOUNS):
            ids = tok.encode(f" {gen_lines.ADJECTIVES[0]}-{n}")
            self.noun[ids[1]] = j
        self.digits = {tok.encode(str(d))[0] for d in range(10)}
        self.line = {tok.encode("line")[0], tok.encode(" line")[0]}
        self.colon, self.qmark = tok.encode(":")[0], tok.encode("?")[0]


def annotate(kt, ids):
    """Deep-supervision targets of one sequence (lists of len(ids)):
    adj[i], noun[i]  the class of the key whose number position i holds or asks for, -1 elsewhere:
                     every record line from its ':' to its last digit, every query from the token
                     after its key to its answer's last digit (the two sides the lookup matches);
    src[i]           for a position that predicts an answer digit, the position of that digit in
                     the record line with the query's key, -1 elsewhere (the copy's source).
    The trained model has no part of this; it only shapes the path the optimizer takes."""
    T = len(ids)
    adj, noun, src = [-1] * T, [-1] * T, [-1] * T
    lines = {}
    i = 0
    while i + 3 < T:
        if not (ids[i] in kt.line and ids[i + 1] in kt.adj and ids[i + 2] in kt.noun):
            i += 1
            continue
        key = (kt.adj[ids[i + 1]], kt.noun[ids[i + 2]])
        j = i + 3
        while j < T and ids[j] not in kt.digits:   # the template up to the number, or the question
            j += 1                                 # up to the answer
        digits = []
        while j < T and ids[j] in kt.digits:
            digits.append(j)
            j += 1
        if not digits:
            break
        for p in range(i + 3, digits[-1] + 1):
            adj[p], noun[p] = key
        if ids[i + 3] == kt.colon and key not in lines:
            lines[key] = digits                    # a record line (a recall query repeats one)
        elif key in lines:
            for k, d in enumerate(digits):
                if k < len(lines[key]):
                    src[d - 1] = lines[key][k]
        i = j
    return adj, noun, src


# ---- the model (HF Llama layout: weights [out, in], rotate-half RoPE) ------------------------

def build_model(mc):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d, hd = mc.dim, mc.head_dim
            self.input_layernorm = RMSNorm(d, mc.norm_eps)
            self.q_proj = nn.Linear(d, mc.n_heads * hd, bias=False)
            self.k_proj = nn.Linear(d, mc.n_kv_heads * hd, bias=False)
            self.v_proj = nn.Linear(d, mc.n_kv_heads * hd, bias=False)
            self.o_proj = nn.Linear(mc.n_heads * hd, d, bias=False)
            self.post_attention_layernorm = RMSNorm(d, mc.norm_eps)
            self.gate_proj = nn.Linear(d, mc.ffn_dim, bias=False)
            self.up_proj = nn.Linear(d, mc.ffn_dim, bias=False)
            self.down_proj = nn.Linear(mc.ffn_dim, d, bias=False)
            self.keep_probs, self.probs = False, None

        def forward(self, x, cos, sin, mask):
            B, T, _ = x.shape
            hd, H, KV = mc.head_dim, mc.n_heads, mc.n_kv_heads
            h = self.input_layernorm(x)
            q = self.q_proj(h).view(B, T, H, hd).transpose(1, 2)      # [B, H, T, hd]
            k = self.k_proj(h).view(B, T, KV, hd).transpose(1, 2)     # [B, KV, T, hd]
            v = self.v_proj(h).view(B, T, KV, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            # GQA: query heads h*G .. h*G+G-1 share KV head h (HF's repeat_kv order)
            q = q.reshape(B, KV, H // KV * T, hd)
            s = torch.matmul(q, k.transpose(-1, -2)).view(B, KV, H // KV, T, T) * (hd ** -0.5)
            p = torch.softmax(s + mask, dim=-1).view(B, KV, H // KV * T, T)
            self.probs = p.view(B, H, T, T) if self.keep_probs else None   # for attn_weight
            o = torch.matmul(p, v).view(B, H, T, hd).transpose(1, 2).reshape(B, T, H * hd)
            x = x + self.o_proj(o)
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

    def rope(x, cos, sin):
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(mc.vocab_size, mc.dim)
            self.layers = nn.ModuleList(Block() for _ in range(mc.n_layers))
            self.norm = RMSNorm(mc.dim, mc.norm_eps)

        def init_weights(self, gen):
            std = 0.02
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    with torch.no_grad():
                        p.normal_(0.0, std, generator=gen)
                        if name.endswith(("o_proj.weight", "down_proj.weight")):
                            p.mul_(1.0 / math.sqrt(2 * mc.n_layers))

        def hidden(self, ids):
            T = ids.shape[1]
            inv = 1.0 / (mc.rope_theta ** (torch.arange(0, mc.head_dim, 2, dtype=torch.float32) / mc.head_dim))
            ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
            cos = torch.cat((ang.cos(), ang.cos()), -1)
            sin = torch.cat((ang.sin(), ang.sin()), -1)
            mask = torch.full((T, T), float("-inf")).triu(1)
            x = self.embed_tokens(ids)
            for i, layer in enumerate(self.layers):
                x = layer(x, cos, sin, mask)
                if i == 0:
                    self.x0 = x                      # layer 0's output, for probe_weight
            return self.norm(x)

        def logits_at(self, ids, where):
            """Logits [n, vocab] at the positions where `where` (bool [B, T]) is true."""
            h = self.hidden(ids)[where]
            return h @ self.embed_tokens.weight.t()

    return Model()


def export_tensors(model):
    """name -> numpy array in export.py's HF names (tied embeddings: no lm_head)."""
    out = {}
    for name, p in model.state_dict().items():
        a = p.detach().cpu().float().numpy()
        if name.startswith("layers."):
            i, rest = name[len("layers."):].split(".", 1)
            prefix = "self_attn." if rest.startswith(("q_", "k_", "v_", "o_")) else \
                "mlp." if rest.startswith(("gate", "up", "down")) else ""
            out[f"model.layers.{i}.{prefix}{rest}"] = a
        else:
            out["model." + name] = a
    return out


# ---- training ---------------------------------------------------------------------------

def answer_accuracy(model, tok, n_lines, count, seed, split="test"):
    """Greedy exact-match rate of the first (the LongEval) question, teacher-forced: every answer
    token is the argmax given the right ones before it, which is what greedy decoding produces."""
    import torch
    recs = gen_lines.documents(split, seed, n_lines, count)
    ok = 0
    with torch.no_grad():
        for b in range(0, count, 8):
            seqs = [encode_doc(tok, random.Random(0), n_lines, 1, rec=r) for r in recs[b:b + 8]]
            ids, tgt = make_batch(seqs)
            ids_t, tgt_t = torch.from_numpy(ids), torch.from_numpy(tgt)
            where = tgt_t >= 0
            pred = model.logits_at(ids_t, where).argmax(-1)
            right = (pred == tgt_t[where]).numpy()
            per_row = where.sum(1).numpy()
            o = 0
            for n in per_row:
                ok += int(right[o:o + n].all())
                o += n
    return ok / count


def lines_for_step(rng, longest):
    """Half the batches at the current longest length's upper half, half anywhere from 2 lines."""
    lo = max(2, longest // 2) if rng.random() < 0.5 else 2
    return rng.randint(lo, longest)


def annotate_batch(kt, seqs, T):
    """annotate() of each sequence, padded with -1 to [B, T] int64 arrays."""
    out = [np.full((len(seqs), T), -1, dtype=np.int64) for _ in range(3)]
    for b, (ids, _) in enumerate(seqs):
        for arr, a in zip(out, annotate(kt, ids)):
            arr[b, :len(a)] = a
    return out


def train(mc, tc, out, minutes, resume, threads, log, export_only=False):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(tc.seed)
    tok = wordtok.Tokenizer()
    mc.vocab_size = tok.n_vocab
    full = max_lines_for(tok, mc.max_seq_len)
    cap = min(full, tc.max_lines) if tc.max_lines > 0 else full
    model = build_model(mc)
    gen = torch.Generator().manual_seed(tc.seed)
    model.init_weights(gen)
    # the deep-supervision probes (annotate): trained with the model, never exported
    probe = torch.nn.ModuleDict({"adj": torch.nn.Linear(mc.dim, len(gen_lines.ADJECTIVES)),
                                 "noun": torch.nn.Linear(mc.dim, len(gen_lines.NOUNS))})
    kt = KeyTokens(tok)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2] + list(probe.parameters())
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.95))
    st = {"step": 0, "tokens": 0, "seconds": 0.0, "longest": min(tc.start_lines, full), "history": [],
          "rng": None}
    path = os.path.join(out, STATE)
    if resume and os.path.exists(path):
        saved = torch.load(path)
        model.load_state_dict(saved["model"])
        if "probe" in saved:
            probe.load_state_dict(saved["probe"])
            opt.load_state_dict(saved["opt"])
        else:
            log("a state from before the probes: the optimizer's moments start afresh")
        st = saved["state"]
        st["longest"] = min(st["longest"], cap)
        log(f"resumed at step {st['step']}, longest {st['longest']} lines, {st['seconds'] / 60:.1f} min so far")
    rng = random.Random(f"zipcache-train/{tc.seed}")
    if st["rng"] is not None:
        rng.setstate(st["rng"])
    os.makedirs(out, exist_ok=True)
    log(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, vocab {mc.vocab_size}, "
        f"context {mc.max_seq_len} (<= {full} lines); {threads} threads")
    t0, loss_avg, part_avg, budget = time.time(), None, {}, minutes * 60.0
    start_seconds = st["seconds"]

    def save():
        st["rng"] = rng.getstate()
        st["seconds"] = start_seconds + time.time() - t0
        torch.save({"model": model.state_dict(), "probe": probe.state_dict(), "opt": opt.state_dict(), "state": st,
                    "mc": dataclasses.asdict(mc), "tc": dataclasses.asdict(tc)}, path + ".tmp")
        os.replace(path + ".tmp", path)

    done = export_only
    while not done:
        model.train()
        attend = tc.attn_weight > 0 and st["step"] >= tc.attn_start
        model.layers[min(1, mc.n_layers - 1)].keep_probs = attend
        n_lines = lines_for_step(rng, st["longest"])
        seqs, ntok = [], 0
        while ntok < tc.tokens_per_step or not seqs:
            s = encode_doc(tok, rng, n_lines, max(1, min(tc.questions, n_lines // 2)), recall=tc.recall)
            seqs.append(s)
            ntok += len(s[0])
        ids, tgt = make_batch(seqs)
        ids_t, tgt_t = torch.from_numpy(ids), torch.from_numpy(tgt)
        where = tgt_t >= 0
        h = model.hidden(ids_t)                                              # [B, T, dim]
        emb = model.embed_tokens.weight
        answer_loss = F.cross_entropy(h[where] @ emb.t(), tgt_t[where])
        loss = answer_loss
        parts = {}
        if tc.aux_weight > 0:
            # Next-token loss on every other token too: the template teaches each position where it
            # sits in its line, and a question's key noun after its adjective is an induction
            # target (the pair is in the record), the two circuits the lookup is built from.
            # A random fraction of those positions keeps the output projection cheap.
            nxt = torch.cat((ids_t[:, 1:], torch.full_like(ids_t[:, :1], wordtok.PAD)), 1)
            aux = (~where) & (nxt != wordtok.PAD) & (torch.rand(ids_t.shape) < tc.aux_fraction)
            loss = loss + tc.aux_weight * F.cross_entropy(h[aux] @ emb.t(), nxt[aux])
        if tc.probe_weight > 0 or attend:
            adj, noun, src = (torch.from_numpy(a) for a in annotate_batch(kt, seqs, ids.shape[1]))
        if tc.probe_weight > 0:
            # layer 0 must bring each line's key to its number and the query's key to its answer,
            # the two hops the lookup needs before its match can be learned (without them the
            # model sat at "copy a random line's number" for 70M tokens)
            m = adj >= 0
            x0 = model.x0[m]
            parts["probe"] = 0.5 * (F.cross_entropy(probe["adj"](x0), adj[m]) +
                                    F.cross_entropy(probe["noun"](x0), noun[m]))
            loss = loss + tc.probe_weight * parts["probe"]
        if attend:
            # layer 1 head 0, at a position that predicts an answer digit, attends to that digit
            # in the record line with the query's key
            m = src >= 0
            p = model.layers[min(1, mc.n_layers - 1)].probs[:, 0]            # [B, T, T]
            b, t = m.nonzero(as_tuple=True)
            parts["attn"] = -torch.log(p[b, t, src[m]] + 1e-6).mean()
            loss = loss + tc.attn_weight * parts["attn"]
        lr = tc.lr * min(1.0, (st["step"] + 1) / tc.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
        opt.step()
        st["step"] += 1
        st["tokens"] += ntok
        # the logged loss is the answer tokens' (the auxiliary part is not comparable across settings)
        loss_avg = answer_loss.item() if loss_avg is None else 0.9 * loss_avg + 0.1 * answer_loss.item()
        for k, v in parts.items():
            part_avg[k] = v.item() if k not in part_avg else 0.9 * part_avg[k] + 0.1 * v.item()
        elapsed = time.time() - t0
        last = elapsed > budget or (tc.max_steps and st["step"] >= tc.max_steps)
        if st["step"] % tc.eval_every == 0 or last:
            model.eval()
            acc = answer_accuracy(model, tok, st["longest"], tc.eval_docs, tc.eval_seed)
            mins = (start_seconds + elapsed) / 60
            st["history"].append({"step": st["step"], "minutes": round(mins, 2), "tokens": st["tokens"],
                                  "loss": round(loss_avg, 4), "longest": st["longest"], "held_out": acc})
            log(f"step {st['step']:6d}  {mins:6.1f} min  {st['tokens'] / 1e6:7.2f}M tok  "
                f"{st['tokens'] / max(1e-9, start_seconds + elapsed):6.0f} tok/s  loss {loss_avg:.4f}  "
                f"lines <= {st['longest']:3d}  held-out exact {acc:.3f}" +
                "".join(f"  {k} {v:.3f}" for k, v in part_avg.items()))
            if acc >= tc.grow_at and st["longest"] < cap:
                st["longest"] = min(cap, max(st["longest"] + 1, int(st["longest"] * tc.grow)))
                log(f"  -> longest document now {st['longest']} lines")
            save()
            done = last
    return model, tok, st, full


def write_checkpoint(model, tok, mc, tc, st, out, full, log):
    hp = dataclasses.asdict(mc)
    export.write_hf(out, hp, export_tensors(model), tok)
    report = {"model": hp, "train": dataclasses.asdict(tc), "steps": st["step"], "tokens": st["tokens"],
              "minutes": round(st["seconds"] / 60, 1), "longest_lines": st["longest"], "full_lines": full,
              "history": st["history"]}
    with open(os.path.join(out, "train_report.json"), "w") as fp:
        json.dump(report, fp, indent=1)
        fp.write("\n")
    log(f"wrote the checkpoint to {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the line-retrieval model on the CPU (see the docstring).")
    ap.add_argument("--out", required=True, help="output directory: HF checkpoint, train_state.pt, report")
    ap.add_argument("--minutes", type=float, default=120.0, help="wall-clock budget of this call (default 120)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help=f"continue from OUT/{STATE}")
    ap.add_argument("--export", action="store_true", help=f"write the checkpoint of OUT/{STATE} without training")
    ap.add_argument("--smoke", action="store_true", help="a tiny model for a few steps (the test)")
    ap.add_argument("--random-weights", action="store_true", help="write an untrained checkpoint and exit (numpy only)")
    for cfg in (ModelConfig, TrainConfig):
        for f in dataclasses.fields(cfg):
            if f.name != "vocab_size":
                ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    a = ap.parse_args(argv)
    mc, tc = ModelConfig(), TrainConfig()
    if a.smoke:
        mc = ModelConfig(dim=128, ffn_dim=128, n_layers=2, n_heads=2, n_kv_heads=1, max_seq_len=512)
        tc = TrainConfig(tokens_per_step=1024, eval_every=3, eval_docs=8, warmup=3, max_steps=6, attn_start=3)
    for cfg in (mc, tc):
        for f in dataclasses.fields(cfg):
            v = getattr(a, f.name, None)
            if v is not None:
                setattr(cfg, f.name, v)
    if mc.n_heads % mc.n_kv_heads or mc.head_dim % 2:
        ap.error("n_heads must be a multiple of n_kv_heads and head_dim even")

    def log(msg):
        print(msg, flush=True)

    minutes = 10.0 if a.smoke else a.minutes
    if a.random_weights:  # numpy only: the engine tests' untrained model
        tok = wordtok.Tokenizer()
        mc.vocab_size = tok.n_vocab
        hp = dataclasses.asdict(mc)
        export.write_hf(a.out, hp, export.random_tensors(hp, tc.seed), tok)
        log(f"wrote an untrained checkpoint to {a.out}")
        return 0
    state = os.path.join(a.out, STATE)
    if a.export and not os.path.exists(state):
        ap.error(f"--export: {state} does not exist")
    if (a.resume or a.export) and os.path.exists(state):
        # the saved shape wins over the defaults; so do the saved training settings, except those
        # given on this command line
        import torch
        saved = torch.load(state)
        mc = ModelConfig(**saved["mc"])
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        tc = TrainConfig(**{k: v for k, v in saved.get("tc", {}).items() if k in known})
        for f in dataclasses.fields(tc):
            if getattr(a, f.name, None) is not None:
                setattr(tc, f.name, getattr(a, f.name))
    model, tok, st, full = train(mc, tc, a.out, minutes, a.resume or a.export, a.threads, log, a.export)
    write_checkpoint(model, tok, mc, tc, st, a.out, full, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
