/* SPDX-License-Identifier: MIT */

/*
 * The client: one bus connection, its place in the application's event
 * loop (sd-event, or a descriptor and a timeout for any other loop), the
 * report of a lost connection, the switch of the direct connection
 * (direct.c), and the method calls every other module builds on it (call.c
 * sends them).
 */

#include <assert.h>

#include "durabus-private.h"

static int on_disconnected(_unused_ sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        DurabusClient *c = userdata;

        /* The handler may drop the application's last reference; ours keeps
         * the client alive until sd-bus is done with this callback. */
        durabus_client_ref(c);
        if (c->disconnect_handler)
                c->disconnect_handler(c, c->disconnect_userdata);
        durabus_client_unref(c);
        return 0;
}

/* Unless the environment turns direct connections off, for programs that
 * cannot be changed: DURABUS_NO_DIRECT set to anything but "" or "0". */
static bool direct_wanted(void) {
        const char *e = getenv("DURABUS_NO_DIRECT");

        return isempty(e) || streq(e, "0");
}

/* Takes over bus, a started connection, whatever the outcome. */
static int client_new(sd_bus *bus, DurabusClient **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = bus;
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        int r;

        c = calloc(1, sizeof(DurabusClient));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->bus = TAKE_PTR(b);
        c->direct_enabled = direct_wanted();

        /* sd-bus turns the end of the connection into this local signal; it
         * never goes to the bus, so adding it costs no round trip. */
        r = sd_bus_match_signal(c->bus, &c->disconnected_slot, "org.freedesktop.DBus.Local", NULL,
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

_public_ int durabus_client_new(DurabusClient **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!ret)
                return -EINVAL;

        r = sd_bus_open_user(&bus);
        if (r < 0)
                return r;

        return client_new(bus, ret);
}

_public_ int durabus_client_new_with_address(const char *address, DurabusClient **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address || !ret)
                return -EINVAL;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;

        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;

        /* A message bus, not a peer: Hello gives us a unique name, and calls
         * to org.durabus1 can activate the service. */
        r = sd_bus_set_bus_client(bus, 1);
        if (r < 0)
                return r;

        r = sd_bus_start(bus);
        if (r < 0)
                return r;

        return client_new(TAKE_PTR(bus), ret);
}

_public_ DurabusClient *durabus_client_ref(DurabusClient *c) {
        if (c)
                c->n_ref++;
        return c;
}

_public_ DurabusClient *durabus_client_unref(DurabusClient *c) {
        if (!c || --c->n_ref > 0)
                return NULL;

        /* Each subscription holds a reference, so none is left here. */
        assert(!c->subscriptions);

        sd_bus_slot_unref(c->disconnected_slot);
        /* First: an OpenDirect on its way may be held for a proof, and is
         * canceled here rather than answered when the token goes. */
        client_direct_free(c);
        client_forget_token(c);
        /* Freeing the bus frees the slots of pending calls, whose destroy
         * callbacks tell their handlers (call.c). */
        sd_bus_flush_close_unref(c->bus);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

_public_ void durabus_client_unrefp(DurabusClient **c) {
        durabus_client_unref(*c);
}

_public_ int durabus_client_attach_event(DurabusClient *c, sd_event *event, int64_t priority) {
        int r;

        if (!c)
                return -EINVAL;

        r = sd_bus_attach_event(c->bus, event, (int) priority);
        if (r < 0)
                return r;

        /* The loop sd-bus took, the default one when event is NULL. */
        c->event = sd_event_ref(sd_bus_get_event(c->bus));
        c->event_priority = priority;
        r = client_direct_attach_event(c);
        if (r < 0) {
                (void) durabus_client_detach_event(c);
                return r;
        }
        return 0;
}

_public_ int durabus_client_detach_event(DurabusClient *c) {
        int r;

        if (!c)
                return -EINVAL;

        /* sd-bus says 1 when it detached, 0 when there was nothing to
         * detach; both are success here. */
        c->event = sd_event_unref(c->event);
        (void) client_direct_attach_event(c);
        r = sd_bus_detach_event(c->bus);
        return r < 0 ? r : 0;
}

_public_ int durabus_client_get_fd(DurabusClient *c) {
        if (!c)
                return -EINVAL;

        return sd_bus_get_fd(c->bus);
}

_public_ int durabus_client_get_events(DurabusClient *c) {
        if (!c)
                return -EINVAL;

        return sd_bus_get_events(c->bus);
}

_public_ int durabus_client_get_timeout(DurabusClient *c, uint64_t *ret_usec) {
        uint64_t usec;
        int r;

        if (!c || !ret_usec)
                return -EINVAL;

        r = sd_bus_get_timeout(c->bus, &usec);
        if (r < 0)
                return r;

        *ret_usec = usec;
        return r;
}

_public_ int durabus_client_process(DurabusClient *c) {
        if (!c)
                return -EINVAL;

        return sd_bus_process(c->bus, NULL);
}

_public_ int durabus_client_flush(DurabusClient *c) {
        if (!c)
                return -EINVAL;

        return sd_bus_flush(c->bus);
}

_public_ int durabus_client_set_disconnect_handler(DurabusClient *c, durabus_disconnect_handler_t handler,
                                                   void *userdata) {
        if (!c)
                return -EINVAL;

        c->disconnect_handler = handler;
        c->disconnect_userdata = userdata;
        return 0;
}

_public_ int durabus_client_set_direct(DurabusClient *c, bool enabled) {
        if (!c)
                return -EINVAL;

        /* An open direct connection stays for what uses it; nothing new
         * goes over it. */
        c->direct_enabled = enabled;
        return 0;
}

int bus_new_method_call(sd_bus *bus, const char *path, const char *interface, const char *member,
                        sd_bus_message **ret, sd_bus_error *ret_error) {
        int r;

        /* The service takes its own name as destination on a direct
         * connection too. */
        r = sd_bus_message_new_method_call(bus, ret, DURABUS_BUS_NAME, path, interface, member);
        if (r < 0)
                return fail_errno(ret_error, r);
        return 0;
}

int client_new_method_call(DurabusClient *c, const char *path, const char *interface, const char *member,
                           sd_bus_message **ret, sd_bus_error *ret_error) {
        return bus_new_method_call(c->bus, path, interface, member, ret, ret_error);
}
