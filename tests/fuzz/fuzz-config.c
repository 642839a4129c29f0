/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration file reader (service/config.c).
 * The bytes are written to a file that config_load() reads, twice: once over
 * the built-in defaults and once over other values. Each load must either
 * fail with -EINVAL, a sentence naming the file, and the settings untouched,
 * or succeed with every value within its documented bounds, only valid
 * endpoint names in [Endpoint NAME] groups, and [Client NAME] groups with a
 * valid name, one match key and valid endpoint patterns. Both loads must agree: a setting
 * the file holds gets the same value in both, and a setting it does not hold
 * keeps what it had; the endpoint groups replace the earlier ones. Any other
 * outcome aborts, which libFuzzer reports as a crash.
 */

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "names.h"
#include "pattern.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(expr)                                                                            \
        do {                                                                                   \
                if (!(expr)) {                                                                 \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                               \
                }                                                                              \
        } while (0)

/* One file per process, rewritten for every input. */
static char *config_path;
static int config_fd = -1;

static void remove_config(void) {
        if (config_path)
                (void) unlink(config_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        config_path = g_build_filename(g_get_tmp_dir(), "durabus-fuzz-config-XXXXXX", NULL);
        config_fd = g_mkstemp(config_path);
        if (config_fd < 0) {
                fprintf(stderr, "Failed to create a file for the configuration in '%s': %m\n", g_get_tmp_dir());
                exit(EXIT_FAILURE);
        }
        atexit(remove_config);
        return 0;
}

static void write_config(const uint8_t *data, size_t size) {
        size_t done = 0;

        check(ftruncate(config_fd, 0) == 0);
        while (done < size) {
                ssize_t n = pwrite(config_fd, data + done, size - done, (off_t) done);

                check(n > 0);
                done += (size_t) n;
        }
}

static bool strv_equal(char **a, char **b) {
        if (!a || !b)
                return a == b;
        return g_strv_equal((const char *const *) a, (const char *const *) b);
}

static bool config_equal(const Config *a, const Config *b) {
        return a->idle_timeout_sec == b->idle_timeout_sec && a->max_payload == b->max_payload &&
               a->endpoint_activation == b->endpoint_activation && a->max_stored_messages == b->max_stored_messages &&
               a->max_stored_bytes == b->max_stored_bytes && a->max_endpoints == b->max_endpoints &&
               a->max_subscriptions == b->max_subscriptions && a->max_attached == b->max_attached &&
               strv_equal(a->discard_oldest, b->discard_oldest) && strv_equal(a->broadcast, b->broadcast) &&
               a->policy.trust_same_user == b->policy.trust_same_user && a->policy.n_clients == b->policy.n_clients;
}

/* A copy of start that owns its own list of names. */
static Config copy_config(const Config *start) {
        Config c = *start;

        c.discard_oldest = g_strdupv(start->discard_oldest);
        c.broadcast = g_strdupv(start->broadcast);
        return c;
}

/* Loads the file over a copy of *start into *ret, which the caller frees
 * with config_done(); returns whether the file was accepted. */
static bool load(const Config *start, bool required, Config *ret) {
        _cleanup_(freep) char *problem = NULL;
        Config c = copy_config(start);
        const char *rest;
        int r;

        r = config_load(&c, config_path, required, &problem);
        if (r < 0) {
                /* The file exists, so it can only be refused. */
                check(r == -EINVAL);
                check(problem);
                check(g_str_has_prefix(problem, config_path));
                /* "PATH: problem" or "PATH:LINE: problem". */
                rest = problem + strlen(config_path);
                if (rest[0] == ':' && g_ascii_isdigit(rest[1]))
                        rest += 1 + strspn(rest + 1, "0123456789");
                check(strncmp(rest, ": ", 2) == 0);
                check(rest[2] != '\0');
                check(config_equal(&c, start));
                config_done(&c);
                return false;
        }

        check(r == 0);
        check(!problem);
        check(c.idle_timeout_sec <= CONFIG_IDLE_TIMEOUT_MAX_SEC);
        check(c.max_payload <= CONFIG_MAX_PAYLOAD_MAX);
        check(c.max_endpoints <= CONFIG_COUNT_MAX);
        check(c.max_subscriptions <= CONFIG_COUNT_MAX);
        check(c.max_attached <= CONFIG_COUNT_MAX);
        /* No list, or a list of valid endpoint names. */
        check(!c.discard_oldest || c.discard_oldest[0]);
        for (char **name = c.discard_oldest; name && *name; name++) {
                check(names_check_endpoint(*name, NULL) == 0);
                check(config_discards_oldest(&c, *name));
        }
        check(!c.broadcast || c.broadcast[0]);
        for (char **name = c.broadcast; name && *name; name++)
                check(names_check_endpoint(*name, NULL) == 0);
        for (size_t i = 0; i < c.policy.n_clients; i++) {
                const PolicyClient *client = &c.policy.clients[i];

                check(names_check_subscriber(client->name, NULL) == 0);
                check(client->match == CLIENT_MATCH_TOKEN ? !client->value :
                      client->match == CLIENT_MATCH_EXE ? client->value[0] == '/' :
                      names_check_app_id(client->value, NULL) == 0);
                for (char **p = client->publish; p && *p; p++)
                        check(pattern_check(*p, NULL) == 0);
                for (char **p = client->subscribe; p && *p; p++)
                        check(pattern_check(*p, NULL) == 0);
        }
        *ret = c;
        return true;
}

/* A setting the file holds has the same value after both loads; one it does
 * not hold keeps the value each load started from. */
#define check_setting(a, b, field) \
        check((a).field == (b).field || ((a).field == defaults.field && (b).field == other.field))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const Config defaults = config_defaults();
        char *previous[] = { "previous", NULL };
        /* Differs from the defaults in every setting. */
        const Config other = {
                .idle_timeout_sec = 7,
                .max_payload = 9,
                .endpoint_activation = !defaults.endpoint_activation,
                .max_stored_messages = 11,
                .max_stored_bytes = 13,
                .max_endpoints = 17,
                .max_subscriptions = 19,
                .max_attached = 23,
                .discard_oldest = previous,
                .broadcast = previous,
                .policy = { .trust_same_user = !defaults.policy.trust_same_user },
        };
        Config a, b;
        bool accepted_a, accepted_b;

        write_config(data, size);

        accepted_a = load(&defaults, true, &a);
        accepted_b = load(&other, false, &b);
        check(accepted_a == accepted_b);
        if (!accepted_a)
                return 0;

        check_setting(a, b, idle_timeout_sec);
        check_setting(a, b, max_payload);
        check_setting(a, b, endpoint_activation);
        check_setting(a, b, max_stored_messages);
        check_setting(a, b, max_stored_bytes);
        check_setting(a, b, max_endpoints);
        check_setting(a, b, max_subscriptions);
        check_setting(a, b, max_attached);
        check_setting(a, b, policy.trust_same_user);
        /* The file's endpoint and client groups replace the earlier ones, whatever they were. */
        check(strv_equal(a.discard_oldest, b.discard_oldest));
        check(strv_equal(a.broadcast, b.broadcast));
        check(a.policy.n_clients == b.policy.n_clients);

        config_done(&a);
        config_done(&b);
        return 0;
}
