/*
 * config.c — the server's configuration (config.h).
 *
 * One table (KEYS) describes every setting once; its three spellings are
 * derived from the table name: file key `max_body_bytes`, environment
 * TALLY_MAX_BODY_BYTES, flag --max-body-bytes (or --max-body-bytes=V).
 *
 * Invariants:
 *  (1) Sources apply in order defaults < file < environment < flags; a
 *      later source overrides only the keys it sets.
 *  (2) Every value is validated when it is read, with an error naming its
 *      source ("flag --port", "TALLY_PORT", "file x.conf:3"); nothing
 *      invalid reaches tally_config.
 *  (3) artifact_root, when no source sets it, is <data>/artifacts of the
 *      final data directory.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tally/engine.h"

typedef enum kind { K_STR, K_PORT, K_UINT, K_SIZE, K_BOOL, K_DURABILITY, K_ARTIFACT_FSYNC } kind;

typedef struct key {
    const char *name;   /* file spelling; env and flag derive from it */
    kind kind;
    size_t off;         /* offset in tally_config */
    size_t cap;         /* K_STR: buffer size */
    uint64_t lo, hi;    /* K_UINT / K_SIZE bounds */
    const char *help;
} key;

#define OFF(f) offsetof(tally_config, f)
static const key KEYS[] = {
    {"host", K_STR, OFF(host), sizeof(((tally_config *)0)->host), 0, 0,
     "listen address (IPv4, IPv6 or name), default 127.0.0.1"},
    {"port", K_PORT, OFF(port), 0, 0, 65535, "TCP port, default 5000 (0: any free port)"},
    {"data", K_STR, OFF(data_dir), sizeof(((tally_config *)0)->data_dir), 0, 0,
     "data directory, default ./tally-data"},
    {"artifact_root", K_STR, OFF(artifact_root), sizeof(((tally_config *)0)->artifact_root), 0, 0,
     "local artifact root, default <data>/artifacts"},
    {"max_body_bytes", K_SIZE, OFF(max_body_bytes), 0, 1024, (uint64_t)4 << 30,
     "largest JSON request body (K/M/G suffixes), default 32M"},
    {"threads", K_UINT, OFF(threads), 0, 0, 1024,
     "0: a thread per connection (default); N: a pool of N threads sharing the connections"},
    {"timeout", K_UINT, OFF(connection_timeout_s), 0, 1, 86400,
     "idle connection timeout in seconds, default 60"},
    {"max_connections", K_UINT, OFF(max_connections), 0, 1, 1000000,
     "concurrent connections, default 1024"},
    {"durability", K_DURABILITY, OFF(durability), 0, 0, 0,
     "sync | group | async (engine acknowledgement), default group"},
    {"memory_budget", K_SIZE, OFF(memory_budget_bytes), 0, (uint64_t)16 << 20, UINT64_MAX,
     "engine memory budget (K/M/G suffixes), default 512M"},
    {"query_cache_budget", K_SIZE, OFF(query_cache_budget_bytes), 0, 0, UINT64_MAX,
     "query (rollup) cache budget (K/M/G suffixes), default 256M"},
    {"metadata_memory_budget", K_SIZE, OFF(metadata_memory_budget_bytes), 0, 0, UINT64_MAX,
     "SQLite's heap, all connections (K/M/G suffixes), default 64M; 0: no cap"},
    {"mapped_budget", K_SIZE, OFF(mapped_budget_bytes), 0, (uint64_t)1 << 20, UINT64_MAX,
     "segment bytes reads may map before mapped pages are released (K/M/G), default 512M"},
    {"log_requests", K_BOOL, OFF(log_requests), 0, 0, 0,
     "1: one JSON line per request on stderr, 0: none; default 1"},
    {"auth", K_BOOL, OFF(auth), 0, 0, 0, "1: require users and permissions (auth.h); default 0"},
    {"default_permission", K_STR, OFF(default_permission),
     sizeof(((tally_config *)0)->default_permission), 0, 0,
     "READ | EDIT | MANAGE | NO_PERMISSIONS where a user has no row; default READ"},
    {"admin_username", K_STR, OFF(admin_username), sizeof(((tally_config *)0)->admin_username), 0,
     0, "admin created at start when absent; default admin"},
    {"admin_password", K_STR, OFF(admin_password), sizeof(((tally_config *)0)->admin_password), 0,
     0, "that admin's password (needed only to create it)"},
    {"insecure_allow_public_without_auth", K_BOOL, OFF(insecure_public_no_auth), 0, 0, 0,
     "1: listen on a non-loopback address with auth off; default 0"},
    {"tls_cert", K_STR, OFF(tls_cert), sizeof(((tally_config *)0)->tls_cert), 0, 0,
     "PEM certificate file: serve HTTPS (with tls_key)"},
    {"tls_key", K_STR, OFF(tls_key), sizeof(((tally_config *)0)->tls_key), 0, 0,
     "PEM private key file for tls_cert"},
    {"request_budget", K_SIZE, OFF(request_budget_bytes), 0, (uint64_t)1 << 20, UINT64_MAX,
     "request bodies buffered at once (K/M/G suffixes), default 256M"},
    {"max_connections_per_ip", K_UINT, OFF(max_connections_per_ip), 0, 0, 1000000,
     "concurrent connections per client address, default 128 (0: no limit)"},
    {"body_timeout", K_UINT, OFF(body_timeout_s), 0, 1, 86400,
     "seconds a JSON request body may take to arrive, default 60"},
    {"artifact_fsync", K_ARTIFACT_FSYNC, OFF(artifact_fsync), 0, 0, 0,
     "always | background (artifact upload acknowledged before its fsync), default background"},
    {"artifact_direct_writes", K_BOOL, OFF(artifact_direct_writes), 0, 0, 0,
     "1: large artifact uploads written with O_DIRECT, past the page cache; default 1"},
    {"webhook_secret_key_file", K_STR, OFF(webhook_secret_key_file),
     sizeof(((tally_config *)0)->webhook_secret_key_file), 0, 0,
     "key that seals webhook secrets at rest (created when missing), default "
     "<data>/webhook-secret.key"},
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static void set_defaults(tally_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 5000;
    snprintf(c->data_dir, sizeof c->data_dir, "./tally-data");
    c->max_body_bytes = (uint64_t)32 << 20;
    c->threads = 0; /* a thread per connection */
    c->connection_timeout_s = 60;
    c->max_connections = 1024;
    c->durability = TALLY_DURABILITY_GROUP;
    c->memory_budget_bytes = (uint64_t)512 << 20;
    c->query_cache_budget_bytes = (uint64_t)256 << 20;
    c->metadata_memory_budget_bytes = (uint64_t)64 << 20;
    c->mapped_budget_bytes = (uint64_t)512 << 20;
    c->log_requests = 1;
    snprintf(c->default_permission, sizeof c->default_permission, "READ");
    snprintf(c->admin_username, sizeof c->admin_username, "admin");
    c->request_budget_bytes = (uint64_t)256 << 20;
    c->max_connections_per_ip = 128;
    c->body_timeout_s = 60;
    c->artifact_fsync = TALLY_ARTIFACT_FSYNC_BACKGROUND;
    c->artifact_direct_writes = 1;
}

/* "32M", "512MiB", "1g", "4096" -> bytes. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    uint64_t mul = 1;
    switch (tolower((unsigned char)*end)) {
    case 'k': mul = (uint64_t)1 << 10; end++; break;
    case 'm': mul = (uint64_t)1 << 20; end++; break;
    case 'g': mul = (uint64_t)1 << 30; end++; break;
    case 't': mul = (uint64_t)1 << 40; end++; break;
    default: break;
    }
    if (mul > 1 && (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0))
        end += strlen(end);
    if (*end || (v && mul > UINT64_MAX / v))
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

static int parse_uint(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int set_value(tally_config *c, const key *k, const char *v, const char *src, char *err,
                     size_t cap)
{
    char *field = (char *)c + k->off;
    uint64_t u = 0;
    switch (k->kind) {
    case K_STR:
        if (!*v) {
            snprintf(err, cap, "%s: %s must not be empty", src, k->name);
            return -1;
        }
        if (strlen(v) >= k->cap) {
            snprintf(err, cap, "%s: %s is too long (at most %zu bytes)", src, k->name, k->cap - 1);
            return -1;
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_PORT:
        if (parse_uint(v, &u) != 0 || u > 65535) {
            snprintf(err, cap, "%s: port must be a number from 0 to 65535, not '%s'", src, v);
            return -1;
        }
        c->port = (int)u;
        return 0;
    case K_UINT:
        if (parse_uint(v, &u) != 0 || u < k->lo || u > k->hi) {
            snprintf(err, cap, "%s: %s must be a whole number from %" PRIu64 " to %" PRIu64 ", not '%s'",
                     src, k->name, k->lo, k->hi, v);
            return -1;
        }
        *(unsigned *)(void *)field = (unsigned)u;
        return 0;
    case K_SIZE:
        if (parse_size(v, &u) != 0 || u < k->lo || u > k->hi) {
            snprintf(err, cap,
                     "%s: %s must be a size from %" PRIu64 " to %" PRIu64
                     " bytes (suffixes K, M, G, T), not '%s'",
                     src, k->name, k->lo, k->hi, v);
            return -1;
        }
        *(uint64_t *)(void *)field = u;
        return 0;
    case K_BOOL:
        if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
            strcasecmp(v, "on") == 0)
            *(int *)(void *)field = 1;
        else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ||
                 strcasecmp(v, "off") == 0)
            *(int *)(void *)field = 0;
        else {
            snprintf(err, cap, "%s: %s must be 0 or 1, not '%s'", src, k->name, v);
            return -1;
        }
        return 0;
    case K_DURABILITY:
        if (strcasecmp(v, "sync") == 0)
            c->durability = TALLY_DURABILITY_SYNC;
        else if (strcasecmp(v, "group") == 0)
            c->durability = TALLY_DURABILITY_GROUP;
        else if (strcasecmp(v, "async") == 0)
            c->durability = TALLY_DURABILITY_ASYNC;
        else {
            snprintf(err, cap, "%s: durability must be sync, group or async, not '%s'", src, v);
            return -1;
        }
        return 0;
    case K_ARTIFACT_FSYNC:
        if (strcasecmp(v, "always") == 0)
            c->artifact_fsync = TALLY_ARTIFACT_FSYNC_ALWAYS;
        else if (strcasecmp(v, "background") == 0)
            c->artifact_fsync = TALLY_ARTIFACT_FSYNC_BACKGROUND;
        else {
            snprintf(err, cap, "%s: artifact_fsync must be always or background, not '%s'", src, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* The key whose file name equals name[0..n) with '-' read as '_'. */
static const key *find_key(const char *name, size_t n)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *k = KEYS[i].name;
        if (strlen(k) != n)
            continue;
        size_t j = 0;
        while (j < n && (name[j] == k[j] || (name[j] == '-' && k[j] == '_')))
            j++;
        if (j == n)
            return &KEYS[i];
    }
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int load_file(tally_config *c, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "cannot read config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char src[1200];
        snprintf(src, sizeof src, "file %s:%d", path, lineno);
        if (!eq) {
            snprintf(err, cap, "%s: expected 'key = value'", src);
            rc = -1;
            break;
        }
        *eq = 0;
        char *name = trim(s), *value = trim(eq + 1);
        size_t vn = strlen(value);
        if (vn >= 2 && ((value[0] == '"' && value[vn - 1] == '"') ||
                        (value[0] == '\'' && value[vn - 1] == '\''))) {
            value[vn - 1] = 0;
            value++;
        }
        const key *k = find_key(name, strlen(name));
        if (!k) {
            snprintf(err, cap, "%s: unknown key '%s'", src, name);
            rc = -1;
            break;
        }
        rc = set_value(c, k, value, src, err, cap);
    }
    fclose(f);
    return rc;
}

static int load_env(tally_config *c, char *err, size_t cap)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char name[64] = "TALLY_";
        size_t o = strlen(name);
        for (const char *p = KEYS[i].name; *p && o + 1 < sizeof name; p++)
            name[o++] = (char)toupper((unsigned char)*p);
        name[o] = 0;
        const char *v = getenv(name);
        if (v && *v && set_value(c, &KEYS[i], v, name, err, cap) != 0)
            return -1;
    }
    return 0;
}

const char *tally_config_help(void)
{
    return "usage: tally serve [options]\n"
           "\n"
           "options (each also settable as TALLY_<NAME> in the environment or\n"
           "name = value in the --config file; flags win over the environment,\n"
           "which wins over the file):\n"
           "  --host ADDR             listen address, default 127.0.0.1\n"
           "  --port N                TCP port, default 5000 (0: any free port)\n"
           "  --data DIR              data directory, default ./tally-data\n"
           "  --artifact-root DIR     local artifact root, default <data>/artifacts\n"
           "  --config FILE           read settings from FILE (also TALLY_CONFIG)\n"
           "  --max-body-bytes SIZE   largest JSON request body, default 32M\n"
           "  --threads N             0: a thread per connection (default); N: a pool\n"
           "                          of N threads sharing the connections\n"
           "  --timeout SECONDS       idle connection timeout, default 60\n"
           "  --max-connections N     concurrent connections, default 1024\n"
           "  --durability MODE       sync | group | async, default group\n"
           "  --memory-budget SIZE    engine memory budget, default 512M\n"
           "  --query-cache-budget SIZE\n"
           "                          query (rollup) cache budget, default 256M\n"
           "  --metadata-memory-budget SIZE\n"
           "                          SQLite's heap, all connections, default 64M\n"
           "  --mapped-budget SIZE    segment bytes read between releases of the\n"
           "                          pages mapped by reads, default 512M\n"
           "  --log-requests 0|1      one JSON line per request on stderr, default 1\n"
           "  --auth [0|1]            require authentication (users, permissions,\n"
           "                          tokens, audit log), default 0\n"
           "  --default-permission P  READ | EDIT | MANAGE | NO_PERMISSIONS, default READ\n"
           "  --admin-username NAME   admin created at start if absent, default admin\n"
           "  --admin-password PASS   its password (TALLY_ADMIN_PASSWORD), needed only\n"
           "                          to create it\n"
           "  --tls-cert FILE         PEM certificate: serve HTTPS (with --tls-key)\n"
           "  --tls-key FILE          PEM private key of --tls-cert\n"
           "  --insecure-allow-public-without-auth [0|1]\n"
           "                          listen on a non-loopback address with auth off\n"
           "                          (refused otherwise), default 0\n"
           "  --request-budget SIZE   request bodies buffered at once, default 256M\n"
           "  --max-connections-per-ip N  per client address, default 128 (0: no limit)\n"
           "  --body-timeout SECONDS  a JSON request body must arrive within, default 60\n"
           "  --artifact-fsync MODE   always | background, default background: an\n"
           "                          artifact upload is acknowledged after its rename\n"
           "                          and fsync'd by a background thread right after\n"
           "                          (kill -9 loses nothing; a power cut, what that\n"
           "                          thread had not fsync'd yet); always: acknowledged\n"
           "                          after the fsync\n"
           "  --artifact-direct-writes 0|1  write an upload's bytes past its first 4 MiB\n"
           "                          with O_DIRECT (no page cache), default 1; 0 for\n"
           "                          disks slower than the network\n"
           "  --webhook-secret-key-file FILE  the key sealing webhook secrets at rest,\n"
           "                          created when missing; default\n"
           "                          <data>/webhook-secret.key\n"
           "  --help                  this text\n";
}

int tally_config_load(tally_config *c, int argc, char **argv, char *err, size_t cap)
{
    set_defaults(c);
    if (cap)
        err[0] = 0;
    /* The config file comes first (invariant 1), so find --config early. */
    const char *file = getenv("TALLY_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    if (file && *file) {
        if (strlen(file) >= sizeof c->config_file) {
            snprintf(err, cap, "config file name too long");
            return -1;
        }
        if (load_file(c, file, err, cap) != 0)
            return -1;
        snprintf(c->config_file, sizeof c->config_file, "%s", file);
    }
    if (load_env(c, err, cap) != 0)
        return -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, cap, "unexpected argument '%s' (see --help)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const char *value;
        const key *bk = eq ? NULL : find_key(name, n);
        if (eq) {
            value = eq + 1;
        } else if (bk && bk->kind == K_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "1"; /* a bare boolean flag: --auth */
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, cap, "flag %s needs a value", a);
            return -1;
        }
        if (n == 6 && strncmp(name, "config", 6) == 0)
            continue; /* already read */
        const key *k = find_key(name, n);
        if (!k) {
            snprintf(err, cap, "unknown flag '--%.*s' (see --help)", (int)n, name);
            return -1;
        }
        char src[96];
        snprintf(src, sizeof src, "flag --%.*s", (int)(n < 60 ? n : 60), name);
        if (set_value(c, k, value, src, err, cap) != 0)
            return -1;
    }
    if (!c->artifact_root[0]) {
        int w = snprintf(c->artifact_root, sizeof c->artifact_root, "%s/artifacts", c->data_dir);
        if (w < 0 || (size_t)w >= sizeof c->artifact_root) {
            snprintf(err, cap, "data directory name too long for <data>/artifacts");
            return -1;
        }
    }
    return 0;
}
