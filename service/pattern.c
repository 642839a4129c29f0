/* SPDX-License-Identifier: MIT */
#include "pattern.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "util.h"

static bool is_wildcard(const char *element, size_t len) {
        return (len == 1 || len == 2) && strspn(element, "*") == len;
}

int pattern_check(const char *pattern, char **ret_problem) {
        _cleanup_(freep) char *name = NULL;
        size_t element = 1, misplaced = 0;
        char *problem;
        int r;

        /* Each wildcard becomes a plain element of its own length, so that
         * names_check_endpoint() judges everything else (length, empty
         * elements, characters, a '*' inside an element) in its own words and
         * with the same element numbers as the pattern. */
        name = strdup(pattern);
        if (!name)
                return -ENOMEM;

        for (char *s = name;; element++) {
                size_t len = strcspn(s, ".");

                if (is_wildcard(s, len)) {
                        if (len == 2 && s[len] != '\0' && misplaced == 0)
                                misplaced = element;
                        memset(s, 'x', len);
                }
                if (s[len] == '\0')
                        break;
                s += len + 1;
        }

        r = names_check_endpoint(name, ret_problem);
        if (r < 0)
                return r;

        if (misplaced == 0)
                return 0;
        if (!ret_problem)
                return -EINVAL;
        if (asprintf(&problem, "element %zu, '**', is not the last", misplaced) < 0)
                return -ENOMEM;
        *ret_problem = problem;
        return -EINVAL;
}

bool pattern_match(const char *pattern, const char *endpoint) {
        const char *p = pattern, *e = endpoint;

        /* e is NULL once every element of the endpoint is matched. */
        for (;;) {
                size_t p_len, e_len;

                /* Valid only last, "**" covers whatever is left, nothing
                 * included. */
                if (streq(p, "**"))
                        return true;
                if (!e)
                        return false;

                p_len = strcspn(p, ".");
                e_len = strcspn(e, ".");
                if (!(p_len == 1 && *p == '*') && (p_len != e_len || memcmp(p, e, p_len) != 0))
                        return false;

                if (p[p_len] == '\0')
                        return e[e_len] == '\0';
                p += p_len + 1;
                e = e[e_len] == '\0' ? NULL : e + e_len + 1;
        }
}

bool pattern_match_any(char *const *patterns, const char *endpoint) {
        for (char *const *p = patterns; p && *p; p++)
                if (pattern_match(*p, endpoint))
                        return true;
        return false;
}
