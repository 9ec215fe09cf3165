/*
 * api_metrics.h — what the metric handler files (api_metrics.c, native.c)
 * share: per-thread scratch, engine errors as HTTP answers, the run check of
 * the write paths, and the fast writer of metric points as JSON.
 */
#ifndef TALLY_SERVER_API_METRICS_H
#define TALLY_SERVER_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "buf.h"
#include "logbatch.h"
#include "native_frame.h"

/* Scratch owned by one worker thread, reused request after request so the
 * hot paths allocate nothing once warm; freed when the thread exits. */
typedef struct tally__scratch {
    tally_logbatch lb;          /* log-batch parse state */
    tally_frame_decoder frame;  /* native ingest frames */
    tally_point *points;        /* history pages */
    size_t points_cap;          /* entries at points */
} tally__scratch;

/* This thread's scratch, or NULL when out of memory. */
tally__scratch *tally__scratch_get(void);
/* Room for n points in s->points: 0 or -1. */
int tally__scratch_points(tally__scratch *s, size_t n);

/* An engine error as an HTTP answer. Writers (writing != 0): budget full or
 * out of memory -> 429 REQUEST_LIMIT_EXCEEDED with Retry-After; writes paused
 * after a disk error (TALLY_ERETRY, resumes by itself), poisoned,
 * closing or an I/O error -> 503 TEMPORARILY_UNAVAILABLE with Retry-After;
 * a batch over the budget -> 400; a series id collision -> 409. Readers:
 * corrupt data -> 500 DATA_LOSS; a bad token (TALLY_EINVAL) -> 400. */
void tally__engine_error(tally_resp *resp, int rc, int writing);

/* Run check of the write paths, from the store's cache: 1 when run_id
 * exists and is active, else -1 with 404 RESOURCE_DOES_NOT_EXIST or 400
 * INVALID_PARAMETER_VALUE (or the store's error) in resp. */
int tally__run_writable(tally_server *srv, const char *run_id, tally_resp *resp);

/* Content-Type must be application/json (parameters allowed), §1.2. 1 or
 * -1 with resp filled. */
int tally__require_json_type(const tally_req *req, tally_resp *resp);

/* Appends v as a JSON integer. */
void tally__put_int(tally_buf *b, int64_t v);

#endif /* TALLY_SERVER_API_METRICS_H */
