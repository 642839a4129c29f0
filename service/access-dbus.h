/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Access control at the bus edge. Each connection that calls the service is
 * looked up once: its credentials are asked of the bus (never taken from
 * what it says), classified (creds.h), and matched against the policy
 * (policy.h); Authenticate adds the rights of the token clients whose token
 * it proves. What a connection was found to be and the rights it proved
 * stay with it until it leaves the bus; a direct connection has a copy of
 * its opener's, until it closes. Every handler asks here before it acts; a
 * refusal is org.freedesktop.DBus.Error.AccessDenied naming the endpoint
 * and the missing right, logged once per connection.
 */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "context.h"
#include "policy.h"

/* Sets up the table of callers. */
void access_dbus_init(Context *c);

/* Frees every caller, answering Authenticate calls still waiting for their
 * failure delay. */
void access_dbus_done(Context *c);

/*
 * 0 when the sender of m holds one of the rights (Right bits) on endpoint;
 * otherwise error is set to AccessDenied, whose message says what was
 * refused ("publish to", "subscribe to", "clear", ...: the verb before
 * "endpoint 'NAME'"), and a negative errno is returned.
 */
int access_dbus_check(Context *c, sd_bus_message *m, const char *endpoint, unsigned rights, const char *what,
                      sd_bus_error *error);

/* Whether the sender of m holds any right on endpoint: what it may see of
 * the endpoint in ListEndpoints, introspection and properties. A caller
 * whose credentials cannot be had sees nothing. */
bool access_dbus_may_see(Context *c, sd_bus_message *m, const char *endpoint);

/*
 * Gives the direct connection name (sender.h) a caller of its own: a copy
 * of what the sender of m was found to be and of the rights it holds now.
 * Later Authenticate calls change the rights of the connection that makes
 * them only. AccessDenied when the sender holds no right on any endpoint:
 * such a connection could do nothing over it. 0 or negative errno with
 * error set; nothing is added on failure.
 */
int access_dbus_copy_caller(Context *c, sd_bus_message *m, const char *name, sd_bus_error *error);

/* Frees the caller of the connection name, if any: for a direct connection
 * that closed (the bus tells of the others itself). */
void access_dbus_forget(Context *c, const char *name);

/* Whether some connection holds rights it proved with Authenticate: the
 * service then does not exit when idle, or they would be lost. */
bool access_dbus_busy(Context *c);

/* The handler of Broker.Authenticate(s token). */
int access_dbus_method_authenticate(sd_bus_message *m, void *userdata, sd_bus_error *error);
