// Parallel.forEachTask's threads: a fixed set of workers that spin for a short while between
// parallel regions instead of going back to sleep at the end of each one.
//
// Why: a UNet pass at 512 opens about 1,500 parallel regions (every GEMM packs and then computes,
// every norm and element-wise loop splits), and through DispatchQueue.concurrentPerform each of
// them woke a worker that had gone to sleep on a futex at the end of the previous one (about 2,400
// context switches per pass). OpenMP, which PyTorch uses, keeps its workers spinning between
// regions for the same reason. Here a worker spins for AK_POOL_SPIN_NS after each job, then
// sleeps on a futex, so an idle process (a farm worker between jobs) costs no CPU; with more
// threads than online CPUs (tests, or ATELIER_THREADS set high) nobody spins, since a spinning
// thread would then take a CPU from one with work. Measured on a 2-vCPU Xeon (0xCF), UNet passes
// at 512 alternating pool and libdispatch in one process, 8 pairs each: bf16 0.968 × (median of
// the pairs' ratios; mean 0.971), fp32 1.024 × (mean 0.998), where identical code on both sides
// gave 0.977 and 1.025: under 1 %, below this host's noise. Per region it is clear: 4 tasks of
// 50 µs on 2 threads (ideal 100 µs) take 103–135 µs here against 169–183 µs through
// libdispatch, and a region of 3 tiny tasks costs 0.5 µs. A pass on 2 threads still
// takes 0.56 × its 1-thread time: what is left is mostly the threads finishing a region at
// different times, not waking up.
//
// Results never depend on this: tasks take indices from one shared counter, and every caller
// cuts its work so that no result depends on which thread runs which task.

#include "AtelierKernelsC.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define AK_PAUSE() _mm_pause()
#else
#define AK_PAUSE() ((void)0)
#endif

enum { AK_POOL_MAX = 255 };
/// How long a worker (and the caller at the end of a region) spins before sleeping: long enough to
/// bridge the gap between two regions of a pass (microseconds), short enough that an idle
/// process goes quiet at once.
static const long AK_POOL_SPIN_NS = 200000;

static void futex_wait(atomic_uint *word, unsigned expected) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static void futex_wake_all(atomic_uint *word) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}
static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Waits until *word differs from `seen` and returns the new value: spins for `spin_ns`, then
/// sleeps on the futex with *asleep set, so that whoever changes the word knows to wake it. (The
/// flag is set before the futex re-reads the word: a change made after the flag is seen and woken,
/// one made before makes the wait return at once.)
static unsigned wait_change(atomic_uint *word, unsigned seen, atomic_int *asleep, long spin_ns) {
    unsigned v;
    long start = spin_ns > 0 ? now_ns() : 0;
    int spins = 0;
    while ((v = atomic_load(word)) == seen) {
        if (spin_ns > 0 && (++spins % 64 != 0 || now_ns() - start < spin_ns)) {
            AK_PAUSE();
            continue;
        }
        atomic_store(asleep, 1);
        futex_wait(word, seen);
        atomic_store(asleep, 0);
    }
    return v;
}

/// The one job in flight, written by the caller before it hands out the tickets, read by a worker
/// only after it has joined the job (see `state`).
static struct {
    void (*fn)(void *, long);
    void *ctx;
    long count;
    long spin_ns;           ///< the spin budget of this job's threads (0 when oversubscribed)
    atomic_long next;       ///< the next task index
    /// The job's number (high 32 bits), a closed flag (bit 31) and how many workers joined (low
    /// bits). A worker joins with a compare-and-swap while the number is its ticket and the job is
    /// open; the caller closes it once it runs out of tasks and then waits only for those that
    /// joined. So a worker the OS has not scheduled yet (a vCPU taken by the host) never holds a
    /// region up: it finds the job closed and touches nothing.
    atomic_ulong state;
    atomic_uint done;       ///< joined workers that have finished (the caller's futex word)
    atomic_int caller_asleep;
} job;
#define AK_POOL_CLOSED (1UL << 31)
#define AK_POOL_JOINED_MASK (AK_POOL_CLOSED - 1)

/// One worker's mailbox: the caller writes the job's number into `ticket` to offer it the job.
static struct {
    atomic_uint ticket;
    atomic_int asleep;
    long spin_ns;  ///< this worker's spin budget for its next wait (that of its last job)
} slots[AK_POOL_MAX + 1];

static atomic_int busy;             ///< 1 while a caller owns the pool
static pthread_mutex_t grow = PTHREAD_MUTEX_INITIALIZER;
static int started;                 ///< workers created so far (under `grow`)
static unsigned number;             ///< the last job's number (under `busy`)
static long online_cpus;            ///< sysconf's count, read once
static _Thread_local int in_pool;   ///< set on workers, and on a caller inside ak_pool_run

static void run_tasks(void) {
    for (;;) {
        long i = atomic_fetch_add_explicit(&job.next, 1, memory_order_relaxed);
        if (i >= job.count) break;
        job.fn(job.ctx, i);
    }
}

static void *worker_main(void *arg) {
    const int index = (int)(long)arg;
    in_pool = 1;
    unsigned seen = 0;  // job numbers start at 1
    for (;;) {
        seen = wait_change(&slots[index].ticket, seen, &slots[index].asleep, slots[index].spin_ns);
        unsigned long st = atomic_load(&job.state);
        int joined = 0;
        while ((unsigned)(st >> 32) == seen && !(st & AK_POOL_CLOSED)) {
            if (atomic_compare_exchange_weak(&job.state, &st, st + 1)) {
                joined = 1;
                break;
            }
        }
        if (!joined) continue;  // closed (the caller ran the rest) or already a newer job
        slots[index].spin_ns = job.spin_ns;
        run_tasks();
        atomic_fetch_add(&job.done, 1);
        if (atomic_load(&job.caller_asleep)) futex_wake_all(&job.done);
    }
    return NULL;
}

/// A forked child has only the thread that forked: forget the parent's workers (they would never
/// answer), so its first region creates its own.
static void after_fork_in_child(void) {
    atomic_store(&job.state, AK_POOL_CLOSED);
    for (int i = 0; i <= AK_POOL_MAX; i++) {
        atomic_store(&slots[i].ticket, 0);
        atomic_store(&slots[i].asleep, 0);
        slots[i].spin_ns = 0;
    }
    started = 0;
    number = 0;
    atomic_store(&busy, 0);
    in_pool = 0;
    pthread_mutex_init(&grow, NULL);
}
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
static void install_fork_handler(void) { pthread_atfork(NULL, NULL, after_fork_in_child); }

/// Creates workers up to `want` (1…AK_POOL_MAX); returns how many exist.
static int ensure_workers(int want) {
    pthread_once(&fork_handler_once, install_fork_handler);
    pthread_mutex_lock(&grow);
    while (started < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, worker_main, (void *)(long)(started + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        started++;
    }
    int have = started;
    pthread_mutex_unlock(&grow);
    return have;
}

int ak_pool_run(int threads, long count, void (*fn)(void *ctx, long task), void *ctx) {
    if (!fn || count < 0) return -1;
    if (count == 0) return 0;
    if (threads > AK_POOL_MAX + 1) threads = AK_POOL_MAX + 1;
    // Nested (a task that opens a region) or concurrent (another thread's region in flight):
    // the caller decides what to do instead (Parallel runs it on libdispatch).
    if (threads < 2 || in_pool) return -1;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&busy, &expected, 1)) return -1;
    int workers = ensure_workers(threads - 1);
    if (workers > threads - 1) workers = threads - 1;
    if (workers < 1) {
        atomic_store(&busy, 0);
        return -1;
    }
    if (!online_cpus) online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (++number == 0) number = 1;  // 0 is every worker's "nothing seen yet"
    job.fn = fn;
    job.ctx = ctx;
    job.count = count;
    job.spin_ns = online_cpus > 0 && threads <= online_cpus ? AK_POOL_SPIN_NS : 0;
    atomic_store(&job.next, 0);
    atomic_store(&job.done, 0);
    atomic_store(&job.state, (unsigned long)number << 32);  // open, nobody joined
    for (int w = 1; w <= workers; w++) {
        atomic_store(&slots[w].ticket, number);
        if (atomic_load(&slots[w].asleep)) futex_wake_all(&slots[w].ticket);
    }
    in_pool = 1;
    run_tasks();
    in_pool = 0;
    const unsigned joined = (unsigned)(atomic_fetch_or(&job.state, AK_POOL_CLOSED) & AK_POOL_JOINED_MASK);
    unsigned finished;
    while ((finished = atomic_load(&job.done)) != joined)
        wait_change(&job.done, finished, &job.caller_asleep, job.spin_ns);
    atomic_store(&busy, 0);
    return 0;
}

#else
int ak_pool_run(int threads, long count, void (*fn)(void *ctx, long task), void *ctx) {
    (void)threads; (void)count; (void)fn; (void)ctx;
    return -1;
}
#endif
