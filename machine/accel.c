/* The accelerator table: what `-accel NAME` may name. */
#include <string.h>

#include "machine/accel.h"

static const struct accel_ops *const accels[] = {
    &accel_emu_ops,
    &accel_kvm_ops,
};

const struct accel_ops *accel_find(const char *name)
{
    for (size_t i = 0; i < sizeof(accels) / sizeof(accels[0]); i++)
        if (name && strcmp(accels[i]->name, name) == 0)
            return accels[i];
    return NULL;
}

const char *accel_name(int i)
{
    return i >= 0 && (size_t)i < sizeof(accels) / sizeof(accels[0])
        ? accels[i]->name
        : NULL;
}
