/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of access control (issue 4): who may publish to,
 * subscribe to and manage which endpoint. The policy is the configuration
 * the activated service reads ($XDG_CONFIG_HOME/durabus/durabus.conf,
 * isolated per test and written before the first call starts the service):
 * with trust-same-user=false every connection of the test, which runs as
 * the service's own user, is untrusted and holds only the rights of the
 * [Client NAME] groups it matches, by its executable (exe=) or by a token
 * it proved with Authenticate (token=).
 *
 * Each refusal is checked for its exact error name and message, and for
 * what it must not have done, through a connection that may look: a refused
 * Send stored nothing, a refused call on a new endpoint's path created
 * nothing. Nothing sleeps: signals are awaited with collector_wait(), their
 * absence is proved after a collector_sync() barrier, and the delay of a
 * failed Authenticate is measured as a lower bound only. Every test case
 * runs against a private dbus-daemon that starts the built durabusd by
 * activation (fixture.c).
 */
#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#define ERROR_SPAWN_CHILD_EXITED "org.freedesktop.DBus.Error.Spawn.ChildExited"

/* A failed Authenticate is answered after 0.5 s; what a test may count on,
 * with room for the clocks of two processes. */
#define FAILURE_DELAY_MIN_USEC (450 * 1000)

/* The tokens of the clients below: 16 to 1024 characters each. */
#define OWNER_TOKEN "owner-token-3f9a1c77d2e04b58"
#define SENDER_TOKEN "sender-token-8b2e6d19f0c34a71"
#define READER_TOKEN "reader-token-c41f7a0e95d26b83"
#define NOBODY_TOKEN "nobody-token-5d0b3e8a27f1c946"
#define ADMIN_TOKEN "admin-token-e7c2904b6a1d5f38"
#define PATTERNS_TOKEN "patterns-token-19d6f4b0c8e2a753"
#define SHARED_TOKEN "shared-token-a2c8e1f60b9d4735"

/* Well formed, but no client has it. */
#define UNKNOWN_TOKEN "unknown-token-0000000000000000"

#define UNTRUSTED "[Broker]\ntrust-same-user=false\n"

/* The registered clients of most tests: one per kind of rights. */
#define CLIENTS                                                 \
        "\n[Client owner]\n"                                    \
        "token=" OWNER_TOKEN "\n"                               \
        "publish=app.jobs\n"                                    \
        "subscribe=app.jobs\n"                                  \
        "\n[Client sender]\n"                                   \
        "token=" SENDER_TOKEN "\n"                              \
        "publish=app.jobs;news;quiet\n"                         \
        "\n[Client reader]\n"                                   \
        "token=" READER_TOKEN "\n"                              \
        "subscribe=app.jobs;quiet\n"                            \
        "\n[Client nobody]\n"                                   \
        "token=" NOBODY_TOKEN "\n"                              \
        "\n[Client admin]\n"                                    \
        "token=" ADMIN_TOKEN "\n"                               \
        "admin=true\n"                                          \
        "\n[Client patterns]\n"                                 \
        "token=" PATTERNS_TOKEN "\n"                            \
        "publish=app.*.jobs;org.example.Notes.**\n"             \
        "subscribe=org.example.Notes.**\n"                      \
        "\n[Client shared-publish]\n"                           \
        "token=" SHARED_TOKEN "\n"                              \
        "publish=shared\n"                                      \
        "\n[Client shared-subscribe]\n"                         \
        "token=" SHARED_TOKEN "\n"                              \
        "subscribe=shared\n"

/* Test data: starts with the FixtureOptions that fixture_setup() reads. */
typedef struct AccessOptions {
        FixtureOptions options;
        const char *config;     /* the configuration file; NULL: none, the defaults */
} AccessOptions;

static const AccessOptions untrusted = { .config = UNTRUSTED CLIENTS };
static const AccessOptions untrusted_broadcast = { .config = UNTRUSTED CLIENTS "\n[Endpoint news]\nbroadcast=true\n" };
static const AccessOptions untrusted_idle_after_1s = { .config = UNTRUSTED "idle-timeout=1\n" CLIENTS };
static const AccessOptions no_configuration = { .config = NULL };
static const AccessOptions clients_and_default_trust = { .config = CLIENTS };

/* ---- Helpers ---------------------------------------------------------- */

/* fixture_setup(), then the configuration of the test data, so that it is in
 * place before anything starts the service. */
static void access_setup(Fixture *f, gconstpointer data) {
        const AccessOptions *options = data;

        fixture_setup(f, data);
        if (options->config)
                fixture_write_config(options->config);
}

static GError *authenticate_error(GDBusConnection *c, const char *token) {
        return fixture_call_error(c, BROKER_PATH, BROKER_IFACE, "Authenticate", g_variant_new("(s)", token));
}

static void authenticate(GDBusConnection *c, const char *token) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call_ok(c, BROKER_PATH, BROKER_IFACE, "Authenticate", g_variant_new("(s)", token), "()");
}

/* A further connection that proved token; the caller unrefs it. */
static GDBusConnection *connect_as(Fixture *f, const char *token) {
        GDBusConnection *c = fixture_connect(f);

        authenticate(c, token);
        return c;
}

/* The names ListEndpoints shows c, space-separated in its order (by name),
 * so that a failure prints both lists. The caller frees it. */
static char *listed(GDBusConnection *c) {
        g_autoptr(GVariant) list = fixture_list_endpoints(c);
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        GVariantIter iter;
        const char *name;

        g_variant_iter_init(&iter, list);
        while (g_variant_iter_next(&iter, "(&s&o)", &name, NULL))
                g_ptr_array_add(names, (gpointer) name);
        g_ptr_array_add(names, NULL);
        return g_strjoinv(" ", (char **) names->pdata);
}

/* Fails the test unless the endpoint does not exist: neither the view of
 * viewer, a connection with the admin right (which sees every endpoint),
 * nor the state directory has it. */
static void assert_no_endpoint(Fixture *f, GDBusConnection *viewer, const char *endpoint) {
        g_autofree char *file = g_strconcat(endpoint, ".db", NULL);
        g_autofree char *path = g_build_filename(f->state_dir, "endpoints", file, NULL);
        g_autofree char *names = listed(viewer);
        g_auto(GStrv) split = g_strsplit(names, " ", -1);

        g_test_message("Endpoints: '%s'", names);
        g_assert_false(g_strv_contains((const char *const *) split, endpoint));
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

/* One method of the API and what a caller must hold to call it. */
typedef struct Method {
        const char *name;
        const char *what;       /* "Not allowed to WHAT endpoint..." */
        const char *right;      /* "...the RIGHT right is missing" */
} Method;

static const Method methods[] = {
        { "Send", "publish to", "publish" },
        { "SendBatch", "publish to", "publish" },
        { "Subscribe", "subscribe to", "subscribe" },
        { "Ack", "acknowledge in", "subscribe" },
        { "Unsubscribe", "unsubscribe from", "subscribe" },
        { "ClearAll", "clear", "publish or admin" },
        { "OpenEndpoint", "open", "publish or admin" },
        { "DeleteEndpoint", "delete", "publish or admin" },
};

static const Method *method_get(const char *name) {
        for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
                if (g_str_equal(methods[i].name, name))
                        return &methods[i];
        g_error("No method '%s' in the table", name);
}

/* Calls method on endpoint (on the broker for OpenEndpoint and
 * DeleteEndpoint) with plain arguments: Send of a message "refused" (a
 * batch of it for SendBatch),
 * Subscribe, Ack of "m1" and Unsubscribe of subscription "worker". Returns
 * the error, or NULL when the call succeeded. */
static GError *method_error(GDBusConnection *c, const char *method, const char *endpoint) {
        g_autoptr(GVariant) args = NULL;

        if (g_str_equal(method, "OpenEndpoint"))
                return fixture_call_error(c, BROKER_PATH, BROKER_IFACE, method,
                                          g_variant_new("(sa{sv})", endpoint, NULL));
        if (g_str_equal(method, "DeleteEndpoint"))
                return fixture_call_error(c, BROKER_PATH, BROKER_IFACE, method, g_variant_new("(s)", endpoint));

        if (g_str_equal(method, "Send"))
                args = g_variant_new_parsed("('refused', 'payload', @a{sv} {})");
        else if (g_str_equal(method, "SendBatch"))
                args = g_variant_new_parsed("([('refused', 'payload', @a{sv} {})],)");
        else if (g_str_equal(method, "Ack"))
                args = g_variant_new_parsed("('worker', ['m1'])");
        else if (g_str_equal(method, "ClearAll"))
                args = g_variant_new_parsed("()");
        else
                args = g_variant_new_parsed("('worker', @a{sv} {})");
        return fixture_endpoint_call_error(c, endpoint, method, g_steal_pointer(&args));
}

/* Fails the test, naming the caller's line, unless method on endpoint is
 * refused to c with AccessDenied and the message of the contract, naming
 * the endpoint and the missing right. */
#define assert_refused(c, method, endpoint) assert_refused_at(__FILE__, __LINE__, G_STRFUNC, c, method, endpoint)
static void assert_refused_at(const char *file, int line, const char *func, GDBusConnection *c, const char *method,
                              const char *endpoint) {
        const Method *m = method_get(method);
        g_autoptr(GError) error = method_error(c, method, endpoint);
        g_autofree char *expected = g_strdup_printf("Not allowed to %s endpoint '%s': the %s right is missing",
                                                    m->what, endpoint, m->right);

        g_test_message("%s on '%s': expecting %s", method, endpoint, expected);
        fixture_assert_dbus_error_at(file, line, func, error, ERROR_ACCESS_DENIED, expected);
}

/* Fails the test unless both are the same D-Bus error with the same
 * message. */
static void assert_same_error(const GError *a, const GError *b) {
        g_autofree char *name_a = NULL, *name_b = NULL;

        g_assert_nonnull(a);
        g_assert_nonnull(b);
        name_a = g_dbus_error_get_remote_error(a);
        name_b = g_dbus_error_get_remote_error(b);
        g_assert_cmpstr(name_a, ==, name_b);
        g_assert_cmpstr(a->message, ==, b->message);
}

/* Authenticate(token) from c, which is to fail as a wrong token does, after
 * at least the failure delay. Returns the error, which the caller frees. */
static GError *authenticate_failure(GDBusConnection *c, const char *token) {
        gint64 start = g_get_monotonic_time();
        GError *error = authenticate_error(c, token);
        gint64 took = g_get_monotonic_time() - start;

        fixture_assert_dbus_error(error, ERROR_ACCESS_DENIED, AUTHENTICATION_FAILED);
        g_test_message("Authenticate of a token of %zu characters failed after %" G_GINT64_FORMAT " us",
                       strlen(token), took);
        g_assert_cmpint(took, >=, FAILURE_DELAY_MIN_USEC);
        return error;
}

static void assert_authenticate_fails(GDBusConnection *c, const char *token) {
        g_error_free(authenticate_failure(c, token));
}

static int compare_times(const void *a, const void *b) {
        gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

        return (x > y) - (x < y);
}

static char *test_executable(void) {
        char *exe = realpath("/proc/self/exe", NULL);

        g_assert_nonnull(exe);
        return exe;
}

/* Runs argv (the program's path first) to its end; returns its exit status
 * (-1 when a signal ended it) and its standard error in *ret_stderr, which
 * the caller frees. */
static int run_program(const char *const *argv, char **ret_stderr) {
        g_autoptr(GSubprocess) proc = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;

        proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, &out, ret_stderr, &error));
        g_assert_no_error(error);
        g_test_message("%s: exit %d, stdout '%s', stderr '%s'", argv[0],
                       g_subprocess_get_if_exited(proc) ? g_subprocess_get_exit_status(proc) : -1, out, *ret_stderr);
        return g_subprocess_get_if_exited(proc) ? g_subprocess_get_exit_status(proc) : -1;
}

/* ---- No rights, some rights ----------------------------------------- */

static void test_no_rights_refused_everything(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) owner = connect_as(f, OWNER_TOKEN);
        g_autoptr(GDBusConnection) admin = connect_as(f, ADMIN_TOKEN);
        g_autoptr(GDBusConnection) nobody = connect_as(f, NOBODY_TOKEN);
        g_autoptr(Collector) collector = collector_new(owner);
        g_autofree char *seen = NULL;
        const char *ids[] = { "m1", NULL };

        g_test_summary("A client that proved a token of no rights is refused Send, SendBatch, Subscribe, Ack, "
                       "Unsubscribe, ClearAll, OpenEndpoint and DeleteEndpoint with AccessDenied naming the "
                       "endpoint and the missing right, and none of them has any effect: the message is still "
                       "stored and unacknowledged, the subscription still attached to its owner, no endpoint "
                       "created or deleted. DeleteEndpoint of a missing endpoint is AccessDenied too, not "
                       "NoSuchEndpoint. ListEndpoints shows it nothing.");

        fixture_send(owner, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(owner, "app.jobs", "worker"), ==, 1);
        collector_wait(collector, 1);

        for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
                assert_refused(nobody, methods[i].name, "app.jobs");

        /* On the path of an endpoint that does not exist: nothing is made. */
        for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
                assert_refused(nobody, methods[i].name, "not.yet");
        assert_no_endpoint(f, admin, "not.yet");

        seen = listed(nobody);
        g_assert_cmpstr(seen, ==, "");

        /* The refusals changed nothing. */
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 1);
        g_assert_cmpuint(fixture_ack(owner, "app.jobs", "worker", ids), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 0);
        fixture_unsubscribe(owner, "app.jobs", "worker", FALSE);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);
}

static void test_unknown_connection_refused(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) owner = connect_as(f, OWNER_TOKEN);
        g_autofree char *seen = NULL;

        g_test_summary("A connection that matches no client and proved no token (trust-same-user=false) is "
                       "refused every method with AccessDenied and sees no endpoint.");

        fixture_send(owner, "app.jobs", "m1", "payload", NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
                assert_refused(f->conn, methods[i].name, "app.jobs");

        seen = listed(f->conn);
        g_assert_cmpstr(seen, ==, "");
        g_assert_cmpuint(fixture_stored_messages(owner, "app.jobs"), ==, 1);
}

static void test_publish_only(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        g_autoptr(GDBusConnection) admin = connect_as(f, ADMIN_TOKEN);
        g_autoptr(Collector) collector = collector_new(sender);
        g_autoptr(GArray) seqs = NULL;
        g_autofree char *seen = NULL;

        g_test_summary("A client with only the publish right on an endpoint can send to it (and so sees it in "
                       "ListEndpoints), but is refused Subscribe, Ack and Unsubscribe with AccessDenied naming "
                       "the subscribe right, and receives nothing.");

        seqs = fixture_send_numbered(sender, "app.jobs", 0, 2);
        g_assert_cmpuint(fixture_seq_at(seqs, 1), >, fixture_seq_at(seqs, 0));
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 2);

        assert_refused(sender, "Subscribe", "app.jobs");
        assert_refused(sender, "Ack", "app.jobs");
        assert_refused(sender, "Unsubscribe", "app.jobs");

        seen = listed(sender);
        g_assert_cmpstr(seen, ==, "app.jobs");

        fixture_send_numbered(sender, "app.jobs", 2, 1);
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 3);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 0);
}

static void test_subscribe_only(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        g_autoptr(GDBusConnection) reader = connect_as(f, READER_TOKEN);
        g_autoptr(Collector) collector = collector_new(reader);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("A client with only the subscribe right receives the messages another client publishes "
                       "and acknowledges them, but its Send is refused naming the publish right and stores "
                       "nothing, and its ClearAll is refused naming the publish or admin right and clears "
                       "nothing.");

        g_assert_cmpuint(fixture_subscribe(reader, "app.jobs", "worker"), ==, 0);
        seqs = fixture_send_numbered(sender, "app.jobs", 0, 3);
        collector_wait(collector, 3);
        for (guint i = 0; i < 3; i++)
                fixture_assert_delivered(collector_get(collector, i), "app.jobs", "worker", i,
                                         fixture_seq_at(seqs, i), 1);

        assert_refused(reader, "Send", "app.jobs");
        assert_refused(reader, "SendBatch", "app.jobs");
        g_assert_cmpuint(fixture_stored_messages(reader, "app.jobs"), ==, 3);
        assert_refused(reader, "ClearAll", "app.jobs");
        g_assert_cmpuint(fixture_stored_messages(reader, "app.jobs"), ==, 3);
        assert_refused(reader, "OpenEndpoint", "app.jobs");
        assert_refused(reader, "DeleteEndpoint", "app.jobs");

        g_assert_cmpuint(fixture_ack_collected(reader, "app.jobs", "worker", collector, 0, 3), ==, 3);
        g_assert_cmpuint(fixture_stored_messages(reader, "app.jobs"), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 3);
}

static void test_intruder_receives_nothing(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        g_autoptr(GDBusConnection) reader = connect_as(f, READER_TOKEN);
        g_autoptr(GDBusConnection) intruder = fixture_connect(f);
        g_autoptr(Collector) mine = collector_new(reader);
        g_autoptr(Collector) theirs = collector_new(intruder);
        g_autoptr(GArray) stored = NULL;
        g_autoptr(GArray) live = NULL;
        g_autoptr(GError) ephemeral = NULL;
        g_autoptr(GError) own = NULL;

        g_test_summary("A second connection without rights that listens for the Message signals reaching it "
                       "cannot take over the subscription of the first (AccessDenied, not SubscriberBusy), nor "
                       "make one of its own, durable or ephemeral, and receives none of the messages, neither "
                       "those replayed to the first subscriber nor the live ones.");

        stored = fixture_send_numbered(sender, "app.jobs", 0, 2);
        g_assert_cmpuint(fixture_subscribe(reader, "app.jobs", "worker"), ==, 2);

        /* Its collector's match rule is in place before anything is sent. */
        collector_sync(theirs);
        assert_refused(intruder, "Subscribe", "app.jobs");
        ephemeral = fixture_endpoint_call_error(intruder, "app.jobs", "Subscribe", g_variant_new("(sa{sv})", "", NULL));
        fixture_assert_dbus_error(ephemeral, ERROR_ACCESS_DENIED, "Not allowed to subscribe to endpoint 'app.jobs'");
        own = fixture_endpoint_call_error(intruder, "app.jobs", "Subscribe", g_variant_new("(sa{sv})", "spy", NULL));
        fixture_assert_dbus_error(own, ERROR_ACCESS_DENIED, "Not allowed to subscribe to endpoint 'app.jobs'");

        live = fixture_send_numbered(sender, "app.jobs", 2, 2);
        collector_wait(mine, 4);
        fixture_assert_delivered(collector_get(mine, 0), "app.jobs", "worker", 0, fixture_seq_at(stored, 0), 1);
        fixture_assert_delivered(collector_get(mine, 3), "app.jobs", "worker", 3, fixture_seq_at(live, 1), 1);

        collector_sync(mine);
        collector_sync(theirs);
        g_assert_cmpuint(mine->messages->len, ==, 4);
        g_assert_cmpuint(theirs->messages->len, ==, 0);
}

/* ---- Creating by a call on the path ------------------------------------ */

static void test_call_creates_only_with_right(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        g_autoptr(GDBusConnection) reader = connect_as(f, READER_TOKEN);
        g_autoptr(GDBusConnection) admin = connect_as(f, ADMIN_TOKEN);
        g_autofree char *seen = NULL;

        g_test_summary("A call on the path of an endpoint that does not exist yet creates it only when the "
                       "caller holds that method's right: a Subscribe of a client that may only publish, and a "
                       "Send of a client that may only subscribe, are refused and create nothing; the reader's "
                       "Subscribe and the sender's Send create it.");

        assert_refused(sender, "Subscribe", "quiet");
        assert_no_endpoint(f, admin, "quiet");
        assert_refused(reader, "Send", "quiet");
        assert_no_endpoint(f, admin, "quiet");
        g_assert_cmpuint(fixture_subscribe(reader, "quiet", "worker"), ==, 0);
        seen = listed(admin);
        g_assert_cmpstr(seen, ==, "quiet");

        assert_refused(reader, "Send", "app.jobs");
        assert_no_endpoint(f, admin, "app.jobs");
        fixture_send(sender, "app.jobs", "m1", "payload", NULL);
        g_clear_pointer(&seen, g_free);
        seen = listed(admin);
        g_assert_cmpstr(seen, ==, "app.jobs quiet");
}

/* ---- Patterns -------------------------------------------------------- */

/* An endpoint and whether the patterns of client "patterns" cover it. */
typedef struct Covered {
        const char *endpoint;
        gboolean publish;
        gboolean subscribe;
} Covered;

static const Covered covered[] = {
        /* app.*.jobs: * is exactly one element. */
        { "app.mail.jobs", TRUE, FALSE },
        { "app.x.jobs", TRUE, FALSE },
        { "app.jobs", FALSE, FALSE },
        { "app.a.b.jobs", FALSE, FALSE },
        { "app.mail.jobs.more", FALSE, FALSE },
        { "app.mail.tasks", FALSE, FALSE },
        /* org.example.Notes.**: any number of trailing elements, none too. */
        { "org.example.Notes", TRUE, TRUE },
        { "org.example.Notes.sync", TRUE, TRUE },
        { "org.example.Notes.a.b.c", TRUE, TRUE },
        { "org.example.NotesX", FALSE, FALSE },
        { "org.example", FALSE, FALSE },
        { "org.example.Other", FALSE, FALSE },
};

static void test_patterns(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) client = connect_as(f, PATTERNS_TOKEN);
        g_autoptr(GDBusConnection) admin = connect_as(f, ADMIN_TOKEN);
        g_autofree char *seen_by_admin = NULL;
        g_autofree char *seen_by_client = NULL;

        g_test_summary("publish=app.*.jobs;org.example.Notes.** and subscribe=org.example.Notes.**: '*' stands "
                       "for exactly one element (app.mail.jobs, not app.jobs, app.a.b.jobs or "
                       "app.mail.jobs.more), '**' for any number of trailing elements including none "
                       "(org.example.Notes itself and below it, not org.example.NotesX or org.example). A "
                       "refused Send or Subscribe creates nothing, and ListEndpoints shows the client only "
                       "what it covers.");

        /* Endpoints the client does not cover exist too, for ListEndpoints. */
        fixture_open_endpoint(admin, "app.jobs", NULL);
        fixture_open_endpoint(admin, "org.example", NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(covered); i++) {
                const Covered *c = &covered[i];

                g_test_message("Endpoint '%s'", c->endpoint);
                if (c->subscribe)
                        g_assert_cmpuint(fixture_subscribe(client, c->endpoint, "notes"), ==, 0);
                else
                        assert_refused(client, "Subscribe", c->endpoint);

                if (c->publish) {
                        fixture_send(client, c->endpoint, "m1", "payload", NULL);
                        g_assert_cmpuint(fixture_stored_messages(admin, c->endpoint), ==, 1);
                } else {
                        assert_refused(client, "Send", c->endpoint);
                        if (!g_str_equal(c->endpoint, "app.jobs") && !g_str_equal(c->endpoint, "org.example"))
                                assert_no_endpoint(f, admin, c->endpoint);
                }
        }

        /* ListEndpoints is sorted by name. */
        seen_by_client = listed(client);
        g_assert_cmpstr(seen_by_client, ==, "app.mail.jobs app.x.jobs org.example.Notes org.example.Notes.a.b.c "
                                            "org.example.Notes.sync");
        seen_by_admin = listed(admin);
        g_assert_cmpstr(seen_by_admin, ==, "app.jobs app.mail.jobs app.x.jobs org.example org.example.Notes "
                                           "org.example.Notes.a.b.c org.example.Notes.sync");
}

/* ---- Authenticate ---------------------------------------------------- */

static void test_bad_and_unknown_tokens_fail_alike(Fixture *f, gconstpointer data) {
        g_autofree char *too_long = g_strnfill(1025, 't');
        g_autofree char *near_miss = g_strdup(OWNER_TOKEN);
        const char *tokens[] = { "", "short", NULL, NULL };
        g_autoptr(GError) first = NULL;
        g_autofree char *seen = NULL;

        g_test_summary("Authenticate with a malformed token (empty, too short, too long), an unknown one, or a "
                       "registered one with its last character changed fails alike: AccessDenied with the same "
                       "message, each after at least the failure delay. The failures grant nothing.");

        near_miss[strlen(near_miss) - 1] = 'X';
        tokens[2] = near_miss;
        tokens[3] = too_long;

        first = authenticate_failure(f->conn, UNKNOWN_TOKEN);
        for (gsize i = 0; i < G_N_ELEMENTS(tokens); i++) {
                g_autoptr(GError) again = authenticate_failure(f->conn, tokens[i]);

                assert_same_error(first, again);
        }

        for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
                assert_refused(f->conn, methods[i].name, "app.jobs");
        seen = listed(f->conn);
        g_assert_cmpstr(seen, ==, "");
}

/* Authenticate calls in flight at once on one connection. */
typedef struct Attempts {
        gint64 sent;            /* g_get_monotonic_time() when they were sent */
        gint64 at[3];           /* ...when each was answered */
        GError *errors[3];
        guint answered;
        gboolean done;
} Attempts;

typedef struct Attempt {
        Attempts *attempts;
        guint index;
} Attempt;

static void on_attempt_answered(GObject *source, GAsyncResult *result, gpointer data) {
        Attempt *a = data;
        Attempts *all = a->attempts;
        g_autoptr(GVariant) reply = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &all->errors[a->index]);
        all->at[a->index] = g_get_monotonic_time();
        all->done = ++all->answered == G_N_ELEMENTS(all->at);
}

static void test_failures_answered_one_after_another(Fixture *f, gconstpointer data) {
        Attempts all = {};
        Attempt calls[G_N_ELEMENTS(all.at)];

        g_test_summary("Three wrong Authenticate calls sent at once on one connection are answered one after "
                       "another: the n-th answer comes at least n failure delays after they were sent, each "
                       "with the same AccessDenied error.");

        fixture_start_service(f);
        all.sent = g_get_monotonic_time();
        for (guint i = 0; i < G_N_ELEMENTS(calls); i++) {
                calls[i] = (Attempt) { &all, i };
                g_dbus_connection_call(f->conn, DURABUS_NAME, BROKER_PATH, BROKER_IFACE, "Authenticate",
                                       g_variant_new("(s)", UNKNOWN_TOKEN), G_VARIANT_TYPE("()"),
                                       G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, on_attempt_answered,
                                       &calls[i]);
        }
        fixture_wait_for(&all.done);

        /* The answers may be read in any order; sorted, the n-th is late. */
        qsort(all.at, G_N_ELEMENTS(all.at), sizeof(all.at[0]), compare_times);
        for (guint i = 0; i < G_N_ELEMENTS(all.at); i++) {
                g_test_message("Answer %u after %" G_GINT64_FORMAT " us", i + 1, all.at[i] - all.sent);
                fixture_assert_dbus_error(all.errors[i], ERROR_ACCESS_DENIED, AUTHENTICATION_FAILED);
                g_assert_cmpint(all.at[i] - all.sent, >=, (gint64) (i + 1) * FAILURE_DELAY_MIN_USEC);
                g_clear_error(&all.errors[i]);
        }
}

static void test_rights_stay_with_the_connection(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(GDBusConnection) sender = fixture_connect(f);
        g_autoptr(GDBusConnection) admin = connect_as(f, ADMIN_TOKEN);

        g_test_summary("The rights proved with Authenticate are the calling connection's alone: it keeps them "
                       "call after call, while another connection of the same process, known to the service "
                       "before and after, that did not authenticate or failed to, is refused.");

        /* The service knows the other connection before the sender
         * authenticates. */
        assert_refused(other, "Send", "app.jobs");
        authenticate(sender, SENDER_TOKEN);
        fixture_send(sender, "app.jobs", "m1", "one", NULL);
        assert_refused(other, "Send", "app.jobs");
        assert_authenticate_fails(other, UNKNOWN_TOKEN);
        assert_refused(other, "Send", "app.jobs");
        fixture_send(sender, "app.jobs", "m2", "two", NULL);
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 2);

        /* The same token proved by the other connection gives it the same
         * rights, and the first keeps them. */
        authenticate(other, SENDER_TOKEN);
        fixture_send(other, "app.jobs", "m3", "three", NULL);
        fixture_send(sender, "app.jobs", "m4", "four", NULL);
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 4);
}

static void test_rights_add_up(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) both = connect_as(f, SHARED_TOKEN);
        g_autoptr(GDBusConnection) c = fixture_connect(f);
        g_autoptr(Collector) collector = collector_new(both);

        g_test_summary("A token shared by two clients gives the rights of both; a connection that proves two "
                       "tokens holds the rights of both clients, and a failed Authenticate in between takes "
                       "none of them away.");

        g_assert_cmpuint(fixture_subscribe(both, "shared", "worker"), ==, 0);
        fixture_send(both, "shared", "m1", "payload", NULL);
        collector_wait(collector, 1);
        assert_refused(both, "Send", "app.jobs");

        authenticate(c, SENDER_TOKEN);
        assert_refused(c, "Subscribe", "app.jobs");
        assert_authenticate_fails(c, UNKNOWN_TOKEN);
        authenticate(c, READER_TOKEN);
        fixture_send(c, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(c, "app.jobs", "worker"), ==, 1);
}

/* ---- exe= ------------------------------------------------------------ */

static void test_exe_client(Fixture *f, gconstpointer data) {
        g_autofree char *exe = test_executable();
        g_autofree char *config = NULL;
        g_autoptr(GDBusConnection) second = NULL;
        g_autofree char *err = NULL;
        g_autofree char *seen = NULL;
        const char *ctl = g_getenv("DURABUSCTL");
        const char *argv[] = { ctl, "--address", g_test_dbus_get_bus_address(f->bus), "send", "app.jobs",
                               "from-durabusctl", NULL };

        g_test_summary("A client exe= the test program grants its rights to every connection of this process, "
                       "without Authenticate, and no more than them; durabusctl, whose executable differs, is "
                       "refused: it exits with status 1 reporting AccessDenied, and its Send stored nothing.");

        g_assert_nonnull(ctl);
        config = g_strdup_printf(UNTRUSTED CLIENTS "\n[Client tests]\nexe=%s\npublish=app.jobs\n", exe);
        fixture_write_config(config);

        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        second = fixture_connect(f);
        fixture_send(second, "app.jobs", "m2", "two", NULL);
        g_assert_cmpuint(fixture_stored_messages(second, "app.jobs"), ==, 2);
        seen = listed(second);
        g_assert_cmpstr(seen, ==, "app.jobs");
        assert_refused(f->conn, "Subscribe", "app.jobs");
        assert_refused(second, "Send", "news");

        g_assert_cmpint(run_program(argv, &err), ==, 1);
        g_assert_nonnull(strstr(err, ERROR_ACCESS_DENIED));
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 2);
}

/* ---- admin= ---------------------------------------------------------- */

static void test_admin(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) admin = connect_as(f, ADMIN_TOKEN);
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        g_autoptr(GError) missing = NULL;
        g_autofree char *seen = NULL;

        g_test_summary("admin=true without any publish right allows OpenEndpoint, ClearAll and DeleteEndpoint "
                       "of any endpoint, and shows every endpoint in ListEndpoints, but not Send (refused "
                       "naming the publish right, storing nothing) nor Subscribe.");

        fixture_open_endpoint(admin, "app.jobs", NULL);
        fixture_open_endpoint(admin, "anything.at.all", NULL);
        fixture_send_numbered(sender, "app.jobs", 0, 2);

        assert_refused(admin, "Send", "app.jobs");
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 2);
        assert_refused(admin, "Subscribe", "app.jobs");
        seen = listed(admin);
        g_assert_cmpstr(seen, ==, "anything.at.all app.jobs");

        g_assert_cmpuint(fixture_clear_all(admin, "app.jobs"), ==, 2);
        g_assert_cmpuint(fixture_stored_messages(admin, "app.jobs"), ==, 0);

        fixture_delete_endpoint(admin, "app.jobs");
        fixture_delete_endpoint(admin, "anything.at.all");
        assert_no_endpoint(f, admin, "app.jobs");
        g_clear_pointer(&seen, g_free);
        seen = listed(sender);
        g_assert_cmpstr(seen, ==, "");

        /* With the right, the error of a missing endpoint is the real one. */
        missing = fixture_call_error(admin, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint",
                                     g_variant_new("(s)", "app.jobs"));
        fixture_assert_dbus_error(missing, ERROR_NO_SUCH_ENDPOINT, "app.jobs");
}

/* ---- What a caller without rights sees --------------------------------- */

/* What a caller is told about the object at path: the answers of
 * Properties.Get, Properties.GetAll and Introspect, and of Introspect of
 * its parent. Each is an error or, for an Introspect that succeeds, XML. */
typedef struct Look {
        GError *errors[4];
        char *xml[4];
} Look;

static const char *const look_kinds[] = { "Get", "GetAll", "Introspect", "Introspect of the parent" };

G_STATIC_ASSERT(G_N_ELEMENTS(look_kinds) == G_N_ELEMENTS(((Look *) NULL)->errors));

static void introspect(GDBusConnection *c, const char *path, char **ret_xml, GError **error) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call(c, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, "(s)", error);
        if (reply)
                g_variant_get(reply, "(s)", ret_xml);
}

static Look look_at(GDBusConnection *c, const char *path) {
        g_autofree char *parent = g_path_get_dirname(path);
        Look look = {};

        look.errors[0] = fixture_call_error(c, path, PROPERTIES_IFACE, "Get",
                                            g_variant_new("(ss)", ENDPOINT_IFACE, "StoredMessages"));
        look.errors[1] = fixture_call_error(c, path, PROPERTIES_IFACE, "GetAll", g_variant_new("(s)", ENDPOINT_IFACE));
        introspect(c, path, &look.xml[2], &look.errors[2]);
        introspect(c, parent, &look.xml[3], &look.errors[3]);
        for (gsize i = 0; i < G_N_ELEMENTS(look_kinds); i++)
                g_test_message("%s of %s: %s", look_kinds[i], path,
                               look.errors[i] ? look.errors[i]->message : look.xml[i]);
        return look;
}

static void look_done(Look *look) {
        for (gsize i = 0; i < G_N_ELEMENTS(look_kinds); i++) {
                g_clear_error(&look->errors[i]);
                g_clear_pointer(&look->xml[i], g_free);
        }
}

static void test_hidden_endpoint_looks_missing(Fixture *f, gconstpointer data) {
        g_autofree char *path = fixture_endpoint_path("app.jobs");
        g_autoptr(GDBusConnection) owner = connect_as(f, OWNER_TOKEN);
        g_autoptr(GDBusConnection) nobody = connect_as(f, NOBODY_TOKEN);
        g_autoptr(GError) error = NULL;
        g_autofree char *xml = NULL;
        Look missing, hidden;

        g_test_summary("To a caller without any right on it, an endpoint that exists looks exactly like one "
                       "that does not: Properties.Get and GetAll fail with the same error and message as "
                       "before it was created, and Introspect of its path and of its parent's answer the "
                       "same. Its owner reads its properties and finds it below its parent.");

        missing = look_at(nobody, path);
        g_assert_nonnull(missing.errors[0]);
        g_assert_nonnull(missing.errors[1]);
        assert_no_endpoint(f, owner, "app.jobs");

        fixture_send(owner, "app.jobs", "m1", "payload", NULL);
        hidden = look_at(nobody, path);
        for (gsize i = 0; i < G_N_ELEMENTS(look_kinds); i++) {
                g_test_message("Comparing %s", look_kinds[i]);
                if (missing.errors[i])
                        assert_same_error(missing.errors[i], hidden.errors[i]);
                else
                        g_assert_cmpstr(hidden.xml[i], ==, missing.xml[i]);
        }

        g_assert_cmpuint(fixture_stored_messages(owner, "app.jobs"), ==, 1);
        introspect(owner, "/org/durabus1/endpoint/app", &xml, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(xml, "<node name=\"jobs\""));
        look_done(&missing);
        look_done(&hidden);
}

/* ---- Broadcast ------------------------------------------------------- */

static void test_broadcast(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        g_autoptr(GDBusConnection) reader = connect_as(f, READER_TOKEN);
        g_autoptr(GDBusConnection) listener = fixture_connect(f);
        g_autoptr(Collector) passive = collector_new(listener);
        g_autoptr(Collector) subscribed = collector_new(reader);
        g_autoptr(GArray) quiet = NULL;
        g_autoptr(GArray) news = NULL;

        g_test_summary("[Endpoint news] broadcast=true: a passive listener without rights, with a match rule "
                       "for Message signals, receives each message of news once, with subscriber \"\" and its "
                       "seq; of endpoint quiet, which does not broadcast, it receives nothing although quiet "
                       "delivers to a subscriber.");

        /* The listener's match rule is in place before anything is sent. */
        collector_sync(passive);

        g_assert_cmpuint(fixture_subscribe(reader, "quiet", "worker"), ==, 0);
        quiet = fixture_send_numbered(sender, "quiet", 0, 3);
        collector_wait(subscribed, 3);
        for (guint i = 0; i < 3; i++)
                fixture_assert_delivered(collector_get(subscribed, i), "quiet", "worker", i,
                                         fixture_seq_at(quiet, i), 1);
        collector_sync(passive);
        g_assert_cmpuint(passive->messages->len, ==, 0);

        news = fixture_send_numbered(sender, "news", 3, 3);
        collector_wait(passive, 3);
        collector_sync(passive);
        g_assert_cmpuint(passive->messages->len, ==, 3);
        for (guint i = 0; i < 3; i++)
                fixture_assert_delivered(collector_get(passive, i), "news", "", 3 + i, fixture_seq_at(news, i), 1);
}

/* ---- Malformed configuration ------------------------------------------ */

/* Every secret below starts with this, so that one search finds any echo. */
#define TOKEN "@TOKEN@"
#define SECRET_PREFIX "s3cr3t"
#define SECRET SECRET_PREFIX "-never-echoed-0123456789"

typedef struct BadConfig {
        FixtureOptions options;
        const char *text;       /* the file, with TOKEN where its token goes */
        const char *token;      /* NULL: 1025 characters */
        unsigned line;          /* the line the message must name */
        const char *needle;     /* what else it must say */
} BadConfig;

static const BadConfig bad_configs[] = {
        { .text = UNTRUSTED "\n[Client notes]\nexe=/usr/bin/true\ntoken=" TOKEN "\npublish=app.jobs\n",
          .token = SECRET, .line = 6, .needle = "exactly one match key" },
        { .text = UNTRUSTED "\n[Client good]\ntoken=" TOKEN "\n\n[Client notes]\npublish=app.jobs\n",
          .token = SECRET, .line = 7, .needle = "no match key" },
        { .text = UNTRUSTED "\n[Client notes]\ntoken=" TOKEN "\npublish=app.jobs;a.**.b\n",
          .token = SECRET, .line = 6, .needle = "'a.**.b'" },
        { .text = UNTRUSTED "\n[Client notes]\ntoken=" TOKEN "\nsubscribe=app.*x\n",
          .token = SECRET, .line = 6, .needle = "'app.*x'" },
        { .text = UNTRUSTED "\n[Client notes]\npublish=app.jobs\ntoken=" TOKEN "\n",
          .token = SECRET_PREFIX "-short", .line = 6, .needle = "token" },
        { .text = UNTRUSTED "\n[Client notes]\ntoken=" TOKEN "\n", .token = NULL, .line = 5, .needle = "token" },
        { .text = UNTRUSTED "\n[Client notes]\npublish=app.jobs\ntoken " TOKEN "\n",
          .token = SECRET, .line = 6, .needle = NULL },
        { .text = UNTRUSTED "\n[Client notes]\ntoken=" TOKEN "\npublsh=app.jobs\n",
          .token = SECRET, .line = 6, .needle = "publsh" },
        { .text = "[Broker]\ntrust-same-user=perhaps\n\n[Client notes]\ntoken=" TOKEN "\n",
          .token = SECRET, .line = 2, .needle = "trust-same-user" },
        { .text = UNTRUSTED "\n[Client notes]\ntoken=" TOKEN "\nadmin=sometimes\n",
          .token = SECRET, .line = 6, .needle = "admin" },
};

static const char *const bad_config_kinds[] = {
        "two-match-keys",
        "no-match-key",
        "double-star-not-last",
        "star-inside-an-element",
        "token-of-12-characters",
        "token-of-1025-characters",
        "line-without-equals-sign-in-a-client-group",
        "unknown-key-in-a-client-group",
        "trust-same-user-not-a-boolean",
        "admin-not-a-boolean",
};

G_STATIC_ASSERT(G_N_ELEMENTS(bad_configs) == G_N_ELEMENTS(bad_config_kinds));

/* Writes the bad file of the test data; returns its path, which the caller
 * frees. */
static char *write_bad_config(const BadConfig *bad) {
        g_autofree char *fill = g_strnfill(1025 - strlen(SECRET_PREFIX), 'x');
        g_autofree char *long_token = g_strconcat(SECRET_PREFIX, fill, NULL);
        g_autoptr(GString) contents = g_string_new(bad->text);
        g_autoptr(GError) error = NULL;
        char *path = g_build_filename(g_get_user_cache_dir(), "bad.conf", NULL);

        g_string_replace(contents, TOKEN, bad->token ? bad->token : long_token, 0);
        g_file_set_contents(path, contents->str, -1, &error);
        g_assert_no_error(error);
        return path;
}

static void test_bad_config_stops_startup(Fixture *f, gconstpointer data) {
        const BadConfig *bad = data;
        g_autofree char *path = write_bad_config(bad);
        g_autofree char *state_dir = g_build_filename(g_get_user_state_dir(), "direct", NULL);
        g_autofree char *expected = NULL;
        g_autofree char *err = NULL;
        const char *wrapper = g_getenv("DURABUSD_WRAPPER");
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) words = NULL;
        const char *problem;

        g_test_summary("durabusd started with a malformed configuration exits with status 1 before it takes "
                       "its bus name, and says 'Invalid configuration: PATH:LINE: problem' naming the file and "
                       "the line; no token of the file appears in what it says.");

        g_assert_nonnull(g_getenv("DURABUSD"));
        if (wrapper && *wrapper) {
                g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
                for (char **w = words; *w; w++)
                        g_ptr_array_add(argv, g_strdup(*w));
        }
        g_ptr_array_add(argv, g_strdup(g_getenv("DURABUSD")));
        g_ptr_array_add(argv, g_strdup("--config"));
        g_ptr_array_add(argv, g_strdup(path));
        g_ptr_array_add(argv, g_strdup("--state-dir"));
        g_ptr_array_add(argv, g_strdup(state_dir));
        g_ptr_array_add(argv, g_strdup("--address"));
        g_ptr_array_add(argv, g_strdup(g_test_dbus_get_bus_address(f->bus)));
        g_ptr_array_add(argv, NULL);

        g_assert_cmpint(run_program((const char *const *) argv->pdata, &err), ==, 1);
        expected = g_strdup_printf("Invalid configuration: %s:%u: ", path, bad->line);
        problem = strstr(err, expected);
        g_assert_cmpstr(problem ? expected : err, ==, expected);
        if (bad->needle)
                g_assert_nonnull(strstr(problem, bad->needle));
        g_assert_null(strstr(err, SECRET_PREFIX));
        g_assert_cmpint(fixture_service_pid(f), ==, 0);
}

static void test_bad_config_fails_activation(Fixture *f, gconstpointer data) {
        g_autoptr(GString) config = g_string_new(bad_configs[0].text);
        g_autoptr(GError) error = NULL;

        g_test_summary("A malformed configuration in $XDG_CONFIG_HOME/durabus/durabus.conf stops the activated "
                       "service too: the call that would start it fails, and nothing owns org.durabus1.");

        g_string_replace(config, TOKEN, SECRET, 0);
        fixture_write_config(config->str);
        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "ListEndpoints", NULL);
        fixture_assert_dbus_error(error, ERROR_SPAWN_CHILD_EXITED, NULL);
        g_assert_cmpint(fixture_service_pid(f), ==, 0);
}

/* ---- Trusted callers ------------------------------------------------- */

static void test_trusted_may_do_everything(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autofree char *seen = NULL;
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("With trust-same-user left at its default, a connection of the service's own user "
                       "outside any sandbox is trusted: without Authenticate it may open, send to, subscribe "
                       "to, acknowledge in, unsubscribe from, clear, list and delete any endpoint, also one no "
                       "client covers.");

        fixture_open_endpoint(f->conn, "any.thing", NULL);
        seqs = fixture_send_numbered(f->conn, "any.thing", 0, 2);
        g_assert_cmpuint(fixture_subscribe(f->conn, "any.thing", "worker"), ==, 2);
        collector_wait(collector, 2);
        fixture_assert_delivered(collector_get(collector, 1), "any.thing", "worker", 1, fixture_seq_at(seqs, 1), 1);
        g_assert_cmpuint(fixture_ack_collected(f->conn, "any.thing", "worker", collector, 0, 1), ==, 1);
        fixture_unsubscribe(f->conn, "any.thing", "worker", FALSE);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "any.thing"), ==, 1);
        g_assert_cmpuint(fixture_clear_all(f->conn, "any.thing"), ==, 1);

        seen = listed(f->conn);
        g_assert_cmpstr(seen, ==, "any.thing");
        fixture_delete_endpoint(f->conn, "any.thing");
        g_clear_pointer(&seen, g_free);
        seen = listed(f->conn);
        g_assert_cmpstr(seen, ==, "");
}

/* ---- Idle exit ------------------------------------------------------- */

static gboolean on_window_over(gpointer data) {
        *(gboolean *) data = TRUE;
        return G_SOURCE_REMOVE;
}

static void test_authenticated_connection_holds_off_idle_exit(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) sender = connect_as(f, SENDER_TOKEN);
        gboolean vanished = FALSE, window_over = FALSE;
        pid_t pid = fixture_service_pid(f);
        guint watch;

        g_test_summary("With idle-timeout=1, the service does not exit while a connection holds rights it "
                       "proved with Authenticate: it is the same process 3 s later and still honours them. Once "
                       "that connection is gone, it exits by itself.");

        g_assert_cmpint(pid, >, 0);

        /* There is no event for "did not exit", so watch the name during a
         * fixed observation window of three idle timeouts. */
        watch = fixture_watch_name_vanishing(f, DURABUS_NAME, &vanished);
        g_timeout_add_seconds(3, on_window_over, &window_over);
        fixture_wait_for(&window_over);
        g_bus_unwatch_name(watch);
        g_assert_false(vanished);
        g_assert_cmpint(fixture_service_pid(f), ==, pid);

        fixture_send(sender, "app.jobs", "m1", "still trusted", NULL);
        g_assert_cmpint(fixture_service_pid(f), ==, pid);

        fixture_close_connection(f, sender);
        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
}

static void test_failed_authenticate_does_not_hold_off_idle_exit(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);

        g_test_summary("With idle-timeout=1, a connection whose Authenticate failed holds no rights and does "
                       "not keep the service: it exits by itself while that connection is still open.");

        assert_authenticate_fails(other, UNKNOWN_TOKEN);
        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
        g_assert_false(g_dbus_connection_is_closed(other));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

#define ADD(path, options, fn) g_test_add(path, Fixture, options, access_setup, fn, fixture_teardown)
        ADD("/access/no-rights/client-is-refused-everything-and-sees-nothing", &untrusted,
            test_no_rights_refused_everything);
        ADD("/access/no-rights/unknown-connection-is-refused-everything", &untrusted,
            test_unknown_connection_refused);
        ADD("/access/publish-only/can-send-but-not-subscribe", &untrusted, test_publish_only);
        ADD("/access/subscribe-only/receives-but-cannot-send-or-clear", &untrusted, test_subscribe_only);
        ADD("/access/unicast/second-connection-without-rights-receives-nothing", &untrusted,
            test_intruder_receives_nothing);
        ADD("/access/creation/a-call-on-a-new-path-creates-only-with-the-methods-right", &untrusted,
            test_call_creates_only_with_right);
        ADD("/access/patterns/star-is-one-element-and-double-star-any-trailing-ones", &untrusted, test_patterns);
        ADD("/access/authenticate/bad-and-unknown-tokens-fail-alike-and-grant-nothing", &untrusted,
            test_bad_and_unknown_tokens_fail_alike);
        ADD("/access/authenticate/failures-of-one-connection-are-answered-one-after-another", &untrusted,
            test_failures_answered_one_after_another);
        ADD("/access/authenticate/rights-stay-with-the-connection-that-proved-them", &untrusted,
            test_rights_stay_with_the_connection);
        ADD("/access/authenticate/rights-of-several-clients-add-up", &untrusted, test_rights_add_up);
        ADD("/access/exe/grants-every-connection-of-the-program-and-not-durabusctl", &no_configuration,
            test_exe_client);
        ADD("/access/admin/may-open-clear-and-delete-but-not-send", &untrusted, test_admin);
        ADD("/access/visibility/hidden-endpoint-looks-like-a-missing-one", &untrusted,
            test_hidden_endpoint_looks_missing);
        ADD("/access/broadcast/passive-listener-gets-each-message-once-only-where-set", &untrusted_broadcast,
            test_broadcast);
        ADD("/access/configuration/malformed-user-file-fails-activation", &no_configuration,
            test_bad_config_fails_activation);
        ADD("/access/trusted/default-configuration-allows-everything", &no_configuration,
            test_trusted_may_do_everything);
        ADD("/access/trusted/same-user-is-trusted-when-clients-are-configured", &clients_and_default_trust,
            test_trusted_may_do_everything);
        ADD("/access/idle/authenticated-connection-holds-off-the-exit-until-it-leaves", &untrusted_idle_after_1s,
            test_authenticated_connection_holds_off_idle_exit);
        ADD("/access/idle/failed-authenticate-does-not-hold-off-the-exit", &untrusted_idle_after_1s,
            test_failed_authenticate_does_not_hold_off_idle_exit);
#undef ADD

        for (gsize i = 0; i < G_N_ELEMENTS(bad_configs); i++) {
                g_autofree char *path =
                        g_strdup_printf("/access/configuration/malformed-file-stops-startup/%s", bad_config_kinds[i]);

                g_test_add(path, Fixture, &bad_configs[i], fixture_setup, test_bad_config_stops_startup,
                           fixture_teardown);
        }

        return g_test_run();
}
