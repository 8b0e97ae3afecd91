#!/bin/sh
# A two-node data-parallel launch on one machine: two network namespaces
# joined by a veth pair stand for two hosts (10.77.0.1 and 10.77.0.2), and
# torchrun runs one rank in each with --nnodes=2 --node_rank=... --master_addr
# (its static rendezvous, whose agent hosts the store), as README shows for
# two machines. The ranks must train as one process with their batches
# together would.
#   two_nodes.sh RUNNER
set -eu
runner=$1
skip() {
  echo "kokoro-skip: $1"
  exit 0
}
command -v torchrun >/dev/null 2>&1 || skip "torchrun is not installed (Debian's python3-torch has it)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
tag=k$$
a=${tag}a
b=${tag}b
ip netns add "$a" 2>/dev/null || skip "this sandbox does not allow network namespaces"
dir=$(mktemp -d)
cleanup() {
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$b"
ip link add "${tag}0" type veth peer name "${tag}1"
ip link set "${tag}0" netns "$a"
ip link set "${tag}1" netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev "${tag}0"
ip -n "$b" addr add 10.77.0.2/24 dev "${tag}1"
for ns in "$a" "$b"; do
  ip -n "$ns" link set lo up
done
ip -n "$a" link set "${tag}0" up
ip -n "$b" link set "${tag}1" up

launch() {  # namespace, node rank, interface, output folder
  ip netns exec "$1" env PET_REDIRECTS=1 PET_TEE=1 GLOO_SOCKET_IFNAME="$3" \
    torchrun --nnodes=2 --node_rank="$2" --nproc_per_node=1 --master_addr=10.77.0.1 \
    --master_port=29631 --no_python "$runner" "$4" batch=4 timeout=60 \
    >"$dir/node$2.txt" 2>&1
}
mkdir -p "$dir/shared" "$dir/single"
launch "$a" 0 "${tag}0" "$dir/shared" &
first=$!
status1=0
launch "$b" 1 "${tag}1" "$dir/shared" || status1=$?
status0=0
wait "$first" || status0=$?
if [ "$status0" != 0 ] || [ "$status1" != 0 ]; then
  cat "$dir/node0.txt" "$dir/node1.txt"
  echo "two_nodes.sh: the launch failed (node 0: $status0, node 1: $status1)"
  exit 1
fi
env -u WORLD_SIZE -u RANK "$runner" "$dir/single" batch=8 >/dev/null
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
def params(path):
    for line in open(path):
        if line.startswith("params"):
            return [float(v) for v in line.split()[1:]]
r0, r1 = params(f"{d}/shared/result-rank0.txt"), params(f"{d}/shared/result-rank1.txt")
one = params(f"{d}/single/result-rank0.txt")
assert r0 == r1, "the two nodes ended with different weights"
worst = max(abs(a - b) / max(abs(b), 1e-3) for a, b in zip(r0, one))
assert worst < 1e-5, f"the two nodes differ from one process by {worst:.2e} (relative)"
print(f"two_nodes.sh: 2 nodes over a veth pair trained as one process (largest relative difference {worst:.1e})")
PY
