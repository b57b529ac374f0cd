#include "util/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/cpu.h"
#include "util/error.h"

/* Spins before a waiting thread yields its core (caller) or sleeps (worker). */
#define SPIN_ITERS 4000

/* Tasks are claimed from one 64-bit word holding (region << 32 | next task),
 * so a worker that saw an old region can never claim a task of a newer one:
 * its compare-and-swap fails once the region number changed. A region ends
 * when all its tasks have completed, not when every worker has checked in,
 * so a worker that the OS has not scheduled yet (2 cores shared with other
 * processes) never delays the caller: the caller runs the tasks itself. */
struct zc_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint_fast64_t claim;  /* region << 32 | next unclaimed task */
    atomic_uint region;          /* current region number; sleepers wait for a change */
    atomic_int tasks_done;
    atomic_int stop;
    atomic_int n_tasks;          /* of the current region; written before it is published */
    zc_task_fn fn;
    void *ctx;
};

typedef struct {
    zc_pool *pool;
    int thread;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claim and run tasks of `region` until none is left. */
static void drain_tasks(zc_pool *p, unsigned region, int thread) {
    for (;;) {
        uint_fast64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
        if ((unsigned)(c >> 32) != region || (int)(c & 0xffffffffu) >= atomic_load_explicit(&p->n_tasks, memory_order_relaxed))
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        p->fn(p->ctx, (int)(c & 0xffffffffu), thread);
        atomic_fetch_add_explicit(&p->tasks_done, 1, memory_order_release);
    }
}

static void *worker_main(void *argp) {
    worker_arg arg = *(worker_arg *)argp;
    free(argp);
    zc_pool *p = arg.pool;
    unsigned seen = 0;
    for (;;) {
        unsigned r;
        int spins = 0;
        while ((r = atomic_load_explicit(&p->region, memory_order_acquire)) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->region) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = r;
        drain_tasks(p, r, arg.thread);
    }
}

zc_pool *zc_pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = zc_cpu_count();
    zc_pool *p = zc_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->workers = zc_calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->workers) {
            p->n_threads = 1;
            zc_pool_destroy(p);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = zc_malloc(sizeof *a);
        if (!a || pthread_create(&p->workers[i - 1], NULL, worker_main, a ? (a->pool = p, a->thread = i, a) : a)) {
            free(a);
            p->n_threads = i;
            zc_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void zc_pool_destroy(zc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p);
}

int zc_pool_size(const zc_pool *p) { return p ? p->n_threads : 1; }

void zc_pool_run(zc_pool *p, int n_tasks, zc_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    /* The previous region is complete, so no thread reads these now. */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&p->tasks_done, 0, memory_order_relaxed);
    unsigned region = atomic_load_explicit(&p->region, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->claim, (uint_fast64_t)region << 32, memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->region, region, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain_tasks(p, region, 0);
    /* Wait for tasks other threads are still running; yield the core now and
     * then in case the thread running one is waiting for it. */
    for (int spins = 0; atomic_load_explicit(&p->tasks_done, memory_order_acquire) < n_tasks; spins++) {
        if (spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
}
