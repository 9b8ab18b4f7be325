"""Storage drivers: block and loop devices (blockdev), mkfs/mount/umount under the root
and mounts read back (mounting), /etc/fstab (fstab) and the mount options' path mapping
(optionpaths; the allow-lists themselves are contract.vocab.fsoptions); the change feed's
storage watcher (monitor: /proc/self/mountinfo).

Used by the `storage.*` handlers (registry.handlers.storage, storage_mount, storage_swap).
"""
