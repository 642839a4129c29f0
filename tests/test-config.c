/* SPDX-License-Identifier: MIT */
/* Unit tests of the configuration file reader (service/config.c). */

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "config.h"
#include "policy.h"
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
        g_assert_cmpint(a->policy.trust_same_user, ==, b->policy.trust_same_user);
        g_assert_cmpuint(a->policy.n_clients, ==, b->policy.n_clients);
        g_assert_true(a->broadcast == NULL && b->broadcast == NULL);
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
        g_assert_true(c.policy.trust_same_user);
        g_assert_cmpuint(c.policy.n_clients, ==, 0);
        g_assert_false(config_broadcasts(&c, "app.jobs"));
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

static void test_clients_are_read(void) {
        g_autofree char *path = write_config("[Broker]\n"
                                             "trust-same-user=false\n"
                                             "\n"
                                             "[Client notes-sync]\n"
                                             "token = 4f1c9e2a7b3d8e6f0a1b2c3d\n"
                                             "publish=org.example.Notes.**\n"
                                             "subscribe=org.example.Notes.changes; org.example.*.status\n"
                                             "\n"
                                             "[Client maps]\n"
                                             "app-id=org.gnome.Maps\n"
                                             "subscribe=org.gnome.Maps.**\n"
                                             "admin=true\n"
                                             "\n"
                                             "[Client indexer]\n"
                                             "exe=/usr/libexec/indexer\n");
        _cleanup_(config_done) Config c = config_defaults();
        _cleanup_(freep) char *problem = NULL;
        const char *token = "4f1c9e2a7b3d8e6f0a1b2c3d";
        uint8_t digest[POLICY_DIGEST_SIZE];
        const PolicyClient *client;

        g_test_summary("[Broker] trust-same-user and every [Client NAME] group are read in the order of the "
                       "file: the one match key, the patterns of publish= and subscribe= (spaces around "
                       "them dropped) and admin=; a token is kept only as its digest.");
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, 0);
        g_assert_null(problem);
        g_assert_false(c.policy.trust_same_user);
        g_assert_cmpuint(c.policy.n_clients, ==, 3);

        client = &c.policy.clients[0];
        g_assert_cmpstr(client->name, ==, "notes-sync");
        g_assert_cmpint(client->match, ==, CLIENT_MATCH_TOKEN);
        g_assert_null(client->value);
        policy_token_digest(token, strlen(token), digest);
        g_assert_cmpmem(client->digest, sizeof(client->digest), digest, sizeof(digest));
        g_assert_cmpuint(g_strv_length(client->publish), ==, 1);
        g_assert_cmpstr(client->publish[0], ==, "org.example.Notes.**");
        g_assert_cmpuint(g_strv_length(client->subscribe), ==, 2);
        g_assert_cmpstr(client->subscribe[0], ==, "org.example.Notes.changes");
        g_assert_cmpstr(client->subscribe[1], ==, "org.example.*.status");
        g_assert_false(client->admin);

        client = &c.policy.clients[1];
        g_assert_cmpstr(client->name, ==, "maps");
        g_assert_cmpint(client->match, ==, CLIENT_MATCH_APP_ID);
        g_assert_cmpstr(client->value, ==, "org.gnome.Maps");
        g_assert_null(client->publish);
        g_assert_cmpstr(client->subscribe[0], ==, "org.gnome.Maps.**");
        g_assert_true(client->admin);

        client = &c.policy.clients[2];
        g_assert_cmpstr(client->name, ==, "indexer");
        g_assert_cmpint(client->match, ==, CLIENT_MATCH_EXE);
        g_assert_cmpstr(client->value, ==, "/usr/libexec/indexer");
        g_assert_null(client->publish);
        g_assert_null(client->subscribe);
}

static void test_clients_replace_earlier_ones(void) {
        g_autofree char *first = write_config("[Client a]\nexe=/bin/a\n[Endpoint x]\nbroadcast=true\n");
        _cleanup_(config_done) Config c = config_defaults();
        _cleanup_(freep) char *problem = NULL;
        g_autofree char *second = NULL;

        g_test_summary("A second file's [Client] and [Endpoint] groups replace the first one's, and a file "
                       "that is refused leaves them as they were.");
        g_assert_cmpint(config_load(&c, first, true, &problem), ==, 0);
        g_assert_cmpuint(c.policy.n_clients, ==, 1);
        g_assert_true(config_broadcasts(&c, "x"));

        second = write_config("[Client a]\nexe=/bin/a\n[Client b]\nexe=relative\n");
        g_assert_cmpint(config_load(&c, second, true, &problem), ==, -EINVAL);
        g_clear_pointer(&problem, free);
        g_assert_cmpuint(c.policy.n_clients, ==, 1);
        g_assert_cmpstr(c.policy.clients[0].value, ==, "/bin/a");
        g_assert_true(config_broadcasts(&c, "x"));

        second = (g_free(second), write_config("[Client b]\ntoken=0123456789abcdef\n"));
        g_assert_cmpint(config_load(&c, second, true, &problem), ==, 0);
        g_assert_cmpuint(c.policy.n_clients, ==, 1);
        g_assert_cmpstr(c.policy.clients[0].name, ==, "b");
        g_assert_false(config_broadcasts(&c, "x"));
}

static void test_broadcast_is_read(void) {
        g_autofree char *path = write_config("[Endpoint app.status]\nbroadcast=true\n"
                                             "[Endpoint app.jobs]\nbroadcast=false\ndiscard=oldest\n");
        _cleanup_(config_done) Config c = config_defaults();
        _cleanup_(freep) char *problem = NULL;

        g_test_summary("[Endpoint NAME] broadcast=true marks that endpoint alone; broadcast=false is the "
                       "default spelled out, beside the group's other keys.");
        g_assert_cmpint(config_load(&c, path, true, &problem), ==, 0);
        g_assert_true(config_broadcasts(&c, "app.status"));
        g_assert_false(config_broadcasts(&c, "app.jobs"));
        g_assert_true(config_discards_oldest(&c, "app.jobs"));
        g_assert_cmpuint(g_strv_length(c.broadcast), ==, 1);
}

typedef struct BadCase {
        const char *contents;
        unsigned line;          /* the line the sentence names, 0: none */
        const char *problem;    /* what the sentence must contain after the path */
        const char *secret;     /* what it must not contain, or NULL */
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
        if (bad->line > 0) {
                g_autofree char *where = g_strdup_printf("%s:%u: ", path, bad->line);
                g_assert_true(g_str_has_prefix(problem, where));
        } else
                g_assert_cmpstr(problem + strlen(path), ==, ": ");
        g_assert_nonnull(strstr(problem, bad->problem));
        if (bad->secret)
                g_assert_null(strstr(problem, bad->secret));
        assert_config_equal(&c, &expected);
}

static const BadCase bad_cases[] = {
        { "[Broker]\nmax-payload=abc\n", 2, "invalid value 'abc' of max-payload" },
        { "[Broker]\nmax-payload=-1\n", 2, "invalid value '-1' of max-payload" },
        { "[Broker]\nmax-payload=0x10\n", 2, "invalid value '0x10' of max-payload" },
        { "[Broker]\nmax-payload=134217729\n", 2, "expected a number from 0 to 134217728" },
        { "[Broker]\nidle-timeout=4294967296\n", 2, "invalid value '4294967296' of idle-timeout" },
        { "[Broker]\nendpoint-activation=maybe\n", 2, "endpoint-activation" },
        { "[Broker]\nmax-paylod=10\n", 2, "unknown key 'max-paylod'" },
        { "[Brokers]\nmax-payload=10\n", 1, "unknown group [Brokers]" },
        /* A translated key is no setting of ours, whatever the locale. */
        { "[Broker]\nmax-payload[de]=10\n", 2, "unknown key 'max-payload[de]'" },
        { "max-payload=10\n", 1, "does not start with a group" },
        { "[Broker]\nthis is not a line of a key file\n", 2, "this is not a line of a key file" },
        /* Valid keys before a bad one must not be applied either. */
        { "[Broker]\nidle-timeout=5\nmax-payload=x\n", 3, "invalid value 'x' of max-payload" },
        { "[Broker]\nmax-stored-messages=-5\n", 2, "invalid value '-5' of max-stored-messages" },
        { "[Broker]\nmax-stored-bytes=1G\n", 2, "invalid value '1G' of max-stored-bytes" },
        { "[Broker]\nmax-endpoints=4294967296\n", 2, "invalid value '4294967296' of max-endpoints" },
        { "[Broker]\nmax-subscriptions=many\n", 2, "invalid value 'many' of max-subscriptions" },
        { "[Broker]\nmax-attached=\n", 2, "invalid value '' of max-attached" },
        { "[Endpoint 9lives]\ndiscard=oldest\n", 1, "invalid endpoint name '9lives'" },
        { "[Endpoint ]\ndiscard=oldest\n", 1, "invalid endpoint name ''" },
        { "[Endpoint app.jobs]\ndiscard=newest\n", 2, "invalid value 'newest' of discard" },
        { "[Endpoint app.jobs]\nmax-stored-messages=5\n", 2,
          "[Endpoint app.jobs] unknown key 'max-stored-messages'" },
        { "[Endpoints app.jobs]\ndiscard=oldest\n", 1, "unknown group [Endpoints app.jobs]" },
        /* A good group before a bad one must not be applied either. */
        { "[Endpoint a]\ndiscard=oldest\n[Endpoint b]\ndiscard=x\n", 4, "invalid value 'x' of discard" },
        { "[Endpoint a]\n\nbroadcast=sometimes\n", 3, "[Endpoint a] broadcast" },
        /* The line is the one GKeyFile takes the value from: the last. */
        { "[Broker]\nmax-payload=1\n# comment\nmax-payload=y\n", 4, "invalid value 'y' of max-payload" },
        { "[Broker]\ntrust-same-user=perhaps\n", 2, "[Broker] trust-same-user" },
        { "[Client a]\npublish=x\n", 1, "[Client a] has no match key" },
        { "# clients\n[Client a]\nexe=/bin/x\ntoken=0123456789abcdef\n", 4,
          "[Client a] has both exe= and token=", "0123456789abcdef" },
        { "[Client a]\ntoken=tooshort\n", 2, "[Client a] token is 8 characters long: expected 16 to 1024",
          "tooshort" },
        { "[Client a]\napp-id=org.ex ample\n", 2, "[Client a] invalid app-id 'org.ex ample': character 7" },
        { "[Client a]\nexe=bin/x\n", 2, "[Client a] invalid exe 'bin/x': expected an absolute path" },
        { "[Client a]\napp-id=org.x.Y\npublish=a.**.b\n", 3, "[Client a] invalid endpoint pattern 'a.**.b'" },
        { "[Client a]\napp-id=x\nsubscribe=a;;b\n", 3, "[Client a] invalid endpoint pattern ''" },
        { "[Client a]\napp-id=x\nadmin=yes\n", 3, "[Client a] admin" },
        { "[Client a]\napp-id=x\nrights=all\n", 3, "[Client a] unknown key 'rights'" },
        { "[Client a b]\napp-id=x\n", 1, "[Client a b]: invalid client name 'a b'" },
        { "[Client ]\napp-id=x\n", 1, "invalid client name ''" },
        /* GLib quotes a line it cannot parse; in a client group it may hold a token. */
        { "[Client s]\ntoken 0123456789abcdef\n", 2, "the line is not shown", "0123456789abcdef" },
        { "[Client a]\nexe=/bin/a\n[Client b]\n", 3, "[Client b] has no match key" },
};

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

        g_test_add_func("/config/defaults/are-documented-values", test_defaults);
        g_test_add_func("/config/file/missing-is-fine-unless-required", test_missing_optional_file);
        g_test_add_func("/config/file/missing-required-names-the-file", test_missing_required_file);
        g_test_add_func("/config/file/values-are-read", test_values_are_read);
        g_test_add_func("/config/file/keys-left-out-keep-their-value", test_keys_left_out_keep_their_value);
        g_test_add_func("/config/file/limits-and-endpoint-groups-are-read", test_limits_are_read);
        g_test_add_func("/config/file/clients-are-read", test_clients_are_read);
        g_test_add_func("/config/file/clients-replace-earlier-ones", test_clients_replace_earlier_ones);
        g_test_add_func("/config/file/broadcast-is-read", test_broadcast_is_read);
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                g_autofree char *path = g_strdup_printf("/config/file/bad/%zu", i + 1);
                g_test_add_data_func(path, &bad_cases[i], test_bad_file);
        }

        return g_test_run();
}
