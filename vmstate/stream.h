/* The section stream: one writer and one loader for the whole saved state
 * of a machine, framed like QEMU's migration stream version 3 (magic,
 * version, configuration, START/PART/END/FULL sections with footers, EOF,
 * vmdesc JSON).  Migration, savevm and offline saves differ only in the
 * channel they pass and in when they call iterate/complete.
 *
 * State registers in a registry, by idstr and instance id:
 *  - table-described devices (struct vmstate_desc), saved in one FULL
 *    section at completion, in registration order;
 *  - live handlers for iterative state such as RAM, which send a START
 *    section at setup, PART sections while the machine runs and an END
 *    section at completion. */
#ifndef HOP_VMSTATE_STREAM_H
#define HOP_VMSTATE_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "vmstate/channel.h"
#include "vmstate/vmstate.h"

struct live_handler_ops {
    /* Save side.  setup writes the START body; iterate one PART body and
     * returns 1 when it has nothing more to send for now, 0 if more
     * remains, -1 on error; complete writes the END body (machine stopped). */
    bool (*save_setup)(Channel *f, void *opaque, Error **errp);
    /* Optional: false leaves the section out of this save altogether
     * (block migration goes only when asked for). */
    bool (*save_active)(void *opaque);
    int (*save_iterate)(Channel *f, void *opaque, Error **errp);
    bool (*save_complete)(Channel *f, void *opaque, Error **errp);
    /* Bytes still to send if the machine stopped now. */
    uint64_t (*save_pending)(void *opaque);
    void (*save_cleanup)(void *opaque);
    /* Load side: called with each START, PART and END body. */
    bool (*load_setup)(void *opaque, Error **errp);
    bool (*load_state)(Channel *f, void *opaque, int version_id, Error **errp);
    void (*load_cleanup)(void *opaque);
};

struct section_registry;

/* machine names the machine type, carried in the configuration section
 * and checked by the loader. */
struct section_registry *section_registry_new(const char *machine);
void section_registry_free(struct section_registry *reg);

/* instance_id < 0 picks the next free instance for idstr.  Returns the
 * instance id used, or -1 with errp (duplicate idstr/instance). */
int section_register_vmsd(struct section_registry *reg, const char *idstr,
                          int instance_id, const struct vmstate_desc *desc,
                          void *opaque, Error **errp);
int section_register_live(struct section_registry *reg, const char *idstr,
                          int instance_id, int version_id,
                          const struct live_handler_ops *ops, void *opaque,
                          Error **errp);
void section_unregister(struct section_registry *reg, const char *idstr,
                        int instance_id);

/* Walk the registered table-described devices (for schema dumps and
 * `info qtree`-style listings). */
typedef void (*section_visit_fn)(const char *idstr, int instance_id,
                                 const struct vmstate_desc *desc, void *opaque,
                                 void *ctx);
void section_foreach_vmsd(const struct section_registry *reg,
                          section_visit_fn fn, void *ctx);
const char *section_registry_machine(const struct section_registry *reg);
/* The machine's UUID (NULL: none).  With validate on, the stream carries
 * it (configuration/uuid) and a loader with a UUID of its own refuses a
 * stream from another machine. */
void section_registry_set_uuid(struct section_registry *reg,
                               const uint8_t uuid[16]);
void section_registry_validate_uuid(struct section_registry *reg, bool on);
/* x-ignore-shared: the configuration asks the destination to agree (a
 * save), or a load requires the stream to (a destination with the
 * capability on); off unless set before each save or load. */
void section_registry_ignore_shared(struct section_registry *reg, bool on);
/* The return path (migration/return-path.h): a save sends
 * OPEN_RETURN_PATH and PING 1 after the configuration; off unless set
 * before each save. */
void section_registry_return_path(struct section_registry *reg, bool on);
/* postcopy-ram: a save sends POSTCOPY_ADVISE with this body (16 bytes)
 * after the configuration and the return path's commands; NULL: none.
 * Off unless set before each save. */
void section_registry_postcopy(struct section_registry *reg,
                               const uint8_t advise[16]);
/* mapped-ram: a save announces it in the configuration; a load takes it
 * from the stream (the file's layout says what it is), and the RAM
 * section asks with section_registry_get_mapped_ram. */
void section_registry_mapped_ram(struct section_registry *reg, bool on);
bool section_registry_get_mapped_ram(const struct section_registry *reg);
/* Copies the machine's UUID to out; false if it has none. */
bool section_registry_uuid(const struct section_registry *reg, uint8_t out[16]);

/* ---- Saving ---- */

/* Header, configuration and the START section of every live handler. */
bool stream_save_setup(struct section_registry *reg, Channel *f, Error **errp);
/* stream_save_setup in two steps: the header (magic, version) alone, so a
 * migration can send it the moment it connects, then the configuration
 * and the setup sections. */
void stream_save_header(Channel *f);
bool stream_save_setup_sections(struct section_registry *reg, Channel *f,
                                Error **errp);
/* One PART section per live handler that still has data.  Returns 1 when
 * every handler reports it is done for now, 0 if more remains, -1 on
 * error. */
int stream_save_iterate(struct section_registry *reg, Channel *f, Error **errp);
uint64_t stream_save_pending(struct section_registry *reg);
/* With the machine stopped: END sections, every device's FULL section,
 * EOF and the vmdesc JSON; flushes the channel. */
bool stream_save_complete(struct section_registry *reg, Channel *f,
                          Error **errp);
/* stream_save_complete in two steps: the END sections, then every
 * device's FULL section, EOF and vmdesc (flushed).  A background snapshot
 * takes the devices first, into a buffer that goes last. */
bool stream_save_complete_live(struct section_registry *reg, Channel *f,
                               Error **errp);
bool stream_save_devices(struct section_registry *reg, Channel *f,
                         Error **errp);
/* Postcopy: every device's FULL section alone (for the PACKAGED blob),
 * and at the end the END sections and EOF (no vmdesc), flushed. */
bool stream_save_device_sections(struct section_registry *reg, Channel *f,
                                 Error **errp);
bool stream_save_complete_postcopy(struct section_registry *reg, Channel *f,
                                   Error **errp);
/* One COMMAND record: u8 0x08, be16 cmd, be16 len, the data. */
void stream_put_command(Channel *f, uint16_t cmd, const uint8_t *data,
                        uint16_t len);
void stream_save_cleanup(struct section_registry *reg);
/* Offline save of everything: setup + complete + cleanup. */
bool stream_save_all(struct section_registry *reg, Channel *f, Error **errp);

/* ---- Loading ---- */

struct stream_load_opts {
    /* Handles a COMMAND record; NULL rejects every command.  PACKAGED is
     * the loader's own: its blob's records are loaded in place. */
    bool (*command)(void *ctx, uint16_t cmd, const uint8_t *data, uint16_t len,
                    Error **errp);
    void *command_ctx;
    /* Accept a stream that ends at EOF without vmdesc (postcopy, or a
     * writer with vmdesc suppressed). */
    bool vmdesc_optional;
    /* The stream ends at EOF, with no vmdesc to look for (postcopy: the
     * source waits for the destination's word before it closes). */
    bool no_vmdesc;
    /* Filled with the vmdesc JSON text if non-NULL (caller frees). */
    char **vmdesc_out;
    /* Postcopy recovery: the stream broke (why says how; the channel
     * latched an error); returns the channel to go on with, a new one
     * that starts at a record, or NULL to fail.  The dead channel is
     * the callback's to close.  NULL: a broken stream fails. */
    Channel *(*recover)(void *ctx, Channel *dead, const char *why);
};

/* A stream's header: magic, version and the configuration record. */
struct stream_header {
    char machine[256]; /* the machine type, NUL-terminated */
    bool has_uuid;     /* the configuration carried a UUID */
    uint8_t uuid[16];
    bool ignore_shared; /* it asked for x-ignore-shared */
    bool mapped_ram;    /* RAM at fixed file offsets (mapped-ram) */
};
/* Reads and checks the header alone, for a caller that must refuse
 * another machine's state before it changes anything (loadvm reverts
 * disks first); stream_load reads it the same way. */
bool stream_load_header(Channel *f, struct stream_header *h, Error **errp);
/* Load a whole stream into the registered state.  Errors say which
 * section, field and offset; nothing is loaded past the first error. */
bool stream_load(struct section_registry *reg, Channel *f,
                 const struct stream_load_opts *opts, Error **errp);

/* The schema of every registered device in QEMU's -dump-vmstate layout. */
json_t *stream_schema_json(const struct section_registry *reg);
/* Writes stream_schema_json() to path. */
bool stream_dump_schema(const struct section_registry *reg, const char *path,
                        Error **errp);

#endif
