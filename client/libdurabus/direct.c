/* SPDX-License-Identifier: MIT */

/*
 * The direct connection of a client (Broker.OpenDirect): a socket pair to
 * the running instance of the service, without the bus in between, which
 * subscriptions and asynchronous sends use when the client runs on sd-event
 * (a foreign loop watches the bus's descriptor only).
 *
 * One at a time, opened on first need over the bus, after the token was
 * proved to the instance: the connection gets the rights the bus
 * connection holds at that moment and keeps them for its life. It closes
 * when the instance exits or dies, which is then its departure for us: the
 * instance named in the reply to OpenDirect is taken to have left, and
 * whatever was attached over the connection attaches itself again, opening
 * a new one (subscription.c). An instance that refuses it (an older service
 * without OpenDirect, a caller without any right, the limit of direct
 * connections reached) or whose descriptor cannot be used is served over
 * the bus until it leaves the bus name.
 */

#include <fcntl.h>
#include <unistd.h>

#include "durabus-private.h"

/* Whether anything new may go over a direct connection: one that is open
 * stays for what is attached to it when direct connections are turned off
 * or the client leaves its loop. */
static bool direct_wanted(DurabusClient *c) {
        return c->direct_enabled && c->event;
}

/* Answers that will not change while this instance runs. */
static bool is_refusal(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                      SD_BUS_ERROR_UNKNOWN_INTERFACE, SD_BUS_ERROR_ACCESS_DENIED,
                                      SD_BUS_ERROR_LIMITS_EXCEEDED);
}

static int on_direct_disconnected(_unused_ sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        DurabusClient *c = userdata;
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        _cleanup_(freep) char *instance = NULL;

        /* The service writes the headers itself on a peer connection: a
         * Disconnected it sent while the connection is open is none. */
        if (sd_bus_is_open(c->direct) > 0)
                return 0;

        bus = TAKE_PTR(c->direct);
        instance = TAKE_PTR(c->direct_instance);
        /* sd-bus holds the slot while its callback runs. */
        c->direct_disconnected_slot = sd_bus_slot_unref(c->direct_disconnected_slot);

        /* The proof went with the instance, whose NameOwnerChanged the bus
         * may not have delivered yet: the next OpenDirect is to carry a new
         * one. */
        if (instance)
                client_service_left(c, instance);

        /* A handler may drop the application's last reference. */
        durabus_client_ref(c);
        subscriptions_direct_closed(c, bus);
        durabus_client_unref(c);
        return 0;
}

/* Makes c->direct from the answer to OpenDirect. */
static int direct_connect(DurabusClient *c, sd_bus_message *reply) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(freep) char *instance = NULL;
        const char *sender = sd_bus_message_get_sender(reply);
        int fd, r;

        if (!sender)
                return -EBADMSG;
        instance = strdup(sender);
        if (!instance)
                return -ENOMEM;

        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;

        /* The descriptor is the reply's. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        r = sd_bus_set_fd(bus, fd, fd);
        if (r < 0) {
                (void) close(fd);
                return r;
        }

        r = sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus.Local", NULL, "org.freedesktop.DBus.Local",
                                "Disconnected", on_direct_disconnected, c);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, c->event, (int) c->event_priority);
        if (r < 0)
                return r;

        c->direct = TAKE_PTR(bus);
        c->direct_disconnected_slot = TAKE_PTR(slot);
        c->direct_instance = TAKE_PTR(instance);
        return 0;
}

/* Takes the answer to an OpenDirect (error 0 and the reply, or a failure):
 * 0 when it is settled which connection to use, else the failure. */
static int direct_take_answer(DurabusClient *c, sd_bus_message *reply, int error, const sd_bus_error *bus_error) {
        if (error < 0) {
                if (!is_refusal(bus_error))
                        return error;
                c->direct_refused = true;
                return 0;
        }

        /* Opened in the meantime by a call that waited: this one's
         * descriptor closes with its reply. */
        if (c->direct)
                return 0;

        /* A descriptor that could not be received or used will not be
         * better the next time. */
        if (direct_connect(c, reply) < 0)
                c->direct_refused = true;
        return 0;
}

static int new_open_call(DurabusClient *c, sd_bus_message **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = client_new_method_call(c, BROKER_PATH, BROKER_INTERFACE, "OpenDirect", &call, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "a{sv}", 0);
        if (r < 0)
                return fail_errno(ret_error, r);

        *ret = TAKE_PTR(call);
        return 0;
}

/* Whether the client's direct connection is settled without an OpenDirect:
 * true with *ret what it has (none wanted, one open, one refused), false
 * when one is to be asked for. */
static bool direct_settled(DurabusClient *c, DirectState *ret) {
        if (!direct_wanted(c))
                *ret = DIRECT_NONE;
        /* A closing one is done with, though its Disconnected is still to
         * be dispatched. */
        else if (c->direct)
                *ret = sd_bus_is_open(c->direct) > 0 ? DIRECT_OPEN : DIRECT_NONE;
        else if (c->direct_refused)
                *ret = DIRECT_NONE;
        else
                return false;
        return true;
}

DirectState client_direct_open(DurabusClient *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        DirectState state;
        int r;

        if (direct_settled(c, &state))
                return state;

        /* An OpenDirect on its way is not waited for: this call may not
         * dispatch its answer. Whichever comes second is closed. */
        r = new_open_call(c, &call, &error);
        if (r >= 0)
                r = client_call(c, call, &reply, &error);
        (void) direct_take_answer(c, reply, r, &error);

        return c->direct ? DIRECT_OPEN : DIRECT_NONE;
}

static void on_open_reply(DurabusClient *c, sd_bus_message *reply, int error, const sd_bus_error *bus_error,
                          _unused_ void *userdata) {
        /* Canceled before the client goes, so c is never NULL here. */
        c->direct_call = NULL;
        error = direct_take_answer(c, reply, error, bus_error);

        /* A handler may drop the application's last reference. */
        durabus_client_ref(c);
        subscriptions_direct_settled(c, error, bus_error);
        durabus_client_unref(c);
}

DirectState client_direct_open_async(DurabusClient *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        DirectState state;
        int r;

        if (direct_settled(c, &state))
                return state;
        if (c->direct_call)
                return DIRECT_OPENING;

        /* Not sent: the bus then, whose call reports what is wrong. */
        r = new_open_call(c, &call, NULL);
        if (r >= 0)
                r = client_call_async(c, call, on_open_reply, NULL, &c->direct_call);
        return r < 0 ? DIRECT_NONE : DIRECT_OPENING;
}

int client_direct_attach_event(DurabusClient *c) {
        if (!c->direct)
                return 0;

        (void) sd_bus_detach_event(c->direct);
        if (!c->event)
                return 0;
        return sd_bus_attach_event(c->direct, c->event, (int) c->event_priority);
}

void client_direct_service_left(DurabusClient *c) {
        c->direct_refused = false;
}

void client_direct_free(DurabusClient *c) {
        client_call_cancel(c->direct_call);
        c->direct_call = NULL;
        c->direct_disconnected_slot = sd_bus_slot_unref(c->direct_disconnected_slot);
        /* Freeing the connection frees the slots of the sends on their way,
         * whose destroy callbacks tell their handlers (call.c). */
        c->direct = sd_bus_flush_close_unref(c->direct);
        c->direct_instance = mfree(c->direct_instance);
}
