/*
 * audit.h — the audit log writer: records of state-changing requests
 * (authz.c makes them) committed to the store (store_auth.h) in batches by
 * one background thread, so that a SQLite commit per request stays off the
 * request path (issue 8's throughput figure: auth on vs off >= 0.95).
 *
 *   request thread   tally_audit_add: copy into the queue, return
 *   writer thread    every FLUSH_MS (or at BATCH records, or when asked by
 *                    tally_audit_sync): one transaction for the whole queue
 *
 * Invariants:
 *  (1) Records commit in the order they were queued; ids increase with it.
 *  (2) tally_audit_sync returns only after every record queued before the
 *      call committed (the audit search endpoint calls it, so a reader sees
 *      every change it could have observed).
 *  (3) tally_audit_close commits everything queued before returning.
 *  (4) Durability: a record is on disk (WAL, as every store write) at most
 *      FLUSH_MS after its request was answered; a process crash in that
 *      window loses it. A full queue (MAX_QUEUED) makes requests wait for
 *      the writer rather than drop records.
 */
#ifndef TALLY_SERVER_AUDIT_H
#define TALLY_SERVER_AUDIT_H

#include "store_auth.h"

typedef struct tally_audit tally_audit;

/* Starts the writer over store. 0 or -1 (out of memory, no thread). */
int tally_audit_open(tally_store *store, tally_audit **out);
/* Invariant (3), then stops the thread. NULL is a no-op. */
void tally_audit_close(tally_audit *a);

/* Queues a copy of r (its strings are copied). 0, or -1 out of memory
 * (then the record is written synchronously instead, or reported lost on
 * stderr if that fails too). */
int tally_audit_add(tally_audit *a, const tally_audit_record *r);

/* Invariant (2). 0, or the store error of the last failed commit. */
int tally_audit_sync(tally_audit *a);

#endif /* TALLY_SERVER_AUDIT_H */
