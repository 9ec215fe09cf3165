/*
 * test.h — the whole test framework: assertions that print both sides and
 * abort, a per-test temporary directory, and a closing summary line.
 * Each test file is its own executable (CTest gives each a timeout), with a
 * main() that calls TEST_RUN(fn) for each case and returns TEST_DONE().
 */
#ifndef TALLY_TEST_H
#define TALLY_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int test_n_passed_;

#define TEST_FAIL_(fmt, ...)                                                              \
    do {                                                                                  \
        fprintf(stderr, "%s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);             \
        abort();                                                                          \
    } while (0)

#define ASSERT(cond)                                                                      \
    do {                                                                                  \
        if (!(cond))                                                                      \
            TEST_FAIL_("assertion failed: %s", #cond);                                    \
    } while (0)

#define ASSERT_INT_(a, op, b)                                                             \
    do {                                                                                  \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                     \
        if (!(a_ op b_))                                                                  \
            TEST_FAIL_("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_);         \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_(a, >=, b)

#define ASSERT_U64_EQ(a, b)                                                               \
    do {                                                                                  \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                  \
        if (a_ != b_)                                                                     \
            TEST_FAIL_("%s == %s: %" PRIu64 " vs %" PRIu64, #a, #b, a_, b_);              \
    } while (0)

/* Bit-exact double comparison (NaN payloads and -0.0 included). */
#define ASSERT_BITS_EQ(a, b)                                                              \
    do {                                                                                  \
        double a_ = (a), b_ = (b);                                                        \
        uint64_t ua_, ub_;                                                                \
        memcpy(&ua_, &a_, 8);                                                             \
        memcpy(&ub_, &b_, 8);                                                             \
        if (ua_ != ub_)                                                                   \
            TEST_FAIL_("%s == %s bitwise: %.17g (0x%016" PRIx64 ") vs %.17g (0x%016" PRIx64 ")", \
                       #a, #b, a_, ua_, b_, ub_);                                         \
    } while (0)

#define ASSERT_DBL_NEAR(a, b, eps)                                                        \
    do {                                                                                  \
        double a_ = (a), b_ = (b);                                                        \
        if (!(fabs(a_ - b_) <= (eps)))                                                    \
            TEST_FAIL_("%s ~= %s: %.17g vs %.17g", #a, #b, a_, b_);                       \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                               \
    do {                                                                                  \
        const char *a_ = (a), *b_ = (b);                                                  \
        if (strcmp(a_, b_) != 0)                                                          \
            TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_, b_);                     \
    } while (0)

/* A call returning a tally error code that must succeed. */
#define ASSERT_OK(call)                                                                   \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        if (rc_ != 0)                                                                     \
            TEST_FAIL_("%s failed: %d", #call, rc_);                                      \
    } while (0)

#define TEST_RUN(fn)                                                                      \
    do {                                                                                  \
        fprintf(stderr, "-- %s\n", #fn);                                                  \
        fn();                                                                             \
        test_n_passed_++;                                                                 \
    } while (0)

#define TEST_DONE() (printf("%d passed, 0 failed\n", test_n_passed_), 0)

/* A fresh empty directory for this test: $TALLY_TEST_TMP (or /tmp)/<name>-<pid>-<n>.
 * Written into buf (cap bytes). */
static inline const char *test_tmpdir(char *buf, size_t cap, const char *name)
{
    static int n;
    const char *base = getenv("TALLY_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(buf, cap, "%s/%s-%d-%d", base, name, (int)getpid(), n++);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
    if (system(cmd) != 0)
        TEST_FAIL_("cannot clear %s", buf);
    if (mkdir(buf, 0755) != 0)
        TEST_FAIL_("cannot create %s", buf);
    return buf;
}

/* Removes a directory tree made by test_tmpdir. */
static inline void test_rmdir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: cannot remove %s\n", dir);
}

#endif /* TALLY_TEST_H */
