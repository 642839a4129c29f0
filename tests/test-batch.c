/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of batching (issue 6): SendBatch, which stores many
 * messages with one sync and one reply, all or nothing, and the Subscribe
 * option "batch", which delivers up to that many messages per Messages
 * signal under the rules of Message signals: order, window, redelivery and
 * acknowledgement.
 *
 * Like every integration test these run against a private dbus-daemon that
 * starts the built durabusd through activation, and never sleep: the
 * collector's barrier (collector_sync()) proves that nothing more came.
 */

#include "fixture.h"

#include <signal.h>

/* The contract's limit of messages in one SendBatch. */
#define SEND_BATCH_MAX 10000u

/* ---- Helpers ---------------------------------------------------------- */

/* The SendBatch arguments of the numbered messages [first, first + n). */
static GVariant *numbered_batch(guint first, guint n) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ssa{sv})"));
        for (guint i = first; i < first + n; i++) {
                g_autofree char *id = fixture_message_id(i);
                g_autofree char *payload = fixture_message_payload(i);

                g_variant_builder_add(&b, "(ssa{sv})", id, payload, NULL);
        }
        return g_variant_new("(a(ssa{sv}))", &b);
}

/* SendBatch(args) on endpoint; returns the a(st) results, which the caller
 * unrefs. */
static GVariant *send_batch(GDBusConnection *c, const char *endpoint, GVariant *args) {
        g_autoptr(GVariant) reply = fixture_endpoint_call_ok(c, endpoint, "SendBatch", args, "(a(st))");

        return g_variant_get_child_value(reply, 0);
}

/* The seq of result i. */
static guint64 result_seq(GVariant *results, guint i) {
        guint64 seq;

        g_assert_cmpuint(i, <, g_variant_n_children(results));
        g_variant_get_child(results, i, "(&st)", NULL, &seq);
        return seq;
}

/* Subscribe(subscriber, {batch, window}) from c; window 0 leaves it out.
 * Returns pending. */
static guint64 subscribe_batched(GDBusConnection *c, const char *endpoint, const char *subscriber, guint32 batch,
                                 guint32 window) {
        g_autoptr(GVariant) reply = NULL;
        GVariantBuilder options;
        guint64 pending;

        g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&options, "{sv}", "batch", g_variant_new_uint32(batch));
        if (window > 0)
                g_variant_builder_add(&options, "{sv}", "window", g_variant_new_uint32(window));
        reply = fixture_endpoint_call_ok(c, endpoint, "Subscribe", g_variant_new("(sa{sv})", subscriber, &options),
                                         "(t)");
        g_variant_get(reply, "(t)", &pending);
        return pending;
}

/* The seq that results give the numbered message number. */
static guint64 seq_of(GVariant *results, guint number) {
        g_autofree char *id = fixture_message_id(number);

        for (gsize i = 0; i < g_variant_n_children(results); i++) {
                const char *got;
                guint64 seq;

                g_variant_get_child(results, i, "(&st)", &got, &seq);
                if (g_str_equal(got, id))
                        return seq;
        }
        g_error("No result for message %s", id);
}

/* Fails the test unless the collected messages [from, from + n) are the
 * numbered messages [first, first + n) in order, with their seqs in
 * results, to subscriber of app.jobs for the count-th time. */
static void assert_collected(Collector *collector, guint from, guint n, const char *subscriber, guint first,
                             GVariant *results, guint32 count) {
        for (guint i = 0; i < n; i++)
                fixture_assert_delivered(collector_get(collector, from + i), "app.jobs", subscriber, first + i,
                                         seq_of(results, first + i), count);
}

/* The number of collected messages that came in Messages signal no. */
static guint signal_size(Collector *collector, guint no) {
        guint n = 0;

        for (guint i = 0; i < collector->messages->len; i++)
                n += collector_get(collector, i)->signal_no == no;
        return n;
}

/* ---- SendBatch -------------------------------------------------------- */

static void test_send_batch_stores_in_order(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) results = NULL;
        guint64 before;

        g_test_summary("SendBatch of 50 numbered messages replies with their ids and consecutive seqs in "
                       "order, after a Send; all are stored and replayed in that order, like Sends.");

        before = fixture_send(f->conn, "app.jobs", "first", "{}", NULL);
        results = send_batch(f->conn, "app.jobs", numbered_batch(0, 50));
        g_assert_cmpuint(g_variant_n_children(results), ==, 50);
        for (guint i = 0; i < 50; i++) {
                g_autofree char *id = fixture_message_id(i);
                const char *got;
                guint64 seq;

                g_variant_get_child(results, i, "(&st)", &got, &seq);
                g_assert_cmpstr(got, ==, id);
                g_assert_cmpuint(seq, ==, before + 1 + i);
        }
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 51);

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "reader"), ==, 51);
        collector_wait(collector, 51);
        assert_collected(collector, 1, 50, "reader", 0, results, 1);
}

static void test_send_batch_generated_and_known_ids(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) results = NULL;
        const char *generated, *id;
        guint64 stored, seq;

        g_test_summary("In a batch an empty id gets a generated one, an id stored already gets the stored "
                       "message's seq and is not stored again, and so does an id that an earlier message of "
                       "the same batch has.");

        stored = fixture_send(f->conn, "app.jobs", "known", "{}", NULL);
        results = send_batch(f->conn, "app.jobs",
                             g_variant_new_parsed("([('', 'a', @a{sv} {}), ('known', 'b', {}), ('twice', 'c', {}),"
                                                  "  ('twice', 'd', {})],)"));
        g_assert_cmpuint(g_variant_n_children(results), ==, 4);

        g_variant_get_child(results, 0, "(&st)", &generated, &seq);
        g_assert_cmpuint(strlen(generated), ==, 32);
        g_assert_cmpuint(seq, ==, stored + 1);
        g_variant_get_child(results, 1, "(&st)", &id, &seq);
        g_assert_cmpstr(id, ==, "known");
        g_assert_cmpuint(seq, ==, stored);
        g_assert_cmpuint(result_seq(results, 2), ==, stored + 2);
        g_assert_cmpuint(result_seq(results, 3), ==, stored + 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
}

static void test_send_batch_empty(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) results = NULL;

        g_test_summary("An empty SendBatch replies with no results and stores nothing.");

        results = send_batch(f->conn, "app.jobs", g_variant_new_parsed("(@a(ssa{sv}) [],)"));
        g_assert_cmpuint(g_variant_n_children(results), ==, 0);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
}

/* A batch with one bad message and what its error must say; test data, so
 * it starts with the FixtureOptions that fixture_setup() reads. */
typedef struct BadBatch {
        FixtureOptions options;
        const char *name;
        const char *batch;      /* GVariant text of the arguments */
        const char *error;
        const char *needle;
} BadBatch;

/* An id of 256 bytes, one over the limit. */
#define ID_16 "0123456789abcdef"
#define ID_TOO_LONG ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16 ID_16

static const BadBatch bad_batches[] = {
        { {}, "invalid-id", "([('a', '1', @a{sv} {}), ('b', '2', {}), ('" ID_TOO_LONG "', '3', {})],)",
          ERROR_INVALID_ARGS, "Message 2 of the batch: Invalid message id '" ID_TOO_LONG "': 256 bytes" },
        { {}, "option-type", "([('a', '1', @a{sv} {}), ('b', '2', {'ttl-ms': <'soon'>})],)", ERROR_INVALID_ARGS,
          "Message 1 of the batch: Option 'ttl-ms' must be of type 't'" },
};

static void test_send_batch_refuses_a_bad_message(Fixture *f, gconstpointer data) {
        const BadBatch *bad = data;
        g_autoptr(GError) error = NULL;

        g_test_summary("A batch with an invalid message is refused whole, with the error Send would give "
                       "for it, naming its place in the batch, and stores none of its messages.");

        fixture_send(f->conn, "app.jobs", "kept", "{}", NULL);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "SendBatch", g_variant_new_parsed(bad->batch));
        fixture_assert_dbus_error(error, bad->error, bad->needle);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
}

static void test_send_batch_payload_over_limit(Fixture *f, gconstpointer data) {
        g_autofree char *big = g_strnfill(1024 * 1024 + 1, 'x');
        g_autoptr(GError) error = NULL;

        g_test_summary("A batch whose third message has a payload over the 1 MiB limit is refused with "
                       "LimitsExceeded naming that message, and stores nothing.");

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "SendBatch",
                                            g_variant_new_parsed("([('a', '1', @a{sv} {}), ('b', '2', {}), "
                                                                 "  ('c', %s, {})],)",
                                                                 big));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "Message 2 of the batch: Payload of 1048577 bytes");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
}

static void test_send_batch_over_endpoint_limit(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) results = NULL;
        g_autoptr(GError) error = NULL;

        g_test_summary("With max-stored-messages=5 and 3 stored, a batch of 3 is refused with LimitsExceeded "
                       "naming its last message and the limit: its first two messages, stored on the way, "
                       "are taken back, never delivered, and a batch of 2 then fits.");

        fixture_write_config("[Broker]\nmax-stored-messages=5\n");
        fixture_send_numbered(f->conn, "app.jobs", 0, 3);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "reader"), ==, 3);

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "SendBatch", numbered_batch(3, 3));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "Message 2 of the batch: Endpoint 'app.jobs' is full");
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "max-stored-messages");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);

        collector_wait(collector, 3);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 3);

        results = send_batch(f->conn, "app.jobs", numbered_batch(3, 2));
        collector_wait(collector, 5);
        assert_collected(collector, 3, 2, "reader", 3, results, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 5);
}

static void test_send_batch_refused_discards_nothing(Fixture *f, gconstpointer data) {
        g_autofree char *big = g_strnfill(1200, 'x');
        g_autoptr(GError) error = NULL;

        g_test_summary("On an endpoint set to discard=oldest, a batch whose last message is larger than "
                       "max-stored-bytes is refused before anything is stored, so its first messages do not "
                       "discard the three stored ones.");

        fixture_write_config("[Broker]\nmax-stored-messages=3\nmax-stored-bytes=1000\n\n"
                             "[Endpoint app.jobs]\ndiscard=oldest\n");
        fixture_send_numbered(f->conn, "app.jobs", 0, 3);

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "SendBatch",
                                            g_variant_new_parsed("([('n1', '1', @a{sv} {}), ('n2', '2', {}), "
                                                                 "  ('n3', %s, {})],)",
                                                                 big));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "Message 2 of the batch: Message of 1202 bytes");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "DiscardedMessages"), ==, 0);
}

static void test_send_batch_id_once_despite_discards(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) results = NULL;

        g_test_summary("On an endpoint set to discard=oldest with room for 3, a batch d1 d2 d3 d4 d1 stores "
                       "d1 once: its second mention gets the first one's seq, although d4 discarded it.");

        fixture_write_config("[Broker]\nmax-stored-messages=3\n\n[Endpoint app.jobs]\ndiscard=oldest\n");
        results = send_batch(f->conn, "app.jobs",
                             g_variant_new_parsed("([('d1', '1', @a{sv} {}), ('d2', '2', {}), ('d3', '3', {}),"
                                                  "  ('d4', '4', {}), ('d1', '5', {})],)"));
        g_assert_cmpuint(result_seq(results, 4), ==, result_seq(results, 0));
        g_assert_cmpuint(result_seq(results, 3), ==, result_seq(results, 0) + 3);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "DiscardedMessages"), ==, 1);
}

static void test_send_batch_too_many(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) results = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *limit = g_strdup_printf("more than %u messages", SEND_BATCH_MAX);

        g_test_summary("A batch of 10000 messages is stored; one of 10001 is refused with LimitsExceeded "
                       "naming the limit and stores nothing.");

        results = send_batch(f->conn, "app.jobs", numbered_batch(0, SEND_BATCH_MAX));
        g_assert_cmpuint(g_variant_n_children(results), ==, SEND_BATCH_MAX);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, SEND_BATCH_MAX);

        error = fixture_endpoint_call_error(f->conn, "app.jobs", "SendBatch",
                                            numbered_batch(SEND_BATCH_MAX, SEND_BATCH_MAX + 1));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, limit);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, SEND_BATCH_MAX);
}

static void test_send_batch_survives_kill(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) results = NULL;

        g_test_summary("Once SendBatch replied, its messages survive SIGKILL of the service: all 200 are "
                       "replayed, in order, after the restart.");

        results = send_batch(f->conn, "app.jobs", numbered_batch(0, 200));
        fixture_kill_service(f, SIGKILL);

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "reader"), ==, 200);
        collector_wait(collector, 200);
        assert_collected(collector, 0, 200, "reader", 0, results, 1);
}

/* ---- The Subscribe option "batch" ------------------------------------- */

static void test_batch_delivers_in_messages_signals(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) results = NULL;

        g_test_summary("With batch=10, a replay of 25 stored messages comes in Messages signals only, "
                       "none over 10 messages, in seq order, each message once, with delivery-count 1.");

        results = send_batch(f->conn, "app.jobs", numbered_batch(0, 25));
        g_assert_cmpuint(subscribe_batched(f->conn, "app.jobs", "reader", 10, 0), ==, 25);
        collector_wait(collector, 25);
        collector_sync(collector);

        g_assert_cmpuint(collector->messages->len, ==, 25);
        assert_collected(collector, 0, 25, "reader", 0, results, 1);
        g_assert_cmpuint(collector->n_batches, >=, 3);
        for (guint no = 1; no <= collector->n_batches; no++)
                g_assert_cmpuint(signal_size(collector, no), <=, 10);
        g_assert_cmpuint(signal_size(collector, 0), ==, 0);
}

static void test_batch_live_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) results = NULL;
        g_autoptr(GArray) seqs = NULL;

        g_test_summary("Live messages to a batch subscription come as Messages signals too: a Send as one "
                       "of one message, a SendBatch of 30 in signals of up to 8.");

        g_assert_cmpuint(subscribe_batched(f->conn, "app.jobs", "reader", 8, 0), ==, 0);
        seqs = fixture_send_numbered(f->conn, "app.jobs", 0, 1);
        collector_wait(collector, 1);
        fixture_assert_delivered(collector_get(collector, 0), "app.jobs", "reader", 0, fixture_seq_at(seqs, 0), 1);
        g_assert_cmpuint(collector_get(collector, 0)->signal_no, ==, 1);

        results = send_batch(f->conn, "app.jobs", numbered_batch(1, 30));
        collector_wait(collector, 31);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 31);
        assert_collected(collector, 1, 30, "reader", 1, results, 1);
        for (guint no = 1; no <= collector->n_batches; no++)
                g_assert_cmpuint(signal_size(collector, no), <=, 8);
}

static void test_batch_within_window(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) results = NULL;

        g_test_summary("With window=7 and batch=5, 20 stored messages come 7 at a time: nothing more until "
                       "they are acknowledged, then the next 7, in order.");

        results = send_batch(f->conn, "app.jobs", numbered_batch(0, 20));
        g_assert_cmpuint(subscribe_batched(f->conn, "app.jobs", "reader", 5, 7), ==, 20);
        collector_wait(collector, 7);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 7);
        assert_collected(collector, 0, 7, "reader", 0, results, 1);

        g_assert_cmpuint(fixture_ack_collected(f->conn, "app.jobs", "reader", collector, 0, 7), ==, 7);
        collector_wait(collector, 14);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 14);
        assert_collected(collector, 7, 7, "reader", 7, results, 1);
}

static void test_batch_redelivery_and_acks(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) first = fixture_connect(f);
        g_autoptr(GDBusConnection) second = fixture_connect(f);
        g_autoptr(GDBusConnection) third = fixture_connect(f);
        g_autoptr(Collector) collected_first = collector_new(first);
        g_autoptr(Collector) collected_second = collector_new(second);
        g_autoptr(Collector) collected_third = collector_new(third);
        g_autoptr(GVariant) results = NULL;

        g_test_summary("Messages delivered in batches and not acknowledged come again, in batches, with "
                       "delivery-count 2 to the next connection of the subscription; once acknowledged "
                       "they never come again and are deleted.");

        results = send_batch(f->conn, "app.jobs", numbered_batch(0, 12));
        g_assert_cmpuint(subscribe_batched(first, "app.jobs", "reader", 4, 0), ==, 12);
        collector_wait(collected_first, 12);
        g_assert_cmpuint(fixture_ack_collected(first, "app.jobs", "reader", collected_first, 0, 5), ==, 5);
        fixture_close_connection(f, first);

        g_assert_cmpuint(subscribe_batched(second, "app.jobs", "reader", 4, 0), ==, 7);
        collector_wait(collected_second, 7);
        collector_sync(collected_second);
        g_assert_cmpuint(collected_second->messages->len, ==, 7);
        assert_collected(collected_second, 0, 7, "reader", 5, results, 2);
        g_assert_cmpuint(signal_size(collected_second, 0), ==, 0);
        g_assert_cmpuint(fixture_ack_collected(second, "app.jobs", "reader", collected_second, 0, 7), ==, 7);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
        fixture_close_connection(f, second);

        g_assert_cmpuint(subscribe_batched(third, "app.jobs", "reader", 4, 0), ==, 0);
        collector_sync(collected_third);
        g_assert_cmpuint(collected_third->messages->len, ==, 0);
}

static void test_batch_bounded_in_bytes(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autofree char *payload = g_strnfill(400 * 1024, 'p');
        guint64 bytes = 0;

        g_test_summary("With batch=100, five messages of 400 KiB do not come in one signal: a Messages "
                       "signal stops once its payloads reach 1 MiB, so none carries more than 1 MiB and "
                       "one message.");

        for (guint i = 0; i < 5; i++) {
                g_autofree char *id = fixture_message_id(i);
                fixture_send(f->conn, "app.jobs", id, payload, NULL);
        }
        g_assert_cmpuint(subscribe_batched(f->conn, "app.jobs", "reader", 100, 0), ==, 5);
        collector_wait(collector, 5);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 5);
        g_assert_cmpuint(collector->n_batches, >=, 2);
        for (guint no = 1; no <= collector->n_batches; no++) {
                bytes = (guint64) signal_size(collector, no) * strlen(payload);
                g_assert_cmpuint(bytes, <, 1024 * 1024 + strlen(payload));
        }
        for (guint i = 0; i < 5; i++)
                g_assert_cmpstr(collector_get(collector, i)->payload, ==, payload);
}

static void test_batch_one_is_message_signals(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);

        g_test_summary("Subscribing again with batch=1 (the default) switches the subscription back to one "
                       "Message signal per message.");

        fixture_send_numbered(f->conn, "app.jobs", 0, 4);
        g_assert_cmpuint(subscribe_batched(f->conn, "app.jobs", "reader", 3, 0), ==, 4);
        collector_wait(collector, 4);
        g_assert_cmpuint(signal_size(collector, 0), ==, 0);

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "reader"), ==, 4);
        collector_wait(collector, 8);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 8);
        for (guint i = 4; i < 8; i++)
                g_assert_cmpuint(collector_get(collector, i)->signal_no, ==, 0);
}

static void test_batch_option_checked(Fixture *f, gconstpointer data) {
        const char *bad[] = { "{'batch': <uint32 0>}", "{'batch': <uint32 1001>}", "{'batch': <'10'>}" };
        const char *needles[] = { "Invalid value 0 of option 'batch': expected 1 to 1000",
                                  "Invalid value 1001 of option 'batch': expected 1 to 1000",
                                  "Option 'batch' must be of type 'u'" };

        g_test_summary("Subscribe refuses batch 0, batch 1001 and a batch that is not a u with InvalidArgs "
                       "naming the value, and attaches nothing.");

        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *args = g_strdup_printf("('reader', %s)", bad[i]);
                g_autoptr(GError) error = NULL;

                error = fixture_endpoint_call_error(f->conn, "app.jobs", "Subscribe", g_variant_new_parsed(args));
                fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, needles[i]);
        }
        g_assert_cmpuint(subscribe_batched(f->conn, "app.jobs", "reader", 1000, 0), ==, 0);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

        g_test_add("/batch/send/stores-in-order", Fixture, NULL, fixture_setup, test_send_batch_stores_in_order,
                   fixture_teardown);
        g_test_add("/batch/send/generated-and-known-ids", Fixture, NULL, fixture_setup,
                   test_send_batch_generated_and_known_ids, fixture_teardown);
        g_test_add("/batch/send/empty", Fixture, NULL, fixture_setup, test_send_batch_empty, fixture_teardown);
        for (gsize i = 0; i < G_N_ELEMENTS(bad_batches); i++) {
                g_autofree char *path = g_strdup_printf("/batch/send/refused-whole/%s", bad_batches[i].name);

                g_test_add(path, Fixture, &bad_batches[i], fixture_setup, test_send_batch_refuses_a_bad_message,
                           fixture_teardown);
        }
        g_test_add("/batch/send/payload-over-limit", Fixture, NULL, fixture_setup,
                   test_send_batch_payload_over_limit, fixture_teardown);
        g_test_add("/batch/send/over-endpoint-limit-takes-back", Fixture, NULL, fixture_setup,
                   test_send_batch_over_endpoint_limit, fixture_teardown);
        g_test_add("/batch/send/refused-discards-nothing", Fixture, NULL, fixture_setup,
                   test_send_batch_refused_discards_nothing, fixture_teardown);
        g_test_add("/batch/send/id-once-despite-discards", Fixture, NULL, fixture_setup,
                   test_send_batch_id_once_despite_discards, fixture_teardown);
        g_test_add("/batch/send/too-many", Fixture, NULL, fixture_setup, test_send_batch_too_many,
                   fixture_teardown);
        g_test_add("/batch/send/survives-kill", Fixture, NULL, fixture_setup, test_send_batch_survives_kill,
                   fixture_teardown);
        g_test_add("/batch/deliver/messages-signals", Fixture, NULL, fixture_setup,
                   test_batch_delivers_in_messages_signals, fixture_teardown);
        g_test_add("/batch/deliver/live", Fixture, NULL, fixture_setup, test_batch_live_messages, fixture_teardown);
        g_test_add("/batch/deliver/within-window", Fixture, NULL, fixture_setup, test_batch_within_window,
                   fixture_teardown);
        g_test_add("/batch/deliver/redelivery-and-acks", Fixture, NULL, fixture_setup,
                   test_batch_redelivery_and_acks, fixture_teardown);
        g_test_add("/batch/deliver/bounded-in-bytes", Fixture, NULL, fixture_setup, test_batch_bounded_in_bytes,
                   fixture_teardown);
        g_test_add("/batch/deliver/batch-one-is-message-signals", Fixture, NULL, fixture_setup,
                   test_batch_one_is_message_signals, fixture_teardown);
        g_test_add("/batch/deliver/option-checked", Fixture, NULL, fixture_setup, test_batch_option_checked,
                   fixture_teardown);

        return g_test_run();
}
