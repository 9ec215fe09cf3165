/*
 * budget.h — the HTTP layer's memory budget: bytes of request bodies being
 * received or held, counted against one limit (cfg.request_budget) so that
 * many clients sending at once cannot make the server buffer without bound.
 *
 * Admission: a request whose body would pass the limit is refused before
 * any of it is buffered — at once when Content-Length says its size, else
 * (chunked) at the piece that would pass it — with 429 REQUEST_LIMIT_EXCEEDED
 * and Retry-After (http.c). The engine's queues and heads have their own
 * budget (memory_budget, docs/engine.md "Memory"); together with the
 * per-connection pool of libmicrohttpd they bound what the server buffers
 * (docs/api.md §1.1).
 *
 * Invariants:
 *  (1) used <= limit at every moment: a reservation either fits whole
 *      (compare-and-swap) or takes nothing.
 *  (2) Every successful tally_budget_take is matched by a tally_budget_give
 *      of the same bytes (http.c gives back in its request-completed
 *      callback, which libmicrohttpd calls for every request it started).
 */
#ifndef TALLY_SERVER_BUDGET_H
#define TALLY_SERVER_BUDGET_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct tally_budget {
    uint64_t limit;           /* bytes */
    _Atomic uint64_t used;    /* bytes reserved now */
    _Atomic uint64_t refused; /* reservations refused since start */
    _Atomic uint64_t peak;    /* highest used seen */
} tally_budget;

void tally_budget_init(tally_budget *b, uint64_t limit);

/* Reserves n bytes: 0 when they fit (invariant 1), -1 otherwise. */
int tally_budget_take(tally_budget *b, uint64_t n);

/* Returns n bytes taken earlier. */
void tally_budget_give(tally_budget *b, uint64_t n);

/* Seconds a refused client should wait before retrying (Retry-After): 1
 * while the budget is merely busy, 2 when it is nearly all in use. */
unsigned tally_budget_retry_after(const tally_budget *b);

#endif /* TALLY_SERVER_BUDGET_H */
