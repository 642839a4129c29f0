/* SPDX-License-Identifier: MIT */
#include "record.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RECORD_FORMAT 1
/* A message record with an expiry time after the timestamp. */
#define RECORD_FORMAT_MESSAGE_EXPIRING 2

/* ---- keys ---- */

static void key_set(RecordKey *key, char tag, const void *a, size_t a_size, const char *s) {
        size_t s_size = s ? strlen(s) : 0;

        assert(1 + a_size + s_size <= sizeof(key->data));

        key->data[0] = (uint8_t) tag;
        if (a_size > 0)
                memcpy(key->data + 1, a, a_size);
        if (s_size > 0)
                memcpy(key->data + 1 + a_size, s, s_size);
        key->size = 1 + a_size + s_size;
}

static void seq_to_be(uint64_t seq, uint8_t be[8]) {
        for (int i = 7; i >= 0; i--, seq >>= 8)
                be[i] = (uint8_t) (seq & 0xff);
}

void record_key_meta(RecordKey *key) {
        key_set(key, '\0', NULL, 0, "meta");
}

void record_key_message(RecordKey *key, uint64_t seq) {
        uint8_t be[8];

        seq_to_be(seq, be);
        key_set(key, 'm', be, sizeof(be), NULL);
}

void record_key_index(RecordKey *key, const char *id) {
        key_set(key, 'i', NULL, 0, id);
}

void record_key_upkeep(RecordKey *key) {
        key_set(key, '\0', NULL, 0, "upkeep");
}

void record_key_subscription(RecordKey *key, const char *subscriber) {
        key_set(key, 's', NULL, 0, subscriber);
}

void record_key_delivery(RecordKey *key, uint64_t seq, const char *subscriber) {
        uint8_t be[8];

        seq_to_be(seq, be);
        key_set(key, 'd', be, sizeof(be), subscriber);
}

/* ---- a bounded writer and reader ---- */

typedef struct Writer {
        uint8_t *data;
        size_t size;
} Writer;

static void put_bytes(Writer *w, const void *p, size_t n) {
        if (w->data)
                memcpy(w->data + w->size, p, n);
        w->size += n;
}

static void put_u8(Writer *w, uint8_t v) {
        put_bytes(w, &v, 1);
}

static void put_le(Writer *w, uint64_t v, size_t n) {
        uint8_t b[8];

        for (size_t i = 0; i < n; i++, v >>= 8)
                b[i] = (uint8_t) (v & 0xff);
        put_bytes(w, b, n);
}

typedef struct Reader {
        const uint8_t *data;
        size_t size, pos;
} Reader;

static int get_bytes(Reader *r, size_t n, const uint8_t **ret) {
        if (r->size - r->pos < n)
                return -EBADMSG;

        *ret = r->data + r->pos;
        r->pos += n;
        return 0;
}

static int get_le(Reader *r, size_t n, uint64_t *ret) {
        const uint8_t *b;
        uint64_t v = 0;

        if (get_bytes(r, n, &b) < 0)
                return -EBADMSG;

        for (size_t i = n; i > 0; i--)
                v = (v << 8) | b[i - 1];
        *ret = v;
        return 0;
}

static int get_format(Reader *r) {
        uint64_t format;

        if (get_le(r, 1, &format) < 0 || format != RECORD_FORMAT)
                return -EBADMSG;
        return 0;
}

/* Runs an encoder twice: once to measure, once to fill the buffer, so the
 * size computation and the layout can never disagree. */
#define ENCODE(ret, ret_size, body)                             \
        ({                                                      \
                Writer w = {};                                  \
                body;                                           \
                w.data = malloc(w.size > 0 ? w.size : 1);       \
                if (!w.data)                                    \
                        return -ENOMEM;                         \
                w.size = 0;                                     \
                body;                                           \
                *(ret) = w.data;                                \
                *(ret_size) = w.size;                           \
                0;                                              \
        })

/* ---- meta ---- */

void meta_record_done(MetaRecord *meta) {
        if (meta->subscribers)
                for (char **s = meta->subscribers; *s; s++)
                        free(*s);
        free(meta->subscribers);
        meta->subscribers = NULL;
}

int record_encode_meta(const MetaRecord *meta, void **ret, size_t *ret_size) {
        return ENCODE(ret, ret_size, {
                put_u8(&w, RECORD_FORMAT);
                put_u8(&w, meta->clean);
                put_le(&w, meta->next_seq, 8);
                put_le(&w, meta->first_seq, 8);
                put_le(&w, meta->stored_count, 8);
                put_le(&w, meta->stored_bytes, 8);
                for (char **s = meta->subscribers; s && *s; s++)
                        put_bytes(&w, *s, strlen(*s) + 1);
        });
}

int record_decode_meta(const void *data, size_t size, MetaRecord *ret) {
        Reader r = { .data = data, .size = size };
        _cleanup_(meta_record_done) MetaRecord meta = {};
        uint64_t clean;
        size_t n = 0, i = 0;

        if (get_format(&r) < 0 || get_le(&r, 1, &clean) < 0 || clean > 1 || get_le(&r, 8, &meta.next_seq) < 0 ||
            get_le(&r, 8, &meta.first_seq) < 0 || get_le(&r, 8, &meta.stored_count) < 0 ||
            get_le(&r, 8, &meta.stored_bytes) < 0)
                return -EBADMSG;
        meta.clean = clean;

        if (meta.first_seq > meta.next_seq)
                return -EBADMSG;

        /* The names follow, each NUL-terminated: the last byte must be a NUL. */
        if (r.pos < size && r.data[size - 1] != '\0')
                return -EBADMSG;
        for (size_t p = r.pos; p < size; p++)
                if (r.data[p] == '\0')
                        n++;

        meta.subscribers = calloc(n + 1, sizeof(char *));
        if (!meta.subscribers)
                return -ENOMEM;

        while (r.pos < size) {
                const char *s = (const char *) r.data + r.pos;
                size_t len = strlen(s);

                if (names_check_subscriber(s, NULL) < 0)
                        return -EBADMSG;
                meta.subscribers[i] = strdup(s);
                if (!meta.subscribers[i])
                        return -ENOMEM;
                i++;
                r.pos += len + 1;
        }

        *ret = meta;
        meta = (MetaRecord) {};
        return 0;
}

/* ---- messages ---- */

MessageRecord *message_record_free(MessageRecord *message) {
        free(message);
        return NULL;
}

void message_record_freep(MessageRecord **message) {
        message_record_free(*message);
}

int record_encode_message(uint64_t timestamp, const char *id, const char *payload, size_t payload_size,
                          void **ret, size_t *ret_size) {
        return record_encode_message_expiring(timestamp, 0, id, payload, payload_size, ret, ret_size);
}

int record_encode_message_expiring(uint64_t timestamp, uint64_t expires, const char *id, const char *payload,
                                   size_t payload_size, void **ret, size_t *ret_size) {
        size_t id_size = strlen(id);

        assert(id_size <= MESSAGE_ID_MAX);

        /* Without an expiry the record stays in format 1, which every
         * version reads. */
        return ENCODE(ret, ret_size, {
                put_u8(&w, expires ? RECORD_FORMAT_MESSAGE_EXPIRING : RECORD_FORMAT);
                put_le(&w, timestamp, 8);
                if (expires)
                        put_le(&w, expires, 8);
                put_le(&w, id_size, 2);
                put_bytes(&w, id, id_size);
                put_bytes(&w, payload, payload_size);
        });
}

int record_decode_message(const void *data, size_t size, MessageRecord **ret) {
        Reader r = { .data = data, .size = size };
        const uint8_t *id, *payload;
        uint64_t format, timestamp, expires = 0, id_size;
        size_t payload_size;
        MessageRecord *m;
        char *p;

        if (get_le(&r, 1, &format) < 0 || (format != RECORD_FORMAT && format != RECORD_FORMAT_MESSAGE_EXPIRING))
                return -EBADMSG;
        if (get_le(&r, 8, &timestamp) < 0)
                return -EBADMSG;
        /* An expiring record always expires: 0 there is damage. */
        if (format == RECORD_FORMAT_MESSAGE_EXPIRING && (get_le(&r, 8, &expires) < 0 || expires == 0))
                return -EBADMSG;
        if (get_le(&r, 2, &id_size) < 0 ||
            id_size == 0 || id_size > MESSAGE_ID_MAX || get_bytes(&r, id_size, &id) < 0)
                return -EBADMSG;

        payload_size = size - r.pos;
        payload = r.data + r.pos;
        if (memchr(id, '\0', id_size) || memchr(payload, '\0', payload_size))
                return -EBADMSG;

        /* One allocation holds the struct and both strings. */
        m = malloc(sizeof(*m) + id_size + 1 + payload_size + 1);
        if (!m)
                return -ENOMEM;

        p = (char *) (m + 1);
        m->timestamp = timestamp;
        m->expires = expires;
        m->id = memcpy(p, id, id_size);
        m->id[id_size] = '\0';
        m->payload = memcpy(p + id_size + 1, payload, payload_size);
        m->payload[payload_size] = '\0';
        m->payload_size = payload_size;

        *ret = m;
        return 0;
}

/* ---- subscriptions ---- */

void subscription_record_done(SubscriptionRecord *record) {
        free(record->acked);
        record->acked = NULL;
        record->n_acked = 0;
}

int record_encode_subscription(const SubscriptionRecord *record, void **ret, size_t *ret_size) {
        return ENCODE(ret, ret_size, {
                put_u8(&w, RECORD_FORMAT);
                put_le(&w, record->floor, 8);
                put_le(&w, record->delivered_upto, 8);
                put_le(&w, record->pending, 8);
                put_le(&w, record->n_acked, 4);
                for (size_t i = 0; i < record->n_acked; i++)
                        put_le(&w, record->acked[i], 8);
        });
}

int record_decode_subscription(const void *data, size_t size, SubscriptionRecord *ret) {
        Reader r = { .data = data, .size = size };
        SubscriptionRecord s = {};
        _cleanup_(freep) uint64_t *acked = NULL;
        uint64_t n;

        if (get_format(&r) < 0 || get_le(&r, 8, &s.floor) < 0 || get_le(&r, 8, &s.delivered_upto) < 0 ||
            get_le(&r, 8, &s.pending) < 0 || get_le(&r, 4, &n) < 0)
                return -EBADMSG;

        if ((size - r.pos) / 8 != n || (size - r.pos) % 8 != 0)
                return -EBADMSG;

        if (n > 0) {
                acked = calloc(n, sizeof(uint64_t));
                if (!acked)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < n; i++) {
                (void) get_le(&r, 8, &acked[i]);
                /* Ascending and above the floor, or the record is damaged. */
                if (acked[i] < s.floor || (i > 0 && acked[i] <= acked[i - 1]))
                        return -EBADMSG;
        }

        s.acked = TAKE_PTR(acked);
        s.n_acked = n;
        *ret = s;
        return 0;
}

/* ---- upkeep ---- */

int record_encode_upkeep(const UpkeepRecord *upkeep, void **ret, size_t *ret_size) {
        return ENCODE(ret, ret_size, {
                put_u8(&w, RECORD_FORMAT);
                put_le(&w, upkeep->expiring_from, 8);
                put_le(&w, upkeep->expiring_to, 8);
                put_le(&w, upkeep->discarded, 8);
                put_le(&w, upkeep->expired, 8);
        });
}

int record_decode_upkeep(const void *data, size_t size, UpkeepRecord *ret) {
        Reader r = { .data = data, .size = size };
        UpkeepRecord u;

        if (get_format(&r) < 0 || get_le(&r, 8, &u.expiring_from) < 0 || get_le(&r, 8, &u.expiring_to) < 0 ||
            get_le(&r, 8, &u.discarded) < 0 || get_le(&r, 8, &u.expired) < 0 || r.pos != size)
                return -EBADMSG;
        if (u.expiring_from > u.expiring_to || (u.expiring_from == 0 && u.expiring_to != 0))
                return -EBADMSG;

        *ret = u;
        return 0;
}

/* ---- single numbers ---- */

void record_encode_seq(uint64_t seq, uint8_t ret[8]) {
        Writer w = { .data = ret };
        put_le(&w, seq, 8);
}

void record_encode_count(uint32_t count, uint8_t ret[4]) {
        Writer w = { .data = ret };
        put_le(&w, count, 4);
}

static int decode_fixed(const void *data, size_t size, size_t n, uint64_t *ret) {
        Reader r = { .data = data, .size = size };

        if (size != n)
                return -EBADMSG;
        return get_le(&r, n, ret);
}

int record_decode_seq(const void *data, size_t size, uint64_t *ret) {
        return decode_fixed(data, size, 8, ret);
}

int record_decode_count(const void *data, size_t size, uint32_t *ret) {
        uint64_t v;
        int r;

        r = decode_fixed(data, size, 4, &v);
        if (r < 0)
                return r;
        *ret = (uint32_t) v;
        return 0;
}
