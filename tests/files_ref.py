#!/usr/bin/env python3
"""Independent references for the model-file commands (tests/test_cli_files.sh).

Reads GGUF and safetensors with struct/numpy only (no code shared with the C
reader), builds small Hugging Face checkpoints, and checks what
`zipcache convert` / `zipcache synth` wrote:

  check-llama  HF_DIR OUT.gguf TYPE     llama HF -> GGUF (RoPE permutation as
                                        llama.cpp: reshape(n_head, 2, hd/2, ...)
                                        .swapaxes(1, 2)), tokenizer metadata
  make-llama3  DIR                      tiny untied llama with an explicit head_dim,
                                        llama3 rope_scaling and <0xXX> byte tokens
  make-qwen2   DIR                      tiny qwen2 checkpoint: F16 + BF16
                                        tensors, byte-level BPE tokenizer.json
  check-qwen2  HF_DIR OUT.gguf          qwen2 HF -> GGUF f32 (biases, no permutation)
  check-requant SRC.gguf OUT.gguf TYPE  GGUF -> GGUF requantization
  check-synth  OUT.gguf SHAPE_JSON      synth layout, types, vocab, value scale
  decode       TOKENIZER_JSON ID...     text of token ids (SentencePiece-style
                                        ByteFallback decoder, leading space stripped)
Exit status 0 when the check holds; otherwise a message on stderr and 1.
"""
import json
import os
import struct
import sys

import numpy as np

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
F32, F16, Q4_0, Q8_0, BF16 = 0, 1, 2, 8, 30
TYPE_NAMES = {"f32": F32, "f16": F16, "q4_0": Q4_0, "q8_0": Q8_0, "bf16": BF16}


def fail(msg):
    sys.stderr.write("files_ref: " + msg + "\n")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- GGUF ------------------------------------------------------------------

def read_gguf(path):
    b = open(path, "rb").read()
    magic, version, n_t, n_kv = struct.unpack_from("<4sIQQ", b, 0)
    check(magic == b"GGUF" and version in (2, 3), "%s: not GGUF v2/v3" % path)
    off = 24

    def rstr():
        nonlocal off
        (n,) = struct.unpack_from("<Q", b, off)
        s = b[off + 8: off + 8 + n].decode("utf-8")
        off += 8 + n
        return s

    def rval(t):
        nonlocal off
        if t == 8:
            return rstr()
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, off)
            off += 12
            if et in GGUF_SCALARS and et != 7:
                fmt = GGUF_SCALARS[et]
                a = np.frombuffer(b, dtype=np.dtype(fmt), count=n, offset=off)
                off += a.nbytes
                return a
            return [rval(et) for _ in range(n)]
        fmt = GGUF_SCALARS[t]
        (v,) = struct.unpack_from(fmt, b, off)
        off += struct.calcsize(fmt)
        return v

    kv, types = {}, {}
    for _ in range(n_kv):
        k = rstr()
        (t,) = struct.unpack_from("<I", b, off)
        off += 4
        kv[k] = rval(t)
        types[k] = t
    infos = []
    for _ in range(n_t):
        name = rstr()
        (nd,) = struct.unpack_from("<I", b, off)
        ne = list(struct.unpack_from("<%dQ" % nd, b, off + 4))
        ttype, toff = struct.unpack_from("<IQ", b, off + 4 + 8 * nd)
        off += 4 + 8 * nd + 12
        infos.append((name, ne, ttype, toff))
    align = kv.get("general.alignment", 32)
    data = (off + align - 1) // align * align
    tensors = {}
    for name, ne, ttype, toff in infos:
        check(toff % align == 0, "%s: tensor %s misaligned" % (path, name))
        rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
        bpr = {F32: ne[0] * 4, F16: ne[0] * 2, BF16: ne[0] * 2, Q8_0: ne[0] // 32 * 34, Q4_0: ne[0] // 32 * 18}[ttype]
        raw = b[data + toff: data + toff + bpr * rows]
        check(len(raw) == bpr * rows, "%s: tensor %s past end" % (path, name))
        tensors[name] = {"ne": ne, "type": ttype, "raw": raw, "shape": tuple(reversed(ne))}
    return kv, types, tensors


def gguf_values(t):
    """Float32 values of a GGUF tensor, shaped [ne1, ne0] (or [ne0])."""
    raw, ty = t["raw"], t["type"]
    if ty == F32:
        v = np.frombuffer(raw, dtype="<f4")
    elif ty == F16:
        v = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif ty == BF16:
        v = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif ty == Q8_0:
        blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("q", "i1", 32)]))
        v = (blk["d"].astype(np.float32)[:, None] * blk["q"].astype(np.float32)).reshape(-1)
    else:
        fail("unexpected tensor type %d" % ty)
    return v.reshape(t["shape"])


def quant_q8_0(x):
    """ggml's quantize_row_q8_0_ref in float32 arithmetic, as bytes."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    y = (x * idv[:, None]).astype(np.float32)
    q = (np.sign(y) * np.floor(np.abs(y) + np.float32(0.5))).astype(np.int8)  # roundf: half away from zero
    out = np.zeros(x.shape[0], dtype=np.dtype([("d", "<f2"), ("q", "i1", 32)]))
    out["d"] = d.astype(np.float16)
    out["q"] = q
    return out.tobytes()


def expect_encoding(t, ref, want, name):
    """The GGUF tensor t holds ref (float32) encoded as `want`, bit for bit."""
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    if t["type"] == F32:
        enc = ref.astype("<f4").tobytes()
    elif t["type"] == F16:
        enc = ref.astype("<f2").tobytes()
    elif t["type"] == Q8_0:
        enc = quant_q8_0(ref)
    else:
        fail("%s: unexpected type %d" % (name, t["type"]))
    check(t["raw"] == enc, "%s: data differs from the reference encoding (type %d)" % (name, t["type"]))
    expect_type = F32 if ref.ndim == 1 else want
    if ref.ndim == 2 and ref.shape[1] % 32 and want in (Q8_0, Q4_0):
        expect_type = F32
    check(t["type"] == expect_type, "%s: type %d, expected %d" % (name, t["type"], expect_type))


# ---- safetensors -----------------------------------------------------------

def read_safetensors(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", b, 0)
    hdr = json.loads(b[8: 8 + n])
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        s, t = e["data_offsets"]
        raw = b[8 + n + s: 8 + n + t]
        if e["dtype"] == "F32":
            v = np.frombuffer(raw, dtype="<f4")
        elif e["dtype"] == "F16":
            v = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif e["dtype"] == "BF16":
            v = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            fail("dtype " + e["dtype"])
        out[name] = v.reshape(e["shape"])
    return out


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, uint8/float array of the raw elements, shape)."""
    hdr, blobs, off = {}, [], 0
    for name, (dtype, raw, shape) in tensors.items():
        raw = raw.tobytes()
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- checks ----------------------------------------------------------------

def llama_permute(w, n_head):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


LAYER_MAP = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
]


def check_metadata(kv, cfg, arch):
    want = {
        "general.architecture": arch,
        arch + ".block_count": cfg["num_hidden_layers"],
        arch + ".context_length": cfg["max_position_embeddings"],
        arch + ".embedding_length": cfg["hidden_size"],
        arch + ".feed_forward_length": cfg["intermediate_size"],
        arch + ".attention.head_count": cfg["num_attention_heads"],
        arch + ".attention.head_count_kv": cfg["num_key_value_heads"],
        arch + ".vocab_size": cfg["vocab_size"],
        arch + ".rope.dimension_count": cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"]),
    }
    if "head_dim" in cfg:
        want[arch + ".attention.key_length"] = cfg["head_dim"]
        want[arch + ".attention.value_length"] = cfg["head_dim"]
    for k, v in want.items():
        check(kv.get(k) == v, "metadata %s = %r, expected %r" % (k, kv.get(k), v))
    check(kv[arch + ".rope.freq_base"] == np.float32(cfg["rope_theta"]), "rope.freq_base")
    check(kv[arch + ".attention.layer_norm_rms_epsilon"] == np.float32(cfg["rms_norm_eps"]), "rms eps")


def check_weights(st, tensors, cfg, want, permute):
    used = set()
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    tied = cfg.get("tie_word_embeddings", False)
    emb = "model.embed_tokens.weight" if "model.embed_tokens.weight" in st else "lm_head.weight"
    pairs = [(emb, "token_embd.weight", None), ("model.norm.weight", "output_norm.weight", None)]
    if not tied:
        pairs.append(("lm_head.weight", "output.weight", None))
    for l in range(cfg["num_hidden_layers"]):
        for hf, gg in LAYER_MAP:
            hn = "model.layers.%d.%s" % (l, hf)
            if hn not in st:
                continue
            heads = None
            if permute and "q_proj" in hf:
                heads = n_head
            if permute and "k_proj" in hf:
                heads = n_kv
            pairs.append((hn, "blk.%d.%s" % (l, gg), heads))
    for hn, gn, heads in pairs:
        check(gn in tensors, "missing GGUF tensor " + gn)
        ref = st[hn] if heads is None else llama_permute(st[hn], heads)
        t = tensors[gn]
        check(t["shape"] == ref.shape, "%s: shape %s vs %s" % (gn, t["shape"], ref.shape))
        expect_encoding(t, ref, want, gn)
        used.add(gn)
    if tied:
        check("output.weight" not in tensors, "tied model must not store output.weight")
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        check_rope_freqs(tensors, cfg)
        used.add("rope_freqs.weight")
    extra = set(tensors) - used
    check(not extra, "unexpected GGUF tensors %s" % sorted(extra))
    return len(pairs)


def check_rope_freqs(tensors, cfg):
    """llama.cpp's Llama 3 factors: frequencies in float32 as torch computes them."""
    rs = cfg["rope_scaling"]
    dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    freqs = np.float32(1) / np.power(np.float32(cfg["rope_theta"]), np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim))
    ctx, lo, hi, factor = rs["original_max_position_embeddings"], rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
    want = []
    for f in freqs:
        wl = 2 * np.pi / float(f)
        if wl < ctx / hi:
            want.append(1.0)
        elif wl > ctx / lo:
            want.append(factor)
        else:
            sm = (ctx / wl - lo) / (hi - lo)
            want.append(1 / ((1 - sm) / factor + sm))
    t = tensors.get("rope_freqs.weight")
    check(t is not None and t["type"] == F32 and t["shape"] == (dim // 2,), "rope_freqs tensor")
    got = gguf_values(t)
    want = np.array(want, dtype=np.float32)
    check(np.allclose(got, want, rtol=1e-6, atol=0), "rope_freqs %s vs %s" % (got, want))
    check(got[0] == 1 and got[-1] == factor and ((got > 1) & (got < factor)).any(), "rope_freqs ends/ramp %s" % got)


def make_llama3(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(3)
    E, H, KV, HD, F, L, V = 64, 4, 2, 32, 96, 1, 300
    cfg = {"model_type": "llama", "hidden_size": E, "intermediate_size": F, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": HD, "vocab_size": V,
           "max_position_embeddings": 4096, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 64},
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": [2]}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))

    def f32(*shape):
        return ("F32", (rng.standard_normal(shape) * 0.05).astype("<f4"), shape)

    t = {"model.embed_tokens.weight": f32(V, E), "lm_head.weight": f32(V, E), "model.norm.weight": f32(E)}
    for l in range(L):
        p = "model.layers.%d." % l
        for hf, shape in [("input_layernorm.weight", (E,)), ("post_attention_layernorm.weight", (E,)),
                          ("self_attn.q_proj.weight", (H * HD, E)), ("self_attn.k_proj.weight", (KV * HD, E)),
                          ("self_attn.v_proj.weight", (KV * HD, E)), ("self_attn.o_proj.weight", (E, H * HD)),
                          ("mlp.gate_proj.weight", (F, E)), ("mlp.up_proj.weight", (F, E)),
                          ("mlp.down_proj.weight", (E, F))]:
            t[p + hf] = f32(*shape)
    write_safetensors(os.path.join(d, "model.safetensors"), t)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    merges = []
    for c in "abcdehlo\u2581":
        vocab.setdefault(c, len(vocab))
    for a, b in [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("\u2581", "hello")]:
        vocab[a + b] = len(vocab)
        merges.append(a + " " + b)
    added = [{"id": i, "content": c, "special": True} for c, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))]
    # BOS through the post-processor, as Llama tokenizer.json files add it (the GGUF's add_bos_token follows)
    tok = {"added_tokens": added, "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]},
           "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                       {"Sequence": {"id": "A", "type_id": 0}}]},
           "model": {"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": True, "unk_token": "<unk>"}}
    json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)


def check_llama(hf_dir, gguf, tname):
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    st = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    kv, types, tensors = read_gguf(gguf)
    check_metadata(kv, cfg, "llama")
    n = check_weights(st, tensors, cfg, TYPE_NAMES[tname], permute=True)
    # Tokenizer: SentencePiece-style conventions documented in cmd_convert.c.
    tok = json.load(open(os.path.join(hf_dir, "tokenizer.json")))
    vocab = tok["model"]["vocab"]
    inv = {i: s for s, i in vocab.items()}
    n_vocab = cfg["vocab_size"]
    check(kv["tokenizer.ggml.model"] == "llama", "tokenizer model")
    check(list(kv["tokenizer.ggml.tokens"]) == [inv.get(i, "[PAD%d]" % i) for i in range(n_vocab)], "tokens")
    score = np.full(n_vocab, -1e9, dtype=np.float32)
    for r, m in enumerate(tok["model"]["merges"]):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        i = vocab.get(a + b)
        if i is not None and score[i] == np.float32(-1e9):
            score[i] = -(r + 1)
    check(np.array_equal(kv["tokenizer.ggml.scores"], score), "scores are not the merge ranks")
    ttype = np.ones(n_vocab, dtype=np.int32)
    for s_, i in vocab.items():
        if len(s_) == 6 and s_.startswith("<0x") and s_.endswith(">"):
            ttype[i] = 6
    for i in range(len(vocab), n_vocab):
        ttype[i] = 5
    for a in tok["added_tokens"]:
        ttype[a["id"]] = 3 if a["special"] else 4
    ttype[vocab[tok["model"]["unk_token"]]] = 2
    check(np.array_equal(kv["tokenizer.ggml.token_type"], ttype), "token types")
    check(kv["tokenizer.ggml.bos_token_id"] == cfg["bos_token_id"], "bos")
    eos = cfg["eos_token_id"]
    check(kv["tokenizer.ggml.eos_token_id"] == (eos[0] if isinstance(eos, list) else eos), "eos")
    check(kv["tokenizer.ggml.add_bos_token"] is True and kv["tokenizer.ggml.add_space_prefix"] is False, "flags")
    ft = {"f32": 0, "f16": 1, "q8_0": 7}[tname]
    check(kv["general.file_type"] == ft, "file_type")
    print("checked %d tensors and the tokenizer" % n)


def bytes_to_unicode():
    # GPT-2's byte -> printable character table
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def make_qwen2(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    E, H, KV, F, L, V = 64, 4, 2, 96, 2, 300
    hd = E // H
    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": E,
           "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
           "vocab_size": V, "max_position_embeddings": 1024, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
           "tie_word_embeddings": True, "bos_token_id": 290, "rope_scaling": None}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    # No eos_token_id in config.json: the converter must find the EOS text
    # (an added token outside the BPE vocab) from tokenizer_config.json.
    json.dump({"eos_token": {"content": "<|im_end|>"}, "add_bos_token": False},
              open(os.path.join(d, "tokenizer_config.json"), "w"))

    def f16(*shape):
        return ("F16", (rng.standard_normal(shape) * 0.05).astype("<f2"), shape)

    def bf16(*shape):
        x = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        return ("BF16", (x.view(np.uint32) >> 16).astype("<u2"), shape)

    t = {"model.embed_tokens.weight": f16(V, E), "model.norm.weight": bf16(E)}
    for l in range(L):
        p = "model.layers.%d." % l
        t[p + "input_layernorm.weight"] = bf16(E)
        t[p + "post_attention_layernorm.weight"] = bf16(E)
        t[p + "self_attn.q_proj.weight"] = f16(H * hd, E)
        t[p + "self_attn.k_proj.weight"] = f16(KV * hd, E)
        t[p + "self_attn.v_proj.weight"] = f16(KV * hd, E)
        t[p + "self_attn.q_proj.bias"] = f16(H * hd)
        t[p + "self_attn.k_proj.bias"] = f16(KV * hd)
        t[p + "self_attn.v_proj.bias"] = f16(KV * hd)
        t[p + "self_attn.o_proj.weight"] = f16(E, H * hd)
        t[p + "mlp.gate_proj.weight"] = f16(F, E)
        t[p + "mlp.up_proj.weight"] = f16(F, E)
        t[p + "mlp.down_proj.weight"] = f16(E, F)
    write_safetensors(os.path.join(d, "model.safetensors"), t)
    b2u = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(b2u)}
    merges = []
    for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]:
        vocab[a + b] = len(vocab)
        merges.append(a + " " + b)
    added = [{"id": 290, "content": "<|endoftext|>", "special": True},
             {"id": 291, "content": "<|im_end|>", "special": True},
             {"id": 292, "content": "<tool>", "special": False}]
    # Qwen2's pre-tokenizer (its regex, then ByteLevel without one): tokenizer.ggml.pre follows it
    qwen2_re = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": qwen2_re}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    tok = {"version": "1.0", "added_tokens": added, "normalizer": {"type": "NFC"},
           "pre_tokenizer": pre, "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": False}}
    json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)


def check_qwen2(hf_dir, gguf):
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    st = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    kv, types, tensors = read_gguf(gguf)
    check_metadata(kv, cfg, "qwen2")
    n = check_weights(st, tensors, cfg, F32, permute=False)
    check("blk.1.attn_k.bias" in tensors, "qwen2 biases")
    tok = json.load(open(os.path.join(hf_dir, "tokenizer.json")))
    check(kv["tokenizer.ggml.model"] == "gpt2" and kv["tokenizer.ggml.pre"] == "qwen2", "gpt2/qwen2 tokenizer")
    check(kv["tokenizer.ggml.merges"] == tok["model"]["merges"], "merges")
    toks = kv["tokenizer.ggml.tokens"]
    inv = {i: s for s, i in tok["model"]["vocab"].items()}
    for a in tok["added_tokens"]:
        inv[a["id"]] = a["content"]
    check(toks == [inv.get(i, "[PAD%d]" % i) for i in range(cfg["vocab_size"])], "tokens")
    tt = kv["tokenizer.ggml.token_type"]
    check(tt[290] == 3 and tt[292] == 4 and tt[0] == 1 and tt[299] == 5, "token types %s" % tt[288:300])
    check(kv["tokenizer.ggml.bos_token_id"] == 290 and kv["tokenizer.ggml.eos_token_id"] == 291, "bos/eos")
    check(kv["tokenizer.ggml.add_bos_token"] is False, "add_bos from tokenizer_config.json")
    print("checked %d tensors and the byte-level tokenizer" % n)


def check_requant(src, out, tname):
    kv0, _, t0 = read_gguf(src)
    kv1, _, t1 = read_gguf(out)
    want = TYPE_NAMES[tname]
    check(set(t0) == set(t1), "tensor sets differ")
    for k, v in kv0.items():
        if k in ("general.file_type", "general.quantization_version"):
            continue
        same = np.array_equal(v, kv1.get(k)) if isinstance(v, np.ndarray) else v == kv1.get(k)
        check(same, "metadata %s not copied" % k)
    check(kv1["general.file_type"] == {"f32": 0, "f16": 1, "q8_0": 7}[tname], "file_type")
    for name in t0:
        expect_encoding(t1[name], gguf_values(t0[name]), want, name)
    print("checked %d tensors" % len(t0))


def check_synth(path, spec):
    s = json.loads(spec)
    kv, _, t = read_gguf(path)
    arch, L = s["arch"], s["layers"]
    check(kv["general.architecture"] == arch and kv[arch + ".block_count"] == L, "arch/layers")
    per_layer = 9 + (3 if s.get("bias") else 0)
    n = 1 + L * per_layer + 1 + (0 if s.get("tied") else 1) + (1 if s.get("rope_freqs") else 0)
    check(len(t) == n, "%d tensors, expected %d" % (len(t), n))
    toks = kv["tokenizer.ggml.tokens"]
    check(toks[:3] == ["<unk>", "<s>", "</s>"] and toks[3] == "<0x00>" and toks[258] == "<0xFF>", "vocab head")
    check(len(toks) == kv[arch + ".vocab_size"] and len(set(toks)) == len(toks), "vocab size/unique")
    tt = kv["tokenizer.ggml.token_type"]
    check(list(tt[:3]) == [2, 3, 3] and all(tt[3:259] == 6) and all(tt[259:] == 5), "token types")
    q = gguf_values(t["blk.0.attn_q.weight"])
    check(abs(float(q.std()) - 0.02) < 0.002 and abs(float(q.mean())) < 0.002, "weights std %g" % q.std())
    check(np.all(gguf_values(t["blk.0.attn_norm.weight"]) == 1.0), "norms are 1")
    check(t["blk.0.attn_norm.weight"]["type"] == F32, "norms F32")
    check(t["blk.0.attn_q.weight"]["type"] == TYPE_NAMES[s["type"]], "weight type")
    print("checked %d tensors" % n)


def decode(tokenizer_json, ids):
    vocab = json.load(open(tokenizer_json))["model"]["vocab"]
    inv = {i: s for s, i in vocab.items()}
    text = "".join(inv[int(i)] for i in ids).replace("\u2581", " ")
    sys.stdout.write(text[1:] if text.startswith(" ") else text)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"check-llama": check_llama, "make-llama3": make_llama3, "make-qwen2": make_qwen2, "check-qwen2": check_qwen2,
     "check-requant": check_requant, "check-synth": check_synth,
     "decode": lambda tj, *ids: decode(tj, ids)}[cmd](*args)


if __name__ == "__main__":
    main()
