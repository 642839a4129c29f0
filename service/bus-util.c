/* SPDX-License-Identifier: MIT */
#include "bus-util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

int bus_error_storage(sd_bus_error *error, int r, const char *fmt, ...) {
        _cleanup_(freep) char *context = NULL;
        va_list ap;
        int k;

        if (r == -ENOMEM)
                return sd_bus_error_set_errno(error, r);

        va_start(ap, fmt);
        k = vasprintf(&context, fmt, ap);
        va_end(ap);
        if (k < 0)
                return sd_bus_error_set_errno(error, -ENOMEM);

        log_error("%s: %s", context, strerror(-r));
        (void) sd_bus_error_setf(error, DURABUS_ERROR_STORAGE_FAILED, "%s: %s", context, strerror(-r));
        return r;
}

int bus_check_value(int (*check)(const char *value, char **ret_problem), const char *value, const char *what,
                    const char *error_name, sd_bus_error *error) {
        _cleanup_(freep) char *problem = NULL;
        int r;

        r = check(value, &problem);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, error_name, "Invalid %s '%s': %s", what, value, problem);
        return 0;
}
