#!/usr/bin/env python3
"""Write the retrieval model as a Hugging Face Llama checkpoint directory, with numpy only.

    config.json             LlamaForCausalLM hyperparameters (tied embeddings)
    model.safetensors       F32 tensors, written with struct + numpy (no safetensors package)
    tokenizer.json          the word-level byte BPE of wordtok.py
    tokenizer_config.json   BOS/EOS/PAD and add_bos_token

`zipcache convert DIR -o model.gguf --type f16` (or q8_0) reads this directory; so does
`zipcache run -m DIR` directly.

Tensor layout (the HF Llama one, which the training script uses directly): weights are
[out_features, in_features]; Q and K rows are in "rotate-half" RoPE order (channel i of a head is
rotated with channel i + head_dim/2, transformers' apply_rotary_pos_emb), which `zipcache convert`
permutes into GGUF's adjacent-pair order as llama.cpp's converter does. The output projection is
the embedding (tie_word_embeddings), so there is no lm_head tensor.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wordtok  # noqa: E402


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
        "vocab_size": hp["vocab_size"],
        "max_position_embeddings": hp["max_seq_len"],
        "rms_norm_eps": hp["norm_eps"],
        "rope_theta": hp["rope_theta"],
        "rope_scaling": None,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": not hp.get("untied", False),
        "bos_token_id": wordtok.BOS,
        "eos_token_id": wordtok.EOS,
        "pad_token_id": wordtok.PAD,
        "torch_dtype": "float32",
    }


def tensor_shapes(hp):
    """name -> shape of every tensor of the checkpoint, in the order it is written."""
    d, f, hd = hp["dim"], hp["ffn_dim"], hp["head_dim"]
    q, kv = hp["n_heads"] * hd, hp["n_kv_heads"] * hd
    shapes = {"model.embed_tokens.weight": (hp["vocab_size"], d)}
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
    if hp.get("untied"):  # only the tests' hand-made models have their own output projection
        shapes["lm_head.weight"] = (hp["vocab_size"], d)
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


def write_hf(out_dir, hp, tensors, tok=None):
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
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as fp:
        json.dump(hf_config(hp), fp, indent=1)
        fp.write("\n")
    wordtok.write(out_dir, tok)


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
