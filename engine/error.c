/*
 * error.c — tally_strerror(): names for TALLY_E* codes and passed-through
 * negative errno values. The list lives in engine.h (TALLY_ERRORS).
 */
#include <string.h>

#include "tally/engine.h"

const char *tally_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define TALLY_ERROR_CASE_(name, code, text)                                                  \
    case code:                                                                               \
        return text;
        TALLY_ERRORS(TALLY_ERROR_CASE_)
#undef TALLY_ERROR_CASE_
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
