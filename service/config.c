/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "util.h"

#define GROUP "Broker"
#define ENDPOINT_GROUP_PREFIX "Endpoint "

Config config_defaults(void) {
        return (Config) {
                .idle_timeout_sec = CONFIG_IDLE_TIMEOUT_DEFAULT_SEC,
                .max_payload = CONFIG_MAX_PAYLOAD_DEFAULT,
                .endpoint_activation = true,
                .max_stored_messages = CONFIG_MAX_STORED_MESSAGES_DEFAULT,
                .max_stored_bytes = CONFIG_MAX_STORED_BYTES_DEFAULT,
                .max_endpoints = CONFIG_MAX_ENDPOINTS_DEFAULT,
                .max_subscriptions = CONFIG_MAX_SUBSCRIPTIONS_DEFAULT,
                .max_attached = CONFIG_MAX_ATTACHED_DEFAULT,
        };
}

void config_done(Config *config) {
        g_strfreev(config->discard_oldest);
        config->discard_oldest = NULL;
}

bool config_discards_oldest(const Config *config, const char *endpoint) {
        return config->discard_oldest && g_strv_contains((const char *const *) config->discard_oldest, endpoint);
}

_printf_(3, 4) static int problem(char **ret_problem, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        *ret_problem = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        return r;
}

int config_parse_number(const char *key, const char *value, uint64_t max, uint64_t *ret, char **ret_problem) {
        guint64 v;

        /* Only plain decimal digits: strtoull would take "-1", " 5" or "0x10". */
        if (!g_ascii_string_to_unsigned(value, 10, 0, max, &v, NULL))
                return problem(ret_problem, -EINVAL, "invalid value '%s' of %s: expected a number from 0 to %" PRIu64,
                               value, key, max);

        *ret = v;
        return 0;
}

static int read_number(GKeyFile *file, const char *path, const char *key, uint64_t max, uint64_t *ret,
                       char **ret_problem) {
        g_autofree char *value = NULL;
        g_autofree char *why = NULL;
        int r;

        value = g_key_file_get_value(file, GROUP, key, NULL);
        if (!value)
                return 0;

        r = config_parse_number(key, g_strstrip(value), max, ret, &why);
        if (r < 0)
                return problem(ret_problem, r, "%s: [" GROUP "] %s", path, why);
        return 0;
}

static int read_bool(GKeyFile *file, const char *path, const char *key, bool *ret, char **ret_problem) {
        g_autoptr(GError) error = NULL;
        gboolean v;

        if (!g_key_file_has_key(file, GROUP, key, NULL))
                return 0;

        v = g_key_file_get_boolean(file, GROUP, key, &error);
        if (error)
                return problem(ret_problem, -EINVAL, "%s: [" GROUP "] %s: %s", path, key, error->message);

        *ret = v;
        return 0;
}

/* Reads one [Endpoint NAME] group: NAME must be a valid endpoint name and
 * the only key is discard=oldest|refuse. Adds NAME to discard when oldest. */
static int read_endpoint_group(GKeyFile *file, const char *path, const char *group, GPtrArray *discard,
                               char **ret_problem) {
        static const char *const keys[] = { "discard", NULL };
        const char *name = group + strlen(ENDPOINT_GROUP_PREFIX);
        g_autofree char *why = NULL, *value = NULL;
        g_auto(GStrv) names = NULL;

        if (names_check_endpoint(name, &why) < 0)
                return problem(ret_problem, -EINVAL, "%s: [%s]: invalid endpoint name '%s': %s", path, group, name,
                               why ? why : "not valid");

        names = g_key_file_get_keys(file, group, NULL, NULL);
        for (char **k = names; names && *k; k++)
                if (!g_strv_contains(keys, *k))
                        return problem(ret_problem, -EINVAL, "%s: [%s] unknown key '%s'", path, group, *k);

        value = g_key_file_get_value(file, group, "discard", NULL);
        if (!value)
                return 0;
        g_strstrip(value);
        if (streq(value, "oldest"))
                g_ptr_array_add(discard, g_strdup(name));
        else if (!streq(value, "refuse"))
                return problem(ret_problem, -EINVAL, "%s: [%s] invalid value '%s' of discard: expected 'oldest' "
                               "or 'refuse'", path, group, value);
        return 0;
}

/* Anything not understood is refused, so a typo never passes silently. */
static int check_known(GKeyFile *file, const char *path, char **ret_problem) {
        static const char *const keys[] = { "idle-timeout", "max-payload", "endpoint-activation",
                                            "max-stored-messages", "max-stored-bytes", "max-endpoints",
                                            "max-subscriptions", "max-attached", NULL };
        g_auto(GStrv) groups = g_key_file_get_groups(file, NULL);
        g_auto(GStrv) names = NULL;

        for (char **g = groups; *g; g++)
                if (!streq(*g, GROUP) && !g_str_has_prefix(*g, ENDPOINT_GROUP_PREFIX))
                        return problem(ret_problem, -EINVAL, "%s: unknown group [%s]", path, *g);

        names = g_key_file_get_keys(file, GROUP, NULL, NULL);
        for (char **k = names; names && *k; k++)
                if (!g_strv_contains(keys, *k))
                        return problem(ret_problem, -EINVAL, "%s: [" GROUP "] unknown key '%s'", path, *k);

        return 0;
}

static int read_endpoint_groups(GKeyFile *file, const char *path, char ***ret_discard, char **ret_problem) {
        g_autoptr(GPtrArray) discard = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) groups = g_key_file_get_groups(file, NULL);
        int r;

        for (char **g = groups; *g; g++) {
                if (!g_str_has_prefix(*g, ENDPOINT_GROUP_PREFIX))
                        continue;
                r = read_endpoint_group(file, path, *g, discard, ret_problem);
                if (r < 0)
                        return r;
        }

        if (discard->len == 0) {
                *ret_discard = NULL;
                return 0;
        }
        g_ptr_array_add(discard, NULL);
        *ret_discard = (char **) g_ptr_array_free(g_steal_pointer(&discard), FALSE);
        return 0;
}

int config_load(Config *config, const char *path, bool required, char **ret_problem) {
        g_autoptr(GKeyFile) file = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) discard = NULL;
        Config c = *config;
        int r;

        /* Translated keys ("max-payload[de]") are kept, so they are refused as
         * unknown in every locale instead of silently dropped in some. */
        if (!g_key_file_load_from_file(file, path, G_KEY_FILE_KEEP_TRANSLATIONS, &error)) {
                if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT) && !required)
                        return 0;
                return problem(ret_problem,
                               g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? -ENOENT : -EINVAL,
                               "%s: %s", path, error->message);
        }

        r = check_known(file, path, ret_problem);
        if (r >= 0)
                r = read_number(file, path, "idle-timeout", CONFIG_IDLE_TIMEOUT_MAX_SEC, &c.idle_timeout_sec,
                                ret_problem);
        if (r >= 0)
                r = read_number(file, path, "max-payload", CONFIG_MAX_PAYLOAD_MAX, &c.max_payload, ret_problem);
        if (r >= 0)
                r = read_bool(file, path, "endpoint-activation", &c.endpoint_activation, ret_problem);
        if (r >= 0)
                r = read_number(file, path, "max-stored-messages", UINT64_MAX, &c.max_stored_messages,
                                ret_problem);
        if (r >= 0)
                r = read_number(file, path, "max-stored-bytes", UINT64_MAX, &c.max_stored_bytes, ret_problem);
        if (r >= 0)
                r = read_number(file, path, "max-endpoints", CONFIG_COUNT_MAX, &c.max_endpoints, ret_problem);
        if (r >= 0)
                r = read_number(file, path, "max-subscriptions", CONFIG_COUNT_MAX, &c.max_subscriptions,
                                ret_problem);
        if (r >= 0)
                r = read_number(file, path, "max-attached", CONFIG_COUNT_MAX, &c.max_attached, ret_problem);
        if (r >= 0)
                r = read_endpoint_groups(file, path, &discard, ret_problem);
        if (r < 0)
                return r;

        /* The file's endpoint groups replace those of an earlier file. */
        g_strfreev(config->discard_oldest);
        c.discard_oldest = g_steal_pointer(&discard);
        *config = c;
        return 0;
}
