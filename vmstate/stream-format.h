/* Constants of the section stream (QEMU migration stream version 3). */
#ifndef HOP_VMSTATE_STREAM_FORMAT_H
#define HOP_VMSTATE_STREAM_FORMAT_H

#define STREAM_MAGIC 0x5145564Du /* "QEVM" */
#define STREAM_VERSION 3u
#define STREAM_VERSION_COMPAT 2u /* old format, not supported */

enum stream_record {
    STREAM_EOF = 0x00,
    STREAM_SECTION_START = 0x01,
    STREAM_SECTION_PART = 0x02,
    STREAM_SECTION_END = 0x03,
    STREAM_SECTION_FULL = 0x04,
    STREAM_SUBSECTION = 0x05,
    STREAM_VMDESCRIPTION = 0x06,
    STREAM_CONFIGURATION = 0x07,
    STREAM_COMMAND = 0x08,
    STREAM_SECTION_FOOTER = 0x7e,
};

/* Target page size carried in vmdesc's "page_size". */
#define STREAM_PAGE_SIZE 4096

#endif
