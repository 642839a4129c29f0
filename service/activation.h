/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * D-Bus activation files for the bus names of endpoints, so that a call to
 * org.durabus1.endpoint.NAME starts the service like a call to org.durabus1.
 */

/* Writes dir/BUS_NAME.service naming bus_name, started by exec_line (or by
 * the durabus systemd user unit where the bus hands activation to systemd).
 * Atomic; 0 or negative errno. */
int activation_write(const char *dir, const char *bus_name, const char *exec_line);

/* Removes dir/BUS_NAME.service; a missing file is no error. */
int activation_remove(const char *dir, const char *bus_name);

/* Quotes argv into an Exec= line: each argument in single quotes, as the
 * D-Bus daemon's command line parser reads them. Newly allocated or NULL. */
char *activation_exec_line(const char *exe, char *const *args);
