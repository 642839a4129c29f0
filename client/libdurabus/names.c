/* SPDX-License-Identifier: MIT */

/*
 * From endpoint names to the object paths of their endpoints.
 */

#include <stdio.h>

#include "durabus-private.h"

#define ENDPOINT_PATH_PREFIX "/org/durabus1/endpoint/"

static bool is_path_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * The service owns the rule of valid names and checks it again on every
 * call, also in the path. The library checks only what it must to build a
 * path that names this endpoint and no other: an element that would be
 * empty, a character an object path cannot hold, or a '/' that would read
 * as a dot. A name that passes here may still be refused by the service (an
 * element starting with a digit, a name that is too long), with the same
 * error name.
 */
static int check_path_safe(const char *name, sd_bus_error *ret_error) {
        size_t element = 1;
        bool at_start = true;

        if (isempty(name))
                return fail_named(ret_error, -EINVAL, DURABUS_ERROR_INVALID_NAME,
                                  "Invalid endpoint name '%s': the name is empty", name ? name : "");

        for (const char *p = name; *p; p++) {
                if (*p == '.') {
                        if (at_start)
                                break;
                        element++;
                        at_start = true;
                } else if (!is_path_char(*p))
                        return fail_named(ret_error, -EINVAL, DURABUS_ERROR_INVALID_NAME,
                                          "Invalid endpoint name '%s': element %zu has a character outside "
                                          "[A-Za-z0-9_]",
                                          name, element);
                else
                        at_start = false;
        }

        if (at_start)
                return fail_named(ret_error, -EINVAL, DURABUS_ERROR_INVALID_NAME,
                                  "Invalid endpoint name '%s': element %zu is empty", name, element);
        return 0;
}

int endpoint_path_from_name(const char *name, char **ret_path, sd_bus_error *ret_error) {
        char *path;
        int r;

        r = check_path_safe(name, ret_error);
        if (r < 0)
                return r;

        if (asprintf(&path, ENDPOINT_PATH_PREFIX "%s", name) < 0)
                return fail_errno(ret_error, -ENOMEM);

        for (char *p = path + strlen(ENDPOINT_PATH_PREFIX); *p; p++)
                if (*p == '.')
                        *p = '/';

        *ret_path = path;
        return 0;
}
