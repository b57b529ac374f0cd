"""The hand-written pre-tokenizer matchers (src/model/unicode.c) against a
real backtracking regex engine.

Python's `re` has no \\p{..}, so the GPT-2, Llama 3, Qwen2 and o200k
expressions are rebuilt with explicit classes: \\p{L} and \\p{N} from
unicodedata's general categories, o200k's case classes from its Lu, Lt, Lm,
Lo, Ll and M categories, \\s as the Unicode White_Space property
(PropList.txt, written out below; Python's own \\s also matches
U+001C..U+001F). The contractions use the explicit-case form llama.cpp uses,
(?:'[sS]|'[tT]|...).
Random strings over an alphabet chosen to make the alternatives interact
are split by both and must give the same words. zc_pretok_split is called
in $ZIPCACHE_BUILD/libzipcache.so through ctypes.

zc_utf8_nfc (Qwen's NFC normalizer) against unicodedata.normalize("NFC")
(the same Unicode version as the generated tables): every code point once,
each after a '.' that composes with nothing, random strings of combining
marks of several classes, Hangul jamo and syllables, singletons and
composition exclusions, and a long run of marks (the linear sort).
"""
import ctypes
import os
import random
import re
import sys
import unicodedata

WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]


def ranges(pred):
    out, start = [], None
    for cp in range(0x110000):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def cls_items(rs):
    esc = lambda cp: "\\U%08x" % cp
    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in rs)


def patterns():
    L = cls_items(ranges(lambda c: unicodedata.category(chr(c))[0] == "L"))
    N = cls_items(ranges(lambda c: unicodedata.category(chr(c))[0] == "N"))
    S = cls_items(WHITE_SPACE)
    l, n, s, ns = "[%s]" % L, "[%s]" % N, "[%s]" % S, "[^%s]" % S
    other = "[^%s%s%s]" % (S, L, N)
    gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?%s+| ?%s+| ?%s+|%s+(?!%s)|%s+" % (l, n, other, s, ns, s)
    contr = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    def llama(digits):
        return "%s|[^\\r\\n%s%s]?%s+|%s%s| ?%s+[\\r\\n]*|%s*[\\r\\n]+|%s+(?!%s)|%s+" % (
            contr, L, N, l, n, digits, other, s, s, ns, s)
    # o200k (GPT-4o, Phi-4-mini): case-aware letter runs, each optionally after one
    # [^\r\n\p{L}\p{N}] and followed by a contraction
    cat = lambda pred: "[%s]" % cls_items(ranges(lambda c: pred(unicodedata.category(chr(c)))))
    up = cat(lambda k: k in ("Lu", "Lt", "Lm", "Lo") or k[0] == "M")
    lo = cat(lambda k: k in ("Ll", "Lm", "Lo") or k[0] == "M")
    pre = "[^\\r\\n%s%s]?" % (L, N)
    o200k = "%s%s*%s+%s?|%s%s+%s*%s?|%s{1,3}| ?%s+[\\r\\n/]*|%s*[\\r\\n]+|%s+(?!%s)|%s+" % (
        pre, up, lo, contr, pre, up, lo, contr, n, other, s, s, ns, s)
    return {0: re.compile(gpt2), 1: re.compile(llama("{1,3}")), 2: re.compile(llama("")), 3: re.compile(o200k)}


# o200k's letter classes: upper (A, Z, \u00c9 Lu, \u01c5 Lt), lower, both (\u02b0 Lm, \u4f60 Lo,
# marks \u0301 Mn, \u0903 Mc, \u20dd Me); '/' ends its punctuation runs.
ALPHABET = (list("aZq'sStTrReEvVmMlLdD") + ["'"] * 4 + list("0189") + [" "] * 6 + list("\t\n\r") * 2 +
            list(".,!?-()$/") + ["\u00e9", "\u4f60", "\u0663", "\u00bd", "\u2167", "\u0301", "\u3000", "\u00a0",
                                 "\u0085", "\u001c", "\u2028", "\U0001F999", "\u200b", "\u0378", "\U000E0001",
                                 "A", "\u00c9", "\u01c5", "\u02b0", "\u0903", "\u20dd", "\u0301"])


def main():
    build = os.environ.get("ZIPCACHE_BUILD", "build")
    # libzipcache.so exports only the public API: the internal splitter comes
    # through the test shim (tests/shim_internal.c).
    lib_path = os.path.join(build, "tests", "libzipcache_internal.so")
    if not os.path.exists(lib_path):
        print("SKIP pretok_regex_reference: %s not built" % lib_path)
        return 0
    with open(lib_path, "rb") as f:
        if b"__asan_init" in f.read():
            # A sanitizer runtime must be the first library of the process.
            print("SKIP pretok_regex_reference: %s is built with AddressSanitizer (checked in the plain build)"
                  % lib_path)
            return 0
    lib = ctypes.CDLL(lib_path)
    split = lib.zc_test_pretok_split
    split.restype = ctypes.c_size_t
    split.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_uint32), ctypes.c_size_t,
                                    ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint32)]
    pats = patterns()
    rng = random.Random(1234)
    names = {0: "gpt2", 1: "llama3", 2: "qwen2", 3: "o200k"}
    bad = {k: 0 for k in names}
    for trial in range(3000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))
        n = len(text)
        cps = (ctypes.c_uint32 * n)(*[ord(c) for c in text])
        flags = (ctypes.c_uint8 * n)()
        lens = (ctypes.c_uint32 * n)()
        for kind, pat in pats.items():
            want = pat.findall(text)
            assert "".join(want) == text, "regex left characters unmatched"
            nw = split(kind, cps, n, flags, lens)
            got, pos = [], 0
            for i in range(nw):
                got.append(text[pos:pos + lens[i]])
                pos += lens[i]
            if got != want:
                bad[kind] += 1
                if bad[kind] <= 3:
                    sys.stderr.write("  %s %r: regex %r, zipcache %r\n" % (names[kind], text, want, got))
    for kind, name in names.items():
        print("%s pretok_regex_reference_%s" % ("FAIL" if bad[kind] else "PASS", name))
    nfc_bad = check_nfc(lib, rng)
    print("%s nfc_reference" % ("FAIL" if nfc_bad else "PASS"))
    return 1 if any(bad.values()) or nfc_bad else 0


# base letters, marks of classes 230, 220, 202, 1, 240, 216, Hangul L/V/T and syllables (LV, LVT),
# starters that compose as the second character (U+0B3E, U+09BE), singletons (U+2126, U+212B),
# an exclusion (U+0958), CJK
NFC_ALPHABET = (list("AEaeoOuU.") + ["\u0301", "\u0300", "\u0316", "\u0327", "\u0334", "\u0345", "\u031b",
                                     "\u0308", "\u1100", "\u1161", "\u11a8", "\uac00", "\uac01", "\u0b47",
                                     "\u0b3e", "\u09c7", "\u09be", "\u2126", "\u212b", "\u0958", "\u4f60",
                                     "\u00c5", "\u1e9b", "\u0323", "\u03a9"])


def check_nfc(lib, rng):
    f = lib.zc_test_utf8_nfc
    f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
    free = ctypes.CDLL(None).free
    free.argtypes = [ctypes.c_void_p]

    def nfc(text):
        b = text.encode()
        out, n = ctypes.c_void_p(), ctypes.c_size_t()
        if f(b, len(b), ctypes.byref(out), ctypes.byref(n)):
            return None
        if not out.value:
            return text
        got = ctypes.string_at(out.value, n.value).decode()
        free(out)
        return got

    texts = [".".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)]
    texts += ["".join(rng.choice(NFC_ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    texts.append("a" + "\u0301\u0316\u0345\u0334" * 5000 + "e\u0301")
    bad = 0
    for t in texts:
        got, want = nfc(t), unicodedata.normalize("NFC", t)
        if got != want:
            bad += 1
            if bad <= 3:
                sys.stderr.write("  NFC %r: unicodedata %r, zipcache %r\n" % (t[:60], want[:60], got and got[:60]))
    return bad


if __name__ == "__main__":
    sys.exit(main())
