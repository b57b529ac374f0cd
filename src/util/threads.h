/* A persistent thread pool for data-parallel loops.
 *
 * Threads are created once (zc_pool_create) and reused for every parallel
 * region, so a decode step pays no thread start-up cost. Idle workers spin
 * briefly, then sleep on a condition variable. The calling thread takes part
 * in the work, so a pool of n threads starts n - 1 workers.
 */
#ifndef ZC_UTIL_THREADS_H
#define ZC_UTIL_THREADS_H

typedef struct zc_pool zc_pool;

/* fn(ctx, task, thread): run task `task` of the region on thread `thread`
 * (0 <= thread < zc_pool_size()); thread indexes scratch buffers. */
typedef void (*zc_task_fn)(void *ctx, int task, int thread);

/* Create a pool of n_threads (>= 1; 0 means all cores). NULL on failure. */
zc_pool *zc_pool_create(int n_threads);
void zc_pool_destroy(zc_pool *pool);
int zc_pool_size(const zc_pool *pool);

/* Run fn for tasks 0..n_tasks-1 across the pool and wait for all of them.
 * Tasks are handed out dynamically (an atomic counter), so uneven tasks
 * balance. A NULL pool runs everything on the caller. Not reentrant: do not
 * call zc_pool_run from inside a task. */
void zc_pool_run(zc_pool *pool, int n_tasks, zc_task_fn fn, void *ctx);

#endif
