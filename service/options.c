/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <string.h>

static const OptionSpec *find_spec(const OptionSpec *specs, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(specs[i].key, key) == 0)
                        return &specs[i];
        return NULL;
}

static int read_entry(sd_bus_message *m, const OptionSpec *specs, size_t n_specs, sd_bus_error *error) {
        const OptionSpec *spec;
        const char *key, *contents;
        char expected[2];
        int r;

        r = sd_bus_message_read(m, "s", &key);
        if (r < 0)
                return r;

        spec = find_spec(specs, n_specs, key);
        if (!spec)
                return sd_bus_message_skip(m, "v");

        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;

        expected[0] = spec->type;
        expected[1] = '\0';
        if (strcmp(contents, expected) != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '%s' must be of type '%s', not '%s'", key, expected, contents);

        r = sd_bus_message_read(m, "v", expected, spec->value);
        if (r < 0)
                return r;

        if (spec->found)
                *spec->found = true;
        return 0;
}

int options_read(sd_bus_message *m, const OptionSpec *specs, size_t n_specs, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = read_entry(m, specs, n_specs, error);
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        return sd_bus_message_exit_container(m);
}
