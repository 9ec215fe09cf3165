/*
 * config.h — the server's configuration, from (lowest to highest priority)
 * built-in defaults, an optional config file (key = value lines), TALLY_*
 * environment variables, and command-line flags. Every key has all three
 * spellings: file `max_body_bytes`, env TALLY_MAX_BODY_BYTES, flag
 * --max-body-bytes. Sizes take K/M/G/T suffixes (powers of 1024); bools are
 * 0/1 (true/false, yes/no, on/off); durability is sync|group|async;
 * artifact_fsync is always|background. The
 * full list with defaults is tally_config_help() and docs/api.md.
 */
#ifndef TALLY_SERVER_CONFIG_H
#define TALLY_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* When an artifact upload is fsync'd (artifact_fs.h, artifact_sync.h). */
typedef enum tally_artifact_fsync {
    TALLY_ARTIFACT_FSYNC_BACKGROUND = 0, /* acknowledged after the rename; synced within ~1 s */
    TALLY_ARTIFACT_FSYNC_ALWAYS = 1      /* acknowledged after fsync of file and directory */
} tally_artifact_fsync;

typedef struct tally_config {
    char host[256];               /* listen address, default 127.0.0.1 */
    int port;                     /* default 5000 */
    char data_dir[1024];          /* default ./tally-data */
    char artifact_root[1024];     /* local artifact root, default <data_dir>/artifacts */
    uint64_t max_body_bytes;      /* JSON request bodies, default 32 MiB */
    unsigned threads;             /* 0 (default): a thread per connection; N: a pool of N */
    unsigned connection_timeout_s;/* idle/read/write timeout, default 60 */
    unsigned max_connections;     /* default 1024 */
    int durability;               /* tally_durability, default group */
    uint64_t memory_budget_bytes; /* engine budget, default 512 MiB */
    uint64_t query_cache_budget_bytes; /* the query layer's rollup cache, default 256 MiB */
    uint64_t metadata_memory_budget_bytes; /* SQLite's heap, all connections, default 64 MiB */
    uint64_t mapped_budget_bytes; /* segment bytes read between releases of the mapped
                                     pages (engine map_trim_bytes), default 512 MiB */
    int log_requests;             /* one JSON line per request on stderr, default 1 */
    uint64_t request_budget_bytes;/* request bodies buffered at once, default 256 MiB */
    unsigned max_connections_per_ip; /* per client address, default 128 (0: no limit) */
    unsigned body_timeout_s;      /* a JSON request body must arrive within, default 60 */
    int artifact_fsync;           /* tally_artifact_fsync, default background */
    int artifact_direct_writes;   /* 1: large uploads written with O_DIRECT (artifact_writer.h) */
    char webhook_secret_key_file[1024]; /* seals webhook secrets (secret_box.h); default
                                           "" = <data_dir>/webhook-secret.key */
    char config_file[1024];       /* the file read, or "" */
    /* Authentication and TLS (auth.h, docs/api.md "Authentication"). */
    int auth;                     /* 1: users, permissions, tokens, audit log; default 0 */
    char default_permission[32];  /* READ | EDIT | MANAGE | NO_PERMISSIONS, default READ */
    char admin_username[256];     /* bootstrap admin, default "admin" */
    char admin_password[256];     /* its password when it must be created; default "" */
    int insecure_public_no_auth;  /* 1: allow a non-loopback listen address without auth */
    char tls_cert[1024];          /* PEM certificate (chain) file: serve HTTPS; default "" */
    char tls_key[1024];           /* PEM private key file, with tls_cert */
} tally_config;

/* Defaults, then the file named by --config or TALLY_CONFIG, then the
 * environment, then argv (the arguments after "serve"). On error writes a
 * message to err (cap bytes) and returns -1; --help returns 1. */
int tally_config_load(tally_config *c, int argc, char **argv, char *err, size_t cap);

/* The --help text: every key with its flag spelling and default (static). */
const char *tally_config_help(void);

#endif /* TALLY_SERVER_CONFIG_H */
