/* Every fault-injection point (util/fault.h), with the operations that
 * pass through it.  `hop fault-points` prints this table; the fault
 * matrix test (tests/bats/fault-matrix.bats) runs each operation through
 * each of its points.  "qcow2-vmstate" is the block layer's own workload
 * in tests/unit/test_qcow2_crash.c (machine state written past the L1
 * table's reach with a flush after each piece), the one path that moves
 * the L1 and refcount tables in a metadata flush. */
#include "util/fault.h"

#include <stddef.h>

const struct fault_point fault_points[] = {
    /* qcow2: every write, and the ordered steps of a metadata update. */
    { "qcow2-write", true,
      "savevm savevm-bg delvm img-snapshot convert qcow2-vmstate",
      "a write to a qcow2 file (data or metadata)" },
    { "qcow2-before-data", true, "savevm savevm-bg convert qcow2-vmstate",
      "guest data about to go to newly allocated clusters" },
    { "qcow2-refblocks", true,
      "savevm savevm-bg delvm img-snapshot convert qcow2-vmstate",
      "refcount blocks written, the table not yet" },
    { "qcow2-reftable", true, "savevm savevm-bg convert qcow2-vmstate",
      "a grown refcount table written, the header not yet" },
    { "qcow2-reftable-header", false, "qcow2-vmstate",
      "the header points at the grown refcount table" },
    { "qcow2-flush-refcounts", true, "savevm savevm-bg convert qcow2-vmstate",
      "refcount increments durable, L2 tables not yet written" },
    { "qcow2-flush-l2", true, "savevm savevm-bg convert qcow2-vmstate",
      "L2 tables written, the L1 table not yet" },
    { "qcow2-flush-l1-table", true, "qcow2-vmstate",
      "a moved L1 table written, the header not yet" },
    { "qcow2-flush-l1", true, "savevm savevm-bg convert qcow2-vmstate",
      "L1 entries written, freed clusters not yet released" },
    { "qcow2-flush-done", false, "savevm savevm-bg convert qcow2-vmstate",
      "a metadata flush done" },
    { "snapshot-tables", true,
      "savevm savevm-bg delvm loadvm img-snapshot qcow2-vmstate",
      "a new snapshot table, L1 and refcounts written, the header not yet" },
    { "snapshot-header", false,
      "savevm savevm-bg delvm loadvm img-snapshot qcow2-vmstate",
      "the header switched to the new snapshot table" },
    /* savevm's steps, machine stopped. */
    { "savevm-stopped", true, "savevm savevm-bg",
      "the machine stopped, no state written" },
    { "savevm-disks-kept", true, "savevm-bg",
      "background savevm: every disk kept as it is, no state written" },
    { "savevm-state", true, "savevm savevm-bg",
      "a part of the machine state written" },
    { "savevm-state-written", true, "savevm savevm-bg",
      "the whole machine state written, no snapshot taken" },
    { "savevm-old-deleted", true, "savevm",
      "an earlier snapshot of the same name deleted" },
    { "savevm-snapshot", true, "savevm savevm-bg",
      "one drive's snapshot taken" },
    { "savevm-durable", false, "savevm savevm-bg",
      "every drive's snapshot durable" },
    { "savevm-catalog", false, "savevm savevm-bg", "the catalog updated" },
    /* loadvm's steps. */
    { "loadvm-reverted", true, "loadvm",
      "the drives reverted, the machine state not yet loaded" },
    /* Migration, on the source. */
    { "migration-setup", true, "migrate",
      "the stream's header and RAM block list sent" },
    { "migration-iterate", true, "migrate", "a pass of RAM pages sent" },
    { "migration-switchover", true, "migrate",
      "the source stopped for the switch, device state not yet sent" },
    { "migration-inactivated", true, "migrate",
      "the source's drives handed over (inactive), device state not yet sent" },
    { "migration-released", true, "release-ram",
      "release-ram: RAM partly sent and freed on the source, the rest not" },
    { "migration-complete", false, "migrate",
      "the whole stream sent and closed, not yet reported complete" },
    /* Loading a stream: an incoming migration, loadvm. */
    { "load-section", true, "incoming loadvm",
      "a section's body about to be loaded" },
    { NULL }
};
