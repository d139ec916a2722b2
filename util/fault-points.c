/* Every fault-injection point (util/fault.h), with the operations that
 * pass through it.  `hop fault-points` prints this table; the fault
 * matrix test (tests/bats/fault-matrix.bats) runs each operation through
 * each of its points. */
#include "util/fault.h"

#include <stddef.h>

const struct fault_point fault_points[] = {
    /* qcow2: every write, and the ordered steps of a metadata update. */
    { "qcow2-write", true, "savevm delvm img-snapshot convert",
      "a write to a qcow2 file (data or metadata)" },
    { "qcow2-before-data", true, "savevm convert",
      "guest data about to go to newly allocated clusters" },
    { "qcow2-refblocks", true, "savevm delvm img-snapshot convert",
      "refcount blocks written, the table not yet" },
    { "qcow2-reftable", true, "savevm convert",
      "a grown refcount table written, the header not yet" },
    { "qcow2-reftable-header", false, "savevm convert",
      "the header points at the grown refcount table" },
    { "qcow2-flush-refcounts", true, "savevm convert",
      "refcount increments durable, L2 tables not yet written" },
    { "qcow2-flush-l2", true, "savevm convert",
      "L2 tables written, the L1 table not yet" },
    { "qcow2-flush-l1-table", true, "savevm convert",
      "a moved L1 table written, the header not yet" },
    { "qcow2-flush-l1", true, "savevm convert",
      "L1 entries written, freed clusters not yet released" },
    { "qcow2-flush-done", false, "savevm convert", "a metadata flush done" },
    { "snapshot-tables", true, "savevm delvm loadvm img-snapshot",
      "a new snapshot table, L1 and refcounts written, the header not yet" },
    { "snapshot-header", false, "savevm delvm loadvm img-snapshot",
      "the header switched to the new snapshot table" },
    /* savevm's steps, machine stopped. */
    { "savevm-stopped", true, "savevm", "the machine stopped, no state written" },
    { "savevm-state", true, "savevm", "a part of the machine state written" },
    { "savevm-state-written", true, "savevm",
      "the whole machine state written, no snapshot taken" },
    { "savevm-old-deleted", true, "savevm",
      "an earlier snapshot of the same name deleted" },
    { "savevm-snapshot", true, "savevm", "one drive's snapshot taken" },
    { "savevm-durable", false, "savevm", "every drive's snapshot durable" },
    { "savevm-catalog", false, "savevm", "the catalog updated" },
    /* loadvm's steps. */
    { "loadvm-reverted", true, "loadvm",
      "the drives reverted, the machine state not yet loaded" },
    { NULL }
};
