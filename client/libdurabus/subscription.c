/* SPDX-License-Identifier: MIT */

/*
 * Subscriptions: Subscribe, the Message signals of the replay and of live
 * messages, Ack and Unsubscribe, and attaching again by itself whenever the
 * service's instance changes.
 *
 * Which instance of the service a subscription listens to is decided by
 * two things only, both seen in the order the bus delivered them:
 * - the sender of the reply to its latest Subscribe (s->service): only
 *   Message signals from that unique name are taken. The service sends the
 *   reply before the first signal of the replay, and the bus keeps one
 *   sender's order, so no signal of the replay is ever seen before we know
 *   whom to accept it from.
 * - NameOwnerChanged of org.durabus1: when the instance we are attached to
 *   leaves the name, the subscription sends Subscribe again, which starts a
 *   new instance through activation if needed. The bus emits a name's
 *   departure only after everything its owner sent, so every signal of the
 *   old instance has been handled by then. When the application gave a
 *   token, the client proves it to the new instance right before that
 *   Subscribe (call.c).
 *
 * Over the client's direct connection (direct.c), when it has one, both
 * are the connection itself: only the instance that handed it out is at
 * its other end, so its Message signals need no sender check, and when it
 * closes (that instance exited or died) whatever was attached over it
 * attaches itself again, over a new direct connection if the next instance
 * gives one, else over the bus. Acks and Unsubscribe follow the Subscribe
 * over the same connection, behind it.
 */

#include <assert.h>

#include "durabus-private.h"

/* Attempts in a row that failed right after the service left during the
 * attempt: a service that starts and dies on each Subscribe is not started
 * forever. Past that, only someone else starting the service (a new owner
 * appearing on the bus) makes the subscription try again. */
#define RETRY_MAX 3

typedef enum SubscriptionState {
        /* s->service answered the latest Subscribe; its signals are taken. */
        SUBSCRIPTION_ATTACHED,
        /* A Subscribe is on its way (s->subscribe_call); signals wait for
         * its reply. */
        SUBSCRIPTION_ATTACHING,
        /* Waiting for the client's OpenDirect, to send Subscribe over the
         * connection it opens, or over the bus when it was refused. */
        SUBSCRIPTION_OPENING,
        /* The last attempt failed; the next owner change tries again. */
        SUBSCRIPTION_WAITING,
        /* Unsubscribed by the application: nothing more happens. */
        SUBSCRIPTION_DETACHED,
} SubscriptionState;

struct DurabusSubscription {
        unsigned n_ref;
        DurabusClient *client;                  /* owns a reference */
        DurabusSubscription *next, *prev;       /* in client->subscriptions */

        char *endpoint;
        char *path;
        char *subscriber;                       /* "" when ephemeral */
        DurabusSubscribeOptions options;

        durabus_message_handler_t handler;
        void *userdata;
        durabus_subscription_error_handler_t error_handler;
        void *error_userdata;

        sd_bus_slot *message_slot;              /* on the bus */
        sd_bus_slot *owner_slot;
        ClientCall *subscribe_call;             /* while ATTACHING */

        SubscriptionState state;
        /* The connection of the latest Subscribe, owning a reference: the
         * client's bus or a direct connection, with its own match of
         * Message signals then. NULL while OPENING. */
        sd_bus *bus;
        sd_bus_slot *direct_message_slot;
        char *service;                          /* while ATTACHED over the bus: the unique name that answered */

        /* The owner of org.durabus1 as the NameOwnerChanged signals seen so
         * far tell; unknown until the first one. */
        bool owner_known;
        char *owner;

        bool owner_left;                        /* an owner left while ATTACHING or OPENING */
        /* Attaching again since the direct connection closed: the instance
         * is gone or going, but the bus may not have seen it yet and route
         * the first attempts to it, or the proof of the token ahead of them,
         * which then fail with NoReply. Those are tried again, up to
         * RETRY_MAX. */
        bool direct_lost;
        unsigned failures;                      /* attempts that failed in a row */
        bool marked;                            /* see take_marked() */
};

static void subscription_link(DurabusSubscription *s) {
        DurabusClient *c = s->client;

        s->next = c->subscriptions;
        if (s->next)
                s->next->prev = s;
        c->subscriptions = s;
}

static void subscription_unlink(DurabusSubscription *s) {
        if (s->prev)
                s->prev->next = s->next;
        else if (s->client->subscriptions == s)
                s->client->subscriptions = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->next = s->prev = NULL;
}

static DurabusSubscription *client_find_subscription(DurabusClient *c, const char *path, const char *subscriber) {
        for (DurabusSubscription *s = c->subscriptions; s; s = s->next)
                if (s->state != SUBSCRIPTION_DETACHED && streq(s->path, path) && streq(s->subscriber, subscriber))
                        return s;
        return NULL;
}

/* The client's subscriptions for which pick() holds are marked, to be
 * taken one by one with take_marked(): each may attach itself again, or
 * call the application, which may free any of them. */
static void mark(DurabusClient *c, bool (*pick)(DurabusSubscription *s, void *userdata), void *userdata) {
        for (DurabusSubscription *s = c->subscriptions; s; s = s->next)
                s->marked = pick(s, userdata);
}

static DurabusSubscription *take_marked(DurabusClient *c) {
        for (DurabusSubscription *s = c->subscriptions; s; s = s->next)
                if (s->marked) {
                        s->marked = false;
                        return s;
                }
        return NULL;
}

static bool over_direct(DurabusSubscription *s) {
        return s->bus && s->bus != s->client->bus;
}

static void subscription_report(DurabusSubscription *s, int error, const sd_bus_error *bus_error) {
        if (!s->error_handler)
                return;

        durabus_subscription_ref(s);
        s->error_handler(s, error, bus_error, s->error_userdata);
        durabus_subscription_unref(s);
}

static void subscription_report_errno(DurabusSubscription *s, int error) {
        _cleanup_(sd_bus_error_free) sd_bus_error bus_error = SD_BUS_ERROR_NULL;

        (void) sd_bus_error_set_errno(&bus_error, error);
        subscription_report(s, error, &bus_error);
}

static int new_subscribe_call(DurabusSubscription *s, sd_bus_message **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = bus_new_method_call(s->bus, s->path, ENDPOINT_INTERFACE, "Subscribe", &call, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "s", s->subscriber);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && s->options.start_new)
                r = sd_bus_message_append(call, "{sv}", "start", "s", "new");
        if (r >= 0 && s->options.window > 0)
                r = sd_bus_message_append(call, "{sv}", "window", "u", s->options.window);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0)
                return fail_errno(ret_error, r);

        *ret = TAKE_PTR(call);
        return 0;
}

static int set_service(DurabusSubscription *s, sd_bus_message *reply) {
        const char *sender = sd_bus_message_get_sender(reply);
        char *copy = NULL;

        /* Over the bus, without a sender no signal could ever be told
         * apart; a bus always sets one. A direct connection sets none. */
        if (!over_direct(s)) {
                if (!sender)
                        return -EBADMSG;
                copy = strdup(sender);
                if (!copy)
                        return -ENOMEM;
        }

        free(s->service);
        s->service = copy;
        s->state = SUBSCRIPTION_ATTACHED;
        s->failures = 0;
        s->direct_lost = false;
        return 0;
}

static void subscription_attach_async(DurabusSubscription *s);

/* Until the next owner change; only that tries again. */
static void subscription_wait(DurabusSubscription *s, int error, const sd_bus_error *bus_error) {
        s->state = SUBSCRIPTION_WAITING;
        s->direct_lost = false;
        subscription_report(s, error, bus_error);
}

static void subscription_wait_errno(DurabusSubscription *s, int error) {
        s->state = SUBSCRIPTION_WAITING;
        s->direct_lost = false;
        subscription_report_errno(s, error);
}

/* An attempt failed. The instance we were talking to may have died under
 * it; the next attempt starts a fresh one. */
static void subscription_failed(DurabusSubscription *s, int error, const sd_bus_error *bus_error) {
        bool died = s->direct_lost && sd_bus_error_has_names(bus_error, SD_BUS_ERROR_NO_REPLY,
                                                             SD_BUS_ERROR_DISCONNECTED);

        s->failures++;
        if ((s->owner_left || died) && s->failures < RETRY_MAX)
                subscription_attach_async(s);
        else
                subscription_wait(s, error, bus_error);
}

/* Subscriptions cancel their call before the client can go, so reply is
 * never NULL here. */
static void on_subscribe_reply(_unused_ DurabusClient *c, sd_bus_message *reply, int error,
                               const sd_bus_error *bus_error, void *userdata) {
        DurabusSubscription *s = userdata;
        int r;

        assert(s->state == SUBSCRIPTION_ATTACHING);
        /* Freed once we return. */
        s->subscribe_call = NULL;

        if (error < 0) {
                /* The direct connection closed under the call: its
                 * Disconnected comes next and attaches again. */
                if (over_direct(s) && sd_bus_is_open(s->bus) <= 0)
                        return;
                subscription_failed(s, error, bus_error);
                return;
        }

        /* Answered over the bus by an instance that has left the name
         * since: its replay is not coming, or not for long. */
        if (!over_direct(s) && s->owner_known && !streq_ptr(sd_bus_message_get_sender(reply), s->owner)) {
                subscription_attach_async(s);
                return;
        }

        r = set_service(s, reply);
        if (r < 0)
                subscription_wait_errno(s, r);
}

static int on_direct_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

/* Makes bus the connection of the next Subscribe (NULL: none yet), with
 * the match of Message signals a direct connection needs; there is no bus
 * daemon to tell, so adding it costs no round trip. */
static int subscription_use_bus(DurabusSubscription *s, sd_bus *bus, sd_bus_error *ret_error) {
        int r;

        s->direct_message_slot = sd_bus_slot_unref(s->direct_message_slot);
        sd_bus_unref(s->bus);
        s->bus = sd_bus_ref(bus);
        if (!over_direct(s))
                return 0;

        r = sd_bus_match_signal(s->bus, &s->direct_message_slot, NULL, s->path, ENDPOINT_INTERFACE, "Message",
                                on_direct_message, s);
        if (r < 0)
                return fail_errno(ret_error, r);
        return 0;
}

/* Sends Subscribe over bus without waiting for the reply. */
static void subscription_attach_over(DurabusSubscription *s, sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        s->state = SUBSCRIPTION_ATTACHING;
        r = subscription_use_bus(s, bus, NULL);
        if (r >= 0)
                r = new_subscribe_call(s, &call, NULL);
        if (r >= 0)
                r = client_call_async(s->client, call, on_subscribe_reply, s, &s->subscribe_call);
        if (r < 0)
                subscription_wait_errno(s, r);
}

/* Sends Subscribe again without waiting for the reply: this runs from the
 * application's event loop, which must not block while the service starts.
 * It goes over the direct connection when the client has or gets one, and
 * waits for its OpenDirect when that is on its way. */
static void subscription_attach_async(DurabusSubscription *s) {
        DurabusClient *c = s->client;

        client_call_cancel(s->subscribe_call);
        s->subscribe_call = NULL;
        s->service = mfree(s->service);
        s->owner_left = false;

        switch (client_direct_open_async(c)) {
        case DIRECT_OPEN:
                subscription_attach_over(s, c->direct);
                break;
        case DIRECT_OPENING:
                (void) subscription_use_bus(s, NULL, NULL);
                s->state = SUBSCRIPTION_OPENING;
                break;
        case DIRECT_NONE:
                subscription_attach_over(s, c->bus);
                break;
        }
}

static bool is_opening(DurabusSubscription *s, _unused_ void *userdata) {
        return s->state == SUBSCRIPTION_OPENING;
}

void subscriptions_direct_settled(DurabusClient *c, int error, const sd_bus_error *bus_error) {
        DurabusSubscription *s;

        mark(c, is_opening, NULL);
        while ((s = take_marked(c))) {
                /* Over the connection it opened, or the bus when refused. */
                if (error >= 0)
                        subscription_attach_async(s);
                else
                        subscription_failed(s, error, bus_error);
        }
}

static bool is_attached_over(DurabusSubscription *s, void *userdata) {
        return s->bus == userdata && (s->state == SUBSCRIPTION_ATTACHED || s->state == SUBSCRIPTION_ATTACHING);
}

void subscriptions_direct_closed(DurabusClient *c, sd_bus *bus) {
        DurabusSubscription *s;

        /* The bus closes with the loop too, or is lost, which the client
         * reports itself: nothing could attach. */
        if (sd_bus_is_open(c->bus) <= 0)
                return;

        mark(c, is_attached_over, bus);
        while ((s = take_marked(c))) {
                /* An attempt the instance died under counts as failed, so
                 * that one dying at each attempt is not started forever. */
                if (s->state == SUBSCRIPTION_ATTACHING && ++s->failures >= RETRY_MAX) {
                        subscription_wait_errno(s, -ECONNRESET);
                        continue;
                }

                s->direct_lost = true;
                subscription_attach_async(s);
        }
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        DurabusSubscription *s = userdata;
        const char *name, *old_owner, *new_owner;
        char *copy;

        /* Only the bus itself speaks for who owns a name. */
        if (!streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus"))
                return 0;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, DURABUS_BUS_NAME))
                return 0;

        /* Before any Subscribe below, which is to carry a new proof of the
         * client's token when the instance that accepted it is gone. */
        if (!isempty(old_owner))
                client_service_left(s->client, old_owner);

        copy = strdup(new_owner);
        free(s->owner);
        s->owner = copy;
        /* Out of memory, forget what we knew rather than trust it: an
         * unknown owner takes any reply, as at the start. */
        s->owner_known = copy != NULL;

        switch (s->state) {
        case SUBSCRIPTION_ATTACHED:
                /* Over a direct connection, its end tells. */
                if (!over_direct(s) && !isempty(old_owner) && streq_ptr(old_owner, s->service))
                        subscription_attach_async(s);
                break;

        case SUBSCRIPTION_ATTACHING:
        case SUBSCRIPTION_OPENING:
                if (!isempty(old_owner))
                        s->owner_left = true;
                break;

        case SUBSCRIPTION_WAITING:
                /* Someone started the service, or the instance that failed
                 * us is gone and a fresh one may do better. */
                if (!isempty(new_owner) || s->failures < RETRY_MAX)
                        subscription_attach_async(s);
                break;

        case SUBSCRIPTION_DETACHED:
                break;
        }

        return 0;
}

/* meta: "timestamp" (t) and "delivery-count" (u); other keys are for later
 * versions of the service and skipped. */
static int read_meta(sd_bus_message *m, uint64_t *ret_timestamp, uint32_t *ret_delivery_count) {
        uint64_t timestamp = 0;
        uint32_t delivery_count = 1;
        const char *key, *type;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, NULL, &type);
                if (r < 0)
                        return r;

                if (streq(key, "timestamp") && streq(type, "t"))
                        r = sd_bus_message_read(m, "v", "t", &timestamp);
                else if (streq(key, "delivery-count") && streq(type, "u"))
                        r = sd_bus_message_read(m, "v", "u", &delivery_count);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        *ret_timestamp = timestamp;
        *ret_delivery_count = delivery_count;
        return 0;
}

/* Hands the Message signal m to the application. */
static void deliver(DurabusSubscription *s, sd_bus_message *m) {
        DurabusMessage message = { .endpoint = s->endpoint };
        const char *subscriber;
        int r;

        r = sd_bus_message_read(m, "s", &subscriber);
        if (r < 0 || !streq(subscriber, s->subscriber))
                return;

        r = sd_bus_message_read(m, "sts", &message.id, &message.seq, &message.payload);
        if (r >= 0)
                r = read_meta(m, &message.timestamp, &message.delivery_count);
        if (r < 0) {
                subscription_report_errno(s, -EBADMSG);
                return;
        }

        message.subscriber = s->subscriber;
        message.redelivered = message.delivery_count > 1;

        /* The handler may drop the application's last reference. */
        durabus_subscription_ref(s);
        s->handler(s, &message, s->userdata);
        durabus_subscription_unref(s);
}

static int on_message(sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        DurabusSubscription *s = userdata;

        /* Unicast signals need no match rule to reach us, and a match rule
         * does not stop any peer from sending them: only the instance that
         * answered our Subscribe speaks for the service. */
        if (s->state == SUBSCRIPTION_ATTACHED && !over_direct(s) &&
            streq_ptr(sd_bus_message_get_sender(m), s->service))
                deliver(s, m);
        return 0;
}

/* On s->bus, a direct connection: only the service is at its other end. */
static int on_direct_message(sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        DurabusSubscription *s = userdata;

        if (s->state == SUBSCRIPTION_ATTACHED)
                deliver(s, m);
        return 0;
}

static DurabusSubscription *subscription_free(DurabusSubscription *s) {
        client_call_cancel(s->subscribe_call);
        sd_bus_slot_unref(s->message_slot);
        sd_bus_slot_unref(s->owner_slot);
        sd_bus_slot_unref(s->direct_message_slot);
        sd_bus_unref(s->bus);
        if (s->client) {
                subscription_unlink(s);
                durabus_client_unref(s->client);
        }
        free(s->endpoint);
        free(s->path);
        free(s->subscriber);
        free(s->service);
        free(s->owner);
        free(s);
        return NULL;
}

static void subscription_freep(DurabusSubscription **s) {
        if (*s)
                subscription_free(*s);
}

/* The signals the subscription listens to, added before Subscribe is sent:
 * the replay follows the reply at once, and NameOwnerChanged must be seen
 * from before the instance that answers could possibly leave. */
static int subscription_add_matches(DurabusSubscription *s, sd_bus_error *ret_error) {
        int r;

        r = sd_bus_add_match(s->client->bus, &s->owner_slot, NAME_OWNER_CHANGED_MATCH, on_name_owner_changed, s);
        if (r < 0)
                return fail_errno(ret_error, r);

        r = sd_bus_match_signal(s->client->bus, &s->message_slot, DURABUS_BUS_NAME, s->path, ENDPOINT_INTERFACE,
                                "Message", on_message, s);
        if (r < 0)
                return fail_errno(ret_error, r);

        return 0;
}

_public_ int durabus_subscribe(DurabusClient *c, const char *endpoint, const char *subscriber,
                               const DurabusSubscribeOptions *options, durabus_message_handler_t handler,
                               void *userdata, DurabusSubscription **ret, sd_bus_error *ret_error) {
        _cleanup_(subscription_freep) DurabusSubscription *s = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!c || !handler || !ret)
                return fail_invalid_args(ret_error, "No client, handler or place for the subscription given");

        r = endpoint_path_from_name(endpoint, &path, ret_error);
        if (r < 0)
                return r;

        if (!subscriber)
                subscriber = "";
        if (client_find_subscription(c, path, subscriber))
                return fail_named(ret_error, -EBUSY, DURABUS_ERROR_SUBSCRIBER_BUSY,
                                  "Subscription '%s' of endpoint '%s' is attached to this client already",
                                  subscriber, endpoint);

        s = calloc(1, sizeof(DurabusSubscription));
        if (!s)
                return fail_errno(ret_error, -ENOMEM);
        s->n_ref = 1;
        s->path = TAKE_PTR(path);
        s->endpoint = strdup(endpoint);
        s->subscriber = strdup(subscriber);
        if (!s->endpoint || !s->subscriber)
                return fail_errno(ret_error, -ENOMEM);
        if (options)
                s->options = *options;
        s->handler = handler;
        s->userdata = userdata;
        /* Signals that arrive before the reply below is handled wait. */
        s->state = SUBSCRIPTION_ATTACHING;

        s->client = durabus_client_ref(c);
        subscription_link(s);

        r = subscription_add_matches(s, ret_error);
        if (r < 0)
                return r;

        r = subscription_use_bus(s, client_direct_open(c) == DIRECT_OPEN ? c->direct : c->bus, ret_error);
        if (r < 0)
                return r;

        r = new_subscribe_call(s, &call, ret_error);
        if (r < 0)
                return r;

        /* Waiting here queues whatever else arrives, NameOwnerChanged
         * included; the loop dispatches it afterwards, in order, so an
         * instance that answered and left at once is noticed then. */
        r = client_call(c, call, &reply, ret_error);
        if (r < 0)
                return r;

        r = set_service(s, reply);
        if (r < 0)
                return fail_errno(ret_error, r);

        *ret = TAKE_PTR(s);
        return 0;
}

/* Where calls about the attachment go: over the connection of the
 * Subscribe, behind it; over the bus while there is none, where the
 * service says itself that it is not attached. */
static sd_bus *subscription_call_bus(DurabusSubscription *s) {
        if ((s->state == SUBSCRIPTION_ATTACHED || s->state == SUBSCRIPTION_ATTACHING) && over_direct(s) &&
            sd_bus_is_open(s->bus) > 0)
                return s->bus;
        return s->client->bus;
}

/* A detached object no longer speaks for the subscription at the service:
 * the connection may have attached it again through another object since. */
static int fail_detached(DurabusSubscription *s, sd_bus_error *ret_error) {
        return fail_named(ret_error, -ESRCH, DURABUS_ERROR_NOT_SUBSCRIBED,
                          "Subscription '%s' of endpoint '%s' is not attached: it was unsubscribed", s->subscriber,
                          s->endpoint);
}

/* client_call() for a call about the attachment. One that a direct
 * connection took down with it fails as a call that reached the next
 * instance would: the attachment ended with the connection. */
static int subscription_call(DurabusSubscription *s, sd_bus_message *call, sd_bus_message **ret_reply,
                             sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = sd_bus_message_get_bus(call);
        int r;

        r = client_call(s->client, call, ret_reply, &error);
        if (r < 0 && bus != s->client->bus && sd_bus_is_open(bus) <= 0)
                return fail_named(ret_error, -ESRCH, DURABUS_ERROR_NOT_SUBSCRIBED,
                                  "Subscription '%s' of endpoint '%s' is not attached: the service went away",
                                  s->subscriber, s->endpoint);

        (void) sd_bus_error_move(ret_error, &error);
        return r;
}

_public_ int durabus_subscription_ack_many(DurabusSubscription *s, const char *const *ids, uint32_t *ret_acked,
                                           sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        uint32_t acked;
        int r;

        if (!s || !ids)
                return fail_invalid_args(ret_error, "No subscription or no ids given");
        if (s->state == SUBSCRIPTION_DETACHED)
                return fail_detached(s, ret_error);

        /* Sent in every other state: while a new Subscribe is on its way it
         * is ahead of this call on the connection, and when the service
         * has no attachment it says so itself. */
        r = bus_new_method_call(subscription_call_bus(s), s->path, ENDPOINT_INTERFACE, "Ack", &call, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "s", s->subscriber);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, (char **) ids);
        if (r < 0)
                return r == -EINVAL ? fail_invalid_args(ret_error, "A message id is not valid UTF-8")
                                    : fail_errno(ret_error, r);

        r = subscription_call(s, call, &reply, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "u", &acked);
        if (r < 0)
                return fail_errno(ret_error, r);

        if (ret_acked)
                *ret_acked = acked;
        return 0;
}

_public_ int durabus_subscription_ack(DurabusSubscription *s, const char *id, sd_bus_error *ret_error) {
        const char *ids[] = { id, NULL };
        uint32_t acked;
        int r;

        if (!id)
                return fail_invalid_args(ret_error, "No message id given");

        r = durabus_subscription_ack_many(s, ids, &acked, ret_error);
        if (r < 0)
                return r;

        return acked > 0;
}

static int new_unsubscribe_call(DurabusSubscription *s, bool forget, sd_bus_message **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = bus_new_method_call(subscription_call_bus(s), s->path, ENDPOINT_INTERFACE, "Unsubscribe", &call,
                                ret_error);
        if (r < 0)
                return r;

        if (forget)
                r = sd_bus_message_append(call, "sa{sv}", s->subscriber, 1, "forget", "b", 1);
        else
                r = sd_bus_message_append(call, "sa{sv}", s->subscriber, 0);
        if (r < 0)
                return fail_errno(ret_error, r);

        *ret = TAKE_PTR(call);
        return 0;
}

/* Nothing is to reach the application any more. The matches go: the
 * service sends nothing after Unsubscribe, and a later subscription of the
 * same name gets its own. */
static void subscription_detach(DurabusSubscription *s) {
        s->state = SUBSCRIPTION_DETACHED;
        client_call_cancel(s->subscribe_call);
        s->subscribe_call = NULL;
        s->message_slot = sd_bus_slot_unref(s->message_slot);
        s->owner_slot = sd_bus_slot_unref(s->owner_slot);
        (void) subscription_use_bus(s, NULL, NULL);
        s->service = mfree(s->service);
}

_public_ int durabus_subscription_unsubscribe(DurabusSubscription *s, bool forget, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        if (!s)
                return fail_invalid_args(ret_error, "No subscription given");
        if (s->state == SUBSCRIPTION_DETACHED)
                return fail_detached(s, ret_error);

        r = new_unsubscribe_call(s, forget, &call, ret_error);
        if (r < 0)
                return r;

        /* A Subscribe still on its way is ahead of this call, so the
         * service detaches what it attaches; its reply no longer matters. */
        r = subscription_call(s, call, NULL, ret_error);
        if (r < 0)
                return r;

        subscription_detach(s);
        return 0;
}

_public_ int durabus_subscription_set_error_handler(DurabusSubscription *s,
                                                    durabus_subscription_error_handler_t handler, void *userdata) {
        if (!s)
                return -EINVAL;

        s->error_handler = handler;
        s->error_userdata = userdata;
        return 0;
}

_public_ const char *durabus_subscription_get_endpoint(DurabusSubscription *s) {
        return s ? s->endpoint : NULL;
}

_public_ const char *durabus_subscription_get_subscriber(DurabusSubscription *s) {
        return s ? s->subscriber : NULL;
}

_public_ DurabusClient *durabus_subscription_get_client(DurabusSubscription *s) {
        return s ? s->client : NULL;
}

_public_ DurabusSubscription *durabus_subscription_ref(DurabusSubscription *s) {
        if (s)
                s->n_ref++;
        return s;
}

_public_ DurabusSubscription *durabus_subscription_unref(DurabusSubscription *s) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

        if (!s || --s->n_ref > 0)
                return NULL;

        /* Still attached, or about to be: detach without waiting, as this
         * may run from a handler or a cleanup, and without asking for an
         * answer nobody would read. A failure only leaves the subscription
         * attached until the connection closes, which detaches it too. */
        if ((s->state == SUBSCRIPTION_ATTACHED || s->state == SUBSCRIPTION_ATTACHING) &&
            new_unsubscribe_call(s, false, &call, NULL) >= 0 && sd_bus_message_set_expect_reply(call, 0) >= 0)
                (void) sd_bus_send(sd_bus_message_get_bus(call), call, NULL);

        return subscription_free(s);
}

_public_ void durabus_subscription_unrefp(DurabusSubscription **s) {
        durabus_subscription_unref(*s);
}
