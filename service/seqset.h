/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A small ordered set of sequence numbers, for the acknowledgements and the
 * in-flight messages of one subscription. Both stay small (about one window),
 * so a sorted array beats a tree on memory and on cache.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct SeqSet {
        uint64_t *items;        /* ascending */
        size_t n, capacity;
} SeqSet;

bool seqset_contains(const SeqSet *set, uint64_t seq);

/* 1 when added, 0 when already present, -ENOMEM (the set is unchanged). */
int seqset_add(SeqSet *set, uint64_t seq);

/* 1 when removed, 0 when absent. */
int seqset_remove(SeqSet *set, uint64_t seq);

/* Removes every item below seq. */
void seqset_drop_below(SeqSet *set, uint64_t seq);

void seqset_clear(SeqSet *set);
