/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The access policy, fixed for the life of the service (read from the
 * configuration at startup; no client is registered afterwards, so nobody
 * can grant themselves rights): whether callers of the service's own user
 * outside any sandbox are trusted, and the registered clients, each found
 * by one match key and holding its own rights. Pure data and decisions;
 * the bus layer (access-dbus.c) finds out who a caller is.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "creds.h"

/* What a caller may do to an endpoint. */
typedef enum Right {
        RIGHT_PUBLISH = 1 << 0,         /* Send; OpenEndpoint, ClearAll, DeleteEndpoint */
        RIGHT_SUBSCRIBE = 1 << 1,       /* Subscribe, Ack, Unsubscribe */
        RIGHT_ADMIN = 1 << 2,           /* OpenEndpoint, ClearAll, DeleteEndpoint of any endpoint */
} Right;

/* The rights each method needs: Send publish; Subscribe, Ack and
 * Unsubscribe subscribe; OpenEndpoint, ClearAll and DeleteEndpoint publish
 * or admin. */
#define RIGHTS_MANAGE (RIGHT_PUBLISH | RIGHT_ADMIN)

typedef enum ClientMatch {
        CLIENT_MATCH_APP_ID,    /* app-id=: a sandboxed app's id */
        CLIENT_MATCH_EXE,       /* exe=: a host program's absolute path */
        CLIENT_MATCH_TOKEN,     /* token=: a secret the caller proves with Authenticate */
} ClientMatch;

#define POLICY_DIGEST_SIZE 32   /* SHA-256 */
#define POLICY_TOKEN_MIN 16     /* characters of a token in the file */
#define POLICY_TOKEN_MAX 1024

typedef struct PolicyClient {
        char *name;             /* NAME of [Client NAME] */
        ClientMatch match;
        char *value;            /* the app id or exe path; NULL for a token */
        uint8_t digest[POLICY_DIGEST_SIZE]; /* SHA-256 of the token, which is not kept */
        char **publish;         /* endpoint patterns, NULL-terminated, or NULL */
        char **subscribe;
        bool admin;
} PolicyClient;

typedef struct Policy {
        bool trust_same_user;   /* [Broker] trust-same-user, default true */
        PolicyClient *clients;
        size_t n_clients;
} Policy;

/* Frees what the policy owns and leaves it empty (trust_same_user kept). */
void policy_done(Policy *policy);

/* SHA-256 of a token, as PolicyClient.digest holds it. */
void policy_token_digest(const char *token, size_t size, uint8_t ret[POLICY_DIGEST_SIZE]);

/* Whether identity is trusted (may do everything): trust_same_user, the
 * service's own uid (service_uid) and no sandbox. */
bool policy_trusts(const Policy *policy, const Identity *identity, uid_t service_uid);

/* Whether client's app-id= or exe= key matches identity (never for a token
 * client: those match through policy_find_token()). An exe= key matches
 * only a program of the host. */
bool policy_client_matches(const PolicyClient *client, const Identity *identity);

/*
 * The token clients whose token is token: their indexes into
 * policy->clients, stored in ret (room for policy->n_clients), and how many
 * there are. Every token client is compared, each in time independent of
 * where the token differs, so the time taken tells nothing about which
 * token came close.
 */
size_t policy_find_token(const Policy *policy, const char *token, size_t size, size_t *ret);

/* Whether client holds any right on some endpoint: a publish= or
 * subscribe= pattern, or admin. */
bool policy_client_holds_rights(const PolicyClient *client);

/* The rights (Right bits) that client holds on endpoint. */
unsigned policy_client_rights(const PolicyClient *client, const char *endpoint);
