#include "ram/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int uffd_open(const char *who, Error **errp)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) {
        return fd;
    }
    int err = errno;
#ifdef USERFAULTFD_IOC_NEW
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        close(dev);
        if (fd >= 0) {
            return fd;
        }
    }
#endif
    error_setg(errp,
               "%s: userfaultfd is not available to this process (%s; it "
               "needs vm.unprivileged_userfaultfd=1, CAP_SYS_PTRACE or "
               "access to /dev/userfaultfd)",
               who, strerror(err));
    return -1;
}
