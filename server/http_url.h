/*
 * http_url.h — splitting and percent-decoding a request target (the part of
 * the request line after the method) into a path and query arguments. Used
 * by http.c for every request, and by the fuzz target of the request path
 * (tests/fuzz/fuzz_http_request.c), so both exercise the same code.
 *
 * Invariants:
 *  (1) Decoding is in place: the path and every key and value point into
 *      the caller's buffer, which must outlive them.
 *  (2) A target that decodes to a NUL byte, or that is neither origin-form
 *      ("/...") nor absolute-form ("http://host/..."), is refused (-1).
 *  (3) Malformed %-escapes stay literal (as werkzeug does); '+' is a space
 *      in the query only.
 */
#ifndef TALLY_SERVER_HTTP_URL_H
#define TALLY_SERVER_HTTP_URL_H

#include <stddef.h>

#include "http.h"

/* Parses target (modified in place) into *path and (*args)[0..*n_args),
 * growing *args (capacity *args_cap, realloc'd; caller frees) as needed.
 * 0, or -1 for a bad target or out of memory. */
int tally_url_parse(char *target, const char **path, tally_query_arg **args, size_t *n_args,
                    size_t *args_cap);

/* The value of hex digit c (0-9, a-f, A-F), or -1. */
int tally_url_hexval(int c);

#endif /* TALLY_SERVER_HTTP_URL_H */
