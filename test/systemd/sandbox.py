#!/usr/bin/python3
"""Runs a command under the sandbox that afb-edge.service declares, as far
as it can be reproduced without systemd as PID 1 (CI and this test run in a
container): the unit's own SystemCallFilter= lines (expanded with
`systemd-analyze syscall-filter`, so the sets are systemd's own),
SystemCallErrorNumber=, SystemCallArchitectures=native and
RestrictAddressFamilies=, applied with libseccomp, as an unprivileged user
(DynamicUser=) without supplementary groups.

Usage: sandbox.py UNIT_FILE UID GID -- COMMAND ARGS...
       sandbox.py --list UNIT_FILE   (prints the allowed system calls and
                                      address families as JSON)

The caller adds the namespaces (unshare: /proc with subset=pid and
hidepid=invisible, a read-only root): see sandbox.test.ts.
Needs python3-seccomp (Debian package), hence /usr/bin/python3.
"""
import errno
import json
import os
import socket
import subprocess
import sys

import seccomp


def unit_values(path, key):
    values = []
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if line.startswith('['):
                section = line
            elif section == '[Service]' and line.startswith(key + '='):
                values.append(line[len(key) + 1:])
    return values


def expand(name, seen=None):
    """Names of a set, nested sets included, as systemd-analyze lists them."""
    seen = set() if seen is None else seen
    if not name.startswith('@'):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(['systemd-analyze', 'syscall-filter', name], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith('#'):
            continue
        names |= expand(item, seen)
    return names


def allowed_syscalls(unit):
    allowed = None
    for value in unit_values(unit, 'SystemCallFilter'):
        deny = value.startswith('~')
        names = set()
        for item in value.lstrip('~').split():
            names |= expand(item)
        if allowed is None:
            if deny:
                sys.exit('sandbox.py: a deny-list filter is not what the unit should have')
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    if allowed is None:
        sys.exit('sandbox.py: the unit has no SystemCallFilter=')
    return allowed


def main():
    if sys.argv[1] == '--list':
        unit = sys.argv[2]
        print(json.dumps({'syscalls': sorted(allowed_syscalls(unit)),
                          'families': ' '.join(unit_values(unit, 'RestrictAddressFamilies')).split()}))
        return
    unit, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    command = sys.argv[sys.argv.index('--') + 1:]
    allowed = allowed_syscalls(unit)
    errno_name = (unit_values(unit, 'SystemCallErrorNumber') or ['EPERM'])[-1]
    families = ' '.join(unit_values(unit, 'RestrictAddressFamilies')).split()

    # What seccomp refuses gets the unit's errno, as with SystemCallErrorNumber=
    # (without it, systemd kills the process: SIGSYS).
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(getattr(errno, errno_name)))
    for name in sorted(allowed - {'socket'}):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError):
            pass  # not a system call on this architecture (arm_fadvise64_64...): systemd skips it too
    # RestrictAddressFamilies=: socket() only for the listed families.
    for fam in families:
        f.add_rule(seccomp.ALLOW, 'socket', seccomp.Arg(0, seccomp.EQ, getattr(socket, fam)))

    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    f.load()  # sets no_new_privs first, as NoNewPrivileges=yes
    os.execvp(command[0], command)


if __name__ == '__main__':
    main()
