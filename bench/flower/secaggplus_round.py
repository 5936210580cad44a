"""One Flower 1.42 SecAgg+ round, in one process, timed; the other side of
`veil-bench compare` (crates/veil-bench).

Flower's own apps do the work: the ServerApp workflow `DefaultWorkflow` with
`SecAggPlusWorkflow` as its fit workflow and a `FedAvg` strategy, and a
`ClientApp` wrapped in `secaggplus_mod`. Instead of Flower's simulation
engine (Ray), a minimal `Grid` hands each message to the destination node's
ClientApp in this process and returns its reply, so no network, serialisation
or worker start-up is in the time: what is measured is Flower's protocol
work alone (client and server on one core, as veil's in-memory engine).

Each client's input is a deterministic vector of d float32 in [-1, 1] (from
its node id). Dropped clients stop answering at a chosen stage:
`before` = from the masked-vector stage on (their masked input never
arrives), `after` = at the unmask stage (their masked input arrived).

Prints one JSON object: round seconds (the fit workflow's CPU time; and its
latency had every client run on its own machine: the server's share plus
each stage's slowest client), bytes sent
per client (the protobuf size of every reply a client sent, measured outside
the timed work), peak RSS, and whether the released mean equals the exact
mean of the included clients' inputs within Flower's quantisation step.

    python secaggplus_round.py --n 100 --d 100000 --shares 11 --threshold 6 \
        --drop 10 --drop-stage after
"""

import argparse
import json
import resource
import sys
import time
from uuid import uuid4

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp.grid import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

STAGE_KEY = "secaggplus_configs"


def client_input(node_id, d):
    return np.random.default_rng(node_id).uniform(-1.0, 1.0, d).astype(np.float32)


class Client(NumPyClient):
    def __init__(self, node_id, d):
        self.node_id = node_id
        self.d = d

    def fit(self, parameters, config):
        return [client_input(self.node_id, self.d)], 1, {}


class DirectGrid(Grid):
    """Delivers each message to its node's ClientApp, in this process."""

    def __init__(self, n, d, drop_ids, drop_stage):
        self.app = ClientApp(
            client_fn=lambda context: Client(context.node_id, d).to_client(),
            mods=[secaggplus_mod],
        )
        self.nodes = list(range(1, n + 1))
        self.contexts = {
            nid: Context(run_id=1, node_id=nid, node_config={}, state=RecordDict(), run_config={})
            for nid in self.nodes
        }
        self.drop_ids = set(drop_ids)
        self.drop_stage = drop_stage
        self.gone = set()
        self.sent_bytes = 0
        # Transport work kept out of the time, on both clocks.
        self.untimed = 0.0
        self.untimed_cpu = 0.0
        # Time inside each client's app, by stage: the round's latency with
        # every client on its own machine is the rest (the server's) plus
        # each stage's slowest client.
        self.client_total = 0.0
        self.slowest = {}
        self._run = Run.create_empty(1)

    def set_run(self, run):
        self._run = run

    @property
    def run(self):
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self):
        return list(self.nodes)

    def push_messages(self, messages):
        raise NotImplementedError("the workflow uses send_and_receive")

    def pull_messages(self, message_ids):
        raise NotImplementedError("the workflow uses send_and_receive")

    def _stage(self, msg):
        configs = msg.content.config_records.get(STAGE_KEY)
        return None if configs is None else configs.get("stage")

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            nid = msg.metadata.dst_node_id
            stage = self._stage(msg)
            if nid in self.drop_ids and stage == self.drop_stage:
                self.gone.add(nid)
            if nid in self.gone:
                continue
            msg.metadata.__dict__["_message_id"] = str(uuid4())
            # A real deployment serialises each message: the node gets its
            # own copy (secaggplus_mod edits what it receives). The copies
            # and the byte counts are transport, kept out of the time.
            start, start_cpu = time.perf_counter(), time.process_time()
            delivered = message_from_proto(message_to_proto(msg))
            self.untimed += time.perf_counter() - start
            self.untimed_cpu += time.process_time() - start_cpu
            start = time.perf_counter()
            reply = self.app(delivered, self.contexts[nid])
            spent = time.perf_counter() - start
            self.client_total += spent
            self.slowest[stage] = max(self.slowest.get(stage, 0.0), spent)
            start, start_cpu = time.perf_counter(), time.process_time()
            proto = message_to_proto(reply)
            self.sent_bytes += proto.ByteSize()
            reply = message_from_proto(proto)
            self.untimed += time.perf_counter() - start
            self.untimed_cpu += time.process_time() - start_cpu
            replies.append(reply)
        return replies


class Timed:
    def __init__(self, inner):
        self.inner = inner
        self.seconds = None
        self.cpu_seconds = None

    def __call__(self, grid, context):
        start, start_cpu = time.perf_counter(), time.process_time()
        self.inner(grid, context)
        self.seconds = time.perf_counter() - start
        self.cpu_seconds = time.process_time() - start_cpu


class Capture(FedAvg):
    def aggregate_fit(self, server_round, results, failures):
        out = super().aggregate_fit(server_round, results, failures)
        self.result = parameters_to_ndarrays(out[0])[0]
        self.included = sorted(proxy.node_id for proxy, _ in results)
        return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--shares", type=int, required=True, help="num_shares (neighbours + 1)")
    p.add_argument("--threshold", type=int, required=True)
    p.add_argument("--drop", type=int, default=0, help="clients that drop")
    p.add_argument("--drop-stage", choices=["before", "after"], default="after")
    a = p.parse_args()

    # What Flower's runtime sets for a ServerApp process.
    TaskIdentity.run_id = 1
    TaskIdentity.task_id = 1
    TaskIdentity.node_id = 0
    stage = {"before": "collect_masked_vectors", "after": "unmask"}[a.drop_stage]
    # Spread the dropped clients over the ids, as veil-bench does.
    drop_ids = [1 + i * a.n // a.drop for i in range(a.drop)] if a.drop else []
    grid = DirectGrid(a.n, a.d, drop_ids, stage)
    strategy = Capture(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=a.n,
        min_evaluate_clients=0,
        min_available_clients=a.n,
        initial_parameters=ndarrays_to_parameters([np.zeros(a.d, dtype=np.float32)]),
    )
    server = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    context = LegacyContext(context=server, config=ServerConfig(num_rounds=1), strategy=strategy)
    # max_weight 1 with every client weighing 1 example: Flower scales each
    # input by weight / max_weight before quantising, so this keeps the
    # full quantisation precision.
    fit = Timed(
        SecAggPlusWorkflow(num_shares=a.shares, reconstruction_threshold=a.threshold, max_weight=1.0)
    )
    DefaultWorkflow(fit_workflow=fit)(grid, context)
    if fit.seconds is None or not hasattr(strategy, "result"):
        print(json.dumps({"error": "the round did not complete"}))
        sys.exit(1)

    # What the released mean should be: the plain mean of the included
    # clients' inputs. Flower quantises each input to 2^22 levels over
    # [-8, 8] (step 16/2^22 ~ 3.8e-6), so the mean is within that step.
    exact = np.mean([client_input(nid, a.d) for nid in strategy.included], axis=0)
    err = float(np.max(np.abs(strategy.result.astype(np.float64) - exact)))
    expected_included = a.n - (len(drop_ids) if a.drop_stage == "before" else 0)
    print(json.dumps({
        # All the round's work: CPU time of the process (every thread), as
        # veil-bench measures veil's; latency is wall-clock time.
        "round_s": fit.cpu_seconds - grid.untimed_cpu,
        "latency_s": fit.seconds - grid.untimed - grid.client_total + sum(grid.slowest.values()),
        "bytes_per_client": grid.sent_bytes / a.n,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "included": len(strategy.included),
        "expected_included": expected_included,
        "max_abs_error": err,
        "correct": bool(err <= 16.0 / 2**22 and len(strategy.included) == expected_included),
    }))


if __name__ == "__main__":
    main()
