/*
 * fuzz_wal.c — libFuzzer target for the engine's readers of untrusted disk
 * bytes other than blocks: WAL records, WAL files and the directory
 * checkpoint. The first input byte picks the mode:
 *   0  the bytes as one WAL record (tally__wal_read_record);
 *   1  the same after patching in a valid sequence number and checksum, so
 *      the batch decoder behind the checksum is reached;
 *   2  the bytes as a whole WAL file (with a valid file header put in front)
 *      in a fresh data directory, opened read-only: replay must not crash;
 *   3  the bytes as directory.tck, opened read-only: open must fail cleanly
 *      or succeed, never crash;
 *   4  round trip: a batch carved from the input is encoded and decoded back
 *      exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "alloc.h"
#include "tally/engine.h"
#include "wal.h"

static int count_series(void *ctx, const tally_series_batch *s)
{
    size_t *n = ctx;
    /* Touch every column byte so sanitizers check the bounds. */
    volatile uint64_t sink = 0;
    for (uint32_t i = 0; i < s->n_points; i++) {
        uint64_t a, b, c;
        memcpy(&a, (const char *)s->steps + 8ull * i, 8);
        memcpy(&b, (const char *)s->timestamps_ms + 8ull * i, 8);
        memcpy(&c, (const char *)s->values + 8ull * i, 8);
        sink += a + b + c;
    }
    (void)sink;
    *n += 1;
    return 0;
}

static void remove_fuzz_dir(void);
static void empty_dir(const char *path);

static const char *fuzz_dir(void)
{
    static char dir[512];
    if (!dir[0]) {
        atexit(remove_fuzz_dir);
        const char *base = getenv("TALLY_TEST_TMP");
        snprintf(dir, sizeof dir, "%s/fuzz-wal-%d", base && *base ? base : "/tmp", (int)getpid());
    }
    return dir;
}

static void remove_fuzz_dir(void)
{
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/wal", fuzz_dir());
    empty_dir(sub);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/seg", fuzz_dir());
    empty_dir(sub);
    rmdir(sub);
    empty_dir(fuzz_dir());
    rmdir(fuzz_dir());
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void open_read_only(void)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.read_only = 1;
    tally_engine *e = NULL;
    if (tally_engine_open(fuzz_dir(), &o, &e) == 0) {
        tally_engine_stats st;
        tally_engine_stats_get(e, &st);
        tally_engine_close(e);
    }
}

/* Empties one directory level (files only). */
static void empty_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char f[2048];
        snprintf(f, sizeof f, "%s/%s", path, de->d_name);
        unlink(f);
    }
    if (d)
        closedir(d);
}

/* An empty data directory with its wal/ and seg/ folders, without a shell. */
static void fresh_dir(void)
{
    char sub[1024];
    mkdir(fuzz_dir(), 0755);
    empty_dir(fuzz_dir());
    snprintf(sub, sizeof sub, "%s/wal", fuzz_dir());
    mkdir(sub, 0755);
    empty_dir(sub);
    snprintf(sub, sizeof sub, "%s/seg", fuzz_dir());
    mkdir(sub, 0755);
    empty_dir(sub);
}

static const tally_series_batch *expect_batch;
static int n_checked;

/* Compares a decoded series with the batch that was encoded, bit for bit. */
static int check_series(void *ctx, const tally_series_batch *s)
{
    (void)ctx;
    const tally_series_batch *x = expect_batch;
    uint32_t n = x->n_points;
    if (s->n_points != n || s->run_id_len != x->run_id_len || s->key_len != x->key_len ||
        memcmp(s->run_id, x->run_id, x->run_id_len) || memcmp(s->key, x->key, x->key_len) ||
        (n && (memcmp(s->steps, x->steps, 8ull * n) || memcmp(s->timestamps_ms, x->timestamps_ms, 8ull * n) ||
               memcmp(s->values, x->values, 8ull * n))))
        abort();
    n_checked++;
    return 0;
}

static void round_trip(const uint8_t *data, size_t size)
{
    uint32_t n = (uint32_t)(size / 24);
    if (n > 4096)
        n = 4096;
    int64_t *st = malloc(8 * (n + 1)), *ts = malloc(8 * (n + 1));
    double *va = malloc(8 * (n + 1));
    for (uint32_t i = 0; i < n; i++) {
        memcpy(&st[i], data + 24 * i, 8);
        memcpy(&ts[i], data + 24 * i + 8, 8);
        memcpy(&va[i], data + 24 * i + 16, 8);
    }
    tally_series_batch b = {"run", 3, "key", 3, n, st, ts, va};
    tally__wal_record rec;
    tally__wal_scratch ws = {0};
    if (tally__wal_encode_batch(&b, 1, &ws, &rec) != 0)
        abort();
    tally__wal_seal_record(&rec, 42);
    uint8_t *scratch = NULL;
    size_t cap = 0, used = 0;
    expect_batch = &b;
    n_checked = 0;
    if (tally__wal_read_record(rec.buf, rec.buf + rec.len, 42, &scratch, &cap, check_series,
                               NULL, &used) != 0 ||
        used != rec.len || n_checked != 1)
        abort();
    tally__free(scratch);
    tally__free(ws.raw);
    tally__free(ws.out);
    free(st);
    free(ts);
    free(va);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 5;
    data++;
    size--;
    uint8_t *scratch = NULL;
    size_t cap = 0, used, n_series = 0;
    switch (mode) {
    case 0:
        tally__wal_read_record(data, data + size, 1, &scratch, &cap, count_series, &n_series, &used);
        break;
    case 1: {
        if (size < TALLY_WAL_RECORD_HDR_SIZE)
            break;
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        tally__wal_record_hdr h;
        memcpy(&h, copy, sizeof h);
        h.magic = TALLY_WAL_RECORD_MAGIC;
        h.type = TALLY_WAL_TYPE_BATCH;
        h.flags &= TALLY_WAL_FLAG_LZ4;
        h.reserved = 0;
        h.seq = 1;
        size_t avail = size - sizeof h;
        if (h.stored_len > avail)
            h.stored_len = (uint32_t)avail;
        if (!(h.flags & TALLY_WAL_FLAG_LZ4))
            h.raw_len = h.stored_len;
        else if (h.raw_len > (1u << 24))
            h.raw_len = 1u << 24;
        memcpy(copy, &h, sizeof h);
        tally__wal_record rec = {copy, sizeof h + h.stored_len, h.raw_len};
        tally__wal_seal_record(&rec, 1);
        tally__wal_read_record(copy, copy + size, 1, &scratch, &cap, count_series, &n_series, &used);
        free(copy);
        break;
    }
    case 2: {
        fresh_dir();
        uint8_t *file = malloc(size + TALLY_WAL_FILE_HDR_SIZE);
        tally__wal_file_hdr fh;
        tally__wal_file_hdr_init(&fh, 1, 1);
        memcpy(file, &fh, sizeof fh);
        memcpy(file + sizeof fh, data, size);
        char path[1200];
        snprintf(path, sizeof path, "%s/wal/%016x.wal", fuzz_dir(), 1);
        write_file(path, file, size + sizeof fh);
        free(file);
        open_read_only();
        break;
    }
    case 3: {
        fresh_dir();
        char path[1200];
        snprintf(path, sizeof path, "%s/directory.tck", fuzz_dir());
        write_file(path, data, size);
        open_read_only();
        break;
    }
    default:
        round_trip(data, size);
        break;
    }
    tally__free(scratch);
    return 0;
}
