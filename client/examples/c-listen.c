/* SPDX-License-Identifier: MIT */

/*
 * durabus-c-listen ENDPOINT SUBSCRIBER [COUNT]
 *
 * A C program that listens on a durabus endpoint through libdurabus, driven
 * by an sd-event loop: it attaches the durable subscription SUBSCRIBER,
 * prints each message as "SEQ ID PAYLOAD" and acknowledges it. Messages that
 * were sent while it was not running are replayed first. When the service
 * restarts, the library attaches the subscription again by itself and the
 * program just keeps receiving. With COUNT it unsubscribes and exits after
 * that many messages; without, it listens until SIGINT or SIGTERM.
 *
 * Build: cc c-listen.c $(pkg-config --cflags --libs durabus libsystemd)
 * (it calls sd-event itself, so it names libsystemd too)
 *
 * Exit status: 0 on success, 1 on an error, 2 on wrong arguments.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <durabus.h>

#define PROGRAM "durabus-c-listen"

/* libsystemd and libdurabus export the *_unrefp functions this needs;
 * sd_bus_error_free() already takes a pointer to the error. */
#define _cleanup_(f) __attribute__((cleanup(f)))

typedef struct Listener {
        sd_event *event;
        unsigned count;         /* messages to take; 0: no limit */
        unsigned printed;       /* messages printed by this run */
        uint64_t last_seq;      /* the seq of the last one */
        bool done;              /* COUNT messages printed and acknowledged */
} Listener;

/* Prints an error as "durabus-c-listen: MESSAGE (ERROR.NAME)", or without a
 * D-Bus error as "durabus-c-listen: WHAT: ERRNO MESSAGE". Returns
 * EXIT_FAILURE. */
static int report(const char *what, int r, const sd_bus_error *error) {
        if (sd_bus_error_is_set(error))
                fprintf(stderr, PROGRAM ": %s (%s)\n", error->message ?: strerror(-r), error->name);
        else
                fprintf(stderr, PROGRAM ": %s: %s\n", what, strerror(-r));
        return EXIT_FAILURE;
}

static void fail(Listener *l, const char *what, int r, const sd_bus_error *error) {
        (void) report(what, r, error);
        (void) sd_event_exit(l->event, EXIT_FAILURE);
}

/* COUNT messages are done: detach the subscription (its further messages
 * wait for the next run) and end the loop. This happens here rather than
 * after the loop, because the connection of a client attached to an sd-event
 * loop is closed as the loop exits. */
static void finish(Listener *l, DurabusSubscription *s) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        l->done = true;
        r = durabus_subscription_unsubscribe(s, false, &error);
        if (r < 0)
                fail(l, "Unsubscribe", r, &error);
        else
                (void) sd_event_exit(l->event, EXIT_SUCCESS);
}

static void on_message(DurabusSubscription *s, const DurabusMessage *m, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Listener *l = userdata;
        int r;

        /* Messages queued behind the last one COUNT asked for stay
         * unacknowledged, for the next run. */
        if (l->done)
                return;

        /* Delivery is at least once: after a restart of the service, what
         * this run printed but had not acknowledged yet comes again, flagged
         * redelivered. Seqs only grow, so those are the ones up to the last
         * seq printed: acknowledge them without printing them twice. */
        if (!(m->redelivered && l->printed > 0 && m->seq <= l->last_seq)) {
                /* A new message once COUNT are printed: the last Ack went
                 * through after all, its reply was lost in a restart. */
                if (l->count > 0 && l->printed == l->count) {
                        finish(l, s);
                        return;
                }

                /* Acknowledge only what surely reached standard output:
                 * until then the service keeps the message. */
                if (printf("%" PRIu64 " %s %s\n", m->seq, m->id, m->payload) < 0 || fflush(stdout) == EOF) {
                        fail(l, "Cannot write to standard output", -errno, NULL);
                        return;
                }
                l->printed++;
                l->last_seq = m->seq;
        }

        /* A synchronous call: messages that arrive meanwhile wait in order.
         * When the service went away before the Ack reached it, the message
         * comes again, redelivered, and is acknowledged then. */
        r = durabus_subscription_ack(s, m->id, &error);
        if (r == -ESRCH || sd_bus_error_has_name(&error, SD_BUS_ERROR_NO_REPLY))
                return;
        if (r < 0)
                fail(l, "Ack", r, &error);
        else if (l->count > 0 && l->printed == l->count && m->seq == l->last_seq)
                finish(l, s);
}

/* The library tries again whenever the service appears on the bus; this
 * program rather stops, so that a failure does not go unnoticed. */
static void on_subscription_error(DurabusSubscription *s, int error, const sd_bus_error *bus_error,
                                  void *userdata) {
        fail(userdata, "Cannot attach the subscription again", error, bus_error);
}

static void on_disconnect(DurabusClient *c, void *userdata) {
        fail(userdata, "Lost the connection to the message bus", -ECONNRESET, NULL);
}

/* COUNT: a decimal number from 1 to UINT_MAX. */
static int parse_count(const char *s, unsigned *ret) {
        unsigned long n;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        n = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || n == 0 || n > UINT_MAX)
                return -EINVAL;
        *ret = (unsigned) n;
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(durabus_client_unrefp) DurabusClient *client = NULL;
        _cleanup_(durabus_subscription_unrefp) DurabusSubscription *subscription = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Listener l = {};
        sigset_t mask;
        int r;

        if (argc < 3 || argc > 4) {
                fprintf(stderr, "Usage: " PROGRAM " ENDPOINT SUBSCRIBER [COUNT]\n");
                return 2;
        }
        if (argc == 4 && parse_count(argv[3], &l.count) < 0) {
                fprintf(stderr, PROGRAM ": Invalid COUNT '%s': not a number from 1 to %u\n", argv[3], UINT_MAX);
                return 2;
        }

        r = sd_event_default(&event);
        if (r < 0)
                return report("Cannot make an event loop", r, NULL);
        l.event = event;

        /* SIGINT and SIGTERM end the loop with status 0: a handler of NULL
         * calls sd_event_exit() with the userdata as the code. The signals
         * must be blocked first, so that the loop receives them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return report("Cannot block SIGINT and SIGTERM", -errno, NULL);
        r = sd_event_add_signal(event, NULL, SIGINT, NULL, (void *) EXIT_SUCCESS);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, (void *) EXIT_SUCCESS);
        if (r < 0)
                return report("Cannot watch SIGINT and SIGTERM", r, NULL);

        /* The session bus; the service is started by the first call. */
        r = durabus_client_new(&client);
        if (r < 0)
                return report("Cannot connect to the session bus", r, NULL);
        r = durabus_client_attach_event(client, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return report("Cannot attach to the event loop", r, NULL);
        (void) durabus_client_set_disconnect_handler(client, on_disconnect, &l);

        /* The replay starts after this returns: on_message() gets it from
         * the loop, and keeps receiving whenever the library had to attach
         * the subscription again. */
        r = durabus_subscribe(client, argv[1], argv[2], NULL, on_message, &l, &subscription, &error);
        if (r < 0)
                return report("Subscribe", r, &error);
        (void) durabus_subscription_set_error_handler(subscription, on_subscription_error, &l);

        /* Runs until finish(), a failure or a signal ends it. */
        r = sd_event_loop(event);
        if (r < 0)
                return report("Event loop failed", r, NULL);
        return r;
}
