/* Answer parsing for the generation tasks: numbers in model output (LongEval,
 * GSM8K) and stop sequences (GSM8K, HumanEval). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* Parse a number starting at s[i] (a digit, or '-' before a digit). Writes
 * the value and returns the index just past it. Commas are taken as
 * thousands separators only when followed by exactly three digits, so
 * "3, 4" and "1,5" stay two numbers. */
static size_t scan_number(const char *s, size_t i, double *out) {
    char buf[128];
    size_t n = 0;
    if (s[i] == '-') buf[n++] = s[i++];
    for (;;) {
        while (isdigit((unsigned char)s[i])) {
            if (n < sizeof buf - 1) buf[n++] = s[i];
            i++;
        }
        if (s[i] == ',' && isdigit((unsigned char)s[i + 1]) && isdigit((unsigned char)s[i + 2]) &&
            isdigit((unsigned char)s[i + 3]) && !isdigit((unsigned char)s[i + 4])) {
            i++;
            continue;
        }
        break;
    }
    if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        if (n < sizeof buf - 1) buf[n++] = '.';
        i++;
        while (isdigit((unsigned char)s[i])) {
            if (n < sizeof buf - 1) buf[n++] = s[i];
            i++;
        }
    }
    buf[n] = 0;
    *out = strtod(buf, NULL);
    return i;
}

/* Visit the numbers of s in order; stop at the first if `first`. */
static bool find_number(const char *s, bool first, double *out) {
    bool found = false;
    size_t i = 0;
    while (s[i]) {
        unsigned char c = (unsigned char)s[i];
        bool sign = c == '-' && isdigit((unsigned char)s[i + 1]) && (i == 0 || !isalnum((unsigned char)s[i - 1]));
        if (sign || isdigit(c)) {
            i = scan_number(s, i, out);
            found = true;
            if (first) return true;
        } else {
            i++;
            /* A digit glued to a preceding letter ("gpt2", "x3") is part of a
             * word, not a number: skip the whole run. */
            if (isalpha(c))
                while (isalnum((unsigned char)s[i])) i++;
        }
    }
    return found;
}

bool zc_eval_first_number(const char *s, double *out) { return find_number(s, true, out); }
bool zc_eval_last_number(const char *s, double *out) { return find_number(s, false, out); }

bool zc_eval_gsm8k_reference(const char *answer, double *out) {
    const char *mark = NULL;
    for (const char *p = strstr(answer, "####"); p; p = strstr(p + 4, "####")) mark = p;
    return mark && zc_eval_first_number(mark + 4, out);
}

size_t zc_eval_stop_at(const char *text, size_t len, const char *const *stops, int n_stops) {
    size_t best = len;
    for (int k = 0; k < n_stops; k++) {
        size_t m = strlen(stops[k]);
        if (m == 0 || m > len) continue;
        for (size_t i = 0; i + m <= best && i + m <= len; i++)
            if (text[i] == stops[k][0] && !memcmp(text + i, stops[k], m)) {
                best = i;
                break;
            }
    }
    return best;
}
