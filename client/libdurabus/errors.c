/* SPDX-License-Identifier: MIT */

/*
 * The one place where D-Bus errors become errno values and local failures
 * become D-Bus errors, so a caller can test either and both agree.
 */

#include <stdarg.h>

#include "durabus-private.h"

/* Looked up here rather than registered with sd_bus_error_add_map(): that
 * list is process-wide, and a library must not change what every other
 * sd-bus user in the process gets back. */
static const sd_bus_error_map durabus_errors[] = {
        SD_BUS_ERROR_MAP(DURABUS_ERROR_INVALID_NAME, EINVAL),
        SD_BUS_ERROR_MAP(DURABUS_ERROR_NOT_SUBSCRIBED, ESRCH),
        SD_BUS_ERROR_MAP(DURABUS_ERROR_SUBSCRIBER_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(DURABUS_ERROR_STORAGE_FAILED, EIO),
        SD_BUS_ERROR_MAP(DURABUS_ERROR_NO_SUCH_ENDPOINT, ENOENT),
        SD_BUS_ERROR_MAP_END
};

int errno_from_bus_error(const sd_bus_error *error) {
        if (!sd_bus_error_is_set(error))
                return -EIO;

        for (const sd_bus_error_map *m = durabus_errors; m->name; m++)
                if (streq(m->name, error->name))
                        return -m->code;

        return -sd_bus_error_get_errno(error);
}

int fail_errno(sd_bus_error *ret_error, int r) {
        if (ret_error && !sd_bus_error_is_set(ret_error))
                (void) sd_bus_error_set_errno(ret_error, r);
        return r;
}

int fail_named(sd_bus_error *ret_error, int r, const char *name, const char *format, ...) {
        va_list ap;

        if (ret_error && !sd_bus_error_is_set(ret_error)) {
                va_start(ap, format);
                (void) sd_bus_error_setfv(ret_error, name, format, ap);
                va_end(ap);
        }
        return r;
}
