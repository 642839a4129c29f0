/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of delivery: how Message signals reach subscriptions.
 * Replay of what is stored, live messages, unicast, retention until every
 * durable subscription acknowledged, at-least-once redelivery, order, flow
 * control, Ack counts, ephemeral subscriptions, Unsubscribe and ClearAll
 * (semantics 2, 3, 4, 5, 6 and 8 of the contract, issue 2).
 *
 * Every test runs against a private dbus-daemon that starts the built
 * durabusd through activation (fixture.c). Nothing sleeps: a test waits for
 * signals with collector_wait() and proves that nothing more arrived with
 * collector_sync(), a ping round trip after which every signal the service
 * sent before its reply has been collected.
 */

#include "fixture.h"

#include <signal.h>

#define PROPERTIES_IFACE "org.freedesktop.DBus.Properties"
#define NOT_SUBSCRIBED "org.durabus1.Error.NotSubscribed"

/* ---- helpers ---- */

static char *message_id(guint i) {
        return g_strdup_printf("msg-%04u", i);
}

static char *message_payload(guint i) {
        return g_strdup_printf("{\"n\": %u}", i);
}

/* Sends message_id(i) with message_payload(i) for i in [first, first + n),
 * one at a time, and returns their seqs in an array of n. */
static GArray *send_numbered(GDBusConnection *c, const char *endpoint, guint first, guint n) {
        GArray *seqs = g_array_sized_new(FALSE, FALSE, sizeof(guint64), n);

        for (guint i = first; i < first + n; i++) {
                g_autofree char *id = message_id(i);
                g_autofree char *payload = message_payload(i);
                g_autofree char *out_id = NULL;
                guint64 seq = fixture_send(c, endpoint, id, payload, &out_id);

                g_assert_cmpstr(out_id, ==, id);
                g_array_append_val(seqs, seq);
        }
        return seqs;
}

/*
 * Pipelined Sends, so that a large backlog is stored quickly (the service may
 * group their syncs): up to MAX_IN_FLIGHT calls are out at once, each reply
 * issues the next. The private bus of GTestDBus keeps dbus-daemon's default
 * limit of 128 pending replies per connection, hence the cap.
 */
#define MAX_IN_FLIGHT 100

typedef struct SendBatch {
        GDBusConnection *conn;
        const char *path;
        guint total;
        guint next;             /* the next message to send */
        guint outstanding;
        gboolean done;
        guint64 *seqs;
} SendBatch;

typedef struct SendCall {
        SendBatch *batch;
        guint index;
} SendCall;

static void send_batch_reply(GObject *source, GAsyncResult *result, gpointer data);

static void send_batch_next(SendBatch *batch) {
        g_autofree char *id = message_id(batch->next);
        g_autofree char *payload = message_payload(batch->next);
        SendCall *call = g_new0(SendCall, 1);

        call->batch = batch;
        call->index = batch->next++;
        batch->outstanding++;
        g_dbus_connection_call(batch->conn, DURABUS_NAME, batch->path, ENDPOINT_IFACE, "Send",
                               g_variant_new("(ssa{sv})", id, payload, NULL), G_VARIANT_TYPE("(st)"),
                               G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, send_batch_reply, call);
}

static void send_batch_reply(GObject *source, GAsyncResult *result, gpointer data) {
        g_autofree SendCall *call = data;
        SendBatch *batch = call->batch;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(&st)", NULL, &batch->seqs[call->index]);

        batch->outstanding--;
        if (batch->next < batch->total)
                send_batch_next(batch);
        else if (batch->outstanding == 0)
                batch->done = TRUE;
}

/* Like send_numbered(), for i in [0, n), pipelined. */
static GArray *send_numbered_pipelined(GDBusConnection *c, const char *endpoint, guint n) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        GArray *seqs = g_array_new(FALSE, TRUE, sizeof(guint64));
        SendBatch batch = { .conn = c, .path = path, .total = n };

        g_assert_cmpuint(n, >, 0);
        g_array_set_size(seqs, n);
        batch.seqs = (guint64 *) (void *) seqs->data;
        while (batch.next < MIN(n, MAX_IN_FLIGHT))
                send_batch_next(&batch);
        fixture_wait_for(&batch.done);
        return seqs;
}

static GVariant *subscribe_options(const char *start, guint32 window) {
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        if (start)
                g_variant_builder_add(&builder, "{sv}", "start", g_variant_new_string(start));
        if (window > 0)
                g_variant_builder_add(&builder, "{sv}", "window", g_variant_new_uint32(window));
        return g_variant_builder_end(&builder);
}

/* Subscribe; start NULL and window 0 leave the option out. Returns pending. */
static guint64 subscribe(GDBusConnection *c, const char *endpoint, const char *subscriber, const char *start,
                         guint32 window) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) reply = NULL;
        guint64 pending;

        reply = fixture_call_ok(c, path, ENDPOINT_IFACE, "Subscribe",
                                g_variant_new("(s@a{sv})", subscriber, subscribe_options(start, window)), "(t)");
        g_variant_get(reply, "(t)", &pending);
        return pending;
}

static void unsubscribe(GDBusConnection *c, const char *endpoint, const char *subscriber, gboolean forget) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) reply = NULL;
        GVariantBuilder options;

        g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
        if (forget)
                g_variant_builder_add(&options, "{sv}", "forget", g_variant_new_boolean(TRUE));
        reply = fixture_call_ok(c, path, ENDPOINT_IFACE, "Unsubscribe",
                                g_variant_new("(sa{sv})", subscriber, &options), "()");
}

/* Unsubscribe that must fail with the D-Bus error named error_name. */
static void unsubscribe_fails(GDBusConnection *c, const char *endpoint, const char *subscriber,
                              const char *error_name) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *remote = NULL;

        reply = fixture_call(c, path, ENDPOINT_IFACE, "Unsubscribe", g_variant_new("(sa{sv})", subscriber, NULL),
                             "()", &error);
        g_assert_null(reply);
        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        g_assert_cmpstr(remote, ==, error_name);
}

/* Ack of a NULL-terminated id list; returns how many were newly acked. */
static guint32 ack(GDBusConnection *c, const char *endpoint, const char *subscriber, const char *const *ids) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) reply = NULL;
        guint32 acked;

        reply = fixture_call_ok(c, path, ENDPOINT_IFACE, "Ack", g_variant_new("(s^as)", subscriber, ids), "(u)");
        g_variant_get(reply, "(u)", &acked);
        return acked;
}

/* Acks the ids of the collected messages [from, to). */
static guint32 ack_collected(GDBusConnection *c, const char *endpoint, const char *subscriber,
                             Collector *collector, guint from, guint to) {
        g_autoptr(GPtrArray) ids = g_ptr_array_new();

        for (guint i = from; i < to; i++)
                g_ptr_array_add(ids, collector_get(collector, i)->id);
        g_ptr_array_add(ids, NULL);
        return ack(c, endpoint, subscriber, (const char *const *) ids->pdata);
}

static guint64 clear_all(GDBusConnection *c, const char *endpoint) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) reply = NULL;
        guint64 removed;

        reply = fixture_call_ok(c, path, ENDPOINT_IFACE, "ClearAll", NULL, "(t)");
        g_variant_get(reply, "(t)", &removed);
        return removed;
}

static guint64 stored_messages(GDBusConnection *c, const char *endpoint) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) value = NULL;

        reply = fixture_call_ok(c, path, PROPERTIES_IFACE, "Get",
                                g_variant_new("(ss)", ENDPOINT_IFACE, "StoredMessages"), "(v)");
        g_variant_get(reply, "(v)", &value);
        g_assert_cmpstr(g_variant_get_type_string(value), ==, "t");
        return g_variant_get_uint64(value);
}

/* Checks one collected message against what was sent. */
static void assert_delivered(const Delivered *d, const char *endpoint, const char *subscriber, guint number,
                             guint64 seq, guint32 delivery_count) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autofree char *id = message_id(number);
        g_autofree char *payload = message_payload(number);

        g_assert_cmpstr(d->path, ==, path);
        g_assert_cmpstr(d->subscriber, ==, subscriber);
        g_assert_cmpstr(d->id, ==, id);
        g_assert_cmpuint(d->seq, ==, seq);
        g_assert_cmpstr(d->payload, ==, payload);
        g_assert_cmpuint(d->delivery_count, ==, delivery_count);
}

static guint64 seq_at(GArray *seqs, guint i) {
        return g_array_index(seqs, guint64, i);
}

static void on_name_vanished(GDBusConnection *c, const char *name, gpointer data) {
        *(gboolean *) data = TRUE;
}

/* Closes a client connection and waits until the bus has announced that its
 * unique name is gone. The bus tells the service (which tracks the names of
 * attached connections) before it routes any later call to it, so the next
 * call finds the subscription detached. */
static void close_connection(Fixture *f, GDBusConnection *c) {
        g_autofree char *name = g_strdup(g_dbus_connection_get_unique_name(c));
        g_autoptr(GError) error = NULL;
        gboolean vanished = FALSE;
        guint watch;

        watch = g_bus_watch_name_on_connection(f->conn, name, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, on_name_vanished,
                                               &vanished, NULL);
        g_dbus_connection_close_sync(c, NULL, &error);
        g_assert_no_error(error);
        fixture_wait_for(&vanished);
        g_bus_unwatch_name(watch);
}

/* ---- semantic 2 and 3: replay, then live messages ---- */

static void test_replay_stored_then_live(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) stored = NULL;
        g_autoptr(GArray) live = NULL;
        gint64 before, after;

        g_test_summary("Messages sent before any subscription existed are kept and all replayed to the first "
                       "Subscribe (pending counts them), in seq order, with a timestamp from Send and "
                       "delivery-count 1; messages sent afterwards follow live.");

        before = g_get_real_time();
        stored = send_numbered(f->conn, "app.jobs", 0, 5);
        after = g_get_real_time();

        g_assert_cmpuint(subscribe(f->conn, "app.jobs", "reader", NULL, 0), ==, 5);
        collector_wait(collector, 5);
        for (guint i = 0; i < 5; i++) {
                const Delivered *d = collector_get(collector, i);

                assert_delivered(d, "app.jobs", "reader", i, seq_at(stored, i), 1);
                g_assert_cmpuint(d->timestamp, >=, (guint64) before);
                g_assert_cmpuint(d->timestamp, <=, (guint64) after);
        }

        live = send_numbered(f->conn, "app.jobs", 5, 2);
        collector_wait(collector, 7);
        for (guint i = 0; i < 2; i++)
                assert_delivered(collector_get(collector, 5 + i), "app.jobs", "reader", 5 + i, seq_at(live, i), 1);
        g_assert_cmpuint(seq_at(live, 0), >, seq_at(stored, 4));

        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 7);
}

static void test_start_new_gets_only_later_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) before = NULL;
        g_autoptr(GArray) after = NULL;

        g_test_summary("A subscription created with start=new has pending 0, is replayed nothing that was stored "
                       "before it, and receives the messages sent after it was created.");

        before = send_numbered(f->conn, "news", 0, 3);
        g_assert_cmpuint(subscribe(f->conn, "news", "late", "new", 0), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 0);

        after = send_numbered(f->conn, "news", 3, 2);
        collector_wait(collector, 2);
        assert_delivered(collector_get(collector, 0), "news", "late", 3, seq_at(after, 0), 1);
        assert_delivered(collector_get(collector, 1), "news", "late", 4, seq_at(after, 1), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 2);
}

static void test_start_new_drops_unreachable_messages(Fixture *f, gconstpointer data) {
        g_autoptr(GArray) before = NULL;
        g_autoptr(GArray) after = NULL;

        g_test_summary("When the first durable subscription of an endpoint is created with start=new, the "
                       "messages stored before it can never be delivered to anyone and are deleted "
                       "(notes/semantics.md).");

        before = send_numbered(f->conn, "news", 0, 3);
        g_assert_cmpuint(stored_messages(f->conn, "news"), ==, 3);
        g_assert_cmpuint(subscribe(f->conn, "news", "late", "new", 0), ==, 0);
        g_assert_cmpuint(stored_messages(f->conn, "news"), ==, 0);

        after = send_numbered(f->conn, "news", 3, 1);
        g_assert_cmpuint(stored_messages(f->conn, "news"), ==, 1);
}

/* ---- semantic 3: unicast ---- */

static void test_unicast_other_connections_see_nothing(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(Collector) mine = collector_new(f->conn);
        g_autoptr(Collector) theirs = collector_new(other);
        g_autoptr(GArray) stored = NULL;
        g_autoptr(GArray) live = NULL;

        g_test_summary("Message signals go to the subscribed connection only: a second connection that listens "
                       "for Message signals but subscribed to nothing receives none, neither of the replay nor "
                       "of live messages, not even of the messages it sent itself.");

        stored = send_numbered(other, "chat", 0, 2);
        g_assert_cmpuint(subscribe(f->conn, "chat", "mine", NULL, 0), ==, 2);
        live = send_numbered(other, "chat", 2, 2);

        collector_wait(mine, 4);
        collector_sync(mine);
        collector_sync(theirs);
        g_assert_cmpuint(mine->messages->len, ==, 4);
        g_assert_cmpuint(theirs->messages->len, ==, 0);
}

/* ---- semantic 2: retention over two subscriptions ---- */

static void test_two_subscriptions_retention(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) second = fixture_connect(f);
        g_autoptr(Collector) one = collector_new(f->conn);
        g_autoptr(Collector) two = collector_new(second);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Two durable subscriptions each receive every message; a message stays stored "
                       "(StoredMessages) until both have acknowledged it, and is deleted then.");

        g_assert_cmpuint(subscribe(f->conn, "feed", "one", NULL, 0), ==, 0);
        g_assert_cmpuint(subscribe(second, "feed", "two", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "feed", 0, 3);

        collector_wait(one, 3);
        collector_wait(two, 3);
        for (guint i = 0; i < 3; i++) {
                assert_delivered(collector_get(one, i), "feed", "one", i, seq_at(seqs, i), 1);
                assert_delivered(collector_get(two, i), "feed", "two", i, seq_at(seqs, i), 1);
        }
        g_assert_cmpuint(stored_messages(f->conn, "feed"), ==, 3);

        /* "one" acknowledges all: "two" still waits for them. */
        g_assert_cmpuint(ack_collected(f->conn, "feed", "one", one, 0, 3), ==, 3);
        g_assert_cmpuint(stored_messages(f->conn, "feed"), ==, 3);

        /* "two" acknowledges the first: only that one is done. */
        g_assert_cmpuint(ack_collected(second, "feed", "two", two, 0, 1), ==, 1);
        g_assert_cmpuint(stored_messages(f->conn, "feed"), ==, 2);

        g_assert_cmpuint(ack_collected(second, "feed", "two", two, 1, 3), ==, 2);
        g_assert_cmpuint(stored_messages(f->conn, "feed"), ==, 0);

        collector_sync(one);
        collector_sync(two);
        g_assert_cmpuint(one->messages->len, ==, 3);
        g_assert_cmpuint(two->messages->len, ==, 3);
}

/* ---- semantics 4 and 5: at least once ---- */

static void test_unacked_redelivered_to_new_connection(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) first = fixture_connect(f);
        g_autoptr(GDBusConnection) second = fixture_connect(f);
        g_autoptr(Collector) before = collector_new(first);
        g_autoptr(Collector) after = collector_new(second);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) live = NULL;

        g_test_summary("A message delivered but not acknowledged when the subscribed connection goes away is "
                       "delivered again, with delivery-count 2, to the next connection that subscribes with "
                       "the same name; acknowledged messages never come again.");

        g_assert_cmpuint(subscribe(first, "work", "worker", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "work", 0, 4);
        collector_wait(before, 4);
        for (guint i = 0; i < 4; i++)
                assert_delivered(collector_get(before, i), "work", "worker", i, seq_at(seqs, i), 1);
        g_assert_cmpuint(ack_collected(first, "work", "worker", before, 0, 2), ==, 2);

        close_connection(f, first);

        g_assert_cmpuint(subscribe(second, "work", "worker", NULL, 0), ==, 2);
        collector_wait(after, 2);
        assert_delivered(collector_get(after, 0), "work", "worker", 2, seq_at(seqs, 2), 2);
        assert_delivered(collector_get(after, 1), "work", "worker", 3, seq_at(seqs, 3), 2);

        /* A new message is a first delivery. */
        live = send_numbered(f->conn, "work", 4, 1);
        collector_wait(after, 3);
        assert_delivered(collector_get(after, 2), "work", "worker", 4, seq_at(live, 0), 1);

        collector_sync(after);
        g_assert_cmpuint(after->messages->len, ==, 3);
}

static void test_resubscribe_restarts_replay(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Subscribing again from the same connection restarts the replay: every unacknowledged "
                       "message comes again, in seq order, with delivery-count 2; the acknowledged one does "
                       "not.");

        g_assert_cmpuint(subscribe(f->conn, "redo", "r", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "redo", 0, 4);
        collector_wait(collector, 4);
        for (guint i = 0; i < 4; i++)
                assert_delivered(collector_get(collector, i), "redo", "r", i, seq_at(seqs, i), 1);
        g_assert_cmpuint(ack_collected(f->conn, "redo", "r", collector, 0, 1), ==, 1);

        g_assert_cmpuint(subscribe(f->conn, "redo", "r", NULL, 0), ==, 3);
        collector_wait(collector, 7);
        for (guint i = 1; i < 4; i++)
                assert_delivered(collector_get(collector, 3 + i), "redo", "r", i, seq_at(seqs, i), 2);

        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 7);
}

/* ---- semantic 6: order ---- */

static void test_order_200_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) before = NULL;
        g_autoptr(GArray) after = NULL;

        g_test_summary("200 messages, half stored before the Subscribe and half sent live, get strictly "
                       "increasing seqs in the order they were sent and arrive in that order.");

        before = send_numbered(f->conn, "ordered", 0, 100);
        g_assert_cmpuint(subscribe(f->conn, "ordered", "o", NULL, 0), ==, 100);
        after = send_numbered(f->conn, "ordered", 100, 100);
        g_array_append_vals(before, after->data, after->len);

        for (guint i = 1; i < 200; i++)
                g_assert_cmpuint(seq_at(before, i), >, seq_at(before, i - 1));

        collector_wait(collector, 200);
        for (guint i = 0; i < 200; i++)
                assert_delivered(collector_get(collector, i), "ordered", "o", i, seq_at(before, i), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 200);
}

static void test_order_seq_continues_after_restart(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) more = NULL;

        g_test_summary("Sequence numbers start at 1, grow by one per stored message and continue after the "
                       "service was stopped (SIGTERM) and re-activated; the replay crosses the restart in "
                       "order.");

        seqs = send_numbered(f->conn, "counted", 0, 3);
        fixture_kill_service(f, SIGTERM);
        more = send_numbered(f->conn, "counted", 3, 3);
        g_array_append_vals(seqs, more->data, more->len);

        g_assert_cmpuint(seq_at(seqs, 0), ==, 1);
        for (guint i = 1; i < 6; i++) {
                g_assert_cmpuint(seq_at(seqs, i), >, seq_at(seqs, i - 1));
                g_assert_cmpuint(seq_at(seqs, i), ==, seq_at(seqs, i - 1) + 1);
        }

        g_assert_cmpuint(subscribe(f->conn, "counted", "c", NULL, 0), ==, 6);
        collector_wait(collector, 6);
        for (guint i = 0; i < 6; i++)
                assert_delivered(collector_get(collector, i), "counted", "c", i, seq_at(seqs, i), 1);
}

/* ---- semantic 8: flow control ---- */

static void test_window_limits_in_flight(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("With window 5 and 20 pending messages exactly 5 are delivered; acknowledging 2 lets "
                       "exactly 2 more through, the next ones in seq order.");

        seqs = send_numbered(f->conn, "slow", 0, 20);
        g_assert_cmpuint(subscribe(f->conn, "slow", "s", NULL, 5), ==, 20);

        collector_wait(collector, 5);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 5);

        g_assert_cmpuint(ack_collected(f->conn, "slow", "s", collector, 0, 2), ==, 2);
        collector_wait(collector, 7);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 7);

        for (guint i = 0; i < 7; i++)
                assert_delivered(collector_get(collector, i), "slow", "s", i, seq_at(seqs, i), 1);
}

static void test_default_window_is_1000(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Without a window option at most 1000 messages are in flight: of 1500 pending messages "
                       "1000 arrive before any Ack, the other 500 once those 1000 are acknowledged.");

        seqs = send_numbered_pipelined(f->conn, "backlog", 1500);
        g_assert_cmpuint(subscribe(f->conn, "backlog", "b", NULL, 0), ==, 1500);

        collector_wait(collector, 1000);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1000);

        g_assert_cmpuint(ack_collected(f->conn, "backlog", "b", collector, 0, 1000), ==, 1000);
        collector_wait(collector, 1500);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1500);

        /* The pipelined Sends may have been stored in any order: the
         * deliveries come in seq order, each message once. */
        for (guint i = 1; i < 1500; i++)
                g_assert_cmpuint(collector_get(collector, i)->seq, >, collector_get(collector, i - 1)->seq);
}

/* ---- Ack ---- */

static void test_ack_counts_newly_acked(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autofree char *id0 = message_id(0);
        g_autofree char *id1 = message_id(1);
        g_autofree char *id2 = message_id(2);
        const char *first_two[] = { id0, id1, NULL };
        const char *unknown[] = { "no-such-id", NULL };
        const char *mixed[] = { id0, id2, "no-such-id", NULL };
        const char *none[] = { NULL };

        g_test_summary("Ack returns how many of the ids were acknowledged by this call: acking again gives 0, "
                       "ids the endpoint does not store count 0, an empty list 0.");

        g_assert_cmpuint(subscribe(f->conn, "acks", "a", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "acks", 0, 3);
        collector_wait(collector, 3);

        g_assert_cmpuint(ack(f->conn, "acks", "a", first_two), ==, 2);
        g_assert_cmpuint(ack(f->conn, "acks", "a", first_two), ==, 0);
        g_assert_cmpuint(ack(f->conn, "acks", "a", unknown), ==, 0);
        g_assert_cmpuint(ack(f->conn, "acks", "a", none), ==, 0);
        g_assert_cmpuint(ack(f->conn, "acks", "a", mixed), ==, 1);
        g_assert_cmpuint(stored_messages(f->conn, "acks"), ==, 0);
}

/* ---- ephemeral subscriptions ---- */

static void test_ephemeral_gets_live_messages_only(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) stored = NULL;
        g_autoptr(GArray) live = NULL;

        g_test_summary("An ephemeral subscription (subscriber \"\") replays nothing stored (pending 0) and "
                       "receives the messages sent after it, with subscriber \"\" and delivery-count 1.");

        stored = send_numbered(f->conn, "live", 0, 2);
        g_assert_cmpuint(subscribe(f->conn, "live", "", NULL, 0), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 0);

        live = send_numbered(f->conn, "live", 2, 2);
        collector_wait(collector, 2);
        assert_delivered(collector_get(collector, 0), "live", "", 2, seq_at(live, 0), 1);
        assert_delivered(collector_get(collector, 1), "live", "", 3, seq_at(live, 1), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 2);
}

static void test_ephemeral_does_not_hold_messages(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) listener = fixture_connect(f);
        g_autoptr(Collector) durable = collector_new(f->conn);
        g_autoptr(Collector) ephemeral = collector_new(listener);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("An ephemeral subscription does not keep messages stored: once the only durable "
                       "subscription has acknowledged them they are deleted, although the ephemeral one "
                       "cannot acknowledge.");

        g_assert_cmpuint(subscribe(f->conn, "mixed", "d", NULL, 0), ==, 0);
        g_assert_cmpuint(subscribe(listener, "mixed", "", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "mixed", 0, 2);

        collector_wait(durable, 2);
        collector_wait(ephemeral, 2);
        for (guint i = 0; i < 2; i++) {
                assert_delivered(collector_get(durable, i), "mixed", "d", i, seq_at(seqs, i), 1);
                assert_delivered(collector_get(ephemeral, i), "mixed", "", i, seq_at(seqs, i), 1);
        }

        g_assert_cmpuint(ack_collected(f->conn, "mixed", "d", durable, 0, 2), ==, 2);
        g_assert_cmpuint(stored_messages(f->conn, "mixed"), ==, 0);
}

static void test_ephemeral_alone_keeps_messages_for_first_durable(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) listener = fixture_connect(f);
        g_autoptr(Collector) ephemeral = collector_new(listener);
        g_autoptr(Collector) durable = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("An ephemeral subscription is not a durable one: while an endpoint has no durable "
                       "subscription its messages stay stored, and the first durable Subscribe gets them all.");

        g_assert_cmpuint(subscribe(listener, "early", "", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "early", 0, 2);
        collector_wait(ephemeral, 2);
        g_assert_cmpuint(stored_messages(f->conn, "early"), ==, 2);

        g_assert_cmpuint(subscribe(f->conn, "early", "first", NULL, 0), ==, 2);
        collector_wait(durable, 2);
        assert_delivered(collector_get(durable, 0), "early", "first", 0, seq_at(seqs, 0), 1);
        assert_delivered(collector_get(durable, 1), "early", "first", 1, seq_at(seqs, 1), 1);
}

static void test_ephemeral_gone_after_unsubscribe(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;

        g_test_summary("Unsubscribe(\"\") ends the ephemeral subscription: no message reaches it any more and a "
                       "second Unsubscribe(\"\") fails with NotSubscribed.");

        g_assert_cmpuint(subscribe(f->conn, "brief", "", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "brief", 0, 1);
        collector_wait(collector, 1);
        assert_delivered(collector_get(collector, 0), "brief", "", 0, seq_at(seqs, 0), 1);

        unsubscribe(f->conn, "brief", "", FALSE);
        later = send_numbered(f->conn, "brief", 1, 2);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);

        unsubscribe_fails(f->conn, "brief", "", NOT_SUBSCRIBED);
}

/* ---- Unsubscribe ---- */

static void test_unsubscribe_stops_delivery(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;

        g_test_summary("After Unsubscribe no message reaches the connection; the durable subscription keeps "
                       "waiting for its messages, and the next Subscribe replays the unacknowledged ones.");

        g_assert_cmpuint(subscribe(f->conn, "pause", "u", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "pause", 0, 1);
        collector_wait(collector, 1);

        unsubscribe(f->conn, "pause", "u", FALSE);
        later = send_numbered(f->conn, "pause", 1, 2);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);
        g_assert_cmpuint(stored_messages(f->conn, "pause"), ==, 3);

        g_assert_cmpuint(subscribe(f->conn, "pause", "u", NULL, 0), ==, 3);
        collector_wait(collector, 4);
        assert_delivered(collector_get(collector, 1), "pause", "u", 0, seq_at(seqs, 0), 2);
        assert_delivered(collector_get(collector, 2), "pause", "u", 1, seq_at(later, 0), 1);
        assert_delivered(collector_get(collector, 3), "pause", "u", 2, seq_at(later, 1), 1);
}

static void test_unsubscribe_forget_deletes_subscription(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(Collector) keeper = collector_new(other);
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;

        g_test_summary("Unsubscribe with forget=true deletes the durable subscription: messages only it was "
                       "waiting for are deleted, and a new Subscribe of that name with start=all is a new "
                       "subscription that gets only what is stored, as first deliveries.");

        g_assert_cmpuint(subscribe(other, "forgetful", "keeper", NULL, 0), ==, 0);
        g_assert_cmpuint(subscribe(f->conn, "forgetful", "f", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "forgetful", 0, 3);
        collector_wait(keeper, 3);
        collector_wait(collector, 3);

        g_assert_cmpuint(ack_collected(other, "forgetful", "keeper", keeper, 0, 3), ==, 3);
        g_assert_cmpuint(stored_messages(f->conn, "forgetful"), ==, 3);

        unsubscribe(f->conn, "forgetful", "f", TRUE);
        g_assert_cmpuint(stored_messages(f->conn, "forgetful"), ==, 0);

        later = send_numbered(f->conn, "forgetful", 3, 1);
        collector_wait(keeper, 4);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 3);

        g_assert_cmpuint(subscribe(f->conn, "forgetful", "f", "all", 0), ==, 1);
        collector_wait(collector, 4);
        assert_delivered(collector_get(collector, 3), "forgetful", "f", 3, seq_at(later, 0), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 4);
}

static void test_unsubscribe_forget_last_keeps_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Forgetting the last durable subscription keeps the messages stored for a future "
                       "subscriber; subscribing with the same name again is a new subscription, so the "
                       "replay counts as first delivery.");

        g_assert_cmpuint(subscribe(f->conn, "solo", "only", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "solo", 0, 2);
        collector_wait(collector, 2);

        unsubscribe(f->conn, "solo", "only", TRUE);
        g_assert_cmpuint(stored_messages(f->conn, "solo"), ==, 2);

        g_assert_cmpuint(subscribe(f->conn, "solo", "only", NULL, 0), ==, 2);
        collector_wait(collector, 4);
        assert_delivered(collector_get(collector, 2), "solo", "only", 0, seq_at(seqs, 0), 1);
        assert_delivered(collector_get(collector, 3), "solo", "only", 1, seq_at(seqs, 1), 1);
}

/* ---- ClearAll ---- */

static void test_clear_all(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;

        g_test_summary("ClearAll deletes every stored message and returns how many; the subscription stays, "
                       "has nothing pending, and receives the messages sent afterwards.");

        g_assert_cmpuint(subscribe(f->conn, "wipe", "w", NULL, 0), ==, 0);
        seqs = send_numbered(f->conn, "wipe", 0, 5);
        collector_wait(collector, 5);

        g_assert_cmpuint(clear_all(f->conn, "wipe"), ==, 5);
        g_assert_cmpuint(stored_messages(f->conn, "wipe"), ==, 0);
        g_assert_cmpuint(clear_all(f->conn, "wipe"), ==, 0);

        later = send_numbered(f->conn, "wipe", 5, 1);
        g_assert_cmpuint(seq_at(later, 0), >, seq_at(seqs, 4));
        collector_wait(collector, 6);
        assert_delivered(collector_get(collector, 5), "wipe", "w", 5, seq_at(later, 0), 1);
        g_assert_cmpuint(ack_collected(f->conn, "wipe", "w", collector, 5, 6), ==, 1);

        /* The subscription is still there and has nothing to replay. */
        g_assert_cmpuint(subscribe(f->conn, "wipe", "w", NULL, 0), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 6);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/delivery/replay/stored-messages-come-first-in-order-then-live-ones", test_replay_stored_then_live);
        ADD("/delivery/start-new/receives-only-messages-sent-after-subscribing",
            test_start_new_gets_only_later_messages);
        ADD("/delivery/start-new/first-subscription-drops-what-nobody-will-receive",
            test_start_new_drops_unreachable_messages);
        ADD("/delivery/unicast/other-connections-receive-nothing", test_unicast_other_connections_see_nothing);
        ADD("/delivery/retention/two-subscriptions-get-everything-and-both-must-ack",
            test_two_subscriptions_retention);
        ADD("/delivery/at-least-once/unacked-come-again-to-the-next-connection",
            test_unacked_redelivered_to_new_connection);
        ADD("/delivery/at-least-once/resubscribe-restarts-the-replay", test_resubscribe_restarts_replay);
        ADD("/delivery/order/200-messages-arrive-in-seq-order", test_order_200_messages);
        ADD("/delivery/order/seq-continues-after-restart", test_order_seq_continues_after_restart);
        ADD("/delivery/flow-control/window-5-lets-5-through-and-more-per-ack", test_window_limits_in_flight);
        ADD("/delivery/flow-control/default-window-is-1000", test_default_window_is_1000);
        ADD("/delivery/ack/returns-newly-acked-count", test_ack_counts_newly_acked);
        ADD("/delivery/ephemeral/gets-live-messages-only", test_ephemeral_gets_live_messages_only);
        ADD("/delivery/ephemeral/does-not-keep-messages-stored", test_ephemeral_does_not_hold_messages);
        ADD("/delivery/ephemeral/alone-leaves-messages-for-the-first-durable-subscriber",
            test_ephemeral_alone_keeps_messages_for_first_durable);
        ADD("/delivery/ephemeral/gone-after-unsubscribe", test_ephemeral_gone_after_unsubscribe);
        ADD("/delivery/unsubscribe/stops-delivery-and-keeps-messages", test_unsubscribe_stops_delivery);
        ADD("/delivery/unsubscribe/forget-deletes-the-subscription", test_unsubscribe_forget_deletes_subscription);
        ADD("/delivery/unsubscribe/forget-of-the-last-subscription-keeps-messages",
            test_unsubscribe_forget_last_keeps_messages);
        ADD("/delivery/clear-all/removes-every-message-and-subscriptions-stay", test_clear_all);
#undef ADD

        return g_test_run();
}
