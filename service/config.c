/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define GROUP "Broker"

Config config_defaults(void) {
        return (Config) {
                .idle_timeout_sec = CONFIG_IDLE_TIMEOUT_DEFAULT_SEC,
                .max_payload = CONFIG_MAX_PAYLOAD_DEFAULT,
                .endpoint_activation = true,
        };
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

/* Anything not understood is refused, so a typo never passes silently. */
static int check_known(GKeyFile *file, const char *path, char **ret_problem) {
        static const char *const keys[] = { "idle-timeout", "max-payload", "endpoint-activation", NULL };
        g_auto(GStrv) groups = g_key_file_get_groups(file, NULL);
        g_auto(GStrv) names = NULL;

        for (char **g = groups; *g; g++)
                if (!streq(*g, GROUP))
                        return problem(ret_problem, -EINVAL, "%s: unknown group [%s]", path, *g);

        names = g_key_file_get_keys(file, GROUP, NULL, NULL);
        for (char **k = names; names && *k; k++)
                if (!g_strv_contains(keys, *k))
                        return problem(ret_problem, -EINVAL, "%s: [" GROUP "] unknown key '%s'", path, *k);

        return 0;
}

int config_load(Config *config, const char *path, bool required, char **ret_problem) {
        g_autoptr(GKeyFile) file = g_key_file_new();
        g_autoptr(GError) error = NULL;
        Config c = *config;
        int r;

        if (!g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, &error)) {
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
        if (r < 0)
                return r;

        *config = c;
        return 0;
}
