"""How long the demo's closed loop takes on this machine, from `make demo`'s own script and processes.

    .venv/bin/python bench/demo_loop.py [--port 0] [--var-dir DIR] [--timeout 1800]

What it does, through the app's REST API (what the demo's pages call), on a fresh var/ directory
(the embedded PostgreSQL and kombu's filesystem broker, the embedded defaults), with the bundled
SmolLM2-135M-Instruct and all-MiniLM-L6-v2:

1. starts ``scripts/demo.sh`` (the embedded PostgreSQL, migrate, seed the demo project, gunicorn, a
   default and a training Celery worker) and reads the demo users' passwords from its output;
2. both demo annotators judge every item in the queue (a seeded coin picks the side);
3. the admin presses the run page's "Train and serve" (its API twin, ``POST /api/projects/demo/loop/``):
   a reward-model run and a DPO LoRA run with the run form's default configs
   (``training.demo_configs``), one after the other on the training worker;
4. as each succeeds it is promoted, the reward model to active scorer and the tuned policy to
   serving, which queues generation on the demo's held-back prompts (tuned vs base);
5. an annotator asks for the next item until one is on a held-back prompt: a tuned-vs-base
   comparison, the loop closed.

Prints one JSON object: seconds for each phase, and ``loop_seconds`` from starting the runs to the
annotator being served the tuned-vs-base comparison (the figure the demo's users wait for). Not a
comparison with a peer. The demo is stopped (Ctrl-C's path; no process is left, the database server
included) and the temporary var/ removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alignweb import embedded_db  # noqa: E402
from bench.common import emit  # noqa: E402
from training.demo_configs import DEMO_CONFIGS  # noqa: E402

PROJECT = "demo"
HELD_BACK_FILE = REPO / "annotation" / "demo" / "held_back_prompts.jsonl"
# What the demo may inherit from the caller's environment: the basics of a shell, the offline and
# thread settings of the model libraries, the model cache. Nothing else, so that no alignweb or demo
# setting (the test suite points DATABASE_URL and the broker at PostgreSQL and Redis) redirects it.
INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "TERM",
    "TMPDIR",
    "VENV",
    "ALIGNWEB_MODEL_CACHE",
)
INHERITED_PREFIXES = ("LC_", "HF_", "TRANSFORMERS_", "OMP_", "MKL_")
PASSWORD_LINE = re.compile(r"^\s+(admin|annotator1|annotator2)\s+\w+\s+(\S+)\s*$")


class DemoFailed(RuntimeError):
    pass


class Demo:
    """``scripts/demo.sh`` in its own process group, its output kept (and tee'd to a log file)."""

    def __init__(self, *, var_dir: Path, port: int, log_path: Path) -> None:
        # The embedded defaults: PostgreSQL, the filesystem broker and every file under var_dir.
        env = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith(INHERITED_PREFIXES)}
        env.setdefault("VENV", str(Path(sys.executable).parents[1]))
        env |= {
            "ALIGNWEB_VAR_DIR": str(var_dir),
            "STATIC_ROOT": str(var_dir / "static"),
            "DEMO_HOST": "127.0.0.1",
            "DEMO_PORT": str(port),
        }
        self.port, self.var_dir = port, var_dir
        self.lines: list[str] = []
        self.log = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [str(REPO / "scripts" / "demo.sh")],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self.log.write(line)
            self.log.flush()

    def listening(self) -> bool:
        """gunicorn says it listens on our port (not some other server that holds it)."""
        return any(f"Listening at: http://127.0.0.1:{self.port} " in line for line in list(self.lines))

    def passwords(self) -> dict[str, str]:
        found = {}
        for line in list(self.lines):
            match = PASSWORD_LINE.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def stop(self) -> None:
        """Ctrl-C's path: SIGINT to the process group and up to 60 s for demo.sh to stop its
        children and the database; then KILL whatever is left in the group (also when demo.sh died
        first) and stop the database, which runs in a session of its own, if demo.sh could not."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        embedded_db.stop(self.var_dir)
        self.reader.join(timeout=10)
        self.process.stdout.close()
        self.log.close()


class Api:
    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"}
            | ({"Authorization": f"Token {self.token}"} if self.token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, raw.decode(errors="replace")[:500]

    def ok(self, method: str, path: str, body: dict | None = None, expect=(200, 201, 202)) -> Any:
        status, payload = self.call(method, path, body)
        if status not in expect:
            raise DemoFailed(f"{method} {path} answered {status}: {payload}")
        return payload


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, *, timeout: float, what: str, demo: Demo, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.process.poll() is not None:
            raise DemoFailed(f"the demo stopped (rc {demo.process.returncode}) while waiting for {what}")
        value = check()
        if value:
            return value
        time.sleep(every)
    raise DemoFailed(f"{what} did not happen within {timeout:.0f} s")


def judge_all(api: Api, rng: random.Random) -> int:
    """Judge every item the queue serves this annotator; returns how many."""
    judged = 0
    while True:
        status, payload = api.call("POST", f"/api/projects/{PROJECT}/next/")
        if status == 204:
            return judged
        if status != 200:
            raise DemoFailed(f"next answered {status}: {payload}")
        assignment = payload["assignment"]
        body = {"choice": rng.choice(["left", "right"]), "strength": 1, "rationale": "", "duration_ms": 2000}
        api.ok("POST", f"/api/assignments/{assignment['id']}/judgement/", body)
        judged += 1


def run_finished(api: Api, run_id: int) -> dict | None:
    run = api.ok("GET", f"/api/projects/{PROJECT}/runs/{run_id}/")
    if run["state"] in ("failed", "cancelled"):
        raise DemoFailed(f"run {run_id} {run['state']}: {run.get('error', '')[-2000:]}")
    return run if run["state"] == "succeeded" else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="Port for the demo's web server (0: a free one).")
    parser.add_argument("--var-dir", type=Path, help="The demo's var/ (default: a temporary one, removed).")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds each phase may take at most.")
    parser.add_argument("--seed", type=int, default=0, help="Seeds the simulated annotators' choices.")
    args = parser.parse_args(argv)

    if args.var_dir and args.var_dir.exists() and any(args.var_dir.iterdir()):
        parser.error(f"{args.var_dir} is not empty: the loop needs a fresh demo (new users, nothing judged).")
    var_dir = (args.var_dir or Path(tempfile.mkdtemp(prefix="alignweb-demo-loop-"))).resolve()
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    held_back = {
        json.loads(line)["prompt"] for line in HELD_BACK_FILE.read_text().splitlines() if line.strip()
    }
    rng = random.Random(args.seed)
    phases: dict[str, float] = {}
    var_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(var_dir=var_dir, port=port, log_path=var_dir / "demo-loop.log")
    try:
        started = time.monotonic()

        def up() -> bool:
            if not demo.listening():
                return False
            try:
                return Api(base).call("GET", "/api/")[0] < 500
            except OSError:
                return False

        wait_until(up, timeout=args.timeout, what="the web server", demo=demo)
        passwords = wait_until(
            lambda: (found := demo.passwords()) and len(found) == 3 and found,
            timeout=10,
            what="the demo users' passwords",
            demo=demo,
        )
        phases["startup_seconds"] = time.monotonic() - started

        def login(username: str) -> Api:
            credentials = {"username": username, "password": passwords[username]}
            token = Api(base).ok("POST", "/api/auth/token/", credentials)
            return Api(base, token["token"])

        admin, annotators = login("admin"), [login("annotator1"), login("annotator2")]
        clock = time.monotonic()
        votes = sum(judge_all(annotator, rng) for annotator in annotators)
        phases["voting_seconds"] = time.monotonic() - clock

        loop_started = time.monotonic()
        # The run page's "Train and serve" button: both runs, each promoted when it succeeds.
        started_runs = admin.ok("POST", f"/api/projects/{PROJECT}/loop/")
        runs = {run["kind"]: run["id"] for run in started_runs}
        finished = {}
        for kind, run_id in runs.items():  # the training worker takes them in this order
            finished[kind] = wait_until(
                lambda r=run_id: run_finished(admin, r), timeout=args.timeout, what=f"{kind} run", demo=demo
            )
            phases[f"{kind}_run_done_after_seconds"] = time.monotonic() - loop_started
        clock = time.monotonic()

        versions = admin.ok("GET", f"/api/projects/{PROJECT}/model-versions/")
        by_run = {v["run"]: v for v in versions if v["run"] is not None}
        scorer, tuned = by_run[runs["reward_model"]], by_run[runs["dpo"]]
        if (scorer["status"], tuned["status"]) != ("active_scorer", "serving"):
            logs = [
                admin.ok("GET", f"/api/projects/{PROJECT}/runs/{r}/")["log_tail"][-500:]
                for r in runs.values()
            ]
            raise DemoFailed(
                f"not promoted: reward {scorer['status']}, tuned {tuned['status']}; logs: {logs}"
            )

        def generated() -> dict | None:
            jobs = admin.ok("GET", f"/api/projects/{PROJECT}/generations/")
            job = next((j for j in jobs if j["model_version"] == tuned["name"]), None)
            if job and job["state"] == "failed":
                raise DemoFailed(f"generation failed: {job['error'][-2000:]}")
            return job if job and job["state"] == "succeeded" else None

        job = wait_until(generated, timeout=args.timeout, what="generation", demo=demo)
        phases["generation_seconds_after_dpo"] = time.monotonic() - clock

        def served() -> dict | None:
            status, payload = annotators[0].call("POST", f"/api/projects/{PROJECT}/next/")
            if status == 204:  # generation's comparisons not in the queue yet
                return None
            if status != 200:
                raise DemoFailed(f"next answered {status}: {payload}")
            assignment = payload["assignment"]
            annotators[0].ok(
                "POST",
                f"/api/assignments/{assignment['id']}/judgement/",
                {"choice": "left", "strength": 1, "rationale": "", "duration_ms": 2000},
            )
            prompt = assignment["prompt"]["messages"][-1]["content"]
            return assignment if prompt in held_back else None

        wait_until(served, timeout=60, what="a tuned-vs-base item for the annotator", demo=demo, every=0.2)
        loop_seconds = time.monotonic() - loop_started
        queue_order = admin.ok("GET", f"/api/projects/{PROJECT}/loop-settings/")["queue_order"]
    except DemoFailed as error:
        demo.stop()
        raise SystemExit(
            f"demo loop failed: {error}\n--- the demo's last lines (whole log: {demo.log.name}) ---\n"
            f"{demo.tail()}"
        ) from None
    except BaseException:
        demo.stop()
        raise
    demo.stop()
    if args.var_dir is None:  # kept when the loop failed, for its log
        shutil.rmtree(var_dir, ignore_errors=True)

    result = {
        "bench": "demo_loop",
        "votes": votes,
        "reward_run": {"steps": finished["reward_model"]["step"], "config": DEMO_CONFIGS["reward_model"]},
        "dpo_run": {"steps": finished["dpo"]["step"], "config": DEMO_CONFIGS["dpo"]},
        "generation": {k: job[k] for k in ("k", "prompts_total", "responses_created", "comparisons_created")},
        "queue_order": queue_order,
        **{key: round(value, 1) for key, value in phases.items()},
        "loop_seconds": round(loop_seconds, 1),
        "note": "loop_seconds: from starting the two runs to an annotator being served a tuned-vs-base "
        "comparison; the runs share one training worker, one after the other.",
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": [round(v, 2) for v in os.getloadavg()]},
    }
    emit(result)
    return result


if __name__ == "__main__":
    main()
