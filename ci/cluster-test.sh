#!/usr/bin/env bash
# Proves the miniHPC cluster with real Slurm: builds ci/minihpc-amd64.yaml (the cluster
# recipe for x86-64: a head image and a compute image from one root), then boots a head
# and two compute nodes from those images — QEMU PCs on a private network: a bridge in a
# network namespace of its own — and checks from the host (in that namespace, at
# 192.168.5.1) that
#   - both nodes are idle in `sinfo`, and `srun -N2 hostname` returns both names;
#   - a job submitted by a learner from learners.csv (written to the head's boot
#     partition as after flashing) writes into her NFS home, read back on the head;
#   - an MPI hello runs across both nodes (2 ranks, 2 hostnames), and amdahl as a job;
#   - `sacct -u` lists her jobs; `module avail` lists the modules; she logs in to a node
#     from the head with no password;
#   - the munge key is the same on the three machines, and a second cluster booted from
#     the same images makes another one;
#   - from the learners' network (the head's second port, as its Wi-Fi on a board), the
#     head's landing page lists hpc-intro and serves its episodes; a node reaches that
#     network through the head's NAT (the far end has no route back to the cluster LAN).
#   ci/cluster-test.sh
# Needs root (network namespaces, the build's steps), QEMU, the Debian archive and PyPI.
# About 15 minutes on 2 cores (three emulated PCs, twice; the build from cached stages).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh >/dev/null
. ci/ensure-rust.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/imgbuild

work=$(mktemp -d /var/tmp/imgbuild-cluster.XXXXXX)
ns=imgbuild-cluster-$$
pids=()
# Stops every QEMU this test started (by their pid files) and the rest it ran.
kill_all() {
  local f
  for f in "$work"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
cleanup() {
  local rc=$?
  kill_all
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$ns-learner" 2>/dev/null || true
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "cluster-test: kept $work (serial logs: $work/*.log)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf 'cluster-test %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# The test's own key, written into each booted copy as root's (never into the images).
ssh-keygen -q -t ed25519 -N '' -f "$work/admin" -C cluster-test
# The stand-in for hpc-intro's site (*.github.io can't be reached from CI).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory ci/fixtures "$port" >/dev/null 2>&1 &
pids+=($!)
log "build ci/minihpc-amd64.yaml"
"$bin" --out "$work/images" --set "fixtures=http://127.0.0.1:$port/" ci/minihpc-amd64.yaml
head_img=$work/images/minihpc-amd64-head/minihpc-amd64-head.img
node_img=$work/images/minihpc-amd64-compute/minihpc-amd64-compute.img

# The private networks: bridges in a namespace. br0 is the cluster LAN (the host's end
# is 192.168.5.1); br1 the learners' network on the head's second port, whose far end
# is a namespace of its own (a learner's laptop, or an uplink) at 192.168.1.50 that has
# no route to the cluster LAN: a node reaches it only through the head's NAT.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 192.168.5.1/24 dev br0
ip -n "$ns" link set br0 up
ip -n "$ns" link add br1 type bridge
ip -n "$ns" link set br1 up
ip netns add "$ns-learner"
ip -n "$ns" link add veth-learner type veth peer name eth0 netns "$ns-learner"
ip -n "$ns" link set veth-learner master br1 up
ip -n "$ns-learner" addr add 192.168.1.50/24 dev eth0
ip -n "$ns-learner" link set eth0 up
ip -n "$ns-learner" link set lo up
inns() { ip netns exec "$ns" "$@"; }

# A machine: a grown sparse copy of its image, booted by SeaBIOS, its NIC on the cluster
# LAN in PCI slot 3 (enp0s3, as the recipe names it); the head's second NIC, on the
# learners' network, in slot 4 (enp0s4).
boot() { # NAME IMAGE MAC [LEARNERS-MAC]
  local name=$1 img=$2 mac=$3 copy=$work/$1.img nics=()
  cp --sparse=always "$img" "$copy"
  truncate -s 6G "$copy"
  root_key "$copy"
  ip -n "$ns" tuntap add dev "tap-$name" mode tap
  ip -n "$ns" link set "tap-$name" master br0 up
  nics=(-netdev "tap,id=n0,ifname=tap-$name,script=no,downscript=no"
        -device "virtio-net-pci,netdev=n0,mac=$mac,addr=0x3")
  if [ -n "${4:-}" ]; then
    ip -n "$ns" tuntap add dev "tapl-$name" mode tap
    ip -n "$ns" link set "tapl-$name" master br1 up
    nics+=(-netdev "tap,id=n1,ifname=tapl-$name,script=no,downscript=no"
           -device "virtio-net-pci,netdev=n1,mac=$4,addr=0x4")
  fi
  # Not through `inns`: a backgrounded function is a subshell, and killing it would leave
  # QEMU running (its disk filling the host's). QEMU's own pid file is what is killed.
  ip netns exec "$ns" qemu-system-x86_64 -M q35 -m 2048 -smp 2 \
    -drive "file=$copy,format=raw,if=virtio" "${nics[@]}" \
    -pidfile "$work/$name.pid" \
    -serial "file:$work/$name.log" -display none -monitor none -no-reboot &
  pids+=($!)
}

# root's authorized_keys in a copy's ext4 root (debugfs at the partition's offset).
root_key() { # COPY
  local start
  start=$("$bin" inspect --json "$1" | python3 -c 'import json,sys; print([p["start"] for p in json.load(sys.stdin)["partitions"] if p["filesystem"]["kind"].startswith("ext")][0])')
  printf 'mkdir /root/.ssh\nwrite %s /root/.ssh/authorized_keys\nset_inode_field /root/.ssh/authorized_keys mode 0100600\nset_inode_field /root/.ssh/authorized_keys uid 0\nset_inode_field /root/.ssh/authorized_keys gid 0\nset_inode_field /root/.ssh mode 040700\n' "$work/admin.pub" > "$work/debugfs.cmds"
  debugfs -w -f "$work/debugfs.cmds" "$1?offset=$start" >/dev/null 2>&1
  debugfs -R "cat /root/.ssh/authorized_keys" "$1?offset=$start" 2>/dev/null | grep -q cluster-test ||
    { echo "cluster-test: could not write root's key into $1" >&2; exit 1; }
}

# The learners, as an instructor writes them to the head's boot partition after flashing.
learners() { # IMAGE
  local esp_start
  esp_start=$("$bin" inspect --json "$1" | python3 -c 'import json,sys; print([p["start"] for p in json.load(sys.stdin)["partitions"] if p["filesystem"]["kind"].startswith("vfat")][0])')
  printf 'alice,Sup3r-Secret-1\nbob,Sup3r-Secret-2,admin\n' > "$work/learners.csv"
  mcopy -o -i "$1@@$esp_start" "$work/learners.csv" ::/learners.csv
}

ssh_opts=(-i "$work/admin" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 -o BatchMode=yes)
on() { # ADDRESS COMMAND: as root
  local addr=$1; shift
  inns ssh "${ssh_opts[@]}" "root@$addr" "$*"
}
as_alice() { # COMMAND: as the learner alice, on the head
  on 192.168.5.101 "su - alice -c \"$*\""
}
# A job script into alice's home: JOB-NAME, then the script on stdin.
job() {
  on 192.168.5.101 "cat > /tmp/$1 && install -o alice -g alice -m 0755 /tmp/$1 /home/alice/$1"
}
wait_for() { # SECONDS WHAT COMMAND...
  local until=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$until" ]; then echo "cluster-test: timed out waiting for $what" >&2; return 1; fi
    sleep 5
  done
}
idle_nodes() { [ "$(on 192.168.5.101 "sinfo -h -N -o '%N %t'" | grep -c ' idle$')" = 2 ]; }

# A cluster: the head, then its two nodes (MACs as the recipe lists them).
start_cluster() { # TAG
  cp --sparse=always "$head_img" "$work/head-src.img"
  learners "$work/head-src.img"
  boot "head$1" "$work/head-src.img" 52:54:00:05:00:01 52:54:00:01:00:01
  boot "node1$1" "$node_img" 52:54:00:05:00:02
  boot "node2$1" "$node_img" 52:54:00:05:00:03
  log "cluster $1: waiting for the head's SSH"
  wait_for 900 "the head's SSH" on 192.168.5.101 true
  log "cluster $1: waiting for both nodes to be idle in sinfo"
  wait_for 900 "two idle nodes" idle_nodes
}
stop_cluster() { # TAG
  kill_all
  # The booted copies (GBs each; QEMU pauses a guest whose disk has no room): the serial
  # logs stay.
  rm -f "$work/head$1.img" "$work/node1$1.img" "$work/node2$1.img" "$work/head-src.img"
  for t in $(ip -n "$ns" -o link show | awk -F': ' '/tapl?-/ { sub("@.*", "", $2); print $2 }'); do
    ip -n "$ns" link del "$t"
  done
}
key_of() { on "$1" sha256sum /etc/munge/munge.key | cut -d' ' -f1; }

start_cluster 1
log "sinfo"
on 192.168.5.101 sinfo
nodes=$(on 192.168.5.101 srun -N2 hostname | sort | tr '\n' ' ')
[ "$nodes" = "minihpc01 minihpc02 " ] || { echo "srun -N2 hostname gave: $nodes" >&2; exit 1; }
log "srun -N2 hostname: $nodes"

job write.sh <<'JOB'
#!/bin/sh
#SBATCH -N 1
echo "written by $(whoami) on $(hostname)" > "$HOME/from-the-node.txt"
JOB
as_alice "sbatch --wait -o write-%j.out write.sh"
written=$(on 192.168.5.101 "cat /home/alice/from-the-node.txt")
case "$written" in "written by alice on minihpc0"[12]) log "alice's job wrote her NFS home: $written" ;;
  *) echo "alice's job left: $written" >&2; exit 1 ;; esac

job hello.py <<'JOB'
from mpi4py import MPI
c = MPI.COMM_WORLD
print(c.Get_rank(), c.Get_size(), MPI.Get_processor_name())
JOB
hello=$(as_alice "srun -N2 -n2 python3 hello.py" | sort)
log "MPI hello: $(tr '\n' ';' <<<"$hello")"
[ "$(awk '$2 == 2' <<<"$hello" | wc -l)" = 2 ] || { echo "MPI hello: not 2 ranks of 2" >&2; exit 1; }
[ "$(awk '{ print $3 }' <<<"$hello" | sort -u | wc -l)" = 2 ] || { echo "MPI hello: not on 2 hosts" >&2; exit 1; }

job amdahl.sh <<'JOB'
#!/bin/sh
#SBATCH -N 2
#SBATCH -n 2
srun amdahl -p 0.8 -w 2
JOB
as_alice "sbatch --wait -o amdahl-%j.out amdahl.sh"
amdahl_out=$(on 192.168.5.101 "cat /home/alice/amdahl-*.out")
grep -q "Total execution time" <<<"$amdahl_out" || { echo "amdahl's job printed: $amdahl_out" >&2; exit 1; }
log "amdahl: $(grep 'Total execution time' <<<"$amdahl_out" | head -n1)"

alice_jobs() { [ "$(on 192.168.5.101 sacct -u alice -n -X -o JobID | wc -l)" -ge 3 ]; }
wait_for 120 "sacct to list alice's jobs" alice_jobs
log "sacct -u alice:"; on 192.168.5.101 sacct -u alice -X -o JobID,JobName,NodeList,State

as_alice "bash -lc 'module avail 2>&1'" | tee "$work/modules.txt"
for m in Python OpenMPI SciPy-bundle mpi4py; do grep -q "$m/" "$work/modules.txt" || { echo "module avail lists no $m" >&2; exit 1; }; done
# Her password from learners.csv is hers on the head, and the head's SSH takes passwords.
# (libcrypt hashes it with the shadow entry's own method and salt, as login does.)
on 192.168.5.101 python3 - <<'PY' || { echo "alice's password on the head is not the one in learners.csv" >&2; exit 1; }
import ctypes, subprocess, sys
entry = subprocess.run(["getent", "shadow", "alice"], capture_output=True, text=True).stdout
stored = entry.split(":")[1]
crypt = ctypes.CDLL("libcrypt.so.1").crypt
crypt.restype = ctypes.c_char_p
sys.exit(0 if crypt(b"Sup3r-Secret-1", stored.encode()).decode() == stored else 1)
PY
on 192.168.5.101 "sshd -T 2>/dev/null | grep -qx 'passwordauthentication yes'" ||
  { echo "the head's SSH does not take passwords" >&2; exit 1; }
log "alice's password from learners.csv logs her in to the head"
via=$(as_alice "ssh minihpc02 hostname")
[ "$via" = minihpc02 ] || { echo "alice's ssh to minihpc02 gave: $via" >&2; exit 1; }
log "alice logs in to minihpc02 from the head with no password"

# The head as the learners' server: its landing page lists hpc-intro, mirrored.
learner() { ip netns exec "$ns-learner" "$@"; }
learner curl -fsS http://192.168.1.1/ > "$work/landing.html"
grep -q 'hpc-intro' "$work/landing.html" || { echo "the head's landing page lists no hpc-intro" >&2; exit 1; }
learner curl -fsS http://192.168.1.1/lessons/ > "$work/lessons.html"
grep -q 'HPC Carpentry' "$work/lessons.html" || { echo "the lessons page has no HPC Carpentry group" >&2; exit 1; }
learner curl -fsS http://192.168.1.1/lessons/hpc-carpentry/hpc-intro/episodes/13-scheduler.html | grep -q 'Scheduler Fundamentals' ||
  { echo "hpc-intro's scheduler episode is not served" >&2; exit 1; }
log "the head serves hpc-intro to the learners' network"
# NAT: the learners' side has no route to 192.168.5.0/24, so only a masqueraded ping
# from a node is answered.
[ "$(on 192.168.5.102 "ip -4 route show default" | awk '{ print $3 }')" = 192.168.5.101 ] ||
  { echo "the node's default route is not the head" >&2; exit 1; }
on 192.168.5.102 ping -c 2 -W 3 192.168.1.50 >/dev/null || { echo "a node cannot reach beyond the head (NAT)" >&2; exit 1; }
log "a node reaches the network beyond the head through its NAT"

k_head=$(key_of 192.168.5.101) k1=$(key_of 192.168.5.102) k2=$(key_of 192.168.5.103)
[ "$k_head" = "$k1" ] && [ "$k1" = "$k2" ] || { echo "munge keys differ: $k_head $k1 $k2" >&2; exit 1; }
log "one munge key on the three machines (${k_head:0:12}…)"
stop_cluster 1

start_cluster 2
k_other=$(key_of 192.168.5.101)
[ "$k_other" != "$k_head" ] || { echo "the second cluster has the first one's munge key" >&2; exit 1; }
[ "$(key_of 192.168.5.102)" = "$k_other" ] || { echo "the second cluster's node has another key" >&2; exit 1; }
log "a second cluster from the same images has its own munge key (${k_other:0:12}…)"
log "passed"
