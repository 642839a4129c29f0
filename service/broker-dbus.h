/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * org.durabus1.Broker at /org/durabus1, and the public face of an endpoint's
 * existence: its bus name and its activation file.
 */

#include "context.h"

/* Registers the Broker object on bus (the bus connection or a direct one).
 * 0 or negative errno. */
int broker_dbus_register(Context *c, sd_bus *bus);

/* Requests the bus names of all endpoints found at startup. */
int broker_dbus_publish_all(Context *c);

/* The endpoint of that (valid) name, created, published and opened when
 * missing. 0 or negative errno with error set. */
int broker_dbus_ensure_endpoint(Context *c, const char *name, Endpoint **ret, sd_bus_error *error);

/* Releases every bus name the service owns, before an exit. */
void broker_dbus_release_names(Context *c);
