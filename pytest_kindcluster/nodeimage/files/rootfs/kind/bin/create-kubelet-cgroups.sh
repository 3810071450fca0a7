#!/bin/bash
# ExecStartPre of kubelet.service (drop-in 11-kind.conf): makes sure that the
# cgroup named by KubeletConfiguration.cgroupRoot (/kubelet; kubelet.slice
# under the systemd cgroup driver) exists, with every controller, before the
# kubelet starts. The kubelet refuses to start without it.
set -o errexit -o nounset -o pipefail

readonly CGROUP_ROOT=/sys/fs/cgroup

log() { printf 'create-kubelet-cgroups: %s\n' "$*" >&2; }

# cgroup v2: enables in <dir>/cgroup.subtree_control every controller that
# <dir> has, one at a time so that one refusal does not block the others.
enable_controllers() {
  local dir=$1 controller
  for controller in $(<"${dir}/cgroup.controllers"); do
    grep -qw -- "$controller" "${dir}/cgroup.subtree_control" && continue
    echo "+${controller}" >"${dir}/cgroup.subtree_control" ||
      log "cannot enable ${controller} below ${dir}"
  done
}

setup_v2() {
  # "No internal processes": controllers can only be handed to the children of
  # a cgroup that holds no processes itself. The entrypoint cannot do this, it
  # runs in the root cgroup; by now systemd has moved everything to
  # /init.scope and the system/user slices.
  if [[ -n $(<"${CGROUP_ROOT}/cgroup.procs") ]]; then
    log "the root cgroup still holds processes; cannot enable its controllers"
    exit 1
  fi
  # systemd enables only the controllers it uses (hugetlb, for one, is
  # missing); the kubelet wants all of them below its root.
  enable_controllers "$CGROUP_ROOT"
  mkdir -p "${CGROUP_ROOT}/kubelet"
  enable_controllers "${CGROUP_ROOT}/kubelet"
}

setup_v1() {
  # The entrypoint already created (and pinned) these in every hierarchy that
  # Docker mounted. Check again: a hierarchy that systemd mounted itself after
  # the entrypoint ran (name=systemd on hosts without systemd, kind issue 2323)
  # does not have them yet.
  local mount_point name dir
  while read -r mount_point; do
    for name in kubelet kubelet.slice; do
      dir="${mount_point}/${name}"
      [[ -d $dir ]] && continue
      mkdir -p "$dir"
      if [[ -f ${mount_point}/cpuset.cpus ]]; then
        cat "${mount_point}/cpuset.cpus" >"${dir}/cpuset.cpus"
        cat "${mount_point}/cpuset.mems" >"${dir}/cpuset.mems"
      fi
      log "created ${dir}"
    done
  done < <(awk -v root="$CGROUP_ROOT" '{
    for (i = 7; i <= NF && $i != "-"; i++) {}
    # Hierarchies only: /sys/fs/cgroup/<name>, not the pinned bind mounts
    # (/sys/fs/cgroup/<name>/kubelet) below them.
    if ($(i + 1) == "cgroup" && index($5, root "/") == 1 && substr($5, length(root) + 2) !~ /\//) print $5
  }' /proc/self/mountinfo)
}

if [[ -f ${CGROUP_ROOT}/cgroup.controllers ]]; then
  setup_v2
else
  setup_v1
fi
