/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/names.c: which endpoint names, subscriber names and
 * message ids are valid, the sentence that says what is wrong with an invalid
 * one, and the mapping endpoint name <-> object path <-> bus name.
 */

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "names.h"
#include "util.h"

/* A sentinel an out-parameter holds before a call that must leave it alone. */
static char untouched[] = "untouched";

/* Checks that name is a valid endpoint name, printing it when it is not. */
static void assert_endpoint_valid(const char *name) {
        _cleanup_(freep) char *problem = NULL;
        int r;

        r = names_check_endpoint(name, &problem);
        if (r != 0)
                g_test_message("'%s' was refused: %s", name, problem ? problem : "(no problem given)");
        g_assert_cmpint(r, ==, 0);
        g_assert_null(problem);
}

/* Checks that name is refused with -EINVAL and exactly that problem. */
static void assert_endpoint_invalid(const char *name, const char *expected_problem) {
        _cleanup_(freep) char *problem = NULL;

        g_test_message("endpoint name '%s'", name);
        g_assert_cmpint(names_check_endpoint(name, &problem), ==, -EINVAL);
        g_assert_cmpstr(problem, ==, expected_problem);

        /* Without a place for the sentence, the answer is the same. */
        g_assert_cmpint(names_check_endpoint(name, NULL), ==, -EINVAL);
}

static void test_endpoint_accepts_valid_names(void) {
        g_autofree char *longest = g_strnfill(ENDPOINT_NAME_MAX, 'a');
        g_autofree char *longest_dotted = NULL;
        const char *names[] = {
                "chat",
                "org.gnome.Calendar.reminders",
                "_x.y_1",
                "_",
                "a.b.c",
                "A1.b2_.C_3",
                "app.jobs",
        };

        g_test_summary("Names of elements [A-Za-z_][A-Za-z0-9_]* joined by single dots, "
                       "up to exactly 200 characters, are valid endpoint names.");

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_endpoint_valid(names[i]);

        g_assert_cmpuint(strlen(longest), ==, 200);
        assert_endpoint_valid(longest);

        /* 200 characters in 100 elements: "a.a.a. ... .a.aa" (99 dots, the
         * last element two letters long). */
        longest_dotted = g_strnfill(ENDPOINT_NAME_MAX, 'a');
        for (size_t i = 1; i < 198; i += 2)
                longest_dotted[i] = '.';
        g_assert_cmpuint(strlen(longest_dotted), ==, 200);
        assert_endpoint_valid(longest_dotted);
}

static void test_endpoint_rejects_invalid_names(void) {
        g_autofree char *too_long = g_strnfill(ENDPOINT_NAME_MAX + 1, 'a');
        static const struct {
                const char *name;
                const char *problem;
        } cases[] = {
                { "", "the name is empty" },
                { ".a", "element 1 is empty" },
                { "a.", "element 2 is empty" },
                { "a..b", "element 2 is empty" },
                { ".", "element 1 is empty" },
                { "1a", "element 1 starts with a digit" },
                { "a.2b", "element 2 starts with a digit" },
                { "a.b.9", "element 3 starts with a digit" },
                { "a-b", "element 1 has the character '-', outside [A-Za-z0-9_]" },
                { "a b", "element 1 has the character ' ', outside [A-Za-z0-9_]" },
                { "ok.a/b", "element 2 has the character '/', outside [A-Za-z0-9_]" },
                { "a:b", "element 1 has the character ':', outside [A-Za-z0-9_]" },
        };

        g_test_summary("Empty names, empty elements, elements starting with a digit, characters "
                       "outside [A-Za-z0-9_] and names over 200 characters are refused with -EINVAL "
                       "and a sentence naming the element at fault.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_endpoint_invalid(cases[i].name, cases[i].problem);

        assert_endpoint_invalid(too_long, "201 characters, more than 200");
}

static void test_endpoint_rejects_non_ascii(void) {
        /* "café" and "日本": letters, but not ASCII ones. */
        const char *names[] = { "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac" };

        g_test_summary("Letters outside ASCII are refused.");

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(freep) char *problem = NULL;

                g_assert_cmpint(names_check_endpoint(names[i], NULL), ==, -EINVAL);
                g_assert_cmpint(names_check_endpoint(names[i], &problem), ==, -EINVAL);
                g_assert_nonnull(problem);
                g_assert_true(g_str_has_prefix(problem, "element 1 "));
        }
}

static void test_non_ascii_problem_is_utf8(void) {
        _cleanup_(freep) char *endpoint_problem = NULL;
        _cleanup_(freep) char *subscriber_problem = NULL;

        g_test_summary("The sentence about a name with a non-ASCII letter is valid UTF-8, so it can "
                       "travel in a D-Bus error message (sd-bus refuses strings that are not UTF-8), "
                       "for endpoint and subscriber names alike.");

        g_assert_cmpint(names_check_endpoint("caf\xc3\xa9", &endpoint_problem), ==, -EINVAL);
        g_assert_cmpint(names_check_subscriber("caf\xc3\xa9", &subscriber_problem), ==, -EINVAL);
        g_assert_nonnull(endpoint_problem);
        g_assert_nonnull(subscriber_problem);
        g_test_message("endpoint: %s", endpoint_problem);
        g_test_message("subscriber: %s", subscriber_problem);

        g_assert_true(g_utf8_validate(endpoint_problem, -1, NULL));
        g_assert_true(g_utf8_validate(subscriber_problem, -1, NULL));
}

static void test_subscriber_accepts_valid_names(void) {
        g_autofree char *longest = g_strnfill(SUBSCRIBER_NAME_MAX, 'w');
        const char *names[] = {
                "worker",
                "w",
                "9lives",
                "org.example.worker-1",
                "-",
                ".hidden",
                "a..b",
                "UPPER_lower.0-9",
        };

        g_test_summary("Subscriber names are 1 to 200 characters of [A-Za-z0-9_.-], in any order.");

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(freep) char *problem = NULL;

                g_test_message("subscriber '%s'", names[i]);
                g_assert_cmpint(names_check_subscriber(names[i], &problem), ==, 0);
                g_assert_null(problem);
        }

        g_assert_cmpint(names_check_subscriber(longest, NULL), ==, 0);
}

static void test_subscriber_rejects_invalid_names(void) {
        g_autofree char *too_long = g_strnfill(SUBSCRIBER_NAME_MAX + 1, 'w');
        static const struct {
                const char *name;
                const char *problem;
        } cases[] = {
                { "", "the name is empty" },
                { "a b", "character 2 is ' ', outside [A-Za-z0-9_.-]" },
                { "worker/1", "character 7 is '/', outside [A-Za-z0-9_.-]" },
                { ":1.42", "character 1 is ':', outside [A-Za-z0-9_.-]" },
                { "tab\there", "character 4 is '\t', outside [A-Za-z0-9_.-]" },
        };

        g_test_summary("Empty subscriber names, names over 200 characters and characters outside "
                       "[A-Za-z0-9_.-] are refused with -EINVAL and a sentence naming the position.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *problem = NULL;

                g_test_message("subscriber '%s'", cases[i].name);
                g_assert_cmpint(names_check_subscriber(cases[i].name, &problem), ==, -EINVAL);
                g_assert_cmpstr(problem, ==, cases[i].problem);
                g_assert_cmpint(names_check_subscriber(cases[i].name, NULL), ==, -EINVAL);
        }

        {
                _cleanup_(freep) char *problem = NULL;

                g_assert_cmpint(names_check_subscriber(too_long, &problem), ==, -EINVAL);
                g_assert_cmpstr(problem, ==, "201 characters, more than 200");
        }
}

static void test_message_id_length(void) {
        g_autofree char *longest = g_strnfill(MESSAGE_ID_MAX, 'x');
        g_autofree char *too_long = g_strnfill(MESSAGE_ID_MAX + 1, 'x');
        _cleanup_(freep) char *problem_longest = NULL;
        _cleanup_(freep) char *problem_too_long = NULL;
        _cleanup_(freep) char *problem_empty = NULL;
        const char *ids[] = { "1", "order 42: shipped", "caf\xc3\xa9", "/any/thing?at=all" };

        g_test_summary("Message ids are any text of 1 to 255 bytes; 256 bytes and the empty id are "
                       "refused.");

        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                g_assert_cmpint(names_check_message_id(ids[i], NULL), ==, 0);

        g_assert_cmpint(names_check_message_id(longest, &problem_longest), ==, 0);
        g_assert_null(problem_longest);

        g_assert_cmpint(names_check_message_id(too_long, &problem_too_long), ==, -EINVAL);
        g_assert_cmpstr(problem_too_long, ==, "256 bytes, more than 255");

        g_assert_cmpint(names_check_message_id("", &problem_empty), ==, -EINVAL);
        g_assert_cmpstr(problem_empty, ==, "the id is empty");
}

static void test_message_id_counts_bytes(void) {
        /* 128 two-byte characters: 128 characters, 256 bytes. */
        g_autoptr(GString) id = g_string_new(NULL);

        g_test_summary("The id limit counts bytes, not characters.");

        for (int i = 0; i < 128; i++)
                g_string_append(id, "\xc3\xa9");
        g_assert_cmpuint(id->len, ==, 256);
        g_assert_cmpint(names_check_message_id(id->str, NULL), ==, -EINVAL);

        g_string_truncate(id, 254);
        g_assert_cmpint(names_check_message_id(id->str, NULL), ==, 0);
}

static void test_mapping_endpoint_to_path(void) {
        static const struct {
                const char *name;
                const char *path;
        } cases[] = {
                { "chat", "/org/durabus1/endpoint/chat" },
                { "app.jobs", "/org/durabus1/endpoint/app/jobs" },
                { "org.gnome.Calendar.reminders", "/org/durabus1/endpoint/org/gnome/Calendar/reminders" },
                { "_x.y_1", "/org/durabus1/endpoint/_x/y_1" },
        };

        g_test_summary("An endpoint's object path is the endpoint prefix followed by its name with "
                       "every dot turned into a slash.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *path = NULL;

                g_assert_cmpint(names_endpoint_to_path(cases[i].name, &path), ==, 0);
                g_assert_cmpstr(path, ==, cases[i].path);
        }
}

static void test_mapping_endpoint_to_bus_name(void) {
        static const struct {
                const char *name;
                const char *bus_name;
        } cases[] = {
                { "chat", "org.durabus1.endpoint.chat" },
                { "app.jobs", "org.durabus1.endpoint.app.jobs" },
                { "org.gnome.Calendar.reminders", "org.durabus1.endpoint.org.gnome.Calendar.reminders" },
        };

        g_test_summary("An endpoint's bus name is org.durabus1.endpoint. followed by its name.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *bus_name = NULL;

                g_assert_cmpint(names_endpoint_to_bus_name(cases[i].name, &bus_name), ==, 0);
                g_assert_cmpstr(bus_name, ==, cases[i].bus_name);
        }
}

static void test_mapping_path_round_trips(void) {
        g_autofree char *longest = g_strnfill(ENDPOINT_NAME_MAX, 'z');
        const char *names[] = { "chat", "app.jobs", "org.gnome.Calendar.reminders", "_x.y_1", longest };

        g_test_summary("Turning a valid name into its path and back gives the same name.");

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(freep) char *path = NULL;
                _cleanup_(freep) char *name = NULL;

                g_assert_cmpint(names_endpoint_to_path(names[i], &path), ==, 0);
                g_assert_cmpint(names_path_to_endpoint(path, &name), ==, 0);
                g_assert_cmpstr(name, ==, names[i]);
        }
}

/* Checks that path is refused and the out-parameter left alone. */
static void assert_path_refused(const char *path) {
        char *name = untouched;

        g_test_message("path '%s'", path);
        g_assert_cmpint(names_path_to_endpoint(path, &name), ==, -EINVAL);
        g_assert_true(name == untouched);
}

static void test_mapping_path_rejects_prefix_alone(void) {
        g_test_summary("The endpoint prefix itself, with or without a trailing slash, names no endpoint.");

        assert_path_refused("/org/durabus1/endpoint");
        assert_path_refused("/org/durabus1/endpoint/");
}

static void test_mapping_path_rejects_other_prefixes(void) {
        const char *paths[] = {
                "",
                "/",
                "/org/durabus1",
                "/org/durabus1/chat",
                "/org/durabus1/endpointchat",
                "/org/durabus1/endpoints/chat",
                "/org/durabus2/endpoint/chat",
                "/org/durabus1/Endpoint/chat",
                "org/durabus1/endpoint/chat",
                "//org/durabus1/endpoint/chat",
        };

        g_test_summary("Paths outside /org/durabus1/endpoint/ are not endpoint paths.");

        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                assert_path_refused(paths[i]);
}

static void test_mapping_path_rejects_invalid_elements(void) {
        g_autoptr(GString) too_long = g_string_new("/org/durabus1/endpoint/");
        const char *paths[] = {
                "/org/durabus1/endpoint/9x",
                "/org/durabus1/endpoint/app/9x",
                "/org/durabus1/endpoint/a//b",
                "/org/durabus1/endpoint/a/",
                "/org/durabus1/endpoint//a",
                "/org/durabus1/endpoint/a-b",
                "/org/durabus1/endpoint/a b",
        };

        g_test_summary("A path whose elements do not make a valid endpoint name is refused.");

        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                assert_path_refused(paths[i]);

        for (int i = 0; i < ENDPOINT_NAME_MAX + 1; i++)
                g_string_append_c(too_long, 'a');
        assert_path_refused(too_long->str);
}

static void test_mapping_path_rejects_dots(void) {
        g_test_summary("A path with a dot is not the path of any endpoint (the path of 'a.b' is "
                       ".../a/b), so it is refused rather than read as the name 'a.b'.");

        assert_path_refused("/org/durabus1/endpoint/a.b");
        assert_path_refused("/org/durabus1/endpoint/app/x.y");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/names/endpoint/accepts-valid-names", test_endpoint_accepts_valid_names);
        g_test_add_func("/names/endpoint/rejects-invalid-names-saying-why", test_endpoint_rejects_invalid_names);
        g_test_add_func("/names/endpoint/rejects-non-ascii-letters", test_endpoint_rejects_non_ascii);
        g_test_add_func("/names/subscriber/accepts-valid-names", test_subscriber_accepts_valid_names);
        g_test_add_func("/names/subscriber/rejects-invalid-names-saying-why", test_subscriber_rejects_invalid_names);
        g_test_add_func("/names/message-id/allows-255-bytes-not-256", test_message_id_length);
        g_test_add_func("/names/message-id/limit-counts-bytes", test_message_id_counts_bytes);
        g_test_add_func("/names/mapping/endpoint-to-path-turns-dots-into-slashes", test_mapping_endpoint_to_path);
        g_test_add_func("/names/mapping/endpoint-to-bus-name-adds-the-prefix", test_mapping_endpoint_to_bus_name);
        g_test_add_func("/names/mapping/path-to-endpoint-inverts-endpoint-to-path", test_mapping_path_round_trips);
        g_test_add_func("/names/mapping/path-to-endpoint-rejects-the-prefix-alone",
                        test_mapping_path_rejects_prefix_alone);
        g_test_add_func("/names/mapping/path-to-endpoint-rejects-other-prefixes",
                        test_mapping_path_rejects_other_prefixes);
        g_test_add_func("/names/mapping/path-to-endpoint-rejects-invalid-elements",
                        test_mapping_path_rejects_invalid_elements);
        /* Last, two tests of known bugs, so that while they fail every other
         * test still runs. */
        g_test_add_func("/names/path/with-a-dot-is-not-an-endpoint-path", test_mapping_path_rejects_dots);
        g_test_add_func("/names/problem/of-a-non-ascii-name-is-valid-utf8", test_non_ascii_problem_is_utf8);

        return g_test_run();
}
