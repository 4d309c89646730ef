#!/bin/busybox sh
# PID 1 of the systemd variant of the test guest (scripts/qemu-test.sh
# --systemd), for a moment: it completes the root file system the initramfs
# could not hold (busybox applets, empty machine-id) and hands PID 1 over to
# systemd, which boots qemu-test.target: a broker, a simulated binder, the
# afb-edge.service unit of this project as installed, and the verdict unit.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root /sbin /usr/bin /usr/sbin /var/lib /var/cache /var/log
/bin/busybox --install -s
# No machine-id: systemd makes a transient one (the image is never written back).
: >/etc/machine-id
exec /lib/systemd/systemd --unit=qemu-test.target --log-level=notice --show-status=false
