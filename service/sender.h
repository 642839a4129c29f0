/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who sent a message: the one name by which the service knows a connection,
 * whether it calls through the bus or over a direct connection (OpenDirect,
 * direct-dbus.c), which has no bus and so no sender.
 */

#include <stdint.h>
#include <systemd/sd-bus.h>

/*
 * The name of the connection that sent m: its unique name on the bus
 * (":1.42"), or the name of the direct connection it came over
 * ("direct:7"). A direct peer writes its message headers itself, so its
 * sender field is never believed. NULL when the connection has neither
 * (never for a call that reached a handler). Owned by m or by its bus.
 */
const char *sender_name(sd_bus_message *m);

/* The name of direct connection number id, "direct:ID", which no bus name
 * can be (unique names start with ':', well-known names hold none). Its
 * server must have it as its description (sd_bus_set_description()), where
 * sender_name() finds it. *ret is the caller's to free. 0 or -ENOMEM. */
int sender_direct_name(uint64_t id, char **ret);
