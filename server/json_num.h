/*
 * json_num.h — doubles as MLflow's JSON wants them (mlflow-rest-api.md §1.3):
 * non-finite values as the strings "NaN", "Infinity", "-Infinity"; integral
 * values below 2^53 as integers; everything else as the shortest decimal
 * that reads back bit for bit. The one place the server formats a double.
 */
#ifndef TALLY_SERVER_JSON_NUM_H
#define TALLY_SERVER_JSON_NUM_H

#include <stdint.h>

#include "buf.h"

/* 10^0 .. 10^19, for json_num.c and json_num_read.c. */
extern const uint64_t tally_pow10_u64[20];

/* Appends v's JSON text to b. */
void tally_buf_put_double(tally_buf *b, double v);

#endif /* TALLY_SERVER_JSON_NUM_H */
