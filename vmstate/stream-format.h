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

/* COMMAND records' commands (be16 after the 0x08). */
enum stream_command {
    STREAM_CMD_INVALID = 0,
    STREAM_CMD_OPEN_RETURN_PATH = 1,
    STREAM_CMD_PING = 2,
    STREAM_CMD_POSTCOPY_ADVISE = 3,
    STREAM_CMD_POSTCOPY_LISTEN = 4,
    STREAM_CMD_POSTCOPY_RUN = 5,
    STREAM_CMD_POSTCOPY_RAM_DISCARD = 6,
    STREAM_CMD_PACKAGED = 7,
    STREAM_CMD_ENABLE_COLO = 8,
    STREAM_CMD_POSTCOPY_RESUME = 9,
    STREAM_CMD_RECV_BITMAP = 10,
    STREAM_CMD_SWITCHOVER_START = 11,
};

/* The longest PACKAGED blob a loader takes (QEMU: 16 MiB). */
#define STREAM_PACKAGED_MAX (16u << 20)

/* Target page size carried in vmdesc's "page_size". */
#define STREAM_PAGE_SIZE 4096

#endif
