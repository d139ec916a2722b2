/* The cpr channel: RAM block descriptors over a unix socket. */
#include "migration/cpr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/memory.h"
#include "util/be.h"
#include "util/clock.h"
#include "util/io.h"
#include "util/printable.h"

#define HEADER_LEN 12
#define BLOCK_FIXED_LEN 25 /* u8 len + three u64 */
#define MAX_MESSAGE (HEADER_LEN + RAM_MAX_BLOCKS * (BLOCK_FIXED_LEN + 255))
#define ANSWER_MAX 512
/* The destination's wait for the whole message once it began. */
#define READ_TIMEOUT_MS 5000

enum { ANSWER_OK = 0, ANSWER_REFUSED = 1 };

static bool block_shareable(const struct ram_block *b)
{
    return b->fd >= 0 && b->map.shared;
}

bool cpr_check_memory(const struct machine_memory *mem, const char *mode,
                      Error **errp)
{
    for (int i = 0; i < mem->nblocks; i++) {
        const struct ram_block *b = mem->blocks[i];
        if (!block_shareable(b)) {
            error_setg(errp,
                       "mode %s needs guest RAM on shared memory: "
                       "RAM block '%s' is on %s%s; use -object "
                       "memory-backend-memfd,id=ID,size=SIZE,share=on "
                       "-machine memory-backend=ID",
                       mode, b->name, mem_backend_type_name(b->kind),
                       b->fd >= 0 ? " without share=on" : "");
            return false;
        }
    }
    return true;
}

/* Waits until fd is readable, up to deadline (clock_mono_ns), checking
 * *cancel every tenth of a second. */
static bool wait_readable(int fd, uint64_t deadline, const atomic_bool *cancel,
                          const char *what, Error **errp)
{
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            error_setg(errp, "cancelled");
            return false;
        }
        uint64_t now = clock_mono_ns();
        if (now >= deadline) {
            error_setg(errp, "%s: timed out", what);
            return false;
        }
        uint64_t left_ms = (deadline - now) / 1000000 + 1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, left_ms < 100 ? (int)left_ms : 100);
        if (r > 0) {
            return true;
        }
        if (r < 0 && errno != EINTR) {
            error_setg_errno(errp, errno, "%s: poll", what);
            return false;
        }
    }
}

/* Reads exactly len bytes: from a socket by deadline (descriptors that
 * come with them are dropped: only the first read of a message may carry
 * them), or from a file (deadline 0). */
static bool read_full(int fd, void *buf, size_t len, uint64_t deadline,
                      const atomic_bool *cancel, const char *what, Error **errp)
{
    uint8_t *p = buf;
    while (len > 0) {
        if (deadline && !wait_readable(fd, deadline, cancel, what, errp)) {
            return false;
        }
        ssize_t n =
            deadline ? recv(fd, p, len, MSG_DONTWAIT) : read(fd, p, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "%s", what);
            return false;
        }
        if (n == 0) {
            error_setg(errp, "%s: %s", what,
                       deadline ? "the other side closed the connection"
                                : "ends too early");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* ---- source ---- */

static size_t encode(const struct machine_memory *mem, uint8_t *buf)
{
    memcpy(buf, CPR_MAGIC, CPR_MAGIC_LEN);
    be32_put(buf + 4, CPR_VERSION);
    be32_put(buf + 8, (uint32_t)mem->nblocks);
    size_t at = HEADER_LEN;
    for (int i = 0; i < mem->nblocks; i++) {
        const struct ram_block *b = mem->blocks[i];
        size_t n = strlen(b->name);
        n = n > 255 ? 255 : n;
        buf[at++] = (uint8_t)n;
        memcpy(buf + at, b->name, n);
        at += n;
        be64_put(buf + at, b->size);
        be64_put(buf + at + 8, ram_block_guest_addr(mem, b));
        be64_put(buf + at + 16, b->map.page_size);
        at += 24;
    }
    return at;
}

static bool send_with_fds(int fd, const uint8_t *buf, size_t len,
                          const int *fds, int nfds, Error **errp)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * RAM_MAX_BLOCKS)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { (void *)buf, len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    ssize_t n;
    do {
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        error_setg_errno(errp, errno, "cpr channel: sending the memory");
        return false;
    }
    /* The descriptors went with the first byte; the rest is plain. */
    if ((size_t)n < len && !io_write_full(fd, buf + n, len - (size_t)n)) {
        error_setg_errno(errp, errno, "cpr channel: sending the memory");
        return false;
    }
    return true;
}

bool cpr_send_memory(int fd, const struct machine_memory *mem,
                     const atomic_bool *cancel, Error **errp)
{
    if (!cpr_check_memory(mem, "cpr-transfer", errp)) {
        return false;
    }
    uint8_t buf[MAX_MESSAGE];
    int fds[RAM_MAX_BLOCKS];
    size_t len = encode(mem, buf);
    for (int i = 0; i < mem->nblocks; i++) {
        fds[i] = mem->blocks[i]->fd;
    }
    if (!send_with_fds(fd, buf, len, fds, mem->nblocks, errp)) {
        return false;
    }
    uint64_t deadline =
        clock_mono_ns() + (uint64_t)CPR_ANSWER_TIMEOUT_MS * 1000000ull;
    uint8_t head[8];
    if (!read_full(fd, head, sizeof(head), deadline, cancel,
                   "cpr channel: the destination's answer", errp)) {
        return false;
    }
    uint32_t status = be32_get(head), n = be32_get(head + 4);
    if (status == ANSWER_OK && n == 0) {
        return true;
    }
    char why[ANSWER_MAX + 1] = "";
    if (status != ANSWER_REFUSED || n > ANSWER_MAX) {
        error_setg(errp,
                   "cpr channel: the destination answered status %u with "
                   "%u bytes; is it hop?",
                   status, n);
        return false;
    }
    if (!read_full(fd, why, n, deadline, cancel,
                   "cpr channel: the destination's answer", errp)) {
        return false;
    }
    /* The text is the peer's: one line, whatever it holds. */
    char shown[4 * ANSWER_MAX + 8];
    error_setg(errp, "the destination refused the guest's memory: %s",
               printable_n(why, n, shown, sizeof(shown)));
    return false;
}

/* ---- destination ---- */

/* The header with the descriptors that came with it (closed on error).
 * The descriptors come with the first bytes, the rest of the header may
 * come later: all of it by deadline. */
static bool recv_header(int fd, uint8_t *head, int *fds, int *nfds,
                        uint64_t deadline, Error **errp)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * (RAM_MAX_BLOCKS + 1))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { head, HEADER_LEN };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    *nfds = 0;
    ssize_t n;
    do {
        if (!wait_readable(fd, deadline, NULL, "cpr channel: the header",
                           errp)) {
            return false;
        }
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && (errno == EINTR || errno == EAGAIN));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n >= 0 && c;
         c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int d;
            memcpy(&d, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < RAM_MAX_BLOCKS + 1) {
                fds[(*nfds)++] = d;
            } else {
                close(d);
            }
        }
    }
    if (n < 0) {
        error_setg_errno(errp, errno, "cpr channel");
        return false;
    }
    if (n == 0) {
        error_setg(errp, "cpr channel: the source closed it before the header");
        return false;
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        error_setg(errp, "cpr channel: more descriptors than RAM blocks");
        return false;
    }
    return read_full(fd, head + n, HEADER_LEN - (size_t)n, deadline, NULL,
                     "cpr channel: the header", errp);
}

struct cpr_block {
    char name[256];
    uint64_t size, guest_addr, page_size;
};

static bool recv_blocks(int fd, uint32_t n, struct cpr_block *blk,
                        uint64_t deadline, const char *what, Error **errp)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t len, fixed[24];
        if (!read_full(fd, &len, 1, deadline, NULL, what, errp) ||
            !read_full(fd, blk[i].name, len, deadline, NULL, what, errp) ||
            !read_full(fd, fixed, sizeof(fixed), deadline, NULL, what, errp)) {
            return false;
        }
        blk[i].name[len] = 0;
        blk[i].size = be64_get(fixed);
        blk[i].guest_addr = be64_get(fixed + 8);
        blk[i].page_size = be64_get(fixed + 16);
    }
    return true;
}

/* Each of the source's blocks against this machine's: same name, size,
 * place and page size, and here, too, on memory another process can
 * hand over. */
static bool check_blocks(const struct machine_memory *mem,
                         const struct cpr_block *blk, uint32_t n, Error **errp)
{
    if (n != (uint32_t)mem->nblocks) {
        error_setg(errp, "the source has %u RAM blocks, this machine %d", n,
                   mem->nblocks);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct cpr_block *s = &blk[i];
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(blk[j].name, s->name) == 0) {
                error_setg(errp, "the source names RAM block '%s' twice",
                           PRINTABLE(s->name));
                return false;
            }
        }
        const struct ram_block *b = memory_find_block(mem, s->name);
        if (!b) {
            error_setg(errp, "the source's RAM block '%s' does not exist here",
                       PRINTABLE(s->name));
            return false;
        }
        if (s->size != b->size) {
            error_setg(errp,
                       "RAM block '%s' is %llu bytes in the source, %llu "
                       "here (-m and the backend's size must match)",
                       s->name, (unsigned long long)s->size,
                       (unsigned long long)b->size);
            return false;
        }
        uint64_t here = ram_block_guest_addr(mem, b);
        if (s->guest_addr != here) {
            error_setg(errp,
                       "RAM block '%s' is at guest address 0x%llx in the "
                       "source, 0x%llx here",
                       s->name, (unsigned long long)s->guest_addr,
                       (unsigned long long)here);
            return false;
        }
        if (s->page_size != b->map.page_size) {
            error_setg(errp,
                       "RAM block '%s' is on %llu KiB pages in the source, "
                       "%llu KiB here",
                       s->name, (unsigned long long)(s->page_size >> 10),
                       (unsigned long long)(b->map.page_size >> 10));
            return false;
        }
        if (!block_shareable(b)) {
            error_setg(errp,
                       "RAM block '%s' is on %s here; start the destination "
                       "with the source's shared memory backend "
                       "(memory-backend-memfd,share=on)",
                       s->name, mem_backend_type_name(b->kind));
            return false;
        }
    }
    return true;
}

static void answer(int fd, bool ok, const char *why)
{
    uint8_t buf[8 + ANSWER_MAX];
    size_t n = ok ? 0 : strnlen(why, ANSWER_MAX);
    be32_put(buf, ok ? ANSWER_OK : ANSWER_REFUSED);
    be32_put(buf + 4, (uint32_t)n);
    if (n) {
        memcpy(buf + 8, why, n);
    }
    /* If the source is gone, its own error says so. */
    (void)io_writev_full(fd, &(struct iovec){ buf, 8 + n }, 1, true);
}

/* The header's fields, then the block list, checked against mem; fds
 * (nfds of them) are the blocks' descriptors in order. */
static bool take_blocks(int fd, const uint8_t *head, const int *fds, int nfds,
                        uint64_t deadline, struct machine_memory *mem,
                        int *taken, Error **errp)
{
    struct cpr_block blk[RAM_MAX_BLOCKS];
    /* The transport, for messages. */
    const char *what = fds ? "cpr channel" : "cpr state";
    uint32_t version = be32_get(head + 4);
    uint32_t n = be32_get(head + 8);
    *taken = 0;
    if (memcmp(head, CPR_MAGIC, CPR_MAGIC_LEN) != 0) {
        error_setg(errp, "%s: bad magic", what);
        return false;
    }
    if (version != CPR_VERSION) {
        error_setg(errp, "%s: version %u (this hop reads version %d)", what,
                   version, CPR_VERSION);
        return false;
    }
    if (n > RAM_MAX_BLOCKS) {
        error_setg(errp, "%s: %u RAM blocks, at most %d", what, n,
                   RAM_MAX_BLOCKS);
        return false;
    }
    if (fds && (int)n != nfds) {
        error_setg(errp, "%s: %u RAM blocks with %d descriptors", what, n,
                   nfds);
        return false;
    }
    if (!recv_blocks(fd, n, blk, deadline, what, errp) ||
        !check_blocks(mem, blk, n, errp)) {
        return false;
    }
    int exec_fds[RAM_MAX_BLOCKS];
    if (!fds) {
        /* cpr-exec: the descriptor numbers follow, inherited. */
        for (uint32_t i = 0; i < n; i++) {
            uint8_t b[4];
            if (!read_full(fd, b, 4, 0, NULL, "cpr state", errp)) {
                return false;
            }
            exec_fds[i] = (int)be32_get(b);
            /* Ours now: nothing this hop starts gets guest RAM. */
            if (!io_adopt_fd(exec_fds[i])) {
                error_setg(errp,
                           "cpr state: RAM block '%s': descriptor %d was "
                           "not inherited",
                           blk[i].name, exec_fds[i]);
                return false;
            }
        }
        fds = exec_fds;
    }
    for (; *taken < (int)n; (*taken)++) {
        struct ram_block *b = memory_find_block(mem, blk[*taken].name);
        if (!ram_block_adopt_fd(b, fds[*taken], errp)) {
            return false;
        }
    }
    return true;
}

bool cpr_recv_memory(int fd, struct machine_memory *mem, Error **errp)
{
    uint8_t head[HEADER_LEN];
    int fds[RAM_MAX_BLOCKS + 1];
    int nfds = 0, taken = 0;
    Error *err = NULL;
    uint64_t deadline =
        clock_mono_ns() + (uint64_t)READ_TIMEOUT_MS * 1000000ull;
    bool ok = recv_header(fd, head, fds, &nfds, deadline, &err) &&
        take_blocks(fd, head, fds, nfds, deadline, mem, &taken, &err);
    /* Descriptors not taken over (all of them, if nothing was mapped). */
    for (int k = taken; k < nfds; k++) {
        close(fds[k]);
    }
    if (ok) {
        answer(fd, true, NULL);
        return true;
    }
    answer(fd, false, error_get_pretty(err));
    error_propagate(errp, err);
    return false;
}

bool cpr_write_memory(int fd, const struct machine_memory *mem, Error **errp)
{
    if (!cpr_check_memory(mem, "cpr-exec", errp)) {
        return false;
    }
    /* The new hop could not start: the guest would be lost. */
    for (int i = 0; i < mem->nblocks; i++) {
        if (!mem_mapping_check_room_again(&mem->blocks[i]->map, errp)) {
            error_prepend(errp,
                          "cpr-exec: RAM block '%s': ", mem->blocks[i]->name);
            return false;
        }
    }
    uint8_t buf[MAX_MESSAGE + 4 * RAM_MAX_BLOCKS];
    size_t len = encode(mem, buf);
    for (int i = 0; i < mem->nblocks; i++) {
        be32_put(buf + len, (uint32_t)mem->blocks[i]->fd);
        len += 4;
    }
    if (!io_write_full(fd, buf, len)) {
        error_setg_errno(errp, errno, "cpr state: write");
        return false;
    }
    return true;
}

bool cpr_read_memory(int fd, struct machine_memory *mem, Error **errp)
{
    uint8_t head[HEADER_LEN];
    int taken;
    if (!read_full(fd, head, sizeof(head), 0, NULL, "cpr state", errp) ||
        !take_blocks(fd, head, NULL, 0, 0, mem, &taken, errp)) {
        error_prepend(errp, "cpr-exec: ");
        return false;
    }
    return true;
}
