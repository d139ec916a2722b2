/* Multiboot (a.out kludge) and flat-binary loader. */
#include "machine/loader.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MB_SEARCH 8192
#define MB_AOUT_KLUDGE (1u << 16)
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_LOADER_NAME (1u << 9)

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
        (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Offset of a valid multiboot header, or -1. */
static long find_header(const uint8_t *image, size_t size)
{
    size_t lim = size < MB_SEARCH ? size : MB_SEARCH;
    for (size_t off = 0; off + 12 <= lim; off += 4) {
        uint32_t magic = le32(image + off);
        if (magic == MULTIBOOT_HEADER_MAGIC &&
            magic + le32(image + off + 4) + le32(image + off + 8) == 0) {
            return (long)off;
        }
    }
    return -1;
}

static bool place(struct machine_memory *mem, uint64_t gpa, const void *src,
                  size_t len, const char *name, Error **errp)
{
    uint64_t below = memory_below_4g(mem);
    if (gpa < LOADER_KERNEL_BASE || gpa + len > below) {
        error_setg(errp,
                   "'%s': load range 0x%llx-0x%llx does not fit in RAM "
                   "between 1 MiB and 0x%llx",
                   name, (unsigned long long)gpa,
                   (unsigned long long)(gpa + len), (unsigned long long)below);
        return false;
    }
    if (src) {
        return memory_write(mem, gpa, src, len, errp);
    }
    uint8_t *host = memory_host_ptr(mem, gpa, len);
    memset(host, 0, len);
    ram_block_set_dirty(memory_main_block(mem), gpa, len);
    return true;
}

static bool write_mbi(struct machine_memory *mem, Error **errp)
{
    uint8_t mbi[128];
    memset(mbi, 0, sizeof(mbi));
    uint64_t upper = (memory_below_4g(mem) - LOADER_KERNEL_BASE) / 1024;
    put_le32(mbi + 0, MB_INFO_MEMORY | MB_INFO_LOADER_NAME);
    put_le32(mbi + 4, 640);                   /* mem_lower, KiB */
    put_le32(mbi + 8, (uint32_t)upper);       /* mem_upper, KiB */
    put_le32(mbi + 64, LOADER_MBI_ADDR + 96); /* boot_loader_name */
    memcpy(mbi + 96, "hop", 4);
    return memory_write(mem, LOADER_MBI_ADDR, mbi, sizeof(mbi), errp);
}

bool loader_load(struct machine_memory *mem, const uint8_t *image, size_t size,
                 const char *name, struct loader_result *res, Error **errp)
{
    memset(res, 0, sizeof(*res));
    if (size == 0) {
        error_setg(errp, "'%s': empty kernel image", name);
        return false;
    }
    long hoff = find_header(image, size);
    if (hoff < 0) {
        if (!place(mem, LOADER_KERNEL_BASE, image, size, name, errp)) {
            return false;
        }
        res->entry = LOADER_KERNEL_BASE;
        res->load_start = LOADER_KERNEL_BASE;
        res->load_end = LOADER_KERNEL_BASE + (uint32_t)size;
    } else {
        const uint8_t *h = image + hoff;
        uint32_t flags = le32(h + 4);
        if (!(flags & MB_AOUT_KLUDGE)) {
            error_setg(errp,
                       "'%s': multiboot header without load addresses "
                       "(flags bit 16); ELF kernels are not supported",
                       name);
            return false;
        }
        if ((size_t)hoff + 32 > size) {
            error_setg(errp, "'%s': truncated multiboot header", name);
            return false;
        }
        uint32_t header_addr = le32(h + 12), load_addr = le32(h + 16);
        uint32_t load_end = le32(h + 20), bss_end = le32(h + 24);
        uint32_t entry = le32(h + 28);
        if (load_addr > header_addr ||
            header_addr - load_addr > (uint32_t)hoff) {
            error_setg(errp,
                       "'%s': multiboot load_addr 0x%x is inconsistent "
                       "with header_addr 0x%x",
                       name, load_addr, header_addr);
            return false;
        }
        size_t file_off = (size_t)hoff - (header_addr - load_addr);
        size_t len = load_end ? load_end - load_addr : size - file_off;
        if (load_end && load_end < load_addr) {
            error_setg(errp,
                       "'%s': multiboot load_end_addr 0x%x is below "
                       "load_addr 0x%x",
                       name, load_end, load_addr);
            return false;
        }
        if (file_off + len > size) {
            error_setg(errp,
                       "'%s': multiboot header asks for %zu bytes, the "
                       "file has %zu",
                       name, len, size - file_off);
            return false;
        }
        if (!place(mem, load_addr, image + file_off, len, name, errp)) {
            return false;
        }
        uint32_t end = load_addr + (uint32_t)len;
        if (bss_end > end &&
            !place(mem, end, NULL, bss_end - end, name, errp)) {
            return false;
        }
        if (entry < load_addr || entry >= (bss_end > end ? bss_end : end)) {
            error_setg(errp,
                       "'%s': multiboot entry 0x%x lies outside the "
                       "image",
                       name, entry);
            return false;
        }
        res->entry = entry;
        res->load_start = load_addr;
        res->load_end = bss_end > end ? bss_end : end;
        res->multiboot = true;
    }
    res->mbi = LOADER_MBI_ADDR;
    return write_mbi(mem, errp);
}

bool loader_read_file(const char *path, size_t max, uint8_t **data,
                      size_t *size, Error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "kernel '%s'", path);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "kernel '%s': not a regular file", path);
        close(fd);
        return false;
    }
    if ((uint64_t)st.st_size > max) {
        error_setg(errp, "kernel '%s': %lld bytes, at most %zu fit", path,
                   (long long)st.st_size, max);
        close(fd);
        return false;
    }
    uint8_t *buf = xmalloc((size_t)st.st_size);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) {
            error_setg_errno(errp, r < 0 ? errno : EIO, "kernel '%s': read",
                             path);
            free(buf);
            close(fd);
            return false;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *size = got;
    return true;
}
