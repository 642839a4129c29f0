/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/pattern.c: which endpoint patterns of the access
 * rules are valid, the sentence that says what is wrong with an invalid one,
 * and which endpoints a pattern covers.
 */

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "names.h"
#include "pattern.h"
#include "util.h"

static void test_check_accepts_valid_patterns(void) {
        g_autofree char *longest = g_strnfill(ENDPOINT_NAME_MAX, 'a');
        const char *patterns[] = {
                "a", "a.b", "*", "**", "a.*.c", "a.**", "*.**", "*.*", "org.example.Notes.**", longest,
        };

        g_test_summary("Endpoint names, names with '*' for whole elements and names ending in a "
                       "'**' element are valid patterns, up to exactly 200 characters.");

        for (size_t i = 0; i < ELEMENTSOF(patterns); i++) {
                _cleanup_(freep) char *problem = NULL;
                int r;

                r = pattern_check(patterns[i], &problem);
                if (r != 0)
                        g_test_message("'%s' was refused: %s", patterns[i], problem ? problem : "(no problem given)");
                g_assert_cmpint(r, ==, 0);
                g_assert_null(problem);
        }
}

static void test_check_rejects_invalid_patterns(void) {
        g_autofree char *too_long = g_strnfill(ENDPOINT_NAME_MAX + 1, 'a');
        static const struct {
                const char *pattern;
                const char *problem;
        } cases[] = {
                { "", "the name is empty" },
                { ".", "element 1 is empty" },
                { "a..b", "element 2 is empty" },
                { "a.*.", "element 3 is empty" },
                { "**.a", "element 1, '**', is not the last" },
                { "a.**.b", "element 2, '**', is not the last" },
                { "a.**.**", "element 2, '**', is not the last" },
                { "a*", "element 1 has the character '*', outside [A-Za-z0-9_]" },
                { "a.b*", "element 2 has the character '*', outside [A-Za-z0-9_]" },
                { "a.***", "element 2 has the character '*', outside [A-Za-z0-9_]" },
                { "9a", "element 1 starts with a digit" },
                { "*.9a", "element 2 starts with a digit" },
                { "a-b.**", "element 1 has the character '-', outside [A-Za-z0-9_]" },
        };

        g_test_summary("Patterns that are invalid names for a reason other than their wildcards, "
                       "a '*' inside an element, a '**' before the last element and patterns over "
                       "200 characters are refused with -EINVAL and a sentence naming the element at "
                       "fault, in the words of endpoint names.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *problem = NULL;

                g_test_message("pattern '%s'", cases[i].pattern);
                g_assert_cmpint(pattern_check(cases[i].pattern, &problem), ==, -EINVAL);
                g_assert_cmpstr(problem, ==, cases[i].problem);

                /* Without a place for the sentence, the answer is the same. */
                g_assert_cmpint(pattern_check(cases[i].pattern, NULL), ==, -EINVAL);
        }

        {
                _cleanup_(freep) char *problem = NULL;

                g_assert_cmpint(pattern_check(too_long, &problem), ==, -EINVAL);
                g_assert_cmpstr(problem, ==, "201 characters, more than 200");
        }
}

static void test_check_counts_wildcards_in_the_length(void) {
        g_autofree char *longest = g_strnfill(ENDPOINT_NAME_MAX, 'a');
        g_autofree char *too_long = g_strnfill(ENDPOINT_NAME_MAX + 1, 'a');
        _cleanup_(freep) char *problem = NULL;

        g_test_summary("The limit of 200 characters counts the wildcards' characters too: a pattern "
                       "of 200 characters ending in '.**' is valid, one of 201 is not.");

        memcpy(longest + ENDPOINT_NAME_MAX - 3, ".**", 3);
        g_assert_cmpint(pattern_check(longest, NULL), ==, 0);

        memcpy(too_long + ENDPOINT_NAME_MAX - 2, ".**", 3);
        g_assert_cmpint(pattern_check(too_long, &problem), ==, -EINVAL);
        g_assert_cmpstr(problem, ==, "201 characters, more than 200");
}

/* Checks that pattern covers endpoint, or does not, saying which. */
static void assert_match(const char *pattern, const char *endpoint, bool expected) {
        g_test_message("pattern '%s', endpoint '%s': expecting %s", pattern, endpoint,
                       expected ? "a match" : "no match");
        g_assert_cmpint(pattern_check(pattern, NULL), ==, 0);
        g_assert_cmpint(pattern_match(pattern, endpoint), ==, expected);
}

static void test_match_plain_is_exact(void) {
        g_test_summary("A pattern without wildcards covers exactly the endpoint of its name.");

        assert_match("a", "a", true);
        assert_match("org.example.Notes", "org.example.Notes", true);
        assert_match("org.example.Notes", "org.example", false);
        assert_match("org.example", "org.example.Notes", false);
        assert_match("a.b", "a.c", false);
}

static void test_match_is_case_sensitive(void) {
        g_test_summary("Elements are compared case-sensitively, as endpoint names are.");

        assert_match("org.example.Notes", "org.example.notes", false);
        assert_match("Org.**", "org.example", false);
        assert_match("a.*.C", "a.b.c", false);
}

static void test_match_star_is_one_element(void) {
        g_test_summary("'*' stands for exactly one element, anywhere in the pattern.");

        assert_match("*", "a", true);
        assert_match("a.*", "a.b", true);
        assert_match("a.*.c", "a.b.c", true);
        assert_match("*.b", "a.b", true);
        assert_match("*.*", "a.b", true);

        assert_match("*", "a.b", false);
        assert_match("a.*", "a.b.c", false);
        assert_match("a.*.c", "a.b.x.c", false);
        assert_match("a.*.c", "a.b.d", false);
}

static void test_match_star_is_not_zero_elements(void) {
        g_test_summary("'*' does not stand for no element: 'a.*' does not cover 'a', nor 'a.*.c' "
                       "'a.c'.");

        assert_match("a.*", "a", false);
        assert_match("a.*.c", "a.c", false);
        assert_match("*.a", "a", false);
}

static void test_match_double_star_covers_parent(void) {
        g_test_summary("A last '**' stands for no element, one or many: 'a.**' covers 'a' itself "
                       "and everything below it.");

        assert_match("a.**", "a", true);
        assert_match("a.**", "a.b", true);
        assert_match("a.**", "a.b.c.d", true);
        assert_match("org.example.Notes.**", "org.example.Notes", true);
        assert_match("org.example.Notes.**", "org.example.Notes.sync", true);
        assert_match("*.**", "a", true);
        assert_match("*.**", "a.b.c", true);

        assert_match("a.**", "b", false);
        assert_match("a.**", "b.a", false);
        assert_match("org.example.Notes.**", "org.example", false);
}

static void test_match_double_star_alone_covers_everything(void) {
        g_test_summary("'**' alone covers every endpoint.");

        assert_match("**", "a", true);
        assert_match("**", "org.example.Notes", true);
        assert_match("**", "a.b.c.d.e.f", true);
}

static void test_match_respects_element_boundaries(void) {
        g_test_summary("A pattern's element is a whole element of the endpoint, never a prefix of "
                       "one: 'org.ex.**' does not cover 'org.example'.");

        assert_match("org.ex.**", "org.example", false);
        assert_match("org.ex.**", "org.example.Notes", false);
        assert_match("org.ex", "org.example", false);
        assert_match("org.example", "org.ex", false);
        assert_match("a.*", "ab", false);
        assert_match("org.ex.**", "org.ex.ample", true);
}

static void test_match_any(void) {
        char *patterns[] = { (char *) "org.example.Notes.**", (char *) "chat.*", NULL };
        char *empty[] = { NULL };

        g_test_summary("A list covers an endpoint when one of its patterns does; an empty list and "
                       "no list cover nothing.");

        g_assert_true(pattern_match_any(patterns, "org.example.Notes"));
        g_assert_true(pattern_match_any(patterns, "chat.room"));
        g_assert_false(pattern_match_any(patterns, "chat"));
        g_assert_false(pattern_match_any(patterns, "org.example"));

        g_assert_false(pattern_match_any(empty, "a"));
        g_assert_false(pattern_match_any(NULL, "a"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/pattern/check/accepts-valid-patterns", test_check_accepts_valid_patterns);
        g_test_add_func("/pattern/check/rejects-invalid-patterns-saying-why", test_check_rejects_invalid_patterns);
        g_test_add_func("/pattern/check/length-counts-the-wildcards", test_check_counts_wildcards_in_the_length);
        g_test_add_func("/pattern/match/plain-is-exact", test_match_plain_is_exact);
        g_test_add_func("/pattern/match/is-case-sensitive", test_match_is_case_sensitive);
        g_test_add_func("/pattern/match/star-is-one-element", test_match_star_is_one_element);
        g_test_add_func("/pattern/match/star-is-not-zero-elements", test_match_star_is_not_zero_elements);
        g_test_add_func("/pattern/match/double-star-covers-parent", test_match_double_star_covers_parent);
        g_test_add_func("/pattern/match/double-star-alone-covers-everything",
                        test_match_double_star_alone_covers_everything);
        g_test_add_func("/pattern/match/respects-element-boundaries", test_match_respects_element_boundaries);
        g_test_add_func("/pattern/match-any/one-pattern-is-enough", test_match_any);

        return g_test_run();
}
