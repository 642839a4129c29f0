/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The few helpers of systemd's internal macro set that libsystemd does not
 * export: scope-bound cleanup, explicit ownership transfer and logging.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

/* Returns the pointer and leaves NULL behind, so the cleanup that guarded it
 * no longer frees it: ownership moves to whoever takes the value. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _p_ = (p);   \
                (p) = NULL;                \
                _p_;                       \
        })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0)
                (void) close(*fd);
}

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

#define streq(a, b) (strcmp((a), (b)) == 0)

/* Whether s equals one of the strings listed after it. */
#define STR_IN_SET(s, ...) str_in_set((s), (const char *[]) { __VA_ARGS__, NULL })

static inline bool str_in_set(const char *s, const char *const *set) {
        for (; *set; set++)
                if (streq(s, *set))
                        return true;
        return false;
}

/* Whether the NULL-terminated list l (NULL: empty) holds s. */
static inline bool strv_contains(char *const *l, const char *s) {
        return l && str_in_set(s, (const char *const *) l);
}

/* The time of clock in microseconds: CLOCK_REALTIME for message timestamps
 * and expiry times, CLOCK_MONOTONIC for delays. */
static inline uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static inline char **strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
        return NULL;
}

static inline void strv_freep(char ***l) {
        strv_free(*l);
}

/* Defines NAMEp(T **) calling NAME(T *) on non-NULL, for _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
        static inline void func##p(type *p) {          \
                if (*p)                                \
                        (void) func(*p);               \
        }

/* Log lines carry a syslog priority prefix that journald understands when
 * the service runs under systemd, and that stays readable on a terminal. */
#define log_full(prio, fmt, ...) fprintf(stderr, "<%d>durabusd: " fmt "\n", prio, ##__VA_ARGS__)
#define log_error(fmt, ...) log_full(3, fmt, ##__VA_ARGS__)
#define log_warning(fmt, ...) log_full(4, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...) log_full(6, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...)                                   \
        do {                                                  \
                if (log_debug_enabled)                        \
                        log_full(7, fmt, ##__VA_ARGS__);      \
        } while (0)

extern int log_debug_enabled;

/* Logs at error level with %m taken from the negative errno, returns it. */
#define log_error_errno(r, fmt, ...)                            \
        ({                                                      \
                int _r_ = (r);                                  \
                errno = -_r_;                                   \
                log_error(fmt, ##__VA_ARGS__);                  \
                _r_;                                            \
        })

#define log_oom() log_error_errno(-ENOMEM, "Out of memory")
