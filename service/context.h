/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The state of the running service, owned by main.c's run(): the event loop,
 * the bus connection and the direct connections, the endpoints and the group
 * commit. The *-dbus.c files reach it as the userdata of their vtables and
 * of each Endpoint.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "commit-dbus.h"
#include "policy.h"

typedef struct Context {
        sd_event *event;
        sd_bus *bus;
        Broker *broker;
        Committer *committer;

        /* settings */
        char *state_dir;
        size_t max_payload;
        uint64_t max_stored_messages;   /* per endpoint; 0: no limit */
        uint64_t max_stored_bytes;      /* per endpoint; 0: no limit */
        uint64_t max_endpoints;         /* 0: no limit */
        uint64_t max_subscriptions;     /* durable ones per endpoint; 0: no limit */
        uint64_t max_attached;          /* attached subscriptions in all; 0: no limit */
        char **discard_oldest;          /* endpoints set to discard=oldest, owned */
        char **broadcast;               /* endpoints set to broadcast=true, owned */
        uint64_t idle_timeout_usec;     /* 0: never exit when idle */
        char *services_dir;             /* NULL: no endpoint activation files */
        char *exec_line;                /* how an activation file starts us */

        /* expiry: fires when the next message with a time-to-live is due,
         * or at once while a sweep of an endpoint is under way */
        sd_event_source *sweep_timer;   /* CLOCK_REALTIME, NULL until a TTL is seen */

        /* access control (access-dbus.c) */
        Policy policy;
        uid_t uid;                      /* ours: trust-same-user trusts callers of it */
        GHashTable *callers;            /* connection name (sender.h) -> Caller, owned */
        size_t n_authenticated;         /* callers holding rights they proved with a token */

        /* direct connections (direct-dbus.c) */
        GHashTable *directs;            /* connection name -> Direct, owned */
        sd_event_source *directs_exit;  /* closes them when the loop exits */
        uint64_t n_directs_opened;      /* in all, for their names */

        /* idle tracking */
        sd_event_source *idle_timer;    /* restarted by every method call */
        size_t n_attached;              /* subscriptions attached to a connection */
        bool exiting;
} Context;
