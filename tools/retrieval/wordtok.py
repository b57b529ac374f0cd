#!/usr/bin/env python3
"""The retrieval model's tokenizer: a real byte-level BPE whose merges build every word of the
line-retrieval documents into one token, written as a Hugging Face tokenizer.json.

Why this vocabulary. The model must match a line's key against the question's key and copy the
line's number. Byte-level prompts are ~2.1x longer than a Llama tokenizer's and every key is ~15
tokens; with whole words a key is two tokens (" amber", "-acorn") and a number one token per
digit, so a line is at most 14 tokens and a 4096-token context holds ~285 lines. Digits stay
single tokens on purpose: a copy circuit forms quickly over 10 frequent tokens, while with one
token per group of three digits (1,110 tokens, each rare) a 1M-parameter model learned no copying
at all in 1,500 steps.

Pre-tokenization is Qwen2's regex (letters with one leading non-letter, single digits,
punctuation runs with trailing newlines, whitespace), which the engine implements natively;
`ignore_merges` (Llama 3's option) makes a pre-token that is itself in the vocabulary one token,
and the merges (each token = its prefix + its last character, shortest first) encode any other
text exactly as a byte-level BPE does. The vocabulary:

    0..255      the 256 byte symbols (GPT-2's printable stand-ins), id = byte value
    256..258    <s>, </s>, <pad>
    259..       every prefix (length >= 2) of every word, shortest first, then alphabetical

The words are: each pre-token of the header, the line template and the question; " " + each
adjective; "-" + each noun.

    wordtok.py --out DIR     writes DIR/tokenizer.json and DIR/tokenizer_config.json
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_lines  # noqa: E402

BOS, EOS, PAD = 256, 257, 258
SPECIALS = {BOS: "<s>", EOS: "</s>", PAD: "<pad>"}

# Qwen2's pre-tokenizer regex, restricted to ASCII (\p{L} = [A-Za-z], \p{N} = [0-9]); the
# documents are ASCII, and the engine's native implementation is checked against this one on
# whole documents by tests/py/test_retrieval_tools.py.
QWEN2_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
_PRETOK = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*|"
                     r"\s*[\r\n]+|\s+(?!\S)|\s+")


def pretokenize(text):
    if not text.isascii():
        raise ValueError("wordtok: the retrieval tokenizer's Python encoder handles ASCII text only")
    return _PRETOK.findall(text)


def _byte_chars():
    """GPT-2's byte -> printable character table (the one every ByteLevel tokenizer uses)."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(0x100 + extra))
            extra += 1
    return out


BYTE_CHARS = _byte_chars()


def _to_symbols(word):
    return "".join(BYTE_CHARS[b] for b in word.encode("utf-8"))


def _words():
    texts = [gen_lines.HEADER, gen_lines.QUESTION.format(key="amber-acorn"),
             gen_lines.line_text("amber-acorn", 1), "</s>"]
    # The last line runs into the question: ">\n" + "\n" is one pre-token.
    texts.append(gen_lines.line_text("amber-acorn", 7) + gen_lines.QUESTION.format(key="amber-acorn"))
    words = set()
    for t in texts:
        words.update(p for p in pretokenize(t) if not p.isdigit())
    words.update(" " + a for a in gen_lines.ADJECTIVES)
    words.update("-" + n for n in gen_lines.NOUNS)
    words.discard("<")  # "<s>" etc. are added tokens, not words
    return sorted(w for w in words if len(w.encode()) >= 2)


def build_vocab():
    """(vocab: symbol string -> id, merges: list of (left, right) symbol strings)."""
    merged = set()
    for w in _words():
        s = _to_symbols(w)
        for n in range(2, len(s) + 1):
            merged.add(s[:n])
    order = sorted(merged, key=lambda s: (len(s), s))
    vocab = {c: b for b, c in enumerate(BYTE_CHARS)}
    for i, s in sorted(SPECIALS.items()):
        vocab[s] = i
    for s in order:
        vocab[s] = len(vocab)
    merges = [(s[:-1], s[-1]) for s in order]
    return vocab, merges


class Tokenizer:
    """Encodes text exactly as the tokenizer.json below does in the engine (ASCII text only)."""

    def __init__(self):
        self.vocab, self.merges = build_vocab()
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.id_to_str = {i: s for s, i in self.vocab.items()}
        self.n_vocab = len(self.vocab)
        self._cache = {}

    def _bpe(self, sym):
        if sym in self.vocab:  # ignore_merges: a whole pre-token in the vocabulary is one token
            return [self.vocab[sym]]
        parts = list(sym)
        while len(parts) > 1:
            best = min(range(len(parts) - 1), key=lambda i: self.rank.get((parts[i], parts[i + 1]), 1 << 30))
            if (parts[best], parts[best + 1]) not in self.rank:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return [self.vocab[p] for p in parts]

    def encode(self, text):
        out = []
        for p in pretokenize(text):
            ids = self._cache.get(p)
            if ids is None:
                ids = self._cache[p] = self._bpe(_to_symbols(p))
            out.extend(ids)
        return out

    def decode(self, ids):
        inv = {c: b for b, c in enumerate(BYTE_CHARS)}
        data = bytearray()
        for i in ids:
            if i in SPECIALS:
                continue
            data.extend(inv[c] for c in self.id_to_str[i])
        return data.decode("utf-8", errors="replace")


def tokenizer_json(tok):
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in sorted(SPECIALS.items())]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": tok.vocab, "merges": [f"{a} {b}" for a, b in tok.merges]},
    }


def tokenizer_config():
    return {"add_bos_token": True, "add_eos_token": False, "bos_token": SPECIALS[BOS], "eos_token": SPECIALS[EOS],
            "pad_token": SPECIALS[PAD], "model_max_length": None, "tokenizer_class": "PreTrainedTokenizerFast"}


def write(out_dir, tok=None):
    tok = tok or Tokenizer()
    os.makedirs(out_dir, exist_ok=True)
    for name, obj in (("tokenizer.json", tokenizer_json(tok)), ("tokenizer_config.json", tokenizer_config())):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as fp:
            json.dump(obj, fp, indent=1, ensure_ascii=False)
            fp.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write the retrieval model's tokenizer.json.")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    tok = Tokenizer()
    write(a.out, tok)
    print(f"{tok.n_vocab} tokens, {len(tok.merges)} merges -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
