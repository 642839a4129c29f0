/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of direct connections (Broker.OpenDirect, issue 6,
 * item 2): a client that speaks D-Bus peer to peer with the service over
 * the socket OpenDirect returned gets what it gets through the bus (the
 * same replies, signals and errors), with the rights its bus connection
 * held when it opened it, and a connection that closes leaves nothing
 * behind: its subscriptions detach, its rights and its descriptor go.
 *
 * The direct connections are GDBus peer connections (fixture_open_direct()),
 * so that every helper of the fixture works on them too; one is an sd-bus
 * client as libdurabus would make it, and two speak the protocol on the bare
 * socket, to write a first call together with BEGIN and to read nothing. The service learns that a
 * direct connection closed on another socket than the one the test asks
 * its next question on, so where a test needs the close handled it asks
 * again until the answer shows it, failing after FIXTURE_TIMEOUT_MS;
 * nothing sleeps. Every test case runs against a private dbus-daemon that
 * starts the built durabusd by activation (fixture.c).
 */
#include "fixture.h"

#include <signal.h>
#include <string.h>
#include <systemd/sd-bus.h>

/* What the service documents as its limit of open direct connections. */
#define DIRECT_CONNECTIONS_MAX 128

#define SENDER_TOKEN "sender-token-8b2e6d19f0c34a71"
#define READER_TOKEN "reader-token-c41f7a0e95d26b83"
#define UNKNOWN_TOKEN "unknown-token-0000000000000000"

#define ERROR_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"

/* A caller of the service's own user is untrusted and holds only what the
 * tokens it proved give. */
#define UNTRUSTED                                               \
        "[Broker]\ntrust-same-user=false\n"                     \
        "\n[Client sender]\n"                                   \
        "token=" SENDER_TOKEN "\n"                              \
        "publish=app.jobs\n"                                    \
        "\n[Client reader]\n"                                   \
        "token=" READER_TOKEN "\n"                              \
        "subscribe=app.jobs\n"

static const FixtureOptions idle_after_1s = { .service_args = "--idle-timeout 1" };

/* ---- Helpers ---------------------------------------------------------- */

static void untrusted_setup(Fixture *f, gconstpointer data) {
        fixture_setup(f, data);
        fixture_write_config(UNTRUSTED);
}

static void authenticate(GDBusConnection *c, const char *token) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call_ok(c, BROKER_PATH, BROKER_IFACE, "Authenticate", g_variant_new("(s)", token), "()");
}

static void close_direct(GDBusConnection *direct) {
        g_autoptr(GError) error = NULL;

        g_dbus_connection_close_sync(direct, NULL, &error);
        g_assert_no_error(error);
}

/* Whether the durable subscription subscriber of endpoint is attached (1)
 * or not (0), asked over c; -1 when it does not exist. */
static int attached_state(GDBusConnection *c, const char *endpoint, const char *subscriber) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) list = fixture_get_property(c, path, ENDPOINT_IFACE, "Subscriptions");
        GVariantIter i;
        const char *name;
        gboolean attached;
        guint64 pending;

        g_variant_iter_init(&i, list);
        while (g_variant_iter_next(&i, "(&sbt)", &name, &attached, &pending))
                if (g_str_equal(name, subscriber))
                        return attached ? 1 : 0;
        return -1;
}

/* The same, failing the test when the subscription does not exist. */
static gboolean is_attached(GDBusConnection *c, const char *endpoint, const char *subscriber) {
        int state = attached_state(c, endpoint, subscriber);

        if (state < 0)
                g_error("Endpoint '%s' has no subscription '%s'", endpoint, subscriber);
        return state > 0;
}

/* Asks over c until the subscription is detached: the close of a direct
 * connection reaches the service on its own socket, in no fixed order with
 * the calls of c. */
static void wait_until_detached(GDBusConnection *c, const char *endpoint, const char *subscriber) {
        gint64 deadline = g_get_monotonic_time() + FIXTURE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

        while (is_attached(c, endpoint, subscriber))
                if (g_get_monotonic_time() > deadline)
                        g_error("Subscription '%s' of endpoint '%s' is still attached after %d ms", subscriber,
                                endpoint, FIXTURE_TIMEOUT_MS);
}

/* How many descriptors process pid has open. */
static guint count_descriptors(pid_t pid) {
        g_autofree char *dir_path = g_strdup_printf("/proc/%d/fd", (int) pid);
        g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
        guint n = 0;

        g_assert_nonnull(dir);
        while (g_dir_read_name(dir))
                n++;
        return n;
}

/* Asks over c until process pid has no more than n descriptors open. */
static void wait_for_descriptors(GDBusConnection *c, pid_t pid, guint n) {
        gint64 deadline = g_get_monotonic_time() + FIXTURE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
        g_autoptr(GVariant) reply = NULL;

        while (count_descriptors(pid) > n) {
                if (g_get_monotonic_time() > deadline)
                        g_error("The service has %u descriptors open after %d ms, %u before", count_descriptors(pid),
                                FIXTURE_TIMEOUT_MS, n);
                g_clear_pointer(&reply, g_variant_unref);
                reply = fixture_call_ok(c, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, "()");
        }
}

/* The remote name and the message of an error, "NAME: MESSAGE", to compare
 * two errors whole. The caller frees it. */
static char *describe_error(const GError *error) {
        g_autoptr(GError) stripped = NULL;
        g_autofree char *remote = NULL;

        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        stripped = g_error_copy(error);
        g_dbus_error_strip_remote_error(stripped);
        return g_strdup_printf("%s: %s", remote, stripped->message);
}

/* Makes the same call over the bus and over a direct connection, asserts
 * that both fail with name and the very same message, and returns it. */
static char *assert_same_error(GDBusConnection *bus, GDBusConnection *direct, const char *path, const char *iface,
                               const char *method, GVariant *args, const char *name) {
        g_autoptr(GVariant) owned = args ? g_variant_ref_sink(args) : NULL;
        g_autoptr(GError) on_bus = fixture_call_error(bus, path, iface, method, owned);
        g_autoptr(GError) on_direct = fixture_call_error(direct, path, iface, method, owned);
        g_autofree char *bus_text = NULL;
        g_autofree char *direct_text = NULL;

        fixture_assert_dbus_error(on_bus, name, NULL);
        fixture_assert_dbus_error(on_direct, name, NULL);
        bus_text = describe_error(on_bus);
        direct_text = describe_error(on_direct);
        g_assert_cmpstr(direct_text, ==, bus_text);
        return g_steal_pointer(&direct_text);
}

/* ---- The API over a direct connection --------------------------------- */

static void test_send(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autoptr(GDBusConnection) nested = NULL;
        g_autofree char *id = NULL;

        g_test_summary("Send over a direct connection stores the message and answers with its seq, which "
                       "continues the seqs of Sends through the bus; the bus sees what was stored. A direct "
                       "connection may open another one.");

        g_assert_cmpuint(fixture_send(direct, "app.jobs", "m1", "one", NULL), ==, 1);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m2", "two", NULL), ==, 2);
        g_assert_cmpuint(fixture_send(direct, "app.jobs", "", "three", &id), ==, 3);
        g_assert_cmpuint(strlen(id), ==, 32);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
        g_assert_cmpuint(fixture_stored_messages(direct, "app.jobs"), ==, 3);

        /* A direct connection may open another, with its own rights. */
        nested = fixture_open_direct(direct);
        g_assert_cmpuint(fixture_send(nested, "app.jobs", "m4", "four", NULL), ==, 4);
}

static void test_subscribe_in_order(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autoptr(Collector) collector = collector_new(direct);
        g_autoptr(GArray) stored = NULL;
        g_autoptr(GArray) live = NULL;

        g_test_summary("A subscription attached over a direct connection gets the stored messages replayed "
                       "in seq order, then live ones, as Message signals over that connection, each with "
                       "delivery-count 1.");

        stored = fixture_send_numbered(f->conn, "app.jobs", 0, 5);
        g_assert_cmpuint(fixture_subscribe(direct, "app.jobs", "reader"), ==, 5);
        collector_wait(collector, 5);
        live = fixture_send_numbered(direct, "app.jobs", 5, 3);
        collector_wait(collector, 8);

        for (guint i = 0; i < 5; i++)
                fixture_assert_delivered(collector_get(collector, i), "app.jobs", "reader", i,
                                         fixture_seq_at(stored, i), 1);
        for (guint i = 0; i < 3; i++)
                fixture_assert_delivered(collector_get(collector, 5 + i), "app.jobs", "reader", 5 + i,
                                         fixture_seq_at(live, i), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 8);
}

static void test_ack_and_redelivery(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) first = fixture_open_direct(f->conn);
        g_autoptr(GDBusConnection) second = NULL;
        g_autoptr(Collector) collector = collector_new(first);
        g_autoptr(Collector) again = NULL;
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Ack over a direct connection counts what it acknowledged; once that connection "
                       "closes and a new one subscribes, the acknowledged messages never come back and the "
                       "others come again with delivery-count 2.");

        seqs = fixture_send_numbered(f->conn, "app.jobs", 0, 5);
        g_assert_cmpuint(fixture_subscribe(first, "app.jobs", "worker"), ==, 5);
        collector_wait(collector, 5);
        g_assert_cmpuint(fixture_ack_collected(first, "app.jobs", "worker", collector, 0, 3), ==, 3);
        g_assert_cmpuint(fixture_ack_collected(first, "app.jobs", "worker", collector, 0, 3), ==, 0);

        close_direct(first);
        wait_until_detached(f->conn, "app.jobs", "worker");

        second = fixture_open_direct(f->conn);
        again = collector_new(second);
        g_assert_cmpuint(fixture_subscribe(second, "app.jobs", "worker"), ==, 2);
        collector_wait(again, 2);
        fixture_assert_delivered(collector_get(again, 0), "app.jobs", "worker", 3, fixture_seq_at(seqs, 3), 2);
        fixture_assert_delivered(collector_get(again, 1), "app.jobs", "worker", 4, fixture_seq_at(seqs, 4), 2);
        collector_sync(again);
        g_assert_cmpuint(again->messages->len, ==, 2);
}

static void test_errors_as_on_the_bus(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autofree char *path = fixture_endpoint_path("app.jobs");
        g_autofree char *text = NULL;
        const char *ids[] = { "m1", NULL };

        g_test_summary("Each failure is the same error, name and message, over a direct connection as "
                       "through the bus: NotSubscribed, InvalidArgs, InvalidName, NoSuchEndpoint and "
                       "UnknownObject for a path that is no endpoint.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);

        text = assert_same_error(f->conn, direct, path, ENDPOINT_IFACE, "Ack",
                                 g_variant_new("(s^as)", "nobody", ids), ERROR_NOT_SUBSCRIBED);
        g_assert_nonnull(strstr(text, "'nobody'"));
        g_clear_pointer(&text, g_free);
        text = assert_same_error(f->conn, direct, path, ENDPOINT_IFACE, "Unsubscribe",
                                 g_variant_new("(sa{sv})", "nobody", NULL), ERROR_NOT_SUBSCRIBED);
        g_clear_pointer(&text, g_free);
        text = assert_same_error(f->conn, direct, path, ENDPOINT_IFACE, "Subscribe",
                                 g_variant_new_parsed("('w', {'window': <uint32 0>})"), ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(text, "window"));
        g_clear_pointer(&text, g_free);
        text = assert_same_error(f->conn, direct, path, ENDPOINT_IFACE, "Send", g_variant_new("(s)", "m1"),
                                 ERROR_INVALID_ARGS);
        g_clear_pointer(&text, g_free);
        text = assert_same_error(f->conn, direct, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                 g_variant_new("(sa{sv})", "9lives", NULL), ERROR_INVALID_NAME);
        g_assert_nonnull(strstr(text, "'9lives'"));
        g_clear_pointer(&text, g_free);
        text = assert_same_error(f->conn, direct, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint",
                                 g_variant_new("(s)", "missing"), ERROR_NO_SUCH_ENDPOINT);
        g_assert_nonnull(strstr(text, "'missing'"));
        g_clear_pointer(&text, g_free);
        text = assert_same_error(f->conn, direct, "/org/durabus1/elsewhere", ENDPOINT_IFACE, "Send",
                                 g_variant_new("(ssa{sv})", "m1", "x", NULL), ERROR_UNKNOWN_OBJECT);
}

static void test_options_ignored(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GError) error = NULL;

        g_test_summary("OpenDirect ignores options it does not know, like every method with options.");

        reply = g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, DURABUS_NAME, BROKER_PATH, BROKER_IFACE, "OpenDirect",
                g_variant_new_parsed("({'no-such-option': <42>},)"), G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE,
                FIXTURE_TIMEOUT_MS, NULL, &fds, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(g_unix_fd_list_get_length(fds), ==, 1);
}

static void test_sd_bus_client(Fixture *f, gconstpointer data) {
        __attribute__((cleanup(sd_bus_flush_close_unrefp))) sd_bus *bus = NULL;
        __attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *reply = NULL;
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(GVariant) dbus_reply = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GError) gerror = NULL;
        const char *id;
        guint64 seq;
        gint32 index;
        int fd;

        g_test_summary("An sd-bus client, as libdurabus makes one, talks over the socket without Hello and "
                       "without naming a destination: Send answers with its seq.");

        dbus_reply = g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, DURABUS_NAME, BROKER_PATH, BROKER_IFACE, "OpenDirect", g_variant_new("(a{sv})", NULL),
                G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, &fds, NULL, &gerror);
        g_assert_no_error(gerror);
        g_variant_get(dbus_reply, "(h)", &index);
        fd = g_unix_fd_list_get(fds, index, &gerror);
        g_assert_no_error(gerror);

        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, fd, fd), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        g_assert_cmpint(sd_bus_call_method(bus, NULL, "/org/durabus1/endpoint/app/jobs", ENDPOINT_IFACE, "Send",
                                           &error, &reply, "ssa{sv}", "m1", "from sd-bus", 0),
                        >=, 0);
        g_assert_cmpint(sd_bus_message_read(reply, "st", &id, &seq), >=, 0);
        g_assert_cmpstr(id, ==, "m1");
        g_assert_cmpuint(seq, ==, 1);

        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
}

/* OpenDirect from c, as a bare socket over which the test speaks the
 * protocol itself. */
static GSocket *open_raw(GDBusConnection *c) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GError) error = NULL;
        GSocket *socket;
        gint32 index;

        reply = g_dbus_connection_call_with_unix_fd_list_sync(
                c, DURABUS_NAME, BROKER_PATH, BROKER_IFACE, "OpenDirect", g_variant_new("(a{sv})", NULL),
                G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, &fds, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(h)", &index);
        socket = g_socket_new_from_fd(g_unix_fd_list_get(fds, index, NULL), &error);
        g_assert_no_error(error);
        g_socket_set_timeout(socket, FIXTURE_TIMEOUT_MS / 1000);
        return socket;
}

/* Writes the whole handshake of an anonymous client and its first call
 * (serial 1) in one write, as a client that pipelines does. */
static void raw_send_with_handshake(GSocket *socket, GDBusMessage *call) {
        /* ANONYMOUS with a trace string ("test" in hex), or the server asks
         * for one. */
        static const char handshake[] = "\0AUTH ANONYMOUS 74657374\r\nBEGIN\r\n";
        g_autoptr(GError) error = NULL;
        g_autofree guchar *blob = NULL;
        gsize size;

        g_dbus_message_set_serial(call, 1);
        blob = g_dbus_message_to_blob(call, &size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
        g_assert_no_error(error);

        GOutputVector v[] = { { handshake, sizeof(handshake) - 1 }, { blob, size } };
        g_assert_cmpint(g_socket_send_message(socket, NULL, v, 2, NULL, 0, 0, NULL, &error), ==,
                        (gssize) (sizeof(handshake) - 1 + size));
        g_assert_no_error(error);
}

static void test_call_with_begin(Fixture *f, gconstpointer data) {
        g_autoptr(GSocket) socket = open_raw(f->conn);
        g_autoptr(GDBusMessage) ping = NULL;
        g_autoptr(GDBusMessage) reply = NULL;
        g_autoptr(GByteArray) got = g_byte_array_new();
        g_autoptr(GError) error = NULL;
        const char *end = NULL;

        g_test_summary("A client that sends its first call in the same write as the end of its "
                       "authentication (BEGIN), as a pipelining client may, gets its answer.");

        ping = g_dbus_message_new_method_call(NULL, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping");
        raw_send_with_handshake(socket, ping);

        /* "OK <guid>\r\n", then the reply. */
        while (!reply) {
                guint8 buffer[4096];
                gssize n = g_socket_receive(socket, (gchar *) buffer, sizeof(buffer), NULL, &error);

                g_assert_no_error(error);
                g_assert_cmpint(n, >, 0);
                g_byte_array_append(got, buffer, (guint) n);
                if (!end)
                        end = g_strstr_len((const char *) got->data, got->len, "\r\n");
                if (end) {
                        gsize offset = (gsize) (end + 2 - (const char *) got->data);
                        gssize needed;

                        g_assert_cmpmem(got->data, 3, "OK ", 3);
                        if (got->len - offset < 16)
                                continue;
                        needed = g_dbus_message_bytes_needed(got->data + offset, got->len - offset, &error);
                        g_assert_no_error(error);
                        if ((gsize) needed <= got->len - offset)
                                reply = g_dbus_message_new_from_blob(got->data + offset, (gsize) needed,
                                                                     G_DBUS_CAPABILITY_FLAGS_NONE, &error);
                        g_assert_no_error(error);
                }
        }
        g_assert_cmpint(g_dbus_message_get_message_type(reply), ==, G_DBUS_MESSAGE_TYPE_METHOD_RETURN);
        g_assert_cmpuint(g_dbus_message_get_reply_serial(reply), ==, 1);
}

/* ---- Subscriptions across the two kinds of connection ------------------ */

static void test_busy_both_ways(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autoptr(GDBusConnection) other = fixture_open_direct(f->conn);
        g_autoptr(GError) busy_direct = NULL;
        g_autoptr(GError) busy_bus = NULL;
        g_autoptr(GError) busy_other = NULL;

        g_test_summary("A durable subscription attached through the bus is SubscriberBusy over a direct "
                       "connection of the same caller, and one attached over a direct connection is "
                       "SubscriberBusy through the bus and over another direct connection.");

        fixture_subscribe(f->conn, "app.jobs", "on-bus");
        busy_direct = fixture_endpoint_call_error(direct, "app.jobs", "Subscribe",
                                                  g_variant_new("(sa{sv})", "on-bus", NULL));
        fixture_assert_dbus_error(busy_direct, ERROR_SUBSCRIBER_BUSY, "'on-bus'");

        fixture_subscribe(direct, "app.jobs", "direct");
        busy_bus = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe",
                                               g_variant_new("(sa{sv})", "direct", NULL));
        fixture_assert_dbus_error(busy_bus, ERROR_SUBSCRIBER_BUSY, "'direct'");
        g_assert_nonnull(strstr(busy_bus->message, "(direct:"));

        /* Two direct connections of one caller are two connections. */
        busy_other = fixture_endpoint_call_error(other, "app.jobs", "Subscribe",
                                                 g_variant_new("(sa{sv})", "direct", NULL));
        fixture_assert_dbus_error(busy_other, ERROR_SUBSCRIBER_BUSY, "'direct'");
}

static void test_close_detaches(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autoptr(Collector) collector = collector_new(f->conn);

        g_test_summary("Closing a direct connection detaches its subscriptions: the durable one shows "
                       "attached=false and stays, and may then be attached through the bus, where it gets "
                       "what it did not acknowledge.");

        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        fixture_subscribe(direct, "app.jobs", "worker");
        fixture_subscribe(direct, "app.jobs", "");
        g_assert_true(is_attached(f->conn, "app.jobs", "worker"));

        close_direct(direct);
        wait_until_detached(f->conn, "app.jobs", "worker");

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 1);
        collector_wait(collector, 1);
        g_assert_cmpstr(collector_get(collector, 0)->id, ==, "m1");
        g_assert_cmpuint(collector_get(collector, 0)->delivery_count, ==, 2);
}

static void test_bus_and_direct_cross(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(Collector) on_direct = collector_new(direct);
        g_autoptr(Collector) on_bus = collector_new(other);

        g_test_summary("What is sent through the bus reaches a subscriber on a direct connection, and what "
                       "is sent over a direct connection reaches a subscriber on the bus.");

        fixture_subscribe(direct, "app.to_direct", "reader");
        fixture_subscribe(other, "app.to_bus", "reader");

        fixture_send(f->conn, "app.to_direct", "a", "through the bus", NULL);
        fixture_send(direct, "app.to_bus", "b", "over the direct connection", NULL);

        collector_wait(on_direct, 1);
        collector_wait(on_bus, 1);
        g_assert_cmpstr(collector_get(on_direct, 0)->id, ==, "a");
        g_assert_cmpstr(collector_get(on_direct, 0)->payload, ==, "through the bus");
        g_assert_cmpstr(collector_get(on_bus, 0)->id, ==, "b");
        g_assert_cmpstr(collector_get(on_bus, 0)->payload, ==, "over the direct connection");
        collector_sync(on_direct);
        collector_sync(on_bus);
        g_assert_cmpuint(on_direct->messages->len, ==, 1);
        g_assert_cmpuint(on_bus->messages->len, ==, 1);
}

static void attached_two_setup(Fixture *f, gconstpointer data) {
        fixture_setup(f, data);
        fixture_write_config("[Broker]\nmax-attached=2\n");
}

static void test_delete_under_direct_subscriber(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
        g_autoptr(GDBusConnection) other = fixture_open_direct(f->conn);
        g_autoptr(GError) third = NULL;

        g_test_summary("With max-attached=2, an endpoint deleted through the bus while a direct connection "
                       "has two subscriptions attached to it frees both places: two attach again, over "
                       "another direct connection and the bus, a third is refused; closing the first "
                       "connection afterwards harms nothing.");

        fixture_subscribe(direct, "app.jobs", "worker");
        fixture_subscribe(direct, "app.jobs", "");
        fixture_delete_endpoint(f->conn, "app.jobs");
        close_direct(direct);

        /* The deletion forgot "worker": it attaches anew elsewhere. */
        fixture_subscribe(other, "app.other", "worker");
        fixture_subscribe(f->conn, "app.other", "");
        third = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe", g_variant_new("(sa{sv})", "", NULL));
        fixture_assert_dbus_error(third, ERROR_LIMITS_EXCEEDED, "max-attached");
}

/* ---- Rights ----------------------------------------------------------- */

static void test_refused_without_rights(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        g_test_summary("With trust-same-user=false, a caller that holds no right on any endpoint is refused "
                       "OpenDirect with AccessDenied naming its connection.");

        error = fixture_open_direct_error(f->conn);
        fixture_assert_dbus_error(error, ERROR_ACCESS_DENIED, g_dbus_connection_get_unique_name(f->conn));
        g_assert_nonnull(strstr(error->message, "holds no right on any endpoint"));
}

static void test_rights_of_the_opener(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = NULL;
        g_autofree char *path = fixture_endpoint_path("app.jobs");
        g_autofree char *text = NULL;
        g_autoptr(GError) elsewhere = NULL;

        g_test_summary("A direct connection opened after Authenticate holds that token's rights, no more: "
                       "it may publish to app.jobs, and is refused to subscribe there or to publish "
                       "elsewhere exactly as the bus connection is.");

        authenticate(f->conn, SENDER_TOKEN);
        direct = fixture_open_direct(f->conn);

        g_assert_cmpuint(fixture_send(direct, "app.jobs", "m1", "one", NULL), ==, 1);
        text = assert_same_error(f->conn, direct, path, ENDPOINT_IFACE, "Subscribe",
                                 g_variant_new("(sa{sv})", "worker", NULL), ERROR_ACCESS_DENIED);
        g_assert_nonnull(strstr(text, "subscribe to endpoint 'app.jobs'"));
        elsewhere = fixture_endpoint_call_error(direct, "news", "Send", g_variant_new("(ssa{sv})", "m1", "x", NULL));
        fixture_assert_dbus_error(elsewhere, ERROR_ACCESS_DENIED, "'news'");
}

static void test_later_authenticate_adds_nothing(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = NULL;
        g_autoptr(GError) refused = NULL;

        g_test_summary("Rights the bus connection proves after OpenDirect stay with it: the direct "
                       "connection opened before is still refused to subscribe, the bus connection may.");

        authenticate(f->conn, SENDER_TOKEN);
        direct = fixture_open_direct(f->conn);
        authenticate(f->conn, READER_TOKEN);

        refused = fixture_endpoint_call_error(direct, "app.jobs", "Subscribe",
                                              g_variant_new("(sa{sv})", "worker", NULL));
        fixture_assert_dbus_error(refused, ERROR_ACCESS_DENIED, "'app.jobs'");
        fixture_subscribe(f->conn, "app.jobs", "worker");
}

static void test_authenticate_on_direct(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = NULL;
        g_autoptr(GError) bad = NULL;
        g_autoptr(GError) refused = NULL;
        g_autoptr(Collector) collector = NULL;

        g_test_summary("Authenticate over a direct connection works as on the bus: a wrong token fails "
                       "with AccessDenied, a right one adds its rights to the direct connection alone.");

        authenticate(f->conn, SENDER_TOKEN);
        direct = fixture_open_direct(f->conn);
        collector = collector_new(direct);

        bad = fixture_call_error(direct, BROKER_PATH, BROKER_IFACE, "Authenticate",
                                 g_variant_new("(s)", UNKNOWN_TOKEN));
        fixture_assert_dbus_error(bad, ERROR_ACCESS_DENIED, AUTHENTICATION_FAILED);

        authenticate(direct, READER_TOKEN);
        fixture_subscribe(direct, "app.jobs", "worker");
        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        collector_wait(collector, 1);
        g_assert_cmpstr(collector_get(collector, 0)->id, ==, "m1");

        refused = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe",
                                              g_variant_new("(sa{sv})", "other", NULL));
        fixture_assert_dbus_error(refused, ERROR_ACCESS_DENIED, "'app.jobs'");
}

/* A call of method on the endpoint app.jobs over direct whose header names
 * sender as its sender, as a peer may write; returns its error. */
static GError *call_as(GDBusConnection *direct, const char *sender, const char *method, GVariant *args) {
        g_autoptr(GDBusMessage) call = NULL;
        g_autoptr(GDBusMessage) reply = NULL;
        g_autofree char *path = fixture_endpoint_path("app.jobs");
        GError *error = NULL;

        call = g_dbus_message_new_method_call(DURABUS_NAME, path, ENDPOINT_IFACE, method);
        g_dbus_message_set_body(call, args);
        g_dbus_message_set_sender(call, sender);
        reply = g_dbus_connection_send_message_with_reply_sync(direct, call, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                                               FIXTURE_TIMEOUT_MS, NULL, NULL, &error);
        g_assert_no_error(error);
        (void) g_dbus_message_to_gerror(reply, &error);
        return error;
}

static void test_forged_sender(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) reader = fixture_connect(f);
        g_autoptr(GDBusConnection) direct = NULL;
        g_autoptr(GError) subscribe = NULL;
        g_autoptr(GError) unsubscribe = NULL;
        const char *victim = g_dbus_connection_get_unique_name(reader);

        g_test_summary("A peer writes its own message headers: a direct connection that names another "
                       "connection of the bus as the sender gets neither that connection's rights nor its "
                       "subscriptions.");

        authenticate(reader, READER_TOKEN);
        fixture_subscribe(reader, "app.jobs", "worker");
        authenticate(f->conn, SENDER_TOKEN);
        direct = fixture_open_direct(f->conn);

        subscribe = call_as(direct, victim, "Subscribe", g_variant_new("(sa{sv})", "other", NULL));
        fixture_assert_dbus_error(subscribe, ERROR_ACCESS_DENIED, "'app.jobs'");

        authenticate(direct, READER_TOKEN);
        unsubscribe = call_as(direct, victim, "Unsubscribe", g_variant_new("(sa{sv})", "worker", NULL));
        fixture_assert_dbus_error(unsubscribe, ERROR_NOT_SUBSCRIBED, "'worker'");
        g_assert_true(is_attached(f->conn, "app.jobs", "worker"));
}

/* ---- Lifetime --------------------------------------------------------- */

static gboolean on_flag_timeout(gpointer data) {
        *(gboolean *) data = TRUE;
        return G_SOURCE_REMOVE;
}

static void test_idle(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = NULL;
        g_autoptr(GVariant) reply = NULL;
        gboolean vanished = FALSE, window_over = FALSE;
        pid_t pid;
        guint watch;

        g_test_summary("With --idle-timeout 1, the service does not exit while a direct connection is open, "
                       "with nothing attached: it is the same process 3 s later and answers over it. Once "
                       "the connection closes, it exits by itself.");

        direct = fixture_open_direct(f->conn);
        pid = fixture_service_pid(f);

        /* There is no event for "did not exit", so watch the name during a
         * fixed observation window of three idle timeouts. */
        watch = fixture_watch_name_vanishing(f, DURABUS_NAME, &vanished);
        g_timeout_add_seconds(3, on_flag_timeout, &window_over);
        fixture_wait_for(&window_over);
        g_bus_unwatch_name(watch);
        g_assert_false(vanished);
        g_assert_cmpint(fixture_service_pid(f), ==, pid);
        reply = fixture_call_ok(direct, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, "()");

        close_direct(direct);
        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
        fixture_wait_for_process_gone(pid);
}

static void test_many_leave_nothing(Fixture *f, gconstpointer data) {
        guint before;
        pid_t pid;

        g_test_summary("300 direct connections opened one after another, each subscribing and acknowledging, "
                       "then closed, leave the service with the descriptors it had before and every "
                       "subscription detached; the messages they acknowledged are gone.");

        pid = fixture_start_service(f);
        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        before = count_descriptors(pid);

        for (guint i = 0; i < 300; i++) {
                g_autoptr(GDBusConnection) direct = fixture_open_direct(f->conn);
                g_autoptr(Collector) got = collector_new(direct);
                g_autofree char *id = fixture_message_id(i);
                const char *ids[] = { id, NULL };

                fixture_send(direct, "app.jobs", id, "x", NULL);
                fixture_subscribe(direct, "app.jobs", "worker");
                fixture_subscribe(direct, "app.jobs", "");
                collector_wait(got, 1);
                g_assert_cmpuint(fixture_ack(direct, "app.jobs", "worker", ids), ==, 1);
                close_direct(direct);
                wait_until_detached(f->conn, "app.jobs", "worker");
        }

        wait_for_descriptors(f->conn, pid, before);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 0);
}

static void test_limit(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) open = g_ptr_array_new_with_free_func(g_object_unref);
        g_autoptr(GError) refused = NULL;
        gint64 deadline;

        g_test_summary("At most 128 direct connections are open at once: one more is refused with "
                       "LimitsExceeded, and once one closes, a new one may open.");

        for (guint i = 0; i < DIRECT_CONNECTIONS_MAX; i++)
                g_ptr_array_add(open, fixture_open_direct(f->conn));
        refused = fixture_open_direct_error(f->conn);
        fixture_assert_dbus_error(refused, ERROR_LIMITS_EXCEEDED, "128");

        close_direct(g_ptr_array_index(open, 0));
        /* The close reaches the service on another socket: ask again until
         * it was handled. */
        deadline = g_get_monotonic_time() + FIXTURE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
        for (;;) {
                g_autoptr(GError) error = fixture_open_direct_error(f->conn);

                if (!error)
                        break;
                fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "128");
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        }
}

static void test_sigterm_with_a_peer_not_reading(Fixture *f, gconstpointer data) {
        g_autoptr(GSocket) socket = open_raw(f->conn);
        g_autoptr(GDBusMessage) subscribe = NULL;
        g_autoptr(Collector) collector = NULL;
        g_autofree char *payload = g_strnfill(1000 * 1000, 'x');
        gint64 deadline = g_get_monotonic_time() + FIXTURE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

        g_test_summary("SIGTERM ends the service even when a direct connection has a subscriber that reads "
                       "nothing while its socket is full; the data is intact and what was delivered to it "
                       "comes again.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        subscribe = g_dbus_message_new_method_call(NULL, "/org/durabus1/endpoint/app/jobs", ENDPOINT_IFACE,
                                                   "Subscribe");
        g_dbus_message_set_body(subscribe, g_variant_new("(sa{sv})", "worker", NULL));
        raw_send_with_handshake(socket, subscribe);
        while (attached_state(f->conn, "app.jobs", "worker") <= 0)
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);

        /* Far more than a socket buffer holds, even the 8 MiB (doubled by
         * the kernel) that sd-bus asks for. */
        for (guint i = 0; i < 40; i++) {
                g_autofree char *id = fixture_message_id(i);

                fixture_send(f->conn, "app.jobs", id, payload, NULL);
        }

        fixture_kill_service(f, SIGTERM);

        collector = collector_new(f->conn);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 40);
        collector_wait(collector, 40);
        g_assert_cmpuint(collector_get(collector, 0)->delivery_count, ==, 2);
}

static void test_closed_connection_keeps_no_proof(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(GDBusConnection) direct = NULL;

        g_test_summary("A direct connection's copy of proven rights goes when it closes: once it and the "
                       "bus connection that opened it closed, the service exits when idle, which it does "
                       "not while a connection holds a proof.");

        authenticate(other, SENDER_TOKEN);
        direct = fixture_open_direct(other);
        authenticate(direct, READER_TOKEN);
        close_direct(direct);
        fixture_close_connection(f, other);
        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
#define ADD_UNTRUSTED(path, fn) g_test_add(path, Fixture, NULL, untrusted_setup, fn, fixture_teardown)
        ADD("/direct/send/answers-with-the-seq-of-the-endpoint", test_send);
        ADD("/direct/subscribe/replays-then-delivers-live-in-order", test_subscribe_in_order);
        ADD("/direct/ack/acked-never-come-back-the-rest-come-again-with-count-2", test_ack_and_redelivery);
        ADD("/direct/errors/are-the-errors-of-the-bus", test_errors_as_on_the_bus);
        ADD("/direct/options/unknown-are-ignored", test_options_ignored);
        ADD("/direct/sd-bus/client-without-hello", test_sd_bus_client);
        ADD("/direct/startup/first-call-in-the-same-write-as-begin-is-answered", test_call_with_begin);
        ADD("/direct/subscriptions/busy-from-bus-to-direct-and-back", test_busy_both_ways);
        ADD("/direct/subscriptions/close-detaches-them", test_close_detaches);
        ADD("/direct/subscriptions/bus-and-direct-reach-each-other", test_bus_and_direct_cross);
        g_test_add("/direct/subscriptions/endpoint-deleted-under-a-direct-subscriber", Fixture, NULL,
                   attached_two_setup, test_delete_under_direct_subscriber, fixture_teardown);
        ADD_UNTRUSTED("/direct/access/refused-to-a-caller-without-rights", test_refused_without_rights);
        ADD_UNTRUSTED("/direct/access/has-the-rights-of-the-opener-at-open", test_rights_of_the_opener);
        ADD_UNTRUSTED("/direct/access/later-authenticate-on-the-bus-adds-nothing",
                      test_later_authenticate_adds_nothing);
        ADD_UNTRUSTED("/direct/access/authenticate-over-it-adds-to-it-alone", test_authenticate_on_direct);
        ADD_UNTRUSTED("/direct/access/a-forged-sender-is-not-believed", test_forged_sender);
        g_test_add("/direct/lifetime/no-idle-exit-while-open", Fixture, &idle_after_1s, fixture_setup, test_idle,
                   fixture_teardown);
        ADD("/direct/lifetime/many-opened-and-closed-leave-nothing-behind", test_many_leave_nothing);
        ADD("/direct/lifetime/at-most-128-open-at-once", test_limit);
        ADD("/direct/lifetime/sigterm-with-a-peer-that-reads-nothing", test_sigterm_with_a_peer_not_reading);
        g_test_add("/direct/lifetime/closed-connection-keeps-no-proof", Fixture, &idle_after_1s, untrusted_setup,
                   test_closed_connection_keeps_no_proof, fixture_teardown);
#undef ADD_UNTRUSTED
#undef ADD

        return g_test_run();
}
