/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Reading the a{sv} option dictionaries of method calls: unknown keys are
 * skipped (so clients may pass options of newer versions), known keys must
 * have their declared type.
 */

#include <stdbool.h>
#include <systemd/sd-bus.h>

typedef struct OptionSpec {
        const char *key;
        char type;              /* 's' -> const char *, 'u' -> uint32_t, 'b' -> int, 't' -> uint64_t */
        void *value;            /* where to store it; strings point into the message */
        bool *found;            /* optional: set when the key was present */
} OptionSpec;

/* Reads the next argument of m, an a{sv}, into the specs. 0 on success; on a
 * known key of the wrong type a negative errno with error set to
 * org.freedesktop.DBus.Error.InvalidArgs naming the key. */
int options_read(sd_bus_message *m, const OptionSpec *specs, size_t n_specs, sd_bus_error *error);
