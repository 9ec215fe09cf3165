/*
 * server.c — `tally serve`: configuration, the data directory, the engine,
 * the store, the HTTP layer, signals and the graceful shutdown.
 *
 * States and the function that moves between them:
 *
 *   CONFIG --tally_config_load--> OPENING --engine/store open--> SERVING
 *   SERVING --SIGTERM/SIGINT (sigtimedwait; meanwhile malloc_trim every TRIM_S)-->
 *   DRAINING --tally_http_stop--> CLOSING --tally_store_close,
 *   tally_engine_close--> exit 0 (1 on error)
 *
 * Invariants:
 *  (1) SIGTERM and SIGINT are blocked before any thread starts, so every
 *      thread inherits the mask and only the main thread's sigtimedwait
 *      sees them; SIGPIPE is ignored (a client closing early is not fatal).
 *  (2) The store and the engine close only after tally_http_stop returned:
 *      no handler can run against a closed store or engine.
 *  (3) engine close = drain the queue, seal, checkpoint: acknowledged
 *      points are on disk before the process exits 0.
 *  (4) The webhook dispatcher starts after the store and before the HTTP
 *      layer, and stops after the HTTP layer and before the store; test
 *      deliveries in progress are aborted before the HTTP layer drains.
 *  (5) The artifact syncer (artifact_fsync background) starts before the
 *      HTTP layer and stops after it: every upload acknowledged is fsync'd
 *      before the process exits 0.
 */
#include "server.h"

#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app.h"
#include "artifact_fs.h"
#include "artifact_sync.h"
#include "audit.h"
#include "auth.h"
#include "config.h"
#include "routes.h"
#include "stats.h"
#include "store.h"
#include "tally/engine.h"
#include "tally/query.h"
#include "webhooks.h"

/* Uploads queued for the background fsync at most (<= 3 descriptors each);
 * beyond, an upload fsyncs itself before its 200 (artifact_sync.h (1)). */
#define ARTIFACT_SYNC_QUEUE 64
#define TRIM_S 10 /* seconds between trims of malloc's free memory */

/* mkdir -p; 0 or -errno. */
static int make_dirs(const char *path)
{
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when every address host resolves to is a loopback address (127.0.0.0/8,
 * ::1, ::ffff:127.x), 0 otherwise or when it does not resolve. */
static int host_is_loopback(const char *host)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, "0", &hints, &res) != 0 || !res)
        return 0;
    int all = 1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)ai->ai_addr;
            all &= (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)ai->ai_addr;
            const uint8_t *b = a->sin6_addr.s6_addr;
            static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            all &= IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                   (memcmp(b, v4mapped, 12) == 0 && b[12] == 127);
        } else {
            all = 0;
        }
    }
    freeaddrinfo(res);
    return all;
}

/* Stops and frees what start-up opened so far, latest first (each step
 * takes NULL: what was not opened yet is skipped). */
static void stop_opened(tally_server *srv, tally_webhooks *hooks)
{
    tally_artifact_syncer_stop(srv->artifact_syncer, NULL);
    tally_webhooks_stop(hooks);
    tally_audit_close(srv->audit);
    tally_auth_close(srv->auth);
    tally_store_close(srv->store);
    tally_engine_close(srv->engine);
    tally_stats_free(srv->stats);
}

int tally_serve_main(int argc, char **argv)
{
    tally_server srv;
    memset(&srv, 0, sizeof srv);
    char err[1024];
    int rc = tally_config_load(&srv.cfg, argc, argv, err, sizeof err);
    if (rc == 1) {
        fputs(tally_config_help(), stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "tally serve: %s\n", err);
        return 2;
    }

    /* The safe default: nobody reaches an unauthenticated server from
     * another machine unless the operator says so in so many words. */
    if (!srv.cfg.auth && !srv.cfg.insecure_public_no_auth && !host_is_loopback(srv.cfg.host)) {
        fprintf(stderr,
                "tally serve: refusing to listen on non-loopback address '%s' without "
                "authentication. Turn authentication on (--auth, with --admin-password), or, "
                "if something else guards this address, start with "
                "--insecure-allow-public-without-auth\n",
                srv.cfg.host);
        return 2;
    }

    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL); /* invariant (1) */
    signal(SIGPIPE, SIG_IGN);

    char path[1200];
    if ((rc = make_dirs(srv.cfg.data_dir)) != 0) {
        fprintf(stderr, "tally serve: cannot create data directory %s: %s\n", srv.cfg.data_dir,
                strerror(-rc));
        return 1;
    }
    if (tally_routes_init() != 0) {
        fprintf(stderr, "tally serve: the route tables are inconsistent\n");
        return 1;
    }
    srv.stats = tally_stats_new(tally_routes_count());
    if (!srv.stats) {
        fprintf(stderr, "tally serve: out of memory\n");
        return 1;
    }
    srv.started_ms = wall_ms();

    tally_engine_options eo;
    tally_engine_options_init(&eo);
    eo.durability = (tally_durability)srv.cfg.durability;
    eo.memory_budget_bytes = srv.cfg.memory_budget_bytes;
    eo.map_trim_bytes = srv.cfg.mapped_budget_bytes;
    tally_query_cache_set_budget(srv.cfg.query_cache_budget_bytes);
    snprintf(path, sizeof path, "%s/metrics", srv.cfg.data_dir);
    rc = tally_engine_open(path, &eo, &srv.engine);
    if (rc != 0) {
        fprintf(stderr, "tally serve: cannot open the metric engine at %s: %s\n", path,
                tally_strerror(rc));
        tally_stats_free(srv.stats);
        return 1;
    }
    snprintf(path, sizeof path, "%s/meta.db", srv.cfg.data_dir);
    tally_store_memory_limit(srv.cfg.metadata_memory_budget_bytes);
    tally_store_options so;
    tally_store_options_init(&so);
    so.open_readers = 1;
    rc = tally_store_open_opts(path, &so, &srv.store, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "tally serve: cannot open the metadata store at %s: %s\n", path, err);
        tally_engine_close(srv.engine);
        tally_stats_free(srv.stats);
        return 1;
    }

    /* Uploads cut off by a crash left temporaries behind: remove them
     * before anything can be uploaded again (artifact_fs.h (3)). */
    rc = tally_artifact_sweep(srv.cfg.artifact_root);
    if (rc > 0)
        fprintf(stderr, "{\"level\":\"info\",\"message\":\"removed %d unfinished artifact "
                        "uploads\"}\n",
                rc);
    /* Webhook deliveries start before the HTTP layer so that the registry
     * handlers' hook is set before any request runs. */
    tally_webhook_policy hook_policy;
    tally_webhooks *hooks = NULL;
    int bad_env = tally_webhook_policy_from_env(&hook_policy, err, sizeof err) != 0;
    if (srv.cfg.webhook_secret_key_file[0])
        snprintf(hook_policy.secret_key_file, sizeof hook_policy.secret_key_file, "%s",
                 srv.cfg.webhook_secret_key_file);
    else
        snprintf(hook_policy.secret_key_file, sizeof hook_policy.secret_key_file,
                 "%s/webhook-secret.key", srv.cfg.data_dir);
    if (bad_env || tally_webhooks_start(srv.store, &hook_policy, &hooks, err, sizeof err) != 0) {
        fprintf(stderr, "tally serve: %s\n", err);
        stop_opened(&srv, hooks);
        return bad_env ? 2 : 1; /* a malformed setting is a configuration error */
    }
    srv.registry_event = tally_webhooks_registry_event;
    srv.registry_events_committed = tally_webhooks_events_committed;
    srv.registry_event_ctx = hooks;
    if (srv.cfg.auth && (tally_auth_open(srv.store, &srv.cfg, &srv.auth, err, sizeof err) != 0 ||
                         (tally_audit_open(srv.store, &srv.audit) != 0 &&
                          snprintf(err, sizeof err, "cannot start the audit log writer") > 0))) {
        fprintf(stderr, "tally serve: %s\n", err);
        stop_opened(&srv, hooks);
        return 1;
    }
    if (!srv.cfg.auth && srv.cfg.insecure_public_no_auth && !host_is_loopback(srv.cfg.host))
        fprintf(stderr, "{\"level\":\"warn\",\"message\":\"INSECURE: serving %s without "
                        "authentication (--insecure-allow-public-without-auth)\"}\n",
                srv.cfg.host);

    if (srv.cfg.artifact_fsync == TALLY_ARTIFACT_FSYNC_BACKGROUND &&
        ((rc = tally_artifact_syncer_new(ARTIFACT_SYNC_QUEUE, &srv.artifact_syncer)) != 0 ||
         (rc = tally_artifact_syncer_start(srv.artifact_syncer)) != 0)) {
        fprintf(stderr, "tally serve: cannot start the artifact syncer: %s\n", strerror(-rc));
        stop_opened(&srv, hooks);
        return 1;
    }

    tally_http *http = NULL;
    if (tally_http_start(&srv, &http, err, sizeof err) != 0) {
        fprintf(stderr, "tally serve: %s\n", err);
        stop_opened(&srv, hooks);
        return 1;
    }
    const char *host = srv.cfg.host;
    int v6 = strchr(host, ':') != NULL;
    printf("tally listening on %s://%s%s%s:%d (data %s%s)\n", srv.cfg.tls_cert[0] ? "https" : "http",
           v6 ? "[" : "", host, v6 ? "]" : "", tally_http_port(http), srv.cfg.data_dir,
           srv.auth ? ", authentication on" : "");
    fflush(stdout);

    /* The main thread waits for a stop signal and, every TRIM_S, gives
     * back malloc's free pages: freed query results, cache entries and
     * request buffers stay in the heap's arenas (one per worker thread) as
     * fragmented free space until trimmed. (The segment mappings' pages
     * are bounded by the readers themselves: mapped_budget.) */
    int sig = 0;
    for (;;) {
        struct timespec wait = {TRIM_S, 0};
        sig = sigtimedwait(&stop_set, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT)
            break;
#if defined(__GLIBC__)
        if (sig < 0 && errno == EAGAIN)
            malloc_trim(0);
#endif
    }
    fprintf(stderr, "{\"level\":\"info\",\"message\":\"%s received, shutting down\"}\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");

    /* Test deliveries in progress (synchronous) abort, so the drain below
     * does not wait on a receiver. */
    tally_webhooks_shutdown_begins(hooks);
    /* Drain for as long as a connection may idle, at most 30 s. */
    unsigned drain_ms = srv.cfg.connection_timeout_s * 1000u;
    if (drain_ms > 30000)
        drain_ms = 30000;
    int left = tally_http_stop(http, drain_ms);
    int exit_code = 0;
    if (left > 0)
        fprintf(stderr, "{\"level\":\"warn\",\"message\":\"%d requests still in flight at "
                        "shutdown were cut off\"}\n",
                left);
    /* No upload can commit any more: fsync what is queued (invariant 5). */
    tally_artifact_sync_stats sync_final;
    int had_syncer = srv.artifact_syncer != NULL;
    uint64_t sync_failed = tally_artifact_syncer_stop(srv.artifact_syncer, &sync_final);
    srv.artifact_syncer = NULL;
    if (had_syncer)
        fprintf(stderr, "{\"level\":\"info\",\"message\":\"artifact syncer drained\","
                        "\"pushed\":%llu,\"synced\":%llu,\"failed\":%llu,\"refused\":%llu}\n",
                (unsigned long long)sync_final.pushed, (unsigned long long)sync_final.synced,
                (unsigned long long)sync_final.failed, (unsigned long long)sync_final.refused);
    if (sync_failed) {
        fprintf(stderr, "{\"level\":\"error\",\"message\":\"%llu acknowledged artifact uploads "
                        "could not be fsync'd (see the artifact-sync errors above)\"}\n",
                (unsigned long long)sync_failed);
        exit_code = 1;
    }
    /* After the HTTP layer (no handler queues any more), before the store:
     * attempts in flight are aborted and stay PENDING for the next start. */
    tally_webhooks_stop(hooks);
    tally_audit_close(srv.audit); /* commits what is queued (audit.h (3)) */
    tally_auth_close(srv.auth);
    tally_store_close(srv.store);
    rc = tally_engine_close(srv.engine);
    if (rc != 0) {
        fprintf(stderr, "tally serve: closing the metric engine failed: %s\n", tally_strerror(rc));
        exit_code = 1;
    }
    tally_stats_free(srv.stats);
    return exit_code;
}
