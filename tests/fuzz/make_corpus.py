#!/usr/bin/env python3
"""Write the seed corpus of crew_fuzz: small programs in the byte format
that tests/fuzz/fuzz_api.c documents at its top.

    python3 tests/fuzz/make_corpus.py [DIR]     # default: tests/fuzz/corpus

Every seed is a meaningful program (each starts its own pools and ends
with whatever the harness's teardown settles). The opcode and kind numbers
below must match enum op and enum kind in fuzz_api.c.
"""
import os
import sys

# enum op
(POOL_CREATE, POOL_SHUTDOWN, POOL_DESTROY, SUBMIT, PROMISE_CREATE,
 PROMISE_RESOLVE, PROMISE_FAIL, CANCEL, WAIT_FOR, WAIT, RETAIN, RELEASE,
 ON_COMPLETE, WHEN_ALL, WHEN_ANY, WAIT_ALL, WAIT_ANY, ERROR_TAKE,
 ERROR_INSPECT, ERROR_RELEASE, BAD_ARGS, STATE, PAUSE, WHEN_ALL_EX, THEN,
 PARALLEL_FOR, STATS, RESOLVE_COPY, WAIT_ALL_FOR, SUBMIT_EACH,
 REDUCE, SPAWN) = range(32)

# enum op, continued: groups
(GROUP_CREATE, GROUP_SUBMIT, GROUP_CANCEL, GROUP_CLOSE, GROUP_WAIT,
 GROUP_DESTROY) = range(32, 38)

# enum op, continued: traces and the watchdog
TRACE, WATCHDOG = range(38, 40)
# TRACE's v%4
TR_START, TR_STOP_JSON, TR_STOP_NULL, TR_LATENCY = range(4)
# WATCHDOG's v%3
WD_SET, WD_SET_AGAIN, WD_REMOVE = range(3)

# enum kind
(SUCCEED, FAIL, CANCEL_AWARE, NESTED, WAIT_PROMISE, RESOLVE_PROMISE, SELF,
 PFOR) = range(8)
# enum gkind: what a group member does
G_SUCCEED, G_FAIL, G_SPIN, G_ADDER = range(4)
# crew_group_policy
P_ALL, P_CANCEL_ON_FAILURE, P_FIRST_SUCCESS, P_QUORUM = range(4)
# group deadlines (operand t%4): none, 2 us, 100 us, 1 ms
GT_NONE, GT_2US, GT_100US, GT_1MS = range(4)
# GROUP_SUBMIT modes
GM_FREE, GM_PLAIN, GM_NONBLOCKING, GM_BAD_FLAGS = range(4)
# GROUP_CANCEL hows
GC_CANCEL, GC_FUTURE, GC_TWICE, GC_BAD_ARGS = range(4)
# when_all_ex flags (operand f%5; 4 is an unknown bit)
FAIL_FAST, CANCEL_REST, BAD_FLAG = 1, 2, 4

DRAIN, CANCEL_HOW, BAD_HOW = 0, 1, 2
FORGET = 16  # a dst of 16..31: fire and forget
# submit modes
M_SUBMIT, M_EX, M_NONBLOCKING, M_BAD_FLAGS = range(4)
# timeouts
T_0, T_1US, T_100US, T_1MS = range(4)


def cfg(threads, max_queued=0, hooks=False, long_name=False, bad_stack=False):
    """POOL_CREATE's configuration byte."""
    b = (threads % 4) | ((max_queued % 4) << 2)
    b |= 16 if hooks else 0
    b |= 32 if long_name else 0
    b |= 0xC0 if bad_stack else 0
    return b


def fail_param(code, mode=0, with_value=False):
    """K_FAIL's param: mode 0 message, 1 bare code, 2 message then
    success, 3 NULL format after a message. Codes run 1 to 32."""
    assert 1 <= code <= 32, code
    return ((code - 1) << 3) | ((mode & 3) << 1) | int(with_value)


def create(pool, c):
    return [POOL_CREATE, pool, c]


def gcfg(policy, quorum=1, limit=0, bad=0):
    """GROUP_CREATE's configuration byte; bad 3: an unknown policy, bad
    2 with P_QUORUM: quorum 0 (both EINVAL)."""
    assert 1 <= quorum <= 4 and 0 <= limit <= 3, (quorum, limit)
    return policy | ((quorum - 1) << 2) | (limit << 4) | (bad << 6)


def gcreate(group, pool, c, t=GT_NONE):
    return [GROUP_CREATE, group, pool, c, t]


def gsubmit(group, kind, dst=FORGET, param=0, mode=GM_FREE):
    """A member; param: G_FAIL's code is 1 + param%40, G_SPIN polls
    1 + param%8 times (param&8: ECANCELED once cancelled), G_ADDER adds
    1 + param%2 members of kind (param>>2)%3, with arg_free if param&32."""
    return [GROUP_SUBMIT, group, kind, param, dst, mode]


def adder(children, child_kind, arg_free=True):
    return (children - 1) | (child_kind << 2) | (32 if arg_free else 0)


def submit(pool, kind, dst, param=0, aux=0, mode=M_EX):
    return [SUBMIT, pool, kind, param, aux, dst, mode]


def join(op, dst, slots, variant=0):
    return [op, dst, len(slots), variant] + list(slots)


def join_ex(dst, slots, flags, variant=0):
    return [WHEN_ALL_EX, dst, len(slots), variant, flags] + list(slots)


def then(pool, src, dst, fail=False, arg_free=True):
    return [THEN, pool, src, dst, int(fail) | (2 if arg_free else 0)]


def parallel_for(pool, n, grain, fail_at=255 - 64):
    """fail_at: the failing item's offset (64 or more: none; 250+: EINVAL)."""
    return [PARALLEL_FOR, pool, n, grain, fail_at]


def wait_all(slots, variant=0):
    return [WAIT_ALL, len(slots), variant] + list(slots)


def wait_any(slots, t=T_1MS, variant=0):
    return [WAIT_ANY, len(slots), t, variant] + list(slots)


def program(*parts):
    out = []
    for p in parts:
        out += p
    assert all(0 <= b < 256 for b in out), out
    return bytes(out)


SEEDS = {
    "01-succeed-wait-all": program(
        create(0, cfg(2, hooks=True)),
        submit(0, SUCCEED, 0, param=0),
        submit(0, SUCCEED, 1, param=2),
        submit(0, SUCCEED, 2, param=4, mode=M_SUBMIT),
        wait_all([0, 1, 2], variant=0),
        [STATE, 0, STATE, 1, STATE, 2],
        [POOL_DESTROY, 0],
        [STATE, 1],
    ),
    "02-when-all-failures": program(
        create(0, cfg(3)),
        submit(0, FAIL, 0, param=fail_param(5)),
        submit(0, SUCCEED, 1),
        submit(0, FAIL, 2, param=fail_param(7, mode=1), aux=1),
        join(WHEN_ALL, 3, [0, 1, 2, 0]),
        [WAIT, 3],
        [ERROR_TAKE, 0, 3, 0],
        [ERROR_INSPECT, 0, 5],
        [ERROR_INSPECT, 0, 0],
        [ERROR_TAKE, 1, 0, 1],
        [ERROR_INSPECT, 1, 15],
    ),
    "03-cancel-shutdown": program(
        create(1, cfg(1, max_queued=2, hooks=True)),
        submit(1, CANCEL_AWARE, 0, param=7),
        submit(1, CANCEL_AWARE, 1, param=7),
        submit(1, SUCCEED, FORGET),
        submit(1, CANCEL_AWARE, 2, param=3, mode=M_NONBLOCKING),
        [POOL_SHUTDOWN, 1, CANCEL_HOW],
        submit(1, SUCCEED, 3),
        [POOL_SHUTDOWN, 1, DRAIN],
        [STATE, 0, STATE, 1, STATE, 2],
        [POOL_DESTROY, 1],
    ),
    "04-drain-fire-and-forget": program(
        create(0, cfg(2)),
        submit(0, SUCCEED, FORGET),
        submit(0, FAIL, FORGET + 1, param=fail_param(3)),
        submit(0, NESTED, FORGET + 2, param=0, aux=1),
        submit(0, SUCCEED, FORGET + 3, mode=M_SUBMIT),
        [POOL_SHUTDOWN, 0, DRAIN],
        [POOL_SHUTDOWN, 0, CANCEL_HOW],
        [POOL_SHUTDOWN, 0, BAD_HOW],
    ),
    "05-promise-lifecycle": program(
        [PROMISE_CREATE, 0, PROMISE_CREATE, 1, PROMISE_CREATE, 2],
        [ON_COMPLETE, 0, 0, ON_COMPLETE, 1, 2, ON_COMPLETE, 2, 1],
        [PROMISE_RESOLVE, 0, 0],
        [PROMISE_RESOLVE, 0, 0],
        [PROMISE_FAIL, 1, 0x85],
        [PROMISE_FAIL, 1, 3],
        [PROMISE_FAIL, 3, 0],
        [CANCEL, 2],
        [CANCEL, 0],
        [STATE, 0, STATE, 1],
        [WAIT, 0, WAIT, 1],
    ),
    "06-task-waits-on-promise": program(
        create(0, cfg(2)),
        [PROMISE_CREATE, 5],
        submit(0, WAIT_PROMISE, 0, param=T_1MS, aux=5),
        submit(0, WAIT_PROMISE, 1, param=T_100US, aux=5),
        [WAIT_FOR, 0, T_100US],
        [PROMISE_RESOLVE, 5, 0],
        submit(0, WAIT_PROMISE, 2, param=T_1MS, aux=5),
        wait_any([0, 1, 2], T_1MS),
        wait_all([0, 1, 2, 5]),
    ),
    "07-nested": program(
        create(0, cfg(1)),
        submit(0, NESTED, 0, param=0, aux=0),
        submit(0, NESTED, 1, param=2, aux=1),
        submit(0, NESTED, 2, param=4, aux=3),
        submit(0, NESTED, 3, param=1, aux=0x0F),
        wait_all([0, 1, 2, 3], variant=0),
        [ERROR_INSPECT, 0, 3],
        [POOL_DESTROY, 0],
    ),
    "08-when-any": program(
        create(0, cfg(2)),
        [PROMISE_CREATE, 0],
        submit(0, SUCCEED, 1),
        submit(0, FAIL, 2, param=fail_param(9)),
        join(WHEN_ANY, 3, [0, 1, 2]),
        [WAIT_FOR, 3, T_1MS],
        [WAIT, 2],
        join(WHEN_ANY, 4, [0, 2, 1, 2]),
        [WAIT, 4, STATE, 4],
        wait_any([0, 2], T_0),
        [PROMISE_FAIL, 0, 0x22],
    ),
    "09-nested-when-all": program(
        create(0, cfg(3)),
        submit(0, FAIL, 0, param=fail_param(11)),
        submit(0, FAIL, 1, param=fail_param(12, mode=3)),
        submit(0, SUCCEED, 2),
        join(WHEN_ALL, 3, [0, 2, 1]),
        join(WHEN_ALL, 4, [2, 3, 0, 3]),
        [WAIT, 4],
        [ERROR_TAKE, 0, 4, 0],
        [ERROR_INSPECT, 0, 9],
        [ERROR_TAKE, 1, 0, 1],
        [ERROR_TAKE, 2, 0x10, 2],
        [ERROR_INSPECT, 2, 1, ERROR_INSPECT, 1, 4],
        [ERROR_RELEASE, 0],
    ),
    "10-bad-args": program(
        create(0, cfg(1)),
        submit(0, SUCCEED, 0),
        [PROMISE_CREATE, 1],
        [BAD_ARGS, 0, 0, BAD_ARGS, 1, 0, BAD_ARGS, 2, 0, BAD_ARGS, 3, 0],
        [BAD_ARGS, 4, 0, BAD_ARGS, 4, 1, BAD_ARGS, 5, 0, BAD_ARGS, 6, 1],
        [BAD_ARGS, 7, 0, BAD_ARGS, 8, 0xF3, BAD_ARGS, 9, 0],
        [PROMISE_RESOLVE, 0, 0, PROMISE_FAIL, 0, 4],
    ),
    "11-flags-and-full-queue": program(
        create(0, cfg(1, max_queued=1)),
        submit(0, CANCEL_AWARE, 0, param=7),
        submit(0, CANCEL_AWARE, 1, param=7, mode=M_NONBLOCKING),
        submit(0, SUCCEED, 2, mode=M_NONBLOCKING),
        submit(0, SUCCEED, 3, param=1, aux=3, mode=M_BAD_FLAGS),
        submit(0, SUCCEED, 4, param=0, aux=30, mode=M_BAD_FLAGS),
        submit(0, SUCCEED, 5),
        [CANCEL, 0, CANCEL, 1],
        wait_all([0, 1, 2, 5]),
    ),
    "12-callbacks-own-reference": program(
        create(0, cfg(2)),
        submit(0, CANCEL_AWARE, 0, param=4),
        [RETAIN, 0, 1],
        [ON_COMPLETE, 0, 1],
        [ON_COMPLETE, 1, 0],
        [ON_COMPLETE, 1, 2],
        [RELEASE, 1],
        [PROMISE_CREATE, 2, ON_COMPLETE, 2, 1, PROMISE_RESOLVE, 2, 0],
        [PAUSE, 3],
    ),
    "13-task-resolves-promise": program(
        create(0, cfg(3)),
        [PROMISE_CREATE, 7, PROMISE_CREATE, 8],
        [ON_COMPLETE, 7, 0],
        submit(0, WAIT_PROMISE, 0, param=T_1MS, aux=7),
        submit(0, RESOLVE_PROMISE, 1, param=1, aux=7),
        submit(0, RESOLVE_PROMISE, 2, param=0, aux=8 | 2),
        submit(0, RESOLVE_PROMISE, 3, param=0, aux=7),
        wait_all([0, 1, 2, 3]),
        [PROMISE_RESOLVE, 7, 0, WAIT_FOR, 8, T_1MS],
    ),
    "14-self-calls": program(
        create(0, cfg(2, hooks=True)),
        submit(0, SELF, 0),
        submit(0, SELF, 1, mode=M_SUBMIT),
        submit(0, SELF, FORGET),
        wait_all([0, 1]),
    ),
    "15-two-pools": program(
        create(0, cfg(1)),
        create(1, cfg(2, max_queued=3)),
        submit(0, SUCCEED, 0),
        submit(1, FAIL, 1, param=fail_param(20)),
        submit(1, NESTED, 2, aux=2),
        join(WHEN_ALL, 3, [0, 1, 2]),
        [POOL_DESTROY, 0],
        [STATE, 0],
        [ON_COMPLETE, 3, 2],
        [POOL_DESTROY, 1],
        [STATE, 3, STATE, 2],
        create(0, cfg(0)),
        submit(0, SUCCEED, 4),
    ),
    "16-timeouts": program(
        [PROMISE_CREATE, 0],
        [WAIT_FOR, 0, T_0, WAIT_FOR, 0, T_1US, WAIT_FOR, 0, T_100US],
        wait_any([0], T_1US),
        wait_any([0, 0], T_100US),
        [WAIT, 0],
        [PROMISE_RESOLVE, 0, 1],
        [WAIT, 0],
        wait_any([0], T_0),
    ),
    "17-join-edge-cases": program(
        [PROMISE_CREATE, 0],
        join(WHEN_ALL, 1, []),
        join(WHEN_ANY, 2, []),
        join(WHEN_ALL, 3, [0, 0], variant=1),
        join(WHEN_ANY, 3, [0], variant=2),
        join(WHEN_ALL, 3, [0, 9]),
        wait_all([0, 9]),
        wait_all([0], variant=2),
        wait_any([9], T_0),
        wait_any([0], T_0, variant=1),
        wait_any([0], T_0, variant=2),
        [WAIT, 1],
        [CANCEL, 1],
    ),
    "18-retain-release": program(
        create(0, cfg(2)),
        submit(0, SUCCEED, 0),
        [RETAIN, 0, 1, RETAIN, 1, 2, RETAIN, 2, 3],
        [RELEASE, 0, RELEASE, 1],
        [WAIT, 3],
        [RELEASE, 2, RELEASE, 3],
        submit(0, SUCCEED, 0, param=2),
        [RELEASE, 0],
        [POOL_DESTROY, 0],
    ),
    "19-pool-options": program(
        create(0, cfg(1, bad_stack=True)),
        create(0, cfg(0, long_name=True, hooks=True)),
        create(1, cfg(3, max_queued=3, hooks=True)),
        create(1, cfg(2)),
        submit(0, SUCCEED, 0),
        submit(1, SUCCEED, 1),
        [POOL_DESTROY, 0, POOL_DESTROY, 1],
        create(1, cfg(1)),
        submit(1, SUCCEED, 2),
    ),
    "20-cancel-join": program(
        create(0, cfg(1)),
        [PROMISE_CREATE, 0, PROMISE_CREATE, 1],
        submit(0, CANCEL_AWARE, 2, param=7),
        submit(0, SUCCEED, 3),
        join(WHEN_ALL, 4, [0, 1, 2, 3]),
        join(WHEN_ANY, 5, [0, 1]),
        [CANCEL, 4],
        [WAIT, 4],
        [WAIT, 5],
        [CANCEL, 5],
    ),
    "21-wait-all-mixed": program(
        create(0, cfg(2)),
        submit(0, FAIL, 0, param=fail_param(2, mode=1), aux=3),
        submit(0, CANCEL_AWARE, 1, param=7),
        [CANCEL, 1],
        submit(0, SUCCEED, 2),
        [PROMISE_CREATE, 3, PROMISE_FAIL, 3, 0xF0],
        wait_all([0, 1, 2, 3, 0], variant=0 | (2 << 2)),
        [ERROR_INSPECT, 2, 11],
        wait_all([1, 2]),
        [ERROR_TAKE, 3, 1, 0, ERROR_INSPECT, 3, 2],
    ),
    "22-fail-modes": program(
        create(0, cfg(2)),
        submit(0, FAIL, 0, param=fail_param(1, mode=0, with_value=True),
               aux=2),
        submit(0, FAIL, 1, param=fail_param(31, mode=1), aux=1),
        submit(0, FAIL, 2, param=fail_param(24, mode=2, with_value=True)),
        submit(0, FAIL, 3, param=fail_param(32, mode=3)),
        submit(0, CANCEL_AWARE, 4, param=8),
        wait_all([0, 1, 2, 3, 4]),
        [ERROR_TAKE, 1, 0, 0, ERROR_INSPECT, 1, 7],
    ),
    "23-shutdown-while-busy": program(
        create(0, cfg(2, max_queued=2)),
        submit(0, NESTED, 0, param=0, aux=2),
        submit(0, NESTED, 1, param=2, aux=2),
        submit(0, CANCEL_AWARE, 2, param=7),
        [ON_COMPLETE, 0, 0, ON_COMPLETE, 2, 0],
        [POOL_SHUTDOWN, 0, CANCEL_HOW],
        [STATE, 0, STATE, 1, STATE, 2],
    ),
    "24-fail-fast-cancel-rest": program(
        create(0, cfg(2)),
        submit(0, CANCEL_AWARE, 0, param=40),
        submit(0, FAIL, 1, param=fail_param(5)),
        [PROMISE_CREATE, 2],
        submit(0, SUCCEED, 3),
        join_ex(4, [0, 1, 2, 3], FAIL_FAST | CANCEL_REST),
        join_ex(5, [0, 1, 3], CANCEL_REST),
        join_ex(6, [0, 1], BAD_FLAG),
        [WAIT, 4, STATE, 4, PROMISE_RESOLVE, 2, 0, WAIT, 5],
        [STATS, 0, POOL_SHUTDOWN, 0, DRAIN, STATS, 0],
    ),
    "25-continuations": program(
        create(0, cfg(2)),
        [PROMISE_CREATE, 0],
        then(0, 0, 1),
        then(0, 1, 2, fail=True),
        then(0, 2, 16 + 3),
        submit(0, FAIL, 4, param=fail_param(3)),
        then(0, 4, 5, arg_free=False),
        [CANCEL, 2],
        [PROMISE_RESOLVE, 0, 1, WAIT, 5],
        then(0, 15, 6),
        [POOL_SHUTDOWN, 0, CANCEL_HOW],
        then(0, 1, 7),
    ),
    "26-parallel-loops": program(
        create(0, cfg(2, max_queued=1)),
        parallel_for(0, 47, 0),
        parallel_for(0, 40, 3, fail_at=17),
        parallel_for(0, 1, 1, fail_at=0),
        parallel_for(0, 0, 0),
        parallel_for(0, 10, 2, fail_at=251),
        submit(0, PFOR, 0, param=31, aux=2),
        submit(0, PFOR, 1, param=20, aux=0),
        create(1, cfg(1)),
        submit(1, PFOR, 2, param=9, aux=1),
        wait_all([0, 1, 2]),
        [STATS, 0, STATS, 1, STATS, 3],
        [POOL_SHUTDOWN, 1, DRAIN],
        parallel_for(1, 30, 0, fail_at=29),
        [STATS, 1],
    ),
    # Joins over joins, each level taking the one below four times (over
    # a when_any, so that no level could aggregate more failures than the
    # harness allows): cancelling the top must pass the request on once a
    # join, not once a path (4^20 of them), though the joins resolve, and
    # a resolved when_all still passes it on, on the way.
    "27-cancel-a-deep-join-graph": program(
        [PROMISE_CREATE, 3],
        join(WHEN_ANY, 4, [3]),
        *[join(WHEN_ALL, 4, [4, 4, 4, 4]) for _ in range(20)],
        [CANCEL, 4, STATE, 3, STATE, 4],
        [CANCEL, 4],
    ),
    # Batches: whole, failing at one index, without futures, nonblocking
    # on a bounded pool, more than max_queued (EINVAL), empty, bad input,
    # and against a shutdown; then reductions, failing and not.
    "28-batches-and-reductions": program(
        create(0, cfg(2)),
        [SUBMIT_EACH, 0, 39, 0],
        [SUBMIT_EACH, 0, 20, 8 | 3],
        [SUBMIT_EACH, 0, 25, 32],
        [SUBMIT_EACH, 0, 0, 0],
        [SUBMIT_EACH, 0, 5, 251],
        create(1, cfg(1, max_queued=2)),
        [SUBMIT_EACH, 1, 2, 16],
        [SUBMIT_EACH, 1, 3, 0],
        [REDUCE, 0, 47, 3, 255 - 64],
        [REDUCE, 0, 47, 0, 10],
        [REDUCE, 1, 30, 1, 252],
        [POOL_SHUTDOWN, 0, CANCEL_HOW],
        [SUBMIT_EACH, 0, 10, 0],
        [REDUCE, 0, 20, 2, 255 - 64],
    ),
    # Spawned calls: trees of every shape, one failing leaf passed up,
    # bad spawns and syncs, and a tree during a cancelling shutdown.
    "29-spawn-trees": program(
        create(0, cfg(2)),
        [SPAWN, 0, 5, 3, 255 - 64],
        [SPAWN, 0, 4, 2, 7],
        [SPAWN, 0, 3, 1, 0],
        [SPAWN, 0, 0, 0, 255 - 64],
        [SPAWN, 0, 2, 2, 251],
        create(1, cfg(1)),
        [SPAWN, 1, 5, 2, 31],
        [POOL_SHUTDOWN, 0, CANCEL_HOW],
        [SPAWN, 0, 3, 3, 255 - 64],
    ),
    # Groups under every policy: ALL keeps every failure at its index,
    # FIRST_SUCCESS (limit 1: members held, then cancelled by the
    # policy) resolves with a member's future, QUORUM 2 with a limit of
    # 2; members add members; bad options; waits and destroys.
    "30-groups-policies": program(
        create(0, cfg(2)),
        gcreate(0, 0, gcfg(P_ALL)),
        gsubmit(0, G_SUCCEED, dst=0),
        gsubmit(0, G_FAIL, dst=1, param=4),
        gsubmit(0, G_SPIN, param=3, mode=GM_PLAIN),
        gsubmit(0, G_ADDER, dst=2, param=adder(2, G_FAIL)),
        gsubmit(0, G_FAIL, param=7),
        [GROUP_CLOSE, 0, 3, GROUP_WAIT, 0, 0],
        [ERROR_TAKE, 0, 3, 0, ERROR_INSPECT, 0, 9, ERROR_TAKE, 1, 0, 1],
        gcreate(1, 0, gcfg(P_FIRST_SUCCESS, limit=1)),
        gsubmit(1, G_FAIL, param=1),
        gsubmit(1, G_SPIN, param=5),
        gsubmit(1, G_SUCCEED, dst=4),
        gsubmit(1, G_SUCCEED, dst=5, mode=GM_PLAIN),
        gsubmit(1, G_SPIN, param=7 | 8),
        [GROUP_CLOSE, 1, 6, WAIT, 6, STATE, 6],
        gcreate(2, 0, gcfg(P_QUORUM, quorum=2, limit=2)),
        gsubmit(2, G_FAIL, param=2),
        gsubmit(2, G_SUCCEED),
        gsubmit(2, G_ADDER, param=adder(2, G_SUCCEED, arg_free=False)),
        gsubmit(2, G_SUCCEED),
        [GROUP_WAIT, 2, 1, GROUP_DESTROY, 2, 0],
        gcreate(2, 0, gcfg(P_QUORUM, bad=2)),
        gcreate(2, 0, gcfg(P_ALL, bad=3)),
        gcreate(2, 0, gcfg(P_QUORUM, quorum=4), GT_1MS),
        gsubmit(2, G_FAIL),
        [GROUP_DESTROY, 0, 1, GROUP_DESTROY, 1, 0],
    ),
    # Cancelling: by request while members spin (and after, ECANCELED),
    # through the group's future, by the first failure, by deadlines of
    # 2 us and 100 us racing the members; cancelling a member alone;
    # bad input.
    "31-groups-cancel-and-deadlines": program(
        create(0, cfg(2)),
        create(1, cfg(1, max_queued=1)),
        gcreate(0, 0, gcfg(P_ALL)),
        gsubmit(0, G_SPIN, dst=0, param=7),
        gsubmit(0, G_SPIN, param=7 | 8),
        gsubmit(0, G_SUCCEED, dst=1),
        [CANCEL, 1, GROUP_CANCEL, 0, GC_TWICE],
        gsubmit(0, G_SUCCEED),
        [GROUP_CLOSE, 0, 2, WAIT, 2],
        gcreate(1, 0, gcfg(P_CANCEL_ON_FAILURE)),
        gsubmit(1, G_SPIN, param=6),
        gsubmit(1, G_FAIL, param=9),
        gsubmit(1, G_SPIN, param=6 | 8),
        [GROUP_CLOSE, 1, 3, GROUP_WAIT, 1, 0],
        gcreate(2, 1, gcfg(P_ALL, limit=1), GT_100US),
        gsubmit(2, G_SPIN, param=7),
        gsubmit(2, G_SPIN, param=7, mode=GM_NONBLOCKING),
        gsubmit(2, G_SUCCEED, dst=4),
        [GROUP_CLOSE, 2, 5, PAUSE, 3, WAIT_FOR, 5, 3, STATE, 5],
        [GROUP_DESTROY, 0, 0, GROUP_DESTROY, 1, 0, GROUP_DESTROY, 2, 0],
        gcreate(0, 0, gcfg(P_QUORUM, quorum=3), GT_2US),
        gsubmit(0, G_SUCCEED),
        gsubmit(0, G_SPIN, param=2),
        [GROUP_CLOSE, 0, 6, CANCEL, 6, GROUP_CANCEL, 0, GC_FUTURE],
        [GROUP_CANCEL, 0, GC_BAD_ARGS],
        gsubmit(0, G_SUCCEED, mode=GM_BAD_FLAGS),
    ),
    # Closing: members add after the close, outsiders cannot; a second
    # close; joins over members and the group's future; a cancelling
    # shutdown with members held; a group destroyed open.
    "32-groups-close-and-shutdown": program(
        create(0, cfg(2)),
        gcreate(0, 0, gcfg(P_ALL, limit=1)),
        gsubmit(0, G_SPIN, dst=0, param=4),
        gsubmit(0, G_ADDER, dst=1, param=adder(2, G_SPIN)),
        gsubmit(0, G_ADDER, param=adder(1, G_FAIL)),
        [GROUP_CLOSE, 0, 2, GROUP_CLOSE, 0, 3],
        gsubmit(0, G_SUCCEED),
        join(WHEN_ALL, 4, [0, 1, 2]),
        join(WHEN_ANY, 5, [2, 0]),
        [WAIT, 4, STATE, 5, ON_COMPLETE, 2, 1],
        gcreate(1, 0, gcfg(P_FIRST_SUCCESS, limit=1)),
        gsubmit(1, G_SPIN, param=7),
        gsubmit(1, G_SUCCEED, dst=6),
        gsubmit(1, G_FAIL, dst=7),
        [GROUP_CLOSE, 1, 8],
        [POOL_SHUTDOWN, 0, CANCEL_HOW],
        gsubmit(1, G_SUCCEED),
        [WAIT, 8, STATE, 6, STATE, 7],
        create(1, cfg(1)),
        gcreate(2, 1, gcfg(P_ALL)),
        gsubmit(2, G_ADDER, param=adder(2, G_SUCCEED)),
        gsubmit(2, G_SPIN, param=3),
        [POOL_DESTROY, 1],
        gsubmit(2, G_SUCCEED),
        [GROUP_DESTROY, 2, 0],
    ),
    "36-traces": program(
        create(0, cfg(2)),
        [TRACE, 0, TR_START + 4 * 3],
        submit(0, SUCCEED, 0),
        submit(0, FAIL, 1, param=fail_param(5)),
        parallel_for(0, 20, 2),
        wait_all([0, 1]),
        [TRACE, 0, TR_LATENCY, TRACE, 0, TR_START],
        [TRACE, 0, TR_STOP_JSON, TRACE, 0, TR_STOP_NULL],
        [TRACE, 0, TR_START + 4 * 15],
        submit(0, NESTED, 2, param=1),
        submit(0, SUCCEED, 3),
        [WAIT, 2, TRACE, 0, TR_STOP_NULL, TRACE, 0, TR_LATENCY],
        [TRACE, 0, 250, TRACE, 0, TR_START],
        submit(0, SUCCEED, FORGET),
        [POOL_DESTROY, 0],
    ),
    "37-watchdog": program(
        create(0, cfg(2)),
        [WATCHDOG, 0, WD_SET],
        submit(0, SUCCEED, 0),
        parallel_for(0, 30, 1),
        [PAUSE, 3, WATCHDOG, 0, WD_SET_AGAIN + 4, PAUSE, 3],
        [WATCHDOG, 0, WD_REMOVE, WATCHDOG, 0, WD_REMOVE],
        [WATCHDOG, 0, 250, WATCHDOG, 0, WD_SET],
        [TRACE, 0, TR_START],
        submit(0, SUCCEED, FORGET),
        [POOL_DESTROY, 0],
    ),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
