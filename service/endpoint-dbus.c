/* SPDX-License-Identifier: MIT */
#include "endpoint-dbus.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "access-dbus.h"
#include "broker-dbus.h"
#include "bus-util.h"
#include "errors.h"
#include "names.h"
#include "options.h"
#include "sender.h"

/* ---- expiry ---- */

/* How many message records one step of the sweep reads per endpoint: a
 * backlog of expired messages is collected in steps, between which the bus
 * is served and memory stays flat. */
#define SWEEP_BUDGET 256
/* How late a sweep may run: a time-to-live is not kept to the millisecond. */
#define SWEEP_ACCURACY_USEC (50 * 1000)

/* The most messages one SendBatch stores: each is stored before the loop
 * serves anything else, so a batch is bounded in the time it holds it. */
#define SEND_BATCH_MAX 10000u

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata);

/* Makes the sweep timer fire at when (CLOCK_REALTIME, the clock of expiry
 * times), unless it fires earlier already. UINT64_MAX: nothing to do. */
static void sweep_at(Context *c, uint64_t when) {
        int enabled = SD_EVENT_OFF;
        uint64_t current;
        int r;

        if (when == UINT64_MAX)
                return;

        if (!c->sweep_timer) {
                r = sd_event_add_time(c->event, &c->sweep_timer, CLOCK_REALTIME, when, SWEEP_ACCURACY_USEC,
                                      on_sweep, c);
                if (r < 0)
                        log_warning("Failed to set up the sweep of expired messages: %s", strerror(-r));
                return;
        }

        (void) sd_event_source_get_enabled(c->sweep_timer, &enabled);
        if (enabled != SD_EVENT_OFF && sd_event_source_get_time(c->sweep_timer, &current) >= 0 && current <= when)
                return;

        r = sd_event_source_set_time(c->sweep_timer, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->sweep_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning("Failed to schedule the sweep of expired messages: %s", strerror(-r));
}

/* Called after anything that may have opened e or stored a message with a
 * time-to-live in it: an endpoint opened with expiring messages is swept at
 * once, as nothing was swept while the service was not running. */
static void sweep_soon(Context *c, Endpoint *e) {
        if (e->store && e->expiring_from != 0)
                sweep_at(c, e->sweep_cursor != 0 ? 0 : e->sweep_due);
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        g_autoptr(GPtrArray) list = NULL;
        Context *c = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME), next = UINT64_MAX;

        list = broker_list(c->broker);
        for (guint i = 0; i < list->len; i++) {
                Endpoint *e = g_ptr_array_index(list, i);
                uint64_t due = UINT64_MAX, deleted = 0;
                int r;

                r = endpoint_sweep(e, now, SWEEP_BUDGET, &due, &deleted);
                if (r < 0)
                        log_error("Failed to collect the expired messages of endpoint '%s': %s", e->name,
                                  strerror(-r));
                if (deleted > 0) {
                        log_debug("Endpoint '%s': %" PRIu64 " expired messages deleted", e->name, deleted);
                        (void) committer_touch(c->committer, e);
                }
                next = MIN(next, due);
        }

        sweep_at(c, next);
        return 0;
}

/* ---- attachment ---- */

static void detach(Context *c, Subscription *s) {
        Endpoint *e = s->endpoint;

        if (!s->owner)
                return;

        log_debug("Detaching subscription '%s' of endpoint '%s' from %s", s->name, e->name, s->owner);
        c->n_attached--;
        if (!s->durable) {
                endpoint_drop_ephemeral(e, s->owner);
                return;
        }

        subscription_detach(s);
        /* Delivery progress of the detached subscription is written with
         * the next commit. */
        (void) committer_touch(c->committer, e);
}

static int on_owner_gone(sd_bus_track *track, void *userdata) {
        Subscription *s = userdata;

        detach(s->endpoint->bus_data, s);
        return 0;
}

static int attach(Context *c, Subscription *s, sd_bus_message *m) {
        _cleanup_(sd_bus_track_unrefp) sd_bus_track *track = NULL;
        _cleanup_(freep) char *owner = NULL;
        sd_bus *bus = sd_bus_message_get_bus(m);
        int r;

        if (s->owner)
                return 0;

        owner = strdup(sender_name(m));
        if (!owner)
                return -ENOMEM;

        /* A direct connection has no name on the bus to track: it detaches
         * its subscriptions itself when it closes (direct-dbus.c). */
        if (sd_bus_is_bus_client(bus) > 0) {
                r = sd_bus_track_new(bus, &track, on_owner_gone, s);
                if (r < 0)
                        return r;

                r = sd_bus_track_add_sender(track, m);
                if (r < 0)
                        return r;
        }

        s->owner = TAKE_PTR(owner);
        s->bus = sd_bus_ref(bus);
        s->track = TAKE_PTR(track);
        c->n_attached++;
        return 0;
}

void endpoint_dbus_detach_connection(Context *c, const char *owner) {
        g_autoptr(GPtrArray) list = broker_list(c->broker);

        for (guint k = 0; k < list->len; k++) {
                Endpoint *e = g_ptr_array_index(list, k);
                GHashTableIter i;
                Subscription *s;

                g_hash_table_iter_init(&i, e->durable);
                while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                        if (s->owner && streq(s->owner, owner))
                                detach(c, s);

                s = g_hash_table_lookup(e->ephemeral, owner);
                if (s)
                        detach(c, s);
        }
}

void endpoint_dbus_detach_all(Context *c, Endpoint *e) {
        GHashTableIter i;
        Subscription *s;

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                detach(c, s);

        g_hash_table_iter_init(&i, e->ephemeral);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s)) {
                if (s->owner)
                        c->n_attached--;
                g_hash_table_iter_remove(&i);
        }
}

/* ---- delivery ---- */

/* A delivery signal for s: addressed to the attached connection alone, so
 * the bus routes it to no other client (only monitors, which the session
 * bus allows to the user's own programs, see it). Only the broadcast, which
 * the configuration asked for, has no destination; nor does a connection
 * of our own (direct), which has no bus to route on. */
static int new_delivery(Context *c, Endpoint *e, Subscription *s, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *signal = NULL;
        sd_bus *bus = s->bus ? s->bus : c->bus;
        int r;

        r = sd_bus_message_new_signal(bus, &signal, e->path, DURABUS_ENDPOINT_INTERFACE, member);
        if (r < 0)
                return r;

        if (s->owner && sd_bus_is_bus_client(bus) > 0) {
                r = sd_bus_message_set_destination(signal, s->owner);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_append(signal, "s", s->name);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(signal);
        return 0;
}

/* id, seq, payload and meta of one delivered message. */
static int append_delivered(sd_bus_message *signal, const MessageRecord *m, uint64_t seq, uint32_t count) {
        int r;

        r = sd_bus_message_append(signal, "sts", m->id, seq, m->payload);
        if (r < 0)
                return r;

        return sd_bus_message_append(signal, "a{sv}", 2, "timestamp", "t", m->timestamp, "delivery-count", "u",
                                     count);
}

/* Messages are picked in chunks, bounded in count and bytes so memory stays
 * flat whatever the window. */
#define DELIVERY_CHUNK 64
#define DELIVERY_CHUNK_BYTES (1024 * 1024)

typedef struct Picked {
        MessageRecord *message;
        uint64_t seq;
        uint32_t count;
} Picked;

/* One Message signal per message. */
static int emit_each(Context *c, Endpoint *e, Subscription *s, const Picked *picked, size_t n) {
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *signal = NULL;

                r = new_delivery(c, e, s, "Message", &signal);
                if (r >= 0)
                        r = append_delivered(signal, picked[i].message, picked[i].seq, picked[i].count);
                if (r >= 0)
                        r = sd_bus_send(NULL, signal, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One Messages signal for the n messages. */
static int emit_batch(Context *c, Endpoint *e, Subscription *s, const Picked *picked, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *signal = NULL;
        int r;

        r = new_delivery(c, e, s, "Messages", &signal);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(signal, 'a', "(stsa{sv})");
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_open_container(signal, 'r', "stsa{sv}");
                if (r >= 0)
                        r = append_delivered(signal, picked[i].message, picked[i].seq, picked[i].count);
                if (r >= 0)
                        r = sd_bus_message_close_container(signal);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_close_container(signal);
        if (r < 0)
                return r;

        return sd_bus_send(NULL, signal, NULL);
}

/* Emits what was picked as the subscription asked: one signal per message,
 * or signals of up to s->batch messages. */
static int emit_picked(Context *c, Endpoint *e, Subscription *s, const Picked *picked, size_t n) {
        int r;

        if (s->batch <= 1)
                return emit_each(c, e, s, picked, n);

        for (size_t i = 0; i < n; i += s->batch) {
                r = emit_batch(c, e, s, picked + i, MIN((size_t) s->batch, n - i));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Picks up to max messages for s, and not many more than one chunk's bytes.
 * Returns how many were picked, or negative errno; *ret_more tells whether
 * more may be waiting. */
static int pick_chunk(Endpoint *e, Subscription *s, Picked *picked, size_t max, bool *ret_more) {
        size_t n = 0, bytes = 0;
        int r = 0;

        while (n < max && bytes < DELIVERY_CHUNK_BYTES) {
                r = endpoint_next_delivery(e, s, &picked[n].message, &picked[n].seq, &picked[n].count);
                if (r <= 0)
                        break;
                bytes += picked[n].message->payload_size;
                n++;
        }

        *ret_more = r > 0;
        return r < 0 && n == 0 ? r : (int) n;
}

static void deliver_to(Context *c, Endpoint *e, Subscription *s) {
        /* A chunk holds at least one whole batch, so that batches are as
         * full as what is waiting allows. */
        size_t max = MAX((size_t) DELIVERY_CHUNK, (size_t) s->batch);
        g_autofree Picked *picked = g_new(Picked, max);
        bool more = true;
        int r = 0;

        while (more && r >= 0) {
                int n = pick_chunk(e, s, picked, max, &more);
                if (n <= 0) {
                        r = n;
                        break;
                }

                /* What is about to be delivered is recorded first (written,
                 * which survives the death of the process), so a message
                 * delivered before a crash comes again with a higher count. */
                if (s->durable && endpoint_save_subscription(e, s) < 0)
                        (void) committer_touch(c->committer, e);

                r = emit_picked(c, e, s, picked, n);
                for (int i = 0; i < n; i++)
                        message_record_free(picked[i].message);
        }

        /* A message that was picked but could not be sent stays in flight;
         * it comes again on the next Subscribe of the subscription. */
        if (r < 0)
                log_error("Failed to deliver from endpoint '%s' to subscription '%s' of %s: %s", e->name, s->name,
                          s->owner ? s->owner : "the broadcast", strerror(-r));
}

void endpoint_dbus_deliver(Endpoint *e, void *userdata) {
        Context *c = userdata;
        uint64_t expired = e->expired;
        GHashTableIter i;
        Subscription *s;

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                if (s->owner)
                        deliver_to(c, e, s);

        g_hash_table_iter_init(&i, e->ephemeral);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                deliver_to(c, e, s);

        if (e->broadcast)
                deliver_to(c, e, e->broadcast);

        /* Expired messages the cursors met were deleted: commit that. */
        if (e->expired != expired)
                (void) committer_touch(c->committer, e);
}

/* ---- methods ---- */

/* What each method of the Endpoint interface needs, which is also what
 * creating an endpoint by calling it on the endpoint's path needs. */
static const struct {
        const char *member;
        unsigned rights;
        const char *what;
} method_access[] = {
        { "Send", RIGHT_PUBLISH, "publish to" },
        { "SendBatch", RIGHT_PUBLISH, "publish to" },
        { "Subscribe", RIGHT_SUBSCRIBE, "subscribe to" },
        { "Unsubscribe", RIGHT_SUBSCRIBE, "unsubscribe from" },
        { "Ack", RIGHT_SUBSCRIBE, "acknowledge in" },
        { "ClearAll", RIGHTS_MANAGE, "clear" },
};

/* 0 when the caller of m, a method call of the Endpoint interface, holds
 * what it needs on endpoint; otherwise AccessDenied. */
static int authorize(Context *c, sd_bus_message *m, const char *endpoint, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(m);

        for (size_t i = 0; i < ELEMENTSOF(method_access); i++)
                if (streq(method_access[i].member, member))
                        return access_dbus_check(c, m, endpoint, method_access[i].rights, method_access[i].what,
                                                 error);
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Not allowed to call %s on endpoint '%s'",
                                 member, endpoint);
}

static int check_subscriber(const char *subscriber, sd_bus_error *error) {
        return bus_check_value(names_check_subscriber, subscriber, "subscriber name", SD_BUS_ERROR_INVALID_ARGS,
                               error);
}

/* The subscription of that name attached to the caller, or NotSubscribed. */
static int attached_subscription(Endpoint *e, sd_bus_message *m, const char *subscriber, Subscription **ret,
                                 sd_bus_error *error) {
        const char *sender = sender_name(m);
        Subscription *s;

        s = *subscriber ? g_hash_table_lookup(e->durable, subscriber) : g_hash_table_lookup(e->ephemeral, sender);
        if (!s || !s->owner || strcmp(s->owner, sender) != 0)
                return sd_bus_error_setf(error, DURABUS_ERROR_NOT_SUBSCRIBED,
                                         "Subscription '%s' of endpoint '%s' is not attached to this connection",
                                         subscriber, e->name);
        *ret = s;
        return 0;
}

/* Hands reply to the committer: it goes out after the next commit. The
 * n_undo messages from undo_seq on were stored for this call. */
/* A call that stored the n_undo messages from undo_seq on fails with r after
 * all: they are taken back, as it is told nothing was stored. */
static int unstore(Endpoint *e, int r, uint64_t undo_seq, uint64_t n_undo) {
        if (endpoint_unsend(e, undo_seq, n_undo) < 0)
                log_error("Failed to take back messages %" PRIu64 " to %" PRIu64 " of endpoint '%s' of a failed "
                          "call",
                          undo_seq, undo_seq + n_undo - 1, e->name);
        return r;
}

static int hold(Context *c, Endpoint *e, sd_bus_message *m, sd_bus_message *reply, uint64_t undo_seq,
                uint64_t n_undo) {
        int r;

        r = committer_hold(c->committer, e, m, reply, undo_seq, n_undo);
        if (r < 0)
                return unstore(e, r, undo_seq, n_undo);

        /* Handled: the reply follows the commit. */
        return 1;
}

static int hold_reply(Context *c, Endpoint *e, sd_bus_message *m, uint64_t undo_seq, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return unstore(e, r, undo_seq, undo_seq != 0);

        va_start(ap, types);
        r = sd_bus_message_appendv(reply, types, ap);
        va_end(ap);
        if (r < 0)
                return unstore(e, r, undo_seq, undo_seq != 0);

        return hold(c, e, m, reply, undo_seq, undo_seq != 0);
}

/* The error of a Send that endpoint_send_full() refused for a limit. */
static int send_limit_error(Endpoint *e, int r, size_t size, sd_bus_error *error) {
        if (r == -EMSGSIZE)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Message of %zu bytes (id and payload) is over the limit of %" PRIu64
                                         " stored bytes of endpoint '%s' (max-stored-bytes)",
                                         size, e->limits.max_bytes, e->name);
        if (e->limits.max_messages > 0 && e->stored_count >= e->limits.max_messages)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Endpoint '%s' is full: it stores %" PRIu64 " messages, the limit "
                                         "(max-stored-messages)",
                                         e->name, e->stored_count);
        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                 "Endpoint '%s' is full: it stores %" PRIu64 " bytes, and %zu more would be over "
                                 "the limit of %" PRIu64 " bytes (max-stored-bytes)",
                                 e->name, e->stored_bytes, size, e->limits.max_bytes);
}

/* The expiry time of a message sent at timestamp with a time-to-live of
 * ttl_ms milliseconds (0: none), saturated far in the future. */
static uint64_t expiry_time(uint64_t timestamp, uint64_t ttl_ms) {
        if (ttl_ms == 0)
                return 0;
        if (ttl_ms > (UINT64_MAX - 1 - timestamp) / 1000)
                return UINT64_MAX - 1;
        return timestamp + ttl_ms * 1000;
}

/* One message of a Send or SendBatch, as read from the call (the strings
 * point into it). The sizes are taken once: a payload may be 1 MiB, and
 * the checks, the store and its errors all need them. */
typedef struct Outgoing {
        const char *id;
        const char *payload;
        size_t payload_size;
        size_t stored_size;     /* what it counts in the endpoint's stored bytes */
        uint64_t ttl_ms;
} Outgoing;

/* Reads id, payload and options of one message. */
static int read_outgoing(sd_bus_message *m, Outgoing *ret, sd_bus_error *error) {
        Outgoing o = {};
        int r;

        const OptionSpec specs[] = {
                { "ttl-ms", 't', &o.ttl_ms, NULL },
        };

        r = sd_bus_message_read(m, "ss", &o.id, &o.payload);
        if (r < 0)
                return r;
        r = options_read(m, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;

        /* The id counts as stored bytes; a generated one has 32. */
        o.payload_size = strlen(o.payload);
        o.stored_size = (*o.id ? strlen(o.id) : 32) + o.payload_size;
        *ret = o;
        return 0;
}

/* What a message must be before anything is stored: a valid id (or none), a
 * payload within the limit, and no larger than the endpoint may store at
 * all, so that a batch is refused for it before any of its messages made
 * room (discard=oldest) for the others. */
static int check_outgoing(Context *c, Endpoint *e, const Outgoing *o, sd_bus_error *error) {
        int r;

        if (*o->id) {
                r = bus_check_value(names_check_message_id, o->id, "message id", SD_BUS_ERROR_INVALID_ARGS,
                                    error);
                if (r < 0)
                        return r;
        }

        if (o->payload_size > c->max_payload)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Payload of %zu bytes for endpoint '%s' is over the limit of %zu bytes",
                                         o->payload_size, e->name, c->max_payload);
        if (e->limits.max_bytes > 0 && o->stored_size > e->limits.max_bytes)
                return send_limit_error(e, -EMSGSIZE, o->stored_size, error);
        return 0;
}

/* Stores a checked message: the results of endpoint_send_full(), or a
 * negative errno with error set. */
static int store_outgoing(Context *c, Endpoint *e, const Outgoing *o, char **ret_id, uint64_t *ret_seq,
                          sd_bus_error *error) {
        uint64_t timestamp = now_usec(CLOCK_REALTIME);
        int r;

        r = endpoint_send_full(e, o->id, o->payload, o->payload_size, timestamp,
                               expiry_time(timestamp, o->ttl_ms), ret_id, ret_seq);
        if (r == -ENOBUFS || r == -EMSGSIZE)
                return send_limit_error(e, r, o->stored_size, error);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to store a message in endpoint '%s'", e->name);
        return r;
}

static int method_send(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(freep) char *id_out = NULL;
        Endpoint *e = userdata;
        Context *c = e->bus_data;
        Outgoing o;
        uint64_t seq;
        int r;

        r = read_outgoing(m, &o, error);
        if (r < 0)
                return r;
        r = check_outgoing(c, e, &o, error);
        if (r < 0)
                return r;
        r = authorize(c, m, e->name, error);
        if (r < 0)
                return r;

        r = store_outgoing(c, e, &o, &id_out, &seq, error);
        if (r < 0)
                return r;

        sweep_soon(c, e);

        return hold_reply(c, e, m, r > 0 ? seq : 0, "st", id_out, seq);
}

/* Says which message of a batch error is about: sets error to the name of
 * cause with "Message N of the batch: " before its text. Returns r. */
static int batch_error(sd_bus_error *error, size_t index, const sd_bus_error *cause, int r) {
        int k;

        k = sd_bus_error_setf(error, cause->name, "Message %zu of the batch: %s", index, cause->message);
        return k == -ENOMEM ? k : r;
}

/* Reads the messages of a SendBatch, checking each and their number. */
static int read_batch(Context *c, Endpoint *e, sd_bus_message *m, GArray *batch, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ssa{sv})");
        if (r < 0)
                return r;

        while ((r = sd_bus_message_enter_container(m, 'r', "ssa{sv}")) > 0) {
                _cleanup_(sd_bus_error_free) sd_bus_error cause = SD_BUS_ERROR_NULL;
                Outgoing o;

                if (batch->len >= SEND_BATCH_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                 "Batch for endpoint '%s' has more than %u messages, the limit",
                                                 e->name, SEND_BATCH_MAX);

                r = read_outgoing(m, &o, &cause);
                if (r >= 0)
                        r = check_outgoing(c, e, &o, &cause);
                if (r < 0)
                        return sd_bus_error_is_set(&cause) ? batch_error(error, batch->len, &cause, r) : r;
                g_array_append_val(batch, o);

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        return sd_bus_message_exit_container(m);
}

/* Stores a checked batch, appending the id and seq of each message to
 * reply. All or nothing: when one message is refused, the new ones before
 * it are taken back. Returns how many it stored from *ret_first on. */
static int store_batch(Context *c, Endpoint *e, GArray *batch, sd_bus_message *reply, uint64_t *ret_first,
                       uint64_t *ret_n, sd_bus_error *error) {
        /* An id met earlier in the batch takes that message's result, also
         * when a later message has discarded it (discard=oldest): the batch
         * stores each id once. */
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
        g_autofree uint64_t *seqs = g_new(uint64_t, batch->len);
        uint64_t first = 0, n = 0;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(st)");
        if (r < 0)
                return r;

        for (guint i = 0; i < batch->len; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error cause = SD_BUS_ERROR_NULL;
                const Outgoing *o = &g_array_index(batch, Outgoing, i);
                _cleanup_(freep) char *id = NULL;
                gpointer earlier;

                if (*o->id && g_hash_table_lookup_extended(seen, o->id, NULL, &earlier)) {
                        seqs[i] = seqs[GPOINTER_TO_UINT(earlier)];
                        r = 0;
                } else
                        r = store_outgoing(c, e, o, &id, &seqs[i], &cause);
                if (r > 0) {
                        /* New messages take consecutive sequence numbers:
                         * nothing else is stored while the batch is. */
                        if (n++ == 0)
                                first = seqs[i];
                }
                if (*o->id)
                        g_hash_table_insert(seen, (gpointer) o->id, GUINT_TO_POINTER(i));
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(st)", id ? id : o->id, seqs[i]);
                if (r < 0) {
                        r = sd_bus_error_is_set(&cause) ? batch_error(error, i, &cause, r) : r;
                        return unstore(e, r, first, n);
                }
        }

        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return unstore(e, r, first, n);

        *ret_first = first;
        *ret_n = n;
        return 0;
}

static int method_send_batch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GArray) batch = g_array_new(false, false, sizeof(Outgoing));
        Endpoint *e = userdata;
        Context *c = e->bus_data;
        uint64_t first, n;
        int r;

        r = read_batch(c, e, m, batch, error);
        if (r < 0)
                return r;
        r = authorize(c, m, e->name, error);
        if (r < 0)
                return r;
        if (batch->len == 0)
                return sd_bus_reply_method_return(m, "a(st)", 0);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = store_batch(c, e, batch, reply, &first, &n, error);
        if (r < 0)
                return r;

        sweep_soon(c, e);

        return hold(c, e, m, reply, first, n);
}

static int method_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        Context *c = e->bus_data;
        const char *subscriber, *start = "all";
        uint32_t window = SUBSCRIPTION_WINDOW_DEFAULT, batch = 1;
        const char *sender = sender_name(m);
        Subscription *s;
        int r;

        const OptionSpec specs[] = {
                { "start", 's', &start, NULL },
                { "window", 'u', &window, NULL },
                { "batch", 'u', &batch, NULL },
        };

        r = sd_bus_message_read(m, "s", &subscriber);
        if (r < 0)
                return r;
        r = options_read(m, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;

        if (*subscriber) {
                r = check_subscriber(subscriber, error);
                if (r < 0)
                        return r;
        }
        if (!STR_IN_SET(start, "all", "new"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid value '%s' of option 'start': expected 'all' or 'new'", start);
        if (window < 1 || window > SUBSCRIPTION_WINDOW_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid value %" PRIu32 " of option 'window': expected 1 to %u", window,
                                         SUBSCRIPTION_WINDOW_MAX);
        if (batch < 1 || batch > SUBSCRIPTION_BATCH_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid value %" PRIu32 " of option 'batch': expected 1 to %u", batch,
                                         SUBSCRIPTION_BATCH_MAX);
        r = authorize(c, m, e->name, error);
        if (r < 0)
                return r;

        r = endpoint_open(e);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to open endpoint '%s'", e->name);
        sweep_soon(c, e);

        /* A subscription that is attached already (to this connection or,
         * SubscriberBusy below, to another) takes no new attachment. */
        s = *subscriber ? g_hash_table_lookup(e->durable, subscriber) : g_hash_table_lookup(e->ephemeral, sender);
        if ((!s || !s->owner) && c->max_attached > 0 && c->n_attached >= c->max_attached)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Cannot attach subscription '%s' of endpoint '%s': %zu subscriptions are "
                                         "attached, the limit (max-attached)",
                                         subscriber, e->name, c->n_attached);

        if (*subscriber)
                r = endpoint_durable_subscription(e, subscriber, streq(start, "new"), &s);
        else
                r = endpoint_ephemeral_subscription(e, sender, &s);
        if (r == -ENOBUFS)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Cannot create subscription '%s' of endpoint '%s': it has %u durable "
                                         "subscriptions, the limit (max-subscriptions)",
                                         subscriber, e->name, g_hash_table_size(e->durable));
        if (r < 0)
                return bus_error_storage(error, r, "Failed to create subscription '%s' of endpoint '%s'", subscriber,
                                         e->name);

        if (s->owner && !streq(s->owner, sender))
                return sd_bus_error_setf(error, DURABUS_ERROR_SUBSCRIBER_BUSY,
                                         "Subscription '%s' of endpoint '%s' is attached to another connection (%s)",
                                         subscriber, e->name, s->owner);

        r = attach(c, s, m);
        if (r < 0) {
                if (!s->durable)
                        endpoint_drop_ephemeral(e, sender);
                return r;
        }

        s->window = window;
        s->batch = batch;
        endpoint_rewind(e, s);

        return hold_reply(c, e, m, 0, "t", s->durable ? s->pending : UINT64_C(0));
}

static int method_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        Context *c = e->bus_data;
        const char *subscriber;
        Subscription *s;
        int forget = false;
        bool durable;
        int r;

        const OptionSpec specs[] = {
                { "forget", 'b', &forget, NULL },
        };

        r = sd_bus_message_read(m, "s", &subscriber);
        if (r < 0)
                return r;
        r = options_read(m, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        r = authorize(c, m, e->name, error);
        if (r < 0)
                return r;

        r = attached_subscription(e, m, subscriber, &s, error);
        if (r < 0)
                return r;

        /* An ephemeral subscription is gone once detached; a durable one
         * stays unless it is to be forgotten. */
        durable = s->durable;
        detach(c, s);
        if (forget && durable) {
                r = endpoint_forget(e, s);
                if (r < 0)
                        return bus_error_storage(error, r, "Failed to delete subscription '%s' of endpoint '%s'",
                                                 subscriber, e->name);
                log_info("Deleted subscription '%s' of endpoint '%s'", subscriber, e->name);
        }

        return hold_reply(c, e, m, 0, "");
}

static int method_ack(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **ids = NULL;
        Endpoint *e = userdata;
        Context *c = e->bus_data;
        const char *subscriber;
        Subscription *s;
        uint32_t acked = 0;
        int r;

        r = sd_bus_message_read(m, "s", &subscriber);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &ids);
        if (r < 0)
                return r;

        if (!*subscriber)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Ephemeral subscriptions take no acknowledgements");
        r = check_subscriber(subscriber, error);
        if (r < 0)
                return r;
        r = authorize(c, m, e->name, error);
        if (r < 0)
                return r;
        r = attached_subscription(e, m, subscriber, &s, error);
        if (r < 0)
                return r;

        for (char **id = ids; id && *id; id++) {
                /* An id that could never be stored is not stored: skipped
                 * like any other unknown id. */
                if (names_check_message_id(*id, NULL) < 0)
                        continue;

                r = endpoint_ack(e, s, *id);
                if (r < 0)
                        return bus_error_storage(error, r, "Failed to acknowledge '%s' in endpoint '%s'", *id,
                                                 e->name);
                acked += (uint32_t) r;
        }

        return hold_reply(c, e, m, 0, "u", acked);
}

static int method_clear_all(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        Context *c = e->bus_data;
        uint64_t removed;
        int r;

        r = authorize(c, m, e->name, error);
        if (r < 0)
                return r;

        /* Sends still waiting for their sync are settled first, so the clear
         * takes them too and their replies are true. */
        committer_run(c->committer);

        r = endpoint_clear(e, &removed);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to clear endpoint '%s'", e->name);

        log_info("Cleared endpoint '%s': %" PRIu64 " messages removed", e->name, removed);
        (void) committer_touch(c->committer, e);
        return sd_bus_reply_method_return(m, "t", removed);
}

/* ---- properties ---- */

static int property_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        uint64_t value;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to open endpoint '%s'", e->name);
        sweep_soon(e->bus_data, e);

        if (streq(property, "StoredMessages"))
                value = e->stored_count;
        else if (streq(property, "StoredBytes"))
                value = e->stored_bytes;
        else if (streq(property, "DiscardedMessages"))
                value = e->discarded;
        else
                value = e->expired;

        return sd_bus_message_append(reply, "t", value);
}

static gint compare_subscriptions(gconstpointer a, gconstpointer b) {
        return strcmp((*(Subscription *const *) a)->name, (*(Subscription *const *) b)->name);
}

static int property_subscriptions(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        g_autoptr(GPtrArray) list = NULL;
        Endpoint *e = userdata;
        GHashTableIter i;
        gpointer s;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to open endpoint '%s'", e->name);

        list = g_ptr_array_new();
        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, &s))
                g_ptr_array_add(list, s);
        g_ptr_array_sort(list, compare_subscriptions);

        r = sd_bus_message_open_container(reply, 'a', "(sbt)");
        if (r < 0)
                return r;

        for (guint k = 0; k < list->len; k++) {
                Subscription *sub = g_ptr_array_index(list, k);

                r = sd_bus_message_append(reply, "(sbt)", sub->name, sub->owner != NULL, sub->pending);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable endpoint_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Send",
                                SD_BUS_ARGS("s", id, "s", payload, "a{sv}", options),
                                SD_BUS_RESULT("s", id, "t", seq),
                                method_send,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SendBatch",
                                SD_BUS_ARGS("a(ssa{sv})", messages),
                                SD_BUS_RESULT("a(st)", results),
                                method_send_batch,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Subscribe",
                                SD_BUS_ARGS("s", subscriber, "a{sv}", options),
                                SD_BUS_RESULT("t", pending),
                                method_subscribe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Unsubscribe",
                                SD_BUS_ARGS("s", subscriber, "a{sv}", options),
                                SD_BUS_NO_RESULT,
                                method_unsubscribe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Ack",
                                SD_BUS_ARGS("s", subscriber, "as", ids),
                                SD_BUS_RESULT("u", acked),
                                method_ack,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ClearAll",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("t", removed),
                                method_clear_all,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Message",
                                SD_BUS_ARGS("s", subscriber, "s", id, "t", seq, "s", payload, "a{sv}", meta),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS("Messages",
                                SD_BUS_ARGS("s", subscriber, "a(stsa{sv})", messages),
                                0),
        SD_BUS_PROPERTY("Name", "s", NULL, offsetof(Endpoint, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BusName", "s", NULL, offsetof(Endpoint, bus_name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StoredMessages", "t", property_count, 0, 0),
        SD_BUS_PROPERTY("StoredBytes", "t", property_count, 0, 0),
        SD_BUS_PROPERTY("Subscriptions", "a(sbt)", property_subscriptions, 0, 0),
        SD_BUS_PROPERTY("DiscardedMessages", "t", property_count, 0, 0),
        SD_BUS_PROPERTY("ExpiredMessages", "t", property_count, 0, 0),
        SD_BUS_VTABLE_END,
};

/* ---- objects ---- */

static int invalid_path(const char *path, sd_bus_error *error) {
        _cleanup_(freep) char *name = NULL, *problem = NULL;
        int r;

        name = strdup(path + strlen(DURABUS_ENDPOINT_PATH_PREFIX "/"));
        if (!name)
                return -ENOMEM;
        for (char *p = name; *p; p++)
                if (*p == '/')
                        *p = '.';

        r = names_check_endpoint(name, &problem);
        if (r == -ENOMEM)
                return r;
        return sd_bus_error_setf(error, DURABUS_ERROR_INVALID_NAME, "Invalid endpoint name '%s' of path '%s': %s",
                                 name, path, problem ? problem : "not an endpoint path");
}

/* Checks a call of the Endpoint interface against the vtable: 1 when m
 * calls one of its methods with the right signature, 0 for anything else
 * (the endpoint then is not there: UnknownObject), an InvalidArgs error for
 * a method called with the wrong signature. Only a valid call creates an
 * endpoint: sd-bus looks up the object before it checks the signature, and a
 * call it would refuse must leave nothing behind. */
static int check_endpoint_call(sd_bus_message *m, sd_bus_error *error) {
        const char *member, *signature;

        if (!m || sd_bus_message_is_method_call(m, DURABUS_ENDPOINT_INTERFACE, NULL) <= 0)
                return 0;

        member = sd_bus_message_get_member(m);
        signature = sd_bus_message_get_signature(m, true);
        for (const sd_bus_vtable *v = endpoint_vtable; v->type != _SD_BUS_VTABLE_END; v++) {
                if (v->type != _SD_BUS_VTABLE_METHOD || !streq(v->x.method.member, member))
                        continue;
                if (sd_bus_message_has_signature(m, v->x.method.signature) > 0)
                        return 1;
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid arguments '%s' to call %s.%s(), expecting '%s'.", signature,
                                         DURABUS_ENDPOINT_INTERFACE, member, v->x.method.signature);
        }

        return 0;
}

/*
 * Finds the endpoint of a path. A method call of the Endpoint interface on
 * the path of an endpoint that does not exist yet creates it, like getting a
 * queue by its name; introspection and property reads only see what exists.
 */
static int endpoint_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                         sd_bus_error *error) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        _cleanup_(freep) char *name = NULL;
        Context *c = userdata;
        bool creating;
        Endpoint *e;
        int r;

        r = names_path_to_endpoint(path, &name);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return m && sd_bus_message_is_method_call(m, DURABUS_ENDPOINT_INTERFACE, NULL) > 0 &&
                                       strncmp(path, DURABUS_ENDPOINT_PATH_PREFIX "/",
                                               strlen(DURABUS_ENDPOINT_PATH_PREFIX "/")) == 0 ?
                               invalid_path(path, error) :
                               0;

        e = broker_get(c->broker, name);
        if (e)
                creating = false;
        else {
                r = check_endpoint_call(m, error);
                if (r < 0)
                        return r;
                creating = r > 0;
        }
        if (!e && creating) {
                r = authorize(c, m, name, error);
                if (r >= 0)
                        r = broker_dbus_ensure_endpoint(c, name, &e, error);
                if (r < 0)
                        return r;
        }
        if (!e)
                return 0;

        /* An endpoint the caller has no right on is not there for its
         * property reads and introspection, as in ListEndpoints; the
         * methods refuse it with AccessDenied, whether it exists or not. */
        if (m && sd_bus_message_is_method_call(m, DURABUS_ENDPOINT_INTERFACE, NULL) <= 0 &&
            !access_dbus_may_see(c, m, e->name))
                return 0;

        *ret_found = e;
        return 1;
}

static int endpoint_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                              sd_bus_error *error) {
        g_autoptr(GPtrArray) list = NULL;
        Context *c = userdata;
        char **nodes;

        sd_bus_message *m = sd_bus_get_current_message(bus);
        size_t n = 0;

        list = broker_list(c->broker);
        nodes = calloc(list->len + 1, sizeof(char *));
        if (!nodes)
                return -ENOMEM;

        for (guint i = 0; i < list->len; i++) {
                Endpoint *e = g_ptr_array_index(list, i);

                if (m && !access_dbus_may_see(c, m, e->name))
                        continue;
                nodes[n] = strdup(e->path);
                if (!nodes[n++]) {
                        strv_free(nodes);
                        return -ENOMEM;
                }
        }

        *ret_nodes = nodes;
        return 0;
}

int endpoint_dbus_register(Context *c, sd_bus *bus) {
        int r;

        r = sd_bus_add_fallback_vtable(bus, NULL, DURABUS_ENDPOINT_PATH_PREFIX, DURABUS_ENDPOINT_INTERFACE,
                                       endpoint_vtable, endpoint_find, c);
        if (r < 0)
                return r;

        return sd_bus_add_node_enumerator(bus, NULL, DURABUS_ENDPOINT_PATH_PREFIX, endpoint_enumerate, c);
}
