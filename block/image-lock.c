/* Image locks, as QEMU's file driver takes them, so that hop and QEMU
 * (qemu-system, qemu-img, qemu-io) see each other's claims on an image.
 *
 * The claims are open-file-description (OFD) locks, shared, on single
 * bytes of the image file: byte 100+p says "I use permission p", byte
 * 200+p "I let no one else use permission p".  Permissions: 0 consistent
 * read, 1 write, 2 write-unchanged, 3 resize.  A conflict is another open
 * file holding a byte we must not see held; F_OFD_GETLK, asking for an
 * exclusive lock, finds it without noticing our own claims.  The claims
 * go before the check, so of two openers racing at least one sees the
 * other; writers also queue on byte 300 (an exclusive lock QEMU never
 * takes) while they claim and check, so of two hop writers exactly one
 * wins.  Closing the file releases everything. */
#include "block/block.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

enum {
    PERM_CONSISTENT_READ = 1u << 0,
    PERM_WRITE = 1u << 1,
    PERM_WRITE_UNCHANGED = 1u << 2,
    PERM_RESIZE = 1u << 3,
    PERM_ALL = 0xfu,
    PERM_BITS = 4,
    LOCK_PERM_BASE = 100,
    LOCK_SHARED_BASE = 200,
    LOCK_WRITER_QUEUE = 300,
};

static const char *const perm_names[PERM_BITS] = {
    "consistent read",
    "write",
    "write unchanged",
    "resize",
};

static int ofd_lock(int fd, int cmd, short type, off_t byte)
{
    struct flock fl = {
        .l_type = type,
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
    };
    return fcntl(fd, cmd, &fl);
}

/* Does another open file hold a lock on byte?  -1 (errno set) when the
 * question cannot be asked. */
static int held_by_other(int fd, off_t byte)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
    };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -1;
    }
    return fl.l_type != F_UNLCK;
}

/* Whether a /proc/PID/fdinfo/N text shows a lock on dev:ino covering
 * byte (lines "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:1234 100 101"). */
static bool fdinfo_locks(FILE *f, dev_t dev, ino_t ino, off_t byte)
{
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        unsigned maj, min;
        unsigned long long i, start;
        char end[32];
        if (strncmp(line, "lock:", 5) != 0 ||
            sscanf(line, "lock: %*d: %*s %*s %*s %*d %x:%x:%llu %llu %31s",
                   &maj, &min, &i, &start, end) != 5) {
            continue;
        }
        unsigned long long last =
            strcmp(end, "EOF") == 0 ? ~0ULL : strtoull(end, NULL, 10);
        if (makedev(maj, min) == dev && i == (unsigned long long)ino &&
            start <= (unsigned long long)byte &&
            (unsigned long long)byte <= last) {
            return true;
        }
    }
    return false;
}

/* The process holding a lock on byte of the file open at fd, or 0.  OFD
 * locks carry no PID, so this walks the open files in /proc: slow, but it
 * runs only to explain a refusal, and gives up on processes it may not
 * look into. */
static pid_t lock_holder(int fd, off_t byte)
{
    struct stat me;
    DIR *proc = fstat(fd, &me) == 0 ? opendir("/proc") : NULL;
    if (!proc) {
        return 0;
    }
    pid_t found = 0, self = getpid();
    struct dirent *p;
    while (!found && (p = readdir(proc))) {
        char *end;
        long pid = strtol(p->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self) {
            continue;
        }
        char path[300];
        snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
        DIR *fds = opendir(path);
        struct dirent *e;
        while (fds && !found && (e = readdir(fds))) {
            struct stat st;
            snprintf(path, sizeof(path), "/proc/%ld/fd/%s", pid, e->d_name);
            if (e->d_name[0] == '.' || stat(path, &st) < 0 ||
                st.st_dev != me.st_dev || st.st_ino != me.st_ino) {
                continue;
            }
            snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", pid, e->d_name);
            FILE *f = fopen(path, "r");
            if (f && fdinfo_locks(f, me.st_dev, me.st_ino, byte)) {
                found = (pid_t)pid;
            }
            if (f) {
                fclose(f);
            }
        }
        if (fds) {
            closedir(fds);
        }
    }
    closedir(proc);
    return found;
}

/* Why claiming failed: the byte another open file holds and what that
 * means, or the errno of a lock call that could not be made. */
struct refusal {
    off_t byte;
    char what[64];
    int err;
};

/* Is byte held by another open file?  If so, say what it means in r. */
static bool free_of_others(int fd, off_t byte, const char *how, int p,
                           struct refusal *r)
{
    int held = held_by_other(fd, byte);
    if (held < 0) {
        r->err = errno;
        return false;
    }
    if (held) {
        r->byte = byte;
        snprintf(r->what, sizeof(r->what), "locked %s %s", how,
                 p == 1 ? "writing" : perm_names[p]);
        return false;
    }
    return true;
}

/* Check the claims of other open files against ours: first what others
 * use that we do not share (a writer is found as a writer), then what
 * we use that others do not share. */
static bool check_claims(int fd, unsigned perm, unsigned shared,
                         struct refusal *r)
{
    for (int p = 0; p < PERM_BITS; p++) {
        if (!(shared & (1u << p)) &&
            !free_of_others(fd, LOCK_PERM_BASE + p, "for", p, r)) {
            return false;
        }
    }
    for (int p = 0; p < PERM_BITS; p++) {
        if ((perm & (1u << p)) &&
            !free_of_others(fd, LOCK_SHARED_BASE + p, "against", p, r)) {
            return false;
        }
    }
    return true;
}

static bool claim_byte(int fd, off_t byte, struct refusal *r)
{
    if (ofd_lock(fd, F_OFD_SETLK, F_RDLCK, byte) == 0) {
        return true;
    }
    if (errno == EAGAIN || errno == EACCES) {
        r->byte = byte;
        snprintf(r->what, sizeof(r->what), "locked exclusively");
    } else {
        r->err = errno;
    }
    return false;
}

static bool claim(int fd, unsigned perm, unsigned shared, struct refusal *r)
{
    for (int p = 0; p < PERM_BITS; p++) {
        unsigned bit = 1u << p;
        if (((perm & bit) && !claim_byte(fd, LOCK_PERM_BASE + p, r)) ||
            (!(shared & bit) && !claim_byte(fd, LOCK_SHARED_BASE + p, r))) {
            return false;
        }
    }
    return true;
}

/* Wait (a little) for other hop writers claiming the same image.  Not
 * getting the queue is no error: the claims still protect the image, at
 * worst both racers refuse. */
static bool enter_queue(int fd)
{
    for (int tries = 0; tries < 2000; tries++) {
        if (ofd_lock(fd, F_OFD_SETLK, F_WRLCK, LOCK_WRITER_QUEUE) == 0) {
            return true;
        }
        if (errno != EAGAIN && errno != EACCES) {
            return false;
        }
        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
    }
    return false;
}

bool blk_lock_image(int fd, const char *path, bool write, bool force_share,
                    Error **errp)
{
    /* As QEMU: readers and writers use consistent reads and let others
     * read; nobody lets another write or resize, unless forced to share. */
    unsigned perm = PERM_CONSISTENT_READ;
    unsigned shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
    if (write) {
        perm |= PERM_WRITE | PERM_RESIZE;
    } else if (force_share) {
        shared = PERM_ALL;
    }
    bool queued = write && enter_queue(fd);
    struct refusal r = { .byte = -1 };
    bool ok = claim(fd, perm, shared, &r) && check_claims(fd, perm, shared, &r);
    if (queued) {
        ofd_lock(fd, F_OFD_SETLK, F_UNLCK, LOCK_WRITER_QUEUE);
    }
    if (ok) {
        return true;
    }
    /* Drop the claims made before the refusal, then explain it (looking
     * for the holder takes a while: not while others queue behind us). */
    blk_unlock_image(fd);
    if (r.byte < 0) {
        error_setg_errno(errp, r.err, "cannot lock image '%s'", path);
        return false;
    }
    pid_t pid = lock_holder(fd, r.byte);
    char by[32] = "";
    if (pid) {
        snprintf(by, sizeof(by), " by pid %ld", (long)pid);
    }
    error_setg(errp, "image '%s' is in use by another process (%s%s)", path,
               r.what, by);
    return false;
}

void blk_unlock_image(int fd)
{
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
    fcntl(fd, F_OFD_SETLK, &fl);
}

bool blk_image_has_writer(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool held = held_by_other(fd, LOCK_PERM_BASE + 1 /* write */) == 1;
    close(fd);
    return held;
}
