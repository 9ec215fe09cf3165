/*
 * api_error.c — MLflow error replies (api_error.h): the name and HTTP status
 * tables generated from TALLY_API_ERRORS, and the JSON body
 * {"error_code": NAME, "message": text}.
 *
 * Invariants:
 *  (1) An error reply always replaces whatever the handler had written, sets
 *      Content-Type to application/json, and is valid JSON even when the
 *      message holds invalid UTF-8 or control characters (json_out escapes).
 *  (2) Codes outside the table answer 500 INTERNAL_ERROR: never a crash.
 */
#include "api_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "json_out.h"

static const char *const code_names[] = {
#define TALLY_API_CODE_NAME_(name, status) #name,
    TALLY_API_ERRORS(TALLY_API_CODE_NAME_)
#undef TALLY_API_CODE_NAME_
};

static const int code_status[] = {
#define TALLY_API_CODE_STATUS_(name, status) status,
    TALLY_API_ERRORS(TALLY_API_CODE_STATUS_)
#undef TALLY_API_CODE_STATUS_
};

_Static_assert(sizeof code_names / sizeof code_names[0] == TALLY_API_N_CODES, "one name per code");

const char *tally_api_code_name(tally_api_code code)
{
    if ((unsigned)code >= TALLY_API_N_CODES)
        return "INTERNAL_ERROR";
    return code_names[code];
}

int tally_api_code_status(tally_api_code code)
{
    if ((unsigned)code >= TALLY_API_N_CODES)
        return 500;
    return code_status[code];
}

static void fill(tally_resp *r, int status, tally_api_code code, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    tally_buf_reset(&r->body);
    tally_json j;
    tally_json_start(&j, &r->body);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "error_code", tally_api_code_name(code));
    tally_json_kv_string(&j, "message", msg);
    tally_json_object_close(&j);
    r->status = status;
    r->content_type = "application/json";
}

void tally_resp_error(tally_resp *r, tally_api_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(r, tally_api_code_status(code), code, fmt, ap);
    va_end(ap);
}

void tally_resp_error_status(tally_resp *r, int status, tally_api_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(r, status, code, fmt, ap);
    va_end(ap);
}
