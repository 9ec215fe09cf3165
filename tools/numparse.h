/*
 * numparse.h — decimal text to double, exactly as strtod rounds it, with a
 * fast path for the common short numbers of metric files.
 *
 * Fast path (Clinger 1990): when the decimal significand w has at most 19
 * digits and fits in 53 bits, and the decimal exponent e is within +-22,
 * both w and 10^|e| are exact doubles, so one IEEE multiplication or
 * division (correctly rounded) gives the correctly rounded result: the
 * same double strtod returns. Everything else (17-digit significands above
 * 2^53, large exponents, nan, inf, hex, anything unusual) goes to strtod.
 */
#ifndef TALLY_TOOLS_NUMPARSE_H
#define TALLY_TOOLS_NUMPARSE_H

/* Parses a number at s (as strtod would, in the C locale), sets *end past
 * it (== s when there is none) and returns it. */
double num_parse(const char *s, char **end);

#endif /* TALLY_TOOLS_NUMPARSE_H */
