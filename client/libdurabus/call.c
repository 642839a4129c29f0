/* SPDX-License-Identifier: MIT */

/*
 * Method calls to the service, waited for or answered through a handler,
 * and the proof of the application's token (Authenticate) that goes ahead
 * of them.
 *
 * The service keeps what a connection proved only for the life of its
 * instance: one started after a crash or a kill knows nothing of it. So
 * once the application gave a token, the client proves it again to every
 * new instance, before the first call that instance gets:
 * - c->proof is the latest Authenticate sent for the running instance, and
 *   NULL when the next call is to send one. It goes when the instance that
 *   accepted it leaves the bus name (NameOwnerChanged: one match per client
 *   while a token is set; a subscription reports what its own match sees,
 *   as the order of match callbacks is not ours) and when it failed, so
 *   that the next call tries again. Only a proof that was accepted or is
 *   still unanswered is ever held there.
 * - A synchronous call waits anyway, so it waits for the Authenticate
 *   first: a token the instance refuses fails the call with the service's
 *   own answer, and the call is not sent.
 * - An asynchronous call (a send, the Subscribe of a subscription attaching
 *   itself again) must not block the event loop: the Authenticate goes out
 *   right before it, unanswered. The bus keeps the order of one
 *   connection's messages and the service handles them in order, so the
 *   call finds the rights in place. The service answers a refused
 *   Authenticate only after a delay, after the refusal of the call behind
 *   it; so an AccessDenied reply to a call behind an unanswered Authenticate
 *   is held until that is answered (and so is every later reply behind the
 *   same one, to keep their order), and reported as the Authenticate's
 *   failure if it failed.
 * - One race is left: the instance dies between two calls and the next one
 *   reaches its successor before the client has dispatched the
 *   NameOwnerChanged (a synchronous call dispatches nothing while it
 *   waits). A synchronous call refused with AccessDenied therefore asks the
 *   bus who owns the name now; when that is not the instance that accepted
 *   the proof, it proves the token again and makes the call once more,
 *   which is safe because a refused call did nothing. An asynchronous call
 *   in that race fails with AccessDenied.
 *
 * A call built on the client's direct connection (direct.c) goes without
 * any of this: the connection got the rights of the bus connection when it
 * was opened, after the proof, and it dies with the instance that knows
 * them.
 */

#include "durabus-private.h"

/* One Authenticate, shared by the client and the calls sent behind it. */
struct AuthProof {
        unsigned n_ref;
        DurabusClient *client;          /* not owning: the bus, and with it the answer, goes first */
        bool answered;
        int error;                      /* its negative errno when it failed, else 0 */
        sd_bus_error bus_error;         /* set when it failed */
        char *instance;                 /* the unique name that accepted it; NULL: unknown (out of memory) */
};

/* One asynchronous call. The slot of the call owns it until the reply came;
 * a held reply makes it the client's (c->held) until the proof is
 * answered. The client's, not the proof's: a message references its bus,
 * and the bus owns the proof's slot, so held by the proof it would keep the
 * bus alive after the client is freed, and with it itself. */
struct ClientCall {
        DurabusClient *client;
        client_reply_handler_t handler; /* NULL once called or canceled */
        void *userdata;
        AuthProof *proof;               /* ahead of the call and unanswered when it was sent */
        sd_bus_message *held_reply;
        ClientCall *next_held;
};

static AuthProof *proof_new(DurabusClient *c) {
        AuthProof *proof = calloc(1, sizeof(AuthProof));

        if (proof)
                *proof = (AuthProof) { .n_ref = 1, .client = c };
        return proof;
}

static AuthProof *proof_ref(AuthProof *proof) {
        proof->n_ref++;
        return proof;
}

static AuthProof *proof_unref(AuthProof *proof) {
        if (!proof || --proof->n_ref > 0)
                return NULL;

        sd_bus_error_free(&proof->bus_error);
        free(proof->instance);
        free(proof);
        return NULL;
}

static void proof_unrefp(AuthProof **proof) {
        proof_unref(*proof);
}

/* Who accepted it, as the reply says. Out of memory it stays unknown,
 * which every departure is taken to concern. */
static void proof_accepted(AuthProof *proof, sd_bus_message *reply) {
        const char *sender = sd_bus_message_get_sender(reply);

        proof->answered = true;
        proof->instance = sender ? strdup(sender) : NULL;
}

static char *erase_and_free(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
        return NULL;
}

static void erase_and_freep(char **s) {
        erase_and_free(*s);
}

static int new_authenticate_call(sd_bus *bus, const char *token, sd_bus_message **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = bus_new_method_call(bus, BROKER_PATH, BROKER_INTERFACE, "Authenticate", &call, ret_error);
        if (r < 0)
                return r;

        /* sd-bus erases the memory of the message when it frees it. */
        r = sd_bus_message_sensitive(call);
        if (r < 0)
                return fail_errno(ret_error, r);

        /* The token itself is never quoted. */
        r = sd_bus_message_append(call, "s", token);
        if (r < 0)
                return r == -EINVAL ? fail_invalid_args(ret_error, "The token is not valid UTF-8")
                                    : fail_errno(ret_error, r);

        *ret = TAKE_PTR(call);
        return 0;
}

/* ---- Waiting for a reply ------------------------------------------------ */

/* One call, one reply, no proof. */
static int call_wait(sd_bus_message *call, sd_bus_message **ret_reply, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call(sd_bus_message_get_bus(call), call, 0, &error, &reply);
        if (r < 0) {
                /* sd-bus knows none of durabus's error names and would call
                 * them all -EIO; the name decides, when there is one. */
                if (sd_bus_error_is_set(&error))
                        r = errno_from_bus_error(&error);
                else
                        (void) sd_bus_error_set_errno(&error, r);
                (void) sd_bus_error_move(ret_error, &error);
                return r;
        }

        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return 0;
}

/* Proves token and waits for the answer; *ret is the accepted proof. */
static int prove_wait(DurabusClient *c, const char *token, AuthProof **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        AuthProof *proof;
        int r;

        r = new_authenticate_call(c->bus, token, &call, ret_error);
        if (r < 0)
                return r;

        r = call_wait(call, &reply, ret_error);
        if (r < 0)
                return r;

        proof = proof_new(c);
        if (!proof)
                return fail_errno(ret_error, -ENOMEM);
        proof_accepted(proof, reply);

        *ret = proof;
        return 0;
}

/* Unless the running instance accepted the token, or there is none. */
static int prove_wait_if_needed(DurabusClient *c, sd_bus_error *ret_error) {
        AuthProof *proof;
        int r;

        if (!c->token || (c->proof && c->proof->answered))
                return 0;

        r = prove_wait(c, c->token, &proof, ret_error);
        if (r < 0)
                return r;

        proof_unref(c->proof);
        c->proof = proof;
        return 0;
}

/* Whether the instance that accepted the proof no longer owns the name, so
 * that a call refused just now may have reached its successor. */
static bool proof_outdated(DurabusClient *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *owner;

        if (!c->proof || !c->proof->instance)
                return true;

        /* No owner at all (the error) is a change too. */
        if (sd_bus_call_method(c->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetNameOwner", NULL, &reply, "s", DURABUS_BUS_NAME) < 0 ||
            sd_bus_message_read(reply, "s", &owner) < 0)
                return true;

        return !streq(owner, c->proof->instance);
}

/* The same call again: a message is sent only once. */
static int copy_call(DurabusClient *c, sd_bus_message *call, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *copy = NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &copy, sd_bus_message_get_destination(call),
                                           sd_bus_message_get_path(call), sd_bus_message_get_interface(call),
                                           sd_bus_message_get_member(call));
        if (r >= 0)
                r = sd_bus_message_rewind(call, true);
        if (r >= 0)
                r = sd_bus_message_copy(copy, call, true);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(copy);
        return 0;
}

/* Whether call goes over the bus, rather than the direct connection. */
static bool over_bus(DurabusClient *c, sd_bus_message *call) {
        return sd_bus_message_get_bus(call) == c->bus;
}

int client_call(DurabusClient *c, sd_bus_message *call, sd_bus_message **ret_reply, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *again = NULL;
        int r;

        if (!over_bus(c, call))
                return call_wait(call, ret_reply, ret_error);

        r = prove_wait_if_needed(c, ret_error);
        if (r < 0)
                return r;

        r = call_wait(call, ret_reply, &error);
        if (r >= 0 || !c->token || !sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED) ||
            !proof_outdated(c) || copy_call(c, call, &again) < 0) {
                (void) sd_bus_error_move(ret_error, &error);
                return r;
        }

        /* Refused by a successor of the instance that accepted the proof:
         * prove the token to it, and ask again. */
        c->proof = proof_unref(c->proof);
        r = prove_wait_if_needed(c, ret_error);
        if (r < 0)
                return r;

        return call_wait(again, ret_reply, ret_error);
}

/* ---- Answered through a handler ----------------------------------------- */

/* sd_bus_call_async() with a slot the bus owns until the reply came or the
 * bus is freed, and then calls destroy. On failure neither callback is
 * ever called. */
static int call_async_floating(sd_bus_message *call, sd_bus_message_handler_t callback, sd_bus_destroy_t destroy,
                               void *userdata) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        int r;

        r = sd_bus_call_async(sd_bus_message_get_bus(call), &slot, call, callback, userdata, 0);
        if (r < 0)
                return r;

        /* Dropped on failure before destroy is set, so nothing is called. */
        r = sd_bus_slot_set_floating(slot, 1);
        if (r < 0)
                return r;

        /* Fails for a NULL slot only. */
        (void) sd_bus_slot_set_destroy_callback(slot, destroy);
        return 0;
}

static void client_call_free(ClientCall *call) {
        proof_unref(call->proof);
        sd_bus_message_unref(call->held_reply);
        free(call);
}

static void client_call_freep(ClientCall **call) {
        if (*call)
                client_call_free(*call);
}

/* Calls the handler with the reply, or with the failure of the proof ahead
 * of the call when that is why the service refused it. The handler may drop
 * the last reference of the client: nothing is touched afterwards. */
static void call_complete(ClientCall *call, sd_bus_message *reply) {
        client_reply_handler_t handler = call->handler;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int error = 0;

        call->handler = NULL;
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) && call->proof && call->proof->error < 0) {
                error = call->proof->error;
                e = &call->proof->bus_error;
        } else if (e)
                error = errno_from_bus_error(e);

        handler(call->client, reply, error, e, call->userdata);
}

/* Frees the call; a handler still owed its answer is told that the client
 * is being freed. */
static void call_end(ClientCall *call) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (call->handler) {
                (void) sd_bus_error_set_errno(&error, -ECANCELED);
                call->handler(NULL, NULL, -ECANCELED, &error, call->userdata);
        }
        client_call_free(call);
}

/* Unlinks the oldest call held for proof from c->held, proof NULL: for any
 * proof. */
static ClientCall *take_held(DurabusClient *c, const AuthProof *proof) {
        for (ClientCall **i = &c->held; *i; i = &(*i)->next_held)
                if (!proof || (*i)->proof == proof) {
                        ClientCall *call = *i;

                        *i = call->next_held;
                        return call;
                }
        return NULL;
}

static int on_proof_reply(sd_bus_message *reply, void *userdata, _unused_ sd_bus_error *ret_error) {
        AuthProof *proof = userdata;
        DurabusClient *c = proof->client;
        ClientCall *call;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                proof->answered = true;
                proof->error = errno_from_bus_error(e);
                (void) sd_bus_error_copy(&proof->bus_error, e);
                /* The next call tries again. The slot still holds a
                 * reference. */
                if (c->proof == proof)
                        c->proof = proof_unref(c->proof);
        } else
                proof_accepted(proof, reply);

        /* A handler may drop the application's last reference, or cancel
         * another held call: look again from the start each time. */
        durabus_client_ref(c);
        while ((call = take_held(c, proof))) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *held = TAKE_PTR(call->held_reply);

                call_complete(call, held);
                client_call_free(call);
        }
        durabus_client_unref(c);
        return 0;
}

/* Answered, or the client is being freed, which ended what it held. */
static void proof_slot_destroy(void *userdata) {
        proof_unref(userdata);
}

/* Sends an Authenticate without waiting, unless one was sent for the
 * running instance already. */
static int prove_async_if_needed(DurabusClient *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(proof_unrefp) AuthProof *proof = NULL;
        int r;

        if (!c->token || c->proof)
                return 0;

        r = new_authenticate_call(c->bus, c->token, &call, NULL);
        if (r < 0)
                return r;

        proof = proof_new(c);
        if (!proof)
                return -ENOMEM;

        r = call_async_floating(call, on_proof_reply, proof_slot_destroy, proof);
        if (r < 0)
                return r;

        /* One reference for the slot, ours for the client. */
        proof_ref(proof);
        c->proof = TAKE_PTR(proof);
        return 0;
}

/* Refused while the proof ahead of it is unanswered, or behind another call
 * held for the same proof. */
static bool must_hold(const ClientCall *call, sd_bus_message *reply) {
        const AuthProof *proof = call->proof;
        bool behind = false;

        if (!proof || proof->answered)
                return false;

        for (const ClientCall *i = call->client->held; i && !behind; i = i->next_held)
                behind = i->proof == proof;
        return behind || sd_bus_error_has_name(sd_bus_message_get_error(reply), SD_BUS_ERROR_ACCESS_DENIED);
}

static int on_call_reply(sd_bus_message *reply, void *userdata, _unused_ sd_bus_error *ret_error) {
        ClientCall *call = userdata;
        ClientCall **tail;

        if (!call->handler)
                return 0;

        if (!must_hold(call, reply)) {
                call_complete(call, reply);
                return 0;
        }

        call->held_reply = sd_bus_message_ref(reply);
        for (tail = &call->client->held; *tail; tail = &(*tail)->next_held)
                ;
        *tail = call;
        return 0;
}

/* Ends with its slot, unless its reply is held. */
static void call_slot_destroy(void *userdata) {
        ClientCall *call = userdata;

        if (!call->held_reply)
                call_end(call);
}

int client_call_async(DurabusClient *c, sd_bus_message *m, client_reply_handler_t handler, void *userdata,
                      ClientCall **ret) {
        _cleanup_(client_call_freep) ClientCall *call = NULL;
        int r;

        if (over_bus(c, m)) {
                r = prove_async_if_needed(c);
                if (r < 0)
                        return r;
        }

        call = calloc(1, sizeof(ClientCall));
        if (!call)
                return -ENOMEM;
        *call = (ClientCall) { .client = c, .handler = handler, .userdata = userdata };
        /* An accepted proof can fail the call no more. */
        if (over_bus(c, m) && c->proof && !c->proof->answered)
                call->proof = proof_ref(c->proof);

        r = call_async_floating(m, on_call_reply, call_slot_destroy, call);
        if (r < 0)
                return r;

        if (ret)
                *ret = call;
        TAKE_PTR(call);
        return 0;
}

void client_call_cancel(ClientCall *call) {
        ClientCall **i;

        if (!call)
                return;

        /* Waiting with its reply: nothing else holds it. */
        if (call->held_reply) {
                for (i = &call->client->held; *i != call; i = &(*i)->next_held)
                        ;
                *i = call->next_held;
                client_call_free(call);
                return;
        }

        /* Its slot frees it, when the reply comes or the bus goes. */
        call->handler = NULL;
}

/* ---- The token ---------------------------------------------------------- */

void client_service_left(DurabusClient *c, const char *old_owner) {
        client_direct_service_left(c);

        /* An unanswered proof stays: its answer tells whom it reached, and
         * the bus announces a departure only after everything the instance
         * sent, its answers included. */
        if (c->proof && c->proof->answered && (!c->proof->instance || streq(c->proof->instance, old_owner)))
                c->proof = proof_unref(c->proof);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        DurabusClient *c = userdata;
        const char *name, *old_owner, *new_owner;

        if (!streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus"))
                return 0;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, DURABUS_BUS_NAME))
                return 0;

        if (!isempty(old_owner))
                client_service_left(c, old_owner);
        return 0;
}

_public_ int durabus_client_authenticate(DurabusClient *c, const char *token, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *owner_slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *direct_call = NULL;
        _cleanup_(erase_and_freep) char *copy = NULL;
        AuthProof *proof;
        int r;

        if (!c)
                return fail_invalid_args(ret_error, "No client given");
        if (isempty(token))
                return fail_invalid_args(ret_error, "No token given");

        copy = strdup(token);
        if (!copy)
                return fail_errno(ret_error, -ENOMEM);

        /* Watched from before the proof is sent, so that the departure of
         * the instance that accepts it cannot go unseen. */
        if (!c->owner_slot) {
                r = sd_bus_add_match(c->bus, &owner_slot, NAME_OWNER_CHANGED_MATCH, on_owner_changed, c);
                if (r < 0)
                        return fail_errno(ret_error, r);
        }

        r = prove_wait(c, copy, &proof, ret_error);
        if (r < 0)
                return r;

        /* A direct connection got the rights of the bus connection when it
         * opened, and takes the new ones from its own Authenticate. The
         * instance accepted the token just now; should the connection have
         * closed meanwhile, the next one gets them when it opens. */
        if (sd_bus_is_open(c->direct) > 0 && new_authenticate_call(c->direct, copy, &direct_call, NULL) >= 0)
                (void) call_wait(direct_call, NULL, NULL);

        if (owner_slot)
                c->owner_slot = TAKE_PTR(owner_slot);
        erase_and_free(c->token);
        c->token = TAKE_PTR(copy);
        proof_unref(c->proof);
        c->proof = proof;
        return 0;
}

void client_forget_token(DurabusClient *c) {
        ClientCall *call;

        while ((call = take_held(c, NULL)))
                call_end(call);
        c->owner_slot = sd_bus_slot_unref(c->owner_slot);
        c->proof = proof_unref(c->proof);
        c->token = erase_and_free(c->token);
}
