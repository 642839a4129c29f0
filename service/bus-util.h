/* SPDX-License-Identifier: MIT */
#pragma once

/* The one translation of the service's negative errno values into D-Bus
 * errors for the caller. */

#include <systemd/sd-bus.h>

#include "util.h"

/*
 * Sets error from a failure of the storage layer and returns r. Memory
 * exhaustion stays org.freedesktop.DBus.Error.NoMemory; anything else the
 * disk or the database did is org.durabus1.Error.StorageFailed, with the
 * formatted context and the system's description of r.
 */
_printf_(3, 4) int bus_error_storage(sd_bus_error *error, int r, const char *fmt, ...);

/*
 * Validates value with one of the names_check_*() functions. 0 when valid;
 * otherwise sets error to error_name with "Invalid WHAT 'VALUE': PROBLEM"
 * and returns a negative errno.
 */
int bus_check_value(int (*check)(const char *value, char **ret_problem), const char *value, const char *what,
                    const char *error_name, sd_bus_error *error);
