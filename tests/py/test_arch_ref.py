#!/usr/bin/env python3
"""Independent numpy forward passes of the architectures beyond llama/qwen2.

Each is written from the published model definition (transformers'
modeling_<arch>.py), in float64, on weights read here with numpy from the
files themselves (the readers of test_forward_ref.py, written from the file
formats):

  * qwen3 (Qwen3ForCausalLM): llama with an explicit head_dim and a per-head
    RMSNorm of q and k (q_norm, k_norm [head_dim]) applied before RoPE;
    rotate-half RoPE.
  * gemma3 (Gemma3ForCausalLM, model_type gemma3_text): embedding * sqrt(dim),
    RMSNorm by (1 + w), norms before and after attention and MLP, GELU-tanh
    gate, q/k norms, query_pre_attn_scalar, sliding-window layers with their
    own RoPE base (the others global, linear RoPE scaling).
  * phi3 (Phi3ForCausalLM): fused qkv_proj and gate_up_proj, partial rotary,
    LongRoPE factors and attention factor.
  * smollm3 (SmolLM3ForCausalLM): llama with every 4th layer unrotated (NoPE).
  * mistral (MistralForCausalLM): llama with a sliding window on every layer.
  * YaRN RoPE scaling (qwen3 with Qwen3's long-context rope_scaling).

For every architecture a small random checkpoint is written here as a
Hugging Face directory (tinystories656K's tokenizer), and three runs must
agree with this reference to REL_TOL relative to the largest logit:
  1. the engine on the HF directory;
  2. the engine on the GGUF that `zipcache convert --type f32` writes from
     it, against this reference run on the weights numpy reads back from that
     GGUF (tensor names and metadata keys as llama.cpp writes them);
  3. the two engine runs against each other.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from test_forward_ref import (ASSETS, BIN, engine_logits, read_gguf, read_safetensors, rope_adjacent,  # noqa: E402
                              write_safetensors)

REL_TOL = 1e-5
PROMPT = "Once upon a time, there was a little dog named Max. Max liked to run in the big green park with his friend."


# ---- the model -------------------------------------------------------------------

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def yarn_inv_freq(dim, base, factor, orig, beta_fast=32.0, beta_slow=1.0):
    """transformers' _compute_yarn_parameters (truncate true): interpolated / extrapolated
    frequencies mixed by a linear ramp over the pair index between the correction dims."""
    corr = lambda rot: dim * np.log(orig / (rot * 2 * np.pi)) / (2 * np.log(base))
    low, high = max(np.floor(corr(beta_fast)), 0), min(np.ceil(corr(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    pos_freqs = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    ramp = np.clip((np.arange(dim // 2) - low) / (high - low), 0, 1)
    extrap = 1 - ramp
    return 1 / (factor * pos_freqs) * (1 - extrap) + 1 / pos_freqs * extrap


def rope_rotate_half(x, pos, base, linear=1.0, n_rot=None, ext=None, mscale=1.0, yarn=None):
    """x [n, heads, hd]; transformers' apply_rotary_pos_emb on the first n_rot channels (Phi3's
    partial_rotary_factor; the rest pass through), inv_freq / factor for linear scaling, / ext
    (LongRoPE's per-pair factors) and cos, sin * mscale (its attention_factor)."""
    hd = x.shape[-1]
    n_rot = n_rot or hd
    inv = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot) / linear
    if yarn is not None:
        inv = yarn_inv_freq(n_rot, base, **yarn)
    if ext is not None:
        inv = inv / np.asarray(ext, dtype=np.float64)
    freqs = np.outer(pos, inv)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = mscale * np.cos(emb)[:, None, :], mscale * np.sin(emb)[:, None, :]
    xr, xp = x[..., :n_rot], x[..., n_rot:]
    rot = np.concatenate([-xr[..., n_rot // 2:], xr[..., :n_rot // 2]], axis=-1)
    return np.concatenate([xr * cos + rot * sin, xp], axis=-1)


def attention(q, k, v, scale, window=0):
    """q [n, H, hd], k/v [n, KV, hd]; softmax(q k^T * scale) v, grouped KV heads, causal and,
    with a window, key j visible to query i only when i - j < window (transformers' sliding mask)."""
    n, H, hd = q.shape
    KV = k.shape[1]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    visible = (j <= i) & ((i - j < window) if window else True)
    mask = np.where(visible, 0.0, -np.inf)
    out = np.empty((n, H, hd))
    for h in range(H):
        g = h // (H // KV)
        s = q[:, h, :] @ k[:, g, :].T * scale + mask
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        out[:, h, :] = p @ v[:, g, :]
    return out


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(W, ids, hp, n_ctx=0):
    """hp: shapes plus the architecture's options: norm_offset (Gemma3RMSNorm's 1 + w in HF weights),
    embed_scale, act, attn_scale, windows [layers] (0 = global), local_base (RoPE base of windowed
    layers), linear (RoPE scaling of global layers), n_rot (partial rotary), LongRoPE's long/short
    factors, orig (context they switch at: long for a context n_ctx above it, as llama.cpp
    chooses; transformers switches on the sequence length) and mscale."""
    n = len(ids)
    ext = None
    if "long" in hp:
        ext = hp["long"] if n_ctx > hp["orig"] else hp["short"]
    H, KV, hd, eps, off = hp["heads"], hp["kv_heads"], hp["head_dim"], hp["eps"], hp.get("norm_offset", 0.0)
    norm = lambda x, w: rmsnorm(x, w + off, eps)
    pos = np.arange(n, dtype=np.float64)
    x = W["embed"][ids] * hp.get("embed_scale", 1.0)
    for li, L in enumerate(W["layers"]):
        window = hp.get("windows", [0] * len(W["layers"]))[li]
        h = norm(x, L["attn_norm"])
        q = (h @ L["wq"].T).reshape(n, H, hd)
        k = (h @ L["wk"].T).reshape(n, KV, hd)
        v = (h @ L["wv"].T).reshape(n, KV, hd)
        if "q_norm" in L:  # Qwen3/Gemma3 attention: q_norm(q_proj(x).view(..., head_dim)) before RoPE
            q, k = norm(q, L["q_norm"]), norm(k, L["k_norm"])
        if window and hp.get("local_base"):
            base, linear = hp["local_base"], 1.0
        else:
            base, linear = hp["base"], hp.get("linear", 1.0)
        rk = dict(n_rot=hp.get("n_rot"), ext=ext, mscale=hp.get("mscale", 1.0), yarn=hp.get("yarn"))
        if hp.get("nope", [False] * len(W["layers"]))[li]:
            pass  # SmolLM3: use_rope = no_rope_layers[layer_idx] is 0 here
        elif hp.get("rope") == "adjacent":  # GGUF llama/smollm3: Q/K rows permuted by the converter
            q, k = rope_adjacent(q, pos, base), rope_adjacent(k, pos, base)
        else:
            q, k = rope_rotate_half(q, pos, base, linear, **rk), rope_rotate_half(k, pos, base, linear, **rk)
        o = attention(q, k, v, hp.get("attn_scale", hd ** -0.5), window).reshape(n, H * hd) @ L["wo"].T
        if "post_attn_norm" in L:
            o = norm(o, L["post_attn_norm"])
        x = x + o
        h = norm(x, L["ffn_norm"])
        gate, up = h @ L["w_gate"].T, h @ L["w_up"].T
        act = gelu_tanh(gate) if hp.get("act") == "gelu_tanh" else gate / (1 + np.exp(-gate))
        m = (act * up) @ L["w_down"].T
        if "post_ffn_norm" in L:
            m = norm(m, L["post_ffn_norm"])
        x = x + m
    return norm(x, W["norm"]) @ W["output"].T


# ---- checkpoints -------------------------------------------------------------------

HF_LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "wq": "self_attn.q_proj",
            "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "w_gate": "mlp.gate_proj",
            "w_up": "mlp.up_proj", "w_down": "mlp.down_proj", "q_norm": "self_attn.q_norm",
            "k_norm": "self_attn.k_norm", "wqkv": "self_attn.qkv_proj", "w_gate_up": "mlp.gate_up_proj"}
# Gemma3DecoderLayer: input_layernorm, post_attention_layernorm (on the attention output),
# pre_feedforward_layernorm, post_feedforward_layernorm.
HF_GEMMA_LAYER = dict(HF_LAYER, ffn_norm="pre_feedforward_layernorm", post_attn_norm="post_attention_layernorm",
                      post_ffn_norm="post_feedforward_layernorm")
GGUF_LAYER = {"attn_norm": "attn_norm", "ffn_norm": "ffn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
              "wo": "attn_output", "w_gate": "ffn_gate", "w_up": "ffn_up", "w_down": "ffn_down",
              "q_norm": "attn_q_norm", "k_norm": "attn_k_norm", "post_attn_norm": "post_attention_norm",
              "post_ffn_norm": "post_ffw_norm", "wqkv": "attn_qkv"}
# llama.cpp's phi3: the fused gate+up matrix is ffn_up.
GGUF_PHI3_LAYER = {k: v for k, v in GGUF_LAYER.items() if k not in ("w_up", "w_gate")}
GGUF_PHI3_LAYER["w_gate_up"] = "ffn_up"


def split_fused(L, hp):
    """Phi3: qkv_proj rows are q (heads * head_dim), k, v (kv_heads * head_dim each); gate_up_proj
    rows are gate then up (Phi3MLP: gate, up = chunk(2))."""
    if "wqkv" in L:
        qd, kd = hp["heads"] * hp["head_dim"], hp["kv_heads"] * hp["head_dim"]
        w = L.pop("wqkv")
        L["wq"], L["wk"], L["wv"] = w[:qd], w[qd:qd + kd], w[qd + kd:]
        w = L.pop("w_gate_up")
        L["w_gate"], L["w_up"] = w[:w.shape[0] // 2], w[w.shape[0] // 2:]


def layer_windows(n_layers, window, pattern):
    """Gemma3: layer i is sliding unless (i + 1) % pattern == 0; pattern 0: every layer (Mistral)."""
    return [window if window and (not pattern or (i + 1) % pattern) else 0 for i in range(n_layers)]


def load_hf(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    t = read_safetensors(os.path.join(d, "model.safetensors"))
    emb = t["model.embed_tokens.weight"]
    gemma = cfg["model_type"] == "gemma3_text"
    names = HF_GEMMA_LAYER if gemma else HF_LAYER
    W = {"embed": emb, "output": t.get("lm_head.weight", emb), "norm": t["model.norm.weight"], "layers": []}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W["layers"].append({r: t[p + n + ".weight"] for r, n in names.items() if p + n + ".weight" in t})
    H = cfg["num_attention_heads"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // H)
    hp = {"heads": H, "kv_heads": cfg["num_key_value_heads"], "head_dim": hd,
          "eps": cfg["rms_norm_eps"], "base": cfg["rope_theta"]}
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "linear":
        hp["linear"] = rs["factor"]
    if gemma:  # Gemma3TextScaledWordEmbedding, Gemma3RMSNorm (1 + w), gelu_pytorch_tanh, query_pre_attn_scalar
        hp.update(norm_offset=1.0, embed_scale=cfg["hidden_size"] ** 0.5, act="gelu_tanh",
                  attn_scale=cfg["query_pre_attn_scalar"] ** -0.5, local_base=cfg["rope_local_base_freq"],
                  windows=layer_windows(cfg["num_hidden_layers"], cfg["sliding_window"],
                                        cfg["sliding_window_pattern"]))
    elif cfg.get("sliding_window"):
        hp["windows"] = layer_windows(cfg["num_hidden_layers"], cfg["sliding_window"], 0)
    if cfg["model_type"] == "phi3":  # Phi3: partial rotary, LongRoPE (transformers' _compute_longrope_parameters)
        hp["n_rot"] = int(hd * cfg.get("partial_rotary_factor", 1.0))
        if rs.get("rope_type") in ("longrope", "su"):
            orig = cfg["original_max_position_embeddings"]
            scale = cfg["max_position_embeddings"] / orig
            hp.update(long=rs["long_factor"], short=rs["short_factor"], orig=orig,
                      mscale=np.sqrt(1 + np.log(scale) / np.log(orig)) if scale > 1 else 1.0)
    if rs.get("rope_type") == "yarn":  # factor as given (llama.cpp's reading too), attention_factor 0.1 ln f + 1
        hp["yarn"] = dict(factor=rs["factor"], orig=rs.get("original_max_position_embeddings",
                                                          cfg["max_position_embeddings"]),
                          beta_fast=rs.get("beta_fast", 32.0), beta_slow=rs.get("beta_slow", 1.0))
        hp["mscale"] = rs.get("attention_factor", 0.1 * np.log(rs["factor"]) + 1)
    if cfg["model_type"] == "smollm3":  # SmolLM3Config: no_rope_layers from no_rope_layer_interval
        step = cfg.get("no_rope_layer_interval", 4)
        hp["nope"] = [not flag for flag in cfg.get("no_rope_layers",
                                                 [int((i + 1) % step != 0) for i in range(cfg["num_hidden_layers"])])]
    for L in W["layers"]:
        split_fused(L, hp)
    return W, hp


def load_gguf(path):
    """llama.cpp's conventions: gemma3 norms stored as 1 + w, local layers every one but each
    sliding_window_pattern-th (default 6) with rope.freq_base_swa (default 10000)."""
    meta, t = read_gguf(path)
    a = meta["general.architecture"]
    emb = t["token_embd.weight"]
    W = {"embed": emb, "output": t.get("output.weight", emb), "norm": t["output_norm.weight"], "layers": []}
    names = GGUF_PHI3_LAYER if a == "phi3" else GGUF_LAYER
    for i in range(meta[a + ".block_count"]):
        p = f"blk.{i}."
        W["layers"].append({r: t[p + n + ".weight"] for r, n in names.items() if p + n + ".weight" in t})
    H = meta[a + ".attention.head_count"]
    hd = meta.get(a + ".attention.key_length", meta[a + ".embedding_length"] // H)
    hp = {"heads": H, "kv_heads": meta[a + ".attention.head_count_kv"], "head_dim": hd,
          "eps": meta[a + ".attention.layer_norm_rms_epsilon"], "base": meta[a + ".rope.freq_base"]}
    if meta.get(a + ".rope.scaling.type") == "linear":
        hp["linear"] = meta[a + ".rope.scaling.factor"]
    window = meta.get(a + ".attention.sliding_window", 0)
    if a == "gemma3":
        hp.update(embed_scale=meta[a + ".embedding_length"] ** 0.5, act="gelu_tanh",
                  attn_scale=meta.get(a + ".attention.query_pre_attn_scalar", hd) ** -0.5,
                  local_base=meta.get(a + ".rope.freq_base_swa", 10000.0),
                  windows=layer_windows(meta[a + ".block_count"], window,
                                        meta.get(a + ".attention.sliding_window_pattern", 6)))
    elif window:
        hp["windows"] = layer_windows(meta[a + ".block_count"], window, 0)
    hp["n_rot"] = meta.get(a + ".rope.dimension_count", hd)
    if meta.get(a + ".rope.scaling.type") == "yarn":
        hp["yarn"] = dict(factor=meta[a + ".rope.scaling.factor"],
                          orig=meta[a + ".rope.scaling.original_context_length"],
                          beta_fast=meta.get(a + ".rope.scaling.yarn_beta_fast", 32.0),
                          beta_slow=meta.get(a + ".rope.scaling.yarn_beta_slow", 1.0))
        hp["mscale"] = meta.get(a + ".rope.scaling.attn_factor", 0.1 * np.log(hp["yarn"]["factor"]) + 1)
    if a in ("llama", "smollm3"):
        hp["rope"] = "adjacent"
    if a == "smollm3":  # llama.cpp: n_no_rope_layer_step = 4, (il + 1) % 4 == 0 skips RoPE
        step = meta.get(a + ".no_rope_layer_step", 4)
        hp["nope"] = [(i + 1) % step == 0 for i in range(meta[a + ".block_count"])]
    if "rope_factors_long.weight" in t:
        hp.update(long=t["rope_factors_long.weight"], short=t["rope_factors_short.weight"],
                  orig=meta[a + ".rope.scaling.original_context_length"],
                  mscale=meta.get(a + ".rope.scaling.attn_factor", 1.0))
    for L in W["layers"]:
        split_fused(L, hp)
    return W, hp


def synth_hf(d, cfg, extra_layer=()):
    """A random checkpoint of config cfg with tinystories656K's tokenizer.
    extra_layer: (hf suffix, shape) tensors each layer has beyond llama's."""
    src = os.path.join(ASSETS, "models", "tinystories656K")
    os.makedirs(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(src, f), d)
    V, D, FF = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", D // H)
    rng = np.random.default_rng(11)
    r = lambda *shape, s=0.3: rng.uniform(-s, s, shape)
    t = {"model.embed_tokens.weight": r(V, D, s=1.0), "model.norm.weight": 1 + r(D, s=0.2)}
    if not cfg.get("tie_word_embeddings"):
        t["lm_head.weight"] = r(V, D)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + r(D, s=0.2)
        t[p + "post_attention_layernorm.weight"] = 1 + r(D, s=0.2)
        if cfg["model_type"] == "gemma3_text":
            t[p + "pre_feedforward_layernorm.weight"] = r(D, s=0.5)
            t[p + "post_feedforward_layernorm.weight"] = r(D, s=0.5)
        q, k, v = r(H * hd, D, s=0.5), r(KV * hd, D, s=0.5), r(KV * hd, D)
        if cfg["model_type"] == "phi3":
            t[p + "self_attn.qkv_proj.weight"] = np.concatenate([q, k, v])
            t[p + "mlp.gate_up_proj.weight"] = r(2 * FF, D)
        else:
            t[p + "self_attn.q_proj.weight"], t[p + "self_attn.k_proj.weight"] = q, k
            t[p + "self_attn.v_proj.weight"] = v
            t[p + "mlp.gate_proj.weight"] = r(FF, D)
            t[p + "mlp.up_proj.weight"] = r(FF, D)
        t[p + "self_attn.o_proj.weight"] = r(D, H * hd)
        t[p + "mlp.down_proj.weight"] = r(D, FF)
        for name, shape in extra_layer:
            t[p + name] = 1 + r(*shape, s=0.5)
    write_safetensors(os.path.join(d, "model.safetensors"), t, "F32")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def rel_err(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def check_arch(name, tmp, cfg, extra_layer=(), run_args=(), n_ctx=0):
    """The three comparisons of the module docstring for one architecture (context n_ctx, 0 = the model's)."""
    hf = os.path.join(tmp, name)
    if not os.path.isdir(hf):
        synth_hf(hf, cfg, extra_layer)
    gguf = os.path.join(tmp, name + ".gguf")
    run_args = tuple(run_args) + (("-c", str(n_ctx)) if n_ctx else ())
    tag = f"_ctx{n_ctx}" if n_ctx else ""
    n_ctx = n_ctx or cfg["max_position_embeddings"]
    r = subprocess.run([BIN, "convert", hf, "-o", gguf, "--type", "f32"], capture_output=True)
    if r.returncode != 0:
        print(f"FAIL arch_{name}_convert\n  {r.stderr.decode(errors='replace')}", flush=True)
        return
    results = {}
    # The converted tokenizer does not prepend the '▁' that tokenizer.json's
    # normalizer does (convert's add_space_prefix = false), so the GGUF run
    # gets it written out: both runs then see the same ids (checked below).
    for fmt, path, loader, prompt in (("hf", hf, load_hf, PROMPT), ("gguf", gguf, load_gguf, " " + PROMPT)):
        try:
            ids, got = engine_logits(path, prompt, run_args)
        except RuntimeError as e:
            print(f"FAIL arch_{name}_{fmt}\n  {e}", flush=True)
            return
        W, hp = loader(path)
        want = forward(W, ids, hp, n_ctx)
        err = rel_err(got, want)
        results[fmt] = ids, got
        ok = len(ids) > 8 and got.shape == want.shape and err <= REL_TOL
        print(f"  {name} {fmt}: {len(ids)} tokens, max |logit - reference| / max |reference| = {err:.3g} "
              f"(tolerance {REL_TOL})", file=sys.stderr, flush=True)
        print(f"{'PASS' if ok else 'FAIL'} arch_{name}_{fmt}{tag}", flush=True)
    (ids_hf, hf_logits), (ids_gguf, gguf_logits) = results["hf"], results["gguf"]
    if not np.array_equal(ids_hf, ids_gguf):
        print(f"FAIL arch_{name}_convert_same_logits\n  token ids differ: {ids_hf} vs {ids_gguf}", flush=True)
        return
    err = rel_err(gguf_logits, hf_logits)
    print(f"  {name}: converted GGUF vs HF directory, relative {err:.3g}", file=sys.stderr, flush=True)
    print(f"{'PASS' if err <= REL_TOL else 'FAIL'} arch_{name}_convert_same_logits{tag}", flush=True)


POLICIES = ("fp32", "fp16", "q8_0", "q4_0", "h2o", "kivi", "zipcache", "uniform", "mikv")


def check_window_policies(tmp):
    """Sliding-window layers under every KV policy (the mistral checkpoint of main(): window 7 on every
    layer; src/kv/kv_window.c). -b 1 feeds the prompt a token at a time as decode steps do, past the
    window: fp32 matches this reference, and every policy under --kv-local exact gives exactly the fp16
    policy's logits (no layer reaches the policy: local layers are stored in fp16 and attended within
    their window). Under --kv-local compress (the default) zipcache, uniform and mikv compress the
    local layers themselves: they run and their logits move."""
    d = os.path.join(tmp, "mistral")
    if not os.path.isdir(d):
        print("SKIP arch_window_policies: no mistral checkpoint", flush=True)
        return
    W, hp = load_hf(d)
    ids, got = engine_logits(d, PROMPT, ("-b", "1"))
    err = rel_err(got, forward(W, ids, hp))
    print(f"  mistral -b 1 (decode steps past the window of 7): relative {err:.3g}", file=sys.stderr, flush=True)
    print(f"{'PASS' if err <= REL_TOL and len(ids) > 14 else 'FAIL'} arch_window_decode_steps", flush=True)
    base = None
    bad = []
    for kv in POLICIES[1:]:
        try:
            _, got = engine_logits(d, PROMPT, ("-b", "3", "--kv", kv, "--kv-local", "exact"))
        except RuntimeError as e:
            bad.append(f"{kv}: {e}")
            continue
        if base is None:
            base = got
        elif not np.array_equal(got, base):
            bad.append(f"{kv}: differs from fp16 by {rel_err(got, base):.3g}")
    for kv in ("zipcache", "uniform", "mikv"):
        try:
            _, got = engine_logits(d, PROMPT, ("-b", "3", "--kv", kv, "--kv-stream-gap", "4"))
        except RuntimeError as e:
            bad.append(f"{kv}, local layers compressed: {e}")
            continue
        if base is not None and np.array_equal(got, base):
            bad.append(f"{kv}, local layers compressed: the fp16 logits (the local layers were not compressed)")
    err = rel_err(base, forward(W, ids, hp)) if base is not None else 1.0
    print(f"  every policy on window-only layers: fp16 vs reference {err:.3g}", file=sys.stderr, flush=True)
    ok = not bad and err < 1e-2
    print(f"{'PASS' if ok else 'FAIL'} arch_window_every_policy", flush=True)
    if bad:
        print("  " + "\n  ".join(bad), file=sys.stderr)


def check_unsupported(tmp):
    """Another architecture is refused naming it and the supported list: HF model_type 'falcon', and
    a GGUF whose general.architecture (and its keys) say 'llamb' (the converted qwen3 file, patched)."""
    hf = os.path.join(tmp, "falcon")
    synth_hf(hf, base_cfg("falcon", "FalconForCausalLM"))
    r = subprocess.run([BIN, "run", "-m", hf, "-n", "1"], capture_output=True)
    ok = r.returncode == 1 and b"model_type 'falcon' is not supported (llama, mistral, qwen2, qwen3, gemma3_text, " \
        b"phi3, smollm3)" in r.stderr
    print(f"{'PASS' if ok else 'FAIL'} arch_unsupported_hf", flush=True)
    if not ok:
        print(f"  exit {r.returncode}: {r.stderr.decode(errors='replace')}", file=sys.stderr)
    src = os.path.join(tmp, "qwen3.gguf")
    if not os.path.exists(src):
        print("SKIP arch_unsupported_gguf: no converted qwen3 GGUF", flush=True)
        return
    bad = os.path.join(tmp, "llamb.gguf")
    with open(src, "rb") as f, open(bad, "wb") as g:
        g.write(f.read().replace(b"qwen3", b"llamb"))
    r = subprocess.run([BIN, "run", "-m", bad, "-n", "1"], capture_output=True)
    ok = r.returncode == 1 and b"architecture 'llamb' is not supported (llama, qwen2, qwen3, gemma3, phi3, smollm3)" \
        in r.stderr
    print(f"{'PASS' if ok else 'FAIL'} arch_unsupported_gguf", flush=True)
    if not ok:
        print(f"  exit {r.returncode}: {r.stderr.decode(errors='replace')}", file=sys.stderr)


def base_cfg(model_type, arch_class, **kw):
    cfg = {"architectures": [arch_class], "model_type": model_type, "hidden_size": 64, "intermediate_size": 96,
           "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2,
           "vocab_size": 2048, "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "attention_bias": False}
    cfg.update(kw)
    return cfg


def main():
    if not os.path.isdir(os.path.join(ASSETS, "models", "tinystories656K")):
        print("SKIP arch_ref: models/tinystories656K (its tokenizer) not found")
        return
    if not os.path.exists(BIN):
        print(f"FAIL arch_ref: {BIN} not built")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # gemma3: head_dim 32 (not 64 / 4), query_pre_attn_scalar 24 (not head_dim), 4 layers alternating
        # local (window 6, base 10000) and global (base 1e6, linear RoPE scaling 4); -b 5 splits the prompt.
        hd = 32
        check_arch("gemma3", tmp, base_cfg("gemma3_text", "Gemma3ForCausalLM", head_dim=hd, num_hidden_layers=4,
                                           query_pre_attn_scalar=24, sliding_window=6, sliding_window_pattern=2,
                                           rope_local_base_freq=10000.0, rope_theta=1000000.0,
                                           rope_scaling={"rope_type": "linear", "factor": 4.0},
                                           hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True),
                   (("self_attn.q_norm.weight", (hd,)), ("self_attn.k_norm.weight", (hd,))), ("-b", "5"))
        # phi3 as Phi-4-mini: fused qkv_proj / gate_up_proj, partial_rotary_factor 0.75 (12 of 16 channels),
        # LongRoPE (short factors at a context of 64 = original_max_position_embeddings, long ones at 512,
        # attention_factor sqrt(1 + ln 8 / ln 64)), tied embeddings.
        half = 6
        rng = np.random.default_rng(5)
        phi = base_cfg("phi3", "Phi3ForCausalLM", partial_rotary_factor=0.75, original_max_position_embeddings=64,
                       rope_scaling={"rope_type": "longrope", "long_factor": list(rng.uniform(1, 8, half)),
                                     "short_factor": list(rng.uniform(1, 2, half))},
                       tie_word_embeddings=True, rms_norm_eps=1e-5)
        del phi["head_dim"]  # Phi3Config has none: hidden_size / heads
        check_arch("phi3", tmp, phi, (), ("-b", "6"), n_ctx=64)
        check_arch("phi3", tmp, phi, (), (), n_ctx=512)
        # smollm3: 4 layers, the 4th without RoPE; the GGUF is permuted to adjacent pairs like llama's.
        smol = base_cfg("smollm3", "SmolLM3ForCausalLM", num_hidden_layers=4, rope_theta=5000000.0,
                        tie_word_embeddings=True, no_rope_layer_interval=4)
        del smol["head_dim"]
        check_arch("smollm3", tmp, smol, (), ("-b", "4"))
        # mistral: llama with a sliding window of 7 on every layer (GGUF arch llama).
        mistral = base_cfg("mistral", "MistralForCausalLM", sliding_window=7, rope_theta=1000000.0)
        del mistral["head_dim"]
        check_arch("mistral", tmp, mistral, (), ("-b", "9"))
        check_window_policies(tmp)
        # qwen3 with YaRN as Qwen3's long-context configs (factor 4 over an original context of 64; positions
        # of the prompt rotate through the ramp since base 10000 is small).
        check_arch("qwen3_yarn", tmp, base_cfg("qwen3", "Qwen3ForCausalLM", head_dim=32, rope_theta=10000.0,
                                               rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                             "original_max_position_embeddings": 64}),
                   (("self_attn.q_norm.weight", (32,)), ("self_attn.k_norm.weight", (32,))))
        # qwen3: head_dim 32 is not hidden_size / heads (as Qwen3-0.6B: 1024 / 16 heads, head_dim 128); tied.
        hd = 32
        check_arch("qwen3", tmp, base_cfg("qwen3", "Qwen3ForCausalLM", head_dim=hd, rope_theta=1000000.0,
                                          tie_word_embeddings=True),
                   (("self_attn.q_norm.weight", (hd,)), ("self_attn.k_norm.weight", (hd,))), ("-b", "7"))
        check_unsupported(tmp)


if __name__ == "__main__":
    main()
