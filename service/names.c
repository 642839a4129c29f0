/* SPDX-License-Identifier: MIT */
#include "names.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

_printf_(2, 3) static int problem(char **ret_problem, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        if (!ret_problem)
                return -EINVAL;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        *ret_problem = s;
        return -EINVAL;
}

static bool is_ascii(char c) {
        return (unsigned char) c < 0x80;
}

static bool is_first_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

int names_check_endpoint(const char *name, char **ret_problem) {
        size_t len, element = 1;
        bool at_start = true;

        len = strlen(name);
        if (len == 0)
                return problem(ret_problem, "the name is empty");
        if (len > ENDPOINT_NAME_MAX)
                return problem(ret_problem, "%zu characters, more than %d", len, ENDPOINT_NAME_MAX);

        for (const char *p = name; *p; p++) {
                if (*p == '.') {
                        if (at_start)
                                return problem(ret_problem, "element %zu is empty", element);
                        element++;
                        at_start = true;
                        continue;
                }

                if (at_start && is_digit(*p))
                        return problem(ret_problem, "element %zu starts with a digit", element);
                /* A byte of a multi-byte character is shown by its value, so
                 * the sentence stays valid UTF-8 for a D-Bus error. */
                if (!is_first_char(*p) && !is_digit(*p))
                        return is_ascii(*p) ? problem(ret_problem,
                                                      "element %zu has the character '%c', outside [A-Za-z0-9_]",
                                                      element, *p) :
                                              problem(ret_problem,
                                                      "element %zu has the non-ASCII byte 0x%02X, outside [A-Za-z0-9_]",
                                                      element, (unsigned) (unsigned char) *p);
                at_start = false;
        }

        if (at_start)
                return problem(ret_problem, "element %zu is empty", element);

        return 0;
}

/* Names of 1 to max characters of [A-Za-z0-9_.-]. */
static int check_plain_name(const char *name, size_t max, char **ret_problem) {
        size_t len = strlen(name);

        if (len == 0)
                return problem(ret_problem, "the name is empty");
        if (len > max)
                return problem(ret_problem, "%zu characters, more than %zu", len, max);

        for (const char *p = name; *p; p++)
                if (!is_first_char(*p) && !is_digit(*p) && *p != '.' && *p != '-')
                        return is_ascii(*p) ? problem(ret_problem, "character %zu is '%c', outside [A-Za-z0-9_.-]",
                                                      (size_t) (p - name) + 1, *p) :
                                              problem(ret_problem,
                                                      "character %zu is the non-ASCII byte 0x%02X, outside [A-Za-z0-9_.-]",
                                                      (size_t) (p - name) + 1, (unsigned) (unsigned char) *p);

        return 0;
}

int names_check_subscriber(const char *subscriber, char **ret_problem) {
        return check_plain_name(subscriber, SUBSCRIBER_NAME_MAX, ret_problem);
}

int names_check_app_id(const char *id, char **ret_problem) {
        return check_plain_name(id, APP_ID_MAX, ret_problem);
}

int names_check_message_id(const char *id, char **ret_problem) {
        size_t len = strlen(id);

        /* Ids are D-Bus strings, so already valid UTF-8 without NUL; only the
         * size needs bounding, because each id is a key on disk. */
        if (len == 0)
                return problem(ret_problem, "the id is empty");
        if (len > MESSAGE_ID_MAX)
                return problem(ret_problem, "%zu bytes, more than %d", len, MESSAGE_ID_MAX);

        return 0;
}

int names_endpoint_to_path(const char *name, char **ret_path) {
        char *s;

        if (asprintf(&s, "%s/%s", DURABUS_ENDPOINT_PATH_PREFIX, name) < 0)
                return -ENOMEM;

        for (char *p = s + strlen(DURABUS_ENDPOINT_PATH_PREFIX) + 1; *p; p++)
                if (*p == '.')
                        *p = '/';

        *ret_path = s;
        return 0;
}

int names_endpoint_to_bus_name(const char *name, char **ret_bus_name) {
        char *s;

        if (asprintf(&s, "%s%s", DURABUS_ENDPOINT_BUS_NAME_PREFIX, name) < 0)
                return -ENOMEM;

        *ret_bus_name = s;
        return 0;
}

int names_path_to_endpoint(const char *path, char **ret_name) {
        const char *prefix = DURABUS_ENDPOINT_PATH_PREFIX "/";
        _cleanup_(freep) char *name = NULL;

        /* A dot is no path character; without this check "a.b" would pass
         * for the endpoint of "a/b". */
        if (strncmp(path, prefix, strlen(prefix)) != 0 || strchr(path, '.'))
                return -EINVAL;

        name = strdup(path + strlen(prefix));
        if (!name)
                return -ENOMEM;

        for (char *p = name; *p; p++)
                if (*p == '/')
                        *p = '.';

        if (names_check_endpoint(name, NULL) < 0)
                return -EINVAL;

        *ret_name = TAKE_PTR(name);
        return 0;
}
