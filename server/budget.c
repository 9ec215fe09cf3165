/*
 * budget.c — the HTTP layer's memory budget (budget.h): a lock-free counter
 * of reserved bytes with an all-or-nothing take.
 */
#include "budget.h"

void tally_budget_init(tally_budget *b, uint64_t limit)
{
    b->limit = limit;
    atomic_init(&b->used, 0);
    atomic_init(&b->refused, 0);
    atomic_init(&b->peak, 0);
}

int tally_budget_take(tally_budget *b, uint64_t n)
{
    uint64_t cur = atomic_load(&b->used);
    do {
        if (n > b->limit || cur > b->limit - n) {
            atomic_fetch_add(&b->refused, 1);
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&b->used, &cur, cur + n));
    uint64_t now = cur + n, peak = atomic_load(&b->peak);
    while (now > peak && !atomic_compare_exchange_weak(&b->peak, &peak, now)) {
    }
    return 0;
}

void tally_budget_give(tally_budget *b, uint64_t n)
{
    atomic_fetch_sub(&b->used, n);
}

unsigned tally_budget_retry_after(const tally_budget *b)
{
    uint64_t used = atomic_load(&b->used);
    return used > b->limit - b->limit / 8 ? 2u : 1u;
}
