/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * org.durabus1.Endpoint on every endpoint's path: the method handlers, the
 * properties, and the delivery of Message signals to attached subscriptions.
 */

#include "context.h"

/* Registers the fallback vtable and node enumerator under
 * /org/durabus1/endpoint on bus (the bus connection or a direct one). 0 or
 * negative errno. */
int endpoint_dbus_register(Context *c, sd_bus *bus);

/* Delivers what each attached subscription of e may receive now. The
 * committer calls it after each commit of e. */
void endpoint_dbus_deliver(Endpoint *e, void *userdata);

/* Detaches every subscription attached to the connection of that name
 * (sender.h): for a direct connection that closed. Durable ones stay,
 * ephemeral ones go. */
void endpoint_dbus_detach_connection(Context *c, const char *owner);

/* Detaches every subscription of e from its connection, before e goes. */
void endpoint_dbus_detach_all(Context *c, Endpoint *e);
