/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/seqset.c: the sorted set of sequence numbers that
 * holds a subscription's acknowledgements and in-flight messages.
 */

#include <glib.h>

#include "seqset.h"
#include "util.h"

/* Checks that set holds exactly the items of expected, in that order. */
static void assert_items(const SeqSet *set, const uint64_t *expected, size_t n) {
        g_assert_cmpuint(set->n, ==, n);
        g_assert_cmpuint(set->capacity, >=, set->n);
        if (n > 0)
                g_assert_cmpmem(set->items, set->n * sizeof(uint64_t), expected, n * sizeof(uint64_t));
}

static void test_empty_set(void) {
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("A zero-initialized set is empty and usable: it contains nothing and removing "
                       "from it removes nothing.");

        g_assert_false(seqset_contains(&set, 0));
        g_assert_false(seqset_contains(&set, 1));
        g_assert_false(seqset_contains(&set, UINT64_MAX));
        g_assert_cmpint(seqset_remove(&set, 1), ==, 0);
        g_assert_cmpuint(set.n, ==, 0);
}

static void test_add_keeps_items_ascending(void) {
        static const uint64_t expected[] = { 0, 1, 2, 3, 4, 5, UINT64_MAX };
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("Items added in any order are kept in ascending order, the extremes of "
                       "uint64_t included.");

        g_assert_cmpint(seqset_add(&set, 5), ==, 1);
        g_assert_cmpint(seqset_add(&set, 1), ==, 1);
        g_assert_cmpint(seqset_add(&set, UINT64_MAX), ==, 1);
        g_assert_cmpint(seqset_add(&set, 3), ==, 1);
        g_assert_cmpint(seqset_add(&set, 0), ==, 1);
        g_assert_cmpint(seqset_add(&set, 4), ==, 1);
        g_assert_cmpint(seqset_add(&set, 2), ==, 1);

        assert_items(&set, expected, ELEMENTSOF(expected));
}

static void test_add_reports_duplicates(void) {
        static const uint64_t expected[] = { 3, 7 };
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("Adding an item that is present returns 0 and changes nothing.");

        g_assert_cmpint(seqset_add(&set, 7), ==, 1);
        g_assert_cmpint(seqset_add(&set, 3), ==, 1);
        g_assert_cmpint(seqset_add(&set, 7), ==, 0);
        g_assert_cmpint(seqset_add(&set, 3), ==, 0);

        assert_items(&set, expected, ELEMENTSOF(expected));
}

static void test_contains(void) {
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("contains() answers true exactly for the items added, also between, below "
                       "and above them.");

        for (uint64_t seq = 10; seq <= 50; seq += 10)
                g_assert_cmpint(seqset_add(&set, seq), ==, 1);

        for (uint64_t seq = 0; seq <= 60; seq++)
                g_assert_cmpint(seqset_contains(&set, seq), ==, seq >= 10 && seq % 10 == 0 && seq <= 50);
}

static void test_remove(void) {
        static const uint64_t after_middle[] = { 1, 2, 4, 5 };
        static const uint64_t after_ends[] = { 2, 4 };
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("remove() returns 1 for a present item and 0 for an absent one, and keeps "
                       "the rest in order, whether the item is first, in the middle or last.");

        for (uint64_t seq = 1; seq <= 5; seq++)
                g_assert_cmpint(seqset_add(&set, seq), ==, 1);

        g_assert_cmpint(seqset_remove(&set, 3), ==, 1);
        g_assert_cmpint(seqset_remove(&set, 3), ==, 0);
        g_assert_cmpint(seqset_remove(&set, 0), ==, 0);
        g_assert_cmpint(seqset_remove(&set, 6), ==, 0);
        assert_items(&set, after_middle, ELEMENTSOF(after_middle));

        g_assert_cmpint(seqset_remove(&set, 1), ==, 1);
        g_assert_cmpint(seqset_remove(&set, 5), ==, 1);
        assert_items(&set, after_ends, ELEMENTSOF(after_ends));
        g_assert_false(seqset_contains(&set, 1));
        g_assert_false(seqset_contains(&set, 5));

        g_assert_cmpint(seqset_remove(&set, 2), ==, 1);
        g_assert_cmpint(seqset_remove(&set, 4), ==, 1);
        assert_items(&set, NULL, 0);

        /* An emptied set takes items again. */
        g_assert_cmpint(seqset_add(&set, 9), ==, 1);
        g_assert_true(seqset_contains(&set, 9));
}

static void test_drop_below(void) {
        static const uint64_t from_five[] = { 5, 6, 8, 10 };
        static const uint64_t from_eight[] = { 8, 10 };
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("drop_below(seq) removes every item below seq and keeps seq itself and "
                       "everything above.");

        for (uint64_t seq = 1; seq <= 10; seq++)
                if (seq != 7 && seq != 9)
                        g_assert_cmpint(seqset_add(&set, seq), ==, 1);

        seqset_drop_below(&set, 0);
        g_assert_cmpuint(set.n, ==, 8);
        seqset_drop_below(&set, 1);
        g_assert_cmpuint(set.n, ==, 8);

        seqset_drop_below(&set, 5);
        assert_items(&set, from_five, ELEMENTSOF(from_five));

        /* A bound that is not an item: 7 is absent. */
        seqset_drop_below(&set, 7);
        assert_items(&set, from_eight, ELEMENTSOF(from_eight));

        seqset_drop_below(&set, UINT64_MAX);
        assert_items(&set, NULL, 0);

        /* The set still works afterwards. */
        g_assert_cmpint(seqset_add(&set, 3), ==, 1);
        g_assert_cmpint(seqset_add(&set, 2), ==, 1);
        g_assert_true(seqset_contains(&set, 2));
        g_assert_true(seqset_contains(&set, 3));
}

static void test_drop_below_on_empty_set(void) {
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("drop_below() on a set that never held an item (items is NULL) does nothing.");

        seqset_drop_below(&set, 10);
        g_assert_cmpuint(set.n, ==, 0);
        g_assert_null(set.items);
}

static void test_clear(void) {
        _cleanup_(seqset_clear) SeqSet set = {};

        g_test_summary("clear() frees the items and leaves an empty set that takes items again.");

        for (uint64_t seq = 1; seq <= 100; seq++)
                g_assert_cmpint(seqset_add(&set, seq), ==, 1);

        seqset_clear(&set);
        g_assert_null(set.items);
        g_assert_cmpuint(set.n, ==, 0);
        g_assert_cmpuint(set.capacity, ==, 0);
        g_assert_false(seqset_contains(&set, 1));

        g_assert_cmpint(seqset_add(&set, 42), ==, 1);
        g_assert_true(seqset_contains(&set, 42));

        /* Twice in a row is harmless. */
        seqset_clear(&set);
        seqset_clear(&set);
        g_assert_null(set.items);
}

static void test_growth(void) {
        const size_t n = 5000;
        _cleanup_(seqset_clear) SeqSet set = {};
        g_autoptr(GRand) rand = g_rand_new_with_seed(20231123);
        g_autofree uint64_t *order = g_new(uint64_t, n);

        g_test_summary("The set grows far past its first allocation, with items arriving in random "
                       "order, and keeps every one of them in ascending order.");

        /* Even numbers 2..2n, shuffled. */
        for (size_t i = 0; i < n; i++)
                order[i] = 2 * (i + 1);
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t) g_rand_int_range(rand, 0, (gint32) (i + 1));
                uint64_t t = order[i];
                order[i] = order[j];
                order[j] = t;
        }

        for (size_t i = 0; i < n; i++) {
                g_assert_cmpint(seqset_add(&set, order[i]), ==, 1);
                g_assert_cmpuint(set.n, ==, i + 1);
                g_assert_cmpuint(set.capacity, >=, set.n);
        }

        for (size_t i = 0; i < n; i++)
                g_assert_cmpuint(set.items[i], ==, 2 * (i + 1));

        for (uint64_t seq = 0; seq <= 2 * n + 1; seq++)
                g_assert_cmpint(seqset_contains(&set, seq), ==, seq > 0 && seq % 2 == 0);

        /* Every duplicate is refused. */
        for (size_t i = 0; i < n; i++)
                g_assert_cmpint(seqset_add(&set, order[i]), ==, 0);
        g_assert_cmpuint(set.n, ==, n);

        /* Removing every other one keeps the rest. */
        for (uint64_t seq = 4; seq <= 2 * n; seq += 4)
                g_assert_cmpint(seqset_remove(&set, seq), ==, 1);
        g_assert_cmpuint(set.n, ==, n - n / 2);
        for (size_t i = 1; i < set.n; i++)
                g_assert_cmpuint(set.items[i - 1], <, set.items[i]);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/seqset/empty/contains-nothing", test_empty_set);
        g_test_add_func("/seqset/add/keeps-items-ascending", test_add_keeps_items_ascending);
        g_test_add_func("/seqset/add/returns-0-for-a-duplicate", test_add_reports_duplicates);
        g_test_add_func("/seqset/contains/is-true-only-for-added-items", test_contains);
        g_test_add_func("/seqset/remove/removes-first-middle-and-last", test_remove);
        g_test_add_func("/seqset/drop-below/removes-smaller-items", test_drop_below);
        g_test_add_func("/seqset/drop-below/on-an-empty-set-does-nothing", test_drop_below_on_empty_set);
        g_test_add_func("/seqset/clear/frees-and-leaves-a-usable-set", test_clear);
        g_test_add_func("/seqset/add/grows-past-the-first-allocation", test_growth);

        return g_test_run();
}
