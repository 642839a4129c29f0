/* SPDX-License-Identifier: MIT */
/*
 * durabus-ceiling: the ceiling of the bus for durabus's traffic. It serves
 * org.durabus1.Endpoint with the object layout and the signatures of durabus
 * (Send, Subscribe, Ack, Unsubscribe, the unicast Message signal with its
 * timestamp and delivery-count, the window of each subscription) on its own
 * bus name, CEILING_BUS_NAME, and replies to every call at once. It writes
 * nothing anywhere: what it carries is what the bus alone can carry of the
 * same traffic, which the benchmark (bench.c) sets durabus against.
 *
 * Memory holds only what flow control needs: per subscription the ids in
 * flight and the messages its window holds back. A subscription is gone once
 * detached, and a message sent while none is attached goes nowhere.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "ceiling.h"
#include "errors.h"
#include "names.h"
#include "options.h"
#include "util.h"

/* durabus's default window, which Subscribe applies without the option. */
#define DEFAULT_WINDOW 1000

/* A message the window of a subscription holds back. */
typedef struct Held {
        char *id;
        char *payload;
        uint64_t seq;
        uint64_t timestamp;
} Held;

typedef struct Endpoint Endpoint;

typedef struct Subscription {
        Endpoint *endpoint;
        char *name;
        char *owner;
        sd_bus_track *track;
        uint32_t window;
        GHashTable *in_flight;  /* id -> id: delivered, not acknowledged */
        GQueue held;            /* Held *, oldest first */
} Subscription;

struct Endpoint {
        sd_bus *bus;
        char *path;
        uint64_t last_seq;
        GHashTable *subscriptions;      /* name -> Subscription * */
};

typedef struct Ceiling {
        sd_event *event;
        sd_bus *bus;
        GHashTable *endpoints;  /* path -> Endpoint * */
} Ceiling;

static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void held_free(gpointer p) {
        Held *h = p;

        free(h->id);
        free(h->payload);
        free(h);
}

static void subscription_free(gpointer p) {
        Subscription *s = p;

        sd_bus_track_unref(s->track);
        g_hash_table_destroy(s->in_flight);
        g_queue_clear_full(&s->held, held_free);
        free(s->owner);
        free(s->name);
        free(s);
}

static void endpoint_free(gpointer p) {
        Endpoint *e = p;

        g_hash_table_destroy(e->subscriptions);
        free(e->path);
        free(e);
}

static int emit(Subscription *s, const char *id, uint64_t seq, const char *payload, uint64_t timestamp) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *signal = NULL;
        Endpoint *e = s->endpoint;
        char *key;
        int r;

        r = sd_bus_message_new_signal(e->bus, &signal, e->path, DURABUS_ENDPOINT_INTERFACE, "Message");
        if (r < 0)
                return r;
        r = sd_bus_message_set_destination(signal, s->owner);
        if (r < 0)
                return r;
        /* Nothing is ever delivered twice: the delivery count stays 1. */
        r = sd_bus_message_append(signal, "sstsa{sv}", s->name, id, seq, payload, 2, "timestamp", "t", timestamp,
                                  "delivery-count", "u", (uint32_t) 1);
        if (r < 0)
                return r;
        r = sd_bus_send(e->bus, signal, NULL);
        if (r < 0)
                return r;

        key = strdup(id);
        if (!key)
                return -ENOMEM;
        g_hash_table_add(s->in_flight, key);
        return 0;
}

/* Delivers at once what the window has room for, and holds back the rest. */
static int deliver(Subscription *s, const char *id, uint64_t seq, const char *payload, uint64_t timestamp) {
        Held *h;

        if (g_hash_table_size(s->in_flight) < s->window)
                return emit(s, id, seq, payload, timestamp);

        h = calloc(1, sizeof(Held));
        if (!h)
                return -ENOMEM;
        h->id = strdup(id);
        h->payload = strdup(payload);
        if (!h->id || !h->payload) {
                held_free(h);
                return -ENOMEM;
        }
        h->seq = seq;
        h->timestamp = timestamp;
        g_queue_push_tail(&s->held, h);
        return 0;
}

/* Delivers held messages while the window has room. */
static int release_held(Subscription *s) {
        int r;

        while (!g_queue_is_empty(&s->held) && g_hash_table_size(s->in_flight) < s->window) {
                Held *h = g_queue_pop_head(&s->held);

                r = emit(s, h->id, h->seq, h->payload, h->timestamp);
                held_free(h);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The subscription of that name attached to the caller, or NotSubscribed. */
static int attached_subscription(Endpoint *e, sd_bus_message *m, const char *name, Subscription **ret,
                                 sd_bus_error *error) {
        Subscription *s = g_hash_table_lookup(e->subscriptions, name);

        if (!s || !streq(s->owner, sd_bus_message_get_sender(m)))
                return sd_bus_error_setf(error, DURABUS_ERROR_NOT_SUBSCRIBED,
                                         "Subscription '%s' of '%s' is not attached to this connection", name,
                                         e->path);
        *ret = s;
        return 0;
}

static int method_send(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(freep) char *generated = NULL;
        Endpoint *e = userdata;
        const char *id, *payload;
        uint64_t seq, timestamp;
        GHashTableIter i;
        gpointer s;
        int r;

        /* The options (ttl-ms) mean nothing where nothing is kept. */
        r = sd_bus_message_read(m, "ss", &id, &payload);
        if (r < 0)
                return r;

        seq = ++e->last_seq;
        timestamp = now_realtime_usec();
        if (!*id) {
                /* Of the length of durabus's generated ids. */
                if (asprintf(&generated, "%032" PRIx64, seq) < 0)
                        return -ENOMEM;
                id = generated;
        }

        r = sd_bus_reply_method_return(m, "st", id, seq);
        if (r < 0)
                return r;

        g_hash_table_iter_init(&i, e->subscriptions);
        while (g_hash_table_iter_next(&i, NULL, &s)) {
                r = deliver(s, id, seq, payload, timestamp);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_owner_gone(sd_bus_track *track, void *userdata) {
        Subscription *s = userdata;

        g_hash_table_remove(s->endpoint->subscriptions, s->name);
        return 0;
}

static int subscription_new(Endpoint *e, sd_bus_message *m, const char *name, Subscription **ret) {
        Subscription *s;
        int r;

        s = calloc(1, sizeof(Subscription));
        if (!s)
                return -ENOMEM;
        s->endpoint = e;
        s->in_flight = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
        g_queue_init(&s->held);
        s->name = strdup(name);
        s->owner = strdup(sd_bus_message_get_sender(m));
        r = s->name && s->owner ? sd_bus_track_new(e->bus, &s->track, on_owner_gone, s) : -ENOMEM;
        if (r >= 0)
                r = sd_bus_track_add_sender(s->track, m);
        if (r < 0) {
                subscription_free(s);
                return r;
        }

        g_hash_table_insert(e->subscriptions, s->name, s);
        *ret = s;
        return 0;
}

static int method_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        uint32_t window = DEFAULT_WINDOW;
        const char *name, *start = "all";
        Subscription *s;
        int r;

        const OptionSpec specs[] = {
                { "start", 's', &start, NULL },
                { "window", 'u', &window, NULL },
        };

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = options_read(m, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;

        /* An ephemeral subscription takes no acknowledgements, so it has
         * no window to respect: the benchmark uses none. */
        if (!*name)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "durabus-ceiling has durable subscriptions only");
        if (window < 1)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid value 0 of option 'window'");

        s = g_hash_table_lookup(e->subscriptions, name);
        if (s && !streq(s->owner, sd_bus_message_get_sender(m)))
                return sd_bus_error_setf(error, DURABUS_ERROR_SUBSCRIBER_BUSY,
                                         "Subscription '%s' of '%s' is attached to another connection (%s)", name,
                                         e->path, s->owner);
        if (!s) {
                r = subscription_new(e, m, name, &s);
                if (r < 0)
                        return r;
        }
        s->window = window;

        /* Nothing is stored, so nothing is pending for a replay. */
        r = sd_bus_reply_method_return(m, "t", UINT64_C(0));
        if (r < 0)
                return r;
        return release_held(s);
}

static int method_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        const char *name;
        Subscription *s;
        int r;

        /* "forget" changes nothing: a detached subscription is gone anyway. */
        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = attached_subscription(e, m, name, &s, error);
        if (r < 0)
                return r;

        g_hash_table_remove(e->subscriptions, name);
        return sd_bus_reply_method_return(m, "");
}

static int method_ack(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **ids = NULL;
        Endpoint *e = userdata;
        uint32_t acked = 0;
        const char *name;
        Subscription *s;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &ids);
        if (r < 0)
                return r;
        r = attached_subscription(e, m, name, &s, error);
        if (r < 0)
                return r;

        for (char **id = ids; id && *id; id++)
                if (g_hash_table_remove(s->in_flight, *id))
                        acked++;

        r = sd_bus_reply_method_return(m, "u", acked);
        if (r < 0)
                return r;
        return release_held(s);
}

static int property_stored_messages(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "t", UINT64_C(0));
}

static const sd_bus_vtable endpoint_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Send",
                                SD_BUS_ARGS("s", id, "s", payload, "a{sv}", options),
                                SD_BUS_RESULT("s", id, "t", seq),
                                method_send,
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
        SD_BUS_SIGNAL_WITH_ARGS("Message",
                                SD_BUS_ARGS("s", subscriber, "s", id, "t", seq, "s", payload, "a{sv}", meta),
                                0),
        /* What the benchmark's activating call reads, as it does of durabus. */
        SD_BUS_PROPERTY("StoredMessages", "t", property_stored_messages, 0, 0),
        SD_BUS_VTABLE_END,
};

/* Every path below the prefix is an endpoint, made on its first use. */
static int endpoint_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                         sd_bus_error *error) {
        Ceiling *c = userdata;
        Endpoint *e;

        e = g_hash_table_lookup(c->endpoints, path);
        if (!e) {
                e = calloc(1, sizeof(Endpoint));
                if (!e)
                        return -ENOMEM;
                e->bus = bus;
                e->path = strdup(path);
                e->subscriptions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, subscription_free);
                if (!e->path) {
                        endpoint_free(e);
                        return -ENOMEM;
                }
                g_hash_table_insert(c->endpoints, e->path, e);
        }

        *ret_found = e;
        return 1;
}

static void ceiling_done(Ceiling *c) {
        /* The subscriptions' tracks go before the bus they watch. */
        if (c->endpoints)
                g_hash_table_destroy(c->endpoints);
        c->bus = sd_bus_flush_close_unref(c->bus);
        c->event = sd_event_unref(c->event);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int run(void) {
        _cleanup_(ceiling_done) Ceiling c = {};
        sigset_t mask;
        int r;

        r = sd_event_default(&c.event);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_add_signal(c.event, NULL, SIGTERM, on_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c.event, NULL, SIGINT, on_signal, NULL);
        if (r < 0)
                return r;

        c.endpoints = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, endpoint_free);

        /* Under activation sd_bus_open() takes the bus that started us. */
        r = sd_bus_open(&c.bus);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(c.bus, NULL, DURABUS_ENDPOINT_PATH_PREFIX,
                                               DURABUS_ENDPOINT_INTERFACE, endpoint_vtable, endpoint_find, &c);
        if (r >= 0)
                r = sd_bus_attach_event(c.bus, c.event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(c.bus, true);
        /* Last: owning the name is what brings the calls that activated us. */
        if (r >= 0)
                r = sd_bus_request_name(c.bus, CEILING_BUS_NAME, 0);
        if (r < 0)
                return r;

        return sd_event_loop(c.event);
}

int main(int argc, char **argv) {
        int r = run();

        if (r < 0)
                fprintf(stderr, "durabus-ceiling: %s\n", strerror(-r));
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
