/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of durability: what survives the end of the service. An
 * orderly stop (SIGTERM) and a crash (SIGKILL) at any moment between Send
 * replies lose no message that got its reply and bring back no message that
 * was acknowledged; sends are idempotent by id; the store lives where the
 * XDG base directories (or --state-dir) say, and a restart answers without
 * reading the stored messages (semantics 1, 4, 6, 7 and 9 of the contract,
 * issue 2).
 *
 * Every test runs against a private dbus-daemon that starts the built
 * durabusd through activation (fixture.c): after the service was stopped or
 * killed, the next call starts it again. Nothing sleeps: tests iterate the
 * main context until what they wait for happened.
 */

#include "fixture.h"

#include <signal.h>
#include <string.h>

/* ---- helpers ---- */

/* The number i of an id made by fixture_message_id(); fails the test for
 * others. */
static guint message_number(const char *id) {
        guint64 n = 0;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_str_has_prefix(id, "msg-"));
        g_ascii_string_to_unsigned(id + strlen("msg-"), 10, 0, G_MAXUINT, &n, &error);
        g_assert_no_error(error);
        return (guint) n;
}

/* ---- restart with replay ---- */

static void test_restart_replays_everything(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;
        gint64 before, after;

        g_test_summary("Messages stored before the service was stopped (SIGTERM) are all replayed, in order, "
                       "by the service that the next Subscribe activates, with their original timestamps.");

        before = g_get_real_time();
        seqs = fixture_send_numbered(f->conn, "restart", 0, 5);
        after = g_get_real_time();
        fixture_kill_service(f, SIGTERM);

        g_assert_cmpuint(fixture_subscribe(f->conn, "restart", "r"), ==, 5);
        collector_wait(collector, 5);
        for (guint i = 0; i < 5; i++) {
                const Delivered *d = collector_get(collector, i);

                fixture_assert_delivered(d, "restart", "r", i, fixture_seq_at(seqs, i), 1);
                g_assert_cmpuint(d->timestamp, >=, (guint64) before);
                g_assert_cmpuint(d->timestamp, <=, (guint64) after);
        }
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 5);
}

/* Four messages delivered, two acknowledged, then the service ends by sig:
 * the restarted service replays the other two as second deliveries. */
static void check_acked_not_redelivered(Fixture *f, int sig) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = NULL;

        g_assert_cmpuint(fixture_subscribe(f->conn, "acked", "a"), ==, 0);
        seqs = fixture_send_numbered(f->conn, "acked", 0, 4);
        collector_wait(collector, 4);
        g_assert_cmpuint(fixture_ack_collected(f->conn, "acked", "a", collector, 0, 2), ==, 2);

        fixture_kill_service(f, sig);

        g_assert_cmpuint(fixture_subscribe(f->conn, "acked", "a"), ==, 2);
        collector_wait(collector, 6);
        fixture_assert_delivered(collector_get(collector, 4), "acked", "a", 2, fixture_seq_at(seqs, 2), 2);
        fixture_assert_delivered(collector_get(collector, 5), "acked", "a", 3, fixture_seq_at(seqs, 3), 2);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 6);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "acked"), ==, 2);
}

static void test_restart_acked_never_come_back(Fixture *f, gconstpointer data) {
        g_test_summary("Acknowledged messages are not delivered again after the service was stopped "
                       "(SIGTERM); the unacknowledged ones come again with delivery-count 2.");
        check_acked_not_redelivered(f, SIGTERM);
}

static void test_kill9_acked_never_come_back(Fixture *f, gconstpointer data) {
        g_test_summary("An Ack that got its reply survives kill -9 of the service: the acknowledged messages "
                       "never come again, the unacknowledged ones come with delivery-count 2.");
        check_acked_not_redelivered(f, SIGKILL);
}

/* ---- kill -9 between Send replies ---- */

static void test_kill9_between_sends_loses_nothing(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(guint64));
        const guint n = 200, kill_every = 25;

        g_test_summary("200 Sends one at a time, the service killed with SIGKILL after every 25 replies and "
                       "re-activated by the next Send: every message that got a reply is delivered exactly "
                       "once, in seq order; once acknowledged, none returns after another kill -9.");

        for (guint i = 0; i < n; i += kill_every) {
                g_autoptr(GArray) part = fixture_send_numbered(f->conn, "crash", i, kill_every);

                g_array_append_vals(seqs, part->data, part->len);
                fixture_kill_service(f, SIGKILL);
        }
        for (guint i = 1; i < n; i++)
                g_assert_cmpuint(fixture_seq_at(seqs, i), >, fixture_seq_at(seqs, i - 1));

        g_assert_cmpuint(fixture_subscribe(f->conn, "crash", "check"), ==, n);
        collector_wait(collector, n);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, n);
        for (guint i = 0; i < n; i++)
                fixture_assert_delivered(collector_get(collector, i), "crash", "check", i, fixture_seq_at(seqs, i), 1);

        g_assert_cmpuint(fixture_ack_collected(f->conn, "crash", "check", collector, 0, n), ==, n);
        fixture_kill_service(f, SIGKILL);

        g_assert_cmpuint(fixture_subscribe(f->conn, "crash", "check"), ==, 0);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, n);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "crash"), ==, 0);
}

static void test_kill9_during_pipelined_sends(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GHashTable) delivered = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_autoptr(GArray) seqs = NULL;
        const guint n = 500;
        SendBatch batch = { .kill_after = 100 };
        guint64 pending;

        g_test_summary("500 pipelined Sends (100 in flight), the service killed with SIGKILL while their "
                       "replies are arriving (at the 100th): after re-activation every Send that got a reply is delivered "
                       "once, with the seq of its reply, in seq order; the others may or may not be there.");

        /* Activate the service, so there is a PID to kill. */
        batch.kill_pid = fixture_start_service(f);

        seqs = fixture_send_pipelined(f->conn, "burst", n, &batch);
        g_assert_true(batch.killed);
        g_test_message("%u Sends got a reply, %u failed", batch.replied, batch.failed);
        g_assert_cmpuint(batch.replied + batch.failed, ==, n);
        fixture_wait_for_process_gone(batch.kill_pid);

        pending = fixture_subscribe(f->conn, "burst", "check");
        g_test_message("%" G_GUINT64_FORMAT " messages stored after the crash", pending);
        g_assert_cmpuint(pending, >=, batch.replied);
        g_assert_cmpuint(pending, <=, n);
        collector_wait(collector, (guint) pending);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, pending);

        for (guint i = 0; i < collector->messages->len; i++) {
                const Delivered *d = collector_get(collector, i);
                guint number = message_number(d->id);
                g_autofree char *payload = fixture_message_payload(number);

                g_assert_cmpuint(number, <, n);
                g_assert_cmpstr(d->payload, ==, payload);
                g_assert_cmpuint(d->delivery_count, ==, 1);
                if (i > 0)
                        g_assert_cmpuint(d->seq, >, collector_get(collector, i - 1)->seq);
                g_assert_false(g_hash_table_contains(delivered, GUINT_TO_POINTER(number)));
                g_hash_table_insert(delivered, GUINT_TO_POINTER(number), (gpointer) d);
        }

        for (guint i = 0; i < n; i++) {
                const Delivered *d;

                if (fixture_seq_at(seqs, i) == 0)
                        continue;
                d = g_hash_table_lookup(delivered, GUINT_TO_POINTER(i));
                if (!d)
                        g_error("Send of message %u got the reply seq %" G_GUINT64_FORMAT " but the message was lost",
                                i, fixture_seq_at(seqs, i));
                g_assert_cmpuint(d->seq, ==, fixture_seq_at(seqs, i));
        }
}

/* ---- idempotent send ---- */

static void test_idempotent_same_id(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autofree char *id1 = NULL;
        g_autofree char *id2 = NULL;
        g_autofree char *id3 = NULL;
        guint64 seq1, seq2, seq3, other;

        g_test_summary("A Send with an id the endpoint still stores returns the stored (id, seq) and stores "
                       "nothing: StoredMessages counts the message once and the first payload is the one "
                       "delivered.");

        seq1 = fixture_send(f->conn, "idem", "order-42", "first", &id1);
        seq2 = fixture_send(f->conn, "idem", "order-42", "second", &id2);
        other = fixture_send(f->conn, "idem", "order-43", "other", NULL);
        seq3 = fixture_send(f->conn, "idem", "order-42", "third", &id3);

        g_assert_cmpstr(id1, ==, "order-42");
        g_assert_cmpstr(id2, ==, "order-42");
        g_assert_cmpstr(id3, ==, "order-42");
        g_assert_cmpuint(seq2, ==, seq1);
        g_assert_cmpuint(seq3, ==, seq1);
        g_assert_cmpuint(other, >, seq1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "idem"), ==, 2);

        g_assert_cmpuint(fixture_subscribe(f->conn, "idem", "i"), ==, 2);
        collector_wait(collector, 2);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 2);
        g_assert_cmpstr(collector_get(collector, 0)->id, ==, "order-42");
        g_assert_cmpuint(collector_get(collector, 0)->seq, ==, seq1);
        g_assert_cmpstr(collector_get(collector, 0)->payload, ==, "first");
        g_assert_cmpstr(collector_get(collector, 1)->id, ==, "order-43");
}

static void test_idempotent_after_restart(Fixture *f, gconstpointer data) {
        g_autofree char *id = NULL;
        guint64 seq, again;

        g_test_summary("Send stays idempotent across an orderly restart (SIGTERM) and a crash (SIGKILL): the "
                       "same id returns the same seq and StoredMessages stays 1.");

        seq = fixture_send(f->conn, "idem", "order-42", "first", NULL);

        fixture_kill_service(f, SIGTERM);
        again = fixture_send(f->conn, "idem", "order-42", "after SIGTERM", &id);
        g_assert_cmpstr(id, ==, "order-42");
        g_assert_cmpuint(again, ==, seq);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "idem"), ==, 1);

        fixture_kill_service(f, SIGKILL);
        again = fixture_send(f->conn, "idem", "order-42", "after SIGKILL", NULL);
        g_assert_cmpuint(again, ==, seq);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "idem"), ==, 1);
}

static void test_idempotent_deleted_id_gets_new_seq(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        guint64 seq, reused, before_clear, after_clear;

        g_test_summary("Once the message is deleted (acknowledged by every durable subscription, or by "
                       "ClearAll) its id may be sent again and gets a new, higher seq, delivered as a new "
                       "message.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "idem", "i"), ==, 0);
        seq = fixture_send(f->conn, "idem", "order-42", "first", NULL);
        collector_wait(collector, 1);
        g_assert_cmpuint(fixture_ack_collected(f->conn, "idem", "i", collector, 0, 1), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "idem"), ==, 0);

        reused = fixture_send(f->conn, "idem", "order-42", "second", NULL);
        g_assert_cmpuint(reused, >, seq);
        collector_wait(collector, 2);
        g_assert_cmpstr(collector_get(collector, 1)->id, ==, "order-42");
        g_assert_cmpuint(collector_get(collector, 1)->seq, ==, reused);
        g_assert_cmpstr(collector_get(collector, 1)->payload, ==, "second");
        g_assert_cmpuint(collector_get(collector, 1)->delivery_count, ==, 1);

        before_clear = fixture_send(f->conn, "idem", "order-43", "before ClearAll", NULL);
        (void) fixture_clear_all(f->conn, "idem");
        after_clear = fixture_send(f->conn, "idem", "order-43", "after ClearAll", NULL);
        g_assert_cmpuint(after_clear, >, before_clear);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "idem"), ==, 1);
}

/* ---- where the store lives ---- */

static void test_store_in_xdg_state_home(Fixture *f, gconstpointer data) {
        g_autofree char *db = g_build_filename(f->state_dir, "endpoints", "app.jobs.db", NULL);

        g_test_summary("By default the store lives in $XDG_STATE_HOME/durabus: after a Send the endpoint's "
                       "database is endpoints/NAME.db there.");

        g_assert_true(g_str_has_prefix(f->state_dir, g_get_user_state_dir()));
        (void) fixture_send(f->conn, "app.jobs", "", "hello", NULL);
        g_assert_true(g_file_test(db, G_FILE_TEST_IS_REGULAR));
}

/* The --state-dir of the next test, set by its setup: a directory inside the
 * isolated ones of the test, so it goes away with them. */
static char *custom_state_dir;

static void setup_with_state_dir(Fixture *f, gconstpointer data) {
        g_autofree char *args = NULL;
        FixtureOptions options = { 0 };

        custom_state_dir = g_build_filename(g_get_user_cache_dir(), "custom-state", NULL);
        g_assert_cmpint(g_mkdir_with_parents(custom_state_dir, 0700), ==, 0);
        args = g_strdup_printf("--state-dir %s", custom_state_dir);
        options.service_args = args;
        fixture_setup(f, &options);
}

static void teardown_with_state_dir(Fixture *f, gconstpointer data) {
        fixture_teardown(f, data);
        g_clear_pointer(&custom_state_dir, g_free);
}

static void test_store_in_state_dir_option(Fixture *f, gconstpointer data) {
        g_autofree char *db = g_build_filename(custom_state_dir, "endpoints", "app.jobs.db", NULL);
        g_autofree char *default_db = g_build_filename(f->state_dir, "endpoints", "app.jobs.db", NULL);

        g_test_summary("With --state-dir DIR the endpoint's database is DIR/endpoints/NAME.db, and nothing is "
                       "written to $XDG_STATE_HOME/durabus.");

        (void) fixture_send(f->conn, "app.jobs", "", "hello", NULL);
        g_assert_true(g_file_test(db, G_FILE_TEST_IS_REGULAR));
        g_assert_false(g_file_test(default_db, G_FILE_TEST_EXISTS));
}

/* ---- startup ---- */

static void test_startup_with_large_store(Fixture *f, gconstpointer data) {
        g_autoptr(GArray) seqs = NULL;
        SendBatch batch = { 0 };
        guint64 bytes;

        g_test_summary("A service stopped with 2000 stored messages answers again after re-activation and "
                       "reports StoredMessages 2000 and the same StoredBytes (startup keeps counts instead of "
                       "reading every message; its speed is not asserted).");

        seqs = fixture_send_pipelined(f->conn, "big", 2000, &batch);
        g_assert_cmpuint(batch.replied, ==, 2000);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "big"), ==, 2000);
        bytes = fixture_endpoint_u64_property(f->conn, "big", "StoredBytes");

        fixture_kill_service(f, SIGTERM);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "big"), ==, 2000);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "big", "StoredBytes"), ==, bytes);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/durability/restart/replays-everything-stored", test_restart_replays_everything);
        ADD("/durability/restart/acked-messages-never-come-back", test_restart_acked_never_come_back);
        ADD("/durability/kill-9/acked-messages-never-come-back", test_kill9_acked_never_come_back);
        ADD("/durability/kill-9/between-sends-loses-no-replied-message", test_kill9_between_sends_loses_nothing);
        ADD("/durability/kill-9/during-pipelined-sends-loses-no-replied-message",
            test_kill9_during_pipelined_sends);
        ADD("/durability/idempotent-send/same-id-returns-the-stored-message", test_idempotent_same_id);
        ADD("/durability/idempotent-send/holds-across-restart-and-kill-9", test_idempotent_after_restart);
        ADD("/durability/idempotent-send/deleted-id-gets-a-new-seq", test_idempotent_deleted_id_gets_new_seq);
        ADD("/durability/store/lives-in-xdg-state-home", test_store_in_xdg_state_home);
        g_test_add("/durability/store/state-dir-option-moves-it", Fixture, NULL, setup_with_state_dir,
                   test_store_in_state_dir_option, teardown_with_state_dir);
        ADD("/durability/startup/answers-with-2000-stored-messages", test_startup_with_large_store);
#undef ADD

        return g_test_run();
}
