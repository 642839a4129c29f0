/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The set of endpoints in a state directory: found on disk at startup (by
 * file name, without opening a database), created, removed. It also holds
 * the lock that keeps a second service off the same directory.
 */

#include <glib.h>

#include "endpoint.h"

typedef struct Broker {
        char *state_dir;
        char *endpoints_dir;    /* state_dir/endpoints, one NAME.db per endpoint */
        int lock_fd;
        GHashTable *endpoints;  /* name -> Endpoint, owned */
} Broker;

/*
 * Creates the state directory where missing, takes its lock (waiting up to
 * lock_timeout_usec for a previous service that is still exiting) and lists
 * the endpoints stored in it. -EBUSY when the lock stays taken, other
 * negative errno on failure.
 */
int broker_new(const char *state_dir, uint64_t lock_timeout_usec, Broker **ret);

/* Frees the endpoints (without closing them in order: see broker_close_all)
 * and releases the lock. Accepts NULL, returns NULL. */
Broker *broker_free(Broker *b);
void broker_freep(Broker **b);

Endpoint *broker_get(Broker *b, const char *name);

/* The endpoint of that (valid) name, created and opened when missing:
 * 1 when created, 0 when it existed, negative errno (nothing created). */
int broker_add(Broker *b, const char *name, Endpoint **ret);

/* Removes an endpoint with its database file, and frees it. */
int broker_remove(Broker *b, Endpoint *e);

/* The endpoints sorted by name, in a new array the caller frees (the
 * endpoints stay owned by the broker). */
GPtrArray *broker_list(Broker *b);

/* Closes every open endpoint in order. Returns the first error, going on
 * with the others. */
int broker_close_all(Broker *b);
