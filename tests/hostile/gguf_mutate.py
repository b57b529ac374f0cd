#!/usr/bin/env python3
"""Write malformed copies of a real GGUF file, one per class of damage, for
tests/test_hostile_cli.sh.

usage: gguf_mutate.py IN.gguf OUTDIR

Every copy is the input with a few bytes patched in place (same length), so
each file is broken in exactly one way and everything else stays valid. The
header is parsed here independently of the C reader (GGUF v3: magic, version,
tensor count, key/value count, key/values, tensor infos, aligned data).
Prints the names of the files written.
"""
import os
import struct
import sys

SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
T_STRING, T_ARRAY = 8, 9


class Header:
    """Byte offsets of the fields the mutations patch."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        assert data[:4] == b"GGUF", "not a GGUF file"
        self.pos = 4
        self.version = self.u32()
        self.n_tensors_at = self.pos
        n_tensors = self.u64()
        self.n_kv_at = self.pos
        n_kv = self.u64()
        self.kv = {}  # key -> dict(key_len_at, key_at, type_at, value_at, ...)
        for _ in range(n_kv):
            rec = {"key_len_at": self.pos}
            key = self.string()
            rec["key_at"] = rec["key_len_at"] + 8
            rec["type_at"] = self.pos
            vtype = self.u32()
            rec["value_at"] = self.pos
            rec["type"] = vtype
            if vtype == T_ARRAY:
                rec["elem_type"] = self.u32()
                rec["count_at"] = self.pos
                count = self.u64()
                rec["elems_at"] = self.pos
                if rec["elem_type"] == T_STRING:
                    rec["strings"] = [self.pos_then(self.string) for _ in range(count)]
                else:
                    self.pos += SCALAR[rec["elem_type"]] * count
            elif vtype == T_STRING:
                self.string()
            else:
                self.pos += SCALAR[vtype]
            self.kv[key] = rec
        self.tensors = {}  # name -> dict(name_at, n_dims_at, dims_at, type_at, offset_at, ...)
        for _ in range(n_tensors):
            rec = {"name_at": self.pos + 8}
            name = self.string()
            rec["n_dims_at"] = self.pos
            n_dims = self.u32()
            rec["dims_at"] = self.pos
            rec["dims"] = [self.u64() for _ in range(n_dims)]
            rec["type_at"] = self.pos
            rec["type"] = self.u32()
            rec["offset_at"] = self.pos
            rec["offset"] = self.u64()
            self.tensors[name] = rec

    def u32(self):
        (v,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        return v

    def u64(self):
        (v,) = struct.unpack_from("<Q", self.data, self.pos)
        self.pos += 8
        return v

    def string(self):
        n = self.u64()
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s.decode("utf-8")

    def pos_then(self, read):
        """(offset of the string's bytes, its length), then skip it."""
        at = self.pos + 8
        s = read()
        return at, len(s.encode("utf-8"))


def patched(data, edits):
    out = bytearray(data)
    for at, raw in edits:
        out[at : at + len(raw)] = raw
    return bytes(out)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def mutations(h):
    """name -> list of (offset, bytes) patches."""
    tok = h.kv["tokenizer.ggml.tokens"]
    first_key = min(h.kv.values(), key=lambda r: r["key_len_at"])
    q = h.tensors["blk.0.attn_q.weight"]
    last = max(h.tensors.values(), key=lambda r: r["offset"])
    # A vocab token whose text is plain ASCII: its first byte becomes 0xff.
    ascii_tok = next(at for at, n in tok["strings"][300:] if n > 1)
    rename = lambda key, new: [(h.kv[key]["key_at"], new.encode())]
    return {
        "bad_version": [(4, u32(99))],
        "tensor_count_overflow": [(h.n_tensors_at, u64(1 << 62))],
        "kv_count_overflow": [(h.n_kv_at, u64((1 << 64) - 1))],
        "string_len_overflow": [(first_key["key_len_at"], u64((1 << 63) + 5))],
        "array_count_overflow": [(tok["count_at"], u64(1 << 61))],
        "kv_type_unknown": [(first_key["type_at"], u32(77))],
        "tensor_offset_past_end": [(last["offset_at"], u64(last["offset"] + (1 << 40)))],
        "tensor_misaligned": [(q["offset_at"], u64(q["offset"] + 4))],
        "tensor_type_unknown": [(q["type_at"], u32(200))],
        "tensor_dims_overflow": [(q["dims_at"], u64(1 << 40)), (q["dims_at"] + 8, u64(1 << 40))],
        "tensor_ndims_bad": [(q["n_dims_at"], u32(9))],
        # Same element count (so it still fits the data), wrong shape for dim 64.
        "tensor_shape_mismatch": [(q["dims_at"], u64(q["dims"][0] * 2)), (q["dims_at"] + 8, u64(q["dims"][1] // 2))],
        "tensor_missing": [(h.tensors["output_norm.weight"]["name_at"], b"output_norm.weighX")],
        "arch_unknown": [(h.kv["general.architecture"]["value_at"] + 8, b"xxxxx")],
        "layers_absurd": [(h.kv["llama.block_count"]["value_at"], u32(1 << 30))],
        "heads_zero": [(h.kv["llama.attention.head_count"]["value_at"], u32(0))],
        "tokenizer_missing": rename("tokenizer.ggml.tokens", "tokenizer.ggml.tokenX")
        + rename("tokenizer.ggml.model", "tokenizer.ggml.modeX"),
        "vocab_invalid_utf8": [(ascii_tok, b"\xff")],
        "key_invalid_utf8": [(first_key["key_at"], b"\xc3")],
    }


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        data = f.read()
    h = Header(data)
    os.makedirs(outdir, exist_ok=True)
    for name, edits in mutations(h).items():
        with open(os.path.join(outdir, name + ".gguf"), "wb") as f:
            f.write(patched(data, edits))
        print(name)


if __name__ == "__main__":
    main()
