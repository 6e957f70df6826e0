#include "pool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

/* Streams push every few microseconds (10 ms of audio, one row of video), so
 * handing out a batch must cost far less than waking a sleeping thread.
 * Threads therefore spin for a while after a batch before they sleep, and
 * tasks are claimed with one atomic compare-and-swap on a word that also
 * names the batch, so a late thread can never claim a task of a batch that
 * has already been replaced.
 *
 * Every cache line the two sides share costs a trip between cores (up to
 * 0.2 us on these VMs) when it changes hands, so the caller publishes a
 * batch with one plain store and starts its own task, task 0, which it
 * claims in that same store: it never waits for the line the workers are
 * polling. The count of finished tasks only grows (no reset to fetch back
 * from the last worker that wrote it) and has a line of its own. */
enum { SPIN_NS = 200000 };
/* Reading the clock costs as much as a short task on some VMs: spin this
 * many times before looking at it, and look only now and then after. */
enum { SPINS_BEFORE_CLOCK = 4096, SPINS_PER_CLOCK = 256 };

/* The claim word: batch number (high 32 bits), task count (bits 16-31),
 * next task to hand out (bits 0-15). */
#define CLAIM(batch, n, next) (((uint64_t)(batch) << 32) | ((uint64_t)(n) << 16) | (next))
#define CLAIM_BATCH(w) ((uint32_t)((w) >> 32))
#define CLAIM_COUNT(w) ((int)(((w) >> 16) & 0xffff))
#define CLAIM_NEXT(w) ((int)((w)&0xffff))
enum { MAX_BATCH_TASKS = 0xffff };

struct ct_pool {
  int size; /* threads including the caller */
  thrd_t *workers;
  int started;
  /* The batch in progress: fn, ctx and base (the number of its task 0)
   * are written before `claim` publishes the batch and stay until all its
   * tasks have finished; `target` is the value of `finished` once they
   * have. */
  _Alignas(64) ct_pool_task fn;
  void *ctx;
  int base;
  _Atomic uint64_t claim;
  unsigned target;
  atomic_bool quit;
  _Alignas(64) atomic_uint finished; /* tasks ever finished (wraps) */
  /* Sleeping, after the spin: workers wait for a batch, the caller for the
   * last task. The counters say whether anyone needs a signal. */
  mtx_t lock;
  cnd_t work_ready, work_done;
  atomic_int sleepers;
  atomic_bool caller_waiting;
};

typedef struct {
  ct_pool *pool;
  int worker;
} worker_arg;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* After a task of the batch: wakes the caller if it sleeps and this was the
 * last one. */
static void task_finished(ct_pool *pool, unsigned target) {
  if (atomic_fetch_add_explicit(&pool->finished, 1, memory_order_acq_rel) + 1 == target &&
      atomic_load(&pool->caller_waiting)) {
    mtx_lock(&pool->lock);
    cnd_signal(&pool->work_done);
    mtx_unlock(&pool->lock);
  }
}

/* Claims and runs tasks of the batch in `w` until none is left; returns
 * the batch number. */
static uint32_t run_tasks(ct_pool *pool, uint64_t w, int worker) {
  while (CLAIM_NEXT(w) < CLAIM_COUNT(w)) {
    if (!atomic_compare_exchange_weak_explicit(
            &pool->claim, &w, w + 1, memory_order_acquire, memory_order_acquire))
      continue; /* w now holds the current word, maybe a newer batch */
    /* Read before the task ends: once the last task is counted, the caller
     * may publish the next batch. */
    const unsigned target = pool->target;
    pool->fn(pool->ctx, pool->base + CLAIM_NEXT(w), worker);
    task_finished(pool, target);
    w = atomic_load_explicit(&pool->claim, memory_order_acquire);
  }
  return CLAIM_BATCH(w);
}

static int worker_main(void *data) {
  worker_arg arg = *(worker_arg *)data;
  free(data);
  ct_pool *pool = arg.pool;
  uint32_t done_batch = 0;
  int64_t idle_since = 0;
  for (unsigned spins = 0;; spins++) {
    uint64_t w = atomic_load_explicit(&pool->claim, memory_order_acquire);
    if (CLAIM_BATCH(w) != done_batch) {
      done_batch = run_tasks(pool, w, arg.worker);
      spins = 0;
      continue;
    }
    if (atomic_load(&pool->quit))
      break;
    cpu_relax();
    if (spins < SPINS_BEFORE_CLOCK || spins % SPINS_PER_CLOCK != 0)
      continue;
    if (spins == SPINS_BEFORE_CLOCK)
      idle_since = now_ns();
    if (now_ns() - idle_since < SPIN_NS) {
      /* Past the first spins, let other runnable threads (another element's,
       * the source's) have the core: spinning must not delay them. */
      thrd_yield();
      continue;
    }
    mtx_lock(&pool->lock);
    atomic_fetch_add(&pool->sleepers, 1);
    if (CLAIM_BATCH(atomic_load(&pool->claim)) == done_batch && !atomic_load(&pool->quit))
      cnd_wait(&pool->work_ready, &pool->lock);
    atomic_fetch_sub(&pool->sleepers, 1);
    mtx_unlock(&pool->lock);
    spins = 0;
  }
  return 0;
}

ct_pool *ct_pool_new(int n_threads) {
  if (n_threads < 1)
    return NULL;
  ct_pool *pool = calloc(1, sizeof *pool);
  if (!pool)
    return NULL;
  pool->size = n_threads;
  atomic_init(&pool->claim, 0);
  atomic_init(&pool->finished, 0);
  atomic_init(&pool->quit, false);
  atomic_init(&pool->sleepers, 0);
  atomic_init(&pool->caller_waiting, false);
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
  atomic_store(&pool->quit, true);
  mtx_lock(&pool->lock);
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

/* One batch of at most MAX_BATCH_TASKS tasks, numbered from `base`. */
static void run_batch(ct_pool *pool, int base, int n_tasks, ct_pool_task fn, void *ctx) {
  pool->fn = fn;
  pool->ctx = ctx;
  pool->base = base;
  const unsigned target =
      atomic_load_explicit(&pool->finished, memory_order_relaxed) + (unsigned)n_tasks;
  pool->target = target;
  const uint32_t batch =
      CLAIM_BATCH(atomic_load_explicit(&pool->claim, memory_order_relaxed)) + 1;
  /* Batch 0 means "none yet" to the workers; task 0 is the caller's. */
  atomic_store_explicit(&pool->claim, CLAIM(batch ? batch : 1, n_tasks, 1),
                        memory_order_release);
  /* A worker that went to sleep just now may miss this batch (the store
   * above is not ordered before this load): the caller then runs its
   * tasks, and the next batch wakes it. */
  if (atomic_load_explicit(&pool->sleepers, memory_order_relaxed) > 0) {
    mtx_lock(&pool->lock);
    cnd_broadcast(&pool->work_ready);
    mtx_unlock(&pool->lock);
  }
  fn(ctx, base, 0);
  task_finished(pool, target);
  run_tasks(pool, atomic_load_explicit(&pool->claim, memory_order_acquire), 0);
  /* The others finish tasks as long as ours: spin a little, then sleep. */
  int64_t start = 0;
  for (unsigned spins = 1;
       atomic_load_explicit(&pool->finished, memory_order_acquire) != target; spins++) {
    cpu_relax();
    if (spins < SPINS_BEFORE_CLOCK || spins % SPINS_PER_CLOCK != 0)
      continue;
    if (spins == SPINS_BEFORE_CLOCK)
      start = now_ns();
    if (now_ns() - start < SPIN_NS) {
      thrd_yield();
      continue;
    }
    mtx_lock(&pool->lock);
    atomic_store(&pool->caller_waiting, true);
    while (atomic_load(&pool->finished) != target)
      cnd_wait(&pool->work_done, &pool->lock);
    atomic_store(&pool->caller_waiting, false);
    mtx_unlock(&pool->lock);
    break;
  }
}

void ct_pool_run(ct_pool *pool, int n_tasks, ct_pool_task fn, void *ctx) {
  if (n_tasks <= 0)
    return;
  if (pool->size == 1 || n_tasks == 1) {
    for (int t = 0; t < n_tasks; t++)
      fn(ctx, t, 0);
    return;
  }
  for (int base = 0; base < n_tasks; base += MAX_BATCH_TASKS) {
    const int count = n_tasks - base < MAX_BATCH_TASKS ? n_tasks - base : MAX_BATCH_TASKS;
    run_batch(pool, base, count, fn, ctx);
  }
}
