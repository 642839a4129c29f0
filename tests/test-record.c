/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/record.c: the keys of an endpoint database, the
 * encoding of every record type (each value decodes to what was encoded),
 * and the decoders' answer to damaged values: -EBADMSG, never a read out of
 * bounds (run these under valgrind or ASan to make that last part count).
 */

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "record.h"
#include "util.h"

/* Size of the fixed part of each value, as the format defines it. */
#define META_HEADER_SIZE (1 + 1 + 4 * 8)         /* format, clean, 4 counters */
#define MESSAGE_HEADER_SIZE (1 + 8 + 2)          /* format, timestamp, id size */
#define SUBSCRIPTION_HEADER_SIZE (1 + 3 * 8 + 4) /* format, 3 counters, count */

/* Decoders get their input in a buffer of exactly its size, so that valgrind
 * and ASan see any read past its end. */
static void *copy_exact(const void *data, size_t size) {
        return g_memdup2(data, size > 0 ? size : 1);
}

static void assert_meta_rejected(const void *data, size_t size) {
        g_autofree void *copy = copy_exact(data, size);
        MetaRecord meta = { .next_seq = 4242, .subscribers = NULL };

        g_assert_cmpint(record_decode_meta(copy, size, &meta), ==, -EBADMSG);
        /* Nothing is returned on failure. */
        g_assert_cmpuint(meta.next_seq, ==, 4242);
        g_assert_null(meta.subscribers);
}

static void assert_message_rejected(const void *data, size_t size) {
        g_autofree void *copy = copy_exact(data, size);
        MessageRecord *m = NULL;

        g_assert_cmpint(record_decode_message(copy, size, &m), ==, -EBADMSG);
        g_assert_null(m);
}

static void assert_subscription_rejected(const void *data, size_t size) {
        g_autofree void *copy = copy_exact(data, size);
        SubscriptionRecord s = { .floor = 4242 };

        g_assert_cmpint(record_decode_subscription(copy, size, &s), ==, -EBADMSG);
        g_assert_cmpuint(s.floor, ==, 4242);
        g_assert_null(s.acked);
}

/* Little-endian bytes of v, as the value encoders write integers. */
static void put_le(GByteArray *a, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; i++, v >>= 8) {
                uint8_t b = (uint8_t) (v & 0xff);
                g_byte_array_append(a, &b, 1);
        }
}

static void put_u8(GByteArray *a, uint8_t v) {
        g_byte_array_append(a, &v, 1);
}

static void put_str0(GByteArray *a, const char *s) {
        g_byte_array_append(a, (const guint8 *) s, strlen(s) + 1);
}

/* A meta value written by hand, so that each field can be made wrong. */
static GByteArray *meta_bytes(uint8_t format, uint8_t clean, uint64_t next_seq, uint64_t first_seq) {
        GByteArray *a = g_byte_array_new();

        put_u8(a, format);
        put_u8(a, clean);
        put_le(a, next_seq, 8);
        put_le(a, first_seq, 8);
        put_le(a, 3, 8);  /* stored_count */
        put_le(a, 30, 8); /* stored_bytes */
        return a;
}

/* A subscription value written by hand: floor 10, count n, then the items. */
static GByteArray *subscription_bytes(uint32_t n, const uint64_t *items, size_t n_items) {
        GByteArray *a = g_byte_array_new();

        put_u8(a, 1);
        put_le(a, 10, 8); /* floor */
        put_le(a, 12, 8); /* delivered_upto */
        put_le(a, 5, 8);  /* pending */
        put_le(a, n, 4);
        for (size_t i = 0; i < n_items; i++)
                put_le(a, items[i], 8);
        return a;
}

/* ---- keys ---- */

static void test_keys_layout(void) {
        static const uint8_t meta[] = { 0, 'm', 'e', 't', 'a' };
        static const uint8_t message[] = { 'm', 0, 0, 0, 0, 0, 0, 0x01, 0x02 };
        static const uint8_t delivery[] = { 'd', 0, 0, 0, 0, 0, 0, 0, 7, 'w', '1' };
        RecordKey key;

        g_test_summary("Keys are a tag byte followed by a big-endian sequence number and/or a name, "
                       "with no terminating NUL.");

        record_key_meta(&key);
        g_assert_cmpmem(key.data, key.size, meta, sizeof(meta));

        record_key_message(&key, 0x0102);
        g_assert_cmpmem(key.data, key.size, message, sizeof(message));

        record_key_index(&key, "order-7");
        g_assert_cmpmem(key.data, key.size, "iorder-7", 8);

        record_key_subscription(&key, "worker");
        g_assert_cmpmem(key.data, key.size, "sworker", 7);

        record_key_delivery(&key, 7, "w1");
        g_assert_cmpmem(key.data, key.size, delivery, sizeof(delivery));
}

static void test_keys_longest_names_fit(void) {
        g_autofree char *id = g_strnfill(MESSAGE_ID_MAX, 'i');
        g_autofree char *subscriber = g_strnfill(SUBSCRIBER_NAME_MAX, 's');
        RecordKey key;

        g_test_summary("The longest message id and the longest subscriber name fit in a key.");

        record_key_index(&key, id);
        g_assert_cmpuint(key.size, ==, 1 + MESSAGE_ID_MAX);
        g_assert_cmpint(key.data[0], ==, 'i');
        g_assert_cmpmem(key.data + 1, key.size - 1, id, MESSAGE_ID_MAX);

        record_key_delivery(&key, UINT64_MAX, subscriber);
        g_assert_cmpuint(key.size, ==, 1 + 8 + SUBSCRIBER_NAME_MAX);
        g_assert_cmpmem(key.data + 9, key.size - 9, subscriber, SUBSCRIBER_NAME_MAX);
}

static void test_keys_sort_by_seq(void) {
        static const uint64_t seqs[] = { 0, 1, 255, 256, 65535, 65536, UINT64_MAX - 1, UINT64_MAX };

        g_test_summary("Message keys compare bytewise in the order of their sequence numbers.");

        for (size_t i = 1; i < ELEMENTSOF(seqs); i++) {
                RecordKey lower, higher;

                record_key_message(&lower, seqs[i - 1]);
                record_key_message(&higher, seqs[i]);
                g_assert_cmpuint(lower.size, ==, higher.size);
                g_assert_cmpint(memcmp(lower.data, higher.data, lower.size), <, 0);
        }
}

/* ---- meta ---- */

static void test_meta_round_trip(void) {
        char *subscribers[] = { "worker", "org.example.ui-1", "_", NULL };
        MetaRecord in = {
                .clean = true,
                .next_seq = UINT64_MAX,
                .first_seq = 0x0123456789abcdefULL,
                .stored_count = 3,
                .stored_bytes = 1ULL << 40,
                .subscribers = subscribers,
        };
        _cleanup_(meta_record_done) MetaRecord out = {};
        _cleanup_(freep) void *value = NULL;
        size_t size;

        g_test_summary("A meta record with subscribers decodes to the same flag, counters and names.");

        g_assert_cmpint(record_encode_meta(&in, &value, &size), ==, 0);
        g_assert_cmpuint(((const uint8_t *) value)[0], ==, 1); /* the format byte */
        g_assert_cmpint(record_decode_meta(value, size, &out), ==, 0);

        g_assert_true(out.clean);
        g_assert_cmpuint(out.next_seq, ==, in.next_seq);
        g_assert_cmpuint(out.first_seq, ==, in.first_seq);
        g_assert_cmpuint(out.stored_count, ==, in.stored_count);
        g_assert_cmpuint(out.stored_bytes, ==, in.stored_bytes);
        g_assert_nonnull(out.subscribers);
        g_assert_cmpuint(g_strv_length(out.subscribers), ==, 3);
        for (size_t i = 0; i < 3; i++)
                g_assert_cmpstr(out.subscribers[i], ==, subscribers[i]);
}

static void test_meta_round_trip_without_subscribers(void) {
        MetaRecord in = { .clean = false, .next_seq = 1, .first_seq = 1 };
        _cleanup_(meta_record_done) MetaRecord out = {};
        _cleanup_(freep) void *value = NULL;
        size_t size;

        g_test_summary("A meta record without subscribers decodes to an empty, NULL-terminated list.");

        g_assert_cmpint(record_encode_meta(&in, &value, &size), ==, 0);
        g_assert_cmpuint(size, ==, META_HEADER_SIZE);
        g_assert_cmpint(record_decode_meta(value, size, &out), ==, 0);

        g_assert_false(out.clean);
        g_assert_cmpuint(out.next_seq, ==, 1);
        g_assert_cmpuint(out.first_seq, ==, 1);
        g_assert_cmpuint(out.stored_count, ==, 0);
        g_assert_cmpuint(out.stored_bytes, ==, 0);
        g_assert_nonnull(out.subscribers);
        g_assert_null(out.subscribers[0]);
}

static void test_meta_rejects_damage(void) {
        g_autofree char *too_long = g_strnfill(SUBSCRIBER_NAME_MAX + 1, 'w');

        g_test_summary("Meta values with a wrong format byte, a clean flag other than 0 or 1, "
                       "first_seq above next_seq, an unterminated or invalid subscriber name are "
                       "refused with -EBADMSG.");

        assert_meta_rejected("", 0);

        for (unsigned format = 0; format < 256; format++) {
                g_autoptr(GByteArray) a = NULL;

                if (format == 1)
                        continue;
                a = meta_bytes((uint8_t) format, 0, 5, 1);
                assert_meta_rejected(a->data, a->len);
        }

        {
                g_autoptr(GByteArray) a = meta_bytes(1, 2, 5, 1);
                assert_meta_rejected(a->data, a->len);
        }
        {
                g_autoptr(GByteArray) a = meta_bytes(1, 0, 5, 6);
                assert_meta_rejected(a->data, a->len);
        }
        {
                /* first_seq == next_seq is an empty endpoint, and fine. */
                g_autoptr(GByteArray) a = meta_bytes(1, 0, 5, 5);
                _cleanup_(meta_record_done) MetaRecord meta = {};

                g_assert_cmpint(record_decode_meta(a->data, a->len, &meta), ==, 0);
        }
        {
                /* The last name lacks its NUL. */
                g_autoptr(GByteArray) a = meta_bytes(1, 0, 5, 1);
                put_str0(a, "first");
                g_byte_array_append(a, (const guint8 *) "second", 6);
                assert_meta_rejected(a->data, a->len);
        }
        {
                const char *invalid[] = { "", "a b", "a/b", ":1.5", too_long };

                for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                        g_autoptr(GByteArray) a = meta_bytes(1, 0, 5, 1);

                        g_test_message("subscriber '%s'", invalid[i]);
                        put_str0(a, "fine");
                        put_str0(a, invalid[i]);
                        assert_meta_rejected(a->data, a->len);
                }
        }
}

static void test_meta_truncation(void) {
        char *subscribers[] = { "worker", "ui", NULL };
        MetaRecord in = { .next_seq = 9, .first_seq = 4, .stored_count = 5, .subscribers = subscribers };
        _cleanup_(freep) void *value = NULL;
        size_t size;

        g_test_summary("A meta value cut short is refused, except where the cut falls just after a "
                       "complete subscriber name: the format carries no name count, so such a value "
                       "reads as one with fewer subscribers.");

        g_assert_cmpint(record_encode_meta(&in, &value, &size), ==, 0);
        g_assert_cmpuint(size, ==, META_HEADER_SIZE + strlen("worker") + 1 + strlen("ui") + 1);

        for (size_t len = 0; len < size; len++) {
                g_autofree void *copy = copy_exact(value, len);
                _cleanup_(meta_record_done) MetaRecord out = {};
                size_t names_kept;
                int r;

                if (len == META_HEADER_SIZE)
                        names_kept = 0;
                else if (len == META_HEADER_SIZE + strlen("worker") + 1)
                        names_kept = 1;
                else
                        names_kept = SIZE_MAX; /* refused */

                r = record_decode_meta(copy, len, &out);
                if (r != (names_kept == SIZE_MAX ? -EBADMSG : 0))
                        g_test_message("cut at %zu of %zu bytes: %d", len, size, r);

                if (names_kept == SIZE_MAX) {
                        g_assert_cmpint(r, ==, -EBADMSG);
                        continue;
                }
                g_assert_cmpint(r, ==, 0);
                g_assert_cmpuint(g_strv_length(out.subscribers), ==, names_kept);
                if (names_kept == 1)
                        g_assert_cmpstr(out.subscribers[0], ==, "worker");
        }
}

/* ---- messages ---- */

static void test_message_round_trip(void) {
        g_autofree char *longest_id = g_strnfill(MESSAGE_ID_MAX, 'x');
        static const char json[] = "{\"text\": \"caf\xc3\xa9\", \"n\": 1}";
        const struct {
                uint64_t timestamp;
                const char *id;
                const char *payload;
        } cases[] = {
                { 1700000000000000ULL, "order-1", json },
                { 0, "e", "" },
                { UINT64_MAX, longest_id, "payload" },
        };

        g_test_summary("A message record decodes to the same timestamp, id and payload, for an "
                       "empty payload and for the longest id too.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(message_record_freep) MessageRecord *m = NULL;
                _cleanup_(freep) void *value = NULL;
                g_autofree void *copy = NULL;
                size_t payload_size = strlen(cases[i].payload), size;

                g_assert_cmpint(record_encode_message(cases[i].timestamp, cases[i].id, cases[i].payload,
                                                      payload_size, &value, &size),
                                ==, 0);
                g_assert_cmpuint(size, ==, MESSAGE_HEADER_SIZE + strlen(cases[i].id) + payload_size);

                copy = copy_exact(value, size);
                g_assert_cmpint(record_decode_message(copy, size, &m), ==, 0);
                g_assert_cmpuint(m->timestamp, ==, cases[i].timestamp);
                g_assert_cmpstr(m->id, ==, cases[i].id);
                g_assert_cmpstr(m->payload, ==, cases[i].payload);
                g_assert_cmpuint(m->payload_size, ==, payload_size);
        }
}

static void test_message_rejects_damage(void) {
        _cleanup_(freep) void *value = NULL;
        size_t size;

        g_test_summary("Message values with a wrong format byte, an id size of 0, over 255 or past "
                       "the end, or a NUL inside the id or the payload are refused with -EBADMSG.");

        g_assert_cmpint(record_encode_message(42, "abc", "hello", 5, &value, &size), ==, 0);

        assert_message_rejected("", 0);

        for (unsigned format = 0; format < 256; format++) {
                g_autofree uint8_t *copy = NULL;

                if (format == 1)
                        continue;
                copy = g_memdup2(value, size);
                copy[0] = (uint8_t) format;
                assert_message_rejected(copy, size);
        }

        {
                /* Id sizes: 0, past the end (one more than the id and the payload
                 * together, and the largest), over MESSAGE_ID_MAX. */
                const uint16_t id_sizes[] = { 0, 3 + 5 + 1, 0xffff, MESSAGE_ID_MAX + 1 };

                for (size_t i = 0; i < ELEMENTSOF(id_sizes); i++) {
                        g_autofree uint8_t *copy = g_memdup2(value, size);

                        g_test_message("id size %u", id_sizes[i]);
                        copy[9] = (uint8_t) (id_sizes[i] & 0xff);
                        copy[10] = (uint8_t) (id_sizes[i] >> 8);
                        assert_message_rejected(copy, size);
                }
        }
        {
                /* A 256-byte id with enough bytes behind it is still too long. */
                g_autoptr(GByteArray) a = g_byte_array_new();
                g_autofree char *id = g_strnfill(MESSAGE_ID_MAX + 1, 'x');

                put_u8(a, 1);
                put_le(a, 42, 8);
                put_le(a, MESSAGE_ID_MAX + 1, 2);
                g_byte_array_append(a, (const guint8 *) id, MESSAGE_ID_MAX + 1);
                g_byte_array_append(a, (const guint8 *) "p", 1);
                assert_message_rejected(a->data, a->len);
        }
        {
                g_autofree uint8_t *copy = g_memdup2(value, size);

                copy[MESSAGE_HEADER_SIZE + 1] = '\0'; /* "a\0c" */
                assert_message_rejected(copy, size);
        }
        {
                g_autofree uint8_t *copy = g_memdup2(value, size);

                copy[size - 1] = '\0'; /* "hell\0" */
                assert_message_rejected(copy, size);
        }
}

static void test_message_truncation(void) {
        static const char id[] = "id-7";
        static const char payload[] = "{\"a\":1}";
        const size_t fixed = MESSAGE_HEADER_SIZE + strlen(id);
        _cleanup_(freep) void *value = NULL;
        size_t size;

        g_test_summary("A message value cut before the end of its id is refused. The payload runs "
                       "to the end of the value with no size of its own, so a cut inside it reads "
                       "as a shorter payload.");

        g_assert_cmpint(record_encode_message(7, id, payload, strlen(payload), &value, &size), ==, 0);
        g_assert_cmpuint(size, ==, fixed + strlen(payload));

        for (size_t len = 0; len < size; len++) {
                _cleanup_(message_record_freep) MessageRecord *m = NULL;
                g_autofree void *copy = copy_exact(value, len);
                int r;

                r = record_decode_message(copy, len, &m);
                if ((len < fixed) != (r == -EBADMSG))
                        g_test_message("cut at %zu of %zu bytes: %d", len, size, r);
                if (len < fixed) {
                        g_assert_cmpint(r, ==, -EBADMSG);
                        g_assert_null(m);
                } else {
                        g_assert_cmpint(r, ==, 0);
                        g_assert_cmpstr(m->id, ==, id);
                        g_assert_cmpuint(m->payload_size, ==, len - fixed);
                        g_assert_cmpmem(m->payload, m->payload_size, payload, len - fixed);
                }
        }
}

/* ---- subscriptions ---- */

static void test_subscription_round_trip(void) {
        uint64_t acked[] = { 12, 13, 20, UINT64_MAX };
        const SubscriptionRecord cases[] = {
                { .floor = 10, .delivered_upto = 21, .pending = 7, .acked = acked, .n_acked = 4 },
                { .floor = 1, .delivered_upto = 1, .pending = 0 },
                { .floor = UINT64_MAX, .delivered_upto = UINT64_MAX, .pending = UINT64_MAX },
        };

        g_test_summary("A subscription record decodes to the same floor, counters and "
                       "acknowledgements, with and without acknowledgements above the floor.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(subscription_record_done) SubscriptionRecord out = {};
                _cleanup_(freep) void *value = NULL;
                g_autofree void *copy = NULL;
                size_t size;

                g_assert_cmpint(record_encode_subscription(&cases[i], &value, &size), ==, 0);
                g_assert_cmpuint(size, ==, SUBSCRIPTION_HEADER_SIZE + 8 * cases[i].n_acked);

                copy = copy_exact(value, size);
                g_assert_cmpint(record_decode_subscription(copy, size, &out), ==, 0);
                g_assert_cmpuint(out.floor, ==, cases[i].floor);
                g_assert_cmpuint(out.delivered_upto, ==, cases[i].delivered_upto);
                g_assert_cmpuint(out.pending, ==, cases[i].pending);
                g_assert_cmpuint(out.n_acked, ==, cases[i].n_acked);
                if (cases[i].n_acked > 0)
                        g_assert_cmpmem(out.acked, out.n_acked * sizeof(uint64_t), cases[i].acked,
                                        cases[i].n_acked * sizeof(uint64_t));
                else
                        g_assert_null(out.acked);
        }
}

static void test_subscription_rejects_damage(void) {
        static const uint64_t sorted[] = { 11, 15, 30 };

        g_test_summary("Subscription values with a wrong format byte, a count that does not match "
                       "the items, acknowledgements below the floor, unsorted or repeated are "
                       "refused with -EBADMSG.");

        assert_subscription_rejected("", 0);

        for (unsigned format = 0; format < 256; format++) {
                g_autoptr(GByteArray) a = NULL;

                if (format == 1)
                        continue;
                a = subscription_bytes(3, sorted, 3);
                a->data[0] = (uint8_t) format;
                assert_subscription_rejected(a->data, a->len);
        }

        {
                /* The hand-made value itself is fine. */
                g_autoptr(GByteArray) a = subscription_bytes(3, sorted, 3);
                _cleanup_(subscription_record_done) SubscriptionRecord s = {};

                g_assert_cmpint(record_decode_subscription(a->data, a->len, &s), ==, 0);
                g_assert_cmpuint(s.n_acked, ==, 3);
        }

        {
                /* Counts that do not match: fewer, more, the largest (which must
                 * not make the decoder allocate for it). */
                const uint32_t counts[] = { 0, 2, 4, UINT32_MAX };

                for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                        g_autoptr(GByteArray) a = subscription_bytes(counts[i], sorted, 3);

                        g_test_message("count %u with 3 items", counts[i]);
                        assert_subscription_rejected(a->data, a->len);
                }
        }
        {
                /* A trailing byte that is no whole item. */
                g_autoptr(GByteArray) a = subscription_bytes(3, sorted, 3);

                put_u8(a, 0);
                assert_subscription_rejected(a->data, a->len);
        }
        {
                const uint64_t bad[][3] = {
                        { 9, 15, 30 },  /* below the floor of 10 */
                        { 11, 30, 15 }, /* not ascending */
                        { 11, 15, 15 }, /* repeated */
                        { 30, 15, 11 }, /* descending */
                };

                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        g_autoptr(GByteArray) a = subscription_bytes(3, bad[i], 3);

                        g_test_message("items %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                                       bad[i][0], bad[i][1], bad[i][2]);
                        assert_subscription_rejected(a->data, a->len);
                }
        }
}

static void test_subscription_truncation(void) {
        uint64_t acked[] = { 3, 4, 8 };
        SubscriptionRecord in = { .floor = 2, .delivered_upto = 9, .pending = 4, .acked = acked, .n_acked = 3 };
        _cleanup_(freep) void *value = NULL;
        size_t size;

        g_test_summary("A subscription value cut at any length is refused: its count says how long "
                       "it must be.");

        g_assert_cmpint(record_encode_subscription(&in, &value, &size), ==, 0);
        for (size_t len = 0; len < size; len++) {
                _cleanup_(subscription_record_done) SubscriptionRecord out = {};
                g_autofree void *copy = copy_exact(value, len);
                int r;

                r = record_decode_subscription(copy, len, &out);
                if (r != -EBADMSG)
                        g_test_message("cut at %zu of %zu bytes: %d", len, size, r);
                g_assert_cmpint(r, ==, -EBADMSG);
                g_assert_null(out.acked);
        }
}

/* ---- single numbers ---- */

static void test_seq_and_count_round_trip(void) {
        static const uint64_t seqs[] = { 0, 1, 0x0102030405060708ULL, UINT64_MAX };
        static const uint32_t counts[] = { 0, 1, 2, 0x01020304u, UINT32_MAX };
        static const uint8_t seq_le[] = { 8, 7, 6, 5, 4, 3, 2, 1 };

        g_test_summary("Index values (a sequence number) and delivery counts decode to what was "
                       "encoded; both are little-endian.");

        for (size_t i = 0; i < ELEMENTSOF(seqs); i++) {
                uint8_t bytes[8];
                uint64_t out = 0;

                record_encode_seq(seqs[i], bytes);
                g_assert_cmpint(record_decode_seq(bytes, sizeof(bytes), &out), ==, 0);
                g_assert_cmpuint(out, ==, seqs[i]);
        }

        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                uint8_t bytes[4];
                uint32_t out = 0;

                record_encode_count(counts[i], bytes);
                g_assert_cmpint(record_decode_count(bytes, sizeof(bytes), &out), ==, 0);
                g_assert_cmpuint(out, ==, counts[i]);
        }

        {
                uint8_t bytes[8];

                record_encode_seq(0x0102030405060708ULL, bytes);
                g_assert_cmpmem(bytes, sizeof(bytes), seq_le, sizeof(seq_le));
        }
}

static void test_seq_and_count_reject_other_sizes(void) {
        static const uint8_t bytes[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

        g_test_summary("A sequence number is exactly 8 bytes and a count exactly 4: any other size "
                       "is -EBADMSG and leaves the result alone.");

        for (size_t len = 0; len <= sizeof(bytes); len++) {
                g_autofree void *copy = copy_exact(bytes, len);
                uint64_t seq = 4242;
                uint32_t count = 4242;

                if (len != 8) {
                        g_assert_cmpint(record_decode_seq(copy, len, &seq), ==, -EBADMSG);
                        g_assert_cmpuint(seq, ==, 4242);
                }
                if (len != 4) {
                        g_assert_cmpint(record_decode_count(copy, len, &count), ==, -EBADMSG);
                        g_assert_cmpuint(count, ==, 4242);
                }
        }
}

static void test_message_expiring_round_trip(void) {
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        _cleanup_(freep) void *value = NULL, *plain = NULL;
        size_t size, plain_size;

        g_test_summary("A message with an expiry time is written in format 2 and reads back with it; "
                       "without one it stays format 1 (readable by older versions) and reads back as "
                       "never expiring; format 2 with expiry 0 or cut inside the expiry is damage.");
        g_assert_cmpint(record_encode_message_expiring(42, 4242, "abc", "hello", 5, &value, &size), ==, 0);
        g_assert_cmpuint(((uint8_t *) value)[0], ==, 2);
        g_assert_cmpint(record_decode_message(value, size, &m), ==, 0);
        g_assert_cmpuint(m->timestamp, ==, 42);
        g_assert_cmpuint(m->expires, ==, 4242);
        g_assert_cmpstr(m->id, ==, "abc");
        g_assert_cmpstr(m->payload, ==, "hello");
        m = message_record_free(m);

        g_assert_cmpint(record_encode_message_expiring(42, 0, "abc", "hello", 5, &plain, &plain_size), ==, 0);
        g_assert_cmpuint(((uint8_t *) plain)[0], ==, 1);
        g_assert_cmpint(record_decode_message(plain, plain_size, &m), ==, 0);
        g_assert_cmpuint(m->expires, ==, 0);

        {
                g_autofree uint8_t *copy = g_memdup2(value, size);

                memset(copy + 9, 0, 8);
                assert_message_rejected(copy, size);
                assert_message_rejected(value, 12);
        }
}

static void test_upkeep_round_trip(void) {
        const UpkeepRecord upkeep = { .expiring_from = 5, .expiring_to = 9, .discarded = 3, .expired = 7 };
        _cleanup_(freep) void *value = NULL;
        UpkeepRecord got = {};
        size_t size;

        g_test_summary("The upkeep record reads back as written; a wrong size, format, or a range that is "
                       "upside down or open at one end is -EBADMSG.");
        g_assert_cmpint(record_encode_upkeep(&upkeep, &value, &size), ==, 0);
        g_assert_cmpuint(size, ==, 33);
        g_assert_cmpint(record_decode_upkeep(value, size, &got), ==, 0);
        g_assert_cmpmem(&got, sizeof(got), &upkeep, sizeof(upkeep));

        g_assert_cmpint(record_decode_upkeep(value, size - 1, &got), ==, -EBADMSG);
        {
                g_autofree uint8_t *longer = g_malloc0(size + 1);

                memcpy(longer, value, size);
                g_assert_cmpint(record_decode_upkeep(longer, size + 1, &got), ==, -EBADMSG);
        }
        {
                const UpkeepRecord bad[] = {
                        { .expiring_from = 9, .expiring_to = 5 },
                        { .expiring_from = 0, .expiring_to = 5 },
                };

                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        _cleanup_(freep) void *v = NULL;
                        size_t n;

                        g_assert_cmpint(record_encode_upkeep(&bad[i], &v, &n), ==, 0);
                        g_assert_cmpint(record_decode_upkeep(v, n, &got), ==, -EBADMSG);
                }
        }
        ((uint8_t *) value)[0] = 2;
        g_assert_cmpint(record_decode_upkeep(value, size, &got), ==, -EBADMSG);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/record/keys/have-the-documented-layout", test_keys_layout);
        g_test_add_func("/record/keys/fit-the-longest-id-and-subscriber", test_keys_longest_names_fit);
        g_test_add_func("/record/keys/of-messages-sort-by-seq", test_keys_sort_by_seq);
        g_test_add_func("/record/meta/round-trips", test_meta_round_trip);
        g_test_add_func("/record/meta/round-trips-without-subscribers", test_meta_round_trip_without_subscribers);
        g_test_add_func("/record/meta/rejects-damaged-values", test_meta_rejects_damage);
        g_test_add_func("/record/meta/rejects-truncation-except-at-a-name-boundary", test_meta_truncation);
        g_test_add_func("/record/message/round-trips", test_message_round_trip);
        g_test_add_func("/record/message/rejects-damaged-values", test_message_rejects_damage);
        g_test_add_func("/record/message/rejects-truncation-before-the-payload", test_message_truncation);
        g_test_add_func("/record/message/with-an-expiry-round-trips-in-format-2", test_message_expiring_round_trip);
        g_test_add_func("/record/upkeep/round-trips-and-rejects-damage", test_upkeep_round_trip);
        g_test_add_func("/record/subscription/round-trips", test_subscription_round_trip);
        g_test_add_func("/record/subscription/rejects-damaged-values", test_subscription_rejects_damage);
        g_test_add_func("/record/subscription/rejects-truncation-at-every-length", test_subscription_truncation);
        g_test_add_func("/record/seq-and-count/round-trip", test_seq_and_count_round_trip);
        g_test_add_func("/record/seq-and-count/reject-other-sizes", test_seq_and_count_reject_other_sizes);

        return g_test_run();
}
