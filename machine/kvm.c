/* accel kvm: x86 KVM with one VM per machine and one KVM vCPU per hop
 * vCPU.  Guest RAM regions become memory slots with dirty logging; port
 * I/O exits go to the machine's io ops; HLT, shutdown and failures end
 * vcpu_run.  A kick is a signal to the vCPU thread plus immediate_exit,
 * so a stop request is never lost between the check and KVM_RUN. */
#include "machine/accel.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVM_DEV "/dev/kvm"
#define KVM_MAX_SLOTS 8
/* Pages KVM needs for real-mode emulation helpers; just below 4 GiB,
 * where hop never puts RAM. */
#define KVM_TSS_ADDR 0xfffbd000u
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

struct accel {
    int kvm_fd;
    int vm_fd;
    int run_size;
    int nvcpus; /* created so far */
    struct accel_mem_region regions[KVM_MAX_SLOTS];
    int nregions;
    struct accel_io_ops io;
};

struct accel_vcpu {
    struct accel *acc;
    int index;
    int fd;
    struct kvm_run *run;
    bool halted;
    bool cpuid_set; /* done before the first run */
    /* An I/O exit was handled but KVM has not completed the instruction:
     * KVM_RUN must be entered once more before registers are read. */
    bool io_pending;
    pthread_t thread;
    atomic_bool thread_valid;
};

static int kick_signal(void)
{
    return SIGRTMIN + 3;
}

static void kick_handler(int sig)
{
    (void)sig; /* only interrupts KVM_RUN */
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void install_kick_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN -> EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(kick_signal(), &sa, NULL);
}

static int open_kvm(Error **errp)
{
    int fd = open(KVM_DEV, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            error_setg(errp,
                       "accel kvm: %s does not exist (no KVM support "
                       "in this kernel, or the kvm module is not loaded)",
                       KVM_DEV);
        } else if (e == EACCES || e == EPERM) {
            error_setg(errp,
                       "accel kvm: no permission to open %s (add the "
                       "user to the 'kvm' group)",
                       KVM_DEV);
        } else {
            error_setg_errno(errp, e, "accel kvm: cannot open %s", KVM_DEV);
        }
        return -1;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        error_setg(errp, "accel kvm: %s speaks API version %d, hop needs %d",
                   KVM_DEV, api, KVM_API_VERSION);
        close(fd);
        return -1;
    }
    if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0 ||
        ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
        error_setg(errp,
                   "accel kvm: %s lacks user memory or immediate exit "
                   "support",
                   KVM_DEV);
        close(fd);
        return -1;
    }
    return fd;
}

static bool kvm_available(Error **errp)
{
    int fd = open_kvm(errp);
    if (fd < 0) {
        return false;
    }
    int vm = ioctl(fd, KVM_CREATE_VM, 0);
    if (vm < 0) {
        error_setg_errno(errp, errno,
                         "accel kvm: %s opens but cannot create "
                         "a VM",
                         KVM_DEV);
        close(fd);
        return false;
    }
    close(vm);
    close(fd);
    return true;
}

static void kvm_destroy(struct accel *acc)
{
    if (!acc) {
        return;
    }
    if (acc->vm_fd >= 0) {
        close(acc->vm_fd);
    }
    if (acc->kvm_fd >= 0) {
        close(acc->kvm_fd);
    }
    free(acc);
}

static struct accel *kvm_create(const struct accel_mem_region *regions,
                                int nregions, const struct accel_io_ops *io,
                                Error **errp)
{
    if (nregions > KVM_MAX_SLOTS) {
        error_setg(errp, "accel kvm: %d memory regions, at most %d", nregions,
                   KVM_MAX_SLOTS);
        return NULL;
    }
    pthread_once(&kick_once, install_kick_handler);
    struct accel *acc = xcalloc(1, sizeof(*acc));
    acc->vm_fd = -1;
    acc->kvm_fd = open_kvm(errp);
    if (acc->kvm_fd < 0) {
        goto fail;
    }
    acc->vm_fd = ioctl(acc->kvm_fd, KVM_CREATE_VM, 0);
    if (acc->vm_fd < 0) {
        error_setg_errno(errp, errno, "accel kvm: KVM_CREATE_VM");
        goto fail;
    }
    acc->run_size = ioctl(acc->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (acc->run_size <= 0) {
        error_setg_errno(errp, errno, "accel kvm: KVM_GET_VCPU_MMAP_SIZE");
        goto fail;
    }
    if (ioctl(acc->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
        error_setg_errno(errp, errno, "accel kvm: KVM_SET_TSS_ADDR");
        goto fail;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    if (ioctl(acc->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) >
            0 &&
        ioctl(acc->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
        error_setg_errno(errp, errno, "accel kvm: KVM_SET_IDENTITY_MAP_ADDR");
        goto fail;
    }
    for (int i = 0; i < nregions; i++) {
        struct kvm_userspace_memory_region slot = {
            .slot = (uint32_t)i,
            .flags = KVM_MEM_LOG_DIRTY_PAGES,
            .guest_phys_addr = regions[i].gpa,
            .memory_size = regions[i].size,
            .userspace_addr = (uint64_t)(uintptr_t)regions[i].host,
        };
        if (ioctl(acc->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
            error_setg_errno(errp, errno,
                             "accel kvm: memory slot %d (gpa "
                             "0x%llx, %llu bytes)",
                             i, (unsigned long long)regions[i].gpa,
                             (unsigned long long)regions[i].size);
            goto fail;
        }
        acc->regions[i] = regions[i];
    }
    acc->nregions = nregions;
    acc->io = *io;
    return acc;
fail:
    kvm_destroy(acc);
    return NULL;
}

/* CPUID as the x86 subset defines it: leaf 0 names hop, leaf 1 gives the
 * vCPU index and count in EBX and TSC in EDX. */
static bool set_cpuid(struct accel_vcpu *v, int count, Error **errp)
{
    struct {
        struct kvm_cpuid2 hdr;
        struct kvm_cpuid_entry2 e[2];
    } c;
    memset(&c, 0, sizeof(c));
    c.hdr.nent = 2;
    c.e[0].function = 0;
    c.e[0].eax = 1;
    memcpy(&c.e[0].ebx, "hopH", 4);
    memcpy(&c.e[0].edx, "OPho", 4);
    memcpy(&c.e[0].ecx, "pHOP", 4);
    c.e[1].function = 1;
    c.e[1].ebx = (uint32_t)v->index << 24 | (uint32_t)(count & 0xff) << 16;
    c.e[1].edx = 1u << 4;
    if (ioctl(v->fd, KVM_SET_CPUID2, &c) < 0) {
        error_setg_errno(errp, errno, "accel kvm: vCPU %d: KVM_SET_CPUID2",
                         v->index);
        return false;
    }
    return true;
}

static void kvm_vcpu_destroy(struct accel_vcpu *v)
{
    if (!v) {
        return;
    }
    if (v->run) {
        munmap(v->run, (size_t)v->acc->run_size);
    }
    if (v->fd >= 0) {
        close(v->fd);
    }
    free(v);
}

/* CPUID reports the vCPU count, which is known only once every vCPU was
 * created: it is set at the first run. */
static struct accel_vcpu *kvm_vcpu_create(struct accel *acc, int index,
                                          Error **errp)
{
    struct accel_vcpu *v = xcalloc(1, sizeof(*v));
    v->acc = acc;
    v->index = index;
    v->fd = ioctl(acc->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (v->fd < 0) {
        error_setg_errno(errp, errno, "accel kvm: KVM_CREATE_VCPU %d", index);
        free(v);
        return NULL;
    }
    void *run = mmap(NULL, (size_t)acc->run_size, PROT_READ | PROT_WRITE,
                     MAP_SHARED, v->fd, 0);
    if (run == MAP_FAILED) {
        error_setg_errno(errp, errno, "accel kvm: vCPU %d: mmap of kvm_run",
                         index);
        close(v->fd);
        free(v);
        return NULL;
    }
    v->run = run;
    if (index + 1 > acc->nvcpus) {
        acc->nvcpus = index + 1;
    }
    return v;
}

static void seg_to_kvm(const struct x86_segment *s, struct kvm_segment *k)
{
    k->base = s->base;
    k->limit = s->limit;
    k->selector = s->selector;
    k->type = s->type;
    k->present = s->present;
    k->dpl = s->dpl;
    k->db = s->db;
    k->s = s->s;
    k->l = 0;
    k->g = s->g;
    k->avl = s->avl;
    k->unusable = !s->present;
}

static void seg_from_kvm(const struct kvm_segment *k, struct x86_segment *s)
{
    s->base = (uint32_t)k->base;
    s->limit = k->limit;
    s->selector = k->selector;
    s->type = k->type;
    s->present = k->present && !k->unusable;
    s->dpl = k->dpl;
    s->db = k->db;
    s->s = k->s;
    s->g = k->g;
    s->avl = k->avl;
}

/* KVM's registers in x86 encoding order (enum x86_reg). */
static __u64 *kvm_reg(struct kvm_regs *r, int i)
{
    __u64 *slots[X86_NR_REGS] = {
        [R_EAX] = &r->rax, [R_ECX] = &r->rcx, [R_EDX] = &r->rdx,
        [R_EBX] = &r->rbx, [R_ESP] = &r->rsp, [R_EBP] = &r->rbp,
        [R_ESI] = &r->rsi, [R_EDI] = &r->rdi,
    };
    return slots[i];
}

static bool kvm_get_state(struct accel_vcpu *v, struct x86_state *st,
                          Error **errp)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 ||
        ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        error_setg_errno(errp, errno, "accel kvm: vCPU %d: reading registers",
                         v->index);
        return false;
    }
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < X86_NR_REGS; i++) {
        st->regs[i] = (uint32_t)*kvm_reg(&regs, i);
    }
    st->eip = (uint32_t)regs.rip;
    st->eflags = (uint32_t)regs.rflags;
    const struct kvm_segment *segs[X86_NR_SREGS] = {
        [S_ES] = &sregs.es, [S_CS] = &sregs.cs, [S_SS] = &sregs.ss,
        [S_DS] = &sregs.ds, [S_FS] = &sregs.fs, [S_GS] = &sregs.gs,
    };
    for (int i = 0; i < X86_NR_SREGS; i++) {
        seg_from_kvm(segs[i], &st->seg[i]);
    }
    st->gdt.base = (uint32_t)sregs.gdt.base;
    st->gdt.limit = sregs.gdt.limit;
    st->idt.base = (uint32_t)sregs.idt.base;
    st->idt.limit = sregs.idt.limit;
    st->cr0 = (uint32_t)sregs.cr0;
    st->cr2 = (uint32_t)sregs.cr2;
    st->cr3 = (uint32_t)sregs.cr3;
    st->cr4 = (uint32_t)sregs.cr4;
    st->halted = v->halted;
    return true;
}

static bool kvm_set_state(struct accel_vcpu *v, const struct x86_state *st,
                          Error **errp)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    /* Start from KVM's own sregs so fields hop does not model (EFER, APIC
     * base, TR, LDT) keep valid values. */
    if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        error_setg_errno(errp, errno, "accel kvm: vCPU %d: KVM_GET_SREGS",
                         v->index);
        return false;
    }
    memset(&regs, 0, sizeof(regs));
    for (int i = 0; i < X86_NR_REGS; i++) {
        *kvm_reg(&regs, i) = st->regs[i];
    }
    regs.rip = st->eip;
    regs.rflags = st->eflags | X86_EFLAGS_FIXED;
    struct kvm_segment *segs[X86_NR_SREGS] = {
        [S_ES] = &sregs.es, [S_CS] = &sregs.cs, [S_SS] = &sregs.ss,
        [S_DS] = &sregs.ds, [S_FS] = &sregs.fs, [S_GS] = &sregs.gs,
    };
    for (int i = 0; i < X86_NR_SREGS; i++) {
        seg_to_kvm(&st->seg[i], segs[i]);
    }
    /* A task register KVM accepts in protected mode: a busy 32-bit TSS. */
    if (sregs.tr.type != 11) {
        sregs.tr.type = 11;
        sregs.tr.present = 1;
        sregs.tr.s = 0;
        sregs.tr.unusable = 0;
        sregs.tr.limit = 0x67;
    }
    sregs.gdt.base = st->gdt.base;
    sregs.gdt.limit = st->gdt.limit;
    sregs.idt.base = st->idt.base;
    sregs.idt.limit = st->idt.limit;
    sregs.cr0 = st->cr0;
    sregs.cr2 = st->cr2;
    sregs.cr3 = st->cr3;
    sregs.cr4 = st->cr4;
    sregs.efer = 0;
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
        error_setg_errno(errp, errno,
                         "accel kvm: vCPU %d: KVM_SET_SREGS "
                         "(cr0 0x%x, cs 0x%x)",
                         v->index, st->cr0, st->seg[S_CS].selector);
        return false;
    }
    if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
        error_setg_errno(errp, errno, "accel kvm: vCPU %d: KVM_SET_REGS",
                         v->index);
        return false;
    }
    v->halted = st->halted;
    v->io_pending = false;
    return true;
}

static uint32_t guest_eip(struct accel_vcpu *v)
{
    struct kvm_regs regs;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0) {
        return 0;
    }
    return (uint32_t)regs.rip;
}

static void handle_io(struct accel_vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    int size = run->io.size;
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            uint32_t val = 0;
            memcpy(&val, data, (size_t)size);
            v->acc->io.pio_out(v->acc->io.opaque, run->io.port, size, val);
        } else {
            uint32_t val =
                v->acc->io.pio_in(v->acc->io.opaque, run->io.port, size);
            memcpy(data, &val, (size_t)size);
        }
    }
}

/* Let KVM finish an instruction whose I/O was handled, without running
 * any further guest code. */
static void complete_io(struct accel_vcpu *v)
{
    if (!v->io_pending) {
        return;
    }
    v->run->immediate_exit = 1;
    ioctl(v->fd, KVM_RUN, 0);
    v->run->immediate_exit = 0;
    v->io_pending = false;
}

static enum accel_exit kvm_vcpu_run(struct accel_vcpu *v,
                                    const atomic_int *stop, char *err,
                                    size_t errlen)
{
    if (!atomic_load(&v->thread_valid)) {
        v->thread = pthread_self();
        atomic_store(&v->thread_valid, true);
    }
    /* The kick signal must reach this thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kick_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    if (v->halted) {
        return ACCEL_EXIT_HLT; /* nothing will wake it */
    }
    if (!v->cpuid_set) {
        Error *e = NULL;
        if (!set_cpuid(v, v->acc->nvcpus, &e)) {
            snprintf(err, errlen, "%s", error_get_pretty(e));
            error_free(e);
            return ACCEL_EXIT_ERROR;
        }
        v->cpuid_set = true;
    }
    struct kvm_run *run = v->run;
    for (;;) {
        if (atomic_load(stop)) {
            complete_io(v);
            run->immediate_exit = 0;
            return ACCEL_EXIT_STOP;
        }
        int r = ioctl(v->fd, KVM_RUN, 0);
        v->io_pending = false;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                run->immediate_exit = 0;
                continue;
            }
            snprintf(err, errlen, "KVM_RUN failed: %s at eip 0x%08x",
                     strerror(errno), guest_eip(v));
            return ACCEL_EXIT_ERROR;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(v);
            v->io_pending = true;
            break;
        case KVM_EXIT_HLT:
            v->halted = true;
            return ACCEL_EXIT_HLT;
        case KVM_EXIT_SHUTDOWN:
            return ACCEL_EXIT_SHUTDOWN;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_MMIO:
            snprintf(err, errlen,
                     "%s of %u bytes at unmapped physical "
                     "address 0x%llx at eip 0x%08x",
                     run->mmio.is_write ? "write" : "read", run->mmio.len,
                     (unsigned long long)run->mmio.phys_addr, guest_eip(v));
            return ACCEL_EXIT_ERROR;
        case KVM_EXIT_FAIL_ENTRY:
            snprintf(err, errlen,
                     "KVM entry failed, hardware reason "
                     "0x%llx, at eip 0x%08x",
                     (unsigned long long)
                         run->fail_entry.hardware_entry_failure_reason,
                     guest_eip(v));
            return ACCEL_EXIT_ERROR;
        case KVM_EXIT_INTERNAL_ERROR:
            snprintf(err, errlen,
                     "KVM internal error (suberror %u) at "
                     "eip 0x%08x",
                     run->internal.suberror, guest_eip(v));
            return ACCEL_EXIT_ERROR;
        default:
            snprintf(err, errlen, "unexpected KVM exit %u at eip 0x%08x",
                     run->exit_reason, guest_eip(v));
            return ACCEL_EXIT_ERROR;
        }
    }
}

static void kvm_vcpu_kick(struct accel_vcpu *v)
{
    v->run->immediate_exit = 1;
    if (atomic_load(&v->thread_valid)) {
        pthread_kill(v->thread, kick_signal());
    }
}

static bool kvm_sync_dirty(struct accel *acc, Error **errp)
{
    for (int i = 0; i < acc->nregions; i++) {
        struct accel_mem_region *r = &acc->regions[i];
        uint64_t pages = r->size / 4096;
        uint64_t words = (pages + 63) / 64;
        unsigned long *bits = xcalloc(words, sizeof(unsigned long));
        struct kvm_dirty_log log = { .slot = (uint32_t)i };
        log.dirty_bitmap = bits;
        if (ioctl(acc->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
            error_setg_errno(errp, errno,
                             "accel kvm: KVM_GET_DIRTY_LOG of "
                             "slot %d",
                             i);
            free(bits);
            return false;
        }
        _Static_assert(sizeof(unsigned long) == 8,
                       "KVM and hop dirty bitmaps are 64-bit words");
        for (uint64_t w = 0; w < words; w++) {
            if (bits[w]) {
                atomic_fetch_or(&r->dirty[w], bits[w]);
            }
        }
        free(bits);
    }
    return true;
}

static void kvm_invalidate(struct accel *acc, uint64_t gpa, uint64_t len)
{
    (void)acc;
    (void)gpa;
    (void)len; /* KVM sees memory directly */
}

static uint64_t kvm_icount(struct accel_vcpu *v)
{
    (void)v;
    return 0;
}

const struct accel_ops accel_kvm_ops = {
    .name = "kvm",
    .available = kvm_available,
    .create = kvm_create,
    .destroy = kvm_destroy,
    .vcpu_create = kvm_vcpu_create,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_kick = kvm_vcpu_kick,
    .get_state = kvm_get_state,
    .set_state = kvm_set_state,
    .sync_dirty = kvm_sync_dirty,
    .invalidate = kvm_invalidate,
    .icount = kvm_icount,
};
