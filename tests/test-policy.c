/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/policy.c: who is trusted, which client a caller's
 * identity matches, which token clients a token proves, and the rights a
 * client holds on an endpoint.
 */

#include <glib.h>
#include <string.h>

#include "policy.h"
#include "util.h"

#define SERVICE_UID 1000
#define TOKEN_A "4f1c9e2a7b3d8e6f0a1b2c3d"
#define TOKEN_B "b2c3d4e5f60718293a4b5c6d"

static PolicyClient token_client(const char *name, const char *token, char **publish, char **subscribe) {
        PolicyClient client = {
                .name = (char *) name,
                .match = CLIENT_MATCH_TOKEN,
                .publish = publish,
                .subscribe = subscribe,
        };

        policy_token_digest(token, strlen(token), client.digest);
        return client;
}

static void test_trust(void) {
        Policy policy = { .trust_same_user = true };
        Identity host = { .uid = SERVICE_UID, .sandbox = SANDBOX_NONE, .exe = (char *) "/usr/bin/foo" };
        Identity other_user = host, flatpak = host, snap = host, unknown = host;

        g_test_summary("Only a program of the host with the service's own uid is trusted, and only while "
                       "trust-same-user is on; any sandbox, a sandbox that could not be told, or another "
                       "uid is never trusted.");
        other_user.uid = SERVICE_UID + 1;
        flatpak.sandbox = SANDBOX_FLATPAK;
        snap.sandbox = SANDBOX_SNAP;
        unknown.sandbox = SANDBOX_UNKNOWN;

        g_assert_true(policy_trusts(&policy, &host, SERVICE_UID));
        g_assert_false(policy_trusts(&policy, &other_user, SERVICE_UID));
        g_assert_false(policy_trusts(&policy, &flatpak, SERVICE_UID));
        g_assert_false(policy_trusts(&policy, &snap, SERVICE_UID));
        g_assert_false(policy_trusts(&policy, &unknown, SERVICE_UID));

        policy.trust_same_user = false;
        g_assert_false(policy_trusts(&policy, &host, SERVICE_UID));
}

static void test_client_matches(void) {
        PolicyClient by_app = { .name = (char *) "maps", .match = CLIENT_MATCH_APP_ID,
                                .value = (char *) "org.gnome.Maps" };
        PolicyClient by_exe = { .name = (char *) "indexer", .match = CLIENT_MATCH_EXE,
                                .value = (char *) "/usr/libexec/indexer" };
        PolicyClient by_token = token_client("sync", TOKEN_A, NULL, NULL);
        Identity maps = { .sandbox = SANDBOX_FLATPAK, .app_id = (char *) "org.gnome.Maps" };
        Identity other_app = { .sandbox = SANDBOX_FLATPAK, .app_id = (char *) "org.gnome.Maps2" };
        Identity unidentified = { .sandbox = SANDBOX_FLATPAK };
        Identity indexer = { .sandbox = SANDBOX_NONE, .exe = (char *) "/usr/libexec/indexer" };
        Identity no_exe = { .sandbox = SANDBOX_UNKNOWN };

        g_test_summary("app-id= matches exactly that app id, exe= exactly that executable (which only a "
                       "program of the host has), a token client matches no identity: its token must be "
                       "proved.");
        g_assert_true(policy_client_matches(&by_app, &maps));
        g_assert_false(policy_client_matches(&by_app, &other_app));
        g_assert_false(policy_client_matches(&by_app, &unidentified));
        g_assert_false(policy_client_matches(&by_app, &indexer));

        g_assert_true(policy_client_matches(&by_exe, &indexer));
        g_assert_false(policy_client_matches(&by_exe, &no_exe));
        g_assert_false(policy_client_matches(&by_exe, &maps));

        g_assert_false(policy_client_matches(&by_token, &maps));
        g_assert_false(policy_client_matches(&by_token, &indexer));
}

static void test_find_token(void) {
        PolicyClient clients[] = {
                token_client("a", TOKEN_A, NULL, NULL),
                { .name = (char *) "exe", .match = CLIENT_MATCH_EXE, .value = (char *) "/bin/x" },
                token_client("b", TOKEN_B, NULL, NULL),
                token_client("a-again", TOKEN_A, NULL, NULL),
        };
        Policy policy = { .clients = clients, .n_clients = ELEMENTSOF(clients) };
        size_t found[ELEMENTSOF(clients)];

        g_test_summary("A token proves every token client that has it and nothing else; a token that "
                       "differs in its last character, a prefix, a longer string or the empty string "
                       "proves nothing, and a client of another match key is never proved by a digest.");
        g_assert_cmpuint(policy_find_token(&policy, TOKEN_A, strlen(TOKEN_A), found), ==, 2);
        g_assert_cmpuint(found[0], ==, 0);
        g_assert_cmpuint(found[1], ==, 3);

        g_assert_cmpuint(policy_find_token(&policy, TOKEN_B, strlen(TOKEN_B), found), ==, 1);
        g_assert_cmpuint(found[0], ==, 2);

        g_assert_cmpuint(policy_find_token(&policy, "4f1c9e2a7b3d8e6f0a1b2c3e", 24, found), ==, 0);
        g_assert_cmpuint(policy_find_token(&policy, TOKEN_A, strlen(TOKEN_A) - 1, found), ==, 0);
        g_assert_cmpuint(policy_find_token(&policy, TOKEN_A "0", strlen(TOKEN_A) + 1, found), ==, 0);
        g_assert_cmpuint(policy_find_token(&policy, "", 0, found), ==, 0);

        /* The exe client's digest is all zeros, like no token's. */
        memset(clients[1].digest, 0, sizeof(clients[1].digest));
        g_assert_cmpuint(policy_find_token(&policy, "/bin/x", 6, found), ==, 0);
}

static void test_client_rights(void) {
        char *publish[] = { (char *) "org.example.Notes.**", NULL };
        char *subscribe[] = { (char *) "org.example.Notes.changes", (char *) "org.example.*.status", NULL };
        PolicyClient notes = token_client("notes", TOKEN_A, publish, subscribe);
        PolicyClient admin = { .name = (char *) "admin", .match = CLIENT_MATCH_EXE, .value = (char *) "/bin/a",
                               .admin = true };
        PolicyClient nothing = token_client("nothing", TOKEN_B, NULL, NULL);

        g_test_summary("A client holds publish where a publish= pattern covers the endpoint, subscribe "
                       "where a subscribe= pattern does, admin on every endpoint when admin=true, and "
                       "nothing where no pattern covers it.");
        g_assert_cmpuint(policy_client_rights(&notes, "org.example.Notes"), ==, RIGHT_PUBLISH);
        g_assert_cmpuint(policy_client_rights(&notes, "org.example.Notes.changes"), ==,
                         RIGHT_PUBLISH | RIGHT_SUBSCRIBE);
        g_assert_cmpuint(policy_client_rights(&notes, "org.example.Calendar.status"), ==, RIGHT_SUBSCRIBE);
        g_assert_cmpuint(policy_client_rights(&notes, "org.example.Calendar"), ==, 0);
        g_assert_cmpuint(policy_client_rights(&notes, "org.example"), ==, 0);

        g_assert_cmpuint(policy_client_rights(&admin, "anything.at.all"), ==, RIGHT_ADMIN);
        g_assert_cmpuint(policy_client_rights(&nothing, "org.example.Notes"), ==, 0);

        /* What the methods that manage endpoints ask for: either one. */
        g_assert_true(policy_client_rights(&notes, "org.example.Notes.x") & RIGHTS_MANAGE);
        g_assert_true(policy_client_rights(&admin, "org.example.Notes.x") & RIGHTS_MANAGE);
        g_assert_false(policy_client_rights(&notes, "org.example.Calendar.status") & RIGHTS_MANAGE);
}

static void test_client_holds_rights(void) {
        char *publish[] = { (char *) "org.example.Notes.**", NULL };
        char *none[] = { NULL };
        PolicyClient publisher = token_client("publisher", TOKEN_A, publish, NULL);
        PolicyClient subscriber = token_client("subscriber", TOKEN_A, NULL, publish);
        PolicyClient admin = { .name = (char *) "admin", .match = CLIENT_MATCH_EXE, .value = (char *) "/bin/a",
                               .admin = true };
        PolicyClient nothing = token_client("nothing", TOKEN_B, NULL, NULL);
        PolicyClient empty = token_client("empty", TOKEN_B, none, none);

        g_test_summary("A client holds rights when it has a publish= or subscribe= pattern or admin=true; "
                       "one without any, or with empty lists, holds none.");
        g_assert_true(policy_client_holds_rights(&publisher));
        g_assert_true(policy_client_holds_rights(&subscriber));
        g_assert_true(policy_client_holds_rights(&admin));
        g_assert_false(policy_client_holds_rights(&nothing));
        g_assert_false(policy_client_holds_rights(&empty));
}

static void test_done_frees_and_empties(void) {
        Policy policy = { .trust_same_user = false, .n_clients = 1 };

        g_test_summary("policy_done() frees every client with its strings and lists and leaves an empty "
                       "policy that keeps trust-same-user; a second call is harmless.");
        policy.clients = calloc(1, sizeof(PolicyClient));
        g_assert_nonnull(policy.clients);
        policy.clients[0] = (PolicyClient) {
                .name = strdup("c"),
                .match = CLIENT_MATCH_APP_ID,
                .value = strdup("org.example.App"),
                .publish = g_strsplit("a.**;b", ";", -1),
                .subscribe = g_strsplit("c", ";", -1),
        };

        policy_done(&policy);
        g_assert_null(policy.clients);
        g_assert_cmpuint(policy.n_clients, ==, 0);
        g_assert_false(policy.trust_same_user);
        policy_done(&policy);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/policy/trust/only-same-user-outside-sandboxes", test_trust);
        g_test_add_func("/policy/client/matches-its-app-id-or-exe", test_client_matches);
        g_test_add_func("/policy/token/proves-its-clients-only", test_find_token);
        g_test_add_func("/policy/rights/from-patterns-and-admin", test_client_rights);
        g_test_add_func("/policy/rights/held-by-a-pattern-or-admin", test_client_holds_rights);
        g_test_add_func("/policy/done/frees-and-empties", test_done_frees_and_empties);

        return g_test_run();
}
