#!/usr/bin/python3
"""Copy a GGUF file with metadata keys set (added, or replaced), tensors untouched.

Usage: tools/gguf_set.py IN.gguf OUT.gguf KEY=TYPE:VALUE [...]
  TYPE: int (int32), uint (uint32), float (float32), bool, str, as llama.cpp's --override-kv.

What it is for: giving a model a layout it was not converted with, e.g. the
line-retrieval model with sliding-window layers (every layer but layer 1):
  tools/gguf_set.py models/zipcache-retrieval-1m-f16.gguf /tmp/r-swa.gguf \\
      llama.attention.sliding_window=uint:128 llama.attention.sliding_window_pattern=uint:2
The tensor data is copied byte for byte; offsets are relative to the data
section, so only the header is rewritten (and the data re-aligned).
"""
import struct
import sys

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
SET_TYPES = {"int": 5, "uint": 4, "float": 6, "bool": 7, "str": STRING}


def fail(msg):
    sys.exit("gguf_set: " + msg)


class Reader:
    def __init__(self, b, path):
        self.b, self.off, self.path = b, 0, path

    def take(self, n):
        if self.off + n > len(self.b):
            fail("%s: truncated at byte %d" % (self.path, self.off))
        s = self.b[self.off:self.off + n]
        self.off += n
        return s

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def skip_value(self, t):
        """The raw bytes of one value of type t."""
        start = self.off
        if t == STRING:
            self.take(self.unpack("<Q"))
        elif t == ARRAY:
            et, n = self.unpack("<I"), self.unpack("<Q")
            for _ in range(n):
                self.skip_value(et)
        elif t in SCALARS:
            self.take(struct.calcsize(SCALARS[t]))
        else:
            fail("%s: unknown metadata type %d" % (self.path, t))
        return self.b[start:self.off]


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def encode(t, text):
    if t == STRING:
        return gguf_str(text)
    if t == 7:
        if text not in ("true", "false"):
            fail("bool value %r: true or false" % text)
        return struct.pack("<?", text == "true")
    try:
        return struct.pack(SCALARS[t], float(text) if t == 6 else int(text, 0))
    except (ValueError, struct.error) as e:
        fail("value %r: %s" % (text, e))


def read_header(path):
    """(bytes, version, tensor count, [(key, type, raw value)], alignment, offset after the metadata)."""
    b = open(path, "rb").read()
    r = Reader(b, path)
    if r.take(4) != b"GGUF":
        fail("%s: not a GGUF file" % path)
    version, n_t, n_kv = r.unpack("<I"), r.unpack("<Q"), r.unpack("<Q")
    if version not in (2, 3):
        fail("%s: GGUF version %d" % (path, version))
    kvs, align = [], 32
    for _ in range(n_kv):
        key = r.take(r.unpack("<Q")).decode()
        t = r.unpack("<I")
        raw = r.skip_value(t)
        if key == "general.alignment":
            align = struct.unpack("<I", raw)[0]
        kvs.append((key, t, raw))
    return b, version, n_t, kvs, align, r


def architecture(path):
    """general.architecture of a GGUF file."""
    for key, t, raw in read_header(path)[3]:
        if key == "general.architecture" and t == STRING:
            return raw[8:].decode()
    fail("%s: no general.architecture" % path)


def main(argv):
    if len(argv) < 4:
        fail(__doc__.strip().splitlines()[2])
    src, dst, sets = argv[1], argv[2], {}
    for a in argv[3:]:
        key, _, rest = a.partition("=")
        ty, _, val = rest.partition(":")
        if not key or ty not in SET_TYPES:
            fail("%r: expected KEY=TYPE:VALUE, TYPE one of %s" % (a, ", ".join(SET_TYPES)))
        sets[key] = (SET_TYPES[ty], encode(SET_TYPES[ty], val))
    b, version, n_t, kvs, align, r = read_header(src)
    tinfo_start = r.off
    for _ in range(n_t):
        r.take(r.unpack("<Q"))
        nd = r.unpack("<I")
        r.take(8 * nd + 12)
    tinfo = b[tinfo_start:r.off]
    data = (r.off + align - 1) // align * align
    kvs = [(k, *sets.pop(k)) if k in sets else (k, t, raw) for k, t, raw in kvs]
    kvs += [(k, t, raw) for k, (t, raw) in sets.items()]
    head = b"GGUF" + struct.pack("<IQQ", version, n_t, len(kvs))
    head += b"".join(gguf_str(k) + struct.pack("<I", t) + raw for k, t, raw in kvs) + tinfo
    head += b"\0" * (-len(head) % align)
    with open(dst, "wb") as f:
        f.write(head)
        f.write(b[data:])


if __name__ == "__main__":
    main(sys.argv)
