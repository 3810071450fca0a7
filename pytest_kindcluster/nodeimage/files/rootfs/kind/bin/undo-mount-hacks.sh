#!/bin/bash
# ExecStart of undo-mount-hacks.service: removes the filtered /proc/cgroups
# that the entrypoint mounts on cgroup v1 hosts (see hide_unmounted_misc
# there). systemd has read it by now; containerd, runc and the kubelet (and
# cAdvisor in it) should see the real, live file.
set -o errexit -o nounset -o pipefail

if mountpoint -q /proc/cgroups; then
  umount /proc/cgroups
  echo 'undo-mount-hacks: restored /proc/cgroups' >&2
fi
