/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A subscription of one endpoint: its durable acknowledgement state (what it
 * has acknowledged, what it was delivered) and, while a connection is
 * attached, its delivery state (the cursor and the messages in flight).
 * An ephemeral subscription has an empty name and only the delivery state.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "record.h"
#include "seqset.h"

#define SUBSCRIPTION_WINDOW_DEFAULT 1000u
#define SUBSCRIPTION_WINDOW_MAX 65536u
#define SUBSCRIPTION_BATCH_MAX 1000u

typedef struct Endpoint Endpoint;

typedef struct Subscription {
        Endpoint *endpoint;     /* not owned */
        char *name;             /* "" when ephemeral */
        bool durable;

        /* Durable state, written to the 's' record when dirty. */
        uint64_t floor;         /* every message below it is acknowledged */
        SeqSet acked;           /* acknowledged at or above floor */
        uint64_t delivered_upto;
        uint64_t pending;       /* stored messages not acknowledged */
        bool dirty;
        SeqSet stale_counts;    /* acknowledged redeliveries whose count record goes once the
                                 * acknowledgement is written */

        /* Attachment, owned by the bus layer; owner is NULL when detached. */
        char *owner;            /* unique bus name of the attached connection */
        sd_bus *bus;            /* the connection its signals go out on, referenced */
        sd_bus_track *track;
        uint64_t cursor;        /* the next sequence number to consider */
        uint32_t window;
        uint32_t batch;         /* messages per Messages signal; 0 or 1: a Message signal each */
        SeqSet in_flight;       /* delivered, not acknowledged */
} Subscription;

/* A detached subscription with floor and delivered_upto at floor. name is
 * copied. 0 or -ENOMEM. */
int subscription_new(const char *name, bool durable, uint64_t floor, Subscription **ret);

/* Frees everything, the attachment included. Accepts NULL, returns NULL. */
Subscription *subscription_free(Subscription *s);
void subscription_freep(Subscription **s);

/* Whether the message with that sequence number is acknowledged. */
bool subscription_is_acked(const Subscription *s, uint64_t seq);

/* Loads the durable state from a decoded record, taking its array. */
void subscription_load(Subscription *s, SubscriptionRecord *record);

/* The durable state as a record for encoding; its array stays the
 * subscription's (do not pass it to subscription_record_done()). */
SubscriptionRecord subscription_record_view(const Subscription *s);

/* Drops the attachment: owner, bus, track, in-flight set. */
void subscription_detach(Subscription *s);
