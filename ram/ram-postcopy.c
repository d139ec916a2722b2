/* Postcopy RAM: wire parsers, the destination's userfaultfd, the
 * source's discard set and page requests (see ram-postcopy.h). */
#include "ram/ram-postcopy.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine/machine.h"
#include "machine/memory.h"
#include "machine/vcpu.h"
#include "ram/ram-internal.h"
#include "ram/uffd.h"
#include "util/alloc.h"
#include "util/be.h"
#include "util/printable.h"
#include "vmstate/stream-format.h"

#ifndef MADV_REMOVE
#define MADV_REMOVE 9
#endif

/* ---- wire ---- */

bool postcopy_advise_parse(const uint8_t *data, size_t len, uint64_t *summary,
                           uint64_t *target_page, Error **errp)
{
    if (len != 16) {
        error_setg(errp,
                   "POSTCOPY_ADVISE with %zu bytes: postcopy-ram needs the "
                   "16-byte form (page size summary, target page size)",
                   len);
        return false;
    }
    *summary = be64_get(data);
    *target_page = be64_get(data + 8);
    return true;
}

void postcopy_advise_encode(uint8_t out[16], uint64_t summary,
                            uint64_t target_page)
{
    be64_put(out, summary);
    be64_put(out + 8, target_page);
}

bool postcopy_discard_parse(const uint8_t *data, size_t len,
                            struct postcopy_discard *out, Error **errp)
{
    memset(out, 0, sizeof(*out));
    if (len < 3) {
        error_setg(errp,
                   "POSTCOPY_RAM_DISCARD with %zu bytes: too short for "
                   "its header",
                   len);
        return false;
    }
    if (data[0] != 0) {
        error_setg(errp, "POSTCOPY_RAM_DISCARD: version %u (expected 0)",
                   data[0]);
        return false;
    }
    size_t nlen = data[1];
    if (nlen == 0 || 2 + nlen + 1 > len) {
        error_setg(errp,
                   "POSTCOPY_RAM_DISCARD: block name of %zu bytes in a "
                   "command of %zu",
                   nlen, len);
        return false;
    }
    memcpy(out->name, data + 2, nlen);
    out->name[nlen] = '\0';
    if (strlen(out->name) != nlen || data[2 + nlen] != 0) {
        error_setg(errp,
                   "POSTCOPY_RAM_DISCARD: the block name holds a NUL or is "
                   "not followed by one");
        return false;
    }
    size_t at = 3 + nlen, rest = len - at;
    if (rest % 16 || rest / 16 > POSTCOPY_DISCARD_MAX_RANGES) {
        error_setg(errp,
                   "POSTCOPY_RAM_DISCARD for RAM block '%s': %zu bytes of "
                   "ranges (a multiple of 16, at most %d ranges)",
                   PRINTABLE(out->name), rest, POSTCOPY_DISCARD_MAX_RANGES);
        return false;
    }
    out->n = (unsigned)(rest / 16);
    for (unsigned i = 0; i < out->n; i++) {
        out->start[i] = be64_get(data + at + 16 * i);
        out->len[i] = be64_get(data + at + 16 * i + 8);
    }
    return true;
}

size_t postcopy_discard_encode(const struct postcopy_discard *d, uint8_t *out)
{
    size_t nlen = strlen(d->name);
    out[0] = 0;
    out[1] = (uint8_t)nlen;
    memcpy(out + 2, d->name, nlen);
    out[2 + nlen] = 0;
    size_t at = 3 + nlen;
    for (unsigned i = 0; i < d->n; i++) {
        be64_put(out + at, d->start[i]);
        be64_put(out + at + 8, d->len[i]);
        at += 16;
    }
    return at;
}

bool postcopy_range_check(const struct machine_memory *mem, const char *name,
                          uint64_t start, uint64_t len, const char *what,
                          int *block, Error **errp)
{
    int i = 0;
    while (i < mem->nblocks && strcmp(mem->blocks[i]->name, name) != 0) {
        i++;
    }
    if (i == mem->nblocks) {
        error_setg(errp, "%s: unknown RAM block '%s'", what, PRINTABLE(name));
        return false;
    }
    const struct ram_block *b = mem->blocks[i];
    if (start % RAM_PAGE_SIZE || len % RAM_PAGE_SIZE || len == 0) {
        error_setg(errp,
                   "%s: RAM block '%s': range of 0x%llx bytes at 0x%llx is "
                   "not whole pages",
                   what, b->name, (unsigned long long)len,
                   (unsigned long long)start);
        return false;
    }
    if (start >= b->size || len > b->size - start) {
        error_setg(errp,
                   "%s: RAM block '%s': range of 0x%llx bytes at 0x%llx is "
                   "past its end (0x%llx bytes)",
                   what, b->name, (unsigned long long)len,
                   (unsigned long long)start, (unsigned long long)b->size);
        return false;
    }
    *block = i;
    return true;
}

/* ---- userfaultfd, missing mode ---- */

/* features: what the kernel must report with each fault; the capability
 * that needs it names errors. */
static int open_missing(uint64_t features, Error **errp)
{
    bool tid = features & UFFD_FEATURE_THREAD_ID;
    int fd = uffd_open(tid ? "postcopy-blocktime" : "postcopy-ram", errp);
    if (fd < 0) {
        return -1;
    }
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        if (tid) {
            error_setg_errno(errp, errno,
                             "postcopy-blocktime: this kernel's userfaultfd "
                             "does not tell which thread faulted "
                             "(UFFD_FEATURE_THREAD_ID)");
        } else {
            error_setg_errno(errp, errno, "postcopy-ram: userfaultfd API");
        }
        close(fd);
        return -1;
    }
    return fd;
}

/* Registers b; *ioctls: what the kernel allows on it. */
static bool register_block(int fd, const struct ram_block *b, uint64_t *ioctls,
                           Error **errp)
{
    if (b->map.page_size != RAM_PAGE_SIZE) {
        error_setg(errp,
                   "postcopy-ram: RAM block '%s' is on %llu KiB pages; "
                   "hop's postcopy places 4 KiB pages only",
                   b->name, (unsigned long long)(b->map.page_size >> 10));
        return false;
    }
    struct uffdio_register reg = {
        .range = { (uintptr_t)b->host, b->size },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
        error_setg(errp,
                   "postcopy-ram: RAM block '%s': the kernel cannot serve "
                   "its missing pages (%s; anonymous memory and memfd "
                   "share=on can be)",
                   b->name, strerror(errno));
        return false;
    }
    if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) {
        struct uffdio_range rg = reg.range;
        ioctl(fd, UFFDIO_UNREGISTER, &rg);
        error_setg(errp,
                   "postcopy-ram: RAM block '%s': the kernel cannot place "
                   "pages into this kind of memory",
                   b->name);
        return false;
    }
    *ioctls = reg.ioctls;
    return true;
}

static void unregister_block(int fd, const struct ram_block *b)
{
    struct uffdio_range rg = { (uintptr_t)b->host, b->size };
    ioctl(fd, UFFDIO_UNREGISTER, &rg);
}

bool postcopy_host_check(const struct machine_memory *mem, Error **errp)
{
    int fd = open_missing(0, errp);
    if (fd < 0) {
        return false;
    }
    bool ok = true;
    for (int i = 0; i < mem->nblocks && ok; i++) {
        uint64_t ioctls;
        ok = register_block(fd, mem->blocks[i], &ioctls, errp);
        if (ok) {
            unregister_block(fd, mem->blocks[i]);
        }
    }
    close(fd);
    return ok;
}

bool postcopy_discard_range(struct machine_memory *mem, int block,
                            uint64_t start, uint64_t len, Error **errp)
{
    struct ram_block *b = mem->blocks[block];
    /* Shared memory: a hole in the file; private: the pages go. */
    int advice = b->map.shared ? MADV_REMOVE : MADV_DONTNEED;
    if (madvise(b->host + start, len, advice) < 0) {
        error_setg_errno(errp, errno,
                         "postcopy-ram: RAM block '%s': discarding 0x%llx "
                         "bytes at 0x%llx",
                         b->name, (unsigned long long)len,
                         (unsigned long long)start);
        return false;
    }
    return true;
}

/* ---- blocktime ---- */

_Static_assert(POSTCOPY_BT_MAX_VCPUS >= VCPU_MAX,
               "blocktime accounts for every vCPU");

struct postcopy_blocktime {
    pthread_mutex_t lock; /* guards all but nwaiting's reads */
    int n;
    int tid[POSTCOPY_BT_MAX_VCPUS];
    struct bt_wait {
        bool on;
        int block;
        uint64_t page, since;
    } wait[POSTCOPY_BT_MAX_VCPUS];
    _Atomic int nwaiting; /* vCPUs blocked now */
    uint64_t all_since;   /* when the last of them blocked, if all are */
    struct postcopy_bt_stats st;
};

struct postcopy_blocktime *postcopy_bt_new(int n, const int *tids)
{
    struct postcopy_blocktime *bt = xcalloc(1, sizeof(*bt));
    pthread_mutex_init(&bt->lock, NULL);
    postcopy_bt_reset(bt, n, tids);
    return bt;
}

void postcopy_bt_reset(struct postcopy_blocktime *bt, int n, const int *tids)
{
    pthread_mutex_lock(&bt->lock);
    bt->n = n < POSTCOPY_BT_MAX_VCPUS ? n : POSTCOPY_BT_MAX_VCPUS;
    memset(bt->tid, 0, sizeof(bt->tid));
    memset(bt->wait, 0, sizeof(bt->wait));
    memset(&bt->st, 0, sizeof(bt->st));
    atomic_store(&bt->nwaiting, 0);
    bt->all_since = 0;
    bt->st.nvcpus = bt->n;
    for (int i = 0; i < bt->n; i++) {
        bt->tid[i] = tids[i];
    }
    pthread_mutex_unlock(&bt->lock);
}

void postcopy_bt_free(struct postcopy_blocktime *bt)
{
    if (bt) {
        pthread_mutex_destroy(&bt->lock);
        free(bt);
    }
}

int postcopy_bt_vcpu(const struct postcopy_blocktime *bt, int tid)
{
    for (int i = 0; i < bt->n; i++) {
        if (bt->tid[i] == tid) {
            return i;
        }
    }
    return -1;
}

/* Under the lock: vCPU v goes on at now. */
static void bt_stop_wait(struct postcopy_blocktime *bt, int v, uint64_t now)
{
    struct bt_wait *w = &bt->wait[v];
    uint64_t d = now > w->since ? now - w->since : 0;
    bt->st.vcpu_ns[v] += d;
    bt->st.vcpu_faults[v]++;
    bt->st.wait_ns += d;
    bt->st.faults++;
    w->on = false;
    atomic_fetch_sub(&bt->nwaiting, 1);
}

/* Under the lock, before a wait ends: the span in which all were blocked
 * ends too. */
static void bt_all_blocked_ends(struct postcopy_blocktime *bt, uint64_t now)
{
    if (atomic_load(&bt->nwaiting) == bt->n && now > bt->all_since) {
        bt->st.total_ns += now - bt->all_since;
    }
}

void postcopy_bt_begin(struct postcopy_blocktime *bt, int vcpu, int block,
                       uint64_t page, uint64_t now)
{
    if (vcpu < 0 || vcpu >= bt->n) {
        return;
    }
    pthread_mutex_lock(&bt->lock);
    struct bt_wait *w = &bt->wait[vcpu];
    if (w->on && w->block == block && w->page == page) {
        pthread_mutex_unlock(&bt->lock); /* the same wait, told again */
        return;
    }
    if (w->on) {
        /* It runs, so the page it waited for came. */
        bt_all_blocked_ends(bt, now);
        bt_stop_wait(bt, vcpu, now);
    }
    *w = (struct bt_wait){ true, block, page, now };
    if (atomic_fetch_add(&bt->nwaiting, 1) + 1 == bt->n) {
        bt->all_since = now;
    }
    pthread_mutex_unlock(&bt->lock);
}

void postcopy_bt_end(struct postcopy_blocktime *bt, int block, uint64_t page,
                     uint64_t now)
{
    pthread_mutex_lock(&bt->lock);
    bool all = atomic_load(&bt->nwaiting) == bt->n;
    bool any = false;
    for (int v = 0; v < bt->n; v++) {
        struct bt_wait *w = &bt->wait[v];
        if (w->on && w->block == block && w->page == page) {
            if (all && !any) {
                bt_all_blocked_ends(bt, now);
            }
            any = true;
            bt_stop_wait(bt, v, now);
        }
    }
    pthread_mutex_unlock(&bt->lock);
}

bool postcopy_bt_any_waiting(struct postcopy_blocktime *bt)
{
    return atomic_load(&bt->nwaiting) > 0;
}

void postcopy_bt_read(struct postcopy_blocktime *bt,
                      struct postcopy_bt_stats *out)
{
    pthread_mutex_lock(&bt->lock);
    *out = bt->st;
    pthread_mutex_unlock(&bt->lock);
}

bool postcopy_bt_host_check(Error **errp)
{
    int fd = open_missing(UFFD_FEATURE_THREAD_ID, errp);
    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- destination ---- */

struct postcopy_in {
    struct machine_memory *mem;
    int uffd;
    int stop_fd;
    int resend_fd;  /* a count here: ask again for what did not come */
    bool thread_id; /* the faults name their thread */
    bool zeropage[RAM_MAX_BLOCKS];            /* UFFDIO_ZEROPAGE works there */
    _Atomic int registered;                   /* blocks registered so far */
    unsigned long *requested[RAM_MAX_BLOCKS]; /* fault thread only */
    /* With bt (from postcopy_in_listen on): pages placed (atomic), so
     * that a fault read after its page came is no wait. */
    struct postcopy_blocktime *_Atomic bt;
    _Atomic unsigned long *placed[RAM_MAX_BLOCKS];
    /* Of the last request; -1 (set by the loading thread when the link
     * died): the next request names its block. */
    _Atomic int last_block;
    postcopy_request_fn fn;
    void *opaque;
    pthread_t thread;
    bool thread_started;
    _Atomic uint64_t requests;
    pthread_mutex_t lock;
    char error[256]; /* the fault thread's, once it failed */
};

static void pc_fail(struct postcopy_in *pc, const char *msg)
{
    pthread_mutex_lock(&pc->lock);
    if (!pc->error[0]) {
        snprintf(pc->error, sizeof(pc->error), "%s", msg);
    }
    pthread_mutex_unlock(&pc->lock);
}

/* Page of block: placed already (with bt only). */
static bool page_placed(struct postcopy_in *pc, int block, uint64_t page)
{
    unsigned long bit = 1ul << (page % RAM_BITS_PER_WORD);
    return atomic_load(&pc->placed[block][page / RAM_BITS_PER_WORD]) & bit;
}

/* Thread tid waits for page of block from now on, unless it came. */
static void account_fault(struct postcopy_in *pc, int tid, int block,
                          uint64_t page)
{
    int v = postcopy_bt_vcpu(pc->bt, tid);
    if (v < 0) {
        return;
    }
    uint64_t now = now_ns();
    postcopy_bt_begin(pc->bt, v, block, page, now);
    /* Placed meanwhile: the thread was woken before the wait was seen
     * (placing marks the page before it looks for waiters). */
    if (page_placed(pc, block, page)) {
        postcopy_bt_end(pc->bt, block, page, now);
    }
}

/* A fault of thread tid at addr: ask for its page, once. */
static bool on_fault(struct postcopy_in *pc, uint64_t addr, int tid,
                     Error **errp)
{
    for (int i = 0; i < pc->mem->nblocks; i++) {
        struct ram_block *b = pc->mem->blocks[i];
        uintptr_t base = (uintptr_t)b->host;
        if (addr < base || addr - base >= b->size) {
            continue;
        }
        uint64_t page = (addr - base) / RAM_PAGE_SIZE;
        if (pc->bt) {
            account_fault(pc, tid, i, page);
        }
        unsigned long bit = 1ul << (page % RAM_BITS_PER_WORD);
        unsigned long *w = &pc->requested[i][page / RAM_BITS_PER_WORD];
        if (*w & bit) {
            return true; /* asked already; it is on its way */
        }
        *w |= bit;
        atomic_fetch_add(&pc->requests, 1);
        const char *name = i == pc->last_block ? NULL : b->name;
        pc->last_block = i;
        return pc->fn(pc->opaque, name, page * RAM_PAGE_SIZE, RAM_PAGE_SIZE,
                      errp);
    }
    error_setg(errp, "postcopy-ram: a fault at 0x%llx, outside guest RAM",
               (unsigned long long)addr);
    return false;
}

/* Which pages of block are in (mapped: placed, or loaded before the
 * switch); *present gets one byte per page of [first, first+n). */
static bool pages_present(struct postcopy_in *pc, int block, uint64_t first,
                          uint64_t n, unsigned char *present)
{
    struct ram_block *b = pc->mem->blocks[block];
    return mincore(b->host + first * RAM_PAGE_SIZE, n * RAM_PAGE_SIZE,
                   present) == 0;
}

/* After a recovery: the pages asked for that never came are asked for
 * again, the first request naming its block (the source forgot its
 * queue).  Fault thread. */
static void resend(struct postcopy_in *pc)
{
    pc->last_block = -1;
    for (int i = 0; i < pc->registered; i++) {
        struct ram_block *b = pc->mem->blocks[i];
        uint64_t nwords =
            (b->npages + RAM_BITS_PER_WORD - 1) / RAM_BITS_PER_WORD;
        for (uint64_t w = 0; w < nwords; w++) {
            unsigned long bits = pc->requested[i][w];
            while (bits) {
                unsigned bit = (unsigned)__builtin_ctzl(bits);
                bits &= bits - 1;
                uint64_t page = w * RAM_BITS_PER_WORD + bit;
                unsigned char in = 0;
                if (pages_present(pc, i, page, 1, &in) && (in & 1)) {
                    continue;
                }
                const char *name = i == pc->last_block ? NULL : b->name;
                pc->last_block = i;
                Error *err = NULL;
                /* A link that died again: the next recovery asks again. */
                if (!pc->fn(pc->opaque, name, page * RAM_PAGE_SIZE,
                            RAM_PAGE_SIZE, &err)) {
                    error_free(err);
                    return;
                }
            }
        }
    }
}

static void *fault_thread(void *opaque)
{
    struct postcopy_in *pc = opaque;
    struct uffd_msg msgs[16];
    for (;;) {
        struct pollfd p[3] = { { .fd = pc->uffd, .events = POLLIN },
                               { .fd = pc->stop_fd, .events = POLLIN },
                               { .fd = pc->resend_fd, .events = POLLIN } };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            pc_fail(pc, "postcopy-ram: poll on the userfaultfd failed");
            return NULL;
        }
        if (p[1].revents) {
            return NULL;
        }
        if (p[2].revents) {
            uint64_t c;
            (void)!read(pc->resend_fd, &c, sizeof(c));
            resend(pc);
        }
        if (!p[0].revents) {
            continue;
        }
        ssize_t n = read(pc->uffd, msgs, sizeof(msgs));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            char e[200];
            snprintf(e, sizeof(e), "postcopy-ram: reading faults: %s",
                     strerror(errno));
            pc_fail(pc, e);
            return NULL;
        }
        for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
            if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
                continue;
            }
            Error *err = NULL;
            int tid = pc->bt ? (int)msgs[i].arg.pagefault.feat.ptid : 0;
            if (!on_fault(pc, msgs[i].arg.pagefault.address, tid, &err)) {
                pc_fail(pc, error_get_pretty(err));
                error_free(err);
                return NULL;
            }
        }
    }
}

struct postcopy_in *postcopy_in_new(struct machine_memory *mem,
                                    postcopy_request_fn fn, void *opaque,
                                    bool thread_id, Error **errp)
{
    struct postcopy_in *pc = xcalloc(1, sizeof(*pc));
    pc->mem = mem;
    pc->fn = fn;
    pc->opaque = opaque;
    pc->thread_id = thread_id;
    pc->last_block = -1;
    pc->stop_fd = -1;
    pc->resend_fd = -1;
    pthread_mutex_init(&pc->lock, NULL);
    pc->uffd = open_missing(thread_id ? UFFD_FEATURE_THREAD_ID : 0, errp);
    if (pc->uffd < 0) {
        goto fail;
    }
    for (int i = 0; i < mem->nblocks; i++) {
        size_t words = (mem->blocks[i]->npages + RAM_BITS_PER_WORD - 1) /
            RAM_BITS_PER_WORD;
        pc->requested[i] = xcalloc(words, sizeof(unsigned long));
        pc->placed[i] = xcalloc(words, sizeof(unsigned long));
    }
    pc->stop_fd = eventfd(0, EFD_CLOEXEC);
    pc->resend_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pc->stop_fd < 0 || pc->resend_fd < 0) {
        error_setg_errno(errp, errno, "postcopy-ram: eventfd");
        goto fail;
    }
    /* It waits on the userfaultfd, which has no faults to tell before
     * postcopy_in_listen registers RAM. */
    if (pthread_create(&pc->thread, NULL, fault_thread, pc) != 0) {
        error_setg(errp, "postcopy-ram: cannot start the fault thread");
        goto fail;
    }
    pc->thread_started = true;
    return pc;
fail:
    postcopy_in_stop(pc, NULL);
    return NULL;
}

bool postcopy_in_thread_id(const struct postcopy_in *pc)
{
    return pc->thread_id;
}

bool postcopy_in_listen(struct postcopy_in *pc, struct postcopy_blocktime *bt,
                        Error **errp)
{
    if (bt && !pc->thread_id) {
        error_setg(errp,
                   "postcopy-blocktime: this userfaultfd was opened without "
                   "UFFD_FEATURE_THREAD_ID");
        return false;
    }
    /* Before any fault can come. */
    atomic_store(&pc->bt, bt);
    for (int i = atomic_load(&pc->registered); i < pc->mem->nblocks; i++) {
        uint64_t ioctls;
        if (!register_block(pc->uffd, pc->mem->blocks[i], &ioctls, errp)) {
            return false;
        }
        pc->zeropage[i] = ioctls & (1ull << _UFFDIO_ZEROPAGE);
        atomic_store(&pc->registered, i + 1);
    }
    return true;
}

struct postcopy_in *postcopy_in_start(struct machine_memory *mem,
                                      postcopy_request_fn fn, void *opaque,
                                      struct postcopy_blocktime *bt,
                                      Error **errp)
{
    struct postcopy_in *pc = postcopy_in_new(mem, fn, opaque, bt != NULL, errp);
    if (pc && !postcopy_in_listen(pc, bt, errp)) {
        postcopy_in_stop(pc, NULL);
        return NULL;
    }
    return pc;
}

/* Page of block is in: whoever waited for it runs. */
static void note_placed(struct postcopy_in *pc, int block, uint64_t page)
{
    unsigned long bit = 1ul << (page % RAM_BITS_PER_WORD);
    atomic_fetch_or(&pc->placed[block][page / RAM_BITS_PER_WORD], bit);
    if (postcopy_bt_any_waiting(pc->bt)) {
        postcopy_bt_end(pc->bt, block, page, now_ns());
    }
}

bool postcopy_in_place(struct postcopy_in *pc, int block, uint64_t offset,
                       const uint8_t *data, Error **errp)
{
    static const uint8_t zeros[RAM_PAGE_SIZE];
    struct ram_block *b = pc->mem->blocks[block];
    uintptr_t dst = (uintptr_t)(b->host + offset);
    for (;;) {
        int r;
        if (!data && pc->zeropage[block]) {
            struct uffdio_zeropage z = { .range = { dst, RAM_PAGE_SIZE } };
            r = ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
        } else {
            struct uffdio_copy c = { .dst = dst,
                                     .src = (uintptr_t)(data ? data : zeros),
                                     .len = RAM_PAGE_SIZE };
            r = ioctl(pc->uffd, UFFDIO_COPY, &c);
        }
        if (r == 0 || errno == EEXIST) {
            if (pc->bt) {
                note_placed(pc, block, offset / RAM_PAGE_SIZE);
            }
            return true; /* placed, or there already */
        }
        if (errno != EAGAIN && errno != EINTR) {
            error_setg_errno(errp, errno,
                             "postcopy-ram: placing the page at 0x%llx of RAM "
                             "block '%s'",
                             (unsigned long long)offset, b->name);
            return false;
        }
    }
}

unsigned long *postcopy_in_received(struct postcopy_in *pc, int block,
                                    Error **errp)
{
    struct ram_block *b = pc->mem->blocks[block];
    const uint64_t chunk = 1u << 16;
    unsigned long *bits = xcalloc(
        (b->npages + RAM_BITS_PER_WORD - 1) / RAM_BITS_PER_WORD, sizeof(long));
    unsigned char *present = xmalloc(chunk);
    for (uint64_t first = 0; first < b->npages; first += chunk) {
        uint64_t n = b->npages - first < chunk ? b->npages - first : chunk;
        if (!pages_present(pc, block, first, n, present)) {
            error_setg_errno(errp, errno,
                             "postcopy-ram: which pages of RAM block '%s' "
                             "came (mincore)",
                             b->name);
            free(present);
            free(bits);
            return NULL;
        }
        for (uint64_t k = 0; k < n; k++) {
            if (present[k] & 1) {
                uint64_t page = first + k;
                bits[page / RAM_BITS_PER_WORD] |= 1ul
                    << (page % RAM_BITS_PER_WORD);
            }
        }
    }
    free(present);
    return bits;
}

void postcopy_in_forget_block(struct postcopy_in *pc)
{
    if (pc) {
        atomic_store(&pc->last_block, -1);
    }
}

void postcopy_in_resend(struct postcopy_in *pc)
{
    uint64_t one = 1;
    if (pc) {
        (void)!write(pc->resend_fd, &one, sizeof(one));
    }
}

uint64_t postcopy_in_requests(struct postcopy_in *pc)
{
    return pc ? atomic_load(&pc->requests) : 0;
}

bool postcopy_in_stop(struct postcopy_in *pc, Error **errp)
{
    if (!pc) {
        return true;
    }
    if (pc->thread_started) {
        uint64_t one = 1;
        (void)!write(pc->stop_fd, &one, sizeof(one));
        pthread_join(pc->thread, NULL);
    }
    for (int i = 0; i < pc->registered; i++) {
        unregister_block(pc->uffd, pc->mem->blocks[i]);
    }
    /* Closing wakes any thread still waiting in a fault. */
    if (pc->uffd >= 0) {
        close(pc->uffd);
    }
    if (pc->stop_fd >= 0) {
        close(pc->stop_fd);
    }
    if (pc->resend_fd >= 0) {
        close(pc->resend_fd);
    }
    bool ok = !pc->error[0];
    if (!ok) {
        error_setg(errp, "%s", pc->error);
    }
    for (int i = 0; i < RAM_MAX_BLOCKS; i++) {
        free(pc->requested[i]);
        free((void *)pc->placed[i]);
    }
    pthread_mutex_destroy(&pc->lock);
    free(pc);
    return ok;
}

/* ---- the ram section's side ---- */

bool ram_postcopy_check(struct machine *m, Error **errp)
{
    return postcopy_host_check(machine_memory(m), errp);
}

/* QEMU's summary: the OR of every block's page size. */
static uint64_t page_size_summary(const struct machine_memory *mem)
{
    uint64_t s = 0;
    for (int i = 0; i < mem->nblocks; i++) {
        s |= mem->blocks[i]->map.page_size;
    }
    return s;
}

void ram_postcopy_advise_body(struct ram_state *rs, uint8_t out[16])
{
    postcopy_advise_encode(out, page_size_summary(rs->mem), RAM_PAGE_SIZE);
}

void ram_postcopy_reset(struct ram_state *rs)
{
    pthread_mutex_lock(&rs->req_lock);
    rs->postcopy = false;
    rs->req_head = rs->req_len = 0;
    rs->req_last_block = -1;
    atomic_store(&rs->req_pending, 0);
    pthread_mutex_unlock(&rs->req_lock);
    for (int i = 0; i < RAM_MAX_BLOCKS; i++) {
        free(rs->sent[i]);
        rs->sent[i] = NULL;
    }
}

bool ram_postcopy_request(struct ram_state *rs, const char *name,
                          uint64_t start, uint32_t len, Error **errp)
{
    pthread_mutex_lock(&rs->req_lock);
    int block = rs->req_last_block;
    bool ok;
    if (!name && block < 0) {
        error_setg(errp, "REQ_PAGES before any request named its RAM block");
        ok = false;
    } else {
        ok = postcopy_range_check(
            rs->mem, name ? name : rs->mem->blocks[block]->name, start, len,
            name ? "REQ_PAGES_ID" : "REQ_PAGES", &block, errp);
    }
    if (ok && !rs->postcopy) {
        error_setg(errp,
                   "the destination asked for pages before the "
                   "postcopy switch");
        ok = false;
    }
    if (ok) {
        rs->req_last_block = block;
        atomic_fetch_add(&rs->pc_requests, 1);
        atomic_store(&rs->req_hint,
                     ((uint64_t)block + 1) << 40 |
                         (start + len) / RAM_PAGE_SIZE);
    }
    pthread_mutex_unlock(&rs->req_lock);
    /* postcopy-preempt: sent at once, on the thread that read it. */
    if (!ok ||
        ram_postcopy_send_urgent(rs, block, start / RAM_PAGE_SIZE,
                                 len / RAM_PAGE_SIZE)) {
        return ok;
    }
    pthread_mutex_lock(&rs->req_lock);
    /* A full queue drops the request: the walk gets there anyway. */
    if (rs->req_len < RAM_REQ_QUEUE) {
        rs->req[(rs->req_head + rs->req_len) % RAM_REQ_QUEUE] =
            (struct ram_req){ block, start / RAM_PAGE_SIZE,
                              len / RAM_PAGE_SIZE };
        rs->req_len++;
        atomic_store(&rs->req_pending, rs->req_len);
    }
    pthread_mutex_unlock(&rs->req_lock);
    return ok;
}

bool ram_postcopy_pop_request(struct ram_state *rs, struct ram_req *out)
{
    if (!atomic_load(&rs->req_pending)) {
        return false;
    }
    pthread_mutex_lock(&rs->req_lock);
    bool got = rs->req_len > 0;
    if (got) {
        *out = rs->req[rs->req_head];
        rs->req_head = (rs->req_head + 1) % RAM_REQ_QUEUE;
        rs->req_len--;
        atomic_store(&rs->req_pending, rs->req_len);
    }
    pthread_mutex_unlock(&rs->req_lock);
    return got;
}

bool ram_incoming_advise(struct ram_state *rs, const uint8_t *data,
                         uint16_t len, Error **errp)
{
    uint64_t summary, tps;
    if (rs->pc_advised) {
        error_setg(errp, "a second POSTCOPY_ADVISE");
        return false;
    }
    if (!postcopy_advise_parse(data, len, &summary, &tps, errp)) {
        return false;
    }
    uint64_t ours = page_size_summary(rs->mem);
    if (summary != ours) {
        error_setg(errp,
                   "POSTCOPY_ADVISE: postcopy needs the same RAM page sizes "
                   "at both ends (source 0x%llx, here 0x%llx)",
                   (unsigned long long)summary, (unsigned long long)ours);
        return false;
    }
    if (tps != RAM_PAGE_SIZE) {
        error_setg(errp,
                   "POSTCOPY_ADVISE: target page size %llu at the source, "
                   "%u here",
                   (unsigned long long)tps, RAM_PAGE_SIZE);
        return false;
    }
    if (!postcopy_host_check(rs->mem, errp)) {
        return false;
    }
    /* Every page comes from the source, and the ones that do not come
     * before the switch must be missing then: nothing of what RAM holds
     * now (the firmware) may stay.  No prefault may touch RAM either. */
    ram_prefault_free(rs->prefault);
    rs->prefault = NULL;
    for (int i = 0; i < rs->mem->nblocks; i++) {
        struct ram_block *b = rs->mem->blocks[i];
        /* No huge pages until the end: one page arriving would make its
         * 511 neighbours present as zeros, and the source's copies of
         * them could no longer be placed. */
        (void)madvise(b->host, b->size, MADV_NOHUGEPAGE);
        if (!postcopy_discard_range(rs->mem, i, 0, b->size, errp)) {
            return false;
        }
    }
    /* RAM changed under whatever the emulator decoded (the firmware):
     * done here, long before the switch, as no vCPU runs here until
     * POSTCOPY_RUN (a walk of the code map costs ~10 ms per GiB). */
    machine_invalidate(rs->m, 0, UINT64_MAX);
    rs->pc_advised = true;
    return true;
}

bool ram_incoming_prepare_listen(struct ram_state *rs,
                                 postcopy_request_fn request, void *opaque,
                                 bool blocktime, Error **errp)
{
    postcopy_in_stop(rs->pc_ready, NULL);
    rs->pc_ready = postcopy_in_new(rs->mem, request, opaque, blocktime, errp);
    return rs->pc_ready != NULL;
}

void ram_incoming_unprepare(struct ram_state *rs)
{
    postcopy_in_stop(rs->pc_ready, NULL);
    rs->pc_ready = NULL;
}

bool ram_incoming_discard(struct ram_state *rs, const uint8_t *data,
                          uint16_t len, Error **errp)
{
    struct postcopy_discard d;
    if (!rs->pc_advised || rs->pc_in) {
        error_setg(errp, "POSTCOPY_RAM_DISCARD %s",
                   rs->pc_in ? "after POSTCOPY_LISTEN"
                             : "without POSTCOPY_ADVISE before it");
        return false;
    }
    if (!postcopy_discard_parse(data, len, &d, errp)) {
        return false;
    }
    for (unsigned i = 0; i < d.n; i++) {
        int block;
        if (!postcopy_range_check(rs->mem, d.name, d.start[i], d.len[i],
                                  "POSTCOPY_RAM_DISCARD", &block, errp) ||
            !postcopy_discard_range(rs->mem, block, d.start[i], d.len[i],
                                    errp)) {
            return false;
        }
    }
    return true;
}

bool ram_incoming_listen(struct ram_state *rs,
                         bool (*request)(void *opaque, const char *name,
                                         uint64_t start, uint32_t len,
                                         Error **errp),
                         void *opaque, bool blocktime, Error **errp)
{
    if (!rs->pc_advised || rs->pc_in) {
        error_setg(errp, "POSTCOPY_LISTEN %s",
                   rs->pc_in ? "a second time"
                             : "without POSTCOPY_ADVISE before it");
        return false;
    }
    ram_prefault_free(rs->prefault);
    rs->prefault = NULL;
    struct postcopy_blocktime *bt = NULL;
    if (blocktime) {
        /* The vCPU threads exist (parked) from the machine's start. */
        int tids[POSTCOPY_BT_MAX_VCPUS], n = machine_smp(rs->m);
        n = n < POSTCOPY_BT_MAX_VCPUS ? n : POSTCOPY_BT_MAX_VCPUS;
        for (int i = 0; i < n; i++) {
            tids[i] = machine_vcpu_thread_id(rs->m, i);
        }
        bt = atomic_load(&rs->pc_bt);
        if (bt) {
            postcopy_bt_reset(bt, n, tids);
        } else {
            bt = postcopy_bt_new(n, tids);
            atomic_store(&rs->pc_bt, bt);
        }
    } else if (atomic_load(&rs->pc_bt)) {
        postcopy_bt_reset(atomic_load(&rs->pc_bt), 0, NULL);
    }
    /* What ADVISE prepared, unless postcopy-blocktime came on since. */
    struct postcopy_in *pc = rs->pc_ready;
    rs->pc_ready = NULL;
    if (pc && bt && !postcopy_in_thread_id(pc)) {
        postcopy_in_stop(pc, NULL);
        pc = NULL;
    }
    if (!pc) {
        pc = postcopy_in_new(rs->mem, request, opaque, bt != NULL, errp);
    }
    if (pc && !postcopy_in_listen(pc, bt, errp)) {
        postcopy_in_stop(pc, NULL);
        pc = NULL;
    }
    rs->pc_in = pc;
    if (rs->pc_in) {
        ram_incoming_preempt_listen(rs, true);
    }
    return rs->pc_in != NULL;
}

bool ram_incoming_blocktime(struct ram_state *rs, struct postcopy_bt_stats *out)
{
    struct postcopy_blocktime *bt = atomic_load(&rs->pc_bt);
    if (!bt) {
        return false;
    }
    postcopy_bt_read(bt, out);
    return out->nvcpus > 0;
}

bool ram_postcopy_blocktime_check(Error **errp)
{
    return postcopy_bt_host_check(errp);
}

void ram_incoming_postcopy_done(struct ram_state *rs)
{
    for (int i = 0; rs->pc_advised && i < rs->mem->nblocks; i++) {
        struct ram_block *b = rs->mem->blocks[i];
        if (b->kind == MEM_BACKEND_RAM) {
            (void)madvise(b->host, b->size, MADV_HUGEPAGE);
        }
    }
}

bool ram_incoming_postcopy_end(struct ram_state *rs, Error **errp)
{
    ram_incoming_unprepare(rs);
    ram_incoming_preempt_end(rs, false);
    ram_incoming_preempt_listen(rs, false);
    struct postcopy_in *pc = rs->pc_in;
    rs->pc_in = NULL;
    rs->pc_advised = false;
    return postcopy_in_stop(pc, errp);
}

/* ---- recovery ---- */

/* The index of block name, or -1 with errp set. */
static int block_index(struct ram_state *rs, const char *name, Error **errp)
{
    for (int i = 0; i < rs->mem->nblocks; i++) {
        if (strcmp(rs->mem->blocks[i]->name, name) == 0) {
            return i;
        }
    }
    error_setg(errp, "no RAM block '%s' here", name);
    return -1;
}

int ram_postcopy_send_recv_bitmaps(struct ram_state *rs, Channel *f,
                                   Error **errp)
{
    for (int i = 0; i < rs->mem->nblocks; i++) {
        const char *name = rs->mem->blocks[i]->name;
        uint8_t buf[256];
        size_t nlen = strlen(name);
        buf[0] = (uint8_t)nlen;
        memcpy(buf + 1, name, nlen);
        stream_put_command(f, STREAM_CMD_RECV_BITMAP, buf,
                           (uint16_t)(nlen + 1));
    }
    chan_flush(f);
    return chan_check(f, errp) ? rs->mem->nblocks : -1;
}

bool ram_postcopy_bitmap_size(struct ram_state *rs, const char *name,
                              uint64_t *size, Error **errp)
{
    int i = block_index(rs, name, errp);
    if (i < 0) {
        return false;
    }
    *size = (rs->mem->blocks[i]->npages + 63) / 64 * 8;
    return true;
}

bool ram_postcopy_take_bitmap(struct ram_state *rs, const char *name,
                              const uint8_t *wire, uint64_t size, Error **errp)
{
    int i = block_index(rs, name, errp);
    if (i < 0) {
        return false;
    }
    struct ram_block *b = rs->mem->blocks[i];
    uint64_t nwords = ram_block_dirty_words(b);
    if (size * 8 < b->npages) {
        error_setg(errp, "the bitmap of '%s' is %llu bytes, too short", name,
                   (unsigned long long)size);
        return false;
    }
    /* Whatever the destination has not got goes (again): what was on its
     * way when the link died too. */
    for (uint64_t w = 0; w < nwords; w++) {
        unsigned long got = 0;
        for (unsigned k = 0; k < sizeof(long); k++) {
            uint64_t j = w * sizeof(long) + k;
            if (j < size) {
                got |= (unsigned long)wire[j] << (8 * k);
            }
        }
        unsigned long want = ~got;
        uint64_t first = w * RAM_BITS_PER_WORD;
        if (b->npages - first < RAM_BITS_PER_WORD) {
            want &= (1ul << (b->npages - first)) - 1;
        }
        atomic_store(&b->dirty[w], want);
    }
    return true;
}

void ram_postcopy_pause(struct ram_state *rs)
{
    pthread_mutex_lock(&rs->req_lock);
    rs->req_head = rs->req_len = 0;
    rs->req_last_block = -1;
    atomic_store(&rs->req_pending, 0);
    pthread_mutex_unlock(&rs->req_lock);
}

void ram_postcopy_resume(struct ram_state *rs)
{
    uint64_t dirty = 0;
    for (int i = 0; i < rs->mem->nblocks; i++) {
        dirty += ram_block_count_dirty(rs->mem->blocks[i]);
    }
    rs->dirty_pages = dirty;
    rs->cur_block = 0;
    rs->cur_word = 0;
    rs->resident_pages = 0;
    rs->last_sent_block = -1;
    rs->pc_jumped = false;
    atomic_store(&rs->req_hint, 0);
}

unsigned long *ram_incoming_received(struct ram_state *rs, const uint8_t *data,
                                     uint16_t len, const char **name,
                                     uint64_t *npages, Error **errp)
{
    if (!rs->pc_in) {
        error_setg(errp, "RECV_BITMAP outside postcopy");
        return NULL;
    }
    if (len < 2 || data[0] != len - 1) {
        error_setg(errp, "RECV_BITMAP with %u bytes, not a counted block name",
                   len);
        return NULL;
    }
    char want[256];
    memcpy(want, data + 1, len - 1u);
    want[len - 1] = '\0';
    int i = block_index(rs, want, errp);
    if (i < 0) {
        error_prepend(errp, "RECV_BITMAP: ");
        return NULL;
    }
    struct ram_block *b = rs->mem->blocks[i];
    *name = b->name;
    *npages = b->npages;
    return postcopy_in_received(rs->pc_in, i, errp);
}

void ram_incoming_pause(struct ram_state *rs)
{
    postcopy_in_forget_block(rs->pc_in);
}

void ram_incoming_resume(struct ram_state *rs)
{
    postcopy_in_resend(rs->pc_in);
}
