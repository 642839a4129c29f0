/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/endpoint.c, the endpoint model without any bus:
 * sending, counters, durable subscriptions, replay order and window,
 * delivery counts, acknowledgements and garbage collection, forget, clear,
 * an orderly close and reopen, and the repair after an unclean close.
 *
 * An unclean close (the service killed) is simulated by committing and then
 * freeing the endpoint without endpoint_close(): the meta record keeps its
 * clean flag unset, and the next endpoint_open() repairs.
 */

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "endpoint.h"
#include "names.h"
#include "record.h"
#include "store.h"
#include "util.h"

#define NAME "app.jobs"
#define TIMESTAMP UINT64_C(1700000000000000)

/* ---- helpers ---- */

/* A fresh directory for one test, removed with what the test left in it. */
static char *tmpdir_new(void) {
        g_autoptr(GError) error = NULL;
        char *dir;

        dir = g_dir_make_tmp("durabus-test-endpoint-XXXXXX", &error);
        g_assert_no_error(error);
        return dir;
}

static void tmpdir_removep(char **dir) {
        g_autoptr(GDir) d = NULL;
        const char *name;

        if (!*dir)
                return;

        d = g_dir_open(*dir, 0, NULL);
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(*dir, name, NULL);
                (void) unlink(path);
        }
        (void) rmdir(*dir);
        g_free(*dir);
}

/* The endpoint NAME over dir/NAME.db, opened. */
static Endpoint *open_endpoint(const char *dir) {
        Endpoint *e = NULL;

        g_assert_cmpint(endpoint_new(NAME, dir, &e), ==, 0);
        g_assert_nonnull(e);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        return e;
}

/* Sends a new message and returns its sequence number. */
static uint64_t send_new(Endpoint *e, const char *id, const char *payload) {
        _cleanup_(freep) char *ret_id = NULL;
        uint64_t seq = 0;

        g_assert_cmpint(endpoint_send(e, id, payload, strlen(payload), TIMESTAMP, &ret_id, &seq), ==, 1);
        g_assert_cmpstr(ret_id, ==, id);
        g_assert_cmpuint(seq, >, 0);
        return seq;
}

/* Sends messages "m<first>".."m<last>" with payloads "payload-<n>". */
static void send_range(Endpoint *e, unsigned first, unsigned last) {
        for (unsigned i = first; i <= last; i++) {
                g_autofree char *id = g_strdup_printf("m%u", i);
                g_autofree char *payload = g_strdup_printf("payload-%u", i);

                send_new(e, id, payload);
        }
}

/* The bytes messages "m<first>".."m<last>" of send_range() count for. */
static uint64_t range_bytes(unsigned first, unsigned last) {
        uint64_t bytes = 0;

        for (unsigned i = first; i <= last; i++) {
                g_autofree char *id = g_strdup_printf("m%u", i);
                g_autofree char *payload = g_strdup_printf("payload-%u", i);

                bytes += strlen(id) + strlen(payload);
        }
        return bytes;
}

/* Creates a durable subscription, which must be new. Owned by e. */
static Subscription *subscribe_new(Endpoint *e, const char *name, bool start_new) {
        Subscription *s = NULL;

        g_assert_cmpint(endpoint_durable_subscription(e, name, start_new, &s), ==, 1);
        g_assert_nonnull(s);
        g_assert_cmpstr(s->name, ==, name);
        g_assert_true(s->durable);
        return s;
}

/* Finds a durable subscription, which must exist. Owned by e. */
static Subscription *subscription_find(Endpoint *e, const char *name) {
        Subscription *s = NULL;

        g_assert_cmpint(endpoint_durable_subscription(e, name, false, &s), ==, 0);
        g_assert_nonnull(s);
        return s;
}

/* Checks that the next delivery to s is the message id (payload-N for mN)
 * with that sequence number and delivery count. */
static void assert_delivers(Endpoint *e, Subscription *s, const char *id, uint64_t seq, uint32_t count) {
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        uint64_t got_seq = 0;
        uint32_t got_count = 0;

        g_assert_cmpint(endpoint_next_delivery(e, s, &m, &got_seq, &got_count), ==, 1);
        g_assert_nonnull(m);
        g_assert_cmpstr(m->id, ==, id);
        g_assert_cmpuint(got_seq, ==, seq);
        g_assert_cmpuint(got_count, ==, count);
        g_assert_cmpuint(m->timestamp, ==, TIMESTAMP);
        if (id[0] == 'm' && g_ascii_isdigit(id[1])) {
                g_autofree char *payload = g_strdup_printf("payload-%s", id + 1);
                g_assert_cmpstr(m->payload, ==, payload);
        }
}

static void assert_delivers_nothing(Endpoint *e, Subscription *s) {
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        uint64_t seq = 4242;
        uint32_t count = 4242;

        g_assert_cmpint(endpoint_next_delivery(e, s, &m, &seq, &count), ==, 0);
        g_assert_null(m);
        g_assert_cmpuint(seq, ==, 4242);
        g_assert_cmpuint(count, ==, 4242);
}

/* Acknowledges "m<n>" for s; expected is 1 when that is new, 0 when not. */
static void assert_ack(Endpoint *e, Subscription *s, unsigned n, int expected) {
        g_autofree char *id = g_strdup_printf("m%u", n);

        g_assert_cmpint(endpoint_ack(e, s, id), ==, expected);
}

static void assert_counters(Endpoint *e, uint64_t count, uint64_t bytes) {
        g_assert_cmpuint(e->stored_count, ==, count);
        g_assert_cmpuint(e->stored_bytes, ==, bytes);
}

/* Whether the database holds the message record of seq / the index record of id. */
static int message_record_exists(Endpoint *e, uint64_t seq) {
        RecordKey key;

        record_key_message(&key, seq);
        return store_exists(e->store, key.data, key.size);
}

static int index_record_exists(Endpoint *e, const char *id) {
        RecordKey key;

        record_key_index(&key, id);
        return store_exists(e->store, key.data, key.size);
}

/* Reads the meta record of an open store. */
static void read_meta(Store *store, MetaRecord *ret) {
        _cleanup_(freep) void *value = NULL;
        RecordKey key;
        size_t size = 0;

        record_key_meta(&key);
        g_assert_cmpint(store_get(store, key.data, key.size, &value, &size), ==, 0);
        g_assert_cmpint(record_decode_meta(value, size, ret), ==, 0);
}

/* Simulates the service being killed: what was committed is in the file, the
 * meta record's clean flag is unset, and endpoint_close() never runs. */
static void crash(Endpoint **e) {
        *e = endpoint_free(*e);
}

/* ---- new and open ---- */

static void test_new_derives_names(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = NULL;
        g_autofree char *db_path = g_build_filename(dir, NAME ".db", NULL);

        g_test_summary("A new endpoint knows its object path, bus name and database path, and "
                       "touches no file before it is opened.");

        g_assert_cmpint(endpoint_new(NAME, dir, &e), ==, 0);
        g_assert_cmpstr(e->name, ==, NAME);
        g_assert_cmpstr(e->path, ==, "/org/durabus1/endpoint/app/jobs");
        g_assert_cmpstr(e->bus_name, ==, "org.durabus1.endpoint.app.jobs");
        g_assert_cmpstr(e->db_path, ==, db_path);
        g_assert_null(e->store);
        g_assert_false(g_file_test(db_path, G_FILE_TEST_EXISTS));
}

static void test_open_creates_database(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = NULL;

        g_test_summary("Opening creates the database of an empty endpoint whose first message will "
                       "get seq 1; opening again does nothing.");

        e = open_endpoint(dir);
        g_assert_nonnull(e->store);
        g_assert_true(g_file_test(e->db_path, G_FILE_TEST_IS_REGULAR));
        g_assert_cmpuint(e->next_seq, ==, 1);
        g_assert_cmpuint(e->first_seq, ==, 1);
        assert_counters(e, 0, 0);
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 0);

        g_assert_cmpint(endpoint_open(e), ==, 0);
        g_assert_cmpuint(e->next_seq, ==, 1);
}

static void test_free_accepts_null(void) {
        Endpoint *e = NULL;

        g_test_summary("endpoint_free(NULL) does nothing and returns NULL.");

        g_assert_null(endpoint_free(NULL));
        endpoint_freep(&e);
}

/* ---- send ---- */

static void test_send_numbers_from_1(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);

        g_test_summary("Sequence numbers start at 1 and grow by one per stored message.");

        g_assert_cmpuint(send_new(e, "a", "1"), ==, 1);
        g_assert_cmpuint(send_new(e, "b", "2"), ==, 2);
        g_assert_cmpuint(send_new(e, "c", "3"), ==, 3);
        g_assert_cmpuint(e->next_seq, ==, 4);
        g_assert_cmpuint(e->first_seq, ==, 1);
}

static void test_send_opens_a_closed_endpoint(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = NULL;

        g_test_summary("Sending to an endpoint that was never opened opens it first.");

        g_assert_cmpint(endpoint_new(NAME, dir, &e), ==, 0);
        g_assert_cmpuint(send_new(e, "a", "1"), ==, 1);
        g_assert_nonnull(e->store);
}

static void test_send_generates_ids(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        _cleanup_(freep) char *id1 = NULL;
        _cleanup_(freep) char *id2 = NULL;
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        Subscription *s;
        uint64_t seq1 = 0, seq2 = 0, seq = 0;
        uint32_t count = 0;

        g_test_summary("An empty id makes the endpoint generate one: 32 lowercase hex characters, "
                       "different each time, stored with the message.");

        g_assert_cmpint(endpoint_send(e, "", "x", 1, TIMESTAMP, &id1, &seq1), ==, 1);
        g_assert_cmpint(endpoint_send(e, "", "y", 1, TIMESTAMP, &id2, &seq2), ==, 1);
        g_assert_cmpuint(seq1, ==, 1);
        g_assert_cmpuint(seq2, ==, 2);

        g_assert_cmpuint(strlen(id1), ==, 32);
        g_assert_cmpuint(strlen(id2), ==, 32);
        for (size_t i = 0; i < 32; i++) {
                g_assert_true(g_ascii_isdigit(id1[i]) || (id1[i] >= 'a' && id1[i] <= 'f'));
                g_assert_true(g_ascii_isdigit(id2[i]) || (id2[i] >= 'a' && id2[i] <= 'f'));
        }
        g_assert_cmpstr(id1, !=, id2);

        g_assert_cmpuint(e->stored_bytes, ==, 32 + 1 + 32 + 1);

        s = subscribe_new(e, "reader", false);
        endpoint_rewind(e, s);
        g_assert_cmpint(endpoint_next_delivery(e, s, &m, &seq, &count), ==, 1);
        g_assert_cmpstr(m->id, ==, id1);
        g_assert_cmpstr(m->payload, ==, "x");
}

static void test_send_idempotent(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        _cleanup_(freep) char *id = NULL;
        Subscription *s;
        uint64_t seq = 0;

        g_test_summary("Sending an id the endpoint stores returns 0 with the stored id and seq, and "
                       "stores nothing: counters, next seq and the stored payload stay.");

        g_assert_cmpuint(send_new(e, "order-1", "first"), ==, 1);
        g_assert_cmpuint(send_new(e, "order-2", "second"), ==, 2);

        g_assert_cmpint(endpoint_send(e, "order-1", "changed", 7, TIMESTAMP + 1, &id, &seq), ==, 0);
        g_assert_cmpstr(id, ==, "order-1");
        g_assert_cmpuint(seq, ==, 1);

        g_assert_cmpuint(e->next_seq, ==, 3);
        assert_counters(e, 2, strlen("order-1first") + strlen("order-2second"));

        s = subscribe_new(e, "reader", false);
        g_assert_cmpuint(s->pending, ==, 2);
        endpoint_rewind(e, s);
        {
                _cleanup_(message_record_freep) MessageRecord *m = NULL;
                uint32_t count = 0;

                g_assert_cmpint(endpoint_next_delivery(e, s, &m, &seq, &count), ==, 1);
                g_assert_cmpstr(m->id, ==, "order-1");
                g_assert_cmpstr(m->payload, ==, "first");
                g_assert_cmpuint(m->timestamp, ==, TIMESTAMP);
        }
}

static void test_send_reuses_id_after_delete(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("Once its message is deleted (acknowledged by every subscription), an id "
                       "can be sent again and gets a new seq.");

        s = subscribe_new(e, "reader", false);
        g_assert_cmpuint(send_new(e, "x", "one"), ==, 1);
        g_assert_cmpint(endpoint_ack(e, s, "x"), ==, 1);
        assert_counters(e, 0, 0);

        g_assert_cmpuint(send_new(e, "x", "two"), ==, 2);
        assert_counters(e, 1, strlen("xtwo"));
}

static void test_send_counters(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        g_autofree char *big = g_strnfill(100000, 'b');

        g_test_summary("stored_count counts stored messages, stored_bytes the bytes of their ids "
                       "and payloads; an empty payload counts its id only.");

        assert_counters(e, 0, 0);
        send_new(e, "a", "12345");
        assert_counters(e, 1, 6);
        send_new(e, "bb", "");
        assert_counters(e, 2, 6 + 2);
        send_new(e, "ccc", big);
        assert_counters(e, 3, 6 + 2 + 3 + 100000);
}

static void test_unsend(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("unsend takes back a stored message: counters, pending and the index drop, "
                       "and it is not delivered; unsending an absent seq is 0.");

        s = subscribe_new(e, "reader", false);
        send_range(e, 1, 2);
        g_assert_cmpuint(s->pending, ==, 2);

        g_assert_cmpint(endpoint_unsend(e, 2, 1), ==, 0);
        assert_counters(e, 1, range_bytes(1, 1));
        g_assert_cmpuint(s->pending, ==, 1);
        g_assert_cmpint(index_record_exists(e, "m2"), ==, 0);
        g_assert_cmpint(message_record_exists(e, 2), ==, 0);

        g_assert_cmpint(endpoint_unsend(e, 2, 1), ==, 0);
        g_assert_cmpint(endpoint_unsend(e, 99, 1), ==, 0);

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers_nothing(e, s);

        /* The id is free again; the seq is not reused. */
        g_assert_cmpuint(send_new(e, "m2", "payload-2"), ==, 3);
}

static void test_unsend_range(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("unsend of a range (a refused batch) takes back each of its messages, those already "
                       "gone included, and leaves the ones below it.");

        s = subscribe_new(e, "reader", false);
        send_range(e, 1, 5);
        g_assert_cmpint(endpoint_unsend(e, 5, 1), ==, 0);
        g_assert_cmpint(endpoint_unsend(e, 3, 3), ==, 0);
        assert_counters(e, 2, range_bytes(1, 2));
        g_assert_cmpuint(s->pending, ==, 2);
        for (unsigned seq = 3; seq <= 5; seq++)
                g_assert_cmpint(message_record_exists(e, seq), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m3"), ==, 0);

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m2", 2, 1);
        assert_delivers_nothing(e, s);
}

/* ---- durable subscriptions ---- */

static void test_subscribe_start_all(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("A new subscription with start=all has every stored message pending, and "
                       "every later one.");

        send_range(e, 1, 3);
        s = subscribe_new(e, "all", false);
        g_assert_cmpuint(s->pending, ==, 3);
        g_assert_cmpuint(s->floor, ==, 1);

        send_range(e, 4, 4);
        g_assert_cmpuint(s->pending, ==, 4);
        assert_counters(e, 4, range_bytes(1, 4));
}

static void test_subscribe_start_new(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *all, *fresh;

        g_test_summary("A subscription with start=new, when another one exists, has nothing "
                       "pending, leaves the stored messages alone and gets only later messages.");

        all = subscribe_new(e, "all", false);
        send_range(e, 1, 3);
        fresh = subscribe_new(e, "new", true);
        g_assert_cmpuint(fresh->pending, ==, 0);
        assert_counters(e, 3, range_bytes(1, 3));

        send_range(e, 4, 4);
        g_assert_cmpuint(all->pending, ==, 4);
        g_assert_cmpuint(fresh->pending, ==, 1);

        endpoint_rewind(e, fresh);
        assert_delivers(e, fresh, "m4", 4, 1);
        assert_delivers_nothing(e, fresh);
}

static void test_subscribe_finds_existing(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s, *again = NULL;

        g_test_summary("Asking for an existing subscription returns it (0), whatever start says.");

        send_range(e, 1, 2);
        s = subscribe_new(e, "worker", false);
        g_assert_cmpint(endpoint_durable_subscription(e, "worker", true, &again), ==, 0);
        g_assert_true(again == s);
        g_assert_cmpuint(again->pending, ==, 2);
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 1);
}

static void test_subscribe_first_start_new_collects(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("The first durable subscription, created with start=new, makes the messages "
                       "stored before it garbage: they are deleted, and numbering goes on.");

        send_range(e, 1, 3);
        s = subscribe_new(e, "late", true);
        g_assert_cmpuint(s->pending, ==, 0);
        assert_counters(e, 0, 0);
        for (uint64_t seq = 1; seq <= 3; seq++)
                g_assert_cmpint(message_record_exists(e, seq), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m1"), ==, 0);
        g_assert_cmpuint(e->first_seq, ==, 4);
        g_assert_cmpuint(e->next_seq, ==, 4);

        g_assert_cmpuint(send_new(e, "m4", "payload-4"), ==, 4);
        g_assert_cmpuint(s->pending, ==, 1);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m4", 4, 1);
}

/* ---- delivery ---- */

static void test_delivery_in_seq_order(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("After rewind, a subscription gets its unacknowledged messages in seq "
                       "order, skipping acknowledged ones, then live messages as they are sent.");

        send_range(e, 1, 5);
        s = subscribe_new(e, "worker", false);
        assert_ack(e, s, 4, 1);
        assert_ack(e, s, 2, 1);
        g_assert_cmpuint(s->pending, ==, 3);

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m3", 3, 1);
        assert_delivers(e, s, "m5", 5, 1);
        assert_delivers_nothing(e, s);

        send_range(e, 6, 7);
        assert_delivers(e, s, "m6", 6, 1);
        assert_delivers(e, s, "m7", 7, 1);
        assert_delivers_nothing(e, s);
}

static void test_delivery_window(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("At most window delivered-but-unacknowledged messages are in flight; each "
                       "ack, in any order, lets one more through.");

        send_range(e, 1, 6);
        s = subscribe_new(e, "worker", false);
        s->window = 2;

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m2", 2, 1);
        assert_delivers_nothing(e, s);
        g_assert_cmpuint(s->in_flight.n, ==, 2);

        assert_ack(e, s, 2, 1);
        assert_delivers(e, s, "m3", 3, 1);
        assert_delivers_nothing(e, s);

        assert_ack(e, s, 1, 1);
        assert_delivers(e, s, "m4", 4, 1);
        assert_delivers_nothing(e, s);

        /* An ack of a message never delivered frees no slot. */
        assert_ack(e, s, 6, 1);
        assert_delivers_nothing(e, s);

        assert_ack(e, s, 3, 1);
        assert_ack(e, s, 4, 1);
        assert_delivers(e, s, "m5", 5, 1);
        assert_delivers_nothing(e, s);
}

static void test_delivery_counts(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("The delivery count is 1 the first time, 2 after a rewind, then 3; a "
                       "message never delivered before still counts 1.");

        send_range(e, 1, 3);
        s = subscribe_new(e, "worker", false);
        s->window = 2;

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m2", 2, 1);
        assert_delivers_nothing(e, s);

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 2);
        assert_delivers(e, s, "m2", 2, 2);

        s->window = 10;
        assert_delivers(e, s, "m3", 3, 1);

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 3);
        assert_delivers(e, s, "m2", 2, 3);
        assert_delivers(e, s, "m3", 3, 2);

        /* Acked messages stop coming back; the rest keep counting. */
        assert_ack(e, s, 2, 1);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 4);
        assert_delivers(e, s, "m3", 3, 3);
        assert_delivers_nothing(e, s);
}

static void test_delivery_counts_survive_a_crash(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("A delivery saved with endpoint_save_subscription() and no commit after it "
                       "(the service is killed right after sending) counts as a delivery: the "
                       "message comes again with count 2 after the restart.");

        send_range(e, 1, 2);
        s = subscribe_new(e, "worker", false);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);

        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m2", 2, 1);
        g_assert_cmpint(endpoint_save_subscription(e, s), ==, 0);
        g_assert_false(s->dirty);
        crash(&e);

        e = open_endpoint(dir);
        s = subscription_find(e, "worker");
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 2);
        assert_delivers(e, s, "m2", 2, 2);
        assert_delivers_nothing(e, s);
}

static void test_delivery_count_kept_until_ack_is_written(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;
        RecordKey key;

        g_test_summary("Acknowledging a redelivered message keeps its delivery count until the "
                       "acknowledgement is written: killed in between, the service delivers it again "
                       "with a higher count, not a reset one; once committed, the count record is gone.");

        send_range(e, 1, 1);
        s = subscribe_new(e, "worker", false);
        /* A second subscription keeps the message stored when worker acks. */
        (void) subscribe_new(e, "other", false);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        g_assert_cmpint(endpoint_save_subscription(e, s), ==, 0);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 2);
        g_assert_cmpint(endpoint_save_subscription(e, s), ==, 0);

        /* Acknowledged, and killed before the commit that would write it. */
        assert_ack(e, s, 1, 1);
        crash(&e);

        e = open_endpoint(dir);
        s = subscription_find(e, "worker");
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 3);

        assert_ack(e, s, 1, 1);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        record_key_delivery(&key, 1, "worker");
        g_assert_cmpint(store_exists(e->store, key.data, key.size), ==, 0);
        g_assert_cmpuint(s->stale_counts.n, ==, 0);
}

static void test_delivery_counts_per_subscription(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a, *b;

        g_test_summary("Delivery counts belong to one subscription: redelivering to one does not "
                       "raise the count of another.");

        send_range(e, 1, 1);
        a = subscribe_new(e, "a", false);
        b = subscribe_new(e, "b", false);

        endpoint_rewind(e, a);
        assert_delivers(e, a, "m1", 1, 1);
        endpoint_rewind(e, a);
        assert_delivers(e, a, "m1", 1, 2);

        endpoint_rewind(e, b);
        assert_delivers(e, b, "m1", 1, 1);
}

/* ---- ack and garbage collection ---- */

static void test_ack_returns_whether_new(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a, *b;

        g_test_summary("ack returns 1 when newly acknowledged, 0 when acknowledged already and 0 "
                       "for an id that is not stored; pending follows.");

        a = subscribe_new(e, "a", false);
        b = subscribe_new(e, "b", false);
        send_range(e, 1, 2);

        assert_ack(e, a, 1, 1);
        g_assert_cmpuint(a->pending, ==, 1);
        assert_ack(e, a, 1, 0);
        g_assert_cmpuint(a->pending, ==, 1);
        g_assert_cmpint(endpoint_ack(e, a, "unknown"), ==, 0);
        g_assert_cmpint(endpoint_ack(e, a, "m"), ==, 0);
        g_assert_cmpuint(a->pending, ==, 1);
        g_assert_cmpuint(b->pending, ==, 2);
}

static void test_ack_deletes_when_all_acked(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a, *b;

        g_test_summary("A message acknowledged by every durable subscription is deleted, its "
                       "index record with it; until then it stays.");

        a = subscribe_new(e, "a", false);
        b = subscribe_new(e, "b", false);
        send_range(e, 1, 3);

        assert_ack(e, a, 1, 1);
        assert_counters(e, 3, range_bytes(1, 3));
        g_assert_cmpint(message_record_exists(e, 1), ==, 1);

        assert_ack(e, b, 1, 1);
        assert_counters(e, 2, range_bytes(2, 3));
        g_assert_cmpint(message_record_exists(e, 1), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m1"), ==, 0);
        g_assert_cmpuint(e->first_seq, ==, 2);

        /* Out of order: a middle message goes, the first stays first. */
        assert_ack(e, b, 3, 1);
        assert_ack(e, a, 3, 1);
        assert_counters(e, 1, range_bytes(2, 2));
        g_assert_cmpuint(e->first_seq, ==, 2);
        g_assert_cmpuint(a->pending, ==, 1);
        g_assert_cmpuint(b->pending, ==, 1);

        /* Gone for everybody now. */
        assert_ack(e, a, 1, 0);
        assert_ack(e, b, 3, 0);
}

static void test_ack_without_subscription_keeps(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("Messages sent while no durable subscription exists are kept, and the "
                       "first subscription (start=all) gets them all.");

        send_range(e, 1, 3);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        assert_counters(e, 3, range_bytes(1, 3));

        s = subscribe_new(e, "first", false);
        g_assert_cmpuint(s->pending, ==, 3);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m2", 2, 1);
        assert_delivers(e, s, "m3", 3, 1);
}

/* ---- forget ---- */

static void test_forget_collects(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a, *b;
        RecordKey key;

        g_test_summary("Forgetting a subscription removes its records (subscription and delivery "
                       "counts) and its name from the meta record, and deletes the messages only "
                       "it was waiting for; the others stay.");

        a = subscribe_new(e, "a", false);
        b = subscribe_new(e, "b", false);
        send_range(e, 1, 3);

        /* b got m1 twice, so it has a delivery record. */
        endpoint_rewind(e, b);
        assert_delivers(e, b, "m1", 1, 1);
        endpoint_rewind(e, b);
        assert_delivers(e, b, "m1", 1, 2);
        g_assert_cmpint(endpoint_commit(e, false), ==, 0);
        record_key_delivery(&key, 1, "b");
        g_assert_cmpint(store_exists(e->store, key.data, key.size), ==, 1);
        record_key_subscription(&key, "b");
        g_assert_cmpint(store_exists(e->store, key.data, key.size), ==, 1);

        assert_ack(e, a, 1, 1);
        assert_ack(e, a, 2, 1);
        assert_counters(e, 3, range_bytes(1, 3));

        g_assert_cmpint(endpoint_forget(e, b), ==, 0);
        b = NULL;
        assert_counters(e, 1, range_bytes(3, 3));
        g_assert_cmpuint(a->pending, ==, 1);
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 1);
        record_key_subscription(&key, "b");
        g_assert_cmpint(store_exists(e->store, key.data, key.size), ==, 0);
        record_key_delivery(&key, 1, "b");
        g_assert_cmpint(store_exists(e->store, key.data, key.size), ==, 0);

        /* Reopened, the endpoint knows only a. */
        g_assert_cmpint(endpoint_close(e), ==, 0);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 1);
        g_assert_null(g_hash_table_lookup(e->durable, "b"));
        a = subscription_find(e, "a");
        g_assert_cmpuint(a->pending, ==, 1);
}

static void test_forget_last_keeps(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a, *c;

        g_test_summary("Forgetting the last durable subscription keeps the messages stored, for a "
                       "future subscriber.");

        a = subscribe_new(e, "a", false);
        send_range(e, 1, 3);
        assert_ack(e, a, 1, 1);
        assert_counters(e, 2, range_bytes(2, 3));

        g_assert_cmpint(endpoint_forget(e, a), ==, 0);
        assert_counters(e, 2, range_bytes(2, 3));
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 0);

        c = subscribe_new(e, "c", false);
        g_assert_cmpuint(c->pending, ==, 2);
        endpoint_rewind(e, c);
        assert_delivers(e, c, "m2", 2, 1);
        assert_delivers(e, c, "m3", 3, 1);
}

/* ---- clear ---- */

static void test_clear(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        g_autofree char *tmp_path = NULL;
        uint64_t removed = 4242;
        Subscription *s;

        g_test_summary("clear removes every stored message and says how many; subscriptions stay "
                       "with nothing pending or in flight, numbering goes on, and all of it holds "
                       "after reopening.");

        s = subscribe_new(e, "worker", false);
        send_range(e, 1, 5);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m1", 1, 1);
        assert_delivers(e, s, "m2", 2, 1);
        assert_ack(e, s, 1, 1);
        assert_counters(e, 4, range_bytes(2, 5));

        g_assert_cmpint(endpoint_clear(e, &removed), >=, 0);
        g_assert_cmpuint(removed, ==, 4);
        assert_counters(e, 0, 0);
        g_assert_cmpuint(e->first_seq, ==, 6);
        g_assert_cmpuint(e->next_seq, ==, 6);
        g_assert_cmpuint(s->pending, ==, 0);
        g_assert_cmpuint(s->in_flight.n, ==, 0);
        g_assert_cmpuint(s->acked.n, ==, 0);
        for (uint64_t seq = 1; seq <= 5; seq++)
                g_assert_cmpint(message_record_exists(e, seq), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m3"), ==, 0);
        tmp_path = g_strconcat(e->db_path, ".new", NULL);
        g_assert_false(g_file_test(tmp_path, G_FILE_TEST_EXISTS));
        assert_delivers_nothing(e, s);

        g_assert_cmpuint(send_new(e, "m6", "payload-6"), ==, 6);
        g_assert_cmpuint(s->pending, ==, 1);
        assert_delivers(e, s, "m6", 6, 1);
        /* The id of a cleared message is free again. */
        g_assert_cmpuint(send_new(e, "m2", "payload-2"), ==, 7);

        g_assert_cmpint(endpoint_close(e), ==, 0);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        s = subscription_find(e, "worker");
        g_assert_cmpuint(s->pending, ==, 2);
        assert_counters(e, 2, strlen("m6payload-6") + strlen("m2payload-2"));
        g_assert_cmpuint(e->next_seq, ==, 8);
        endpoint_rewind(e, s);
        /* m6 was delivered before the close: this is its second delivery. */
        assert_delivers(e, s, "m6", 6, 2);
        assert_delivers(e, s, "m2", 7, 1);

        g_assert_cmpint(endpoint_clear(e, &removed), >=, 0);
        g_assert_cmpuint(removed, ==, 2);
        /* Clearing an empty endpoint removes nothing. */
        g_assert_cmpint(endpoint_clear(e, &removed), >=, 0);
        g_assert_cmpuint(removed, ==, 0);
}

/* ---- close and reopen ---- */

static void test_close_reopen_keeps_everything(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();

        g_test_summary("After an orderly close, a new endpoint over the same file has the same "
                       "messages, counters, numbering, subscriptions, acknowledgements and "
                       "delivery counts.");

        {
                _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
                Subscription *a;

                a = subscribe_new(e, "a", false);
                (void) subscribe_new(e, "b", false);
                send_range(e, 1, 4);
                assert_ack(e, a, 1, 1);
                assert_ack(e, a, 3, 1);
                endpoint_rewind(e, a);
                assert_delivers(e, a, "m2", 2, 1);
                endpoint_rewind(e, a);
                assert_delivers(e, a, "m2", 2, 2);

                g_assert_cmpint(endpoint_close(e), ==, 0);
                g_assert_null(e->store);
                g_assert_cmpuint(g_hash_table_size(e->durable), ==, 0);
        }
        {
                _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
                Subscription *a, *b;

                g_assert_cmpuint(e->next_seq, ==, 5);
                g_assert_cmpuint(e->first_seq, ==, 1);
                assert_counters(e, 4, range_bytes(1, 4));
                g_assert_cmpuint(g_hash_table_size(e->durable), ==, 2);

                a = subscription_find(e, "a");
                b = subscription_find(e, "b");
                g_assert_cmpuint(a->pending, ==, 2);
                g_assert_cmpuint(b->pending, ==, 4);
                assert_ack(e, a, 1, 0);
                assert_ack(e, a, 3, 0);

                endpoint_rewind(e, a);
                assert_delivers(e, a, "m2", 2, 3);
                assert_delivers(e, a, "m4", 4, 1);
                assert_delivers_nothing(e, a);

                endpoint_rewind(e, b);
                assert_delivers(e, b, "m1", 1, 1);
                assert_delivers(e, b, "m2", 2, 1);

                g_assert_cmpuint(send_new(e, "m5", "payload-5"), ==, 5);
        }
}

static void test_close_marks_clean(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        _cleanup_(meta_record_done) MetaRecord at_open = {};
        _cleanup_(meta_record_done) MetaRecord at_commit = {};
        _cleanup_(meta_record_done) MetaRecord at_close = {};

        g_test_summary("The meta record is unclean while the endpoint is open, gets the counters at "
                       "each commit, and is marked clean by close.");

        (void) subscribe_new(e, "worker", false);
        send_range(e, 1, 2);
        read_meta(e->store, &at_open);
        g_assert_false(at_open.clean);
        g_assert_cmpuint(at_open.next_seq, ==, 1);
        g_assert_cmpuint(at_open.stored_count, ==, 0);

        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        read_meta(e->store, &at_commit);
        g_assert_false(at_commit.clean);
        g_assert_cmpuint(at_commit.next_seq, ==, 3);
        g_assert_cmpuint(at_commit.first_seq, ==, 1);
        g_assert_cmpuint(at_commit.stored_count, ==, 2);
        g_assert_cmpuint(at_commit.stored_bytes, ==, range_bytes(1, 2));
        g_assert_cmpuint(g_strv_length(at_commit.subscribers), ==, 1);
        g_assert_cmpstr(at_commit.subscribers[0], ==, "worker");

        g_assert_cmpint(endpoint_close(e), ==, 0);
        {
                _cleanup_(store_freep) Store *store = NULL;

                g_assert_cmpint(store_open(e->db_path, false, &store), ==, 0);
                read_meta(store, &at_close);
        }
        g_assert_true(at_close.clean);
        g_assert_cmpuint(at_close.next_seq, ==, 3);
        g_assert_cmpuint(at_close.stored_count, ==, 2);

        /* Closing a closed endpoint is harmless. */
        g_assert_cmpint(endpoint_close(e), ==, 0);
}

/* ---- repair after an unclean close ---- */

static void test_repair_recounts(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        _cleanup_(meta_record_done) MetaRecord on_disk = {};
        Subscription *a, *b;

        g_test_summary("After an unclean close, open recounts messages, bytes and every "
                       "subscription's pending from the message records; committed acks and "
                       "delivery counts stay, and a message stored after the last commit survives "
                       "with its index.");

        a = subscribe_new(e, "a", false);
        (void) subscribe_new(e, "b", false);
        send_range(e, 1, 4);
        assert_ack(e, a, 1, 1);
        assert_ack(e, a, 2, 1);
        endpoint_rewind(e, a);
        assert_delivers(e, a, "m3", 3, 1);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);

        send_range(e, 5, 5);
        crash(&e);

        {
                /* What the file says: unclean, and counters from the last commit. */
                _cleanup_(store_freep) Store *store = NULL;
                g_autofree char *db_path = g_build_filename(dir, NAME ".db", NULL);

                g_assert_cmpint(store_open(db_path, false, &store), ==, 0);
                read_meta(store, &on_disk);
                g_assert_false(on_disk.clean);
                g_assert_cmpuint(on_disk.stored_count, ==, 4);
                g_assert_cmpuint(on_disk.next_seq, ==, 5);
        }

        e = open_endpoint(dir);
        g_assert_cmpuint(e->next_seq, ==, 6);
        g_assert_cmpuint(e->first_seq, ==, 1);
        assert_counters(e, 5, range_bytes(1, 5));

        a = subscription_find(e, "a");
        b = subscription_find(e, "b");
        g_assert_cmpuint(a->pending, ==, 3);
        g_assert_cmpuint(b->pending, ==, 5);
        assert_ack(e, a, 1, 0);
        assert_ack(e, a, 2, 0);

        endpoint_rewind(e, a);
        assert_delivers(e, a, "m3", 3, 2);
        assert_delivers(e, a, "m4", 4, 1);
        assert_delivers(e, a, "m5", 5, 1);
        assert_delivers_nothing(e, a);

        {
                _cleanup_(freep) char *id = NULL;
                uint64_t seq = 0;

                g_assert_cmpint(endpoint_send(e, "m5", "again", 5, TIMESTAMP, &id, &seq), ==, 0);
                g_assert_cmpuint(seq, ==, 5);
        }

        /* The repaired state is what an orderly close writes. */
        g_assert_cmpint(endpoint_close(e), ==, 0);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        assert_counters(e, 5, range_bytes(1, 5));
        g_assert_cmpuint(subscription_find(e, "a")->pending, ==, 3);
        g_assert_cmpuint(subscription_find(e, "b")->pending, ==, 5);
}

static void test_repair_after_deletes(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a, *b;

        g_test_summary("Messages deleted after the last commit stay deleted after an unclean "
                       "close, and the counters leave them out.");

        a = subscribe_new(e, "a", false);
        b = subscribe_new(e, "b", false);
        send_range(e, 1, 4);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);

        assert_ack(e, a, 1, 1);
        assert_ack(e, b, 1, 1);
        assert_ack(e, a, 3, 1);
        assert_ack(e, b, 3, 1);
        assert_counters(e, 2, range_bytes(2, 2) + range_bytes(4, 4));
        crash(&e);

        e = open_endpoint(dir);
        assert_counters(e, 2, range_bytes(2, 2) + range_bytes(4, 4));
        g_assert_cmpuint(e->next_seq, ==, 5);
        a = subscription_find(e, "a");
        g_assert_cmpuint(a->pending, ==, 2);
        endpoint_rewind(e, a);
        assert_delivers(e, a, "m2", 2, 1);
        assert_delivers(e, a, "m4", 4, 1);
        assert_delivers_nothing(e, a);
}

static void test_repair_restores_index(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        RecordKey key;

        g_test_summary("A message record whose index record was never written (killed between the "
                       "two writes of a send) gets its index back at repair, so a resend of its "
                       "id is still recognized.");

        send_range(e, 1, 2);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        record_key_index(&key, "m2");
        g_assert_cmpint(store_delete(e->store, key.data, key.size), ==, 0);
        crash(&e);

        e = open_endpoint(dir);
        g_assert_cmpint(index_record_exists(e, "m2"), ==, 1);
        {
                _cleanup_(freep) char *id = NULL;
                uint64_t seq = 0;

                g_assert_cmpint(endpoint_send(e, "m2", "payload-2", 9, TIMESTAMP, &id, &seq), ==, 0);
                g_assert_cmpuint(seq, ==, 2);
        }
        assert_counters(e, 2, range_bytes(1, 2));
}

static void test_repair_skips_damaged_message(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        RecordKey key;

        g_test_summary("Repair leaves a damaged message record out of the counts and keeps "
                       "counting the messages after it.");

        send_range(e, 1, 3);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        record_key_message(&key, 2);
        g_assert_cmpint(store_put(e->store, key.data, key.size, "\x07garbage", 8), ==, 0);
        crash(&e);

        e = open_endpoint(dir);
        assert_counters(e, 2, range_bytes(1, 1) + range_bytes(3, 3));
        g_assert_cmpuint(e->next_seq, ==, 4);
}

static void test_repair_keeps_messages_beyond_a_gap(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("Two messages stored after the last commit, the first of them already "
                       "acknowledged and deleted: after an unclean close the second is still "
                       "stored (repair keeps every complete message record) and its seq is not "
                       "handed out again.");

        s = subscribe_new(e, "worker", false);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);

        send_range(e, 1, 2);
        assert_ack(e, s, 1, 1);
        assert_counters(e, 1, range_bytes(2, 2));
        crash(&e);

        e = open_endpoint(dir);
        g_assert_cmpuint(e->next_seq, ==, 3);
        assert_counters(e, 1, range_bytes(2, 2));
        s = subscription_find(e, "worker");
        g_assert_cmpuint(s->pending, ==, 1);
        endpoint_rewind(e, s);
        assert_delivers(e, s, "m2", 2, 1);

        g_assert_cmpuint(send_new(e, "m3", "payload-3"), ==, 3);
}

/* ---- ephemeral subscriptions ---- */

static void test_ephemeral_starts_at_next_message(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s = NULL;

        g_test_summary("A new ephemeral subscription has its cursor at the next message sent (as "
                       "endpoint.h says), so it gets no stored message even before a rewind.");

        send_range(e, 1, 2);
        g_assert_cmpint(endpoint_ephemeral_subscription(e, ":1.42", &s), ==, 1);
        g_assert_false(s->durable);
        g_assert_cmpstr(s->name, ==, "");

        assert_delivers_nothing(e, s);
        send_range(e, 3, 3);
        assert_delivers(e, s, "m3", 3, 1);
}

static void test_ephemeral_live_only(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s = NULL, *again = NULL, *other = NULL;

        g_test_summary("An ephemeral subscription gets live messages only, each with count 1, "
                       "without a window and without replay; one per connection; it keeps no "
                       "message stored.");

        send_range(e, 1, 2);
        g_assert_cmpint(endpoint_ephemeral_subscription(e, ":1.42", &s), ==, 1);
        endpoint_rewind(e, s);
        assert_delivers_nothing(e, s);

        s->window = 1;
        send_range(e, 3, 5);
        assert_delivers(e, s, "m3", 3, 1);
        assert_delivers(e, s, "m4", 4, 1);
        assert_delivers(e, s, "m5", 5, 1);
        assert_delivers_nothing(e, s);
        g_assert_cmpuint(s->in_flight.n, ==, 0);

        endpoint_rewind(e, s);
        assert_delivers_nothing(e, s);

        g_assert_cmpint(endpoint_ephemeral_subscription(e, ":1.42", &again), ==, 0);
        g_assert_true(again == s);
        g_assert_cmpint(endpoint_ephemeral_subscription(e, ":1.43", &other), ==, 1);
        g_assert_true(other != s);
        g_assert_cmpuint(g_hash_table_size(e->ephemeral), ==, 2);
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 0);

        endpoint_drop_ephemeral(e, ":1.42");
        endpoint_drop_ephemeral(e, ":1.99");
        g_assert_cmpuint(g_hash_table_size(e->ephemeral), ==, 1);
        g_assert_cmpint(endpoint_ephemeral_subscription(e, ":1.42", &again), ==, 1);

        /* Only durable subscriptions hold messages back. */
        {
                Subscription *d = subscribe_new(e, "durable", false);

                for (unsigned i = 1; i <= 5; i++)
                        assert_ack(e, d, i, 1);
                assert_counters(e, 0, 0);
        }
}

/* ---- memory ---- */

static void test_memory_stays_flat(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        _cleanup_(freep) char *previous = NULL;
        size_t max_acked = 0, max_in_flight = 0;
        Subscription *a, *b;
        const unsigned n = 100000;

        g_test_summary("100000 messages sent, delivered and acknowledged by two subscriptions, one "
                       "in order, one with each pair swapped: their sets of acknowledgements and "
                       "of messages in flight never grow past a couple of items, and nothing stays "
                       "stored.");

        a = subscribe_new(e, "in-order", false);
        b = subscribe_new(e, "swapped", false);
        endpoint_rewind(e, a);
        endpoint_rewind(e, b);

        for (unsigned i = 0; i < n; i++) {
                _cleanup_(message_record_freep) MessageRecord *ma = NULL;
                _cleanup_(message_record_freep) MessageRecord *mb = NULL;
                _cleanup_(freep) char *id = NULL;
                uint64_t seq = 0, delivered_seq = 0;
                uint32_t count = 0;

                g_assert_cmpint(endpoint_send(e, "", "payload", 7, TIMESTAMP, &id, &seq), ==, 1);
                g_assert_cmpuint(seq, ==, i + 1);

                g_assert_cmpint(endpoint_next_delivery(e, a, &ma, &delivered_seq, &count), ==, 1);
                g_assert_cmpuint(delivered_seq, ==, seq);
                g_assert_cmpint(endpoint_next_delivery(e, b, &mb, &delivered_seq, &count), ==, 1);
                g_assert_cmpuint(delivered_seq, ==, seq);

                g_assert_cmpint(endpoint_ack(e, a, id), ==, 1);
                if (i % 2 == 1) {
                        g_assert_cmpint(endpoint_ack(e, b, id), ==, 1);
                        g_assert_cmpint(endpoint_ack(e, b, previous), ==, 1);
                }

                max_acked = MAX(max_acked, MAX(a->acked.n, b->acked.n));
                max_in_flight = MAX(max_in_flight, MAX(a->in_flight.n, b->in_flight.n));
                g_assert_cmpint(endpoint_commit(e, false), ==, 0);

                free(previous);
                previous = TAKE_PTR(id);
        }

        g_assert_cmpuint(max_acked, <=, 1);
        g_assert_cmpuint(max_in_flight, <=, 2);
        g_assert_cmpuint(a->acked.capacity, <=, 16);
        g_assert_cmpuint(b->acked.capacity, <=, 16);
        g_assert_cmpuint(a->in_flight.capacity, <=, 16);
        g_assert_cmpuint(b->in_flight.capacity, <=, 16);

        assert_counters(e, 0, 0);
        g_assert_cmpuint(a->pending, ==, 0);
        g_assert_cmpuint(b->pending, ==, 0);
        g_assert_cmpuint(e->next_seq, ==, n + 1);
        g_assert_cmpuint(e->first_seq, ==, n + 1);
        g_assert_cmpuint(a->floor, ==, n + 1);
        g_assert_cmpuint(b->floor, ==, n + 1);
}

/* ---- damaged databases ---- */

/* Whether dir holds a NAME.db.damaged-* file. */
static bool has_damaged_file(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d)))
                if (g_str_has_prefix(name, NAME ".db.damaged-"))
                        return true;
        return false;
}

/* Checks that s gets the stored messages in strictly growing seq order,
 * each "m<seq>" with its payload, and returns how many. */
static uint64_t assert_replay_in_order(Endpoint *e, Subscription *s) {
        uint64_t n = 0, last = 0;

        endpoint_rewind(e, s);
        s->window = UINT32_MAX;
        for (;;) {
                _cleanup_(message_record_freep) MessageRecord *m = NULL;
                g_autofree char *id = NULL, *payload = NULL;
                uint64_t seq = 0;
                uint32_t count = 0;
                int r = endpoint_next_delivery(e, s, &m, &seq, &count);

                g_assert_cmpint(r, >=, 0);
                if (r == 0)
                        break;
                g_assert_cmpuint(seq, >, last);
                id = g_strdup_printf("m%" PRIu64, seq);
                payload = g_strdup_printf("payload-%" PRIu64, seq);
                g_assert_cmpstr(m->id, ==, id);
                g_assert_cmpstr(m->payload, ==, payload);
                last = seq;
                n++;
        }
        return n;
}

static void damage_file(const char *path, bool truncate_it, off_t amount) {
        g_autoptr(GError) error = NULL;
        g_autofree char *data = NULL;
        size_t size = 0;

        g_file_get_contents(path, &data, &size, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(size, >, (size_t) amount * 2);
        if (truncate_it)
                size -= (size_t) amount;
        else
                /* Scribbles over one block in the middle. */
                for (off_t i = 0; i < amount; i++)
                        data[size / 2 + (size_t) i] = (char) (i * 31 + 7);
        g_file_set_contents(path, data, (gssize) size, &error);
        g_assert_no_error(error);
}

static void test_recover_damaged(gconstpointer data) {
        const bool truncate_it = GPOINTER_TO_INT(data);
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a;
        uint64_t n;

        g_test_summary("An endpoint whose database was cut short or scribbled on while closed "
                       "opens and serves, in order and intact, the messages that can be read; "
                       "after a cut the damaged file is kept as NAME.db.damaged-TIMESTAMP and the "
                       "counters match what was recovered. Sends go on after the highest seq, and "
                       "the result survives an orderly close.");

        a = subscribe_new(e, "a", false);
        send_range(e, 1, 600);
        for (unsigned i = 1; i <= 10; i++)
                assert_ack(e, a, i, 1);
        g_assert_cmpint(endpoint_close(e), ==, 0);

        damage_file(e->db_path, truncate_it, truncate_it ? 16384 : 4096);

        /* A cut reaches GDBM's structure, found at open; a scribble in the
         * middle may hit only records, found when they are read: delivery
         * then skips what does not decode, and the rest still comes. */
        g_assert_cmpint(endpoint_open(e), ==, 0);
        g_assert_cmpuint(e->stored_count, <=, 590);
        g_assert_cmpuint(e->stored_count, >, 0);
        a = subscription_find(e, "a");
        g_assert_cmpuint(a->pending, ==, e->stored_count);
        n = assert_replay_in_order(e, a);
        g_test_message("recovered %" PRIu64 " of 590 messages", n);
        g_assert_cmpuint(n, >, 0);
        if (truncate_it) {
                g_assert_true(has_damaged_file(dir));
                g_assert_cmpuint(n, ==, e->stored_count);
        } else
                g_assert_cmpuint(n, <=, e->stored_count);

        {
                _cleanup_(freep) char *id = NULL;
                uint64_t seq = 0;

                g_assert_cmpint(endpoint_send(e, "after", "x", 1, TIMESTAMP, &id, &seq), ==, 1);
                g_assert_cmpuint(seq, >=, e->next_seq - 1);
                g_assert_cmpuint(seq, >, 10);
        }
        g_assert_cmpint(endpoint_close(e), ==, 0);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        if (truncate_it)
                g_assert_cmpuint(e->stored_count, ==, n + 1);
}

static void test_recover_unreadable(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = NULL;
        g_autofree char *path = g_build_filename(dir, NAME ".db", NULL);
        g_autoptr(GError) error = NULL;

        g_test_summary("An endpoint whose file is not a database at all opens empty, numbering "
                       "from 1, with the file kept as NAME.db.damaged-TIMESTAMP.");

        g_file_set_contents(path, "not a database", -1, &error);
        g_assert_no_error(error);
        e = open_endpoint(dir);
        g_assert_true(has_damaged_file(dir));
        assert_counters(e, 0, 0);
        g_assert_cmpuint(send_new(e, "m1", "payload-1"), ==, 1);
}

static void test_recover_damaged_meta(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        RecordKey key;

        g_test_summary("A meta record that does not decode sends the endpoint to recovery: its "
                       "messages and subscriptions are found from their own records.");

        (void) subscribe_new(e, "a", false);
        send_range(e, 1, 5);
        g_assert_cmpint(endpoint_close(e), ==, 0);
        {
                _cleanup_(store_freep) Store *store = NULL;

                g_assert_cmpint(store_open(e->db_path, false, &store), ==, 0);
                record_key_meta(&key);
                g_assert_cmpint(store_put(store, key.data, key.size, "\x09junk", 5), ==, 0);
        }

        g_assert_cmpint(endpoint_open(e), ==, 0);
        g_assert_true(has_damaged_file(dir));
        assert_counters(e, 5, range_bytes(1, 5));
        g_assert_cmpuint(e->next_seq, ==, 6);
        g_assert_cmpuint(assert_replay_in_order(e, subscription_find(e, "a")), ==, 5);
}

#ifdef DURABUS_FAULT_INJECTION

/* ---- storage faults ---- */

static void test_fault_send_write(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a;

        g_test_summary("A Send whose message or index write fails returns the error and leaves "
                       "neither record, nor changed counters; after the fault the next Send "
                       "takes the next seq and the id is free.");

        a = subscribe_new(e, "a", false);
        send_range(e, 1, 2);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);

        for (unsigned i = 0; i < 2; i++) {
                _cleanup_(freep) char *id = NULL;
                uint64_t seq = 0;

                g_setenv("DURABUS_FAULTS", i == 0 ? "put:ENOSPC:key=m" : "put:EIO:key=i", TRUE);
                g_assert_cmpint(endpoint_send(e, "m3", "payload-3", 9, TIMESTAMP, &id, &seq), ==,
                                i == 0 ? -ENOSPC : -EIO);
                g_unsetenv("DURABUS_FAULTS");
                g_assert_null(id);
                g_assert_cmpint(message_record_exists(e, 3), ==, 0);
                g_assert_cmpint(index_record_exists(e, "m3"), ==, 0);
                assert_counters(e, 2, range_bytes(1, 2));
                g_assert_cmpuint(e->next_seq, ==, 3);
                g_assert_cmpuint(a->pending, ==, 2);
        }

        g_assert_cmpuint(send_new(e, "m3", "payload-3"), ==, 3);
        g_assert_cmpuint(assert_replay_in_order(e, a), ==, 3);
}

static void test_fault_commit_then_unsend(gconstpointer data) {
        const char *rule = data;
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *a;

        g_test_summary("When the commit of stored Sends fails (a write or the sync), taking them "
                       "back newest first works even while the disk still refuses writes, and "
                       "leaves nothing: not in memory, not in the file after a crash, not in any "
                       "delivery; the next commit writes what was left dirty.");

        a = subscribe_new(e, "a", false);
        send_range(e, 1, 3);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        assert_ack(e, a, 1, 1);
        send_range(e, 4, 6);

        g_setenv("DURABUS_FAULTS", rule, TRUE);
        g_assert_cmpint(endpoint_commit(e, true), <, 0);
        for (uint64_t seq = 6; seq >= 4; seq--)
                g_assert_cmpint(endpoint_unsend(e, seq, 1), ==, 0);
        g_unsetenv("DURABUS_FAULTS");

        assert_counters(e, 2, range_bytes(2, 3));
        g_assert_cmpuint(a->pending, ==, 2);
        for (uint64_t seq = 4; seq <= 6; seq++)
                g_assert_cmpint(message_record_exists(e, seq), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m5"), ==, 0);
        g_assert_cmpuint(assert_replay_in_order(e, a), ==, 2);

        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        crash(&e);
        e = open_endpoint(dir);
        assert_counters(e, 2, range_bytes(2, 3));
        a = subscription_find(e, "a");
        g_assert_cmpuint(a->pending, ==, 2);
        assert_ack(e, a, 1, 0);
        g_assert_cmpuint(assert_replay_in_order(e, a), ==, 2);
        /* The seqs of refused Sends are not given out again. */
        g_assert_cmpuint(send_new(e, "m7", "payload-7"), ==, 7);
}

#endif

/* ---- removal ---- */

static void test_remove_files(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);

        g_test_summary("remove_files closes the database and deletes its file; doing it again is "
                       "harmless.");

        send_range(e, 1, 1);
        g_assert_true(g_file_test(e->db_path, G_FILE_TEST_EXISTS));
        g_assert_cmpint(endpoint_remove_files(e), ==, 0);
        g_assert_null(e->store);
        g_assert_false(g_file_test(e->db_path, G_FILE_TEST_EXISTS));
        g_assert_cmpint(endpoint_remove_files(e), ==, 0);
}

/* ---- limits ---- */

/* Sends "m<n>"/"payload-<n>" and returns what endpoint_send() did. */
static int try_send(Endpoint *e, unsigned n, uint64_t expires) {
        g_autofree char *id = g_strdup_printf("m%u", n);
        g_autofree char *payload = g_strdup_printf("payload-%u", n);
        _cleanup_(freep) char *ret_id = NULL;
        uint64_t seq = 0;

        return endpoint_send_full(e, id, payload, strlen(payload), TIMESTAMP, expires, &ret_id, &seq);
}

static void test_limits_refuse_messages(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        _cleanup_(freep) char *id = NULL;
        uint64_t seq = 0;

        g_test_summary("With max_messages 3 the fourth Send is refused with -ENOBUFS and stores nothing; a "
                       "Send of a stored id still returns the stored message.");
        e->limits.max_messages = 3;
        send_range(e, 1, 3);
        g_assert_cmpint(try_send(e, 4, 0), ==, -ENOBUFS);
        assert_counters(e, 3, range_bytes(1, 3));
        g_assert_cmpint(message_record_exists(e, 4), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m4"), ==, 0);
        g_assert_cmpint(endpoint_send(e, "m2", "payload-2", 9, TIMESTAMP, &id, &seq), ==, 0);
        g_assert_cmpuint(seq, ==, 2);
        g_assert_cmpuint(e->discarded, ==, 0);
}

static void test_limits_refuse_bytes(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);

        g_test_summary("With max_bytes at the size of two messages the third is refused with -ENOBUFS; a "
                       "message larger than the limit by itself is -EMSGSIZE, also with discard_oldest.");
        e->limits.max_bytes = range_bytes(1, 2);
        send_range(e, 1, 2);
        g_assert_cmpint(try_send(e, 3, 0), ==, -ENOBUFS);
        assert_counters(e, 2, range_bytes(1, 2));

        e->limits.max_bytes = 5;
        e->limits.discard_oldest = true;
        g_assert_cmpint(try_send(e, 3, 0), ==, -EMSGSIZE);
        assert_counters(e, 2, range_bytes(1, 2));
        g_assert_cmpuint(e->discarded, ==, 0);
}

static void test_limits_discard_oldest(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("With discard_oldest a full endpoint stores the new message and deletes the oldest, "
                       "counting them; a discarded message in flight frees its place in the window; the "
                       "count survives a close.");
        e->limits = (EndpointLimits) { .max_messages = 3, .discard_oldest = true };
        s = subscribe_new(e, "worker", false);
        endpoint_rewind(e, s);
        s->window = 10;
        send_range(e, 1, 3);
        assert_delivers(e, s, "m1", 1, 1);
        g_assert_cmpuint(s->in_flight.n, ==, 1);

        g_assert_cmpint(try_send(e, 4, 0), ==, 1);
        g_assert_cmpint(try_send(e, 5, 0), ==, 1);
        assert_counters(e, 3, range_bytes(3, 5));
        g_assert_cmpuint(e->discarded, ==, 2);
        g_assert_cmpuint(e->first_seq, ==, 3);
        g_assert_cmpint(message_record_exists(e, 1), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m2"), ==, 0);
        g_assert_cmpuint(s->in_flight.n, ==, 0);
        g_assert_cmpuint(s->pending, ==, 3);
        assert_delivers(e, s, "m3", 3, 1);

        g_assert_cmpint(endpoint_close(e), ==, 0);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        g_assert_cmpuint(e->discarded, ==, 2);
        assert_counters(e, 3, range_bytes(3, 5));
}

static void test_limits_subscriptions(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s = NULL;

        g_test_summary("With max_subscriptions 2 a third durable subscription is refused with -ENOBUFS; "
                       "the existing ones are still found.");
        e->limits.max_subscriptions = 2;
        subscribe_new(e, "a", false);
        subscribe_new(e, "b", false);
        g_assert_cmpint(endpoint_durable_subscription(e, "c", false, &s), ==, -ENOBUFS);
        g_assert_null(s);
        g_assert_cmpuint(g_hash_table_size(e->durable), ==, 2);
        subscription_find(e, "b");
}

/* ---- time-to-live ---- */

/* An expiry time long past, and one far ahead. */
#define EXPIRED UINT64_C(1)
#define FAR_AHEAD UINT64_MAX

static void test_ttl_not_delivered(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        Subscription *s;

        g_test_summary("An expired message is never delivered: the cursor that meets it deletes and counts "
                       "it and goes on to the next message.");
        s = subscribe_new(e, "worker", false);
        endpoint_rewind(e, s);
        s->window = 10;
        g_assert_cmpint(try_send(e, 1, EXPIRED), ==, 1);
        g_assert_cmpint(try_send(e, 2, 0), ==, 1);
        g_assert_cmpint(try_send(e, 3, FAR_AHEAD), ==, 1);

        assert_delivers(e, s, "m2", 2, 1);
        assert_delivers(e, s, "m3", 3, 1);
        assert_delivers_nothing(e, s);
        g_assert_cmpuint(e->expired, ==, 1);
        g_assert_cmpint(message_record_exists(e, 1), ==, 0);
        g_assert_cmpint(index_record_exists(e, "m1"), ==, 0);
        assert_counters(e, 2, range_bytes(2, 3));
        g_assert_cmpuint(s->pending, ==, 2);
}

static void test_ttl_sweep_in_steps(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        uint64_t due = 0, deleted = 0, total = 0;
        unsigned steps = 0;
        int r;

        g_test_summary("The sweep deletes expired messages a bounded number of records at a time, leaves "
                       "the others, and then waits for the next one to expire; the narrower range and the "
                       "count survive a close.");
        g_assert_cmpint(try_send(e, 1, 0), ==, 1);
        for (unsigned i = 2; i <= 11; i++)
                g_assert_cmpint(try_send(e, i, EXPIRED), ==, 1);
        g_assert_cmpint(try_send(e, 12, TIMESTAMP * 2), ==, 1);
        g_assert_cmpint(try_send(e, 13, 0), ==, 1);
        g_assert_cmpuint(e->expiring_from, ==, 2);
        g_assert_cmpuint(e->expiring_to, ==, 12);

        while ((r = endpoint_sweep(e, TIMESTAMP, 4, &due, &deleted)) == 1) {
                total += deleted;
                steps++;
                g_assert_cmpuint(due, ==, TIMESTAMP);
        }
        g_assert_cmpint(r, ==, 0);
        total += deleted;
        g_assert_cmpuint(steps, ==, 2);
        g_assert_cmpuint(total, ==, 10);
        g_assert_cmpuint(e->expired, ==, 10);
        g_assert_cmpuint(due, ==, TIMESTAMP * 2);
        assert_counters(e, 3, range_bytes(1, 1) + range_bytes(12, 13));
        g_assert_cmpuint(e->expiring_from, ==, 12);
        g_assert_cmpuint(e->expiring_to, ==, 12);

        /* Not due yet: nothing read. */
        g_assert_cmpint(endpoint_sweep(e, TIMESTAMP + 1, 4, &due, &deleted), ==, 0);
        g_assert_cmpuint(due, ==, TIMESTAMP * 2);
        g_assert_cmpuint(deleted, ==, 0);

        g_assert_cmpint(endpoint_close(e), ==, 0);
        g_assert_cmpint(endpoint_open(e), ==, 0);
        g_assert_cmpuint(e->expired, ==, 10);
        g_assert_cmpuint(e->expiring_from, ==, 12);

        /* Once it expires, nothing with a time-to-live is left. */
        g_assert_cmpint(endpoint_sweep(e, TIMESTAMP * 2, 100, &due, &deleted), ==, 0);
        g_assert_cmpuint(deleted, ==, 1);
        g_assert_cmpuint(due, ==, UINT64_MAX);
        g_assert_cmpuint(e->expiring_from, ==, 0);
        assert_counters(e, 2, range_bytes(1, 1) + range_bytes(13, 13));
}

static void test_ttl_sweep_reads_nothing_without_ttl(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        uint64_t due = 0, deleted = 42;

        g_test_summary("Without any message with a time-to-live the sweep has nothing to do.");
        send_range(e, 1, 5);
        g_assert_cmpint(endpoint_sweep(e, TIMESTAMP, 100, &due, &deleted), ==, 0);
        g_assert_cmpuint(due, ==, UINT64_MAX);
        g_assert_cmpuint(deleted, ==, 0);
        assert_counters(e, 5, range_bytes(1, 5));
}

static void test_ttl_sweep_after_crash(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(endpoint_freep) Endpoint *e = open_endpoint(dir);
        uint64_t due = 0, deleted = 0;

        g_test_summary("Messages with a time-to-live whose commit a crash cut short are found by the repair "
                       "(it reads every message anyway) and swept after the restart.");
        send_range(e, 1, 2);
        g_assert_cmpint(endpoint_commit(e, true), ==, 0);
        g_assert_cmpint(try_send(e, 3, EXPIRED), ==, 1);
        crash(&e);

        e = open_endpoint(dir);
        g_assert_cmpuint(e->expiring_from, ==, 3);
        g_assert_cmpuint(e->expiring_to, ==, 3);
        g_assert_cmpint(endpoint_sweep(e, TIMESTAMP, 100, &due, &deleted), ==, 0);
        g_assert_cmpuint(deleted, ==, 1);
        assert_counters(e, 2, range_bytes(1, 2));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/endpoint/new/derives-path-bus-name-and-database", test_new_derives_names);
        g_test_add_func("/endpoint/new/free-accepts-null", test_free_accepts_null);
        g_test_add_func("/endpoint/open/creates-an-empty-database", test_open_creates_database);
        g_test_add_func("/endpoint/send/numbers-messages-from-1", test_send_numbers_from_1);
        g_test_add_func("/endpoint/send/opens-a-closed-endpoint", test_send_opens_a_closed_endpoint);
        g_test_add_func("/endpoint/send/generates-32-hex-ids", test_send_generates_ids);
        g_test_add_func("/endpoint/send/with-a-stored-id-returns-the-stored-message", test_send_idempotent);
        g_test_add_func("/endpoint/send/reuses-an-id-once-its-message-is-deleted", test_send_reuses_id_after_delete);
        g_test_add_func("/endpoint/send/counts-messages-and-bytes", test_send_counters);
        g_test_add_func("/endpoint/unsend/takes-a-message-back", test_unsend);
        g_test_add_func("/endpoint/unsend/takes-a-range-back", test_unsend_range);
        g_test_add_func("/endpoint/subscribe/start-all-has-every-stored-message-pending", test_subscribe_start_all);
        g_test_add_func("/endpoint/subscribe/start-new-has-nothing-pending", test_subscribe_start_new);
        g_test_add_func("/endpoint/subscribe/finds-an-existing-subscription", test_subscribe_finds_existing);
        g_test_add_func("/endpoint/subscribe/first-with-start-new-deletes-older-messages",
                        test_subscribe_first_start_new_collects);
        g_test_add_func("/endpoint/delivery/replays-in-seq-order-then-live", test_delivery_in_seq_order);
        g_test_add_func("/endpoint/delivery/stops-at-the-window", test_delivery_window);
        g_test_add_func("/endpoint/delivery/counts-1-then-2-then-3", test_delivery_counts);
        g_test_add_func("/endpoint/delivery/counts-per-subscription", test_delivery_counts_per_subscription);
        g_test_add_func("/endpoint/delivery/counts-survive-a-crash-right-after-sending",
                        test_delivery_counts_survive_a_crash);
        g_test_add_func("/endpoint/delivery-count/kept-until-the-ack-is-written",
                        test_delivery_count_kept_until_ack_is_written);
        g_test_add_func("/endpoint/ack/returns-1-when-new-and-0-otherwise", test_ack_returns_whether_new);
        g_test_add_func("/endpoint/ack/deletes-when-all-acked", test_ack_deletes_when_all_acked);
        g_test_add_func("/endpoint/ack/keeps-messages-while-no-subscription-exists",
                        test_ack_without_subscription_keeps);
        g_test_add_func("/endpoint/forget/deletes-what-only-it-was-waiting-for", test_forget_collects);
        g_test_add_func("/endpoint/forget/of-the-last-subscription-keeps-messages", test_forget_last_keeps);
        g_test_add_func("/endpoint/clear/removes-every-message", test_clear);
        g_test_add_func("/endpoint/close/reopen-keeps-everything", test_close_reopen_keeps_everything);
        g_test_add_func("/endpoint/close/marks-the-database-clean", test_close_marks_clean);
        g_test_add_func("/endpoint/memory/acks-keep-the-sets-small", test_memory_stays_flat);
        g_test_add_func("/endpoint/remove-files/deletes-the-database", test_remove_files);
        g_test_add_func("/endpoint/limits/max-messages-refuses-the-next-send", test_limits_refuse_messages);
        g_test_add_func("/endpoint/limits/max-bytes-refuses-the-next-send", test_limits_refuse_bytes);
        g_test_add_func("/endpoint/limits/discard-oldest-drops-and-counts", test_limits_discard_oldest);
        g_test_add_func("/endpoint/limits/max-subscriptions-refuses-a-new-one", test_limits_subscriptions);
        g_test_add_func("/endpoint/ttl/expired-message-is-never-delivered", test_ttl_not_delivered);
        g_test_add_func("/endpoint/ttl/sweep-collects-in-bounded-steps", test_ttl_sweep_in_steps);
        g_test_add_func("/endpoint/ttl/sweep-reads-nothing-without-ttl", test_ttl_sweep_reads_nothing_without_ttl);
        g_test_add_func("/endpoint/ttl/sweep-finds-what-a-crash-left-uncommitted", test_ttl_sweep_after_crash);
        g_test_add_data_func("/endpoint/recover/serves-what-is-left-of-a-truncated-database", GINT_TO_POINTER(true),
                             test_recover_damaged);
        g_test_add_data_func("/endpoint/recover/serves-what-is-left-of-a-scribbled-database", GINT_TO_POINTER(false),
                             test_recover_damaged);
        g_test_add_func("/endpoint/recover/opens-empty-when-nothing-is-readable", test_recover_unreadable);
        g_test_add_func("/endpoint/recover/finds-messages-without-the-meta-record", test_recover_damaged_meta);
#ifdef DURABUS_FAULT_INJECTION
        g_test_add_func("/endpoint/faults/failed-send-leaves-no-record", test_fault_send_write);
        g_test_add_data_func("/endpoint/faults/failed-sync-then-unsend-leaves-nothing", "sync:EIO",
                             test_fault_commit_then_unsend);
        g_test_add_data_func("/endpoint/faults/failed-write-then-unsend-leaves-nothing", "put:ENOSPC",
                             test_fault_commit_then_unsend);
#endif
        /* The repair and ephemeral suites come last and each ends with a test
         * of a known bug, so that while those fail every other test still runs. */
        g_test_add_func("/endpoint/repair/recounts-after-an-unclean-close", test_repair_recounts);
        g_test_add_func("/endpoint/repair/keeps-deleted-messages-deleted", test_repair_after_deletes);
        g_test_add_func("/endpoint/repair/restores-a-missing-index-record", test_repair_restores_index);
        g_test_add_func("/endpoint/repair/skips-a-damaged-message-record", test_repair_skips_damaged_message);
        g_test_add_func("/endpoint/repair/keeps-a-message-beyond-a-deleted-one", test_repair_keeps_messages_beyond_a_gap);
        g_test_add_func("/endpoint/ephemeral/gets-live-messages-only", test_ephemeral_live_only);
        g_test_add_func("/endpoint/ephemeral/starts-at-the-next-message", test_ephemeral_starts_at_next_message);

        return g_test_run();
}
