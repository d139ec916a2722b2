/* The RAM section reader and the XBZRLE delta decoder. */
#include "ram/ram-decode.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/be.h"
#include "util/printable.h"

/* ---- byte sources ---- */

static const uint8_t *mem_take(void *opaque, size_t n, const char *what,
                               Error **errp)
{
    struct ram_mem_source *s = opaque;
    if (n > s->len - s->pos) {
        error_setg(errp,
                   "truncated at offset %llu: expected %zu bytes of %s, "
                   "%zu left",
                   (unsigned long long)(s->base + s->pos), n, what,
                   s->len - s->pos);
        return NULL;
    }
    const uint8_t *p = s->data + s->pos;
    s->pos += n;
    return p;
}

static uint64_t mem_tell(void *opaque)
{
    struct ram_mem_source *s = opaque;
    return s->base + s->pos;
}

static bool mem_where(void *opaque, uint64_t *offset, uint64_t *size,
                      Error **errp)
{
    (void)errp;
    struct ram_mem_source *s = opaque;
    *offset = s->base + s->pos;
    *size = s->base + s->len;
    return true;
}

static bool mem_seek(void *opaque, uint64_t offset, Error **errp)
{
    struct ram_mem_source *s = opaque;
    if (offset < s->base + s->pos || offset - s->base > s->len) {
        error_setg(errp, "cannot move from offset %llu to %llu",
                   (unsigned long long)(s->base + s->pos),
                   (unsigned long long)offset);
        return false;
    }
    s->pos = (size_t)(offset - s->base);
    return true;
}

void ram_reader_init_mem(struct ram_reader *r, struct ram_mem_source *src,
                         const void *data, size_t len, uint64_t base)
{
    *src = (struct ram_mem_source){ .data = data, .len = len, .base = base };
    *r = (struct ram_reader){ .take = mem_take,
                              .tell = mem_tell,
                              .where = mem_where,
                              .seek = mem_seek,
                              .opaque = src };
}

static const uint8_t *chan_take(void *opaque, size_t n, const char *what,
                                Error **errp)
{
    struct ram_chan_source *s = opaque;
    uint64_t at = chan_tell(s->f);
    if (n > 2 * RAM_PAGE_SIZE) {
        error_setg(errp, "offset %llu: %s of %zu bytes is too long",
                   (unsigned long long)at, what, n);
        return NULL;
    }
    const uint8_t *p = chan_get_in_place(s->f, n);
    if (!p) {
        chan_check(s->f, errp);
        error_prepend(errp, "reading %s at offset %llu: ", what,
                      (unsigned long long)at);
    }
    return p;
}

static uint64_t chan_source_tell(void *opaque)
{
    return chan_tell(((struct ram_chan_source *)opaque)->f);
}

static bool chan_where(void *opaque, uint64_t *offset, uint64_t *size,
                       Error **errp)
{
    struct ram_chan_source *s = opaque;
    struct stat st;
    if (!chan_file_offset(s->f, offset, errp)) {
        return false;
    }
    if (fstat(chan_get_fd(s->f), &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "%s: not a regular file", chan_name(s->f));
        return false;
    }
    *size = (uint64_t)st.st_size;
    return true;
}

static bool chan_source_seek(void *opaque, uint64_t offset, Error **errp)
{
    return chan_seek(((struct ram_chan_source *)opaque)->f, offset, errp);
}

void ram_reader_init_chan(struct ram_reader *r, struct ram_chan_source *src,
                          Channel *f)
{
    src->f = f;
    *r = (struct ram_reader){ .take = chan_take,
                              .tell = chan_source_tell,
                              .where = chan_where,
                              .seek = chan_source_seek,
                              .opaque = src };
}

/* ---- decoder ---- */

void ram_decoder_init(struct ram_decoder *d, const struct ram_decode_ops *ops,
                      void *ctx)
{
    *d = (struct ram_decoder){ .ops = ops,
                               .ctx = ctx,
                               .page_size = RAM_PAGE_SIZE };
    lookup_init(&d->names);
}

void ram_decoder_copy_blocks(struct ram_decoder *d,
                             const struct ram_decoder *from)
{
    for (size_t i = 0; i < from->nblocks; i++) {
        if (d->nblocks == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 16;
            d->blocks = xreallocarray(d->blocks, d->cap, sizeof(*d->blocks));
        }
        lookup_add_str(&d->names, from->blocks[i].name, d->nblocks);
        d->blocks[d->nblocks++] = from->blocks[i];
    }
    d->have_blocks = from->have_blocks;
}

void ram_decoder_cleanup(struct ram_decoder *d)
{
    free(d->blocks);
    d->blocks = NULL;
    d->nblocks = d->cap = 0;
    lookup_free(&d->names);
}

long ram_decoder_find_block(const struct ram_decoder *d, const char *name)
{
    size_t i;
    return lookup_get_str(&d->names, name, &i) ? (long)i : -1;
}

static bool take_be64(struct ram_reader *r, uint64_t *v, const char *what,
                      Error **errp)
{
    const uint8_t *p = r->take(r->opaque, 8, what, errp);
    if (!p) {
        return false;
    }
    *v = be64_get(p);
    return true;
}

static bool take_counted(struct ram_reader *r, char name[256], const char *what,
                         Error **errp)
{
    const uint8_t *p = r->take(r->opaque, 1, what, errp);
    if (!p) {
        return false;
    }
    size_t len = p[0];
    if (len == 0) {
        error_setg(errp, "empty %s at offset %llu", what,
                   (unsigned long long)(r->tell(r->opaque) - 1));
        return false;
    }
    p = r->take(r->opaque, len, what, errp);
    if (!p) {
        return false;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    if (strlen(name) != len) {
        error_setg(errp, "%s before offset %llu contains a NUL byte", what,
                   (unsigned long long)r->tell(r->opaque));
        return false;
    }
    return true;
}

/* A block entry's mapped-ram header, checked against the file; *end is
 * where the stream goes on (after the block's pages). */
static bool read_mapped_header(struct ram_reader *r, struct ram_block_info *b,
                               uint64_t *end, Error **errp)
{
    uint64_t at, size;
    if (!r->where || !r->seek) {
        error_setg(errp,
                   "RAM block '%s': a mapped-ram stream must be read from "
                   "a file",
                   PRINTABLE(b->name));
        return false;
    }
    const uint8_t *p =
        r->take(r->opaque, RAM_MAPPED_HDR_SIZE, "a mapped-ram header", errp);
    if (!p) {
        return false;
    }
    ram_mapped_hdr_get(p, &b->mapped);
    if (!r->where(r->opaque, &at, &size, errp) ||
        !ram_mapped_check(&b->mapped, b->name, b->length, at, size, errp)) {
        return false;
    }
    *end = b->mapped.pages_offset + b->length;
    return true;
}

/* The MEM_SIZE record's body: block entries until their lengths add up
 * to total. */
static bool read_block_list(struct ram_decoder *d, struct ram_reader *r,
                            uint64_t total, uint64_t at, Error **errp)
{
    if (d->have_blocks) {
        error_setg(errp, "second RAM block list at offset %llu",
                   (unsigned long long)at);
        return false;
    }
    d->have_blocks = true;
    uint64_t left = total;
    while (left > 0) {
        struct ram_block_info b = { 0 };
        uint64_t bat = r->tell(r->opaque);
        if (!take_counted(r, b.name, "a RAM block name", errp) ||
            !take_be64(r, &b.length, "a RAM block length", errp)) {
            return false;
        }
        if (d->ignore_shared &&
            !take_be64(r, &b.guest_addr, "a RAM block address", errp)) {
            return false;
        }
        if (b.length > left) {
            error_setg(errp,
                       "RAM block '%s' at offset %llu is 0x%llx bytes, "
                       "more than the 0x%llx left of the announced total",
                       PRINTABLE(b.name), (unsigned long long)bat,
                       (unsigned long long)b.length, (unsigned long long)left);
            return false;
        }
        if (b.length % d->page_size) {
            error_setg(errp,
                       "RAM block '%s' at offset %llu: length 0x%llx is "
                       "not a multiple of the page size",
                       PRINTABLE(b.name), (unsigned long long)bat,
                       (unsigned long long)b.length);
            return false;
        }
        uint64_t mapped_end = 0;
        if (d->mapped_ram && !read_mapped_header(r, &b, &mapped_end, errp)) {
            return false;
        }
        if (!lookup_add_str(&d->names, b.name, d->nblocks)) {
            error_setg(errp, "RAM block '%s' listed twice (offset %llu)",
                       PRINTABLE(b.name), (unsigned long long)bat);
            return false;
        }
        left -= b.length;
        if (d->nblocks == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 16;
            d->blocks = xreallocarray(d->blocks, d->cap, sizeof(*d->blocks));
        }
        d->blocks[d->nblocks] = b;
        if (d->ops && d->ops->block &&
            !d->ops->block(d->ctx, d->nblocks, &b, errp)) {
            return false;
        }
        d->nblocks++;
        if (d->mapped_ram && !r->seek(r->opaque, mapped_end, errp)) {
            error_prepend(errp, "RAM block '%s': ", PRINTABLE(b.name));
            return false;
        }
    }
    return true;
}

static bool read_page_block(struct ram_decoder *d, struct ram_reader *r,
                            unsigned flags, uint64_t at, size_t *block,
                            Error **errp)
{
    if (flags & RAM_FLAG_CONTINUE) {
        if (!d->have_last) {
            error_setg(errp,
                       "page record at offset %llu continues a block, "
                       "but no block was named before",
                       (unsigned long long)at);
            return false;
        }
        *block = d->last_block;
        return true;
    }
    char name[256];
    if (!take_counted(r, name, "a RAM block name", errp)) {
        return false;
    }
    long i = ram_decoder_find_block(d, name);
    if (i < 0) {
        error_setg(errp,
                   "page record at offset %llu names RAM block '%s', "
                   "which the block list does not have",
                   (unsigned long long)at, PRINTABLE(name));
        return false;
    }
    d->have_last = true;
    d->last_block = (size_t)i;
    *block = (size_t)i;
    return true;
}

static bool read_page_body(struct ram_decoder *d, struct ram_reader *r,
                           struct ram_page *p, Error **errp)
{
    const uint8_t *b;
    switch (p->kind) {
    case RAM_PAGE_ZERO:
        if (!(b = r->take(r->opaque, 1, "a zero page's fill byte", errp))) {
            return false;
        }
        p->fill = b[0];
        return true;
    case RAM_PAGE_NORMAL:
        p->len = d->page_size;
        return (p->data = r->take(r->opaque, p->len, "a page", errp));
    case RAM_PAGE_XBZRLE:
        if (!(b = r->take(r->opaque, 3, "an XBZRLE header", errp))) {
            return false;
        }
        if (b[0] != RAM_XBZRLE_ENCODING) {
            error_setg(errp,
                       "XBZRLE page at offset %llu: encoding flag 0x%02x,"
                       " expected 0x%02x",
                       (unsigned long long)p->at, b[0], RAM_XBZRLE_ENCODING);
            return false;
        }
        p->len = be16_get(b + 1);
        if (p->len > d->page_size) {
            error_setg(errp,
                       "XBZRLE page at offset %llu: delta of %zu bytes "
                       "is longer than a page",
                       (unsigned long long)p->at, p->len);
            return false;
        }
        return (p->data = r->take(r->opaque, p->len, "an XBZRLE delta", errp));
    case RAM_PAGE_COMPRESSED:
        if (!(b = r->take(r->opaque, 4, "a compressed page length", errp))) {
            return false;
        }
        p->len = be32_get(b);
        /* zlib's bound for one page is a few bytes over the page. */
        if (p->len == 0 || p->len > d->page_size + d->page_size / 64 + 64) {
            error_setg(errp,
                       "compressed page at offset %llu: length %zu is "
                       "impossible for one page",
                       (unsigned long long)p->at, p->len);
            return false;
        }
        return (p->data =
                    r->take(r->opaque, p->len, "a compressed page", errp));
    }
    return false;
}

static const struct {
    unsigned flag;
    enum ram_page_kind kind;
} page_kinds[] = {
    { RAM_FLAG_ZERO, RAM_PAGE_ZERO },
    { RAM_FLAG_PAGE, RAM_PAGE_NORMAL },
    { RAM_FLAG_XBZRLE, RAM_PAGE_XBZRLE },
    { RAM_FLAG_COMPRESS_PAGE, RAM_PAGE_COMPRESSED },
};

static bool read_page(struct ram_decoder *d, struct ram_reader *r,
                      uint64_t addr, unsigned flags, uint64_t at, Error **errp)
{
    struct ram_page p = { .offset = addr, .at = at };
    int kinds = 0;
    for (size_t i = 0; i < sizeof(page_kinds) / sizeof(page_kinds[0]); i++) {
        if (flags & page_kinds[i].flag) {
            p.kind = page_kinds[i].kind;
            kinds++;
        }
    }
    if (kinds != 1) {
        error_setg(errp,
                   "RAM record at offset %llu has flags 0x%x: expected "
                   "exactly one of ZERO, PAGE, XBZRLE, COMPRESS_PAGE",
                   (unsigned long long)at, flags);
        return false;
    }
    if (!read_page_block(d, r, flags, at, &p.block, errp)) {
        return false;
    }
    const struct ram_block_info *b = &d->blocks[p.block];
    if (addr >= b->length) {
        error_setg(errp,
                   "page record at offset %llu: page 0x%llx is past the "
                   "end of RAM block '%s' (0x%llx bytes)",
                   (unsigned long long)at, (unsigned long long)addr,
                   PRINTABLE(b->name), (unsigned long long)b->length);
        return false;
    }
    if (!read_page_body(d, r, &p, errp)) {
        return false;
    }
    p.size = r->tell(r->opaque) - at;
    return !d->ops || !d->ops->page || d->ops->page(d->ctx, &p, errp);
}

bool ram_decode_section(struct ram_decoder *d, struct ram_reader *r,
                        Error **errp)
{
    for (;;) {
        uint64_t at = r->tell(r->opaque);
        uint64_t word;
        if (!take_be64(r, &word, "a RAM record header", errp)) {
            return false;
        }
        unsigned flags = (unsigned)(word & (d->page_size - 1));
        uint64_t addr = word & ~(uint64_t)(d->page_size - 1);
        if (flags & ~RAM_FLAGS_KNOWN) {
            error_setg(errp, "RAM record at offset %llu has unknown flags 0x%x",
                       (unsigned long long)at, flags & ~RAM_FLAGS_KNOWN);
            return false;
        }
        if (flags & (RAM_FLAG_HOOK | RAM_FLAG_FULL)) {
            error_setg(errp,
                       "RAM record at offset %llu has flag 0x%x (%s), "
                       "which a file stream never carries",
                       (unsigned long long)at, flags,
                       (flags & RAM_FLAG_HOOK) ? "RDMA hook" : "obsolete FULL");
            return false;
        }
        if (flags & RAM_FLAG_MEM_SIZE) {
            if (flags != RAM_FLAG_MEM_SIZE) {
                error_setg(errp,
                           "block list record at offset %llu carries "
                           "other flags (0x%x)",
                           (unsigned long long)at, flags);
                return false;
            }
            /* The total is the whole word: it need not be page aligned. */
            if (!read_block_list(d, r, word & ~(uint64_t)RAM_FLAG_MEM_SIZE, at,
                                 errp)) {
                return false;
            }
            continue;
        }
        if (flags &
            (RAM_FLAG_ZERO | RAM_FLAG_PAGE | RAM_FLAG_XBZRLE |
             RAM_FLAG_COMPRESS_PAGE)) {
            if (!d->have_blocks) {
                error_setg(errp,
                           "page record at offset %llu before the RAM "
                           "block list",
                           (unsigned long long)at);
                return false;
            }
            if (!read_page(d, r, addr, flags & ~RAM_FLAG_EOS, at, errp)) {
                return false;
            }
        } else if (flags & RAM_FLAG_CONTINUE) {
            error_setg(errp,
                       "RAM record at offset %llu has CONTINUE but no "
                       "page type",
                       (unsigned long long)at);
            return false;
        } else if (!(flags & (RAM_FLAG_EOS | RAM_FLAG_MULTIFD_FLUSH))) {
            error_setg(errp,
                       "RAM record at offset %llu has no flags "
                       "(expected a page, a block list or EOS)",
                       (unsigned long long)at);
            return false;
        }
        if ((flags & RAM_FLAG_MULTIFD_FLUSH) && d->ops && d->ops->flush &&
            !d->ops->flush(d->ctx, errp)) {
            return false;
        }
        if (flags & RAM_FLAG_EOS) {
            return true;
        }
    }
}

/* ---- XBZRLE ---- */

/* ULEB128 as XBZRLE writes it: one byte below 0x80, else two. */
static int uleb_small(const uint8_t *p, size_t avail, size_t *v)
{
    if (avail < 1) {
        return -1;
    }
    if (!(p[0] & 0x80)) {
        *v = p[0];
        return 1;
    }
    if (avail < 2 || (p[1] & 0x80)) {
        return -1;
    }
    *v = (size_t)(p[0] & 0x7f) | (size_t)p[1] << 7;
    return 2;
}

/* One pass over the delta; applies it only when page is not NULL. */
static bool xbzrle_walk(const uint8_t *delta, size_t dlen, uint8_t *page,
                        size_t page_size, Error **errp)
{
    size_t i = 0, d = 0;
    while (i < dlen) {
        size_t zrun, nzrun;
        size_t at = i;
        int n;
        /* A pair needs at least one byte for each run length. */
        if (dlen - i < 2 || (n = uleb_small(delta + i, dlen - i, &zrun)) < 0) {
            error_setg(errp,
                       "XBZRLE delta byte %zu: malformed unchanged-run "
                       "length",
                       at);
            return false;
        }
        if (zrun == 0 && i != 0) {
            error_setg(errp,
                       "XBZRLE delta byte %zu: empty unchanged run "
                       "after the first pair",
                       at);
            return false;
        }
        i += (size_t)n;
        if (zrun > page_size - d) {
            error_setg(errp,
                       "XBZRLE delta byte %zu: unchanged run of %zu "
                       "bytes runs past the page",
                       at, zrun);
            return false;
        }
        d += zrun;
        at = i;
        if ((n = uleb_small(delta + i, dlen - i, &nzrun)) < 0 || nzrun == 0) {
            error_setg(errp,
                       "XBZRLE delta byte %zu: malformed or empty "
                       "changed-run length",
                       at);
            return false;
        }
        i += (size_t)n;
        if (nzrun > page_size - d || nzrun > dlen - i) {
            error_setg(errp,
                       "XBZRLE delta byte %zu: changed run of %zu bytes "
                       "runs past the %s",
                       at, nzrun, nzrun > page_size - d ? "page" : "delta");
            return false;
        }
        if (page) {
            memcpy(page + d, delta + i, nzrun);
        }
        d += nzrun;
        i += nzrun;
    }
    return true;
}

bool xbzrle_decode(const uint8_t *delta, size_t dlen, uint8_t *page,
                   size_t page_size, Error **errp)
{
    /* Validate everything first so a bad delta changes nothing. */
    return xbzrle_walk(delta, dlen, NULL, page_size, errp) &&
        xbzrle_walk(delta, dlen, page, page_size, errp);
}
