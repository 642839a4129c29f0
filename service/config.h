/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service's configuration file, read once at startup (GKeyFile syntax):
 * group [Broker] with the settings below. A file that cannot be read or
 * holds anything unknown or malformed stops the start: the service never
 * runs on a configuration it half understood.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_IDLE_TIMEOUT_DEFAULT_SEC 30
#define CONFIG_IDLE_TIMEOUT_MAX_SEC UINT32_MAX
#define CONFIG_MAX_PAYLOAD_DEFAULT (1024 * 1024)
/* The bus itself carries at most 128 MiB in one message. */
#define CONFIG_MAX_PAYLOAD_MAX (128 * 1024 * 1024)

typedef struct Config {
        uint64_t idle_timeout_sec;      /* idle-timeout: 0 never exits when idle */
        uint64_t max_payload;           /* max-payload: bytes */
        bool endpoint_activation;       /* endpoint-activation */
} Config;

/* The built-in defaults. */
Config config_defaults(void);

/*
 * Reads path into *config, over the values it holds. A missing file is no
 * error unless required (it was named on the command line). Returns 0, or
 * -ENOENT, -EINVAL, ... with *ret_problem set to a newly allocated sentence
 * naming the file and what is wrong with it.
 */
int config_load(Config *config, const char *path, bool required, char **ret_problem);

/* Parses a setting's value as config_load() does, for the command line:
 * 0, or -EINVAL with *ret_problem set. */
int config_parse_number(const char *key, const char *value, uint64_t max, uint64_t *ret, char **ret_problem);
