#!/usr/bin/env python3
"""Write the retrieval model as a Hugging Face Llama checkpoint directory, with numpy only.

    config.json             LlamaForCausalLM hyperparameters
    model.safetensors       F32 tensors, written with struct + numpy (no safetensors package)
    tokenizer.json          the byte-level vocabulary: a ByteLevel BPE with no merges
    tokenizer_config.json   BOS/EOS/PAD and add_bos_token

`zipcache convert DIR -o model.gguf --type f16` (or q8_0) reads this directory; so does
`zipcache run -m DIR` directly.

Vocabulary (VOCAB_SIZE = 259): id b in 0..255 is the byte b (its token text is GPT-2's printable
stand-in for that byte, so the ByteLevel decoder gives the byte back), 256 is BOS "<s>", 257 is EOS
"</s>", 258 is PAD "<pad>". With no merges every byte stays its own token whatever the
pre-tokenizer splits, so encoding is exactly `list(text.encode())`: the training script tokenizes
with that and never needs this file.

Tensor layout (the HF Llama one, which the training script uses directly): weights are
[out_features, in_features]; Q and K rows are in "rotate-half" RoPE order (channel i of a head is
rotated with channel i + head_dim/2, transformers' apply_rotary_pos_emb), which `zipcache convert`
permutes into GGUF's adjacent-pair order as llama.cpp's converter does.
"""
import json
import os
import struct

import numpy as np

N_BYTES = 256
BOS, EOS, PAD = 256, 257, 258
VOCAB_SIZE = 259
SPECIALS = {BOS: "<s>", EOS: "</s>", PAD: "<pad>"}


def encode(text):
    """The token ids of text (no BOS): its UTF-8 bytes."""
    return list(text.encode("utf-8"))


def decode(ids):
    """Text of ids, specials dropped (invalid UTF-8 replaced, as the engine's decoder does)."""
    return bytes(i for i in ids if 0 <= i < N_BYTES).decode("utf-8", errors="replace")


def gpt2_byte_chars():
    """GPT-2's byte -> printable character table: printable Latin-1 bytes map to themselves, the
    other 68 to U+0100.. in byte order (the table every ByteLevel tokenizer uses)."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    out, extra = [], 0
    for b in range(N_BYTES):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(0x100 + extra))
            extra += 1
    return out


def hf_config(hp):
    """config.json for hyperparameters hp (see train_retrieval.ModelConfig for the keys)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hp["dim"],
        "intermediate_size": hp["ffn_dim"],
        "num_hidden_layers": hp["n_layers"],
        "num_attention_heads": hp["n_heads"],
        "num_key_value_heads": hp["n_kv_heads"],
        "head_dim": hp["head_dim"],
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": hp["max_seq_len"],
        "rms_norm_eps": hp["norm_eps"],
        "rope_theta": hp["rope_theta"],
        "rope_scaling": None,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "torch_dtype": "float32",
    }


def tokenizer_json():
    chars = gpt2_byte_chars()
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in sorted(SPECIALS.items())]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        # use_regex false: the split could not change the result (no merges), so skip it.
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {c: b for b, c in enumerate(chars)}, "merges": []},
    }


def tokenizer_config():
    return {"add_bos_token": True, "add_eos_token": False, "bos_token": SPECIALS[BOS], "eos_token": SPECIALS[EOS],
            "pad_token": SPECIALS[PAD], "model_max_length": None, "tokenizer_class": "PreTrainedTokenizerFast"}


def tensor_shapes(hp):
    """name -> shape of every tensor of the checkpoint, in the order it is written."""
    d, f, hd = hp["dim"], hp["ffn_dim"], hp["head_dim"]
    q, kv = hp["n_heads"] * hd, hp["n_kv_heads"] * hd
    shapes = {"model.embed_tokens.weight": (VOCAB_SIZE, d)}
    for i in range(hp["n_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (d,),
            p + "self_attn.q_proj.weight": (q, d),
            p + "self_attn.k_proj.weight": (kv, d),
            p + "self_attn.v_proj.weight": (kv, d),
            p + "self_attn.o_proj.weight": (d, q),
            p + "post_attention_layernorm.weight": (d,),
            p + "mlp.gate_proj.weight": (f, d),
            p + "mlp.up_proj.weight": (f, d),
            p + "mlp.down_proj.weight": (d, f),
        })
    shapes["model.norm.weight"] = (d,)
    shapes["lm_head.weight"] = (VOCAB_SIZE, d)
    return shapes


def write_safetensors_f32(path, tensors):
    """The safetensors format: u64 little-endian header length, a JSON header (name -> dtype,
    shape, [begin, end) offsets into the data section), then the raw little-endian data. The header
    is padded with spaces to a multiple of 8 so that every tensor starts 8-byte aligned."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    blobs = []
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)))
        fp.write(h)
        for raw in blobs:
            fp.write(raw)


def write_hf(out_dir, hp, tensors):
    """Write the checkpoint directory. tensors: name -> float array, exactly tensor_shapes(hp)."""
    want = tensor_shapes(hp)
    if set(tensors) != set(want):
        missing, extra = sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))
        raise ValueError(f"tensors do not match the architecture: missing {missing[:4]}, unexpected {extra[:4]}")
    for name, shape in want.items():
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"{name}: shape {tuple(tensors[name].shape)}, expected {shape}")
        if not np.all(np.isfinite(tensors[name])):
            raise ValueError(f"{name}: not finite")
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors_f32(os.path.join(out_dir, "model.safetensors"), {n: tensors[n] for n in want})
    for name, obj in (("config.json", hf_config(hp)), ("tokenizer.json", tokenizer_json()),
                      ("tokenizer_config.json", tokenizer_config())):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as fp:
            json.dump(obj, fp, indent=1, ensure_ascii=False)
            fp.write("\n")


def random_tensors(hp, seed, scale=0.5):
    """Random weights of the right shapes (the tests' tiny model): uniform in +-scale/sqrt(fan_in)
    for matrices, 1 +- 0.2 for norms, so activations stay O(1) through the layers."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in tensor_shapes(hp).items():
        if len(shape) == 1:
            out[name] = 1 + rng.uniform(-0.2, 0.2, shape)
        elif name == "model.embed_tokens.weight":
            out[name] = rng.uniform(-1, 1, shape)
        else:
            out[name] = rng.uniform(-scale, scale, shape) * np.sqrt(3.0 / shape[1])
    return out
