/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the limits: each one, set small in the configuration
 * file the activated service reads ($XDG_CONFIG_HOME/durabus/durabus.conf,
 * isolated per test), refuses what goes beyond it with
 * org.freedesktop.DBus.Error.LimitsExceeded and a message naming the
 * endpoint or subscription and the setting; an endpoint set to
 * discard=oldest drops and counts instead; messages with a time-to-live
 * are never delivered once it passed and are collected without any
 * subscriber. Every test case runs against a private dbus-daemon that
 * starts the built durabusd by activation (fixture.c).
 */
#include "fixture.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

/* Send(id, payload, {ttl-ms: ttl_ms}) of numbered message i; returns its seq. */
static guint64 send_with_ttl(GDBusConnection *c, const char *endpoint, guint i, guint64 ttl_ms) {
        g_autofree char *id = fixture_message_id(i);
        g_autofree char *payload = fixture_message_payload(i);
        g_autoptr(GVariant) reply = NULL;
        GVariantBuilder options;
        guint64 seq;

        g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&options, "{sv}", "ttl-ms", g_variant_new_uint64(ttl_ms));
        reply = fixture_endpoint_call_ok(c, endpoint, "Send", g_variant_new("(ssa{sv})", id, payload, &options),
                                         "(st)");
        g_variant_get(reply, "(&st)", NULL, &seq);
        return seq;
}

/* A Send of numbered message i that is to fail; returns its error. */
static GError *send_error(GDBusConnection *c, const char *endpoint, guint i) {
        g_autofree char *id = fixture_message_id(i);
        g_autofree char *payload = fixture_message_payload(i);

        return fixture_endpoint_call_error(c, endpoint, "Send", g_variant_new("(ss@a{sv})", id, payload,
                                                                              g_variant_new_array(G_VARIANT_TYPE(
                                                                                      "{sv}"), NULL, 0)));
}

static GError *subscribe_error(GDBusConnection *c, const char *endpoint, const char *subscriber) {
        return fixture_endpoint_call_error(c, endpoint, "Subscribe",
                                           g_variant_new("(s@a{sv})", subscriber,
                                                         g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)));
}

/* ---- stored messages and bytes ---------------------------------------- */

static void test_max_stored_messages(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("With max-stored-messages=3 the fourth Send fails with LimitsExceeded naming the "
                       "endpoint and the setting, and stores nothing; after an Ack makes room, Send works "
                       "again.");
        fixture_write_config("[Broker]\nmax-stored-messages=3\n");

        seqs = fixture_send_numbered(f->conn, "app.jobs", 0, 3);
        error = send_error(f->conn, "app.jobs", 3);
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "max-stored-messages");
        g_assert_nonnull(strstr(error->message, "'app.jobs'"));
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "DiscardedMessages"), ==, 0);

        /* Room again once a message is acknowledged by every subscription. */
        {
                g_autoptr(Collector) collector = collector_new(f->conn);
                const char *ids[] = { "msg-0000", NULL };

                fixture_subscribe(f->conn, "app.jobs", "worker");
                collector_wait(collector, 3);
                g_assert_cmpuint(fixture_ack(f->conn, "app.jobs", "worker", ids), ==, 1);
        }
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "msg-0003", "{\"n\": 3}", NULL), >, 0);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
}

static void test_max_stored_bytes(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) too_big = NULL;

        g_test_summary("With max-stored-bytes=40 two numbered messages (16 bytes of id and payload each) "
                       "fit and the third fails with LimitsExceeded naming the endpoint and the setting; a "
                       "message larger than the whole limit fails the same way.");
        fixture_write_config("[Broker]\nmax-stored-bytes=40\n");

        G_GNUC_UNUSED g_autoptr(GArray) seqs = fixture_send_numbered(f->conn, "app.jobs", 0, 2);
        error = send_error(f->conn, "app.jobs", 2);
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "max-stored-bytes");
        g_assert_nonnull(strstr(error->message, "'app.jobs'"));
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, 32);

        too_big = fixture_endpoint_call_error(f->conn, "other", "Send",
                                              g_variant_new("(ss@a{sv})", "big",
                                                            "0123456789012345678901234567890123456789",
                                                            g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)));
        fixture_assert_dbus_error(too_big, ERROR_LIMITS_EXCEEDED, "max-stored-bytes");
        g_assert_nonnull(strstr(too_big->message, "'other'"));
}

static void test_discard_oldest(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GError) error = NULL;
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("An endpoint set to discard=oldest accepts every Send beyond max-stored-messages, "
                       "drops the oldest and counts them in DiscardedMessages; a subscriber then receives "
                       "the newest only. Another endpoint keeps refusing.");
        fixture_write_config("[Broker]\nmax-stored-messages=3\n\n[Endpoint app.jobs]\ndiscard=oldest\n");

        seqs = fixture_send_numbered(f->conn, "app.jobs", 0, 5);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "DiscardedMessages"), ==, 2);

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 3);
        collector_wait(collector, 3);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 3);
        for (guint i = 0; i < 3; i++)
                fixture_assert_delivered(collector_get(collector, i), "app.jobs", "worker", i + 2,
                                         fixture_seq_at(seqs, i + 2), 1);

        g_clear_pointer(&seqs, g_array_unref);
        seqs = fixture_send_numbered(f->conn, "app.other", 0, 3);
        error = send_error(f->conn, "app.other", 3);
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "max-stored-messages");
}

/* ---- endpoints, subscriptions, attachments ---------------------------- */

static void test_max_endpoints(Fixture *f, gconstpointer data) {
        g_autoptr(GError) open_error = NULL;
        g_autoptr(GError) call_error = NULL;

        g_test_summary("With max-endpoints=2 a third OpenEndpoint, and a call on the path of a third "
                       "endpoint, fail with LimitsExceeded naming the endpoint and the setting; opening an "
                       "existing one still works, and deleting one makes room.");
        fixture_write_config("[Broker]\nmax-endpoints=2\n");

        fixture_open_endpoint(f->conn, "one", NULL);
        fixture_open_endpoint(f->conn, "two", NULL);
        open_error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                        g_variant_new("(s@a{sv})", "three",
                                                      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)));
        fixture_assert_dbus_error(open_error, ERROR_LIMITS_EXCEEDED, "max-endpoints");
        g_assert_nonnull(strstr(open_error->message, "'three'"));

        call_error = send_error(f->conn, "four", 0);
        fixture_assert_dbus_error(call_error, ERROR_LIMITS_EXCEEDED, "max-endpoints");
        g_assert_nonnull(strstr(call_error->message, "'four'"));

        fixture_open_endpoint(f->conn, "two", NULL);
        fixture_delete_endpoint(f->conn, "one");
        fixture_open_endpoint(f->conn, "three", NULL);
}

static void test_max_subscriptions(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        g_test_summary("With max-subscriptions=2 a third durable subscription of an endpoint fails with "
                       "LimitsExceeded naming it and the setting; the existing ones and ephemeral "
                       "subscriptions still attach.");
        fixture_write_config("[Broker]\nmax-subscriptions=2\n");

        fixture_subscribe(f->conn, "app.jobs", "a");
        fixture_subscribe(f->conn, "app.jobs", "b");
        error = subscribe_error(f->conn, "app.jobs", "c");
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "max-subscriptions");
        g_assert_nonnull(strstr(error->message, "'c'"));
        g_assert_nonnull(strstr(error->message, "'app.jobs'"));

        fixture_subscribe(f->conn, "app.jobs", "b");
        fixture_subscribe(f->conn, "app.jobs", "");
        fixture_subscribe(f->conn, "app.other", "c");
}

static void test_max_attached(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) ephemeral_error = NULL;

        g_test_summary("With max-attached=2 a third attachment, durable or ephemeral, from any connection "
                       "fails with LimitsExceeded naming the setting; subscribing again to an attached "
                       "subscription works, and a connection that goes frees its places.");
        fixture_write_config("[Broker]\nmax-attached=2\n");

        fixture_subscribe(f->conn, "app.jobs", "a");
        fixture_subscribe(other, "app.other", "b");
        error = subscribe_error(f->conn, "app.jobs", "c");
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "max-attached");
        g_assert_nonnull(strstr(error->message, "'app.jobs'"));
        ephemeral_error = subscribe_error(other, "app.jobs", "");
        fixture_assert_dbus_error(ephemeral_error, ERROR_LIMITS_EXCEEDED, "max-attached");

        fixture_subscribe(f->conn, "app.jobs", "a");
        fixture_close_connection(f, other);
        fixture_subscribe(f->conn, "app.jobs", "c");
}

/* ---- time-to-live ----------------------------------------------------- */

/* A time-to-live is wall-clock time: nothing the service does signals that
 * it has passed, so the tests that need an expired message let it pass. A
 * ttl-ms of 1 needs 1 ms; 5 ms leave room for the clock's granularity. */
#define TTL_1_MS_PASSED_USEC 5000

static void test_ttl_not_delivered(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        guint64 seq;

        g_test_summary("A message sent with ttl-ms=1 whose time has passed is never delivered: a subscriber "
                       "receives only the message sent after it without a time-to-live; the expired one is "
                       "deleted and counted in ExpiredMessages.");

        send_with_ttl(f->conn, "app.jobs", 0, 1);
        g_usleep(TTL_1_MS_PASSED_USEC);
        seq = fixture_send(f->conn, "app.jobs", "msg-0001", "{\"n\": 1}", NULL);

        fixture_subscribe(f->conn, "app.jobs", "worker");
        collector_wait(collector, 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);
        fixture_assert_delivered(collector_get(collector, 0), "app.jobs", "worker", 1, seq, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "ExpiredMessages"), ==, 1);

        /* A long time-to-live does not get in the way. */
        send_with_ttl(f->conn, "app.jobs", 2, G_MAXUINT64);
        collector_wait(collector, 2);
}

static void test_ttl_wrong_type(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        GVariantBuilder options;

        g_test_summary("ttl-ms of another type than t fails with InvalidArgs naming the option.");
        g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&options, "{sv}", "ttl-ms", g_variant_new_uint32(5));
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Send",
                                            g_variant_new("(ssa{sv})", "id", "x", &options));
        fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, "ttl-ms");
}

typedef struct Poll {
        Fixture *fixture;
        const char *endpoint;
        guint64 want;
        gboolean reached;
} Poll;

static gboolean poll_stored(gpointer userdata) {
        Poll *p = userdata;

        p->reached = fixture_stored_messages(p->fixture->conn, p->endpoint) == p->want;
        return p->reached ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* Waits until the endpoint stores want messages, asking every 10 ms: the
 * sweep runs on the service's own timer and sends nothing to wait for. */
static void wait_for_stored(Fixture *f, const char *endpoint, guint64 want) {
        Poll p = { .fixture = f, .endpoint = endpoint, .want = want };

        if (poll_stored(&p) == G_SOURCE_REMOVE)
                return;
        /* The source removes itself once reached; the wait fails the test
         * otherwise. */
        g_timeout_add(10, poll_stored, &p);
        fixture_wait_for(&p.reached);
}

static void test_ttl_swept_without_subscriber(Fixture *f, gconstpointer data) {
        g_test_summary("Messages with ttl-ms=1 on an endpoint nobody subscribes to are deleted by the "
                       "service's sweep once they expired, while a message without a time-to-live stays.");

        for (guint i = 0; i < 20; i++)
                send_with_ttl(f->conn, "app.jobs", i, 1);
        fixture_send(f->conn, "app.jobs", "keep", "{}", NULL);

        wait_for_stored(f, "app.jobs", 1);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "ExpiredMessages"), ==, 20);
}

static void test_ttl_backlog_after_restart(Fixture *f, gconstpointer data) {
        gint64 sent;

        g_test_summary("A backlog of messages that expired while the service was not running (more than one "
                       "step of the sweep) is collected after the next start, once the endpoint is used, "
                       "without a subscriber.");

        sent = g_get_real_time();
        for (guint i = 0; i < 300; i++)
                send_with_ttl(f->conn, "app.jobs", i, 1000);
        fixture_send(f->conn, "app.jobs", "keep", "{}", NULL);
        /* In order, so the restart reads no message record (after a crash,
         * repair would read them all anyway). */
        fixture_kill_service(f, SIGTERM);

        /* The time-to-live must pass while the service is down. */
        while (g_get_real_time() < sent + 1000 * 1000 + TTL_1_MS_PASSED_USEC)
                g_usleep(10 * 1000);

        wait_for_stored(f, "app.jobs", 1);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "ExpiredMessages"), ==, 300);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add("/limits/max-stored-messages/send-beyond-fails-with-limits-exceeded", Fixture, NULL,
                   fixture_setup, test_max_stored_messages, fixture_teardown);
        g_test_add("/limits/max-stored-bytes/send-beyond-fails-with-limits-exceeded", Fixture, NULL, fixture_setup,
                   test_max_stored_bytes, fixture_teardown);
        g_test_add("/limits/discard-oldest/drops-and-counts-the-oldest", Fixture, NULL, fixture_setup,
                   test_discard_oldest, fixture_teardown);
        g_test_add("/limits/max-endpoints/creating-beyond-fails-with-limits-exceeded", Fixture, NULL, fixture_setup,
                   test_max_endpoints, fixture_teardown);
        g_test_add("/limits/max-subscriptions/a-new-one-beyond-fails-with-limits-exceeded", Fixture, NULL,
                   fixture_setup, test_max_subscriptions, fixture_teardown);
        g_test_add("/limits/max-attached/attaching-beyond-fails-with-limits-exceeded", Fixture, NULL,
                   fixture_setup, test_max_attached, fixture_teardown);
        g_test_add("/limits/ttl/expired-message-is-never-delivered", Fixture, NULL, fixture_setup,
                   test_ttl_not_delivered, fixture_teardown);
        g_test_add("/limits/ttl/option-of-the-wrong-type-fails-with-invalid-args", Fixture, NULL, fixture_setup,
                   test_ttl_wrong_type, fixture_teardown);
        g_test_add("/limits/ttl/expired-messages-are-swept-without-a-subscriber", Fixture, NULL, fixture_setup,
                   test_ttl_swept_without_subscriber, fixture_teardown);
        g_test_add("/limits/ttl/backlog-expired-while-stopped-is-swept-after-start", Fixture, NULL, fixture_setup,
                   test_ttl_backlog_after_restart, fixture_teardown);

        return g_test_run();
}
