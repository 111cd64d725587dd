// A small persistent pool: the caller runs chunk 0, workers run chunks 1..k-1 of a static split.
// It owns all of seqkern's parallelism: OpenBLAS runs single-threaded inside its chunks (its own
// pool would spin on the cores this one needs). One pool per process: kernel calls from several
// Python threads take turns; a chunk that asks for more parallelism runs its work inline.
//
// In a process that has loaded GNU OpenMP (torch does: its ops run on a libgomp team), the chunks
// run on that team instead. libgomp's idle threads spin for milliseconds after every parallel
// region, so a second pool competes with them for the cores: measured here (2 vCPUs), a 2-layer
// LSTM (35,20,200,200) training step through seqkern.torch took 35 ms on seqkern's pool right
// after torch's ops, against 16 ms for the same kernels without torch's threads awake.
#include "seqkern/threads.h"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "seqkern/cpu_count.h"

namespace seqkern {

namespace {

thread_local bool t_in_pool = false;  // nested parallel_for calls run inline
// Set while this thread runs a chunk of a split in which every chunk has a thread of its own
// (run_team's members may then wait for each other).
thread_local bool t_chunk_alone = false;

struct InPool {
  explicit InPool(bool alone = false) {
    t_in_pool = true;
    t_chunk_alone = alone;
  }
  ~InPool() { t_in_pool = t_chunk_alone = false; }
};

// The entry points of a GNU OpenMP runtime already loaded in this process, or null.
struct OpenMP {
  void (*parallel)(void (*)(void*), void*, unsigned, unsigned);  // GOMP_parallel
  int (*thread_num)();
  int (*num_threads)();
  int (*in_parallel)();
  int (*get_dynamic)();
};

// How many shared objects this process has loaded so far (glibc's count, read from the first
// entry of the list).
unsigned long long objects_loaded() {
  unsigned long long adds = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t size, void* out) {
        if (size >= offsetof(dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds)
          *static_cast<unsigned long long*>(out) = info->dlpi_adds;
        return 1;  // the first entry is enough
      },
      &adds);
  return adds;
}

const OpenMP* loaded_openmp() {  // called with g_pool_mutex held
  static const OpenMP* found = nullptr;
  static pid_t found_pid = 0;
  static unsigned long long looked_at = ~0ull;  // objects_loaded() when last looked for
  // libgomp's team does not survive fork: a parallel region in a child whose parent ran one
  // waits forever. A forked child keeps to seqkern's pool, which starts its threads afresh.
  if (found) return found_pid == getpid() ? found : nullptr;
  // Look again only after something new was loaded (say, torch after seqkern's first call): a
  // dlopen that finds nothing maps and unmaps the loader's cache, and the unmap interrupts every
  // other core (a TLB shootdown). At every parallel region that cost 10-20% of a batch-1 LSTM
  // call without torch.
  const unsigned long long loaded = objects_loaded();
  if (loaded == looked_at) return nullptr;
  looked_at = loaded;
  void* lib = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);  // never loads it ourselves
  if (!lib) return nullptr;
  OpenMP omp{
      reinterpret_cast<decltype(OpenMP::parallel)>(dlsym(lib, "GOMP_parallel")),
      reinterpret_cast<decltype(OpenMP::thread_num)>(dlsym(lib, "omp_get_thread_num")),
      reinterpret_cast<decltype(OpenMP::num_threads)>(dlsym(lib, "omp_get_num_threads")),
      reinterpret_cast<decltype(OpenMP::in_parallel)>(dlsym(lib, "omp_in_parallel")),
      reinterpret_cast<decltype(OpenMP::get_dynamic)>(dlsym(lib, "omp_get_dynamic"))};
  if (!omp.parallel || !omp.thread_num || !omp.num_threads || !omp.in_parallel ||
      !omp.get_dynamic) {
    dlclose(lib);
    return nullptr;
  }
  found = new OpenMP(omp);  // kept, with the reference to the library, for the process
  found_pid = getpid();
  return found;
}

// The first exception thrown by a chunk of a split, rethrown to the caller once every chunk has
// ended (an exception leaving a thread's function would terminate the process; one leaving the
// caller's chunk early would unwind the state the other chunks still use).
class FirstError {
 public:
  template <typename F>
  void run(F&& f) {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lk(m_);
      std::swap(e, error_);
    }
    if (e) std::rethrow_exception(e);
  }

 private:
  std::mutex m_;
  std::exception_ptr error_;
};

struct OpenMPWork {
  const OpenMP* omp;
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t n;
  int chunks;
  FirstError error;
};

// Each thread of the OpenMP team runs the chunks numbered its rank, rank + team size, ...: the
// same static split as the pool's, whatever team size the runtime granted.
void run_openmp_chunks(void* p) {
  auto& w = *static_cast<OpenMPWork*>(p);
  const int rank = w.omp->thread_num(), size = w.omp->num_threads();
  InPool in(size >= w.chunks);
  w.error.run([&] {
    for (int c = rank; c < w.chunks; c += size)
      (*w.fn)(w.n * c / w.chunks, w.n * (c + 1) / w.chunks);
  });
}

// Waits poll a flag for up to kSpinTime before they sleep (the caller waiting for workers) or
// yield (team members): the kernels run several parallel regions and up to two barriers per
// time step, and waking a sleeping thread costs more than that on a VM. The polling loop has no
// PAUSE: in a KVM guest a PAUSE loop that outlasts the pause-loop-exit window traps to the
// hypervisor, which may run something else on that vCPU for microseconds. Measured here (2
// vCPUs), LSTM (50,1,256,256) inference with its two barriers per step: 0.85 ms per call with
// PAUSE, 0.58 ms without.
constexpr auto kSpinTime = std::chrono::microseconds(100);

// An idle worker polls for its next task this long before it sleeps: long enough to span the
// Python work between the kernel calls of a training loop (the loss, an optimizer step), so that
// the next call finds it running instead of waking it. Measured, training steps with 0.2 ms of
// other work between calls, medians over five alternating runs: LSTM (50,8,256,256) 10.1-13.9
// ms with 100 us of polling, 8.7-11.2 with 1 ms; (50,1) 1.7-3.4 against 1.8-2.3.
constexpr auto kWorkerSpinTime = std::chrono::microseconds(1000);

// Set while the thread count exceeds the CPUs the process may use (available_cpus): a waiting
// thread then holds a CPU that a thread it waits for needs, so waits do not poll (as GNU
// OpenMP throttles its spinning then) and team members sleep at the barrier. Measured here
// (Zen 5, 2 cores), calls back to back for 2 s, before / after: 4 threads, LSTM inference
// (50,1,256,256) 17.3 / 2.0 ms, (50,8,256,256) 18.7 / 2.8, (100,64,256,256) 23.9 / 19.8, the
// GRU at batch 1 17.1 / 2.1; 8 threads 45.3 / 2.6, 46.9 / 4.0, 39.3 / 27.3 and 47.3 / 2.3.
// (2 threads: 0.25, 1.0, 15.6 and 0.21 ms; paired, unchanged.)
std::atomic<bool> g_oversubscribed{false};

// Polls done() until it holds (true) or `spin` has passed (false); false at once when the
// threads are oversubscribed.
template <typename Done>
bool spin_until(Done&& done, std::chrono::microseconds spin = kSpinTime) {
  if (g_oversubscribed.load(std::memory_order_relaxed)) return done();
  const auto deadline = std::chrono::steady_clock::now() + spin;
  for (;;) {
    for (int i = 0; i < 256; ++i)
      if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

// Moves the calling thread off `cpu` when it runs there, by excluding that CPU from its affinity
// for a moment (sched_setaffinity migrates a thread at once when its CPU leaves the mask) and
// then restoring the mask it had. A worker woken from sleep is often placed on its waker's CPU
// (the scheduler's wake-affine choice), where it shares one core with the caller until load
// balancing moves one of them, milliseconds later; a team that meets at a barrier every step
// then runs both halves on that core by turns. Measured here: LSTM (50,1,256,256) inference
// after 100 ms idle, 5-8 ms for the first call and 2.4-3.4 ms for the second, against 0.6 ms.
void step_off(int cpu) {
  cpu_set_t mask;
  if (cpu < 0 || sched_getcpu() != cpu || sched_getaffinity(0, sizeof mask, &mask) != 0) return;
  cpu_set_t away = mask;
  CPU_CLR(cpu, &away);
  if (CPU_COUNT(&away) > 0 && sched_setaffinity(0, sizeof away, &away) == 0)
    sched_setaffinity(0, sizeof mask, &mask);
}

class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int k = 1; k < n; ++k) workers_.emplace_back([this, k] { loop(k); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return n_; }

  // Runs fn over `chunks` static pieces of [0, n); chunks <= size().
  void run(int64_t n, int chunks, const std::function<void(int64_t, int64_t)>& fn) {
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      caller_cpu_ = sched_getcpu();
      n_work_ = n;
      chunks_ = chunks;
      pending_.store(n_ - 1, std::memory_order_relaxed);  // every worker checks in, even idle ones
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    {
      InPool in(true);
      error_.run([&] { fn(0, n / chunks); });
    }
    if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lk(m_);
      done_.wait(lk, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    error_.rethrow();
  }

 private:
  void loop(int k) {
    uint64_t seen = 0;
    for (;;) {
      if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; },
                      kWorkerSpinTime)) {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, [&] {
          return stop_ || generation_.load(std::memory_order_acquire) != seen;
        });
        if (stop_) return;
      }
      // fn_, caller_cpu_, n_work_ and chunks_ were written before the generation was bumped
      // (release). Nothing is rewritten before every worker has checked in below.
      seen = generation_.load(std::memory_order_acquire);
      const auto* fn = fn_;
      const int64_t n = n_work_, chunks = chunks_;
      if (k < chunks) {
        step_off(caller_cpu_);
        InPool in(true);
        error_.run([&] { (*fn)(n * k / chunks, n * (k + 1) / chunks); });
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(m_);
        done_.notify_one();
      }
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_work_ = 0;
  int chunks_ = 0;
  int caller_cpu_ = -1;  // where run() was called from, or -1 when unknown
  FirstError error_;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

std::mutex g_pool_mutex;  // held while the pool runs work or is replaced
std::unique_ptr<Pool> g_pool;
int g_threads = 0;
pid_t g_pool_pid = 0;  // a forked child must not use its parent's (absent) worker threads

// Sets the thread count (g_pool_mutex held) and whether it oversubscribes the CPUs; only here, so
// that the calls do not write the flag the waiting threads read.
void set_threads_locked(int n) {
  static const int cpus = available_cpus();
  g_threads = n > 0 ? n : cpus;
  g_oversubscribed.store(g_threads > cpus, std::memory_order_relaxed);
}

int threads_locked() {
  if (g_threads == 0) set_threads_locked(0);  // the default
  return g_threads;
}

Pool& pool_locked() {
  threads_locked();
  if (!g_pool || g_pool_pid != getpid() || g_pool->size() != g_threads) {
    if (g_pool_pid != getpid()) g_pool.release();  // the parent's threads do not exist here
    g_pool = std::make_unique<Pool>(g_threads);
    g_pool_pid = getpid();
  }
  return *g_pool;
}

}  // namespace

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_pool_mutex);
  set_threads_locked(std::max(1, n));
}

int get_num_threads() {
  if (t_in_pool) return 1;  // inside a chunk, parallel work runs inline (and the pool is locked)
  std::lock_guard<std::mutex> lk(g_pool_mutex);
  return threads_locked();
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (t_in_pool) {
    fn(0, n);
    return;
  }
  // Another Python thread's kernel may hold the pool: wait for it rather than run with fewer
  // threads, so that results stay bitwise reproducible. (Callers have released the GIL.)
  std::unique_lock<std::mutex> lk(g_pool_mutex);
  const int64_t chunks = std::min<int64_t>(threads_locked(), n / std::max<int64_t>(grain, 1));
  if (chunks < 2) {  // too little to share: run here, as one chunk (nested calls stay inline)
    lk.unlock();
    InPool in;
    fn(0, n);
    return;
  }
  const OpenMP* omp = loaded_openmp();
  if (omp && !omp->in_parallel() && !omp->get_dynamic()) {
    OpenMPWork work{omp, &fn, n, static_cast<int>(chunks), {}};
    omp->parallel(run_openmp_chunks, &work, static_cast<unsigned>(chunks), 0);
    work.error.rethrow();
    return;
  }
  pool_locked().run(n, static_cast<int>(chunks), fn);
}

struct Team::Shared {
  std::atomic<int> arrived{0};
  std::atomic<uint64_t> generation{0};
  // Oversubscribed: members sleep at the barrier and the last to arrive wakes them, so that the
  // CPUs go to the members still on their way.
  bool blocking = false;
  std::mutex m;
  std::condition_variable passed;
};

void Team::sync() {
  if (size == 1) return;
  Shared& sh = *shared_;
  const uint64_t gen = sh.generation.load(std::memory_order_acquire);
  if (sh.arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == size) {
    sh.arrived.store(0, std::memory_order_relaxed);
    if (!sh.blocking) {
      sh.generation.store(gen + 1, std::memory_order_release);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(sh.m);
      sh.generation.store(gen + 1, std::memory_order_release);
    }
    sh.passed.notify_all();
    return;
  }
  const auto passed = [&] { return sh.generation.load(std::memory_order_acquire) != gen; };
  if (sh.blocking) {
    std::unique_lock<std::mutex> lk(sh.m);
    sh.passed.wait(lk, passed);
    return;
  }
  // Spin briefly, then yield: on a busy machine another member may have lost its core.
  if (spin_until(passed)) return;
  while (!passed()) sched_yield();
}

void run_team(const std::function<void(Team&)>& fn) {
  Team::Shared shared;
  const int64_t n = get_num_threads();
  shared.blocking = g_oversubscribed.load(std::memory_order_relaxed);
  parallel_for(n, 1, [&](int64_t r0, int64_t r1) {
    Team team;
    if (r1 - r0 == 1 && t_chunk_alone) {  // one chunk per thread: a real team
      team.rank = static_cast<int>(r0);
      team.size = static_cast<int>(n);
      team.shared_ = &shared;
    } else if (r0 != 0) {
      return;  // fewer threads than members: the first chunk does all the work, alone
    }
    fn(team);
  });
}

}  // namespace seqkern
