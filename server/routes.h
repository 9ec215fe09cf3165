/*
 * routes.h — finding the route for a request (routes.c). The route tables
 * themselves are the handler files' arrays (app.h), listed once in
 * routes.c's TALLY_ROUTE_TABLES.
 *
 * Every route gets a dense index 0..n-1 at init (in table order), used by
 * stats.c for per-route counters; index n ("unmatched") counts requests that
 * found no route.
 */
#ifndef TALLY_SERVER_ROUTES_H
#define TALLY_SERVER_ROUTES_H

#include <stddef.h>

#include "app.h"

typedef struct tally_route_match {
    const tally_route *route; /* NULL when nothing matched */
    size_t index;             /* dense route index, or tally_routes_count() when unmatched */
    const char *sub_path;     /* points into the path given: after the mount prefix
                                 (api routes) or after the route's prefix (prefix routes) */
    int is_ajax;              /* the path starts with /ajax-api/2.0/ */
    int path_known;           /* some route has this path, for another method */
} tally_route_match;

/* Builds the lookup tables from TALLY_ROUTE_TABLES. Idempotent and
 * thread-safe; called by the HTTP layer before it starts. Returns 0, or -1
 * after printing each problem (duplicate method+path, missing handler) to
 * stderr: a programming error the server refuses to start with. */
int tally_routes_init(void);

/* Number of routes, and the label of route i ("unmatched" for i == count). */
size_t tally_routes_count(void);
const char *tally_routes_name(size_t i);
/* Route i (0 <= i < count), or NULL. */
const tally_route *tally_routes_get(size_t i);

/* The route serving method m on the URL-decoded path (no query string).
 * HEAD matches a route listing TALLY_HEAD, else one listing TALLY_GET.
 * Returns 1 and fills *out, or 0 (out->route NULL, out->index = count,
 * out->path_known says whether only the method was wrong). */
int tally_route_find(tally_method m, const char *path, tally_route_match *out);

#endif /* TALLY_SERVER_ROUTES_H */
