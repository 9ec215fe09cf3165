/*
 * logbatch_internal.h — what the two log-batch parsers share (logbatch.c,
 * the general one over jsmn tokens; logbatch_fast.c, one pass for the
 * common shape). Not for other callers: they use logbatch.h.
 *
 * The split: tally_logbatch_parse tries the fast parser first. It accepts
 * only bodies in the shape every client sends (no escapes, no nulls, no
 * unknown or repeated fields, numbers where numbers belong, within the
 * count limits) and declines anything else before it has reported any
 * error, leaving the body to the general parser, which alone decides checks
 * (1)-(3) of logbatch.h. Both then run the same checks (4)-(7) and build the
 * same result (tally__lb_finish), so for every body either the general
 * parser alone or the fast one gives the same answer, byte for byte
 * (tests/unit/test_logbatch.c and fuzz_logbatch check this).
 */
#ifndef TALLY_SERVER_LOGBATCH_INTERNAL_H
#define TALLY_SERVER_LOGBATCH_INTERNAL_H

#include "logbatch.h"

#define TALLY_LB_DECLINED 1 /* the fast parser's "not my shape" */

/* Clears lb's result and reserves lb->strs for the strings of a body of len
 * bytes. 0 or TALLY_ENOMEM. Each parser calls it first. */
int tally__lb_begin(tally_logbatch *lb, size_t len);

/* Grows the array whose pointer is at pp to hold n elements of size sz,
 * contents kept. 0 or -1. */
int tally__lb_grow(void *pp, size_t *cap, size_t n, size_t sz);
#define TALLY_LB_GROW(lb, field, capfield, n)                                                  \
    tally__lb_grow(&(lb)->field, &(lb)->capfield, (n), sizeof *(lb)->field)

/* Readies the key groups for up to n_metrics metrics: an empty hash table
 * (lb->slots) and room in lb->groups. 0 or TALLY_ENOMEM. */
int tally__lb_groups_reset(tally_logbatch *lb, size_t n_metrics);

/* The group of metric key key[0..len) (decoded bytes, kept by pointer),
 * created in first-seen order. *n_groups counts the groups so far. */
uint32_t tally__lb_group_of(tally_logbatch *lb, size_t *n_groups, const char *key, size_t len);

/* What a parser hands to tally__lb_finish: lb->metrics[0..n_metrics) with
 * value, timestamp, step and group filled (groups counted in n_groups, each
 * with its n_points); lb->kvs[0..n_params + n_tags) params then tags, key
 * and value pointing at their decoded bytes, their lengths in
 * lb->kv_toks[2i] and lb->kv_toks[2i + 1]; the run id decoded (run_id,
 * run_id_len) and as sent (raw, raw_len, quoted in its error). */
typedef struct tally_lb_parsed {
    const char *run_id, *raw_run_id;
    size_t run_id_len, raw_run_id_len;
    size_t n_metrics, n_params, n_tags, n_groups;
} tally_lb_parsed;

/* Checks (4)-(7) of logbatch.h, then the result: NUL-terminated run id,
 * params and tags in lb->strs, one series batch per key. 0, -1 (message
 * set) or TALLY_ENOMEM. */
int tally__lb_finish(tally_logbatch *lb, const tally_lb_parsed *p);

/* The fast parser: 0 or -1 or TALLY_ENOMEM as tally_logbatch_parse (only
 * ever -1 from tally__lb_finish), or TALLY_LB_DECLINED. */
int tally__logbatch_parse_fast(tally_logbatch *lb, const char *body, size_t len);

/* The general parser alone, skipping the fast one (for tests comparing the
 * two). Same contract as tally_logbatch_parse. */
int tally__logbatch_parse_general(tally_logbatch *lb, const char *body, size_t len);

#endif /* TALLY_SERVER_LOGBATCH_INTERNAL_H */
