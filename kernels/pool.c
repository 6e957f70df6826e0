#include "pool.h"

#include <stdbool.h>
#include <stdlib.h>
#include <threads.h>

struct ct_pool {
  int size; /* threads including the caller */
  thrd_t *workers;
  int started;
  mtx_t lock;
  cnd_t work_ready, work_done;
  /* The batch in progress, under lock. */
  unsigned long batch;
  ct_pool_task fn;
  void *ctx;
  int n_tasks, next_task, finished;
  bool quit;
};

typedef struct {
  ct_pool *pool;
  int worker;
} worker_arg;

/* Claims and runs tasks of the current batch; called with the lock held. */
static void run_tasks(ct_pool *pool, int worker) {
  while (pool->next_task < pool->n_tasks) {
    int task = pool->next_task++;
    mtx_unlock(&pool->lock);
    pool->fn(pool->ctx, task, worker);
    mtx_lock(&pool->lock);
    if (++pool->finished == pool->n_tasks)
      cnd_broadcast(&pool->work_done);
  }
}

static int worker_main(void *data) {
  worker_arg arg = *(worker_arg *)data;
  free(data);
  ct_pool *pool = arg.pool;
  unsigned long seen = 0;
  mtx_lock(&pool->lock);
  for (;;) {
    while (!pool->quit && pool->batch == seen)
      cnd_wait(&pool->work_ready, &pool->lock);
    if (pool->quit)
      break;
    seen = pool->batch;
    run_tasks(pool, arg.worker);
  }
  mtx_unlock(&pool->lock);
  return 0;
}

ct_pool *ct_pool_new(int n_threads) {
  if (n_threads < 1)
    return NULL;
  ct_pool *pool = calloc(1, sizeof *pool);
  if (!pool)
    return NULL;
  pool->size = n_threads;
  if (mtx_init(&pool->lock, mtx_plain) != thrd_success) {
    free(pool);
    return NULL;
  }
  cnd_init(&pool->work_ready);
  cnd_init(&pool->work_done);
  pool->workers = calloc((size_t)n_threads, sizeof(thrd_t));
  bool ok = pool->workers != NULL;
  for (int i = 1; ok && i < n_threads; i++) {
    worker_arg *arg = malloc(sizeof *arg);
    ok = arg != NULL;
    if (ok) {
      *arg = (worker_arg){.pool = pool, .worker = i};
      ok = thrd_create(&pool->workers[i], worker_main, arg) == thrd_success;
      if (!ok)
        free(arg);
    }
    if (ok)
      pool->started++;
  }
  if (!ok) {
    ct_pool_free(pool);
    return NULL;
  }
  return pool;
}

void ct_pool_free(ct_pool *pool) {
  if (!pool)
    return;
  mtx_lock(&pool->lock);
  pool->quit = true;
  cnd_broadcast(&pool->work_ready);
  mtx_unlock(&pool->lock);
  for (int i = 1; i <= pool->started; i++)
    thrd_join(pool->workers[i], NULL);
  cnd_destroy(&pool->work_ready);
  cnd_destroy(&pool->work_done);
  mtx_destroy(&pool->lock);
  free(pool->workers);
  free(pool);
}

int ct_pool_size(const ct_pool *pool) {
  return pool->size;
}

void ct_pool_run(ct_pool *pool, int n_tasks, ct_pool_task fn, void *ctx) {
  if (n_tasks <= 0)
    return;
  if (pool->size == 1 || n_tasks == 1) {
    for (int t = 0; t < n_tasks; t++)
      fn(ctx, t, 0);
    return;
  }
  mtx_lock(&pool->lock);
  pool->fn = fn;
  pool->ctx = ctx;
  pool->n_tasks = n_tasks;
  pool->next_task = 0;
  pool->finished = 0;
  pool->batch++;
  cnd_broadcast(&pool->work_ready);
  run_tasks(pool, 0);
  while (pool->finished < pool->n_tasks)
    cnd_wait(&pool->work_done, &pool->lock);
  mtx_unlock(&pool->lock);
}
