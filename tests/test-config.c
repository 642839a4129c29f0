/* SPDX-License-Identifier: MIT */
/* Unit tests of the configuration file reader (service/config.c). */

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "config.h"
#include "util.h"

/* Writes contents to a fresh file in the isolated temporary directory. */
static char *write_config(const char *contents) {
        g_autoptr(GError) error = NULL;
        char *path = g_build_filename(g_get_user_config_dir(), "durabus.conf", NULL);

        g_assert_cmpint(g_mkdir_with_parents(g_get_user_config_dir(), 0700), ==, 0);
        g_file_set_contents(path, contents, -1, &error);
        g_assert_no_error(error);
        return path;
}

static void assert_config_equal(const Config *a, const Config *b) {
        g_assert_cmpuint(a->idle_timeout_sec, ==, b->idle_timeout_sec);
        g_assert_cmpuint(a->max_payload, ==, b->max_payload);
        g_assert_cmpint(a->endpoint_activation, ==, b->endpoint_activation);
        g_assert_cmpuint(a->max_stored_messages, ==, b->max_stored_messages);
        g_assert_cmpuint(a->max_stored_bytes, ==, b->max_stored_bytes);
        g_assert_cmpuint(a->max_endpoints, ==, b->max_endpoints);
        g_assert_cmpuint(a->max_subscriptions, ==, b->max_subscriptions);
        g_assert_cmpuint(a->max_attached, ==, b->max_attached);
        g_assert_cmpuint(a->discard_oldest ? g_strv_length(a->discard_oldest) : 0, ==,
                         b->discard_oldest ? g_strv_length(b->discard_oldest) : 0);
        for (char **n = b->discard_oldest; n && *n; n++)
                g_assert_true(config_discards_oldest(a, *n));
}

static void test_defaults(void) {
        Config c = config_defaults();

        g_test_summary("Without a file the service idles out after 30 s, takes payloads up to 1 MiB and "
                       "writes activation files for endpoints.");
        g_assert_cmpuint(c.idle_timeout_sec, ==, 30);
        g_assert_cmpuint(c.max_payload, ==, 1048576);
        g_assert_true(c.endpoint_activation);
        g_assert_cmpuint(c.max_stored_messages, ==, 1000000);
        g_assert_cmpuint(c.max_stored_bytes, ==, 1073741824);
        g_assert_cmpuint(c.max_endpoints, ==, 1000);
        g_assert_cmpuint(c.max_subscriptions, ==, 100);
        g_assert_cmpuint(c.max_attached, ==, 1000);
        g_assert_null(c.discard_oldest);
        g_assert_false(config_discards_oldest(&c, "app.jobs"));
}

static void test_missing_optional_file(void) {
        g_autofree char *path = g_build_filename(g_get_user_config_dir(), "absent.conf", NULL);
        Config c = config_defaults(), expected = config_defaults();
        char *problem = NULL;

        g_test_summary("A configuration file that was not asked for by name may be missing: the settings "
                       "stay as they were.");
        g_assert_cmpint(config_load(&c, path, false, &problem), ==, 0);
        g_assert_null(problem);
        assert_config_equal(&c, &expected);
}

static void test_missing_required_file(void) {
        g_autofree char *path = g_build_filename(g_get_user_config_dir(), "absent.conf", NULL);
        _cleanup_(freep) char *problem = NULL;
        Config c = config_defaults();

        g_test_summary("A configuration file named on the command line must exist: -ENOENT with a "
                       "sentence that names the file.");
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, -ENOENT);
        g_assert_nonnull(problem);
        g_assert_true(g_str_has_prefix(problem, path));
}

static void test_values_are_read(void) {
        g_autofree char *path = write_config("# a comment\n"
                                             "[Broker]\n"
                                             "idle-timeout=0\n"
                                             "max-payload = 4096\n"
                                             "endpoint-activation=false\n");
        /* The limits are read by test_limits_are_read(). */
        Config c = config_defaults(), expected = config_defaults();
        char *problem = NULL;

        expected.idle_timeout_sec = 0;
        expected.max_payload = 4096;
        expected.endpoint_activation = false;
        g_test_summary("Every key of [Broker] is read, with spaces around '=' allowed.");
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, 0);
        g_assert_null(problem);
        assert_config_equal(&c, &expected);
}

static void test_keys_left_out_keep_their_value(void) {
        g_autofree char *path = write_config("[Broker]\nmax-payload=10\n");
        Config c = config_defaults(), expected = config_defaults();
        char *problem = NULL;

        g_test_summary("A key the file does not set keeps the value it had.");
        expected.max_payload = 10;
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, 0);
        assert_config_equal(&c, &expected);
}

static void test_limits_are_read(void) {
        g_autofree char *path = write_config("[Broker]\n"
                                             "max-stored-messages=10\n"
                                             "max-stored-bytes=0\n"
                                             "max-endpoints=3\n"
                                             "max-subscriptions=4\n"
                                             "max-attached=5\n"
                                             "[Endpoint app.jobs]\n"
                                             "discard = oldest\n"
                                             "[Endpoint app.log]\n"
                                             "discard=refuse\n"
                                             "[Endpoint chat]\n"
                                             "discard=oldest\n");
        _cleanup_(config_done) Config c = config_defaults();
        char *problem = NULL;

        g_test_summary("The limits of [Broker] are read, 0 included, and each [Endpoint NAME] group with "
                       "discard=oldest marks that endpoint; discard=refuse is the default spelled out.");
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, 0);
        g_assert_null(problem);
        g_assert_cmpuint(c.max_stored_messages, ==, 10);
        g_assert_cmpuint(c.max_stored_bytes, ==, 0);
        g_assert_cmpuint(c.max_endpoints, ==, 3);
        g_assert_cmpuint(c.max_subscriptions, ==, 4);
        g_assert_cmpuint(c.max_attached, ==, 5);
        g_assert_true(config_discards_oldest(&c, "app.jobs"));
        g_assert_true(config_discards_oldest(&c, "chat"));
        g_assert_false(config_discards_oldest(&c, "app.log"));
        g_assert_false(config_discards_oldest(&c, "app"));
        g_assert_cmpuint(g_strv_length(c.discard_oldest), ==, 2);
}

typedef struct BadCase {
        const char *contents;
        const char *problem;    /* what the sentence must contain after the path */
} BadCase;

static void test_bad_file(gconstpointer data) {
        const BadCase *bad = data;
        g_autofree char *path = write_config(bad->contents);
        _cleanup_(freep) char *problem = NULL;
        Config c = config_defaults(), expected = config_defaults();

        g_test_summary("A file with anything unknown or malformed is refused with -EINVAL and a sentence "
                       "naming the file and the problem, and changes nothing: the service never runs on "
                       "half a configuration.");
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, -EINVAL);
        g_assert_nonnull(problem);
        g_test_message("%s", problem);
        g_assert_true(g_str_has_prefix(problem, path));
        g_assert_nonnull(strstr(problem, bad->problem));
        assert_config_equal(&c, &expected);
}

static const BadCase bad_cases[] = {
        { "[Broker]\nmax-payload=abc\n", "invalid value 'abc' of max-payload" },
        { "[Broker]\nmax-payload=-1\n", "invalid value '-1' of max-payload" },
        { "[Broker]\nmax-payload=0x10\n", "invalid value '0x10' of max-payload" },
        { "[Broker]\nmax-payload=134217729\n", "expected a number from 0 to 134217728" },
        { "[Broker]\nidle-timeout=4294967296\n", "invalid value '4294967296' of idle-timeout" },
        { "[Broker]\nendpoint-activation=maybe\n", "endpoint-activation" },
        { "[Broker]\nmax-paylod=10\n", "unknown key 'max-paylod'" },
        { "[Brokers]\nmax-payload=10\n", "unknown group [Brokers]" },
        /* A translated key is no setting of ours, whatever the locale. */
        { "[Broker]\nmax-payload[de]=10\n", "unknown key 'max-payload[de]'" },
        { "max-payload=10\n", "does not start with a group" },
        { "[Broker]\nthis is not a line of a key file\n", "this is not a line of a key file" },
        /* Valid keys before a bad one must not be applied either. */
        { "[Broker]\nidle-timeout=5\nmax-payload=x\n", "invalid value 'x' of max-payload" },
        { "[Broker]\nmax-stored-messages=-5\n", "invalid value '-5' of max-stored-messages" },
        { "[Broker]\nmax-stored-bytes=1G\n", "invalid value '1G' of max-stored-bytes" },
        { "[Broker]\nmax-endpoints=4294967296\n", "invalid value '4294967296' of max-endpoints" },
        { "[Broker]\nmax-subscriptions=many\n", "invalid value 'many' of max-subscriptions" },
        { "[Broker]\nmax-attached=\n", "invalid value '' of max-attached" },
        { "[Endpoint 9lives]\ndiscard=oldest\n", "invalid endpoint name '9lives'" },
        { "[Endpoint ]\ndiscard=oldest\n", "invalid endpoint name ''" },
        { "[Endpoint app.jobs]\ndiscard=newest\n", "invalid value 'newest' of discard" },
        { "[Endpoint app.jobs]\nmax-stored-messages=5\n", "[Endpoint app.jobs] unknown key 'max-stored-messages'" },
        { "[Endpoints app.jobs]\ndiscard=oldest\n", "unknown group [Endpoints app.jobs]" },
        /* A good group before a bad one must not be applied either. */
        { "[Endpoint a]\ndiscard=oldest\n[Endpoint b]\ndiscard=x\n", "invalid value 'x' of discard" },
};

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

        g_test_add_func("/config/defaults/are-documented-values", test_defaults);
        g_test_add_func("/config/file/missing-is-fine-unless-required", test_missing_optional_file);
        g_test_add_func("/config/file/missing-required-names-the-file", test_missing_required_file);
        g_test_add_func("/config/file/values-are-read", test_values_are_read);
        g_test_add_func("/config/file/keys-left-out-keep-their-value", test_keys_left_out_keep_their_value);
        g_test_add_func("/config/file/limits-and-endpoint-groups-are-read", test_limits_are_read);
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                g_autofree char *path = g_strdup_printf("/config/file/bad/%zu", i + 1);
                g_test_add_data_func(path, &bad_cases[i], test_bad_file);
        }

        return g_test_run();
}
