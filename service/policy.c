/* SPDX-License-Identifier: MIT */
#include "policy.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "pattern.h"
#include "util.h"

static void client_done(PolicyClient *client) {
        free(client->name);
        free(client->value);
        g_strfreev(client->publish);
        g_strfreev(client->subscribe);
        *client = (PolicyClient) {};
}

void policy_done(Policy *policy) {
        for (size_t i = 0; i < policy->n_clients; i++)
                client_done(&policy->clients[i]);
        free(policy->clients);
        policy->clients = NULL;
        policy->n_clients = 0;
}

void policy_token_digest(const char *token, size_t size, uint8_t ret[POLICY_DIGEST_SIZE]) {
        g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
        gsize length = POLICY_DIGEST_SIZE;

        g_checksum_update(checksum, (const guchar *) token, (gssize) size);
        g_checksum_get_digest(checksum, ret, &length);
}

bool policy_trusts(const Policy *policy, const Identity *identity, uid_t service_uid) {
        return policy->trust_same_user && identity->uid == service_uid && identity->sandbox == SANDBOX_NONE;
}

bool policy_client_matches(const PolicyClient *client, const Identity *identity) {
        switch (client->match) {
        case CLIENT_MATCH_APP_ID:
                return identity->app_id && streq(identity->app_id, client->value);
        case CLIENT_MATCH_EXE:
                /* Inside a sandbox a path names whatever the sandbox put
                 * there: Identity has an exe only for host programs. */
                return identity->exe && streq(identity->exe, client->value);
        case CLIENT_MATCH_TOKEN:
                return false;
        }
        return false;
}

/* Compares two digests in time that does not depend on their contents. */
static bool digest_equal(const uint8_t a[POLICY_DIGEST_SIZE], const uint8_t b[POLICY_DIGEST_SIZE]) {
        volatile uint8_t diff = 0;

        for (size_t i = 0; i < POLICY_DIGEST_SIZE; i++)
                diff |= a[i] ^ b[i];
        return diff == 0;
}

size_t policy_find_token(const Policy *policy, const char *token, size_t size, size_t *ret) {
        uint8_t digest[POLICY_DIGEST_SIZE];
        size_t n = 0;

        /* Comparing digests rather than the tokens makes every comparison
         * the same length, whatever the lengths of the tokens. */
        policy_token_digest(token, size, digest);
        for (size_t i = 0; i < policy->n_clients; i++) {
                const PolicyClient *client = &policy->clients[i];
                bool equal = digest_equal(client->digest, digest);

                if (client->match == CLIENT_MATCH_TOKEN && equal)
                        ret[n++] = i;
        }
        return n;
}

bool policy_client_holds_rights(const PolicyClient *client) {
        return client->admin || (client->publish && client->publish[0]) || (client->subscribe && client->subscribe[0]);
}

unsigned policy_client_rights(const PolicyClient *client, const char *endpoint) {
        unsigned rights = 0;

        if (pattern_match_any(client->publish, endpoint))
                rights |= RIGHT_PUBLISH;
        if (pattern_match_any(client->subscribe, endpoint))
                rights |= RIGHT_SUBSCRIBE;
        if (client->admin)
                rights |= RIGHT_ADMIN;
        return rights;
}
