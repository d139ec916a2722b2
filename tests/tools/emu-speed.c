/* emu-speed: how fast accel emu runs a memtest-like loop.
 *
 *   emu-speed [-m MiB] [-t seconds] [-s vcpus]
 *
 * The guest increments one byte in every 4 KiB page from 1 MiB to the end
 * of RAM, compares, loops, forever (4 instructions per page).  RAM is a
 * memfd mapped shared, as the machine's RAM is.  A second thread plays
 * the migration's part: every 50 ms it takes and clears the dirty bitmap
 * and counts the pages.  Prints instructions/s and pages dirtied/s. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "machine/emu.h"

#define GUEST_ENTRY 0x1000u
#define RANGE_START 0x100000u

struct bench {
    struct emu_bus bus;
    uint64_t ram_size;
    size_t dirty_words;
    atomic_int stop;
    uint64_t dirtied;
};

struct vcpu {
    struct bench *b;
    int index, count;
    uint64_t icount;
    enum emu_exit exit;
    char err[256];
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The loop, hand-assembled at GUEST_ENTRY:
 *   start: mov esi, START ; mov edi, END
 *   loop:  inc byte [esi] ; add esi, 4096 ; cmp esi, edi ; jb loop
 *          jmp start */
static size_t put_loop(uint8_t *p, uint32_t start, uint32_t end)
{
    static const uint8_t tmpl[] = {
        0xbe, 0,    0,    0,    0,    /* mov esi, imm32 */
        0xbf, 0,    0,    0,    0,    /* mov edi, imm32 */
        0xfe, 0x06,                   /* inc byte [esi] */
        0x81, 0xc6, 0x00, 0x10, 0, 0, /* add esi, 0x1000 */
        0x39, 0xfe,                   /* cmp esi, edi */
        0x72, 0xf4,                   /* jb loop */
        0xeb, 0xe8,                   /* jmp start */
    };
    memcpy(p, tmpl, sizeof(tmpl));
    memcpy(p + 1, &start, 4);
    memcpy(p + 6, &end, 4);
    return sizeof(tmpl);
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    struct bench *b = v->b;
    struct emu_cpu *cpu = emu_cpu_new(&b->bus);
    struct x86_state st;
    /* Each vCPU sweeps its own share of the range, as memtest does. */
    uint64_t pages = (b->ram_size - RANGE_START) / 4096;
    uint32_t first = RANGE_START +
        (uint32_t)(pages * (uint64_t)v->index / (uint64_t)v->count) * 4096u;
    uint32_t last = RANGE_START +
        (uint32_t)(pages * (uint64_t)(v->index + 1) / (uint64_t)v->count) *
            4096u;
    uint32_t entry = GUEST_ENTRY + (uint32_t)v->index * 64u;
    put_loop(b->bus.ram + entry, first, last);
    x86_state_reset_flat(&st, entry, 0, 0);
    emu_cpu_set_topology(cpu, v->index, v->count);
    v->exit =
        emu_cpu_run(cpu, &st, &b->stop, &v->icount, v->err, sizeof(v->err));
    emu_cpu_free(cpu);
    return NULL;
}

/* Take and clear the dirty bitmap, as a migration pass would. */
static uint64_t harvest(struct bench *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i < b->dirty_words; i++)
        if (atomic_load_explicit(&b->bus.dirty[i], memory_order_relaxed))
            n += (uint64_t)__builtin_popcountl(
                atomic_exchange(&b->bus.dirty[i], 0));
    return n;
}

int main(int argc, char **argv)
{
    uint64_t mib = 256;
    double seconds = 3;
    int nvcpus = 1, opt;
    while ((opt = getopt(argc, argv, "m:t:s:")) != -1) {
        switch (opt) {
        case 'm':
            mib = strtoull(optarg, NULL, 0);
            break;
        case 't':
            seconds = strtod(optarg, NULL);
            break;
        case 's':
            nvcpus = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-m MiB] [-t seconds] [-s vcpus]\n",
                    argv[0]);
            return 2;
        }
    }
    if (mib < 2 || mib > 3072 || nvcpus < 1 || nvcpus > 8 || seconds <= 0) {
        fprintf(stderr, "emu-speed: -m 2..3072, -s 1..8, -t > 0\n");
        return 2;
    }

    struct bench b = { .ram_size = mib << 20 };
    int fd = memfd_create("emu-speed-ram", 0);
    if (fd < 0 || ftruncate(fd, (off_t)b.ram_size) < 0) {
        perror("emu-speed: memfd");
        return 1;
    }
    uint8_t *ram =
        mmap(NULL, b.ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ram == MAP_FAILED) {
        perror("emu-speed: mmap");
        return 1;
    }
    memset(ram, 0x5a, b.ram_size); /* no page stays a zero page */
    b.dirty_words = (b.ram_size / 4096 + 63) / 64;
    b.bus = (struct emu_bus){
        .ram = ram,
        .ram_size = b.ram_size,
        .dirty = calloc(b.dirty_words, sizeof(unsigned long)),
        .code = emu_code_map_new(b.ram_size),
    };

    struct vcpu v[8];
    pthread_t th[8];
    double t0 = now();
    for (int i = 0; i < nvcpus; i++) {
        v[i] = (struct vcpu){ .b = &b, .index = i, .count = nvcpus };
        pthread_create(&th[i], NULL, vcpu_thread, &v[i]);
    }
    while (now() - t0 < seconds) {
        usleep(50000);
        b.dirtied += harvest(&b);
    }
    double t_stop = now();
    atomic_store(&b.stop, 1);
    uint64_t insns = 0;
    for (int i = 0; i < nvcpus; i++) {
        pthread_join(th[i], NULL);
        insns += v[i].icount;
        if (v[i].exit != EMU_EXIT_STOP)
            fprintf(stderr, "emu-speed: vCPU %d: unexpected exit %d: %s\n", i,
                    v[i].exit, v[i].err);
    }
    double t1 = now();
    b.dirtied += harvest(&b);
    double el = t1 - t0;
    printf("emu-speed: %d vCPU, %llu MiB, %.2f s (stop took %.3f ms)\n", nvcpus,
           (unsigned long long)mib, el, (t1 - t_stop) * 1e3);
    printf("instructions/s: %.1f M\n", (double)insns / el / 1e6);
    /* 4 instructions per page written; the distinct pages found dirty
     * per 50 ms harvest are bounded by the range size. */
    printf("page writes/s: %.1f M\n", (double)insns / 4 / el / 1e6);
    printf("pages dirtied/s (harvested every 50 ms): %.2f M (%.0f MiB/s)\n",
           (double)b.dirtied / el / 1e6,
           (double)b.dirtied * 4096 / el / 1048576);
    emu_code_map_free(b.bus.code);
    free((void *)b.bus.dirty);
    munmap(ram, b.ram_size);
    close(fd);
    return 0;
}
