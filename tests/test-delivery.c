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
        stored = fixture_send_numbered(f->conn, "app.jobs", 0, 5);
        after = g_get_real_time();

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "reader"), ==, 5);
        collector_wait(collector, 5);
        for (guint i = 0; i < 5; i++) {
                const Delivered *d = collector_get(collector, i);

                fixture_assert_delivered(d, "app.jobs", "reader", i, fixture_seq_at(stored, i), 1);
                g_assert_cmpuint(d->timestamp, >=, (guint64) before);
                g_assert_cmpuint(d->timestamp, <=, (guint64) after);
        }

        live = fixture_send_numbered(f->conn, "app.jobs", 5, 2);
        collector_wait(collector, 7);
        for (guint i = 0; i < 2; i++)
                fixture_assert_delivered(collector_get(collector, 5 + i), "app.jobs", "reader", 5 + i,
                                         fixture_seq_at(live, i), 1);
        g_assert_cmpuint(fixture_seq_at(live, 0), >, fixture_seq_at(stored, 4));

        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 7);
}

static void test_start_new_gets_only_later_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) before = NULL;
        g_autoptr(GArray) after = NULL;

        g_test_summary("A subscription created with start=new has pending 0, is replayed nothing that was stored "
                       "before it, and receives the messages sent after it was created.");

        before = fixture_send_numbered(f->conn, "news", 0, 3);
        g_assert_cmpuint(fixture_subscribe_with(f->conn, "news", "late", "new", 0), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 0);

        after = fixture_send_numbered(f->conn, "news", 3, 2);
        collector_wait(collector, 2);
        fixture_assert_delivered(collector_get(collector, 0), "news", "late", 3, fixture_seq_at(after, 0), 1);
        fixture_assert_delivered(collector_get(collector, 1), "news", "late", 4, fixture_seq_at(after, 1), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 2);
}

static void test_start_new_drops_unreachable_messages(Fixture *f, gconstpointer data) {
        g_autoptr(GArray) before = NULL;
        g_autoptr(GArray) after = NULL;

        g_test_summary("When the first durable subscription of an endpoint is created with start=new, the "
                       "messages stored before it can never be delivered to anyone and are deleted "
                       "(notes/semantics.md).");

        before = fixture_send_numbered(f->conn, "news", 0, 3);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "news"), ==, 3);
        g_assert_cmpuint(fixture_subscribe_with(f->conn, "news", "late", "new", 0), ==, 0);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "news"), ==, 0);

        after = fixture_send_numbered(f->conn, "news", 3, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "news"), ==, 1);
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

        stored = fixture_send_numbered(other, "chat", 0, 2);
        g_assert_cmpuint(fixture_subscribe(f->conn, "chat", "mine"), ==, 2);
        live = fixture_send_numbered(other, "chat", 2, 2);

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

        g_assert_cmpuint(fixture_subscribe(f->conn, "feed", "one"), ==, 0);
        g_assert_cmpuint(fixture_subscribe(second, "feed", "two"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "feed", 0, 3);

        collector_wait(one, 3);
        collector_wait(two, 3);
        for (guint i = 0; i < 3; i++) {
                fixture_assert_delivered(collector_get(one, i), "feed", "one", i, fixture_seq_at(seqs, i), 1);
                fixture_assert_delivered(collector_get(two, i), "feed", "two", i, fixture_seq_at(seqs, i), 1);
        }
        g_assert_cmpuint(fixture_stored_messages(f->conn, "feed"), ==, 3);

        /* "one" acknowledges all: "two" still waits for them. */
        g_assert_cmpuint(fixture_ack_collected(f->conn, "feed", "one", one, 0, 3), ==, 3);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "feed"), ==, 3);

        /* "two" acknowledges the first: only that one is done. */
        g_assert_cmpuint(fixture_ack_collected(second, "feed", "two", two, 0, 1), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "feed"), ==, 2);

        g_assert_cmpuint(fixture_ack_collected(second, "feed", "two", two, 1, 3), ==, 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "feed"), ==, 0);

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

        g_assert_cmpuint(fixture_subscribe(first, "work", "worker"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "work", 0, 4);
        collector_wait(before, 4);
        for (guint i = 0; i < 4; i++)
                fixture_assert_delivered(collector_get(before, i), "work", "worker", i, fixture_seq_at(seqs, i), 1);
        g_assert_cmpuint(fixture_ack_collected(first, "work", "worker", before, 0, 2), ==, 2);

        fixture_close_connection(f, first);

        g_assert_cmpuint(fixture_subscribe(second, "work", "worker"), ==, 2);
        collector_wait(after, 2);
        fixture_assert_delivered(collector_get(after, 0), "work", "worker", 2, fixture_seq_at(seqs, 2), 2);
        fixture_assert_delivered(collector_get(after, 1), "work", "worker", 3, fixture_seq_at(seqs, 3), 2);

        /* A new message is a first delivery. */
        live = fixture_send_numbered(f->conn, "work", 4, 1);
        collector_wait(after, 3);
        fixture_assert_delivered(collector_get(after, 2), "work", "worker", 4, fixture_seq_at(live, 0), 1);

        collector_sync(after);
        g_assert_cmpuint(after->messages->len, ==, 3);
}

static void test_resubscribe_restarts_replay(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Subscribing again from the same connection restarts the replay: every unacknowledged "
                       "message comes again, in seq order, with delivery-count 2; the acknowledged one does "
                       "not.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "redo", "r"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "redo", 0, 4);
        collector_wait(collector, 4);
        for (guint i = 0; i < 4; i++)
                fixture_assert_delivered(collector_get(collector, i), "redo", "r", i, fixture_seq_at(seqs, i), 1);
        g_assert_cmpuint(fixture_ack_collected(f->conn, "redo", "r", collector, 0, 1), ==, 1);

        g_assert_cmpuint(fixture_subscribe(f->conn, "redo", "r"), ==, 3);
        collector_wait(collector, 7);
        for (guint i = 1; i < 4; i++)
                fixture_assert_delivered(collector_get(collector, 3 + i), "redo", "r", i, fixture_seq_at(seqs, i), 2);

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

        before = fixture_send_numbered(f->conn, "ordered", 0, 100);
        g_assert_cmpuint(fixture_subscribe(f->conn, "ordered", "o"), ==, 100);
        after = fixture_send_numbered(f->conn, "ordered", 100, 100);
        g_array_append_vals(before, after->data, after->len);

        for (guint i = 1; i < 200; i++)
                g_assert_cmpuint(fixture_seq_at(before, i), >, fixture_seq_at(before, i - 1));

        collector_wait(collector, 200);
        for (guint i = 0; i < 200; i++)
                fixture_assert_delivered(collector_get(collector, i), "ordered", "o", i, fixture_seq_at(before, i), 1);
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

        seqs = fixture_send_numbered(f->conn, "counted", 0, 3);
        fixture_kill_service(f, SIGTERM);
        more = fixture_send_numbered(f->conn, "counted", 3, 3);
        g_array_append_vals(seqs, more->data, more->len);

        g_assert_cmpuint(fixture_seq_at(seqs, 0), ==, 1);
        for (guint i = 1; i < 6; i++) {
                g_assert_cmpuint(fixture_seq_at(seqs, i), >, fixture_seq_at(seqs, i - 1));
                g_assert_cmpuint(fixture_seq_at(seqs, i), ==, fixture_seq_at(seqs, i - 1) + 1);
        }

        g_assert_cmpuint(fixture_subscribe(f->conn, "counted", "c"), ==, 6);
        collector_wait(collector, 6);
        for (guint i = 0; i < 6; i++)
                fixture_assert_delivered(collector_get(collector, i), "counted", "c", i, fixture_seq_at(seqs, i), 1);
}

/* ---- semantic 8: flow control ---- */

static void test_window_limits_in_flight(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("With window 5 and 20 pending messages exactly 5 are delivered; acknowledging 2 lets "
                       "exactly 2 more through, the next ones in seq order.");

        seqs = fixture_send_numbered(f->conn, "slow", 0, 20);
        g_assert_cmpuint(fixture_subscribe_with(f->conn, "slow", "s", NULL, 5), ==, 20);

        collector_wait(collector, 5);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 5);

        g_assert_cmpuint(fixture_ack_collected(f->conn, "slow", "s", collector, 0, 2), ==, 2);
        collector_wait(collector, 7);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 7);

        for (guint i = 0; i < 7; i++)
                fixture_assert_delivered(collector_get(collector, i), "slow", "s", i, fixture_seq_at(seqs, i), 1);
}

static void test_default_window_is_1000(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Without a window option at most 1000 messages are in flight: of 1500 pending messages "
                       "1000 arrive before any Ack, the other 500 once those 1000 are acknowledged.");

        seqs = fixture_send_pipelined(f->conn, "backlog", 1500, NULL);
        g_assert_cmpuint(fixture_subscribe(f->conn, "backlog", "b"), ==, 1500);

        collector_wait(collector, 1000);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1000);

        g_assert_cmpuint(fixture_ack_collected(f->conn, "backlog", "b", collector, 0, 1000), ==, 1000);
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
        g_autofree char *id0 = fixture_message_id(0);
        g_autofree char *id1 = fixture_message_id(1);
        g_autofree char *id2 = fixture_message_id(2);
        const char *first_two[] = { id0, id1, NULL };
        const char *unknown[] = { "no-such-id", NULL };
        const char *mixed[] = { id0, id2, "no-such-id", NULL };
        const char *none[] = { NULL };

        g_test_summary("Ack returns how many of the ids were acknowledged by this call: acking again gives 0, "
                       "ids the endpoint does not store count 0, an empty list 0.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "acks", "a"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "acks", 0, 3);
        collector_wait(collector, 3);

        g_assert_cmpuint(fixture_ack(f->conn, "acks", "a", first_two), ==, 2);
        g_assert_cmpuint(fixture_ack(f->conn, "acks", "a", first_two), ==, 0);
        g_assert_cmpuint(fixture_ack(f->conn, "acks", "a", unknown), ==, 0);
        g_assert_cmpuint(fixture_ack(f->conn, "acks", "a", none), ==, 0);
        g_assert_cmpuint(fixture_ack(f->conn, "acks", "a", mixed), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "acks"), ==, 0);
}

/* ---- ephemeral subscriptions ---- */

static void test_ephemeral_gets_live_messages_only(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) stored = NULL;
        g_autoptr(GArray) live = NULL;

        g_test_summary("An ephemeral subscription (subscriber \"\") replays nothing stored (pending 0) and "
                       "receives the messages sent after it, with subscriber \"\" and delivery-count 1.");

        stored = fixture_send_numbered(f->conn, "live", 0, 2);
        g_assert_cmpuint(fixture_subscribe(f->conn, "live", ""), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 0);

        live = fixture_send_numbered(f->conn, "live", 2, 2);
        collector_wait(collector, 2);
        fixture_assert_delivered(collector_get(collector, 0), "live", "", 2, fixture_seq_at(live, 0), 1);
        fixture_assert_delivered(collector_get(collector, 1), "live", "", 3, fixture_seq_at(live, 1), 1);
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

        g_assert_cmpuint(fixture_subscribe(f->conn, "mixed", "d"), ==, 0);
        g_assert_cmpuint(fixture_subscribe(listener, "mixed", ""), ==, 0);
        seqs = fixture_send_numbered(f->conn, "mixed", 0, 2);

        collector_wait(durable, 2);
        collector_wait(ephemeral, 2);
        for (guint i = 0; i < 2; i++) {
                fixture_assert_delivered(collector_get(durable, i), "mixed", "d", i, fixture_seq_at(seqs, i), 1);
                fixture_assert_delivered(collector_get(ephemeral, i), "mixed", "", i, fixture_seq_at(seqs, i), 1);
        }

        g_assert_cmpuint(fixture_ack_collected(f->conn, "mixed", "d", durable, 0, 2), ==, 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "mixed"), ==, 0);
}

static void test_ephemeral_alone_keeps_messages_for_first_durable(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) listener = fixture_connect(f);
        g_autoptr(Collector) ephemeral = collector_new(listener);
        g_autoptr(Collector) durable = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("An ephemeral subscription is not a durable one: while an endpoint has no durable "
                       "subscription its messages stay stored, and the first durable Subscribe gets them all.");

        g_assert_cmpuint(fixture_subscribe(listener, "early", ""), ==, 0);
        seqs = fixture_send_numbered(f->conn, "early", 0, 2);
        collector_wait(ephemeral, 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "early"), ==, 2);

        g_assert_cmpuint(fixture_subscribe(f->conn, "early", "first"), ==, 2);
        collector_wait(durable, 2);
        fixture_assert_delivered(collector_get(durable, 0), "early", "first", 0, fixture_seq_at(seqs, 0), 1);
        fixture_assert_delivered(collector_get(durable, 1), "early", "first", 1, fixture_seq_at(seqs, 1), 1);
}

static void test_ephemeral_gone_after_unsubscribe(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;
        g_autoptr(GError) error = NULL;

        g_test_summary("Unsubscribe(\"\") ends the ephemeral subscription: no message reaches it any more and a "
                       "second Unsubscribe(\"\") fails with NotSubscribed.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "brief", ""), ==, 0);
        seqs = fixture_send_numbered(f->conn, "brief", 0, 1);
        collector_wait(collector, 1);
        fixture_assert_delivered(collector_get(collector, 0), "brief", "", 0, fixture_seq_at(seqs, 0), 1);

        fixture_unsubscribe(f->conn, "brief", "", FALSE);
        later = fixture_send_numbered(f->conn, "brief", 1, 2);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);

        error = fixture_endpoint_call_error(f->conn, "brief", "Unsubscribe", g_variant_new("(sa{sv})", "", NULL));
        fixture_assert_dbus_error(error, ERROR_NOT_SUBSCRIBED, NULL);
}

/* ---- Unsubscribe ---- */

static void test_unsubscribe_stops_delivery(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;

        g_test_summary("After Unsubscribe no message reaches the connection; the durable subscription keeps "
                       "waiting for its messages, and the next Subscribe replays the unacknowledged ones.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "pause", "u"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "pause", 0, 1);
        collector_wait(collector, 1);

        fixture_unsubscribe(f->conn, "pause", "u", FALSE);
        later = fixture_send_numbered(f->conn, "pause", 1, 2);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "pause"), ==, 3);

        g_assert_cmpuint(fixture_subscribe(f->conn, "pause", "u"), ==, 3);
        collector_wait(collector, 4);
        fixture_assert_delivered(collector_get(collector, 1), "pause", "u", 0, fixture_seq_at(seqs, 0), 2);
        fixture_assert_delivered(collector_get(collector, 2), "pause", "u", 1, fixture_seq_at(later, 0), 1);
        fixture_assert_delivered(collector_get(collector, 3), "pause", "u", 2, fixture_seq_at(later, 1), 1);
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

        g_assert_cmpuint(fixture_subscribe(other, "forgetful", "keeper"), ==, 0);
        g_assert_cmpuint(fixture_subscribe(f->conn, "forgetful", "f"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "forgetful", 0, 3);
        collector_wait(keeper, 3);
        collector_wait(collector, 3);

        g_assert_cmpuint(fixture_ack_collected(other, "forgetful", "keeper", keeper, 0, 3), ==, 3);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "forgetful"), ==, 3);

        fixture_unsubscribe(f->conn, "forgetful", "f", TRUE);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "forgetful"), ==, 0);

        later = fixture_send_numbered(f->conn, "forgetful", 3, 1);
        collector_wait(keeper, 4);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 3);

        g_assert_cmpuint(fixture_subscribe_with(f->conn, "forgetful", "f", "all", 0), ==, 1);
        collector_wait(collector, 4);
        fixture_assert_delivered(collector_get(collector, 3), "forgetful", "f", 3, fixture_seq_at(later, 0), 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 4);
}

static void test_unsubscribe_forget_last_keeps_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Forgetting the last durable subscription keeps the messages stored for a future "
                       "subscriber; subscribing with the same name again is a new subscription, so the "
                       "replay counts as first delivery.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "solo", "only"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "solo", 0, 2);
        collector_wait(collector, 2);

        fixture_unsubscribe(f->conn, "solo", "only", TRUE);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "solo"), ==, 2);

        g_assert_cmpuint(fixture_subscribe(f->conn, "solo", "only"), ==, 2);
        collector_wait(collector, 4);
        fixture_assert_delivered(collector_get(collector, 2), "solo", "only", 0, fixture_seq_at(seqs, 0), 1);
        fixture_assert_delivered(collector_get(collector, 3), "solo", "only", 1, fixture_seq_at(seqs, 1), 1);
}

/* ---- ClearAll ---- */

static void test_clear_all(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(GArray) later = NULL;

        g_test_summary("ClearAll deletes every stored message and returns how many; the subscription stays, "
                       "has nothing pending, and receives the messages sent afterwards.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "wipe", "w"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "wipe", 0, 5);
        collector_wait(collector, 5);

        g_assert_cmpuint(fixture_clear_all(f->conn, "wipe"), ==, 5);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "wipe"), ==, 0);
        g_assert_cmpuint(fixture_clear_all(f->conn, "wipe"), ==, 0);

        later = fixture_send_numbered(f->conn, "wipe", 5, 1);
        g_assert_cmpuint(fixture_seq_at(later, 0), >, fixture_seq_at(seqs, 4));
        collector_wait(collector, 6);
        fixture_assert_delivered(collector_get(collector, 5), "wipe", "w", 5, fixture_seq_at(later, 0), 1);
        g_assert_cmpuint(fixture_ack_collected(f->conn, "wipe", "w", collector, 5, 6), ==, 1);

        /* The subscription is still there and has nothing to replay. */
        g_assert_cmpuint(fixture_subscribe(f->conn, "wipe", "w"), ==, 0);
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
