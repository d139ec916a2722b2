/* The RAM section's wire format (QEMU's "ram" section, version 4): every
 * record starts with a be64 holding a page-aligned byte offset inside a
 * RAM block, with the flags below in the bits under the page size. */
#ifndef HOP_RAM_RAM_FORMAT_H
#define HOP_RAM_RAM_FORMAT_H

#include "machine/memory.h" /* RAM_PAGE_SIZE: pages are the machine's */

#define RAM_SECTION_IDSTR "ram"
#define RAM_SECTION_VERSION 4

enum ram_flag {
    RAM_FLAG_FULL = 0x001,          /* obsolete, never sent */
    RAM_FLAG_ZERO = 0x002,          /* page filled with one byte: u8 fill */
    RAM_FLAG_MEM_SIZE = 0x004,      /* block list follows; addr = total */
    RAM_FLAG_PAGE = 0x008,          /* one raw page follows */
    RAM_FLAG_EOS = 0x010,           /* end of this section's records */
    RAM_FLAG_CONTINUE = 0x020,      /* same block as the previous page */
    RAM_FLAG_XBZRLE = 0x040,        /* delta against the previous page */
    RAM_FLAG_HOOK = 0x080,          /* RDMA control hook */
    RAM_FLAG_COMPRESS_PAGE = 0x100, /* be32 length + zlib stream */
    RAM_FLAG_MULTIFD_FLUSH = 0x200, /* newer senders: flush multifd */
};

/* Flags a record may carry; anything else is a malformed stream. */
#define RAM_FLAGS_KNOWN 0x3ffu

/* XBZRLE page body: u8 encoding flag, be16 delta length, delta. */
#define RAM_XBZRLE_ENCODING 0x01

/* Longest ULEB128 run length in an XBZRLE delta (two bytes). */
#define RAM_XBZRLE_RUN_MAX 0x3fffu

#endif
