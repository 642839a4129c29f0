/* SPDX-License-Identifier: MIT */
#include "seqset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Index of the first item >= seq. */
static size_t lower_bound(const SeqSet *set, uint64_t seq) {
        size_t lo = 0, hi = set->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (set->items[mid] < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

bool seqset_contains(const SeqSet *set, uint64_t seq) {
        size_t i = lower_bound(set, seq);
        return i < set->n && set->items[i] == seq;
}

int seqset_add(SeqSet *set, uint64_t seq) {
        size_t i = lower_bound(set, seq);

        if (i < set->n && set->items[i] == seq)
                return 0;

        if (set->n == set->capacity) {
                size_t capacity = set->capacity > 0 ? set->capacity * 2 : 16;
                uint64_t *items = reallocarray(set->items, capacity, sizeof(uint64_t));
                if (!items)
                        return -ENOMEM;
                set->items = items;
                set->capacity = capacity;
        }

        memmove(set->items + i + 1, set->items + i, (set->n - i) * sizeof(uint64_t));
        set->items[i] = seq;
        set->n++;
        return 1;
}

int seqset_remove(SeqSet *set, uint64_t seq) {
        size_t i = lower_bound(set, seq);

        if (i >= set->n || set->items[i] != seq)
                return 0;

        memmove(set->items + i, set->items + i + 1, (set->n - i - 1) * sizeof(uint64_t));
        set->n--;
        return 1;
}

void seqset_drop_below(SeqSet *set, uint64_t seq) {
        size_t i = lower_bound(set, seq);

        if (i == 0)
                return;
        memmove(set->items, set->items + i, (set->n - i) * sizeof(uint64_t));
        set->n -= i;
}

void seqset_clear(SeqSet *set) {
        free(set->items);
        *set = (SeqSet) {};
}
