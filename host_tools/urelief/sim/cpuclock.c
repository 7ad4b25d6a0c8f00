/* The virtual chip's own clock. Preloaded into the board's VM process (virtual clock only):
 * CLOCK_MONOTONIC, which MicroPython's ticks and asyncio's C task queue read, counts the CPU
 * time the process has had, times URELIEF_CPU_SCALE (how much slower the modelled chip runs
 * the same code). A board blocked waiting for the host, or descheduled by a loaded machine,
 * has no CPU time: its device time pauses instead of skipping ahead. Every other clock is
 * untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static int (*real_gettime)(clockid_t, struct timespec *);
static double scale = 1.0;

__attribute__((constructor)) static void cpuclock_init(void) {
    real_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    const char *s = getenv("URELIEF_CPU_SCALE");
    if (s != NULL && atof(s) > 0) {
        scale = atof(s);
    }
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (real_gettime == NULL) {
        cpuclock_init();
    }
    if (id != CLOCK_MONOTONIC && id != CLOCK_MONOTONIC_RAW && id != CLOCK_BOOTTIME) {
        return real_gettime(id, ts);
    }
    struct timespec cpu;
    int r = real_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    if (r != 0) {
        return r;
    }
    long double ns = ((long double)cpu.tv_sec * 1e9L + cpu.tv_nsec) * scale;
    ts->tv_sec = (time_t)(ns / 1e9L);
    ts->tv_nsec = (long)(ns - (long double)ts->tv_sec * 1e9L);
    return 0;
}
