/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An endpoint: a named, durable topic with its own database file. It stores
 * messages, keeps the acknowledgement state of its durable subscriptions,
 * collects what every subscription has acknowledged, and picks the next
 * message each attached subscription is to receive. It knows nothing of the
 * bus: the caller turns its results into replies and signals.
 *
 * Changes are written to the database as they are made (so they survive the
 * death of the process); endpoint_commit() writes the rest of the state and
 * syncs, and only after it may a caller be told that a change is durable.
 *
 * Crash safety: the meta record carries a clean flag, cleared when the
 * database is opened and set by endpoint_close(). A database opened without
 * it was not closed in order; endpoint_open() then repairs it from the
 * message records themselves (see repair() in endpoint.c). An orderly start
 * reads no message record.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "subscription.h"

/* What an endpoint may hold; 0 is no limit. Set by the bus layer from the
 * configuration; not stored. */
typedef struct EndpointLimits {
        uint64_t max_messages;
        uint64_t max_bytes;             /* ids and payloads, as stored_bytes counts them */
        uint64_t max_subscriptions;     /* durable ones */
        bool discard_oldest;            /* when full, drop the oldest instead of refusing */
} EndpointLimits;

typedef struct Endpoint {
        char *name;
        char *path;             /* object path */
        char *bus_name;
        char *db_path;
        Store *store;           /* NULL until endpoint_open() */

        uint64_t next_seq;
        uint64_t committed_next_seq;    /* next_seq as the meta record on disk has it */
        uint64_t first_seq;
        uint64_t stored_count;
        uint64_t stored_bytes;
        uint64_t deleted_since_reorganize;
        bool dirty;             /* the meta record needs writing */

        EndpointLimits limits;

        /* The upkeep record: messages with a time-to-live may be stored in
         * [expiring_from, expiring_to] (0, 0: none), and what the limits
         * dropped. */
        uint64_t expiring_from, expiring_to;
        uint64_t discarded;
        uint64_t expired;
        bool upkeep_dirty;

        /* The sweep (endpoint_sweep()), in memory only. */
        uint64_t sweep_cursor;  /* the next seq to examine; 0: no sweep under way */
        uint64_t sweep_low, sweep_high, sweep_next; /* what the sweep under way found alive */
        uint64_t sweep_due;     /* when the next sweep is worth starting (0: at once) */

        GHashTable *durable;    /* name -> Subscription, owned */
        GHashTable *ephemeral;  /* owner's unique name -> Subscription, owned */
        Subscription *broadcast; /* live messages for everyone on the bus, owned; NULL: none */

        void *bus_data;         /* the bus layer's context, not owned */
} Endpoint;

/* A closed endpoint whose database is dir/NAME.db. The name must be valid.
 * 0 or -ENOMEM. */
int endpoint_new(const char *name, const char *dir, Endpoint **ret);

/* Frees the endpoint and its subscriptions, closing the database without
 * writing anything. Accepts NULL, returns NULL. */
Endpoint *endpoint_free(Endpoint *e);
void endpoint_freep(Endpoint **e);

/* Opens (creating if needed), loads and, after an unclean close, repairs the
 * database, then marks it open. A database found damaged (-EBADMSG) is moved
 * aside as NAME.db.damaged-TIMESTAMP and replaced by what GDBM's recovery
 * reads of it, which is then recounted as after an unclean close; what was
 * lost is logged. Does nothing when already open. Negative errno on failure,
 * the endpoint is then still closed. */
int endpoint_open(Endpoint *e);

/* Commits, marks the database clean and closes it. Negative errno when that
 * failed; the database is closed either way and repaired at the next open. */
int endpoint_close(Endpoint *e);

/* Writes the state changed since the last commit and, with sync, flushes the
 * database to stable storage. 0 or negative errno. */
int endpoint_commit(Endpoint *e, bool sync);

/*
 * Stores a message. An empty id asks for a generated one. Returns 1 and the
 * new message's id (newly allocated) and sequence number, or 0 and the stored
 * ones when a message with that id is stored already, or negative errno when
 * nothing was stored.
 */
int endpoint_send(Endpoint *e, const char *id, const char *payload, size_t payload_size, uint64_t timestamp,
                  char **ret_id, uint64_t *ret_seq);

/*
 * endpoint_send() with the limits and an expiry: expires is the time
 * (microseconds since the epoch, the clock of timestamp) after which the
 * message is never delivered and is deleted; 0 for never. When the message
 * would take the endpoint over limits.max_messages or limits.max_bytes, the
 * Send is refused with -ENOBUFS and nothing is stored, unless
 * limits.discard_oldest: then the message is stored and the oldest messages
 * are deleted until the endpoint is within its limits again, each counted in
 * e->discarded. A message larger than limits.max_bytes by itself is refused
 * with -EMSGSIZE either way. The same results as endpoint_send() otherwise.
 */
int endpoint_send_full(Endpoint *e, const char *id, const char *payload, size_t payload_size, uint64_t timestamp,
                       uint64_t expires, char **ret_id, uint64_t *ret_seq);

/* Whether a message expiring at expires has expired at now (microseconds
 * since the epoch). */
static inline bool endpoint_expired(uint64_t expires, uint64_t now) {
        return expires != 0 && expires <= now;
}

/*
 * Deletes expired messages: examines at most budget message records in
 * [expiring_from, expiring_to], going on where the last call stopped, so a
 * large backlog is swept in steps and memory stays flat. Nothing is read
 * when no stored message has a time-to-live, nor before sweep_due. Returns
 * 1 when the sweep is under way (call again soon), 0 when there is nothing
 * to do before *ret_due (UINT64_MAX: nothing expiring is stored), negative
 * errno. *ret_deleted counts the messages it deleted (e->expired too).
 */
int endpoint_sweep(Endpoint *e, uint64_t now, unsigned budget, uint64_t *ret_due, uint64_t *ret_deleted);

/* Takes back the n messages from seq on, stored by endpoint_send() for a
 * call that is refused (its commit failed, or a later message of its batch
 * was refused), so it leaves nothing behind. They go newest first, and so do
 * the Sends of one failed commit: that writes nothing but deletions (no meta
 * record), so it works on a disk that refuses to grow files. 0 or the first
 * negative errno (the others are still taken back). */
int endpoint_unsend(Endpoint *e, uint64_t seq, uint64_t n);

/* Acknowledges the message with that id for a durable subscription, deleting
 * it when every durable subscription has. 1 when newly acknowledged, 0 when
 * the id is not stored or was acknowledged already, negative errno. */
int endpoint_ack(Endpoint *e, Subscription *s, const char *id);

/* Deletes every stored message, durably (the database is replaced in one
 * rename). 0 with how many were removed in *ret_removed, or negative errno
 * with nothing changed. */
int endpoint_clear(Endpoint *e, uint64_t *ret_removed);

/* The durable subscription of that name, created when missing: with
 * start_new it has acknowledged everything stored now. 1 when created, 0 when
 * found, -ENOBUFS when it is missing and the endpoint has
 * limits.max_subscriptions already, other negative errno. */
int endpoint_durable_subscription(Endpoint *e, const char *name, bool start_new, Subscription **ret);

/* The ephemeral subscription of a connection, created when missing (its
 * cursor at the next message sent). 1 when created, 0 when found. */
int endpoint_ephemeral_subscription(Endpoint *e, const char *owner, Subscription **ret);

/* Removes a durable subscription with its records, and deletes the messages
 * it was the last to wait for. Frees s. 0 or negative errno. */
int endpoint_forget(Endpoint *e, Subscription *s);

/* Opens the endpoint and gives it e->broadcast, a subscription of no
 * connection to every message sent from now on (the bus layer emits them
 * to all). Does nothing when it has one. 0 or negative errno. */
int endpoint_start_broadcast(Endpoint *e);

/* Frees the ephemeral subscription of that connection, if any. */
void endpoint_drop_ephemeral(Endpoint *e, const char *owner);

/* Starts delivery to an attached subscription: from its floor (durable) or
 * from the next message sent (ephemeral). */
void endpoint_rewind(Endpoint *e, Subscription *s);

/*
 * The next message to deliver to an attached subscription, within its window:
 * 1 with the message (owned by the caller), its sequence number and delivery
 * count, having recorded it as delivered; 0 when there is none now; negative
 * errno. An expired message met on the way is deleted (counted in
 * e->expired), never delivered.
 */
int endpoint_next_delivery(Endpoint *e, Subscription *s, MessageRecord **ret_message, uint64_t *ret_seq,
                           uint32_t *ret_count);

/* Writes the state of a durable subscription now, without a sync: enough to
 * survive the death of the process. 0 or negative errno (it stays dirty). */
int endpoint_save_subscription(Endpoint *e, Subscription *s);

/* Closes the database and removes its file. 0 or negative errno. */
int endpoint_remove_files(Endpoint *e);
