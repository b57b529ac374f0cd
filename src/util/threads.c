#include "util/threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util/cpu.h"

#define SPIN_ITERS 20000

struct zc_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint generation;   /* bumped for every region; workers wait for a change */
    atomic_int next_task;     /* next task index to hand out */
    atomic_int workers_done;  /* workers finished with the current region */
    atomic_int stop;
    int n_tasks;
    zc_task_fn fn;
    void *ctx;
};

typedef struct {
    zc_pool *pool;
    int thread;
} worker_arg;

static void drain_tasks(zc_pool *p, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker_main(void *argp) {
    worker_arg arg = *(worker_arg *)argp;
    free(argp);
    zc_pool *p = arg.pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        drain_tasks(p, arg.thread);
        atomic_fetch_add_explicit(&p->workers_done, 1, memory_order_release);
    }
}

zc_pool *zc_pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = zc_cpu_count();
    zc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->workers) {
            zc_pool_destroy(p);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) {
            p->n_threads = i;
            zc_pool_destroy(p);
            return NULL;
        }
        a->pool = p;
        a->thread = i;
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, a) != 0) {
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
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->workers_done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain_tasks(p, 0);
    int workers = p->n_threads - 1;
    while (atomic_load_explicit(&p->workers_done, memory_order_acquire) < workers) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}
