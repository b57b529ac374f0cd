#!/usr/bin/env python3
"""Writes the small GGUF seeds of the gguf fuzz target (tests/fuzz/corpus/gguf/seed_*.gguf):
a few hundred bytes to a few KB each, so that the fuzzer runs fast (the real
model files of seeds_gguf.txt are ~1 MB; the replay test still reads those).
Usage: tests/fuzz/make_gguf_seeds.py [OUTDIR]   (default tests/fuzz/corpus/gguf)"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
          U64: "<Q", I64: "<q", F64: "<d"}
# ggml type id: (block elements, block bytes)
GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
        10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
        30: (1, 2)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors=(), version=3, align=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, ggml type)]"""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + value(t, v)
    data, infos = b"", b""
    for i, (name, dims, ty) in enumerate(tensors):
        be, bb = GGML[ty]
        n = 1
        for d in dims:
            n *= d
        nbytes = n // be * bb
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", ty, len(data))
        data += bytes((i * 37 + j * 11) & 0x7F for j in range(nbytes))  # small values: no fp inf/nan patterns
        data += b"\0" * ((-len(data)) % align)
    out += infos
    out += b"\0" * ((-len(out)) % align)
    return out + data


def spm_vocab():
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in (0x0A, 0x20, 0x41, 0xC3, 0xA9, 0xF0, 0x9F)]
    toks += ["\u2581", "\u2581the", "\u2581a", "t", "h", "e", "a", "\u2581Once", "\u2581upon", "\u2581time", ",",
             ".", "\u00e9", "\u2581t", "he", "on", "ce"]
    types = [2, 3, 3] + [6] * 7 + [1] * (len(toks) - 10)
    scores = [0.0, 0.0, 0.0] + [0.0] * 7 + [-float(i) for i in range(len(toks) - 10)]
    return toks, scores, types


def bpe_vocab():
    # byte-level: printable bytes map to themselves, space to \u0120, newline to \u010a
    toks = [chr(c) for c in range(0x21, 0x7F)] + ["\u0120", "\u010a", "\u00c3", "\u00a9"]
    merges = ["\u0120 t", "h e", "\u0120t he", "\u0120 a", "o n", "c e", "O n", "On ce", "\u0120 u", "p o"]
    for m in merges:
        toks.append(m.replace(" ", ""))
    toks += ["<|endoftext|>", "<|start_story|>"]
    types = [1] * (len(toks) - 2) + [3, 4]
    return toks, merges, types


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf")
    os.makedirs(outdir, exist_ok=True)
    seeds = {}
    # metadata of every value type, arrays of several element types, tensors of every ggml type
    seeds["seed_all_types.gguf"] = gguf([
        ("general.architecture", STR, "llama"),
        ("general.alignment", U32, 32),
        ("t.u8", U8, 200), ("t.i8", I8, -5), ("t.u16", U16, 60000), ("t.i16", I16, -300),
        ("t.u32", U32, 4000000000), ("t.i32", I32, -70000), ("t.f32", F32, 1.5), ("t.bool", BOOL, True),
        ("t.str", STR, "caf\u00e9 \U0001F600"), ("t.u64", U64, 1 << 40), ("t.i64", I64, -(1 << 40)),
        ("t.f64", F64, 2.25),
        ("t.arr_u8", ARR, (U8, [1, 2, 3])), ("t.arr_i32", ARR, (I32, [-1, 0, 7])),
        ("t.arr_f32", ARR, (F32, [0.5, -2.0])), ("t.arr_str", ARR, (STR, ["a", "", "xyz"])),
        ("t.arr_bool", ARR, (BOOL, [True, False])), ("t.arr_u64", ARR, (U64, [9])),
        ("t.arr_f64", ARR, (F64, [1e300])), ("t.arr_empty", ARR, (I16, [])),
        ("t.arr_arr", ARR, (ARR, [(U8, [1]), (U8, [2, 3])])),
    ], [("f32", [4, 2], 0), ("f16", [8], 1), ("bf16", [4, 1, 2], 30), ("q4_0", [32, 2], 2), ("q4_1", [32], 3),
        ("q5_0", [32], 6), ("q5_1", [32], 7), ("q8_0", [64], 8), ("q8_1", [32], 9), ("q2_K", [256], 10),
        ("q3_K", [256], 11), ("q4_K", [256], 12), ("q5_K", [256], 13), ("q6_K", [256], 14),
        ("q8_K", [256], 15)])
    # version 2, another alignment, no metadata beyond it
    seeds["seed_v2_align64.gguf"] = gguf([("general.alignment", U32, 64)],
                                         [("a", [3], 0), ("b", [32, 1, 1, 2], 8)], version=2, align=64)
    seeds["seed_empty.gguf"] = gguf([])
    # a SentencePiece tokenizer (llama) with byte tokens, scores and types
    toks, scores, types = spm_vocab()
    seeds["seed_tok_spm.gguf"] = gguf([
        ("general.architecture", STR, "llama"),
        ("tokenizer.ggml.model", STR, "llama"),
        ("tokenizer.ggml.tokens", ARR, (STR, toks)),
        ("tokenizer.ggml.scores", ARR, (F32, scores)),
        ("tokenizer.ggml.token_type", ARR, (I32, types)),
        ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.unknown_token_id", U32, 0),
        ("tokenizer.ggml.add_bos_token", BOOL, True), ("tokenizer.ggml.add_eos_token", BOOL, False),
        ("tokenizer.ggml.add_space_prefix", BOOL, True),
        ("tokenizer.chat_template", STR, "{% for m in messages %}{{ m['content'] }}{% endfor %}"),
    ], [("token_embd.weight", [32, len(toks)], 8)])
    # a byte-level BPE tokenizer (gpt2) with merges and a pre-tokenizer name
    toks, merges, types = bpe_vocab()
    for pre in ("llama-bpe", "qwen2"):
        seeds["seed_tok_bpe_%s.gguf" % pre] = gguf([
            ("tokenizer.ggml.model", STR, "gpt2"),
            ("tokenizer.ggml.pre", STR, pre),
            ("tokenizer.ggml.tokens", ARR, (STR, toks)),
            ("tokenizer.ggml.token_type", ARR, (I32, types)),
            ("tokenizer.ggml.merges", ARR, (STR, merges)),
            ("tokenizer.ggml.bos_token_id", U32, len(toks) - 2),
            ("tokenizer.ggml.eos_token_id", U32, len(toks) - 2),
            ("tokenizer.ggml.eot_token_id", U32, len(toks) - 1),
            ("tokenizer.ggml.add_bos_token", BOOL, pre == "llama-bpe"),
            ("zipcache.tokenizer.ignore_merges", BOOL, False),
        ])
    for name, blob in seeds.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(blob)
        print("%s: %d bytes" % (name, len(blob)))


if __name__ == "__main__":
    main()
