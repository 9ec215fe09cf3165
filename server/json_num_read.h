/*
 * json_num_read.h — reading JSON numbers: the one place the server turns a
 * JSON number's text into a double on its hot paths (log-batch). The text's
 * grammar (RFC 8259) is checked by tally_json_number_read, assumed by
 * tally_json_number_to_double.
 */
#ifndef TALLY_SERVER_JSON_NUM_READ_H
#define TALLY_SERVER_JSON_NUM_READ_H

#include <stddef.h>

/* Reads the JSON number (RFC 8259 grammar) that starts at s, ending before
 * end or at the first byte that cannot continue it: its length, and in *out
 * the nearest double, ties to even, exactly as strtod (overflow gives
 * ±infinity; NAN when it is 400 bytes or longer). 0 when no number starts
 * at s ("-", "1.", "1e+", "x"). The caller checks what follows. */
size_t tally_json_number_read(const char *s, const char *end, double *out);

/* s[0..n) (a JSON number, grammar already checked, not NUL-terminated) to
 * the nearest double, ties to even, exactly as strtod. Overflow gives
 * ±infinity; NAN when n >= 400 (no JSON number a client sends is that long). */
double tally_json_number_to_double(const char *s, size_t n);

#endif /* TALLY_SERVER_JSON_NUM_READ_H */
