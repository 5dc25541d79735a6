"""The grading child: runs a submission's cells inside the sandbox and sends probe data out.

    python -m nncourse.grading.child JOB_DIR

Reads JOB_DIR/job.json and runs each step in an IPython shell (answers may use ``%matplotlib``).
Nothing this process says is trusted; the grader only judges it. It talks to the grader over two
inherited pipes, never through files the learner's code could rewrite:

* to the grader (fd NNCOURSE_PROGRESS_FD): ``start I`` / ``end I`` around every step, and framed
  payloads ``data CELL K N`` (the K-th check of test cell CELL: N bytes of plain data),
  ``error CELL N`` (the exception a cell raised), ``tamper I N`` (the integrity check failed after
  step I) and ``finished``. The grader accepts a payload only for the step that is running, once;
  the step's clock is the grader's.
* from the grader (fd NNCOURSE_CONTROL_FD): ``salt S`` after the start of each test step, the
  seed of that run's probe inputs, sent once the answer cell has finished.
"""

import json
import os
import sys


def prepare(hypothesis: bool = False, modules: tuple[str, ...] = ()) -> None:
    """Import everything the checks need, before the guard is installed and before any learner code.

    A cold child calls this itself; a warm start (``zygote.py``) calls it once and forks a child per
    submission from the prepared process. ``modules``: what the chapter's given cells import, so that
    their imports cost nothing in the child (importing runs no cell code)."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    import torch  # noqa: F401

    import nncourse
    from nncourse import checking, policy, probing, registry  # noqa: F401

    for name in nncourse.__all__:  # loaded on first use: here, before the guard, not in a learner's cell
        getattr(nncourse, name)
    from nncourse.grading import guard, integrity  # noqa: F401

    registry.load_exercises()
    if hypothesis:  # property-based probes: Hypothesis's import rewrites __code__, refused later
        from nncourse import properties

        properties.prepare()
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the set-up cell will meet the same error, reported as it would be cold
            pass


def main(job_dir: str) -> None:
    """A cold start: prepare, then run the job."""
    with open(os.path.join(job_dir, "job.json")) as f:
        hypothesis = bool(json.load(f).get("hypothesis"))
    prepare(hypothesis)
    run(job_dir)


def run(job_dir: str) -> None:
    """Run the job in JOB_DIR/job.json, talking over the inherited descriptors; never returns."""
    sys.dont_write_bytecode = True
    with open(os.path.join(job_dir, "job.json")) as f:
        spec = json.load(f)
    out_fd = int(os.environ.pop("NNCOURSE_PROGRESS_FD"))
    in_fd = int(os.environ.pop("NNCOURSE_CONTROL_FD"))

    def send(header: str, payload: bytes = b"") -> None:
        data = header.encode() + b"\n" + payload
        while data:
            data = data[os.write(out_fd, data) :]

    def receive_line() -> str:
        chunks: list[bytes] = []
        while True:
            byte = os.read(in_fd, 1)
            if not byte or byte == b"\n":
                return b"".join(chunks).decode()
            chunks.append(byte)

    prepare(bool(spec.get("hypothesis")))  # already done by a cold start or a warm one: only looks things up
    from IPython.core.interactiveshell import InteractiveShell

    from nncourse import checking, policy, probing
    from nncourse.grading import guard, integrity

    shell = InteractiveShell.instance(history_length=0)
    history = shell.history_manager
    assert history is not None  # InteractiveShell.__init__ always makes one (a traitlet typed allow_none)
    history.enabled = False
    integrity.guard_module_methods(policy.INSPECTED_METHODS)
    changes = integrity.snapshot()
    guard.install(job_dir, spec["hidden"], spec["readable"])

    def sink(cell_id: str, index: int, payload: bytes) -> None:
        send(f"data {cell_id} {index} {len(payload)}", payload)

    skip, done = set(spec["skip"]), set(spec["done"])
    for index, step in enumerate(spec["steps"]):
        if index in skip:
            continue
        send(f"start {index}")
        if step["kind"] == "test":
            if step["cell_id"] in done:
                send(f"end {index}")
                continue
            word, _, salt = receive_line().partition(" ")
            probing.set_salt(int(salt) if word == "salt" else None)
            checking.export_to(sink, step["cell_id"])
        result = shell.run_cell(step["source"], store_history=False)
        checking.export_to(None)
        probing.set_salt(None)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            payload = json.dumps({"ename": type(error).__name__, "evalue": str(error)[:2000]}).encode()
            send(f"error {step['cell_id']} {len(payload)}", payload)
        found = changes()
        if found:
            payload = "; ".join(found).encode()
            send(f"tamper {index} {len(payload)}", payload)
            os._exit(3)
        send(f"end {index}")
    send("finished")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: learner objects' __del__ must not change anything now


if __name__ == "__main__":
    main(sys.argv[1])
