/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Direct connections (Broker.OpenDirect): a socket pair per caller, whose
 * other end the caller gets, served peer to peer with the same objects as
 * the bus. Each connection carries a copy of the rights its opener held at
 * OpenDirect (access-dbus.h) and is known by its name "direct:N"
 * (sender.h). It lives until the caller closes it or the service exits;
 * when it closes, its subscriptions detach and its rights go.
 */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "context.h"

/* How many direct connections the service keeps open at once: each costs a
 * descriptor, and the service has 1024 in all under the usual limit. */
#define DIRECT_CONNECTIONS_MAX 128

/* Sets up the table of direct connections, and their closing when the
 * event loop exits. 0 or negative errno. */
int direct_dbus_init(Context *c);

/* Closes every direct connection: at exit, once the last replies were
 * sent. What a peer did not read by then is dropped rather than waited
 * for; the event loop's exit does the same before sd-bus would flush. */
void direct_dbus_done(Context *c);

/* Whether a direct connection is open: the service then does not exit when
 * idle, which would close it under its user. */
bool direct_dbus_busy(Context *c);

/* The handler of Broker.OpenDirect(a{sv} options) -> (h socket). */
int direct_dbus_method_open(sd_bus_message *m, void *userdata, sd_bus_error *error);
