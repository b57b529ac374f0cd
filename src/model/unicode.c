#include "model/unicode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* The value of the range holding cp in a (first << 8) | value table: the
 * last range whose first code point is <= cp. */
static int range_value(const uint32_t *t, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((t[mid] >> 8) <= cp) lo = mid;
        else hi = mid - 1;
    }
    return (int)(t[lo] & 0xFF);
}

int zc_ucd_flags(uint32_t cp) { return cp > 0x10FFFF ? 0 : range_value(zc_ucd_ranges, zc_ucd_n_ranges, cp); }

size_t zc_utf8_len_from_lead(uint8_t b) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[b >> 4];
}

static bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

uint32_t zc_utf8_decode_lenient(const uint8_t *s, size_t n, size_t *adv) {
    uint8_t b = s[0];
    *adv = 1;
    if (b < 0x80) return b;
    if (!(b & 0x40)) return 0xFFFD; /* stray continuation byte */
    if (!(b & 0x20)) {
        if (n < 2 || !is_cont(s[1])) return 0xFFFD;
        *adv = 2;
        return ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (!(b & 0x10)) {
        if (n < 3 || !is_cont(s[1]) || !is_cont(s[2])) return 0xFFFD;
        *adv = 3;
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if (!(b & 0x08)) {
        if (n < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3])) return 0xFFFD;
        uint32_t cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                      ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        /* llama.cpp would throw when re-encoding these; we replace them. */
        if (cp > 0x10FFFF) return 0xFFFD;
        *adv = 4;
        return cp;
    }
    return 0xFFFD;
}

size_t zc_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int zc_utf8_check(const uint8_t *s, size_t n) {
    uint8_t b = s[0];
    if (b < 0x80) return 1;
    int need;          /* continuation bytes after the lead */
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b == 0xE0) need = 2, lo = 0xA0;
    else if (b >= 0xE1 && b <= 0xEC) need = 2;
    else if (b == 0xED) need = 2, hi = 0x9F; /* no surrogates */
    else if (b >= 0xEE && b <= 0xEF) need = 2;
    else if (b == 0xF0) need = 3, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) need = 3;
    else if (b == 0xF4) need = 3, hi = 0x8F; /* <= U+10FFFF */
    else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        uint8_t c = s[i];
        bool ok = i == 1 ? (c >= lo && c <= hi) : is_cont(c);
        if (!ok) return -i;
    }
    return need + 1;
}

/* GPT-2's bytes_to_unicode: the 188 printable bytes ('!'..'~', 0xA1..0xAC,
 * 0xAE..0xFF) stand for themselves; the other 68 are numbered from U+0100
 * in byte order: 0x00..0x20 -> U+0100..U+0120, 0x7F..0xA0 -> U+0121..U+0142,
 * 0xAD -> U+0143. */
uint32_t zc_byte_to_cp(uint8_t b) {
    if (b <= 0x20) return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (b - 0x7Fu);
    if (b == 0xAD) return 0x143;
    return b;
}

int zc_cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* ---- NFC ---------------------------------------------------------------------
 * As Unicode's reference algorithm (UAX #15): full canonical decomposition,
 * combining marks stably sorted by combining class, then each character
 * composed with the last starter when nothing in between blocks it. */

/* Hangul syllables are composed and decomposed arithmetically. */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, L_N = 19, V_N = 21, T_N = 28,
       S_N = L_N * V_N * T_N };

static int ccc(uint32_t cp) { return cp < 0x300 ? 0 : range_value(zc_ucd_ccc, zc_ucd_ccc_n, cp); }

/* The row of a {first, second, value} table sorted by (first, second) whose
 * first is a and, unless b is NULL, whose second is *b; NULL if none. */
static const uint32_t *row_find(const uint32_t (*t)[3], int n, uint32_t a, const uint32_t *b) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const uint32_t *r = t[mid];
        bool before = r[0] < a || (r[0] == a && b && r[1] < *b);
        if (!before && r[0] == a && (!b || r[1] == *b)) return r;
        if (before) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* The canonical decomposition of cp into out (at most 4 code points; the
 * table generator checks that), recursively; returns its length. */
static size_t nfd_char(uint32_t cp, uint32_t *out) {
    if (cp >= S_BASE && cp < S_BASE + S_N) {
        uint32_t s = cp - S_BASE, t = s % T_N;
        out[0] = L_BASE + s / (V_N * T_N);
        out[1] = V_BASE + s % (V_N * T_N) / T_N;
        if (!t) return 2;
        out[2] = T_BASE + t;
        return 3;
    }
    const uint32_t *r = cp < 0xC0 ? NULL : row_find(zc_ucd_decomp, zc_ucd_decomp_n, cp, NULL);
    if (!r) {
        out[0] = cp;
        return 1;
    }
    size_t k = nfd_char(r[1], out);
    return r[2] ? k + nfd_char(r[2], out + k) : k;
}

/* The primary composite of a + b, or 0. */
static uint32_t nfc_compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_N && b >= V_BASE && b < V_BASE + V_N)
        return S_BASE + ((a - L_BASE) * V_N + (b - V_BASE)) * T_N;
    if (a >= S_BASE && a < S_BASE + S_N && (a - S_BASE) % T_N == 0 && b > T_BASE && b < T_BASE + T_N)
        return a + (b - T_BASE);
    const uint32_t *r = b < 0x300 ? NULL : row_find(zc_ucd_comp, zc_ucd_comp_n, a, &b);
    return r ? r[2] : 0;
}

/* Sort the combining marks cp[0..n) by class, keeping the order of equal
 * classes: insertion for the usual short runs, counting sort (linear in a
 * long run, which text can be made of) otherwise, into tmp. */
static void sort_marks(uint32_t *cp, size_t n, uint32_t *tmp) {
    if (n <= 8) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = cp[i];
            int k = ccc(c);
            size_t j = i;
            for (; j > 0 && ccc(cp[j - 1]) > k; j--) cp[j] = cp[j - 1];
            cp[j] = c;
        }
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[ccc(cp[i]) + 1]++;
    for (int k = 1; k < 257; k++) start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++) tmp[start[ccc(cp[i])]++] = cp[i];
    memcpy(cp, tmp, n * sizeof *cp);
}

int zc_utf8_nfc(const char *s, size_t n, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n && u[i] < 0xCC) i++; /* 0xCC 0x80 starts U+0300 */
    if (i == n) return ZC_OK;
    /* The decomposed length first, then the code points. */
    uint32_t d[4];
    size_t m = 0, adv;
    for (i = 0; i < n; i += adv) m += nfd_char(zc_utf8_decode_lenient(u + i, n - i, &adv), d);
    size_t bytes;
    if (zc_mul_size(m, 2 * sizeof(uint32_t), &bytes)) return zc_error(ZC_ERR_LIMIT, "NFC: text too long");
    uint32_t *cp = zc_malloc(bytes ? bytes : 1), *tmp = cp + m;
    if (!cp) return ZC_ERR_NOMEM;
    m = 0;
    for (i = 0; i < n; i += adv) m += nfd_char(zc_utf8_decode_lenient(u + i, n - i, &adv), cp + m);
    for (size_t a = 0; a < m;) { /* runs of combining marks */
        size_t b = a;
        while (b < m && ccc(cp[b])) b++;
        if (b - a > 1) sort_marks(cp + a, b - a, tmp);
        a = b + (b == a);
    }
    /* Compose in place: w <= r. last: the class of the last code point kept
     * after the starter (0: the starter itself; 256: no starter yet). */
    size_t w = 0, starter = 0;
    int last = 256;
    for (size_t r = 0; r < m; r++) {
        uint32_t c = cp[r];
        int k = ccc(c);
        uint32_t comp = last != 256 && (last < k || last == 0) ? nfc_compose(cp[starter], c) : 0;
        if (comp) {
            cp[starter] = comp;
            continue;
        }
        if (k == 0) {
            starter = w;
            last = 0;
        } else if (last != 256) {
            last = k;
        }
        cp[w++] = c;
    }
    size_t len = 0;
    uint8_t e[4];
    for (size_t r = 0; r < w; r++) len += zc_utf8_encode(cp[r], e);
    char *o = zc_malloc(len ? len : 1);
    if (!o) {
        free(cp);
        return ZC_ERR_NOMEM;
    }
    for (size_t r = 0, p = 0; r < w; r++) p += zc_utf8_encode(cp[r], (uint8_t *)o + p);
    free(cp);
    *out = o;
    *out_len = len;
    return ZC_OK;
}

/* ---- pre-tokenizer matchers ------------------------------------------------
 * Each scans left to right and tries the regex alternatives in order at
 * each position, like a backtracking engine would. F(p) is the property set at p,
 * with IN marking "inside the text" so that [^\s\p{L}\p{N}] can match any
 * code point but never the end. */

enum { IN = 8 };

typedef struct {
    const uint32_t *cps;
    const uint8_t *fl;
    size_t n;
    uint32_t *lens;
    size_t n_words, prev_end;
} splitter;

static inline int F(const splitter *s, size_t p) { return p < s->n ? s->fl[p] : 0; }
static inline uint32_t CP(const splitter *s, size_t p) { return p < s->n ? s->cps[p] : 0xFFFFFFFFu; }

/* End the current word at `end` (empty words are dropped); returns end. */
static size_t emit(splitter *s, size_t end) {
    if (end > s->prev_end) s->lens[s->n_words++] = (uint32_t)(end - s->prev_end);
    s->prev_end = end;
    return end;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d at pos (case-insensitive for Llama 3 / Qwen2):
 * the match length, or 0. No non-ASCII code point lowercases to one of these
 * letters, so ASCII folding is exact. */
static size_t match_contraction(const splitter *s, size_t pos, bool fold) {
    if (CP(s, pos) != '\'' || pos + 1 >= s->n) return 0;
    uint32_t c1 = CP(s, pos + 1);
    if (fold) c1 = ascii_lower(c1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= s->n) return 0;
    uint32_t c2 = CP(s, pos + 2);
    if (fold) c2 = ascii_lower(c2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

/* Whitespace alternatives shared by all the regexes: \s+(?!\S) then \s+ (and,
 * for Llama 3, Qwen2 and o200k, \s*[\r\n]+ first). */
static size_t match_spaces(splitter *s, size_t pos, bool newline_rule) {
    size_t k = 0, last_nl = 0;
    while (F(s, pos + k) & ZC_UCD_WHITESPACE) {
        uint32_t c = CP(s, pos + k);
        if (c == '\r' || c == '\n') last_nl = pos + k + 1;
        k++;
    }
    if (newline_rule && last_nl > 0) return emit(s, last_nl);
    /* \s+(?!\S): leave the last space to prefix the following word. */
    if (k > 1 && pos + k < s->n) return emit(s, pos + k - 1);
    if (k > 0) return emit(s, pos + k);
    return emit(s, pos + 1); /* nothing matched: a word of one code point */
}

static void split_gpt2(splitter *s) {
    const int WLN = ZC_UCD_WHITESPACE | ZC_UCD_LETTER | ZC_UCD_NUMBER;
    for (size_t pos = 0; pos < s->n;) {
        size_t m = match_contraction(s, pos, false);
        if (m) {
            pos = emit(s, pos + m);
            continue;
        }
        bool sp = CP(s, pos) == ' ';
        int f2 = F(s, pos + sp); /* class after an optional leading space */
        if (f2 & ZC_UCD_LETTER) { /* ' ?\p{L}+' */
            size_t p = pos + sp;
            while (F(s, p) & ZC_UCD_LETTER) p++;
            pos = emit(s, p);
        } else if (f2 & ZC_UCD_NUMBER) { /* ' ?\p{N}+' */
            size_t p = pos + sp;
            while (F(s, p) & ZC_UCD_NUMBER) p++;
            pos = emit(s, p);
        } else if (!(f2 & WLN) && (f2 & IN)) { /* ' ?[^\s\p{L}\p{N}]+' */
            size_t p = pos + sp;
            while (!(F(s, p) & WLN) && (F(s, p) & IN)) p++;
            pos = emit(s, p);
        } else {
            pos = match_spaces(s, pos, false);
        }
    }
}

/* '\p{N}{1,max_digits}' at pos, repeated while digits follow (no other
 * alternative can start inside a run of digits): ends the groups, returns
 * the end of the run, or 0 if pos is not a digit. */
static size_t match_digits(splitter *s, size_t pos, size_t max_digits) {
    if (!(F(s, pos) & ZC_UCD_NUMBER)) return 0;
    size_t p = pos, start = pos;
    while (F(s, p) & ZC_UCD_NUMBER) {
        if (++p - start >= max_digits) start = emit(s, p);
    }
    return emit(s, p);
}

/* ' ?[^\s\p{L}\p{N}]+' then '[\r\n]*' (or '[\r\n/]*' with slash) at pos:
 * the end of the word, or 0. As in llama.cpp the entry test looks at the
 * first code point itself being inside the text, so a lone trailing space
 * is taken here (the same word \s+ would give). */
static size_t match_punct(splitter *s, size_t pos, bool slash) {
    const int WLN = ZC_UCD_WHITESPACE | ZC_UCD_LETTER | ZC_UCD_NUMBER;
    bool sp = CP(s, pos) == ' ';
    if ((F(s, pos + sp) & WLN) || !(F(s, pos) & IN)) return 0;
    size_t p = pos + sp;
    while (!(F(s, p) & WLN) && (F(s, p) & IN)) p++;
    for (uint32_t c; (c = CP(s, p)) == '\r' || c == '\n' || (slash && c == '/');) p++;
    return emit(s, p);
}

static void split_llama3(splitter *s, size_t max_digits) {
    for (size_t pos = 0; pos < s->n;) {
        size_t m = match_contraction(s, pos, true);
        if (m) {
            pos = emit(s, pos + m);
            continue;
        }
        uint32_t c = CP(s, pos);
        int f = F(s, pos);
        /* '[^\r\n\p{L}\p{N}]?\p{L}+' */
        if (!(c == '\r' || c == '\n' || (f & ZC_UCD_NUMBER)) &&
            ((f & ZC_UCD_LETTER) || (F(s, pos + 1) & ZC_UCD_LETTER))) {
            size_t p = pos + 1;
            while (F(s, p) & ZC_UCD_LETTER) p++;
            pos = emit(s, p);
            continue;
        }
        size_t e = match_digits(s, pos, max_digits);
        if (!e) e = match_punct(s, pos, false);
        pos = e ? e : match_spaces(s, pos, true);
    }
}

/* The o200k letter classes: "upper" [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and
 * "lower" [\p{Ll}\p{Lm}\p{Lo}\p{M}] (modifier and other letters and marks
 * are in both). */
static bool o200k_upper(int f) { return ((f & ZC_UCD_LETTER) && !(f & ZC_UCD_LOWER)) || (f & ZC_UCD_MARK); }
static bool o200k_lower(int f) { return ((f & ZC_UCD_LETTER) && !(f & ZC_UCD_UPPER)) || (f & ZC_UCD_MARK); }

/* upper*lower+ (upper_first false) or upper+lower* (true) at q, then an
 * optional contraction: the end of the match, or 0. A backtracking engine
 * runs upper* as far as it goes and gives code points back until lower+
 * can start, which is where the last code point in both classes is (or
 * the first one after the run); lower+ and the contraction never fail, so
 * that first success is the match. */
static size_t match_cased(const splitter *s, size_t q, bool upper_first) {
    size_t k = q;
    while (o200k_upper(F(s, k))) k++;
    if (upper_first) {
        if (k == q) return 0;
    } else {
        while (k > q && !o200k_lower(F(s, k))) k--;
        if (!o200k_lower(F(s, k))) return 0;
    }
    while (o200k_lower(F(s, k))) k++;
    return k + match_contraction(s, k, true);
}

static void split_gpt4o(splitter *s) {
    for (size_t pos = 0; pos < s->n;) {
        uint32_t c = CP(s, pos);
        /* Each cased alternative starts with '[^\r\n\p{L}\p{N}]?': tried
         * taking that code point first, then without it. */
        bool pre = c != '\r' && c != '\n' && !(F(s, pos) & (ZC_UCD_LETTER | ZC_UCD_NUMBER));
        size_t e = 0;
        for (int alt = 0; alt < 2 && !e; alt++) {
            if (pre) e = match_cased(s, pos + 1, alt);
            if (!e) e = match_cased(s, pos, alt);
        }
        if (e) e = emit(s, e);
        if (!e) e = match_digits(s, pos, 3);
        if (!e) e = match_punct(s, pos, true);
        pos = e ? e : match_spaces(s, pos, true);
    }
}

size_t zc_pretok_split(zc_pretok_kind kind, const uint32_t *cps, size_t n, uint8_t *flags, uint32_t *lens) {
    for (size_t i = 0; i < n; i++) flags[i] = (uint8_t)(zc_ucd_flags(cps[i]) | IN);
    splitter s = {cps, flags, n, lens, 0, 0};
    switch (kind) {
    case ZC_PRETOK_GPT2: split_gpt2(&s); break;
    case ZC_PRETOK_LLAMA3: split_llama3(&s, 3); break;
    case ZC_PRETOK_QWEN2: split_llama3(&s, 1); break;
    case ZC_PRETOK_GPT4O: split_gpt4o(&s); break;
    }
    return s.n_words;
}
