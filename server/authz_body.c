/*
 * authz_body.c — finding the resource parameter of a request in its JSON
 * body without parsing it into a tree (tally__authz_body_field, authz.h):
 * authz.c checks every request against the run, experiment or model named
 * there, and log-batch bodies are ~100 KB that the handler parses anyway.
 *
 * Only the body's top-level object is read: member names, and values
 * skipped by bracket depth (strings honoured). A name that matters is
 * accepted once: a second occurrence with another value, or any escaped
 * member name (which could spell it), answers "ambiguous", so the check and
 * the handler (params.c takes the last member, logbatch.c the last literal
 * one) can never look at different ids.
 *
 * Fast path for large bodies: when the body holds no backslash and the
 * names' common prefix ("run for run_id / runId / run_uuid / runUuid)
 * occurs at most once in its text, the first top-level match is the only
 * one, and the scan stops there. tests/fuzz/fuzz_authz_body.c checks that
 * it answers as the full scan does.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "authz.h"
#include "json_in.h"

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Byte classes for scanning: 1 quote, 2 opening bracket, 3 closing bracket,
 * 4 backslash; 0 anything else. A table lookup per byte keeps the scan of a
 * large log-batch body at about a cycle per byte. */
static const unsigned char CLS[256] = {['"'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 3, [']'] = 3,
                                       ['\\'] = 4};

/* Past the JSON string starting at p (on the opening quote); NULL if bad.
 * *escaped = 1 when it holds a backslash. */
static const char *skip_string(const char *p, const char *end, int *escaped)
{
    *escaped = 0;
    for (p++; p < end; p++) {
        unsigned char k = CLS[(unsigned char)*p];
        if (k == 4) {
            *escaped = 1;
            if (++p >= end)
                return NULL;
        } else if (k == 1) {
            return p + 1;
        }
    }
    return NULL;
}

/* Past one JSON value at p (strings, scalars, nested containers); NULL if bad. */
static const char *skip_value(const char *p, const char *end)
{
    int esc;
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end, &esc);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            /* Runs of ordinary bytes, four at a time. */
            while (end - p >= 4 && !(CLS[(unsigned char)p[0]] | CLS[(unsigned char)p[1]] |
                                     CLS[(unsigned char)p[2]] | CLS[(unsigned char)p[3]]))
                p += 4;
            if (p >= end)
                break;
            switch (CLS[(unsigned char)*p]) {
            case 1:
                p = skip_string(p, end, &esc);
                if (!p)
                    return NULL;
                continue;
            case 2:
                depth++;
                break;
            case 3:
                if (--depth == 0)
                    return p + 1;
                break;
            default:
                break;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p;
}

/* Decodes the JSON string body s[0..n) (no quotes) into out; -1 if bad or
 * too long. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned cp;
        if (s[i] != '\\') {
            if (o + 1 >= cap)
                return -1;
            out[o++] = s[i];
            continue;
        }
        if (++i >= n)
            return -1;
        switch (s[i]) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (i + 4 >= n || tally_json_hex4(s + i + 1, &cp) != 0)
                return -1;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u' ||
                    tally_json_hex4(s + i + 3, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            if (cp == 0)
                return -1;
            break;
        default:
            return -1;
        }
        char u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (char)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | (cp >> 12));
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            u[0] = (char)(0xF0 | (cp >> 18));
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (o + k >= cap)
            return -1;
        memcpy(out + o, u, k);
        o += k;
    }
    out[o] = 0;
    return 0;
}

static int is_name(const char *key, size_t n, const char *const *names)
{
    for (; *names; names++)
        if (strlen(*names) == n && memcmp(key, *names, n) == 0)
            return 1;
    return 0;
}

enum { P_ABSENT = 0, P_FOUND = 1, P_AMBIGUOUS = -1, P_BAD = -2 };

/* The top-level member of the JSON object body named any of names: its
 * string value (decoded) or number text into out. P_BAD when the body is not
 * a simple object we can read (the caller falls back to params.c). */
static int body_scan(const char *body, size_t len, const char *const *names, char *out,
                     size_t cap, int stop_at_first)
{
    const char *p = body, *end = body + len;
    p = skip_ws(p, end);
    if (p >= end)
        return P_ABSENT;
    if (*p != '{')
        return P_BAD;
    p = skip_ws(p + 1, end);
    int found = 0;
    char tmp[512];
    if (p < end && *p == '}')
        return P_ABSENT;
    while (p < end) {
        int esc;
        if (*p != '"')
            return P_BAD;
        const char *k0 = p + 1, *k1 = skip_string(p, end, &esc);
        if (!k1)
            return P_BAD;
        if (esc)
            return P_AMBIGUOUS; /* an escaped member name could spell ours */
        size_t kn = (size_t)(k1 - 1 - k0);
        p = skip_ws(k1, end);
        if (p >= end || *p != ':')
            return P_BAD;
        p = skip_ws(p + 1, end);
        const char *v0 = p, *v1 = skip_value(p, end);
        if (!v1)
            return P_BAD;
        if (is_name(k0, kn, names)) {
            const char *val = NULL;
            size_t vn = 0;
            if (*v0 == '"') {
                if (unescape(v0 + 1, (size_t)(v1 - v0 - 2), tmp, sizeof tmp) != 0)
                    return P_BAD;
                val = tmp;
                vn = strlen(tmp);
            } else if (*v0 == '-' || isdigit((unsigned char)*v0)) {
                val = v0;
                vn = (size_t)(v1 - v0);
            } else if (v1 - v0 == 4 && memcmp(v0, "null", 4) == 0) {
                val = NULL; /* null is absent (params.c) */
            } else {
                return P_BAD;
            }
            if (val) {
                if (vn + 1 > cap)
                    return P_BAD;
                if (found && (strlen(out) != vn || memcmp(out, val, vn) != 0))
                    return P_AMBIGUOUS;
                memcpy(out, val, vn);
                out[vn] = 0;
                found = 1;
                if (stop_at_first)
                    return P_FOUND;
            }
        }
        p = skip_ws(v1, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return found ? P_FOUND : P_ABSENT;
        return P_BAD;
    }
    return P_BAD;
}

/* Occurrences of needle (n >= 2 bytes) in hay[0..len), counting stops at
 * limit. The SSE2 path tests 16 positions at once for the needle's first
 * and last bytes (Muła's generic SIMD search) and confirms candidates with
 * memcmp: log-batch bodies are ~100 KB, and glibc's memmem costs several
 * times more here. */
static size_t count_occurrences(const char *hay, size_t len, const char *needle, size_t n,
                                size_t limit)
{
    size_t count = 0, i = 0;
    if (n < 2 || len < n)
        return 0;
#ifdef __SSE2__
    const __m128i first = _mm_set1_epi8(needle[0]), last = _mm_set1_epi8(needle[n - 1]);
    for (; i + n - 1 + 16 <= len && count < limit; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(hay + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(hay + i + n - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask && count < limit) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(hay + i + bit, needle, n) == 0)
                count++;
            mask &= mask - 1;
        }
    }
#endif
    for (; i + n <= len && count < limit; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
            count++;
    return count;
}

/* body_scan of the whole object, made cheap for large bodies (log-batch):
 * when the body holds no backslash (so no member name is escaped) and the
 * quoted names occur at most once in its text, the first top-level match
 * is the only one and the scan stops there; otherwise every top-level
 * member is read to find duplicates. */
int tally__authz_body_field(const char *body, size_t len, const char *const *names, char *out,
                            size_t cap, int force_full)
{
    if (!force_full && len > 4096 && !memchr(body, '\\', len)) {
        /* One search for the longest common prefix of the quoted names
         * ("run for run_id, runId, run_uuid, runUuid): one pass, not one
         * per spelling. */
        char q[64] = "\"";
        size_t qn = 1;
        for (size_t i = 0; names[0][i] && qn + 1 < sizeof q; i++) {
            int common = 1;
            for (const char *const *nm = names + 1; *nm && common; nm++)
                common = (*nm)[i] == names[0][i];
            if (!common)
                break;
            q[qn++] = names[0][i];
        }
        if (!names[1])
            q[qn++] = '"';
        if (count_occurrences(body, len, q, qn, 2) <= 1)
            return body_scan(body, len, names, out, cap, 1);
    }
    return body_scan(body, len, names, out, cap, 0);
}
