/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service's configuration file, read once at startup (GKeyFile syntax):
 * group [Broker] with the settings below, a group [Endpoint NAME] per
 * endpoint that is set apart from the rest (NAME a valid endpoint name), and
 * a group [Client NAME] per registered client of the access policy
 * (policy.h). A file that cannot be read or holds anything unknown or
 * malformed stops the start: the service never runs on a configuration it
 * half understood, and so never on half a policy.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define CONFIG_IDLE_TIMEOUT_DEFAULT_SEC 30
#define CONFIG_IDLE_TIMEOUT_MAX_SEC UINT32_MAX
#define CONFIG_MAX_PAYLOAD_DEFAULT (1024 * 1024)
/* The bus itself carries at most 128 MiB in one message. */
#define CONFIG_MAX_PAYLOAD_MAX (128 * 1024 * 1024)

/* The limits below are per endpoint unless said otherwise; 0 is no limit.
 * Why these defaults: see the Limits table of README.md. */
#define CONFIG_MAX_STORED_MESSAGES_DEFAULT UINT64_C(1000000)
#define CONFIG_MAX_STORED_BYTES_DEFAULT (UINT64_C(1024) * 1024 * 1024)
#define CONFIG_MAX_ENDPOINTS_DEFAULT UINT64_C(1000)
#define CONFIG_MAX_SUBSCRIPTIONS_DEFAULT UINT64_C(100)
#define CONFIG_MAX_ATTACHED_DEFAULT UINT64_C(1000)
#define CONFIG_COUNT_MAX UINT32_MAX

typedef struct Config {
        uint64_t idle_timeout_sec;      /* idle-timeout: 0 never exits when idle */
        uint64_t max_payload;           /* max-payload: bytes */
        bool endpoint_activation;       /* endpoint-activation */
        uint64_t max_stored_messages;   /* max-stored-messages: per endpoint */
        uint64_t max_stored_bytes;      /* max-stored-bytes: per endpoint, ids and payloads */
        uint64_t max_endpoints;         /* max-endpoints */
        uint64_t max_subscriptions;     /* max-subscriptions: durable ones, per endpoint */
        uint64_t max_attached;          /* max-attached: subscriptions attached, all endpoints */
        char **discard_oldest;          /* [Endpoint NAME] discard=oldest: the NAMEs, NULL-terminated
                                         * and owned, or NULL */
        char **broadcast;               /* [Endpoint NAME] broadcast=true: the same */
        Policy policy;                  /* [Broker] trust-same-user and the [Client NAME] groups */
} Config;

/* The built-in defaults. Owns nothing yet; config_done() all the same. */
Config config_defaults(void);

/* Frees what the configuration owns. */
void config_done(Config *config);

/* Whether the endpoint of that name drops its oldest messages when full
 * ([Endpoint NAME] discard=oldest) rather than refusing Sends. */
bool config_discards_oldest(const Config *config, const char *endpoint);

/* Whether the endpoint of that name also emits its messages as broadcast
 * signals ([Endpoint NAME] broadcast=true). */
bool config_broadcasts(const Config *config, const char *endpoint);

/*
 * Reads path into *config, over the values it holds; the file's [Endpoint]
 * and [Client] groups replace those of an earlier file. A missing file is no
 * error unless required (it was named on the command line). Returns 0, or
 * -ENOENT, -EINVAL, ... with *ret_problem set to a newly allocated sentence
 * "PATH:LINE: problem" (PATH: alone where no line is to blame) naming the
 * file, the line and what is wrong; *config is unchanged then. No problem
 * sentence ever quotes a token.
 */
int config_load(Config *config, const char *path, bool required, char **ret_problem);

/* Parses a setting's value as config_load() does, for the command line:
 * 0, or -EINVAL with *ret_problem set. */
int config_parse_number(const char *key, const char *value, uint64_t max, uint64_t *ret, char **ret_problem);
