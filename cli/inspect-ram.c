/* RAM statistics and extraction for hop inspect. */
#include "cli/inspect-ram.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/inspect.h"
#include "util/alloc.h"
#include "util/io.h"
#include "util/printable.h"

/* The shortest record that can carry a page: the be64 header of a zero
 * page continuing the previous block, and its fill byte. */
#define PAGE_RECORD_MIN 9

static const char *const kind_keys[RAM_PAGE_KINDS] = {
    [RAM_PAGE_NORMAL] = "normal",
    [RAM_PAGE_ZERO] = "zero",
    [RAM_PAGE_XBZRLE] = "xbzrle",
    [RAM_PAGE_COMPRESSED] = "compressed",
};

void inspect_ram_file_name(const char *block, char *out, size_t size)
{
    size_t o = 0;
    const char *s = block[0] == '/' ? block + 1 : block;
    for (size_t i = 0; s[i] && o + 4 < size; i++) {
        char c = s[i];
        if (c == '/' || c == '%' || (c == '.' && o == 0) ||
            (unsigned char)c < 0x20 || c == 0x7f) {
            o +=
                (size_t)snprintf(out + o, size - o, "%%%02X", (unsigned char)c);
        } else {
            out[o++] = c;
        }
    }
    if (o == 0 && size > 6) {
        memcpy(out, "%2F", 4); /* a block called "/" */
        o = 3;
    }
    out[o] = '\0';
}

/* Creates name in the extraction directory: never through a symlink or
 * into an entry that is there already, unless asked to replace it. */
static int create_file(struct inspect_ram *r, const char *name, Error **errp)
{
    int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(r->dirfd, name, flags, 0644);
    if (fd < 0 && errno == EEXIST && r->overwrite) {
        /* The entry goes, whatever it is; what it pointed to stays. */
        if (unlinkat(r->dirfd, name, 0) < 0) {
            error_setg_errno(errp, errno, "cannot replace '%s/%s'", r->dir,
                             PRINTABLE(name));
            return -1;
        }
        fd = openat(r->dirfd, name, flags, 0644);
    }
    if (fd < 0 && errno == EEXIST) {
        error_setg(errp, "'%s/%s' already exists (--overwrite replaces it)",
                   r->dir, PRINTABLE(name));
    } else if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create '%s/%s'", r->dir,
                         PRINTABLE(name));
    }
    return fd;
}

static bool open_block_file(struct inspect_ram *r, size_t index,
                            const struct ram_block_info *b, Error **errp)
{
    struct inspect_ram_block *st = &r->blocks[index];
    char name[3 * 256 + 1];
    inspect_ram_file_name(b->name, name, sizeof(name));
    size_t other;
    if (lookup_get_str(&r->files, name, &other)) {
        error_setg(errp,
                   "RAM blocks '%s' and '%s' would both be written to "
                   "'%s/%s'",
                   PRINTABLE(r->dec.blocks[other].name), PRINTABLE(b->name),
                   r->dir, PRINTABLE(name));
        return false;
    }
    /* Every page of a block is sent at least once, and each record takes
     * some bytes: a length the stream cannot carry is a forged one, and
     * must not become a file of that size. */
    uint64_t pages = b->length / r->dec.page_size;
    r->pages += pages;
    if (r->pages > r->avail / PAGE_RECORD_MIN) {
        error_setg(errp,
                   "RAM block '%s' of 0x%llx bytes: the stream has "
                   "%zu bytes left, too few for the records of its %llu "
                   "pages; not extracting it",
                   PRINTABLE(b->name), (unsigned long long)b->length, r->avail,
                   (unsigned long long)pages);
        return false;
    }
    st->fd = create_file(r, name, errp);
    if (st->fd < 0) {
        return false;
    }
    st->file = xstrdup(name);
    lookup_add_str(&r->files, name, index);
    if (ftruncate(st->fd, (off_t)b->length) < 0) {
        error_setg_errno(errp, errno, "cannot size '%s/%s'", r->dir,
                         PRINTABLE(name));
        return false;
    }
    st->written = xcalloc(pages / 8 + 1, 1);
    return true;
}

static bool write_page(int fd, const uint8_t *buf, size_t len, uint64_t off,
                       const char *block, Error **errp);

/* A mapped-ram block: its pages are the bitmap's set bits, at fixed
 * offsets of the file (checked to lie inside it by the decoder). */
static bool mapped_block(struct inspect_ram *r, size_t index,
                         const struct ram_block_info *b, Error **errp)
{
    struct inspect_ram_block *st = &r->blocks[index];
    const uint8_t *bits = r->body + (b->mapped.bitmap_offset - r->base);
    const uint8_t *pages = r->body + (b->mapped.pages_offset - r->base);
    uint64_t npages = b->length / r->dec.page_size;
    st->mapped = true;
    for (uint64_t i = 0; i < npages; i++) {
        if (!((bits[i / 8] >> (i % 8)) & 1)) {
            st->pages[RAM_PAGE_ZERO]++;
            continue;
        }
        st->pages[RAM_PAGE_NORMAL]++;
        st->stream_bytes += r->dec.page_size;
        uint64_t off = i * r->dec.page_size;
        if (st->fd >= 0 &&
            !write_page(st->fd, pages + off, r->dec.page_size, off, b->name,
                        errp)) {
            return false;
        }
    }
    return true;
}

static bool on_block(void *ctx, size_t index, const struct ram_block_info *b,
                     Error **errp)
{
    struct inspect_ram *r = ctx;
    if (index >= r->cap) {
        /* Doubling: a list of many blocks costs linear time. */
        r->cap = r->cap ? 2 * r->cap : 16;
        r->blocks = xreallocarray(r->blocks, r->cap, sizeof(*r->blocks));
    }
    r->blocks[index] = (struct inspect_ram_block){ .fd = -1 };
    r->nblocks = index + 1;
    if (r->dir && !open_block_file(r, index, b, errp)) {
        return false;
    }
    return !r->dec.mapped_ram || mapped_block(r, index, b, errp);
}

static bool write_page(int fd, const uint8_t *buf, size_t len, uint64_t off,
                       const char *block, Error **errp)
{
    if (!io_pwrite_full(fd, buf, len, off)) {
        error_setg_errno(errp, errno,
                         "writing RAM block "
                         "'%s' at 0x%llx",
                         PRINTABLE(block), (unsigned long long)off);
        return false;
    }
    return true;
}

static bool extract_page(struct inspect_ram *r, struct inspect_ram_block *st,
                         const struct ram_page *p, Error **errp)
{
    const struct ram_block_info *b = &r->dec.blocks[p->block];
    size_t ps = r->dec.page_size;
    uint64_t idx = p->offset / ps;
    bool was = st->written[idx / 8] & (1u << (idx % 8));
    switch (p->kind) {
    case RAM_PAGE_NORMAL:
        if (!write_page(st->fd, p->data, ps, p->offset, b->name, errp)) {
            return false;
        }
        break;
    case RAM_PAGE_ZERO:
        if (p->fill == 0) {
            if (was &&
                fallocate(st->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          (off_t)p->offset, (off_t)ps) < 0) {
                memset(r->page, 0, ps);
                if (!write_page(st->fd, r->page, ps, p->offset, b->name,
                                errp)) {
                    return false;
                }
            }
            st->written[idx / 8] &= (uint8_t) ~(1u << (idx % 8));
            return true;
        }
        memset(r->page, p->fill, ps);
        if (!write_page(st->fd, r->page, ps, p->offset, b->name, errp)) {
            return false;
        }
        break;
    case RAM_PAGE_XBZRLE: {
        ssize_t n = io_pread_full(st->fd, r->page, ps, p->offset);
        if (n != (ssize_t)ps) {
            error_setg_errno(errp, n < 0 ? errno : EIO,
                             "reading back RAM "
                             "block '%s' at 0x%llx",
                             PRINTABLE(b->name), (unsigned long long)p->offset);
            return false;
        }
        if (!xbzrle_decode(p->data, p->len, r->page, ps, errp)) {
            error_prepend(errp, "page record at offset %llu: ",
                          (unsigned long long)p->at);
            return false;
        }
        if (!write_page(st->fd, r->page, ps, p->offset, b->name, errp)) {
            return false;
        }
        break;
    }
    case RAM_PAGE_COMPRESSED:
        error_setg(errp,
                   "page record at offset %llu: compressed pages "
                   "(COMPRESS_PAGE) cannot be extracted by this build",
                   (unsigned long long)p->at);
        return false;
    }
    st->written[idx / 8] |= (uint8_t)(1u << (idx % 8));
    return true;
}

static bool on_page(void *ctx, const struct ram_page *p, Error **errp)
{
    struct inspect_ram *r = ctx;
    struct inspect_ram_block *st = &r->blocks[p->block];
    st->pages[p->kind]++;
    st->stream_bytes += p->size;
    if (p->kind == RAM_PAGE_XBZRLE && !r->dir) {
        /* Without a page to apply it to, check the delta's shape. */
        memset(r->page, 0, r->dec.page_size);
        if (!xbzrle_decode(p->data, p->len, r->page, r->dec.page_size, errp)) {
            error_prepend(errp, "page record at offset %llu: ",
                          (unsigned long long)p->at);
            return false;
        }
    }
    return !r->dir || extract_page(r, st, p, errp);
}

static const struct ram_decode_ops inspect_ram_ops = {
    .block = on_block,
    .page = on_page,
};

bool inspect_ram_init(struct inspect_ram *r, const struct inspect_opts *o,
                      Error **errp)
{
    memset(r, 0, sizeof(*r));
    ram_decoder_init(&r->dec, &inspect_ram_ops, r);
    lookup_init(&r->files);
    r->dirfd = -1;
    r->dir = o->extract_dir;
    r->overwrite = o->overwrite;
    if (!r->dir) {
        return true;
    }
    if (!mkdir_p(r->dir, 0755, errp)) {
        return false;
    }
    r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dirfd < 0) {
        error_setg_errno(errp, errno, "cannot open directory '%s'", r->dir);
        return false;
    }
    return true;
}

bool inspect_ram_section(struct inspect_ram *r, const uint8_t *body,
                         size_t avail, uint64_t base, size_t *used,
                         Error **errp)
{
    struct ram_reader rd;
    struct ram_mem_source src;
    r->avail = avail;
    r->body = body;
    r->base = base;
    ram_reader_init_mem(&rd, &src, body, avail, base);
    if (!ram_decode_section(&r->dec, &rd, errp)) {
        return false;
    }
    r->sections++;
    *used = src.pos;
    return true;
}

json_t *inspect_ram_report(const struct inspect_ram *r)
{
    json_t *o = json_object();
    json_t *blocks = json_array();
    uint64_t total = 0, tpages[RAM_PAGE_KINDS] = { 0 }, tbytes = 0;
    for (size_t i = 0; i < r->nblocks; i++) {
        const struct ram_block_info *b = &r->dec.blocks[i];
        const struct inspect_ram_block *st = &r->blocks[i];
        json_t *jb = json_object();
        json_t *pages = json_object();
        json_object_set_new(jb, "name", inspect_json_name(b->name));
        json_object_set_new(jb, "length", json_integer((json_int_t)b->length));
        for (int k = 0; k < RAM_PAGE_KINDS; k++) {
            json_object_set_new(pages, kind_keys[k],
                                json_integer((json_int_t)st->pages[k]));
            tpages[k] += st->pages[k];
        }
        json_object_set_new(jb, "pages", pages);
        json_object_set_new(jb, "stream_bytes",
                            json_integer((json_int_t)st->stream_bytes));
        if (st->mapped) {
            json_t *m = json_object();
            json_object_set_new(
                m, "bitmap_offset",
                json_integer((json_int_t)b->mapped.bitmap_offset));
            json_object_set_new(
                m, "pages_offset",
                json_integer((json_int_t)b->mapped.pages_offset));
            json_object_set_new(
                m, "pages_written",
                json_integer((json_int_t)st->pages[RAM_PAGE_NORMAL]));
            json_object_set_new(jb, "mapped_ram", m);
        }
        json_array_append_new(blocks, jb);
        total += b->length;
        tbytes += st->stream_bytes;
    }
    json_object_set_new(o, "page_size",
                        json_integer((json_int_t)r->dec.page_size));
    json_object_set_new(o, "sections", json_integer((json_int_t)r->sections));
    json_object_set_new(o, "mapped_ram", json_boolean(r->dec.mapped_ram));
    json_object_set_new(o, "total_length", json_integer((json_int_t)total));
    json_t *pages = json_object();
    for (int k = 0; k < RAM_PAGE_KINDS; k++) {
        json_object_set_new(pages, kind_keys[k],
                            json_integer((json_int_t)tpages[k]));
    }
    json_object_set_new(o, "pages", pages);
    json_object_set_new(o, "stream_bytes", json_integer((json_int_t)tbytes));
    json_object_set_new(o, "blocks", blocks);
    return o;
}

bool inspect_ram_finish(struct inspect_ram *r, Error **errp)
{
    bool ok = true;
    for (size_t i = 0; i < r->nblocks; i++) {
        if (r->blocks[i].fd >= 0) {
            if (close(r->blocks[i].fd) < 0 && ok) {
                error_setg_errno(errp, errno, "closing RAM block '%s'",
                                 PRINTABLE(r->dec.blocks[i].name));
                ok = false;
            }
            r->blocks[i].fd = -1;
        }
    }
    return ok;
}

void inspect_ram_cleanup(struct inspect_ram *r, bool discard)
{
    for (size_t i = 0; i < r->nblocks; i++) {
        struct inspect_ram_block *st = &r->blocks[i];
        if (st->fd >= 0) {
            close(st->fd);
        }
        if (discard && st->file) {
            unlinkat(r->dirfd, st->file, 0);
        }
        free(st->file);
        free(st->written);
    }
    free(r->blocks);
    r->blocks = NULL;
    r->nblocks = r->cap = 0;
    if (r->dirfd >= 0) {
        close(r->dirfd);
        r->dirfd = -1;
    }
    lookup_free(&r->files);
    ram_decoder_cleanup(&r->dec);
}
