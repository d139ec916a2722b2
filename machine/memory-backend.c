/* Memory backends: parsing -object memory-backend-*, mapping them. */
#include "machine/memory-backend.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/parse.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

const char *const mem_backend_types[] = { "memory-backend-ram",
                                          "memory-backend-memfd",
                                          "memory-backend-file", NULL };

const char *mem_backend_type_name(enum mem_backend_kind kind)
{
    return mem_backend_types[kind];
}

void mem_backend_default(struct mem_backend *be, uint64_t size)
{
    *be = (struct mem_backend){ .kind = MEM_BACKEND_RAM, .size = size };
    snprintf(be->id, sizeof(be->id), "pc.ram");
}

/* ---- -object parsing ---- */

enum backend_key {
    KEY_ID,
    KEY_SIZE,
    KEY_SHARE,
    KEY_PREALLOC,
    KEY_HUGETLB,
    KEY_MEM_PATH
};

/* Which keys each backend takes (bit per kind). */
#define ALL_KINDS 7u
#define ONLY(kind) (1u << (kind))
static const struct {
    const char *name;
    enum backend_key key;
    unsigned kinds;
} backend_keys[] = {
    { "id", KEY_ID, ALL_KINDS },
    { "size", KEY_SIZE, ALL_KINDS },
    { "share", KEY_SHARE, ALL_KINDS },
    { "prealloc", KEY_PREALLOC, ALL_KINDS },
    { "hugetlb", KEY_HUGETLB, ONLY(MEM_BACKEND_MEMFD) },
    { "mem-path", KEY_MEM_PATH, ONLY(MEM_BACKEND_FILE) },
};

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", NULL };
    static const char *const no[] = { "off", "no", "false", NULL };
    for (int i = 0; yes[i]; i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool set_key(struct mem_backend *be, enum backend_key key,
                    const char *name, const char *v, Error **errp)
{
    const char *type = mem_backend_type_name(be->kind);
    switch (key) {
    case KEY_ID:
        if (!*v || strlen(v) >= sizeof(be->id)) {
            error_setg(errp, "-object %s: id '%s' must be 1 to %zu characters",
                       type, v, sizeof(be->id) - 1);
            return false;
        }
        snprintf(be->id, sizeof(be->id), "%s", v);
        return true;
    case KEY_SIZE:
        if (!parse_size(v, 1, &be->size) || be->size == 0) {
            error_setg(errp, "-object %s: size '%s' is not a size (1G, 512M)",
                       type, v);
            return false;
        }
        return true;
    case KEY_MEM_PATH:
        if (!*v || strlen(v) >= sizeof(be->mem_path)) {
            error_setg(errp, "-object %s: mem-path is empty or too long", type);
            return false;
        }
        snprintf(be->mem_path, sizeof(be->mem_path), "%s", v);
        return true;
    case KEY_SHARE:
    case KEY_PREALLOC:
    case KEY_HUGETLB: {
        bool b;
        if (!parse_bool(v, &b)) {
            error_setg(errp, "-object %s: %s='%s' is not on or off", type, name,
                       v);
            return false;
        }
        if (key == KEY_SHARE) {
            be->share = b;
        } else if (key == KEY_PREALLOC) {
            be->prealloc = b;
        } else {
            be->hugetlb = b;
        }
        return true;
    }
    }
    return false;
}

static bool parse_kv(struct mem_backend *be, char *kv, Error **errp)
{
    const char *type = mem_backend_type_name(be->kind);
    char *eq = strchr(kv, '=');
    if (!eq) {
        error_setg(errp, "-object %s: '%s' is not KEY=VALUE", type, kv);
        return false;
    }
    *eq = '\0';
    for (size_t i = 0; i < sizeof(backend_keys) / sizeof(backend_keys[0]);
         i++) {
        if (strcmp(backend_keys[i].name, kv) != 0) {
            continue;
        }
        if (!(backend_keys[i].kinds & ONLY(be->kind))) {
            break;
        }
        return set_key(be, backend_keys[i].key, kv, eq + 1, errp);
    }
    error_setg(errp, "-object %s: unknown key '%s'", type, kv);
    return false;
}

bool mem_backend_parse(struct mem_backend *be, const char *spec, Error **errp)
{
    *be = (struct mem_backend){ 0 };
    char *copy = xstrdup(spec);
    char *save = NULL;
    char *type = strtok_r(copy, ",", &save);
    bool ok = false;
    int kind = -1;
    for (int i = 0; type && mem_backend_types[i]; i++) {
        if (strcmp(type, mem_backend_types[i]) == 0) {
            kind = i;
        }
    }
    if (kind < 0) {
        error_setg(errp,
                   "-object: unknown type '%s' (memory-backend-ram, "
                   "memory-backend-memfd or memory-backend-file)",
                   type ? type : "");
        goto out;
    }
    be->kind = (enum mem_backend_kind)kind;
    /* QEMU's memfd backend is shared unless told otherwise. */
    be->share = be->kind == MEM_BACKEND_MEMFD;
    for (char *kv; (kv = strtok_r(NULL, ",", &save));) {
        if (!parse_kv(be, kv, errp)) {
            goto out;
        }
    }
    const char *missing = !be->id[0]                       ? "id"
        : !be->size                                        ? "size"
        : be->kind == MEM_BACKEND_FILE && !be->mem_path[0] ? "mem-path"
                                                           : NULL;
    if (missing) {
        error_setg(errp, "-object %s: %s= is required", type, missing);
        goto out;
    }
    ok = true;
out:
    free(copy);
    return ok;
}

/* ---- mapping ---- */

/* A number from /proc/meminfo ("Hugepagesize:" ...), or def. */
static uint64_t meminfo(const char *key, uint64_t def)
{
    uint64_t out = def;
    FILE *f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[128];
        size_t n = strlen(key);
        while (fgets(line, sizeof(line), f)) {
            unsigned long long v;
            if (strncmp(line, key, n) == 0 &&
                sscanf(line + n, " %llu", &v) == 1) {
                out = v;
            }
        }
        fclose(f);
    }
    return out;
}

/* The huge page size hugetlb memfds get (Hugepagesize in /proc/meminfo). */
static uint64_t default_huge_page_size(void)
{
    return meminfo("Hugepagesize:", 2048) << 10;
}

bool mem_mapping_check_room_again(const struct mem_mapping *map, Error **errp)
{
    uint64_t page = map->page_size;
    if (page <= (uint64_t)sysconf(_SC_PAGESIZE) ||
        page != default_huge_page_size()) {
        return true; /* ordinary memory is not reserved up front */
    }
    uint64_t free_pages = meminfo("HugePages_Free:", 0);
    uint64_t reserved = meminfo("HugePages_Rsvd:", 0);
    uint64_t room = free_pages > reserved ? free_pages - reserved : 0;
    uint64_t need = map->size / page;
    if (room < need) {
        error_setg(errp,
                   "%llu huge pages of %llu KiB must be free for a second "
                   "mapping while the new process starts, %llu are",
                   (unsigned long long)need, (unsigned long long)(page >> 10),
                   (unsigned long long)room);
        return false;
    }
    return true;
}

/* An fd for the file backend: mem-path itself, or an unlinked file in it
 * when it is a directory (as QEMU does for hugetlbfs mounts).  A trailing
 * '/' names a directory even when it is missing, so the error says so
 * rather than that a directory cannot be opened as a file. */
static int open_mem_path(const struct mem_backend *be, Error **errp)
{
    struct stat st;
    int fd;
    size_t len = strlen(be->mem_path);
    if ((len && be->mem_path[len - 1] == '/') ||
        (stat(be->mem_path, &st) == 0 && S_ISDIR(st.st_mode))) {
        char tmpl[4200];
        snprintf(tmpl, sizeof(tmpl), "%s/hop_%s.XXXXXX", be->mem_path, be->id);
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0) {
            unlink(tmpl);
        }
    } else {
        fd = open(be->mem_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        error_setg_errno(errp, errno, "memory backend '%s': cannot open '%s'",
                         be->id, be->mem_path);
    }
    return fd;
}

static int backend_fd(const struct mem_backend *be, const char *name,
                      uint64_t *page_size, Error **errp)
{
    int fd;
    *page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    if (be->kind == MEM_BACKEND_MEMFD) {
        fd = memfd_create(name, MFD_CLOEXEC | (be->hugetlb ? MFD_HUGETLB : 0));
        if (fd < 0) {
            error_setg_errno(errp, errno, "memory backend '%s': memfd_create%s",
                             be->id, be->hugetlb ? " (hugetlb)" : "");
            return -1;
        }
        if (be->hugetlb) {
            *page_size = default_huge_page_size();
        }
        return fd;
    }
    fd = open_mem_path(be, errp);
    if (fd >= 0) {
        *page_size = mem_fd_page_size(fd);
    }
    return fd;
}

/* The fd holds at least size bytes (a file may already be larger). */
static bool size_fd(const struct mem_backend *be, int fd, uint64_t size,
                    Error **errp)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "memory backend '%s': fstat", be->id);
        return false;
    }
    if ((uint64_t)st.st_size >= size) {
        return true;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        error_setg_errno(errp, errno,
                         "memory backend '%s': cannot size to %llu bytes",
                         be->id, (unsigned long long)size);
        return false;
    }
    return true;
}

bool mem_backend_map(const struct mem_backend *be, const char *name,
                     uint64_t size, struct mem_mapping *map, Error **errp)
{
    *map = (struct mem_mapping){ .fd = -1, .size = size };
    int flags = be->share ? MAP_SHARED : MAP_PRIVATE;
    map->shared = be->share;
    map->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    if (be->kind == MEM_BACKEND_RAM) {
        flags |= MAP_ANONYMOUS | MAP_NORESERVE;
        map->anonymous = !be->share;
    } else {
        map->fd = backend_fd(be, name, &map->page_size, errp);
        if (map->fd < 0) {
            return false;
        }
        if (size % map->page_size) {
            error_setg(errp,
                       "memory backend '%s': size %llu is not a multiple "
                       "of its %llu KiB pages",
                       be->id, (unsigned long long)size,
                       (unsigned long long)(map->page_size >> 10));
            goto fail;
        }
        if (!size_fd(be, map->fd, size, errp)) {
            goto fail;
        }
        /* A private map of a fresh memfd reads zeros until written. */
        map->anonymous = be->kind == MEM_BACKEND_MEMFD && !be->share;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, map->fd, 0);
    if (p == MAP_FAILED) {
        error_setg_errno(errp, errno,
                         "memory backend '%s': mmap of %llu bytes%s", be->id,
                         (unsigned long long)size,
                         map->page_size > 4096 && errno == ENOMEM
                             ? " (not enough huge pages reserved?)"
                             : "");
        goto fail;
    }
    map->host = p;
    if (be->kind == MEM_BACKEND_RAM) {
        /* As QEMU: transparent huge pages where the host allows them. */
        (void)madvise(p, size, MADV_HUGEPAGE);
    }
    if (be->prealloc && !mem_populate(p, size, errp)) {
        error_prepend(errp, "memory backend '%s': prealloc: ", be->id);
        goto fail;
    }
    map->prealloc = be->prealloc;
    return true;
fail:
    mem_mapping_unmap(map);
    return false;
}

void mem_mapping_unmap(struct mem_mapping *map)
{
    if (map->host) {
        munmap(map->host, map->size);
    }
    if (map->fd >= 0) {
        close(map->fd);
    }
    *map = (struct mem_mapping){ .fd = -1 };
}

uint64_t mem_fd_page_size(int fd)
{
    struct statfs fs;
    if (fstatfs(fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC) {
        return (uint64_t)fs.f_bsize;
    }
    return (uint64_t)sysconf(_SC_PAGESIZE);
}

bool mem_mapping_adopt_fd(struct mem_mapping *map, int fd, Error **errp)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "fstat of the passed memory");
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "the passed descriptor is not memory (mode 0%o)",
                   (unsigned)st.st_mode);
        return false;
    }
    if ((uint64_t)st.st_size < map->size) {
        error_setg(errp, "the passed memory holds %llu bytes, %llu are needed",
                   (unsigned long long)st.st_size,
                   (unsigned long long)map->size);
        return false;
    }
    uint64_t page = mem_fd_page_size(fd);
    if (page != map->page_size) {
        error_setg(errp,
                   "the passed memory is on %llu KiB pages, this machine's "
                   "on %llu KiB pages",
                   (unsigned long long)(page >> 10),
                   (unsigned long long)(map->page_size >> 10));
        return false;
    }
    /* Mapped aside first, then moved over the old pages in one step: a
     * failure leaves the old mapping whole. */
    void *p = mmap(NULL, map->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        error_setg_errno(errp, errno, "mmap of the passed memory");
        return false;
    }
    void *at = mremap(p, map->size, map->size, MREMAP_MAYMOVE | MREMAP_FIXED,
                      map->host);
    if (at == MAP_FAILED) {
        error_setg_errno(errp, errno, "mremap of the passed memory");
        munmap(p, map->size);
        return false;
    }
    if (map->fd >= 0) {
        close(map->fd);
    }
    map->fd = fd;
    map->shared = true;
    map->anonymous = false;
    map->prealloc = false;
    return true;
}

bool mem_populate(void *host, uint64_t len, Error **errp)
{
    if (madvise(host, len, MADV_POPULATE_WRITE) == 0) {
        return true;
    }
    if (errno != EINVAL) {
        error_setg_errno(errp, errno, "cannot populate %llu bytes",
                         (unsigned long long)len);
        return false;
    }
    /* Kernels before 5.14: touch every page, keeping its contents. */
    for (uint64_t off = 0; off < len; off += 4096) {
        volatile uint8_t *b = (volatile uint8_t *)host + off;
        *b = *b;
    }
    return true;
}
