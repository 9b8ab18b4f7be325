"""Service files for `aios daemon`: the systemd unit (`aios daemon --print-service systemd`).

`systemd_unit(exe, config)` returns the text of aios-reconciler.service. The
daemon's start-up needs nothing from systemd (no sd_notify, no socket
activation, no watchdog), so the same `aios daemon` runs under any other
supervisor (aiOS starts it the way it starts its agents); the unit only adds
restart, reload and the hardening below.

The hardening is chosen for a service whose process tree manages the whole
machine as root — links, addresses, routes, sysctls, nftables, packages,
mounts, swap, loop devices, model files — and that may start a sandbox (new
network, mount and PID namespaces, `unshare`, `nsenter`, the package jail's
pivot_root). Two consequences shape it; the unit's own comments give the reason
for every directive:

- No directive that gives the service a mount namespace of its own
  (PrivateTmp=, ProtectHome=, ProtectSystem=, ReadWritePaths=,
  ProtectKernelTunables=/Modules=/Logs=, ProtectControlGroups=,
  PrivateDevices=, ProtectProc=, …). systemd.exec(5): those "disconnect
  propagation of mounts from the unit's processes to the host … may not be
  used for services which shall be able to install mount points in the main
  mount namespace" — a Storage resource would be mounted in the daemon's
  private view only, and observed there as converged while the host never
  sees it. Where such a directive also drops capabilities or system calls,
  that part is kept by hand (CapabilityBoundingSet=, SystemCallFilter=).
- No ProtectClock=: it implies DeviceAllow=char-rtc, and on systemd releases
  before the fix of systemd#18142 (PR #25075) an allow-list of one device
  denies every other one (loop devices, block devices, /dev/net/tun). Its
  effect is kept the way systemd's own udev unit emulates it: CAP_SYS_TIME and
  CAP_WAKE_ALARM are not in the bounding set and @clock is filtered.

Tried here: `systemd-analyze verify` accepts the unit without a warning
(tests/system/test_systemd_unit.py). Not tried — this machine boots no
systemd, so no directive has been seen in effect on a running service: each
is named in the unit's comments as "(untried)".
"""

from __future__ import annotations

import re

UNIT_NAME = "aios-reconciler.service"
DEFAULT_CONFIG = "/etc/aios/reconciler.yaml"

# Capabilities the process tree keeps, with the reason for each; everything else
# (CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PTRACE, CAP_SYS_TIME, CAP_SYS_BOOT,
# CAP_SYSLOG, CAP_WAKE_ALARM, CAP_BPF, CAP_PERFMON, CAP_MAC_*, CAP_AUDIT_CONTROL,
# CAP_DAC_READ_SEARCH, CAP_LINUX_IMMUTABLE, CAP_SYS_RESOURCE, CAP_SYS_NICE,
# CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_LEASE, …) is dropped from the bounding set.
CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("CAP_NET_ADMIN", "links, addresses, routes, rules, per-netns sysctls, nftables"),
    ("CAP_NET_RAW", "raw and packet sockets: reachability probes, neighbour checks"),
    ("CAP_NET_BIND_SERVICE", "a metrics port below 1024; kept by the package jail"),
    (
        "CAP_SYS_ADMIN",
        "mount, umount, swapon, loop devices, namespaces (sandbox, package jail: "
        "unshare, setns, pivot_root, open_tree)",
    ),
    ("CAP_CHOWN", "dpkg unpacking files of other owners; the API socket's group"),
    ("CAP_DAC_OVERRIDE", "dpkg, fs before-images and model files regardless of modes"),
    ("CAP_FOWNER", "chmod/utime of files root does not own (dpkg, fs tools)"),
    ("CAP_FSETID", "dpkg keeping setuid/setgid bits of the files it installs"),
    ("CAP_SETUID", "apt dropping to _apt for downloads; maintainer scripts (runuser)"),
    ("CAP_SETGID", "the same, for groups"),
    ("CAP_SETFCAP", "maintainer scripts running setcap (e.g. iputils-ping)"),
    ("CAP_SETPCAP", "the package jail's setpriv dropping its bounding set"),
    ("CAP_SYS_CHROOT", "maintainer scripts that chroot; kept by the package jail"),
    ("CAP_KILL", "stopping processes of other users (maintainer scripts, sandboxes)"),
    ("CAP_MKNOD", "packages that ship device nodes"),
    ("CAP_AUDIT_WRITE", "PAM in maintainer scripts (su, runuser) writes audit records"),
)

# System call groups denied (EPERM, not a kill): what ProtectKernelModules=,
# ProtectClock= and friends would filter, without their mount namespace.
DENIED_SYSCALLS = (
    "@clock",
    "@cpu-emulation",
    "@debug",
    "@module",
    "@obsolete",
    "@raw-io",
    "@reboot",
)

ADDRESS_FAMILIES = ("AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET")

_UNSAFE = re.compile(r"[\s;]")


def systemd_unit(exe: str, config: str = DEFAULT_CONFIG) -> str:
    """The systemd unit running `<exe> daemon` with configuration file `config`.

    `exe` is the absolute path of the `aios` command (e.g. /usr/local/bin/aios or
    a virtualenv's bin/aios). Raises ValueError for a relative path, one holding
    a control character, and an `exe` holding a quote or a backslash (systemd
    refuses those in an executable's name: "contains special characters") or
    "$" (systemd takes the executable's path literally but expands variables in
    the words after it, so no escaping of "$" means the same everywhere).
    """
    for what, path in (("exe", exe), ("config", config)):
        if not path.startswith("/"):
            raise ValueError(f"{what} must be an absolute path, got {path!r}")
        if any(ord(c) < 32 or ord(c) == 127 for c in path):
            raise ValueError(f"{what} must not hold a control character: {path!r}")
    if any(c in exe for c in "$\\\"'"):
        raise ValueError(f"exe must not hold $, a quote or a backslash: {exe!r}")
    caps = "\n".join(f"#   {name}: {why}" for name, why in CAPABILITIES)
    return _TEMPLATE.format(
        exec_start=f"{_exec_word(exe)} daemon",
        environment=_env_assignment("AIOS_CONFIG", config),
        cap_comments=caps,
        caps=" ".join(name for name, _ in CAPABILITIES),
        syscalls=" ".join(DENIED_SYSCALLS),
        families=" ".join(ADDRESS_FAMILIES),
    )


def _exec_word(path: str) -> str:
    """The executable word of an Exec*= line: specifiers (%) escaped, double-quoted
    when it holds white space or a semicolon (quotes and backslashes are refused)."""
    word = path.replace("%", "%%")
    return f'"{word}"' if _UNSAFE.search(word) else word


def _env_assignment(name: str, value: str) -> str:
    """An Environment= value (one quoted assignment; no $ expansion happens there)."""
    text = f"{name}={value}".replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


_TEMPLATE = """\
# aios-reconciler.service: `aios daemon` keeps this machine converged to its specs.
# Generated by `aios daemon --print-service systemd` (reconciler/daemon/service.py).
#
# Checked with `systemd-analyze verify`. The machine it was written on boots no
# systemd, so no directive was seen in effect on a running service ("untried").

[Unit]
Description=aios reconciler: converge this machine to /etc/aios/specs
# Started after network-pre.target (where firewall loaders run), not waiting for
# network-online: the registry and package downloads are retried with backoff.
Wants=network-pre.target
After=network-pre.target
# A daemon that keeps failing (e.g. a broken configuration) stops being
# restarted after 5 failures in 2 minutes instead of spinning. (untried)
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
# exec: started once the binary runs. No sd_notify: the daemon must run the same
# under any supervisor (aiOS starts it like its agents). (untried)
Type=exec
ExecStart={exec_start}
# SIGHUP reloads the configuration. (untried)
ExecReload=/bin/kill -HUP $MAINPID
Environment={environment}
# The warm CLI helper is for short commands; the daemon must be this unit's main
# process so SIGTERM and SIGHUP reach it directly.
Environment=AIOS_WARM=0
SyslogIdentifier=aios-reconciler
Restart=on-failure
RestartSec=2s
# SIGTERM: the daemon finishes the step in flight, starts nothing new and exits
# within 5 s. mixed: only the daemon gets SIGTERM (a package install or mount
# it started is finished, not killed midway); whatever is left gets SIGKILL
# after TimeoutStopSec. (untried)
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=10

# /run/aios is shared with the tool registry (tools.sock) and the AI runtime
# (runtime.sock): created 0755 here but never removed on stop (Preserve=yes);
# the daemon removes its own socket (reconciler.sock, 0600 or 0660 with
# apiGroup). (untried)
RuntimeDirectory=aios
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
# /var/lib/aios/reconciler: the store, journal and history; 0700. (untried)
StateDirectory=aios/reconciler
StateDirectoryMode=0700

# --- hardening: what is kept, and what is left out on purpose --------------------
# It runs as root and changes the machine, so the protections below are the ones
# that take nothing it needs. (all untried)
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
# A UTS namespace, and hostname changes denied. By systemd's sources it sets up
# no mount namespace by itself (exec_needs_mount_namespace does not list it); if
# a release did, mounts would stop reaching the host: drop this line then.
ProtectHostname=yes
# Capabilities kept (everything else is dropped from the bounding set):
{cap_comments}
CapabilityBoundingSet={caps}
AmbientCapabilities=
# What ProtectKernelModules= and ProtectClock= would filter, without their side
# effects (see below), and more: module loading, clock setting, ptrace and perf,
# reboot/kexec, ioperm/iopl, obsolete and CPU-emulation calls.
# Denied calls fail with EPERM (not SIGSYS). Kernel module autoloading on behalf
# of nft or `ip link add` still works: the kernel runs modprobe itself.
SystemCallFilter=~{syscalls}
SystemCallErrorNumber=EPERM
# unix (API, registry), inet/inet6 (registry over TCP, metrics, apt), netlink
# (ip, nft, the change feed), packet (probes).
RestrictAddressFamilies={families}
#
# Left out on purpose:
# - ProtectSystem= (any level): packages install into /usr, /etc and /boot.
# - PrivateTmp=, ProtectHome=, ReadWritePaths=/ReadOnlyPaths=, PrivateDevices=,
#   ProtectKernelTunables=, ProtectKernelModules=, ProtectKernelLogs=,
#   ProtectControlGroups=, ProtectProc=, PrivateMounts=: each gives the service
#   its own mount namespace, which disconnects mount propagation to the host
#   (systemd.exec(5)): Storage resources would be mounted only in the daemon's
#   view. ProtectKernelTunables= would also make /proc/sys read-only (sysctls),
#   ProtectKernelModules= /usr/lib/modules inaccessible (kernel packages),
#   PrivateDevices= hide loop and block devices. ReadWritePaths= is not needed:
#   nothing is read-only.
# - ProtectClock=: implies DeviceAllow=char-rtc, which on older systemd denies
#   every other device (systemd#18142); emulated above.
# - RestrictSUIDSGID=: dpkg must install setuid/setgid files (passwd, sudo, …).
# - RestrictNamespaces=: sandboxes, the package jail and nft's ruleset check
#   create network, mount, PID, IPC, UTS and user namespaces.
# - MemoryDenyWriteExecute=: ctypes callbacks (libffi closures) need W+X pages.
# - SystemCallArchitectures=native: would break foreign-architecture (multiarch)
#   programs run by maintainer scripts.
# - PrivateNetwork=, IPAddressDeny=, User=/DynamicUser=: it manages the host's
#   network as root.
# - DevicePolicy=/DeviceAllow=: storage needs /dev/loop-control and any block device.

[Install]
WantedBy=multi-user.target
"""
