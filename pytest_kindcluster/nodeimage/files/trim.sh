#!/bin/bash
# Usage: trim.sh ROOTFS_DIR
#
# Trims a Debian rootfs (debootstrap --variant=minbase, with systemd) into the
# root file system of a node image, after files/rootfs/ has been copied over
# it. Runs on the build host, as root, and touches nothing outside ROOTFS_DIR.
# It can be run again on the same tree: every step converges.
#
# What and why: docs/node-contract.md#boot-entrypoint-and-systemd. In short,
# systemd boots in the container with only the units a node needs: the
# default .wants links are dropped, units that cannot work in a container are
# masked, and containerd, the kubelet and undo-mount-hacks are enabled.
set -o errexit -o nounset -o pipefail

log() { printf 'trim.sh: %s\n' "$*" >&2; }
die() {
  printf 'trim.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

(($# == 1)) || die "usage: trim.sh ROOTFS_DIR"
[[ -d $1 ]] || die "not a directory: $1"
ROOT=$(cd -- "$1" && pwd -P)
[[ $ROOT != / ]] || die "refusing to trim the host's root file system"
readonly ROOT

# Fails unless every given path (relative to ROOT) exists, or is a symlink.
require() {
  local path
  for path in "$@"; do
    [[ -e ${ROOT}/${path} || -L ${ROOT}/${path} ]] || die "missing in rootfs: /${path}"
  done
}

readonly VENDOR_UNITS=usr/lib/systemd/system
readonly ADMIN_UNITS=etc/systemd/system
readonly CNI_PLUGINS=(bridge host-local loopback portmap ptp)
readonly ENABLED_UNITS=(containerd.service kubelet.service undo-mount-hacks.service)

require etc/debian_version "$VENDOR_UNITS" "$ADMIN_UNITS" usr/lib/systemd/systemd usr/sbin/init \
  usr/local/bin/entrypoint kind/bin/create-kubelet-cgroups.sh kind/bin/undo-mount-hacks.sh \
  etc/containerd/config.toml "${ADMIN_UNITS}/kubelet.slice" \
  "${ADMIN_UNITS}/kubelet.service.d/10-kubeadm.conf" "${ADMIN_UNITS}/kubelet.service.d/11-kind.conf"
for unit in "${ENABLED_UNITS[@]}"; do
  require "${ADMIN_UNITS}/${unit}"
done
for plugin in "${CNI_PLUGINS[@]}"; do
  require "usr/lib/cni/${plugin}"
done

# Our scripts must be executable whatever the packaging did to their modes.
chmod 0755 "${ROOT}/usr/local/bin/entrypoint" "${ROOT}"/kind/bin/*.sh

# --- systemd units ---------------------------------------------------------------

# Removes the symlinks (never their targets) inside the given .wants dirs.
clear_wants() {
  local dir
  for dir in "$@"; do
    [[ -d $dir ]] || continue
    find "$dir" -mindepth 1 -maxdepth 1 -type l -delete
  done
}

# Default wants of the targets a node reaches: logind, getty, dbus.service
# (dbus.socket stays and starts it on demand), tmp.mount and run-lock.mount
# (Docker already mounts a tmpfs on /tmp and /run), ...
clear_wants "${ROOT}/${VENDOR_UNITS}"/{multi-user,basic,local-fs}.target.wants
# Everything Debian's packages enabled: apt/dpkg/e2scrub/fstrim timers,
# getty@tty1, remote-fs.target, systemd-pstore, ...
clear_wants "${ROOT}/${ADMIN_UNITS}"/*.wants
# systemd-tmpfiles-setup: the Debian tmpfiles.d rules expect a real machine,
# and the node needs none of them (as in kind).
rm -f "${ROOT}/${VENDOR_UNITS}/sysinit.target.wants/systemd-tmpfiles-setup.service"
# No udev, no SysV initctl FIFO, no TPM, no system extension images.
rm -f "${ROOT}/${VENDOR_UNITS}"/sockets.target.wants/{*udev*,*initctl*,*pcr*,systemd-sysext.socket}

# Units that cannot or must not run in a node container. Masking (a symlink to
# /dev/null) keeps them off even if something else pulls them in.
MASKED_UNITS=(
  # binfmt_misc is global to the host kernel.
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
  # No device management and no kernel modules (the host's /lib/modules, if
  # any, is mounted read-only).
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-udev-settle.service systemd-modules-load.service
  # debugfs, tracefs and configfs are the host kernel's.
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
  # No logins on the container's console.
  getty.target getty-static.service console-getty.service serial-getty@.service
  # The image is configured and immutable: no first-boot questions, and no
  # "/etc or /var newer than /usr" updates (ldconfig, hwdb, journal catalog)
  # costing CPU at every node start.
  systemd-firstboot.service ldconfig.service systemd-hwdb-update.service
  systemd-journal-catalog-update.service systemd-update-done.service
)
for unit in "${MASKED_UNITS[@]}"; do
  ln -sfn /dev/null "${ROOT}/${ADMIN_UNITS}/${unit}"
  rm -f "${ROOT}/${VENDOR_UNITS}"/*.wants/"${unit}"
done

# Enable our units, as `systemctl enable` would (WantedBy=multi-user.target).
mkdir -p "${ROOT}/${ADMIN_UNITS}/multi-user.target.wants"
for unit in "${ENABLED_UNITS[@]}"; do
  ln -sfn "/${ADMIN_UNITS}/${unit}" "${ROOT}/${ADMIN_UNITS}/multi-user.target.wants/${unit}"
done
ln -sfn "/${VENDOR_UNITS}/multi-user.target" "${ROOT}/${ADMIN_UNITS}/default.target"
find "${ROOT}/${ADMIN_UNITS}" -mindepth 1 -maxdepth 1 -type d -name '*.wants' -empty -delete
log "systemd: default.target is multi-user.target; enabled ${ENABLED_UNITS[*]}; masked ${#MASKED_UNITS[@]} units"

# --- sysctl ------------------------------------------------------------------------

# A privileged node can write the host kernel's global sysctls, and
# systemd-sysctl would apply the distribution's defaults to the host at every
# node start (Debian: kernel.core_pattern, kernel.pid_max, ...). Mask every
# vendor sysctl.d file with a same-named /dev/null link in /etc/sysctl.d;
# files in /etc/sysctl.d (ours, from files/rootfs/) stay in effect.
mkdir -p "${ROOT}/etc/sysctl.d"
for file in "${ROOT}"/usr/lib/sysctl.d/*.conf; do
  [[ -e $file ]] || continue
  name=${file##*/}
  target="${ROOT}/etc/sysctl.d/${name}"
  [[ -e $target && ! -L $target ]] && die "/etc/sysctl.d/${name} would shadow /usr/lib/sysctl.d/${name}; rename it"
  ln -sfn /dev/null "$target"
done

# --- Kubernetes and CNI layout --------------------------------------------------

mkdir -p "${ROOT}/etc/kubernetes/manifests" "${ROOT}/etc/cni/net.d" "${ROOT}/opt/cni/bin"
# Debian installs the CNI plugins in /usr/lib/cni; containerd looks in
# /opt/cni/bin. Link the ones the default CNI uses, and keep whatever the
# builder may already have put there.
for plugin in "${CNI_PLUGINS[@]}"; do
  link="${ROOT}/opt/cni/bin/${plugin}"
  [[ -e $link || -L $link ]] || ln -s "../../../usr/lib/cni/${plugin}" "$link"
done
log "layout: /etc/kubernetes/manifests, /etc/cni/net.d, /opt/cni/bin (${CNI_PLUGINS[*]})"

# --- per-container identity --------------------------------------------------------

# Empty: the entrypoint writes a fresh machine-id in every container, and no
# node may inherit one from the build.
: >"${ROOT}/etc/machine-id"
rm -f "${ROOT}/var/lib/dbus/machine-id"
mkdir -p "${ROOT}/var/lib/dbus"
ln -s /etc/machine-id "${ROOT}/var/lib/dbus/machine-id"
rm -f "${ROOT}/kind/product_name" "${ROOT}/kind/product_uuid"

# --- size ----------------------------------------------------------------------------

rm -rf "${ROOT}"/var/cache/apt/archives/*.deb "${ROOT}"/var/cache/apt/archives/partial/* \
  "${ROOT}"/var/cache/apt/*.bin "${ROOT}"/var/lib/apt/lists/* \
  "${ROOT}"/var/cache/debconf/*-old "${ROOT}"/var/lib/dpkg/*-old \
  "${ROOT}"/var/log/apt/* "${ROOT}"/var/log/*.log \
  "${ROOT}"/usr/share/man/* "${ROOT}"/usr/share/info/* "${ROOT}"/usr/share/lintian/* \
  "${ROOT}"/tmp/* "${ROOT}"/var/tmp/*
# Documentation goes, except the copyright files (the image redistributes the
# packages). Translations go, except the alias table libc reads.
if [[ -d ${ROOT}/usr/share/doc ]]; then
  find "${ROOT}/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "${ROOT}/usr/share/doc" -mindepth 1 -type d -empty -delete
fi
if [[ -d ${ROOT}/usr/share/locale ]]; then
  find "${ROOT}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
fi
log "cleaned apt caches, logs, documentation and translations; $(du -sh --one-file-system "$ROOT" | cut -f1) left"
