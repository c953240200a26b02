#!/bin/bash
# `lockstep train --distributed` on two hosts made on this machine (ctest label mpi): two
# network namespaces joined by a veth pair, each with its own address; mpirun runs in the
# first and starts the second host's daemon through a launch agent (the stand-in for ssh)
# that enters the other namespace. Open MPI's TCP transport only (--mca btl tcp,self, no
# shared memory), two ranks per host. The weights_sha256 at 4 ranks over the two hosts must
# equal one process's, with a short last batch that leaves a rank without rows.
# Exit 77 (skipped) when not root, without `ip netns`, mpirun, the dataset or MPI.
source "$(dirname "$0")/lib.sh"
need_data
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
command -v ip >/dev/null || { echo "no ip command (iproute2): skipped"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "network namespaces need root: skipped"; exit 77; }
A=lsA$$; B=lsB$$  # unique names: interface names must stay under 16 characters
ip netns add $A 2>/dev/null || { echo "ip netns add failed (no namespaces here): skipped"; exit 77; }
cleanup() { ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
ip netns add $B || fail "ip netns add $B"
ip link add va$$ type veth peer name vb$$ || { echo "no veth pairs here: skipped"; exit 77; }
ip link set va$$ netns $A && ip link set vb$$ netns $B || fail "moving the veth ends"
ip -n $A addr add 10.77.0.1/24 dev va$$ && ip -n $B addr add 10.77.0.2/24 dev vb$$ || fail "addresses"
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set va$$ up && ip -n $B link set vb$$ up || fail "links up"

# The launch agent: mpirun calls `agent HOST COMMAND...` for each remote host, as it would ssh.
cat > agent.sh <<EOF
#!/bin/bash
host=\$1; shift
case "\$host" in
  10.77.0.1) ns=$A ;;
  10.77.0.2) ns=$B ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
chmod +x agent.sh
printf '10.77.0.1 slots=2\n10.77.0.2 slots=2\n' > hosts
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1
FLAGS="--max-steps 12 --batch-size 96"  # 1024 = 10 x 96 + 64: the 11th batch has 2 chunks for 4 ranks
out=plain.txt; train $FLAGS
ref=$(weights_of plain.txt)
timeout 120 ip netns exec $A mpirun --hostfile hosts -np 4 --bind-to none -x LOCKSTEP_NUM_THREADS \
  --mca plm_rsh_agent "$WORK/agent.sh" --mca btl tcp,self \
  --mca oob_tcp_if_include 10.77.0.0/24 --mca btl_tcp_if_include 10.77.0.0/24 \
  sh -c 'echo "rank $OMPI_COMM_WORLD_RANK on $(ip -o -4 addr show scope global | awk "{print \$4}")" >&2;
         exec "$0" "$@"' "$LOCKSTEP" train --distributed $SMALL $FLAGS --json > np4.txt 2> np4.err \
  || { grep -q "built without MPI" np4.err && { echo "lockstep built without MPI: skipped"; exit 77; }
       cat np4.err >&2; fail "mpirun over two namespaces"; }
for r in 0 1 2 3; do grep -q "rank $r on 10.77.0.[12]/24" np4.err || { cat np4.err >&2; fail "rank $r: no address"; }; done
[ "$(grep -c 'on 10.77.0.2/24' np4.err)" = 2 ] || { cat np4.err >&2; fail "expected 2 ranks on the second host"; }
[ "$(weights_of np4.txt)" = "$ref" ] || fail "4 ranks on 2 hosts: $(weights_of np4.txt), one process $ref"
echo "ok: 4 ranks on two hosts (namespaces, TCP) -> $ref, as one process"
echo PASS
