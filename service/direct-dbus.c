/* SPDX-License-Identifier: MIT */
#include "direct-dbus.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-id128.h>

#include "access-dbus.h"
#include "broker-dbus.h"
#include "endpoint-dbus.h"
#include "options.h"
#include "sender.h"
#include "util.h"

typedef struct Direct {
        Context *context;
        char *name;             /* "direct:N" (sender.h), also the bus's description */
        sd_bus *bus;            /* the server on our end */
        sd_event_source *startup; /* until the connection runs: see on_startup() */
} Direct;

static void direct_free(Direct *d) {
        if (!d)
                return;
        sd_event_source_disable_unref(d->startup);
        /* No flush: a peer that does not read would hold up the exit of the
         * service forever. Replies were written as they were sent, as far
         * as the socket took them. */
        sd_bus_close_unref(d->bus);
        free(d->name);
        free(d);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Direct *, direct_free)

/* sd-bus flushes every connection attached to the loop when it exits, and
 * so would wait forever for a peer that does not read: they close first. */
static int on_loop_exit(sd_event_source *s, void *userdata) {
        Context *c = userdata;

        g_hash_table_remove_all(c->directs);
        return 0;
}

int direct_dbus_init(Context *c) {
        int r;

        c->directs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) direct_free);
        r = sd_event_add_exit(c->event, &c->directs_exit, on_loop_exit, c);
        if (r < 0)
                return r;
        return sd_event_source_set_priority(c->directs_exit, SD_EVENT_PRIORITY_IMPORTANT);
}

void direct_dbus_done(Context *c) {
        c->directs_exit = sd_event_source_disable_unref(c->directs_exit);
        if (!c->directs)
                return;
        g_hash_table_destroy(c->directs);
        c->directs = NULL;
}

bool direct_dbus_busy(Context *c) {
        return c->directs && g_hash_table_size(c->directs) > 0;
}

/*
 * The peer closed its end (sd-bus turns the end of the socket into this
 * local signal). The bus tells of a client that left through the tracking
 * of its name; a direct connection has no name on the bus, so what belongs
 * to it goes here: its subscriptions detach, its caller and the connection
 * are freed.
 */
static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Direct *d = userdata;
        Context *c = d->context;

        /* A peer writes its headers itself: a Disconnected it sent while the
         * connection is open is none. */
        if (sd_bus_is_open(d->bus) > 0)
                return 0;

        log_debug("Direct connection %s closed", d->name);
        endpoint_dbus_detach_connection(c, d->name);
        access_dbus_forget(c, d->name);
        g_hash_table_remove(c->directs, d->name);
        return 0;
}

/*
 * sd-bus (252) leaves what a client sent in the same write as its BEGIN in
 * the buffer of the authentication, unread until more comes from the
 * socket; a client that waits for the answer to its first call sends
 * nothing more, and both would wait forever. So after each iteration of the
 * loop, until the connection runs, this looks whether it does now, and
 * then processes what is buffered once by hand.
 */
static int on_startup(sd_event_source *s, void *userdata) {
        Direct *d = userdata;
        sd_bus *bus;
        int r;

        if (sd_bus_is_ready(d->bus) <= 0)
                return 0;
        d->startup = sd_event_source_disable_unref(d->startup);

        /* A call processed here may close the connection and free d. */
        bus = sd_bus_ref(d->bus);
        while ((r = sd_bus_process(bus, NULL)) > 0)
                ;
        if (r < 0)
                log_debug("Failed to process the first calls of a direct connection: %s", strerror(-r));
        sd_bus_unref(bus);
        return 0;
}

/* A started server of that name on *fd, which it takes (leaving -EBADF)
 * once the bus has it, serving the objects of the bus. */
static int direct_new(Context *c, const char *name, int *fd, Direct **ret) {
        _cleanup_(direct_freep) Direct *d = NULL;
        sd_id128_t id;
        int r;

        d = calloc(1, sizeof(Direct));
        if (!d)
                return -ENOMEM;
        d->context = c;
        d->name = strdup(name);
        if (!d->name)
                return -ENOMEM;

        r = sd_bus_new(&d->bus);
        if (r < 0)
                return r;
        r = sd_bus_set_fd(d->bus, *fd, *fd);
        if (r < 0)
                return r;
        *fd = -EBADF;

        r = sd_bus_set_description(d->bus, d->name);
        if (r >= 0)
                r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(d->bus, true, id);
        /* The peer credentials of a socket pair are the service's own and
         * tell nothing: whoever holds the other end got it from OpenDirect,
         * and the connection has the rights of that caller. */
        if (r >= 0)
                r = sd_bus_set_anonymous(d->bus, true);
        if (r >= 0)
                r = broker_dbus_register(c, d->bus);
        if (r >= 0)
                r = endpoint_dbus_register(c, d->bus);
        if (r >= 0)
                r = sd_bus_match_signal(d->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, d);
        if (r >= 0)
                r = sd_bus_attach_event(d->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_event_add_post(c->event, &d->startup, on_startup, d);
        if (r >= 0)
                r = sd_bus_start(d->bus);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

int direct_dbus_method_open(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(closep) int ours = -EBADF, theirs = -EBADF;
        _cleanup_(freep) char *name = NULL;
        Context *c = userdata;
        Direct *d;
        int pair[2], r;

        r = options_read(m, NULL, 0, error);
        if (r < 0)
                return r;

        if (g_hash_table_size(c->directs) >= DIRECT_CONNECTIONS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Cannot open a direct connection: %u are open, the limit",
                                         g_hash_table_size(c->directs));

        r = sender_direct_name(c->n_directs_opened + 1, &name);
        if (r < 0)
                return r;
        r = access_dbus_copy_caller(c, m, name, error);
        if (r < 0)
                return r;
        c->n_directs_opened++;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                r = -errno;
        else {
                ours = pair[0];
                theirs = pair[1];
                /* Ours only: the caller decides how it reads its end. */
                r = fcntl(ours, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
        }
        if (r >= 0)
                r = direct_new(c, name, &ours, &d);
        if (r < 0) {
                access_dbus_forget(c, name);
                return sd_bus_error_set_errnof(error, -r, "Failed to set up a direct connection: %m");
        }
        g_hash_table_insert(c->directs, d->name, d);

        r = sd_bus_reply_method_return(m, "h", theirs);
        if (r < 0) {
                access_dbus_forget(c, d->name);
                g_hash_table_remove(c->directs, d->name);
                return r;
        }

        log_debug("Opened direct connection %s for %s", d->name, sender_name(m));
        return 0;
}
