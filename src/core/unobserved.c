/*
 * The process's handler of failures nobody observed: crew_set_unobserved.
 *
 * A failed future that is freed with its `observed` flag clear reports
 * its error here (future.c's destroy_now()), on the thread that released
 * it, outside every library lock. Such reports are rare (a program that
 * looks at its failures makes none), so the handler is read under a
 * mutex, which keeps the handler and its user pointer together; an
 * atomic flag spares the mutex when no handler is installed.
 *
 * crew_set_unobserved() must not return while a call of the handler it
 * replaces is in progress. Calls are counted per installation, in two
 * slots by the parity of `installs`: a setter swaps the handler, which
 * sends later calls to the other slot, and waits for its old slot to
 * drain. Setters take turns (`setting`), each waiting for its own old
 * slot before the next begins, so two installations never share a slot
 * while calls of the older one are still counted.
 */
#include "core/future.h"

#include "base/platform.h"

#include <pthread.h>
#include <stdatomic.h>

static pthread_mutex_t setting = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the rest */
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER;
static crew_unobserved_fn handler;
static void *handler_user;
static unsigned long installs;
static size_t calls[2]; /* in progress, by installation's parity */
/* A handler is installed: a hint, the mutex decides. */
static atomic_bool installed;

void
crew__unobserved_report(const crew_error *error)
{
    crew_unobserved_fn fn;
    void *user;
    size_t slot;

    /* Relaxed: a report racing the first installation may miss it, as it
     * would had it come a moment sooner; the rest is read under the lock. */
    if (!atomic_load_explicit(&installed, memory_order_relaxed))
        return;
    pthread_mutex_lock(&lock);
    fn = handler;
    user = handler_user;
    slot = installs % 2;
    if (fn != NULL)
        calls[slot]++;
    pthread_mutex_unlock(&lock);
    if (fn == NULL)
        return;
    fn(error, user);
    pthread_mutex_lock(&lock);
    if (--calls[slot] == 0)
        pthread_cond_broadcast(&drained);
    pthread_mutex_unlock(&lock);
}

void
crew_set_unobserved(crew_unobserved_fn fn, void *user)
{
    /* Waiting for the old handler's calls is no cancellation point: a
     * setter cancelled there would leave `setting` locked. */
    int state = crew__nocancel_begin();
    size_t old;

    pthread_mutex_lock(&setting);
    pthread_mutex_lock(&lock);
    old = installs % 2;
    handler = fn;
    handler_user = user;
    installs++;
    atomic_store_explicit(&installed, fn != NULL, memory_order_relaxed);
    while (calls[old] != 0)
        pthread_cond_wait(&drained, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&setting);
    crew__nocancel_end(state);
}
