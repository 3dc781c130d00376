"""How often a Ray Client connection fails because the head's server for it dies as it starts.

    .venv/bin/python benchmarks/ray_client_connections.py --connections 25 --busy            # a head as Ray starts it
    .venv/bin/python benchmarks/ray_client_connections.py --connections 40 --busy --no-fork  # fork support off

Starts a head node on this machine (Ray's `cluster_utils.Cluster`, Ray Client on port 10073), connects to it
through `ray://` that many times one after the other, and prints each connection and the number that failed.
Ray's proxy forks a server for every new connection while its gRPC threads run; with gRPC's fork support on
(its default), the forked process sometimes crashes before it starts ("Starting Ray client server failed",
ray-project/ray#63202). `--no-fork` starts the head with GRPC_ENABLE_FORK_SUPPORT=0; `--busy` keeps both cores
busy meanwhile, as a test suite or a training trial does (the failures are rarer on an idle machine)."""
import argparse, os, subprocess, sys, time

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=25)
    ap.add_argument("--no-fork", action="store_true", help="start the head with GRPC_ENABLE_FORK_SUPPORT=0")
    ap.add_argument("--busy", action="store_true", help="keep every core busy while connecting")
    a = ap.parse_args()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node on 127.0.0.1
    if a.no_fork: os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"  # the head's processes inherit it
    from ray.cluster_utils import Cluster
    import ray
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "ray_client_server_port": 10073})
    os.environ.pop("GRPC_ENABLE_FORK_SUPPORT", None)  # this process connects as any client does
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)] \
           if a.busy else []
    failed, t0 = 0, time.perf_counter()
    try:
        for i in range(a.connections):
            t = time.perf_counter()
            try:
                ray.init("ray://127.0.0.1:10073", log_to_driver=False)
                ray.get(ray.put(1))
                outcome = "ok"
            except Exception as e:
                failed += 1
                outcome = f"FAILED ({str(e).strip().splitlines()[-1][:100]})"
            finally: ray.shutdown()
            print(f"connection {i + 1}: {outcome}, {time.perf_counter() - t:.1f} s", flush=True)
    finally:
        for p in busy: p.kill()
        cluster.shutdown()
    print(f"\nhead with gRPC fork support {'off (GRPC_ENABLE_FORK_SUPPORT=0)' if a.no_fork else 'on (default)'}"
          f"{', cores busy' if a.busy else ''}: {failed} of {a.connections} connections failed "
          f"({time.perf_counter() - t0:.0f} s)")

if __name__ == "__main__": main()
