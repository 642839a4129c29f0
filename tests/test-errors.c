/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of every error of the durabus API: each failure comes
 * back with its exact D-Bus error name and a message naming the bad value,
 * and the service is still up afterwards (same process, still serving a
 * Send). Every test case runs against a private dbus-daemon that starts the
 * built durabusd by activation (fixture.c).
 */
#include "fixture.h"

#include <glib/gstdio.h>
#include <string.h>

#define MiB (1024 * 1024)

static gboolean is_listed(Fixture *f, const char *endpoint) {
        g_autoptr(GVariant) list = fixture_list_endpoints(f->conn);
        GVariantIter iter;
        const char *name;

        g_variant_iter_init(&iter, list);
        while (g_variant_iter_next(&iter, "(&s&o)", &name, NULL))
                if (g_str_equal(name, endpoint))
                        return TRUE;
        return FALSE;
}

/* After an error: the same process still runs and serves a Send. */
static void assert_still_serving(Fixture *f, pid_t pid) {
        g_assert_cmpint(fixture_service_pid(f), ==, pid);
        g_assert_cmpuint(fixture_send(f->conn, "still.alive", "", "{}", NULL), >=, 1);
        g_assert_cmpint(fixture_service_pid(f), ==, pid);
}

/* ---- InvalidName ---------------------------------------------------- */

/* Test data of the data-driven cases: starts with the FixtureOptions that
 * fixture_setup() reads. */
typedef struct BadName {
        FixtureOptions options;
        const char *name;       /* NULL: 201 characters, built at run time */
} BadName;

static const BadName bad_names[] = {
        { .name = "" },
        { .name = "9lives" },
        { .name = "app.9jobs" },
        { .name = "app..jobs" },
        { .name = ".app" },
        { .name = "app." },
        { .name = "app-jobs" },
        { .name = "app jobs" },
        { .name = "app/jobs" },
        { .name = "caf\xc3\xa9" },
        { .name = NULL },
};

static const char *const bad_name_kinds[] = {
        "empty",
        "starts-with-a-digit",
        "element-starts-with-a-digit",
        "empty-element",
        "leading-dot",
        "trailing-dot",
        "hyphen",
        "space",
        "slash",
        "non-ascii-letter",
        "201-characters",
};

G_STATIC_ASSERT(G_N_ELEMENTS(bad_names) == G_N_ELEMENTS(bad_name_kinds));

static char *bad_name_value(const BadName *bad) {
        return bad->name ? g_strdup(bad->name) : g_strnfill(201, 'a');
}

static void test_open_invalid_name(Fixture *f, gconstpointer data) {
        g_autofree char *name = bad_name_value(data);
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("OpenEndpoint with an invalid endpoint name fails with org.durabus1.Error.InvalidName "
                       "naming the name, and creates nothing.");

        pid = fixture_start_service(f);
        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                   g_variant_new("(sa{sv})", name, NULL));
        fixture_assert_dbus_error(error, ERROR_INVALID_NAME, *name ? name : NULL);
        g_assert_false(is_listed(f, name));
        assert_still_serving(f, pid);
}

static void test_delete_invalid_name(Fixture *f, gconstpointer data) {
        g_autofree char *name = bad_name_value(data);
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("DeleteEndpoint with an invalid endpoint name fails with org.durabus1.Error.InvalidName "
                       "(not NoSuchEndpoint) naming the name.");

        pid = fixture_start_service(f);
        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint", g_variant_new("(s)", name));
        fixture_assert_dbus_error(error, ERROR_INVALID_NAME, *name ? name : NULL);
        assert_still_serving(f, pid);
}

typedef struct BadPath {
        FixtureOptions options;
        const char *path;
        const char *bad_element;
} BadPath;

static const BadPath bad_paths[] = {
        { .path = "/org/durabus1/endpoint/9x", .bad_element = "9x" },
        { .path = "/org/durabus1/endpoint/app/9jobs", .bad_element = "9jobs" },
};

static void test_call_on_invalid_path(Fixture *f, gconstpointer data) {
        const BadPath *bad = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) list = NULL;
        pid_t pid;

        g_test_summary("A Send on an endpoint path whose name is invalid fails with "
                       "org.durabus1.Error.InvalidName naming the bad element, and creates no endpoint.");

        pid = fixture_start_service(f);
        error = fixture_call_error(f->conn, bad->path, ENDPOINT_IFACE, "Send",
                                   g_variant_new("(ssa{sv})", "m1", "payload", NULL));
        fixture_assert_dbus_error(error, ERROR_INVALID_NAME, bad->bad_element);

        list = fixture_list_endpoints(f->conn);
        g_assert_cmpuint(g_variant_n_children(list), ==, 0);
        assert_still_serving(f, pid);
}

static void test_longest_name_accepted(Fixture *f, gconstpointer data) {
        g_autofree char *name = g_strnfill(200, 'a');
        g_autofree char *dotted = NULL;

        g_test_summary("The limits of InvalidName are exact: a name of 200 characters, and one of single-"
                       "character elements with underscores and digits, are valid.");

        fixture_open_endpoint(f->conn, name, NULL);
        g_assert_true(is_listed(f, name));

        dotted = g_strdup("_._1.a9.Z");
        fixture_open_endpoint(f->conn, dotted, NULL);
        g_assert_true(is_listed(f, dotted));
}

/* ---- LimitsExceeded ------------------------------------------------- */

static const FixtureOptions max_payload_10 = { .service_args = "--max-payload 10" };

static void test_payload_over_limit(Fixture *f, gconstpointer data) {
        g_autofree char *payload = g_strnfill(MiB + 1, 'x');
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("A Send with a payload of 1 MiB + 1 byte fails with "
                       "org.freedesktop.DBus.Error.LimitsExceeded naming the size, and stores nothing.");

        pid = fixture_start_service(f);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Send",
                                            g_variant_new("(ssa{sv})", "big", payload, NULL));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "1048577");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
        assert_still_serving(f, pid);
}

static void test_payload_at_limit(Fixture *f, gconstpointer data) {
        g_autofree char *payload = g_strnfill(MiB, 'x');

        g_test_summary("A Send with a payload of exactly 1 MiB is accepted and stored whole.");

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "big", payload, NULL), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);

        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, strlen("big") + MiB);
}

static void test_max_payload_option(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) multibyte_error = NULL;
        pid_t pid;

        g_test_summary("With --max-payload 10, a payload of 10 bytes is accepted, one of 11 bytes fails with "
                       "LimitsExceeded naming its size, and the limit counts bytes: 6 two-byte characters (12 "
                       "bytes) are refused.");

        pid = fixture_start_service(f);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "ten", "0123456789", NULL), ==, 1);

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Send",
                                            g_variant_new("(ssa{sv})", "eleven", "0123456789A", NULL));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "11");

        multibyte_error = fixture_endpoint_call_error(
                f->conn, "app.jobs", "Send",
                g_variant_new("(ssa{sv})", "twelve", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL));
        fixture_assert_dbus_error(multibyte_error, ERROR_LIMITS_EXCEEDED, "12");

        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        assert_still_serving(f, pid);
}

/* ---- InvalidArgs ---------------------------------------------------- */

typedef struct BadOptions {
        FixtureOptions options;
        const char *method;     /* "Subscribe" or "Unsubscribe" */
        const char *text;       /* the a{sv}, in GVariant text format */
        const char *needle;     /* what the error message must name */
} BadOptions;

static const BadOptions bad_subscribe_options[] = {
        { .method = "Subscribe", .text = "{'start': <uint32 1>}", .needle = "start" },
        { .method = "Subscribe", .text = "{'window': <'10'>}", .needle = "window" },
        { .method = "Subscribe", .text = "{'window': <uint32 0>}", .needle = "window" },
        { .method = "Subscribe", .text = "{'window': <uint32 65537>}", .needle = "window" },
        { .method = "Subscribe", .text = "{'start': <'sometimes'>}", .needle = "sometimes" },
        { .method = "Unsubscribe", .text = "{'forget': <'yes'>}", .needle = "forget" },
};

static const char *const bad_subscribe_option_kinds[] = {
        "subscribe-start-of-type-u",
        "subscribe-window-of-type-s",
        "subscribe-window-0",
        "subscribe-window-65537",
        "subscribe-start-sometimes",
        "unsubscribe-forget-of-type-s",
};

G_STATIC_ASSERT(G_N_ELEMENTS(bad_subscribe_options) == G_N_ELEMENTS(bad_subscribe_option_kinds));

static void test_bad_option(Fixture *f, gconstpointer data) {
        const BadOptions *bad = data;
        g_autoptr(GVariant) options = NULL;
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("A known option with the wrong type or a value out of its range fails with "
                       "org.freedesktop.DBus.Error.InvalidArgs naming the option or the value. For Unsubscribe "
                       "the subscription stays attached.");

        options = g_variant_parse(G_VARIANT_TYPE("a{sv}"), bad->text, NULL, NULL, NULL);
        g_assert_nonnull(options);

        pid = fixture_start_service(f);
        /* Unsubscribe needs an attached subscription, so that the option is
         * the only thing wrong with the call. */
        if (g_str_equal(bad->method, "Unsubscribe"))
                fixture_subscribe(f->conn, "app.jobs", "worker");

        error = fixture_endpoint_call_error(f->conn, "app.jobs", bad->method,
                                            g_variant_new("(s@a{sv})", "worker", options));
        fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, bad->needle);

        if (g_str_equal(bad->method, "Unsubscribe"))
                fixture_unsubscribe(f->conn, "app.jobs", "worker", FALSE);
        assert_still_serving(f, pid);
}

static void test_option_limits_accepted(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) other = NULL;

        g_test_summary("The limits of the options are exact: window 1 and window 65536 are accepted, and so "
                       "are start \"all\" and \"new\".");

        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Subscribe",
                                         g_variant_new_parsed("('one', {'window': <uint32 1>, 'start': <'all'>})"),
                                         "(t)");
        g_clear_pointer(&reply, g_variant_unref);
        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Subscribe",
                                         g_variant_new_parsed("('many', {'window': <uint32 65536>, 'start': <'new'>})"),
                                         "(t)");
        other = fixture_endpoint_call_ok(f->conn, "app.jobs", "Unsubscribe",
                                         g_variant_new_parsed("('many', {'forget': <true>})"), "()");
}

typedef struct BadSubscriber {
        FixtureOptions options;
        const char *subscriber; /* NULL: 201 characters, built at run time */
} BadSubscriber;

static const BadSubscriber bad_subscribers[] = {
        { .subscriber = "bad name!" },
        { .subscriber = "with/slash" },
        { .subscriber = "caf\xc3\xa9" },
        { .subscriber = NULL },
};

static const char *const bad_subscriber_kinds[] = {
        "space-and-bang",
        "slash",
        "non-ascii-letter",
        "201-characters",
};

G_STATIC_ASSERT(G_N_ELEMENTS(bad_subscribers) == G_N_ELEMENTS(bad_subscriber_kinds));

static void test_bad_subscriber(Fixture *f, gconstpointer data) {
        const BadSubscriber *bad = data;
        g_autofree char *subscriber = bad->subscriber ? g_strdup(bad->subscriber) : g_strnfill(201, 's');
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Subscribe with a subscriber name outside 1 to 200 characters of [A-Za-z0-9_.-] fails "
                       "with org.freedesktop.DBus.Error.InvalidArgs naming it.");

        pid = fixture_start_service(f);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe",
                                            g_variant_new("(sa{sv})", subscriber, NULL));
        fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, subscriber);
        assert_still_serving(f, pid);
}

static void test_id_too_long(Fixture *f, gconstpointer data) {
        g_autofree char *id = g_strnfill(256, 'i');
        g_autofree char *longest = g_strnfill(255, 'j');
        g_autofree char *stored = NULL;
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("A Send with an id of 256 bytes fails with org.freedesktop.DBus.Error.InvalidArgs "
                       "naming the id and stores nothing; 255 bytes are accepted.");

        pid = fixture_start_service(f);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Send",
                                            g_variant_new("(ssa{sv})", id, "payload", NULL));
        fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, id);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", longest, "payload", &stored), ==, 1);
        g_assert_cmpstr(stored, ==, longest);
        assert_still_serving(f, pid);
}

static void test_ack_ephemeral(Fixture *f, gconstpointer data) {
        const char *ids[] = { "m1", NULL };
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Ack with the empty subscriber name fails with org.freedesktop.DBus.Error.InvalidArgs, "
                       "also while an ephemeral subscription is attached: ephemeral subscriptions take no "
                       "acknowledgements.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        fixture_subscribe(f->conn, "app.jobs", "");
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Ack", g_variant_new("(s^as)", "", ids));
        fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, NULL);
        assert_still_serving(f, pid);
}

static void test_unknown_options_ignored(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) opened = NULL;
        g_autoptr(GVariant) sent = NULL;
        g_autoptr(GVariant) subscribed = NULL;
        g_autoptr(GVariant) unsubscribed = NULL;
        guint64 seq, pending;
        const char *id;

        g_test_summary("Unknown keys in every a{sv} are ignored, whatever their type: OpenEndpoint, Send, "
                       "Subscribe and Unsubscribe succeed, and the known keys next to them still apply.");

        opened = fixture_call_ok(f->conn, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                 g_variant_new_parsed("('app.jobs', {'colour': <'blue'>, 'start': <42>})"), "(o)");
        sent = fixture_endpoint_call_ok(
                f->conn, "app.jobs", "Send",
                g_variant_new_parsed("('m1', 'hello', {'priority': <uint32 7>, 'ttl': <'1h'>})"), "(st)");
        g_variant_get(sent, "(&st)", &id, &seq);
        g_assert_cmpstr(id, ==, "m1");
        g_assert_cmpuint(seq, ==, 1);

        /* start=new still applies next to an unknown key: nothing to replay. */
        subscribed = fixture_endpoint_call_ok(
                f->conn, "app.jobs", "Subscribe",
                g_variant_new_parsed("('worker', {'start': <'new'>, 'filter': <['a', 'b']>, 'x-y': <@a{sv} {}>})"),
                "(t)");
        g_variant_get(subscribed, "(t)", &pending);
        g_assert_cmpuint(pending, ==, 0);

        unsubscribed = fixture_endpoint_call_ok(
                f->conn, "app.jobs", "Unsubscribe",
                g_variant_new_parsed("('worker', {'later': <true>, 'reason': <'bye'>})"), "()");
}

/* ---- NotSubscribed -------------------------------------------------- */

static void test_ack_never_subscribed(Fixture *f, gconstpointer data) {
        const char *ids[] = { "m1", NULL };
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Ack for a subscription that was never subscribed fails with "
                       "org.durabus1.Error.NotSubscribed naming the subscriber.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Ack", g_variant_new("(s^as)", "worker", ids));
        fixture_assert_dbus_error(error, ERROR_NOT_SUBSCRIBED, "worker");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        assert_still_serving(f, pid);
}

static void test_unsubscribe_never_subscribed(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Unsubscribe of a subscription that was never subscribed fails with "
                       "org.durabus1.Error.NotSubscribed naming the subscriber, also with forget=true.");

        pid = fixture_start_service(f);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe",
                                            g_variant_new_parsed("('worker', {'forget': <true>})"));
        fixture_assert_dbus_error(error, ERROR_NOT_SUBSCRIBED, "worker");
        assert_still_serving(f, pid);
}

static void test_unsubscribe_ephemeral_none(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Unsubscribe of the caller's ephemeral subscription (empty name) when it has none fails "
                       "with org.durabus1.Error.NotSubscribed.");

        pid = fixture_start_service(f);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe", g_variant_new("(sa{sv})", "", NULL));
        fixture_assert_dbus_error(error, ERROR_NOT_SUBSCRIBED, NULL);
        assert_still_serving(f, pid);
}

static void test_attached_elsewhere(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        const char *ids[] = { "m1", NULL };
        g_autoptr(GError) ack_error = NULL;
        g_autoptr(GError) unsubscribe_error = NULL;
        pid_t pid;

        g_test_summary("Ack and Unsubscribe of a durable subscription attached to another connection fail with "
                       "org.durabus1.Error.NotSubscribed naming the subscriber, and change nothing: the other "
                       "connection can still acknowledge and unsubscribe.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(other, "app.jobs", "worker"), ==, 1);

        ack_error = fixture_endpoint_call_error(f->conn, "app.jobs", "Ack", g_variant_new("(s^as)", "worker", ids));
        fixture_assert_dbus_error(ack_error, ERROR_NOT_SUBSCRIBED, "worker");
        unsubscribe_error = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe",
                                                        g_variant_new("(sa{sv})", "worker", NULL));
        fixture_assert_dbus_error(unsubscribe_error, ERROR_NOT_SUBSCRIBED, "worker");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);

        g_assert_cmpuint(fixture_ack(other, "app.jobs", "worker", ids), ==, 1);
        fixture_unsubscribe(other, "app.jobs", "worker", FALSE);
        assert_still_serving(f, pid);
}

static void test_ack_after_unsubscribe(Fixture *f, gconstpointer data) {
        const char *ids[] = { "m1", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) again = NULL;
        pid_t pid;

        g_test_summary("After Unsubscribe the subscription is no longer attached to the caller: Ack and a "
                       "second Unsubscribe fail with org.durabus1.Error.NotSubscribed.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 1);
        fixture_unsubscribe(f->conn, "app.jobs", "worker", FALSE);

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Ack", g_variant_new("(s^as)", "worker", ids));
        fixture_assert_dbus_error(error, ERROR_NOT_SUBSCRIBED, "worker");
        again = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe",
                                            g_variant_new("(sa{sv})", "worker", NULL));
        fixture_assert_dbus_error(again, ERROR_NOT_SUBSCRIBED, "worker");
        assert_still_serving(f, pid);
}

/* ---- SubscriberBusy ------------------------------------------------- */

static void test_subscriber_busy(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        const char *ids[] = { "m1", NULL };
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Subscribe to a durable subscription attached to another live connection fails with "
                       "org.durabus1.Error.SubscriberBusy naming the subscriber; the first connection keeps it.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(other, "app.jobs", "worker"), ==, 1);

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe",
                                            g_variant_new("(sa{sv})", "worker", NULL));
        fixture_assert_dbus_error(error, ERROR_SUBSCRIBER_BUSY, "worker");

        g_assert_cmpuint(fixture_ack(other, "app.jobs", "worker", ids), ==, 1);
        assert_still_serving(f, pid);
}

static void test_subscriber_busy_same_connection(Fixture *f, gconstpointer data) {
        g_test_summary("Subscribing again from the connection the subscription is attached to is not "
                       "SubscriberBusy: it succeeds and reports the same pending count.");

        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 1);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 1);
}

static void test_subscriber_busy_ends(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(GError) error = NULL;

        g_test_summary("Once the connection a subscription is attached to closes, another connection may "
                       "Subscribe with that name and gets its pending messages.");

        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(other, "app.jobs", "worker"), ==, 1);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe",
                                            g_variant_new("(sa{sv})", "worker", NULL));
        fixture_assert_dbus_error(error, ERROR_SUBSCRIBER_BUSY, "worker");

        fixture_close_connection(f, other);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 1);
}

/* ---- NoSuchEndpoint ------------------------------------------------- */

static void test_delete_unknown(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("DeleteEndpoint of a valid name that no endpoint has fails with "
                       "org.durabus1.Error.NoSuchEndpoint naming it.");

        pid = fixture_start_service(f);
        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint",
                                   g_variant_new("(s)", "never.made"));
        fixture_assert_dbus_error(error, ERROR_NO_SUCH_ENDPOINT, "never.made");
        assert_still_serving(f, pid);
}

static void test_delete_twice(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("Deleting the same endpoint twice: the second DeleteEndpoint fails with "
                       "org.durabus1.Error.NoSuchEndpoint naming it.");

        pid = fixture_start_service(f);
        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        fixture_delete_endpoint(f->conn, "app.jobs");
        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint",
                                   g_variant_new("(s)", "app.jobs"));
        fixture_assert_dbus_error(error, ERROR_NO_SUCH_ENDPOINT, "app.jobs");
        assert_still_serving(f, pid);
}

/* ---- StorageFailed -------------------------------------------------- */

static void test_storage_failed(Fixture *f, gconstpointer data) {
        g_autofree char *endpoints_dir = NULL;
        g_autofree char *blocker = NULL;
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("When an endpoint's database cannot be created (a directory is in the way of "
                       "STATE/endpoints/NAME.db), OpenEndpoint fails with org.durabus1.Error.StorageFailed "
                       "naming the endpoint, and the endpoint does not exist.");

        pid = fixture_start_service(f);
        fixture_open_endpoint(f->conn, "other", NULL);

        endpoints_dir = g_build_filename(f->state_dir, "endpoints", NULL);
        g_assert_true(g_file_test(endpoints_dir, G_FILE_TEST_IS_DIR));
        blocker = g_build_filename(endpoints_dir, "app.jobs.db", NULL);
        g_assert_cmpint(g_mkdir(blocker, 0700), ==, 0);

        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                   g_variant_new("(sa{sv})", "app.jobs", NULL));
        fixture_assert_dbus_error(error, ERROR_STORAGE_FAILED, "app.jobs");
        g_assert_false(is_listed(f, "app.jobs"));
        assert_still_serving(f, pid);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        for (gsize i = 0; i < G_N_ELEMENTS(bad_names); i++) {
                g_autofree char *open_path =
                        g_strdup_printf("/errors/invalid-name/open-endpoint-refuses/%s", bad_name_kinds[i]);
                g_autofree char *delete_path =
                        g_strdup_printf("/errors/invalid-name/delete-endpoint-refuses/%s", bad_name_kinds[i]);

                g_test_add(open_path, Fixture, &bad_names[i], fixture_setup, test_open_invalid_name, fixture_teardown);
                g_test_add(delete_path, Fixture, &bad_names[i], fixture_setup, test_delete_invalid_name,
                           fixture_teardown);
        }
        g_test_add("/errors/invalid-name/call-on-endpoint-path-refuses/name-starting-with-a-digit", Fixture,
                   &bad_paths[0], fixture_setup, test_call_on_invalid_path, fixture_teardown);
        g_test_add("/errors/invalid-name/call-on-endpoint-path-refuses/element-starting-with-a-digit", Fixture,
                   &bad_paths[1], fixture_setup, test_call_on_invalid_path, fixture_teardown);
        g_test_add("/errors/invalid-name/accepts-the-longest-and-shortest-elements", Fixture, NULL, fixture_setup,
                   test_longest_name_accepted, fixture_teardown);

        g_test_add("/errors/limits-exceeded/payload-of-1-mib-plus-1-byte-is-refused", Fixture, NULL, fixture_setup,
                   test_payload_over_limit, fixture_teardown);
        g_test_add("/errors/limits-exceeded/payload-of-exactly-1-mib-is-accepted", Fixture, NULL, fixture_setup,
                   test_payload_at_limit, fixture_teardown);
        g_test_add("/errors/limits-exceeded/max-payload-option-sets-the-limit-in-bytes", Fixture, &max_payload_10,
                   fixture_setup, test_max_payload_option, fixture_teardown);

        for (gsize i = 0; i < G_N_ELEMENTS(bad_subscribe_options); i++) {
                g_autofree char *path =
                        g_strdup_printf("/errors/invalid-args/option-refused/%s", bad_subscribe_option_kinds[i]);

                g_test_add(path, Fixture, &bad_subscribe_options[i], fixture_setup, test_bad_option, fixture_teardown);
        }
        g_test_add("/errors/invalid-args/option-limits-are-accepted", Fixture, NULL, fixture_setup,
                   test_option_limits_accepted, fixture_teardown);
        for (gsize i = 0; i < G_N_ELEMENTS(bad_subscribers); i++) {
                g_autofree char *path =
                        g_strdup_printf("/errors/invalid-args/subscriber-name-refused/%s", bad_subscriber_kinds[i]);

                g_test_add(path, Fixture, &bad_subscribers[i], fixture_setup, test_bad_subscriber, fixture_teardown);
        }
        g_test_add("/errors/invalid-args/id-of-256-bytes-is-refused", Fixture, NULL, fixture_setup, test_id_too_long,
                   fixture_teardown);
        g_test_add("/errors/invalid-args/ack-with-empty-subscriber-is-refused", Fixture, NULL, fixture_setup,
                   test_ack_ephemeral, fixture_teardown);
        g_test_add("/errors/options/unknown-keys-are-ignored", Fixture, NULL, fixture_setup,
                   test_unknown_options_ignored, fixture_teardown);

        g_test_add("/errors/not-subscribed/ack-when-never-subscribed", Fixture, NULL, fixture_setup,
                   test_ack_never_subscribed, fixture_teardown);
        g_test_add("/errors/not-subscribed/unsubscribe-when-never-subscribed", Fixture, NULL, fixture_setup,
                   test_unsubscribe_never_subscribed, fixture_teardown);
        g_test_add("/errors/not-subscribed/unsubscribe-ephemeral-when-none-is-attached", Fixture, NULL, fixture_setup,
                   test_unsubscribe_ephemeral_none, fixture_teardown);
        g_test_add("/errors/not-subscribed/ack-and-unsubscribe-from-another-connection", Fixture, NULL, fixture_setup,
                   test_attached_elsewhere, fixture_teardown);
        g_test_add("/errors/not-subscribed/ack-and-unsubscribe-after-unsubscribe", Fixture, NULL, fixture_setup,
                   test_ack_after_unsubscribe, fixture_teardown);

        g_test_add("/errors/subscriber-busy/second-connection-is-refused", Fixture, NULL, fixture_setup,
                   test_subscriber_busy, fixture_teardown);
        g_test_add("/errors/subscriber-busy/not-for-the-attached-connection-itself", Fixture, NULL, fixture_setup,
                   test_subscriber_busy_same_connection, fixture_teardown);
        g_test_add("/errors/subscriber-busy/ends-when-the-attached-connection-closes", Fixture, NULL, fixture_setup,
                   test_subscriber_busy_ends, fixture_teardown);

        g_test_add("/errors/no-such-endpoint/delete-of-an-unknown-endpoint", Fixture, NULL, fixture_setup,
                   test_delete_unknown, fixture_teardown);
        g_test_add("/errors/no-such-endpoint/second-delete-of-the-same-endpoint", Fixture, NULL, fixture_setup,
                   test_delete_twice, fixture_teardown);

        g_test_add("/errors/storage-failed/open-endpoint-whose-database-cannot-be-created", Fixture, NULL,
                   fixture_setup, test_storage_failed, fixture_teardown);

        return g_test_run();
}
