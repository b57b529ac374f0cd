#!/usr/bin/env python3
"""Independent numpy reference of the Llama forward pass.

The weights are read here with numpy from the files themselves (a minimal
safetensors reader and a minimal GGUF reader written from the formats, not
from zipcache's C), the forward pass is computed in float64 the way the
model was trained:

  * tinystories656K (Hugging Face): RoPE as transformers' rotate_half,
    q*cos + rotate_half(q)*sin with cos/sin = cat(freqs, freqs);
  * stories260K (GGUF): RoPE on adjacent channel pairs, as llama.cpp.

The C engine's logits for every prompt position come from
`zipcache run --dump-logits FILE` (fp32 KV cache so that only fp32
arithmetic separates the two) and must match to 1e-4.

Two synthetic Hugging Face checkpoints written here with numpy (random
weights, tinystories656K's tokenizer) cover what the real models do not:
qwen2 with Q/K/V biases and bf16 weights, and llama with f16 weights and
Llama 3 RoPE scaling, computed here from transformers' formula.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

ASSETS = os.environ.get("ZIPCACHE_ASSETS") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
BUILD = os.environ.get("ZIPCACHE_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
BIN = os.environ.get("ZIPCACHE_BIN") or os.path.join(BUILD, "zipcache")
TOL = 1e-4


# ---- readers ------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    data = 8 + n
    dtypes = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        a = np.frombuffer(raw[data + b:data + e], dtype=dtypes[t["dtype"]])
        if t["dtype"] == "BF16":  # the high half of an fp32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(t["shape"]).astype(np.float64)
    return out


def write_safetensors(path, tensors, dtype):
    """tensors: name -> float array; stored as F32, F16 or BF16 (round to nearest even)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        if dtype == "BF16":
            u = a32.view(np.uint32).astype(np.uint64)
            raw = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
        else:
            raw = a32.astype({"F32": "<f4", "F16": "<f2"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # keep the data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_gguf(path):
    """Metadata (scalars and string arrays) and F32 tensors of a GGUF v2/v3 file."""
    with open(path, "rb") as f:
        raw = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, raw, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string():
        n = take("<Q")
        nonlocal pos
        s = raw[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert raw[:4] == b"GGUF"
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    assert version in (2, 3)
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        typ, off = take("<I"), take("<Q")
        infos.append((name, ne, typ, off))
    align = meta.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        assert typ == 0, "this reference reads F32 tensors only"
        count = int(np.prod(ne))
        a = np.frombuffer(raw[data + off:data + off + 4 * count], dtype="<f4").astype(np.float64)
        tensors[name] = a.reshape(list(reversed(ne)))  # ggml ne[0] is the contiguous (last) axis
    return meta, tensors


# ---- the model -------------------------------------------------------------------

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_rotate_half(x, pos, base):
    """x [n, heads, hd]; transformers' apply_rotary_pos_emb."""
    hd = x.shape[-1]
    inv = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    freqs = np.outer(pos, inv)                      # [n, hd/2]
    emb = np.concatenate([freqs, freqs], axis=-1)   # [n, hd]
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    rot = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], axis=-1)
    return x * cos + rot * sin


def llama3_inv_freq(hd, base, rs):
    """transformers' _compute_llama3_parameters."""
    inv = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    wavelen = 2 * np.pi / inv
    out = np.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
    return np.where(medium, smoothed, out)


def rope_rotate_half_scaled(rs):
    def rope(x, pos, base):
        hd = x.shape[-1]
        freqs = np.outer(pos, llama3_inv_freq(hd, base, rs))
        emb = np.concatenate([freqs, freqs], axis=-1)
        cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
        rot = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], axis=-1)
        return x * cos + rot * sin
    return rope


def rope_adjacent(x, pos, base):
    """x [n, heads, hd]; pairs (2i, 2i+1) rotated by pos * base^(-2i/hd)."""
    hd = x.shape[-1]
    inv = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.outer(pos, inv)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * np.cos(ang) - b * np.sin(ang)
    out[..., 1::2] = a * np.sin(ang) + b * np.cos(ang)
    return out


def forward(W, ids, hp, rope):
    """W: dict of role -> matrix [out, in] / vector; returns logits [n, vocab]."""
    n = len(ids)
    H, KV, hd, eps = hp["heads"], hp["kv_heads"], hp["head_dim"], hp["eps"]
    pos = np.arange(n, dtype=np.float64)
    x = W["embed"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for L in W["layers"]:
        h = rmsnorm(x, L["attn_norm"], eps)
        q = (h @ L["wq"].T + L.get("bq", 0)).reshape(n, H, hd)
        k = (h @ L["wk"].T + L.get("bk", 0)).reshape(n, KV, hd)
        v = (h @ L["wv"].T + L.get("bv", 0)).reshape(n, KV, hd)
        q, k = rope(q, pos, hp["base"]), rope(k, pos, hp["base"])
        att = np.empty((n, H, hd))
        for head in range(H):
            g = head // (H // KV)
            s = q[:, head, :] @ k[:, g, :].T / np.sqrt(hd) + mask
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            att[:, head, :] = p @ v[:, g, :]
        x = x + att.reshape(n, H * hd) @ L["wo"].T
        h = rmsnorm(x, L["ffn_norm"], eps)
        gate, up = h @ L["w_gate"].T, h @ L["w_up"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ L["w_down"].T
    return rmsnorm(x, W["norm"], eps) @ W["output"].T


def load_hf(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    t = read_safetensors(os.path.join(d, "model.safetensors"))
    out = t.get("lm_head.weight")
    emb = t.get("model.embed_tokens.weight", out)
    W = {"embed": emb, "output": out if out is not None else emb, "norm": t["model.norm.weight"], "layers": []}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W["layers"].append({
            "attn_norm": t[p + "input_layernorm.weight"], "ffn_norm": t[p + "post_attention_layernorm.weight"],
            "wq": t[p + "self_attn.q_proj.weight"], "wk": t[p + "self_attn.k_proj.weight"],
            "wv": t[p + "self_attn.v_proj.weight"], "wo": t[p + "self_attn.o_proj.weight"],
            "w_gate": t[p + "mlp.gate_proj.weight"], "w_up": t[p + "mlp.up_proj.weight"],
            "w_down": t[p + "mlp.down_proj.weight"]})
        for b in "qkv":
            if p + f"self_attn.{b}_proj.bias" in t:
                W["layers"][-1]["b" + b] = t[p + f"self_attn.{b}_proj.bias"]
    H = cfg["num_attention_heads"]
    hp = {"heads": H, "kv_heads": cfg.get("num_key_value_heads", H), "head_dim": cfg["hidden_size"] // H,
          "eps": cfg["rms_norm_eps"], "base": cfg.get("rope_theta", 10000.0)}
    return W, hp


def load_gguf(path):
    meta, t = read_gguf(path)
    a = meta["general.architecture"]
    W = {"embed": t["token_embd.weight"], "output": t.get("output.weight", t["token_embd.weight"]),
         "norm": t["output_norm.weight"], "layers": []}
    for i in range(meta[a + ".block_count"]):
        p = f"blk.{i}."
        W["layers"].append({
            "attn_norm": t[p + "attn_norm.weight"], "ffn_norm": t[p + "ffn_norm.weight"],
            "wq": t[p + "attn_q.weight"], "wk": t[p + "attn_k.weight"], "wv": t[p + "attn_v.weight"],
            "wo": t[p + "attn_output.weight"], "w_gate": t[p + "ffn_gate.weight"], "w_up": t[p + "ffn_up.weight"],
            "w_down": t[p + "ffn_down.weight"]})
    H = meta[a + ".attention.head_count"]
    hp = {"heads": H, "kv_heads": meta.get(a + ".attention.head_count_kv", H),
          "head_dim": meta[a + ".embedding_length"] // H, "eps": meta[a + ".attention.layer_norm_rms_epsilon"],
          "base": meta.get(a + ".rope.freq_base", 10000.0)}
    return W, hp


def engine_logits(model, prompt, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "logits.bin")
        cmd = [BIN, "run", "-m", model, "-p", prompt, "-n", "0", "--temp", "0", "--kv", "fp32",
               "--dump-logits", dump, *extra]
        r = subprocess.run(cmd, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
        raw = open(dump, "rb").read()
    n, vocab = struct.unpack_from("<ii", raw, 0)
    ids = np.frombuffer(raw, dtype="<i4", count=n, offset=8)
    logits = np.frombuffer(raw, dtype="<f4", offset=8 + 4 * n).reshape(n, vocab)
    return ids, logits


def check(name, model_path, loader, rope, prompt, extra=()):
    if not os.path.exists(model_path):
        print(f"SKIP {name}: {model_path} not found")
        return
    if not os.path.exists(BIN):
        print(f"FAIL {name}: {BIN} not built")
        return
    W, hp = loader(model_path)
    ids, got = engine_logits(model_path, prompt, extra)
    want = forward(W, ids, hp, rope)
    err = np.max(np.abs(got - want))
    ok = len(ids) > 8 and got.shape == want.shape and err <= TOL
    print(f"  {name}: {len(ids)} tokens, max |logit - reference| = {err:.3g} (tolerance {TOL})", file=sys.stderr,
          flush=True)
    print(f"{'PASS' if ok else 'FAIL'} {name}", flush=True)


def synth_hf(d, model_type, dtype, biases, rope_scaling, drop=()):
    """A random 2-layer checkpoint (GQA 4/2, head_dim 16) with tinystories656K's tokenizer."""
    src = os.path.join(ASSETS, "models", "tinystories656K")
    os.makedirs(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(src, f), d)
    V, D, FF, H, KV, L = 2048, 64, 96, 4, 2, 2
    hd = D // H
    rng = np.random.default_rng(7)
    r = lambda *shape, s=0.3: rng.uniform(-s, s, shape)
    t = {"model.embed_tokens.weight": r(V, D, s=1.0), "lm_head.weight": r(V, D), "model.norm.weight": 1 + r(D, s=0.2)}
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + r(D, s=0.2)
        t[p + "post_attention_layernorm.weight"] = 1 + r(D, s=0.2)
        t[p + "self_attn.q_proj.weight"] = r(H * hd, D)
        t[p + "self_attn.k_proj.weight"] = r(KV * hd, D)
        t[p + "self_attn.v_proj.weight"] = r(KV * hd, D)
        t[p + "self_attn.o_proj.weight"] = r(D, H * hd)
        t[p + "mlp.gate_proj.weight"] = r(FF, D)
        t[p + "mlp.up_proj.weight"] = r(FF, D)
        t[p + "mlp.down_proj.weight"] = r(D, FF)
        if biases:
            for b, n in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
                t[p + f"self_attn.{b}_proj.bias"] = r(n, s=0.5)
    write_safetensors(os.path.join(d, "model.safetensors"), {k: v for k, v in t.items() if k not in drop}, dtype)
    cfg = {"architectures": ["Qwen2ForCausalLM" if model_type == "qwen2" else "LlamaForCausalLM"],
           "model_type": model_type, "hidden_size": D, "intermediate_size": FF, "num_attention_heads": H,
           "num_key_value_heads": KV, "num_hidden_layers": L, "vocab_size": V, "max_position_embeddings": 256,
           "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False, "bos_token_id": 1,
           "eos_token_id": 2, "attention_bias": biases, "rope_scaling": rope_scaling}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


PROMPT = "Once upon a time, there was a little dog named Max. Max liked to run in the big green park with his friend."


def main():
    # Only as a script: tests/py/test_retrieval_tools.py imports the reference functions above.
    check("forward_hf_tinystories656K", os.path.join(ASSETS, "models", "tinystories656K"), load_hf, rope_rotate_half, PROMPT)
    # -b 5: several prefill batches, so chunking is compared too.
    check("forward_gguf_stories260K_batched", os.path.join(ASSETS, "models", "stories260K", "stories260K.gguf"),
          load_gguf, rope_adjacent, PROMPT, ("-b", "5"))

    if not os.path.isdir(os.path.join(ASSETS, "models", "tinystories656K")):
        print("SKIP forward_hf_synthetic: models/tinystories656K (its tokenizer) not found")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            qwen = os.path.join(tmp, "qwen2")
            synth_hf(qwen, "qwen2", "BF16", True, None)
            check("forward_hf_synth_qwen2_bf16_biases", qwen, load_hf, rope_rotate_half, PROMPT, ("-b", "16"))
            rs = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 64}
            llama3 = os.path.join(tmp, "llama3")
            synth_hf(llama3, "llama", "F16", False, rs)
            check("forward_hf_synth_llama3_rope_scaling_f16", llama3, load_hf, rope_rotate_half_scaled(rs), PROMPT)
            # Untied embeddings (tie_word_embeddings false) without lm_head: refused, exit 1.
            untied = os.path.join(tmp, "untied")
            synth_hf(untied, "llama", "F32", False, None, drop=("lm_head.weight",))
            r = subprocess.run([BIN, "run", "-m", untied, "-n", "1"], capture_output=True)
            ok = r.returncode == 1 and b"tensor 'lm_head.weight' is missing" in r.stderr
            print(f"{'PASS' if ok else 'FAIL'} hf_untied_without_lm_head", flush=True)
            if not ok:
                print(f"  exit {r.returncode}: {r.stderr.decode(errors='replace')}", file=sys.stderr)


if __name__ == "__main__":
    main()
