/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The on-disk layout of an endpoint database: the keys of its records and the
 * encoding of their values. Pure functions, no I/O. Every value starts with a
 * format byte; integers are little-endian, sequence numbers in keys
 * big-endian so they sort as numbers in a dump.
 *
 *   "\0meta"            endpoint state: clean flag, sequence counters, totals,
 *                       and the names of the durable subscriptions
 *   "\0upkeep"          what the limits did: the range of sequence numbers
 *                       that may hold messages with a time-to-live, and how
 *                       many messages were discarded and expired
 *   'm' seq             a message: timestamp, id, payload; format 2 adds
 *                       the time it expires (only a message with a
 *                       time-to-live is written in format 2)
 *   'i' id              the sequence number of the message with that id
 *   's' name            a durable subscription's acknowledgement state
 *   'd' seq name        how often a message was delivered to a subscription,
 *                       present only once it was redelivered
 *
 * Decoders check every length against the value's size and return -EBADMSG
 * for anything malformed, so a damaged record never reads out of bounds.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

typedef struct RecordKey {
        size_t size;
        uint8_t data[1 + 8 + MESSAGE_ID_MAX];
} RecordKey;

void record_key_meta(RecordKey *key);
void record_key_message(RecordKey *key, uint64_t seq);
/* id is at most MESSAGE_ID_MAX bytes, subscriber at most SUBSCRIBER_NAME_MAX. */
void record_key_index(RecordKey *key, const char *id);
void record_key_subscription(RecordKey *key, const char *subscriber);
void record_key_delivery(RecordKey *key, uint64_t seq, const char *subscriber);

typedef struct MetaRecord {
        bool clean;             /* written by an orderly close, cleared at open */
        uint64_t next_seq;      /* the sequence number the next Send gets */
        uint64_t first_seq;     /* no message below it is stored */
        uint64_t stored_count;
        uint64_t stored_bytes;
        char **subscribers;     /* NULL-terminated, owned */
} MetaRecord;

void meta_record_done(MetaRecord *meta);

typedef struct MessageRecord {
        uint64_t timestamp;     /* microseconds since the epoch */
        uint64_t expires;       /* microseconds since the epoch; 0: never */
        char *id;               /* NUL-terminated, points into the record */
        char *payload;          /* NUL-terminated, points into the record */
        size_t payload_size;
} MessageRecord;

/* Frees a decoded message (one allocation). Accepts NULL, returns NULL. */
MessageRecord *message_record_free(MessageRecord *message);
void message_record_freep(MessageRecord **message);

typedef struct SubscriptionRecord {
        uint64_t floor;          /* every message below it is acknowledged */
        uint64_t delivered_upto; /* every message below it was delivered once */
        uint64_t pending;        /* stored messages not acknowledged yet */
        uint64_t *acked;         /* acknowledged at or above floor, ascending, owned */
        size_t n_acked;
} SubscriptionRecord;

void subscription_record_done(SubscriptionRecord *record);

typedef struct UpkeepRecord {
        uint64_t expiring_from; /* lowest seq that may hold a message with a TTL; 0: none */
        uint64_t expiring_to;   /* highest such seq */
        uint64_t discarded;     /* messages dropped by discard=oldest, ever */
        uint64_t expired;       /* messages deleted because they expired, ever */
} UpkeepRecord;

void record_key_upkeep(RecordKey *key);

/* Encoders: 0 and a newly allocated buffer with its size, or -ENOMEM. */
int record_encode_meta(const MetaRecord *meta, void **ret, size_t *ret_size);
int record_encode_message(uint64_t timestamp, const char *id, const char *payload, size_t payload_size,
                          void **ret, size_t *ret_size);
/* A message that expires at expires (0: never, the same as
 * record_encode_message()). */
int record_encode_message_expiring(uint64_t timestamp, uint64_t expires, const char *id, const char *payload,
                                   size_t payload_size, void **ret, size_t *ret_size);
int record_encode_upkeep(const UpkeepRecord *upkeep, void **ret, size_t *ret_size);
int record_encode_subscription(const SubscriptionRecord *record, void **ret, size_t *ret_size);
void record_encode_seq(uint64_t seq, uint8_t ret[8]);
void record_encode_count(uint32_t count, uint8_t ret[4]);

/* Decoders: 0 and the value (owned by the caller), -EBADMSG for a malformed
 * record, -ENOMEM. Nothing is returned on failure. */
int record_decode_meta(const void *data, size_t size, MetaRecord *ret);
int record_decode_message(const void *data, size_t size, MessageRecord **ret);
int record_decode_subscription(const void *data, size_t size, SubscriptionRecord *ret);
int record_decode_upkeep(const void *data, size_t size, UpkeepRecord *ret);
int record_decode_seq(const void *data, size_t size, uint64_t *ret);
int record_decode_count(const void *data, size_t size, uint32_t *ret);
