/* SPDX-License-Identifier: MIT */

/*
 * durabus-glib-listen ENDPOINT SUBSCRIBER [COUNT]
 *
 * A GLib program that listens on a durabus endpoint through the GDBus
 * bindings generated from the introspection XML (durabus-gdbus.pc): it
 * attaches the durable subscription SUBSCRIBER, prints each message as
 * "SEQ ID PAYLOAD" and acknowledges it. Messages that were sent while it was
 * not running are replayed first. With COUNT it unsubscribes and exits after
 * that many messages; without, it listens until it is killed (the service
 * detaches the subscription when the connection goes).
 *
 * Exit status: 0 on success, 1 on an error, 2 on wrong arguments.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <durabus-gdbus.h>

#define PROGRAM "durabus-glib-listen"
#define DURABUS_NAME "org.durabus1"
#define BROKER_PATH "/org/durabus1"

typedef struct Listener {
        const char *subscriber;
        guint count;            /* messages to take; 0: no limit */
        guint received;
        int status;             /* EXIT_FAILURE once something failed */
        GMainLoop *loop;
} Listener;

static void listener_stop(Listener *l, int status) {
        l->status = status;
        g_main_loop_quit(l->loop);
}

/* Prints what failed and, for an error reply, the D-Bus error name. */
static int report(const char *what, GError *error) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);

        g_dbus_error_strip_remote_error(error);
        if (name)
                g_printerr(PROGRAM ": %s: %s (%s)\n", what, error->message, name);
        else
                g_printerr(PROGRAM ": %s: %s\n", what, error->message);
        return EXIT_FAILURE;
}

static void on_message(DurabusEndpoint *endpoint, const char *subscriber, const char *id, guint64 seq,
                       const char *payload, GVariant *meta, gpointer data) {
        Listener *l = data;
        const char *ids[] = { id, NULL };
        g_autoptr(GError) error = NULL;

        /* The signal is addressed to this connection, which could hold other
         * subscriptions of the endpoint too; and signals queued behind the
         * last one COUNT asked for stay unacknowledged, for the next run. */
        if (g_strcmp0(subscriber, l->subscriber) != 0 || l->status != EXIT_SUCCESS ||
            (l->count && l->received == l->count))
                return;

        /* Acknowledge only what surely reached standard output: until then
         * the service keeps the message and delivers it again next time.
         * (printf, not g_print, which would convert to the locale's charset.) */
        if (printf("%" G_GUINT64_FORMAT " %s %s\n", seq, id, payload) < 0 || fflush(stdout) != 0) {
                g_printerr(PROGRAM ": Cannot write to standard output: %s\n", g_strerror(errno));
                listener_stop(l, EXIT_FAILURE);
                return;
        }
        l->received++;

        /* A synchronous call is fine here: it does not run the main loop,
         * so the next Message signal waits until this one is done. */
        if (!durabus_endpoint_call_ack_sync(endpoint, l->subscriber, ids, NULL, NULL, &error))
                listener_stop(l, report("Ack", error));
        else if (l->count && l->received == l->count)
                listener_stop(l, EXIT_SUCCESS);
}

/* The subscription is held by the service's connection: when that goes
 * away (crash, kill), no more messages come. libdurabus subscribes again
 * by itself; this example just says so and stops. */
static void on_name_owner(GObject *proxy, GParamSpec *pspec, gpointer data) {
        g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(proxy));

        if (!owner) {
                g_printerr(PROGRAM ": The durabus service went away\n");
                listener_stop(data, EXIT_FAILURE);
        }
}

int main(int argc, char *argv[]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) bus = NULL;
        g_autoptr(DurabusBroker) broker = NULL;
        g_autoptr(DurabusEndpoint) endpoint = NULL;
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        g_autofree char *path = NULL;
        guint64 count = 0;
        Listener l = { .loop = loop };

        if (argc < 3 || argc > 4) {
                g_printerr("Usage: " PROGRAM " ENDPOINT SUBSCRIBER [COUNT]\n");
                return 2;
        }
        if (argc == 4 && !g_ascii_string_to_unsigned(argv[3], 10, 1, G_MAXUINT, &count, &error)) {
                g_printerr(PROGRAM ": Invalid COUNT: %s\n", error->message);
                return 2;
        }
        l.subscriber = argv[2];
        l.count = (guint) count;

        bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
        if (!bus)
                return report("Cannot connect to the session bus", error);

        /* The broker checks the endpoint's name and returns its object path;
         * the first call also starts the service (D-Bus activation). */
        broker = durabus_broker_proxy_new_sync(bus,
                                               G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
                                                       G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
                                               DURABUS_NAME, BROKER_PATH, NULL, &error);
        if (!broker)
                return report("Cannot make a proxy for the broker", error);
        if (!durabus_broker_call_open_endpoint_sync(broker, argv[1], g_variant_new("a{sv}", NULL), &path, NULL,
                                                    &error))
                return report("OpenEndpoint", error);

        endpoint = durabus_endpoint_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, DURABUS_NAME,
                                                   path, NULL, &error);
        if (!endpoint)
                return report("Cannot make a proxy for the endpoint", error);

        /* Connect before subscribing: the replay starts right after the
         * reply to Subscribe. */
        g_signal_connect(endpoint, "message", G_CALLBACK(on_message), &l);
        g_signal_connect(endpoint, "notify::g-name-owner", G_CALLBACK(on_name_owner), &l);

        if (!durabus_endpoint_call_subscribe_sync(endpoint, l.subscriber, g_variant_new("a{sv}", NULL), NULL, NULL,
                                                  &error))
                return report("Subscribe", error);

        g_main_loop_run(loop);

        if (l.status != EXIT_SUCCESS)
                return l.status;

        if (!durabus_endpoint_call_unsubscribe_sync(endpoint, l.subscriber, g_variant_new("a{sv}", NULL), NULL,
                                                    &error))
                return report("Unsubscribe", error);

        return EXIT_SUCCESS;
}
