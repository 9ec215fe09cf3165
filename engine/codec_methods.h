/*
 * codec_methods.h — the method numbers of column chunks (the first byte of an
 * encoded chunk) and a way to force one method, for tests and benchmarks.
 * Private to the engine; the normal entry points are in codec.h, and the byte
 * layout of every method is in docs/codec.md.
 *
 * A method byte is (domain << 4) | kernel:
 *
 *   kernel  name     layout after the method byte               access
 *   0       RAW      n words, little-endian                     O(1)
 *   1       CONST    base                                       O(1)
 *   2       LINEAR   base, zz(d)                                O(1)
 *   3       FOR      w, base, zz(d), packed n x w bits           O(1)
 *   4       DELTA    w, base, zz(dmin), packed (n-1) x w bits    O(n)
 *   5       DELTA2   w, base, zz(d1), zz(ddmin), (n-2) x w bits  O(n)
 *   6       XOR      Gorilla bit stream (values only)           O(n)
 *   7       SHUF     varint(len), LZ4 block of byte planes      O(n)
 *   8       RLE      varint(runs), runs x (base, varint(len-1))  O(n)
 *
 *   domain  int64 column            float64 column
 *   0       the int64 itself;       ordered map of the 64 bits; base is 8
 *           base is zz varint       bytes; words are 8 bytes
 *   1       (invalid)               float32-origin: ordered map of the
 *                                   32-bit float; base is zz varint;
 *                                   words are 4 bytes
 *
 * Int64 columns use kernels 0-5 of domain 0 only; float64 columns use every
 * kernel of both domains.
 */
#ifndef TALLY_CODEC_METHODS_H
#define TALLY_CODEC_METHODS_H

#include <stddef.h>
#include <stdint.h>

enum tally__codec_kernel {
    TALLY__CK_RAW = 0,
    TALLY__CK_CONST = 1,
    TALLY__CK_LINEAR = 2,
    TALLY__CK_FOR = 3,
    TALLY__CK_DELTA = 4,
    TALLY__CK_DELTA2 = 5,
    TALLY__CK_XOR = 6,
    TALLY__CK_SHUF = 7,
    TALLY__CK_RLE = 8,
    TALLY__CK_N = 9
};

#define TALLY__CODEC_DOM_F64 0x00u /* float64 column: 64-bit patterns */
#define TALLY__CODEC_DOM_F32 0x10u /* float64 column: float32-origin values */

/* Method byte of kernel k in domain dom (one of TALLY__CODEC_DOM_*). */
#define TALLY__CODEC_METHOD(dom, k) ((unsigned)(dom) | (unsigned)(k))

/* Encodes v[0..n) with exactly the given method byte into out (at least the
 * column's bound). Returns the size written, or 0 when that method cannot
 * represent these values (for example CONST on two distinct values, the
 * float32 domain on a value that is not float32-exact, or SHUF when LZ4 does
 * not beat the raw size). */
size_t tally__codec_i64_encode_method(const int64_t *v, uint32_t n, unsigned method,
                                      uint8_t *out);
size_t tally__codec_f64_encode_method(const double *v, uint32_t n, unsigned method,
                                      uint8_t *out);

/* A short static name of a method byte ("for", "f32-delta2", ...), or "?"
 * for a byte that names no method of that column type. */
const char *tally__codec_method_name(int is_f64, unsigned method);

/* A sequential kernel replaces a random-access one only when smaller by more
 * than this many bytes (codec.c, invariant 4). */
#define TALLY__CODEC_RANDOM_ACCESS_SLACK 2u

#endif /* TALLY_CODEC_METHODS_H */
