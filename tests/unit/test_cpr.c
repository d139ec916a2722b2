/* The cpr channel (migration/cpr.h): the destination takes a message of
 * RAM block descriptors and memfds only when every block matches one of
 * its own, maps what it took in place of its pages, and answers; any
 * hostile message is refused within a bound, with a one-line error that
 * the source reads in the answer, and no descriptor stays open.  The
 * source sends its blocks and reads the answer, hostile or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "machine/memory.h"
#include "migration/cpr.h"
#include "util/be.h"
#include "util/clock.h"

#define MiB (1ull << 20)
#define RAM_SIZE (8 * MiB)
#define EXTRA_SIZE (2 * MiB)
/* No wait in here may take longer (the channel's own bounds are 5 s for
 * the message and 10 s for the answer). */
#define BOUND_S 20

struct fixture {
    struct machine_memory *mem; /* pc.ram and "extra", on shared memfds */
    int src;                    /* the test's end: it plays the source */
    int dst;                    /* cpr_recv_memory's end */
    int fds_before;
};

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        n += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static struct mem_backend shared_memfd(const char *id, uint64_t size)
{
    char spec[128];
    snprintf(spec, sizeof(spec), "memory-backend-memfd,id=%s,size=%llu", id,
             (unsigned long long)size);
    struct mem_backend be;
    Error *err = NULL;
    if (!mem_backend_parse(&be, spec, &err)) {
        fail_msg("%s: %s", spec, error_get_pretty(err));
    }
    return be;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    Error *err = NULL;
    struct mem_backend ram = shared_memfd("m", RAM_SIZE);
    struct mem_backend extra = shared_memfd("x", EXTRA_SIZE);
    fx->mem = memory_new(RAM_SIZE, &ram, &err);
    assert_non_null(fx->mem);
    assert_non_null(
        memory_add_block(fx->mem, "extra", EXTRA_SIZE, &extra, &err));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fx->src = sv[0];
    fx->dst = sv[1];
    fx->fds_before = count_fds();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    close(fx->src);
    close(fx->dst);
    memory_free(fx->mem);
    free(fx);
    return 0;
}

/* A memfd of size bytes. */
static int new_memfd(uint64_t size)
{
    int fd = memfd_create("test", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

/* ---- building messages ---- */

struct msg {
    uint8_t buf[4096];
    size_t len;
};

static void put_header(struct msg *m, const char *magic, uint32_t version,
                       uint32_t nblocks)
{
    memcpy(m->buf, magic, 4);
    be32_put(m->buf + 4, version);
    be32_put(m->buf + 8, nblocks);
    m->len = 12;
}

static void put_block(struct msg *m, const char *name, uint64_t size,
                      uint64_t guest_addr)
{
    size_t n = strlen(name);
    m->buf[m->len++] = (uint8_t)n;
    memcpy(m->buf + m->len, name, n);
    m->len += n;
    be64_put(m->buf + m->len, size);
    be64_put(m->buf + m->len + 8, guest_addr);
    be64_put(m->buf + m->len + 16, 4096);
    m->len += 24;
}

/* The message as hop's source would send it for this machine. */
static void good_message(struct msg *m)
{
    put_header(m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(m, "pc.ram", RAM_SIZE, 0);
    put_block(m, "extra", EXTRA_SIZE, 0);
}

/* Sends len bytes of buf, the fds with the first byte. */
static void send_fds(int sock, const void *buf, size_t len, const int *fds,
                     int nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { (void *)buf, len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        assert_true(nfds <= 16);
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    assert_int_equal(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

/* ---- the destination, bounded ---- */

struct recv_job {
    struct fixture *fx;
    bool ok;
    Error *err;
};

static void *recv_thread(void *opaque)
{
    struct recv_job *j = opaque;
    j->ok = cpr_recv_memory(j->fx->dst, j->fx->mem, &j->err);
    return NULL;
}

/* cpr_recv_memory on the fixture, failing the test (instead of hanging
 * it) if it has not returned within BOUND_S; returns its error. */
static bool recv_bounded(struct fixture *fx, Error **errp)
{
    struct recv_job j = { .fx = fx };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, recv_thread, &j), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BOUND_S;
    if (pthread_timedjoin_np(t, NULL, &until) != 0) {
        /* Unblock it so the test binary can go on. */
        shutdown(fx->dst, SHUT_RDWR);
        pthread_join(t, NULL);
        error_free(j.err);
        fail_msg("cpr_recv_memory still waits after %d s", BOUND_S);
    }
    *errp = j.err;
    return j.ok;
}

/* The answer the source reads: status and text. */
static uint32_t read_answer(struct fixture *fx, char *why, size_t len)
{
    struct timeval tv = { .tv_sec = BOUND_S };
    setsockopt(fx->src, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    uint8_t head[8];
    assert_int_equal(recv(fx->src, head, 8, MSG_WAITALL), 8);
    uint32_t n = be32_get(head + 4);
    assert_true(n < len);
    if (n) {
        assert_int_equal(recv(fx->src, why, n, MSG_WAITALL), (ssize_t)n);
    }
    why[n] = 0;
    return be32_get(head);
}

/* The destination refuses what the test sent: false, a one-line error
 * saying says, the same text in the answer, no descriptor left open and
 * its own RAM kept. */
static void refused(struct fixture *fx, const char *says)
{
    uint8_t mark = 0x5a, back = 0;
    Error *err = NULL;
    assert_true(memory_write(fx->mem, 0x4000, &mark, 1, &err));
    if (recv_bounded(fx, &err)) {
        fail_msg("taken; expected a refusal saying \"%s\"", says);
    }
    assert_non_null(err);
    const char *msg = error_get_pretty(err);
    if (!strstr(msg, says)) {
        fail_msg("\"%s\" does not say \"%s\"", msg, says);
    }
    assert_null(strchr(msg, '\n'));
    char why[1024];
    assert_int_equal(read_answer(fx, why, sizeof(why)), 1);
    assert_string_equal(why, msg);
    error_free(err);
    assert_int_equal(count_fds(), fx->fds_before);
    assert_true(memory_read(fx->mem, 0x4000, &back, 1, &err));
    assert_int_equal(back, mark);
}

/* ---- hostile messages ---- */

static void test_bad_magic(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    memcpy(m.buf, "QEVM", 4);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx, "cpr channel: bad magic");
}

static void test_version_2(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    be32_put(m.buf + 4, 2);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx, "version 2 (this hop reads version 1)");
}

/* More blocks than any machine has, each with its descriptor. */
static void test_nblocks_9(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 9);
    int fds[9];
    for (int i = 0; i < 9; i++) {
        char name[] = { 'b', (char)('0' + i), 0 };
        put_block(&m, name, 2 * MiB, 0);
        fds[i] = new_memfd(4096);
    }
    send_fds(fx->src, m.buf, m.len, fds, 9);
    for (int i = 0; i < 9; i++) {
        close(fds[i]);
    }
    refused(fx, "9 RAM blocks, at most 8");
}

static void test_nblocks_huge(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 0xffffffffu);
    send_fds(fx->src, m.buf, m.len, NULL, 0);
    refused(fx, "4294967295 RAM blocks, at most 8");
}

static void test_descriptors_not_matching_nblocks(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    /* Three descriptors for two blocks. */
    int fds[3] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE),
                   new_memfd(4096) };
    send_fds(fx->src, m.buf, m.len, fds, 3);
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    refused(fx, "2 RAM blocks with 3 descriptors");
}

static void test_no_descriptors(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    send_fds(fx->src, m.buf, m.len, NULL, 0);
    refused(fx, "2 RAM blocks with 0 descriptors");
}

/* More descriptors than the destination has room for: the kernel drops
 * the rest, nothing leaks. */
static void test_too_many_descriptors(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    int fds[16];
    for (int i = 0; i < 16; i++) {
        fds[i] = new_memfd(4096);
    }
    send_fds(fx->src, m.buf, m.len, fds, 16);
    for (int i = 0; i < 16; i++) {
        close(fds[i]);
    }
    refused(fx, "cpr channel: ");
}

static void test_block_list_truncated(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    /* The header, the first block and part of the second's name. */
    send_fds(fx->src, m.buf, 12 + 31 + 3, fds, 2);
    close(fds[0]);
    close(fds[1]);
    shutdown(fx->src, SHUT_WR);
    refused(fx, "cpr channel: the other side closed the connection");
}

static void test_header_truncated(void **state)
{
    struct fixture *fx = *state;
    int fd = new_memfd(RAM_SIZE);
    send_fds(fx->src, CPR_MAGIC "\0\0", 6, &fd, 1);
    close(fd);
    shutdown(fx->src, SHUT_WR);
    refused(fx,
            "cpr channel: the header: the other side closed the "
            "connection");
}

/* The magic (what the listener goes by), then nothing: the wait is
 * bounded, with or without descriptors. */
static void silent_after_magic(struct fixture *fx, int nfds)
{
    int fd = new_memfd(RAM_SIZE);
    send_fds(fx->src, CPR_MAGIC, 4, &fd, nfds);
    close(fd);
    refused(fx, "cpr channel: the header: timed out");
}

static void test_silent_after_magic(void **state)
{
    silent_after_magic(*state, 0);
}

static void test_silent_after_magic_with_descriptor(void **state)
{
    silent_after_magic(*state, 1);
}

/* The header in two writes, as a slow peer may send it: the rest comes
 * after the first part, the message is read whole. */
static void test_header_in_two_parts(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, 5, fds, 2);
    close(fds[0]);
    close(fds[1]);
    usleep(50000);
    assert_int_equal(send(fx->src, m.buf + 5, m.len - 5, MSG_NOSIGNAL),
                     (ssize_t)(m.len - 5));
    Error *err = NULL;
    if (!recv_bounded(fx, &err)) {
        fail_msg("refused: %s", error_get_pretty(err));
    }
    char why[8];
    assert_int_equal(read_answer(fx, why, sizeof(why)), 0);
}

static void test_unknown_block(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(&m, "pc.ram", RAM_SIZE, 0);
    put_block(&m, "vga.vram", EXTRA_SIZE, 0);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx, "the source's RAM block 'vga.vram' does not exist here");
}

/* A name that would break the message over lines is shown escaped. */
static void test_block_name_with_newline(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(&m, "pc.ram", RAM_SIZE, 0);
    put_block(&m, "ex\ntra", EXTRA_SIZE, 0);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx, "RAM block 'ex\\x0atra' does not exist here");
}

/* One block named twice, another left out. */
static void test_block_named_twice(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(&m, "pc.ram", RAM_SIZE, 0);
    put_block(&m, "pc.ram", RAM_SIZE, 0);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(RAM_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx, "RAM block 'pc.ram' twice");
}

static void test_fewer_blocks(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 1);
    put_block(&m, "pc.ram", RAM_SIZE, 0);
    int fd = new_memfd(RAM_SIZE);
    send_fds(fx->src, m.buf, m.len, &fd, 1);
    close(fd);
    refused(fx, "the source has 1 RAM blocks, this machine 2");
}

static void test_size_mismatch(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(&m, "pc.ram", 4 * MiB, 0);
    put_block(&m, "extra", EXTRA_SIZE, 0);
    int fds[2] = { new_memfd(4 * MiB), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx,
            "RAM block 'pc.ram' is 4194304 bytes in the source, "
            "8388608 here");
}

static void test_guest_address_mismatch(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(&m, "pc.ram", RAM_SIZE, 0x100000);
    put_block(&m, "extra", EXTRA_SIZE, 0);
    int fds[2] = { new_memfd(RAM_SIZE), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx,
            "RAM block 'pc.ram' is at guest address 0x100000 in the "
            "source, 0x0 here");
}

static void test_fd_is_a_pipe(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int fds[2] = { p[0], new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(p[0]);
    close(p[1]);
    close(fds[1]);
    refused(fx, "RAM block 'pc.ram': the passed descriptor is not memory");
}

static void test_fd_too_short(void **state)
{
    struct fixture *fx = *state;
    struct msg m;
    good_message(&m);
    int fds[2] = { new_memfd(4096), new_memfd(EXTRA_SIZE) };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    refused(fx,
            "RAM block 'pc.ram': the passed memory holds 4096 bytes, "
            "8388608 are needed");
}

/* ---- a good message ---- */

static void test_good_message_maps_the_memory(void **state)
{
    struct fixture *fx = *state;
    struct ram_block *ram = memory_find_block(fx->mem, "pc.ram");
    struct ram_block *extra = memory_find_block(fx->mem, "extra");
    uint8_t *ram_host = ram->host, *extra_host = extra->host;
    int ram_fd = new_memfd(RAM_SIZE), extra_fd = new_memfd(EXTRA_SIZE);
    assert_int_equal(pwrite(ram_fd, "source", 6, 0x12345), 6);
    /* In the other order than this machine's: blocks go by name. */
    struct msg m;
    put_header(&m, CPR_MAGIC, CPR_VERSION, 2);
    put_block(&m, "extra", EXTRA_SIZE, 0);
    put_block(&m, "pc.ram", RAM_SIZE, 0);
    int fds[2] = { extra_fd, ram_fd };
    send_fds(fx->src, m.buf, m.len, fds, 2);
    Error *err = NULL;
    if (!recv_bounded(fx, &err)) {
        fail_msg("refused: %s", error_get_pretty(err));
    }
    char why[8];
    assert_int_equal(read_answer(fx, why, sizeof(why)), 0);
    assert_string_equal(why, "");
    /* Same place, the source's pages. */
    assert_ptr_equal(ram->host, ram_host);
    assert_ptr_equal(extra->host, extra_host);
    char buf[8] = { 0 };
    assert_true(memory_read(fx->mem, 0x12345, buf, 6, &err));
    assert_memory_equal(buf, "source", 6);
    /* Written through the machine, read through the source's fd. */
    assert_true(memory_write(fx->mem, RAM_SIZE - 4, "dest", 4, &err));
    assert_int_equal(pread(ram_fd, buf, 4, RAM_SIZE - 4), 4);
    assert_memory_equal(buf, "dest", 4);
    memcpy(extra->host + 100, "xtra", 4);
    assert_int_equal(pread(extra_fd, buf, 4, 100), 4);
    assert_memory_equal(buf, "xtra", 4);
    /* The machine's own memfds went, the passed ones took their place. */
    assert_int_equal(count_fds(), fx->fds_before + 2);
    close(ram_fd);
    close(extra_fd);
    assert_int_equal(count_fds(), fx->fds_before);
    assert_true(memory_read(fx->mem, 0x12345, buf, 6, &err));
    assert_memory_equal(buf, "source", 6);
}

/* ---- the source ---- */

struct send_job {
    int fd;
    const struct machine_memory *mem;
    atomic_bool cancel;
    bool ok;
    Error *err;
};

static void *send_thread(void *opaque)
{
    struct send_job *j = opaque;
    j->ok = cpr_send_memory(j->fd, j->mem, &j->cancel, &j->err);
    return NULL;
}

static void send_start(struct send_job *j, pthread_t *t)
{
    assert_int_equal(pthread_create(t, NULL, send_thread, j), 0);
}

static void send_join(pthread_t t)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BOUND_S;
    if (pthread_timedjoin_np(t, NULL, &until) != 0) {
        fail_msg("cpr_send_memory still waits after %d s", BOUND_S);
    }
}

/* hop to hop: what the source wrote, the destination reads. */
static void test_source_to_destination(void **state)
{
    struct fixture *fx = *state;
    Error *err = NULL;
    struct mem_backend ram = shared_memfd("m", RAM_SIZE);
    struct mem_backend extra = shared_memfd("x", EXTRA_SIZE);
    struct machine_memory *src = memory_new(RAM_SIZE, &ram, &err);
    assert_non_null(src);
    assert_non_null(memory_add_block(src, "extra", EXTRA_SIZE, &extra, &err));
    assert_true(memory_write(src, 0x777000, "guest", 5, &err));
    struct send_job j = { .fd = fx->src, .mem = src };
    pthread_t t;
    send_start(&j, &t);
    if (!recv_bounded(fx, &err)) {
        fail_msg("refused: %s", error_get_pretty(err));
    }
    send_join(t);
    assert_true(j.ok);
    char buf[8] = { 0 };
    assert_true(memory_read(fx->mem, 0x777000, buf, 5, &err));
    assert_memory_equal(buf, "guest", 5);
    /* One memory now: the source sees the destination's writes. */
    assert_true(memory_write(fx->mem, 0x1000, "back", 4, &err));
    assert_true(memory_read(src, 0x1000, buf, 4, &err));
    assert_memory_equal(buf, "back", 4);
    memory_free(src);
}

/* A destination's refusal reaches the source's error. */
static void test_source_reads_the_refusal(void **state)
{
    struct fixture *fx = *state;
    Error *err = NULL;
    struct mem_backend ram = shared_memfd("m", 4 * MiB);
    struct machine_memory *src = memory_new(4 * MiB, &ram, &err);
    assert_non_null(src);
    struct send_job j = { .fd = fx->src, .mem = src };
    pthread_t t;
    send_start(&j, &t);
    assert_false(recv_bounded(fx, &err));
    send_join(t);
    assert_false(j.ok);
    char want[512];
    snprintf(want, sizeof(want),
             "the destination refused the guest's memory: %s",
             error_get_pretty(err));
    assert_string_equal(error_get_pretty(j.err), want);
    error_free(err);
    error_free(j.err);
    memory_free(src);
}

/* The source's memory on anonymous pages cannot be passed. */
static void test_source_not_shared(void **state)
{
    struct fixture *fx = *state;
    Error *err = NULL;
    struct machine_memory *src = memory_new(4 * MiB, NULL, &err);
    assert_non_null(src);
    atomic_bool cancel = false;
    assert_false(cpr_send_memory(fx->src, src, &cancel, &err));
    assert_non_null(strstr(error_get_pretty(err),
                           "RAM block 'pc.ram' is on memory-backend-ram"));
    error_free(err);
    memory_free(src);
}

/* Hostile answers: a status that is not 0 or 1, a length past the
 * limit, a refusal text that would break the line. */
static void source_against_answer(struct fixture *fx, const void *answer,
                                  size_t len, const char *says)
{
    Error *err = NULL;
    struct mem_backend ram = shared_memfd("m", 4 * MiB);
    struct machine_memory *src = memory_new(4 * MiB, &ram, &err);
    assert_non_null(src);
    assert_int_equal(send(fx->dst, answer, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(fx->dst, SHUT_WR);
    struct send_job j = { .fd = fx->src, .mem = src };
    pthread_t t;
    send_start(&j, &t);
    send_join(t);
    assert_false(j.ok);
    const char *msg = error_get_pretty(j.err);
    if (!strstr(msg, says)) {
        fail_msg("\"%s\" does not say \"%s\"", msg, says);
    }
    assert_null(strchr(msg, '\n'));
    error_free(j.err);
    memory_free(src);
}

static void test_source_hostile_answers(void **state)
{
    struct fixture *fx = *state;
    source_against_answer(fx, "\0\0\0\7\0\0\0\0", 8,
                          "answered status 7 with 0 bytes");
}

static void test_source_answer_too_long(void **state)
{
    struct fixture *fx = *state;
    source_against_answer(fx, "\0\0\0\1\0\1\0\0", 8,
                          "answered status 1 with 65536 bytes");
}

static void test_source_answer_cut(void **state)
{
    struct fixture *fx = *state;
    source_against_answer(fx, "\0\0\0\1\0\0\0\x20no", 10,
                          "the other side closed the connection");
}

static void test_source_answer_with_newline(void **state)
{
    struct fixture *fx = *state;
    source_against_answer(fx, "\0\0\0\1\0\0\0\x05no\nno", 13,
                          "refused the guest's memory: no\\x0ano");
}

/* No answer: migrate_cancel ends the wait. */
static void test_source_cancelled_while_waiting(void **state)
{
    struct fixture *fx = *state;
    Error *err = NULL;
    struct mem_backend ram = shared_memfd("m", 4 * MiB);
    struct machine_memory *src = memory_new(4 * MiB, &ram, &err);
    assert_non_null(src);
    struct send_job j = { .fd = fx->src, .mem = src };
    pthread_t t;
    send_start(&j, &t);
    usleep(200000);
    atomic_store(&j.cancel, true);
    uint64_t t0 = clock_mono_ns();
    send_join(t);
    assert_true(clock_mono_ns() - t0 < 2000000000ull);
    assert_false(j.ok);
    assert_string_equal(error_get_pretty(j.err), "cancelled");
    error_free(j.err);
    memory_free(src);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bad_magic),
        T(test_version_2),
        T(test_nblocks_9),
        T(test_nblocks_huge),
        T(test_descriptors_not_matching_nblocks),
        T(test_no_descriptors),
        T(test_too_many_descriptors),
        T(test_block_list_truncated),
        T(test_header_truncated),
        T(test_silent_after_magic),
        T(test_silent_after_magic_with_descriptor),
        T(test_header_in_two_parts),
        T(test_unknown_block),
        T(test_block_name_with_newline),
        T(test_block_named_twice),
        T(test_fewer_blocks),
        T(test_size_mismatch),
        T(test_guest_address_mismatch),
        T(test_fd_is_a_pipe),
        T(test_fd_too_short),
        T(test_good_message_maps_the_memory),
        T(test_source_to_destination),
        T(test_source_reads_the_refusal),
        T(test_source_not_shared),
        T(test_source_hostile_answers),
        T(test_source_answer_too_long),
        T(test_source_answer_cut),
        T(test_source_answer_with_newline),
        T(test_source_cancelled_while_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
