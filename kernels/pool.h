/* A small pool of worker threads (C11 <threads.h>) that runs one batch of
 * independent tasks at a time, the calling thread taking part. Which thread
 * runs a task never changes what the task computes, so results are the same
 * for any pool size. */
#ifndef CT_POOL_H
#define CT_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_pool ct_pool;

/* A task: `worker` is in [0, size) and unique among tasks running at once
 * (0 is the caller), so it can index per-thread scratch. */
typedef void (*ct_pool_task)(void *ctx, int task, int worker);

/* n_threads >= 1 counts the caller; NULL if threads cannot be started. */
ct_pool *ct_pool_new(int n_threads);
void ct_pool_free(ct_pool *pool);
int ct_pool_size(const ct_pool *pool);

/* Runs fn for task = 0..n_tasks-1 and returns when all are done. */
void ct_pool_run(ct_pool *pool, int n_tasks, ct_pool_task fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
