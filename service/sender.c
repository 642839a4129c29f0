/* SPDX-License-Identifier: MIT */
#include "sender.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DIRECT_PREFIX "direct:"

const char *sender_name(sd_bus_message *m) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        const char *description;

        if (sd_bus_is_bus_client(bus) > 0)
                return sd_bus_message_get_sender(m);

        if (sd_bus_get_description(bus, &description) < 0 ||
            strncmp(description, DIRECT_PREFIX, strlen(DIRECT_PREFIX)) != 0)
                return NULL;
        return description;
}

int sender_direct_name(uint64_t id, char **ret) {
        return asprintf(ret, DIRECT_PREFIX "%" PRIu64, id) < 0 ? -ENOMEM : 0;
}
