/* Write tracking with userfaultfd write-protection or the accelerator's
 * write guard (see ram-wp.h). */
#include "ram/ram-wp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "machine/write-guard.h"
#include "ram/uffd.h"
#include "util/alloc.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

struct wp_range {
    uint8_t *host;
    uint64_t npages;
    char name[64];
    _Atomic uint64_t *claimed; /* one bit per page */
};

struct ram_wp {
    struct write_guard *guard; /* instead of uffd, when set */
    int uffd;
    int stop_fd; /* eventfd: the fault thread ends */
    struct wp_range r[RAM_WP_MAX_RANGES];
    int nr;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;

    /* The queue: slots of copied pages, free or ready (oldest first). */
    pthread_mutex_t lock;
    pthread_cond_t space;
    uint8_t *slots;
    unsigned nslots;
    unsigned *free_list, nfree;
    unsigned *ready, ready_head, nready; /* a ring of nslots */
    int *slot_range;
    uint64_t *slot_page;
    uint64_t faults;
    char error[256]; /* the fault thread's, once it failed */
};

/* A userfaultfd set up for write-protection; *features: what it has. */
static int uffd_open_wp(uint64_t *features, Error **errp)
{
    int fd = uffd_open("background-snapshot", errp);
    if (fd < 0) {
        return -1;
    }
    /* The API handshake happens once per descriptor: ask what the kernel
     * has on one, then set up a second with what we use of it. */
    struct uffdio_api api = { .api = UFFD_API };
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        error_setg_errno(errp, errno, "background-snapshot: userfaultfd API");
        close(fd);
        return -1;
    }
    close(fd);
    if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
        error_setg(errp,
                   "background-snapshot: this kernel's userfaultfd cannot "
                   "write-protect memory (Linux 5.7 or later needed)");
        return -1;
    }
    uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
#ifdef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
    want |= api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
#endif
#ifdef UFFD_FEATURE_WP_UNPOPULATED
    want |= api.features & UFFD_FEATURE_WP_UNPOPULATED;
#endif
    fd = uffd_open("background-snapshot", errp);
    if (fd < 0) {
        return -1;
    }
    struct uffdio_api api2 = { .api = UFFD_API, .features = want };
    if (ioctl(fd, UFFDIO_API, &api2) < 0) {
        error_setg_errno(errp, errno, "background-snapshot: userfaultfd API");
        close(fd);
        return -1;
    }
    *features = want;
    return fd;
}

static bool uffd_register(int fd, const struct ram_wp_range *r, Error **errp)
{
    struct uffdio_register reg = {
        .range = { (uintptr_t)r->host, r->npages * RAM_WP_PAGE_SIZE },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
        error_setg(errp,
                   "background-snapshot: RAM block %s: the kernel cannot "
                   "write-protect this memory (%s; anonymous memory, "
                   "memfd and shmem can be)",
                   r->name, strerror(errno));
        return false;
    }
    if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT))) {
        struct uffdio_range rg = reg.range;
        ioctl(fd, UFFDIO_UNREGISTER, &rg);
        error_setg(errp,
                   "background-snapshot: RAM block %s: the kernel cannot "
                   "write-protect this kind of memory",
                   r->name);
        return false;
    }
    return true;
}

static void uffd_unregister(int fd, uint8_t *host, uint64_t npages)
{
    struct uffdio_range rg = { (uintptr_t)host, npages * RAM_WP_PAGE_SIZE };
    ioctl(fd, UFFDIO_UNREGISTER, &rg);
}

static int uffd_protect(int fd, uint8_t *host, uint64_t npages, bool on)
{
    struct uffdio_writeprotect wp = {
        .range = { (uintptr_t)host, npages * RAM_WP_PAGE_SIZE },
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
}

/* Lets writes to npages of range i from first through. */
static int lift(struct ram_wp *wp, int i, uint64_t first, uint64_t npages)
{
    if (wp->guard) {
        write_guard_lift(wp->guard, first, npages);
        return 0;
    }
    return uffd_protect(wp->uffd, wp->r[i].host + first * RAM_WP_PAGE_SIZE,
                        npages, false);
}

bool ram_wp_check(const struct ram_wp_range *r, int n, Error **errp)
{
    uint64_t features;
    int fd = uffd_open_wp(&features, errp);
    if (fd < 0) {
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        ok = uffd_register(fd, &r[i], errp);
        if (ok) {
            uffd_unregister(fd, r[i].host, r[i].npages);
        }
    }
    close(fd);
    return ok;
}

static void wp_fail(struct ram_wp *wp, const char *what, int err)
{
    pthread_mutex_lock(&wp->lock);
    if (!wp->error[0]) {
        snprintf(wp->error, sizeof(wp->error),
                 "background-snapshot: write tracking failed: %s: %s", what,
                 strerror(err));
    }
    pthread_mutex_unlock(&wp->lock);
}

/* Lift the protection of every range: whoever waits goes on. */
static void unprotect_all(struct ram_wp *wp)
{
    for (int i = 0; i < wp->nr; i++) {
        lift(wp, i, 0, wp->r[i].npages);
    }
}

static int find_range(const struct ram_wp *wp, uint64_t addr, uint64_t *page)
{
    for (int i = 0; i < wp->nr; i++) {
        uint64_t start = (uintptr_t)wp->r[i].host;
        if (addr >= start &&
            addr - start < wp->r[i].npages * RAM_WP_PAGE_SIZE) {
            *page = (addr - start) / RAM_WP_PAGE_SIZE;
            return i;
        }
    }
    return -1;
}

/* Copies page p of range i into a free slot and queues it (lock held). */
static void enqueue_copy(struct ram_wp *wp, int i, uint64_t p)
{
    unsigned s = wp->free_list[--wp->nfree];
    memcpy(wp->slots + (size_t)s * RAM_WP_PAGE_SIZE,
           wp->r[i].host + p * RAM_WP_PAGE_SIZE, RAM_WP_PAGE_SIZE);
    wp->slot_range[s] = i;
    wp->slot_page[s] = p;
    wp->ready[(wp->ready_head + wp->nready++) % wp->nslots] = s;
}

/* A writer that faulted on a page is likely to write the next ones: the
 * rest of its bitmap word that nobody claimed is copied (as far as the
 * queue has room) and let go in one call, once the writer went on.  The
 * saver claims a word's unclaimed pages all at once, so between the first
 * and last page claimed here lie only pages faulted on before, copied
 * and let go already. */
static bool copy_ahead(struct ram_wp *wp, int i, uint64_t page)
{
    struct wp_range *r = &wp->r[i];
    uint64_t word = page / 64;
    uint64_t end = (word + 1) * 64 < r->npages ? (word + 1) * 64 : r->npages;
    pthread_mutex_lock(&wp->lock);
    uint64_t n = end - (page + 1);
    if (n > wp->nfree) {
        n = wp->nfree;
    }
    uint64_t got = 0;
    if (n > 0 && !atomic_load(&wp->stop)) {
        uint64_t want = (n >= 64 ? ~0ull : (1ull << n) - 1)
            << ((page + 1) % 64);
        got = want & ~atomic_fetch_or(&r->claimed[word], want);
        for (uint64_t m = got; m; m &= m - 1) {
            enqueue_copy(wp, i, word * 64 + (uint64_t)__builtin_ctzll(m));
        }
    }
    pthread_mutex_unlock(&wp->lock);
    if (!got) {
        return true;
    }
    uint64_t first = word * 64 + (uint64_t)__builtin_ctzll(got);
    uint64_t last = word * 64 + 63 - (uint64_t)__builtin_clzll(got);
    if (lift(wp, i, first, last - first + 1) < 0) {
        wp_fail(wp, "unprotecting pages", errno);
        return false;
    }
    return true;
}

/* One write to page of range i: copy the page if nobody claimed it yet,
 * then let the writer go.  false when tracking must end (stop or
 * error). */
static bool handle_write(struct ram_wp *wp, int i, uint64_t page)
{
    struct wp_range *r = &wp->r[i];
    uint64_t bit = 1ull << (page % 64);
    bool mine = false;
    pthread_mutex_lock(&wp->lock);
    if (!(atomic_load(&r->claimed[page / 64]) & bit)) {
        while (wp->nfree == 0 && !atomic_load(&wp->stop)) {
            pthread_cond_wait(&wp->space, &wp->lock);
        }
        if (atomic_load(&wp->stop)) {
            pthread_mutex_unlock(&wp->lock);
            return false;
        }
        /* Claimed and queued under the lock: ram_wp_idle sees both or
         * neither. */
        mine = !(atomic_fetch_or(&r->claimed[page / 64], bit) & bit);
        if (mine) {
            enqueue_copy(wp, i, page);
            wp->faults++;
        }
    }
    pthread_mutex_unlock(&wp->lock);
    /* A page the saver claimed is unprotected by the saver once copied
     * (which wakes the writer): lifting it here could let the write in
     * before the copy. */
    if (mine && lift(wp, i, page, 1) < 0) {
        wp_fail(wp, "unprotecting a page", errno);
        return false;
    }
    return !mine || copy_ahead(wp, i, page);
}

static bool handle_fault(struct ram_wp *wp, uint64_t addr)
{
    uint64_t page;
    int i = find_range(wp, addr & ~(uint64_t)(RAM_WP_PAGE_SIZE - 1), &page);
    if (i < 0) {
        /* Not ours (cannot happen): wake the writer anyway. */
        struct uffdio_range rg = { addr & ~(uint64_t)(RAM_WP_PAGE_SIZE - 1),
                                   RAM_WP_PAGE_SIZE };
        ioctl(wp->uffd, UFFDIO_WAKE, &rg);
        return true;
    }
    return handle_write(wp, i, page);
}

/* The write guard's callback, on the storing thread: as a fault, and a
 * page the saver claimed is waited for until the saver lifts its guard
 * (it copies a word's pages at most before it does). */
static void guarded_write(void *opaque, uint64_t page)
{
    struct ram_wp *wp = opaque;
    if (!handle_write(wp, 0, page)) {
        return; /* ending: ram_wp_stop lifts every guard */
    }
    while (write_guard_test(wp->guard, page) && !atomic_load(&wp->stop)) {
        sched_yield();
    }
}

static void *fault_thread(void *opaque)
{
    struct ram_wp *wp = opaque;
    while (!atomic_load(&wp->stop)) {
        struct pollfd p[2] = { { .fd = wp->uffd, .events = POLLIN },
                               { .fd = wp->stop_fd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            wp_fail(wp, "poll", errno);
            break;
        }
        if (p[1].revents) {
            break;
        }
        struct uffd_msg msg[16];
        ssize_t n = read(wp->uffd, msg, sizeof(msg));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            wp_fail(wp, "reading userfaultfd", errno);
            break;
        }
        bool go = true;
        for (size_t k = 0; go && k < (size_t)n / sizeof(msg[0]); k++) {
            if (msg[k].event == UFFD_EVENT_PAGEFAULT) {
                go = handle_fault(wp, msg[k].arg.pagefault.address);
            }
        }
        if (!go) {
            break;
        }
    }
    /* Whatever ended it, no writer may stay blocked. */
    unprotect_all(wp);
    return NULL;
}

static void wp_free(struct ram_wp *wp)
{
    /* Past nr too: a range whose registration failed has its bitmap. */
    for (int i = 0; i < RAM_WP_MAX_RANGES; i++) {
        free(wp->r[i].claimed);
    }
    if (wp->uffd >= 0) {
        close(wp->uffd);
    }
    if (wp->stop_fd >= 0) {
        close(wp->stop_fd);
    }
    pthread_mutex_destroy(&wp->lock);
    pthread_cond_destroy(&wp->space);
    free(wp->free_list);
    free(wp->ready);
    free(wp->slot_range);
    free(wp->slot_page);
    free(wp);
}

static void set_range(struct wp_range *w, const struct ram_wp_range *r)
{
    w->host = r->host;
    w->npages = r->npages;
    snprintf(w->name, sizeof(w->name), "%s", r->name);
    w->claimed = xcalloc((r->npages + 63) / 64, sizeof(uint64_t));
}

static struct ram_wp *wp_new(uint8_t *slots, unsigned queue_pages)
{
    struct ram_wp *wp = xcalloc(1, sizeof(*wp));
    pthread_mutex_init(&wp->lock, NULL);
    pthread_cond_init(&wp->space, NULL);
    wp->uffd = -1;
    wp->stop_fd = -1;
    wp->nslots = queue_pages;
    wp->slots = slots;
    wp->free_list = xcalloc(queue_pages, sizeof(unsigned));
    wp->ready = xcalloc(queue_pages, sizeof(unsigned));
    wp->slot_range = xcalloc(queue_pages, sizeof(int));
    wp->slot_page = xcalloc(queue_pages, sizeof(uint64_t));
    for (unsigned s = 0; s < queue_pages; s++) {
        wp->free_list[wp->nfree++] = queue_pages - 1 - s;
    }
    return wp;
}

/* The accelerator's guard stands in for userfaultfd: the storing thread
 * runs what the fault thread would. */
static struct ram_wp *start_guarded(const struct ram_wp_range *r, int n,
                                    struct write_guard *guard, uint8_t *queue,
                                    unsigned queue_pages, Error **errp)
{
    if (n != 1 || guard->npages != r[0].npages) {
        error_setg(errp,
                   "background-snapshot: the write guard covers %llu pages, "
                   "not the %llu of RAM block %s",
                   (unsigned long long)guard->npages,
                   (unsigned long long)r[0].npages, r[0].name);
        return NULL;
    }
    struct ram_wp *wp = wp_new(queue, queue_pages);
    wp->guard = guard;
    set_range(&wp->r[0], &r[0]);
    wp->nr = 1;
    write_guard_arm(guard, guarded_write, wp);
    return wp;
}

struct ram_wp *ram_wp_start(const struct ram_wp_range *r, int n,
                            struct write_guard *guard, uint8_t *queue,
                            unsigned queue_pages, Error **errp)
{
    if (n > RAM_WP_MAX_RANGES || queue_pages == 0) {
        error_setg(errp, "background-snapshot: %d RAM blocks, %u queue pages",
                   n, queue_pages);
        return NULL;
    }
    if (guard) {
        return start_guarded(r, n, guard, queue, queue_pages, errp);
    }
    struct ram_wp *wp = wp_new(queue, queue_pages);
    uint64_t features = 0;
    wp->uffd = uffd_open_wp(&features, errp);
    if (wp->uffd < 0) {
        wp_free(wp);
        return NULL;
    }
    wp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wp->stop_fd < 0) {
        error_setg_errno(errp, errno, "background-snapshot: eventfd");
        wp_free(wp);
        return NULL;
    }
#ifdef UFFD_FEATURE_WP_UNPOPULATED
    bool unpopulated = features & UFFD_FEATURE_WP_UNPOPULATED;
#else
    bool unpopulated = false;
#endif
    for (int i = 0; i < n; i++) {
        struct wp_range *w = &wp->r[i];
        set_range(w, &r[i]);
        if (!uffd_register(wp->uffd, &r[i], errp)) {
            wp->nr = i;
            goto fail;
        }
        wp->nr = i + 1;
        /* Older kernels see no write to a page never touched: map it
         * (reading maps the shared zero page, allocating nothing). */
        if (!unpopulated) {
            madvise(w->host, w->npages * RAM_WP_PAGE_SIZE, MADV_POPULATE_READ);
        }
        if (uffd_protect(wp->uffd, w->host, w->npages, true) < 0) {
            error_setg_errno(errp, errno,
                             "background-snapshot: RAM block %s: "
                             "write-protecting",
                             w->name);
            goto fail;
        }
    }
    if (pthread_create(&wp->thread, NULL, fault_thread, wp) != 0) {
        error_setg(errp, "background-snapshot: cannot start the fault thread");
        goto fail;
    }
    wp->thread_started = true;
    return wp;

fail:
    unprotect_all(wp);
    for (int i = 0; i < wp->nr; i++) {
        uffd_unregister(wp->uffd, wp->r[i].host, wp->r[i].npages);
    }
    wp_free(wp);
    return NULL;
}

void ram_wp_stop(struct ram_wp *wp)
{
    if (!wp) {
        return;
    }
    atomic_store(&wp->stop, true);
    uint64_t one = 1;
    if (wp->stop_fd >= 0 && write(wp->stop_fd, &one, sizeof(one)) < 0) {
        /* A counter at its limit still wakes poll. */
    }
    pthread_mutex_lock(&wp->lock);
    pthread_cond_broadcast(&wp->space);
    pthread_mutex_unlock(&wp->lock);
    if (wp->guard) {
        /* Waits for whoever is in guarded_write (woken above). */
        write_guard_disarm(wp->guard);
        wp_free(wp);
        return;
    }
    if (wp->thread_started) {
        pthread_join(wp->thread, NULL);
    }
    unprotect_all(wp);
    for (int i = 0; i < wp->nr; i++) {
        uffd_unregister(wp->uffd, wp->r[i].host, wp->r[i].npages);
    }
    wp_free(wp);
}

uint64_t ram_wp_claim(struct ram_wp *wp, int r, uint64_t word)
{
    struct wp_range *w = &wp->r[r];
    uint64_t first = word * 64;
    if (first >= w->npages) {
        return 0;
    }
    uint64_t want =
        w->npages - first >= 64 ? ~0ull : (1ull << (w->npages - first)) - 1;
    uint64_t old = atomic_fetch_or(&w->claimed[word], want);
    return want & ~old;
}

bool ram_wp_release(struct ram_wp *wp, int r, uint64_t first, uint64_t npages,
                    Error **errp)
{
    struct wp_range *w = &wp->r[r];
    if (lift(wp, r, first, npages) < 0) {
        error_setg_errno(errp, errno,
                         "background-snapshot: RAM block %s: unprotecting "
                         "pages %llu-%llu",
                         w->name, (unsigned long long)first,
                         (unsigned long long)(first + npages - 1));
        return false;
    }
    return true;
}

int ram_wp_take(struct ram_wp *wp, struct ram_wp_copy *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&wp->lock);
    while (n < max && wp->nready) {
        unsigned s = wp->ready[wp->ready_head];
        wp->ready_head = (wp->ready_head + 1) % wp->nslots;
        wp->nready--;
        out[n].range = wp->slot_range[s];
        out[n].page = wp->slot_page[s];
        out[n].data = wp->slots + (size_t)s * RAM_WP_PAGE_SIZE;
        n++;
    }
    pthread_mutex_unlock(&wp->lock);
    return n;
}

void ram_wp_put(struct ram_wp *wp, const struct ram_wp_copy *c, int n)
{
    pthread_mutex_lock(&wp->lock);
    for (int i = 0; i < n; i++) {
        wp->free_list[wp->nfree++] =
            (unsigned)((c[i].data - wp->slots) / RAM_WP_PAGE_SIZE);
    }
    pthread_cond_broadcast(&wp->space);
    pthread_mutex_unlock(&wp->lock);
}

bool ram_wp_idle(struct ram_wp *wp)
{
    pthread_mutex_lock(&wp->lock);
    bool idle = wp->nready == 0;
    pthread_mutex_unlock(&wp->lock);
    return idle;
}

bool ram_wp_ok(struct ram_wp *wp, Error **errp)
{
    pthread_mutex_lock(&wp->lock);
    bool ok = !wp->error[0];
    if (!ok) {
        error_setg(errp, "%s", wp->error);
    }
    pthread_mutex_unlock(&wp->lock);
    return ok;
}

bool ram_wp_splits_huge_pages(const struct ram_wp *wp)
{
    return !wp->guard;
}

uint64_t ram_wp_faults(struct ram_wp *wp)
{
    pthread_mutex_lock(&wp->lock);
    uint64_t n = wp->faults;
    pthread_mutex_unlock(&wp->lock);
    return n;
}
