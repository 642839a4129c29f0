/* SPDX-License-Identifier: MIT */

/*
 * The load test (issue 5, item 6): 50 connections send and 10 connections
 * receive and acknowledge, all at once, over five endpoints. Each sender
 * pipelines its 200 Sends to one endpoint; each receiver holds a durable
 * subscription on one endpoint, so every endpoint has two subscriptions
 * (ENDPOINTS_PER_RECEIVER gives each receiver more, at a cost in time under
 * CI's AddressSanitizer pass: the test process reading the Message signals
 * is what takes longest there).
 * Nothing may be lost or fail (no configured limit is reached), and every
 * subscription gets its endpoint's messages exactly once, in seq order.
 *
 * The run is bounded: it fails when nothing happens for FIXTURE_TIMEOUT_MS,
 * and when it has not finished within LOAD_DEADLINE_S. Nothing sleeps.
 *
 * The bookkeeping per delivery allocates next to nothing: under CI's
 * AddressSanitizer pass every allocation unwinds the stack the slow way, and
 * this test process, not the service, would be what is measured.
 */

#include "fixture.h"

#include <string.h>

#define N_SENDERS 50
#define SENDS_PER_SENDER 200
#define N_MESSAGES (N_SENDERS * SENDS_PER_SENDER)
/* Calls each sender keeps out at once. With 100, like the other tests, the
 * service would hold 5,000 calls at once: it replies to Sends once no call
 * is waiting (group commit), and under a sanitizer or valgrind the first
 * replies would then take longer than FIXTURE_TIMEOUT_MS. */
#define SENDS_IN_FLIGHT 10
#define N_RECEIVERS 10
#define N_ENDPOINTS 5
#define ENDPOINTS_PER_RECEIVER 1
#define PER_ENDPOINT (N_MESSAGES / N_ENDPOINTS)
#define MAX_ACK_IDS 200
/* The receivers' window: what may wait to be read ahead of an Ack reply. */
#define WINDOW 100
/* Just under meson's timeout, so that a run that never ends says so. */
#define LOAD_DEADLINE_S 280

/* A subscription of a receiver, on one endpoint. */
typedef struct Subscription {
        struct Receiver *receiver;
        guint endpoint_index;
        char *endpoint;
        char *path;
        char *name;
        guint64 last_seq;
        guint delivered;
        guint64 *seqs;          /* by message number: the seq it was delivered with, 0 if not */
        GArray *to_ack;         /* guint: numbers delivered, not in an Ack call yet */
        gboolean ack_in_flight;
        guint acked;            /* ids whose Ack got its reply */
} Subscription;

typedef struct Receiver {
        struct Load *load;
        GDBusConnection *conn;
        guint signal;
        Subscription subscriptions[ENDPOINTS_PER_RECEIVER];
} Receiver;

typedef struct Load {
        GPtrArray *producers;   /* Producer *, sender k's at k */
        Receiver receivers[N_RECEIVERS];
        guint64 events;
        guint64 events_at_last_look;
        guint acks_in_flight;
} Load;

static char *endpoint_name(guint e) {
        return g_strdup_printf("load.e%u", e);
}

/* The endpoint of sender k, and of the messages it sends. */
static guint sender_endpoint(guint k) {
        return k % N_ENDPOINTS;
}

/* The number of a numbered message's id "msg-NNNN". */
static guint message_number(const char *id) {
        guint64 n;

        if (!g_str_has_prefix(id, "msg-") ||
            !g_ascii_string_to_unsigned(id + strlen("msg-"), 10, 0, N_MESSAGES - 1, &n, NULL))
                g_error("Delivered an id that no sender sent: '%s'", id);
        return (guint) n;
}

/* ---- receivers ---- */

static void flush_acks(Subscription *s);

typedef struct AckCall {
        Subscription *subscription;
        guint n;
} AckCall;

static void on_ack_reply(GObject *source, GAsyncResult *result, gpointer data) {
        g_autofree AckCall *call = data;
        Subscription *s = call->subscription;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        guint32 acked;

        s->receiver->load->events++;
        s->receiver->load->acks_in_flight--;
        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (!reply)
                g_error("Ack of %u ids by '%s' of '%s' failed: %s", call->n, s->name, s->endpoint, error->message);
        g_variant_get(reply, "(u)", &acked);
        g_assert_cmpuint(acked, ==, call->n);
        s->acked += acked;
        s->ack_in_flight = FALSE;
        flush_acks(s);
}

/* One Ack call per subscription at a time, with what it has gathered. */
static void flush_acks(Subscription *s) {
        GVariantBuilder ids;
        AckCall *call;
        guint n;

        if (s->ack_in_flight || s->to_ack->len == 0)
                return;

        n = MIN(s->to_ack->len, MAX_ACK_IDS);
        g_variant_builder_init(&ids, G_VARIANT_TYPE_STRING_ARRAY);
        for (guint i = 0; i < n; i++) {
                char id[32];

                g_snprintf(id, sizeof(id), "msg-%04u", g_array_index(s->to_ack, guint, i));
                g_variant_builder_add(&ids, "s", id);
        }
        g_array_remove_range(s->to_ack, 0, n);

        call = g_new0(AckCall, 1);
        call->subscription = s;
        call->n = n;
        s->ack_in_flight = TRUE;
        s->receiver->load->acks_in_flight++;
        /* No timeout of its own, the watchdog fails a stall: the reply
         * queues behind the receiver's Message signals, which take a
         * while to read under a sanitizer's slow unwinding. */
        g_dbus_connection_call(s->receiver->conn, DURABUS_NAME, s->path, ENDPOINT_IFACE, "Ack",
                               g_variant_new("(sas)", s->name, &ids), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, on_ack_reply, call);
}

static void on_message(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                       const char *signal, GVariant *params, gpointer data) {
        Receiver *r = data;
        g_autoptr(GVariant) meta = NULL;
        const char *subscriber, *id, *payload;
        Subscription *s = NULL;
        char expected_payload[32];
        guint32 count;
        guint64 seq;
        guint number;

        r->load->events++;
        g_variant_get(params, "(&s&st&s@a{sv})", &subscriber, &id, &seq, &payload, &meta);
        for (guint i = 0; i < ENDPOINTS_PER_RECEIVER; i++)
                if (strcmp(r->subscriptions[i].name, subscriber) == 0 && strcmp(r->subscriptions[i].path, path) == 0)
                        s = &r->subscriptions[i];
        if (!s)
                g_error("Message %s from %s for subscriber '%s', which this connection does not hold", id, path,
                        subscriber);

        /* The payload of fixture_message_payload(). */
        number = message_number(id);
        g_snprintf(expected_payload, sizeof(expected_payload), "{\"n\": %u}", number);
        if (strcmp(payload, expected_payload) != 0)
                g_error("'%s' of '%s' got %s with payload '%s'", s->name, s->endpoint, id, payload);
        if (sender_endpoint(number / SENDS_PER_SENDER) != s->endpoint_index)
                g_error("'%s' of '%s' got %s, sent to another endpoint", s->name, s->endpoint, id);
        g_assert_true(g_variant_lookup(meta, "delivery-count", "u", &count));
        if (count != 1)
                g_error("'%s' of '%s' got %s with delivery-count %" G_GUINT32_FORMAT, s->name, s->endpoint, id,
                        count);
        if (seq <= s->last_seq)
                g_error("'%s' of '%s' got %s with seq %" G_GUINT64_FORMAT " after seq %" G_GUINT64_FORMAT, s->name,
                        s->endpoint, id, seq, s->last_seq);
        s->last_seq = seq;
        if (s->seqs[number] != 0)
                g_error("'%s' of '%s' got %s twice", s->name, s->endpoint, id);
        s->seqs[number] = seq;
        s->delivered++;

        g_array_append_val(s->to_ack, number);
        flush_acks(s);
}

static void receiver_init(Receiver *r, Load *load, Fixture *f, guint j) {
        r->load = load;
        r->conn = fixture_connect(f);
        r->signal = g_dbus_connection_signal_subscribe(r->conn, NULL, ENDPOINT_IFACE, "Message", NULL, NULL,
                                                       G_DBUS_SIGNAL_FLAGS_NONE, on_message, r, NULL);
        for (guint i = 0; i < ENDPOINTS_PER_RECEIVER; i++) {
                Subscription *s = &r->subscriptions[i];

                s->receiver = r;
                s->endpoint_index = (j + i) % N_ENDPOINTS;
                s->endpoint = endpoint_name(s->endpoint_index);
                s->path = fixture_endpoint_path(s->endpoint);
                s->name = g_strdup_printf("receiver-%u", j);
                s->seqs = g_new0(guint64, N_MESSAGES);
                s->to_ack = g_array_new(FALSE, FALSE, sizeof(guint));
                g_assert_cmpuint(fixture_subscribe_with(r->conn, s->endpoint, s->name, NULL, WINDOW), ==, 0);
        }
}

static void receiver_clear(Receiver *r) {
        g_dbus_connection_signal_unsubscribe(r->conn, r->signal);
        for (guint i = 0; i < ENDPOINTS_PER_RECEIVER; i++) {
                Subscription *s = &r->subscriptions[i];

                g_free(s->endpoint);
                g_free(s->path);
                g_free(s->name);
                g_free(s->seqs);
                g_array_unref(s->to_ack);
        }
        g_object_unref(r->conn);
}

/* ---- the run ---- */

static gboolean finished(Load *load) {
        for (guint k = 0; k < load->producers->len; k++)
                if (!((Producer *) g_ptr_array_index(load->producers, k))->done)
                        return FALSE;
        for (guint j = 0; j < N_RECEIVERS; j++)
                for (guint i = 0; i < ENDPOINTS_PER_RECEIVER; i++)
                        if (load->receivers[j].subscriptions[i].acked < PER_ENDPOINT)
                                return FALSE;
        return load->acks_in_flight == 0;
}

static gboolean watchdog_cb(gpointer data) {
        Load *load = data;
        guint64 replied = 0;

        /* Progress: a reply to a Send, a delivery or a reply to an Ack. */
        for (guint k = 0; k < load->producers->len; k++)
                replied += ((Producer *) g_ptr_array_index(load->producers, k))->replied;
        if (load->events + replied == load->events_at_last_look)
                g_error("Nothing was sent, delivered or acknowledged for %d ms (%" G_GUINT64_FORMAT
                        " Sends replied)", FIXTURE_TIMEOUT_MS, replied);
        load->events_at_last_look = load->events + replied;
        return G_SOURCE_CONTINUE;
}

static gboolean deadline_cb(gpointer data) {
        g_error("The load test did not finish within %d s", LOAD_DEADLINE_S);
        return G_SOURCE_REMOVE;
}

static void test_load(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) senders = g_ptr_array_new_with_free_func(g_object_unref);
        Load load = { 0 };
        guint watchdog, deadline;
        gint64 start;
        pid_t pid;

        g_test_summary("50 connections each pipeline 200 Sends while 10 connections receive and acknowledge on "
                       "durable subscriptions, 2 on each of 5 endpoints: every Send succeeds, every subscription "
                       "gets each of its endpoint's 2,000 messages once, in seq order, with the seq of its "
                       "Send reply; seqs follow each sender's order; nothing stays stored.");

        load.producers = g_ptr_array_new_with_free_func((GDestroyNotify) producer_free);
        for (guint k = 0; k < N_SENDERS; k++)
                g_ptr_array_add(senders, fixture_connect(f));
        /* Subscriptions first: a message acknowledged by the subscriptions
         * there are is deleted, and one created later would miss it. */
        for (guint j = 0; j < N_RECEIVERS; j++)
                receiver_init(&load.receivers[j], &load, f, j);
        pid = fixture_service_pid(f);

        start = g_get_monotonic_time();
        watchdog = g_timeout_add(FIXTURE_TIMEOUT_MS, watchdog_cb, &load);
        deadline = g_timeout_add_seconds(LOAD_DEADLINE_S, deadline_cb, NULL);
        for (guint k = 0; k < N_SENDERS; k++) {
                g_autofree char *endpoint = endpoint_name(sender_endpoint(k));

                g_ptr_array_add(load.producers, producer_new(g_ptr_array_index(senders, k), endpoint,
                                                             k * SENDS_PER_SENDER, SENDS_PER_SENDER,
                                                             SENDS_IN_FLIGHT));
        }
        while (!finished(&load))
                g_main_context_iteration(NULL, TRUE);
        g_source_remove(deadline);
        g_source_remove(watchdog);
        g_test_message("%u Sends and %u deliveries with acknowledgements in %.1f s", N_MESSAGES,
                       N_RECEIVERS * ENDPOINTS_PER_RECEIVER * PER_ENDPOINT,
                       (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC);

        /* Each sender's seqs follow the order of its Sends. */
        for (guint k = 0; k < N_SENDERS; k++) {
                Producer *p = g_ptr_array_index(load.producers, k);

                for (guint i = 0; i < SENDS_PER_SENDER; i++) {
                        g_assert_cmpuint(fixture_seq_at(p->seqs, i), >, 0);
                        if (i > 0)
                                g_assert_cmpuint(fixture_seq_at(p->seqs, i), >, fixture_seq_at(p->seqs, i - 1));
                }
        }

        /* Every subscription got exactly its endpoint's messages, each with
         * the seq of its Send's reply. */
        for (guint j = 0; j < N_RECEIVERS; j++) {
                for (guint i = 0; i < ENDPOINTS_PER_RECEIVER; i++) {
                        Subscription *s = &load.receivers[j].subscriptions[i];

                        g_assert_cmpuint(s->delivered, ==, PER_ENDPOINT);
                        for (guint number = 0; number < N_MESSAGES; number++) {
                                guint k = number / SENDS_PER_SENDER;
                                Producer *p = g_ptr_array_index(load.producers, k);

                                if (sender_endpoint(k) == s->endpoint_index)
                                        g_assert_cmpuint(s->seqs[number], ==,
                                                         fixture_seq_at(p->seqs, number - p->first));
                                else
                                        g_assert_cmpuint(s->seqs[number], ==, 0);
                        }
                }
        }

        g_assert_cmpint(fixture_service_pid(f), ==, pid);
        for (guint e = 0; e < N_ENDPOINTS; e++) {
                g_autofree char *endpoint = endpoint_name(e);

                g_assert_cmpuint(fixture_stored_messages(f->conn, endpoint), ==, 0);
        }

        for (guint j = 0; j < N_RECEIVERS; j++)
                receiver_clear(&load.receivers[j]);
        g_ptr_array_unref(load.producers);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add("/load/50-senders-10-receivers/lose-nothing-and-keep-order", Fixture, NULL, fixture_setup,
                   test_load, fixture_teardown);

        return g_test_run();
}
