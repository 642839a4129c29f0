/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the stored-record decoders (service/record.c). The
 * bytes go to every record_decode_* function, as a damaged database could
 * hand them any value under any key. A decoder must either refuse them with
 * -EBADMSG and return nothing, or return a value that keeps the promises of
 * record.h; a decoded value must encode to the very bytes it came from (the
 * format has one encoding per value) and decode again to the same value.
 * Any other outcome aborts, which libFuzzer reports as a crash.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "record.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(expr)                                                                            \
        do {                                                                                   \
                if (!(expr)) {                                                                 \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                               \
                }                                                                              \
        } while (0)

/* A decoder may refuse or run out of memory, nothing else. */
static void check_refusal(int r) {
        check(r == -EBADMSG || r == -ENOMEM);
}

/* The encoding of a decoded value is the input itself. */
static void check_same_bytes(const void *encoded, size_t encoded_size, const uint8_t *data, size_t size) {
        check(encoded_size == size);
        check(size == 0 || memcmp(encoded, data, size) == 0);
}

/* ---- meta ---- */

static size_t strv_length(char **l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

static void check_meta_equal(const MetaRecord *a, const MetaRecord *b) {
        size_t n = strv_length(a->subscribers);

        check(a->clean == b->clean);
        check(a->next_seq == b->next_seq);
        check(a->first_seq == b->first_seq);
        check(a->stored_count == b->stored_count);
        check(a->stored_bytes == b->stored_bytes);
        check(strv_length(b->subscribers) == n);
        for (size_t i = 0; i < n; i++)
                check(streq(a->subscribers[i], b->subscribers[i]));
}

static void fuzz_meta(const uint8_t *data, size_t size) {
        _cleanup_(meta_record_done) MetaRecord meta = { .next_seq = 4242 };
        _cleanup_(meta_record_done) MetaRecord again = {};
        _cleanup_(freep) void *encoded = NULL;
        size_t encoded_size;
        int r;

        r = record_decode_meta(data, size, &meta);
        if (r < 0) {
                check_refusal(r);
                check(meta.next_seq == 4242 && !meta.subscribers);
                return;
        }

        check(meta.first_seq <= meta.next_seq);
        check(meta.subscribers);
        for (char **s = meta.subscribers; *s; s++)
                check(names_check_subscriber(*s, NULL) == 0);

        if (record_encode_meta(&meta, &encoded, &encoded_size) < 0)
                return;
        check_same_bytes(encoded, encoded_size, data, size);

        r = record_decode_meta(encoded, encoded_size, &again);
        if (r == -ENOMEM)
                return;
        check(r == 0);
        check_meta_equal(&meta, &again);
}

/* ---- message ---- */

static void fuzz_message(const uint8_t *data, size_t size) {
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        _cleanup_(message_record_freep) MessageRecord *again = NULL;
        _cleanup_(freep) void *encoded = NULL;
        size_t encoded_size;
        int r;

        r = record_decode_message(data, size, &m);
        if (r < 0) {
                check_refusal(r);
                check(!m);
                return;
        }

        /* Both strings are NUL-terminated where the record says they end. */
        check(names_check_message_id(m->id, NULL) == 0);
        check(strlen(m->payload) == m->payload_size);

        if (record_encode_message_expiring(m->timestamp, m->expires, m->id, m->payload, m->payload_size, &encoded,
                                           &encoded_size) < 0)
                return;
        check_same_bytes(encoded, encoded_size, data, size);

        r = record_decode_message(encoded, encoded_size, &again);
        if (r == -ENOMEM)
                return;
        check(r == 0);
        check(again->timestamp == m->timestamp);
        check(again->expires == m->expires);
        check(streq(again->id, m->id));
        check(again->payload_size == m->payload_size);
        check(memcmp(again->payload, m->payload, m->payload_size + 1) == 0);
}

/* ---- subscription ---- */

static void fuzz_subscription(const uint8_t *data, size_t size) {
        _cleanup_(subscription_record_done) SubscriptionRecord s = { .floor = 4242 };
        _cleanup_(subscription_record_done) SubscriptionRecord again = {};
        _cleanup_(freep) void *encoded = NULL;
        size_t encoded_size;
        int r;

        r = record_decode_subscription(data, size, &s);
        if (r < 0) {
                check_refusal(r);
                check(s.floor == 4242 && !s.acked && s.n_acked == 0);
                return;
        }

        check(s.n_acked == 0 || s.acked);
        for (size_t i = 0; i < s.n_acked; i++)
                check(s.acked[i] >= s.floor && (i == 0 || s.acked[i] > s.acked[i - 1]));

        if (record_encode_subscription(&s, &encoded, &encoded_size) < 0)
                return;
        check_same_bytes(encoded, encoded_size, data, size);

        r = record_decode_subscription(encoded, encoded_size, &again);
        if (r == -ENOMEM)
                return;
        check(r == 0);
        check(again.floor == s.floor);
        check(again.delivered_upto == s.delivered_upto);
        check(again.pending == s.pending);
        check(again.n_acked == s.n_acked);
        check(s.n_acked == 0 || memcmp(again.acked, s.acked, s.n_acked * sizeof(uint64_t)) == 0);
}

/* ---- upkeep ---- */

static void fuzz_upkeep(const uint8_t *data, size_t size) {
        UpkeepRecord u = { .discarded = 4242 }, again = {};
        _cleanup_(freep) void *encoded = NULL;
        size_t encoded_size;
        int r;

        r = record_decode_upkeep(data, size, &u);
        if (r < 0) {
                check_refusal(r);
                check(u.discarded == 4242 && u.expiring_from == 0 && u.expiring_to == 0 && u.expired == 0);
                return;
        }

        /* A range of sequence numbers, or none at all (0, 0). */
        check(u.expiring_from <= u.expiring_to);
        check(u.expiring_from != 0 || u.expiring_to == 0);

        if (record_encode_upkeep(&u, &encoded, &encoded_size) < 0)
                return;
        check_same_bytes(encoded, encoded_size, data, size);

        check(record_decode_upkeep(encoded, encoded_size, &again) == 0);
        check(again.expiring_from == u.expiring_from);
        check(again.expiring_to == u.expiring_to);
        check(again.discarded == u.discarded);
        check(again.expired == u.expired);
}

/* ---- single numbers ---- */

static void fuzz_seq(const uint8_t *data, size_t size) {
        uint64_t seq = 4242, again = 0;
        uint8_t encoded[8];
        int r;

        r = record_decode_seq(data, size, &seq);
        if (r < 0) {
                check_refusal(r);
                check(seq == 4242);
                return;
        }

        record_encode_seq(seq, encoded);
        check_same_bytes(encoded, sizeof(encoded), data, size);
        check(record_decode_seq(encoded, sizeof(encoded), &again) == 0);
        check(again == seq);
}

static void fuzz_count(const uint8_t *data, size_t size) {
        uint32_t count = 4242, again = 0;
        uint8_t encoded[4];
        int r;

        r = record_decode_count(data, size, &count);
        if (r < 0) {
                check_refusal(r);
                check(count == 4242);
                return;
        }

        record_encode_count(count, encoded);
        check_same_bytes(encoded, sizeof(encoded), data, size);
        check(record_decode_count(encoded, sizeof(encoded), &again) == 0);
        check(again == count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_meta(data, size);
        fuzz_message(data, size);
        fuzz_subscription(data, size);
        fuzz_upkeep(data, size);
        fuzz_seq(data, size);
        fuzz_count(data, size);
        return 0;
}
