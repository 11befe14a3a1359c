/**
 * @file crew.h
 * @brief crew: a C11 thread-pool futures library.
 *
 * A fixed pool of worker threads runs submitted closures (a function and
 * its argument) and hands back futures. crew_when_all() joins many futures
 * without spending a thread, and its aggregate error collects every failure
 * with the position of the input that failed.
 *
 * Conventions, true of every function below:
 * - Functions that can fail return @c int: 0 on success, otherwise a positive
 *   @c errno value or ::CREW_EAGGREGATE. Bad input (a NULL handle, a NULL
 *   function, @c n > 0 with a NULL array or a NULL entry) returns @c EINVAL
 *   and changes nothing. Nothing aborts or prints, and no failure leaks.
 * - A function that hands out a ::crew_future or ::crew_error through an
 *   out-parameter gives the caller one reference, dropped with the matching
 *   @c _release. Out-parameters are set to NULL on error. Pointers returned
 *   by value from accessors are borrowed: valid while the caller holds its
 *   reference to the object they came from.
 * - Times are relative, in nanoseconds; ::CREW_FOREVER waits without limit.
 * - Every function is safe to call from any thread at any time, except
 *   crew_pool_destroy() racing other calls on the same pool.
 *
 * Memory the library keeps between calls: while any pool exists, each
 * thread keeps up to 64 freed future blocks (96 bytes each) for its next
 * submissions, so that steady state does not call @c malloc. A thread's
 * blocks are freed when it exits, those of the thread that destroys the
 * last pool then, and with no pool left a freed block goes straight back
 * to @c free(). So a program that destroys its pools before it exits
 * leaves nothing behind (valgrind's @c --errors-for-leak-kinds=all passes
 * on it); what can stay is the cache of another thread still running at
 * exit, at most 64 blocks. A batch (crew_submit_each()) is one block of
 * its own, freed with its last future, never cached.
 */
#ifndef CREW_H
#define CREW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Marks the library's exported functions: default visibility in a
 *        shared build, nothing when CREW_STATIC is defined (as the static
 *        library's CMake target and crew.pc do).
 */
#if defined(CREW_STATIC)
#define CREW_API
#elif defined(__GNUC__)
#define CREW_API __attribute__((visibility("default")))
#else
#define CREW_API
#endif

/**
 * @brief Lets GCC and clang check a printf-style format: @p fmt is the
 *        position of the format parameter, @p args that of the first
 *        argument.
 */
#if defined(__GNUC__)
#define CREW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CREW_PRINTF(fmt, args)
#endif

/** @brief Major version: incompatible changes of the contract. */
#define CREW_VERSION_MAJOR 0
/** @brief Minor version: additions. */
#define CREW_VERSION_MINOR 1
/** @brief Patch version: fixes. */
#define CREW_VERSION_PATCH 0

/** @brief A timeout that never expires. */
#define CREW_FOREVER UINT64_MAX

/**
 * @brief The code of an aggregate error: "one or more inputs failed".
 *
 * An @c int outside the range of @c errno values, so it never collides
 * with a code a task returns.
 */
#define CREW_EAGGREGATE 0x43524557

/** @brief A fixed set of worker threads. */
typedef struct crew_pool crew_pool;
/** @brief The outcome of a task, a combinator or a promise. */
typedef struct crew_future crew_future;
/** @brief The running task; valid only inside its function. */
typedef struct crew_task crew_task;
/** @brief An immutable failure, possibly an aggregate of others. */
typedef struct crew_error crew_error;

/**
 * @brief A task's function.
 *
 * Its return value decides the outcome: 0 succeeds (with the value given to
 * crew_task_return(), or NULL); @c ECANCELED once cancellation has been
 * requested is a cancellation; any other value fails with that code.
 */
typedef int (*crew_fn)(crew_task *task, void *arg);
/** @brief Frees an argument or a value. */
typedef void (*crew_free_fn)(void *p);
/** @brief Runs once a future has resolved. */
typedef void (*crew_callback)(crew_future *future, void *user);

/** @brief Where a future stands. */
typedef enum crew_state {
    CREW_PENDING,   /**< queued, or waiting on its inputs       */
    CREW_RUNNING,   /**< its function is executing              */
    CREW_SUCCEEDED, /**< resolved with a result                 */
    CREW_FAILED,    /**< resolved with an error                 */
    CREW_CANCELLED  /**< resolved without running to completion */
} crew_state;

/** @brief How crew_pool_shutdown() treats the tasks still queued. */
typedef enum crew_shutdown {
    CREW_DRAIN, /**< run them, and the tasks they submit */
    CREW_CANCEL /**< resolve them cancelled, unrun        */
} crew_shutdown;

/**
 * @brief The library's version, "MAJOR.MINOR.PATCH".
 *
 * @return a static string; never NULL.
 * @note Thread safety: any thread.
 */
CREW_API const char *crew_version(void);

/* ------------------------------------------------------------------ */
/* Pools                                                              */
/* ------------------------------------------------------------------ */

/**
 * @brief How to build a pool. A zeroed struct, or NULL, means every default.
 */
typedef struct crew_pool_options {
    /** Worker threads; 0: the number of online CPUs. */
    unsigned threads;
    /** 0: unbounded; else at most this many tasks wait to run. */
    size_t max_queued;
    /** Worker thread-name prefix (copied); NULL: "crew". */
    const char *name;
    /** Stack size of each worker in bytes; 0: the system default. */
    size_t stack_size;
    /** Runs on each worker before it takes any task; may be NULL. */
    void (*on_thread_start)(crew_pool *pool, unsigned worker, void *user);
    /** Runs on each worker after its last task, before it exits. */
    void (*on_thread_stop)(crew_pool *pool, unsigned worker, void *user);
    /** Passed to both hooks. */
    void *user;
    /** Room for options of later versions: zero (a zeroed struct, or
     * designated initializers, leave it so). crew_pool_create() rejects
     * anything else with EINVAL, so a program built for a later version
     * that sets one fails here, clearly. */
    void *reserved[6];
} crew_pool_options;

/**
 * @brief Start a pool of worker threads.
 *
 * Workers are named "<name>-<index>" (truncated to what the system allows)
 * and block every asynchronous signal, so a program's handlers never run on
 * them. The calling thread's signal mask is left as it was.
 *
 * Ownership: on success @p *pool is the caller's, to be ended with
 * crew_pool_destroy().
 *
 * @param pool     receives the new pool; NULL on error
 * @param options  NULL, or the options (copied; need not outlive the call)
 * @return 0; EINVAL if @p pool is NULL, @p stack_size is below the
 *         system minimum, or a reserved field is not zero; ENOMEM; EAGAIN
 *         if a thread could not be created (the
 *         threads already started are stopped and joined first).
 * @note Thread safety: any thread.
 */
CREW_API int crew_pool_create(crew_pool **pool,
                              const crew_pool_options *options);

/**
 * @brief Stop accepting tasks and wait for the workers to exit.
 *
 * From the call on, crew_submit() returns ESHUTDOWN, except that under
 * ::CREW_DRAIN a task running on this pool may still submit to it.
 * ::CREW_DRAIN runs every task already queued, including the tasks those
 * tasks submit. ::CREW_CANCEL resolves every queued task as
 * ::CREW_CANCELLED without running it (its @c arg_free runs) and makes
 * crew_task_cancelled() true for the running ones. Both then wait for the
 * workers to exit, spare ones included (see crew_future_wait()). Submitters
 * waiting for room wake with ESHUTDOWN.
 *
 * A second call, even a concurrent one, returns 0 once the workers have
 * exited and does not change how the first shuts down.
 *
 * @param pool  the pool
 * @param how   ::CREW_DRAIN or ::CREW_CANCEL
 * @return 0; EINVAL for a NULL pool or another @p how; EDEADLK when called
 *         from one of the pool's own workers; ESHUTDOWN in a child process
 *         after fork(), where the pool has no workers.
 * @note Thread safety: any thread but the pool's workers.
 */
CREW_API int crew_pool_shutdown(crew_pool *pool, crew_shutdown how);

/**
 * @brief Shut a pool down (::CREW_DRAIN, if not done yet) and free it.
 *
 * Futures outlive their pool: they stay readable until their last
 * reference is released. Called from one of the pool's own workers it does
 * not wait: it starts a ::CREW_DRAIN shutdown, and the pool frees itself
 * when its last worker exits. In a child process after fork() it frees the
 * pool without joining the workers, which the child does not have.
 *
 * Memory kept between calls: while any pool exists, each thread keeps up
 * to 64 freed future blocks (about 100 bytes each) for its next
 * submissions, so that steady state never calls malloc. A thread's blocks
 * are freed when it exits, and those of the thread that destroys the last
 * pool at that moment; once no pool exists, freed blocks go straight back
 * to free(). A program that destroys its pools before it exits thus
 * leaves nothing behind (valgrind: no "still reachable" block), except in
 * threads other than the destroying one that are still running at exit:
 * at most 64 blocks each.
 *
 * @param pool  the pool, or NULL (nothing is done)
 * @note Thread safety: must not race other calls on the same pool.
 */
CREW_API void crew_pool_destroy(crew_pool *pool);

/**
 * @brief The number of worker threads of @p pool.
 *
 * @return the count; 0 for a NULL pool.
 * @note Thread safety: any thread.
 */
CREW_API unsigned crew_pool_threads(const crew_pool *pool);

/**
 * @brief What a pool is doing: a snapshot from crew_pool_stats_get().
 */
typedef struct crew_pool_stats {
    unsigned threads;   /**< workers */
    unsigned busy;      /**< workers running a task now */
    size_t queued;      /**< tasks waiting to run now */
    uint64_t submitted; /**< tasks accepted since the pool was created */
    uint64_t succeeded; /**< tasks that ran and succeeded */
    uint64_t failed;    /**< tasks that ran and failed */
    uint64_t cancelled; /**< tasks resolved cancelled, run or not */
    uint64_t stolen;    /**< tasks a worker took from another's queue */
    /** Room for counters of later versions, which a program built for
     * this one never reads: filled with zeros. */
    uint64_t reserved[8];
} crew_pool_stats;

/**
 * @brief Fill @p stats with what @p pool is doing and has done.
 *
 * The counters need not be consistent with each other while tasks run (a
 * task may be counted as submitted and not yet as queued); once the pool
 * is idle, or shut down, submitted = succeeded + failed + cancelled. A
 * task that runs is counted in @c succeeded or @c failed before its
 * future resolves. A task cancelled in its queue resolves at once, but
 * leaves @c queued and enters @c cancelled when a worker takes it out of
 * its queue: within the time a worker takes to look, and by the end of a
 * shutdown at the latest. Continuations count as tasks once queued (one cancelled while it
 * waits for its input counts nowhere), and crew_parallel_for() chunks
 * count as tasks once the loop returns; the loop's helpers count as
 * none. Reading
 * costs the pool nothing per task: each worker keeps counters of its own,
 * summed here.
 *
 * @param pool   the pool (until crew_pool_destroy(), shut down or not)
 * @param stats  receives the snapshot
 * @return 0; EINVAL for a NULL argument.
 * @note Thread safety: any thread.
 */
CREW_API int crew_pool_stats_get(const crew_pool *pool, crew_pool_stats *stats);

/* ------------------------------------------------------------------ */
/* Submitting work                                                    */
/* ------------------------------------------------------------------ */

/** @brief Submission flag: return EAGAIN instead of waiting for room. */
#define CREW_NONBLOCKING 0x1u

/**
 * @brief Queue @p fn(task, @p arg) on @p pool.
 *
 * The same as crew_submit_ex(pool, fn, arg, NULL, 0, future).
 */
CREW_API int crew_submit(crew_pool *pool, crew_fn fn, void *arg,
                         crew_future **future);

/**
 * @brief Queue @p fn(task, @p arg) on @p pool, with a destructor and flags.
 *
 * A task submitted from one of the pool's own workers goes on that
 * worker's deque, others on the pool's injection queue. When the pool has
 * a @c max_queued limit and that many tasks wait, the caller waits for room
 * (or gets EAGAIN with ::CREW_NONBLOCKING), except one of the pool's own
 * workers, which is never blocked: its task is queued anyway. Submitters
 * waiting for room are served in the order they began to wait, batches
 * (crew_submit_each()) included: while one waits, a newcomer waits
 * behind it, or gets EAGAIN, even when a place is free.
 *
 * @p arg_free(@p arg), when given, runs exactly once: after @p fn returns,
 * or when the task is cancelled before it ran; always before the future
 * resolves. On error @p fn never runs and @p arg_free is not called.
 *
 * Ownership: @p *future, when @p future is not NULL, is a reference for the
 * caller. Releasing it never cancels: the task still runs.
 *
 * @param pool      the pool
 * @param fn        the task's function
 * @param arg       passed to @p fn
 * @param arg_free  NULL, or frees @p arg
 * @param flags     0 or ::CREW_NONBLOCKING
 * @param future    NULL (fire and forget), or receives the task's future
 * @return 0; EINVAL (NULL pool or fn, unknown flags); ENOMEM; ESHUTDOWN
 *         (the pool is shutting down, or this is a child after fork());
 *         EAGAIN (::CREW_NONBLOCKING while @c max_queued tasks wait, or
 *         other submitters wait for room).
 * @note Thread safety: any thread, tasks included.
 */
CREW_API int crew_submit_ex(crew_pool *pool, crew_fn fn, void *arg,
                            crew_free_fn arg_free, unsigned flags,
                            crew_future **future);

/**
 * @brief A batch's task function: the task, its index in the batch, and
 *        the batch's shared argument.
 */
typedef int (*crew_each_fn)(crew_task *task, size_t index, void *arg);

/**
 * @brief Queue @p n tasks at once: task @c i runs @p fn(task, i, @p arg).
 *
 * The batch costs one allocation and one hand-over to the workers, not
 * one per task: from outside the pool its tasks are linked onto the
 * injection queue in one step, in index order; from one of the pool's
 * workers they go onto that worker's deque in one push, task 0 on top
 * (the worker runs them in index order, thieves take the last ones).
 * Each task is otherwise an ordinary task with a future of its own, to
 * wait on, cancel or release separately.
 *
 * All or nothing: on error no task of the batch runs, every slot of
 * @p futures is NULL and @p arg_free is not called; a shutdown racing
 * the call queues the whole batch or none of it. @p n == 0 returns 0,
 * queues nothing, and calls @p arg_free(@p arg) at once.
 *
 * With @c max_queued, the batch needs @p n places at once: it waits
 * until they are free (EAGAIN with ::CREW_NONBLOCKING), and nobody who
 * starts waiting for room after it overtakes it. From one of the pool's
 * own workers it is never blocked, and may exceed the limit, as
 * crew_submit_ex() does; with ::CREW_NONBLOCKING it then gets EAGAIN
 * while @p n places are not free (always, for @p n > @c max_queued).
 *
 * @p arg is shared by every task; @p arg_free(@p arg), when given, runs
 * once, after the batch's last task has resolved (on the thread that
 * took that task out of its queue).
 *
 * Ownership: when @p futures is not NULL, it has @p n slots and slot
 * @c i receives a reference to task @c i's future, for the caller
 * (crew_future_release_all() releases them). The slots are filled before
 * any task of the batch runs, so a task or @p arg_free may read them.
 *
 * @param pool      the pool
 * @param n         how many tasks
 * @param fn        the tasks' function
 * @param arg       passed to every call of @p fn
 * @param arg_free  NULL, or frees @p arg once every task resolved
 * @param flags     0 or ::CREW_NONBLOCKING
 * @param futures   NULL (fire and forget), or @p n slots for the futures
 * @return 0; EINVAL (NULL pool or fn, unknown flags, or, from outside the
 *         pool's workers, @p n greater than @c max_queued); ENOMEM;
 *         ESHUTDOWN; EAGAIN (::CREW_NONBLOCKING and no room for @p n now,
 *         or others waiting for room).
 * @note Thread safety: any thread, tasks included.
 */
CREW_API int crew_submit_each(crew_pool *pool, size_t n, crew_each_fn fn,
                              void *arg, crew_free_fn arg_free, unsigned flags,
                              crew_future **futures);

/* ------------------------------------------------------------------ */
/* Fork-join without futures: spawn and sync                          */
/* ------------------------------------------------------------------ */

/**
 * @brief Room for one spawned call, kept by its spawner, usually on its
 *        stack (crew_spawn()). Its size is part of the ABI; its contents
 *        are the library's.
 */
typedef struct crew_frame {
    void *crew__private[12]; /**< the library's; do not touch */
} crew_frame;

/**
 * @brief Fork @p fn(child, @p arg) off the running @p task, for another
 *        worker to take or for crew_sync() to run.
 *
 * The call's frame is @p frame, kept by the caller until the matching
 * crew_sync(): no allocation, no reference count. On one of the pool's
 * workers the call goes on that worker's queue of spawned calls, where
 * idle workers may take it; when that queue cannot take it, or the
 * caller is not one of the pool's workers (a crew_parallel_for() chunk
 * run by the thread that called it), @p fn runs at once, before
 * crew_spawn() returns.
 *
 * That queue is split, as Lace's is: a spawn that finds none of the
 * worker's calls up for taking offers the older half of those it keeps
 * (this one when it is the only one); otherwise a call may stay private to the worker
 * until an idle worker asks for work and the spawner next spawns, syncs
 * or waits in the library (a wait offers the calls kept private, or runs
 * them). So a spawn and an untaken sync need no atomic instruction, but
 * a spawner must not spin, outside the library, for a call to start.
 *
 * The call acts for its spawner: crew_task_cancelled() and
 * crew_task_pool() in it answer as they do in @p task. It always runs,
 * even after its spawner's cancellation or in a ::CREW_CANCEL shutdown.
 * A value given to crew_task_return() in it is released at once: results
 * travel through @p arg.
 *
 * Every spawn must be synced, in the reverse order of spawning, by the
 * same invocation of the task, before it returns; returning with a spawn
 * not synced is undefined behaviour (a thief may write into the dead
 * frame). Error paths must sync first.
 *
 * @param task   the calling thread's running task (a submitted task, a
 *               continuation, a loop's chunk, a spawned call)
 * @param frame  the call's frame, alive until crew_sync()
 * @param fn     the call
 * @param arg    passed to @p fn
 * @return 0; EINVAL (NULL @p task, @p frame or @p fn, or @p task not the
 *         calling thread's running task).
 * @note Thread safety: only inside @p task's function.
 */
CREW_API int crew_spawn(crew_task *task, crew_frame *frame, crew_fn fn,
                        void *arg);

/**
 * @brief Join the latest spawn of @p task: what its @p fn returned.
 *
 * If no other worker took the call, it runs here. Otherwise, while it
 * runs elsewhere, the caller runs only spawned calls, those of the worker
 * running it first, or sleeps; it never runs submitted tasks here, so
 * the sync lasts no longer than the call's own work. On return the
 * caller sees everything the call wrote, and no queue refers to
 * @p frame any more.
 *
 * When the call failed (returned nonzero), its code is returned and its
 * message becomes @p task's, as if @p task had recorded it with
 * crew_task_fail(), replacing what @p task had recorded (a failing call
 * that recorded none clears it, so the default message applies): so
 * @c "return crew_sync(task, &frame);" passes code and message on. A call
 * that returned 0 passes nothing.
 *
 * Statistics count a spawned call only when another worker took it: then
 * in @c submitted, @c stolen and its outcome.
 *
 * @param task   the calling thread's running task, which spawned @p frame
 * @param frame  its latest spawn not yet synced
 * @return the call's code; EINVAL (NULL @p task or @p frame, @p task not
 *         the calling thread's running task, @p frame not its latest
 *         unsynced spawn: nothing is synced).
 * @note Thread safety: only inside @p task's function.
 */
CREW_API int crew_sync(crew_task *task, crew_frame *frame);

/* ------------------------------------------------------------------ */
/* Inside a task                                                      */
/* ------------------------------------------------------------------ */

/**
 * @brief Set the value the task succeeds with.
 *
 * Called twice, keeps the second value and releases the first with its
 * @p value_free. @p value_free(@p value) runs once the future's last
 * reference is released, or when the task resolves, if it did not succeed.
 *
 * @param task        the running task (nothing is done if NULL)
 * @param value       the result
 * @param value_free  NULL, or frees @p value
 * @note Thread safety: only inside the task's function.
 */
CREW_API void crew_task_return(crew_task *task, void *value,
                               crew_free_fn value_free);

/**
 * @brief Make the task's result a copy of the @p size bytes at @p value.
 *
 * The copy is the future's: crew_future_result() then returns a pointer to
 * it, aligned for any type (@c max_align_t) and borrowed like every
 * accessor's result, and crew_future_result_size() returns @p size. Up to
 * 16 bytes are kept inside the future, so returning a scalar never
 * allocates; a larger copy is allocated, and ENOMEM leaves the task's
 * result as it was. Called again, or mixed with crew_task_return(), the
 * last call wins and the value it replaces is released (its
 * @c value_free runs for a pointer value). If the task does not succeed,
 * the copy is discarded.
 *
 * @param task   the running task
 * @param value  the bytes to copy; may be NULL when @p size is 0
 * @param size   how many; 0 gives a NULL result of size 0
 * @return 0; EINVAL for a NULL task, or a NULL @p value with @p size > 0;
 *         ENOMEM.
 * @note Thread safety: only inside the task's function.
 */
CREW_API int crew_task_return_copy(crew_task *task, const void *value,
                                   size_t size);

/**
 * @brief Record why the task fails, printf-style, and return @p code.
 *
 * The message is kept whole, however long; a later call replaces it. It
 * becomes the failure's message if the function returns a code other than
 * 0 (and other than ECANCELED after a cancellation request), so a task may
 * write <tt>return crew_task_fail(task, ENOENT, "open %s", path);</tt>.
 * Without a recorded message the failure's message is crew_strerror(code)
 * for a code crew_strerror() knows, else "error <code>"; crew_error_format()
 * does not print such a message twice. If memory runs out, the failure keeps its code and a fixed message
 * saying the rest was lost.
 *
 * @param task    the running task
 * @param code    returned as it is
 * @param format  printf format of the message; NULL forgets a recorded one
 * @return @p code; EINVAL if @p task is NULL.
 * @note Thread safety: only inside the task's function.
 */
CREW_API int crew_task_fail(crew_task *task, int code, const char *format, ...)
    CREW_PRINTF(3, 4);

/**
 * @brief Whether cancellation of the running task has been requested.
 *
 * True after crew_future_cancel() on its future, or once its pool is
 * shutting down with ::CREW_CANCEL. The task decides: returning ECANCELED
 * then resolves it ::CREW_CANCELLED.
 *
 * @return the answer; false for a NULL task.
 * @note Thread safety: only inside the task's function.
 */
CREW_API bool crew_task_cancelled(const crew_task *task);

/**
 * @brief The pool the task runs on, to submit more work to it.
 *
 * @return the pool (borrowed); NULL for a NULL task.
 * @note Thread safety: only inside the task's function.
 */
CREW_API crew_pool *crew_task_pool(const crew_task *task);

/* ------------------------------------------------------------------ */
/* Futures                                                            */
/* ------------------------------------------------------------------ */

/**
 * @brief Where @p future stands now.
 *
 * Reading a resolved state is an acquire: a thread that polls until it
 * sees ::CREW_SUCCEEDED may then read, without a race, whatever the task
 * wrote before it returned, as after a wait.
 *
 * @return its state; ::CREW_PENDING for a NULL future.
 * @note Thread safety: any thread.
 */
CREW_API crew_state crew_future_state(const crew_future *future);

/**
 * @brief Block until @p future resolves.
 *
 * On one of a pool's workers, waiting runs other queued tasks of that pool
 * meanwhile, so tasks that wait on tasks they submitted never deadlock a
 * fixed pool, however deep the nesting. Helping has two costs: a helping
 * worker may run an unrelated task, which must not need a lock the waiting
 * task holds; and a helped task that itself waits nests another frame on
 * the worker's stack. A worker helps as deep as its stack has room for:
 * while more than an eighth of its stack (at least 32 KiB, at most half)
 * lies free below the waiting frame. Past that the wait runs nothing and
 * sleeps until the future resolves; when every worker of the pool sleeps
 * so while work is queued, the pool starts a spare worker (a thread with
 * the pool's stack size, running the thread hooks with a worker number
 * from crew_pool_threads() on) to run it, and the spare exits once it
 * finds nothing more to do. So a wait never hangs for lack of a thread,
 * and deep nesting never overflows a worker's stack. A thread outside the
 * pools spins for some microseconds before it sleeps, since a short task
 * resolves sooner than a sleep would end.
 *
 * Not a cancellation point, nor is any crew call: a thread cancelled with
 * pthread_cancel() while inside one acts on it after the call returns.
 *
 * Ownership: borrows @p future.
 *
 * @return 0 if it succeeded, ECANCELED if it was cancelled, otherwise the
 *         failure's code; EINVAL if @p future is NULL; ESHUTDOWN at once
 *         in a child process after fork() for a task or continuation of
 *         a pool inherited from the parent, unresolved at the fork, which
 *         only the parent's threads could resolve.
 * @note Thread safety: any thread.
 */
CREW_API int crew_future_wait(crew_future *future);

/**
 * @brief Block until @p future resolves or @p timeout_ns has passed.
 *
 * As crew_future_wait(). ETIMEDOUT is never reported early: only after at
 * least @p timeout_ns has passed. A helping worker may overrun the timeout
 * by the length of the task it is running.
 *
 * @return as crew_future_wait(), or ETIMEDOUT.
 * @note Thread safety: any thread.
 */
CREW_API int crew_future_wait_for(crew_future *future, uint64_t timeout_ns);

/**
 * @brief The value of a succeeded future.
 *
 * @return the value (borrowed: valid while the caller holds its reference;
 *         its @c value_free runs with the last one), or, for a copied
 *         result (crew_task_return_copy(), crew_promise_resolve_copy()), a
 *         pointer to the copy, aligned for any type; else NULL.
 * @note Thread safety: any thread.
 */
CREW_API void *crew_future_result(const crew_future *future);

/**
 * @brief The size of a succeeded future's copied result.
 *
 * @return the size given to crew_task_return_copy() or
 *         crew_promise_resolve_copy(); 0 for a pointer result, a future
 *         that has not succeeded, or NULL.
 * @note Thread safety: any thread.
 */
CREW_API size_t crew_future_result_size(const crew_future *future);

/**
 * @brief Release every non-NULL @p futures[i], and set it to NULL.
 *
 * @param futures  the array (NULL: nothing is done)
 * @param n        its length
 * @note Thread safety: any thread.
 */
CREW_API void crew_future_release_all(crew_future **futures, size_t n);

/**
 * @brief The error of a failed or cancelled future.
 *
 * A cancelled future's error has code ECANCELED.
 *
 * @return the error (borrowed; crew_error_retain() keeps it longer), or
 *         NULL if @p future has not failed or been cancelled.
 * @note Thread safety: any thread.
 */
CREW_API const crew_error *crew_future_error(const crew_future *future);

/**
 * @brief Request cancellation.
 *
 * A queued task will not run: it is ::CREW_CANCELLED, its @c arg_free done,
 * before this returns, even while every worker is busy, and it no longer
 * counts against @c max_queued. A running task sees crew_task_cancelled()
 * become true and decides itself. A pending promise becomes
 * ::CREW_CANCELLED. A crew_when_all() or crew_when_any() future passes the
 * request to its inputs, the first time it is cancelled (its inputs keep
 * the request); a crew_when_all_ex() future does so even after it
 * resolved, so that a fail-fast join can stop the inputs still running
 * (it then returns EALREADY all the same). Called from a queued task's own
 * @c arg_free while that task is being cancelled (through a join with
 * ::CREW_CANCEL_REST, say), it returns 0 at once: the task resolves when
 * the @c arg_free returns. In a child process after fork(), a task still
 * queued in a pool inherited from the parent may be cancelled (it would
 * never run) only until crew_pool_destroy() frees that pool there.
 *
 * @return 0; EALREADY if @p future had already resolved; EINVAL if NULL.
 * @note Thread safety: any thread.
 */
CREW_API int crew_future_cancel(crew_future *future);

/**
 * @brief Run @p cb(@p future, @p user) once @p future has resolved.
 *
 * Runs exactly once: at once on the calling thread if the future has
 * already resolved, otherwise on the thread that resolves it. Callbacks
 * registered before resolution run in the order registered; one registered
 * after runs at once, possibly while earlier ones still run on the
 * resolving thread. A callback may release the future (the library holds
 * its own reference while it dispatches) and may submit work.
 *
 * @return 0; EINVAL (NULL future or cb); ENOMEM (then @p cb never runs).
 * @note Thread safety: any thread.
 */
CREW_API int crew_future_on_complete(crew_future *future, crew_callback cb,
                                     void *user);

/**
 * @brief Take another reference to @p future.
 *
 * Takes a const future, as crew_error_retain() takes a const error, so a
 * borrowed one can be kept.
 *
 * @return @p future (NULL for NULL).
 * @note Thread safety: any thread.
 */
CREW_API crew_future *crew_future_retain(const crew_future *future);

/**
 * @brief Drop a reference; the last one frees the future and its value.
 *
 * Releasing never cancels: a task whose future nobody holds still runs.
 * Two kinds of future have nothing left to do once nobody holds them. A
 * promise released unresolved resolves ::CREW_CANCELLED first, so its
 * callbacks run once (here, on the calling thread) and nothing leaks. A
 * join (crew_when_all(), crew_when_all_ex(), crew_when_any()) released
 * with no callback registered leaves nothing registered on inputs still
 * pending; one with a callback stays until it resolves and calls back.
 * Freeing a graph of futures however deep takes bounded stack.
 *
 * @param future  a reference the caller owns, or NULL (nothing is done)
 * @note Thread safety: any thread.
 */
CREW_API void crew_future_release(crew_future *future);

/* ------------------------------------------------------------------ */
/* Joining many futures                                               */
/* ------------------------------------------------------------------ */

/**
 * @brief A future that resolves once every input has resolved.
 *
 * It succeeds (result NULL: read the inputs) when all succeeded; else it
 * fails when any failed, with an error of code ::CREW_EAGGREGATE holding
 * one inner error per failed input position, in input order (cancelled
 * inputs add none); else it is cancelled. @p n == 0 gives a future that has
 * already succeeded. The same future may appear more than once. No thread
 * waits: the input that resolves last resolves it, and runs its callbacks,
 * inside its own resolution. Cancelling it passes the request to the
 * inputs.
 *
 * Ownership: the result holds its own references to the inputs (until its
 * last reference goes); the caller's stay the caller's. @p *all is one
 * reference for the caller. An input that never resolves (a promise never
 * resolved) keeps the result alive.
 *
 * @return 0; EINVAL (NULL @p all, NULL array with @p n > 0, NULL entry);
 *         ENOMEM.
 * @note Thread safety: any thread.
 */
CREW_API int crew_when_all(crew_future *const *futures, size_t n,
                           crew_future **all);

/** @brief crew_when_all_ex() flag: resolve at the first failure. */
#define CREW_FAIL_FAST 0x1u
/** @brief crew_when_all_ex() flag: at the first failure, cancel the
 *         inputs still unresolved. */
#define CREW_CANCEL_REST 0x2u

/**
 * @brief crew_when_all(), with a choice of what the first failure does.
 *
 * With @p flags 0 it is crew_when_all(). With ::CREW_FAIL_FAST the result
 * fails as soon as the first input fails (as @c asyncio.gather and
 * @c Promise.all reject), with an aggregate error holding that one failure
 * and its position; inputs that resolve later change nothing. When all
 * succeed, or some are cancelled and none fails, it resolves as
 * crew_when_all() would. ::CREW_CANCEL_REST requests, at the first failure,
 * the cancellation of every input not yet resolved; without
 * ::CREW_FAIL_FAST the result still waits for every input and holds every
 * failure (Python's @c TaskGroup: the safe form when tasks borrow the
 * caller's memory). When several inputs have already failed at the call,
 * the first is the lowest position. Cancelling the result passes the
 * request to its inputs, whatever the flags, and even after it resolved:
 * crew_future_cancel() on a fail-fast result that has failed returns
 * EALREADY and still stops the inputs still running.
 *
 * Ownership: as crew_when_all().
 *
 * @param futures  the inputs
 * @param n        how many
 * @param flags    0, or ::CREW_FAIL_FAST and ::CREW_CANCEL_REST, or-ed
 * @param all      receives the result (NULL on error)
 * @return 0; EINVAL (as crew_when_all(), and an unknown flag bit); ENOMEM.
 * @note Thread safety: any thread. The cancellations of ::CREW_CANCEL_REST
 *       run on the thread that resolved the failing input, as its
 *       callbacks do.
 */
CREW_API int crew_when_all_ex(crew_future *const *futures, size_t n,
                              unsigned flags, crew_future **all);

/**
 * @brief Block until every input has resolved.
 *
 * On a worker, helps as crew_future_wait() does. Elsewhere spins briefly
 * (some microseconds) while inputs resolve, then sleeps once, on a join of
 * the inputs still pending, never once per input; inputs that had all
 * resolved need no join at all.
 *
 * Ownership: borrows the inputs.
 *
 * @param futures  the inputs, as crew_when_all() takes them
 * @param n        how many
 * @param error  NULL, or receives a new reference to the aggregate error
 *               (NULL on success and on error)
 * @return 0 when all succeeded, otherwise ::CREW_EAGGREGATE or ECANCELED
 *         as crew_when_all() resolves; EINVAL; ENOMEM (then nothing was
 *         waited for: the join, or the aggregate of inputs that had all
 *         resolved, could not be allocated, or @p n is too large to
 *         allocate for: that is found before the array is read);
 *         ESHUTDOWN at once in a child process after fork() when an input
 *         is a pending task or continuation only the parent's threads
 *         could resolve.
 * @note Thread safety: any thread.
 */
CREW_API int crew_wait_all(crew_future *const *futures, size_t n,
                           crew_error **error);

/**
 * @brief crew_wait_all() with a limit of @p timeout_ns.
 *
 * Nothing is cancelled when the limit passes, and nothing of the call
 * stays registered on the inputs, so a loop that polls with a short limit
 * uses no more memory at each turn. A helping worker may overrun the
 * limit by the length of the task it is running.
 *
 * @return ETIMEDOUT (with @p *error NULL) when not every input resolved
 *         within @p timeout_ns; otherwise what crew_wait_all() returns.
 * @note Thread safety: any thread.
 */
CREW_API int crew_wait_all_for(crew_future *const *futures, size_t n,
                               uint64_t timeout_ns, crew_error **error);

/**
 * @brief A future that resolves as soon as the first input resolves.
 *
 * It succeeds, whatever the winner's outcome, with the winning input as
 * result: a borrowed pointer, kept alive by the caller's own reference.
 * When several inputs have already resolved, the lowest position wins.
 *
 * Ownership: as crew_when_all().
 *
 * @return 0; EINVAL (as crew_when_all(), and @p n == 0); ENOMEM.
 * @note Thread safety: any thread.
 */
CREW_API int crew_when_any(crew_future *const *futures, size_t n,
                           crew_future **any);

/**
 * @brief Block for at most @p timeout_ns until one input resolves.
 *
 * On a worker, helps as crew_future_wait() does. After ETIMEDOUT nothing
 * of the call stays registered on the inputs: a loop that polls with a
 * zero timeout uses no more memory at each turn.
 *
 * Ownership: borrows the inputs.
 *
 * @param futures     the inputs, as crew_when_any() takes them
 * @param n           how many, at least one
 * @param timeout_ns  the longest wait, in nanoseconds
 * @param index  receives the winner's position; untouched on ETIMEDOUT
 * @return 0; ETIMEDOUT; EINVAL (as crew_when_any(), and a NULL @p index);
 *         ENOMEM (then nothing was waited for); ESHUTDOWN at once in a
 *         child process after fork() when every pending input is a task
 *         or continuation only the parent's threads could resolve.
 * @note Thread safety: any thread.
 */
CREW_API int crew_wait_any(crew_future *const *futures, size_t n,
                           uint64_t timeout_ns, size_t *index);

/* ------------------------------------------------------------------ */
/* Continuations                                                      */
/* ------------------------------------------------------------------ */

/**
 * @brief A continuation's function: runs on a worker once @p input has
 *        resolved, whatever its outcome.
 *
 * @p input is borrowed for the call: read its state, result or error.
 * Otherwise the rules of ::crew_fn apply: return 0 to succeed (with
 * crew_task_return()), or an error code (with crew_task_fail()).
 */
typedef int (*crew_then_fn)(crew_task *task, crew_future *input, void *arg);

/**
 * @brief Queue @p fn(task, @p input, @p arg) on @p pool once @p input
 *        resolves, as C#'s @c ContinueWith does.
 *
 * The returned future is the continuation's, with the rules of a
 * submitted task's. @p arg_free(@p arg) runs exactly once: after @p fn,
 * or when the continuation resolves without running. Cancelling the
 * continuation before @p input resolves means @p fn never runs (it
 * resolves cancelled at once). If the pool no longer accepts it when
 * @p input resolves (a ::CREW_CANCEL shutdown, a finished shutdown, or a
 * ::CREW_DRAIN one while @p input resolves outside the pool's workers) it
 * resolves cancelled; during a drain, a continuation whose input resolves
 * on one of the pool's workers still runs. If memory runs out as it is
 * queued on a worker (that worker's queue cannot grow), it resolves
 * ::CREW_FAILED with ENOMEM. A
 * continuation is queued
 * without a @c max_queued slot: the thread that resolves its input is
 * never made to wait for room. Continuations count as tasks in
 * crew_pool_stats_get() once queued.
 *
 * Ownership: the continuation holds a reference to @p input until @p fn
 * has run (or the continuation resolved without running), so a chain of
 * continuations keeps alive only what is still pending; and, while it
 * waits, it holds the pool's memory, which outlives crew_pool_destroy()
 * until @p input resolves. An input that never resolves keeps both. @p *future
 * (may be NULL: fire and forget) is one reference for the caller.
 *
 * @param pool      the pool to run @p fn on
 * @param input     the future to wait for
 * @param fn        the function
 * @param arg       its argument
 * @param arg_free  NULL, or frees @p arg
 * @param future    NULL, or receives the continuation (NULL on error)
 * @return 0; EINVAL (NULL @p pool, @p input or @p fn); ESHUTDOWN (the pool
 *         is shut down at the call, by the rule of crew_submit()); ENOMEM.
 *         On error nothing is queued and @p arg_free is not called.
 * @note Thread safety: any thread.
 */
CREW_API int crew_then(crew_pool *pool, crew_future *input, crew_then_fn fn,
                       void *arg, crew_free_fn arg_free, crew_future **future);

/* ------------------------------------------------------------------ */
/* Parallel loops                                                     */
/* ------------------------------------------------------------------ */

/**
 * @brief A parallel loop's body: handles the items [@p begin, @p end), a
 *        chunk of at least one item.
 *
 * Returns 0, or an error code (with crew_task_fail() for a message): the
 * chunk failed. @p task serves crew_task_fail() and
 * crew_task_cancelled(); a value given to crew_task_return() is freed.
 */
typedef int (*crew_range_fn)(crew_task *task, size_t begin, size_t end,
                             void *arg);

/**
 * @brief Call @p fn on every chunk of [@p begin, @p end), on the pool and
 *        the calling thread, and return when all have finished.
 *
 * Chunks hold at most @p grain items; with @p grain 0 the library chooses
 * them to balance the load (large first, smaller towards the end). The
 * calling thread runs chunks too, beside up to crew_pool_threads() - 1 of
 * the pool's workers. When a chunk fails, chunks not yet started are
 * skipped. From one of the pool's workers, even on a pool of one thread,
 * it never deadlocks; on a pool that is shut down the calling thread runs
 * every chunk itself. @p fn never receives an empty chunk; with
 * @p begin == @p end it is not called. Chunks count as tasks in
 * crew_pool_stats_get().
 *
 * Ownership: @p *error, when set, is one reference for the caller.
 *
 * @param pool   the pool
 * @param begin  the first item
 * @param end    one past the last item
 * @param grain  the most items a chunk holds; 0: chosen by the library
 * @param fn     the body
 * @param arg    passed to @p fn
 * @param error  NULL, or receives the aggregate error when some chunk
 *               failed (one inner error per failed chunk, in order, whose
 *               position is the chunk's first item), else NULL
 * @return 0; ::CREW_EAGGREGATE when some chunk failed; EINVAL (NULL
 *         @p pool or @p fn, @p begin > @p end); ENOMEM when some chunk
 *         failed and its failure could not be recorded (every chunk has
 *         still finished or been skipped).
 * @note Thread safety: any thread.
 */
CREW_API int crew_parallel_for(crew_pool *pool, size_t begin, size_t end,
                               size_t grain, crew_range_fn fn, void *arg,
                               crew_error **error);

/**
 * @brief A reduction's body: fold items [@p begin, @p end) into
 *        @p partial, then return 0 or an error code as a task does.
 */
typedef int (*crew_reduce_fn)(crew_task *task, size_t begin, size_t end,
                              void *partial, void *arg);

/**
 * @brief Merge the partial @p from, which holds later items, into
 *        @p into.
 */
typedef void (*crew_combine_fn)(void *into, const void *from, void *arg);

/**
 * @brief Reduce [@p begin, @p end) on the pool, the same bytes whatever
 *        the number of threads.
 *
 * The range is cut into chunks of @p grain items (the last may be
 * shorter); with @p grain 0 the library picks one from the length of the
 * range alone (about 1,024 chunks), so the result is just as
 * deterministic. @p *result on entry is the identity of @p combine. Each
 * chunk is folded by @p fn into a partial of @p size bytes (aligned for
 * any type) that starts as a copy of the identity, and partials are
 * merged by @p combine(into, from, arg), @p from always holding later
 * chunks than @p into, in a tree that depends only on the range and the
 * grain: the chunks added up as a binary counter would, pairs of equal
 * runs merged as they complete, then what is left from the last run
 * down. So a floating-point sum gives the same bytes at any number of
 * threads and any timing (within one version of the library).
 *
 * The calling thread takes part, as in crew_parallel_for(), and a call
 * from a task never deadlocks. @p combine may run on several threads at
 * once, on distinct buffers. Besides the caller's memory the call uses
 * one allocation of O(threads × @p size × log chunks) bytes, never
 * O(chunks × @p size).
 *
 * On success @p *result holds the combination of every chunk. A failed
 * chunk skips the chunks not yet started; the call then returns
 * ::CREW_EAGGREGATE as crew_parallel_for() does and leaves @p *result as
 * it was. Chunks count as tasks in crew_pool_stats_get().
 *
 * @param pool     the pool
 * @param begin    the first item
 * @param end      one past the last item; @p begin == @p end returns 0
 *                 and leaves @p *result
 * @param grain    items a chunk; 0: chosen from the range's length
 * @param fn       folds a chunk into its partial
 * @param combine  merges two partials
 * @param arg      passed to @p fn and @p combine
 * @param result   the identity on entry, the reduction on success
 * @param size     the bytes of @p *result and of each partial
 * @param error    NULL, or receives the aggregate of the failed chunks
 *                 (positions: each chunk's first item), else NULL
 * @return 0; ::CREW_EAGGREGATE; EINVAL (NULL @p pool, @p fn, @p combine
 *         or @p result, @p size 0, @p begin > @p end); ENOMEM (nothing
 *         ran, or a failure could not be recorded).
 * @note Thread safety: any thread.
 */
CREW_API int crew_parallel_reduce(crew_pool *pool, size_t begin, size_t end,
                                  size_t grain, crew_reduce_fn fn,
                                  crew_combine_fn combine, void *arg,
                                  void *result, size_t size,
                                  crew_error **error);

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

/**
 * @brief The error's code: an @c errno value, a task's own code, or
 *        ::CREW_EAGGREGATE.
 *
 * @return the code; 0 for NULL.
 * @note Thread safety: any thread (errors are immutable).
 */
CREW_API int crew_error_code(const crew_error *error);

/**
 * @brief The error's message.
 *
 * @return a string borrowed from @p error; "" for NULL.
 * @note Thread safety: any thread.
 */
CREW_API const char *crew_error_message(const crew_error *error);

/**
 * @brief How many inner errors an aggregate holds (0 for a leaf or NULL).
 * @note Thread safety: any thread.
 */
CREW_API size_t crew_error_count(const crew_error *error);

/**
 * @brief The @p i-th inner error of an aggregate.
 *
 * The position belongs to the aggregate's entry, not to the inner error,
 * which may be shared: the same failed future given at positions 0 and 3
 * gives two entries. An inner error can itself be an aggregate, when a
 * crew_when_all() was nested in another.
 *
 * @param error  the aggregate
 * @param i      which entry, from 0
 * @param input  NULL, or receives the position of the failed input in its
 *               crew_when_all() (untouched when NULL is returned)
 * @return the inner error (borrowed from @p error), or NULL when
 *         @p i >= crew_error_count(@p error).
 * @note Thread safety: any thread.
 */
CREW_API const crew_error *crew_error_inner(const crew_error *error, size_t i,
                                            size_t *input);

/**
 * @brief A new aggregate whose inner errors are all the leaves of @p error.
 *
 * Leaves come depth-first, in order, each with the position it had in its
 * innermost crew_when_all(). A leaf given as @p error yields an aggregate
 * holding it alone, at position 0. Any depth of nesting works in bounded
 * stack: the walk keeps its own stack, on the heap past a few dozen
 * levels.
 *
 * @return one reference for the caller; NULL for NULL or on ENOMEM (for
 *         the aggregate, or for the walk's stack).
 * @note Thread safety: any thread.
 */
CREW_API crew_error *crew_error_flatten(const crew_error *error);

/**
 * @brief Write a readable, indented, multi-line account of the whole tree.
 *
 * One line an error, then its inner errors one level deeper: "[i] error N
 * (text): message" for a leaf with code N at position i, text being
 * crew_strerror(N) ("[i] error N (text)" when the message is the default
 * one, which says no more), and "[i] message" for an aggregate ("[3] 2 of 5 inputs
 * failed"); the root has no position. Each level indents two blanks more,
 * down to a depth of 32; deeper lines are indented as at 32, so the text
 * grows linearly with the tree. Every further line of a multi-line message
 * is indented like the first line of its error, not aligned under the
 * message text; an empty line stays empty. Any depth works in bounded
 * stack: the walk keeps its own stack, on the heap past a few dozen levels.
 *
 * snprintf-style: writes at most @p size bytes, NUL included, and returns
 * the length it needed, NUL excluded. @p buf may be NULL when @p size is 0.
 *
 * @return the length needed; -1 (writing nothing) for a NULL @p error;
 *         -1, with an empty string in @p buf when @p size > 0, if the text
 *         would be longer than INT_MAX (as snprintf) or memory for the
 *         walk's stack ran out.
 * @note Thread safety: any thread.
 */
CREW_API int crew_error_format(const crew_error *error, char *buf, size_t size);

/**
 * @brief Write what crew_error_format() would, with no size limit, to
 *        @p stream.
 *
 * @return 0; EINVAL for a NULL @p error or @p stream; the @c errno of a
 *         failed write (EIO when the stream sets none), the text written
 *         so far staying written; ENOMEM if memory for the walk's stack
 *         ran out.
 * @note Thread safety: any thread (as safe as writing to @p stream).
 */
CREW_API int crew_error_print(const crew_error *error, FILE *stream);

/**
 * @brief Take another reference to @p error.
 *
 * @return @p error (NULL for NULL).
 * @note Thread safety: any thread.
 */
CREW_API crew_error *crew_error_retain(const crew_error *error);

/**
 * @brief Drop a reference to @p error; NULL does nothing.
 * @note Thread safety: any thread.
 */
CREW_API void crew_error_release(crew_error *error);

/**
 * @brief Describe a code: ::CREW_EAGGREGATE, ESHUTDOWN, any @c errno value.
 *
 * @return a static string; never NULL ("unknown error" for other codes).
 * @note Thread safety: any thread.
 */
CREW_API const char *crew_strerror(int code);

/* ------------------------------------------------------------------ */
/* Promises                                                           */
/* ------------------------------------------------------------------ */

/**
 * @brief A future resolved by hand, for work that runs on no pool.
 *
 * A promise must be resolved, failed or cancelled eventually if anything
 * waits on it or joins it. When its last reference is released while it
 * is still pending, it resolves ::CREW_CANCELLED first: its callbacks run
 * once, on the releasing thread, and nothing leaks.
 *
 * @return 0; EINVAL for a NULL @p future; ENOMEM.
 * @note Thread safety: any thread.
 */
CREW_API int crew_promise_create(crew_future **future);

/**
 * @brief Resolve a promise as succeeded with @p value.
 *
 * On success @p value becomes the future's: @p value_free runs with its
 * last reference. On error @p value stays the caller's.
 *
 * @return 0; EALREADY if it had resolved (or been cancelled); EINVAL for
 *         NULL or a future that is not a promise.
 * @note Thread safety: any thread.
 */
CREW_API int crew_promise_resolve(crew_future *future, void *value,
                                  crew_free_fn value_free);

/**
 * @brief Resolve a promise as succeeded with a copy of the @p size bytes
 *        at @p value.
 *
 * The copy is the future's, as with crew_task_return_copy(): up to 16
 * bytes kept inside the future, never allocating.
 *
 * @return 0; EALREADY if it had resolved (or been cancelled); EINVAL for
 *         NULL, a future that is not a promise, or a NULL @p value with
 *         @p size > 0; ENOMEM (the promise stays pending).
 * @note Thread safety: any thread.
 */
CREW_API int crew_promise_resolve_copy(crew_future *future, const void *value,
                                       size_t size);

/**
 * @brief Resolve a promise as failed with @p code and a printf message.
 *
 * Any code but 0, negative ones included, is kept as given. A NULL
 * @p format gives the default message of crew_task_fail(). If memory runs
 * out, the promise still fails with @p code and a fixed message.
 *
 * @return 0; EALREADY; EINVAL (NULL, not a promise, @p code 0).
 * @note Thread safety: any thread.
 */
CREW_API int crew_promise_fail(crew_future *future, int code,
                               const char *format, ...) CREW_PRINTF(3, 4);

/* ------------------------------------------------------------------ */
/* Task groups: structured concurrency                                */
/* ------------------------------------------------------------------ */

/**
 * @brief Tasks started, joined and cancelled as one, like a Trio
 *        nursery, a Java StructuredTaskScope or a Go errgroup, keeping
 *        every failure at its member's index.
 *
 * Only members (crew_group_submit()), and the members of groups created
 * inside them, belong to a group: work a member starts with crew_submit()
 * or crew_then() does not. A group resolves only after every child group
 * created inside its members has resolved.
 */
typedef struct crew_group crew_group;

/** @brief When a group is done, and how it ends (crew_group_close()). */
typedef enum crew_group_policy {
    CREW_GROUP_ALL,               /**< every member runs to its end (Task.WhenAll) */
    CREW_GROUP_CANCEL_ON_FAILURE, /**< the first failure cancels the rest (a nursery) */
    CREW_GROUP_FIRST_SUCCESS,     /**< the first success cancels the rest */
    CREW_GROUP_QUORUM             /**< @c quorum successes cancel the rest */
} crew_group_policy;

/** @brief A group's options; zeroed (or NULL) is ::CREW_GROUP_ALL, no
 *         limit, no deadline. */
typedef struct crew_group_options {
    crew_group_policy policy; /**< ::CREW_GROUP_ALL when zeroed */
    size_t quorum;       /**< ::CREW_GROUP_QUORUM: successes needed (>= 1) */
    size_t limit;        /**< members queued or running at once; 0: no limit */
    uint64_t timeout_ns; /**< deadline, from creation; 0 or ::CREW_FOREVER:
                              none (0 here means "no deadline", unlike a
                              wait's 0) */
} crew_group_options;

/**
 * @brief Make an open group whose members run on @p pool.
 *
 * The default policy, ::CREW_GROUP_ALL, is deliberate: like Task.WhenAll,
 * every member runs and every failure is reported; choose
 * ::CREW_GROUP_CANCEL_ON_FAILURE for the behaviour of Trio, Python's
 * TaskGroup and errgroup.WithContext.
 *
 * Called from inside a task that belongs to a group (a member, or a
 * spawned call of one), the new group is that group's child: cancelling
 * the parent cancels it too (at once, if the parent is cancelled
 * already), and it inherits the parent's deadline when that is sooner.
 *
 * Deadlines cost no thread per group: the pool keeps them, on one timer
 * thread of its own, started by the first group with a deadline and
 * stopped when the pool's memory goes. A deadline fires no earlier than
 * @c timeout_ns after the group's creation, and fires even when nobody
 * waits on the group: it cancels the group as crew_group_cancel() does,
 * and the group fails with ETIMEDOUT (see crew_group_close()).
 *
 * A group keeps its pool's memory until it is freed, as a continuation
 * does.
 *
 * @param group    receives the group (NULL on error)
 * @param pool     where its members run
 * @param options  NULL for all zero
 * @return 0; EINVAL (NULL @p pool or @p group, an unknown policy,
 *         ::CREW_GROUP_QUORUM with @c quorum 0); ENOMEM (also when the
 *         pool's timer thread could not start); ESHUTDOWN (the pool no
 *         longer accepts tasks from this thread).
 * @note Thread safety: any thread, tasks included.
 */
CREW_API int crew_group_create(crew_group **group, crew_pool *pool,
                               const crew_group_options *options);

/**
 * @brief Add a member: @p fn(task, @p arg) as a task of the group's pool.
 *
 * The task is made as crew_submit_ex() makes it: same @p flags, same
 * waiting for @c max_queued room outside the pool's workers. Its index
 * in the group, stored in @p *index when @p index is not NULL, is the
 * number of members added before it (0, 1, 2, ...); a submission that
 * fails takes none.
 *
 * Past the group's @c limit, a member waits inside the group, in order,
 * ::CREW_PENDING and in no queue of the pool, and is queued once a
 * running member resolves (taking no @c max_queued room then: the thread
 * that queues it may be a worker). A member that waits on a held
 * member's future runs it itself, in its own place (it is not running
 * meanwhile, so the limit holds); any other waiter waits. A
 * ::CREW_CANCEL shutdown of the pool cancels held members; a ::CREW_DRAIN
 * shutdown still queues them.
 *
 * Cancelling one member's future cancels that member only, and a member
 * cancelled that way counts as neither success nor failure.
 *
 * @param group     the group
 * @param fn        the member's function
 * @param arg       passed to @p fn
 * @param arg_free  NULL, or frees @p arg once, after @p fn has run or
 *                  when the member resolves without running
 * @param flags     0 or ::CREW_NONBLOCKING
 * @param index     NULL, or receives the member's index
 * @param future    NULL, or receives a reference to the member's future
 * @return 0; EINVAL (NULL @p group or @p fn, unknown @p flags); ENOMEM;
 *         EAGAIN (::CREW_NONBLOCKING and no room); ECANCELED (the group
 *         is cancelled: by request, deadline or policy); ESHUTDOWN (the
 *         pool no longer accepts tasks, or the group is closed and the
 *         caller is not one of its members or their spawned calls). On
 *         error @p fn never runs, @p arg_free is not called, @p *index is
 *         untouched and @p *future is NULL.
 * @note Thread safety: any thread, tasks included, several at once.
 */
CREW_API int crew_group_submit(crew_group *group, crew_fn fn, void *arg,
                               crew_free_fn arg_free, unsigned flags,
                               size_t *index, crew_future **future);

/**
 * @brief Cancel every member not yet resolved, and every child group,
 *        recursively.
 *
 * Queued and held members resolve ::CREW_CANCELLED without running:
 * held ones at once, queued ones as soon as a worker takes them out of
 * their queue (the group keeps no list of them, so a fan-out pays
 * nothing for cancellation); running ones see crew_task_cancelled()
 * true. Later submissions fail with ECANCELED. A deadline passing, or the policy deciding, does the
 * same. Cancelling twice is harmless; the first cause (request,
 * deadline, policy) is the one the outcome reports.
 *
 * @return 0; EINVAL (NULL @p group).
 * @note Thread safety: any thread, tasks and members included.
 */
CREW_API int crew_group_cancel(crew_group *group);

/**
 * @brief End submissions from outside the group, and hand out its future.
 *
 * From then on only its members (and their spawned calls) may add
 * members. The group's future resolves once the group is closed, no
 * member is pending or running, and every child group has resolved. A
 * group that was not cancelled (by request or deadline) succeeds when:
 * - ::CREW_GROUP_ALL or ::CREW_GROUP_CANCEL_ON_FAILURE: no member failed;
 * - ::CREW_GROUP_FIRST_SUCCESS: a member succeeded; the result is that
 *   member's future (crew_future_result() returns a crew_future *), to
 *   which the group's future holds a reference;
 * - ::CREW_GROUP_QUORUM: @c quorum members succeeded (result NULL).
 *
 * Otherwise it fails, in this order of precedence:
 * 1. if any member failed, ::CREW_FAILED with an aggregate
 *    (::CREW_EAGGREGATE) holding every failure in member order, each at
 *    its member index (crew_error_inner()), whatever the policy;
 * 2. else, if the deadline cancelled it, ::CREW_FAILED with ETIMEDOUT;
 * 3. else, if it was cancelled, ::CREW_CANCELLED;
 * 4. else (too few successes, or none for lack of members) ::CREW_FAILED
 *    with ENOENT.
 *
 * Cancelling the future cancels the group. A resolved member leaves
 * nothing in the group but its error, if it failed.
 *
 * @param group  the group
 * @param done   NULL, or receives one reference to the group's future
 * @return 0; EINVAL (NULL @p group); EALREADY (closed before: @p *done
 *         is NULL).
 * @note Thread safety: any thread.
 */
CREW_API int crew_group_close(crew_group *group, crew_future **done);

/**
 * @brief Close the group if still open, and block until its future
 *        resolves.
 *
 * From a worker it helps, as every wait does.
 *
 * @param group  the group
 * @param error  NULL, or receives a new reference to the group's error
 *               (NULL on success)
 * @return the future's outcome: 0, ::CREW_EAGGREGATE, ETIMEDOUT,
 *         ECANCELED or ENOENT; EINVAL (NULL @p group); EDEADLK at once
 *         from a member of the group or of one of its descendant groups
 *         (a group cannot wait for itself); ESHUTDOWN in a child after
 *         fork(), for a group of the parent's still pending.
 * @note Thread safety: any thread but the group's own members.
 */
CREW_API int crew_group_wait(crew_group *group, crew_error **error);

/**
 * @brief Cancel the group if still unresolved, wait for it as
 *        crew_group_wait() does, and free it.
 *
 * Futures handed out stay valid. From a member of the group or of a
 * descendant it cancels and closes the group without waiting, and the
 * group frees itself once resolved. Does nothing for NULL. A failure of
 * the group's that nobody looked at (crew_group_wait(),
 * crew_future_error()) goes to crew_set_unobserved()'s handler.
 *
 * @note Thread safety: once, by the group's owner.
 */
CREW_API void crew_group_destroy(crew_group *group);

/**
 * @brief The group the running @p task (or the spawned call's spawner)
 *        is a member of, or NULL.
 *
 * @return a borrowed pointer, valid while the task runs; NULL for NULL.
 * @note Thread safety: only inside @p task's function.
 */
CREW_API crew_group *crew_task_group(const crew_task *task);

/* ------------------------------------------------------------------ */
/* Failures nobody looked at                                          */
/* ------------------------------------------------------------------ */

/** @brief Called for a failure nobody observed (crew_set_unobserved()). */
typedef void (*crew_unobserved_fn)(const crew_error *error, void *user);

/**
 * @brief Install the process-wide handler of failures nobody looked at;
 *        NULL removes it.
 *
 * When a ::CREW_FAILED future is freed (its last reference released) and
 * its failure was never observed, @p fn(error, @p user) runs on the
 * releasing thread, outside every library lock, just before the error
 * goes. A failure is observed when:
 * - crew_future_error() returned it;
 * - a wait call returned its code for that future (crew_future_wait(),
 *   crew_future_wait_for(), crew_group_wait(); crew_wait_all() through the
 *   aggregate it returns);
 * - the future had an crew_future_on_complete() callback, an inbox watch
 *   (crew_inbox_watch()) or a continuation (crew_then());
 * - it was a member of a group (the group's outcome carries it);
 * - it was an input of a join whose outcome carries that failure: every
 *   failed input of a crew_when_all() or a crew_wait_all(), the first
 *   failure of a ::CREW_FAIL_FAST join, the winner of a crew_when_any().
 *
 * So a fire-and-forget task that fails is reported as soon as it
 * resolves, and so is a failure that a ::CREW_FAIL_FAST join dropped,
 * once its last reference goes. Futures the library makes for itself (a
 * parallel loop's runners) are never reported: their loop's future
 * carries their failures.
 *
 * The handler may read @p error but not release it, must not wait on
 * futures, and may call other crew functions.
 *
 * @param fn    the handler, or NULL for none
 * @param user  passed to @p fn
 * @note Thread safety: any thread; returns once no call of the previous
 *       handler is in progress, so it must not be called from the
 *       handler.
 */
CREW_API void crew_set_unobserved(crew_unobserved_fn fn, void *user);

/* ------------------------------------------------------------------ */
/* Event loops: the inbox                                             */
/* ------------------------------------------------------------------ */

/**
 * @brief Resolved futures handed to an event loop's thread through a
 *        descriptor it can poll.
 */
typedef struct crew_inbox crew_inbox;

/**
 * @brief Make an inbox.
 *
 * @param inbox  receives the inbox (NULL on error)
 * @return 0; EINVAL (NULL @p inbox); ENOMEM; or the error of making the
 *         descriptor (EMFILE, ENFILE).
 * @note Thread safety: any thread.
 */
CREW_API int crew_inbox_create(crew_inbox **inbox);

/**
 * @brief The descriptor that polls readable while at least one delivery
 *        waits to be taken.
 *
 * An eventfd on Linux, a pipe elsewhere. It belongs to the inbox: never
 * read, write or close it; watch it with poll, epoll, libuv's uv_poll_t
 * or any event loop.
 *
 * @return the descriptor; -1 for a NULL @p inbox.
 * @note Thread safety: any thread.
 */
CREW_API int crew_inbox_fd(const crew_inbox *inbox);

/**
 * @brief Deliver @p future to the inbox once it resolves.
 *
 * The pair (@p future, @p user) is delivered in the order of resolution;
 * an already resolved future is delivered at once.
 *
 * Ownership: takes a reference of its own to @p future, handed over with
 * the delivery.
 *
 * @param inbox   the inbox
 * @param future  the future to watch
 * @param user    passed back with the delivery
 * @return 0; EINVAL (NULL @p inbox or @p future); ENOMEM.
 * @note Thread safety: any thread, several at once.
 */
CREW_API int crew_inbox_watch(crew_inbox *inbox, crew_future *future,
                              void *user);

/**
 * @brief Take up to @p max deliveries, oldest first, without blocking.
 *
 * Each future taken comes with one reference that the caller now owns.
 * Once every delivery has been taken the descriptor stops polling
 * readable until the next one arrives.
 *
 * @param inbox    the inbox
 * @param futures  receives the futures, @p max entries
 * @param users    NULL, or receives each future's user pointer
 * @param max      the most to take
 * @return how many were taken; 0 for a NULL @p inbox or @p futures.
 * @note Thread safety: meant for one thread, the loop's; safe from any.
 */
CREW_API size_t crew_inbox_take(crew_inbox *inbox, crew_future **futures,
                                void **users, size_t max);

/**
 * @brief Destroy an inbox.
 *
 * Drops the references of deliveries not taken and of futures still
 * watched (their later resolution is delivered nowhere), closes the
 * descriptor and frees the inbox. Does nothing for NULL.
 *
 * @note Thread safety: the caller makes sure no other thread is using
 *       the inbox; futures may go on resolving on workers meanwhile.
 */
CREW_API void crew_inbox_destroy(crew_inbox *inbox);

/* ------------------------------------------------------------------ */
/* Seeing what the pool does: traces, latency, stuck tasks             */
/* ------------------------------------------------------------------ */

/**
 * @brief Start recording every task that @p pool runs, for
 *        crew_trace_stop() to write as a timeline.
 *
 * Records, for every task the pool runs — tasks, continuations,
 * crew_parallel_for() and crew_parallel_reduce() chunks, spawned calls
 * that another worker stole, group members — when it was queued,
 * started and resolved, on which thread, its function and its outcome.
 * Each thread keeps its newest @p events records, older ones being
 * overwritten: the workers' rings are allocated now, those of other
 * threads that run tasks (a thread outside the pool that runs its share
 * of a parallel loop, a spare worker) when they first record. While
 * recording, every task is also timed for crew_pool_latency_get().
 *
 * A task queued before the start has no queue wait: its run is recorded
 * and timed, its wait is not. A chunk counts as queued when its loop
 * began; a stolen spawned call, when it was stolen.
 *
 * Cost: three reads of a cheap clock (the time-stamp counter on x86-64)
 * and a 40-byte record per task, on the thread that ran it; nothing
 * shared between threads. When no trace records and no watchdog is set
 * the pool reads no clock per task.
 *
 * @param pool    the pool
 * @param events  records kept per thread, at least 1
 * @return 0; EINVAL (NULL @p pool, or @p events 0); ENOMEM (nothing
 *         changed); EALREADY (already recording); ESHUTDOWN (a pool
 *         inherited across fork(), in the child).
 * @note Thread safety: any thread, its workers' included.
 */
CREW_API int crew_trace_start(crew_pool *pool, size_t events);

/**
 * @brief Stop recording and write the records to @p json, in the Chrome
 *        Trace Event Format that Perfetto (ui.perfetto.dev) and
 *        chrome://tracing open.
 *
 * One complete event ("ph":"X") per task that ran to its end while
 * recording, on its thread's track: each worker has one, named after its
 * thread ("crew-0" for the default name), and so does each thread
 * outside the pool that ran tasks. Events are named by the function's
 * symbol when the program exports it (link with -rdynamic), else by its
 * address; "ts" and "dur" are microseconds since the start. Arguments:
 * "wait_us" and "queued_us" (absent for a task queued before the start),
 * "outcome" ("succeeded", "failed" or "cancelled": a task that returned
 * ECANCELED when asked to stop), "code", "worker" (for workers) and "fn"
 * (the address). Tasks cancelled before running, or still running at the
 * stop, are left out. Events of one track are in the order they started.
 *
 * @param pool  the pool
 * @param json  where to write; NULL discards the records
 * @return 0; EINVAL (NULL @p pool); EALREADY (not recording); or the
 *         errno of a failed write (recording has stopped all the same,
 *         and the records are gone). @p json is flushed, not closed.
 * @note Thread safety: any thread; one of crew_trace_start() and
 *       crew_trace_stop() at a time per pool wins, the other sees
 *       EALREADY.
 */
CREW_API int crew_trace_stop(crew_pool *pool, FILE *json);

/** @brief Percentiles of the tasks timed (crew_pool_latency_get()). */
typedef struct crew_latency {
    uint64_t tasks;       /**< tasks timed */
    uint64_t wait_p50_ns; /**< queued -> started, median */
    uint64_t wait_p99_ns; /**< queued -> started, 99th percentile */
    uint64_t wait_max_ns; /**< queued -> started, the longest */
    uint64_t run_p50_ns;  /**< started -> resolved, median */
    uint64_t run_p99_ns;  /**< started -> resolved, 99th percentile */
    uint64_t run_max_ns;  /**< started -> resolved, the longest */
} crew_latency;

/**
 * @brief The queue wait and run time of the tasks timed since @p pool
 *        was created.
 *
 * A task is timed while a trace records (crew_trace_start()): its wait
 * runs from entering a queue of the pool to its start, its run from its
 * start to its resolution (before its callbacks). The percentiles are
 * nearest-rank, each within 5% of the true value (a histogram of 32
 * buckets an octave, per thread: within 1.6%); the maxima are exact.
 * A pool never traced reports zeros. The wait percentiles are over the
 * tasks whose wait is known (queued after the trace started).
 *
 * @param pool     the pool
 * @param latency  receives the figures
 * @return 0; EINVAL (NULL @p pool or @p latency).
 * @note Thread safety: any thread, while tasks run; the figures are
 *       then those of a moment during the call.
 */
CREW_API int crew_pool_latency_get(const crew_pool *pool,
                                   crew_latency *latency);

/** @brief A task run the watchdog found running too long. */
typedef struct crew_stuck {
    /** The running function (cast it back to its type before calling). */
    void (*fn)(void);
    /** Its symbol name when the program exports it, else NULL. */
    const char *name;
    /** Which worker runs it, 0 .. threads-1. */
    unsigned worker;
    /** How long it had been running when the watchdog saw it. */
    uint64_t running_ns;
} crew_stuck;

/** @brief Called by the watchdog (crew_pool_watchdog()). */
typedef void (*crew_stuck_fn)(const crew_stuck *stuck, void *user);

/**
 * @brief Set, replace, or (with @p after_ns 0) remove @p pool's
 *        watchdog.
 *
 * @p fn(stuck, @p user) runs once for each task run that has been
 * running longer than @p after_ns, on a monitor thread that the pool
 * starts for it (with signals blocked), which looks at least every
 * @p after_ns / 2 and at most once a millisecond; under load no bound
 * holds. The tasks watched are those the pool's workers run, nested ones
 * (run by a worker while a task of its waits) included; a spare worker's
 * and a thread outside the pool's are not. @p stuck is valid during the
 * call only. While a watchdog is set every task reads the task clock
 * once as it starts.
 *
 * Setting, replacing or removing returns once no call of the previous
 * @p fn is in progress; removing joins the monitor thread.
 * crew_pool_destroy() removes the watchdog first.
 *
 * @param pool      the pool
 * @param after_ns  how long a run may last before it is reported; 0 removes
 * @param fn        called for each stuck run; ignored when removing
 * @param user      passed to @p fn
 * @return 0; EINVAL (NULL @p pool, or NULL @p fn with @p after_ns not 0);
 *         ENOMEM; EAGAIN (no thread could be started; nothing changed);
 *         EDEADLK (called from @p fn); ESHUTDOWN (a pool inherited
 *         across fork(), in the child).
 * @note Thread safety: any thread.
 */
CREW_API int crew_pool_watchdog(crew_pool *pool, uint64_t after_ns,
                                crew_stuck_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* CREW_H */
