/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "pattern.h"
#include "util.h"

#define GROUP "Broker"
#define ENDPOINT_GROUP_PREFIX "Endpoint "
#define CLIENT_GROUP_PREFIX "Client "

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
                .policy = { .trust_same_user = true },
        };
}

void config_done(Config *config) {
        g_strfreev(config->discard_oldest);
        config->discard_oldest = NULL;
        g_strfreev(config->broadcast);
        config->broadcast = NULL;
        policy_done(&config->policy);
}

bool config_discards_oldest(const Config *config, const char *endpoint) {
        return strv_contains(config->discard_oldest, endpoint);
}

bool config_broadcasts(const Config *config, const char *endpoint) {
        return strv_contains(config->broadcast, endpoint);
}

/* One file being read: the parsed file, and its text to find the line a
 * problem is on. */
typedef struct Reader {
        GKeyFile *file;
        const char *path;
        const char *text;
        char **ret_problem;
} Reader;

/* Whether line, without its leading blanks, is "key=..." or "key =...". */
static bool line_sets_key(const char *line, size_t length, const char *key) {
        size_t k = strlen(key), i = 0;

        while (i < length && g_ascii_isspace(line[i]))
                i++;
        if (length - i < k || memcmp(line + i, key, k) != 0)
                return false;
        for (i += k; i < length && line[i] == ' '; i++)
                ;
        return i < length && line[i] == '=';
}

/* Whether line is the header of group. */
static bool line_opens_group(const char *line, size_t length, const char *group) {
        size_t g = strlen(group);

        return length == g + 2 && line[0] == '[' && memcmp(line + 1, group, g) == 0 && line[g + 1] == ']';
}

/*
 * The number of the line that sets key in group (the last one: that is the
 * value GKeyFile keeps), or of the group's first header when key is NULL;
 * 0 when there is none. Only locates lines for the message: the file itself
 * was parsed by GKeyFile.
 */
static unsigned line_of(const char *text, const char *group, const char *key) {
        unsigned number = 0, found = 0;
        bool inside = false;

        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n');
                size_t length = (size_t) (end - line);

                if (length > 0 && line[length - 1] == '\r')
                        length--;
                number++;
                if (length > 0 && line[0] == '[') {
                        inside = line_opens_group(line, length, group);
                        if (inside && !key && found == 0)
                                found = number;
                } else if (inside && key && line_sets_key(line, length, key))
                        found = number;

                line = *end ? end + 1 : end;
        }
        return found;
}

/* Sets *ret_problem to "PATH:LINE: message", the line being the one of
 * group and key (PATH: alone when there is none), and returns -EINVAL. */
_printf_(4, 5) static int fail(Reader *reader, const char *group, const char *key, const char *fmt, ...) {
        g_autofree char *message = NULL;
        unsigned line = group ? line_of(reader->text, group, key) : 0;
        va_list ap;

        va_start(ap, fmt);
        message = g_strdup_vprintf(fmt, ap);
        va_end(ap);

        *reader->ret_problem = line > 0 ? g_strdup_printf("%s:%u: %s", reader->path, line, message) :
                                          g_strdup_printf("%s: %s", reader->path, message);
        return -EINVAL;
}

int config_parse_number(const char *key, const char *value, uint64_t max, uint64_t *ret, char **ret_problem) {
        guint64 v;

        /* Only plain decimal digits: strtoull would take "-1", " 5" or "0x10". */
        if (!g_ascii_string_to_unsigned(value, 10, 0, max, &v, NULL)) {
                *ret_problem = g_strdup_printf("invalid value '%s' of %s: expected a number from 0 to %" PRIu64,
                                               value, key, max);
                return -EINVAL;
        }

        *ret = v;
        return 0;
}

static int read_number(Reader *reader, const char *key, uint64_t max, uint64_t *ret) {
        g_autofree char *value = NULL;
        g_autofree char *why = NULL;

        value = g_key_file_get_value(reader->file, GROUP, key, NULL);
        if (!value)
                return 0;

        if (config_parse_number(key, g_strstrip(value), max, ret, &why) < 0)
                return fail(reader, GROUP, key, "[" GROUP "] %s", why);
        return 0;
}

/* A boolean of group, left as it is when the key is missing. */
static int read_bool(Reader *reader, const char *group, const char *key, bool *ret) {
        g_autoptr(GError) error = NULL;
        gboolean v;

        if (!g_key_file_has_key(reader->file, group, key, NULL))
                return 0;

        v = g_key_file_get_boolean(reader->file, group, key, &error);
        if (error)
                return fail(reader, group, key, "[%s] %s: %s", group, key, error->message);

        *ret = v;
        return 0;
}

/* Refuses every key of group that is not in known, so a typo never passes
 * silently. */
static int check_keys(Reader *reader, const char *group, const char *const *known) {
        g_auto(GStrv) keys = g_key_file_get_keys(reader->file, group, NULL, NULL);

        for (char **k = keys; keys && *k; k++)
                if (!g_strv_contains(known, *k))
                        return fail(reader, group, *k, "[%s] unknown key '%s'", group, *k);
        return 0;
}

static int check_groups(Reader *reader) {
        g_auto(GStrv) groups = g_key_file_get_groups(reader->file, NULL);

        for (char **g = groups; *g; g++)
                if (!streq(*g, GROUP) && !g_str_has_prefix(*g, ENDPOINT_GROUP_PREFIX) &&
                    !g_str_has_prefix(*g, CLIENT_GROUP_PREFIX))
                        return fail(reader, *g, NULL, "unknown group [%s]", *g);
        return 0;
}

static int read_broker_group(Reader *reader, Config *c) {
        static const char *const keys[] = { "idle-timeout", "max-payload", "endpoint-activation",
                                            "max-stored-messages", "max-stored-bytes", "max-endpoints",
                                            "max-subscriptions", "max-attached", "trust-same-user", NULL };
        int r;

        r = check_keys(reader, GROUP, keys);
        if (r >= 0)
                r = read_number(reader, "idle-timeout", CONFIG_IDLE_TIMEOUT_MAX_SEC, &c->idle_timeout_sec);
        if (r >= 0)
                r = read_number(reader, "max-payload", CONFIG_MAX_PAYLOAD_MAX, &c->max_payload);
        if (r >= 0)
                r = read_bool(reader, GROUP, "endpoint-activation", &c->endpoint_activation);
        if (r >= 0)
                r = read_number(reader, "max-stored-messages", UINT64_MAX, &c->max_stored_messages);
        if (r >= 0)
                r = read_number(reader, "max-stored-bytes", UINT64_MAX, &c->max_stored_bytes);
        if (r >= 0)
                r = read_number(reader, "max-endpoints", CONFIG_COUNT_MAX, &c->max_endpoints);
        if (r >= 0)
                r = read_number(reader, "max-subscriptions", CONFIG_COUNT_MAX, &c->max_subscriptions);
        if (r >= 0)
                r = read_number(reader, "max-attached", CONFIG_COUNT_MAX, &c->max_attached);
        if (r >= 0)
                r = read_bool(reader, GROUP, "trust-same-user", &c->policy.trust_same_user);
        return r;
}

/* The name of a [PREFIX NAME] group, checked with check: "endpoint name",
 * "client name". */
static int group_name(Reader *reader, const char *group, const char *prefix,
                      int (*check)(const char *value, char **ret_problem), const char *what, const char **ret) {
        g_autofree char *why = NULL;
        const char *name = group + strlen(prefix);

        if (check(name, &why) < 0)
                return fail(reader, group, NULL, "[%s]: invalid %s '%s': %s", group, what, name,
                            why ? why : "not valid");
        *ret = name;
        return 0;
}

/* Reads one [Endpoint NAME] group: discard=oldest|refuse, broadcast=BOOL.
 * Adds NAME to discard when oldest and to broadcast when true. */
static int read_endpoint_group(Reader *reader, const char *group, GPtrArray *discard, GPtrArray *broadcast) {
        static const char *const keys[] = { "discard", "broadcast", NULL };
        g_autofree char *value = NULL;
        bool broadcasts = false;
        const char *name;
        int r;

        r = group_name(reader, group, ENDPOINT_GROUP_PREFIX, names_check_endpoint, "endpoint name", &name);
        if (r >= 0)
                r = check_keys(reader, group, keys);
        if (r >= 0)
                r = read_bool(reader, group, "broadcast", &broadcasts);
        if (r < 0)
                return r;
        if (broadcasts)
                g_ptr_array_add(broadcast, g_strdup(name));

        value = g_key_file_get_value(reader->file, group, "discard", NULL);
        if (!value)
                return 0;
        g_strstrip(value);
        if (streq(value, "oldest"))
                g_ptr_array_add(discard, g_strdup(name));
        else if (!streq(value, "refuse"))
                return fail(reader, group, "discard",
                            "[%s] invalid value '%s' of discard: expected 'oldest' or 'refuse'", group, value);
        return 0;
}

/* The names as a NULL-terminated list, or NULL when there are none; the
 * array is consumed either way. */
static char **take_strv(GPtrArray *names) {
        if (names->len == 0) {
                g_ptr_array_unref(names);
                return NULL;
        }
        g_ptr_array_add(names, NULL);
        return (char **) g_ptr_array_free(names, FALSE);
}

/* The patterns of key (publish, subscribe) in a client group, each valid. */
static int read_patterns(Reader *reader, const char *group, const char *key, char ***ret) {
        g_auto(GStrv) patterns = NULL;
        gsize n = 0;

        patterns = g_key_file_get_string_list(reader->file, group, key, &n, NULL);
        for (gsize i = 0; i < n; i++) {
                g_autofree char *why = NULL;

                g_strstrip(patterns[i]);
                if (pattern_check(patterns[i], &why) < 0)
                        return fail(reader, group, key, "[%s] invalid endpoint pattern '%s' in %s: %s", group,
                                    patterns[i], key, why ? why : "not valid");
        }

        *ret = n > 0 ? g_steal_pointer(&patterns) : NULL;
        return 0;
}

/* The match key of a client group: exactly one of app-id=, exe=, token=.
 * A token is checked for length only and never quoted. */
static int read_match(Reader *reader, const char *group, PolicyClient *client) {
        static const struct {
                const char *key;
                ClientMatch match;
        } keys[] = {
                { "app-id", CLIENT_MATCH_APP_ID },
                { "exe", CLIENT_MATCH_EXE },
                { "token", CLIENT_MATCH_TOKEN },
        };
        g_autofree char *value = NULL, *why = NULL;
        const char *key = NULL;
        size_t length;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!g_key_file_has_key(reader->file, group, keys[i].key, NULL))
                        continue;
                if (key)
                        return fail(reader, group, keys[i].key, "[%s] has both %s= and %s=: a client has exactly "
                                    "one match key", group, key, keys[i].key);
                key = keys[i].key;
                client->match = keys[i].match;
        }
        if (!key)
                return fail(reader, group, NULL, "[%s] has no match key: give it one of app-id=, exe= or token=",
                            group);

        value = g_strstrip(g_key_file_get_value(reader->file, group, key, NULL));
        length = strlen(value);
        switch (client->match) {
        case CLIENT_MATCH_APP_ID:
                if (names_check_app_id(value, &why) < 0)
                        return fail(reader, group, key, "[%s] invalid app-id '%s': %s", group, value,
                                    why ? why : "not valid");
                break;
        case CLIENT_MATCH_EXE:
                if (value[0] != '/')
                        return fail(reader, group, key, "[%s] invalid exe '%s': expected an absolute path", group,
                                    value);
                break;
        case CLIENT_MATCH_TOKEN:
                if (length < POLICY_TOKEN_MIN || length > POLICY_TOKEN_MAX)
                        return fail(reader, group, key, "[%s] token is %zu characters long: expected %d to %d",
                                    group, length, POLICY_TOKEN_MIN, POLICY_TOKEN_MAX);
                policy_token_digest(value, length, client->digest);
                return 0;
        }

        client->value = strdup(value);
        return client->value ? 0 : -ENOMEM;
}

static int read_client_group(Reader *reader, const char *group, PolicyClient *client) {
        static const char *const keys[] = { "app-id", "exe", "token", "publish", "subscribe", "admin", NULL };
        const char *name;
        int r;

        r = group_name(reader, group, CLIENT_GROUP_PREFIX, names_check_subscriber, "client name", &name);
        if (r >= 0)
                r = check_keys(reader, group, keys);
        if (r >= 0) {
                client->name = strdup(name);
                r = client->name ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = read_match(reader, group, client);
        if (r >= 0)
                r = read_patterns(reader, group, "publish", &client->publish);
        if (r >= 0)
                r = read_patterns(reader, group, "subscribe", &client->subscribe);
        if (r >= 0)
                r = read_bool(reader, group, "admin", &client->admin);
        return r;
}

/* The [Endpoint NAME] and [Client NAME] groups into c, replacing what c had
 * of them only when all of them were read. */
static int read_named_groups(Reader *reader, Config *c) {
        g_autoptr(GPtrArray) discard = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) broadcast = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) groups = g_key_file_get_groups(reader->file, NULL);
        _cleanup_(policy_done) Policy policy = { .trust_same_user = c->policy.trust_same_user };
        int r = 0;

        policy.clients = calloc(g_strv_length(groups) + 1, sizeof(PolicyClient));
        if (!policy.clients)
                return -ENOMEM;

        for (char **g = groups; r >= 0 && *g; g++) {
                if (g_str_has_prefix(*g, ENDPOINT_GROUP_PREFIX))
                        r = read_endpoint_group(reader, *g, discard, broadcast);
                else if (g_str_has_prefix(*g, CLIENT_GROUP_PREFIX))
                        /* Counted before it is read, so a half-read client is freed with the rest. */
                        r = read_client_group(reader, *g, &policy.clients[policy.n_clients++]);
        }
        if (r < 0)
                return r;
        /* A file without clients leaves a configuration that owns nothing of
         * them, as config_defaults() does. */
        if (policy.n_clients == 0) {
                free(policy.clients);
                policy.clients = NULL;
        }

        g_strfreev(c->discard_oldest);
        c->discard_oldest = take_strv(g_steal_pointer(&discard));
        g_strfreev(c->broadcast);
        c->broadcast = take_strv(g_steal_pointer(&broadcast));
        policy_done(&c->policy);
        c->policy = policy;
        policy = (Policy) {};
        return 0;
}

/*
 * The problem with a file GKeyFile refused, on the first line it refuses:
 * found by parsing ever longer beginnings of the file, which costs only when
 * the file is broken. The line is quoted by GLib's message, so inside a
 * [Client] group, where it may hold a token, GLib's message is not shown.
 */
static int fail_syntax(Reader *reader, GKeyFile *file, const GError *error) {
        unsigned number = 0;
        bool secret = false;

        for (const char *line = reader->text; *line;) {
                const char *end = strchrnul(line, '\n');

                number++;
                if (line[0] == '[')
                        secret = g_str_has_prefix(line, "[" CLIENT_GROUP_PREFIX);
                if (!g_key_file_load_from_data(file, reader->text, (gsize) (end - reader->text),
                                               G_KEY_FILE_KEEP_TRANSLATIONS, NULL))
                        break;
                line = *end ? end + 1 : end;
        }

        *reader->ret_problem = secret ? g_strdup_printf("%s:%u: not a group header, a key=value line or a comment "
                                                        "(in a [Client] group: the line is not shown)",
                                                        reader->path, number) :
                                        g_strdup_printf("%s:%u: %s", reader->path, number, error->message);
        return -EINVAL;
}

int config_load(Config *config, const char *path, bool required, char **ret_problem) {
        g_autoptr(GKeyFile) file = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *text = NULL;
        _cleanup_(config_done) Config c = *config;
        Reader reader = { .file = file, .path = path, .ret_problem = ret_problem };
        gsize size;
        int r;

        /* What c points to is config's until the file has been read whole. */
        c.discard_oldest = c.broadcast = NULL;
        c.policy = (Policy) { .trust_same_user = config->policy.trust_same_user };

        if (!g_file_get_contents(path, &text, &size, &error)) {
                if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT) && !required)
                        return 0;
                *ret_problem = g_strdup_printf("%s: %s", path, error->message);
                return g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? -ENOENT : -EINVAL;
        }
        reader.text = text;

        /* Translated keys ("max-payload[de]") are kept, so they are refused as
         * unknown in every locale instead of silently dropped in some. */
        if (!g_key_file_load_from_data(file, text, size, G_KEY_FILE_KEEP_TRANSLATIONS, &error)) {
                g_autoptr(GKeyFile) probe = g_key_file_new();
                return fail_syntax(&reader, probe, error);
        }

        r = check_groups(&reader);
        if (r >= 0)
                r = read_broker_group(&reader, &c);
        if (r >= 0)
                r = read_named_groups(&reader, &c);
        if (r < 0)
                return r;

        /* The file was read whole: c takes over from config. */
        config_done(config);
        *config = c;
        c = (Config) {};
        return 0;
}
